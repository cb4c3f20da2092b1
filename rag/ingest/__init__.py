"""Reading news files into Documents: one reader per format, chosen by file extension.

`read_file(path)` yields Documents and IngestIssues; `iter_files(paths)` walks folders. Every failure
(unknown extension, binary data, bad UTF-8, an empty file, a malformed record) becomes an IngestIssue
that names the file and, where there is one, the line, so one bad file never stops a batch.
"""

from __future__ import annotations

import gzip
import hashlib
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Iterator

from rag.ingest.base import FieldMap, ReadItem, Reader
from rag.ingest.feeds import read_feed
from rag.ingest.html import read_html
from rag.ingest.records import read_csv, read_json, read_jsonl
from rag.ingest.text import read_text
from rag.types import Document, IngestIssue

READERS: dict[str, Reader] = {
    ".txt": read_text,
    ".md": read_text,
    ".html": read_html,
    ".htm": read_html,
    ".jsonl": read_jsonl,
    ".json": read_json,
    ".csv": read_csv,
    ".xml": read_feed,
    ".rss": read_feed,
    ".atom": read_feed,
}

__all__ = ["READERS", "FieldMap", "SourceFile", "iter_files", "read_file", "Document", "IngestIssue"]


@dataclass
class SourceFile:
    """A file's bytes (decompressed) and their hash, read once for both change detection and parsing."""

    path: str
    data: bytes
    sha256: str
    extension: str


def iter_files(paths: Iterable[str | Path]) -> Iterator[Path]:
    """Each file named, and every file under each folder (sorted; hidden files and folders skipped)."""
    for path in map(Path, paths):
        if path.is_dir():
            for child in sorted(path.rglob("*")):
                relative = child.relative_to(path).parts
                if child.is_file() and not any(part.startswith(".") for part in relative):
                    yield child
        else:
            yield path


def format_of(path: str | Path) -> str:
    """The extension that picks the reader: `.jsonl` for `a.jsonl.gz`."""
    suffixes = [s.lower() for s in Path(path).suffixes]
    if suffixes and suffixes[-1] == ".gz":
        suffixes = suffixes[:-1]
    return suffixes[-1] if suffixes else ""


def load_file(path: str | Path) -> SourceFile:
    """Read (and gunzip) a file, raising ValueError with a user-facing reason when it is unusable."""
    path = Path(path)
    extension = format_of(path)
    if extension not in READERS:
        supported = " ".join(sorted(READERS))
        raise ValueError(f"unsupported file type {extension or '(none)'!r}; supported: {supported}, and .gz of those")
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise ValueError(f"cannot read file: {exc.strerror or exc}") from None
    if path.suffix.lower() == ".gz":
        try:
            raw = gzip.decompress(raw)
        except (OSError, EOFError, zlib.error) as exc:
            raise ValueError(f"not a valid gzip file: {exc}") from None
    if not raw.strip():
        raise ValueError("empty file")
    if b"\x00" in raw[:8192]:
        raise ValueError("binary data (NUL bytes), not a text document")
    return SourceFile(str(path), raw, hashlib.sha256(raw).hexdigest(), extension)


def decode(source: SourceFile) -> str:
    """UTF-8 text (a BOM is allowed); bad bytes are an error naming the line."""
    try:
        return source.data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = source.data[: exc.start].count(b"\n") + 1
        raise ValueError(f"line {line}: invalid UTF-8 (byte 0x{source.data[exc.start]:02x} at offset {exc.start})") from None


def parse(source: SourceFile, fields: FieldMap | None = None) -> Iterator[ReadItem]:
    """Documents and record-level issues of a loaded file; file-level problems become one issue."""
    fields = fields or FieldMap()
    try:
        text = decode(source)
        yield from READERS[source.extension](text, source.path, fields)
    except ValueError as exc:
        yield IngestIssue(source.path, str(exc))


def read_file(path: str | Path, fields: FieldMap | None = None) -> Iterator[ReadItem]:
    """Load and parse one file."""
    try:
        source = load_file(path)
    except ValueError as exc:
        yield IngestIssue(str(path), str(exc))
        return
    yield from parse(source, fields)
