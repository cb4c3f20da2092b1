"""The answer path, top to bottom: question -> retrieve -> rank sentences -> answerable? -> generate -> verify -> cite.

1. A follow-up is made standalone; the passages are retrieved (hybrid search).
2. The composer ranks the passages' sentences by how likely each holds the answer (`rag.compose`),
   knowing what kind of fact the question wants (`rag.question`).
3. The gate decides from several signals whether the corpus answers at all (`rag.answerability`);
   if not, the answer is a refusal that still lists the closest passages.
4. The LLM reads the best few sentences and writes one short sentence, streamed after hygiene
   (`rag.hygiene`: no "The answer is:", no layout, no loops).
5. Each draft sentence is verified (`rag.grounding`): what it adds to the question must be in a source
   sentence, numbers and dates compared as values. A supported sentence gets `[n]` and the tightest
   quote that supports it; an unsupported one is removed (or flagged, by config).
6. If no sentence survives, or none states what the question asks for, the answer is the best
   source sentence itself, quoted and trimmed to the clause that answers. The extractive backend
   always answers this way.
Citations are decided here, never trusted from the model.
"""

from __future__ import annotations

import re
import time
from contextlib import closing
from typing import Callable, Iterable, Iterator, Union

from rag.answerability import AnswerabilityGate, Decision
from rag.compose import AnswerComposer, Candidate
from rag.config import Settings
from rag.generate import Generator, load_generator
from rag.grounding import GroundingChecker, SourceSentence, Verdict, split_sentences
from rag.hygiene import StreamCleaner, clean_draft
from rag.index import NewsIndex
from rag.prompt import PromptSentence
from rag.question import Question, QuestionAnalyzer
from rag.retrieve import Retriever
from rag.store.bm25 import tokenize
from rag.types import Answer, AnswerSentence, Citation, Hit, SearchFilters

REFUSAL = "The corpus does not answer this question."
# The model's own ways of saying it does not know; they are not claims to verify.
NO_ANSWER = re.compile(r"^\s*(i (do not|don't|cannot|can't) (know|say|answer)|i'm not sure|unknown|"
                       r"(the )?(passages?|sentences?|context|text) (do|does) not)", re.IGNORECASE)
FOLLOW_UP = re.compile(r"^(and|but|so|also|what about|how about)\b|\b(it|its|they|them|their|that|this|those|these|he|she|his|her|there)\b",
                       re.IGNORECASE)
# An extractive answer's second sentence must be nearly as likely to hold the answer as the first.
SECOND_QUOTE_RATIO = 0.8
# Where an unsupported sentence may be cut to its supported opening: before a comma, "and", "which"...
CLAUSE_END = re.compile(r",\s|\s(?:and|but|which|who|while|with|including|on|in|at)\s")
MIN_PREFIX_WORDS = 4
# Kinds of answer that are figures our parsers find reliably (rag.facts): a quote must state one.
FIGURE_KINDS = {"number", "money", "percent", "measure", "date"}
# A draft's answer must rest on a sentence at least this close to the question, relative to the closest.
RELEVANCE_RATIO = 0.75


# What an answer stream yields: pieces of the unverified draft (str) as the model writes them, then
# one verified Answer, last.
AnswerEvent = Union[str, Answer]


def collect(events: Iterable[AnswerEvent], on_draft: Callable[[str], None] | None = None) -> Answer:
    """The verified Answer at the end of an answer stream, handing each draft piece to `on_draft`."""
    for event in events:
        if isinstance(event, Answer):
            return event
        if on_draft is not None:
            on_draft(event)
    raise RuntimeError("the answer stream ended without an answer")  # pragma: no cover


class Answerer:
    """Answers questions over an index with verified citations."""

    def __init__(self, index: NewsIndex, settings: Settings | None = None, generator: Generator | None = None,
                 checker: GroundingChecker | None = None):
        self.index = index
        self.settings = settings or index.settings
        self.retriever = Retriever(index, self.settings.retrieval)
        self.generator = generator or load_generator(self.settings)
        self.checker = checker or GroundingChecker.from_settings(index.embedder, self.settings)
        self.analyzer = QuestionAnalyzer(self.checker.tagger, index.embedder)
        self.composer = AnswerComposer(self.checker)
        self.gate = AnswerabilityGate(threshold=self.settings.answer.answerable_threshold)

    def run(self, question: str, **kwargs) -> Answer:
        """Answer without streaming."""
        return collect(self.stream(question, **kwargs))

    def stream(
        self,
        question: str,
        history: list[dict] | None = None,
        k: int | None = None,
        filters: SearchFilters | None = None,
        favour_recent: bool = False,
    ) -> Iterator[AnswerEvent]:
        """Yield the draft's text pieces as generated (cleaned), then the verified Answer."""
        started = time.perf_counter()
        timings = {"retrieve_ms": 0.0, "generate_ms": 0.0, "verify_ms": 0.0, "total_ms": 0.0, "first_token_ms": None}
        standalone = rewrite_follow_up(question, history or [])

        hits = self.retriever.run(standalone, k=k or self.settings.answer.k, filters=filters, favour_recent=favour_recent)
        evidence = self.checker.evidence(standalone, hits)
        asks = self.analyzer.run(standalone)
        candidates = self.composer.rank(asks, evidence)
        decision = self.gate.run(asks, candidates, hits)
        timings["retrieve_ms"] = _ms(started)
        if not hits or not decision.answerable:
            yield self._refusal(question, standalone, hits, timings, started, evidence.best_relevance, decision)
            return

        chosen = candidates[: self.settings.answer.prompt_sentences]
        if self.generator.quotes:
            quotes = self._quotes(asks, candidates, hits)
            if not quotes:
                yield self._refusal(question, standalone, hits, timings, started, evidence.best_relevance, decision)
                return
            timings["first_token_ms"] = _ms(started)
            yield " ".join(text for _, text in quotes)
            answer = self._quote_answer(question, standalone, quotes, hits, timings, started, "")
            answer.relevance, answer.decision = evidence.best_relevance, decision
            yield answer
            return

        generating = time.perf_counter()
        cleaner = StreamCleaner()
        sentences = [PromptSentence(c.source.text, hits[c.source.passage].title, hits[c.source.passage].date) for c in chosen]
        with closing(self.generator.stream(standalone, sentences)) as pieces:  # closed when our reader leaves
            for piece in pieces:
                if shown := cleaner.feed(piece):
                    if timings["first_token_ms"] is None:
                        timings["first_token_ms"] = _ms(started)
                    yield shown
        if rest := cleaner.finish():
            timings["first_token_ms"] = timings["first_token_ms"] or _ms(started)
            yield rest
        draft = clean_draft(cleaner.raw)
        timings["generate_ms"] = _ms(generating)

        verifying = time.perf_counter()
        claims = [draft[s:e] for s, e in split_sentences(draft)]
        claims = [c for c, words in zip(claims, tokenize(claims) if claims else []) if words and not NO_ANSWER.match(c)]
        evidence = self.checker.add_pairs(evidence, hits)
        verdicts = self.checker.check(claims, evidence.sources, evidence.vectors, question=standalone, asks=asks)
        verdicts = [self._salvage(v, evidence, standalone, asks) for v in verdicts]
        for verdict in verdicts:  # an answer must rest on a sentence about the question
            verdict.answers = verdict.answers and self._relevant(verdict, evidence)
        if any(v.supported and v.answers for v in verdicts):
            for verdict in verdicts:
                if verdict.also is None:  # a claim resting on two sentences keeps both whole
                    verdict.source = self.checker.tighten(verdict, hits, standalone) or verdict.source
            timings["verify_ms"] = _ms(verifying)
            answer = self._cite(question, standalone, draft, verdicts, hits, timings, started)
        else:
            # The draft says nothing the sources support that answers the question: the best
            # sentence itself answers, quoted.
            timings["verify_ms"] = _ms(verifying)
            quotes = self._quotes(asks, candidates, hits, limit=1)
            if quotes:
                answer = self._quote_answer(question, standalone, quotes, hits, timings, started, draft, rejected=verdicts)
            else:
                answer = self._refusal(question, standalone, hits, timings, started)
                answer.draft, answer.sentences = draft, [AnswerSentence(v.claim, [], False, v.score) for v in verdicts]
        answer.relevance, answer.decision = evidence.best_relevance, decision
        yield answer

    def _salvage(self, verdict: Verdict, evidence, question: str, asks: Question) -> Verdict:
        """An unsupported sentence whose opening clauses are supported is cut to them: small models
        start right and then add what the sources do not say ("... held in Budapest, Hungary, on
        October 20")."""
        if verdict.supported:
            return verdict
        cuts = [m.start() for m in CLAUSE_END.finditer(verdict.claim)]
        prefixes = [verdict.claim[:cut].rstrip(" ,;:") for cut in cuts]
        prefixes = [p for p in prefixes if len(p.split()) >= MIN_PREFIX_WORDS]
        if not prefixes:
            return verdict
        checked = self.checker.check(prefixes, evidence.sources, evidence.vectors, question=question, asks=asks)
        for prefix, candidate in sorted(zip(prefixes, checked), key=lambda pair: -len(pair[0])):
            if candidate.supported and candidate.answers:
                candidate.claim = prefix + "."
                return candidate
        return verdict

    def _relevant(self, verdict: Verdict, evidence) -> bool:
        """Whether the claim's source is about the question: close to it as the closest sentence is
        (a true sentence about something else, "the initiative will cost $4.5 billion", does not
        answer "by how much did trade grow")."""
        if verdict.source is None:
            return False
        best = evidence.best_relevance
        spans = [s for s in (verdict.source, verdict.also) if s is not None]
        relevance = max((float(r) for s, r in zip(evidence.sources, evidence.relevance)
                         if not s.pair and any(span.start <= s.start and s.end <= span.end for span in spans)), default=0.0)
        return relevance >= RELEVANCE_RATIO * best

    # -- quotes ---------------------------------------------------------------------------------
    def _quotes(self, asks: Question, candidates: list[Candidate], hits: list[Hit],
                limit: int | None = None) -> list[tuple[SourceSentence, str]]:
        """The best sentence as a quote (trimmed to the clause that answers), and a second one when it
        states another fact of the kind the question asks for and ranks nearly as high."""
        limit = limit or getattr(self.generator, "sentences", self.settings.answer.extractive_sentences)
        first = candidates[0]
        if asks.kinds and set(asks.kinds) <= FIGURE_KINDS and not first.answer_spans:
            # "How many / how much / when": a sentence without such a figure does not answer. Take the
            # best of the top ones that has one; if none has, the corpus is silent on it.
            stating = [c for c in candidates[: self.settings.answer.prompt_sentences] if c.answer_spans and c.score > 0]
            if not stating:
                return []
            first = stating[0]
        chosen = [first]
        if limit > 1 and asks.kinds and len(candidates) > 1:
            second = candidates[1]
            first_facts = {getattr(s, "text", "").lower() for s in first.answer_spans}
            adds = [s for s in second.answer_spans if getattr(s, "text", "").lower() not in first_facts]
            if adds and second.score >= SECOND_QUOTE_RATIO * first.score:
                chosen.append(second)
        quotes = []
        for candidate in chosen:
            start, end = self.composer.quote_span(candidate, asks, hits)
            hit = hits[candidate.source.passage]
            text = hit.text[start - hit.start:end - hit.start]
            quotes.append((SourceSentence(candidate.source.passage, start, end, text, year=candidate.source.year), text))
        return quotes

    def _quote_answer(self, question: str, standalone: str, quotes: list[tuple[SourceSentence, str]], hits: list[Hit],
                      timings: dict, started: float, draft: str, rejected: list[Verdict] | None = None) -> Answer:
        """An answer made of quoted source sentences, each citing itself."""
        citations, sentences = [], []
        for number, (source, text) in enumerate(quotes, start=1):
            hit = hits[source.passage]
            citations.append(Citation(n=number, doc_id=hit.doc_id, chunk_id=hit.chunk_id, title=hit.title, date=hit.date,
                                      source=hit.source, url=hit.url, quote=text, start=source.start, end=source.end,
                                      score=1.0))
            sentences.append(AnswerSentence(f"“{text}”", [number], True, 1.0))
        for verdict in rejected or []:
            sentences.append(AnswerSentence(verdict.claim, [], False, verdict.score))
        flag = self.settings.answer.unsupported == "flag"
        parts = [f"{s.text} [{s.citations[0]}]" for s in sentences if s.citations]
        parts += [f"{s.text} [unsupported]" for s in sentences if not s.citations and flag]
        timings["total_ms"] = _ms(started)
        return Answer(question, " ".join(parts), False, sentences, citations, hits, self.llm_info(), timings,
                      standalone, draft)

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
                for source in filter(None, (verdict.source, verdict.also)):
                    hit = hits[source.passage]
                    key = (hit.doc_id, source.start, source.end)
                    if key not in numbers:
                        numbers[key] = len(citations) + 1
                        citations.append(Citation(
                            n=numbers[key], doc_id=hit.doc_id, chunk_id=hit.chunk_id, title=hit.title, date=hit.date,
                            source=hit.source, url=hit.url, quote=source.text, start=source.start, end=source.end,
                            score=verdict.score,
                        ))
                    cited.append(numbers[key])
                parts.append(f"{verdict.claim} " + "".join(f"[{n}]" for n in cited))
            elif flag:
                parts.append(f"{verdict.claim} [unsupported]")
            sentences.append(AnswerSentence(verdict.claim, cited, verdict.supported, verdict.score))
        timings["total_ms"] = _ms(started)
        return Answer(question, " ".join(parts), False, sentences, citations, hits, self.llm_info(), timings,
                      standalone, draft)

    def _refusal(self, question: str, standalone: str, hits: list[Hit], timings: dict, started: float,
                 relevance: float = 0.0, decision: Decision | None = None) -> Answer:
        timings["total_ms"] = _ms(started)
        answer = Answer(question, REFUSAL, True, [], [], hits, self.llm_info(), timings, standalone)
        answer.relevance, answer.decision = relevance, decision
        return answer

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
