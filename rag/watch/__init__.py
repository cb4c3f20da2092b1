"""Keeping the corpus current: watched feeds (RSS, Atom, JSON Feed) and folders, polled into the index."""

from rag.watch.fetch import FetchError, Fetcher
from rag.watch.items import FeedError, FeedItem, parse_feed
from rag.watch.sources import SourceError, SourceList, WatchedSource
from rag.watch.watcher import PollResult, Watcher

__all__ = ["FeedError", "FeedItem", "FetchError", "Fetcher", "PollResult", "SourceError", "SourceList", "Watcher",
           "WatchedSource", "parse_feed"]
