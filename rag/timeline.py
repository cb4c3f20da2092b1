"""A story's timeline: the articles about a query, ordered by date, each with its most relevant sentence.

The query is searched as any question is (hybrid retrieval under its time frame, rag.timeframe), with
more passages than an answer reads. Each article counts once, represented by the sentence closest to
the query (the grounding checker's sentence embeddings). Articles whose best sentence is far from
the query, relative to the best article's, are left out: a timeline lists the story, not everything
that shares a word with it. Undated articles come last.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import asdict, dataclass, field
from datetime import date

from rag.grounding import GroundingChecker
from rag.index import NewsIndex
from rag.retrieve import Retriever
from rag.types import Dated, SearchFilters

DEFAULT_PASSAGES = 40
# An article stays when its best sentence is at least this similar to the query (MiniLM cosine) and at
# least this share of the best article's similarity.
MIN_SIMILARITY = 0.3
RELATIVE_SIMILARITY = 0.7


@dataclass
class TimelineEntry(Dated):
    """One article on the timeline."""

    doc_id: str
    title: str
    date: str | None
    source: str
    url: str
    sentence: str  # the article's sentence most relevant to the query
    start: int  # offsets of that sentence in the document text
    end: int
    similarity: float


@dataclass
class Timeline:
    """The articles about a query, oldest first, and how many appeared each day."""

    query: str
    as_of: str | None
    entries: list[TimelineEntry] = field(default_factory=list)
    per_day: list[tuple[str, int]] = field(default_factory=list)
    timeframe: dict | None = None

    def to_json(self) -> dict:
        return {"query": self.query, "as_of": self.as_of, "timeframe": self.timeframe,
                "entries": [asdict(e) for e in self.entries],
                "per_day": [{"date": day, "articles": count} for day, count in self.per_day]}

    def format(self, width: int = 30) -> str:
        """Text for the terminal: a bar per day, then the entries."""
        if not self.entries:
            return "No articles about this."
        peak = max((count for _, count in self.per_day), default=1)
        lines = [f"{len(self.entries)} article(s) about “{self.query}”" + (f", as of {self.as_of}" if self.as_of else ""), ""]
        lines += [f"{day}  {'█' * max(1, round(count / peak * width))} {count}" for day, count in self.per_day]
        lines.append("")
        for entry in self.entries:
            lines.append(f"{entry.date or 'undated'}  {entry.title or entry.doc_id}" + (f" ({entry.source})" if entry.source else ""))
            lines.append(f"    “{' '.join(entry.sentence.split())}”")
        return "\n".join(lines)


class TimelineBuilder:
    """Builds timelines over one index."""

    def __init__(self, index: NewsIndex, checker: GroundingChecker | None = None):
        self.index = index
        self.retriever = Retriever(index)
        self.checker = checker or GroundingChecker.from_settings(index.embedder, index.settings)

    def run(self, query: str, k: int | None = None, filters: SearchFilters | None = None,
            as_of: str | date | None = None) -> Timeline:
        frame = self.retriever.frame(query, as_of)
        hits = self.retriever.ranked(frame.query, k=k or DEFAULT_PASSAGES, filters=frame.filters(filters),
                                     period_until=frame.period_until)
        timeline = Timeline(query=query, as_of=frame.as_of, timeframe=frame.to_json())
        if not hits:
            return timeline
        evidence = self.checker.evidence(frame.query, hits)
        best: dict[str, tuple[float, object]] = {}
        for sentence, similarity in zip(evidence.sources, evidence.relevance):
            doc_id = hits[sentence.passage].doc_id
            if doc_id not in best or similarity > best[doc_id][0]:
                best[doc_id] = (float(similarity), sentence)
        top = max(similarity for similarity, _ in best.values())
        floor = max(MIN_SIMILARITY, RELATIVE_SIMILARITY * top)
        for doc_id, (similarity, sentence) in best.items():
            if similarity < floor:
                continue
            hit = hits[sentence.passage]
            timeline.entries.append(TimelineEntry(doc_id, hit.title, hit.date, hit.source, hit.url, sentence.text,
                                                  sentence.start, sentence.end, round(similarity, 4)))
        timeline.entries.sort(key=lambda e: (e.date is None, e.date or "", -e.similarity))
        timeline.per_day = sorted(Counter(e.date for e in timeline.entries if e.date).items())
        return timeline
