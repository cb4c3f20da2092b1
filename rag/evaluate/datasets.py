"""Evaluation data loaders: each returns an EvalSet (questions with gold labels, and the corpus to index).

Formats are documented in eval/README.md. The public sets are read where they lie (../shared/data or
--data); nothing is copied. QAGS has no questions: `load_qags` returns summaries for the grounding
checker alone.
"""

from __future__ import annotations

import gzip
import html
import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlparse

from rag.ingest import FieldMap
from rag.ingest.base import document_from_record
from rag.types import Document

WORD = re.compile(r"[a-z0-9]+")


@dataclass
class EvalItem:
    """One question and what a right response looks like."""

    id: str
    question: str
    answers: list[str] = field(default_factory=list)
    answerable: bool = True
    gold_doc_ids: list[str] = field(default_factory=list)
    gold_sentences: list[str] = field(default_factory=list)  # ClapNQ: the sentences a citation should quote
    choices: list[str] = field(default_factory=list)  # RealTime QA: multiple choice
    answer_index: int | None = None
    as_of: str | None = None  # the day the question was asked (RealTime QA's question_date); None: today
    # "held_out": never used to fit a threshold or weight (its metrics are also reported on their own).
    split: str = ""


@dataclass
class EvalSet:
    """Questions plus their corpus: documents to index, or paths to ingest."""

    name: str
    items: list[EvalItem]
    documents: list[Document] = field(default_factory=list)
    corpus_paths: list[Path] = field(default_factory=list)


@dataclass
class QagsSummary:
    """A news article and the sentences of a summary, each with the share of annotators saying 'supported'."""

    article: str
    sentences: list[str]
    yes_share: list[float]


def _read_jsonl(path: Path) -> list[dict]:
    if not path.is_file():
        raise FileNotFoundError(f"evaluation data not found: {path}")
    rows = []
    with open(path, encoding="utf-8") as handle:
        for number, line in enumerate(handle, start=1):
            if line.strip():
                try:
                    rows.append(json.loads(line))
                except json.JSONDecodeError as exc:
                    raise ValueError(f"{path}:{number}: malformed JSON ({exc.msg})") from None
    return rows


# -- RealTime QA -----------------------------------------------------------------------------------
def load_realtimeqa(data_dir: Path, limit: int | None = None, offset: int = 0) -> EvalSet:
    """Questions [offset, offset+limit) that have retrieved articles; the corpus pools all their articles.

    Gold articles for retrieval are those of a question's own retrieved articles that the gold
    evidence links to, contain an evidence sentence (>= 80% of its words), or contain the right
    choice's text. A question none of whose articles qualifies keeps an empty gold list (it is
    counted, and left out of the retrieval scores).
    """
    folder = data_dir / "realtimeqa"
    rows = [r for r in _read_jsonl(folder / "questions_2022_2024.jsonl") if r["retrieved_doc_ids"]]
    rows = rows[offset: offset + limit if limit else None]
    wanted = {doc_id for row in rows for doc_id in row["retrieved_doc_ids"]}
    articles: dict[str, dict] = {}
    with gzip.open(folder / "articles_2022_2024.jsonl.gz", "rt", encoding="utf-8") as handle:
        for line in handle:
            if '"doc_id"' in line:
                record = json.loads(line)
                if record["doc_id"] in wanted:
                    articles[record["doc_id"]] = record
    documents = [document_from_record(a, FieldMap(), origin="realtimeqa") for a in articles.values() if a.get("text")]
    items = []
    for number, row in enumerate(rows):
        index = int(row["answer"][0])
        answer = row["choices"][index]
        gold = [d for d in row["retrieved_doc_ids"] if d in articles and
                realtimeqa_relevant(articles[d], row.get("evidence", ""), answer)]
        items.append(EvalItem(id=row["question_id"], question=row["question_sentence"], answers=[answer],
                              gold_doc_ids=gold, choices=row["choices"], answer_index=index,
                              as_of=realtimeqa_day(row),
                              split="held_out" if number >= len(rows) // 2 else "first_half"))
    return EvalSet("realtimeqa", items, documents=documents)


def realtimeqa_day(row: dict) -> str | None:
    """The day a RealTime QA question was asked ("2022/06/17" -> "2022-06-17"), its as_of; None if unknown."""
    return (row.get("question_date") or "").replace("/", "-") or None


def normalize_url(url: str) -> str:
    """Host without www./edition./amp. and path without trailing slash: how the same article is linked."""
    parsed = urlparse(html.unescape(url).strip())
    host = re.sub(r"^(www\d?|edition|amp|m)\.", "", (parsed.hostname or "").lower())
    return host + re.sub(r"/(index\.html?)?$", "", parsed.path.rstrip("/"))


def realtimeqa_relevant(article: dict, evidence: str, answer: str) -> bool:
    """Whether an article is gold for a question (see load_realtimeqa)."""
    urls = {normalize_url(u) for u in re.findall(r'href="([^"]+)"', evidence or "")}
    if article.get("url") and normalize_url(article["url"]) in urls:
        return True
    text = article.get("text", "").lower()
    words = set(WORD.findall(text))
    plain = html.unescape(re.sub(r"<[^>]+>", "", evidence or "")).lower()
    for sentence in re.split(r"(?<=[.!?])\s+", plain):
        needed = set(WORD.findall(sentence))
        if len(needed) >= 6 and len(needed & words) >= 0.8 * len(needed):
            return True
    answer = re.sub(r"[\"“”‘’']", "", answer).strip().lower()
    return len(answer) >= 3 and re.search(rf"(?<![a-z0-9]){re.escape(answer)}(?![a-z0-9])", text) is not None


# -- ClapNQ ----------------------------------------------------------------------------------------
def load_clapnq(data_dir: Path, limit: int | None = None) -> EvalSet:
    """Answerable and unanswerable questions, alternating (limit/2 of each); each one's passages indexed."""
    folder = data_dir / "clapnq"
    answerable = _read_jsonl(folder / "dev_answerable_a.jsonl")
    unanswerable = _read_jsonl(folder / "dev_unanswerable_a.jsonl")
    half = (limit + 1) // 2 if limit else None
    chosen = [(row, True) for row in answerable[:half]] + [(row, False) for row in unanswerable[:half]]
    chosen.sort(key=lambda pair: (answerable.index(pair[0]) if pair[1] else unanswerable.index(pair[0]), not pair[1]))
    chosen = chosen[:limit] if limit else chosen
    items, documents = [], []
    for row, is_answerable in chosen:
        # bench/calibrate_grounding.py fits the relevance gate on the even rows of each file.
        position = (answerable if is_answerable else unanswerable).index(row)
        doc_ids = []
        for number, passage in enumerate(row["passages"]):
            doc_id = f"clapnq-{row['id']}-{number}"
            documents.append(document_from_record({"id": doc_id, "title": passage.get("title", ""), "text": passage["text"],
                                                   "source": "ClapNQ"}, FieldMap(), origin="clapnq"))
            doc_ids.append(doc_id)
        outputs = [o for o in row.get("output", []) if o.get("answer", "").strip()]
        items.append(EvalItem(
            id=str(row["id"]), question=row["input"], answers=[o["answer"] for o in outputs],
            answerable=is_answerable, gold_doc_ids=doc_ids if is_answerable else [],
            gold_sentences=[s for o in outputs for s in o.get("selected_sentences", [])],
            split="held_out" if position % 2 else "fit",
        ))
    return EvalSet("clapnq", items, documents=documents)


# -- QAGS ------------------------------------------------------------------------------------------
def load_qags(data_dir: Path, limit: int | None = None) -> list[QagsSummary]:
    """CNN/DailyMail articles with summary sentences and the annotators' yes share per sentence."""
    summaries = []
    for row in _read_jsonl(data_dir / "qags" / "mturk_cnndm.jsonl")[:limit]:
        sentences, shares = [], []
        for entry in row["summary_sentences"]:
            votes = [r["response"] == "yes" for r in entry["responses"]]
            sentences.append(entry["sentence"])
            shares.append(sum(votes) / len(votes))
        summaries.append(QagsSummary(row["article"], sentences, shares))
    return summaries


# -- users' own sets -------------------------------------------------------------------------------
def load_jsonl(path: Path, corpus: list[Path], limit: int | None = None) -> EvalSet:
    """`{"question", "answers": [...], "answerable": bool, "gold_doc_ids": [...], "as_of"}` per line; corpus
    from files. `as_of` is the day the question is asked (default today), which "this year" is read from."""
    items = []
    for number, row in enumerate(_read_jsonl(path)[:limit], start=1):
        if not isinstance(row.get("question"), str) or not row["question"].strip():
            raise ValueError(f"{path}:{number}: a question (non-empty string) is required")
        items.append(EvalItem(
            id=str(row.get("id", number)), question=row["question"], answers=list(row.get("answers", [])),
            answerable=bool(row.get("answerable", True)), gold_doc_ids=list(row.get("gold_doc_ids", [])),
            gold_sentences=list(row.get("gold_sentences", [])), as_of=row.get("as_of") or None,
        ))
    return EvalSet(path.stem, items, corpus_paths=list(corpus))
