"""Storage backends: the vector-store contract and its registry, FAISS and Milvus, BM25, SQLite metadata.

To add a vector store: a class following `rag.store.base.VectorStore` (its capabilities say what the
index does for it), its settings in StoreSettings (a sub-section like [store.milvus]) and one
`VECTOR_STORES.register` line here.
"""

import importlib.util

from rag.registry import Registry, Spec
from rag.store.base import VectorStore
from rag.store.bm25 import BM25Index
from rag.store.faiss import FaissStore
from rag.store.metadata import MetadataStore

VECTOR_STORES = Registry("vector store", "store.backend")
VECTOR_STORES.register(Spec("faiss", "rag.store.faiss:FaissStore",
                            "a FAISS file in the index directory: exact search, HNSW above store.ann_threshold"))
VECTOR_STORES.register(Spec("milvus", "rag.store.milvus:MilvusStore",
                            "a Milvus collection (a milvus-lite folder or a server), with its own BM25",
                            settings="store.milvus", available=lambda _: importlib.util.find_spec("pymilvus") is not None,
                            requires='pymilvus (pip install -e ".[milvus]")'))

__all__ = ["BM25Index", "FaissStore", "MetadataStore", "VECTOR_STORES", "VectorStore"]
