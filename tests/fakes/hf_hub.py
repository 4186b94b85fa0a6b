"""A fake Hugging Face Hub on 127.0.0.1: gated dataset file downloads and `whoami`, in the Hub's formats.

Point `huggingface_hub` at it with `endpoint=hub.url` (our settings pass HF_ENDPOINT through explicitly).
Every request is recorded, so tests can prove which files were (never) asked for.
"""

from __future__ import annotations

import hashlib
import json
import re
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler
from typing import Any

from tests.fakes.server import LocalServer

COMMIT = "0123456789abcdef0123456789abcdef01234567"
_RESOLVE = re.compile(r"^/(?P<kind>datasets|spaces|models)?/?(?P<repo>[^/]+/[^/]+)/resolve/(?P<rev>[^/]+)/(?P<path>.+)$")


@dataclass
class HubRequest:
    method: str
    path: str
    token: str | None


@dataclass
class FakeHub(LocalServer):
    files: dict[tuple[str, str], bytes] = field(default_factory=dict)  # (repo_id, path) -> content
    tokens: dict[str, str] = field(default_factory=dict)  # token -> username
    gated: bool = True  # gated repos answer 401 without a valid token, as gaia-benchmark/GAIA does
    requests: list[HubRequest] = field(default_factory=list)

    def __post_init__(self) -> None:
        self._lock = threading.Lock()
        LocalServer.__init__(self, self._handler())

    def add_file(self, repo_id: str, path: str, content: bytes) -> None:
        self.files[(repo_id, path)] = content

    def paths_requested(self) -> list[str]:
        return [r.path for r in self.requests]

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        hub = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: Any) -> None:
                pass

            def _token(self) -> str | None:
                auth = self.headers.get("Authorization", "")
                return auth[7:] if auth.startswith("Bearer ") else None

            def _send(self, status: int, body: bytes, headers: dict[str, str], head_only: bool = False) -> None:
                self.send_response(status)
                for k, v in headers.items():
                    self.send_header(k, v)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                if not head_only:
                    self.wfile.write(body)

            def _error(self, status: int, code: str, message: str, head_only: bool) -> None:
                body = json.dumps({"error": message}).encode()
                self._send(status, body, {"Content-Type": "application/json", "X-Error-Code": code, "X-Error-Message": message}, head_only)

            def _handle(self, head_only: bool) -> None:
                token = self._token()
                path = self.path.split("?")[0]
                with hub._lock:
                    hub.requests.append(HubRequest(self.command, path, token))
                if path == "/api/whoami-v2":
                    user = hub.tokens.get(token or "")
                    if user is None:
                        self._error(401, "Unauthorized", "Invalid user token.", head_only)
                        return
                    body = json.dumps(
                        {"type": "user", "name": user, "fullname": user.title(), "orgs": [], "auth": {"type": "access_token"}}
                    ).encode()
                    self._send(200, body, {"Content-Type": "application/json"}, head_only)
                    return
                m = _RESOLVE.match(path)
                if not m:
                    self._error(404, "RepoNotFound", f"no route {path}", head_only)
                    return
                if hub.gated and token not in hub.tokens:
                    self._error(401, "GatedRepo", "Access to this dataset is restricted. You must be authenticated.", head_only)
                    return
                content = hub.files.get((m.group("repo"), m.group("path")))
                if content is None:
                    self._error(404, "EntryNotFound", f"{m.group('path')} does not exist", head_only)
                    return
                etag = hashlib.sha256(content).hexdigest()
                headers = {
                    "Content-Type": "application/octet-stream",
                    "ETag": f'"{etag}"',
                    "X-Repo-Commit": COMMIT,
                    "Accept-Ranges": "bytes",
                }
                self._send(200, content, headers, head_only)

            def do_HEAD(self) -> None:
                self._handle(head_only=True)

            def do_GET(self) -> None:
                self._handle(head_only=False)

        return Handler
