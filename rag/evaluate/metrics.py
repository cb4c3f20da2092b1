"""Evaluation metrics, each a small pure function; every aggregate carries the count it rests on.

Retrieval metrics take a ranked list of ids and the set of relevant ids. Answer metrics use SQuAD's
normalization (lower case, no punctuation or articles). Classification metrics take scores or
predictions with boolean labels. A metric with nothing to measure returns None, never NaN.
"""

from __future__ import annotations

import math
import re
import string
from collections import Counter
from typing import Iterable, Sequence

_ARTICLES = re.compile(r"\b(a|an|the)\b")
_PUNCTUATION = set(string.punctuation) | set("“”‘’–—")
POSSESSIVE = re.compile(r"(?<=\w)['’]s\b", re.IGNORECASE)


# -- retrieval ---------------------------------------------------------------------------------
def hit_at_k(ranked: Sequence[str], relevant: set[str], k: int) -> float:
    """1 when a relevant id is in the first k."""
    return float(any(doc in relevant for doc in ranked[:k]))


def recall_at_k(ranked: Sequence[str], relevant: set[str], k: int) -> float:
    """Share of the relevant ids found in the first k."""
    return len(set(ranked[:k]) & relevant) / len(relevant) if relevant else 0.0


def reciprocal_rank(ranked: Sequence[str], relevant: set[str], k: int = 10) -> float:
    """1 / rank of the first relevant id within k, else 0."""
    for rank, doc in enumerate(ranked[:k], start=1):
        if doc in relevant:
            return 1.0 / rank
    return 0.0


def ndcg_at_k(ranked: Sequence[str], relevant: set[str], k: int = 10) -> float:
    """Binary-relevance nDCG@k."""
    dcg = sum(1.0 / math.log2(rank + 1) for rank, doc in enumerate(ranked[:k], start=1) if doc in relevant)
    ideal = sum(1.0 / math.log2(rank + 1) for rank in range(1, min(len(relevant), k) + 1))
    return dcg / ideal if ideal else 0.0


# -- answers -----------------------------------------------------------------------------------
def normalize_answer(text: str) -> str:
    """SQuAD normalization: lower case, punctuation and articles removed, spaces collapsed."""
    text = "".join(ch for ch in text.lower() if ch not in _PUNCTUATION)
    return " ".join(_ARTICLES.sub(" ", text).split())


def exact_match(prediction: str, golds: Iterable[str]) -> float:
    """1 when the normalized prediction equals a normalized gold answer."""
    predicted = normalize_answer(prediction)
    return float(any(predicted == normalize_answer(gold) for gold in golds))


def token_f1(prediction: str, golds: Iterable[str]) -> float:
    """The best token-overlap F1 against any gold answer."""
    best = 0.0
    predicted = normalize_answer(prediction).split()
    for gold in golds:
        expected = normalize_answer(gold).split()
        common = sum((Counter(predicted) & Counter(expected)).values())
        if not common:
            continue
        precision, recall = common / len(predicted), common / len(expected)
        best = max(best, 2 * precision * recall / (precision + recall))
    return best


def contains_answer(prediction: str, golds: Iterable[str]) -> float:
    """1 when a normalized gold answer appears inside the normalized prediction, also once possessive
    endings are dropped from both: "Colombia’s first leftist leader" contains "Colombia" (SQuAD's
    normalization makes it "colombias"), while "Dominos" still contains "Domino’s"."""
    forms = (normalize_answer, lambda text: normalize_answer(POSSESSIVE.sub("", text)))
    predicted = [f" {form(prediction)} " for form in forms]
    return float(any(f" {form(gold)} " in text for gold in golds if normalize_answer(gold)
                     for form, text in zip(forms, predicted)))


# -- classification ------------------------------------------------------------------------------
def precision_recall_f1(predicted: Sequence[bool], labels: Sequence[bool]) -> dict:
    """Precision, recall and F1 of the positive class, with the counts."""
    tp = sum(p and y for p, y in zip(predicted, labels))
    fp = sum(p and not y for p, y in zip(predicted, labels))
    fn = sum(y and not p for p, y in zip(predicted, labels))
    precision = tp / (tp + fp) if tp + fp else None
    recall = tp / (tp + fn) if tp + fn else None
    f1 = 2 * precision * recall / (precision + recall) if precision and recall else (0.0 if precision is not None and recall is not None else None)
    def rounded(x):
        return None if x is None else round(x, 4)

    return {"precision": rounded(precision), "recall": rounded(recall), "f1": rounded(f1),
            "tp": tp, "fp": fp, "fn": fn, "count": len(labels)}


def roc_auc(scores: Sequence[float], labels: Sequence[bool]) -> float | None:
    """Probability that a positive outscores a negative (ties count half); None without both classes."""
    positives = [s for s, y in zip(scores, labels) if y]
    negatives = [s for s, y in zip(scores, labels) if not y]
    if not positives or not negatives:
        return None
    wins = sum((p > n) + 0.5 * (p == n) for p in positives for n in negatives)
    return wins / (len(positives) * len(negatives))


def balanced_accuracy(predicted: Sequence[bool], labels: Sequence[bool]) -> float | None:
    """Mean of the recall on positives and on negatives."""
    positives = [p for p, y in zip(predicted, labels) if y]
    negatives = [p for p, y in zip(predicted, labels) if not y]
    if not positives or not negatives:
        return None
    return (sum(positives) / len(positives) + sum(not p for p in negatives) / len(negatives)) / 2


def spearman(a: Sequence[float], b: Sequence[float]) -> float | None:
    """Spearman rank correlation (average ranks for ties); None when either side is constant."""
    if len(a) < 2:
        return None
    ra, rb = _ranks(a), _ranks(b)
    ma, mb = sum(ra) / len(ra), sum(rb) / len(rb)
    cov = sum((x - ma) * (y - mb) for x, y in zip(ra, rb))
    var = math.sqrt(sum((x - ma) ** 2 for x in ra) * sum((y - mb) ** 2 for y in rb))
    return cov / var if var else None


def _ranks(values: Sequence[float]) -> list[float]:
    order = sorted(range(len(values)), key=lambda i: values[i])
    ranks = [0.0] * len(values)
    i = 0
    while i < len(order):
        j = i
        while j + 1 < len(order) and values[order[j + 1]] == values[order[i]]:
            j += 1
        for position in range(i, j + 1):
            ranks[order[position]] = (i + j) / 2 + 1
        i = j + 1
    return ranks


# -- aggregation ---------------------------------------------------------------------------------
def mean(values: Iterable[float | None]) -> dict:
    """{"value", "count"} over the values that exist (None values are not measured, not zero)."""
    present = [v for v in values if v is not None]
    return {"value": round(sum(present) / len(present), 4) if present else None, "count": len(present)}


def percentiles(values: Iterable[float | None]) -> dict:
    """p50/p95 (nearest rank) with the count."""
    present = sorted(v for v in values if v is not None)
    if not present:
        return {"p50": None, "p95": None, "count": 0}

    def at(q: float) -> float:
        return round(present[min(len(present) - 1, max(0, math.ceil(q * len(present)) - 1))], 1)

    return {"p50": at(0.5), "p95": at(0.95), "count": len(present)}
