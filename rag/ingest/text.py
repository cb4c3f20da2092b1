"""Plain-text and Markdown articles: one document per file.

An optional first line `date YYYY-MM-DD Place, Month D, SOURCE` (the seed corpus' dateline format)
gives the date and the source; the rest of that line stays in the text as the article's dateline.
A Markdown `# heading` on the first line is the title; otherwise the first short line is.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Iterator

from rag.ingest.base import FieldMap, ReadItem, clean_text, normalize_date, text_id, title_from_text
from rag.types import Document

DATELINE = re.compile(r"^\s*date\s+(\d{4}-\d{2}-\d{2})\b[ \t]*(.*)$", re.IGNORECASE)
HEADING = re.compile(r"^\s*#{1,6}\s+(.+?)\s*#*\s*$")


def read_text(text: str, path: str, fields: FieldMap) -> Iterator[ReadItem]:
    """Yield the single document of a .txt or .md file."""
    text = clean_text(text)
    date = source = None
    first, _, rest = text.partition("\n")
    match = DATELINE.match(first)
    if match:
        date = normalize_date(match[1])
        dateline = match[2].strip()
        # "Nairobi, March 4, NEWS WIRE": the agency is the last comma-separated part.
        source = dateline.rsplit(",", 1)[-1].strip() if dateline else None
        text = clean_text(f"{dateline}\n\n{rest}" if dateline else rest)
    title = ""
    heading = HEADING.match(text.partition("\n")[0])
    if heading:
        title = heading[1]
    if not text:
        raise ValueError("file has no text")
    if not title:
        body = text.split("\n\n", 1)[1] if match and match[2].strip() and "\n\n" in text else text
        title = title_from_text(body) or Path(path).stem
    yield Document(doc_id=text_id(text), text=text, title=title, date=date, source=source or "", origin=path)
