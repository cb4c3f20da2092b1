"""A real HTTP server on 127.0.0.1 whose responses a test scripts per path: feeds that change between
polls, 304s, errors, slow and gzipped bodies, redirects and article pages. It records every request."""

from __future__ import annotations

import gzip
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


@dataclass
class Route:
    body: bytes = b""
    status: int = 200
    content_type: str = "application/rss+xml; charset=utf-8"
    etag: str = ""
    delay: float = 0.0  # seconds before answering
    gzip: bool = False
    location: str = ""  # for redirects
    headers: dict = field(default_factory=dict)


class FeedServer:
    """`server.routes[path] = Route(...)`; `server.url(path)`; `server.requests` is [(path, headers)]."""

    def __init__(self):
        self.routes: dict[str, Route] = {}
        self.requests: list[tuple[str, dict]] = []
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self):  # noqa: N802 - the stdlib's name
                outer.requests.append((self.path, {k.lower(): v for k, v in self.headers.items()}))
                route = outer.routes.get(self.path)
                if route is None:
                    self.send_response(404)
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                if route.delay:
                    time.sleep(route.delay)
                if route.etag and self.headers.get("If-None-Match") == route.etag:
                    self.send_response(304)
                    self.send_header("ETag", route.etag)
                    self.end_headers()
                    return
                body = gzip.compress(route.body) if route.gzip else route.body
                self.send_response(route.status)
                if route.location:
                    self.send_header("Location", outer.url(route.location))
                self.send_header("Content-Type", route.content_type)
                if route.etag:
                    self.send_header("ETag", route.etag)
                if route.gzip:
                    self.send_header("Content-Encoding", "gzip")
                for name, value in route.headers.items():
                    self.send_header(name, value)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                try:
                    self.wfile.write(body)
                except (BrokenPipeError, ConnectionResetError):  # the client gave up (a timeout test)
                    pass

            def log_message(self, *args):  # quiet
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.port = self.httpd.server_address[1]
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    def paths(self) -> list[str]:
        return [path for path, _ in self.requests]

    def __enter__(self) -> "FeedServer":
        self.thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


def rss(items: list[dict], title: str = "Loopback News") -> bytes:
    """An RSS 2.0 document; an item has guid, title, link, date (RFC 822), and summary and/or content."""
    parts = []
    for item in items:
        content = (f"<content:encoded><![CDATA[{item['content']}]]></content:encoded>" if item.get("content") else "")
        parts.append(
            f"<item><guid>{item['guid']}</guid><title>{item['title']}</title><link>{item.get('link', '')}</link>"
            f"<pubDate>{item['date']}</pubDate><description><![CDATA[{item.get('summary', '')}]]></description>"
            f"{content}</item>")
    return (f'<?xml version="1.0" encoding="UTF-8"?><rss version="2.0" '
            f'xmlns:content="http://purl.org/rss/1.0/modules/content/"><channel><title>{title}</title>'
            f"<link>http://127.0.0.1/</link><description>test</description>{''.join(parts)}</channel></rss>").encode()


def atom(items: list[dict], title: str = "Loopback Atom") -> bytes:
    entries = "".join(
        f"<entry><id>{i['guid']}</id><title>{i['title']}</title><link href=\"{i.get('link', '')}\"/>"
        f"<updated>{i['date']}</updated><content type=\"html\"><![CDATA[{i['content']}]]></content></entry>"
        for i in items)
    return (f'<?xml version="1.0" encoding="utf-8"?><feed xmlns="http://www.w3.org/2005/Atom"><title>{title}</title>'
            f"<id>urn:test:atom</id><updated>2024-05-01T00:00:00Z</updated>{entries}</feed>").encode()


def article_page(title: str, paragraphs: list[str]) -> bytes:
    body = "".join(f"<p>{p}</p>" for p in paragraphs)
    return (f"<html><head><title>{title}</title><meta property=\"og:site_name\" content=\"Loopback Daily\"></head>"
            f"<body><nav>Home | World | Sport</nav><article><h1>{title}</h1>{body}</article>"
            f"<footer>Copyright Loopback Daily</footer></body></html>").encode()
