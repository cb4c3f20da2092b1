"""Fit the multiple-choice scorer (rag/evaluate/choices.py); write its weights to eval/calibration.json.

    python bench/calibrate_choices.py [--questions 300] [--reuse]

RealTime QA's first 300 questions with articles, over the pooled index of the first 400 questions'
articles (as in eval/RESULTS.md), each retrieved as of its question date exactly as `rag eval` does.
The first half fits a conditional logit (the right choice's score against its question's other
choices, L2-regularised); the second half is held out, and the halves are also swapped. The scorer this replaces (support + 0.5 when
one sentence holds every word of the choice) is reported on the same rows.
"""

from __future__ import annotations

import argparse
import json
import os
import pickle

import numpy as np
from common import ROOT, SHARED_DATA, require, rtqa_index
from scipy.optimize import minimize

from rag.config import Settings
from rag.embedding import Embedder
from rag.evaluate.choices import CHOICE_FEATURES, choice_features
from rag.evaluate.datasets import load_realtimeqa
from rag.grounding import GroundingChecker
from rag.index import NewsIndex
from rag.retrieve import Retriever

OUT = ROOT / "eval" / "calibration.json"
CACHE = ROOT / "bench" / ".cache"
PASSAGES = int(os.environ.get("CHOICE_PASSAGES", 10))  # as rag eval's multiple choice reads
L2 = 0.1
BEFORE = np.array([1.0, 0.5, 0.0, 0.0, 0.0, 0.0, 0.0])  # support + 0.5 when a sentence holds every word


def collect(questions: int) -> list[dict]:
    settings, _, _ = rtqa_index(400)
    embedder = Embedder(settings.embedding)
    checker = GroundingChecker.from_settings(embedder, settings)
    evalset = load_realtimeqa(require(SHARED_DATA), limit=questions)
    rows = []
    with NewsIndex(settings, embedder=embedder) as index:
        retriever = Retriever(index, settings.retrieval)
        for item in evalset.items:
            hits = retriever.run(item.question, k=PASSAGES, as_of=item.as_of)
            rows.append({"id": item.id, "split": "held_out" if item.split == "held_out" else "fit",
                         "features": choice_features(item.question, item.choices, hits, checker, item.as_of),
                         "right": item.answer_index})
    return rows


def accuracy(rows: list[dict], weights: np.ndarray) -> float:
    return float(np.mean([int(np.argmax(r["features"] @ weights)) == r["right"] for r in rows])) if rows else 0.0


def fit(rows: list[dict]) -> np.ndarray:
    """Conditional logit: maximise the softmax probability of each question's right choice."""
    def loss(weights: np.ndarray) -> tuple[float, np.ndarray]:
        total, grad = L2 * weights @ weights, 2 * L2 * weights
        for row in rows:
            x = row["features"]
            logits = x @ weights
            p = np.exp(logits - logits.max())
            p /= p.sum()
            total -= np.log(p[row["right"]] + 1e-12)
            grad -= x[row["right"]] - p @ x
        return total / len(rows), grad / len(rows)

    return minimize(loss, BEFORE.copy(), jac=True, method="L-BFGS-B").x


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--questions", type=int, default=300)
    parser.add_argument("--reuse", action="store_true", help="reuse the rows collected by the last run (bench/.cache)")
    args = parser.parse_args()
    cache = CACHE / f"choice_rows_{args.questions}_{PASSAGES}.pkl"
    if args.reuse and cache.exists():
        rows = pickle.loads(cache.read_bytes())
    else:
        rows = collect(args.questions)
        cache.parent.mkdir(parents=True, exist_ok=True)
        cache.write_bytes(pickle.dumps(rows))
    fit_rows = [r for r in rows if r["split"] == "fit"]
    held_out = [r for r in rows if r["split"] == "held_out"]
    weights = fit(fit_rows)
    section = {
        "features": list(CHOICE_FEATURES), "weights": [round(float(w), 4) for w in weights], "l2": L2,
        "passages": PASSAGES,
        "realtimeqa": {split: {"questions": len(part), "accuracy": round(accuracy(part, weights), 4),
                               "accuracy_before": round(accuracy(part, BEFORE), 4)}
                       for split, part in (("fit", fit_rows), ("held_out", held_out), ("all", rows))},
        # The halves swapped (fitted on the held-out half, measured on the fit half): how much of the
        # gain is the fit's own noise on 150 questions.
        "swapped_halves": {"accuracy_on_fit_half": round(accuracy(fit_rows, fit(held_out)), 4),
                           "accuracy_before": round(accuracy(fit_rows, BEFORE), 4)},
    }
    Settings.load(env={})  # the calibration file must parse before it is rewritten
    result = json.loads(OUT.read_text()) if OUT.exists() else {}
    result["multiple_choice"] = section
    OUT.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(section, indent=2))
    print(f"written to {OUT.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
