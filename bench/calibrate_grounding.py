"""Fit the support model of the grounding checker and its threshold; write eval/calibration.json.

    python bench/calibrate_grounding.py            # then bench/calibrate_answers.py for the composer and the gate

Data (../shared/data, never copied), each split in a fit half and a held-out half:
- QAGS CNN/DM: summary sentences with human yes/no labels ("is this supported by the article?"),
  split by article (first half fit). No question: everything a sentence says is new.
- ClapNQ answerable: the gold answers (human paraphrases of their passages) as claims for their own
  question, against their own passages (supported) and against another question's (not supported);
  even rows fit, odd rows held out. Also, held-out rows with one fact changed (a number, a name or a
  date swapped for another from elsewhere): the exact facts check must reject them.
The soft score is a logistic regression of (cosine, overlap, new_overlap) on the best source under
the current weights, alternating a few times; the hard facts check is a rule, not fitted. The
threshold is the strictest that still accepts at least MIN_ACCEPTED of ClapNQ's fit-half gold answers
whole (every sentence supported): human paraphrases of their sources must pass.
"""

from __future__ import annotations

import json
import random
import re
import time

import numpy as np
from common import ROOT, SHARED_DATA, require

from rag.config import EmbeddingSettings
from rag.embedding import Embedder
from rag.grounding import DEFAULT_WEIGHTS, FACT_PENALTY, FEATURES, GroundingChecker, split_sentences

OUT = ROOT / "eval" / "calibration.json"
MIN_ACCEPTED = 0.93  # of ClapNQ fit-half gold answers kept whole (the issue asks >= 90%)
MAX_CLAIMS = 3  # sentences of a gold answer checked


def roc_auc(scores, labels) -> float:
    """Area under the ROC curve (probability a positive outranks a negative; ties count half)."""
    scores, labels = np.asarray(scores, float), np.asarray(labels, bool)
    pos, neg = scores[labels], scores[~labels]
    if not len(pos) or not len(neg):
        return float("nan")
    greater = (pos[:, None] > neg[None, :]).sum() + 0.5 * (pos[:, None] == neg[None, :]).sum()
    return float(greater / (len(pos) * len(neg)))


def balanced_accuracy(predicted, labels) -> float:
    predicted, labels = np.asarray(predicted, bool), np.asarray(labels, bool)
    return float(((predicted & labels).sum() / labels.sum() + (~predicted & ~labels).sum() / (~labels).sum()) / 2)


def spearman(a, b) -> float:
    from scipy.stats import spearmanr

    return float(spearmanr(a, b).statistic)


def read_jsonl(path) -> list[dict]:
    return [json.loads(line) for line in open(require(path), encoding="utf-8")]


# -- items: (split, group, features of every source for one claim, label) ---------------------------
def qags_items(checker: GroundingChecker) -> list[dict]:
    rows = read_jsonl(SHARED_DATA / "qags" / "mturk_cnndm.jsonl")
    half, items = len(rows) // 2, []
    for index, row in enumerate(rows):
        sources = checker.document_sentences(row["article"])
        claims = [s["sentence"] for s in row["summary_sentences"]]
        for claim, (features, _) in zip(row["summary_sentences"], checker.support(claims, sources)):
            votes = [r["response"] == "yes" for r in claim["responses"]]
            items.append({"set": "qags", "split": "fit" if index < half else "held_out", "group": index,
                          "features": features, "label": sum(votes) > len(votes) / 2, "yes_share": sum(votes) / len(votes)})
    return items


def clapnq_items(checker: GroundingChecker) -> list[dict]:
    """Gold answers against their own passages (label True) and another question's (False)."""
    rows = [r for r in read_jsonl(SHARED_DATA / "clapnq" / "dev_answerable_a.jsonl")
            if r["output"] and r["output"][0]["answer"].strip()]
    items = []
    for index, row in enumerate(rows):
        answer = row["output"][0]["answer"]
        claims = [answer[s:e] for s, e in split_sentences(answer)][:MAX_CLAIMS]
        for passages, label in ((row, True), (rows[(index + 7) % len(rows)], False)):
            sources = checker.document_sentences("\n\n".join(p["text"] for p in passages["passages"]))
            support = checker.support(claims, sources, question=row["input"])
            for number, (claim_features, _) in enumerate(support):
                items.append({"set": "clapnq", "split": "fit" if index % 2 == 0 else "held_out", "group": index,
                              "claim": number, "features": claim_features, "label": label})
    return items


def perturbed_items(checker: GroundingChecker) -> list[dict]:
    """Held-out gold answers with one fact swapped for a different one: all must be rejected."""
    rows = [r for r in read_jsonl(SHARED_DATA / "clapnq" / "dev_answerable_a.jsonl")
            if r["output"] and r["output"][0]["answer"].strip()]
    rng = random.Random(7)
    swaps, results = 0, []
    for index, row in enumerate(rows):
        if index % 2 == 0:
            continue
        answer = row["output"][0]["answer"]
        claims = [answer[s:e] for s, e in split_sentences(answer)][:MAX_CLAIMS]
        sources = checker.document_sentences("\n\n".join(p["text"] for p in row["passages"]))
        passage_text = " ".join(p["text"] for p in row["passages"])
        for claim in claims:
            changed = perturb(claim, passage_text, checker, rng)
            if changed is None:
                continue
            swaps += 1
            original, = checker.check([claim], sources, question=row["input"])
            verdict, = checker.check([changed], sources, question=row["input"])
            results.append({"claim": claim, "changed": changed, "original_supported": original.supported,
                            "changed_supported": verdict.supported, "score": verdict.score})
    return results


def perturb(claim: str, passage: str, checker: GroundingChecker, rng: random.Random) -> str | None:
    """The claim with one number, date or name replaced by another the passage does not contain."""
    facts, = checker.facts([claim])
    numbers = [q for q in facts.quantities if str(int(q.value)) in q.text.replace(",", "")]
    if numbers:
        q = rng.choice(numbers)
        digits = re.search(r"\d[\d,]*", q.text)
        if digits:
            value = int(digits.group().replace(",", "")) + rng.choice([1, 2, 3, 7, 10])
            return claim.replace(digits.group(), f"{value:,}" if "," in digits.group() else str(value), 1)
    names = [e for e in facts.entities if e.kind in ("person", "org", "place")]
    if names:
        entity = rng.choice(names)
        pool = {"person": ["John Smith", "Maria Lopez", "Ahmed Khan"], "org": ["General Motors", "UNESCO", "the Red Cross"],
                "place": ["Portugal", "Nairobi", "Ohio"]}[entity.kind]
        replacement = next((p for p in pool if p.lower() not in passage.lower()), None)
        if replacement:
            return claim.replace(entity.text, replacement, 1)
    return None


# -- fitting ---------------------------------------------------------------------------------------
def best_source_features(checker: GroundingChecker, features: np.ndarray) -> np.ndarray:
    """The features of the source scoring highest under the current weights (facts check included)."""
    scores = checker.probability(features)
    return features[int(np.argmax(scores))]


def fit(checker: GroundingChecker, train: list[dict]) -> np.ndarray:
    from sklearn.linear_model import LogisticRegression

    weights = np.asarray(DEFAULT_WEIGHTS, float)
    if len(weights) < 4:
        weights = np.concatenate([weights, [0.0]])
    for _ in range(4):  # alternate: best source under the current weights, then refit
        checker.weights = weights
        rows = [(best_source_features(checker, it["features"]), it["label"]) for it in train]
        # Items whose every source fails the facts check (or that restate the question) score 0 whatever
        # the weights: they teach the logistic part nothing.
        rows = [(x, y) for x, y in rows if x[3] == 0]
        x = np.array([r[0][:3] for r in rows])
        y = np.array([r[1] for r in rows])
        model = LogisticRegression(C=10.0, class_weight="balanced", max_iter=2000).fit(x, y)
        weights = np.concatenate([model.intercept_, model.coef_[0]])
    checker.weights = weights
    return weights


def score(checker: GroundingChecker, items: list[dict]) -> np.ndarray:
    return np.array([float(checker.probability(it["features"]).max()) if len(it["features"]) else 0.0 for it in items])


def answers_accepted(items: list[dict], scores: np.ndarray, threshold: float) -> tuple[float, int]:
    """Share of gold answers (ClapNQ, own passages) whose every checked sentence is supported."""
    by_answer: dict[int, list[bool]] = {}
    for it, s in zip(items, scores):
        if it["set"] == "clapnq" and it["label"]:
            by_answer.setdefault(it["group"], []).append(s >= threshold)
    kept = [all(v) for v in by_answer.values()]
    return (float(np.mean(kept)) if kept else float("nan")), len(kept)


def report(items: list[dict], scores: np.ndarray, threshold: float) -> dict:
    labels = np.array([it["label"] for it in items])
    out = {"items": len(items), "supported_share": round(float(labels.mean()), 4),
           "roc_auc": round(roc_auc(scores, labels), 4),
           "balanced_accuracy": round(balanced_accuracy(scores >= threshold, labels), 4)}
    if items and items[0]["set"] == "qags":
        by_article: dict[int, list] = {}
        for it, s in zip(items, scores):
            by_article.setdefault(it["group"], []).append((s, it["yes_share"]))
        out["summaries"] = len(by_article)
        out["summary_spearman"] = round(spearman([np.mean([a for a, _ in v]) for v in by_article.values()],
                                                 [np.mean([h for _, h in v]) for v in by_article.values()]), 4)
    if items and items[0]["set"] == "clapnq":
        share, count = answers_accepted(items, scores, threshold)
        out["gold_answers_accepted_whole"] = round(share, 4)
        out["gold_answers"] = count
        positives = scores[labels]
        out["gold_sentences_accepted"] = round(float((positives >= threshold).mean()), 4)
    return out


def main() -> None:
    import argparse
    import pickle

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reuse", action="store_true", help="reuse the features computed by the last run (bench/.cache)")
    args = parser.parse_args()
    checker = GroundingChecker(Embedder(EmbeddingSettings()))
    cache = ROOT / "bench" / ".cache" / "support_items.pkl"
    started = time.perf_counter()
    if args.reuse and cache.exists():
        qags, clapnq = pickle.loads(cache.read_bytes())
    else:
        qags, clapnq = qags_items(checker), clapnq_items(checker)
        cache.parent.mkdir(parents=True, exist_ok=True)
        cache.write_bytes(pickle.dumps((qags, clapnq)))
    seconds = round(time.perf_counter() - started, 1)
    fit_items = [it for it in qags + clapnq if it["split"] == "fit"]
    weights = fit(checker, fit_items)
    fit_scores = score(checker, fit_items)
    clapnq_fit = [it for it in clapnq if it["split"] == "fit"]
    clapnq_fit_scores = score(checker, clapnq_fit)
    # Above FACT_PENALTY: a claim with a missing fact must never reach the threshold.
    candidates = [t for t in np.unique(np.round(fit_scores, 4)) if t > FACT_PENALTY
                  and answers_accepted(clapnq_fit, clapnq_fit_scores, t)[0] >= MIN_ACCEPTED]
    threshold = float(max(candidates))  # the strictest that still accepts the paraphrases
    perturbed = perturbed_items(checker)
    result = json.loads(OUT.read_text()) if OUT.exists() else {}
    for stale in ("qags_support", "support_threshold"):  # the model before facts were checked exactly
        result.pop(stale, None)
    result["support_model"] = {
        "features": list(FEATURES[:3]), "weights": [round(float(w), 4) for w in weights],
        "threshold": round(threshold, 4), "min_gold_answers_accepted_when_fitting": MIN_ACCEPTED,
        "encode_seconds": seconds,
        "qags": {split: report([it for it in qags if it["split"] == split],
                               score(checker, [it for it in qags if it["split"] == split]), threshold)
                 for split in ("fit", "held_out")},
        "clapnq_gold_answers": {split: report([it for it in clapnq if it["split"] == split],
                                              score(checker, [it for it in clapnq if it["split"] == split]), threshold)
                                for split in ("fit", "held_out")},
        "clapnq_one_fact_changed_held_out": {
            "claims": len(perturbed),
            "original_supported": round(float(np.mean([p["original_supported"] for p in perturbed])), 4) if perturbed else None,
            "changed_rejected": round(float(np.mean([not p["changed_supported"] for p in perturbed])), 4) if perturbed else None,
            "changed_rejected_when_original_supported": round(float(np.mean(
                [not p["changed_supported"] for p in perturbed if p["original_supported"]])), 4) if perturbed else None,
        },
    }
    OUT.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result["support_model"], indent=2))
    print(f"written to {OUT.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
