"""Evaluation runs: index a set's corpus, ask every question through the answer path, score it all.

`run_questions` drives the very pipeline users get (Retriever, Answerer, GroundingChecker) and keeps
one row per question; a question that raises is counted and listed with its error, never dropped.
`run_qags` scores the grounding judge alone against human labels. Aggregates carry their counts.
"""

from __future__ import annotations

import tempfile
import time
import traceback
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from rag.answer import Answerer
from rag.config import Settings
from rag.embedding import Embedder
from rag.evaluate import metrics as mx
from rag.evaluate.choices import choice_features, pick
from rag.evaluate.datasets import EvalItem, EvalSet, QagsSummary
from rag.evaluate.judges import Judge
from rag.generate import load_generator
from rag.grounding import GroundingChecker
from rag.index import NewsIndex
from rag.ingest.pipeline import IngestPipeline
from rag.retrieve import Retriever

KS = (1, 3, 5, 10)
MARKER = " [{}]"


@dataclass
class RunOptions:
    llm: str | None = None  # generator backend (default: settings)
    index: Path | None = None  # an existing index instead of indexing the set's corpus
    work_dir: Path | None = None  # where a temporary index goes (default: a temp folder)
    k: int | None = None  # passages per answer (default: answer.k)
    progress: bool = True


def build_index(evalset: EvalSet, settings: Settings, embedder: Embedder, options: RunOptions) -> tuple[NewsIndex, dict]:
    """The index to evaluate on: `options.index` as it is, or a fresh one of the set's corpus."""
    if options.index:
        settings.index_dir = Path(options.index)
        index = NewsIndex(settings, embedder=embedder)
        return index, {"index": str(options.index), "documents": index.counts()["documents"], "build_seconds": 0.0}
    folder = Path(tempfile.mkdtemp(prefix=f"eval-{evalset.name}-", dir=options.work_dir))
    settings.index_dir = folder / "index"
    started = time.perf_counter()
    with NewsIndex(settings, writable=True, create=True, embedder=embedder) as index:
        if evalset.corpus_paths:
            report = IngestPipeline(index, progress=options.progress).run(evalset.corpus_paths)
            if report.failed:
                print(f"warning: {report.failed} corpus problem(s): " + "; ".join(map(str, report.issues[:5])))
        IngestPipeline(index, progress=False).add_records(evalset.documents)
    build = {"index": "temporary", "documents": len(evalset.documents), "build_seconds": round(time.perf_counter() - started, 1)}
    return NewsIndex(settings, embedder=embedder), build


def run_questions(evalset: EvalSet, settings: Settings, embedder: Embedder, judge: Judge,
                  options: RunOptions) -> dict:
    """Ask every question; return {"metrics", "rows", "errors", "index"}."""
    from tqdm import tqdm

    index, build = build_index(evalset, settings, embedder, options)
    checker = GroundingChecker.from_settings(embedder, settings)
    answerer = Answerer(index, settings, generator=load_generator(settings, options.llm), checker=checker)
    retriever = Retriever(index, settings.retrieval)
    rows, errors = [], []
    for item in tqdm(evalset.items, desc=f"eval {evalset.name}", unit="q", disable=not options.progress):
        try:
            rows.append(score_question(item, retriever, answerer, checker, judge, options.k))
        except Exception as exc:  # noqa: BLE001 - one failing question must not end the run
            errors.append({"id": item.id, "split": item.split, "question": item.question, "error": f"{type(exc).__name__}: {exc}",
                           "trace": traceback.format_exc(limit=3)})
    index.close()
    metrics = aggregate(rows, len(evalset.items), len(errors))
    held_out = [r for r in rows if r["split"] == "held_out"]
    if held_out:
        metrics["held_out"] = aggregate(held_out, sum(i.split == "held_out" for i in evalset.items),
                                        sum(e["split"] == "held_out" for e in errors))
    return {"index": build, "questions": len(evalset.items), "answered_without_error": len(rows),
            "errors": errors, "metrics": metrics, "rows": rows,
            "llm": answerer.llm_info(), "judge": judge.name}


def score_question(item: EvalItem, retriever: Retriever, answerer: Answerer, checker: GroundingChecker,
                   judge: Judge, k: int | None) -> dict:
    """One question through retrieval, answering and judging."""
    started = time.perf_counter()
    hits = retriever.run(item.question, k=max(KS), as_of=item.as_of)
    search_ms = (time.perf_counter() - started) * 1000
    ranked = list(dict.fromkeys(hit.doc_id for hit in hits))  # documents in order of their best chunk
    gold = set(item.gold_doc_ids)
    row: dict = {"id": item.id, "split": item.split, "question": item.question, "answerable": item.answerable,
                 "gold_doc_ids": item.gold_doc_ids, "retrieved_doc_ids": ranked, "search_ms": round(search_ms, 1)}
    if gold:
        row["retrieval"] = {**{f"hit@{n}": mx.hit_at_k(ranked, gold, n) for n in KS},
                            **{f"recall@{n}": mx.recall_at_k(ranked, gold, n) for n in KS},
                            "mrr@10": mx.reciprocal_rank(ranked, gold, 10), "ndcg@10": mx.ndcg_at_k(ranked, gold, 10)}
    if item.choices:
        row.update(multiple_choice(item, hits, checker))

    answer = answerer.run(item.question, k=k, as_of=item.as_of)
    plain = answer.answer if not answer.refused else ""
    for citation in answer.citations:
        plain = plain.replace(MARKER.format(citation.n), "")
    citations = [{"n": c.n, "doc_id": c.doc_id, "quote": c.quote, "start": c.start, "end": c.end} for c in answer.citations]
    decision = answer.decision
    row.update({
        "answer": answer.answer, "refused": answer.refused, "draft": answer.draft, "best_relevance": round(answer.relevance, 4),
        "answerable_probability": decision.probability if decision is not None else None,
        "answerable_signals": decision.signals if decision is not None else None,
        "sentences": [{"text": s.text, "supported": s.supported, "score": s.score, "citations": s.citations}
                      for s in answer.sentences],
        "citations": citations, "timings": answer.timings,
    })
    if item.answers and item.answerable:
        row["exact_match"] = mx.exact_match(plain, item.answers)
        row["token_f1"] = mx.token_f1(plain, item.answers)
        row["contains_answer"] = mx.contains_answer(plain, item.answers)
    if item.choices:
        # Does the free answer name the right choice? A wrong choice named instead is "cited but wrong";
        # the right choice anywhere in the passages the answer path read is the ceiling.
        right = item.choices[item.answer_index]
        wrong = [c for n, c in enumerate(item.choices) if n != item.answer_index]
        row["choice_in_answer"] = mx.contains_answer(plain, [right])
        row["cited_but_wrong"] = float(not row["choice_in_answer"] and mx.contains_answer(plain, wrong) == 1.0)
        row["choice_in_passages"] = mx.contains_answer(" ".join(h.text for h in answer.retrieved), [right])
    # Citation precision: do a sentence's cited quotes, judged on their own, support it?
    verdicts = []
    by_number = {c.n: c for c in answer.citations}
    for sentence in answer.sentences:
        if sentence.citations:
            quotes = "\n".join(by_number[n].quote for n in sentence.citations)
            score = judge.scores([sentence.text], quotes, question=answer.standalone_question)[0]
            verdicts.append({"sentence": sentence.text, "n": sentence.citations, "score": score,
                             "supports": None if score is None else score >= judge.threshold})
    row["verdicts"] = verdicts
    if item.gold_sentences and answer.citations:
        row["gold_quote_match"] = [quote_matches_gold(c.quote, item.gold_sentences) for c in answer.citations]
    return row


def multiple_choice(item: EvalItem, hits, checker: GroundingChecker) -> dict:
    """Pick the choice the retrieved passages state best (rag.evaluate.choices: the grounding checker's
    support for it as an answer, and where, how often and how recently a sentence states it)."""
    features = choice_features(item.question, item.choices, hits, checker, item.as_of)
    choice, scores = pick(features)
    return {"mc_scores": [round(float(s), 4) for s in scores], "mc_choice": choice,
            "mc_correct": float(choice == item.answer_index)}


def quote_matches_gold(quote: str, gold_sentences: list[str]) -> bool:
    """A quote matches when it mostly covers one gold sentence (>= 60% of its words), or lies within
    one (a tight quote of 5+ words, >= 80% of them in that sentence: a clause of a gold sentence)."""
    quote_words = set(mx.normalize_answer(quote).split())
    for sentence in gold_sentences:
        words = set(mx.normalize_answer(sentence).split())
        if words and len(words & quote_words) >= 0.6 * len(words):
            return True
        if len(quote_words) >= 5 and len(words & quote_words) >= 0.8 * len(quote_words):
            return True
    return False


def aggregate(rows: list[dict], questions: int, errors: int) -> dict:
    """Every metric with its count."""
    scored = [r for r in rows if "retrieval" in r]
    metrics: dict = {"questions": questions, "errors": errors, "retrieval": {
        "questions_with_gold": len(scored),
        **{name: mx.mean(r["retrieval"][name] for r in scored)
           for name in [f"hit@{n}" for n in KS] + [f"recall@{n}" for n in KS] + ["mrr@10", "ndcg@10"]},
    }}
    if any("mc_correct" in r for r in rows):
        metrics["multiple_choice_accuracy"] = mx.mean(r.get("mc_correct") for r in rows)
    metrics["answer"] = {name: mx.mean(r.get(name) for r in rows) for name in ("exact_match", "token_f1", "contains_answer")}
    if any("choice_in_answer" in r for r in rows):
        metrics["answer"].update({name: mx.mean(r.get(name) for r in rows)
                                  for name in ("choice_in_answer", "cited_but_wrong", "choice_in_passages")})
    claims = [s for r in rows for s in r["sentences"]]
    verdicts = [v for r in rows for v in r["verdicts"]]
    judged = [v for v in verdicts if v["supports"] is not None]
    metrics["citations"] = {
        "precision": mx.mean(float(v["supports"]) for v in judged),
        "recall": mx.mean(float(bool(s["citations"])) for s in claims if s["supported"]),
        "judge_failures": len(verdicts) - len(judged),
        "gold_quote_match": mx.mean(float(m) for r in rows for m in r.get("gold_quote_match", [])),
        # Per answered question: does one of its quotes match a gold sentence?
        "gold_quote_match_answered": mx.mean(float(any(r["gold_quote_match"])) for r in rows if r.get("gold_quote_match")),
    }
    metrics["unsupported_sentence_rate"] = mx.mean(float(not s["supported"]) for s in claims)
    labelled = [r for r in rows if isinstance(r.get("answerable"), bool)]
    if any(not r["answerable"] for r in labelled):
        refusal = mx.precision_recall_f1([r["refused"] for r in labelled], [not r["answerable"] for r in labelled])
        answerable = [r for r in labelled if r["answerable"]]
        refusal["false_refusal_rate"] = mx.mean(float(r["refused"]) for r in answerable)
        metrics["refusal"] = refusal
    else:
        metrics["refusal_rate"] = mx.mean(float(r["refused"]) for r in rows)
    stages = ("retrieve_ms", "generate_ms", "verify_ms", "total_ms", "first_token_ms")
    metrics["latency_ms"] = {"search_top10": mx.percentiles(r["search_ms"] for r in rows),
                             **{stage: mx.percentiles(r["timings"].get(stage) for r in rows) for stage in stages}}
    return metrics


def run_qags(summaries: list[QagsSummary], judge: Judge, progress: bool = True) -> dict:
    """The judge against human labels: per sentence (majority vote) and per summary (mean yes share)."""
    from tqdm import tqdm

    rows, errors = [], []
    for number, summary in enumerate(tqdm(summaries, desc="eval qags", unit="summary", disable=not progress)):
        try:
            scores = judge.scores(summary.sentences, summary.article)
        except Exception as exc:  # noqa: BLE001
            errors.append({"id": number, "error": f"{type(exc).__name__}: {exc}"})
            continue
        rows.append({"id": number, "sentences": [{"text": t, "human_yes_share": h, "score": s}
                                                 for t, h, s in zip(summary.sentences, summary.yes_share, scores)]})
    half = len(summaries) // 2

    def block(subset: list[dict]) -> dict:
        sentences = [s for r in subset for s in r["sentences"] if s["score"] is not None]
        labels = [s["human_yes_share"] > 0.5 for s in sentences]
        scores = [s["score"] for s in sentences]
        summary_rows = [r for r in subset if any(s["score"] is not None for s in r["sentences"])]
        machine = [float(np.mean([s["score"] for s in r["sentences"] if s["score"] is not None])) for r in summary_rows]
        human = [float(np.mean([s["human_yes_share"] for s in r["sentences"]])) for r in summary_rows]
        auc = mx.roc_auc(scores, labels)
        bacc = mx.balanced_accuracy([s >= judge.threshold for s in scores], labels)
        rho = mx.spearman(machine, human)
        return {"sentences": len(sentences), "summaries": len(summary_rows),
                "roc_auc": None if auc is None else round(auc, 4),
                "balanced_accuracy": None if bacc is None else round(bacc, 4),
                "summary_spearman": None if rho is None else round(rho, 4)}

    metrics = {"all": block(rows), "held_out_half": block([r for r in rows if r["id"] >= half]),
               "judge_parse_failures": judge.parse_failures, "errors": len(errors), "threshold": judge.threshold}
    return {"questions": len(summaries), "errors": errors, "metrics": metrics, "rows": rows, "judge": judge.name}
