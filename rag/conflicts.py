"""Sources that disagree: two articles stating different values for the fact a question asks for.

Among the best-ranked answer sentences (rag.compose) that state a fact of the asked kind, each of the
best four is compared with every lower-ranked sentence of another article that reports the same
thing (their embeddings are close: the same statement, worded alike) and ranks nearly as high. The
two disagree when their values of that kind differ: quantities as values with units (rag.facts: "48 million euros" against
"52 million euros"; "about 50" agrees with "50"), dates as dates, names as names. The answer then
says so and cites both, ordered by date, instead of silently picking one.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from rag.compose import Candidate
from rag.entities import Entity
from rag.facts import DateMention, Quantity, dates_agree, quantities_agree
from rag.types import Hit

DEPTH = 16  # candidates looked at (8 and 16 compared on the fit half: 16 finds 3 more of 100)
# Two sentences report the same fact when their embeddings are this close (MiniLM cosine), and the
# second is a candidate answer nearly as likely as the first. Fitted on the fit half of bench/conflicts.py
# (F1 0.56 there; 0.8 and 0.85 tie, the ratio does not matter on those cases).
SAME_FACT = 0.8
SCORE_RATIO = 0.5
ANCHORS = 4  # how many of the best sentences are compared with the ones below them (fitted: 1, 2, 3, 4 or 6)


@dataclass
class Conflict:
    """Two candidate answer sentences from different articles with different values."""

    first: Candidate
    second: Candidate
    first_value: str
    second_value: str
    similarity: float

    def to_json(self, hits: list[Hit]) -> dict:
        return {"values": [self.first_value, self.second_value],
                "doc_ids": [hits[self.first.source.passage].doc_id, hits[self.second.source.passage].doc_id],
                "similarity": round(self.similarity, 4)}


def find_conflict(candidates: list[Candidate], vectors: np.ndarray, hits: list[Hit], same_fact: float = SAME_FACT,
                  score_ratio: float = SCORE_RATIO, anchors: int = ANCHORS) -> Conflict | None:
    """The first disagreement between one of the best `anchors` answer sentences and a lower-ranked
    sentence of another article, or None. `vectors` are the evidence vectors the candidates index."""
    stating = [c for c in candidates[:DEPTH] if c.answer_spans and c.score > 0]
    for position, first in enumerate(stating[:anchors]):
        first_doc = hits[first.source.passage].doc_id
        for other in stating[position + 1:]:
            if hits[other.source.passage].doc_id == first_doc or other.score < score_ratio * first.score:
                continue
            similarity = float(vectors[first.index] @ vectors[other.index])
            if similarity < same_fact:
                continue
            values = disagreement(first, other)
            if values is not None:
                return Conflict(first, other, values[0], values[1], similarity)
    return None


def disagreement(first: Candidate, other: Candidate) -> tuple[str, str] | None:
    """(first's value, other's value) when the two state different values of the same kind: a figure
    or date of the first that nothing in the other agrees with, where the other states a comparable
    one; or the first's answer name, when the other names someone else of that kind."""
    theirs = other.answer_spans
    for kind in (Quantity, DateMention):  # sentences stating as many figures: compare them in order
        a = [x for x in first.answer_spans if isinstance(x, kind)]
        b = [x for x in theirs if isinstance(x, kind)]
        if a and len(a) == len(b):
            for mine, their in zip(a, b):
                if not _same(mine, their):
                    return mine.text, their.text
            return None
    for mine in first.answer_spans:
        if isinstance(mine, Quantity):
            comparable = [q for q in theirs if isinstance(q, Quantity) and comparable_quantities(mine, q)]
            if comparable and not any(isinstance(q, Quantity) and (quantities_agree(mine, q) or quantities_agree(q, mine))
                                      for q in theirs):
                return mine.text, comparable[0].text
        elif isinstance(mine, DateMention):
            comparable = [d for d in theirs if isinstance(d, DateMention)
                          and (d.year is None) == (mine.year is None) and (d.day is None) == (mine.day is None)]
            if comparable and not any(isinstance(d, DateMention) and (dates_agree(mine, d) or dates_agree(d, mine))
                                      for d in theirs):
                return mine.text, comparable[0].text
        elif isinstance(mine, Entity) and mine is first.answer_spans[0]:  # the answer's name, not every name
            names = [e.text for e in theirs if isinstance(e, Entity) and e.kind == mine.kind]
            ours = normalized(mine.text)
            if names and not any(ours in normalized(n) or normalized(n) in ours for n in names):
                return mine.text, names[0]
    return None


def _same(a: Quantity | DateMention, b: Quantity | DateMention) -> bool:
    """Whether two aligned values agree (or are not comparable, so cannot disagree)."""
    if isinstance(a, Quantity):
        return not comparable_quantities(a, b) or quantities_agree(a, b) or quantities_agree(b, a)
    return dates_agree(a, b) or dates_agree(b, a) or (a.year is None) != (b.year is None)


def comparable_quantities(a: Quantity, b: Quantity) -> bool:
    """Whether two quantities could state the same fact: same kind of number, same unit (or none),
    and the same thing counted when both say what they count."""
    if a.ordinal != b.ordinal or (a.unit != b.unit and a.unit and b.unit) or ((a.unit == "%") != (b.unit == "%")):
        return False
    return not (a.counted and b.counted) or bool(set(a.counted) & set(b.counted))


def normalized(name: str) -> str:
    return " ".join(name.lower().replace("’", "'").removeprefix("the ").split())
