"""What the strict replicas share: the script of replies, request recording, the HTTP plumbing and SSE writing.

A replica is a `LocalServer` (tests/fakes/server.py) that validates each request the way the real API does and
raises `Rejection` (an HTTP error in the vendor's own body shape) when the real API would refuse it. Accepted
requests get the next step of the calling agent's script, answered in the vendor's wire format.

A script maps an agent name to a list of steps (or to a callable `(ReplicaRequest) -> step`). The agent is
identified as in tests/fakes/scripted_llm.py: the `X-Agent` header, else the request's model if it is a script
key, else the system prompt's opening "You are <name>", else "default". A step is:
  "text"                                                 a text reply
  {"content": "...", "tool_calls": [{"name": "f", "arguments": {...}, "id": "optional"}]}
  {"thinking": "..."}                                    (Anthropic only) a thinking block before the reply
  {"stop": "length"}                                     override the stop/finish reason
  {"status": 529, "headers": {...}, "message": "...", "type": "...", "body": {...}}
                                                         an HTTP error; the body defaults to the vendor's shape
  {"stream_error": "overloaded_error"}                   (Anthropic) an `error` event after message_start
  {"raw": "<not json>"}                                  a broken body with status 200
  {"delay": 0.5, ...}                                    wait before answering
A rejected request consumes no step: the script stays where it was, and the rejection is recorded.
"""

from __future__ import annotations

import json
import re
import socket
import threading
import time
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler
from typing import Any

from tests.fakes.scripted_llm import count_tokens
from tests.fakes.scripts import ScriptedReplies
from tests.fakes.server import LocalServer

Step = str | dict[str, Any]
Responder = Callable[["ReplicaRequest"], Step]
Script = Mapping[str, list[Step] | Responder]

_YOU_ARE = re.compile(r"You are (?:the )?([A-Za-z][A-Za-z0-9_]*)")


class Rejection(Exception):
    """The replica refuses the request: status, the vendor-shaped JSON body and response headers."""

    def __init__(
        self, status: int, body: Any, message: str, headers: Mapping[str, str] | None = None
    ) -> None:
        super().__init__(message)
        self.status = status
        self.body = body
        self.message = message
        self.headers = dict(headers or {})


@dataclass
class ReplicaRequest:
    """One POST the replica received. `rejected` holds the replica's error message when it refused the request."""

    agent: str
    path: str
    body: dict[str, Any]
    headers: dict[str, str]
    prompt_tokens: int
    stream: bool
    status: int = 200
    rejected: str | None = None
    at: float = field(default_factory=time.monotonic)

    @property
    def model(self) -> str:
        return str(self.body.get("model", ""))

    @property
    def messages(self) -> list[dict[str, Any]]:
        messages = self.body.get("messages")
        return messages if isinstance(messages, list) else []

    @property
    def tool_names(self) -> list[str]:
        names = []
        for tool in self.body.get("tools") or []:
            if isinstance(tool, dict):
                names.append(str((tool.get("function") or {}).get("name") or tool.get("name") or ""))
        return names


def content_text(content: Any) -> str:
    """The text of an OpenAI or Anthropic content value (a string or a list of parts/blocks)."""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        parts = []
        for part in content:
            if isinstance(part, dict):
                if isinstance(part.get("text"), str):
                    parts.append(part["text"])
                elif part.get("type") == "tool_result":
                    parts.append(content_text(part.get("content")))
        return " ".join(parts)
    return ""


def agent_from_system(system: str) -> str | None:
    m = _YOU_ARE.search(system)
    return m.group(1) if m else None


def normalise_calls(spec: dict[str, Any], id_prefix: str) -> list[dict[str, Any]]:
    """Scripted tool calls as [{"id", "name", "arguments" (JSON text)}]."""
    calls = []
    for call in spec.get("tool_calls") or []:
        args = call.get("arguments", {})
        calls.append(
            {
                "id": call.get("id") or f"{id_prefix}{uuid.uuid4().hex[:24]}",
                "name": call["name"],
                "arguments": args if isinstance(args, str) else json.dumps(args),
            }
        )
    return calls


def text_pieces(text: str) -> list[str]:
    """Split text the way a token stream arrives: a word with its leading space per delta."""
    return re.findall(r"\s*\S+\s*$|\s*\S+", text) or [text]


def describe_rejection(exc: BaseException) -> str:
    """The message a replica (or the real API) put in an SDK exception, for tests asserting "the replica said X".

    Works for `openai.APIStatusError` (body = the `error` object, or Gemini's list), `anthropic.APIStatusError`
    (body = the whole `{"type": "error", "error": {...}}`) and `Rejection`."""
    if isinstance(exc, Rejection):
        return exc.message
    body = getattr(exc, "body", None)
    if isinstance(body, list) and body:
        body = body[0]
    if isinstance(body, dict):
        inner = body.get("error", body)
        if isinstance(inner, dict) and isinstance(inner.get("message"), str):
            return inner["message"]
        if isinstance(inner, str):
            return inner
    return str(getattr(exc, "message", "") or exc)


class ReplicaServer(ScriptedReplies, LocalServer):
    """The shared machinery; subclasses implement `handle_get`, `handle_post` and `malformed_body`."""

    #: the prefix of every route (e.g. "/v1"); `url` includes it, as the SDKs' base_url expects
    base_path = ""

    def __init__(
        self,
        script: Script | None = None,
        *,
        identify: Callable[[dict[str, Any], dict[str, str]], str] | None = None,
        token_delay: float = 0.0,
        host: str = "127.0.0.1",
        port: int = 0,
    ) -> None:
        self.script: dict[str, list[Step] | Responder] = dict(script or {})
        self.identify = identify or self._identify
        self.token_delay = token_delay
        self.requests: list[ReplicaRequest] = []
        self._cursor: dict[str, int] = {}
        self._lock = threading.Lock()
        super().__init__(self._handler(), host=host, port=port)

    @property
    def url(self) -> str:
        return super().url + self.base_path

    # --- recording -----------------------------------------------------------------------------------
    @property
    def accepted(self) -> list[ReplicaRequest]:
        return [r for r in self.requests if r.rejected is None]

    @property
    def rejections(self) -> list[ReplicaRequest]:
        return [r for r in self.requests if r.rejected is not None]

    def assert_clean(self) -> None:
        """Fail (with every message) if the replica refused any request: the real API would have refused it too."""
        bad = [f"{r.status} {r.agent} {r.model}: {r.rejected}" for r in self.rejections]
        assert not bad, "the replica rejected requests the real API would reject:\n" + "\n".join(bad)

    # --- scripting -----------------------------------------------------------------------------------
    def system_text(self, body: dict[str, Any]) -> str:
        """The system prompt as this API carries it (overridden by Anthropic's top-level `system`)."""
        for m in body.get("messages") or []:
            if isinstance(m, dict) and m.get("role") in ("system", "developer"):
                return content_text(m.get("content"))
        return ""

    def _identify(self, body: dict[str, Any], headers: dict[str, str]) -> str:
        if (name := headers.get("x-agent")) and name in self.script:
            return name
        if isinstance(body.get("model"), str) and body["model"] in self.script:
            return str(body["model"])
        return agent_from_system(self.system_text(body)) or "default"

    def record(self, req: ReplicaRequest) -> None:
        with self._lock:
            self.requests.append(req)

    # --- to implement ----------------------------------------------------------------------------------
    def handle_get(self, h: ReplicaHandler, path: str) -> None:
        raise NotImplementedError

    def handle_post(self, h: ReplicaHandler, path: str, body: dict[str, Any]) -> None:
        raise NotImplementedError

    def malformed_body(self, detail: str) -> Rejection:
        raise NotImplementedError

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        server = self

        class Handler(ReplicaHandler):
            def do_GET(self) -> None:
                self._dispatch(lambda path: server.handle_get(self, path))

            def do_POST(self) -> None:
                def post(path: str) -> None:
                    length = int(self.headers.get("Content-Length") or 0)
                    raw = self.rfile.read(length) if length else b""
                    try:
                        body = json.loads(raw or b"null")
                    except json.JSONDecodeError as e:
                        raise server.malformed_body(str(e)) from None
                    if not isinstance(body, dict):
                        raise server.malformed_body("the request body must be a JSON object")
                    server.handle_post(self, path, body)

                self._dispatch(post)

        return Handler


class ReplicaHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *args: Any) -> None:
        pass

    def setup(self) -> None:
        super().setup()
        # Small SSE writes + Nagle + delayed ACKs would add ~40 ms stalls per event.
        self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    @property
    def lower_headers(self) -> dict[str, str]:
        return {k.lower(): v for k, v in self.headers.items()}

    def _dispatch(self, fn: Callable[[str], None]) -> None:
        path = self.path.split("?", 1)[0].rstrip("/")
        try:
            fn(path)
        except Rejection as r:
            self.send_json(r.status, r.body, r.headers)
        except (BrokenPipeError, ConnectionResetError):
            pass  # the client went away (a cancelled run)

    def send_json(self, status: int, payload: Any, headers: Mapping[str, str] | None = None) -> None:
        data = json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        for k, v in (headers or {}).items():
            self.send_header(k, v)
        self.end_headers()
        self.wfile.write(data)

    def send_raw(self, status: int, data: str) -> None:
        encoded = data.encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(encoded)))
        self.end_headers()
        self.wfile.write(encoded)

    def start_sse(self, headers: Mapping[str, str] | None = None) -> None:
        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream; charset=utf-8")
        self.send_header("Cache-Control", "no-cache")
        self.send_header("Connection", "close")
        for k, v in (headers or {}).items():
            self.send_header(k, v)
        self.end_headers()
        self.close_connection = True

    def sse(self, data: Any, event: str | None = None) -> None:
        """One server-sent event: an optional `event:` line, a `data:` line (JSON unless a str), a blank line."""
        text = data if isinstance(data, str) else json.dumps(data, separators=(",", ":"))
        frame = (f"event: {event}\n" if event else "") + f"data: {text}\n\n"
        self.wfile.write(frame.encode())
        self.wfile.flush()


def prompt_tokens_of(body: dict[str, Any], extra: str = "") -> int:
    """A deterministic token count of what the model would read (messages, system, tool schemas)."""
    parts = [extra]
    for m in body.get("messages") or []:
        if isinstance(m, dict):
            parts.append(content_text(m.get("content")))
            for call in m.get("tool_calls") or []:
                if isinstance(call, dict):
                    parts.append(json.dumps(call.get("function", {})))
            if isinstance(m.get("content"), list):
                for block in m["content"]:
                    if isinstance(block, dict) and block.get("type") == "tool_use":
                        parts.append(json.dumps(block.get("input", {})))
    if body.get("tools"):
        parts.append(json.dumps(body["tools"]))
    return count_tokens("\n".join(parts))


def step_spec(step: Step) -> dict[str, Any]:
    spec: dict[str, Any] = {"content": step} if isinstance(step, str) else dict(step)
    if spec.get("delay"):
        time.sleep(float(spec["delay"]))
    return spec
