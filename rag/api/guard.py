"""What both servers (the API and the chat UI) check before a request reaches a route.

- Host: only the names the server is meant to be reached by (loopback names by default, plus
  `server.allowed_hosts`), so a DNS-rebinding page cannot talk to it as "its own" site (Starlette's
  TrustedHostMiddleware; 400 otherwise).
- Cross-site writes: a request that changes state (any method but GET/HEAD/OPTIONS) coming from a
  browser on another site is refused (403): its `Sec-Fetch-Site` says cross-site, or its `Origin` is
  neither the server's own nor one of `server.cors_origins`. Clients that are not browsers send
  neither header and are unaffected; the API key still applies to them.
- CORS headers only for `server.cors_origins` (none by default).
"""

from __future__ import annotations

import json
from urllib.parse import urlparse

from starlette.middleware.cors import CORSMiddleware
from starlette.middleware.trustedhost import TrustedHostMiddleware

from rag.config import ServerSettings

LOOPBACK_HOSTS = ["127.0.0.1", "localhost", "::1", "[::1]"]
SAFE_METHODS = {"GET", "HEAD", "OPTIONS"}


def safe_url(url: str) -> str | None:
    """The URL if it is a plain web link, else None (javascript:, data:, relative paths...)."""
    parsed = urlparse((url or "").strip())
    return url.strip() if parsed.scheme in ("http", "https") and parsed.netloc else None


def allowed_hosts(settings: ServerSettings, bind_host: str = "") -> list[str]:
    """Loopback names, the configured ones, and the address the server is bound to (unless a wildcard)."""
    hosts = LOOPBACK_HOSTS + [h.strip() for h in settings.allowed_hosts.split(",") if h.strip()]
    if bind_host and bind_host not in ("0.0.0.0", "::", ""):
        hosts.append(bind_host)
    return list(dict.fromkeys(hosts))


def cors_origins(settings: ServerSettings) -> list[str]:
    return [o.strip().rstrip("/") for o in settings.cors_origins.split(",") if o.strip()]


class SameOriginWrites:
    """403 for a state-changing request a browser sends from another site (see the module docstring)."""

    def __init__(self, app, trusted_origins: list[str]):
        self.app, self.trusted = app, set(trusted_origins)

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http" or scope["method"] in SAFE_METHODS:
            return await self.app(scope, receive, send)
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope["headers"]}
        origin = headers.get("origin", "").rstrip("/")
        fetch_site = headers.get("sec-fetch-site", "")
        if origin and origin != "null" and origin in self.trusted:
            return await self.app(scope, receive, send)
        same_origin = bool(origin) and urlparse(origin).netloc == headers.get("host", "")
        if fetch_site in ("cross-site", "same-site") or (origin and not same_origin):
            body = json.dumps({"error": {"type": "forbidden", "message":
                                         "cross-site request refused: this server accepts writes only from its own pages "
                                         "(or from server.cors_origins)"}}).encode()
            await send({"type": "http.response.start", "status": 403,
                        "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]})
            await send({"type": "http.response.body", "body": body})
            return
        return await self.app(scope, receive, send)


def guard(app, settings: ServerSettings, bind_host: str = "") -> None:
    """Add the Host, cross-site and CORS checks to a Starlette/FastAPI app (outermost first)."""
    origins = cors_origins(settings)
    if origins:
        app.add_middleware(CORSMiddleware, allow_origins=origins, allow_methods=["*"], allow_headers=["*"])
    app.add_middleware(SameOriginWrites, trusted_origins=origins)
    app.add_middleware(TrustedHostMiddleware, allowed_hosts=allowed_hosts(settings, bind_host))
