"""Helpers of the feed tests: a loopback HTTP server with per-path handlers and feed documents."""

from __future__ import annotations

import datetime as dt
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from email.utils import format_datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from xml.sax.saxutils import escape

import yaml

FIXTURES = Path(__file__).parent / "fixtures"

Handler = Callable[[BaseHTTPRequestHandler], None]


def send(
    request: BaseHTTPRequestHandler,
    body: bytes,
    status: int = 200,
    headers: dict[str, str] | None = None,
) -> None:
    # No automatic Server/Date headers: tests that need a Date give it.
    request.send_response_only(status)
    sent = {key.lower() for key in (headers or {})}
    for key, value in (headers or {}).items():
        request.send_header(key, value)
    if "content-type" not in sent:
        request.send_header("Content-Type", "application/rss+xml; charset=utf-8")
    request.send_header("Content-Length", str(len(body)))
    request.end_headers()
    if request.command != "HEAD":
        request.wfile.write(body)


class _QuietServer(ThreadingHTTPServer):
    def handle_error(self, request: Any, client_address: Any) -> None:
        return  # clients that hang up early are what several guard tests do on purpose


@dataclass
class Seen:
    path: str
    headers: dict[str, str]
    host: str


@dataclass
class LoopbackServer:
    """Serves ``routes[path](request)``; unknown paths are 404. Records every request it gets."""

    host: str = "127.0.0.1"
    routes: dict[str, Handler] = field(default_factory=dict)
    requests: list[Seen] = field(default_factory=list)
    _server: ThreadingHTTPServer | None = None

    @property
    def base(self) -> str:
        assert self._server is not None
        return f"http://{self.host}:{self._server.server_address[1]}"

    def url(self, path: str) -> str:
        return self.base + path

    def route(self, path: str, handler: Handler) -> str:
        self.routes[path] = handler
        return self.url(path)

    def serve(self, path: str, body: bytes, status: int = 200, headers: dict[str, str] | None = None) -> str:
        return self.route(path, lambda request: send(request, body, status, headers))

    def hits(self, path: str) -> int:
        return sum(1 for seen in self.requests if seen.path == path)

    def start(self) -> None:
        owner = self

        class _Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_GET(self) -> None:  # noqa: N802 (http.server's naming)
                owner.requests.append(Seen(self.path, dict(self.headers.items()), owner.host))
                handler = owner.routes.get(self.path.split("?")[0])
                if handler is None:
                    send(self, b"not found", 404, {"Content-Type": "text/plain"})
                    return
                try:
                    handler(self)
                except (BrokenPipeError, ConnectionResetError):
                    pass  # the client gave up, as the guard tests intend

            def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
                return

        server = _QuietServer((self.host, 0), _Handler)
        server.daemon_threads = True
        self._server = server
        threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()


@dataclass(frozen=True)
class Item:
    title: str
    link: str | None
    guid: str | None = None
    published: dt.datetime | None = None
    description: str = ""


def rss(items: list[Item], title: str = "Test feed") -> bytes:
    """An RSS 2.0 document of ``items`` (UTF-8)."""
    parts = []
    for item in items:
        fields = [f"<title>{escape(item.title)}</title>"]
        if item.link is not None:
            fields.append(f"<link>{escape(item.link)}</link>")
        if item.guid is not None:
            fields.append(f'<guid isPermaLink="false">{escape(item.guid)}</guid>')
        if item.published is not None:
            fields.append(f"<pubDate>{format_datetime(item.published)}</pubDate>")
        if item.description:
            fields.append(f"<description>{escape(item.description)}</description>")
        parts.append("<item>" + "".join(fields) + "</item>")
    return (
        '<?xml version="1.0" encoding="utf-8"?><rss version="2.0"><channel>'
        f"<title>{escape(title)}</title><link>https://example.test/</link>{''.join(parts)}"
        "</channel></rss>"
    ).encode()


def write_feeds_file(path: Path, feeds: list[dict[str, Any]], groups: dict[str, Any] | None = None) -> Path:
    document = {
        "groups": groups or {"test": {"schedule": "*/10 * * * *", "description": "tests"}},
        "feeds": [
            {"name": feed["id"], "country": "RS", "languages": ["sr"], "group": "test", **feed}
            for feed in feeds
        ],
    }
    path.write_text(yaml.safe_dump(document, allow_unicode=True, sort_keys=False), encoding="utf-8")
    return path


def crash_worker(*args: object) -> None:
    """A task target that kills the isolated worker process (run there via PYTHONPATH)."""
    import os

    os._exit(3)
