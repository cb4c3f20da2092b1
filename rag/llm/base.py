"""The LLM contract: a chat model that streams text, plus the error every backend raises."""

from __future__ import annotations

from typing import Iterator, Protocol

from rag.errors import ErrorKind, RagError

Message = dict[str, str]  # {"role": "system" | "user" | "assistant", "content": "..."}


class LLMError(RagError):
    """The model could not be loaded or did not answer; the message says why, for the user."""

    kind, code = ErrorKind.UNAVAILABLE, "llm_unavailable"


class LLM(Protocol):
    """A chat model behind any backend.

    A backend may also offer `likelihoods(contexts, text) -> list[float]`, the mean log-probability per
    token of `text` after each context (llamacpp does); the answer path then re-reads a rejected
    draft's quote with it (rag.answer._reread)."""

    backend: str  # "llamacpp", "openai", "transformers", "extractive"
    model: str  # what the backend runs, for the answer's `llm` field
    context_tokens: int  # prompt + completion must fit in this many tokens

    def stream(self, messages: list[Message], max_tokens: int) -> Iterator[str]:
        """Yield the reply in pieces as they are generated."""
