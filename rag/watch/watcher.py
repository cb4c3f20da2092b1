"""Polling watched sources into the index: each on its own interval, backing off on errors.

One poll of a feed: a conditional GET (304 -> nothing to do), parse, keep the items whose
fingerprint is new (an unseen key, or a known key whose title/text/date changed), fetch the article
page of each item that carries only a summary (falling back to the summary), and store them through
the service's writer as records keyed by the item's guid/link, so a changed item replaces its old
version and nothing is stored twice. A folder is ingested like `rag ingest` (unchanged files skip).

After an error the next poll waits interval x 2^failures, capped and jittered (and no less than a
server's Retry-After); a success resets it. Polls are serialized within a process.
"""

from __future__ import annotations

import dataclasses
import random
import threading
import time
from dataclasses import dataclass
from urllib.parse import urlparse

from rag.config import WatchSettings
from rag.errors import RagError
from rag.ingest.pipeline import IngestReport
from rag.types import Document
from rag.watch.fetch import FetchError, Fetcher, is_private
from rag.watch.items import FeedItem, parse_feed
from rag.watch.sources import SourceError, SourceList, WatchedSource

FEED_ACCEPT = ("application/rss+xml, application/atom+xml, application/feed+json, application/xml;q=0.9, "
               "text/xml;q=0.9, */*;q=0.5")
IDLE_CHECK_SECONDS = 5.0  # the background loop looks for due sources at least this often
MAX_KEY_CHARS = 300


@dataclass
class PollResult:
    """What one poll of one source did."""

    source_id: str
    url: str
    status: str  # "updated", "not modified", "error"
    added: int = 0
    replaced: int = 0
    unchanged: int = 0
    articles_fetched: int = 0
    deferred: int = 0  # items left for the next poll (article fetch cap)
    problems: list[str] = dataclasses.field(default_factory=list)
    error: str = ""
    seconds: float = 0.0
    next_poll: float = 0.0

    def line(self) -> str:
        """One line for the CLI."""
        if self.status == "error":
            return f"{self.url}: error: {self.error} (next try in {max(0, self.next_poll - time.time()):.0f} s)"
        counts = f"{self.added} added, {self.replaced} replaced, {self.unchanged} unchanged"
        extra = f", {self.articles_fetched} article page(s) fetched" if self.articles_fetched else ""
        extra += f", {self.deferred} deferred" if self.deferred else ""
        extra += f", {len(self.problems)} problem(s): {'; '.join(self.problems[:3])}" if self.problems else ""
        return f"{self.url}: {self.status}: {counts}{extra}"


class Watcher:
    """Polls an index's watched sources through an IndexService (its writer, its snapshots)."""

    def __init__(self, service, settings: WatchSettings | None = None):
        self.service = service
        self.settings = settings or service.settings.watch
        self.sources = SourceList(service.settings.index_dir)
        self.fetcher = Fetcher(self.settings.timeout_seconds, self.settings.user_agent)
        self._poll_lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        for url in filter(None, (part.strip() for part in self.settings.sources.split(","))):
            self.sources.add(url, self.settings.interval_seconds)

    # -- managing -------------------------------------------------------------------------------
    def add(self, url: str, interval_seconds: float | None = None, from_client: bool = False) -> WatchedSource:
        """Watch a feed URL or a folder (due at once); an already watched one is returned as it is.

        A source `from_client` (the API, the UI) must be an http(s) feed, on a public address unless
        watch.allow_private_feeds: a client may not make the server read its folders or its network.
        """
        if from_client:
            if urlparse(url.strip()).scheme not in ("http", "https"):
                raise SourceError(f"{url[:200]!r}: only http(s) feed URLs can be added here (folders from the command line)")
            if not self.settings.allow_private_feeds and is_private(url.strip()):
                raise SourceError(f"{url[:200]!r}: the address is private or loopback; set watch.allow_private_feeds "
                                  "to allow it")
        source, _ = self.sources.add(url, interval_seconds or self.settings.interval_seconds)
        return source

    def remove(self, key: str) -> WatchedSource:
        """Stop watching (by id or URL). What it brought in stays in the index."""
        return self.sources.remove(key)

    # -- polling --------------------------------------------------------------------------------
    def poll_all(self) -> list[PollResult]:
        """Poll every source once, now (`rag watch --once`)."""
        return [self.poll(source.id) for source in self.sources.all()]

    def poll_due(self, now: float | None = None) -> list[PollResult]:
        """Poll the sources whose time has come."""
        now = time.time() if now is None else now
        return [self.poll(s.id) for s in self.sources.all() if s.next_poll <= now and not self._stop.is_set()]

    def poll(self, key: str) -> PollResult:
        """Poll one source now, record the outcome and schedule its next poll."""
        with self._poll_lock:
            source = dataclasses.replace(self.sources.get(key))
            source.seen = dict(source.seen)
            started = time.time()
            source.last_poll, source.polls = started, source.polls + 1
            try:
                result = self._poll_folder(source) if source.is_folder else self._poll_feed(source)
                source.failures, source.last_error, source.last_success = 0, "", time.time()
                delay = source.interval_seconds
                source.items_added += result.added
                source.items_replaced += result.replaced
            except Exception as exc:  # noqa: BLE001 - recorded on the source and backed off, never a hot loop
                message = str(exc) if isinstance(exc, RagError) else f"{type(exc).__name__}: {exc}"
                source.failures += 1
                result = PollResult(source.id, source.url, "error", error=message)
                source.last_error = message
                delay = min(self.settings.max_backoff_seconds, source.interval_seconds * 2 ** source.failures)
                delay *= random.uniform(0.5, 1.0)  # jitter: sources failing together do not retry together
                delay = max(delay, getattr(exc, "retry_after", None) or 0.0)
            source.last_status = result.status
            source.next_poll = time.time() + delay
            result.seconds, result.next_poll = round(time.time() - started, 3), source.next_poll
            self.sources.update(source)
            return result

    def _poll_folder(self, source: WatchedSource) -> PollResult:
        report = self.service.ingest([source.url])
        return PollResult(source.id, source.url, "updated" if report.added or report.replaced else "not modified",
                          added=report.added, replaced=report.replaced, unchanged=report.unchanged + report.files_unchanged,
                          problems=[str(issue) for issue in report.issues])

    def _poll_feed(self, source: WatchedSource) -> PollResult:
        settings = self.settings
        fetched = self.fetcher.get(source.url, int(settings.max_feed_mb * 1e6), source.etag, source.last_modified,
                                   accept=FEED_ACCEPT)
        result = PollResult(source.id, source.url, "not modified")
        if fetched.status == 304:
            return result
        items = parse_feed(fetched.body, source.url, fetched.content_type)
        fresh = [item for item in items if source.seen.get(item.key) != item.fingerprint]
        result.unchanged = len(items) - len(fresh)
        private = is_private(source.url)
        documents, taken, budget = [], [], settings.max_articles_per_poll
        for item in fresh:
            text = item.text
            if self._summary_only(item):
                if budget <= 0:
                    result.deferred += 1
                    continue
                budget -= 1
                result.articles_fetched += 1
                text = self._article_text(item, private, result) or text
            taken.append(item)
            if text:
                documents.append(Document(doc_id=self._doc_id(source, item), text=text, title=item.title, date=item.date,
                                          source=item.source, url=item.link, origin=f"{source.url}#{item.key[:200]}"))
        report = self.service.add_documents(documents) if documents else IngestReport()
        for item in taken:
            source.seen[item.key] = item.fingerprint
        result.added, result.replaced = report.added, report.replaced
        result.unchanged += report.unchanged + report.duplicates
        result.problems += [str(issue) for issue in report.issues]
        result.status = "updated" if result.added or result.replaced else "not modified"
        if not result.deferred:  # with items left over, the next poll must see the whole feed again
            source.etag, source.last_modified = fetched.etag, fetched.last_modified
        return result

    def _summary_only(self, item: FeedItem) -> bool:
        return (self.settings.fetch_articles and bool(item.link) and not item.has_content
                and len(item.text) < self.settings.summary_chars)

    def _article_text(self, item: FeedItem, private_feed: bool, result: PollResult) -> str:
        """The article page's main text (trafilatura), or "" when it cannot be had."""
        from rag.ingest import FieldMap
        from rag.ingest.html import read_html

        try:
            page = self.fetcher.get(item.link, int(self.settings.max_article_mb * 1e6), allow_private=private_feed,
                                    accept="text/html,application/xhtml+xml;q=0.9,*/*;q=0.5")
            html = page.body.decode("utf-8", errors="replace")
            document = next(iter(read_html(html, item.link, FieldMap())), None)
        except (FetchError, ValueError) as exc:
            result.problems.append(f"{item.link}: article page not used, kept the summary ({exc})")
            return ""
        return document.text if isinstance(document, Document) else ""

    @staticmethod
    def _doc_id(source: WatchedSource, item: FeedItem) -> str:
        """The item's guid when it is a URL, URN or tag (global), else qualified by its feed ("123")."""
        key = item.key[:MAX_KEY_CHARS]
        return key if ":" in key or "/" in key else f"{source.id}:{key}"

    # -- in the background ----------------------------------------------------------------------
    def start(self) -> "Watcher":
        """Poll due sources in a daemon thread until stop()."""
        if self._thread is None or not self._thread.is_alive():
            self._stop.clear()
            self._thread = threading.Thread(target=self._run, name="rag-watch", daemon=True)
            self._thread.start()
        return self

    def stop(self, timeout: float = 10.0) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout)

    def run_forever(self) -> None:
        """Poll due sources until interrupted (`rag watch` without --once)."""
        self._run(print_results=True)

    def _run(self, print_results: bool = False) -> None:
        while not self._stop.is_set():
            try:
                for result in self.poll_due():
                    if print_results:
                        print(result.line(), flush=True)
            except Exception as exc:  # noqa: BLE001 - the loop outlives one bad poll (it is recorded per source)
                print(f"watch: {type(exc).__name__}: {exc}", flush=True)
            upcoming = [s.next_poll for s in self.sources.all()]
            wait = min([IDLE_CHECK_SECONDS] + [max(0.0, t - time.time()) for t in upcoming])
            self._stop.wait(max(wait, 0.2))
