"""Server-Sent Events over blocking answer streams: sent from the thread pool, stopped on disconnect."""

from __future__ import annotations

import json
import threading
from typing import Iterator

from fastapi import Request
from fastapi.concurrency import run_in_threadpool

from rag.answer import AnswerEvent
from rag.errors import RagError
from rag.types import Answer

END = object()


def ask_events(first: AnswerEvent, events: Iterator[AnswerEvent]) -> Iterator[str]:
    """SSE for /v1/ask: `token` events with draft text, then one `answer` event with the verified answer.

    A failure after the response has started (a remote LLM dropping mid-stream) ends the stream with
    an `error` event carrying the usual error object, since the status code is already sent.
    """
    try:
        for event in closing_chain(first, events):
            if isinstance(event, Answer):
                yield sse(event.to_json(), "answer")
            else:
                yield sse({"text": event.text}, "token")
    except RagError as exc:
        yield sse({"error": {"type": exc.api_type, "message": str(exc)}}, "error")


def completion_chunks(completion_id: str, created: int, model: str, content: str, citations: list,
                      refused: bool) -> Iterator[str]:
    """`chat.completion.chunk` events: the role, the verified text in pieces, the end, [DONE]."""
    def chunk(delta: dict, finish: str | None = None, **extra) -> str:
        return sse({"id": completion_id, "object": "chat.completion.chunk", "created": created, "model": model,
                    "choices": [{"index": 0, "delta": delta, "finish_reason": finish}], **extra})

    yield chunk({"role": "assistant", "content": ""})
    for piece in pieces(content):
        yield chunk({"content": piece})
    yield chunk({}, "stop", citations=citations, refused=refused)
    yield "data: [DONE]\n\n"


def sse(data: dict, event: str | None = None) -> str:
    return (f"event: {event}\n" if event else "") + f"data: {json.dumps(data, ensure_ascii=False)}\n\n"


def pieces(text: str, size: int = 48) -> Iterator[str]:
    """The text in small pieces cut after spaces, so clients render it progressively."""
    start = 0
    while start < len(text):
        end = text.find(" ", start + size)
        end = len(text) if end == -1 else end + 1
        yield text[start:end]
        start = end


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
