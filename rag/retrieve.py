"""Hybrid retrieval: dense (FAISS or Milvus) and BM25 candidates fused by reciprocal rank, with filters.

Filters (date range, source) restrict both retrievers to the matching chunks before ranking, so a
selective filter still returns k results. Reciprocal rank fusion needs no score calibration between
the two retrievers; `favour_recent` then discounts each candidate about the query by its article's
age relative to the newest of them (a half-life in days), which keeps undated and old articles
findable. Only those candidates compete on recency: fused ranks are too flat to outweigh a halving
(rank 1 and rank 50 differ by less than 2x), so an off-topic article from last week would otherwise
outrank the on-topic one from last month.
"""

from __future__ import annotations

import re
from collections import Counter
from datetime import date, timedelta

import numpy as np

from rag.config import RetrievalSettings
from rag.index import NewsIndex
from rag.timeframe import TimeFrame, resolve, untimed
from rag.types import Hit, QueryError, SearchFilters


def candidates(index: NewsIndex, vector: np.ndarray, query: str, k: int,
               filters: SearchFilters | None = None) -> tuple[list[tuple[int, float]], list[tuple[int, float]]]:
    """Top-k (chunk id, cosine) for `vector` and top-k (chunk id, BM25 score) for `query`, among the
    chunks matching `filters`.

    A store that keeps date and source gets the filters themselves; FAISS and the local BM25 get the
    matching chunk ids, read from SQLite once for both.
    """
    filters = filters if filters is not None and filters.active else None
    if filters is not None and filters.matches_nothing:
        return [], []
    if filters is not None and filters.undated and filters.until and not (filters.since or filters.source):
        newest = index.metadata.newest_date()
        if newest is None or newest <= filters.until:
            filters = None  # an as_of bound that excludes nothing: search unfiltered (faster)
    store, lexical_in_store = index.vectors, index.lexical_in_store
    if filters is not None and not store.keeps_records and not lexical_in_store:
        found = _post_filtered(index, vector, query, k, filters)
        if found is not None:
            return found
    allowed = None
    if filters is not None and not (store.keeps_records and lexical_in_store):
        allowed = index.metadata.filtered_chunk_ids(filters.since, filters.until, filters.source, filters.undated)
        if len(allowed) == 0:
            return [], []
    dense = store.search(vector, k, filters, None if store.keeps_records else allowed)
    lexical = store.search_text(query, k, filters) if lexical_in_store else index.bm25.search(query, k, allowed)
    return dense, lexical


def _post_filtered(index: NewsIndex, vector: np.ndarray, query: str, k: int,
                   filters: SearchFilters) -> tuple[list[tuple[int, float]], list[tuple[int, float]]] | None:
    """For a filter that keeps most documents (an as_of bound on a corpus that goes a little past
    it): search unfiltered, deeper, and drop what does not match, which is several times faster than
    listing every matching chunk id. None when the filter is selective or too little survives (then
    the caller filters first)."""
    metadata = index.metadata
    args = (filters.since, filters.until, filters.source, filters.undated)
    if metadata.document_share(*args) < POST_FILTER_SHARE:
        return None
    depth = k * POST_FILTER_DEPTH
    dense = index.vectors.search(vector, depth, None, None)
    lexical = index.bm25.search(query, depth, None)
    kept = metadata.matching_chunk_ids(list({i for i, _ in dense} | {i for i, _ in lexical}), *args)
    dense_kept = [(i, s) for i, s in dense if i in kept][:k]
    lexical_kept = [(i, s) for i, s in lexical if i in kept][:k]
    # A list that was cut at `depth` and kept fewer than k may be missing matches further down.
    if (len(dense) == depth and len(dense_kept) < k) or (len(lexical) == depth and len(lexical_kept) < k):
        return None
    return dense_kept, lexical_kept


# "since the election": the election's day is read from the passages about it in this many days before as_of.
EVENT_LOOKBACK_DAYS = 365
EVENT_PASSAGES = 50
EVENT_BURST_ARTICLES = 3  # articles in the busiest week, at least
EVENT_BURST_SHARE = 0.3  # of all the articles about it found in the year
EVENT_STOPWORDS = {"the", "a", "an", "of", "in", "on", "at", "to", "for", "and", "or", "its", "their", "his", "her"}

# Under favour_recent, the candidates "about the query": dense cosine at least this share of the best
# candidate's (all-MiniLM-L6-v2: on-topic passages 0.4-0.7, off-topic ones under 0.2).
RECENT_RELEVANCE = 0.75

# A filter keeping at least this share of documents is applied after an unfiltered search this many
# times deeper (the top-k then survives unless the filter removes most of the best candidates).
POST_FILTER_SHARE = 0.5
POST_FILTER_DEPTH = 4


class Retriever:
    """Finds the chunks that best answer a query."""

    def __init__(self, index: NewsIndex, settings: RetrievalSettings | None = None):
        self.index = index
        self.settings = settings or index.settings.retrieval

    def run(
        self,
        query: str,
        k: int | None = None,
        filters: SearchFilters | None = None,
        favour_recent: bool = False,
        as_of: str | date | None = None,
    ) -> list[Hit]:
        """The top-k hits for `query` asked on `as_of` (default today; see rag.timeframe), best first."""
        frame = self.frame(query, as_of)
        return self.ranked(frame.query, k, frame.filters(filters), favour_recent or frame.favour_recent,
                           frame.period_until)

    def frame(self, query: str, as_of: str | date | None = None) -> TimeFrame:
        """The dates `query` is asked under, or none when retrieval.timeframe is off."""
        return resolve(query, as_of, self.event_day) if self.settings.timeframe else untimed(query)

    def event_day(self, event: str, as_of: date) -> date | None:
        """When `event` ("the election") happened, as the corpus reports it: the first day of the busiest
        week of articles whose passages name every word of it, in the year up to as_of; None when there
        is no such week (no articles, or mentions spread over the year)."""
        since = (as_of - timedelta(days=EVENT_LOOKBACK_DAYS)).isoformat()
        hits = self.ranked(event, k=EVENT_PASSAGES, filters=SearchFilters(since=since, until=as_of.isoformat()))
        words = [w for w in re.findall(r"[\w'’-]+", event.lower()) if w not in EVENT_STOPWORDS]
        articles = {(hit.doc_id, hit.date) for hit in hits
                    if hit.date and all(re.search(rf"\b{re.escape(w)}", hit.text.lower()) for w in words)}
        days = Counter(date.fromisoformat(day) for _, day in articles)
        if not days:
            return None
        # The busiest week of coverage (ties: the earliest) dates the event, from its first day; a
        # subject mentioned now and then ("the Cold War") has no such week.
        weeks = {start: sum(n for day, n in days.items() if start <= day < start + timedelta(days=7)) for start in days}
        start = min(weeks, key=lambda day: (-weeks[day], day))
        if weeks[start] < EVENT_BURST_ARTICLES or weeks[start] < EVENT_BURST_SHARE * len(articles):
            return None
        return start

    def ranked(self, query: str, k: int | None = None, filters: SearchFilters | None = None,
               favour_recent: bool = False, period_until: str | None = None) -> list[Hit]:
        """The top-k hits for `query` under exactly these filters, best first; candidates about it dated
        after `period_until` (a question's named period, rag.timeframe) rank lower the later they are."""
        query = query.strip()
        if not query:
            raise QueryError("the query is empty")
        k = k or self.settings.k
        if k < 1:
            raise QueryError("k must be at least 1")
        filters = filters or SearchFilters()
        depth = max(self.settings.candidates, k)
        dense, lexical = candidates(self.index, self.index.embedder.encode_query(query), query, depth, filters)
        fused = self._fuse(dense, lexical)
        if favour_recent or period_until:
            dates = {i: row.date for i, row in self.index.metadata.chunks_by_id(fused).items()}
            if period_until:
                fused = self._favour_period(fused, dates, dict(dense), period_until)
            if favour_recent:
                fused = self._favour_recent(fused, dates, dict(dense))
        ranked = sorted(fused.items(), key=lambda item: -item[1])[:k]
        rows = self.index.metadata.chunks_by_id([chunk_id for chunk_id, _ in ranked])  # text of the k kept only
        dense_scores, bm25_scores = dict(dense), dict(lexical)
        hits = []
        for chunk_id, score in ranked:
            row = rows.get(chunk_id)
            if row is None:  # deleted between the two reads
                continue
            hits.append(
                Hit(
                    rank=len(hits) + 1,
                    chunk_id=row.chunk_id,
                    doc_id=row.doc_id,
                    title=row.title,
                    date=row.date,
                    source=row.source,
                    url=row.url,
                    text=row.text,
                    start=row.start,
                    end=row.end,
                    score=round(score, 6),
                    dense_score=dense_scores.get(chunk_id),
                    bm25_score=bm25_scores.get(chunk_id),
                )
            )
        return hits

    def _fuse(self, dense: list[tuple[int, float]], lexical: list[tuple[int, float]]) -> dict[int, float]:
        """Weighted reciprocal rank fusion: sum of weight / (rrf_k + rank)."""
        fused: dict[int, float] = {}
        for results, weight in ((dense, self.settings.dense_weight), (lexical, self.settings.bm25_weight)):
            for rank, (chunk_id, _) in enumerate(results, start=1):
                fused[chunk_id] = fused.get(chunk_id, 0.0) + weight / (self.settings.rrf_k + rank)
        return fused

    def _favour_recent(self, fused: dict[int, float], dates: dict[int, str | None],
                       cosines: dict[int, float]) -> dict[int, float]:
        """Halve the score of a candidate about the query for every half-life it is older than the
        newest such candidate; the others rank after all of them, in their fused order."""
        about, ordinals = self._about(fused, dates, cosines)
        if not ordinals:
            return fused
        newest, oldest = max(ordinals.values()), min(ordinals.values())
        return self._discounted(fused, about, {i: newest - ordinals.get(i, oldest) for i in about})

    def _favour_period(self, fused: dict[int, float], dates: dict[int, str | None], cosines: dict[int, float],
                       period_until: str) -> dict[int, float]:
        """Halve the score of a candidate about the query for every half-life its article came out after
        the period the question names (`TimeFrame.period_until`): a later article may look back on it,
        but one of the period reports it; the others rank after all of them. Unchanged when no
        candidate about the query is later."""
        about, ordinals = self._about(fused, dates, cosines)
        end = date.fromisoformat(period_until).toordinal()
        late = {i: max(0, ordinals[i] - end) for i in about if i in ordinals}
        if not any(late.values()):
            return fused
        return self._discounted(fused, about, late)

    @staticmethod
    def _about(fused: dict[int, float], dates: dict[int, str | None],
               cosines: dict[int, float]) -> tuple[set[int], dict[int, int]]:
        """The candidates about the query (dense cosine near the best's) and their dated days."""
        best = max(cosines.values(), default=0.0)
        about = {i for i in fused if best > 0 and cosines.get(i, 0.0) >= RECENT_RELEVANCE * best}
        return about, {i: date.fromisoformat(d).toordinal() for i, d in dates.items() if d and i in about}

    def _discounted(self, fused: dict[int, float], about: set[int], days: dict[int, int]) -> dict[int, float]:
        """Each candidate about the query halved every half-life of its `days`; the rest after them."""
        half_life = self.settings.recency_half_life_days
        scores = {i: fused[i] * float(np.exp2(-days.get(i, 0) / half_life)) for i in about}
        rest = {i: score for i, score in fused.items() if i not in about}
        if rest:  # scaled to rank just below the lowest of those, in their own order
            scale = 0.999 * min(scores.values()) / max(rest.values())
            scores |= {i: score * scale for i, score in rest.items()}
        return scores
