"""Hugging Face transformers backend: a causal LM by path (or a GGUF file through `gguf_file`), on CPU or GPU."""

from __future__ import annotations

import os
import threading
from typing import Iterator

from rag.config import LLMSettings
from rag.llm.base import LLMError, Message


class TransformersLLM:
    """A chat model run by transformers, streamed with TextIteratorStreamer."""

    backend = "transformers"

    def __init__(self, settings: LLMSettings):
        os.environ.setdefault("HF_HUB_OFFLINE", "1")
        try:
            from transformers import AutoModelForCausalLM, AutoTokenizer
        except ImportError as exc:
            raise LLMError("the transformers backend needs the transformers package") from exc
        path = settings.transformers.model
        if not path:
            raise LLMError("set llm.transformers.model to a model folder or a .gguf file")
        kwargs = {}
        if path.endswith(".gguf"):
            kwargs["gguf_file"] = os.path.basename(path)
            path = os.path.dirname(path) or "."
        try:
            self.tokenizer = AutoTokenizer.from_pretrained(path, **kwargs)
            self.hf_model = AutoModelForCausalLM.from_pretrained(path, **kwargs)
        except (OSError, ValueError) as exc:
            raise LLMError(f"cannot load transformers model {settings.transformers.model}: {exc}") from exc
        self.hf_model.to(settings.transformers.device)
        self.settings = settings
        self.model = os.path.basename(settings.transformers.model.rstrip("/"))
        self.context_tokens = settings.context_tokens

    def stream(self, messages: list[Message], max_tokens: int) -> Iterator[str]:
        """Generate in a thread and yield the decoded text as it arrives."""
        from transformers import TextIteratorStreamer

        inputs = self.tokenizer.apply_chat_template(
            messages, add_generation_prompt=True, return_tensors="pt", return_dict=True
        ).to(self.settings.transformers.device)
        streamer = TextIteratorStreamer(self.tokenizer, skip_prompt=True, skip_special_tokens=True)
        sampling = {"do_sample": False} if self.settings.temperature <= 0 else {
            "do_sample": True, "temperature": self.settings.temperature, "top_p": self.settings.top_p}
        thread = threading.Thread(
            target=self.hf_model.generate,
            kwargs={**inputs, "max_new_tokens": max_tokens, "streamer": streamer, **sampling},
            daemon=True,
        )
        thread.start()
        yield from (piece for piece in streamer if piece)
        thread.join()
