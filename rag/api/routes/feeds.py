"""Watched feeds: list, add, remove, poll now (rag.watch; the server polls them in the background)."""

from __future__ import annotations

import dataclasses

from fastapi import APIRouter, Depends

from rag.api import models as m
from rag.api.deps import get_service
from rag.service import IndexService

router = APIRouter(tags=["feeds"])


@router.get("/v1/feeds", response_model=m.FeedList)
def list_feeds(service: IndexService = Depends(get_service)):
    """Every watched source with its last poll, last error and the items it brought in."""
    return {"feeds": [source.public() for source in service.watcher.sources.all()]}


@router.post("/v1/feeds", response_model=m.FeedModel, status_code=201)
def add_feed(request: m.FeedIn, service: IndexService = Depends(get_service)):
    """Watch a feed (polled at once, then every interval_seconds); an already watched URL is returned as is."""
    return service.watcher.add(request.url, request.interval_seconds, from_client=True).public()


@router.delete("/v1/feeds/{feed_id}", response_model=m.FeedModel)
def remove_feed(feed_id: str, service: IndexService = Depends(get_service)):
    """Stop watching a feed; the articles it brought in stay in the index."""
    return service.watcher.remove(feed_id).public()


@router.post("/v1/feeds/{feed_id}/poll", response_model=m.PollResultModel)
def poll_feed(feed_id: str, service: IndexService = Depends(get_service)):
    """Poll one feed now and say what it stored."""
    return dataclasses.asdict(service.watcher.poll(feed_id))
