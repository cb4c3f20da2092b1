"""RSS and Atom feed files, parsed by feedparser: one document per entry."""

from __future__ import annotations

from typing import Iterator

from rag.ingest.base import (
    FieldMap,
    ReadItem,
    clean_text,
    normalize_date,
    normalize_date_tuple,
    source_from_url,
    text_id,
)
from rag.types import Document, IngestIssue


def read_feed(text: str, path: str, fields: FieldMap) -> Iterator[ReadItem]:
    """Yield each entry of an RSS/Atom feed that has text."""
    import feedparser

    feed = feedparser.parse(text)
    if not feed.entries:
        reason = f" ({feed.bozo_exception})" if feed.get("bozo") else ""
        raise ValueError(f"no RSS or Atom entries found{reason}")
    feed_title = (feed.feed.get("title") or "").strip()
    for index, entry in enumerate(feed.entries, start=1):
        html = entry.content[0].value if entry.get("content") else entry.get("summary", "")
        body = clean_text(html_to_text(html))
        if not body:
            yield IngestIssue(path, f"entry {index} ({entry.get('title', 'untitled')!r}) has no text")
            continue
        url = entry.get("link", "")
        date = normalize_date_tuple(entry.get("published_parsed") or entry.get("updated_parsed"))
        yield Document(
            doc_id=entry.get("id") or url or text_id(body),
            text=body,
            title=(entry.get("title") or "").strip(),
            date=date or normalize_date(entry.get("published")),
            source=feed_title or source_from_url(url),
            url=url,
            origin=f"{path}#entry {index}",
        )


BLOCK_TAGS = ("p", "div", "li", "h1", "h2", "h3", "h4", "h5", "h6", "blockquote", "tr", "article", "section")


def html_to_text(html: str) -> str:
    """Text of an HTML fragment with paragraphs kept as blank-line breaks; scripts and styles dropped."""
    if "<" not in html:
        return html
    import lxml.html
    from lxml.etree import ParserError

    try:
        root = lxml.html.fragment_fromstring(html, create_parent="div")
    except ParserError:
        return ""
    for bad in root.xpath("//script|//style"):
        bad.drop_tree()
    for element in root.iter():
        if element.tag == "br":
            element.tail = "\n" + (element.tail or "")
        elif element.tag in BLOCK_TAGS:
            element.tail = "\n\n" + (element.tail or "")
    return root.text_content()
