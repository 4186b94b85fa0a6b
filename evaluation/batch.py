"""The batch runner: every question of the evaluation through one team, a few at a time, resumable.

Each question runs as its own `teams.runner.Run` (its own clients, sandbox and time limit) under a semaphore,
in this process (`evaluation.solve`) or, with a `SolverPool`, on a Ray cluster's workers.
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
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from loguru import logger

from common.text import one_line
from config.log import mask, register_secrets
from config.settings import Settings
from evaluation import checkpoints
from evaluation.api import TaskItem
from evaluation.identity import find_token
from evaluation.solve import (
    ATTACHMENT_TIMEOUT_S,
    EventRecorder,
    PlainError,
    Usage,
    event_dict,
    failed_record,
    guard_seconds,
    solve_question,
)
from evaluation.store import AnswerRecord, RunDirError, RunStore, code_version
from models.providers import ProviderNotConfigured
from models.usage import total_cost
from teams.loader import TeamConfigError, load_team, parse_team, resolve_team_path
from teams.preflight import model_choices
from teams.schema import TeamConfig
from teams.strategies import AnyRun
from teams.strategies.attempts import FinishedAttempt

if TYPE_CHECKING:
    from evaluation.distributed.pool import SolverPool

__all__ = ["BatchError", "BatchProgress", "BatchRun", "EventRecorder", "QuestionStatus", "answers_payload", "event_dict"]

State = Literal["pending", "running", "done", "failed"]


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
        pool: SolverPool | None = None,
        semaphore: asyncio.Semaphore | None = None,
    ) -> None:
        """`pool`: solve on a Ray cluster's workers instead of in this process (this process still writes the
        run dir). `semaphore`: a concurrency shared with other batches (a sweep's), instead of our own."""
        self.run_dir = Path(run_dir)
        self.pool = pool
        self._shared_semaphore = semaphore
        self.settings = settings
        self.concurrency = max(1, int(concurrency))
        self.allow_loopback = allow_loopback
        self.notes: list[str] = []  # things the caller should show (e.g. a changed team file on resume)
        self._cancelled = False
        self._running = False
        self._active: dict[str, AnyRun] = {}
        self._remote: dict[str, str] = {}  # task id -> job key, while on a Ray worker
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
            {"concurrency": self.concurrency, "tasks": len(tasks), "to_solve": len(todo), "resumed": len(tasks) - len(todo),
             **({"ray": self.pool.describe()} if self.pool is not None else {})}
        )
        logger.info("batch: {} questions, {} to solve, concurrency {}", len(tasks), len(todo), self.concurrency)
        for status in self.statuses:
            await _notify(on_update, status)
        semaphore = self._shared_semaphore or asyncio.Semaphore(self.concurrency)

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
        if self.pool is not None:
            record = await self._solve_remote(task, status)
        else:
            record = await self._solve_here(task, status, on_update)
        try:
            self.store.append(record)  # on disk before anyone hears about it
        except OSError as exc:  # a full or read-only disk: every later answer would be lost too, so stop
            self.cancel()
            raise BatchError(f"cannot save the answer of {task.task_id} in {self.run_dir}: {exc}; the batch stopped") from exc
        if record.state == "done":
            checkpoints.discard(self.run_dir, task.task_id)  # its attempts are in the record now
        _fill(status, record)
        where = f" on {record.node}" if record.node else ""
        logger.info("question {} {}{}: {!r}{}", task.task_id, record.state, where, record.answer,
                    f" ({record.error})" if record.error else "")
        await _notify(on_update, status)

    async def _solve_here(
        self, task: TaskItem, status: QuestionStatus, on_update: Callable[[QuestionStatus], Any] | None
    ) -> AnswerRecord:
        def on_run(run: AnyRun | None) -> None:
            if run is None:
                self._active.pop(task.task_id, None)
                return
            self._active[task.task_id] = run
            if self._cancelled:
                run.cancel("the batch was cancelled")

        async def on_turn(usage: Usage) -> None:
            status.prompt_tokens, status.completion_tokens, status.cost_usd = (
                usage.prompt_tokens, usage.completion_tokens, usage.cost_usd)
            status.duration_s = time.monotonic() - (status.started or time.monotonic())
            await _notify(on_update, status)

        kept: dict[int, FinishedAttempt] = {}
        if self.cfg.strategy.kind != "single":
            kept = await asyncio.to_thread(checkpoints.finished, self.run_dir, task.task_id)
        return await solve_question(
            task, self.cfg, settings=self.settings, timeout_s=self.timeout_s, attempt=status.attempts,
            allow_loopback=self.allow_loopback, attachment=lambda: self._attachment(task), on_run=on_run, on_turn=on_turn,
            finished=kept, on_attempt=lambda finished: checkpoints.keep(self.run_dir, task.task_id, finished),
        )

    async def _solve_remote(self, task: TaskItem, status: QuestionStatus) -> AnswerRecord:
        """On a Ray worker: the driver (this process) fetches the attachment, so workers need no HF token, and
        writes the record, so it is the run dir's only writer."""
        assert self.pool is not None
        from evaluation.distributed.jobs import Job

        data: bytes | None = None
        if task.file_name:
            try:
                data = (await self._attachment(task)).read_bytes()
            except (PlainError, OSError) as exc:
                return failed_record(task, self.cfg, one_line(str(exc), 500), status.attempts)
        job = Job(key=f"{self.run_dir}::{task.task_id}", task=task.to_dict(), config=self.cfg.model_dump(mode="json"),
                  timeout_s=self.timeout_s, attempt=status.attempts, allow_loopback=self.allow_loopback,
                  attachment=data, guard_s=guard_seconds(self.cfg, self.timeout_s))
        self._remote[task.task_id] = job.key
        if self._cancelled:
            return failed_record(task, self.cfg, "cancelled before it finished", status.attempts)
        try:
            return await self.pool.solve(job)
        finally:
            self._remote.pop(task.task_id, None)

    async def _attachment(self, task: TaskItem) -> Path:
        from evaluation.attachments import AttachmentError, fetch_attachment

        try:
            return await asyncio.wait_for(
                fetch_attachment(task.task_id, task.file_name, settings=self.settings), timeout=ATTACHMENT_TIMEOUT_S
            )
        except asyncio.TimeoutError:
            raise PlainError(f"downloading the attachment {task.file_name} took over {ATTACHMENT_TIMEOUT_S:g}s") from None
        except AttachmentError as exc:  # its message already says what failed and what to set
            raise PlainError(one_line(str(exc), 500)) from None
        except Exception as exc:
            raise PlainError(f"cannot get the attachment {task.file_name}: {type(exc).__name__}: {one_line(str(exc), 400)}") from exc

    def cancel(self) -> None:
        """Stop the batch: running questions are cancelled (recorded as failed), pending ones are not started.

        A cancelled BatchRun stays cancelled; resume with a new BatchRun on the same run dir."""
        self._cancelled = True
        for run in list(self._active.values()):
            run.cancel("the batch was cancelled")
        if self.pool is not None:
            for key in list(self._remote.values()):
                self.pool.cancel(key)

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
        self.labels: dict[str, str] = {}

    def update(self, status: QuestionStatus, *, key: str | None = None, label: str = "") -> None:
        """`key` and `label` tell apart one question in several run dirs (a sweep's)."""
        self.rows[key or status.task_id] = status
        if label:
            self.labels[key or status.task_id] = label

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
        running = [(k, s) for k, s in self.rows.items() if s.state == "running"]
        if not running:
            return head
        table = Table(box=None, show_header=False, padding=(0, 1), pad_edge=False)
        now = time.monotonic()
        for key, s in running[: self.max_rows]:
            label = self.labels.get(key)
            table.add_row(
                Text("…", style="yellow"),
                Text(f"{label} {s.task_id[:12]}" if label else s.task_id[:12], style="cyan"),
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
