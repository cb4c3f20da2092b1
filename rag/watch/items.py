"""A fetched feed's items: RSS and Atom through feedparser, JSON Feed (jsonfeed.org 1.x) read directly.

Each item has a key that stays the same across polls (its guid/id, else its link), so a changed item
replaces its earlier version and an unchanged one is skipped. An item whose text is short is a
summary: the watcher fetches its article page for the full text.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass

from rag.errors import RagError
from rag.ingest.base import clean_text, normalize_date, normalize_date_tuple, source_from_url
from rag.ingest.feeds import html_to_text

MAX_ITEMS = 1000  # items read from one feed document


class FeedError(RagError):
    """A fetched document is not a feed we can read."""


@dataclass
class FeedItem:
    """One entry of a feed, as text."""

    key: str  # guid / id, else the link
    link: str
    title: str
    date: str | None
    text: str  # the content, else the summary
    has_content: bool  # the feed carries the article itself, not only a summary
    source: str  # the feed's title, else the link's host

    @property
    def fingerprint(self) -> str:
        """What changes when the publisher updates the item."""
        digest = hashlib.sha256("\x1f".join((self.title, self.date or "", self.text, self.link)).encode("utf-8"))
        return digest.hexdigest()[:24]


def parse_feed(body: bytes, url: str, content_type: str = "") -> list[FeedItem]:
    """The items of an RSS, Atom or JSON Feed document; FeedError when it is none of them."""
    stripped = body.lstrip()[:1]
    if "json" in content_type.lower() or stripped == b"{":
        return _json_feed(body, url)
    import feedparser

    feed = feedparser.parse(body, response_headers={"content-location": url})
    if not feed.entries:
        reason = f": {feed.bozo_exception}" if feed.get("bozo") else ""
        raise FeedError(f"{url}: not an RSS, Atom or JSON Feed document with items{reason}")
    feed_title = (feed.feed.get("title") or "").strip()
    items = []
    for entry in feed.entries[:MAX_ITEMS]:
        content = entry.content[0].value if entry.get("content") else ""
        text = clean_text(html_to_text(content or entry.get("summary", "")))
        link = (entry.get("link") or "").strip()
        key = (entry.get("id") or link or "").strip()
        if not key or not (text or link):
            continue
        items.append(FeedItem(
            key=key, link=link, title=clean_text(entry.get("title") or ""),
            date=normalize_date_tuple(entry.get("published_parsed") or entry.get("updated_parsed"))
            or normalize_date(entry.get("published") or entry.get("updated")),
            text=text, has_content=bool(content), source=feed_title or source_from_url(link or url),
        ))
    return items


def _json_feed(body: bytes, url: str) -> list[FeedItem]:
    try:
        data = json.loads(body.decode("utf-8-sig"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise FeedError(f"{url}: not a JSON Feed ({exc})") from None
    if not isinstance(data, dict) or not str(data.get("version", "")).startswith("https://jsonfeed.org/version/") \
            or not isinstance(data.get("items"), list):
        raise FeedError(f"{url}: not a JSON Feed (needs a jsonfeed.org version and an items list)")
    feed_title = str(data.get("title") or "").strip()
    items = []
    for entry in data["items"][:MAX_ITEMS]:
        if not isinstance(entry, dict):
            continue
        content = entry.get("content_html") or entry.get("content_text") or ""
        text = clean_text(html_to_text(str(content or entry.get("summary") or "")))
        link = str(entry.get("url") or entry.get("external_url") or "").strip()
        key = str(entry.get("id") or link).strip()
        if not key or not (text or link):
            continue
        items.append(FeedItem(
            key=key, link=link, title=clean_text(str(entry.get("title") or "")),
            date=normalize_date(str(entry.get("date_published") or entry.get("date_modified") or "")),
            text=text, has_content=bool(content), source=feed_title or source_from_url(link or url),
        ))
    return items
