"""The watched sources of an index and their polling state, kept in `<index>/feeds.json`.

The file is rewritten whole and atomically (a temporary file, then rename) after every change, so a
killed process leaves either the old or the new state; a restart resumes from it: conditional-GET
validators, when each source is next due, and which items were already taken. A process reloads it
when another one changed it (a source removed with `rag watch --remove` beside a running server stays
removed; the last writer's poll state wins).
"""

from __future__ import annotations

import hashlib
import json
import os
import threading
import time
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from urllib.parse import urlparse

from rag.errors import ErrorKind, RagError

STATE_FILE = "feeds.json"
MAX_SOURCES = 500
MAX_URL_CHARS = 2000
SEEN_PER_SOURCE = 5000  # item keys remembered per feed (a feed shows its latest few dozen)


class SourceError(RagError):
    """A source to watch is not a usable feed URL or folder."""


class UnknownSourceError(RagError):
    kind = ErrorKind.NOT_FOUND


@dataclass
class WatchedSource:
    """A feed URL or a folder, and what its polls have found."""

    id: str
    url: str  # an http(s) feed URL, or a folder path
    interval_seconds: float
    added_at: float = field(default_factory=time.time)
    etag: str = ""
    last_modified: str = ""
    last_poll: float | None = None
    last_success: float | None = None
    last_status: str = ""  # "updated", "not modified", "error"
    last_error: str = ""
    failures: int = 0  # consecutive
    next_poll: float = 0.0
    items_added: int = 0
    items_replaced: int = 0
    polls: int = 0
    seen: dict[str, str] = field(default_factory=dict)  # item key -> fingerprint when taken

    @property
    def is_folder(self) -> bool:
        return urlparse(self.url).scheme not in ("http", "https")

    def public(self) -> dict:
        """The fields front ends show (no item list)."""
        data = asdict(self)
        data.pop("seen")
        data["kind"] = "folder" if self.is_folder else "feed"
        data["items_known"] = len(self.seen)
        return data


def source_id(url: str) -> str:
    return "s" + hashlib.sha256(url.encode("utf-8")).hexdigest()[:10]


def normalize_source(url: str) -> str:
    """A feed URL as given, or a folder as an absolute path; SourceError when it is neither."""
    url = (url or "").strip()
    if not url or len(url) > MAX_URL_CHARS or any(ord(c) < 32 for c in url):
        raise SourceError(f"source {url[:80]!r}: expected an http(s) feed URL or a folder")
    parsed = urlparse(url)
    if parsed.scheme in ("http", "https"):
        if not parsed.hostname:
            raise SourceError(f"source {url!r}: the URL has no host")
        return url
    if parsed.scheme and len(parsed.scheme) > 1:  # ftp:, file:, javascript: (one letter is a Windows drive)
        raise SourceError(f"source {url!r}: only http(s) feeds and local folders can be watched")
    folder = Path(url).expanduser().resolve()
    if not folder.is_dir():
        raise SourceError(f"source {url!r}: no such folder (and not an http(s) URL)")
    return str(folder)


class SourceList:
    """The sources of one index directory, safe to use from several threads of one process."""

    def __init__(self, directory: str | Path):
        self.path = Path(directory) / STATE_FILE
        self._lock = threading.RLock()
        self._mtime = self._stat()
        self._sources: dict[str, WatchedSource] = self._load()

    def _stat(self) -> tuple[int, int, int] | None:
        """What changes when the file is rewritten (each save is a new file: a new inode)."""
        try:
            stat = self.path.stat()
        except FileNotFoundError:
            return None
        return stat.st_ino, stat.st_mtime_ns, stat.st_size

    def _refresh(self) -> None:
        """Reload when another process (`rag watch --remove` beside a running server) changed the file."""
        mtime = self._stat()
        if mtime != self._mtime:
            self._sources, self._mtime = self._load(), mtime

    def _load(self) -> dict[str, WatchedSource]:
        try:
            raw = json.loads(self.path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            return {}
        except (OSError, ValueError) as exc:
            raise SourceError(f"{self.path}: unreadable watch state ({exc}); move it away to start over") from None
        known = {f.name for f in fields(WatchedSource)}
        sources = {}
        for entry in raw.get("sources", []) if isinstance(raw, dict) else []:
            if isinstance(entry, dict) and entry.get("url") and entry.get("id"):
                source = WatchedSource(**{k: v for k, v in entry.items() if k in known})
                sources[source.id] = source
        return sources

    def save(self) -> None:
        with self._lock:
            data = {"format": 1, "sources": [asdict(s) for s in self._sources.values()]}
            self.path.parent.mkdir(parents=True, exist_ok=True)
            temporary = self.path.with_name(f".{self.path.name}.{os.getpid()}.{threading.get_ident()}.tmp")
            temporary.write_text(json.dumps(data, ensure_ascii=False), encoding="utf-8")
            os.replace(temporary, self.path)
            self._mtime = self._stat()

    def all(self) -> list[WatchedSource]:
        with self._lock:
            self._refresh()
            return sorted(self._sources.values(), key=lambda s: s.added_at)

    def get(self, key: str) -> WatchedSource:
        """A source by id or by its URL/folder."""
        with self._lock:
            self._refresh()
            if key in self._sources:
                return self._sources[key]
            for source in self._sources.values():
                if source.url == key.strip():
                    return source
        raise UnknownSourceError(f"no watched source {key!r}")

    def add(self, url: str, interval_seconds: float) -> tuple[WatchedSource, bool]:
        """Add a source (or find it); (source, whether it is new)."""
        url = normalize_source(url)
        if interval_seconds < 1:
            raise SourceError("interval_seconds must be >= 1")
        with self._lock:
            self._refresh()
            existing = self._sources.get(source_id(url))
            if existing is not None:
                return existing, False
            if len(self._sources) >= MAX_SOURCES:
                raise SourceError(f"already watching {MAX_SOURCES} sources; remove one first")
            source = WatchedSource(id=source_id(url), url=url, interval_seconds=float(interval_seconds))
            self._sources[source.id] = source
            self.save()
            return source, True

    def remove(self, key: str) -> WatchedSource:
        with self._lock:
            self._refresh()
            source = self.get(key)
            del self._sources[source.id]
            self.save()
            return source

    def update(self, source: WatchedSource) -> None:
        """Store a polled source's new state (unless it was removed meanwhile)."""
        with self._lock:
            self._refresh()
            if source.id in self._sources:
                if len(source.seen) > SEEN_PER_SOURCE:  # forget the oldest keys (dicts keep insertion order)
                    source.seen = dict(list(source.seen.items())[-SEEN_PER_SOURCE:])
                self._sources[source.id] = source
                self.save()
