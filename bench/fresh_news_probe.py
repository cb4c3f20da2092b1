"""A newcomer's questions on three news articles none of the project's sets uses (default path).

    python bench/fresh_news_probe.py

Three RealTime QA articles of 2024 (a wildfire, a campaign, an explainer on the Harvest Moon) are
indexed on their own, and 22 questions written by reading them, as a new user would ask, go through
the default answer path (bundled model, as of 2024-12-31): 16 that the articles answer, each with
the words an answer must contain, and 6 that they do not. The script counts answers that contain
the fact, answers without it (a written answer without it is a cited wrong claim; a quote without it
at least shows its source), and refusals, and records every answer. The questions were written
once, before any fix they led to, and are not used to fit anything.
"""

from __future__ import annotations

import gzip
import json
import tempfile
from pathlib import Path

from common import ARTICLES, machine, record, require

from rag.answer import Answerer
from rag.config import Settings
from rag.evaluate.metrics import contains_answer
from rag.index import NewsIndex
from rag.ingest.base import FieldMap, document_from_record
from rag.ingest.pipeline import IngestPipeline

DOC_IDS = ("rtqa-16293", "rtqa-15990", "rtqa-17858")
AS_OF = "2024-12-31"
# (question, words one of which a right answer contains; none: the articles do not say)
QUESTIONS = [
    ("How did the Park Fire start?", ["car ablaze", "flaming car", "ronnie stout"]),
    ("How many acres has the Park Fire burned?", ["350,000"]),
    ("How many structures has the Park Fire damaged?", ["134"]),
    ("How many people were told to evacuate?", ["8,700"]),
    ("Who is Daniel Swain?", ["climate scientist"]),
    ("How many firefighters are working on the Park Fire?", ["2,500"]),
    ("What caused the Camp Fire?", ["power lines", "pacific gas"]),
    ("Who is Biden's campaign chair?", ["o'malley dillon", "o’malley dillon"]),
    ("What percentage of voters are still with the president?", ["76%"]),
    ("Which congressman from Texas called for Biden to withdraw?", ["veasey"]),
    ("When will Biden return to campaigning?", ["next week"]),
    ("Why is it called a Harvest Moon?", ["farmers"]),
    ("When does the Harvest Moon reach peak illumination?", ["10:34"]),
    ("When was the name Harvest Moon first used in writing?", ["1706"]),
    ("Why does the Harvest Moon look orange?", ["atmosphere", "horizon"]),
    ("What is a supermoon?", ["closest approach"]),
    ("How many homes did the Park Fire destroy?", None),
    ("Who was arrested for starting the Camp Fire?", None),
    ("What did Trump say about Biden's COVID diagnosis?", None),
    ("How much money has Biden's campaign raised?", None),
    ("When is the next total lunar eclipse?", None),
    ("How many people died in the Park Fire?", None),
]


def articles() -> list:
    found = {}
    with gzip.open(require(ARTICLES), "rt", encoding="utf-8") as handle:
        for line in handle:
            row = json.loads(line)
            if row["doc_id"] in DOC_IDS:
                found[row["doc_id"]] = document_from_record(
                    {"id": row["doc_id"], "title": row["title"], "text": row["text"],
                     "date": row["publish_date"].replace("/", "-"), "url": row["url"]}, FieldMap(), origin="realtimeqa")
    return [found[d] for d in DOC_IDS]


def main() -> None:
    settings = Settings.load(env={})
    rows, counts = [], {"with_fact": 0, "quote_without_fact": 0, "written_without_fact": 0, "refused": 0,
                        "unanswerable_refused": 0, "unanswerable_quoted": 0, "unanswerable_written": 0}
    with tempfile.TemporaryDirectory(prefix="fresh-news-") as folder:
        settings.index_dir = Path(folder) / "index"
        with NewsIndex(settings, writable=True, create=True) as index:
            IngestPipeline(index, progress=False).add_records(articles())
        with NewsIndex(settings) as index:
            answerer = Answerer(index, settings)
            for question, words in QUESTIONS:
                answer = answerer.run(question, as_of=AS_OF)
                quoted = answer.answer.lstrip().startswith("“")
                if words is None:
                    outcome = ("unanswerable_refused" if answer.refused else
                               "unanswerable_quoted" if quoted else "unanswerable_written")
                elif answer.refused:
                    outcome = "refused"
                elif contains_answer(answer.answer, words):
                    outcome = "with_fact"
                else:
                    outcome = "quote_without_fact" if quoted else "written_without_fact"
                counts[outcome] += 1
                rows.append({"question": question, "outcome": outcome, "answer": answer.answer,
                             "draft": answer.draft, "probability": answer.decision.probability if answer.decision else None})
                print(f"{outcome:22s} {question}\n{'':22s} {answer.answer[:160]}")
    record("fresh_news_probe", {"machine": machine(), "as_of": AS_OF, "articles": list(DOC_IDS),
                                "answerable": sum(w is not None for _, w in QUESTIONS),
                                "unanswerable": sum(w is None for _, w in QUESTIONS), **counts, "rows": rows})


if __name__ == "__main__":
    main()
