"""Search, answers and timelines: /v1/search, /v1/ask (plain JSON or Server-Sent Events), /v1/timeline."""

from __future__ import annotations

from datetime import date

from fastapi import APIRouter, Depends, Request
from fastapi.responses import StreamingResponse

from rag.answer import collect
from rag.api import models as m
from rag.api.deps import get_limits, get_service
from rag.api.limits import Limits
from rag.api.streaming import ask_events, until_disconnected
from rag.types import SearchFilters
from rag.service import IndexService

router = APIRouter(tags=["answers"])
SSE = {200: {"content": {"text/event-stream": {"schema": {"type": "string"}}},
             "description": "JSON, or with stream=true Server-Sent Events (event schemas below)"}}


def filters_of(request: m.Filters | m.ChatCompletionRequest) -> SearchFilters:
    return SearchFilters(iso(request.since), iso(request.until), request.source)


def iso(day: date | None) -> str | None:
    return day.isoformat() if day else None


@router.post("/v1/search", response_model=m.SearchResponse)
def search(request: m.SearchRequest, service: IndexService = Depends(get_service),
           limits: Limits = Depends(get_limits)):
    """Hybrid search; the object `rag search --json` prints."""
    limits.question(request.query, "query")
    limits.check("k", "k", request.k or 0)
    hits = service.search(request.query, k=request.k, filters=filters_of(request), favour_recent=request.recent,
                          as_of=request.as_of)
    return {"query": request.query, "hits": [hit.to_json() for hit in hits]}


@router.post("/v1/ask", response_model=m.AnswerResponse, responses=SSE)
def ask(request: m.AskRequest, http: Request, service: IndexService = Depends(get_service),
        limits: Limits = Depends(get_limits)):
    """An answer with verified citations (`rag ask --json`); `stream: true` sends SSE token events first."""
    limits.question(request.question, "question")
    limits.check("k", "k", request.k or 0)
    history = [{"role": h.role, "content": h.text} for h in request.history]
    limits.history([h["content"] for h in history])
    events = service.answerer(request.llm).stream(request.question, history=history, k=request.k,
                                                  filters=filters_of(request), favour_recent=request.recent,
                                                  as_of=request.as_of)
    if not request.stream:
        return collect(events).to_json()
    first = next(events)  # errors before the first byte still become a JSON error response
    return StreamingResponse(until_disconnected(http, ask_events(first, events)), media_type="text/event-stream",
                             headers={"Cache-Control": "no-cache"})


@router.post("/v1/timeline", response_model=m.TimelineResponse)
def timeline(request: m.TimelineRequest, service: IndexService = Depends(get_service),
             limits: Limits = Depends(get_limits)):
    """The articles about a story, oldest first, each with its sentence most relevant to the query, and
    the number of articles per day (`rag timeline --json`)."""
    limits.question(request.query, "query")
    limits.check("k", "k", request.k or 0)
    return service.timeline(request.query, k=request.k, filters=filters_of(request), as_of=request.as_of).to_json()
