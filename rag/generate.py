"""The generate stage: turn a question and its passages into answer text, streamed.

`ChatGenerator` prompts an LLM backend; `ExtractiveGenerator` needs no LLM and answers with the
passage sentences closest to the question. Both yield text pieces; verification comes after, in
`rag.answer`, the same for both.
"""

from __future__ import annotations

from typing import Iterator, Protocol

import numpy as np

from rag.config import Settings
from rag.grounding import Evidence
from rag.llm import LLM, load_llm
from rag.prompt import Prompt, PromptBuilder
from rag.store.bm25 import tokenize
from rag.types import Hit


class Generator(Protocol):
    """Produces answer text for a question from retrieved passages."""

    backend: str
    model: str

    def stream(self, question: str, hits: list[Hit], evidence: Evidence) -> Iterator[str]:
        """Yield the answer in pieces."""


class ChatGenerator:
    """An LLM answering from a budgeted prompt of numbered passages."""

    def __init__(self, llm: LLM, prompt_builder: PromptBuilder, max_tokens: int):
        self.llm = llm
        self.prompt_builder = prompt_builder
        self.max_tokens = max_tokens
        self.backend, self.model = llm.backend, llm.model
        self.last_prompt: Prompt | None = None

    def stream(self, question: str, hits: list[Hit], evidence: Evidence) -> Iterator[str]:
        self.last_prompt = self.prompt_builder.run(question, hits)
        yield from self.llm.stream(self.last_prompt.messages, self.max_tokens)


class ExtractiveGenerator:
    """The answer is the passage sentences most relevant to the question: always grounded, no LLM."""

    backend = "extractive"
    model = "sentence-selection"

    def __init__(self, sentences: int = 2, min_relevance: float = 0.0):
        self.sentences = sentences
        self.min_relevance = min_relevance

    def stream(self, question: str, hits: list[Hit], evidence: Evidence) -> Iterator[str]:
        singles = [i for i, s in enumerate(evidence.sources) if not s.pair and " " in s.text]
        if not singles:
            return
        question_words, *sentence_words = map(set, tokenize([question] + [evidence.sources[i].text for i in singles]))
        scores = []
        for i, words in zip(singles, sentence_words):
            overlap = len(question_words & words) / len(question_words) if question_words else 0.0
            scores.append(float(evidence.relevance[i]) + 0.5 * overlap)
        chosen = [singles[i] for i in np.argsort(scores)[::-1][: self.sentences]
                  if evidence.relevance[singles[i]] >= self.min_relevance]
        yield " ".join(evidence.sources[i].text for i in chosen)


def load_generator(settings: Settings, backend: str | None = None) -> Generator:
    """The generator for a backend name (default: settings.llm.backend)."""
    backend = backend or settings.llm.backend
    if backend == "extractive":
        return ExtractiveGenerator(settings.answer.extractive_sentences, settings.answer.min_relevance)
    llm = load_llm(settings.llm, backend)
    return ChatGenerator(llm, PromptBuilder(settings.llm), settings.llm.max_answer_tokens)
