"""ASGI middleware of the API: request body limits (413) and Prometheus metrics per endpoint.

Both are plain ASGI wrappers, so a streamed (SSE) response is timed to its last byte and a body
sent without Content-Length is still counted as it arrives.
"""

from __future__ import annotations

import json
import time

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram


class BodyTooLarge(Exception):
    pass


async def send_error(send, status: int, kind: str, message: str) -> None:
    """Send a complete JSON error response from middleware."""
    body = json.dumps({"error": {"type": kind, "message": message}}).encode()
    await send({"type": "http.response.start", "status": status,
                "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]})
    await send({"type": "http.response.body", "body": body})


class BodyLimit:
    """413 for a body over the limit: `upload_bytes` for multipart uploads, `json_bytes` otherwise."""

    def __init__(self, app, json_bytes: int, upload_bytes: int):
        self.app, self.json_bytes, self.upload_bytes = app, json_bytes, upload_bytes

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        headers = dict(scope["headers"])
        multipart = headers.get(b"content-type", b"").startswith(b"multipart/")
        limit = self.upload_bytes if multipart else self.json_bytes
        what = "upload" if multipart else "request body"
        message = f"{what} larger than {limit / 1e6:g} MB (server.max_{'upload' if multipart else 'body'}_mb)"
        declared = headers.get(b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > limit:
            return await send_error(send, 413, "payload_too_large", message)
        received, too_large, started = 0, False, False

        async def counted_receive():
            nonlocal received, too_large
            item = await receive()
            if item["type"] == "http.request":
                received += len(item.get("body", b""))
                if received > limit:
                    # The body (streamed without Content-Length) went past the limit: stop reading it.
                    # Raising would reach the route, which may call it a malformed body (400/422);
                    # the app sees the client gone instead, and the response below is the 413.
                    too_large = True
                    raise BodyTooLarge
            return item

        async def tracked_send(item):
            nonlocal started
            if too_large and not started:
                return  # whatever the app says about the cut-off body, the answer is 413
            started = started or item["type"] == "http.response.start"
            await send(item)

        try:
            await self.app(scope, counted_receive, tracked_send)
        except BodyTooLarge:
            pass
        except Exception:
            if not too_large:
                raise
        if too_large and not started:
            await send_error(send, 413, "payload_too_large", message)


class Metrics:
    """Request counts and latencies per endpoint, and the index size, in Prometheus text format."""

    def __init__(self):
        self.registry = CollectorRegistry()
        self.requests = Counter("rag_http_requests", "HTTP requests", ["method", "endpoint", "status"],
                                registry=self.registry)
        self.latency = Histogram("rag_http_request_seconds", "HTTP request latency to the last byte",
                                 ["method", "endpoint"], registry=self.registry,
                                 buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60))
        self.documents = Gauge("rag_index_documents", "documents in the index", registry=self.registry)
        self.chunks = Gauge("rag_index_chunks", "passages (chunks) in the index", registry=self.registry)

    def middleware(self, app):
        async def measured(scope, receive, send):
            if scope["type"] != "http":
                return await app(scope, receive, send)
            started, status = time.perf_counter(), 500

            async def status_send(item):
                nonlocal status
                if item["type"] == "http.response.start":
                    status = item["status"]
                await send(item)

            try:
                await app(scope, receive, status_send)
            finally:
                route = scope.get("route")
                # The route template (/v1/documents/{doc_id}), never the raw path: bounded label values.
                endpoint = getattr(route, "path", "unmatched")
                self.requests.labels(scope["method"], endpoint, str(status)).inc()
                self.latency.labels(scope["method"], endpoint).observe(time.perf_counter() - started)

        return measured
