"""The ingestion run: files -> documents -> index, in committed batches, with progress and a report.

The encoder is the slow part, so it never waits on the rest: while one batch is encoded (in a worker
thread; the runtimes release the GIL), the next is read, parsed and chunked and the one before is
written to SQLite and the vector store. A file is recorded as ingested only once its last batch is
written, so a killed ingest still resumes where it stopped.

An unchanged file (same bytes as when last ingested whole) is skipped without parsing; a changed
file's documents are compared one by one, so only new or changed ones are embedded, and documents it
no longer contains are removed. Bad files and records are reported and skipped; the rest goes in.
"""

from __future__ import annotations

import sys
import time
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterable, Iterator

import numpy as np

from rag.index import BatchPlan, BatchResult, NewsIndex
from rag.ingest import FieldMap, iter_files, load_file, oversized, parse
from rag.ingest.base import ReadItem
from rag.types import Chunk, Document, IngestIssue

# The encoder starts on a batch this small, and each batch after doubles up to store.commit_every_docs:
# until the first batch is read and chunked the encoder has nothing to do, so a first batch of 128
# long articles kept it idle for most of a second.
FIRST_BATCH_DOCS = 4


@dataclass
class PreparedDocument:
    """A document already chunked and embedded elsewhere (a Ray worker), ready to store."""

    document: Document
    chunks: list[Chunk]
    vectors: np.ndarray


@dataclass
class IngestReport:
    """Totals of one run, and every problem met."""

    files: int = 0
    files_unchanged: int = 0
    added: int = 0
    replaced: int = 0
    unchanged: int = 0
    duplicates: int = 0
    removed: int = 0
    chunks: int = 0
    tokens: int = 0
    seconds: float = 0.0
    flagged: int = 0  # sentences addressed to an AI: stored, never used as evidence
    issues: list[IngestIssue] = field(default_factory=list)

    @property
    def failed(self) -> int:
        """Files and records that could not be ingested."""
        return len(self.issues)

    def merge(self, other: "IngestReport") -> None:
        """Fold another run's report in (one upload's files into the request's total)."""
        for name in ("files", "files_unchanged", "added", "replaced", "unchanged", "duplicates", "removed", "chunks",
                     "tokens", "flagged", "seconds"):
            setattr(self, name, getattr(self, name) + getattr(other, name))
        self.issues += other.issues

    def add(self, batch: BatchResult) -> None:
        """Fold one batch's result in."""
        self.added += len(batch.added)
        self.replaced += len(batch.replaced)
        self.unchanged += len(batch.unchanged)
        self.duplicates += len(batch.duplicates)
        self.chunks += batch.chunks
        self.tokens += batch.tokens
        self.flagged += batch.flagged

    def to_json(self) -> dict:
        """Machine-readable form (the API's per-file report uses it too)."""
        return {
            "files": self.files,
            "files_unchanged": self.files_unchanged,
            "added": self.added,
            "replaced": self.replaced,
            "unchanged": self.unchanged,
            "duplicates": self.duplicates,
            "removed": self.removed,
            "failed": self.failed,
            "chunks": self.chunks,
            "tokens": self.tokens,
            "flagged": self.flagged,
            "seconds": round(self.seconds, 3),
            "issues": [{"path": i.path, "line": i.line, "message": i.message} for i in self.issues],
        }

    def summary(self) -> str:
        """One human line."""
        rate = self.chunks / self.seconds if self.seconds else 0.0
        return (
            f"{self.added} added, {self.unchanged + self.duplicates} unchanged, {self.replaced} replaced, "
            f"{self.removed} removed, {self.failed} failed; {self.chunks} chunks embedded "
            f"({self.tokens} tokens) in {self.seconds:.1f} s ({rate:.1f} chunks/s); {self.files} files"
            + (f"; {self.flagged} sentences addressed to an AI flagged (kept, never used as evidence)" if self.flagged else "")
        )


@dataclass
class InFlight:
    """A batch being encoded, and what must wait until it is written."""

    plan: BatchPlan
    vectors: Future
    after_write: list[Callable[[], None]] = field(default_factory=list)


class IngestPipeline:
    """Reads files into an index opened for writing."""

    label = "ingest"  # the progress bar's name

    def __init__(self, index: NewsIndex, fields: FieldMap | None = None, progress: bool | None = None):
        self.index = index
        self.fields = fields or FieldMap()
        self.progress = sys.stderr.isatty() if progress is None else progress
        self.batch_size = index.settings.store.commit_every_docs
        self._commits = 0  # batches started in this run (they ramp up to batch_size)
        self.checkpoint_seconds = index.settings.store.checkpoint_seconds
        self._last_checkpoint = 0.0
        self._encoding: ThreadPoolExecutor | None = None  # the worker thread of one run (_encoder)
        self._in_flight: InFlight | None = None

    def run(self, paths: Iterable[str | Path]) -> IngestReport:
        """Ingest every file under `paths`; the index is checkpointed at the end."""
        from tqdm import tqdm

        report = IngestReport()
        started = self._last_checkpoint = time.perf_counter()
        self._commits = 0
        bar = tqdm(unit="doc", desc=self.label, disable=not self.progress, file=sys.stderr, dynamic_ncols=True)
        try:
            with self._encoder():
                self._ingest_all(paths, report, bar, started)
                self._write_in_flight(report, bar, started)
        finally:
            bar.close()
            self.index.checkpoint()
            report.seconds = time.perf_counter() - started
        return report

    def add_records(self, documents: Iterable[Document]) -> IngestReport:
        """Store documents given as records, not files (the API's JSON, evaluation sets): the same
        batches, length bound and checkpoints as a file's documents, with no file recorded."""
        report = IngestReport()
        started = self._last_checkpoint = time.perf_counter()
        self._commits = 0
        limit = self.index.settings.ingest.max_document_chars
        batch: list[Document] = []
        try:
            with self._encoder():
                for document in documents:
                    if len(document.text) > limit:
                        report.issues.append(oversized(document, limit))
                        continue
                    batch.append(document)
                    if len(batch) >= self._batch_limit():
                        self._commit(batch, report, None, started)
                        batch = []
                self._commit(batch, report, None, started)
                self._write_in_flight(report, None, started)
        finally:
            self.index.checkpoint()
            report.seconds = time.perf_counter() - started
        return report

    def _ingest_all(self, paths: Iterable[str | Path], report: IngestReport, bar, started: float) -> None:
        """Each file in turn, in this process."""
        for path in iter_files(paths):
            report.files += 1
            self._ingest_file(path, report, bar, started)

    def _ingest_file(self, path: Path, report: IngestReport, bar, started: float) -> None:
        key = str(path.resolve())
        try:
            source = load_file(path, self.index.settings.ingest.max_file_bytes)
        except ValueError as exc:
            report.issues.append(IngestIssue(str(path), str(exc)))
            return
        if self._unchanged(key, source.sha256, report, bar):
            return
        self._ingest_items(key, source.sha256, parse(source, self.fields, self.index.settings.ingest.max_document_chars),
                           report, bar, started)

    def _unchanged(self, key: str, sha256: str, report: IngestReport, bar) -> bool:
        """Count a file whose bytes were ingested whole before; whether it was one."""
        previous = self.index.metadata.file_record(key)
        if not (previous and previous[0] == sha256):
            return False
        report.files_unchanged += 1
        report.unchanged += len(previous[1])
        bar.update(len(previous[1]))
        return True

    def _ingest_items(self, key: str, sha256: str, items: Iterable[ReadItem | PreparedDocument],
                      report: IngestReport, bar, started: float) -> None:
        """Commit one file's documents in batches, record the file, and drop what it no longer holds."""
        previous = self.index.metadata.file_record(key)
        if previous:  # its counts below are this file's alone: the last file's batch is written first
            self._write_in_flight(report, bar, started)
        doc_ids: list[str] = []
        issues_before, added_before = len(report.issues), report.added
        batch: list[Document] = []
        prepared: dict = {}
        for item in items:
            if isinstance(item, IngestIssue):
                report.issues.append(item)
                continue
            if isinstance(item, PreparedDocument):
                prepared[item.document.doc_id] = (item.chunks, item.vectors)
                item = item.document
            batch.append(item)
            if len(batch) >= self._batch_limit():
                doc_ids += self._commit(batch, report, bar, started, prepared)
                batch, prepared = [], {}
        doc_ids += self._commit(batch, report, bar, started, prepared)
        # A file read with problems keeps no hash, so a re-run parses it again and re-reports them.
        clean = len(report.issues) == issues_before

        def record() -> None:
            with self.index.metadata.transaction():
                self.index.metadata.record_file(key, sha256 if clean else "", doc_ids)

        if not previous:  # recorded once its last batch is written; the next file is read meanwhile
            self._after_write(record)
            return
        # A file ingested before may have dropped documents: remove them with every batch written, so
        # the next file's batches are planned against what the index really holds.
        self._write_in_flight(report, bar, started)
        record()
        removed = self._remove_stale(set(previous[1]) - set(doc_ids))
        # A document that changed and got a new content-hash id still replaced its old version.
        pairs = min(removed, report.added - added_before)
        report.added, report.replaced, report.removed = (
            report.added - pairs, report.replaced + pairs, report.removed + removed - pairs
        )

    # -- the overlapped batches ------------------------------------------------------------------
    @contextmanager
    def _encoder(self) -> Iterator[None]:
        """One worker thread that encodes batches; a batch still in flight on the way out is dropped
        (it was never committed: the next run embeds it again)."""
        self._encoding = ThreadPoolExecutor(max_workers=1, thread_name_prefix="rag-encode")
        try:
            yield
        finally:
            self._in_flight = None
            self._encoding.shutdown(wait=True, cancel_futures=True)

    def _batch_limit(self) -> int:
        """Documents in the next batch: small first, so that the encoder starts at once, then doubling."""
        return min(self.batch_size, FIRST_BATCH_DOCS << min(self._commits, 16))

    def _commit(self, batch: list[Document], report: IngestReport, bar, started: float, prepared: dict | None = None) -> list[str]:
        """Plan a batch and start encoding it, then write the batch before it; its doc ids."""
        if not batch:
            return []
        self._commits += 1
        earlier = [self._in_flight.plan] if self._in_flight else []
        plan = self.index.plan(batch, prepared, pending=earlier)
        vectors = self._encoding.submit(self.index.embed, plan)
        self._write_in_flight(report, bar, started)
        self._in_flight = InFlight(plan, vectors)
        return plan.result.doc_ids

    def _after_write(self, action: Callable[[], None]) -> None:
        """Run `action` once the batch in flight is written (now, when there is none)."""
        if self._in_flight is None:
            action()
        else:
            self._in_flight.after_write.append(action)

    def _write_in_flight(self, report: IngestReport, bar, started: float) -> None:
        """Wait for the batch in flight to be encoded and write it."""
        batch, self._in_flight = self._in_flight, None
        if batch is None:
            return
        result = self.index.write(batch.plan, batch.vectors.result())
        report.add(result)
        for action in batch.after_write:
            action()
        # Checked per batch, not per file: one large file (a 19k-article .jsonl.gz) is a long ingest too.
        if time.perf_counter() - self._last_checkpoint > self.checkpoint_seconds:
            self.index.checkpoint(lexical=False)
            self._last_checkpoint = time.perf_counter()
        if bar is not None:
            bar.update(len(result.doc_ids))
            elapsed = max(time.perf_counter() - started, 1e-9)
            bar.set_postfix_str(f"{report.chunks / elapsed:.1f} chunks/s", refresh=False)

    def _remove_stale(self, gone: set[str]) -> int:
        """Delete documents a changed file no longer holds, unless another file still does."""
        still_claimed = self.index.metadata.files_referencing(gone)
        return len(self.index.delete_documents(sorted(gone - still_claimed)))
