"""LLM backends behind one contract (`rag.llm.base.LLM`), chosen by name from config or `--llm`.

Each backend is one module, imported only when chosen: llama.cpp, torch/transformers and the openai
client are each slow to import or optional.
"""

from __future__ import annotations

from rag.config import LLMSettings
from rag.llm.base import LLM, LLMError, Message

CHAT_BACKENDS = ("llamacpp", "openai", "transformers")


def load_llm(settings: LLMSettings, backend: str | None = None) -> LLM:
    """Instantiate a chat backend by name."""
    backend = backend or settings.backend
    if backend == "llamacpp":
        from rag.llm.llamacpp import LlamaCppLLM

        return LlamaCppLLM(settings)
    if backend == "openai":
        from rag.llm.openai import OpenAILLM

        return OpenAILLM(settings)
    if backend == "transformers":
        from rag.llm.transformers import TransformersLLM

        return TransformersLLM(settings)
    raise LLMError(f"unknown LLM backend {backend!r}; choose one of {', '.join(CHAT_BACKENDS)} or extractive")


__all__ = ["CHAT_BACKENDS", "LLM", "LLMError", "Message", "load_llm"]
