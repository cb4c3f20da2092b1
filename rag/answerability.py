"""Does the corpus answer this question? A decision from several signals, not one similarity.

ClapNQ's unanswerable questions come with on-topic passages, so "is anything close to the question"
cannot tell them apart. The decision is a logistic model of:
  - `best_candidate`: the composer's probability that its best sentence holds the answer,
  - `best_relevance`: the highest cosine between the question and a passage sentence,
  - `best_overlap`: the highest share of the question's content words in one sentence,
  - `kind_found`: the question asks for a kind of fact and a top-3 sentence states one,
  - `kind_missing`: it asks for one and none of the top 3 does,
  - `retrievers_agree`: share of the passages that both BM25 and the dense retriever found,
  - `best_passage`: the highest cosine between the question and a whole passage (the dense retriever's),
  - `margin`: how far the best sentence leads the second.
It is fitted on ClapNQ's fit half by `bench/calibrate_grounding.py`, with the threshold chosen to
refuse few answerable questions there; both are read from eval/calibration.json.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from rag.compose import Candidate
from rag.config import calibrated
from rag.question import Question
from rag.types import Hit

SIGNALS = ("best_candidate", "best_relevance", "best_overlap", "kind_found", "kind_missing", "retrievers_agree",
           "best_passage", "margin")
DEFAULT_WEIGHTS = tuple(calibrated("answerability", "weights"))


@dataclass
class Decision:
    """Whether to answer, how sure, and the signals it rests on."""

    answerable: bool
    probability: float
    signals: dict = field(default_factory=dict)


class AnswerabilityGate:
    """Decides from the ranked candidates and the hits whether to answer or refuse."""

    def __init__(self, threshold: float, weights: tuple[float, ...] = DEFAULT_WEIGHTS):
        self.weights = np.asarray(weights, dtype=np.float64)
        self.threshold = threshold

    @staticmethod
    def signals(asks: Question, candidates: list[Candidate], hits: list[Hit]) -> np.ndarray:
        if not candidates:
            return np.zeros(len(SIGNALS))
        top = candidates[:3]
        both = [h for h in hits if h.dense_score is not None and h.bm25_score is not None]
        dense = [h.dense_score for h in hits if h.dense_score is not None]
        return np.array([
            candidates[0].score,
            max(c.features["relevance"] for c in candidates),
            max(c.features["question_overlap"] for c in candidates),
            float(bool(asks.kinds) and any(c.answer_spans for c in top)),
            float(bool(asks.kinds) and not any(c.answer_spans for c in top)),
            len(both) / len(hits) if hits else 0.0,
            max(dense) if dense else 0.0,
            candidates[0].score - (candidates[1].score if len(candidates) > 1 else 0.0),
        ])

    def probability(self, signals: np.ndarray) -> np.ndarray:
        return 1.0 / (1.0 + np.exp(-(self.weights[0] + signals @ self.weights[1:])))

    def run(self, asks: Question, candidates: list[Candidate], hits: list[Hit]) -> Decision:
        if not candidates:
            return Decision(False, 0.0)
        signals = self.signals(asks, candidates, hits)
        probability = float(self.probability(signals))
        return Decision(probability >= self.threshold, round(probability, 4),
                        {n: round(float(v), 4) for n, v in zip(SIGNALS, signals)})
