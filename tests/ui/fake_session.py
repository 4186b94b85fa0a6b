"""Run UI code without a browser: a Chainlit context whose websocket session records every emitted event.

What Chainlit would send to the page (new_message, stream_start, stream_token, update_message, element,
chat_settings, ...) is kept in order, and `steps()` folds it into the latest state of each step.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any
from unittest.mock import AsyncMock, Mock

from chainlit.context import ChainlitContext, context_var
from chainlit.session import WebsocketSession
from chainlit.user_session import user_sessions


@dataclass
class Recorder:
    session: Any
    events: list[tuple[str, Any]] = field(default_factory=list)
    files: list[dict[str, Any]] = field(default_factory=list)  # what elements stored (a task list's JSON...)

    async def emit(self, event: str, data: Any = None) -> None:
        self.events.append((event, data))

    async def persist_file(self, name: str, mime: str, path: str | None = None, content: Any = None) -> dict[str, Any]:
        record = {"id": f"file-{len(self.files)}", "name": name, "mime": mime, "path": path, "content": content}
        self.files.append(record)
        return record

    def named(self, event: str) -> list[Any]:
        return [d for e, d in self.events if e == event]

    def steps(self) -> dict[str, dict[str, Any]]:
        """id -> the step as the page would show it at the end (created, streamed, updated)."""
        out: dict[str, dict[str, Any]] = {}
        for event, data in self.events:
            if event in ("new_message", "update_message", "stream_start"):
                merged = {**out.get(data["id"], {}), **data}
                out[data["id"]] = merged
            elif event == "stream_token":
                step = out.setdefault(data["id"], {"output": ""})
                step["output"] = (data["token"] if data.get("isSequence") else step.get("output", "") + data["token"])
        return out

    def messages(self) -> list[dict[str, Any]]:
        return [s for s in self.steps().values() if s.get("type") == "assistant_message"]

    def texts(self) -> str:
        return "\n".join(str(s.get("output", "")) for s in self.messages())


@contextmanager
def chainlit_session(user: Any = None) -> Iterator[Recorder]:
    session = Mock(spec=WebsocketSession)
    session.id = f"test-session-{id(session)}"
    session.thread_id = "test-thread"
    session.user_env = {}
    session.chat_settings = {}
    session.user = user
    session.chat_profile = None
    session.client_type = "webapp"
    session.has_first_interaction = True
    session.files = {}
    session.current_task = None
    recorder = Recorder(session)
    session.emit = AsyncMock(side_effect=recorder.emit)
    session.emit_call = AsyncMock(return_value=None)
    session.persist_file = AsyncMock(side_effect=recorder.persist_file)
    token = context_var.set(ChainlitContext(session))
    try:
        yield recorder
    finally:
        context_var.reset(token)
        user_sessions.pop(session.id, None)
