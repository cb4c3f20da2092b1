"""Fit the multiple-choice scorer (rag/evaluate/choices.py); write its weights to eval/calibration.json.

    python bench/calibrate_choices.py [--questions 300] [--fit-offset 400 --fit-questions 1000] [--reuse]

Measured on RealTime QA's first 300 questions with articles, over the pooled index of the first 400
questions' articles (as in eval/RESULTS.md), each retrieved as of its question date exactly as
`rag eval` does. The weights are a conditional logit (the right choice's score against its
question's other choices, L2-regularised), fitted either
- on questions the evaluation never asks (`--fit-offset 400 --fit-questions 1000`: questions
  400-1399, over their own pooled index, built once in bench/.cache), so all 300 are held out; or
- on the first half of the 300 (no --fit-offset), the second half held out, and the halves swapped.
The scorer before (support + 0.5 when one sentence holds every word of the choice) is reported on
the same rows.
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


def collect(questions: int, offset: int = 0) -> list[dict]:
    """Feature rows of `questions` questions from `offset`: the evaluation's own (offset 0, over the
    index of the first 400 questions' articles) or others (over their own articles' index)."""
    settings, asked, _ = rtqa_index(400) if offset == 0 else rtqa_index(questions, offset)
    embedder = Embedder(settings.embedding)
    checker = GroundingChecker.from_settings(embedder, settings)
    evalset = load_realtimeqa(require(SHARED_DATA), limit=questions, offset=offset)
    indexed = {q["question_id"] for q in asked}  # the questions whose articles the index holds
    rows = []
    with NewsIndex(settings, embedder=embedder) as index:
        retriever = Retriever(index, settings.retrieval)
        for item in evalset.items:
            if offset and item.id not in indexed:
                continue
            hits = retriever.run(item.question, k=PASSAGES, as_of=item.as_of)
            split = "other" if offset else "held_out" if item.split == "held_out" else "fit"
            rows.append({"id": item.id, "split": split,
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


def cached_rows(questions: int, offset: int, reuse: bool) -> list[dict]:
    cache = CACHE / f"choice_rows_{offset}_{questions}_{PASSAGES}.pkl"
    if reuse and cache.exists():
        return pickle.loads(cache.read_bytes())
    rows = collect(questions, offset)
    cache.parent.mkdir(parents=True, exist_ok=True)
    cache.write_bytes(pickle.dumps(rows))
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--questions", type=int, default=300)
    parser.add_argument("--fit-offset", type=int, default=0,
                        help="fit on questions from here on, which the evaluation never asks (0: its first half)")
    parser.add_argument("--fit-questions", type=int, default=1000)
    parser.add_argument("--reuse", action="store_true", help="reuse the rows collected by the last run (bench/.cache)")
    args = parser.parse_args()
    rows = cached_rows(args.questions, 0, args.reuse)
    first_half = [r for r in rows if r["split"] == "fit"]
    second_half = [r for r in rows if r["split"] == "held_out"]
    if args.fit_offset:
        fit_rows, held_out = cached_rows(args.fit_questions, args.fit_offset, args.reuse), rows
        fitted_on = f"RealTime QA questions {args.fit_offset}-{args.fit_offset + args.fit_questions - 1}"
    else:
        fit_rows, held_out, fitted_on = first_half, second_half, "the first half of the measured questions"
    weights = fit(fit_rows)
    measured = (("fit", fit_rows), ("held_out", held_out))
    if args.fit_offset:  # every measured question is held out; its halves as rag eval reports them
        measured += (("first_half", first_half), ("second_half", second_half))
    section = {
        "features": list(CHOICE_FEATURES), "weights": [round(float(w), 4) for w in weights], "l2": L2,
        "passages": PASSAGES, "fitted_on": fitted_on,
        "realtimeqa": {split: {"questions": len(part), "accuracy": round(accuracy(part, weights), 4),
                               "accuracy_before": round(accuracy(part, BEFORE), 4)}
                       for split, part in measured + (("all", rows),)},
        # Fitted on one half of the measured questions, measured on the other: how much of a gain is
        # the fit's own noise on 150 questions.
        "halves": {"first_fits_second": round(accuracy(second_half, fit(first_half)), 4),
                   "second_fits_first": round(accuracy(first_half, fit(second_half)), 4)},
    }
    Settings.load(env={})  # the calibration file must parse before it is rewritten
    result = json.loads(OUT.read_text()) if OUT.exists() else {}
    result["multiple_choice"] = section
    OUT.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(section, indent=2))
    print(f"written to {OUT.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
