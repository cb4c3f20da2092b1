"""Answer latency with the bundled model: time to first token and total (with verification), p50/p95.

    python bench/answer_latency.py [--threads 1 2] [--rtqa-questions 30] [--reread-weight W] [--out NAME]

Seed corpus: the 20 questions of eval/sets/seed_qa.jsonl plus 10 rephrasings (30 in all), over an
index of seeds/ built in a scratch folder. RealTime QA slice: the first N questions, each as of its
question date, over the cached index of the articles retrieved for the first 400 questions (see
retrieval_latency.py). Each run is measured with llama.cpp on 1 and on 2 threads; the model is
loaded before timing.
"""

from __future__ import annotations

import argparse
import json
import tempfile
from pathlib import Path

import numpy as np
from common import ROOT, record, rtqa_index

from rag.answer import Answerer
from rag.config import Settings
from rag.embedding import Embedder
from rag.evaluate.datasets import realtimeqa_day
from rag.generate import load_generator
from rag.index import NewsIndex
from rag.ingest.pipeline import IngestPipeline

EXTRA_SEED_QUESTIONS = [
    "How many Sputnik V doses has Azerbaijan received?", "What was the growth of trade turnover in percent?",
    "How large was the trade turnover between the countries?", "Who is Mikhail Mishustin?",
    "What did Aliyev thank the Russian side for?", "What did Mishustin say about the pandemic?",
    "What does the 3+3 format involve?", "What was signed on the eve of the 30th anniversary?",
    "Which tests did Azerbaijan receive?", "How many Russian regions work with Azerbaijan?",
]


def stats(values: list[float]) -> dict:
    values = [v for v in values if v is not None]
    return {"p50_ms": round(float(np.percentile(values, 50)), 1), "p95_ms": round(float(np.percentile(values, 95)), 1)}


def measure(index: NewsIndex, settings: Settings, questions: list[tuple[str, str | None]], threads: int) -> dict:
    """Each question is asked as of its day (None: today), as `rag eval` asks it."""
    settings.llm.llamacpp.threads = threads
    answerer = Answerer(index, settings, generator=load_generator(settings, "llamacpp"))
    answerer.run(questions[0][0], as_of=questions[0][1])  # warm caches
    answers = [answerer.run(question, as_of=as_of) for question, as_of in questions]
    generated = [a for a in answers if a.timings["first_token_ms"] is not None]
    return {
        "questions": len(answers),
        "refused": sum(a.refused for a in answers),
        "answered_by_the_model": sum(not a.refused and not a.answer.startswith("“") for a in answers),
        "answered_with_a_quote": sum(not a.refused and a.answer.startswith("“") for a in answers),
        "first_token": stats([a.timings["first_token_ms"] for a in generated]),
        "total_with_verification": stats([a.timings["total_ms"] for a in answers]),
        "total_when_generated": stats([a.timings["total_ms"] for a in generated]),
        "verify": stats([a.timings["verify_ms"] for a in generated]),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--rtqa-questions", type=int, default=30)
    parser.add_argument("--reread-weight", type=float, default=None,
                        help="answer.reread_weight (default: the setting's; 0 measures the answer path without re-reading)")
    parser.add_argument("--out", default="answer_latency", help="results file name in bench/results")
    args = parser.parse_args()
    seed_questions = [json.loads(line)["question"] for line in open(ROOT / "eval" / "sets" / "seed_qa.jsonl")]
    seed_questions = [(question, None) for question in seed_questions + EXTRA_SEED_QUESTIONS]
    figures = {"targets": {"first_token_p95_ms": 1200, "total_p95_ms": 3000}}
    embedder = Embedder(Settings.load(env={}).embedding)
    reread_weight = Settings().answer.reread_weight if args.reread_weight is None else args.reread_weight
    with tempfile.TemporaryDirectory() as scratch:
        settings = Settings.load(env={})
        settings.answer.reread_weight = reread_weight
        settings.index_dir = Path(scratch) / "index"
        with NewsIndex(settings, writable=True, create=True, embedder=embedder) as index:
            IngestPipeline(index, progress=False).run([ROOT / "seeds"])
        index = NewsIndex(settings, embedder=embedder)
        figures["seed_corpus"] = {f"threads_{t}": measure(index, settings, seed_questions, t) for t in args.threads}
    if args.rtqa_questions:  # 0: the seed corpus alone (the RealTime QA index takes ~20 min to build on a slow CPU)
        settings, questions, _ = rtqa_index(400)
        settings.answer.reread_weight = reread_weight
        index = NewsIndex(settings, embedder=embedder)
        # As of the question's own date: "this week" in a 2022 question is read from 2022, not from today.
        rtqa = [(q["question_sentence"], realtimeqa_day(q)) for q in questions[: args.rtqa_questions]]
        figures["realtimeqa_slice"] = {f"threads_{t}": measure(index, settings, rtqa, t) for t in args.threads}
    figures["reread_weight"] = reread_weight
    record(args.out, figures)


if __name__ == "__main__":
    main()
