"""The shared vocabulary: Document, Chunk, Hit and IngestIssue flow unchanged from ingestion to the front ends."""

from __future__ import annotations

import hashlib
from dataclasses import asdict, dataclass, field
from typing import Any

from rag.errors import RagError


@dataclass
class Document:
    """One news article as read from a file or a record, before chunking."""

    doc_id: str
    text: str
    title: str = ""
    date: str | None = None  # ISO YYYY-MM-DD when known
    source: str = ""
    url: str = ""
    origin: str = ""  # where it was read from: a file path, with ":line" for records

    @property
    def content_hash(self) -> str:
        """Hash of what gets indexed, so an unchanged document is recognised and a changed one replaced."""
        digest = hashlib.sha256()
        for part in (self.title, self.text, self.date, self.source, self.url):
            digest.update((part or "").encode("utf-8") + b"\x1f")
        return digest.hexdigest()[:32]


@dataclass
class Chunk:
    """A token-bounded span of a document: `text == document.text[start:end]`."""

    chunk_id: str
    doc_id: str
    ordinal: int
    start: int
    end: int
    text: str
    n_tokens: int
    title: str = ""
    date: str | None = None
    source: str = ""
    url: str = ""
    # The embedding model's input ids for this chunk's embedding text, when chunking had them anyway
    # (rag.embedding.TextSpans.ids): handed to the encoder, never stored.
    token_ids: list[int] | None = field(default=None, repr=False, compare=False)


class Dated:
    """Mixed into what front ends show with its article's date and source."""

    title: str
    date: str | None
    source: str

    @property
    def byline(self) -> str:
        """"2024-03-01, Reuters": the date and source that are known."""
        return ", ".join(part for part in (self.date, self.source) if part)

    def heading(self) -> str:
        """The title followed by the byline in parentheses, as every front end shows a source."""
        return self.title + (f" ({self.byline})" if self.byline else "")


@dataclass
class Hit(Dated):
    """A retrieved chunk with its rank and fused score; its JSON is the `search --json` contract."""

    rank: int
    chunk_id: str
    doc_id: str
    title: str
    date: str | None
    source: str
    url: str
    text: str
    start: int
    end: int
    score: float
    # Per-retriever detail, kept out of the public JSON contract.
    dense_score: float | None = field(default=None, repr=False)
    bm25_score: float | None = field(default=None, repr=False)

    def to_json(self) -> dict:
        """The stable JSON form: exactly the contract fields."""
        data = asdict(self)
        data.pop("dense_score")
        data.pop("bm25_score")
        return data


@dataclass
class IngestIssue:
    """A file or record that could not be ingested, with where and why."""

    path: str
    message: str
    line: int | None = None

    def __str__(self) -> str:
        where = f"{self.path}:{self.line}" if self.line is not None else self.path
        return f"{where}: {self.message}"


@dataclass
class Citation(Dated):
    """A quote that supports an answer sentence: `quote == document.text[start:end]`."""

    n: int
    doc_id: str
    chunk_id: str
    title: str
    date: str | None
    source: str
    url: str
    quote: str
    start: int
    end: int
    score: float


@dataclass
class AnswerSentence:
    """One sentence of the generated answer and the verdict on it."""

    text: str
    citations: list[int]
    supported: bool
    score: float
    date: str | None = None  # set when an answer cites articles of different dates: this sentence's


@dataclass
class Answer:
    """The answer path's result; its JSON is the `ask --json` contract."""

    question: str
    answer: str
    refused: bool
    sentences: list[AnswerSentence]
    citations: list[Citation]
    retrieved: list[Hit]
    llm: dict
    timings: dict
    standalone_question: str = ""
    draft: str = ""  # what the generator produced, before verification
    relevance: float = 0.0  # how close the closest passage sentence came to the question
    decision: Any = None  # the answerability gate's Decision (probability and signals), for evaluation
    timeframe: Any = None  # rag.timeframe.TimeFrame: the as_of day and the window the question named
    conflict: dict | None = None  # rag.conflicts: the values two cited articles disagree on

    def to_json(self) -> dict:
        """Exactly the contract fields."""
        return {
            "question": self.question,
            "answer": self.answer,
            "refused": self.refused,
            "sentences": [asdict(s) for s in self.sentences],
            "citations": [asdict(c) for c in self.citations],
            "retrieved": [h.to_json() for h in self.retrieved],
            "llm": self.llm,
            "timings": self.timings,
            "as_of": self.timeframe.as_of if self.timeframe else None,
            "timeframe": self.timeframe.to_json() if self.timeframe else None,
            "conflict": self.conflict,
        }


class QueryError(RagError):
    """A search request with an invalid parameter."""


@dataclass
class SearchFilters:
    """Restrictions on which chunks may be returned."""

    since: str | None = None  # inclusive ISO date
    until: str | None = None  # inclusive ISO date
    source: str | None = None
    # Whether undated documents also pass the date range (true for the as_of bound and a question's
    # own window; an explicit --since/--until asks for dated articles).
    undated: bool = False
    matches_nothing: bool = False  # a range that cannot match (since after the as_of day)

    def __post_init__(self) -> None:
        for name in ("since", "until"):
            value = getattr(self, name)
            if value:
                from rag.ingest.base import normalize_date  # the readers' date parser (which imports this module)

                parsed = normalize_date(value)
                if parsed is None:
                    raise QueryError(f"--{name}: {value!r} is not a date (use YYYY-MM-DD)")
                setattr(self, name, parsed)
        if self.since and self.until and self.since > self.until:
            raise QueryError(f"--since {self.since} is after --until {self.until}")

    @property
    def active(self) -> bool:
        """Whether any filter is set."""
        return bool(self.since or self.until or self.source or self.matches_nothing)
