"""The HTTP API (FastAPI): search, answers (plain, SSE, OpenAI-compatible), documents, stats, metrics.

`create_app` puts the service and its limits on the app, includes one router per area
(`rag.api.routes`), maps errors and adds the middleware. Every route goes through
`rag.service.IndexService`, the same code as the CLI and the UI; handlers are plain functions run in
the server's thread pool (embedding and generation are CPU work), so the event loop stays free.

Errors are `{"error": {"type", "message"}}`. Any `rag.errors.RagError` gets the status of its kind
(422 bad input, 404 not found, 409 conflict, 503 busy with Retry-After, 502 a backend that failed,
401 a wrong key); anything else is a bug and a 500.
"""

from __future__ import annotations

from fastapi import Depends, FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from rag.api import models as m
from rag.api.deps import authorized
from rag.api.guard import guard
from rag.api.limits import Limits
from rag.api.middleware import BodyLimit, Metrics
from rag.api.models import validation_message
from rag.api.routes import answers, documents, feeds, openai, operations
from rag.errors import ErrorKind, RagError
from rag.service import IndexService

ERRORS = {
    401: {"model": m.ErrorResponse, "description": "missing or wrong API key"},
    404: {"model": m.ErrorResponse, "description": "no such document or model"},
    413: {"model": m.ErrorResponse, "description": "body or upload over the configured limit"},
    422: {"model": m.ErrorResponse, "description": "invalid request"},
}


def error_response(status: int, kind: str, message: str, headers: dict | None = None) -> JSONResponse:
    return JSONResponse({"error": {"type": kind, "message": message}}, status_code=status, headers=headers)


def create_app(service: IndexService, bind_host: str = "") -> FastAPI:
    """The API over a service (which owns the index, the models and the write lock)."""
    server = service.settings.server
    app = FastAPI(
        title="newsrag API",
        version="1.0",
        description="Answers about a news corpus with verified, quoted citations; search; corpus management.",
        responses=ERRORS,
    )
    app.state.service, app.state.limits, app.state.metrics = service, Limits(server), Metrics()
    for area in (answers, openai, documents, feeds, operations):
        app.include_router(area.router, dependencies=[Depends(authorized)])  # every route but /healthz needs the key
    app.include_router(operations.public_router)

    index_dir = str(service.settings.index_dir)

    @app.exception_handler(RagError)
    async def rag_error(_: Request, exc: RagError):
        headers = {}
        if exc.kind is ErrorKind.UNAUTHORIZED:
            headers["WWW-Authenticate"] = "Bearer"
        if exc.retry_after:
            headers["Retry-After"] = str(exc.retry_after)
        message = str(exc).replace(index_dir, "the index")  # the server's folders are not the client's business
        return error_response(exc.http_status, exc.api_type, message, headers or None)

    @app.exception_handler(RequestValidationError)
    async def invalid_request(_: Request, exc: RequestValidationError):
        return error_response(422, "invalid_request", validation_message(exc.errors()))

    @app.exception_handler(StarletteHTTPException)
    async def http_error(_: Request, exc: StarletteHTTPException):
        kinds = {404: "not_found", 405: "method_not_allowed"}
        return error_response(exc.status_code, kinds.get(exc.status_code, "http_error"), str(exc.detail))

    app.openapi = lambda: app.openapi_schema or finish_schema(app)
    app.add_middleware(BodyLimit, json_bytes=int(server.max_body_mb * 1e6), upload_bytes=int(server.max_upload_mb * 1e6))
    guard(app, server, bind_host)  # Host allow-list, no cross-site writes, CORS only as configured
    app.add_middleware(app.state.metrics.middleware)  # outermost: refusals are counted too
    return app


def finish_schema(app: FastAPI) -> dict:
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
    app.state.limits.write_into(schema)
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
