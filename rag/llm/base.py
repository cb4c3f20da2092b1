"""The LLM contract: a chat model that streams text, plus the error every backend raises."""

from __future__ import annotations

from typing import Iterator, Protocol

Message = dict[str, str]  # {"role": "system" | "user" | "assistant", "content": "..."}


class LLMError(RuntimeError):
    """The model could not be loaded or did not answer; the message says why, for the user."""


class LLM(Protocol):
    """A chat model behind any backend."""

    backend: str  # "llamacpp", "openai", "transformers", "extractive"
    model: str  # what the backend runs, for the answer's `llm` field
    context_tokens: int  # prompt + completion must fit in this many tokens

    def stream(self, messages: list[Message], max_tokens: int) -> Iterator[str]:
        """Yield the reply in pieces as they are generated."""
