"""Storage backends: the vector-store contract, FAISS and Milvus implementations, BM25, SQLite metadata."""

from rag.store.base import VectorStore
from rag.store.bm25 import BM25Index
from rag.store.faiss import FaissStore
from rag.store.metadata import MetadataStore

__all__ = ["BM25Index", "FaissStore", "MetadataStore", "VectorStore"]
