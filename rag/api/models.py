"""The HTTP API's request and response models: the OpenAPI schema generated from them is the contract.

Response models mirror the CLI's `--json` objects (`search`, `ask`, `ingest`, `stats`) so that one
client library fits both. Request limits that depend on configuration (question length, k, history
length) are checked in the routes, with the configured value in the error message.
"""

from __future__ import annotations

from datetime import date
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from rag.generate import GENERATORS


# Text that is not all whitespace, in Python's sense (which counts \x1c-\x1f as whitespace, as the
# retriever's strip() does); validated with Python's `re` so schema and server agree.
NOT_BLANK = r"^\s*\S"


class Strict(BaseModel):
    """Unknown fields are an error (a typo in `sinse` must not silently drop a filter)."""

    model_config = ConfigDict(extra="forbid", regex_engine="python-re")


# -- errors ------------------------------------------------------------------------------------
class ErrorDetail(BaseModel):
    type: str = Field(description="machine-readable kind, e.g. invalid_request, not_found, unauthorized")
    message: str


class ErrorResponse(BaseModel):
    error: ErrorDetail


# -- search ------------------------------------------------------------------------------------
class Filters(Strict):
    since: date | None = Field(None, description="only articles dated on or after this date (YYYY-MM-DD)")
    until: date | None = Field(None, description="only articles dated on or before this date")
    source: str | None = Field(None, description="only articles from this source (case-insensitive)")
    recent: bool = Field(False, description="favour recent articles")
    as_of: date | None = Field(None, description="ask as on this day (default today): nothing dated later is used, "
                                                 "and 'last week' or 'in March' in the text are read from it")


class SearchRequest(Filters):
    query: str = Field(min_length=1, pattern=NOT_BLANK, description="what to look for")
    k: int | None = Field(None, ge=1, description="number of hits (default retrieval.k, at most server.max_k)")


class HitModel(BaseModel):
    rank: int
    chunk_id: str
    doc_id: str
    title: str
    date: str | None
    source: str
    url: str
    text: str
    start: int = Field(description="offset of the chunk in its document's text")
    end: int
    score: float


class SearchResponse(BaseModel):
    query: str
    hits: list[HitModel]


# -- ask ---------------------------------------------------------------------------------------
class ChatMessage(BaseModel):
    role: Literal["system", "user", "assistant", "developer", "tool"]
    content: str | list[dict[str, Any]] | None = None

    @property
    def text(self) -> str:
        """The message's text: a string, or the text parts of an OpenAI content list."""
        if self.content is None or isinstance(self.content, str):
            return self.content or ""
        return " ".join(str(part.get("text", "")) for part in self.content
                        if isinstance(part, dict) and part.get("type") == "text")


class AskRequest(Filters):
    question: str = Field(min_length=1, pattern=NOT_BLANK)
    k: int | None = Field(None, ge=1, description="passages to retrieve (default answer.k)")
    llm: Literal[GENERATORS.names()] | None = Field(  # type: ignore[valid-type] - the registered names
        None, description="generator backend (default llm.backend; GET /v1/models lists those this server runs)")
    history: list[ChatMessage] = Field(default_factory=list, description="earlier turns, oldest first")
    stream: bool = Field(False, description="Server-Sent Events: `token` events, then one `answer` event")


class SentenceModel(BaseModel):
    text: str
    citations: list[int]
    supported: bool
    score: float
    date: str | None = Field(None, description="the cited article's date, when the answer cites several dates "
                                               "(its sentences are then in date order)")


class CitationModel(BaseModel):
    n: int
    doc_id: str
    chunk_id: str
    title: str
    date: str | None
    source: str
    url: str
    quote: str = Field(description="exactly document_text[start:end]")
    start: int
    end: int
    score: float


class LLMInfo(BaseModel):
    backend: str
    model: str


class Timings(BaseModel):
    retrieve_ms: float
    generate_ms: float
    verify_ms: float
    total_ms: float
    first_token_ms: float | None


class TimeExpressionModel(BaseModel):
    text: str = Field(description="the words of the question, e.g. 'last week'")
    since: str = Field(description="the first day of the period they name")
    until: str = Field(description="its last day plus a few days' grace, at most as_of")


class TimeFrameModel(BaseModel):
    as_of: str | None
    since: str | None = Field(description="the publication window searched (inclusive): from the start of the "
                                          "period the question's words name ...")
    until: str | None = Field(description="... to as_of")
    period_until: str | None = Field(None, description="the named period's end (plus a few days' grace) where it "
                                                       "is before as_of: passages published later rank lower")
    favour_recent: bool = Field(description="the question asks for the latest news")
    expressions: list[TimeExpressionModel]
    query: str = Field(description="the question as searched, without the resolved date words")


class ConflictModel(BaseModel):
    values: list[str] = Field(description="the value each article states, in citation order before date ordering")
    doc_ids: list[str]
    similarity: float = Field(description="how alike the two sentences are (embedding cosine)")


class AnswerResponse(BaseModel):
    question: str
    answer: str
    refused: bool
    sentences: list[SentenceModel]
    citations: list[CitationModel]
    retrieved: list[HitModel]
    llm: LLMInfo
    timings: Timings
    as_of: str | None = Field(description="the day the question was answered as of")
    timeframe: TimeFrameModel | None
    conflict: ConflictModel | None = Field(description="set when two articles state different values for what "
                                                       "the question asks: the answer quotes and cites both")


# -- OpenAI-compatible chat --------------------------------------------------------------------
class ChatCompletionRequest(BaseModel):
    """OpenAI Chat Completions; unknown OpenAI fields are accepted and ignored, as other servers do."""

    model_config = ConfigDict(extra="allow")

    model: str = Field("newsrag", description="`newsrag`, or `newsrag-BACKEND` to pick a generator")
    messages: list[ChatMessage] = Field(min_length=1)
    stream: bool = False
    k: int | None = Field(None, ge=1, description="extension: passages to retrieve")
    since: date | None = Field(None, description="extension: only articles dated on or after (YYYY-MM-DD)")
    until: date | None = Field(None, description="extension: only articles dated on or before")
    source: str | None = Field(None, description="extension: source filter")
    as_of: date | None = Field(None, description="extension: ask as on this day (default today)")


class AssistantMessage(BaseModel):
    role: Literal["assistant"] = "assistant"
    content: str


class Choice(BaseModel):
    index: int = 0
    message: AssistantMessage
    finish_reason: Literal["stop", "length"] = "stop"


class Usage(BaseModel):
    prompt_tokens: int
    completion_tokens: int
    total_tokens: int


class ChatCompletionResponse(BaseModel):
    id: str
    object: Literal["chat.completion"] = "chat.completion"
    created: int
    model: str
    choices: list[Choice]
    usage: Usage
    citations: list[CitationModel] = Field(description="extension: the quotes that support the answer")
    refused: bool = Field(description="extension: true when the corpus does not answer")


class TokenEvent(BaseModel):
    """SSE `token` event of /v1/ask: a piece of the draft as the model writes it."""

    text: str


class ChunkDelta(BaseModel):
    role: Literal["assistant"] | None = None
    content: str | None = None


class ChunkChoice(BaseModel):
    index: int = 0
    delta: ChunkDelta
    finish_reason: Literal["stop", "length"] | None = None


class ChatCompletionChunk(BaseModel):
    """One SSE event of a streamed chat completion; the last carries the extension fields."""

    id: str
    object: Literal["chat.completion.chunk"] = "chat.completion.chunk"
    created: int
    model: str
    choices: list[ChunkChoice]
    citations: list[CitationModel] | None = None
    refused: bool | None = None


class ModelCard(BaseModel):
    id: str
    object: Literal["model"] = "model"
    created: int
    owned_by: str = "newsrag"


class ModelList(BaseModel):
    object: Literal["list"] = "list"
    data: list[ModelCard]


# -- documents ---------------------------------------------------------------------------------
class DocumentIn(Strict):
    id: str | None = Field(None, description="stable id; default: a hash of the text")
    title: str = ""
    text: str = Field(min_length=1, pattern=NOT_BLANK)
    date: str | None = None
    source: str = ""
    url: str = ""


class DocumentsIn(Strict):
    documents: list[DocumentIn] = Field(min_length=1)


class IssueModel(BaseModel):
    path: str
    line: int | None
    message: str


class IngestReportModel(BaseModel):
    files: int
    files_unchanged: int
    added: int
    replaced: int
    unchanged: int
    duplicates: int
    removed: int
    failed: int
    chunks: int
    tokens: int
    flagged: int = Field(0, description="sentences addressed to an AI: kept and searchable, never used as evidence")
    seconds: float
    issues: list[IssueModel]


class FileReport(BaseModel):
    file: str
    report: IngestReportModel


class IngestResponse(BaseModel):
    report: IngestReportModel = Field(description="totals, as `rag ingest --json`")
    files: list[FileReport] = Field(description="one entry per uploaded file (empty for JSON records)")


class DocumentSummary(BaseModel):
    doc_id: str
    title: str
    date: str | None
    source: str
    url: str
    n_chunks: int
    origin: str


class DocumentPage(BaseModel):
    total: int
    offset: int
    limit: int
    documents: list[DocumentSummary]


class DocumentModel(DocumentSummary):
    text: str
    added_at: float
    flagged: list[list[int]] = Field(default_factory=list,
                                     description="[start, end] of sentences addressed to an AI, never used as evidence")


class DeleteResponse(BaseModel):
    deleted: list[str]


class StatsResponse(BaseModel):
    index: str
    documents: int
    chunks: int
    files: int
    first_date: str | None
    last_date: str | None
    top_sources: dict[str, int]
    embedding_model: str
    embedding_runtime: dict[str, str] = Field(description="how the index's vectors were computed: backend, quantize, precision")
    dimension: int | None
    vector_index: str
    store: dict[str, str] = Field(description="where the vectors live: backend faiss (file) or milvus (uri, collection)")
    lexical: str = Field(description="bm25s (local files) or milvus (full-text search inside Milvus)")
    chunking: dict[str, Any] | None
    size_bytes: int
    created_at: str | None
    updated_at: str | None


class Health(BaseModel):
    status: Literal["ok"] = "ok"
    documents: int


def validation_message(errors: list[dict], prefix: str = "") -> str:
    """`body.k: Input should be greater than or equal to 1; ...` from pydantic's error list."""
    parts = []
    for error in errors[:5]:
        location = ".".join(str(p) for p in ([prefix] if prefix else []) + list(error.get("loc", ())))
        parts.append(f"{location}: {error.get('msg', 'invalid')}")
    return "; ".join(parts) or "invalid request"


# -- timeline ----------------------------------------------------------------------------------
class TimelineRequest(Filters):
    query: str = Field(min_length=1, pattern=NOT_BLANK, description="the story, e.g. 'Artemis moon rocket launch'")
    k: int | None = Field(None, ge=1, description="passages to consider (default 40, at most server.max_k)")


class TimelineEntryModel(BaseModel):
    doc_id: str
    title: str
    date: str | None
    source: str
    url: str
    sentence: str = Field(description="the article's sentence most relevant to the query: document_text[start:end]")
    start: int
    end: int
    similarity: float


class DayCount(BaseModel):
    date: str
    articles: int


class TimelineResponse(BaseModel):
    query: str
    as_of: str | None
    timeframe: TimeFrameModel | None
    entries: list[TimelineEntryModel] = Field(description="oldest first; undated articles last")
    per_day: list[DayCount]


# -- watched feeds -----------------------------------------------------------------------------
class FeedIn(Strict):
    url: str = Field(min_length=1, max_length=2000,
                     description="an http(s) RSS, Atom or JSON Feed URL (folders are added from the command line; "
                                 "private and loopback addresses only with watch.allow_private_feeds)")
    interval_seconds: float | None = Field(None, ge=60, le=7 * 86400,
                                           description="how often to poll (default watch.interval_seconds)")


class FeedModel(BaseModel):
    id: str
    url: str
    kind: Literal["feed", "folder"]
    interval_seconds: float
    added_at: float = Field(description="Unix time")
    last_poll: float | None
    last_success: float | None
    last_status: str = Field(description="updated, not modified or error")
    last_error: str
    failures: int = Field(description="consecutive failed polls (the wait doubles with each)")
    next_poll: float
    items_added: int
    items_replaced: int
    items_known: int
    polls: int
    etag: str
    last_modified: str


class FeedList(BaseModel):
    feeds: list[FeedModel]


class PollResultModel(BaseModel):
    source_id: str
    url: str
    status: str
    added: int
    replaced: int
    unchanged: int
    articles_fetched: int
    deferred: int
    problems: list[str]
    error: str
    seconds: float
    next_poll: float
