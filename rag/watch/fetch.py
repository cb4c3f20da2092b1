"""Bounded HTTP GETs for feeds and article pages: conditional, size-capped, time-capped, identified.

A feed is fetched with If-None-Match / If-Modified-Since from its last poll, so an unchanged feed
costs one 304. The body is read as a stream (decompressed by httpx when the server gzips it) and
abandoned once it passes the size cap, so a small compressed body cannot expand into memory; the
whole fetch, redirects included, has one deadline.

Article links come from feed content, which is untrusted: they are fetched only over http(s), and a
link whose host resolves to a private, loopback or link-local address is refused unless the feed
itself is on such an address (a public feed must not make this server call its own network).
"""

from __future__ import annotations

import ipaddress
import socket
import time
from dataclasses import dataclass
from email.utils import parsedate_to_datetime
from urllib.parse import urlparse

from rag.errors import ErrorKind, RagError

MAX_REDIRECTS = 5


class FetchError(RagError):
    """A source could not be fetched: network error, HTTP error status, too large, too slow, refused."""

    kind = ErrorKind.UNAVAILABLE

    def __init__(self, message: str, retry_after: float | None = None):
        super().__init__(message)
        self.retry_after = retry_after


@dataclass
class Fetched:
    """A fetched body (status 200), or an unchanged resource (status 304, empty body)."""

    status: int
    url: str  # after redirects
    body: bytes = b""
    etag: str = ""
    last_modified: str = ""
    content_type: str = ""


def is_private(url: str) -> bool:
    """Whether the URL's host is (or resolves to) a loopback, private, link-local or reserved address."""
    host = urlparse(url).hostname or ""
    if host in ("localhost", "") or host.endswith(".localhost"):
        return True
    try:
        addresses = {info[4][0] for info in socket.getaddrinfo(host, None)}
    except (socket.gaierror, UnicodeError):
        return False  # unresolvable: the fetch itself will fail
    for address in addresses:
        ip = ipaddress.ip_address(address.split("%")[0])
        if ip.is_private or ip.is_loopback or ip.is_link_local or ip.is_reserved or ip.is_multicast or ip.is_unspecified:
            return True
    return False


class Fetcher:
    """GETs with the watch settings' timeout, size caps and User-Agent."""

    def __init__(self, timeout_seconds: float, user_agent: str):
        self.timeout_seconds = timeout_seconds
        self.user_agent = user_agent

    def get(self, url: str, max_bytes: int, etag: str = "", last_modified: str = "",
            allow_private: bool = True, accept: str = "*/*") -> Fetched:
        """Fetch `url`; raises FetchError with a one-line reason."""
        import httpx

        if urlparse(url).scheme not in ("http", "https"):
            raise FetchError(f"{url}: only http and https URLs are fetched")
        deadline = time.monotonic() + self.timeout_seconds
        headers = {"User-Agent": self.user_agent, "Accept": accept, "Accept-Encoding": "gzip, deflate"}
        if etag:
            headers["If-None-Match"] = etag
        if last_modified:
            headers["If-Modified-Since"] = last_modified

        def check_host(request: httpx.Request) -> None:  # every hop, redirects included
            if not allow_private and is_private(str(request.url)):
                raise FetchError(f"{request.url}: refused, the address is private or loopback")

        try:
            with httpx.Client(follow_redirects=True, max_redirects=MAX_REDIRECTS, timeout=self.timeout_seconds,
                              headers=headers, event_hooks={"request": [check_host]}, trust_env=False) as client:
                with client.stream("GET", url) as response:
                    if response.status_code == 304:
                        return Fetched(304, str(response.url), etag=etag, last_modified=last_modified)
                    if response.status_code >= 400:
                        raise FetchError(f"{url}: HTTP {response.status_code} {response.reason_phrase}",
                                         retry_after=_retry_after(response.headers.get("Retry-After")))
                    declared = response.headers.get("Content-Length", "")
                    if declared.isdigit() and int(declared) > max_bytes and "content-encoding" not in response.headers:
                        raise FetchError(f"{url}: {int(declared):,} bytes, over the {max_bytes:,}-byte limit")
                    parts, size = [], 0
                    for block in response.iter_bytes():
                        size += len(block)
                        if size > max_bytes:
                            raise FetchError(f"{url}: more than {max_bytes:,} bytes (after decompression)")
                        if time.monotonic() > deadline:
                            raise FetchError(f"{url}: took longer than {self.timeout_seconds:g} s")
                        parts.append(block)
                    return Fetched(200, str(response.url), b"".join(parts), response.headers.get("ETag", ""),
                                   response.headers.get("Last-Modified", ""), response.headers.get("Content-Type", ""))
        except httpx.TooManyRedirects:
            raise FetchError(f"{url}: more than {MAX_REDIRECTS} redirects") from None
        except httpx.TimeoutException:
            raise FetchError(f"{url}: no response within {self.timeout_seconds:g} s") from None
        except httpx.HTTPError as exc:
            raise FetchError(f"{url}: {type(exc).__name__}: {exc}") from None


def _retry_after(value: str | None) -> float | None:
    """Seconds from a Retry-After header (seconds or an HTTP date)."""
    if not value:
        return None
    if value.strip().isdigit():
        return float(value.strip())
    try:
        return max(0.0, parsedate_to_datetime(value).timestamp() - time.time())
    except (TypeError, ValueError):
        return None
