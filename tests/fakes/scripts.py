"""Scripted replies per agent, shared by the lax scripted server and the strict API replicas.

`script` maps an agent to its replies in order, or to a callable that answers each request; "default" serves
any agent without a script of its own. `requests` holds what was asked, each with its `agent`.
"""

from __future__ import annotations

import threading
from typing import Any


class ScriptedReplies:
    script: dict[str, Any]
    requests: list[Any]
    _cursor: dict[str, int]
    _lock: threading.Lock

    def requests_for(self, agent: str) -> list[Any]:
        return [r for r in self.requests if r.agent == agent]

    def remaining(self, agent: str) -> int:
        steps = self.script.get(agent)
        if not isinstance(steps, list):
            return 0
        return len(steps) - self._cursor.get(agent, 0)

    def next_step(self, req: Any) -> Any | None:
        """The next reply for `req.agent` (its own script, else "default"); None when the script is used up."""
        key = req.agent if req.agent in self.script else "default"
        steps = self.script.get(key)
        if steps is None:
            return None
        if callable(steps):
            return steps(req)
        with self._lock:
            i = self._cursor.get(key, 0)
            if i >= len(steps):
                return None
            self._cursor[key] = i + 1
        return steps[i]
