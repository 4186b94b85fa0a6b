"""A fake Hub for dataset repos written by `huggingface_hub.CommitScheduler` and read back with
`snapshot_download`: create_repo, preupload (every file "regular", no LFS/Xet), the NDJSON commit endpoint,
repo info, the tree listing and resolve. Files live in memory; every request is recorded with whether it
carried the expected token."""

from __future__ import annotations

import base64
import hashlib
import json
import re
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler
from typing import Any
from urllib.parse import unquote, urlparse

from tests.fakes.server import LocalServer


@dataclass
class Repo:
    private: bool = True
    files: dict[str, bytes] = field(default_factory=dict)
    commits: list[list[str]] = field(default_factory=list)  # paths added per commit

    @property
    def sha(self) -> str:
        return hashlib.sha1(str(len(self.commits)).encode()).hexdigest()


class HubCommits(LocalServer):
    def __init__(self, token: str) -> None:
        self.token = token
        self.repos: dict[str, Repo] = {}
        self.requests: list[tuple[str, str, bool]] = []  # method, path, authorised
        self.lock = threading.Lock()
        super().__init__(self._handler())

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        hub = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:
                pass

            def _send(self, status: int, body: Any, headers: dict[str, str] | None = None, raw: bool = False) -> None:
                data = body if raw else json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/octet-stream" if raw else "application/json")
                self.send_header("Content-Length", str(len(data)))
                for k, v in (headers or {}).items():
                    self.send_header(k, v)
                self.end_headers()
                if self.command != "HEAD":
                    self.wfile.write(data)

            def _authorised(self) -> bool:
                return self.headers.get("Authorization") == f"Bearer {hub.token}"

            def _route(self) -> None:
                path = unquote(urlparse(self.path).path)
                ok = self._authorised()
                hub.requests.append((self.command, path, ok))
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                if not ok:
                    return self._send(401, {"error": "Invalid credentials"}, {"X-Error-Code": "InvalidCredentials"})
                with hub.lock:
                    self._dispatch(path, body)

            def _dispatch(self, path: str, body: bytes) -> None:
                if self.command == "POST" and path == "/api/repos/create":
                    req = json.loads(body)
                    repo_id = f"{req.get('organization') or 'tester'}/{req['name']}" if "/" not in req["name"] else req["name"]
                    if repo_id in hub.repos:
                        return self._send(409, {"error": "already exists", "url": f"{hub.url}/datasets/{repo_id}"})
                    hub.repos[repo_id] = Repo(private=bool(req.get("private")) or req.get("visibility") == "private")
                    return self._send(200, {"url": f"{hub.url}/datasets/{repo_id}", "name": repo_id})
                m = re.fullmatch(r"/api/datasets/([^/]+/[^/]+)/(preupload|commit|revision|tree)/([^/]+)(/.*)?", path)
                if m:
                    repo_id, action = m.group(1), m.group(2)
                    repo = hub.repos.get(repo_id)
                    if repo is None:
                        return self._send(404, {"error": "Repository not found"}, {"X-Error-Code": "RepoNotFound"})
                    if action == "preupload":
                        files = json.loads(body).get("files", [])
                        return self._send(200, {"files": [{"path": f["path"], "uploadMode": "regular", "shouldIgnore": False}
                                                          for f in files]})
                    if action == "commit":
                        added = []
                        for line in body.decode().splitlines():
                            item = json.loads(line)
                            if item.get("key") == "file":
                                value = item["value"]
                                repo.files[value["path"]] = base64.b64decode(value["content"])
                                added.append(value["path"])
                            elif item.get("key") == "deletedFile":
                                repo.files.pop(item["value"]["path"], None)
                        repo.commits.append(added)
                        return self._send(200, {"commitUrl": f"{hub.url}/datasets/{repo_id}/commit/{repo.sha}",
                                                "commitOid": repo.sha, "success": True})
                    if action == "revision":
                        return self._send(200, {"id": repo_id, "sha": repo.sha, "private": repo.private,
                                                "siblings": [{"rfilename": p} for p in sorted(repo.files)]})
                    if action == "tree":
                        return self._send(200, [{"type": "file", "path": p, "size": len(c),
                                                 "oid": hashlib.sha1(c).hexdigest()} for p, c in sorted(repo.files.items())])
                m = re.fullmatch(r"/datasets/([^/]+/[^/]+)/resolve/([^/]+)/(.+)", path)
                if m and self.command in ("GET", "HEAD"):
                    repo = hub.repos.get(m.group(1))
                    if repo is None or m.group(3) not in repo.files:
                        return self._send(404, {"error": "Entry not found"}, {"X-Error-Code": "EntryNotFound"})
                    content = repo.files[m.group(3)]
                    return self._send(200, content, {"X-Repo-Commit": repo.sha, "ETag": f'"{hashlib.sha1(content).hexdigest()}"'},
                                      raw=True)
                self._send(404, {"error": f"no route {self.command} {path}"})

            def do_GET(self) -> None:
                self._route()

            def do_HEAD(self) -> None:
                self._route()

            def do_POST(self) -> None:
                self._route()

        return Handler
