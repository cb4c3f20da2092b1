"""The grounding checker: is a claim supported by a source sentence, and which one?

For each claim sentence, every source sentence (and every pair of adjacent sentences of the same
passage, for claims that join two facts) is compared on four features:
  - `cosine`: embedding similarity of claim and source (the same model as retrieval),
  - `overlap`: share of the claim's content words (stemmed, no stop words) found in the source,
  - `numbers_missing`: share of the claim's numbers (220,000 / 16% / 2020) absent from the source,
  - `names_missing`: share of the claim's capitalised names absent from the source.
The support score is a logistic model of cosine and overlap, fitted on human support labels (QAGS)
by `bench/calibrate_grounding.py`, multiplied by agreement factors: a number the source lacks
removes its share of the score (numbers must agree), a missing name half its share. A claim is
supported when its best score reaches `answer.support_threshold`, also calibrated there. The answer
path and the eval harness both call `GroundingChecker`, so what is measured is what runs.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

import numpy as np

from rag.chunking import sentence_spans
from rag.embedding import Embedder
from rag.store.bm25 import tokenize
from rag.types import Hit

# Logistic weights (intercept, cosine, overlap), fitted on QAGS CNN/DM (see eval/calibration.json);
# refit with bench/calibrate_grounding.py.
DEFAULT_WEIGHTS = (-7.1229, 3.9047, 4.5599)
NAME_PENALTY = 0.5  # share of the score a wholly missing set of names removes

FEATURES = ("cosine", "overlap", "numbers_missing", "names_missing")
# Tokenised corpora write "235, 000", "1 , 056" and "1 . 5": rejoin those, but not "In 2019, 300".
SPACED_THOUSANDS = re.compile(r"(?<![\d,])(\d{1,3}(?:,\d{3})*)\s*,\s*(\d{3})(?!\d)")
SPACED_DECIMAL = re.compile(r"(\d)\s+\.\s+(\d)")
NUMBER = re.compile(r"(?<![\w.])\d+(?:[.,]\d+)*")
WORD = re.compile(r"[A-Za-z][\w'’-]*")
# Question and answer scaffolding ("how many ...? The answer is: 220,000") carries no claim; stemmed forms.
NOT_CLAIM_WORDS = {"how", "mani", "much", "what", "which", "who", "whom", "whose", "when", "where", "why", "answer"}
NOT_NAMES = {"i", "the", "a", "an", "in", "on", "at", "it", "he", "she", "they", "we", "you", "this", "that",
             "but", "and", "or", "mr", "mrs", "ms", "dr", "according"}


@dataclass
class SourceSentence:
    """A sentence (or two adjacent ones) of a retrieved passage, located in its document."""

    passage: int  # index into the hits it came from
    start: int  # offsets into the document text
    end: int
    text: str
    pair: bool = False  # two adjacent sentences joined


@dataclass
class Evidence:
    """Source sentences of the retrieved passages, their vectors, and their similarity to the question."""

    sources: list[SourceSentence]
    vectors: np.ndarray
    relevance: np.ndarray

    @property
    def best_relevance(self) -> float:
        """How close the closest single sentence comes to the question (0 when there is none)."""
        singles = [r for r, s in zip(self.relevance, self.sources) if not s.pair]  # pairs carry NaN
        return float(max(singles)) if singles else 0.0


@dataclass
class Verdict:
    """How well one claim is supported, and by what."""

    claim: str
    score: float
    supported: bool
    source: SourceSentence | None
    features: dict = field(default_factory=dict)


def split_sentences(text: str) -> list[tuple[int, int]]:
    """Sentence spans of a text (blingfire), whitespace trimmed."""
    if not text.strip():
        return []
    return sentence_spans(text, 0, len(text))


def numbers_in(text: str) -> set[str]:
    """Numbers as digit strings without separators: "220,000", "220000" and "220 , 000" agree."""
    text = SPACED_DECIMAL.sub(r"\1.\2", text)
    while (joined := SPACED_THOUSANDS.sub(r"\1,\2", text)) != text:
        text = joined
    return {n.replace(",", "").rstrip(".") for n in NUMBER.findall(text)}


def names_in(text: str) -> set[str]:
    """Lower-cased capitalised words that are not the first word of the text."""
    words = WORD.findall(text)
    return {w.lower() for w in words[1:] if w[0].isupper() and w.lower() not in NOT_NAMES}


def adjacent_pairs(singles: list[SourceSentence], hits: list[Hit]) -> list[SourceSentence]:
    """Each two consecutive sentences of the same passage, joined as they stand in the text."""
    pairs = []
    for first, second in zip(singles, singles[1:]):
        if first.passage == second.passage:
            hit = hits[first.passage]
            text = hit.text[first.start - hit.start:second.end - hit.start]
            pairs.append(SourceSentence(first.passage, first.start, second.end, text, pair=True))
    return pairs


class GroundingChecker:
    """Scores claims against source sentences; see the module docstring."""

    def __init__(self, embedder: Embedder, threshold: float = 0.355, weights: tuple[float, ...] = DEFAULT_WEIGHTS):
        self.embedder = embedder
        self.threshold = threshold
        self.weights = np.asarray(weights, dtype=np.float64)

    # -- sources ------------------------------------------------------------------------------
    def source_sentences(self, hits: list[Hit], pairs: bool = True) -> list[SourceSentence]:
        """Sentences of each hit with document offsets, plus adjacent pairs when `pairs`."""
        singles = []
        for number, hit in enumerate(hits):
            for s, e in split_sentences(hit.text):
                singles.append(SourceSentence(number, hit.start + s, hit.start + e, hit.text[s:e]))
        return singles + adjacent_pairs(singles, hits) if pairs else singles

    def document_sentences(self, text: str, pairs: bool = True) -> list[SourceSentence]:
        """Sentences of a whole document (for checking a summary against its article)."""
        hit = Hit(0, "", "", "", None, "", "", text, 0, len(text), 0.0)
        return self.source_sentences([hit], pairs)

    # -- scoring ------------------------------------------------------------------------------
    def evidence(self, question: str, hits: list[Hit]) -> "Evidence":
        """The hits' single sentences, embedded once, with each one's similarity to the question.

        Adjacent pairs are left for `add_pairs`, after generation: the relevance gate needs only
        single sentences, and encoding fewer texts first shortens the time to the first token.
        """
        sources = self.source_sentences(hits, pairs=False)
        vectors = self.embedder.encode([question] + [s.text for s in sources])
        return Evidence(sources, vectors[1:], vectors[1:] @ vectors[0] if sources else np.zeros(0))

    def add_pairs(self, evidence: "Evidence", hits: list[Hit]) -> "Evidence":
        """The same evidence with adjacent sentence pairs added (for claims that join two facts)."""
        pairs = adjacent_pairs([s for s in evidence.sources if not s.pair], hits)
        if not pairs:
            return evidence
        vectors = self.embedder.encode([s.text for s in pairs])
        return Evidence(evidence.sources + pairs, np.vstack([evidence.vectors, vectors]),
                        np.concatenate([evidence.relevance, np.full(len(pairs), np.nan)]))

    def features(self, claims: list[str], sources: list[SourceSentence], source_vectors: np.ndarray | None = None) -> np.ndarray:
        """Feature tensor of shape (claims, sources, 4)."""
        out = np.zeros((len(claims), len(sources), 4), dtype=np.float64)
        if not claims or not sources:
            return out
        if source_vectors is None:
            vectors = self.embedder.encode(claims + [s.text for s in sources])
            claim_vectors, source_vectors = vectors[: len(claims)], vectors[len(claims):]
        else:
            claim_vectors = self.embedder.encode(claims)
        out[:, :, 0] = claim_vectors @ source_vectors.T
        source_words = [set(tokens) for tokens in tokenize([s.text for s in sources])]
        source_numbers = [numbers_in(s.text) for s in sources]
        source_lower = [set(w.lower() for w in WORD.findall(s.text)) for s in sources]
        for i, (claim, claim_tokens) in enumerate(zip(claims, tokenize(claims))):
            words, numbers, names = set(claim_tokens) - NOT_CLAIM_WORDS, numbers_in(claim), names_in(claim)
            for j in range(len(sources)):
                out[i, j, 1] = len(words & source_words[j]) / len(words) if words else 0.0
                out[i, j, 2] = len(numbers - source_numbers[j]) / len(numbers) if numbers else 0.0
                out[i, j, 3] = len(names - source_lower[j]) / len(names) if names else 0.0
        return out

    def probability(self, features: np.ndarray) -> np.ndarray:
        """Support score for a feature array (..., 4): logistic in cosine and overlap, times agreement."""
        logits = self.weights[0] + features[..., :2] @ self.weights[1:3]
        agreement = (1.0 - features[..., 2]) * (1.0 - NAME_PENALTY * features[..., 3])
        return agreement / (1.0 + np.exp(-logits))

    def check(self, claims: list[str], sources: list[SourceSentence], source_vectors: np.ndarray | None = None) -> list[Verdict]:
        """The best-supporting source of each claim and whether it passes the threshold."""
        features = self.features(claims, sources, source_vectors)
        verdicts = []
        for i, claim in enumerate(claims):
            if not sources:
                verdicts.append(Verdict(claim, 0.0, False, None))
                continue
            scores = self.probability(features[i])
            best = int(np.argmax(scores))
            score = float(scores[best])
            verdicts.append(Verdict(
                claim, round(score, 4), score >= self.threshold, sources[best],
                {n: round(float(v), 4) for n, v in zip(FEATURES, features[i, best])},
            ))
        return verdicts

