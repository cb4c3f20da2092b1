"""The HTTP API (FastAPI): search, answers (plain, SSE, OpenAI-compatible), documents, stats, metrics.

Every route goes through `rag.service.IndexService`, the same code as the CLI and the UI; handlers are
plain functions run in the server's thread pool (embedding and generation are CPU work), so the
event loop stays free for other requests. Errors are `{"error": {"type", "message"}}` with a 4xx
code for anything the client can fix; a backend that fails (an unreachable LLM endpoint) is a 502.
"""

from __future__ import annotations

import hmac
import json
import re
import tempfile
import threading
import time
import uuid
from datetime import date
from pathlib import Path
from typing import Any, Iterator

from fastapi import APIRouter, Depends, FastAPI, Query, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, PlainTextResponse, StreamingResponse
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from pydantic import ValidationError
from starlette.exceptions import HTTPException as StarletteHTTPException

from rag.api import models as m
from rag.api.guard import guard, safe_url
from rag.api.middleware import BodyLimit, BodyTooLarge, Metrics
from rag.ingest import FieldMap
from rag.ingest.base import document_from_record
from rag.ingest.pipeline import IngestReport
from rag.llm.base import LLMError
from rag.prompt import PromptTooLongError
from rag.retrieve import QueryError, SearchFilters
from rag.index import IndexError as RagIndexError
from rag.service import BackendUnavailableError, BusyError, IndexService
from rag.tokens import count_tokens
from rag.types import Answer

MODEL_PREFIX = "newsrag"
MAX_OFFSET = 2**31  # SQLite takes 64-bit offsets; anything past this is past any index anyway
ERRORS = {
    401: {"model": m.ErrorResponse, "description": "missing or wrong API key"},
    404: {"model": m.ErrorResponse, "description": "no such document or model"},
    413: {"model": m.ErrorResponse, "description": "body or upload over the configured limit"},
    422: {"model": m.ErrorResponse, "description": "invalid request"},
}
SSE = {200: {"content": {"text/event-stream": {"schema": {"type": "string"}}},
             "description": "JSON, or with stream=true Server-Sent Events (event schemas below)"}}


class ApiError(Exception):
    """An error with its HTTP status, for the JSON error handler."""

    def __init__(self, status: int, kind: str, message: str):
        super().__init__(message)
        self.status, self.kind, self.message = status, kind, message


def error_response(status: int, kind: str, message: str, headers: dict | None = None) -> JSONResponse:
    return JSONResponse({"error": {"type": kind, "message": message}}, status_code=status, headers=headers)


def create_app(service: IndexService, bind_host: str = "") -> FastAPI:
    """The API over a service (which owns the index, the models and the write lock)."""
    limits = service.settings.server
    metrics = Metrics()
    bearer = HTTPBearer(auto_error=False, description="the server's API key, when one is configured")

    def authorized(credentials: HTTPAuthorizationCredentials | None = Depends(bearer)) -> None:
        if not limits.api_key:
            return
        given = credentials.credentials.encode() if credentials else b""
        if not hmac.compare_digest(given, limits.api_key.encode()):  # constant time: no timing oracle
            raise ApiError(401, "unauthorized", "missing or wrong API key (Authorization: Bearer KEY)")

    app = FastAPI(
        title="newsrag API",
        version="1.0",
        description="Answers about a news corpus with verified, quoted citations; search; corpus management.",
        responses=ERRORS,
    )
    api = APIRouter(dependencies=[Depends(authorized)])  # every route but /healthz needs the key

    # -- errors -------------------------------------------------------------------------------
    @app.exception_handler(ApiError)
    async def api_error(_: Request, exc: ApiError):
        headers = {"WWW-Authenticate": "Bearer"} if exc.status == 401 else None
        return error_response(exc.status, exc.kind, exc.message, headers)

    @app.exception_handler(RequestValidationError)
    async def invalid_request(_: Request, exc: RequestValidationError):
        return error_response(422, "invalid_request", validation_message(exc.errors()))

    @app.exception_handler(StarletteHTTPException)
    async def http_error(_: Request, exc: StarletteHTTPException):
        kinds = {404: "not_found", 405: "method_not_allowed"}
        return error_response(exc.status_code, kinds.get(exc.status_code, "http_error"), str(exc.detail))

    @app.exception_handler(QueryError)
    @app.exception_handler(PromptTooLongError)
    @app.exception_handler(BackendUnavailableError)
    async def bad_query(_: Request, exc: Exception):
        return error_response(422, "invalid_request", str(exc))

    @app.exception_handler(LLMError)
    async def llm_error(_: Request, exc: LLMError):
        return error_response(502, "llm_unavailable", str(exc))

    @app.exception_handler(RagIndexError)
    async def index_unavailable(_: Request, exc: RagIndexError):
        return error_response(409, "conflict", str(exc).replace(str(service.settings.index_dir), "the index"))

    @app.exception_handler(BusyError)
    async def busy(_: Request, exc: BusyError):
        return error_response(503, "busy", str(exc), {"Retry-After": str(exc.retry_after)})

    # -- helpers ------------------------------------------------------------------------------
    def check_k(k: int | None) -> None:
        if k is not None and k > limits.max_k:
            raise ApiError(422, "invalid_request", f"k={k} is over the limit of {limits.max_k} (server.max_k)")

    def check_question(text: str, field: str) -> None:
        if not text.strip():
            raise ApiError(422, "invalid_request", f"{field} is empty")
        if len(text) > limits.max_question_chars:
            raise ApiError(422, "invalid_request", f"{field} has {len(text)} characters; the limit is "
                           f"{limits.max_question_chars} (server.max_question_chars)")

    def check_history(history: list) -> None:
        if len(history) > limits.max_history_messages:
            raise ApiError(422, "invalid_request", f"history has {len(history)} messages; the limit is "
                           f"{limits.max_history_messages} (server.max_history_messages)")
        size = sum(len(h["content"] if isinstance(h, dict) else text_of(h.content)) for h in history)
        if size > limits.max_history_chars:
            raise ApiError(422, "invalid_request", f"history has {size} characters; the limit is "
                           f"{limits.max_history_chars} (server.max_history_chars)")

    def backend_for(model: str) -> str | None:
        if model == MODEL_PREFIX:
            return None
        backend = model.removeprefix(MODEL_PREFIX + "-")
        if backend not in service.available_backends() or model == backend:
            raise ApiError(404, "model_not_found", f"model {model!r} does not exist; GET /v1/models lists them")
        return backend

    def filters(request: m.Filters | m.ChatCompletionRequest) -> SearchFilters:
        return SearchFilters(iso(request.since), iso(request.until), request.source)

    # -- search and answers -------------------------------------------------------------------
    @api.post("/v1/search", response_model=m.SearchResponse, tags=["answers"])
    def search(request: m.SearchRequest):
        """Hybrid search; the object `rag search --json` prints."""
        check_question(request.query, "query")
        check_k(request.k)
        hits = service.search(request.query, k=request.k, filters=filters(request), favour_recent=request.recent)
        return {"query": request.query, "hits": [hit.to_json() for hit in hits]}

    @api.post("/v1/ask", response_model=m.AnswerResponse, responses=SSE, tags=["answers"])
    def ask(request: m.AskRequest, http: Request):
        """An answer with verified citations (`rag ask --json`); `stream: true` sends SSE token events first."""
        check_question(request.question, "question")
        check_k(request.k)
        check_history(request.history)
        history = [{"role": h.role, "content": text_of(h.content)} for h in request.history]
        answerer = service.answerer(request.llm)
        pieces = answerer.stream(request.question, history=history, k=request.k, filters=filters(request),
                                 favour_recent=request.recent)
        if not request.stream:
            return final_answer(pieces).to_json()
        first = next(pieces)  # errors before the first byte still become a JSON error response
        return StreamingResponse(until_disconnected(http, ask_events(first, pieces)), media_type="text/event-stream",
                                 headers={"Cache-Control": "no-cache"})

    @api.post("/v1/chat/completions", response_model=m.ChatCompletionResponse, responses=SSE, tags=["openai"])
    def chat_completions(request: m.ChatCompletionRequest, http: Request):
        """OpenAI Chat Completions: the last user message is the question, earlier ones the history.

        The answer is verified before it is sent, streamed or not, so a client never shows a sentence
        that verification removed. Citations come in the extra `citations` field and, unless
        server.sources_footer is off, as a "Sources" footer in the message text.
        """
        backend = backend_for(request.model)
        users = [i for i, message in enumerate(request.messages) if message.role == "user"]
        if not users:
            raise ApiError(422, "invalid_request", "messages: there is no user message to answer")
        question = text_of(request.messages[users[-1]].content)
        check_question(question, "the last user message")
        check_k(request.k)
        history = [{"role": h.role, "content": text_of(h.content)} for h in request.messages[: users[-1]]
                   if h.role in ("user", "assistant")]
        check_history(history)
        answerer = service.answerer(backend)
        answer = final_answer(answerer.stream(question, history=history, k=request.k,
                                              filters=filters(request)))
        content = inert(answer.answer) + (sources_footer(answer) if limits.sources_footer else "")
        completion_id, created = f"chatcmpl-{uuid.uuid4().hex}", int(time.time())
        citations = answer.to_json()["citations"]
        if request.stream:
            chunks = completion_chunks(completion_id, created, request.model, content, citations, answer.refused)
            return StreamingResponse(until_disconnected(http, chunks), media_type="text/event-stream",
                                     headers={"Cache-Control": "no-cache"})
        prompt_tokens = sum(count_tokens(text_of(msg.content)) for msg in request.messages)
        completion_tokens = count_tokens(content)
        return {
            "id": completion_id, "created": created, "model": request.model,
            "choices": [{"index": 0, "message": {"role": "assistant", "content": content}, "finish_reason": "stop"}],
            "usage": {"prompt_tokens": prompt_tokens, "completion_tokens": completion_tokens,
                      "total_tokens": prompt_tokens + completion_tokens},
            "citations": citations, "refused": answer.refused,
        }

    @api.get("/v1/models", response_model=m.ModelList, tags=["openai"])
    def list_models():
        """The assistant, and one model id per generator this configuration can run."""
        created = int(service.started_at)
        ids = [MODEL_PREFIX] + [f"{MODEL_PREFIX}-{name}" for name in service.available_backends()]
        return {"data": [{"id": model_id, "created": created} for model_id in ids]}

    # -- documents ----------------------------------------------------------------------------
    @api.get("/v1/documents", response_model=m.DocumentPage, tags=["documents"])
    def list_documents(
        offset: int = Query(0, ge=0, le=MAX_OFFSET), limit: int = Query(50, ge=1),
        source: str | None = None, since: date | None = None, until: date | None = None,
        q: str | None = Query(None, description="title substring or exact document id"),
    ):
        """Documents, newest first, one page at a time."""
        if limit > limits.max_page_size:
            raise ApiError(422, "invalid_request", f"limit={limit} is over {limits.max_page_size} (server.max_page_size)")
        documents, total = service.index.metadata.list_documents(
            offset=offset, limit=limit, query=q or "", source=source or "", since=iso(since) or "", until=iso(until) or "")
        return {"total": total, "offset": offset, "limit": limit, "documents": [public(d) for d in documents]}

    @api.get("/v1/documents/{doc_id:path}", response_model=m.DocumentModel, tags=["documents"])
    def get_document(doc_id: str):
        """One document with its full text."""
        document = service.index.metadata.get_document(doc_id)
        if document is None:
            raise ApiError(404, "not_found", f"no document {doc_id!r}")
        return public(document)

    @api.post("/v1/documents", response_model=m.IngestResponse, tags=["documents"], openapi_extra=UPLOAD_BODY)
    async def add_documents(request: Request):
        """Add JSON records (`{"documents": [...]}`) or upload files (multipart, field `files`)."""
        content_type = request.headers.get("content-type", "")
        if content_type.startswith("multipart/form-data"):
            return await ingest_uploads(request)
        if not content_type.startswith("application/json"):
            raise ApiError(422, "invalid_request", "send application/json records or multipart/form-data files")
        try:
            body = m.DocumentsIn.model_validate_json(await request.body())
        except ValidationError as exc:
            raise ApiError(422, "invalid_request", validation_message(exc.errors(), "body")) from None
        documents = []
        for number, record in enumerate(body.documents):
            try:
                documents.append(document_from_record(record.model_dump(exclude_none=True), FieldMap(), origin="api"))
            except ValueError as exc:
                raise ApiError(422, "invalid_request", f"body.documents.{number}: {exc}") from None
        report = await run_in_threadpool(service.add_documents, documents)
        return {"report": report.to_json(), "files": []}

    async def ingest_uploads(request: Request) -> dict:
        try:
            form = await request.form(max_files=100, max_fields=20, max_part_size=int(limits.max_upload_mb * 1e6))
        except BodyTooLarge:
            raise
        except Exception as exc:  # noqa: BLE001 - any multipart parse failure is the client's malformed body
            raise ApiError(422, "invalid_request", f"malformed multipart body: {exc}") from None
        uploads = [item for item in form.getlist("files") if hasattr(item, "filename")]
        if not uploads:
            raise ApiError(422, "invalid_request", "multipart body has no `files` part")
        total, files = IngestReport(), []
        with tempfile.TemporaryDirectory(prefix="rag-upload-") as folder:
            for number, upload in enumerate(uploads):
                name = safe_filename(upload.filename, f"upload-{number}")
                path = Path(folder) / f"{number}" / name
                path.parent.mkdir()
                path.write_bytes(await upload.read())
                report = await run_in_threadpool(service.ingest, [path])
                for issue in report.issues:  # name the file as the client knows it, not our temp path
                    issue.path = name
                files.append({"file": name, "report": report.to_json()})
                merge(total, report)
        stored = total.added + total.replaced + total.unchanged + total.duplicates
        if total.issues and not stored:
            raise ApiError(422, "invalid_document", "; ".join(str(issue) for issue in total.issues)[:2000])
        return {"report": total.to_json(), "files": files}

    @api.delete("/v1/documents/{doc_id:path}", response_model=m.DeleteResponse, tags=["documents"])
    def delete_document(doc_id: str):
        """Remove a document from the index."""
        deleted = service.delete([doc_id])
        if not deleted:
            raise ApiError(404, "not_found", f"no document {doc_id!r}")
        return {"deleted": deleted}

    # -- operations ---------------------------------------------------------------------------
    @api.get("/v1/stats", response_model=m.StatsResponse, tags=["operations"])
    def stats():
        """What the index holds (`rag stats --json`), without the server's file paths."""
        stats = service.index.stats()
        stats["index"] = Path(stats["index"]).name
        stats["store"] = {key: (Path(value).name if key == "uri" and "://" not in value else value)
                          for key, value in stats.get("store", {}).items()}
        return stats

    @api.get("/metrics", response_class=PlainTextResponse, tags=["operations"],
             responses={200: {"content": {"text/plain": {"schema": {"type": "string"}}}}})
    def prometheus_metrics():
        """Prometheus text format: requests and latency per endpoint, index size."""
        counts = service.index.metadata.counts()
        metrics.documents.set(counts["documents"])
        metrics.chunks.set(counts["chunks"])
        return PlainTextResponse(generate_latest(metrics.registry), media_type=CONTENT_TYPE_LATEST)

    @app.get("/healthz", response_model=m.Health, tags=["operations"])
    def healthz():
        """Liveness, without authentication."""
        return {"documents": service.index.metadata.counts()["documents"]}

    app.include_router(api)
    app.openapi = lambda: app.openapi_schema or finish_schema(app, limits)
    app.add_middleware(BodyLimit, json_bytes=int(limits.max_body_mb * 1e6), upload_bytes=int(limits.max_upload_mb * 1e6))
    guard(app, limits, bind_host)  # Host allow-list, no cross-site writes, CORS only as configured
    app.add_middleware(metrics.middleware)  # outermost: refusals are counted too
    return app


def inline_refs(schema: dict) -> dict:
    """A pydantic JSON schema with its `$defs` substituted in place (OpenAPI resolves `$ref` from its root)."""
    definitions = schema.pop("$defs", {})

    def resolve(node):
        if isinstance(node, dict):
            if "$ref" in node:
                return resolve(definitions[node["$ref"].rsplit("/", 1)[-1]])
            return {key: resolve(value) for key, value in node.items()}
        if isinstance(node, list):
            return [resolve(item) for item in node]
        return node

    return resolve(schema)


UPLOAD_BODY = {
    "requestBody": {
        "required": True,
        "content": {
            "application/json": {"schema": inline_refs(m.DocumentsIn.model_json_schema())},
            "multipart/form-data": {
                "schema": {"type": "object", "required": ["files"],
                           "properties": {"files": {"type": "array", "items": {"type": "string", "format": "binary"}}}},
            },
        },
    }
}


def finish_schema(app: FastAPI, limits) -> dict:
    """The OpenAPI schema with the configured limits and the SSE event schemas written in."""
    from fastapi.openapi.utils import get_openapi

    schema = get_openapi(title=app.title, version=app.version, description=app.description, routes=app.routes)
    components = schema["components"]["schemas"]
    for model in (m.TokenEvent, m.ChatCompletionChunk, m.ChunkChoice, m.ChunkDelta):
        components[model.__name__] = model.model_json_schema(ref_template="#/components/schemas/{model}")
        components[model.__name__].pop("$defs", None)
    # Each Server-Sent Event as an object {event, data}; `data` is JSON text (OpenAPI 3.2 style).
    events = {
        "/v1/ask": _sse_event(["token", "answer", "error"], {"anyOf": [{"$ref": "#/components/schemas/TokenEvent"},
                                                                       {"$ref": "#/components/schemas/AnswerResponse"},
                                                                       {"$ref": "#/components/schemas/ErrorResponse"}]}),
        "/v1/chat/completions": _sse_event(None, {"$ref": "#/components/schemas/ChatCompletionChunk"}, done=True),
    }
    for path, event in events.items():
        schema["paths"][path]["post"]["responses"]["200"]["content"]["text/event-stream"]["schema"] = event
    bounds = {
        ("SearchRequest", "k"): {"maximum": limits.max_k},
        ("AskRequest", "k"): {"maximum": limits.max_k},
        ("ChatCompletionRequest", "k"): {"maximum": limits.max_k},
        ("SearchRequest", "query"): {"maxLength": limits.max_question_chars},
        ("AskRequest", "question"): {"maxLength": limits.max_question_chars},
        ("AskRequest", "history"): {"maxItems": limits.max_history_messages},
    }
    for (model, field), constraint in bounds.items():
        _constrain(components[model]["properties"][field], constraint)
    for parameter in schema["paths"]["/v1/documents"]["get"]["parameters"]:
        if parameter["name"] == "limit":
            _constrain(parameter["schema"], {"maximum": limits.max_page_size})
    app.openapi_schema = schema
    return schema


def _sse_event(names: list[str] | None, data: dict, done: bool = False) -> dict:
    json_data = {"type": "string", "contentMediaType": "application/json", "contentSchema": data}
    return {
        "type": "object",
        "required": ["data"],
        "properties": {
            "event": {"type": "string", "enum": names} if names else {"type": "string"},
            "data": {"anyOf": [json_data, {"type": "string", "const": "[DONE]"}]} if done else json_data,
        },
    }


def _constrain(node: dict, constraint: dict) -> None:
    """Add a bound to a property schema, or to its non-null branch of an anyOf."""
    branches = [b for b in node.get("anyOf", [node]) if b.get("type") != "null"]
    for branch in branches:
        branch.update(constraint)


def iso(day: date | None) -> str | None:
    return day.isoformat() if day else None


def text_of(content: Any) -> str:
    """A message's text: a string, or the text parts of an OpenAI content list."""
    if content is None:
        return ""
    if isinstance(content, str):
        return content
    return " ".join(str(part.get("text", "")) for part in content if isinstance(part, dict) and part.get("type") == "text")


def validation_message(errors: list[dict], prefix: str = "") -> str:
    """`body.k: Input should be greater than or equal to 1; ...` from pydantic's error list."""
    parts = []
    for error in errors[:5]:
        location = ".".join(str(p) for p in ([prefix] if prefix else []) + list(error.get("loc", ())))
        parts.append(f"{location}: {error.get('msg', 'invalid')}")
    return "; ".join(parts) or "invalid request"


def final_answer(pieces: Iterator) -> Answer:
    for item in pieces:
        if isinstance(item, Answer):
            return item
    raise RuntimeError("the answer stream ended without an answer")  # pragma: no cover


def ask_events(first, pieces: Iterator) -> Iterator[str]:
    """SSE for /v1/ask: `token` events with draft text, then one `answer` event with the verified answer.

    A failure after the response has started (a remote LLM dropping mid-stream) ends the stream with
    an `error` event carrying the usual error object, since the status code is already sent.
    """
    try:
        for item in closing_chain(first, pieces):
            if isinstance(item, Answer):
                yield f"event: answer\ndata: {json.dumps(item.to_json(), ensure_ascii=False)}\n\n"
            else:
                yield f"event: token\ndata: {json.dumps({'text': item}, ensure_ascii=False)}\n\n"
    except (LLMError, BusyError) as exc:
        kind = "busy" if isinstance(exc, BusyError) else "llm_unavailable"
        error = {"error": {"type": kind, "message": str(exc)}}
        yield f"event: error\ndata: {json.dumps(error, ensure_ascii=False)}\n\n"


async def until_disconnected(request: Request, events: Iterator[str]):
    """Send a blocking event iterator from the thread pool, and stop it when the client goes away.

    Closing the iterator ends the answer path where it stands (GeneratorExit), which cancels the
    model's generation and frees it for the next request; a client that drops an SSE stream
    therefore never holds the model. Starlette cancels this task when the client disconnects; the
    step running in the thread pool finishes and the iterator is closed right after it.
    """
    steps = LockedIterator(events)
    try:
        while not await request.is_disconnected():
            item = await run_in_threadpool(steps.next)
            if item is END:
                return
            yield item
    finally:
        await run_in_threadpool(steps.close)


END = object()


class LockedIterator:
    """An iterator stepped and closed from pool threads, never both at once."""

    def __init__(self, iterator: Iterator):
        self.iterator, self.lock = iterator, threading.Lock()

    def next(self):
        with self.lock:
            return next(self.iterator, END)

    def close(self) -> None:
        with self.lock:
            close = getattr(self.iterator, "close", None)
            if close:
                close()


def closing_chain(first, rest: Iterator) -> Iterator:
    """`first`, then `rest`; closing this closes `rest` (the answer path, and the model with it)."""
    try:
        yield first
        yield from rest
    finally:
        close = getattr(rest, "close", None)
        if close:
            close()


def sources_footer(answer: Answer) -> str:
    """The citations as text, for chat clients that show only the message (links only for http(s))."""
    if not answer.citations:
        return ""
    lines = ["", "", "Sources:"]
    for c in answer.citations:
        meta = ", ".join(part for part in (c.date, c.source) if part)
        url = safe_url(c.url)
        lines.append(inert(f"[{c.n}] {c.title}" + (f" ({meta})" if meta else "")) + (f" {url}" if url else ""))
        lines.append(f'    "{inert(c.quote)}"')
    return "\n".join(lines)


def inert(text: str) -> str:
    """Corpus text made inert for chat clients that render Markdown or HTML: no tags, no links."""
    text = text.replace("<", "‹").replace(">", "›")
    text = re.sub(r"\]\s*\(", "] (", text)  # no [text](url) links
    return re.sub(r"(?i)\b(javascript|data|vbscript)\s*:", r"\1 :", text)


def public(document: dict) -> dict:
    """A document as clients see it: its origin without the server's folders ("forum.jsonl:3")."""
    origin = document.get("origin") or ""
    path, _, line = origin.rpartition(":")
    if not line.isdigit():
        path, line = origin, ""
    return {**document, "origin": Path(path).name + (f":{line}" if line else "")}


def safe_filename(name: str | None, fallback: str) -> str:
    """An uploaded file's name as a plain file name: no folders, no "..", no control characters."""
    name = Path((name or "").replace("\\", "/")).name
    name = "".join(ch for ch in name if ch.isprintable()).strip()
    return name if name and name not in (".", "..") and not name.startswith(".") else fallback


def completion_chunks(completion_id: str, created: int, model: str, content: str, citations: list, refused: bool) -> Iterator[str]:
    """`chat.completion.chunk` events: the role, the verified text sentence by sentence, the end, [DONE]."""
    def chunk(delta: dict, finish: str | None = None, **extra) -> str:
        body = {"id": completion_id, "object": "chat.completion.chunk", "created": created, "model": model,
                "choices": [{"index": 0, "delta": delta, "finish_reason": finish}], **extra}
        return f"data: {json.dumps(body, ensure_ascii=False)}\n\n"

    yield chunk({"role": "assistant", "content": ""})
    for piece in _pieces(content):
        yield chunk({"content": piece})
    yield chunk({}, "stop", citations=citations, refused=refused)
    yield "data: [DONE]\n\n"


def _pieces(text: str, size: int = 48) -> Iterator[str]:
    """The text in small pieces cut after spaces, so clients render it progressively."""
    start = 0
    while start < len(text):
        end = text.find(" ", start + size)
        end = len(text) if end == -1 else end + 1
        yield text[start:end]
        start = end


def merge(total: IngestReport, report: IngestReport) -> None:
    """Add one file's report to the request's total."""
    for name in ("files", "files_unchanged", "added", "replaced", "unchanged", "duplicates", "removed", "chunks", "tokens",
                 "flagged"):
        setattr(total, name, getattr(total, name) + getattr(report, name))
    total.seconds += report.seconds
    total.issues += report.issues
