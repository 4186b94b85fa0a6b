"""A scripted OpenAI-compatible chat server: real HTTP, real SSE streaming, real tool calls.

Tests (and the UI/container checks, via `python -m tests.fakes.scripted_llm`) point OPENAI_BASE_URL here.
Replies come from a script keyed by the calling agent, identified by (in order) the `X-Agent` header,
the request's `model` if it is a script key, or the system prompt's opening "You are <name>".
Every request is recorded so tests can assert prompts and count tokens.

A step is a string (the reply text) or a dict:
  {"content": "..."}                                  a text reply
  {"tool_calls": [{"name": "...", "arguments": {...}}], "content": "optional thought"}
  {"status": 429, "headers": {"retry-after": "0"}}    an HTTP error (body: OpenAI's error shape)
  {"raw": "<not json>"}                               a broken body with status 200
  {"delay": 2.0, ...}                                 wait before answering (any step)
A script value may also be a callable `(RecordedRequest) -> step`.
"""

from __future__ import annotations

import argparse
import json
import re
import socket
import sys
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from typing import Any

from tests.fakes.scripts import ScriptedReplies
from tests.fakes.server import LocalServer

Step = str | dict[str, Any]
Responder = Callable[["RecordedRequest"], Step]

_TOKEN = re.compile(r"\w+|[^\w\s]")
_YOU_ARE = re.compile(r"You are (?:the )?([A-Za-z][A-Za-z0-9_]*)")


def count_tokens(text: str) -> int:
    return len(_TOKEN.findall(text))


def _content_text(content: Any) -> str:
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return " ".join(p.get("text", "") for p in content if isinstance(p, dict))
    return ""


def request_text(body: dict[str, Any]) -> str:
    """Everything the model would read: messages, tool calls and tool schemas."""
    parts = []
    for m in body.get("messages", []):
        parts.append(_content_text(m.get("content")))
        for call in m.get("tool_calls") or []:
            parts.append(json.dumps(call.get("function", {})))
    if body.get("tools"):
        parts.append(json.dumps(body["tools"]))
    return "\n".join(parts)


@dataclass
class RecordedRequest:
    agent: str
    body: dict[str, Any]
    headers: dict[str, str]
    prompt_tokens: int
    stream: bool
    at: float = field(default_factory=time.monotonic)

    @property
    def messages(self) -> list[dict[str, Any]]:
        return self.body.get("messages", [])

    @property
    def system(self) -> str:
        return next((_content_text(m["content"]) for m in self.messages if m.get("role") == "system"), "")

    @property
    def last_user(self) -> str:
        return next((_content_text(m["content"]) for m in reversed(self.messages) if m.get("role") == "user"), "")

    @property
    def question(self) -> str:
        return next((_content_text(m["content"]) for m in self.messages if m.get("role") == "user"), "")

    @property
    def tool_names(self) -> list[str]:
        return [t["function"]["name"] for t in self.body.get("tools", [])]


class ScriptedLLM(ScriptedReplies, LocalServer):
    def __init__(
        self,
        script: dict[str, list[Step] | Responder] | None = None,
        *,
        identify: Callable[[dict[str, Any], dict[str, str]], str] | None = None,
        token_delay: float = 0.0,
        host: str = "127.0.0.1",
        port: int = 0,
    ) -> None:
        self.script: dict[str, list[Step] | Responder] = dict(script or {})
        self.identify = identify or self._identify
        self.token_delay = token_delay
        self.requests: list[RecordedRequest] = []
        self._cursor: dict[str, int] = {}
        self._lock = threading.Lock()
        super().__init__(self._handler(), host=host, port=port)

    @property
    def url(self) -> str:
        """The OpenAI-style base URL (with /v1), for OPENAI_BASE_URL."""
        return super().url + "/v1"

    # --- scripting -----------------------------------------------------------------------------------
    def _identify(self, body: dict[str, Any], headers: dict[str, str]) -> str:
        if (name := headers.get("x-agent")) and name in self.script:
            return name
        if body.get("model") in self.script:
            return str(body["model"])
        system = next((_content_text(m["content"]) for m in body.get("messages", []) if m.get("role") == "system"), "")
        if m := _YOU_ARE.search(system):
            return m.group(1)
        return "default"

    # --- HTTP ----------------------------------------------------------------------------------------
    def _handler(self) -> type[BaseHTTPRequestHandler]:
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: Any) -> None:
                pass

            def setup(self) -> None:
                super().setup()
                # Small SSE writes + Nagle + delayed ACKs would add ~40 ms stalls per reply.
                self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

            def _json(self, status: int, payload: Any, headers: dict[str, str] | None = None) -> None:
                data = json.dumps(payload).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                for k, v in (headers or {}).items():
                    self.send_header(k, v)
                self.end_headers()
                self.wfile.write(data)

            def do_GET(self) -> None:
                if self.path.rstrip("/").endswith("/models"):
                    self._json(200, {"object": "list", "data": [{"id": k, "object": "model"} for k in server.script]})
                else:
                    self._json(404, {"error": {"message": f"no route {self.path}"}})

            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                try:
                    body = json.loads(self.rfile.read(length) or b"{}")
                except json.JSONDecodeError:
                    self._json(400, {"error": {"message": "request body is not JSON"}})
                    return
                if not self.path.rstrip("/").endswith("/chat/completions"):
                    self._json(404, {"error": {"message": f"no route {self.path}"}})
                    return
                headers = {k.lower(): v for k, v in self.headers.items()}
                agent = server.identify(body, headers)
                req = RecordedRequest(
                    agent=agent,
                    body=body,
                    headers=headers,
                    prompt_tokens=count_tokens(request_text(body)),
                    stream=bool(body.get("stream")),
                )
                with server._lock:
                    server.requests.append(req)
                step = server.next_step(req)
                if step is None:
                    self._json(
                        400,
                        {"error": {"message": f"script exhausted for agent {agent!r}", "type": "invalid_request_error"}},
                    )
                    return
                server._reply(self, req, step)

        return Handler

    def _reply(self, h: BaseHTTPRequestHandler, req: RecordedRequest, step: Step) -> None:
        spec: dict[str, Any] = {"content": step} if isinstance(step, str) else dict(step)
        if spec.get("delay"):
            time.sleep(float(spec["delay"]))
        if "status" in spec:
            payload = spec.get("body") or {"error": {"message": spec.get("message", "scripted error"), "type": "server_error"}}
            h._json(int(spec["status"]), payload, spec.get("headers"))  # type: ignore[attr-defined]
            return
        if "raw" in spec:
            data = str(spec["raw"]).encode()
            h.send_response(200)
            h.send_header("Content-Type", "application/json")
            h.send_header("Content-Length", str(len(data)))
            h.end_headers()
            h.wfile.write(data)
            return
        content = spec.get("content")
        calls = [
            {
                "id": c.get("id") or f"call_{uuid.uuid4().hex[:10]}",
                "type": "function",
                "function": {
                    "name": c["name"],
                    "arguments": c["arguments"] if isinstance(c.get("arguments"), str) else json.dumps(c.get("arguments", {})),
                },
            }
            for c in spec.get("tool_calls", [])
        ]
        completion_tokens = count_tokens((content or "") + "".join(c["function"]["arguments"] for c in calls)) + len(calls)
        usage = {
            "prompt_tokens": req.prompt_tokens,
            "completion_tokens": completion_tokens,
            "total_tokens": req.prompt_tokens + completion_tokens,
        }
        finish = "tool_calls" if calls else "stop"
        model = req.body.get("model", "scripted")
        if not req.stream:
            message: dict[str, Any] = {"role": "assistant", "content": content}
            if calls:
                message["tool_calls"] = calls
            h._json(  # type: ignore[attr-defined]
                200,
                {
                    "id": f"chatcmpl-{uuid.uuid4().hex[:12]}",
                    "object": "chat.completion",
                    "created": int(time.time()),
                    "model": model,
                    "choices": [{"index": 0, "message": message, "finish_reason": finish, "logprobs": None}],
                    "usage": usage,
                },
            )
            return
        self._stream(h, req, model, content, calls, finish, usage)

    def _stream(
        self,
        h: BaseHTTPRequestHandler,
        req: RecordedRequest,
        model: str,
        content: str | None,
        calls: list[dict[str, Any]],
        finish: str,
        usage: dict[str, int],
    ) -> None:
        cid = f"chatcmpl-{uuid.uuid4().hex[:12]}"
        created = int(time.time())
        h.send_response(200)
        h.send_header("Content-Type", "text/event-stream")
        h.send_header("Cache-Control", "no-cache")
        h.send_header("Connection", "close")
        h.end_headers()

        def send(delta: dict[str, Any] | None, finish_reason: str | None = None, usage_: dict[str, int] | None = None) -> None:
            chunk: dict[str, Any] = {"id": cid, "object": "chat.completion.chunk", "created": created, "model": model}
            chunk["choices"] = [] if delta is None else [{"index": 0, "delta": delta, "finish_reason": finish_reason}]
            if usage_ is not None:
                chunk["usage"] = usage_
            h.wfile.write(b"data: " + json.dumps(chunk).encode() + b"\n\n")
            h.wfile.flush()

        try:
            send({"role": "assistant", "content": ""})
            if content:
                for piece in re.findall(r"\s*\S+", content) or [content]:
                    if self.token_delay:
                        time.sleep(self.token_delay)
                    send({"content": piece})
            for i, call in enumerate(calls):
                send({"tool_calls": [{"index": i, "id": call["id"], "type": "function", "function": {"name": call["function"]["name"], "arguments": ""}}]})
                args = call["function"]["arguments"]
                for j in range(0, len(args), 16):
                    send({"tool_calls": [{"index": i, "function": {"arguments": args[j : j + 16]}}]})
            send({}, finish)
            if (req.body.get("stream_options") or {}).get("include_usage"):
                send(None, usage_=usage)
            h.wfile.write(b"data: [DONE]\n\n")
            h.wfile.flush()
        except (BrokenPipeError, ConnectionResetError):
            pass  # the client went away (a cancelled run); nothing to do
        h.close_connection = True


def _load_script(path: Path) -> dict[str, list[Step]]:
    text = path.read_text(encoding="utf-8")
    if path.suffix in (".yaml", ".yml"):
        import yaml

        return yaml.safe_load(text)
    return json.loads(text)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Serve a scripted OpenAI-compatible chat API on localhost.")
    parser.add_argument("--script", type=Path, required=True, help="JSON or YAML: {agent: [step, ...]}")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--token-delay", type=float, default=0.0, help="seconds between streamed tokens")
    parser.add_argument("--cycle", action="store_true", help="restart each agent's script when it runs out")
    args = parser.parse_args(argv)
    script: dict[str, Any] = _load_script(args.script)
    if args.cycle:
        cycling: dict[str, Any] = {}
        for agent, steps in script.items():
            counter = {"i": 0}

            def responder(_req: RecordedRequest, steps: list[Step] = steps, counter: dict[str, int] = counter) -> Step:
                step = steps[counter["i"] % len(steps)]
                counter["i"] += 1
                return step

            cycling[agent] = responder
        script = cycling
    server = ScriptedLLM(script, token_delay=args.token_delay, host=args.host, port=args.port)
    return server.serve_until_interrupted()


if __name__ == "__main__":
    sys.exit(main())
