"""The answer path, top to bottom: question -> retrieve -> rank sentences -> answerable? -> generate -> verify -> cite.

1. A follow-up is made standalone; its time frame is resolved against the day it is asked as of
   (`rag.timeframe`: nothing dated later, "last week" a window); the passages are retrieved (hybrid search).
2. The composer ranks the passages' sentences by how likely each holds the answer (`rag.compose`),
   knowing what kind of fact the question wants (`rag.question`).
3. The gate decides from several signals whether the corpus answers at all (`rag.answerability`);
   if not, the answer is a refusal that still lists the closest passages. If two articles give
   different values for what is asked (`rag.conflicts`), the answer says so and quotes both.
4. The LLM reads the best few sentences and writes one short sentence, streamed after hygiene
   (`rag.hygiene`: no "The answer is:", no layout, no loops).
5. Each draft sentence is verified (`rag.grounding`): what it adds to the question must be in a source
   sentence, numbers and dates compared as values. A supported sentence gets `[n]` and the tightest
   quote that supports it; an unsupported one is removed (or flagged, by config).
6. If no sentence survives, or none states what the question asks for, the answer is the best
   source sentence itself, quoted and trimmed to the clause that answers, and a second one where it
   adds a fact of the kind asked for. The extractive backend always answers this way.
Citations are decided here, never trusted from the model. Sentences citing articles of different
dates are ordered by date, each prefixed with it.
"""

from __future__ import annotations

import re
import time
from contextlib import closing
from dataclasses import dataclass
from datetime import date
from typing import Callable, Iterable, Iterator

import numpy as np

from rag.answerability import AnswerabilityGate, Decision
from rag.compose import AnswerComposer, Candidate
from rag.config import Settings
from rag.conflicts import Conflict, find_conflict
from rag.facts import Moment
from rag.generate import Generator, load_generator
from rag.grounding import NEGATION, GroundingChecker, SourceSentence, Verdict, content_stems, split_sentences
from rag.hygiene import StreamCleaner, clean_draft
from rag.index import NewsIndex
from rag.llm.base import LLMError
from rag.prompt import PromptSentence
from rag.question import Question, QuestionAnalyzer
from rag.retrieve import Retriever
from rag.store.bm25 import tokenize
from rag.timeframe import TimeFrame
from rag.types import Answer, AnswerSentence, Citation, Hit, SearchFilters

REFUSAL = "The corpus does not answer this question."
DISAGREE = "The sources disagree:"
# The model's own ways of saying it does not know; they are not claims to verify.
NO_ANSWER = re.compile(r"^\s*(i (do not|don't|cannot|can't) (know|say|answer)|i'm not sure|unknown|"
                       r"(the )?(passages?|sentences?|context|text) (do|does) not)", re.IGNORECASE)
FOLLOW_UP = re.compile(r"^(and|but|so|also|what about|how about)\b|\b(it|its|they|them|their|that|this|those|these|he|she|his|her|there)\b",
                       re.IGNORECASE)
# An extractive answer's second sentence must be nearly as likely to hold the answer as the first.
SECOND_QUOTE_RATIO = 0.8
# Where an unsupported sentence may be cut to its supported opening: before a comma, "and", "which"...
CLAUSE_END = re.compile(r",\s|\s(?:and|but|which|who|while|with|including|on|in|at|by|for|from|according)\s")
MIN_PREFIX_WORDS = 4
# A claim opening with one of these refers back to the question's subject (Answerer._on_topic).
ON_TOPIC_PRONOUN = re.compile(r"^\W*(it|its|they|their|he|his|she|her|this|these|those|there)\b", re.IGNORECASE)
# Kinds of answer that are figures our parsers find reliably (rag.facts): a quote should state one.
FIGURE_KINDS = {"number", "money", "percent", "measure", "date"}
# Of those, the ones no sentence without a figure can answer ("how many"). A "when" is answered by an
# event or a condition as often as by a date ("when Izzie is diagnosed", "when the filling is wet").
AMOUNT_KINDS = FIGURE_KINDS - {"date"}
# A draft's answer must rest on a sentence at least this close to the question, relative to the closest.
RELEVANCE_RATIO = 0.75
# Re-reading the quote's sentences with the model (_reread) runs after the draft, in series: beside
# the generation it took half of llama.cpp's throughput (the first token doubled). It runs when the
# answer, at the re-reading's last measured cost, is still verified within this many ms of the
# question (target: verified answer p95 <= 3 s, bench/answer_latency.py; what follows it takes
# milliseconds). Its cost depends on the CPU: 0.22 s for three sentences on a Zen 5 VM (measured),
# about 0.5 s on a slow Zen 3 (scaled from the earlier scorer's 0.75 s there); the first guess
# is the slower.
REREAD_DEADLINE_MS = 2800.0
REREAD_FIRST_GUESS_MS = 500.0


def reread_scores(scores, likelihoods, weight: float) -> np.ndarray:
    """Composer scores plus `weight` x how much less likely each sentence makes the question than the
    best of them (Answerer._reread; bench/rerank_quotes.py fits the weight with this same function)."""
    likelihoods = np.asarray(likelihoods, dtype=np.float64)
    return np.asarray(scores, dtype=np.float64) + weight * (likelihoods - likelihoods.max())


@dataclass(frozen=True)
class Draft:
    """A piece of the unverified draft, as the model writes it (cleaned of scaffolding and junk)."""

    text: str


# What an answer stream yields: Draft pieces as the model writes them, then one verified Answer, last.
AnswerEvent = Draft | Answer


def collect(events: Iterable[AnswerEvent], on_draft: Callable[[str], None] | None = None) -> Answer:
    """The verified Answer at the end of an answer stream, handing each draft piece's text to `on_draft`."""
    for event in events:
        if isinstance(event, Answer):
            return event
        if on_draft is not None:
            on_draft(event.text)
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
        self._reread_ms = REREAD_FIRST_GUESS_MS  # what re-reading a quote costs here, as last measured

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
        as_of: str | date | None = None,
    ) -> Iterator[AnswerEvent]:
        """Yield the draft's pieces as generated (cleaned), then the verified Answer.

        `as_of` (default today) is the day the question is asked on: nothing dated later is used, and
        "this week" or "in March" are read from it.
        """
        started = time.perf_counter()
        timings = {"retrieve_ms": 0.0, "generate_ms": 0.0, "verify_ms": 0.0, "total_ms": 0.0, "first_token_ms": None}
        standalone = rewrite_follow_up(question, history or [])
        frame = self.retriever.frame(standalone, as_of)
        for answer in self._stream(question, standalone, frame, timings, started, k, filters, favour_recent):
            if isinstance(answer, Answer):
                answer.timeframe = frame
                if answer.refused and frame.expressions:
                    answer.answer = refusal_in(frame, answer.retrieved, self.index.metadata.newest_date())
            yield answer

    def _stream(self, question: str, standalone: str, frame: TimeFrame, timings: dict, started: float,
                k: int | None, filters: SearchFilters | None, favour_recent: bool) -> Iterator[AnswerEvent]:
        hits = self.retriever.ranked(frame.query, k=k or self.settings.answer.k, filters=frame.filters(filters),
                                     favour_recent=favour_recent or frame.favour_recent, period_until=frame.period_until)
        evidence = self.checker.evidence(standalone, hits)
        asks = self.analyzer.run(standalone)
        candidates = self.composer.rank(asks, evidence)
        decision = self.gate.run(asks, candidates, hits)
        timings["retrieve_ms"] = _ms(started)
        if not hits or not decision.answerable:
            yield self._refusal(question, standalone, hits, timings, started, evidence.best_relevance, decision)
            return

        conflict = find_conflict(candidates, evidence.vectors, hits)
        if conflict is not None:  # two articles give different values for what is asked: say so, cite both
            timings["first_token_ms"] = _ms(started)
            answer = self._disagreement(conflict, asks, question, standalone, hits, timings, started)
            yield Draft(answer.answer)
            answer.relevance, answer.decision = evidence.best_relevance, decision
            yield answer
            return

        chosen = candidates[: self.settings.answer.prompt_sentences]
        if self.generator.quotes:
            quotes = self._quotes(asks, candidates, hits)
            if not quotes:
                yield self._refusal(question, standalone, hits, timings, started, evidence.best_relevance, decision)
                return
            timings["first_token_ms"] = _ms(started)
            yield Draft(" ".join(text for _, text in quotes))
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
                    yield Draft(shown)
        if rest := cleaner.finish():
            timings["first_token_ms"] = timings["first_token_ms"] or _ms(started)
            yield Draft(rest)
        draft = clean_draft(cleaner.raw)
        timings["generate_ms"] = _ms(generating)

        verifying = time.perf_counter()
        claims = [draft[s:e] for s, e in split_sentences(draft)]
        claims = [c for c, words in zip(claims, tokenize(claims) if claims else []) if words and not NO_ANSWER.match(c)]
        evidence = self.checker.add_pairs(evidence, hits)
        verdicts = self.checker.check(claims, evidence.sources, evidence.vectors, question=standalone, asks=asks)
        verdicts = [self._salvage(v, evidence, standalone, asks) for v in verdicts]
        for verdict in verdicts:  # an answer must be about the question and rest on a sentence about it
            verdict.answers = (verdict.answers and self._on_topic(verdict.claim, standalone)
                               and self._relevant(verdict, evidence))
        if any(v.supported and v.answers for v in verdicts):
            for verdict in verdicts:
                if verdict.also is None:  # a claim resting on two sentences keeps both whole
                    verdict.source = self.checker.tighten(verdict, hits, standalone) or verdict.source
            timings["verify_ms"] = _ms(verifying)
            answer = self._cite(question, standalone, draft, verdicts, hits, timings, started)
        else:
            # The draft says nothing the sources support that answers the question: the best
            # sentence itself answers, quoted.
            if self._time_to_reread(started):
                candidates = self._reread(standalone, candidates)
            # as an extractive answer is quoted: a second sentence only where it adds a fact of the kind
            # asked for and ranks nearly as high (the best sentence often sets the scene, the next names it)
            quotes = self._quotes(asks, candidates, hits)
            timings["verify_ms"] = _ms(verifying)
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
        known: set[str] | None = None  # the passages' words, read once a supported opening needs them
        for prefix, candidate in sorted(zip(prefixes, checked), key=lambda pair: -len(pair[0])):
            if not (candidate.supported and candidate.answers):
                continue
            # The model has already gone beyond its sources in this sentence: what is kept of it must
            # name nothing the passages lack ("in 1706 by the English astronomer" from "in the English
            # language was in 1706"), and be a sentence unless it names what the question asks for
            # ("J.K. Rowling and Joanne Harris" is an answer; "The song "In His Eyes"" is not).
            if not asks.kinds and not self.checker.tagger.states([prefix])[0]:
                continue
            if known is None:
                known = content_stems([question] + [s.text for s in evidence.sources if not s.pair])
            if self.checker.unsupported_nouns(prefix, known):
                continue
            candidate.claim = prefix + "."
            return candidate
        return verdict

    def _on_topic(self, claim: str, question: str) -> bool:
        """Whether a claim is about what the question asks about: it shares a content word with the
        question, or it is a bare answer ("970,000.", "New Jersey and Oregon.") or refers back to the
        question's subject ("It lies in ..."). "A Harvest Moon is a rare celestial event ..." states
        something true of another thing than "What is a supermoon?" asks about."""
        if content_stems([claim]) & content_stems([question]) or ON_TOPIC_PRONOUN.match(claim):
            return True
        return not self.checker.tagger.states([claim])[0]

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
    def _time_to_reread(self, started: float) -> bool:
        """Whether re-reading the quote, at its last measured cost, still ends within the deadline."""
        return _ms(started) + self._reread_ms <= REREAD_DEADLINE_MS

    def _reread(self, question: str, candidates: list[Candidate]) -> list[Candidate]:
        """The candidates with the top ones (those the model was given) re-ordered by their score plus
        answer.reread_weight x how much less likely each makes the question to the model than the
        best of them (mean log-probability per question token); as ranked for a generator that cannot
        score text.

        A rejected draft leaves the quote to the sentence ranking; this lets the model's own reading
        weigh in, as unsupervised passage re-ranking does (Sachan et al. 2022). bench/rerank_quotes.py:
        the first sentence holds the answer 0.760 -> 0.800 (ClapNQ) and 0.462 -> 0.519 (RealTime QA)
        on the fit halves, 0.667 -> 0.733 and 0.490 -> 0.529 held out."""
        score = getattr(self.generator, "question_likelihoods", None)
        weight = self.settings.answer.reread_weight
        top = [c for c in candidates[: self.settings.answer.prompt_sentences] if c.score > 0]
        if score is None or weight <= 0 or len(top) < 2:
            return candidates
        scoring = time.perf_counter()
        try:
            likelihoods = score([c.source.text for c in top], question)
        except LLMError:  # the scorer could not load or run: the composer's order stands
            return candidates
        if likelihoods is None:  # a backend that cannot score text: nothing was read, nothing to time
            return candidates
        self._reread_ms = (self._reread_ms + _ms(scoring)) / 2  # smoothed: sentence lengths vary
        combined = reread_scores([c.score for c in top], likelihoods, weight)
        order = sorted(range(len(top)), key=lambda i: -combined[i])  # stable: ties keep the composer's order
        return [top[i] for i in order] + [c for c in candidates if all(c is not t for t in top)]

    def _quotes(self, asks: Question, candidates: list[Candidate], hits: list[Hit],
                limit: int | None = None) -> list[tuple[SourceSentence, str]]:
        """The best sentence as a quote (trimmed to the clause that answers), and a second one when it
        states another fact of the kind the question asks for and ranks nearly as high."""
        limit = limit or getattr(self.generator, "sentences", self.settings.answer.extractive_sentences)
        first = candidates[0]
        if asks.kinds and set(asks.kinds) <= FIGURE_KINDS and not first.answer_spans:
            # "How many / how much / when": prefer the best of the top sentences that states such a
            # figure. With none, a "how many" is not answered by the corpus; a "when" may still be.
            # A weekday or "next week" is an answer where the best sentence gives it, but too common a
            # phrase ("the committee is meeting next week") to pass over the best sentence for.
            stating = [c for c in candidates[: self.settings.answer.prompt_sentences]
                       if any(not isinstance(s, Moment) for s in c.answer_spans) and c.score > 0]
            if stating:
                first = stating[0]
            elif set(asks.kinds) <= AMOUNT_KINDS:
                return []
        if asks.negated:
            # "Which of these was not ...?": the best sentence often names the ones that were. Only a
            # sentence that says what was not (see GroundingChecker.answer_spans) answers; with none, refuse.
            def says_not(c: Candidate) -> bool:
                return bool(c.answer_spans) if asks.kinds else bool(NEGATION.search(c.source.text))

            stating = [c for c in candidates[: self.settings.answer.prompt_sentences] if says_not(c) and c.score > 0]
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
        return [self._quote(candidate, asks, hits) for candidate in chosen]

    def _quote(self, candidate: Candidate, asks: Question, hits: list[Hit]) -> tuple[SourceSentence, str]:
        """The candidate's sentence trimmed to the clause that answers, located in its document."""
        start, end = self.composer.quote_span(candidate, asks, hits)
        hit = hits[candidate.source.passage]
        text = hit.text[start - hit.start:end - hit.start]
        return SourceSentence(candidate.source.passage, start, end, text, year=candidate.source.year), text

    def _disagreement(self, conflict: Conflict, asks: Question, question: str, standalone: str, hits: list[Hit],
                      timings: dict, started: float) -> Answer:
        """Two articles state different values: both quoted and cited, by date, under a note saying so."""
        quotes = [self._quote(conflict.first, asks, hits), self._quote(conflict.second, asks, hits)]
        answer = self._quote_answer(question, standalone, quotes, hits, timings, started, "")
        answer.answer = f"{DISAGREE} {answer.answer}"
        answer.conflict = conflict.to_json(hits)
        return answer

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
        timings["total_ms"] = _ms(started)
        return self._assemble(question, standalone, draft, sentences, citations, hits, timings)

    def _cite(self, question: str, standalone: str, draft: str, verdicts: list[Verdict], hits: list[Hit],
              timings: dict, started: float) -> Answer:
        """Number the supporting quotes and assemble the answer text with `[n]` markers."""
        citations: list[Citation] = []
        numbers: dict[tuple[str, int, int], int] = {}
        sentences = []
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
            sentences.append(AnswerSentence(verdict.claim, cited, verdict.supported, verdict.score))
        timings["total_ms"] = _ms(started)
        return self._assemble(question, standalone, draft, sentences, citations, hits, timings)

    def _assemble(self, question: str, standalone: str, draft: str, sentences: list[AnswerSentence],
                  citations: list[Citation], hits: list[Hit], timings: dict) -> Answer:
        """The answer text with `[n]` markers. Where the cited articles differ in date, the cited
        sentences are ordered by date and begin with it, and citations are numbered in that order."""
        dates = {c.n: c.date for c in citations}
        dated = [s for s in sentences if s.citations]
        if len({dates[s.citations[0]] for s in dated}) > 1:
            dated.sort(key=lambda s: min((dates[n] or "9999") for n in s.citations))
            renumber = {}
            for sentence in dated:
                for n in sentence.citations:
                    renumber.setdefault(n, len(renumber) + 1)
            for sentence in dated:
                sentence.citations = [renumber[n] for n in sentence.citations]
            for citation in citations:
                citation.n = renumber[citation.n]
            citations.sort(key=lambda c: c.n)
            dates = {c.n: c.date for c in citations}
            sentences = dated + [s for s in sentences if not s.citations]
            for sentence in dated:
                sentence.date = dates[sentence.citations[0]] or "undated"
        flag = self.settings.answer.unsupported == "flag"
        parts = [(f"{s.date}: " if s.date else "") + f"{s.text} " + "".join(f"[{n}]" for n in s.citations)
                 if s.citations else f"{s.text} [unsupported]" for s in sentences if s.citations or flag]
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


def refusal_in(frame: TimeFrame, hits: list[Hit], newest: str | None = None) -> str:
    """The refusal for a question that named a time: which dates were searched, and, when the corpus
    ends before them, how to ask as of its last day instead."""
    named = ", ".join(f"'{e.text}'" for e in frame.expressions)
    window = f"{frame.since} to {frame.until} ({named}, as of {frame.as_of})"
    text = (f"The corpus has no articles dated {window}." if not hits
            else f"{REFUSAL[:-1]} in the articles dated {window}.")
    if newest and frame.since and newest < frame.since:
        text += f" Its newest article is dated {newest}: ask as of that day (--as-of / as_of) to read the dates from it."
    return text


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
