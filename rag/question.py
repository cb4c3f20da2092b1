"""What a question asks for: its wh-word and the kinds of thing that can answer it.

"who" -> a person, an organisation or a group; "how many" -> a number; "when" -> a date; "where" -> a
place; "which/what NOUN" -> the kind of NOUN ("which country" -> a place, "which company" -> an
organisation). A noun the table below does not list is mapped by the embedding model to the closest
kind description, so "which broadcaster" or "which nation" need no entry. A question that asks for
an explanation or a description ("why", "how", "what did X say") expects no kind.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

import numpy as np

# Answer kinds (see rag.entities.KINDS) each wh-form asks for, most specific first.
WH_KINDS = {
    "who": ("person", "org", "group", "place"),
    "whom": ("person", "org", "group"),
    "whose": ("person", "org", "group"),
    "when": ("date",),
    "where": ("place",),
    "how many": ("number",),
    "how much": ("money", "percent", "measure"),
    "how long": ("date", "number"),
    "how old": ("number",),
    "how far": ("number",),
    "how big": ("number",),
    "how large": ("number",),
    "how high": ("number",),
    "what percentage": ("percent", "number"),
    "what percent": ("percent", "number"),
    "what proportion": ("percent", "number"),
    "what share": ("percent", "number"),
}
NOUN_KINDS = {
    "person": ("person",), "man": ("person",), "woman": ("person",), "people": ("person", "group"),
    "actor": ("person",), "actress": ("person",), "singer": ("person",), "star": ("person",),
    "player": ("person",), "president": ("person",), "leader": ("person",), "official": ("person",),
    "politician": ("person",), "minister": ("person",), "celebrity": ("person",), "musician": ("person",),
    "author": ("person",), "writer": ("person",), "athlete": ("person",), "ceo": ("person",),
    "founder": ("person",), "senator": ("person",), "king": ("person",), "queen": ("person",),
    "prince": ("person",), "princess": ("person",), "candidate": ("person",), "judge": ("person",),
    "mp": ("person",), "lawmaker": ("person",), "member": ("person", "org"), "rapper": ("person",),
    "footballer": ("person",), "guitarist": ("person",), "pope": ("person",), "monarch": ("person",),
    "businessman": ("person",), "billionaire": ("person",), "mayor": ("person",), "governor": ("person",),
    "comedian": ("person",), "scientist": ("person",), "chef": ("person",), "coach": ("person",),
    "country": ("place",), "nation": ("place",), "state": ("place",), "city": ("place",), "island": ("place",),
    "region": ("place",), "province": ("place",), "capital": ("place",), "town": ("place",),
    "continent": ("place",), "county": ("place",), "place": ("place",), "location": ("place",),
    "park": ("place",), "airport": ("place",), "stadium": ("place",), "village": ("place",), "river": ("place",),
    "mountain": ("place",), "neighbourhood": ("place",), "neighborhood": ("place",), "district": ("place",),
    "company": ("org",), "firm": ("org",), "organization": ("org",), "organisation": ("org",),
    "team": ("org",), "club": ("org",), "party": ("org",), "agency": ("org",), "brand": ("org", "product"),
    "bank": ("org",), "airline": ("org",), "network": ("org",), "retailer": ("org",), "supermarket": ("org",),
    "university": ("org",), "newspaper": ("org",), "group": ("org", "group"), "body": ("org",),
    "automaker": ("org",), "carmaker": ("org",), "broadcaster": ("org",), "startup": ("org",),
    "regulator": ("org",), "charity": ("org",), "union": ("org",), "magazine": ("org", "work"),
    "band": ("org", "person"), "publisher": ("org",), "manufacturer": ("org",), "giant": ("org",),
    "year": ("date",), "month": ("date",), "day": ("date",), "date": ("date",),
    "show": ("work",), "film": ("work",), "movie": ("work",), "song": ("work",), "album": ("work",),
    "book": ("work",), "series": ("work",), "novel": ("work",), "game": ("work", "event"),
    "sport": (), "event": ("event",), "festival": ("event",), "tournament": ("event",),
    "vaccine": ("product", "org"), "product": ("product",), "drug": ("product",), "app": ("product", "org"),
    "percentage": ("percent",), "amount": ("money", "number"), "sum": ("money", "number"),
    "temperature": ("number",), "magnitude": ("number",), "rate": ("percent", "number"), "age": ("number",),
    "population": ("number",), "height": ("number",), "distance": ("number",), "speed": ("number",),
    "score": ("number",), "following": (),
    "price": ("money",), "cost": ("money",), "number": ("number",), "figure": ("number",),
    "money": ("money",), "cash": ("money",), "funding": ("money",), "revenue": ("money",), "profit": ("money",),
    "budget": ("money",), "salary": ("money",), "debt": ("money",),
    "currency": (),  # "which currency": its name ("the euro"), not a sum, though the embedding finds "money"
    "language": ("language", "group"), "nationality": ("group",),
}
# A noun the table lacks takes the kinds of its nearest listed noun by embedding, if that is this close
# (all-MiniLM-L6-v2: mayor -> politician 0.62, carmaker -> automaker 0.85, county -> state 0.58, while
# unrelated nouns stay under ~0.5: format 0.35, species 0.36, dish 0.40).
NOUN_SIMILARITY = 0.55
FOCUS_SKIP = {"how", "many", "much", "which", "what"}
WH = re.compile(r"\b(how (?:many|much|long|old|far|big|large|high)|what (?:percentage|percent|proportion|share)|"
                r"who|whom|whose|when|where|which|what|why|how)\b", re.IGNORECASE)
@dataclass
class Question:
    """A question with what kind of answer it wants."""

    text: str
    wh: str = ""  # "who", "how many", "which", ... or "" when none is found
    noun: str = ""  # the head noun of "which/what NOUN" or "how many NOUN"
    kinds: tuple[str, ...] = field(default_factory=tuple)  # answer kinds, most specific first; () = any
    focus: str = ""  # the noun with its modifiers: "coastal regions", "doses of the vaccine"
    negated: bool = False  # "which/who ... not ...": asks for what a negation holds of (see `is_negated`)


class QuestionAnalyzer:
    """Reads the wh-form and head noun; maps unknown nouns with the embedder (optional)."""

    def __init__(self, tagger, embedder=None):
        self.tagger = tagger
        self.embedder = embedder

    def run(self, text: str) -> Question:
        # News quizzes put context first ("Police arrested 31 men ... . Which group ...?"): the
        # question proper is the last sentence.
        last = re.split(r"(?<=[.!?])\s+(?=[A-Z“\"])", text.strip())[-1]
        in_last = WH.search(last)
        match = in_last or WH.search(text)
        if not match:
            return Question(text)
        wh = " ".join(match.group(1).lower().split())
        if wh not in WH_KINDS and wh not in ("which", "what"):
            return Question(text, wh)
        doc = self.tagger.parse(match.string)  # one parse for the head noun and the negation
        head = self._head_noun(doc, wh)
        if head is not None and head.lower_ in ("one", "ones"):  # "which one of these people": people
            head = next((pobj for prep in head.children if prep.lower_ == "of" for pobj in prep.children
                         if pobj.dep_ == "pobj" and pobj.pos_ in ("NOUN", "PROPN")), head)
        noun = head.lower_ if head is not None else ""
        focus = " ".join(t.text for t in head.subtree if t.lower_ not in FOCUS_SKIP and t.tag_ not in ("WDT", "WP", "WRB", "DT")) \
            if head is not None else ""
        kinds = WH_KINDS[wh] if wh in WH_KINDS else (self._noun_kinds(noun) if noun else ())
        listed = listed_kinds(noun) if wh == "how much" and noun else None
        if listed and set(listed) & set(kinds):
            kinds = tuple(k for k in kinds if k in listed)  # "how much money": a sum, not "76%"
        negated = wh in NEGATABLE and in_last is not None and is_negated(doc, wh)  # the question proper's clause
        return Question(text, wh, noun, kinds, focus, negated)

    @staticmethod
    def _head_noun(doc, wh: str):
        """The common noun a "which/what" or "how many/much" asks about in a parsed question (a spaCy
        token), or None."""
        words = ("many", "much") if wh in ("how many", "how much") else ("which", "what")
        for token in doc:
            if token.lower_ not in words:
                continue
            if token.dep_ in ("det", "amod", "advmod") and token.head.pos_ in ("NOUN", "PROPN") and token.head.i > token.i:
                return token.head  # "which automaker", "in what animal", "how many regions"
            if words[0] == "many":
                return None
            for chunk in doc.noun_chunks:  # "which Ivy League school", parsed as an object of its own
                if chunk.start in (token.i, token.i + 1) and chunk.root.pos_ == "NOUN" and chunk.root.i != token.i:
                    return chunk.root
            if token.dep_ in ("attr", "nsubj") and token.head.lemma_ == "be":  # "what was the magnitude"
                for chunk in doc.noun_chunks:
                    if chunk.start > token.head.i and chunk.root.pos_ == "NOUN":
                        return chunk.root
            return None
        return None

    def _noun_kinds(self, noun: str) -> tuple[str, ...]:
        listed = listed_kinds(noun)
        if listed is not None:
            return listed
        if self.embedder is None:
            return ()
        key = (self.embedder.name, noun)
        if key not in _NOUN_CACHE:
            listed = [n for n, kinds in NOUN_KINDS.items() if kinds]
            if self.embedder.name not in _LISTED_VECTORS:
                _LISTED_VECTORS[self.embedder.name] = self.embedder.encode(listed)
            similarity = _LISTED_VECTORS[self.embedder.name] @ self.embedder.encode([noun])[0]
            best = int(np.argmax(similarity))
            _NOUN_CACHE[key] = NOUN_KINDS[listed[best]] if similarity[best] >= NOUN_SIMILARITY else ()
        return _NOUN_CACHE[key]


# The wh-forms that pick a thing out ("which of these was not invited?"): a sentence naming the ones
# that were is no answer to them. "Why ... not" asks for a reason, "how many ... not" for a count.
NEGATABLE = {"who", "whom", "which", "what"}


def is_negated(doc, wh: str) -> bool:
    """Whether the clause of the question's wh-word is negated: "Which of these is not one of the
    cereals?", "Who did not withdraw?"; not "He regrets not using his birth name. What is it?"."""
    word = wh.split()[0]
    for token in doc:
        if token.lower_ != word:
            continue
        verb = token
        while verb.pos_ not in ("VERB", "AUX") and verb.head.i != verb.i:  # up to the root (tokens are views: no `is`)
            verb = verb.head
        if verb.pos_ == "AUX" and verb.head.pos_ == "VERB" and verb.dep_ in ("aux", "auxpass"):
            verb = verb.head  # "did [not] withdraw": the negation hangs on the main verb
        return any(child.dep_ == "neg" for child in verb.children)
    return False


def listed_kinds(noun: str) -> tuple[str, ...] | None:
    """The kinds NOUN_KINDS lists for a noun or its singular ("profits" -> "profit"); None if unlisted."""
    for singular in (noun, noun[:-3] + "y" if noun.endswith("ies") else "", noun[:-1] if noun.endswith("s") else ""):
        if singular in NOUN_KINDS:
            return NOUN_KINDS[singular]
    return None


# Embeddings of the listed nouns and the kinds found for unlisted ones, per embedding model: shared by
# every analyzer of the process (a server makes one per request).
_LISTED_VECTORS: dict[str, np.ndarray] = {}
_NOUN_CACHE: dict[tuple[str, str], tuple[str, ...]] = {}
