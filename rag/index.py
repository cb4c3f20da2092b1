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

NewsIndex ties the parts together; each lives in its own module: the manifest and the writer lock in
rag/indexdir.py, the vector stores (chosen by name from rag.store.VECTOR_STORES) and their repair in
rag/store/, BM25 and SQLite in rag/store/, and the search over them in rag/retrieve.py.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path

import numpy as np

from rag.chunking import Chunker
from rag.config import Settings
from rag.embedding import Embedder
from rag.errors import ErrorKind, NewsIndexError
from rag.indexdir import MANIFEST, check_compatible, new_manifest, read_manifest, write_manifest, writer_lock
from rag.injection import instruction_spans
from rag.store import VECTOR_STORES, BM25Index, MetadataStore, VectorStore
from rag.store.base import StoreRecord
from rag.store.bm25 import TokenCache, tokenize
from rag.store.sync import flag_write, reconcile, repair_shared
from rag.types import Chunk, Document

METADATA, BM25_DIR = "metadata.sqlite", "bm25"


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


@dataclass
class BatchPlan:
    """A batch's decisions and chunks, made before its vectors exist (NewsIndex.plan)."""

    result: BatchResult
    to_write: list[tuple[Document, list[Chunk]]]  # new and changed documents with their chunks
    texts: list[str]  # what the encoder sees, one per chunk of to_write, in order
    prepared: dict[str, tuple[list[Chunk], np.ndarray]]  # documents chunked and encoded elsewhere (Ray)
    # Sentences addressed to an AI, per document of to_write (rag.injection). Found while planning,
    # which an ingest overlaps with encoding, not while writing, which waits for the vectors.
    flagged: dict[str, list[tuple[int, int]]] = field(default_factory=dict)


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
                raise NewsIndexError(f"no index at {self.directory}/ (run `rag ingest PATH --index {self.directory}` first)",
                                     ErrorKind.NOT_FOUND)
            self.directory.mkdir(parents=True, exist_ok=True)
        self._lock_handle = writer_lock(self.directory) if writable else None
        self.manifest = read_manifest(self.directory)
        if self.manifest is not None:
            check_compatible(self.manifest, settings, self.directory)
        spec = VECTOR_STORES.get(settings.store.backend)
        if not spec.is_available(settings):  # before anything is written for a new index
            raise NewsIndexError(f"store.backend = {spec.name} needs {spec.requires}", ErrorKind.UNAVAILABLE)
        self.metadata = MetadataStore(self.directory / METADATA)
        self._bm25_stale = False
        self._vectors_dirty = False
        self._lexical_tokens = TokenCache()  # BM25 tokens of the chunks this writer stores

    # -- opening ------------------------------------------------------------------------------
    @cached_property
    def store_type(self) -> type[VectorStore]:
        """The configured vector store's class (rag.store.VECTOR_STORES); its capabilities are class attributes."""
        return VECTOR_STORES.get(self.settings.store.backend).load()

    @property
    def store_description(self) -> dict:
        """Which vector store holds this index's vectors (recorded in the manifest)."""
        return self.store_type.describe(self.directory, self.settings.store)

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
            spans=self.embedder.spans,
            embed_title=recorded.get("embed_title", self.settings.embedding.embed_title),
        )

    @cached_property
    def dimension(self) -> int:
        """Vector length, from the manifest when the index exists (no model load needed)."""
        return int(self.manifest["dimension"]) if self.manifest else self.embedder.dimension

    @cached_property
    def vectors(self) -> VectorStore:
        """The configured vector store, reconciled with the metadata store."""
        store = self.store_type.open(self.directory, self.dimension, self.settings.store, self.index_id)
        if store.shared:  # after a writer died mid-batch; a writer holding the lock repairs, readers skip
            repair_shared(store, self.directory / METADATA, self.dimension, self._store_records,
                          lambda: None if self.writable else writer_lock(self.directory))
        elif reconcile(store, self.metadata, self.dimension, self._store_records):
            self._vectors_dirty = True  # brought up to date from SQLite: save at the next checkpoint
        return store

    @cached_property
    def index_id(self) -> str:
        """This index's identity (recorded in the manifest; Milvus collections carry it too)."""
        return (self.manifest or {}).get("index_id") or f"newsrag-{uuid.uuid4().hex}"

    def _store_records(self, chunk_ids: np.ndarray, metadata: MetadataStore) -> list[StoreRecord] | None:
        """Date, source and lexical text of stored chunks, for stores that keep them."""
        if not self.store_type.keeps_records:
            return None
        rows = metadata.chunks_by_id(chunk_ids)
        return [
            StoreRecord(rows[int(i)].date, rows[int(i)].source, self.chunker.embedding_text(rows[int(i)].title, rows[int(i)].text))
            for i in chunk_ids
        ]

    @property
    def lexical_in_store(self) -> bool:
        """Whether BM25 runs inside the vector store rather than from the local bm25/ files."""
        return self.store_type.text_search and self.settings.store.lexical in ("auto", "store")

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
        """Load the vector store, the lexical index and (for a pinned snapshot) the chunk dates and
        sources that filters read, now rather than in the first query."""
        self.vectors
        if not self.lexical_in_store:
            self.bm25
        self.metadata.chunk_documents()

    def _build_bm25(self) -> BM25Index:
        """BM25 over every stored chunk; chunks this writer stored were tokenized as they were written."""
        ids, tokens, unknown = [], [], []  # unknown: (position, text) of chunks to tokenize now
        for chunk_id, title, text in self.metadata.chunk_texts():
            cached = self._lexical_tokens.get(chunk_id)
            if cached is None:
                unknown.append((len(ids), self.chunker.embedding_text(title, text)))
            ids.append(chunk_id)
            tokens.append(cached)
        for (position, _), words in zip(unknown, tokenize([text for _, text in unknown])):
            tokens[position] = words
        return BM25Index.from_tokens(ids, tokens)

    # -- writing ------------------------------------------------------------------------------
    def add_documents(self, documents: list[Document], prepared: dict[str, tuple[list[Chunk], np.ndarray]] | None = None) -> BatchResult:
        """Store new and changed documents (one transaction); unchanged ones cost nothing.

        `prepared` maps doc ids to chunks and vectors computed elsewhere (Ray workers), with this
        index's chunker and model; those documents skip chunking and embedding here.
        """
        plan = self.plan(documents, prepared)
        return self.write(plan, self.embed(plan))

    # add_documents in three steps, so an ingest can read and chunk the next batch and store the last
    # one while this one is encoded (rag.ingest.pipeline). plan and write read and write SQLite: one
    # thread; embed only uses the (locked) encoder.
    def plan(self, documents: list[Document], prepared: dict[str, tuple[list[Chunk], np.ndarray]] | None = None,
             pending: list[BatchPlan] = ()) -> BatchPlan:
        """Decide what each document is (new, changed, unchanged, a duplicate) and chunk those to store.

        `pending` are earlier plans not written yet: their documents count as stored, and the texts
        they replace as gone, so a batch planned ahead decides as it would after them.
        """
        self._require_writable()
        prepared = prepared or {}
        result = BatchResult()
        latest: dict[str, Document] = {}
        for document in documents:  # within a batch, a later record with the same id wins
            latest[document.doc_id] = document
        digests = {doc_id: document.content_hash for doc_id, document in latest.items()}
        stored = self.metadata.content_hashes(latest)
        # content hash -> the document that holds that content: stored ones, then this batch's.
        holder = self.metadata.docs_with_hashes(digests.values())
        claims = {document.doc_id: document.content_hash for earlier in pending for document, _ in earlier.to_write}
        holder = {digest: doc_id for digest, doc_id in holder.items() if claims.get(doc_id, digest) == digest}
        holder.update({digest: doc_id for doc_id, digest in claims.items()})
        stored.update({doc_id: digest for doc_id, digest in claims.items() if doc_id in latest})
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
        texts = [self.chunker.embedding_text(c.title, c.text) for _, chunks in to_write for c in chunks]
        return BatchPlan(result, to_write, texts, {doc.doc_id: prepared[doc.doc_id] for doc, _ in to_write if doc.doc_id in prepared},
                         {doc.doc_id: instruction_spans(doc.text) for doc, _ in to_write})

    def embed(self, plan: BatchPlan) -> np.ndarray:
        """The vectors of a plan's chunks, in order (safe to run beside plan and write)."""
        if not plan.to_write:
            return np.zeros((0, self.dimension), np.float32)
        return self._embed(plan.to_write, plan.texts, plan.prepared)

    def write(self, plan: BatchPlan, vectors: np.ndarray) -> BatchResult:
        """Store a plan's documents, chunks and vectors in one transaction, in the order planned."""
        self._require_writable()
        result, to_write, texts = plan.result, plan.to_write, plan.texts
        if not to_write:
            return result
        self._ensure_manifest()
        store = self.vectors  # reconcile before this batch changes SQLite
        with self.metadata.transaction():
            _, old_ids = self.metadata.delete_documents(result.replaced)
            new_ids, offset = [], 0
            for document, chunks in to_write:
                new_ids += self.metadata.insert_document(document, chunks, vectors[offset:offset + len(chunks)],
                                                         plan.flagged.get(document.doc_id))
                offset += len(chunks)
            flag_write(store, self.metadata, True)
        records = None
        if store.keeps_records:
            owners = [document for document, chunks in to_write for _ in chunks]
            records = [StoreRecord(owner.date, owner.source, text) for owner, text in zip(owners, texts)]
        store.remove(old_ids)
        store.add(np.asarray(new_ids, dtype=np.int64), vectors, records)
        flag_write(store, self.metadata, False)
        if not self.lexical_in_store:
            self._lexical_tokens.add(new_ids, texts)
        self._vectors_dirty = self._bm25_stale = True
        result.chunks = len(texts)
        result.tokens = sum(c.n_tokens for _, chunks in to_write for c in chunks)
        result.flagged = self.metadata.flagged_count(document.doc_id for document, _ in to_write)
        return result

    def _embed(self, to_write: list[tuple[Document, list[Chunk]]], texts: list[str],
               prepared: dict[str, tuple[list[Chunk], np.ndarray]]) -> np.ndarray:
        """Vectors for every chunk of `to_write` in order: prepared ones as given, the rest encoded here
        (from the input ids chunking made, where it did)."""
        if not prepared:
            return self.embedder.encode(texts, token_ids=[c.token_ids for _, chunks in to_write for c in chunks])
        parts, offset, pending = [], 0, []  # pending: (part position, text slice) still to encode
        token_ids = []
        for document, chunks in to_write:
            if document.doc_id in prepared:
                parts.append(np.asarray(prepared[document.doc_id][1], dtype=np.float32).reshape(len(chunks), self.dimension))
            else:
                pending.append((len(parts), texts[offset:offset + len(chunks)]))
                token_ids += [c.token_ids for c in chunks]
                parts.append(None)
            offset += len(chunks)
        if pending:
            encoded = self.embedder.encode([t for _, slice_ in pending for t in slice_], token_ids=token_ids)
            start = 0
            for position, slice_ in pending:
                parts[position] = encoded[start:start + len(slice_)]
                start += len(slice_)
        return np.concatenate(parts) if parts else np.zeros((0, self.dimension), np.float32)

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
            flag_write(store, self.metadata, True)
        store.remove(chunk_ids)
        flag_write(store, self.metadata, False)
        if deleted:
            self._vectors_dirty = self._bm25_stale = True
        return deleted

    def checkpoint(self, lexical: bool = True) -> None:
        """Save FAISS (and BM25 unless `lexical` is False) if they changed, then the manifest.

        A long ingest checkpoints without BM25: rebuilding it is the costly part and it is rebuilt
        from SQLite anyway if the process dies before the final checkpoint.
        """
        self._require_writable()
        never_saved = "vectors" in self.__dict__ and not self.vectors.persisted(self.directory)
        if self._vectors_dirty or never_saved:
            self.vectors.save(self.directory)
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
        self.close_parts(self.metadata, self.__dict__.get("vectors"))
        if self._lock_handle is not None:
            self._lock_handle.close()
            self._lock_handle = None

    @staticmethod
    def close_parts(metadata: MetadataStore, vectors: VectorStore | None) -> None:
        """Close an index's database and vector store, given as parts so that a finalizer can call it
        without keeping the index alive (rag.service retires replaced snapshots this way)."""
        metadata.close()
        if vectors is not None:
            vectors.close()

    def __enter__(self) -> "NewsIndex":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def _require_writable(self) -> None:
        if not self.writable:
            raise NewsIndexError("this index was opened read-only")

    def _ensure_manifest(self) -> None:
        """Create the manifest on the first write of a new index."""
        if self.manifest is not None:
            return
        chunking = {"max_tokens": self.chunker.max_tokens, "min_tokens": self.chunker.min_tokens,
                    "embed_title": self.chunker.embed_title}
        self.manifest = new_manifest(self.index_id, self.settings, self.embedder.dimension, self.embedder.max_tokens,
                                     chunking, self.store_description, self.embedder.runtime)
        self._write_manifest()

    def _write_manifest(self) -> None:
        kind = self.vectors.kind if "vectors" in self.__dict__ else self.manifest.get("vector_index", "flat")
        write_manifest(self.directory, self.manifest, self.metadata.counts(), kind)

    # -- reading ------------------------------------------------------------------------------
    def counts(self) -> dict[str, int]:
        """Documents, chunks and files."""
        return self.metadata.counts()

    def doc_ids_for_source(self, source: str) -> list[str]:
        """The ids of the documents from one source (case-insensitive)."""
        return self.metadata.doc_ids_for_source(source)

    def stats(self) -> dict:
        """Counts, model, index type and size on disk."""
        size = sum(p.stat().st_size for p in self.directory.rglob("*") if p.is_file())
        manifest = self.manifest or {}
        return {
            "index": str(self.directory),
            **self.metadata.stats(),
            "embedding_model": manifest.get("embedding_model", self.settings.embedding.model),
            "embedding_runtime": manifest.get("embedding_runtime", {"backend": "torch", "quantize": "none"}),
            "dimension": manifest.get("dimension"),
            "vector_index": self.vectors.kind,
            "store": self.store_description,
            "lexical": self.settings.store.backend if self.lexical_in_store else "bm25s",
            "chunking": manifest.get("chunking"),
            "size_bytes": size,
            "created_at": manifest.get("created_at"),
            "updated_at": manifest.get("updated_at"),
        }

