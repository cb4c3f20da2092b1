"""The grounding checker: is a claim supported by a source sentence, and which one?

What is verified is what the claim adds to the question: "About 220,000 doses were delivered"
answering "How many doses were delivered?" is checked on "220,000" and on the words the question
did not already say, so repeating the question earns nothing. For each claim, every source sentence
(and every pair of adjacent sentences of one passage, for claims joining two facts) is compared:
  - facts, checked exactly (`rag.facts`): each quantity, date, code ("3+3", "G7") and named entity
    of the claim that the question does not contain must be in the source, quantities compared as
    values with their units and qualifiers ("3" is not "3+3", "$3.3 billion" or "30th"); one missing
    fact and the source does not support the claim;
  - `cosine`: embedding similarity of the claim (a terse one together with its question) and source,
  - `overlap`: share of the claim's content words (stemmed, no stop words) in the source,
  - `new_overlap`: share of the claim's *new* content words (not in the question) in the source,
  - `names_missing`: share of the claim's capitalised words absent from the source (a soft penalty).
The score is a logistic model of cosine, overlap and new_overlap, fitted by
`bench/calibrate_grounding.py` on the fit halves of QAGS (human support labels) and ClapNQ (gold
answers against their passages), times the agreement factors; a claim with no new content scores 0.
A claim is supported when its best score reaches `answer.support_threshold`, also fitted there; the
weights and threshold are read from `eval/calibration.json`. The answer path and the eval harness
both call `GroundingChecker`, so what is measured is what runs.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass, field, replace
from functools import lru_cache

import numpy as np

from rag.chunking import is_layout, sentence_spans
from rag.config import Settings, calibrated
from rag.embedding import Embedder
from rag.entities import Entity, EntityTagger
from rag.facts import CODE as CODE_PATTERN
from rag.facts import DateMention, Moment, Quantity, codes, dates, dates_agree, moments, quantities, quantities_agree
from rag.injection import is_instruction
from rag.question import Question
from rag.store.bm25 import tokenize
from rag.types import Hit

FEATURES = ("cosine", "overlap", "new_overlap", "facts_missing", "names_missing")
NAME_PENALTY = 0.5  # share of the score a wholly missing set of capitalised words removes
FACT_PENALTY = 0.1  # the most a claim with a fact its source lacks can score; thresholds are fitted above it
TERSE_WORDS = 4  # a claim with fewer content words is embedded together with its question
# A clause boundary inside a sentence: a comma, semicolon, colon or dash, or a parenthesis.
CLAUSE_BREAK = re.compile(r"\s*[,;:]\s+|\s+[—–]\s+|\s+--?\s+|\s+(?=\()|(?<=\))\s+")
MAX_TIGHTER = 24  # spans tried when tightening a quote
LIST_ITEMS = 3  # nouns joined in a list from which on each must be in the source (GroundingChecker.listed_items)
JOINT_CANDIDATES = 4  # a claim's best sources tried two by two
ANSWER_SOURCES = 5  # supporting sources searched for one that states the claim's answer (GroundingChecker.check)
FOCUS_WINDOW = 4  # words after a number that may name what it counts
# Two numbers count the same thing when the words after them are this close (all-MiniLM-L6-v2):
# "regions"/"countries" 0.59, "trucks"/"lorries" 0.57, "trucks"/"vehicles" 0.75; "regions"/"subjects"
# 0.31, "regions"/"river ports" lower.
SAME_THING_SIMILARITY = 0.3
FOCUS_SIMILARITY = 0.45  # "70 subjects of the Russian Federation" vs "Russian regions": 0.54; vs "trucks" < 0.35
WORD = re.compile(r"[A-Za-z][\w'’-]*")
TOKEN = re.compile(r"[^\W_]+(?:[+'’.-][^\W_]+)*")
# Question and answer scaffolding ("how many ...? The answer is: 220,000") carries no claim; stemmed forms.
NOT_CLAIM_WORDS = {"how", "mani", "much", "what", "which", "who", "whom", "whose", "when", "where", "why", "answer"}
NOT_NAMES = {"i", "the", "a", "an", "in", "on", "at", "it", "he", "she", "they", "we", "you", "this", "that",
             "but", "and", "or", "mr", "mrs", "ms", "dr", "according", "yes", "no"}
NAME_KINDS = {"person", "org", "group", "place", "work", "product", "event", "law", "language"}
NUMBER_KINDS = {"number", "money", "percent", "measure"}
# What "how much" can be answered with besides money and percentages: a quantity in a unit of measure.
MEASURE_WORDS = {"ton", "tons", "tonne", "tonnes", "kg", "kilograms", "kilogram", "grams", "pounds", "lbs", "km",
                 "kilometers", "kilometres", "miles", "meters", "metres", "feet", "inches", "cm", "mm", "liters",
                 "litres", "gallons", "barrels", "degrees", "points", "hours", "minutes", "seconds", "days", "weeks",
                 "months", "years", "mph", "kmh", "acres", "hectares", "megawatts", "gigawatts", "mw", "gw", "twh",
                 "kwh", "calories", "times", "fold", "cents", "pence"}
NAME_FILLER = {"the", "of", "and", "'s", "’s", "s", "de", "la", "al", "von", "van"}
# Stemmed words that are part of a quantity ("220 thousand", "16 percent", "$3.3 billion"): compared
# as values by the facts check, not as words.
NUMBER_WORDS = {"thousand", "million", "billion", "trillion", "hundr", "percent", "dollar", "euro", "pound",
                "one", "two", "three", "four", "five", "six", "seven", "eight", "nine", "ten", "dozen", "eleven",
                "twelv", "twenti", "thirti", "forti", "fifti", "sixti", "seventi", "eighti", "nineti"}
# A currency named without a figure is a content word: "the dollar is nearly equal to the euro" answers
# "which currency"; with a figure it is part of the quantity, whose words a claim's facts leave out.
CURRENCY_NAMES = {"dollar", "euro", "pound"}
QUANTITY_ONLY_WORDS = NUMBER_WORDS - CURRENCY_NAMES  # what a claim's words leave out wherever they stand
# Offices a news text puts before a person's name ("Prime Minister of the Republic of Ruritania Anna
# Berg", "President Jon Dahl"), as their head word; a claim that gives a person another office than its
# source gives them is wrong however many of its words the source has ("the Ruritanian President Anna
# Berg" from "Prime Minister ... Anna Berg welcomed President Jon Dahl").
OFFICES = {"president": "president", "minister": "minister", "premier": "minister", "chancellor": "chancellor",
           "senator": "senator", "sen": "senator", "governor": "governor", "gov": "governor", "mayor": "mayor",
           "king": "king", "queen": "queen", "prince": "prince", "princess": "princess", "pope": "pope",
           "emperor": "emperor", "secretary": "secretary", "ambassador": "ambassador", "speaker": "speaker",
           "chairman": "chair", "chairwoman": "chair", "chairperson": "chair", "chair": "chair", "ceo": "executive",
           "executive": "executive", "director": "director", "judge": "judge", "justice": "justice",
           "representative": "representative", "rep": "representative", "congressman": "representative",
           "congresswoman": "representative", "general": "general", "gen": "general", "admiral": "admiral",
           "commissioner": "commissioner", "spokesman": "spokesperson", "spokeswoman": "spokesperson",
           "spokesperson": "spokesperson", "coach": "coach", "manager": "manager", "sheikh": "sheikh"}
# Words that make another office of the one they qualify: "Vice President" is not "President", and
# "Deputy Prime Minister" neither "Prime Minister" nor "Minister".
OFFICE_RANKS = {"vice", "deputy", "prime", "former", "ex", "acting", "assistant", "lieutenant", "under", "elect",
                "interim"}
IMPLIED_RANKS = {"premier": "prime"}  # a premier is a prime minister
OFFICE_FILLER = {"of", "the", "for", "'s", "’s"}  # "President of the Republic of Ruritania Jon Dahl"
OFFICE_REACH = 8  # words before a name searched for its office
CLAUSE_EDGE = re.compile(r"[,;:.!?()\[\]\"“”]")


# Logistic weights (intercept, cosine, overlap, new_overlap) and the threshold, as last fitted.
DEFAULT_WEIGHTS = tuple(calibrated("support_model", "weights"))
DEFAULT_THRESHOLD = float(calibrated("support_model", "threshold"))


@dataclass
class SourceSentence:
    """A sentence (or two adjacent ones) of a retrieved passage, located in its document."""

    passage: int  # index into the hits it came from
    start: int  # offsets into the document text
    end: int
    text: str
    pair: bool = False  # two adjacent sentences joined
    year: int | None = None  # the article's year: a date the sentence gives without one is in it


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
    answers: bool = True  # the claim states a fact of the kind the question asks for (a name, a number...)
    also: SourceSentence | None = None  # a second sentence of the passage, for a claim that joins two facts


@dataclass
class Facts:
    """What a text states that a claim must match exactly, and its words."""

    words: set[str]  # stemmed content words
    tokens: set[str]  # lower-cased surface tokens
    quantities: list[Quantity]
    dates: list[DateMention]
    codes: set[str]
    names: list[tuple[str, ...]]  # named entities as lower-cased token tuples
    capitalised: set[str]
    entities: tuple[Entity, ...]
    offices: list[tuple[str, str, frozenset[str]]] = field(default_factory=list)  # (surname, office, ranks)


def split_sentences(text: str) -> list[tuple[int, int]]:
    """Sentence spans of a text (blingfire, line breaks, no layout lines), whitespace trimmed."""
    if not text.strip():
        return []
    return sentence_spans(text, 0, len(text))


# Typographic apostrophes read as the ASCII one: "O’Malley" in an article is "O'Malley" in a draft.
INITIALS = re.compile(r"(?<=\b[a-z])\.(?=[a-z]\b)")  # the dots inside "u.s" or "u.k" (lower-cased)
CAPITAL_INITIALS = re.compile(r"(?<=\b[A-Z])\.(?=[A-Z]\b)")  # the same in "U.S." or "J.K." as written
APOSTROPHES = str.maketrans({"’": "'", "‘": "'", "ʼ": "'", "`": "'"})


# A sentence that can answer a negated question ("which of these was not invited?") says what was not:
# a negation, or a verb or phrase of leaving out. A list of the ones that were answers nothing. ("No. 2"
# is a rank, not a negation.)
NEGATION = re.compile(r"n[’']t\b|\bno\b(?!\.\s*\d)|\b(?:not|never|none|nor|neither|nobody|nothing|without|except|"
                      r"left out|excluded|omitted|snubbed|missing|absent|declined|refused|failed)\b", re.IGNORECASE)

# Where a sentence's clauses part, for telling which of its figures a question's words are about: any
# clause ("76% are still with the president, 16% were undecided"), or one that sets a contrast ("the
# equinox is Sunday, Sept. 22, but the Harvest Moon is rising already"), which commas inside a date or
# after an opening adverbial do not.
FACT_CLAUSE_BREAK = re.compile(r"[,;:()–—]\s|\s(?:and|but|while|whereas|compared with|compared to|versus|vs\.?)\s")
CONTRAST_BREAK = re.compile(r";\s|,?\s(?:but|while|whereas|although|though)\s")


def _about_question(text: str, found: list, question_words: set[str]) -> list:
    """Of the figures (quantities or dates) of a sentence, those the question is about: none in a
    contrasting clause that shares no word with the question while another clause does, and of several,
    those of the clauses that share the most words with it (all when no clause shares more)."""
    if not found:
        return found

    def shared(pattern: re.Pattern) -> list[tuple[int, int, int]]:
        bounds = [0] + [m.end() for m in pattern.finditer(text)] + [len(text) + 1]
        spans = list(zip(bounds, bounds[1:]))
        return [(a, b, len(set(w) & question_words)) for (a, b), w in zip(spans, tokenize([text[a:b] for a, b in spans]))]

    def overlap(fact, clauses) -> int:
        at = fact.end - 1  # its last character (a span may begin at the space before it)
        return next((n for a, b, n in clauses if a <= at < b), 0)

    if CONTRAST_BREAK.search(text):  # one clause alone keeps its figures either way
        contrast = shared(CONTRAST_BREAK)
        if max(n for _, _, n in contrast) > 0:
            found = [f for f in found if overlap(f, contrast) > 0]
    if len(found) < 2:
        return found
    clauses = shared(FACT_CLAUSE_BREAK)
    best = max(overlap(f, clauses) for f in found)
    return [f for f in found if overlap(f, clauses) == best]


def content_stems(texts: list[str]) -> set[str]:
    """The stemmed content words of some texts, filtered as Facts.words are (its stop words include
    nouns such as "part" and "system")."""
    return set(tokenize([" ".join(texts)])[0]) - NUMBER_WORDS - _stop_words() if texts else set()


def surface_tokens(text: str) -> list[str]:
    """Lower-cased tokens without accents, possessives and the dots of initials ("Russia's" -> "russia",
    "Khloé" -> "khloe", "O’Malley" -> "o'malley", "U.S." -> "us")."""
    folded = unicodedata.normalize("NFKD", text)
    folded = "".join(c for c in folded if not unicodedata.combining(c)).translate(APOSTROPHES)
    return [INITIALS.sub("", re.sub(r"'s$", "", t.lower())) for t in TOKEN.findall(folded)]


def names_in(text: str) -> set[str]:
    """Lower-cased capitalised words that are not the first word of the text, initials as one word the
    way `surface_tokens` reads them ("the U.S. dollar" -> {"us"}, not "u" and "s", which no source has)."""
    words = WORD.findall(CAPITAL_INITIALS.sub("", text))
    return {w.lower() for w in words[1:] if w[0].isupper() and w.lower() not in NOT_NAMES}


def offices_in(text: str, entities: tuple[Entity, ...]) -> list[tuple[str, str, frozenset[str]]]:
    """(surname, office, ranks) for each person the text names with an office before the name, read
    back through the clause ("Deputy Prime Minister Lena Vik" -> ("vik", "minister",
    {"deputy", "prime"})). The office is the head word nearest the name; other office words and ranks
    before it qualify it. A person named with no office before them is not listed."""
    people = [e for e in entities if e.kind == "person"]
    found = []
    for entity in people:
        words = [w for w in surface_tokens(entity.text) if w not in NAME_FILLER]
        leading = []
        while words and (words[0] in OFFICES or words[0] in OFFICE_RANKS):  # "President Biden" tagged whole
            leading.append(words.pop(0))
        if not words:
            continue
        floor = max([e.end for e in people if e.end <= entity.start] + [0])  # not back into another person
        clause = CLAUSE_EDGE.split(text[floor:entity.start])[-1] if entity.start > floor else ""
        office, ranks = None, set()
        for word in list(reversed(leading)) + [w for w in reversed(WORD.findall(clause)[-OFFICE_REACH:])]:
            low = word.lower()
            for part in reversed(low.split("-")):  # "president-elect"
                if part in OFFICES and office is None:
                    office = OFFICES[part]
                    ranks.update([IMPLIED_RANKS[part]] if part in IMPLIED_RANKS else [])
                elif part in OFFICES or part in OFFICE_RANKS:
                    ranks.add(part)
            if not (low in OFFICES or low in OFFICE_RANKS or "-" in low or low in OFFICE_FILLER or word[0].isupper()):
                break  # a verb or a common word: the office, if any, ended here ("welcomed President ...")
        if office is not None:
            found.append((words[-1], office, frozenset(ranks)))
    return found


def office_contradicted(claimed: tuple[str, str, frozenset[str]], source: list[tuple[str, str, frozenset[str]]]) -> bool:
    """Whether a source gives the claim's person an office, and never the one the claim gives them."""
    surname, office, ranks = claimed
    given = [(o, r) for name, o, r in source if name == surname]
    return bool(given) and (office, ranks) not in given


def name_present(name: tuple[str, ...], tokens: set[str]) -> bool:
    """A name is in a text when its tokens are (one may be missing from a name of three or more:
    "Maria Lopez" is in "Maria Elena Lopez", and the reverse too). A token matches
    its own derived forms ("Russia" / "Russian", "Kenya" / "Kenyan")."""
    needed = [t for t in name if t not in NAME_FILLER]
    if not needed:
        return True
    missing = sum(not _token_in(t, tokens) for t in needed)
    return missing == 0 or (len(needed) >= 3 and missing == 1 and _token_in(needed[-1], tokens))


def named_by(name: str, text: "Facts") -> bool:
    """Whether a text names `name`: wholly, or by its head as a name ("Biden's" names "Joe Biden"; the
    common noun of "which national park" does not name "Yosemite National Park"). A name the question
    gives is not its answer."""
    head = [t for t in surface_tokens(name) if t not in NAME_FILLER][-1:]
    return name_present(tuple(surface_tokens(name)), text.tokens) or bool(
        head and any(_token_in(head[0], set(surface_tokens(word))) for word in text.capitalised))


def _token_in(token: str, tokens: set[str]) -> bool:
    if token in tokens:
        return True
    if len(token) < 4:
        return False
    return any(len(t) >= 4 and abs(len(t) - len(token)) <= 3 and (t.startswith(token) or token.startswith(t))
               for t in tokens)


def adjacent_pairs(singles: list[SourceSentence], hits: list[Hit]) -> list[SourceSentence]:
    """Each two consecutive sentences of the same passage, joined as they stand in the text."""
    pairs = []
    for first, second in zip(singles, singles[1:]):
        if first.passage == second.passage:
            hit = hits[first.passage]
            between = hit.text[first.end - hit.start:second.start - hit.start]
            if between.strip() and not is_layout(between):
                continue  # a sentence left out (addressed to an AI) lies between them
            text = hit.text[first.start - hit.start:second.end - hit.start]
            pairs.append(SourceSentence(first.passage, first.start, second.end, text, pair=True, year=first.year))
    return pairs


def _year(date: str | None) -> int | None:
    return int(date[:4]) if date and date[:4].isdigit() else None


class GroundingChecker:
    """Scores claims against source sentences; see the module docstring."""

    def __init__(self, embedder: Embedder, threshold: float = DEFAULT_THRESHOLD,
                 weights: tuple[float, ...] = DEFAULT_WEIGHTS, tagger: EntityTagger | None = None):
        self.embedder = embedder
        self.threshold = threshold
        self.weights = np.asarray(weights, dtype=np.float64)
        self.tagger = tagger or EntityTagger()
        self._counted_cache: dict[tuple, bool] = {}

    @classmethod
    def from_settings(cls, embedder: Embedder, settings: Settings) -> "GroundingChecker":
        """The checker a configuration asks for (threshold, NER model)."""
        return cls(embedder, settings.answer.support_threshold, tagger=EntityTagger(settings.answer.ner_model))

    # -- sources ------------------------------------------------------------------------------
    def source_sentences(self, hits: list[Hit], pairs: bool = True) -> list[SourceSentence]:
        """Sentences of each hit with document offsets, plus adjacent pairs when `pairs`."""
        singles = []
        for number, hit in enumerate(hits):
            for s, e in split_sentences(hit.text):
                if not is_instruction(hit.text[s:e]):  # addressed to an AI: never evidence (rag.injection)
                    singles.append(SourceSentence(number, hit.start + s, hit.start + e, hit.text[s:e], year=_year(hit.date)))
        return singles + adjacent_pairs(singles, hits) if pairs else singles

    def document_sentences(self, text: str, pairs: bool = True) -> list[SourceSentence]:
        """Sentences of a whole document (for checking a summary against its article)."""
        hit = Hit(0, "", "", "", None, "", "", text, 0, len(text), 0.0)
        return self.source_sentences([hit], pairs)

    def evidence(self, question: str, hits: list[Hit]) -> "Evidence":
        """The hits' single sentences, embedded once, with each one's similarity to the question.

        Adjacent pairs are left for `add_pairs`, after generation: the answer path needs only single
        sentences before it, and encoding fewer texts first shortens the time to the first token.
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

    # -- facts --------------------------------------------------------------------------------
    def facts(self, texts: list[str]) -> list[Facts]:
        """The facts of each text (entities by the NER model, cached)."""
        return [_facts(text, entities) for text, entities in zip(texts, self.tagger.tag(texts))]

    @staticmethod
    def new_facts(claim: Facts, question: Facts | None) -> Facts:
        """The claim's facts that the question does not already state."""
        if question is None:
            return claim
        return Facts(
            words=claim.words - question.words - NOT_CLAIM_WORDS,
            tokens=claim.tokens,
            quantities=[q for q in claim.quantities if not any(quantities_agree(q, x) for x in question.quantities)],
            dates=[d for d in claim.dates if not any(dates_agree(d, x) for x in question.dates)],
            codes=claim.codes - question.codes,
            names=[n for n in claim.names if not name_present(n, question.tokens)],
            capitalised=claim.capitalised - question.tokens,
            entities=claim.entities,
            offices=[o for o in claim.offices if o not in question.offices],
        )

    # -- scoring ------------------------------------------------------------------------------
    def _prepare(self, claims: list[str], sources: list[SourceSentence], source_vectors: np.ndarray | None,
                 question: str) -> tuple[np.ndarray, list[tuple[Facts, set[str], int, set[str], list[Quantity]]], list[Facts]]:
        """Cosines (claims x sources), each claim's (new facts, words, number of new facts, listed items,
        quantities it repeats from the question), sources' facts."""
        claim_facts = self.facts(claims)
        question_facts = self.facts([question])[0] if question.strip() else None
        contexts = [claim if len(facts.words) >= TERSE_WORDS or not question else f"{question} {claim}"
                    for claim, facts in zip(claims, claim_facts)]
        if source_vectors is None:
            vectors = self.embedder.encode(contexts + [s.text for s in sources])
            claim_vectors, source_vectors = vectors[: len(claims)], vectors[len(claims):]
        else:
            claim_vectors = self.embedder.encode(contexts)
        infos, source_facts = [], self.facts([s.text for s in sources])
        # A person's office is read from all the evidence, not one sentence: the sentence that supports
        # "President Anna Berg" may name her without one ("Welcoming President Jon Dahl, Anna Berg said")
        # while another gives her hers ("Prime Minister ... Anna Berg"). An office no sentence gives,
        # where one gives another, is a fact no source states.
        offices = [office for found in source_facts for office in found.offices]
        for claim, facts in zip(claims, claim_facts):
            new = self.new_facts(facts, question_facts)
            new = replace(new, offices=[office for office in new.offices if office_contradicted(office, offices)])
            # A terse claim ("220,000") is judged with its question, as for the cosine.
            terse = len(facts.words) < TERSE_WORDS and question_facts is not None
            words = (facts.words | question_facts.words if terse else facts.words) - NOT_CLAIM_WORDS
            items = self.listed_items(claim, question_facts)
            restated = [q for q in facts.quantities if q not in new.quantities]
            infos.append((new, words, len(new.quantities) + len(new.dates) + len(new.codes) + len(new.names) + len(items)
                          + len(new.offices), items, restated))
        return claim_vectors @ source_vectors.T, infos, source_facts

    def _row(self, cosine: float, info: tuple[Facts, set[str], int, set[str], list[Quantity]], found: Facts, year: int | None) -> np.ndarray:
        new, words, n_facts, items, restated = info
        row = np.zeros(len(FEATURES))
        row[0] = cosine
        row[1] = len(words & found.words) / len(words) if words else 0.0
        row[2] = len(new.words & found.words) / len(new.words) if new.words else 1.0
        if not new.words and not n_facts:
            row[3] = -1.0  # nothing new: it restates the question
        elif n_facts:
            row[3] = (self._missing(new, found, year) + len(items - found.words)) / n_facts
        # A figure the claim repeats from its question may go unstated by the source, but not be
        # contradicted by it: "a seven-year deal worth $1 billion per year" is not the source's
        # "12-year, $3 billion deal", whatever else they share.
        contradicted = sum(_contradicted(q, found) for q in restated)
        if contradicted and row[3] >= 0:
            row[3] = max(row[3], contradicted / (n_facts + contradicted))
        if new.capitalised:
            row[4] = sum(not _token_in(w, found.tokens) for w in new.capitalised) / len(new.capitalised)
        return row

    def features(self, claims: list[str], sources: list[SourceSentence], source_vectors: np.ndarray | None = None,
                 question: str = "") -> np.ndarray:
        """Feature tensor of shape (claims, sources, len(FEATURES)); facts_missing is the share of the
        claim's new facts a source lacks, -1 for a claim with nothing new (it restates the question)."""
        out = np.zeros((len(claims), len(sources), len(FEATURES)), dtype=np.float64)
        if not claims or not sources:
            return out
        cosines, infos, source_facts = self._prepare(claims, sources, source_vectors, question)
        for i, info in enumerate(infos):
            for j, (source, found) in enumerate(zip(sources, source_facts)):
                out[i, j] = self._row(cosines[i, j], info, found, source.year)
        return out

    def support(self, claims: list[str], sources: list[SourceSentence], source_vectors: np.ndarray | None = None,
                question: str = "") -> list[tuple[np.ndarray, list[tuple[int, ...]]]]:
        """Per claim, the feature rows of every way to support it, with the sources of each: each source
        alone, and two sentences of one passage together (among the claim's JOINT_CANDIDATES best by
        the soft score), for a claim that joins facts a passage states in two places."""
        if not claims or not sources:
            return [(np.zeros((0, len(FEATURES))), []) for _ in claims]
        cosines, infos, source_facts = self._prepare(claims, sources, source_vectors, question)
        out = []
        for i, info in enumerate(infos):
            rows = [self._row(cosines[i, j], info, found, s.year) for j, (s, found) in enumerate(zip(sources, source_facts))]
            options: list[tuple[int, ...]] = [(j,) for j in range(len(sources))]
            singles = [j for j, s in enumerate(sources) if not s.pair]
            soft = {j: float(self.weights[0] + rows[j][:3] @ self.weights[1:4]) for j in singles}
            best = sorted(singles, key=lambda j: -soft[j])[:JOINT_CANDIDATES]
            for a_index, a in enumerate(best):
                for b in best[a_index + 1:]:
                    if sources[a].passage != sources[b].passage or rows[a][3] < 0:
                        continue  # another passage, or a claim with nothing new to support
                    first, second = sorted((a, b), key=lambda j: sources[j].start)
                    joined = _union(source_facts[first], source_facts[second])
                    # Both sentences must be about the claim: the joint cosine is their mean.
                    rows.append(self._row((cosines[i, a] + cosines[i, b]) / 2, info, joined, sources[a].year))
                    options.append((first, second))
            out.append((np.array(rows), options))
        return out

    def probability(self, features: np.ndarray) -> np.ndarray:
        """Support score for a feature array (..., F): logistic in cosine and the overlaps, times agreement.

        A missing fact caps the score at FACT_PENALTY, below any threshold the calibration may pick,
        so the claim is never supported, while scores still rank (for ROC-AUC and reports); a claim
        that only restates its question scores 0."""
        logits = self.weights[0] + features[..., :3] @ self.weights[1:4]
        facts = np.where(features[..., 3] == 0, 1.0, np.where(features[..., 3] < 0, 0.0, FACT_PENALTY))
        agreement = facts * (1.0 - NAME_PENALTY * features[..., 4])
        return agreement / (1.0 + np.exp(-logits))

    def check(self, claims: list[str], sources: list[SourceSentence], source_vectors: np.ndarray | None = None,
              question: str = "", asks: Question | None = None) -> list[Verdict]:
        """The best support of each claim (one source, or two sentences of a passage) and whether it
        passes the threshold.

        With `asks` (the analysed question), a verdict also says whether the claim answers it: a
        question that wants a kind of fact (a person, a number, a date) is answered only by a claim
        that states one from its source, not one that restates the question around it.
        """
        verdicts = []
        for claim, (rows, options) in zip(claims, self.support(claims, sources, source_vectors, question)):
            if not len(rows):
                verdicts.append(Verdict(claim, 0.0, False, None))
                continue
            scores = self.probability(rows)
            ranked = np.argsort(-scores, kind="stable")
            best, answers = int(ranked[0]), True
            if asks is not None and (asks.kinds or asks.noun):
                # Of the sources that support the claim, cite one that states its answer: the best
                # scoring sentence may share the claim's words without the fact as the question wants
                # it ("Budapest will host the forum, officials in Vienna said": the small NER model
                # reads a sentence's first word "Budapest" as an organisation, so its city is Vienna).
                supporting = [int(j) for j in ranked[:ANSWER_SOURCES] if scores[j] >= self.threshold] or [best]
                answering = next((j for j in supporting
                                  if any(self.answers(claim, sources[s].text, asks) for s in options[j])), None)
                best, answers = (supporting[0], False) if answering is None else (answering, True)
            score = float(scores[best])
            chosen = [sources[j] for j in options[best]]
            verdict = Verdict(claim, round(score, 4), score >= self.threshold, chosen[0],
                              {n: round(float(v), 4) for n, v in zip(FEATURES, rows[best])},
                              also=chosen[1] if len(chosen) > 1 else None, answers=answers)
            verdicts.append(verdict)
        return verdicts

    def tighten(self, verdict: Verdict, hits: list[Hit], question: str = "") -> SourceSentence | None:
        """The shortest span of a supported claim's source that supports it alone: one sentence of an
        adjacent pair, or a run of clauses of a sentence (None when only the whole source does)."""
        source = verdict.source
        if source is None or not verdict.supported:
            return None
        hit = hits[source.passage]
        offset = source.start - hit.start
        spans = split_sentences(source.text) if source.pair else [(0, len(source.text))]
        options: list[SourceSentence] = []
        for s, e in spans:
            breaks = [s] + [s + m.end() for m in CLAUSE_BREAK.finditer(source.text[s:e])] + [e]
            for first in range(len(breaks) - 1):
                for last in range(first + 1, len(breaks)):
                    start, end = strip_span(source.text, breaks[first], breaks[last])
                    text = source.text[start:end]
                    # A clause run stands alone: balanced, and not begun at an aside's opening bracket.
                    if (end - start < len(source.text) and len(text.split()) >= 3 and balanced(text)
                            and not (first > 0 and text[:1] in "([")):
                        options.append(SourceSentence(source.passage, hit.start + offset + start, hit.start + offset + end,
                                                      text, year=source.year))
        options = sorted({(o.start, o.end): o for o in options}.values(), key=lambda o: o.end - o.start)[:MAX_TIGHTER]
        if not options:
            return None
        scores = self.probability(self.features([verdict.claim], options, question=question)[0])
        for option, score in zip(options, scores):
            if score >= self.threshold:
                return option  # the shortest that supports the claim on its own
        return None

    def listed_items(self, claim: str, question: Facts | None) -> set[str]:
        """Stemmed nouns of a list in the claim (LIST_ITEMS or more joined by commas or "and": "energy,
        transportation, and logistics"), those the question names aside. Each is a fact of its own that
        the source must state: a list is where a small model adds an item ("logistics") to the ones a
        sentence gives ("energy, engineering, transport"), and the other words of the claim outvote it
        in the soft score. Names in a list are checked as names already."""
        nouns: list[str] = []
        for token in self.tagger.parse(claim):
            if token.pos_ not in ("NOUN", "PROPN") or token.dep_ == "conj":
                continue
            group = [token] + [c for c in token.conjuncts if c.pos_ in ("NOUN", "PROPN")]
            if len(group) >= LIST_ITEMS:
                nouns += [member.text for member in group if member.pos_ == "NOUN"]
        return content_stems(nouns) - (question.words if question is not None else set())

    def unsupported_nouns(self, claim: str, known: set[str]) -> set[str]:
        """Stemmed nouns of the claim that are not among the `known` words (`content_stems` of its
        question and sources): "astronomer" in "first used in writing in 1706 by the English astronomer"
        against passages that say "in the English language was in 1706". Verbs and adjectives may
        paraphrase ("located" for "lies"); a noun names a thing."""
        nouns = [t.text for t in self.tagger.parse(claim) if t.pos_ in ("NOUN", "PROPN")]
        return content_stems(nouns) - known - NOT_CLAIM_WORDS

    def _missing(self, new: Facts, source: Facts, year: int | None) -> int:
        """How many of a claim's new facts the source does not state. A quantity must have the same
        value and count the same thing ("2 regions" is not stated by "two river ports")."""
        missing = 0
        for quantity in new.quantities:
            missing += not any(quantities_agree(quantity, q) and self._same_thing(quantity, q) for q in source.quantities)
        for date in new.dates:
            missing += not any(dates_agree(date, d, year) for d in source.dates)
        missing += len(new.codes - source.codes)
        for name in new.names:
            missing += not name_present(name, source.tokens)
        return missing + len(new.offices)  # offices the evidence gives the person otherwise (see _prepare)

    def _same_thing(self, claim: Quantity, source: Quantity) -> bool:
        """Whether two quantities count the same thing: one says nothing of what it counts, they share
        a word ("trucks"), or their phrases are close in meaning ("70 regions of Russia" and "70
        subjects of the Russian Federation")."""
        if not claim.counted or not source.counted or claim.unit or source.unit:
            return True  # nothing to compare, or a unit ("%", "$") that says it
        if any(_token_in(word, set(source.counted[:2])) for word in claim.counted[:2]):
            return True
        key = (claim.counted, source.counted)
        if key not in self._counted_cache:
            first, second = self.embedder.encode([" ".join(claim.counted[:2]), " ".join(source.counted[:2])])
            self._counted_cache[key] = float(first @ second) >= SAME_THING_SIMILARITY
        return self._counted_cache[key]

    def answers(self, claim: str, source: str, asks: Question) -> bool:
        """Whether `claim` states one of the facts of `source` that answer `asks` (see `answer_spans`);
        for a "which NOUN" question, also when the source gives the noun no name to state. A date
        answers as the source gives it, less precisely, or with the year its article leaves out ("in
        2023" or "May 5, 2023" from "May 5", not "September 22" from "September")."""
        if asks.negated and not NEGATION.search(source):
            return False  # "who did not ...?" is not answered by who did
        claim_facts, question = self.facts([claim, asks.text])
        # Sentence by sentence: which of a sentence's figures the question is about is read within it.
        spans = [span for start, end in split_sentences(source) for span in self.answer_spans(source[start:end], asks)]
        if not spans and not asks.kinds:
            return True
        for span in spans:
            tokens = tuple(t for t in surface_tokens(getattr(span, "text", "")) if t not in NAME_FILLER)
            if isinstance(span, Quantity):
                if any(quantities_agree(q, span) or quantities_agree(span, q) for q in claim_facts.quantities):
                    return True
            elif isinstance(span, DateMention):
                if any(dates_agree(d, span) or (span.year is None and (d.month, d.day) == (span.month, span.day))
                       for d in claim_facts.dates):
                    return True
            elif isinstance(span, Moment):
                if tokens and name_present(tokens, claim_facts.tokens):
                    return True
            elif tokens and (name_present(tokens, claim_facts.tokens)
                             or (_token_in(tokens[-1], claim_facts.tokens) and not _token_in(tokens[-1], question.tokens))):
                # The name, or its head ("Lopez" for "Maria Elena Lopez") unless the question has the
                # head too: "the forum" restates "the Danube Trade Forum" for "who heads the forum?".
                return True
        return False

    def answer_spans(self, text: str, asks: Question) -> list[Entity | Quantity | DateMention | Moment]:
        """The facts in `text` of the most wanted kind the question asks for that it has, which the
        question does not name: quantities for "how many", dates (else weekdays, clock times, "next
        week") for "when", entities otherwise ("who"
        takes the people of a sentence that names any, else its organisations, groups, places).

        A "how many NOUN" counts only quantities of that noun ("65,000 trucks", or a phrase close in
        meaning: "70 subjects of the Russian Federation" for "Russian regions"); of several amounts or dates,
        only those of the clause that shares most words with the question answer it ("76% are still with
        the president, 16% were undecided" for "what percentage are still with the president"); a "which
        NOUN" of no listed kind is answered by the name the text gives the noun ("a new format ... “3+3”").
        A negated question ("which of these was not ...") finds its answer only in a sentence that negates."""
        if asks.negated and not NEGATION.search(text):
            return []
        facts, question = self.facts([text, asks.text])
        spans: list = []
        for kind in asks.kinds:
            if spans and not (kind in NUMBER_KINDS and all(isinstance(s, Quantity) for s in spans)):
                break  # a name of the most wanted kind found ("who": people before places); amounts all count
            if kind in NUMBER_KINDS:
                found = [q for q in facts.quantities if not q.ordinal
                         and (kind != "percent" or q.unit == "%") and (kind != "money" or q.unit not in ("", "%"))
                         and (kind != "measure" or (q.counted[:1] and q.counted[0] in MEASURE_WORDS))
                         and not any(quantities_agree(q, x) for x in question.quantities)]
                found = self._counting(text, found, asks) if asks.focus and kind == "number" else found
                spans += _about_question(text, found, question.words)
            elif kind == "date":
                # A calendar date first; without one, a weekday, a clock time or "next week".
                found = [d for d in facts.dates if not any(dates_agree(d, x) for x in question.dates)]
                if not found and "number" not in asks.kinds:  # "how long" wants "20 years", not "last year"
                    found = [m for m in moments(text) if not name_present(tuple(surface_tokens(m.text)), question.tokens)]
                spans += _about_question(text, found, question.words)
            else:
                spans += [e for e in facts.entities if e.kind == kind and not named_by(e.text, question)]
        if not asks.kinds and asks.noun:
            spans += self._named(text, facts, question, asks.noun)
        return list(dict.fromkeys(spans))

    def _counting(self, text: str, found: list[Quantity], asks: Question) -> list[Quantity]:
        """The quantities that count the question's noun: followed by it within a few words, or
        with the words after them close in meaning to the question's noun phrase."""
        noun = asks.noun.lower()
        counted, phrases = [], []
        for quantity in found:
            following = surface_tokens(text[quantity.end:quantity.end + 60])[:FOCUS_WINDOW]
            if any(_token_in(noun, {t}) or _token_in(t, {noun}) for t in following):
                counted.append(quantity)
            else:
                phrases.append((quantity, text[quantity.start:quantity.end] + " " + " ".join(following)))
        if phrases:
            vectors = self.embedder.encode([asks.focus] + [p for _, p in phrases])
            counted += [q for (q, _), similarity in zip(phrases, vectors[1:] @ vectors[0]) if similarity >= FOCUS_SIMILARITY]
        return sorted(counted, key=lambda q: q.start)

    @staticmethod
    def _named(text: str, facts: "Facts", question: "Facts", noun: str) -> list[Entity]:
        """Names a text gives the noun a question asks about: a quoted title, a code or a named entity
        just before or after it ("the format “3+3”", "the G7 summit")."""
        spans = []
        for match in re.finditer(rf"\b{re.escape(noun[:-1] if noun.endswith('s') and len(noun) > 3 else noun)}\w*", text, re.IGNORECASE):
            window = (max(0, match.start() - 30), match.end() + 60)
            for quoted in re.finditer(r"[“\"«]([^”\"»]{1,60})[”\"»]", text):
                if window[0] <= quoted.start() <= window[1]:
                    spans.append(Entity(quoted.group(1), "QUOTED", quoted.start(1), quoted.end(1)))
            for code in CODE_PATTERN.finditer(text):
                if window[0] <= code.start() <= window[1]:
                    spans.append(Entity(code.group(), "CODE", *code.span()))
            spans += [e for e in facts.entities if e.kind in NAME_KINDS and window[0] <= e.start <= window[1]]
        return [s for s in spans if not name_present(tuple(surface_tokens(s.text)), question.tokens)]


CLOSING = {"(": ")", "[": "]", "“": "”"}


def _contradicted(claim: Quantity, source: Facts) -> bool:
    """Whether a source states another value, and none agreeing, of the same thing as a claim's
    quantity: a value of the same unit in a sentence that names what the claim's figure counts
    ("Mega Millions jackpots of $1.537 billion" against "the $1.3 billion Mega Millions jackpot",
    "a 12-year deal" against "a seven-year deal"). A figure of a claim that says nothing of what it
    counts ("0.75 percentage points") contradicts nothing: the source's "1.75%" may be another measure."""
    if not claim.counted or any(quantities_agree(claim, q) or quantities_agree(q, claim) for q in source.quantities):
        return False
    names_it = any(_token_in(word, source.tokens) for word in claim.counted[:2])
    return names_it and any(not q.ordinal and q.unit == claim.unit for q in source.quantities)


def balanced(text: str) -> bool:
    """Whether every bracket and curly quote in `text` closes what it opened there (a quote cut inside
    "(later King James II" shows half a parenthesis), and straight double quotes come in pairs."""
    open_: list[str] = []
    for char in text:
        if char in CLOSING:
            open_.append(CLOSING[char])
        elif char in CLOSING.values() and (not open_ or open_.pop() != char):
            return False
    return not open_ and text.count('"') % 2 == 0


def strip_span(text: str, start: int, end: int) -> tuple[int, int]:
    """A span without surrounding spaces and clause punctuation."""
    while start < end and (text[start].isspace() or text[start] in ",;:—–-"):
        start += 1
    while end > start and (text[end - 1].isspace() or text[end - 1] in ",;:—–-("):
        end -= 1
    return start, end


def _union(first: Facts, second: Facts) -> Facts:
    """What two sentences state together."""
    return Facts(first.words | second.words, first.tokens | second.tokens, first.quantities + second.quantities,
                 first.dates + second.dates, first.codes | second.codes, first.names + second.names,
                 first.capitalised | second.capitalised, first.entities + second.entities,
                 first.offices + second.offices)


@lru_cache(maxsize=1)
def _stop_words() -> frozenset[str]:
    """spaCy's English stop words, stemmed as our tokenizer stems (bm25s's own list lacks "them",
    "have", "would"...): words that state nothing a source must confirm."""
    from spacy.lang.en.stop_words import STOP_WORDS

    from rag.store.bm25 import _stemmer

    return frozenset(_stemmer().stemWords(sorted(STOP_WORDS)))


@lru_cache(maxsize=20000)
def _facts(text: str, entities: tuple[Entity, ...]) -> Facts:
    found_dates = dates(text)
    # A year inside a date is the date's, not a quantity ("November 2020", "in 2020").
    found_quantities = [q for q in quantities(text) if not any(d.start <= q.start < d.end for d in found_dates)]
    names = []
    for entity in entities:
        if entity.kind in NAME_KINDS:
            tokens = tuple(t for t in surface_tokens(entity.text) if t not in NAME_FILLER)
            if tokens and not all(t.isdigit() for t in tokens):
                names.append(tokens)
    # Words of quantities and dates ("over 40", "more than", "March 2021") are compared as values, not words.
    plain = text
    for span in sorted([(q.start, q.end) for q in found_quantities] + [(d.start, d.end) for d in found_dates], reverse=True):
        plain = plain[:span[0]] + " " + plain[span[1]:]
    return Facts(
        words={w for w in tokenize([plain])[0] if not w.isdigit()} - QUANTITY_ONLY_WORDS - _stop_words(),
        tokens=set(surface_tokens(text)),
        quantities=found_quantities,
        dates=found_dates,
        codes=codes(text),
        names=list(dict.fromkeys(names)),
        capitalised=names_in(text),
        entities=entities,
        offices=offices_in(text, entities),
    )
