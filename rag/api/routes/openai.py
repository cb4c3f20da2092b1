"""The OpenAI-compatible surface: /v1/chat/completions and /v1/models, so chat clients plug in."""

from __future__ import annotations

import re
import time
import uuid

from fastapi import APIRouter, Depends, Request
from fastapi.responses import StreamingResponse

from rag.answer import collect
from rag.api import models as m
from rag.api.deps import get_limits, get_service
from rag.api.guard import safe_url
from rag.api.limits import Limits
from rag.api.routes.answers import SSE, filters_of
from rag.api.streaming import completion_chunks, until_disconnected
from rag.errors import ErrorKind, RagError
from rag.service import IndexService
from rag.tokens import count_tokens
from rag.types import Answer

router = APIRouter(tags=["openai"])
MODEL_PREFIX = "newsrag"


def backend_for(model: str, service: IndexService) -> str | None:
    """`newsrag` is the configured generator, `newsrag-BACKEND` another one this server can run."""
    if model == MODEL_PREFIX:
        return None
    backend = model.removeprefix(MODEL_PREFIX + "-")
    if backend not in service.available_backends() or model == backend:
        raise RagError(f"model {model!r} does not exist; GET /v1/models lists them", ErrorKind.NOT_FOUND,
                       code="model_not_found")
    return backend


@router.post("/v1/chat/completions", response_model=m.ChatCompletionResponse, responses=SSE)
def chat_completions(request: m.ChatCompletionRequest, http: Request, service: IndexService = Depends(get_service),
                     limits: Limits = Depends(get_limits)):
    """OpenAI Chat Completions: the last user message is the question, earlier ones the history.

    The answer is verified before it is sent, streamed or not, so a client never shows a sentence
    that verification removed. Citations come in the extra `citations` field and, unless
    server.sources_footer is off, as a "Sources" footer in the message text.
    """
    backend = backend_for(request.model, service)
    users = [i for i, message in enumerate(request.messages) if message.role == "user"]
    if not users:
        raise RagError("messages: there is no user message to answer")
    question = request.messages[users[-1]].text
    limits.question(question, "the last user message")
    limits.check("k", "k", request.k or 0)
    history = [{"role": h.role, "content": h.text} for h in request.messages[: users[-1]]
               if h.role in ("user", "assistant")]
    limits.history([h["content"] for h in history])
    answer = collect(service.answerer(backend).stream(question, history=history, k=request.k,
                                                      filters=filters_of(request), as_of=request.as_of))
    content = inert(answer.answer) + (sources_footer(answer) if service.settings.server.sources_footer else "")
    completion_id, created = f"chatcmpl-{uuid.uuid4().hex}", int(time.time())
    citations = answer.to_json()["citations"]
    if request.stream:
        chunks = completion_chunks(completion_id, created, request.model, content, citations, answer.refused)
        return StreamingResponse(until_disconnected(http, chunks), media_type="text/event-stream",
                                 headers={"Cache-Control": "no-cache"})
    prompt_tokens = sum(count_tokens(message.text) for message in request.messages)
    completion_tokens = count_tokens(content)
    return {
        "id": completion_id, "created": created, "model": request.model,
        "choices": [{"index": 0, "message": {"role": "assistant", "content": content}, "finish_reason": "stop"}],
        "usage": {"prompt_tokens": prompt_tokens, "completion_tokens": completion_tokens,
                  "total_tokens": prompt_tokens + completion_tokens},
        "citations": citations, "refused": answer.refused,
    }


@router.get("/v1/models", response_model=m.ModelList)
def list_models(service: IndexService = Depends(get_service)):
    """The assistant, and one model id per generator this configuration can run."""
    created = int(service.started_at)
    ids = [MODEL_PREFIX] + [f"{MODEL_PREFIX}-{name}" for name in service.available_backends()]
    return {"data": [{"id": model_id, "created": created} for model_id in ids]}


def sources_footer(answer: Answer) -> str:
    """The citations as text, for chat clients that show only the message (links only for http(s))."""
    if not answer.citations:
        return ""
    lines = ["", "", "Sources:"]
    for c in answer.citations:
        url = safe_url(c.url)
        lines.append(inert(f"[{c.n}] {c.heading()}") + (f" {url}" if url else ""))
        lines.append(f'    "{inert(c.quote)}"')
    return "\n".join(lines)


def inert(text: str) -> str:
    """Corpus text made inert for chat clients that render Markdown or HTML: no tags, no links."""
    text = text.replace("<", "‹").replace(">", "›")
    text = re.sub(r"\]\s*\(", "] (", text)  # no [text](url) links
    return re.sub(r"(?i)\b(javascript|data|vbscript)\s*:", r"\1 :", text)
