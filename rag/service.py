"""One index shared by a long-running server (the chat UI, the HTTP API): reads and writes from threads.

Queries run on a *snapshot*: a read-only NewsIndex whose SQLite view is pinned and whose FAISS and
BM25 structures are loaded in memory to match it (a Milvus collection is read live instead: ids a
writer has stored there but not yet committed to SQLite are dropped when hits are joined). Writes (uploads, deletes) are serialized and go through a separate writable NewsIndex; when
a write finishes, a fresh snapshot is loaded and swapped in with one assignment. A query therefore
sees the index as it was before the write or as it is after it, never a half-applied batch, and it
keeps being answered while an ingest embeds (the slow part) in another thread.

The LLM of a generator is not thread-safe (llama.cpp holds one context), so each generator streams
under its own lock; the extractive generator needs none.
"""

from __future__ import annotations

import queue
import threading
import time
import weakref
from contextlib import contextmanager
from datetime import date
from pathlib import Path
from typing import Iterable, Iterator

from rag.answer import Answerer
from rag.config import Settings
from rag.embedding import Embedder
from rag.errors import ErrorKind, RagError
from rag.generate import Generator, available_generators, load_generator
from rag.grounding import GroundingChecker
from rag.index import NewsIndex
from rag.indexdir import MANIFEST
from rag.ingest import FieldMap
from rag.ingest.pipeline import IngestPipeline, IngestReport
from rag.prompt import PromptSentence
from rag.retrieve import Retriever
from rag.types import Document, Hit, SearchFilters


RELEASE_AFTER_SECONDS = 300  # a request still holding a replaced snapshot after this loses its reads
EXTERNAL_CHECK_SECONDS = 5.0


class BackendUnavailableError(RagError):
    """A request named a generator this server is not configured to run."""


class BusyError(RagError):
    """The generator stayed busy with other answers for longer than server.busy_timeout_seconds."""

    kind = ErrorKind.BUSY

    def __init__(self, seconds: float):
        super().__init__(f"the language model is busy with other answers (waited {seconds:g} s); retry shortly")
        self.retry_after = max(1, int(seconds))


class LockedGenerator:
    """A generator that runs one answer at a time (one llama.cpp context), safely for abandoned readers.

    The model runs in a worker thread that holds the lock and puts pieces on a queue; the caller reads
    the queue. So the lock never waits on a reader: a client that stops reading (a closed SSE stream)
    cancels the generation when its iterator is closed, and even one that is never closed only costs
    the rest of one bounded generation (llm.max_answer_tokens). Waiting for the lock is bounded too
    (server.busy_timeout_seconds), after which BusyError says the model is busy.
    """

    def __init__(self, generator: Generator, wait_seconds: float = 30.0):
        self.generator = generator
        self.lock = threading.Lock()
        self.wait_seconds = wait_seconds

    def __getattr__(self, name: str):  # backend, model, quotes, llm...: as the wrapped generator's
        return getattr(self.generator, name)

    def stream(self, question: str, sentences: list[PromptSentence]) -> Iterator[str]:
        if not self.lock.acquire(timeout=self.wait_seconds):
            raise BusyError(self.wait_seconds)
        pieces: queue.Queue = queue.Queue()
        cancelled = threading.Event()

        def work() -> None:
            try:
                for piece in self.generator.stream(question, sentences):
                    if cancelled.is_set():
                        break
                    pieces.put(("piece", piece))
                pieces.put(("end", None))
            except BaseException as exc:  # handed to the reader, raised there
                pieces.put(("error", exc))
            finally:
                self.lock.release()

        threading.Thread(target=work, name="llm-generation", daemon=True).start()
        try:
            while True:
                kind, value = pieces.get()
                if kind == "piece":
                    yield value
                elif kind == "error":
                    raise value
                else:
                    return
        finally:
            cancelled.set()  # the reader is gone or done: stop generating at the next piece


class DocumentCatalog:
    """The corpus as the front ends see it, read from the current snapshot: pages of documents, one
    document, counts, sources; deletion goes through the service's writer."""

    def __init__(self, service: "IndexService"):
        self._service = service

    def page(self, offset: int = 0, limit: int = 50, query: str = "", source: str = "", since: str = "",
             until: str = "") -> tuple[list[dict], int]:
        """One page of documents, newest first, and how many match in all."""
        return self._service.index.metadata.list_documents(offset=offset, limit=limit, query=query, source=source,
                                                           since=since, until=until)

    def get(self, doc_id: str) -> dict | None:
        """A document with its full text, or None."""
        return self._service.index.metadata.get_document(doc_id)

    def counts(self) -> dict[str, int]:
        """Documents, chunks and files."""
        return self._service.index.counts()

    def sources(self) -> list[str]:
        """The most frequent sources, most frequent first."""
        return [name for name in self._service.index.metadata.stats()["top_sources"] if name]

    def delete(self, doc_ids: list[str]) -> list[str]:
        """Delete documents; the ids that existed."""
        return self._service.delete(doc_ids)


class IndexService:
    """Thread-safe search, answers, ingestion and deletion over one index directory."""

    def __init__(self, settings: Settings, embedder: Embedder | None = None):
        self.settings = settings
        self.started_at = time.time()
        self.embedder = embedder or Embedder(settings.embedding)
        self._write_lock = threading.Lock()
        self._generators_lock = threading.Lock()
        self._generators: dict[str, Generator] = {}
        self._watcher = None
        self.checker = GroundingChecker.from_settings(self.embedder, settings)
        if not (Path(settings.index_dir) / MANIFEST).is_file():
            with self._writer() as index:  # an empty index, so the UI/API can start before any ingest
                index.create_empty()
        self._refresh_lock = threading.Lock()
        self._retired: list[tuple[float, weakref.finalize]] = []  # replaced snapshots not yet collected
        self._checked_at = time.monotonic()
        self._loaded_mtime = self._manifest_mtime()
        self._snapshot = self._load_snapshot()
        self.documents = DocumentCatalog(self)

    # -- reading ------------------------------------------------------------------------------
    @property
    def index(self) -> NewsIndex:
        """The current read-only snapshot. Hold on to it for the length of one request.

        Another process writing the same directory (`rag ingest` beside a running server) is picked
        up too: its checkpoints rewrite the manifest, which is looked at every few seconds.
        """
        now = time.monotonic()
        if now - self._checked_at > EXTERNAL_CHECK_SECONDS:
            self._checked_at = now
            if self._manifest_mtime() != self._loaded_mtime and not self._write_lock.locked():
                with self._refresh_lock:
                    if self._manifest_mtime() != self._loaded_mtime:
                        self._refresh()
        return self._snapshot

    def search(self, query: str, k: int | None = None, filters: SearchFilters | None = None,
               favour_recent: bool = False, as_of: str | date | None = None) -> list[Hit]:
        """Hybrid search on the current snapshot, asked as of `as_of` (default today)."""
        return Retriever(self.index, self.settings.retrieval).run(query, k=k, filters=filters, favour_recent=favour_recent,
                                                                  as_of=as_of)

    def timeline(self, query: str, k: int | None = None, filters: SearchFilters | None = None,
                 as_of: str | date | None = None):
        """The articles about `query` by date (rag.timeline), on the current snapshot."""
        from rag.timeline import TimelineBuilder

        return TimelineBuilder(self.index, self.checker).run(query, k=k, filters=filters, as_of=as_of)

    @property
    def watcher(self):
        """The watched feeds and folders of this index (rag.watch), created on first use."""
        with self._generators_lock:
            if self._watcher is None:
                from rag.watch import Watcher

                self._watcher = Watcher(self)
            return self._watcher

    def answerer(self, backend: str | None = None) -> Answerer:
        """An Answerer over the current snapshot, with a shared (loaded once) generator."""
        return Answerer(self.index, self.settings, generator=self.generator(backend), checker=self.checker)

    def generator(self, backend: str | None = None) -> Generator:
        """The generator for a backend, loaded on first use and kept."""
        backend = backend or self.settings.llm.backend
        available = self.available_backends()
        if backend not in available:  # a client may not pick a backend this server was not set up for
            raise BackendUnavailableError(f"LLM backend {backend!r} is not available on this server; "
                                          f"choose one of {', '.join(available)}")
        with self._generators_lock:
            if backend not in self._generators:
                generator = load_generator(self.settings, backend)
                self._generators[backend] = (generator if generator.quotes else
                                             LockedGenerator(generator, self.settings.server.busy_timeout_seconds))
            return self._generators[backend]

    def available_backends(self) -> list[str]:
        """Generators this configuration can run (rag.generate.available_generators)."""
        return available_generators(self.settings)

    # -- writing ------------------------------------------------------------------------------
    def ingest(self, paths: Iterable[str | Path], fields: FieldMap | None = None) -> IngestReport:
        """Ingest files (serialized with other writes); the new snapshot is live when this returns."""
        with self._writer() as index:
            report = IngestPipeline(index, fields, progress=False).run(paths)
        self._refresh()
        return report

    def add_documents(self, documents: list[Document]) -> IngestReport:
        """Store documents given as records (not files); same reporting as a file ingest."""
        with self._writer() as index:
            report = IngestPipeline(index, progress=False).add_records(documents)
        self._refresh()
        return report

    def delete(self, doc_ids: list[str]) -> list[str]:
        """Delete documents; returns the ids that existed."""
        with self._writer() as index:
            deleted = index.delete_documents(doc_ids)
        if deleted:
            self._refresh()
        return deleted

    @contextmanager
    def _writer(self) -> Iterator[NewsIndex]:
        """The writable index, one writer at a time; closed (checkpointed) on the way out."""
        with self._write_lock:
            index = NewsIndex(self.settings, writable=True, create=True, embedder=self.embedder)
            try:
                yield index
            finally:
                index.close()

    def _load_snapshot(self) -> NewsIndex:
        snapshot = NewsIndex(self.settings, embedder=self.embedder)
        # SQLite reads are pinned to this moment, and FAISS/BM25 are reconciled with exactly that state,
        # so every read of the snapshot agrees even while a writer commits batches.
        snapshot.metadata.pin()
        snapshot.warm()  # load the vectors and BM25 now, not in the first query after the swap
        return snapshot

    def _manifest_mtime(self) -> float:
        try:
            return (Path(self.settings.index_dir) / MANIFEST).stat().st_mtime
        except OSError:
            return 0.0

    def _refresh(self) -> None:
        self._loaded_mtime = self._manifest_mtime()  # before loading: a write during the load is seen next time
        old, self._snapshot = self._snapshot, self._load_snapshot()
        self._retire(old)

    def _retire(self, snapshot: NewsIndex) -> None:
        """Let a replaced snapshot go as soon as the last request reading it lets go.

        Requests in flight hold their own reference to it. When the last one drops it, its read
        transaction (which holds back WAL checkpoints) and its store client (a Milvus connection) are
        closed and its vectors and BM25 freed. Keeping it for a fixed time instead made memory grow
        with the write rate: a server taking an upload every few seconds held a hundred snapshots.
        One still held RELEASE_AFTER_SECONDS later (a stream left open) is closed at the next swap.
        """
        now = time.monotonic()
        for deadline, close in self._retired:
            if deadline < now:
                close()  # a finalizer runs once: a no-op when the snapshot is already collected
        self._retired = [(deadline, close) for deadline, close in self._retired if close.alive]
        close = weakref.finalize(snapshot, NewsIndex.close_parts, snapshot.metadata, snapshot.__dict__.get("vectors"))
        self._retired.append((now + RELEASE_AFTER_SECONDS, close))
