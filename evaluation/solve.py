"""One question of a batch, solved: a team run in, an `AnswerRecord` out, whatever happens in between.

The same code solves a question in the batch's own process (`evaluation.batch.BatchRun`) and in a Ray worker
(`evaluation.distributed.solver`): the worker returns the record and the driver writes it, so both paths give
the same records. Nothing here raises for the question's trouble (attachment missing, provider error, timeout,
a bug): the record says failed, with the reason.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Literal

from loguru import logger

from common.text import one_line
from config.settings import Settings
from evaluation.api import TaskItem
from evaluation.store import AnswerRecord, now_iso, strategy_fields
from teams import events as ev
from teams.result import Result
from teams.runner import HARD_CANCEL_WAIT_S, STOP_GRACE_S, Question
from teams.schema import TeamConfig
from teams.strategies import AnyRun, start_run
from teams.strategies.attempts import FinishedAttempt

ATTACHMENT_TIMEOUT_S = 300.0  # a download that takes longer is a failed question, retried on resume
GUARD_SLACK_S = 30.0  # beyond the team's own limit and stop grace: only a hung run gets this far


class PlainError(Exception):
    """An error whose message already reads well without its type name."""


@dataclass
class Usage:
    """A running question's spend so far, for progress displays."""

    prompt_tokens: int = 0
    completion_tokens: int = 0
    cost_usd: float | None = None


def guard_seconds(cfg: TeamConfig, timeout_s: float) -> float:
    """How long a question may take before it is abandoned as hung: its limit, each stage's stop grace, the
    attachment download, and some slack."""
    stages = 2 if cfg.strategy.kind == "escalate" else 1  # each stage may use its stop grace
    return timeout_s + stages * (STOP_GRACE_S + 2 * HARD_CANCEL_WAIT_S) + ATTACHMENT_TIMEOUT_S + GUARD_SLACK_S


async def solve_question(
    task: TaskItem,
    cfg: TeamConfig,
    *,
    settings: Settings,
    timeout_s: float,
    attempt: int,
    allow_loopback: bool = False,
    attachment: Callable[[], Awaitable[Path]] | None = None,
    on_run: Callable[[AnyRun | None], None] | None = None,
    on_turn: Callable[[Usage], Awaitable[None]] | None = None,
    finished: Mapping[int, FinishedAttempt] | None = None,
    on_attempt: Callable[[FinishedAttempt], None] | None = None,
) -> AnswerRecord:
    """Run `task` through `cfg` and return its record (state done or failed). `attachment` gets the question's
    file; `on_run` hears of the run when it starts (to cancel it) and None when it ends; `on_turn` hears of the
    spend after each turn. A vote or an escalation reuses the `finished` attempts of an earlier session that
    still match, and hands each attempt that ends to `on_attempt` (evaluation/checkpoints.py)."""
    started = time.monotonic()
    result: Result | None = None
    attachments: list[str] = []
    error: str | None = None
    usage = Usage()
    recorder = EventRecorder()

    async def run_it() -> Result:
        files = []
        if task.file_name and attachment is not None:
            files.append(await attachment())
            attachments.append(files[0].name)
        resumable: dict[str, Any] = {}
        if cfg.strategy.kind != "single":
            resumable = {"finished": finished, "on_attempt": on_attempt}
        run = start_run(
            Question(task.question, files, task.task_id),
            cfg,
            settings=settings,
            timeout_s=timeout_s,
            allow_loopback=allow_loopback,
            **resumable,
        )
        if on_run is not None:
            on_run(run)
        async for event in run.events():
            recorder.add(event)
            if isinstance(event, ev.TurnEnded):
                usage.prompt_tokens, usage.completion_tokens = run.ledger.prompt_tokens, run.ledger.completion_tokens
                usage.cost_usd = run.ledger.cost_usd
                if on_turn is not None:
                    await on_turn(usage)
        assert run.result is not None
        return run.result

    try:
        result = await asyncio.wait_for(run_it(), timeout=guard_seconds(cfg, timeout_s))
    except asyncio.TimeoutError:
        error = f"the question did not finish within its {timeout_s:g}s limit and was abandoned"
    except Exception as exc:  # one question's failure never stops the batch
        error = one_line(str(exc) if isinstance(exc, PlainError) else f"{type(exc).__name__}: {exc}", 500)
        logger.info("question {} failed: {}", task.task_id, error)
        if not isinstance(exc, PlainError):  # an unexpected error: its traceback goes to run.log only
            logger.opt(exception=exc).info("traceback of question {}", task.task_id)
    finally:
        if on_run is not None:
            on_run(None)
    record = build_record(task, cfg, result, error, attachments, time.monotonic() - started, usage, attempt)
    record.started_at, record.events = recorder.started_at, recorder.events
    return record


def build_record(
    task: TaskItem,
    cfg: TeamConfig,
    result: Result | None,
    error: str | None,
    attachments: list[str],
    duration: float,
    usage: Usage,
    attempt: int,
) -> AnswerRecord:
    state: Literal["done", "failed"] = "failed"
    answer = ""
    data = result.to_dict() if result is not None else None
    if result is not None:
        if result.stop_reason == "cancelled":
            error = "cancelled before it finished"
        elif not result.answer:
            error = result.error or f"no answer ({result.stop_reason}: {result.stop_detail})"
        else:
            state, answer = "done", result.answer
    return AnswerRecord(
        task_id=task.task_id,
        question=task.question,
        state=state,
        answer=answer,
        duration_s=round(result.duration_s if result else duration, 3),
        prompt_tokens=result.prompt_tokens if result else usage.prompt_tokens,
        completion_tokens=result.completion_tokens if result else usage.completion_tokens,
        cost_usd=result.cost_usd if result else usage.cost_usd,
        error=error,
        stop_reason=result.stop_reason if result else "error",
        approved=bool(result and result.approved),
        attachments=attachments,
        attempt=attempt,
        **(strategy_fields(data) if data is not None else {"strategy": cfg.strategy.kind}),
        result=data,
    )


def failed_record(task: TaskItem, cfg: TeamConfig, error: str, attempt: int, duration: float = 0.0) -> AnswerRecord:
    """A record for a question that never got to run (or whose worker was lost too often)."""
    return build_record(task, cfg, None, error, [], duration, Usage(), attempt)


class EventRecorder:
    """A question's events as plain dicts, each with `t` (seconds since the question started), for replays: the
    same events the live UI rendered, so `ui/replay.py` renders a recorded run the same way. Tokens of one turn
    are merged into one Token; the final RunFinished carries no result (the record's `result` is it); an
    attempt's own RunFinished keeps its result without the trace (the record's trace has it)."""

    def __init__(self) -> None:
        self.started_at = now_iso()
        self._t0 = time.monotonic()
        self.events: list[dict[str, Any]] = []

    def add(self, event: ev.Event) -> None:
        data = event_dict(event, top=True)
        last = self.events[-1] if self.events else None
        if last is not None and _merge_tokens(last, data):
            return
        data["t"] = round(time.monotonic() - self._t0, 3)
        self.events.append(data)


def event_dict(event: ev.Event, *, top: bool = False) -> dict[str, Any]:
    """One `teams.events` event as a JSON-ready dict with its class name in `type`."""
    kind = type(event).__name__
    if isinstance(event, ev.InAttempt):
        return {"type": kind, "attempt": event.attempt, "event": event_dict(event.event)}
    if isinstance(event, ev.RunFinished):
        if top:
            return {"type": kind}
        result = event.result.to_dict()
        result.pop("trace", None)
        return {"type": kind, "result": result}
    if isinstance(event, ev.Decided):
        return {"type": kind, "answer": event.answer, "decision": asdict(event.decision)}
    return {"type": kind, **asdict(event)}


def _merge_tokens(last: dict[str, Any], data: dict[str, Any]) -> bool:
    """Append `data`'s token text to `last` when both are tokens of the same agent (in the same attempt)."""
    while last.get("type") == "InAttempt" and data.get("type") == "InAttempt":
        if last.get("attempt") != data.get("attempt"):
            return False
        last, data = last["event"], data["event"]
    if last.get("type") == data.get("type") == "Token" and last.get("agent") == data.get("agent"):
        last["text"] = str(last.get("text", "")) + str(data.get("text", ""))
        return True
    return False
