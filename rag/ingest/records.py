"""Record files: JSON Lines, JSON (an array, or an object holding one) and CSV, one document per record.

A bad record (malformed JSON, no text) is reported with its line or record number and the rest of
the file is still read.
"""

from __future__ import annotations

import csv
import io
import json
import sys
from typing import Iterator

from rag.ingest.base import FieldMap, ReadItem, document_from_record
from rag.types import IngestIssue

# Long article bodies exceed csv's 128 kB default field limit.
csv.field_size_limit(min(sys.maxsize, 2**31 - 1))


def read_jsonl(text: str, path: str, fields: FieldMap) -> Iterator[ReadItem]:
    """One JSON object per line; blank lines are ignored."""
    for number, line in enumerate(text.split("\n"), start=1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except json.JSONDecodeError as exc:
            yield IngestIssue(path, f"malformed JSON: {exc.msg} at column {exc.colno}", line=number)
            continue
        yield from _record(record, path, fields, number)


def read_json(text: str, path: str, fields: FieldMap) -> Iterator[ReadItem]:
    """A JSON array of records, an object with one list of records, or one record."""
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ValueError(f"malformed JSON: {exc.msg} at line {exc.lineno}, column {exc.colno}") from None
    if isinstance(data, dict):
        lists = [value for value in data.values() if isinstance(value, list) and value and isinstance(value[0], dict)]
        data = lists[0] if len(lists) == 1 and not fields.get(data, "text") else [data]
    if not isinstance(data, list):
        raise ValueError("expected a JSON array of records or an object")
    for index, record in enumerate(data, start=1):
        for item in _record(record, path, fields, None, label=f"record {index}"):
            yield item


def read_csv(text: str, path: str, fields: FieldMap) -> Iterator[ReadItem]:
    """A CSV file with a header row."""
    reader = csv.DictReader(io.StringIO(text, newline=""))
    if not reader.fieldnames:
        raise ValueError("CSV file has no header row")
    try:
        for record in reader:
            yield from _record(record, path, fields, reader.line_num)
    except csv.Error as exc:
        yield IngestIssue(path, f"malformed CSV: {exc}", line=reader.line_num)


def _record(record, path: str, fields: FieldMap, line: int | None, label: str = "") -> Iterator[ReadItem]:
    """Turn one parsed record into a Document or an issue naming where it is."""
    prefix = f"{label}: " if label else ""
    where = f"{path}:{line}" if line is not None else f"{path}#{label}"
    if not isinstance(record, dict):
        yield IngestIssue(path, f"{prefix}expected an object, got {type(record).__name__}", line=line)
        return
    try:
        yield document_from_record(record, fields, origin=where)
    except ValueError as exc:
        yield IngestIssue(path, f"{prefix}{exc}", line=line)
