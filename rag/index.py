"""The index directory: SQLite metadata (the truth), FAISS vectors and BM25 (caches), and a manifest.

Layout of `index/`:
    manifest.json     embedding model, dimension, chunker settings, counts, index type, times
    metadata.sqlite   documents, chunks with their vectors, ingested files (WAL, one transaction a batch)
    vectors.faiss     the vector index over chunk ids
    bm25/             the BM25 index and the chunk ids it covers
    .lock             held by the one process allowed to write

Every write commits to SQLite first. FAISS and BM25 are saved at checkpoints; when the process dies
between the two, the next open finds the caches' id sets differ from SQLite's and repairs them from
the stored vectors and texts, so a killed ingest loses nothing that was committed.
"""

from __future__ import annotations

import fcntl
import json
import os
from dataclasses import dataclass, field
from datetime import datetime, timezone
from functools import cached_property
from pathlib import Path

import numpy as np

from rag.chunking import Chunker
from rag.config import Settings
from rag.embedding import Embedder
from rag.store import BM25Index, FaissStore, MetadataStore
from rag.types import Chunk, Document

FORMAT_VERSION = 1
MANIFEST, METADATA, VECTORS, BM25_DIR, LOCK = "manifest.json", "metadata.sqlite", "vectors.faiss", "bm25", ".lock"


class IndexError(RuntimeError):  # noqa: A001 - the index's own error, shadowing the builtin is deliberate
    """The index directory is missing, locked, or incompatible with the configuration."""


@dataclass
class BatchResult:
    """What one `add_documents` call did."""

    added: list[str] = field(default_factory=list)
    replaced: list[str] = field(default_factory=list)
    unchanged: list[str] = field(default_factory=list)
    duplicates: list[str] = field(default_factory=list)  # same text as a stored document with another id
    chunks: int = 0  # chunks embedded and stored
    tokens: int = 0

    @property
    def doc_ids(self) -> list[str]:
        """Every document id this batch now stands for in the index."""
        return self.added + self.replaced + self.unchanged + self.duplicates


class NewsIndex:
    """Open (or create) an index directory; add, delete and read documents."""

    def __init__(self, settings: Settings, writable: bool = False, create: bool = False, embedder: Embedder | None = None):
        self.settings = settings
        if embedder is not None:  # share one loaded model between indexes (tests, servers)
            self.__dict__["embedder"] = embedder
        self.directory = Path(settings.index_dir)
        self.writable = writable
        manifest_path = self.directory / MANIFEST
        if not manifest_path.is_file():
            if not create:
                raise IndexError(f"no index at {self.directory}/ (run `rag ingest PATH --index {self.directory}` first)")
            self.directory.mkdir(parents=True, exist_ok=True)
        self._lock_handle = self._lock() if writable else None
        self.manifest = self._read_manifest() if manifest_path.is_file() else None
        self._check_model()
        self.metadata = MetadataStore(self.directory / METADATA)
        self._bm25_stale = False
        self._vectors_dirty = False

    # -- opening ------------------------------------------------------------------------------
    def _lock(self):
        """Take the writer lock, failing fast when another process holds it."""
        handle = open(self.directory / LOCK, "a+")
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.close()
            raise IndexError(f"{self.directory}/ is being written by another process (lock {LOCK})") from None
        return handle

    def _read_manifest(self) -> dict:
        path = self.directory / MANIFEST
        try:
            manifest = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            raise IndexError(f"{path}: unreadable manifest ({exc})") from exc
        if manifest.get("format") != FORMAT_VERSION:
            raise IndexError(f"{path}: index format {manifest.get('format')!r}, this version reads {FORMAT_VERSION}")
        return manifest

    def _check_model(self) -> None:
        """An index only makes sense with the model that embedded it."""
        if self.manifest is None:
            return
        built_with, configured = self.manifest["embedding_model"], self.settings.embedding.model
        if built_with != configured:
            raise IndexError(
                f"{self.directory}/ was built with embedding model {built_with!r} "
                f"(dimension {self.manifest['dimension']}), but the configured model is {configured!r}. "
                "Use that model (RAG_EMBEDDING_MODEL) or a new --index directory."
            )

    @cached_property
    def embedder(self) -> Embedder:
        """The embedding model (loaded on first use)."""
        return Embedder(self.settings.embedding)

    @cached_property
    def chunker(self) -> Chunker:
        """The chunker, with the settings the index was created with."""
        recorded = (self.manifest or {}).get("chunking", {})
        chunking = self.settings.chunking
        return Chunker(
            max_tokens=recorded.get("max_tokens", chunking.max_tokens),
            min_tokens=recorded.get("min_tokens", chunking.min_tokens),
            fits=self.embedder.fits,
            embed_title=recorded.get("embed_title", self.settings.embedding.embed_title),
        )

    @cached_property
    def dimension(self) -> int:
        """Vector length, from the manifest when the index exists (no model load needed)."""
        return int(self.manifest["dimension"]) if self.manifest else self.embedder.dimension

    @cached_property
    def vectors(self) -> FaissStore:
        """The FAISS store, reconciled with the metadata store."""
        path = self.directory / VECTORS
        store = None
        if path.is_file():
            try:
                store = FaissStore.load(path, self.dimension, self.settings.store)
            except (RuntimeError, ValueError):
                store = None  # damaged or foreign file: rebuilt from SQLite below
        store = store or FaissStore(self.dimension, self.settings.store)
        truth, cached = self.metadata.chunk_ids(), store.all_ids()
        missing = np.setdiff1d(truth, cached, assume_unique=True)
        extra = np.setdiff1d(cached, truth, assume_unique=True)
        if len(extra):
            store.remove(extra)
        if len(missing):
            store.add(missing, self.metadata.vectors(missing, self.dimension))
        if len(missing) or len(extra):
            self._vectors_dirty = True
        return store

    @cached_property
    def bm25(self) -> BM25Index:
        """The BM25 index, rebuilt when it does not cover exactly the stored chunks."""
        directory = self.directory / BM25_DIR
        try:
            index = BM25Index.load(directory)
        except (OSError, ValueError, KeyError):
            index = None
        if index is None or not np.array_equal(index.chunk_ids, self.metadata.chunk_ids()):
            index = self._build_bm25()
            self._bm25_stale = True  # built, not yet saved
        return index

    def _build_bm25(self) -> BM25Index:
        ids, texts = [], []
        for chunk_id, title, text in self.metadata.chunk_texts():
            ids.append(chunk_id)
            texts.append(self.chunker.embedding_text(title, text))
        return BM25Index.build(ids, texts)

    # -- writing ------------------------------------------------------------------------------
    def add_documents(self, documents: list[Document]) -> BatchResult:
        """Store new and changed documents (one transaction); unchanged ones cost nothing."""
        self._require_writable()
        result = BatchResult()
        latest: dict[str, Document] = {}
        for document in documents:  # within a batch, a later record with the same id wins
            latest[document.doc_id] = document
        digests = {doc_id: document.content_hash for doc_id, document in latest.items()}
        stored = self.metadata.content_hashes(latest)
        # content hash -> the document that holds that content: stored ones, then this batch's.
        holder = self.metadata.docs_with_hashes(digests.values())
        to_write: list[tuple[Document, list[Chunk]]] = []
        for doc_id, document in latest.items():
            digest = digests[doc_id]
            if stored.get(doc_id) == digest:
                result.unchanged.append(doc_id)
            elif holder.get(digest, doc_id) != doc_id:
                result.duplicates.append(holder[digest])
            else:
                (result.replaced if doc_id in stored else result.added).append(doc_id)
                to_write.append((document, self.chunker.run(document)))
                holder[digest] = doc_id
        if not to_write:
            return result
        texts = [self.chunker.embedding_text(c.title, c.text) for _, chunks in to_write for c in chunks]
        vectors = self.embedder.encode(texts)
        self._ensure_manifest()
        store = self.vectors  # reconcile before this batch changes SQLite
        with self.metadata.transaction():
            _, old_ids = self.metadata.delete_documents(result.replaced)
            new_ids, offset = [], 0
            for document, chunks in to_write:
                new_ids += self.metadata.insert_document(document, chunks, vectors[offset:offset + len(chunks)])
                offset += len(chunks)
        store.remove(old_ids)
        store.add(np.asarray(new_ids, dtype=np.int64), vectors)
        self._vectors_dirty = self._bm25_stale = True
        result.chunks = len(texts)
        result.tokens = sum(c.n_tokens for _, chunks in to_write for c in chunks)
        return result

    def create_empty(self) -> None:
        """Write a new index's manifest before any document, so it can be opened read-only."""
        self._require_writable()
        self._ensure_manifest()

    def delete_documents(self, doc_ids: list[str]) -> list[str]:
        """Remove documents from every structure; returns the ids that existed."""
        self._require_writable()
        store = self.vectors
        with self.metadata.transaction():
            deleted, chunk_ids = self.metadata.delete_documents(doc_ids)
        store.remove(chunk_ids)
        if deleted:
            self._vectors_dirty = self._bm25_stale = True
        return deleted

    def checkpoint(self, lexical: bool = True) -> None:
        """Save FAISS (and BM25 unless `lexical` is False) if they changed, then the manifest.

        A long ingest checkpoints without BM25: rebuilding it is the costly part and it is rebuilt
        from SQLite anyway if the process dies before the final checkpoint.
        """
        self._require_writable()
        if self._vectors_dirty or "vectors" in self.__dict__ and not (self.directory / VECTORS).exists():
            self.vectors.save(self.directory / VECTORS)
            self._vectors_dirty = False
        if self._bm25_stale and lexical:
            self.__dict__["bm25"] = self._build_bm25()
            self.bm25.save(self.directory / BM25_DIR)
            self._bm25_stale = False
        if self.manifest is not None:
            self._write_manifest()

    def close(self) -> None:
        """Checkpoint (when writable) and release the database and the lock."""
        if self.writable:
            self.checkpoint()
        self.metadata.close()
        if self._lock_handle is not None:
            self._lock_handle.close()
            self._lock_handle = None

    def __enter__(self) -> "NewsIndex":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def _require_writable(self) -> None:
        if not self.writable:
            raise IndexError("this index was opened read-only")

    def _ensure_manifest(self) -> None:
        """Create the manifest on the first write of a new index."""
        if self.manifest is not None:
            return
        now = datetime.now(timezone.utc).isoformat(timespec="seconds")
        self.manifest = {
            "format": FORMAT_VERSION,
            "embedding_model": self.settings.embedding.model,
            "dimension": self.embedder.dimension,
            "embedding_max_seq_length": self.embedder.max_tokens,
            "chunking": {
                "max_tokens": self.chunker.max_tokens,
                "min_tokens": self.chunker.min_tokens,
                "tokenizer": "tiktoken cl100k_base",
                "embed_title": self.chunker.embed_title,
            },
            "created_at": now,
        }
        self._write_manifest()

    def _write_manifest(self) -> None:
        counts = self.metadata.counts()
        self.manifest.update(
            counts={"documents": counts["documents"], "chunks": counts["chunks"], "files": counts["files"]},
            vector_index=self.vectors.kind if "vectors" in self.__dict__ else self.manifest.get("vector_index", "flat"),
            updated_at=datetime.now(timezone.utc).isoformat(timespec="seconds"),
        )
        path = self.directory / MANIFEST
        temporary = path.with_name(MANIFEST + ".tmp")
        temporary.write_text(json.dumps(self.manifest, indent=2) + "\n", encoding="utf-8")
        os.replace(temporary, path)

    # -- reading ------------------------------------------------------------------------------
    def stats(self) -> dict:
        """Counts, model, index type and size on disk."""
        size = sum(p.stat().st_size for p in self.directory.rglob("*") if p.is_file())
        manifest = self.manifest or {}
        return {
            "index": str(self.directory),
            **self.metadata.stats(),
            "embedding_model": manifest.get("embedding_model", self.settings.embedding.model),
            "dimension": manifest.get("dimension"),
            "vector_index": self.vectors.kind,
            "chunking": manifest.get("chunking"),
            "size_bytes": size,
            "created_at": manifest.get("created_at"),
            "updated_at": manifest.get("updated_at"),
        }

