"""A sweep: several team configs x the questions x N attempts, in one command, as one run dir per team and
attempt, so `submit.py eval` and `submit.py compare` read them as they read any run.

    sweeps/<timestamp>/sweep.json        the teams and attempts (a resume needs nothing else)
    sweeps/<timestamp>/<team>-<k>/       a run dir (run.json, questions.json, answers.jsonl, run.log)

All question-attempts share one concurrency (and, with `pool`, one Ray cluster); each run dir is written by this
process only, as a batch writes its own. Re-running the sweep on its dir skips what is done.
"""

from __future__ import annotations

import asyncio
import json
import re
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from config.settings import Settings
from evaluation.api import TaskItem
from evaluation.batch import BatchError, BatchRun, QuestionStatus
from evaluation.store import code_version, now_iso
from teams.loader import TeamConfigError, load_team, resolve_team_path

if TYPE_CHECKING:
    from evaluation.distributed.pool import SolverPool

SWEEP_JSON = "sweep.json"
MAX_ATTEMPTS = 20


class SweepError(Exception):
    """The sweep cannot start; the message says what to fix."""


def _slug(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "-", name).strip("-.") or "team"


def plan(teams: list[str], attempts: int) -> list[dict[str, Any]]:
    """One entry per run dir: the team's source and name, the attempt number and the run dir's name."""
    if not teams:
        raise SweepError("a sweep needs at least one --team")
    if not 1 <= attempts <= MAX_ATTEMPTS:
        raise SweepError(f"--attempts must be between 1 and {MAX_ATTEMPTS}, not {attempts}")
    entries, names = [], set()
    for team in dict.fromkeys(teams):  # the same team twice is one team
        try:
            cfg = load_team(team)
        except TeamConfigError as exc:
            raise SweepError(str(exc)) from None
        base, n = _slug(cfg.name), 2
        name = base
        while name in names:  # two files with one team name still get a run dir each
            name, n = f"{base}.{n}", n + 1
        names.add(name)
        for k in range(1, attempts + 1):
            entries.append({"source": str(resolve_team_path(team)), "team": cfg.name, "attempt": k, "run_dir": f"{name}-{k}"})
    return entries


class Sweep:
    def __init__(
        self,
        sweep_dir: Path,
        *,
        settings: Settings,
        teams: list[str] | None = None,
        attempts: int | None = None,
        concurrency: int = 8,
        timeout_s: float | None = None,
        pool: SolverPool | None = None,
    ) -> None:
        """A new sweep needs `teams` (and `attempts`, default 1); an existing sweep dir is resumed with what its
        sweep.json says, and refuses other teams or attempts."""
        self.path = Path(sweep_dir)
        self.notes: list[str] = []
        meta_path = self.path / SWEEP_JSON
        if meta_path.exists():
            try:
                self.meta = json.loads(meta_path.read_text(encoding="utf-8"))
                entries = list(self.meta["run_dirs"])
            except (OSError, ValueError, KeyError, TypeError) as exc:
                raise SweepError(f"{meta_path} is unreadable ({exc}); start a new sweep dir") from None
            recorded = list(dict.fromkeys(e["source"] for e in entries))
            if teams and [str(resolve_team_path(t)) for t in dict.fromkeys(teams)] != recorded:
                raise SweepError(f"{self.path} is a sweep of {', '.join(recorded)}; resume it without --team (or with "
                                 "the same teams), or start a new sweep dir")
            if attempts is not None and attempts != self.meta.get("attempts"):
                raise SweepError(f"{self.path} was started with --attempts {self.meta.get('attempts')}; resume it with "
                                 "that (or without --attempts)")
        else:
            if self.path.exists() and any(self.path.iterdir()):
                raise SweepError(f"{self.path} exists and is not a sweep dir (no {SWEEP_JSON}); pick a new one")
            entries = plan(list(teams or []), attempts or 1)
            self.meta = {"tool": "roundtable submit.py sweep", "created": now_iso(), "code_version": code_version(),
                         "attempts": attempts or 1, "run_dirs": entries}
        self.entries = entries
        self.semaphore = asyncio.Semaphore(max(1, concurrency))
        self.concurrency = max(1, concurrency)
        self.batches: list[tuple[str, BatchRun]] = []
        for e in entries:
            try:
                batch = BatchRun(e["source"], self.path / e["run_dir"], settings=settings, concurrency=concurrency,
                                 timeout_s=timeout_s, pool=pool, semaphore=self.semaphore)
            except BatchError as exc:
                raise SweepError(f"{e['run_dir']}: {exc}") from None
            self.notes += [f"{e['run_dir']}: {n}" for n in batch.notes]
            self.batches.append((e["run_dir"], batch))
        self.timeout_s = self.batches[0][1].timeout_s if self.batches else timeout_s

    @property
    def teams(self) -> list[dict[str, Any]]:
        """Each distinct team config with its models, for the Ray workers to check they run them the same."""
        seen: dict[str, dict[str, Any]] = {}
        for _, batch in self.batches:
            data = batch.cfg.model_dump(mode="json")
            seen.setdefault(json.dumps(data, sort_keys=True), {"config": data, "models": batch.models})
        return list(seen.values())

    def set_pool(self, pool: SolverPool | None) -> None:
        for _, batch in self.batches:
            batch.pool = pool

    def tasks(self) -> list[TaskItem]:
        """The questions saved by an earlier session of this sweep ([] for a new one)."""
        for _, batch in self.batches:
            if batch.store is not None and (saved := batch.store.tasks()):
                return saved
        return []

    def prepare(self, tasks: list[TaskItem]) -> None:
        self.path.mkdir(parents=True, exist_ok=True)
        tmp = self.path / f".{SWEEP_JSON}.tmp"
        tmp.write_text(json.dumps(self.meta, indent=2, ensure_ascii=False), encoding="utf-8")
        tmp.replace(self.path / SWEEP_JSON)
        for label, batch in self.batches:
            try:
                batch.prepare(tasks)
            except BatchError as exc:
                raise SweepError(f"{label}: {exc}") from None

    def done(self, tasks: list[TaskItem]) -> int:
        return sum(len(batch.done_in_run_dir(tasks)) for _, batch in self.batches)

    async def run(
        self, tasks: list[TaskItem], *, on_update: Callable[[str, QuestionStatus], Any] | None = None
    ) -> dict[str, list[QuestionStatus]]:
        """Every run dir's batch at once, under the one concurrency. Never raises for one question."""

        def forward(label: str) -> Callable[[QuestionStatus], Any] | None:
            return None if on_update is None else (lambda status: on_update(label, status))

        results = await asyncio.gather(
            *(batch.run(tasks, on_update=forward(label)) for label, batch in self.batches), return_exceptions=True
        )
        out: dict[str, list[QuestionStatus]] = {}
        errors = []
        for (label, batch), result in zip(self.batches, results, strict=True):
            if isinstance(result, BaseException):
                if not isinstance(result, BatchError):
                    raise result
                errors.append(f"{label}: {result}")
                out[label] = batch.statuses
            else:
                out[label] = result
        if errors:
            raise SweepError("; ".join(errors))
        return out

    def cancel(self) -> None:
        for _, batch in self.batches:
            batch.cancel()

    @property
    def cancelled(self) -> bool:
        return any(batch.cancelled for _, batch in self.batches)

    @property
    def run_dirs(self) -> list[Path]:
        return [batch.run_dir for _, batch in self.batches]
