"""Reading news files into Documents: one reader per format, chosen by file extension.

`read_file(path)` yields Documents and IngestIssues; `iter_files(paths)` walks folders. Every failure
(unknown extension, binary data, bad UTF-8, an empty file, a malformed record) becomes an IngestIssue
that names the file and, where there is one, the line, so one bad file never stops a batch.
"""

from __future__ import annotations

import codecs
import gzip
import hashlib
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Iterator

from rag.ingest.base import FieldMap, ReadItem
from rag.registry import Registry, Spec
from rag.types import Document, IngestIssue

# One reader per file extension (a Reader: text, path, fields -> Documents and IngestIssues). The UI's
# upload list, the "supported:" error and the README check read this; a new format is one line here.
READERS = Registry("file format", "file extension")
for _extension, _target, _what in [
    (".txt", "rag.ingest.text:read_text", "plain text: an optional header block, then paragraphs"),
    (".md", "rag.ingest.text:read_text", "Markdown, read as plain text"),
    (".html", "rag.ingest.html:read_html", "an article page: the main text extracted by trafilatura"),
    (".htm", "rag.ingest.html:read_html", "as .html"),
    (".jsonl", "rag.ingest.records:read_jsonl", "one JSON record per line (--field maps the keys)"),
    (".json", "rag.ingest.records:read_json", "a JSON array of records, or one record"),
    (".csv", "rag.ingest.records:read_csv", "a CSV file with a header row"),
    (".xml", "rag.ingest.feeds:read_feed", "an RSS or Atom feed (feedparser)"),
    (".rss", "rag.ingest.feeds:read_feed", "an RSS feed"),
    (".atom", "rag.ingest.feeds:read_feed", "an Atom feed"),
]:
    READERS.register(Spec(_extension, _target, _what))

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


# Byte order marks of UTF-32 (first: its little-endian mark starts like UTF-16's) and UTF-16.
WIDE_ENCODINGS = ((codecs.BOM_UTF32_LE, "utf-32"), (codecs.BOM_UTF32_BE, "utf-32"),
                  (codecs.BOM_UTF16_LE, "utf-16"), (codecs.BOM_UTF16_BE, "utf-16"))
WIDE_BOMS = tuple(bom for bom, _ in WIDE_ENCODINGS)


def load_file(path: str | Path, max_bytes: int | None = None) -> SourceFile:
    """Read (and gunzip) a file, raising ValueError with a user-facing reason when it is unusable.

    A .gz file is decompressed as a stream and abandoned as soon as it passes `max_bytes`, so a small
    compressed file that would expand to gigabytes costs at most `max_bytes` of memory.
    """
    path = Path(path)
    extension = format_of(path)
    if extension not in READERS:
        supported = " ".join(sorted(READERS.names()))
        raise ValueError(f"unsupported file type {extension or '(none)'!r}; supported: {supported}, and .gz of those")
    limit = f"more than {max_bytes / 1e6:g} MB (ingest.max_file_bytes)" if max_bytes else ""
    try:
        if path.suffix.lower() == ".gz":
            raw = _gunzip(path, max_bytes, limit)
        else:
            if max_bytes and path.stat().st_size > max_bytes:
                raise ValueError(f"the file is {limit}")
            raw = path.read_bytes()
    except OSError as exc:
        raise ValueError(f"cannot read file: {exc.strerror or exc}") from None
    if not raw.strip():
        raise ValueError("empty file")
    if b"\x00" in raw[:8192] and not raw.startswith(WIDE_BOMS):  # UTF-16/32 text has NULs
        raise ValueError("binary data (NUL bytes), not a text document")
    return SourceFile(str(path), raw, hashlib.sha256(raw).hexdigest(), extension)


def _gunzip(path: Path, max_bytes: int | None, limit: str) -> bytes:
    """The decompressed bytes, read in blocks and stopped past `max_bytes`."""
    parts, size = [], 0
    try:
        with gzip.open(path, "rb") as handle:
            while block := handle.read(1 << 20):
                size += len(block)
                if max_bytes and size > max_bytes:
                    raise ValueError(f"decompresses to {limit}")
                parts.append(block)
    except (EOFError, zlib.error, gzip.BadGzipFile) as exc:
        raise ValueError(f"not a valid gzip file: {exc}") from None
    return b"".join(parts)


def decode(source: SourceFile) -> str:
    """UTF-8 text (a BOM is allowed), or UTF-16/32 that starts with its BOM (what Windows editors save
    as "Unicode"); bad bytes are an error naming the line."""
    data = source.data
    encoding = next((name for bom, name in WIDE_ENCODINGS if data.startswith(bom)), "utf-8-sig")
    try:
        return data.decode(encoding)
    except UnicodeDecodeError as exc:
        line = data[: exc.start].decode(encoding, errors="replace").count("\n") + 1
        name = encoding.removesuffix("-sig").upper()
        raise ValueError(f"line {line}: invalid {name} (byte 0x{data[exc.start]:02x} at offset {exc.start}); "
                         f"save the file as UTF-8") from None


def parse(source: SourceFile, fields: FieldMap | None = None, max_document_chars: int | None = None) -> Iterator[ReadItem]:
    """Documents and record-level issues of a loaded file; file-level problems become one issue, and a
    document longer than `max_document_chars` an issue of its own (the file's other documents go on)."""
    fields = fields or FieldMap()
    try:
        text = decode(source)
        for item in READERS.get(source.extension).load()(text, source.path, fields):
            if max_document_chars and isinstance(item, Document) and len(item.text) > max_document_chars:
                item = oversized(item, max_document_chars)
            yield item
    except ValueError as exc:
        yield IngestIssue(source.path, str(exc))


def oversized(document: Document, max_chars: int) -> IngestIssue:
    """The issue for a document over the length bound, naming it and its line."""
    path, _, line = document.origin.rpartition(":")
    where = (path, int(line)) if line.isdigit() else (document.origin, None)
    return IngestIssue(where[0], f"document {document.doc_id!r} has {len(document.text):,} characters, over "
                                 f"{max_chars:,} (ingest.max_document_chars)", where[1])


def read_file(path: str | Path, fields: FieldMap | None = None, max_bytes: int | None = None,
              max_document_chars: int | None = None) -> Iterator[ReadItem]:
    """Load and parse one file."""
    try:
        source = load_file(path, max_bytes)
    except ValueError as exc:
        yield IngestIssue(str(path), str(exc))
        return
    yield from parse(source, fields, max_document_chars)
