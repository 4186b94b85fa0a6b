"""The batch runner: every question of the evaluation through one team, a few at a time, resumable.

Each question runs as its own `teams.runner.Run` (its own clients, sandbox and time limit) under a semaphore.
A finished question is appended to the run dir's answers.jsonl *before* anyone is told about it, so a crash,
Ctrl-C or SIGKILL never loses it; re-running on the same run dir skips done questions and retries failed ones.
A resumed run keeps the team config recorded in run.json, so one run dir never mixes two configurations.

Nothing here raises for one question's trouble (attachment missing, provider error, timeout, a bug): that
question is recorded as failed with the reason, and the others go on.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Literal

from loguru import logger

from common.text import one_line
from config.log import mask, register_secrets
from config.settings import Settings
from evaluation.api import TaskItem
from evaluation.identity import find_token
from evaluation.store import AnswerRecord, RunDirError, RunStore, code_version, now_iso, strategy_fields
from models.providers import ProviderNotConfigured
from models.usage import total_cost
from teams import events as ev
from teams.loader import TeamConfigError, load_team, parse_team, resolve_team_path
from teams.preflight import model_choices
from teams.result import Result
from teams.runner import HARD_CANCEL_WAIT_S, STOP_GRACE_S, Question
from teams.schema import TeamConfig
from teams.strategies import AnyRun, start_run

State = Literal["pending", "running", "done", "failed"]
ATTACHMENT_TIMEOUT_S = 300.0  # a download that takes longer is a failed question, retried on resume
GUARD_SLACK_S = 30.0  # beyond the team's own limit and stop grace: only a hung run gets this far


class BatchError(Exception):
    """The batch cannot start (team config, model provider, run dir); the message says what to fix."""


@dataclass
class QuestionStatus:
    """One row of progress / of the answers table."""

    task_id: str
    question: str
    state: State
    answer: str | None = None
    duration_s: float = 0.0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    cost_usd: float | None = None
    error: str | None = None
    # extensions (all defaulted, so the contract's positional form still works)
    file_name: str = ""
    attempts: int = 0  # how many times this question has been run, across sessions
    stop_reason: str | None = None
    resumed: bool = False  # done in an earlier session of this run dir, not recomputed
    started: float | None = None  # time.monotonic() when the current attempt started
    attempt_answers: list[str] = field(default_factory=list)  # a vote's or an escalation's attempts, in order


def team_models(cfg: TeamConfig, settings: Settings) -> dict[str, str]:
    """agent -> provider/model as this run will use them. Raises ProviderNotConfigured."""
    return {c.agent: f"{c.provider}/{c.model}" for c in model_choices(cfg, settings)}


class BatchRun:
    def __init__(
        self,
        team: str | Path,
        run_dir: Path,
        *,
        settings: Settings,
        concurrency: int = 4,
        timeout_s: float | None = None,
        allow_loopback: bool = False,
    ) -> None:
        self.run_dir = Path(run_dir)
        self.settings = settings
        self.concurrency = max(1, int(concurrency))
        self.allow_loopback = allow_loopback
        self.notes: list[str] = []  # things the caller should show (e.g. a changed team file on resume)
        self._cancelled = False
        self._running = False
        self._active: dict[str, AnyRun] = {}
        self._tasks: list[TaskItem] = []
        self._statuses: dict[str, QuestionStatus] = {}
        register_secrets(settings.secret_values())
        if token := find_token(settings):
            register_secrets([token])  # a cached-login token must be masked in run.log and traces too

        self.store: RunStore | None = None
        if RunStore.is_run_dir(self.run_dir):
            try:
                self.store = RunStore.open(self.run_dir)
            except RunDirError as exc:
                raise BatchError(str(exc)) from exc
        self.team_source = str(team)
        self.cfg = self._team(team)
        self.timeout_s = timeout_s or settings.question_timeout or self.cfg.termination.timeout_seconds
        try:
            self.models = team_models(self.cfg, settings)
        except ProviderNotConfigured as exc:
            raise BatchError(str(exc)) from exc

    # --- set-up --------------------------------------------------------------------------------------
    def _team(self, team: str | Path) -> TeamConfig:
        recorded = (self.store.meta.get("team") or {}) if self.store else {}
        try:
            requested = load_team(team)
        except TeamConfigError as exc:
            if not recorded.get("config"):
                raise BatchError(str(exc)) from exc
            requested = None  # the recorded config is what a resumed run uses anyway
        if not recorded.get("config"):
            if self.store is not None:
                raise BatchError(f"{self.run_dir}/run.json records no team config; start a new run dir")
            assert requested is not None
            self.team_source = str(resolve_team_path(team))
            return requested
        try:
            cfg = parse_team(recorded["config"], f"{self.run_dir}/run.json team.config")
        except TeamConfigError as exc:
            raise BatchError(
                f"{exc}\nThe team config recorded in this run dir no longer loads with this version; start a new run dir."
            ) from exc
        self.team_source = str(recorded.get("source") or cfg.name)
        if requested is not None and requested.name != cfg.name:
            raise BatchError(
                f"{self.run_dir} was started with team {cfg.name!r} ({self.team_source}); resume it with that team "
                f"(or without --team), or start a new run dir for team {requested.name!r}"
            )
        if requested is not None and requested.model_dump() != cfg.model_dump():
            self.notes.append(
                f"team {cfg.name!r} has changed since this run started; resuming with the config recorded in run.json"
            )
        return cfg

    def _open_store(self, tasks: list[TaskItem]) -> RunStore:
        if self.store is None:
            try:
                self.store = RunStore.create(
                    self.run_dir,
                    {
                        "tool": "roundtable submit.py",
                        "code_version": code_version(),
                        "team": {"source": self.team_source, "name": self.cfg.name, "config": self.cfg.model_dump(mode="json")},
                        "models": self.models,
                        "scoring_api_url": self.settings.scoring_api_url,
                        "hf_endpoint": self.settings.hf_endpoint,
                        "timeout_s": self.timeout_s,
                    },
                )
            except (RunDirError, OSError) as exc:
                raise BatchError(str(exc)) from exc
        try:
            self.store.lock()
        except RunDirError as exc:
            raise BatchError(str(exc)) from exc
        if tasks:
            self.store.save_tasks(tasks)
        return self.store

    def prepare(self, tasks: list[TaskItem]) -> RunStore:
        """Create (or open) the run dir and save `tasks` in it without solving anything."""
        store = self._open_store(tasks)
        store.unlock()
        return store

    def done_in_run_dir(self, tasks: list[TaskItem]) -> list[str]:
        """The task ids of `tasks` that the run dir already answered (they will be skipped)."""
        if self.store is None:
            return []
        records = self.store.records()
        return [t.task_id for t in tasks if (rec := records.get(t.task_id)) is not None and rec.state == "done"]

    # --- the batch -----------------------------------------------------------------------------------
    @property
    def statuses(self) -> list[QuestionStatus]:
        return [self._statuses[t.task_id] for t in self._tasks if t.task_id in self._statuses]

    async def run(
        self, tasks: list[TaskItem], *, on_update: Callable[[QuestionStatus], Any] | None = None
    ) -> list[QuestionStatus]:
        """Solve `tasks`; done ones in the run dir are skipped, failed ones retried. Never raises for one question."""
        if self._running:
            raise BatchError(f"the batch in {self.run_dir} is already running")
        store = self._open_store(tasks)
        # A cancel() that came before run() counts: the caller asked for nothing to start.
        self._running = True
        self._tasks = list(tasks)
        records = store.records()
        for t in tasks:
            rec = records.get(t.task_id)
            status = QuestionStatus(t.task_id, t.question, "pending", file_name=t.file_name, attempts=rec.attempt if rec else 0)
            if rec is not None and rec.state == "done":
                _fill(status, rec)
                status.resumed = True
            elif rec is not None:
                status.error = rec.error  # the previous failure, until the retry finishes
            self._statuses[t.task_id] = status
        todo = [t for t in tasks if self._statuses[t.task_id].state != "done"]
        session = store.begin_session(
            {"concurrency": self.concurrency, "tasks": len(tasks), "to_solve": len(todo), "resumed": len(tasks) - len(todo)}
        )
        logger.info("batch: {} questions, {} to solve, concurrency {}", len(tasks), len(todo), self.concurrency)
        for status in self.statuses:
            await _notify(on_update, status)
        semaphore = asyncio.Semaphore(self.concurrency)

        async def worker(task: TaskItem) -> None:
            async with semaphore:
                if self._cancelled:
                    return
                await self._solve(task, self._statuses[task.task_id], on_update)

        try:
            await asyncio.gather(*(worker(t) for t in todo))
        finally:
            states = [s.state for s in self.statuses]
            store.end_session(
                session,
                {"done": states.count("done"), "failed": states.count("failed"), "pending": states.count("pending"),
                 "cancelled": self._cancelled},
            )
            store.unlock()
            self._running = False
        return self.statuses

    async def _solve(self, task: TaskItem, status: QuestionStatus, on_update: Callable[[QuestionStatus], Any] | None) -> None:
        assert self.store is not None
        status.state, status.error, status.answer, status.started = "running", None, None, time.monotonic()
        status.attempts += 1
        await _notify(on_update, status)
        result: Result | None = None
        attachments: list[str] = []
        error: str | None = None
        recorder = EventRecorder()
        try:
            async def attempt() -> Result:
                files = []
                if task.file_name:
                    files.append(await self._attachment(task))
                    attachments.append(files[0].name)
                run = start_run(
                    Question(task.question, files, task.task_id),
                    self.cfg,
                    settings=self.settings,
                    timeout_s=self.timeout_s,
                    allow_loopback=self.allow_loopback,
                )
                self._active[task.task_id] = run
                if self._cancelled:
                    run.cancel("the batch was cancelled")
                async for event in run.events():
                    recorder.add(event)
                    if isinstance(event, ev.TurnEnded):
                        status.prompt_tokens, status.completion_tokens = run.ledger.prompt_tokens, run.ledger.completion_tokens
                        status.cost_usd = run.ledger.cost_usd
                        status.duration_s = time.monotonic() - (status.started or time.monotonic())
                        await _notify(on_update, status)
                assert run.result is not None
                return run.result

            stages = 2 if self.cfg.strategy.kind == "escalate" else 1  # each stage may use its stop grace
            guard = self.timeout_s + stages * (STOP_GRACE_S + 2 * HARD_CANCEL_WAIT_S) + ATTACHMENT_TIMEOUT_S + GUARD_SLACK_S
            result = await asyncio.wait_for(attempt(), timeout=guard)
        except asyncio.TimeoutError:
            error = f"the question did not finish within its {self.timeout_s:g}s limit and was abandoned"
        except Exception as exc:  # one question's failure never stops the batch
            error = one_line(str(exc) if isinstance(exc, _Plain) else f"{type(exc).__name__}: {exc}", 500)
            logger.info("question {} failed: {}", task.task_id, error)
            if not isinstance(exc, _Plain):  # an unexpected error: its traceback goes to run.log only
                logger.opt(exception=exc).info("traceback of question {}", task.task_id)
        finally:
            self._active.pop(task.task_id, None)

        duration = time.monotonic() - (status.started or time.monotonic())
        record = self._record(task, status, result, error, attachments, duration)
        record.started_at, record.events = recorder.started_at, recorder.events
        try:
            self.store.append(record)  # on disk before anyone hears about it
        except OSError as exc:  # a full or read-only disk: every later answer would be lost too, so stop
            self.cancel()
            raise BatchError(f"cannot save the answer of {task.task_id} in {self.run_dir}: {exc}; the batch stopped") from exc
        _fill(status, record)
        logger.info("question {} {}: {!r}{}", task.task_id, record.state, record.answer, f" ({record.error})" if record.error else "")
        await _notify(on_update, status)

    async def _attachment(self, task: TaskItem) -> Path:
        from evaluation.attachments import AttachmentError, fetch_attachment

        try:
            return await asyncio.wait_for(
                fetch_attachment(task.task_id, task.file_name, settings=self.settings), timeout=ATTACHMENT_TIMEOUT_S
            )
        except asyncio.TimeoutError:
            raise _Plain(f"downloading the attachment {task.file_name} took over {ATTACHMENT_TIMEOUT_S:g}s") from None
        except AttachmentError as exc:  # its message already says what failed and what to set
            raise _Plain(one_line(str(exc), 500)) from None
        except Exception as exc:
            raise _Plain(f"cannot get the attachment {task.file_name}: {type(exc).__name__}: {one_line(str(exc), 400)}") from exc

    def _record(
        self,
        task: TaskItem,
        status: QuestionStatus,
        result: Result | None,
        error: str | None,
        attachments: list[str],
        duration: float,
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
            prompt_tokens=result.prompt_tokens if result else status.prompt_tokens,
            completion_tokens=result.completion_tokens if result else status.completion_tokens,
            cost_usd=result.cost_usd if result else status.cost_usd,
            error=error,
            stop_reason=result.stop_reason if result else "error",
            approved=bool(result and result.approved),
            attachments=attachments,
            attempt=status.attempts,
            **(strategy_fields(data) if data is not None else {"strategy": self.cfg.strategy.kind}),
            result=data,
        )

    def cancel(self) -> None:
        """Stop the batch: running questions are cancelled (recorded as failed), pending ones are not started.

        A cancelled BatchRun stays cancelled; resume with a new BatchRun on the same run dir."""
        self._cancelled = True
        for run in list(self._active.values()):
            run.cancel("the batch was cancelled")

    @property
    def cancelled(self) -> bool:
        return self._cancelled

    def answers_payload(self) -> list[dict[str, str]]:
        """Every question of the run dir, in order, with its answer ("" when none)."""
        return answers_payload(self.store) if self.store is not None else [
            {"task_id": t.task_id, "submitted_answer": ""} for t in self._tasks
        ]


def answers_payload(store: RunStore) -> list[dict[str, str]]:
    records = store.records()
    out = []
    for t in store.tasks():
        rec = records.get(t.task_id)
        out.append({"task_id": t.task_id, "submitted_answer": rec.answer if rec and rec.state == "done" else ""})
    return out


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


class _Plain(Exception):
    """An error whose message already reads well without its type name."""


def _fill(status: QuestionStatus, rec: AnswerRecord) -> None:
    status.state = rec.state
    status.answer = mask(rec.answer) if rec.state == "done" else None  # as on disk: the terminal and page show it
    status.duration_s = rec.duration_s
    status.prompt_tokens, status.completion_tokens, status.cost_usd = rec.prompt_tokens, rec.completion_tokens, rec.cost_usd
    status.error = mask(rec.error) if rec.error else rec.error
    status.stop_reason = rec.stop_reason
    status.attempts = rec.attempt
    status.attempt_answers = [mask(str(a.get("answer") or "")) for a in rec.attempts]


async def _notify(on_update: Callable[[QuestionStatus], Any] | None, status: QuestionStatus) -> None:
    if on_update is None:
        return
    try:
        maybe = on_update(status)
        if asyncio.iscoroutine(maybe):
            await maybe
    except Exception as exc:  # a broken progress display must not lose an answer or stop the batch
        logger.warning("progress callback failed: {}", one_line(str(exc)))


class BatchProgress:
    """The terminal's live view of a batch: a bar, done/failed/running counts, elapsed, tokens, cost, and the
    questions in flight. Pass `update` as `on_update`; render it with `rich.live.Live(progress)`."""

    def __init__(self, total: int, *, max_rows: int = 8) -> None:
        self.total = total
        self.max_rows = max_rows
        self.started = time.monotonic()
        self.rows: dict[str, QuestionStatus] = {}

    def update(self, status: QuestionStatus) -> None:
        self.rows[status.task_id] = status

    def counts(self) -> dict[str, int]:
        out = {"pending": 0, "running": 0, "done": 0, "failed": 0}
        for s in self.rows.values():
            out[s.state] += 1
        return out

    def tokens(self) -> tuple[int, int]:
        return sum(s.prompt_tokens for s in self.rows.values()), sum(s.completion_tokens for s in self.rows.values())

    def cost(self) -> float | None:
        return total_cost(self.rows.values())

    def summary_line(self) -> str:
        c = self.counts()
        tin, tout = self.tokens()
        cost = self.cost()
        elapsed = time.monotonic() - self.started
        return (
            f"{c['done']}/{self.total} done · {c['failed']} failed · {c['running']} running · "
            f"elapsed {_clock(elapsed)} · tokens {_k(tin)} in / {_k(tout)} out · "
            f"cost {'unknown' if cost is None else f'${cost:.4f}'}"
        )

    def __rich__(self) -> Any:
        from rich.console import Group
        from rich.progress_bar import ProgressBar
        from rich.table import Table
        from rich.text import Text

        c = self.counts()
        bar = ProgressBar(total=max(self.total, 1), completed=c["done"] + c["failed"], width=40)
        head = Group(bar, Text(self.summary_line()))
        running = [s for s in self.rows.values() if s.state == "running"]
        if not running:
            return head
        table = Table(box=None, show_header=False, padding=(0, 1), pad_edge=False)
        now = time.monotonic()
        for s in running[: self.max_rows]:
            table.add_row(
                Text("…", style="yellow"),
                Text(s.task_id[:12], style="cyan"),
                Text(one_line(s.question, 70)),
                Text(_clock(now - (s.started or now)), style="dim"),
                Text(f"{_k(s.prompt_tokens + s.completion_tokens)} tok", style="dim"),
            )
        if len(running) > self.max_rows:
            table.add_row("", "", Text(f"… and {len(running) - self.max_rows} more running", style="dim"), "", "")
        return Group(head, table)


def _clock(seconds: float) -> str:
    seconds = int(max(0, seconds))
    return f"{seconds // 3600}:{seconds // 60 % 60:02d}:{seconds % 60:02d}"


def _k(n: int) -> str:
    return f"{n / 1000:.1f}k" if n >= 1000 else str(n)
