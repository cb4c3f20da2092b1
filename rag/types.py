"""The shared vocabulary: Document, Chunk, Hit and IngestIssue flow unchanged from ingestion to the front ends."""

from __future__ import annotations

import hashlib
from dataclasses import asdict, dataclass, field
from typing import Any


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


@dataclass
class Hit:
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
class Citation:
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
        }
