"""The generate stage: turn a question and the sentences chosen for it into answer text, streamed.

`ChatGenerator` prompts an LLM backend with the composer's best sentences; `ExtractiveGenerator`
needs no LLM: its answer is the best sentences themselves, quoted (`quotes = True` tells the answer
path to quote them, trimmed to the clause that answers). Verification comes after, in `rag.answer`.
"""

from __future__ import annotations

from typing import Iterator, Protocol

from rag.config import Settings
from rag.llm import LLM, LLM_BACKENDS, load_llm
from rag.prompt import PromptBuilder, PromptSentence
from rag.registry import Registry, Spec


class Generator(Protocol):
    """Produces answer text for a question from the sentences chosen for it."""

    backend: str
    model: str
    quotes: bool  # the answer is the chosen sentences, quoted; no text is generated

    def stream(self, question: str, sentences: list[PromptSentence]) -> Iterator[str]:
        """Yield the answer in pieces."""


# Unsupervised passage re-ranking (Sachan et al. 2022, "UPR"): a passage that answers a question makes
# the question likely. The wording is theirs.
QUESTION_AFTER = "Passage: {sentence}\nPlease write a question based on this passage.\nQuestion:"
MAX_SCORED_CHARS = 500  # of a sentence (~120 tokens): scoring time grows with it


class ChatGenerator:
    """An LLM answering from a budgeted prompt of quoted sentences."""

    quotes = False

    def __init__(self, llm: LLM, prompt_builder: PromptBuilder, max_tokens: int):
        self.llm = llm
        self.prompt_builder = prompt_builder
        self.max_tokens = max_tokens
        self.backend, self.model = llm.backend, llm.model

    def stream(self, question: str, sentences: list[PromptSentence]) -> Iterator[str]:
        prompt = self.prompt_builder.run(question, sentences)
        yield from self.llm.stream(prompt.messages, self.max_tokens)

    def question_likelihoods(self, sentences: list[str], question: str) -> list[float] | None:
        """How well each sentence predicts `question` to the model (mean log-probability per token of
        the question written after it), read in one pass; None for a backend that cannot score text.
        The sentences are only scored, never followed: nothing they say reaches a prompt the model answers."""
        score = getattr(self.llm, "likelihoods", None)
        if score is None:
            return None
        question = question.strip()
        question = question[:1].upper() + question[1:] + ("" if question.endswith("?") else "?")  # as a question is written
        return score([QUESTION_AFTER.format(sentence=s[:MAX_SCORED_CHARS]) for s in sentences], " " + question)


class ExtractiveGenerator:
    """No LLM: the answer is the best sentence (and a second one when it adds a fact the question
    asks for), quoted as it stands; always grounded and fast."""

    backend = "extractive"
    model = "sentence-selection"
    quotes = True

    def __init__(self, sentences: int = 2):
        self.sentences = sentences

    def stream(self, question: str, sentences: list[PromptSentence]) -> Iterator[str]:
        yield " ".join(s.text for s in sentences[: self.sentences])


def extractive_generator(settings: Settings) -> ExtractiveGenerator:
    return ExtractiveGenerator(settings.answer.extractive_sentences)


def chat_generator(settings: Settings, backend: str) -> ChatGenerator:
    """An LLM backend (rag.llm.LLM_BACKENDS) answering from the prompt builder's messages."""
    llm = load_llm(settings.llm, backend)
    return ChatGenerator(llm, PromptBuilder(settings.llm), settings.llm.max_answer_tokens)


# What `llm.backend`, `--llm` and the API's `llm` field choose from: the extractive generator, which
# needs no model and is always available, and every chat backend.
GENERATORS = Registry("generator", "llm.backend")
GENERATORS.register(Spec("extractive", "rag.generate:extractive_generator",
                         "no LLM: the best source sentences, quoted (always grounded, fastest)"))
for _spec in LLM_BACKENDS:
    GENERATORS.register(_spec)


def load_generator(settings: Settings, backend: str | None = None) -> Generator:
    """The generator for a backend name (default: settings.llm.backend)."""
    backend = backend or settings.llm.backend
    if backend in LLM_BACKENDS:
        return chat_generator(settings, backend)
    return GENERATORS.get(backend).load()(settings)


def available_generators(settings: Settings) -> list[str]:
    """Generators this configuration can run: the configured one first, then every other one whose
    model is present or whose endpoint is set up."""
    return list(dict.fromkeys([settings.llm.backend, *GENERATORS.available(settings)]))
