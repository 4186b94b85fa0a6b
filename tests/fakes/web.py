"""A small local HTTP server for tool tests: routes return real-shaped answers, faults on demand.

`FakeWeb` serves whatever `routes` says: a path (or "METHOD path") maps to a `Reply` or to a callable
`(Request) -> Reply`. Replies can be delayed (for timeouts), redirect anywhere (for SSRF checks), stream a
body larger than any cap, or be plain 5xx pages. Every request is recorded. The service replicas in this
package (MediaWiki, search APIs, YouTube, OpenAI audio, Wayback) are FakeWeb subclasses.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

from tests.fakes.server import LocalServer


@dataclass
class Request:
    method: str
    path: str
    query: dict[str, list[str]]
    headers: dict[str, str]  # lower-case names
    body: bytes

    def param(self, name: str, default: str | None = None) -> str | None:
        values = self.query.get(name)
        return values[0] if values else default

    def json(self) -> Any:
        return json.loads(self.body or b"null")

    def form(self) -> dict[str, list[str]]:
        return parse_qs(self.body.decode("utf-8", errors="replace"))


@dataclass
class Reply:
    status: int = 200
    body: bytes | str | dict[str, Any] | list[Any] = b""
    content_type: str | None = None
    headers: dict[str, str] = field(default_factory=dict)
    delay: float = 0.0  # seconds before the status line
    stream_bytes: int = 0  # instead of `body`: this many bytes, chunked, with no Content-Length

    def encoded(self) -> tuple[bytes, str]:
        if isinstance(self.body, (dict, list)):
            return json.dumps(self.body).encode(), self.content_type or "application/json"
        if isinstance(self.body, str):
            return self.body.encode("utf-8"), self.content_type or "text/html; charset=utf-8"
        return self.body, self.content_type or "application/octet-stream"


def redirect(location: str, status: int = 302) -> Reply:
    return Reply(status, b"", headers={"Location": location})


Route = Reply | Callable[[Request], Reply]


class _QuietServer(ThreadingHTTPServer):
    def handle_error(self, request: Any, client_address: Any) -> None:
        # A client that hung up (a timeout or a size cap under test) is expected; anything else is printed.
        import sys

        if not isinstance(sys.exc_info()[1], (ConnectionResetError, BrokenPipeError)):
            super().handle_error(request, client_address)


class FakeWeb(LocalServer):
    def __init__(self, routes: dict[str, Route] | None = None) -> None:
        self.routes: dict[str, Route] = dict(routes or {})
        self.requests: list[Request] = []
        self._lock = threading.Lock()
        super().__init__(self._handler(), server_class=_QuietServer)

    def paths(self) -> list[str]:
        return [r.path for r in self.requests]

    def handle(self, request: Request) -> Reply:
        """Route a request; subclasses replicating a service override this (and may call super)."""
        route = self.routes.get(f"{request.method} {request.path}", self.routes.get(request.path))
        if route is None:
            return Reply(404, "<html><body>Not Found</body></html>")
        return route(request) if callable(route) else route

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        fake = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: Any) -> None:
                pass

            def _serve(self) -> None:
                parts = urlsplit(self.path)
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                request = Request(
                    self.command,
                    parts.path,
                    parse_qs(parts.query, keep_blank_values=True),
                    {k.lower(): v for k, v in self.headers.items()},
                    body,
                )
                with fake._lock:
                    fake.requests.append(request)
                try:
                    reply = fake.handle(request)
                except Exception as exc:  # a bug in a fake must show up as a 500, not a hung test
                    reply = Reply(500, f"fake server error: {type(exc).__name__}: {exc}", "text/plain")
                if reply.delay:
                    time.sleep(reply.delay)
                try:
                    self._write(reply)
                except (BrokenPipeError, ConnectionResetError):
                    pass  # the client gave up (a timeout or a size cap): that is the point of the test

            def _write(self, reply: Reply) -> None:
                self.send_response(reply.status)
                for k, v in reply.headers.items():
                    self.send_header(k, v)
                if reply.stream_bytes:
                    self.send_header("Content-Type", reply.content_type or "text/html; charset=utf-8")
                    self.send_header("Transfer-Encoding", "chunked")
                    self.end_headers()
                    chunk = b"<p>" + b"x" * 65_530 + b"</p>"
                    sent = 0
                    while sent < reply.stream_bytes:
                        self.wfile.write(f"{len(chunk):x}\r\n".encode() + chunk + b"\r\n")
                        sent += len(chunk)
                    self.wfile.write(b"0\r\n\r\n")
                    return
                data, kind = reply.encoded()
                if "Content-Type" not in reply.headers:
                    self.send_header("Content-Type", kind)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                if self.command != "HEAD":
                    self.wfile.write(data)

            do_GET = do_POST = do_HEAD = _serve

        return Handler
