"""The metadata store (SQLite): documents, chunks with their vectors, ingested files.

It is the index's source of truth. Each batch is one transaction, so a process killed mid-ingest
leaves every completed batch intact; the FAISS and BM25 files are caches rebuilt from it when they
disagree. Chunk ids (integers) are never reused, so an id set identifies index content exactly.
"""

from __future__ import annotations

import json
import sqlite3
import time
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Iterator

import numpy as np

from rag.injection import instruction_spans
from rag.types import Chunk, Document

SCHEMA = """
CREATE TABLE IF NOT EXISTS documents (
    doc_id TEXT PRIMARY KEY,
    content_hash TEXT NOT NULL,
    title TEXT NOT NULL DEFAULT '',
    date TEXT,
    source TEXT NOT NULL DEFAULT '',
    url TEXT NOT NULL DEFAULT '',
    text TEXT NOT NULL,
    origin TEXT NOT NULL DEFAULT '',
    n_chunks INTEGER NOT NULL,
    added_at REAL NOT NULL
);
CREATE INDEX IF NOT EXISTS documents_date ON documents(date);
CREATE INDEX IF NOT EXISTS documents_source ON documents(source);
CREATE INDEX IF NOT EXISTS documents_hash ON documents(content_hash);
CREATE TABLE IF NOT EXISTS chunks (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    chunk_id TEXT NOT NULL UNIQUE,
    doc_id TEXT NOT NULL REFERENCES documents(doc_id) ON DELETE CASCADE,
    ordinal INTEGER NOT NULL,
    start INTEGER NOT NULL,
    end INTEGER NOT NULL,
    n_tokens INTEGER NOT NULL,
    vector BLOB NOT NULL
);
CREATE INDEX IF NOT EXISTS chunks_doc ON chunks(doc_id);
-- Sentences of a document that address an AI (rag.injection): kept and searchable, never evidence.
CREATE TABLE IF NOT EXISTS flagged (
    doc_id TEXT NOT NULL REFERENCES documents(doc_id) ON DELETE CASCADE,
    start INTEGER NOT NULL,
    end INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS flagged_doc ON flagged(doc_id);
CREATE TABLE IF NOT EXISTS state (
    key TEXT PRIMARY KEY,
    value TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS files (
    path TEXT PRIMARY KEY,
    sha256 TEXT NOT NULL,
    doc_ids TEXT NOT NULL,
    ingested_at REAL NOT NULL
);
"""

HIT_COLUMNS = (
    "c.id, c.chunk_id, c.doc_id, d.title, d.date, d.source, d.url,"
    " substr(d.text, c.start + 1, c.end - c.start), c.start, c.end"
)


# SQLite's NOCASE folds ASCII letters only; the in-memory filter folds the same way.
_ASCII_LOWER = str.maketrans("ABCDEFGHIJKLMNOPQRSTUVWXYZ", "abcdefghijklmnopqrstuvwxyz")


@dataclass(frozen=True)
class ChunkDocuments:
    """Every chunk id beside its document's date and source, as arrays, for a pinned (unchanging) view.

    A date filter that keeps half of a million-chunk corpus (an as_of day in the middle of the
    archive) is then a comparison over the documents and one gather over the chunks (a few ms),
    where the SQL join handed Python one row per kept chunk (155 ms at 1M chunks, most of a search).
    """

    chunk_ids: np.ndarray  # int64, ascending
    document: np.ndarray  # int32: each chunk's row in the arrays below
    dates: np.ndarray  # str per document, compared as SQLite compares TEXT ('' where NULL)
    dated: np.ndarray  # bool per document: the date is not NULL
    sources: np.ndarray  # str per document, ASCII-lowercased (NOCASE)

    @classmethod
    def load(cls, db: sqlite3.Connection) -> "ChunkDocuments":
        rowids, dates, dated, sources = [], [], [], []
        for rowid, value, source in db.execute("SELECT rowid, date, source FROM documents ORDER BY rowid"):
            rowids.append(rowid)
            dates.append(value or "")
            dated.append(value is not None)
            sources.append(source.translate(_ASCII_LOWER))
        pairs = np.fromiter(db.execute("SELECT c.id, d.rowid FROM chunks c JOIN documents d ON d.doc_id = c.doc_id"
                                       " ORDER BY c.id"), dtype=np.dtype((np.int64, 2)))
        document = np.searchsorted(np.asarray(rowids, dtype=np.int64), pairs[:, 1]).astype(np.int32)
        return cls(pairs[:, 0].copy(), document, np.array(dates, dtype=str), np.array(dated, dtype=bool),
                   np.array(sources, dtype=str))

    def document_mask(self, since: str | None, until: str | None, source: str | None, undated: bool) -> np.ndarray:
        """Which documents match: exactly _document_filters' SQL (a NULL date fails a date bound)."""
        keep = np.ones(len(self.dates), dtype=bool)
        if since or until:
            keep &= self.dated
            if since:
                keep &= self.dates >= since
            if until:
                keep &= self.dates <= until
            if undated:
                keep |= ~self.dated | (self.dates == "")
        if source:
            keep &= self.sources == source.translate(_ASCII_LOWER)
        return keep

    def chunk_mask(self, since: str | None, until: str | None, source: str | None, undated: bool) -> np.ndarray:
        """Which chunks (positions in chunk_ids) match."""
        return self.document_mask(since, until, source, undated)[self.document]


@dataclass
class ChunkRow:
    """A stored chunk joined with its document's metadata."""

    id: int
    chunk_id: str
    doc_id: str
    title: str
    date: str | None
    source: str
    url: str
    text: str
    start: int
    end: int


class MetadataStore:
    """SQLite tables for documents, chunks (with vectors) and files."""

    def __init__(self, path: str | Path):
        self.path = Path(path)
        # check_same_thread=False: the UI/API serve reads from worker threads; writes are serialised
        # by the caller.
        self.db = sqlite3.connect(self.path, check_same_thread=False, isolation_level=None)
        self.db.execute("PRAGMA journal_mode=WAL")
        self.db.execute("PRAGMA synchronous=NORMAL")
        self.db.execute("PRAGMA foreign_keys=ON")
        self.db.executescript(SCHEMA)
        self.pinned = False
        self._chunk_documents: ChunkDocuments | None = None

    def close(self) -> None:
        """Close the database connection."""
        self.db.close()

    def pin(self) -> None:
        """Hold one read transaction from now on: every later read sees the database as it is now
        (a WAL snapshot), whatever a writer commits meanwhile. For a server's read-only snapshot."""
        self.db.execute("BEGIN")
        self.db.execute("SELECT count(*) FROM documents").fetchone()  # the snapshot starts at the first read
        self.pinned = True

    def chunk_documents(self) -> ChunkDocuments | None:
        """The chunk/document columns of a pinned view, loaded on first use (1 s per million chunks);
        None when not pinned, since a writer could change what they describe."""
        if not self.pinned:
            return None
        if self._chunk_documents is None:
            self._chunk_documents = ChunkDocuments.load(self.db)
        return self._chunk_documents

    @contextmanager
    def transaction(self) -> Iterator[None]:
        """All writes inside commit together or not at all."""
        self.db.execute("BEGIN IMMEDIATE")
        try:
            yield
        except BaseException:
            self.db.execute("ROLLBACK")
            raise
        self.db.execute("COMMIT")

    # -- documents --------------------------------------------------------------------------
    def content_hashes(self, doc_ids: Iterable[str]) -> dict[str, str]:
        """Stored content hash of each of these documents that exists."""
        return dict(self._in("SELECT doc_id, content_hash FROM documents WHERE doc_id IN ({})", list(doc_ids)))

    def docs_with_hashes(self, hashes: Iterable[str]) -> dict[str, str]:
        """content_hash -> doc_id for stored documents with any of these hashes."""
        return {h: d for d, h in self._in("SELECT doc_id, content_hash FROM documents WHERE content_hash IN ({})", list(hashes))}

    def insert_document(self, document: Document, chunks: list[Chunk], vectors: np.ndarray,
                        flagged: list[tuple[int, int]] | None = None) -> list[int]:
        """Store a document and its chunks; returns the new chunk ids. Call inside a transaction.

        `flagged`: the spans of its sentences addressed to an AI, when already found (found here if None)."""
        self.db.execute(
            "INSERT INTO documents (doc_id, content_hash, title, date, source, url, text, origin, n_chunks, added_at)"
            " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (document.doc_id, document.content_hash, document.title, document.date, document.source,
             document.url, document.text, document.origin, len(chunks), time.time()),
        )
        self.db.executemany("INSERT INTO flagged (doc_id, start, end) VALUES (?, ?, ?)",
                            [(document.doc_id, s, e) for s, e in (instruction_spans(document.text) if flagged is None else flagged)])
        ids = []
        for chunk, vector in zip(chunks, vectors):
            cursor = self.db.execute(
                "INSERT INTO chunks (chunk_id, doc_id, ordinal, start, end, n_tokens, vector)"
                " VALUES (?, ?, ?, ?, ?, ?, ?)",
                (chunk.chunk_id, chunk.doc_id, chunk.ordinal, chunk.start, chunk.end, chunk.n_tokens,
                 np.asarray(vector, dtype=np.float32).tobytes()),
            )
            ids.append(cursor.lastrowid)
        return ids

    def delete_documents(self, doc_ids: Iterable[str]) -> tuple[list[str], np.ndarray]:
        """Remove documents and their chunks; returns (deleted doc ids, their chunk ids). Call inside a transaction."""
        doc_ids = list(doc_ids)
        found = [row[0] for row in self._in("SELECT doc_id FROM documents WHERE doc_id IN ({})", doc_ids)]
        chunk_ids = [row[0] for row in self._in("SELECT id FROM chunks WHERE doc_id IN ({})", found)]
        self._in("DELETE FROM documents WHERE doc_id IN ({})", found)  # chunks go by ON DELETE CASCADE
        return found, np.asarray(chunk_ids, dtype=np.int64)

    def doc_ids_for_source(self, source: str) -> list[str]:
        """Every document from this source (exact, case-insensitive match)."""
        rows = self.db.execute("SELECT doc_id FROM documents WHERE source = ? COLLATE NOCASE", (source,))
        return [row[0] for row in rows]

    def get_document(self, doc_id: str) -> dict | None:
        """A document's stored fields, or None."""
        cursor = self.db.execute(
            "SELECT doc_id, title, date, source, url, text, origin, n_chunks, added_at FROM documents WHERE doc_id = ?",
            (doc_id,),
        )
        row = cursor.fetchone()
        if not row:
            return None
        document = dict(zip([c[0] for c in cursor.description], row))
        document["flagged"] = self.flagged_spans(doc_id)
        return document

    def flagged_spans(self, doc_id: str) -> list[list[int]]:
        """[start, end] of each sentence of a document flagged at ingest as addressed to an AI."""
        return [[s, e] for s, e in self.db.execute("SELECT start, end FROM flagged WHERE doc_id = ? ORDER BY start", (doc_id,))]

    def flagged_count(self, doc_ids: Iterable[str]) -> int:
        """How many flagged sentences these documents hold."""
        return sum(row[0] for row in self._in("SELECT count(*) FROM flagged WHERE doc_id IN ({})", list(doc_ids)))

    def list_documents(self, offset: int = 0, limit: int = 50, query: str = "", source: str = "",
                       since: str = "", until: str = "") -> tuple[list[dict], int]:
        """One page of documents (newest first) matching a title/id substring, source and date range; and the total."""
        clauses, params = _document_filters(since, until, source)
        if query:
            clauses.append("(title LIKE ? ESCAPE '\\' OR doc_id = ?)")
            params += ["%" + query.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%", query]
        where = " AND ".join(clauses) or "1"
        total = self.db.execute(f"SELECT count(*) FROM documents WHERE {where}", params).fetchone()[0]
        cursor = self.db.execute(
            f"SELECT doc_id, title, date, source, url, n_chunks, origin FROM documents WHERE {where} "
            "ORDER BY date DESC, added_at DESC, doc_id LIMIT ? OFFSET ?",
            params + [limit, offset],
        )
        names = [c[0] for c in cursor.description]
        return [dict(zip(names, row)) for row in cursor.fetchall()], total

    # -- chunks -----------------------------------------------------------------------------
    def chunk_ids(self) -> np.ndarray:
        """Ids of all stored chunks, ascending."""
        rows = self.db.execute("SELECT id FROM chunks ORDER BY id").fetchall()
        return np.fromiter((r[0] for r in rows), dtype=np.int64, count=len(rows))

    def vectors(self, ids: np.ndarray, dimension: int) -> np.ndarray:
        """Stored vectors of these chunk ids, in the same order."""
        by_id = {i: v for i, v in self._in("SELECT id, vector FROM chunks WHERE id IN ({})", [int(i) for i in ids])}
        out = np.empty((len(ids), dimension), dtype=np.float32)
        for row, chunk_id in enumerate(ids):
            out[row] = np.frombuffer(by_id[int(chunk_id)], dtype=np.float32)
        return out

    def chunk_texts(self) -> Iterator[tuple[int, str, str]]:
        """(id, title, text) of every chunk, ascending by id, for building BM25.

        Each document's text is read once and sliced here: SQLite's substr() on UTF-8 text counts
        characters from the start, so slicing a long document chunk by chunk in SQL is quadratic.
        """
        rows: list[tuple[int, str, str]] = []
        spans: dict[str, list[tuple[int, int, int]]] = {}
        for chunk_id, doc_id, start, end in self.db.execute("SELECT id, doc_id, start, end FROM chunks"):
            spans.setdefault(doc_id, []).append((chunk_id, start, end))
        for doc_id, title, text in self.db.execute("SELECT doc_id, title, text FROM documents"):
            rows += [(chunk_id, title, text[start:end]) for chunk_id, start, end in spans.get(doc_id, ())]
        yield from sorted(rows)

    def chunks_by_id(self, ids: Iterable[int]) -> dict[int, ChunkRow]:
        """Stored chunks with document metadata, keyed by chunk id."""
        sql = f"SELECT {HIT_COLUMNS} FROM chunks c JOIN documents d ON d.doc_id = c.doc_id WHERE c.id IN ({{}})"
        return {row[0]: ChunkRow(*row) for row in self._in(sql, [int(i) for i in ids])}

    def filtered_chunk_ids(self, since: str | None, until: str | None, source: str | None,
                           undated: bool = False) -> np.ndarray:
        """Chunk ids whose document matches a date range (inclusive, ISO dates; undated documents too
        when `undated`) and source."""
        columns = self.chunk_documents()
        if columns is not None:
            return columns.chunk_ids[columns.chunk_mask(since, until, source, undated)]
        clauses, params = _document_filters(since, until, source, table="d.", undated=undated)
        where = " AND ".join(clauses) or "1"
        rows = self.db.execute(f"SELECT c.id FROM chunks c JOIN documents d ON d.doc_id = c.doc_id WHERE {where}", params)
        return np.fromiter((r[0] for r in rows), dtype=np.int64)

    # -- files ------------------------------------------------------------------------------
    def file_record(self, path: str) -> tuple[str, list[str]] | None:
        """(sha256, doc ids) recorded when this file was last ingested completely."""
        row = self.db.execute("SELECT sha256, doc_ids FROM files WHERE path = ?", (path,)).fetchone()
        return (row[0], json.loads(row[1])) if row else None

    def file_hashes(self) -> dict[str, str]:
        """path -> sha256 of every completely ingested file (the skip list for distributed workers)."""
        return dict(self.db.execute("SELECT path, sha256 FROM files WHERE sha256 != ''"))

    def record_file(self, path: str, sha256: str, doc_ids: list[str]) -> None:
        """Remember a completely ingested file."""
        self.db.execute(
            "INSERT OR REPLACE INTO files (path, sha256, doc_ids, ingested_at) VALUES (?, ?, ?, ?)",
            (path, sha256, json.dumps(doc_ids), time.time()),
        )

    def files_referencing(self, doc_ids: Iterable[str]) -> set[str]:
        """Which of these doc ids some recorded file still lists."""
        wanted = set(doc_ids)
        referenced = set()
        for (ids_json,) in self.db.execute("SELECT doc_ids FROM files"):
            referenced.update(wanted.intersection(json.loads(ids_json)))
        return referenced

    # -- state ----------------------------------------------------------------------------
    def get_state(self, key: str) -> str | None:
        """A small named value (e.g. whether a vector store write is pending)."""
        row = self.db.execute("SELECT value FROM state WHERE key = ?", (key,)).fetchone()
        return row[0] if row else None

    def set_state(self, key: str, value: str) -> None:
        """Set a named value (inside the caller's transaction, or committed on its own)."""
        self.db.execute("INSERT OR REPLACE INTO state (key, value) VALUES (?, ?)", (key, value))

    # -- statistics -------------------------------------------------------------------------
    def counts(self) -> dict[str, int]:
        """Numbers of documents, chunks and files."""
        return {
            table: self.db.execute(f"SELECT count(*) FROM {table}").fetchone()[0]
            for table in ("documents", "chunks", "files")
        }

    def document_share(self, since: str | None, until: str | None, source: str | None, undated: bool = False) -> float:
        """The share of documents matching a filter (index lookups): how selective it is."""
        columns = self.chunk_documents()
        if columns is not None:
            return float(columns.document_mask(since, until, source, undated).mean()) if len(columns.dates) else 0.0
        total = self.db.execute("SELECT count(*) FROM documents").fetchone()[0]
        if not total:
            return 0.0
        clauses, params = _document_filters(since, until, source, undated=undated)
        where = " AND ".join(clauses) or "1"
        return self.db.execute(f"SELECT count(*) FROM documents WHERE {where}", params).fetchone()[0] / total

    def matching_chunk_ids(self, ids: list[int], since: str | None, until: str | None, source: str | None,
                           undated: bool = False) -> set[int]:
        """Which of these chunk ids belong to documents matching the filter."""
        columns = self.chunk_documents()
        if columns is not None:
            wanted = np.asarray(ids, dtype=np.int64)
            if not len(columns.chunk_ids):
                return set()
            rows = np.searchsorted(columns.chunk_ids, wanted).clip(max=len(columns.chunk_ids) - 1)
            matching = columns.document_mask(since, until, source, undated)[columns.document[rows]]
            keep = (columns.chunk_ids[rows] == wanted) & matching
            return set(wanted[keep].tolist())
        clauses, params = _document_filters(since, until, source, table="d.", undated=undated)
        where = " AND ".join(clauses) or "1"
        sql = f"SELECT c.id FROM chunks c JOIN documents d ON d.doc_id = c.doc_id WHERE c.id IN ({{}}) AND {where}"
        return {row[0] for row in self._in(sql, [int(i) for i in ids], params)}

    def newest_date(self) -> str | None:
        """The latest document date (an index lookup)."""
        return self.db.execute("SELECT max(date) FROM documents").fetchone()[0] or None

    def stats(self) -> dict:
        """Counts, date range and sources."""
        first, last = self.db.execute("SELECT min(date), max(date) FROM documents").fetchone()
        sources = self.db.execute(
            "SELECT source, count(*) FROM documents GROUP BY source ORDER BY count(*) DESC LIMIT 20"
        ).fetchall()
        return {**self.counts(), "first_date": first, "last_date": last, "top_sources": dict(sources)}

    def _in(self, sql: str, values: list, params: list | tuple = ()) -> list[tuple]:
        """Run `sql` with its `IN ({})` filled for `values`, in slices under SQLite's variable limit;
        `params` fill the placeholders after it."""
        rows: list[tuple] = []
        for offset in range(0, len(values), 900):
            part = values[offset:offset + 900]
            rows.extend(self.db.execute(sql.format(",".join("?" * len(part))), [*part, *params]).fetchall())
        return rows


def _document_filters(since: str | None, until: str | None, source: str | None, table: str = "",
                      undated: bool = False) -> tuple[list[str], list]:
    """SQL conditions (and their parameters) on a document's date range (inclusive) and source."""
    clauses, params = [], []
    for condition, value in ((f"{table}date >= ?", since), (f"{table}date <= ?", until)):
        if value:
            clauses.append(condition)
            params.append(value)
    if clauses and undated:
        clauses = [f"({table}date IS NULL OR {table}date = '' OR ({' AND '.join(clauses)}))"]
    if source:
        clauses.append(f"{table}source = ? COLLATE NOCASE")
        params.append(source)
    return clauses, params
