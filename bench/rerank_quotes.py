"""Re-ranking the quoted sentence by the model's likelihood of the question (rag.answer._reread).

    python bench/rerank_quotes.py [--weights 0,0.3,0.5,1,2]

When verification rejects a draft, the answer quotes one source sentence: the composer's best of the
sentences the model was given, or, re-read, the best by composer score + weight x (the model's mean
log-probability of the question after that sentence - the best such value among them). On the same
questions as bench/calibrate_answers.py (ClapNQ 300, RealTime QA 300; its fit / held-out halves),
over the questions with a sentence that holds the answer, this prints and records how often the
first sentence holds it for each weight, and the scoring time per sentence: a question's sentences
read in one batch (as the product reads them) and, alternately, one call each (the batch's gain, and
how far the two scores differ). The product's
weight is the best on the fit halves (answer.reread_weight).
"""

from __future__ import annotations

import argparse
import statistics
import time

import numpy as np
from calibrate_answers import clapnq_index, collect, contains
from common import SHARED_DATA, record, require, rtqa_index

from rag.answer import reread_scores
from rag.compose import AnswerComposer
from rag.config import Settings
from rag.embedding import Embedder
from rag.evaluate.datasets import load_realtimeqa
from rag.evaluate.runner import quote_matches_gold
from rag.generate import load_generator
from rag.grounding import GroundingChecker
from rag.index import NewsIndex
from rag.question import QuestionAnalyzer


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--weights", default="0,0.3,0.5,1,2,100")
    args = parser.parse_args()
    weights = [float(w) for w in args.weights.split(",")]
    settings = Settings.load(env={})
    embedder = Embedder(settings.embedding)
    checker = GroundingChecker(embedder)
    analyzer = QuestionAnalyzer(checker.tagger, embedder)
    composer = AnswerComposer(checker)
    generator = load_generator(settings)
    n = settings.answer.prompt_sentences

    clapnq_set, clapnq = clapnq_index(settings, embedder)
    sets = {"clapnq": collect(clapnq_set, clapnq, settings, checker, analyzer, composer, settings.answer.k,
                              lambda text, item: item.answerable and quote_matches_gold(text, item.gold_sentences))}
    rtqa_settings, _, _ = rtqa_index(400)
    rtqa_set = load_realtimeqa(require(SHARED_DATA), limit=300)
    sets["realtimeqa"] = collect(rtqa_set, NewsIndex(rtqa_settings, embedder=embedder), settings, checker, analyzer,
                                 composer, settings.answer.k, lambda text, item: contains(text, item.answers[0]))
    figures: dict = {"prompt_sentences": n, "llm": generator.model, "weights": weights}
    timings: list[float] = []
    one_by_one: list[float] = []
    drift: list[float] = []
    for name, rows in sets.items():
        scored = []
        for row in rows:
            if not row["labels"].any():
                continue
            singles = [i for i, s in enumerate(row["evidence"].sources) if not s.pair]
            top = [c for c in composer.rank(row["asks"], row["evidence"])[:n] if c.score > 0]
            if not top:
                continue
            started = time.perf_counter()
            likelihoods = generator.question_likelihoods([c.source.text for c in top], row["question"])
            timings.append((time.perf_counter() - started) * 1000 / len(top))
            started = time.perf_counter()  # the same sentences one call each, for the batch's gain
            alone = [generator.question_likelihoods([c.source.text], row["question"])[0] for c in top]
            one_by_one.append((time.perf_counter() - started) * 1000 / len(top))
            drift.append(float(np.max(np.abs(np.array(alone) - np.array(likelihoods)))))
            scored.append({"split": row["split"], "score": np.array([c.score for c in top]),
                           "likelihood": np.array(likelihoods),
                           "label": np.array([bool(row["labels"][singles.index(c.index)]) for c in top])})
        figures[name] = {}
        for split in ("fit", "held_out"):
            part = [s for s in scored if s["split"] == split]
            figures[name][split] = {"questions": len(part), "top1_by_weight": {
                str(w): round(float(np.mean([s["label"][int(np.argmax(reread_scores(s["score"], s["likelihood"], w)))]
                                             for s in part])), 4) for w in weights}}
            print(name, split, figures[name][split], flush=True)
    figures["scoring_ms_per_sentence"] = {"p50": round(statistics.median(timings), 1),
                                          "p95": round(float(np.percentile(timings, 95)), 1)}
    figures["scoring_ms_per_sentence_one_call_each"] = {"p50": round(statistics.median(one_by_one), 1),
                                                        "p95": round(float(np.percentile(one_by_one, 95)), 1)}
    figures["one_call_each_over_batched"] = round(sum(one_by_one) / sum(timings), 3)
    figures["largest_score_difference_batched_vs_alone"] = round(max(drift), 4)
    fit = {w: sum(figures[name]["fit"]["top1_by_weight"][str(w)] for name in sets) for w in weights}
    figures["best_weight_on_fit_halves"] = max(weights, key=lambda w: (fit[w], -w))
    print(figures["scoring_ms_per_sentence"], "one call each:", figures["scoring_ms_per_sentence_one_call_each"],
          "best weight on the fit halves:", figures["best_weight_on_fit_halves"])
    record("rerank_quotes", figures)


if __name__ == "__main__":
    main()
