"""A local fake of Hugging Face's OAuth/OpenID endpoints: authorize, token, userinfo, discovery.

Behaves like huggingface.co for the authorization-code flow a Space with `hf_oauth: true` uses:
`GET /oauth/authorize` redirects straight back with a one-time `code` (the user "consents" at once),
`POST /oauth/token` requires HTTP Basic `client_id:client_secret` and the same `redirect_uri`, and
`GET /oauth/userinfo` answers the OpenID claims HF returns for a Bearer access token. Every request is
recorded so tests can check what the app sent (and that the access token went nowhere else).

CLI: `python -m tests.fakes.hf_oauth [--user alice] [--client-id ID --client-secret S]` prints its URL,
for OPENID_PROVIDER_URL.
"""

from __future__ import annotations

import argparse
import base64
import json
import secrets
import sys
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

from tests.fakes.server import LocalServer


@dataclass
class OAuthRequest:
    method: str
    path: str
    query: dict[str, str]
    form: dict[str, str]
    headers: dict[str, str]
    at: float = field(default_factory=time.monotonic)


@dataclass
class _Grant:
    client_id: str
    redirect_uri: str
    scope: str
    used: bool = False


class FakeHFOAuth(LocalServer):
    def __init__(
        self,
        *,
        client_id: str = "roundtable-test-client",
        client_secret: str = "roundtable-test-secret",
        username: str = "alice",
        fullname: str = "Alice Example",
        host: str = "127.0.0.1",
        port: int = 0,
    ) -> None:
        self.client_id = client_id
        self.client_secret = client_secret
        self.username = username
        self.fullname = fullname
        self.requests: list[OAuthRequest] = []
        self.issued_tokens: list[str] = []
        self._grants: dict[str, _Grant] = {}
        self._tokens: dict[str, str] = {}  # access token -> scope
        self._lock = threading.Lock()
        super().__init__(self._handler(), host=host, port=port)

    def requests_to(self, path: str) -> list[OAuthRequest]:
        return [r for r in self.requests if r.path == path]

    def userinfo(self) -> dict[str, Any]:
        return {
            "sub": "6543210fedcba9876543210f",
            "name": self.fullname,
            "preferred_username": self.username,
            "profile": f"https://huggingface.co/{self.username}",
            "picture": f"https://cdn-avatars.huggingface.co/v1/production/uploads/{self.username}.png",
            "website": "",
            "isPro": False,
            "canPay": False,
            "orgs": [],
        }

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        fake = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: Any) -> None:
                pass

            def _send(self, status: int, payload: Any = None, headers: dict[str, str] | None = None) -> None:
                data = b"" if payload is None else json.dumps(payload).encode()
                self.send_response(status)
                if payload is not None:
                    self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                for k, v in (headers or {}).items():
                    self.send_header(k, v)
                self.end_headers()
                self.wfile.write(data)

            def _record(self, form: dict[str, str]) -> OAuthRequest:
                parts = urlsplit(self.path)
                req = OAuthRequest(
                    method=self.command,
                    path=parts.path,
                    query={k: v[0] for k, v in parse_qs(parts.query).items()},
                    form=form,
                    headers={k.lower(): v for k, v in self.headers.items()},
                )
                with fake._lock:
                    fake.requests.append(req)
                return req

            def do_GET(self) -> None:
                req = self._record({})
                if req.path == "/.well-known/openid-configuration":
                    self._send(
                        200,
                        {
                            "issuer": fake.url,
                            "authorization_endpoint": f"{fake.url}/oauth/authorize",
                            "token_endpoint": f"{fake.url}/oauth/token",
                            "userinfo_endpoint": f"{fake.url}/oauth/userinfo",
                            "scopes_supported": ["openid", "profile", "email"],
                            "response_types_supported": ["code"],
                            "token_endpoint_auth_methods_supported": ["client_secret_basic"],
                        },
                    )
                elif req.path == "/oauth/authorize":
                    self._authorize(req)
                elif req.path == "/oauth/userinfo":
                    self._userinfo(req)
                else:
                    self._send(404, {"error": "not_found"})

            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length).decode("utf-8", "replace")
                form = {k: v[0] for k, v in parse_qs(body).items()}
                req = self._record(form)
                if req.path == "/oauth/token":
                    self._token(req)
                else:
                    self._send(404, {"error": "not_found"})

            def _authorize(self, req: OAuthRequest) -> None:
                q = req.query
                if q.get("client_id") != fake.client_id:
                    self._send(400, {"error": "invalid_client", "error_description": "unknown client_id"})
                    return
                if q.get("response_type") != "code" or not q.get("redirect_uri") or not q.get("state"):
                    self._send(400, {"error": "invalid_request", "error_description": "response_type=code, redirect_uri and state are required"})
                    return
                code = secrets.token_urlsafe(16)
                with fake._lock:
                    fake._grants[code] = _Grant(fake.client_id, q["redirect_uri"], q.get("scope", "openid profile"))
                target = q["redirect_uri"] + ("&" if "?" in q["redirect_uri"] else "?") + urlencode({"code": code, "state": q["state"]})
                self._send(302, None, {"Location": target})

            def _token(self, req: OAuthRequest) -> None:
                auth = req.headers.get("authorization", "")
                expected = "Basic " + base64.b64encode(f"{fake.client_id}:{fake.client_secret}".encode()).decode()
                if auth != expected:
                    self._send(401, {"error": "invalid_client", "error_description": "client authentication failed (HTTP Basic)"})
                    return
                if req.form.get("grant_type") != "authorization_code":
                    self._send(400, {"error": "unsupported_grant_type"})
                    return
                with fake._lock:
                    grant = fake._grants.get(req.form.get("code", ""))
                    if grant is None or grant.used or grant.redirect_uri != req.form.get("redirect_uri"):
                        self._send(400, {"error": "invalid_grant", "error_description": "bad code or redirect_uri"})
                        return
                    grant.used = True
                    token = "hf_oauth_" + secrets.token_urlsafe(24)
                    fake._tokens[token] = grant.scope
                    fake.issued_tokens.append(token)
                self._send(
                    200,
                    {
                        "access_token": token,
                        "token_type": "bearer",
                        "expires_in": 28800,
                        "scope": grant.scope,
                        "id_token": "eyJhbGciOiJub25lIn0.e30.",
                    },
                )

            def _userinfo(self, req: OAuthRequest) -> None:
                auth = req.headers.get("authorization", "")
                token = auth[len("Bearer ") :] if auth.startswith("Bearer ") else ""
                if token not in fake._tokens:
                    self._send(401, {"error": "invalid_token"})
                    return
                self._send(200, fake.userinfo())

        return Handler


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Serve a fake of Hugging Face's OAuth endpoints on localhost.")
    parser.add_argument("--user", default="alice")
    parser.add_argument("--client-id", default="roundtable-test-client")
    parser.add_argument("--client-secret", default="roundtable-test-secret")
    parser.add_argument("--port", type=int, default=0)
    args = parser.parse_args(argv)
    fake = FakeHFOAuth(client_id=args.client_id, client_secret=args.client_secret, username=args.user, port=args.port)
    return fake.serve_until_interrupted()


if __name__ == "__main__":
    sys.exit(main())
