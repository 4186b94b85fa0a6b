"""What crosses from the driver to a worker for one question-attempt: plain data only (no settings, no token)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass
class Job:
    key: str  # "<run dir>::<task id>": unique across a sweep's run dirs
    task: dict[str, Any]  # evaluation.api.TaskItem.to_dict()
    config: dict[str, Any]  # the run dir's team config, as run.json records it
    timeout_s: float
    attempt: int  # the record's `attempt`: how many times this question has run in its run dir
    guard_s: float  # after this long the question is abandoned as hung (evaluation.solve.guard_seconds)
    allow_loopback: bool = False
    attachment: bytes | None = None  # the question's file, fetched by the driver: workers need no HF token
