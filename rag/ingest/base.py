"""What every reader shares: the reader contract, record field mapping, ids, dates and text clean-up."""

from __future__ import annotations

import hashlib
import re
import unicodedata
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Iterator, Mapping, Protocol
from urllib.parse import urlparse

from rag.terminal import strip_controls
from rag.types import Document, IngestIssue

ReadItem = Document | IngestIssue


class Reader(Protocol):
    """Turns the decoded text of one file into documents, reporting bad records as IngestIssues."""

    def __call__(self, text: str, path: str, fields: "FieldMap") -> Iterator[ReadItem]: ...


# Record fields in order of preference; `--field name=column` puts a column first.
DEFAULT_FIELDS: dict[str, tuple[str, ...]] = {
    "id": ("id", "doc_id", "guid"),
    "title": ("title", "headline"),
    "text": ("text", "body", "content"),
    "date": ("date", "publish_date", "published", "pubDate"),
    "source": ("source", "publisher", "site"),
    "url": ("url", "link"),
}


@dataclass
class FieldMap:
    """Which record column feeds each document field."""

    overrides: dict[str, str] = field(default_factory=dict)

    @classmethod
    def parse(cls, specs: list[str] | None) -> "FieldMap":
        """Build from `name=column` strings, rejecting unknown names."""
        overrides = {}
        for spec in specs or []:
            name, sep, column = spec.partition("=")
            name = name.strip()
            if not sep or not column.strip() or name not in DEFAULT_FIELDS:
                raise ValueError(
                    f"--field {spec!r}: expected NAME=COLUMN with NAME one of {', '.join(DEFAULT_FIELDS)}"
                )
            overrides[name] = column.strip()
        return cls(overrides)

    def get(self, record: Mapping, name: str) -> str:
        """The first non-empty value for `name` in `record`, as a stripped string."""
        columns = ((self.overrides[name],) if name in self.overrides else ()) + DEFAULT_FIELDS[name]
        for column in columns:
            value = record.get(column)
            if value is not None and str(value).strip():
                return str(value).strip()
        return ""


def document_from_record(record: Mapping, fields: FieldMap, origin: str) -> Document:
    """Map one record to a Document; raises ValueError when it has no text."""
    text = clean_text(fields.get(record, "text"))
    if not text:
        wanted = fields.overrides.get("text") or "|".join(DEFAULT_FIELDS["text"])
        raise ValueError(f"record has no text (looked for field {wanted})")
    url = fields.get(record, "url")
    return Document(
        doc_id=fields.get(record, "id") or text_id(text),
        text=text,
        title=clean_line(fields.get(record, "title")),
        date=normalize_date(fields.get(record, "date")),
        source=clean_line(fields.get(record, "source")) or source_from_url(url),
        url=url,
        origin=origin,
    )


def clean_text(text: str) -> str:
    """Normalise line endings and Unicode form, drop control characters (an escape sequence or a bell
    in an article is not text, and would drive a terminal it is printed on), trim trailing spaces;
    paragraphs stay newline-separated."""
    text = unicodedata.normalize("NFC", strip_controls(text.replace("\r\n", "\n").replace("\r", "\n")))
    lines = [line.rstrip() for line in text.split("\n")]
    return re.sub(r"\n{3,}", "\n\n", "\n".join(lines)).strip()


def clean_line(text: str) -> str:
    """A one-line field (a title, a source name): clean text on one line, spaces collapsed."""
    return " ".join(clean_text(text).split())


def text_id(text: str) -> str:
    """A stable id for a document without one: a hash of its whitespace-normalised text."""
    normalized = " ".join(text.split())
    return "h" + hashlib.sha256(normalized.encode("utf-8")).hexdigest()[:20]


def normalize_date(value: str | None) -> str | None:
    """ISO `YYYY-MM-DD` from the date formats news data uses, or None when absent or unreadable."""
    if not value:
        return None
    value = value.strip()
    match = re.match(r"^(\d{4})[-/.](\d{1,2})[-/.](\d{1,2})", value)
    try:
        if match:
            return date(int(match[1]), int(match[2]), int(match[3])).isoformat()
        from dateutil import parser as date_parser

        return date_parser.parse(value, fuzzy=False).date().isoformat()
    except (ValueError, OverflowError, TypeError):
        return None


def normalize_date_tuple(value) -> str | None:
    """ISO date from a `time.struct_time` (as feedparser gives)."""
    if not value:
        return None
    return datetime(*value[:3]).date().isoformat()


def source_from_url(url: str) -> str:
    """The publisher's host name (without `www.`) when a record names no source."""
    host = urlparse(url).hostname or "" if url else ""
    return host.removeprefix("www.")


def title_from_text(text: str) -> str:
    """A title for a document that has none: its first line when short, else its first words."""
    first = text.strip().split("\n", 1)[0].strip()
    words = first.split()
    return first if len(words) <= 25 else " ".join(words[:12]) + " …"
