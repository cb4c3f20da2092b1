"""The answer path, top to bottom: question -> rewrite -> retrieve -> generate -> verify -> cite.

Citations are decided here, not trusted from the model: each answer sentence is checked against the
sentences of the retrieved passages by the grounding checker; a supported sentence gets `[n]` and
the exact quote with its offsets in the source document; an unsupported one is removed (or flagged,
by config). When retrieval finds nothing relevant, or no sentence is supported, the answer is a
refusal that still lists the closest passages.
"""

from __future__ import annotations

import re
import time
from typing import Iterator

from rag.config import Settings
from rag.generate import Generator, load_generator
from rag.grounding import GroundingChecker, Verdict, split_sentences
from rag.index import NewsIndex
from rag.retrieve import Retriever, SearchFilters
from rag.store.bm25 import tokenize
from rag.types import Answer, AnswerSentence, Citation, Hit

REFUSAL = "The corpus does not answer this question."
# The model's own ways of saying it does not know; they are not claims to verify.
NO_ANSWER = re.compile(r"^\s*(i (do not|don't) know|i'm not sure|the passages? (do|does) not)", re.IGNORECASE)
FOLLOW_UP = re.compile(r"^(and|but|so|also|what about|how about)\b|\b(it|its|they|them|their|that|this|those|these|he|she|his|her|there)\b",
                       re.IGNORECASE)


class Answerer:
    """Answers questions over an index with verified citations."""

    def __init__(self, index: NewsIndex, settings: Settings | None = None, generator: Generator | None = None,
                 checker: GroundingChecker | None = None):
        self.index = index
        self.settings = settings or index.settings
        self.retriever = Retriever(index, self.settings.retrieval)
        self.generator = generator or load_generator(self.settings)
        self.checker = checker or GroundingChecker(index.embedder, self.settings.answer.support_threshold)

    def run(self, question: str, **kwargs) -> Answer:
        """Answer without streaming."""
        for item in self.stream(question, **kwargs):
            if isinstance(item, Answer):
                return item
        raise RuntimeError("the answer stream ended without an answer")  # pragma: no cover

    def stream(
        self,
        question: str,
        history: list[dict] | None = None,
        k: int | None = None,
        filters: SearchFilters | None = None,
        favour_recent: bool = False,
    ) -> Iterator[str | Answer]:
        """Yield the draft's text pieces as generated, then the verified Answer."""
        started = time.perf_counter()
        timings = {"retrieve_ms": 0.0, "generate_ms": 0.0, "verify_ms": 0.0, "total_ms": 0.0, "first_token_ms": None}
        standalone = rewrite_follow_up(question, history or [])

        hits = self.retriever.run(standalone, k=k or self.settings.answer.k, filters=filters, favour_recent=favour_recent)
        evidence = self.checker.evidence(standalone, hits)
        timings["retrieve_ms"] = _ms(started)
        if not hits or evidence.best_relevance < self.settings.answer.min_relevance:
            refusal = self._refusal(question, standalone, hits, timings, started)
            refusal.relevance = evidence.best_relevance
            yield refusal
            return

        generating = time.perf_counter()
        pieces: list[str] = []
        for piece in self.generator.stream(standalone, hits, evidence):
            if timings["first_token_ms"] is None:
                timings["first_token_ms"] = _ms(started)
            pieces.append(piece)
            yield piece
        draft = "".join(pieces).strip()
        timings["generate_ms"] = _ms(generating)

        verifying = time.perf_counter()
        sentences = [draft[s:e] for s, e in split_sentences(draft)]
        claims, checked = [], []
        for sentence, words in zip(sentences, tokenize(sentences) if sentences else []):
            if NO_ANSWER.match(sentence) or not words:
                continue
            claims.append(sentence)
            # A terse reply ("The answer is: 220,000.") only means something with its question: check the two together.
            checked.append(sentence if len(words) >= 4 else f"{standalone} {sentence}")
        evidence = self.checker.add_pairs(evidence, hits)
        verdicts = self.checker.check(checked, evidence.sources, evidence.vectors)
        for verdict, claim in zip(verdicts, claims):
            verdict.claim = claim
        timings["verify_ms"] = _ms(verifying)
        answer = self._cite(question, standalone, draft, verdicts, hits, timings, started)
        answer.relevance = evidence.best_relevance
        yield answer

    def _cite(self, question: str, standalone: str, draft: str, verdicts: list[Verdict], hits: list[Hit],
              timings: dict, started: float) -> Answer:
        """Number the supporting quotes and assemble the answer text with `[n]` markers."""
        citations: list[Citation] = []
        numbers: dict[tuple[str, int, int], int] = {}
        sentences, parts = [], []
        flag = self.settings.answer.unsupported == "flag"
        for verdict in verdicts:
            cited: list[int] = []
            if verdict.supported and verdict.source is not None:
                hit = hits[verdict.source.passage]
                key = (hit.doc_id, verdict.source.start, verdict.source.end)
                if key not in numbers:
                    numbers[key] = len(citations) + 1
                    citations.append(Citation(
                        n=numbers[key], doc_id=hit.doc_id, chunk_id=hit.chunk_id, title=hit.title, date=hit.date,
                        source=hit.source, url=hit.url, quote=verdict.source.text, start=verdict.source.start,
                        end=verdict.source.end, score=verdict.score,
                    ))
                cited = [numbers[key]]
                parts.append(f"{verdict.claim} [{cited[0]}]")
            elif flag:
                parts.append(f"{verdict.claim} [unsupported]")
            sentences.append(AnswerSentence(verdict.claim, cited, verdict.supported, verdict.score))
        if not citations:
            refusal = self._refusal(question, standalone, hits, timings, started)
            refusal.sentences, refusal.draft = sentences, draft
            return refusal
        timings["total_ms"] = _ms(started)
        return Answer(question, " ".join(parts), False, sentences, citations, hits, self.llm_info(), timings,
                      standalone, draft)

    def _refusal(self, question: str, standalone: str, hits: list[Hit], timings: dict, started: float) -> Answer:
        timings["total_ms"] = _ms(started)
        return Answer(question, REFUSAL, True, [], [], hits, self.llm_info(), timings, standalone)

    def llm_info(self) -> dict:
        """Which generator answers: {"backend", "model"} (the `llm` field of an answer)."""
        return {"backend": self.generator.backend, "model": self.generator.model}


def rewrite_follow_up(question: str, history: list[dict]) -> str:
    """A standalone question for retrieval: a follow-up carries the previous question along.

    A follow-up is a question that leans on the conversation: it starts with "and"/"what about" or
    uses a pronoun, or it is too short to stand alone. The previous question (itself made standalone
    the same way) is appended in parentheses, so retrieval and the generator see what "it" or
    "in 2021" refers to.
    """
    previous = ""
    for message in history:
        if message.get("role") == "user" and message.get("content", "").strip():
            previous = _standalone(message["content"], previous)
    return _standalone(question, previous)


def _standalone(question: str, previous: str) -> str:
    question = question.strip()
    if previous and (FOLLOW_UP.search(question) or len(tokenize([question])[0]) < 3):
        return f"{question} ({previous})"
    return question


def _ms(since: float) -> float:
    return round((time.perf_counter() - since) * 1000, 1)
