"""The index directory: SQLite metadata (the truth), a vector store (FAISS or Milvus) and BM25, a manifest.

Layout of `index/`:
    manifest.json     embedding model, dimension, chunker settings, vector store, counts, times
    metadata.sqlite   documents, chunks with their vectors, ingested files (WAL, one transaction a batch)
    vectors.faiss     the vector index over chunk ids (store.backend = faiss)
    milvus.db/        the milvus-lite collection (store.backend = milvus with no server URI)
    bm25/             the BM25 index and the chunk ids it covers (unless Milvus does BM25)
    .lock             held by the one process allowed to write

Every write commits to SQLite first. The vector store and BM25 follow: FAISS and BM25 files are saved
at checkpoints, Milvus persists each write (a flag in SQLite marks a batch not yet in Milvus). When
the process dies in between, the next open finds the store's id set (or the flag) differs from
SQLite's and repairs it from the stored vectors and texts, so a killed ingest loses nothing that was
committed.
"""

from __future__ import annotations

import fcntl
import json
import os
import uuid
from dataclasses import dataclass, field
from datetime import datetime, timezone
from functools import cached_property
from pathlib import Path

import numpy as np

from rag.chunking import Chunker
from rag.config import Settings
from rag.embedding import Embedder
from rag.store import BM25Index, FaissStore, MetadataStore, VectorStore
from rag.store.base import StoreRecord
from rag.store.milvus import require_pymilvus
from rag.types import Chunk, Document

FORMAT_VERSION = 1
MANIFEST, METADATA, VECTORS, BM25_DIR, LOCK = "manifest.json", "metadata.sqlite", "vectors.faiss", "bm25", ".lock"
MILVUS_LITE = "milvus.db"
REPAIR_BATCH = 5000  # chunks re-added per step when a vector store is repaired from SQLite
STORE_PENDING = "store_write_pending"  # metadata state: a batch is in SQLite but maybe not in Milvus yet


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
    flagged: int = 0  # sentences addressed to an AI (rag.injection), kept but never used as evidence

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
        self._check_store()
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

    def _check_store(self) -> None:
        """The vectors live where the index was created; another backend would find none."""
        if self.settings.store.backend == "milvus":
            require_pymilvus()  # before anything is written for a new index
        if self.manifest is None:
            return
        built_with = self.manifest.get("store", {}).get("backend", "faiss")
        if built_with != self.settings.store.backend:
            where = self.manifest.get("store", {}).get("uri")
            hint = f" --milvus-uri {where}" if where else ""
            raise IndexError(
                f"{self.directory}/ keeps its vectors in {built_with}, but store.backend is "
                f"{self.settings.store.backend!r}: pass --store {built_with}{hint} (or RAG_STORE_BACKEND)"
            )

    @property
    def milvus_uri(self) -> str:
        """The configured Milvus URI, or the milvus-lite folder inside the index directory."""
        return self.settings.store.milvus_uri or str(self.directory / MILVUS_LITE)

    @property
    def store_description(self) -> dict:
        """Which vector store holds this index's vectors (recorded in the manifest)."""
        if self.settings.store.backend == "milvus":
            return {"backend": "milvus", "uri": self.milvus_uri, "collection": self.settings.store.milvus_collection}
        return {"backend": "faiss", "file": VECTORS}

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
    def vectors(self) -> VectorStore:
        """The configured vector store, reconciled with the metadata store."""
        if self.settings.store.backend != "milvus":
            store = self._open_faiss()
            if self._reconcile(store, self.metadata):
                self._vectors_dirty = True
            return store
        store = self._open_milvus()
        self._repair_shared_store(store)
        return store

    def _reconcile(self, store: VectorStore, metadata: MetadataStore) -> bool:
        """Make the store hold exactly the chunk ids `metadata` holds; whether anything changed."""
        truth, cached = metadata.chunk_ids(), store.all_ids()
        missing = np.setdiff1d(truth, cached, assume_unique=True)
        extra = np.setdiff1d(cached, truth, assume_unique=True)
        if len(extra):
            store.remove(extra)
        for start in range(0, len(missing), REPAIR_BATCH):
            ids = missing[start:start + REPAIR_BATCH]
            store.add(ids, metadata.vectors(ids, self.dimension), self._store_records(ids, metadata))
        return bool(len(missing) or len(extra))

    def _repair_shared_store(self, store: VectorStore) -> None:
        """Bring a shared, live store (Milvus) in step with SQLite after a writer died mid-batch.

        Writers flag STORE_PENDING in the same transaction as a batch and clear it once the store
        has the batch, so a clear flag and equal counts mean nothing to do (no scan of the ids).
        Otherwise the repair runs under the writer lock, with a fresh connection that sees every
        commit: a reader's view may be pinned to an older moment, and "repairing" from it would
        delete a live writer's new vectors. A reader skips the repair while a writer holds the lock
        (the writer repairs when it opens).
        """
        def out_of_step(metadata: MetadataStore) -> bool:
            return metadata.get_state(STORE_PENDING) == "1" or store.count() != metadata.counts()["chunks"]

        fresh = MetadataStore(self.directory / METADATA)
        try:
            if not out_of_step(fresh):
                return
            try:
                handle = None if self.writable else self._lock()
            except (IndexError, OSError):
                return  # a writer holds the lock (and repairs), or the folder is read-only to us
            try:
                if out_of_step(fresh):
                    self._reconcile(store, fresh)
                    fresh.set_state(STORE_PENDING, "0")
            finally:
                if handle is not None:
                    handle.close()
        finally:
            fresh.close()

    def _open_faiss(self) -> FaissStore:
        path = self.directory / VECTORS
        if path.is_file():
            try:
                return FaissStore.load(path, self.dimension, self.settings.store)
            except (RuntimeError, ValueError):
                pass  # damaged or foreign file: rebuilt from SQLite by the caller
        return FaissStore(self.dimension, self.settings.store)

    def _open_milvus(self):
        from rag.store.milvus import MilvusStore, MilvusStoreError

        try:
            return MilvusStore(self.milvus_uri, self.dimension, self.settings.store, owner=self.index_id)
        except MilvusStoreError as exc:
            raise IndexError(str(exc)) from exc

    @cached_property
    def index_id(self) -> str:
        """This index's identity (recorded in the manifest; Milvus collections carry it too)."""
        return (self.manifest or {}).get("index_id") or f"newsrag-{uuid.uuid4().hex}"

    def _store_records(self, chunk_ids: np.ndarray, metadata: MetadataStore) -> list[StoreRecord] | None:
        """Date, source and lexical text of stored chunks, for stores that keep them."""
        if self.settings.store.backend != "milvus":
            return None
        rows = metadata.chunks_by_id(chunk_ids)
        return [
            StoreRecord(rows[int(i)].date, rows[int(i)].source, self.chunker.embedding_text(rows[int(i)].title, rows[int(i)].text))
            for i in chunk_ids
        ]

    @property
    def lexical_in_store(self) -> bool:
        """Whether BM25 runs inside the vector store rather than from the local bm25/ files."""
        lexical = self.settings.store.lexical
        return self.settings.store.backend == "milvus" and lexical in ("auto", "store")

    def candidates(self, vector: np.ndarray, query: str, k: int, filters=None) -> tuple[list[tuple[int, float]], list[tuple[int, float]]]:
        """Top-k (chunk id, cosine) for `vector` and top-k (chunk id, BM25 score) for `query`, among
        the chunks matching `filters` (a SearchFilters or None).

        A store that keeps date and source gets the filters themselves; FAISS and the local BM25 get
        the matching chunk ids, read from SQLite once for both.
        """
        filters = filters if filters is not None and filters.active else None
        store, lexical_in_store = self.vectors, self.lexical_in_store
        allowed = None
        if filters is not None and not (store.filters_natively and lexical_in_store):
            allowed = self.metadata.filtered_chunk_ids(filters.since, filters.until, filters.source)
            if len(allowed) == 0:
                return [], []
        dense = store.search(vector, k, filters if store.filters_natively else allowed)
        lexical = store.search_text(query, k, filters) if lexical_in_store else self.bm25.search(query, k, allowed)
        return dense, lexical

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

    def warm(self) -> None:
        """Load the vector store and the lexical index now rather than in the first query."""
        self.vectors
        if not self.lexical_in_store:
            self.bm25

    def _build_bm25(self) -> BM25Index:
        ids, texts = [], []
        for chunk_id, title, text in self.metadata.chunk_texts():
            ids.append(chunk_id)
            texts.append(self.chunker.embedding_text(title, text))
        return BM25Index.build(ids, texts)

    # -- writing ------------------------------------------------------------------------------
    def add_documents(self, documents: list[Document], prepared: dict[str, tuple[list[Chunk], np.ndarray]] | None = None) -> BatchResult:
        """Store new and changed documents (one transaction); unchanged ones cost nothing.

        `prepared` maps doc ids to chunks and vectors computed elsewhere (Ray workers), with this
        index's chunker and model; those documents skip chunking and embedding here.
        """
        prepared = prepared or {}
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
                chunks = prepared[doc_id][0] if doc_id in prepared else self.chunker.run(document)
                to_write.append((document, chunks))
                holder[digest] = doc_id
        if not to_write:
            return result
        texts = [self.chunker.embedding_text(c.title, c.text) for _, chunks in to_write for c in chunks]
        vectors = self._embed(to_write, texts, prepared)
        self._ensure_manifest()
        store = self.vectors  # reconcile before this batch changes SQLite
        with self.metadata.transaction():
            _, old_ids = self.metadata.delete_documents(result.replaced)
            new_ids, offset = [], 0
            for document, chunks in to_write:
                new_ids += self.metadata.insert_document(document, chunks, vectors[offset:offset + len(chunks)])
                offset += len(chunks)
            self._flag_store_write(store, True)
        records = None
        if store.filters_natively:
            owners = [document for document, chunks in to_write for _ in chunks]
            records = [StoreRecord(owner.date, owner.source, text) for owner, text in zip(owners, texts)]
        store.remove(old_ids)
        store.add(np.asarray(new_ids, dtype=np.int64), vectors, records)
        self._flag_store_write(store, False)
        self._vectors_dirty = self._bm25_stale = True
        result.chunks = len(texts)
        result.tokens = sum(c.n_tokens for _, chunks in to_write for c in chunks)
        result.flagged = self.metadata.flagged_count(document.doc_id for document, _ in to_write)
        return result

    def _embed(self, to_write: list[tuple[Document, list[Chunk]]], texts: list[str],
               prepared: dict[str, tuple[list[Chunk], np.ndarray]]) -> np.ndarray:
        """Vectors for every chunk of `to_write` in order: prepared ones as given, the rest encoded here."""
        if not prepared:
            return self.embedder.encode(texts)
        parts, offset, pending = [], 0, []  # pending: (part position, text slice) still to encode
        for document, chunks in to_write:
            if document.doc_id in prepared:
                parts.append(np.asarray(prepared[document.doc_id][1], dtype=np.float32).reshape(len(chunks), self.dimension))
            else:
                pending.append((len(parts), texts[offset:offset + len(chunks)]))
                parts.append(None)
            offset += len(chunks)
        if pending:
            encoded = self.embedder.encode([t for _, slice_ in pending for t in slice_])
            start = 0
            for position, slice_ in pending:
                parts[position] = encoded[start:start + len(slice_)]
                start += len(slice_)
        return np.concatenate(parts) if parts else np.zeros((0, self.dimension), np.float32)

    def _flag_store_write(self, store: VectorStore, pending: bool) -> None:
        """Mark (in the batch's transaction) or clear (once the store has it) a pending write to a
        live store; FAISS needs no flag, its saved file is compared with SQLite when it loads."""
        if store.filters_natively:
            self.metadata.set_state(STORE_PENDING, "1" if pending else "0")

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
            self._flag_store_write(store, True)
        store.remove(chunk_ids)
        self._flag_store_write(store, False)
        if deleted:
            self._vectors_dirty = self._bm25_stale = True
        return deleted

    def checkpoint(self, lexical: bool = True) -> None:
        """Save FAISS (and BM25 unless `lexical` is False) if they changed, then the manifest.

        A long ingest checkpoints without BM25: rebuilding it is the costly part and it is rebuilt
        from SQLite anyway if the process dies before the final checkpoint.
        """
        self._require_writable()
        faiss_file_missing = self.settings.store.backend == "faiss" and not (self.directory / VECTORS).exists()
        if self._vectors_dirty or "vectors" in self.__dict__ and faiss_file_missing:
            self.vectors.save(self.directory / VECTORS)
            self._vectors_dirty = False
        if self._bm25_stale and lexical and not self.lexical_in_store:
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
        if "vectors" in self.__dict__ and hasattr(self.vectors, "close"):
            self.vectors.close()
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
            "index_id": self.index_id,
            "embedding_model": self.settings.embedding.model,
            "dimension": self.embedder.dimension,
            "embedding_max_seq_length": self.embedder.max_tokens,
            "chunking": {
                "max_tokens": self.chunker.max_tokens,
                "min_tokens": self.chunker.min_tokens,
                "tokenizer": "tiktoken cl100k_base",
                "embed_title": self.chunker.embed_title,
            },
            "store": self.store_description,
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
            "store": self.store_description,
            "lexical": "milvus" if self.lexical_in_store else "bm25s",
            "chunking": manifest.get("chunking"),
            "size_bytes": size,
            "created_at": manifest.get("created_at"),
            "updated_at": manifest.get("updated_at"),
        }

