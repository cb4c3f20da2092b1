"""HTML articles: main text, title, date and site name extracted by trafilatura; boilerplate dropped."""

from __future__ import annotations

from typing import Iterator

from rag.ingest.base import FieldMap, ReadItem, clean_text, normalize_date, source_from_url, text_id
from rag.types import Document


def read_html(text: str, path: str, fields: FieldMap) -> Iterator[ReadItem]:
    """Yield the article of one .html/.htm page."""
    import trafilatura

    extracted = trafilatura.bare_extraction(
        text, with_metadata=True, include_comments=False, include_tables=True, favor_recall=True
    )
    body = clean_text(extracted.text or "") if extracted is not None else ""
    if not body:
        raise ValueError("no article text found in the HTML")
    title = (extracted.title or "").strip()
    # trafilatura keeps the <h1> as the first line; the title is stored apart, so drop the repeat.
    first, _, rest = body.partition("\n")
    if title and first.strip() == title and rest.strip():
        body = clean_text(rest)
    url = extracted.url or ""
    yield Document(
        doc_id=text_id(body),
        text=body,
        title=title,
        date=normalize_date(extracted.date),
        source=(extracted.sitename or "").strip() or source_from_url(url),
        url=url,
        origin=path,
    )
