"""Retrieval quality on RealTime QA 2022-2024: hit@1/5/10 of hybrid search over pooled articles.

    python bench/retrieval_quality.py [--questions 400] [--mode hybrid|dense|bm25]

The articles that web search retrieved for each of the first N questions are pooled into one index
(so a question must find its article among ~2,400), and each question is searched as asked.
A retrieved chunk is a hit when (a) it comes from an article the gold evidence links to, or
(b) it contains a sentence of the gold evidence (>= 80% of its words), or (c) it contains the
text of the right answer choice. (a)+(b) are reported as `strict`, (a)+(b)+(c) as `any`, the
issue's definition. Questions with no retrieved articles are skipped and counted.
"""

from __future__ import annotations

import argparse
import html
import re

import numpy as np
from common import record, rtqa_index

from rag.evaluate.datasets import normalize_url
from rag.index import NewsIndex
from rag.retrieve import Retriever

KS = (1, 5, 10)
WORD = re.compile(r"[a-z0-9]+")


def evidence_parts(evidence: str) -> tuple[set[str], list[set[str]]]:
    """(linked article URLs, word sets of the evidence sentences with >= 6 words)."""
    urls = {normalize_url(u) for u in re.findall(r'href="([^"]+)"', evidence)}
    text = html.unescape(re.sub(r"<[^>]+>", "", evidence)).lower()
    sentences = [set(WORD.findall(s)) for s in re.split(r"(?<=[.!?])\s+", text)]
    return urls, [s for s in sentences if len(s) >= 6]


def answer_text(question: dict) -> str:
    choice = question["choices"][int(question["answer"][0])]
    return re.sub(r"[\"“”‘’']", "", choice).strip().lower()


def is_hit(hit, urls, sentences, answer) -> tuple[bool, bool]:
    """(strict, any) for one retrieved chunk."""
    text = hit.text.lower()
    words = set(WORD.findall(text))
    strict = bool(hit.url and normalize_url(hit.url) in urls) or any(
        len(s & words) >= 0.8 * len(s) for s in sentences)
    loose = strict or (len(answer) >= 3 and re.search(rf"(?<![a-z0-9]){re.escape(answer)}(?![a-z0-9])", text) is not None)
    return strict, loose


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--questions", type=int, default=400)
    parser.add_argument("--mode", choices=("hybrid", "dense", "bm25"), default="hybrid")
    args = parser.parse_args()
    settings, questions, build = rtqa_index(args.questions)
    if args.mode == "dense":
        settings.retrieval.bm25_weight = 0.0
    elif args.mode == "bm25":
        settings.retrieval.dense_weight = 0.0
    index = NewsIndex(settings)
    retriever = Retriever(index)
    first_hit = {"strict": [], "any": []}
    findable = []  # whether some chunk of the question's own pooled articles is a strict hit
    for question in questions:
        urls, sentences = evidence_parts(question["evidence"])
        answer = answer_text(question)
        hits = retriever.run(question["question_sentence"], k=max(KS))
        flags = [is_hit(h, urls, sentences, answer) for h in hits]
        for position, name in enumerate(("strict", "any")):
            ranks = [rank for rank, flag in enumerate(flags, start=1) if flag[position]]
            first_hit[name].append(ranks[0] if ranks else None)
        pool = index.metadata._in("SELECT id FROM chunks WHERE doc_id IN ({})", question["retrieved_doc_ids"])
        rows = index.metadata.chunks_by_id(r[0] for r in pool).values()
        findable.append(any(is_hit(row, urls, sentences, answer)[0] for row in rows))
    figures = {"questions": len(questions), "questions_with_evidence": sum(bool(q["evidence"]) for q in questions),
               "index": build, "mode": args.mode}
    for name, ranks in first_hit.items():
        figures[name] = {f"hit@{k}": round(float(np.mean([r is not None and r <= k for r in ranks])), 4) for k in KS}
        figures[name]["mrr@10"] = round(float(np.mean([1 / r if r else 0.0 for r in ranks])), 4)
    subset = [r for r, ok in zip(first_hit["strict"], findable) if ok]
    figures["strict_where_gold_is_in_the_index"] = {
        "questions": len(subset), **{f"hit@{k}": round(float(np.mean([r is not None and r <= k for r in subset])), 4) for k in KS}}
    record(f"retrieval_quality_{args.mode}", figures)


if __name__ == "__main__":
    main()
