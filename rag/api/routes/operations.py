"""Operations: what the index holds, Prometheus metrics, liveness."""

from __future__ import annotations

from pathlib import Path

from fastapi import APIRouter, Depends, Request
from fastapi.responses import PlainTextResponse
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from rag.api import models as m
from rag.api.deps import get_service
from rag.service import IndexService

router = APIRouter(tags=["operations"])
public_router = APIRouter(tags=["operations"])  # no API key


@router.get("/v1/stats", response_model=m.StatsResponse)
def stats(service: IndexService = Depends(get_service)):
    """What the index holds (`rag stats --json`), without the server's file paths."""
    stats = service.index.stats()
    stats["index"] = Path(stats["index"]).name
    stats["store"] = {key: (Path(value).name if key == "uri" and "://" not in value else value)
                      for key, value in stats.get("store", {}).items()}
    return stats


@router.get("/metrics", response_class=PlainTextResponse,
            responses={200: {"content": {"text/plain": {"schema": {"type": "string"}}}}})
def prometheus_metrics(request: Request, service: IndexService = Depends(get_service)):
    """Prometheus text format: requests and latency per endpoint, index size."""
    metrics = request.app.state.metrics
    counts = service.documents.counts()
    metrics.documents.set(counts["documents"])
    metrics.chunks.set(counts["chunks"])
    return PlainTextResponse(generate_latest(metrics.registry), media_type=CONTENT_TYPE_LATEST)


@public_router.get("/healthz", response_model=m.Health)
def healthz(service: IndexService = Depends(get_service)):
    """Liveness, without authentication."""
    return {"documents": service.documents.counts()["documents"]}
