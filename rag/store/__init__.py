"""Storage backends: the vector-store contract and its FAISS implementation, BM25, and SQLite metadata."""

from rag.store.base import VectorStore
from rag.store.bm25 import BM25Index
from rag.store.faiss import FaissStore
from rag.store.metadata import MetadataStore

VECTOR_STORES = {"faiss": FaissStore}

__all__ = ["VECTOR_STORES", "BM25Index", "FaissStore", "MetadataStore", "VectorStore"]
