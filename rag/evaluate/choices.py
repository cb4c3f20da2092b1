"""Multiple choice without an LLM: which of a question's choices do the retrieved passages state?

Each choice is scored from the single sentences of the top passages (retrieved for the question, as
of its date) by a linear model over:
  - `support`: the grounding checker's best support for the choice as a claim answering the question
    (its names, numbers and dates must be in the sentence: the checker's facts check),
  - `stated`: some sentence holds every word of the choice,
  - `stated_rank`: 1 / rank of the best passage with such a sentence (0 when none has one),
  - `stated_share`: the share of the passages with such a sentence (news repeats what happened),
  - `stated_relevance`: the best such sentence's embedding cosine to the question,
  - `words_found`: the largest share of the choice's words one sentence holds,
  - `stated_recency`: 1 / (1 + weeks between the newest article with such a sentence and the day the
    question is asked): news questions are about what happened lately (0 when undated or none).
The weights are fitted (a conditional logit: the right choice against the others of its question) on
RealTime QA questions 400-1399 (`rag eval --limit 300` asks 0-299) by `bench/calibrate_choices.py`
and read from eval/calibration.json; the
highest score wins, ties going to the first choice.
"""

from __future__ import annotations

from datetime import date

import numpy as np

from rag.config import calibrated
from rag.evaluate import metrics as mx
from rag.grounding import GroundingChecker
from rag.types import Hit

CHOICE_FEATURES = ("support", "stated", "stated_rank", "stated_share", "stated_relevance", "words_found",
                   "stated_recency")


def choice_features(question: str, choices: list[str], hits: list[Hit], checker: GroundingChecker,
                    as_of: str | None = None) -> np.ndarray:
    """One row of CHOICE_FEATURES per choice (zeros when the passages have no sentence)."""
    out = np.zeros((len(choices), len(CHOICE_FEATURES)))
    evidence = checker.evidence(question, hits)
    sources = evidence.sources
    if not sources or not choices:
        return out
    support = checker.support(list(choices), sources, evidence.vectors, question=question)
    sentence_words = [set(mx.normalize_answer(s.text).split()) for s in sources]
    passages = max(1, len({s.passage for s in sources}))
    recency = [_recency(hit.date, as_of) for hit in hits]
    for row, (choice, (rows, _)) in enumerate(zip(choices, support)):
        words = set(mx.normalize_answer(choice).split())
        stating = [j for j, found in enumerate(sentence_words) if words and words <= found]
        out[row] = (
            float(checker.probability(rows).max()) if len(rows) else 0.0,
            float(bool(stating)),
            max((1.0 / (sources[j].passage + 1) for j in stating), default=0.0),
            len({sources[j].passage for j in stating}) / passages,
            max((float(evidence.relevance[j]) for j in stating), default=0.0),
            max((len(words & found) / len(words) for found in sentence_words), default=0.0) if words else 0.0,
            max((recency[sources[j].passage] for j in stating), default=0.0),
        )
    return out


def _recency(published: str | None, as_of: str | None) -> float:
    if not published or not as_of:
        return 0.0
    try:
        days = (date.fromisoformat(as_of[:10]) - date.fromisoformat(published[:10])).days
    except ValueError:
        return 0.0
    return 1.0 / (1.0 + max(days, 0) / 7)


def pick(features: np.ndarray, weights: np.ndarray | None = None) -> tuple[int, np.ndarray]:
    """(index of the winning choice, every choice's score)."""
    weights = np.asarray(calibrated("multiple_choice", "weights") if weights is None else weights, dtype=np.float64)
    scores = features @ weights
    return int(np.argmax(scores)), scores
