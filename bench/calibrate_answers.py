"""Fit the answer composer's sentence scorer and the answerability gate; write eval/calibration.json.

    python bench/calibrate_answers.py [--k 3]

Runs the product's own retrieval, evidence, question analysis and composer features over:
- ClapNQ (300: 150 answerable, 150 unanswerable, all passages pooled in one index as `rag eval clapnq`
  does): sentence labels = matches a gold selected sentence; question labels = answerable. Even rows
  of each file fit, odd rows are held out (as in `rag eval`).
- RealTime QA (the first 300 questions with articles, over the pooled index of the first 400
  questions' 2,462 articles, as in eval/RESULTS.md): sentence labels = contains the right choice's
  text. Questions 0-149 fit, 150-299 are held out.
1. The sentence scorer: logistic regression on the fit sentences of both sets.
2. The gate: logistic regression on ClapNQ's fit questions; the threshold is the best refusal F1 among
   those refusing at most MAX_FALSE_REFUSALS of the fit half's answerable questions.
Held-out figures are reported beside the fit ones.
"""

from __future__ import annotations

import argparse
import json
import pickle
import time

import numpy as np
from common import ROOT, SHARED_DATA, require, rtqa_index

from rag.answerability import SIGNALS, AnswerabilityGate
from rag.compose import CANDIDATE_FEATURES, AnswerComposer
from rag.config import Settings
from rag.embedding import Embedder
from rag.evaluate.datasets import load_clapnq, load_realtimeqa
from rag.evaluate.metrics import normalize_answer
from rag.evaluate.runner import quote_matches_gold
from rag.grounding import GroundingChecker
from rag.index import NewsIndex
from rag.question import QuestionAnalyzer
from rag.retrieve import Retriever

OUT = ROOT / "eval" / "calibration.json"
MAX_FALSE_REFUSALS = 0.08  # of ClapNQ fit-half answerable questions (the issue allows 12% on all)
CACHE = ROOT / "bench" / ".cache"


def clapnq_index(settings: Settings, embedder: Embedder):
    evalset = load_clapnq(require(SHARED_DATA), limit=300)
    settings = settings.copy()
    settings.index_dir = CACHE / "clapnq_300"
    if not (settings.index_dir / "bench_build.json").exists():
        with NewsIndex(settings, writable=True, create=True, embedder=embedder) as index:
            for start in range(0, len(evalset.documents), 128):
                index.add_documents(evalset.documents[start:start + 128])
        (settings.index_dir / "bench_build.json").write_text(json.dumps({"documents": len(evalset.documents)}))
    return evalset, NewsIndex(settings, embedder=embedder)


def contains(sentence: str, answer: str) -> bool:
    answer = normalize_answer(answer)
    return bool(answer) and f" {answer} " in f" {normalize_answer(sentence)} "


def collect(evalset, index, settings, checker, analyzer, composer, k, label_sentence) -> list[dict]:
    """One row per question: sentence features, sentence labels, and what the gate needs."""
    retriever = Retriever(index, settings.retrieval)
    rows = []
    for item in evalset.items:
        hits = retriever.run(item.question, k=k)
        evidence = checker.evidence(item.question, hits)
        asks = analyzer.run(item.question)
        features, spans = composer.features(asks, evidence)
        texts = [s.text for s in evidence.sources if not s.pair]
        rows.append({"id": item.id, "question": item.question, "answer": item.answers[0] if item.answers else "",
                     "texts": texts, "split": "fit" if item.split in ("fit", "first_half") else "held_out",
                     "answerable": item.answerable, "features": features, "spans": spans, "asks": asks,
                     "evidence": evidence, "hits": hits,
                     "labels": np.array([label_sentence(t, item) for t in texts], bool)})
    return rows


def top_metrics(rows: list[dict], composer: AnswerComposer) -> dict:
    """Over questions with a positive sentence: is the best-ranked sentence one (top-1), any of the top 3?"""
    with_positive = [r for r in rows if r["labels"].any()]
    top1, top3 = [], []
    for row in with_positive:
        order = np.argsort(-(row["features"] @ composer.weights[1:]))
        top1.append(bool(row["labels"][order[0]]))
        top3.append(bool(row["labels"][order[:3]].any()))
    return {"questions": len(rows), "with_a_positive_sentence": len(with_positive),
            "top1": round(float(np.mean(top1)), 4) if top1 else None,
            "top3": round(float(np.mean(top3)), 4) if top3 else None}


def refusal_report(probabilities, answerable, threshold) -> dict:
    probabilities, answerable = np.asarray(probabilities), np.asarray(answerable, bool)
    refused = probabilities < threshold
    tp, fp, fn = int((refused & ~answerable).sum()), int((refused & answerable).sum()), int((~refused & ~answerable).sum())
    precision = tp / (tp + fp) if tp + fp else 0.0
    recall = tp / (tp + fn) if tp + fn else 0.0
    return {"questions": int(len(answerable)), "false_refusals": round(float(refused[answerable].mean()), 4),
            "unanswerable_refused": round(float(refused[~answerable].mean()), 4),
            "refusal_precision": round(precision, 4), "refusal_recall": round(recall, 4),
            "refusal_f1": round(2 * precision * recall / (precision + recall), 4) if precision + recall else 0.0}


def main() -> None:
    from sklearn.linear_model import LogisticRegression

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--k", type=int, default=None, help="passages per question (default answer.k)")
    parser.add_argument("--reuse", action="store_true", help="reuse the questions collected by the last run (bench/.cache)")
    args = parser.parse_args()
    settings = Settings.load(env={})
    k = args.k or settings.answer.k
    embedder = Embedder(settings.embedding)
    checker = GroundingChecker(embedder)
    analyzer = QuestionAnalyzer(checker.tagger, embedder)
    composer = AnswerComposer(checker)
    started = time.perf_counter()

    cache = CACHE / f"answer_rows_k{k}.pkl"
    if args.reuse and cache.exists():
        clapnq_rows, rtqa_rows = pickle.loads(cache.read_bytes())
        for row in clapnq_rows + rtqa_rows:  # features as the current code computes them
            row["features"], row["spans"] = composer.features(row["asks"], row["evidence"])
    else:
        clapnq_set, clapnq = clapnq_index(settings, embedder)
        clapnq_rows = collect(clapnq_set, clapnq, settings, checker, analyzer, composer, k,
                              lambda text, item: item.answerable and quote_matches_gold(text, item.gold_sentences))
        rtqa_settings, _, _ = rtqa_index(400)
        rtqa_set = load_realtimeqa(require(SHARED_DATA), limit=300)
        rtqa_rows = collect(rtqa_set, NewsIndex(rtqa_settings, embedder=embedder), settings, checker, analyzer, composer, k,
                            lambda text, item: contains(text, item.answers[0]))
        cache.write_bytes(pickle.dumps((clapnq_rows, rtqa_rows)))
    collected = round(time.perf_counter() - started, 1)

    # 1. Sentence scorer.
    fit_rows = [r for r in clapnq_rows + rtqa_rows if r["split"] == "fit" and r["labels"].any()]
    x = np.vstack([r["features"] for r in fit_rows])
    y = np.concatenate([r["labels"] for r in fit_rows])
    model = LogisticRegression(C=1.0, class_weight="balanced", max_iter=2000).fit(x, y)
    composer.weights = np.concatenate([model.intercept_, model.coef_[0]])
    sentences = {"features": list(CANDIDATE_FEATURES), "k": k,
                 "weights": [round(float(w), 4) for w in composer.weights]}
    for name, rows in (("clapnq", clapnq_rows), ("realtimeqa", rtqa_rows)):
        sentences[name] = {split: top_metrics([r for r in rows if r["split"] == split], composer)
                           for split in ("fit", "held_out")}

    # 2. Answerability gate (ClapNQ labels), on the candidates the fitted scorer ranks.
    gate = AnswerabilityGate(threshold=0.5)
    for row in clapnq_rows + rtqa_rows:
        candidates = composer.rank(row["asks"], row["evidence"])
        row["signals"] = gate.signals(row["asks"], candidates, row["hits"])
    fit = [r for r in clapnq_rows if r["split"] == "fit"]
    x = np.array([r["signals"] for r in fit])
    y = np.array([r["answerable"] for r in fit])
    model = LogisticRegression(C=1.0, max_iter=2000).fit(x, y)
    gate.weights = np.concatenate([model.intercept_, model.coef_[0]])
    probabilities = gate.probability(x)
    allowed = [t for t in np.unique(np.round(probabilities, 4)) if (probabilities[y] < t).mean() <= MAX_FALSE_REFUSALS]
    threshold = float(max(allowed, key=lambda t: refusal_report(probabilities, y, t)["refusal_f1"]))
    answerability = {"signals": list(SIGNALS), "weights": [round(float(w), 4) for w in gate.weights],
                     "threshold": round(threshold, 4), "max_false_refusals_when_fitting": MAX_FALSE_REFUSALS}
    for split in ("fit", "held_out"):
        rows = [r for r in clapnq_rows if r["split"] == split]
        answerability[f"clapnq_{split}"] = refusal_report(gate.probability(np.array([r["signals"] for r in rows])),
                                                          [r["answerable"] for r in rows], threshold)
    rtqa_p = gate.probability(np.array([r["signals"] for r in rtqa_rows]))
    answerability["realtimeqa_refused"] = round(float((rtqa_p < threshold).mean()), 4)
    answerability["realtimeqa_refused_with_answer_in_passages"] = round(float(np.mean(
        [p < threshold for p, r in zip(rtqa_p, rtqa_rows) if r["labels"].any()])), 4)

    result = json.loads(OUT.read_text()) if OUT.exists() else {}
    result.pop("clapnq_relevance_gate", None)  # the single-cosine gate this replaces
    result["answer_sentences"] = sentences
    result["answerability"] = answerability
    result["answer_sentences"]["collect_seconds"] = collected
    OUT.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps({"answer_sentences": sentences, "answerability": answerability}, indent=2))
    print(f"written to {OUT.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
