"""The answer composer: which passage sentences most likely hold the answer, and how to quote one.

Every single sentence of the retrieved passages is scored by a logistic model of:
  - `relevance`: embedding cosine to the question (so "regions" finds "subjects"),
  - `question_overlap`: share of the question's content words it contains,
  - `kind_match`: it states a fact of the kind the question asks for that the question does not
    name (a person for "who", a number for "how many", a date for "when"; `rag.question`),
  - `kind_miss`: the question asks for a kind and the sentence has none,
  - `novelty`: share of its content words and facts (numbers, dates, names) the question does not
    have (a sentence that only restates the question holds no answer),
  - `passage_rank`: 1 / rank of its passage in the retrieval.
The weights are fitted on the fit halves of ClapNQ (gold sentences) and RealTime QA (sentences with
the right choice) by `bench/calibrate_grounding.py` and read from eval/calibration.json.

The best few go to the LLM (a short prompt: faster first token, less to lose the thread in); when
the LLM's draft fails verification, the best sentence itself is the answer, as a quote trimmed to
the clause that holds the answer where that clause stands alone (`quote_span`).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from rag.config import calibrated
from rag.grounding import CLOSING, Evidence, GroundingChecker, SourceSentence, balanced, strip_span
from rag.question import Question
from rag.types import Hit

CANDIDATE_FEATURES = ("relevance", "question_overlap", "kind_match", "kind_miss", "novelty", "passage_rank")
DEFAULT_CANDIDATE_WEIGHTS = tuple(calibrated("answer_sentences", "weights"))
MIN_CLAUSE_WORDS = 5


@dataclass
class Candidate:
    """A passage sentence that may hold the answer."""

    index: int  # into evidence.sources
    source: SourceSentence
    score: float
    features: dict = field(default_factory=dict)
    answer_spans: list = field(default_factory=list)  # facts of the kind the question asks for


class AnswerComposer:
    """Ranks the passage sentences for a question; quotes the best one tightly."""

    def __init__(self, checker: GroundingChecker, weights: tuple[float, ...] = DEFAULT_CANDIDATE_WEIGHTS):
        self.checker = checker
        self.weights = np.asarray(weights, dtype=np.float64)

    def features(self, asks: Question, evidence: Evidence) -> tuple[np.ndarray, list[list]]:
        """(sentences, features) for the single sentences of the evidence, and each one's answer spans."""
        singles = [i for i, s in enumerate(evidence.sources) if not s.pair]
        texts = [evidence.sources[i].text for i in singles]
        question, *facts = self.checker.facts([asks.text] + texts)
        words = question.words - {"mani", "much"}
        out = np.zeros((len(singles), len(CANDIDATE_FEATURES)))
        spans = []
        for row, (i, found) in enumerate(zip(singles, facts)):
            found_spans = self.checker.answer_spans(texts[row], asks) if asks.kinds or asks.noun else []
            spans.append(found_spans)
            new = self.checker.new_facts(found, question)
            new_facts = len(new.quantities) + len(new.dates) + len(new.codes) + len(new.names)
            stated = len(found.words) + len(found.quantities) + len(found.dates) + len(found.codes) + len(found.names)
            out[row] = (
                float(evidence.relevance[i]),
                len(words & found.words) / len(words) if words else 0.0,
                float(bool(found_spans)),
                float(bool(asks.kinds) and not found_spans),
                (len(found.words - words) + new_facts) / stated if stated else 0.0,
                1.0 / (evidence.sources[i].passage + 1),
            )
        return out, spans

    def rank(self, asks: Question, evidence: Evidence) -> list[Candidate]:
        """The single sentences of the evidence, most likely to hold the answer first."""
        singles = [i for i, s in enumerate(evidence.sources) if not s.pair]
        if not singles:
            return []
        features, spans = self.features(asks, evidence)
        scores = 1.0 / (1.0 + np.exp(-(self.weights[0] + features @ self.weights[1:])))
        # A sentence with no word or fact the question lacks only restates it (a news quiz repeating its
        # own question, a headline), and one with no finite verb states nothing (a list item such as
        # "B. Golden Gate Bridge", a table row), nor does a question (an explainer's subheading "Why is
        # it called a Harvest Moon?", which a model finds very likely before the same question): none
        # can be the answer.
        texts = [evidence.sources[i].text for i in singles]
        states = np.array(self.checker.tagger.states(texts)) & ~np.array([is_question(t) for t in texts])
        scores = np.where((features[:, CANDIDATE_FEATURES.index("novelty")] > 0) & states, scores, 0.0)
        candidates = [Candidate(i, evidence.sources[i], round(float(score), 4),
                                {n: round(float(v), 4) for n, v in zip(CANDIDATE_FEATURES, row)}, found)
                      for i, score, row, found in zip(singles, scores, features, spans)]
        return sorted(candidates, key=lambda c: -c.score)

    def quote_span(self, candidate: Candidate, asks: Question, hits: list[Hit]) -> tuple[int, int]:
        """Document offsets of the shortest clause of the sentence that holds all its answers and stands
        alone; the whole sentence when the question asks for no particular fact or no clause does.

        A clause is a verb with its subject (not a relative "which"/"who") and everything that depends
        on it, from spaCy's parse, less clauses and adjuncts at its edges that do not hold the answer:
        "You probably spoke about this in detail, the trade turnover has grown by 16 percent compared
        to 2020, reaching $3.3 billion." -> "the trade turnover has grown by 16 percent compared to 2020".
        """
        source = candidate.source
        # Every answer the sentence holds stays in the quote: "..., including actor Denzel Washington,
        # gymnast Simone Biles and the late Senator John McCain" is not cut after its first name.
        spans = [(s.start, s.end) for s in candidate.answer_spans if hasattr(s, "start")]
        if not spans or len(source.text.split()) < 2 * MIN_CLAUSE_WORDS:
            return source.start, source.end
        first, last = min(start for start, _ in spans), max(end for _, end in spans)
        doc = self.checker.tagger.parse(source.text)
        best: tuple[int, int] | None = None
        for start, end in clause_spans(doc):
            start, end = strip_span(source.text, start, end)
            clause = source.text[start:end]
            if (not (start <= first and last <= end) or len(clause.split()) < MIN_CLAUSE_WORDS
                    or not balanced(clause)):
                continue
            if best is None or end - start < best[1] - best[0]:
                best = (start, end)
        if best is None or best[1] - best[0] >= len(source.text.rstrip(".!? ")):
            return source.start, source.end
        return source.start + best[0], source.start + best[1]


def is_question(sentence: str) -> bool:
    """Whether a sentence asks rather than states: it ends with a question mark (closing quotes aside)."""
    return sentence.rstrip().rstrip("\"'”’»)]").endswith("?")


# Clauses after the verb that may go: adjuncts and coordinated clauses. Not its complements ("it means
# [that ...]", "should be regarded [as ...]"): without them what is left says nothing.
CLAUSAL = {"advcl", "conj", "parataxis", "relcl"}
ADJUNCTS = {"prep", "npadvmod", "advmod", "advcl", "ccomp", "parataxis", "intj"}
LEADING = {"and", "but", "or", "so", "that", "because", "while", "whereas", ",", ";", ":", "-", "—", "–"}
CLOSERS = set(CLOSING.values()) | {'"'}


def clause_spans(doc) -> list[tuple[int, int]]:
    """Character spans of the clauses of a parsed sentence, each with edge clauses pruned or not. A
    clause inside the sentence whose subject is a pronoun ("..., but it was later reappropriated")
    does not stand alone: its "it" is in the part cut off."""
    spans = []
    for head in doc:
        subjects = [c for c in head.children if c.dep_ in ("nsubj", "nsubjpass", "expl")]
        if not subjects or any(s.tag_ in ("WDT", "WP", "WP$") for s in subjects):
            continue
        if head.left_edge.i > 0 and subjects[0].tag_ == "PRP":
            continue
        first, last = head.left_edge.i, head.right_edge.i
        # Children at the edges that may go: adjuncts before the subject, clauses after the verb.
        before = [c for c in head.children if c.i < subjects[0].i and c.dep_ in ADJUNCTS]
        after = [c for c in head.children if c.i > head.i and c.dep_ in CLAUSAL]
        starts = [first] + [c.right_edge.i + 1 for c in before if c.left_edge.i <= first + 1 or all(
            t.i < c.left_edge.i or t.is_punct for t in doc[first:c.left_edge.i])]
        ends = [last] + [c.left_edge.i - 1 for c in after]
        for start in starts:
            while start < head.i and (doc[start].lower_ in LEADING or doc[start].is_punct):
                start += 1
            if start > 0 and doc[start - 1].text.endswith("."):
                # Inside one sentence a period ends an abbreviation, and the parser may start a clause
                # after it: "her portrayal of Lt. [Nyota Uhura in "Star Trek" has died at age 89]"
                # gives the character the actress's death.
                continue
            for end in ends:
                while end > head.i and (doc[end].lower_ in LEADING or doc[end].is_punct and doc[end].text not in CLOSERS):
                    end -= 1
                if start <= subjects[0].i and end >= head.i:
                    spans.append((doc[start].idx, doc[end].idx + len(doc[end].text)))
    return spans
