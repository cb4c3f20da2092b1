"""OpenAI-compatible backend: any Chat Completions endpoint (OpenAI, vLLM, Ollama, llama.cpp server)
through the official `openai` client, with timeouts, retries with backoff, and streaming."""

from __future__ import annotations

import json
import os
from typing import Iterator

from rag.config import LLMSettings
from rag.llm.base import LLMError, Message


class OpenAILLM:
    """A remote chat model."""

    backend = "openai"

    def __init__(self, settings: LLMSettings):
        try:
            import openai
        except ImportError as exc:
            raise LLMError("the openai backend needs the openai package: pip install openai") from exc
        self.settings = settings
        self.model = settings.openai.model
        self.context_tokens = settings.context_tokens
        # Local servers ignore the key, but the client insists on one.
        api_key = os.environ.get(settings.openai.api_key_env) or "not-needed"
        self.client = openai.OpenAI(
            base_url=settings.openai.base_url,
            api_key=api_key,
            timeout=settings.openai.timeout,
            max_retries=settings.openai.max_retries,  # exponential backoff on connection errors, 429 and 5xx
        )
        self._errors = (openai.APIError, openai.APIConnectionError, openai.APITimeoutError)

    def stream(self, messages: list[Message], max_tokens: int) -> Iterator[str]:
        """Yield content pieces as the server streams them (or the whole reply at once)."""
        request = dict(model=self.model, messages=messages, max_tokens=max_tokens,
                       temperature=self.settings.temperature, top_p=self.settings.top_p, seed=self.settings.seed)
        if self.settings.openai.extra_body.strip():
            request["extra_body"] = json.loads(self.settings.openai.extra_body)
        try:
            if not self.settings.openai.stream:
                response = self.client.chat.completions.create(**request)
                content = response.choices[0].message.content if response.choices else ""
                if content:
                    yield content
                return
            for chunk in self.client.chat.completions.create(**request, stream=True):
                if chunk.choices and chunk.choices[0].delta.content:
                    yield chunk.choices[0].delta.content
        except self._errors as exc:
            raise LLMError(f"OpenAI-compatible endpoint {self.settings.openai.base_url} failed: {exc}") from exc
