"""Hybrid retrieval: dense (FAISS or Milvus) and BM25 candidates fused by reciprocal rank, with filters.

Filters (date range, source) restrict both retrievers to the matching chunks before ranking, so a
selective filter still returns k results. Reciprocal rank fusion needs no score calibration between
the two retrievers; `favour_recent` then discounts each candidate by its article's age relative to
the newest candidate (a half-life in days), which keeps undated and old articles findable.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

import numpy as np

from rag.config import RetrievalSettings
from rag.index import NewsIndex
from rag.ingest.base import normalize_date
from rag.types import Hit


class QueryError(ValueError):
    """A search request with an invalid parameter."""


@dataclass
class SearchFilters:
    """Restrictions on which chunks may be returned."""

    since: str | None = None  # inclusive ISO date
    until: str | None = None  # inclusive ISO date
    source: str | None = None

    def __post_init__(self) -> None:
        for name in ("since", "until"):
            value = getattr(self, name)
            if value:
                parsed = normalize_date(value)
                if parsed is None:
                    raise QueryError(f"--{name}: {value!r} is not a date (use YYYY-MM-DD)")
                setattr(self, name, parsed)
        if self.since and self.until and self.since > self.until:
            raise QueryError(f"--since {self.since} is after --until {self.until}")

    @property
    def active(self) -> bool:
        """Whether any filter is set."""
        return bool(self.since or self.until or self.source)


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
    ) -> list[Hit]:
        """The top-k hits for `query`, best first."""
        query = query.strip()
        if not query:
            raise QueryError("the query is empty")
        k = k or self.settings.k
        if k < 1:
            raise QueryError("k must be at least 1")
        filters = filters or SearchFilters()
        depth = max(self.settings.candidates, k)
        dense, lexical = self.index.candidates(self.index.embedder.encode_query(query), query, depth, filters)
        fused = self._fuse(dense, lexical)
        rows = self.index.metadata.chunks_by_id(fused)
        if favour_recent:
            fused = self._favour_recent(fused, {i: row.date for i, row in rows.items()})
        ranked = sorted(fused.items(), key=lambda item: -item[1])[:k]
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

    def _favour_recent(self, fused: dict[int, float], dates: dict[int, str | None]) -> dict[int, float]:
        """Halve a candidate's score for every half-life it is older than the newest candidate."""
        ordinals = {i: date.fromisoformat(d).toordinal() for i, d in dates.items() if d}
        if not ordinals:
            return fused
        newest, oldest = max(ordinals.values()), min(ordinals.values())
        half_life = self.settings.recency_half_life_days
        return {
            chunk_id: score * float(np.exp2(-(newest - ordinals.get(chunk_id, oldest)) / half_life))
            for chunk_id, score in fused.items()
        }
