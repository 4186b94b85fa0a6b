"""The run dir: everything one batch evaluation produced, written so that no finished answer is ever lost.

Layout of `runs/<YYYYmmdd-HHMMSS>/`:
  run.json        format version, team config, models, code version (git commit), sessions and timings
  questions.json  the question list as fetched (a resumed run uses it, so the API need not be up)
  answers.jsonl   one line per finished question (done or failed), with its trace; the last line of a task wins.
                  A vote or an escalation also records `strategy`, its `attempts` side by side and its `decision`
                  (method, reason, votes, the adjudicator's reply) in plain fields (`strategy_fields`).
                  Newer records add `started_at` and `events` (the run's events with their times, for replays)
  run.log         the run's log (secrets masked)
  report.json/.md local evaluation (`submit.py eval`); submission.json, the last `submit --yes` result

answers.jsonl is appended and fsynced once per finished question, so a SIGKILL loses at most the line being
written; a torn last line is skipped on reading and never glued to the next one. Every line passes through
`config.log.mask`, so a token that leaked into a trace never reaches the disk. A lock file keeps two
processes from writing one run dir at once (flock: released by the kernel even after a SIGKILL).
"""

from __future__ import annotations

import json
import os
import subprocess
import time
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Literal

from config.log import mask
from config.settings import REPO_ROOT
from evaluation.api import TaskItem
from models.usage import total_cost

RUN_FORMAT = 1  # bump when the layout or a record's fields change incompatibly
RUN_JSON, QUESTIONS_JSON, ANSWERS_JSONL, LOCK_FILE = "run.json", "questions.json", "answers.jsonl", ".lock"
RUN_LOG = "run.log"
_MAY_PRECEDE = {RUN_LOG}  # a log sink may create its file before the run dir is set up

try:  # Linux/macOS; the Space and CI are Linux
    import fcntl
except ImportError:  # pragma: no cover
    fcntl = None  # type: ignore[assignment]


class RunDirError(Exception):
    """A run dir that cannot be used as asked; the message says why and what to do instead."""


def now_iso() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


def code_version() -> dict[str, Any]:
    """The git commit of this checkout (and whether it has local changes); the package version otherwise."""
    from importlib.metadata import PackageNotFoundError, version

    try:
        pkg = version("roundtable")
    except PackageNotFoundError:
        pkg = None
    info: dict[str, Any] = {"package": pkg, "commit": os.environ.get("ROUNDTABLE_COMMIT") or None, "dirty": None}
    if info["commit"] is None:
        try:
            commit = subprocess.run(
                ["git", "rev-parse", "HEAD"], cwd=REPO_ROOT, capture_output=True, text=True, timeout=5, check=True
            ).stdout.strip()
            dirty = subprocess.run(
                ["git", "status", "--porcelain", "--untracked-files=no"],
                cwd=REPO_ROOT, capture_output=True, text=True, timeout=5, check=True,
            ).stdout.strip()
            info.update(commit=commit or None, dirty=bool(dirty))
        except (OSError, subprocess.SubprocessError):
            pass  # no git in a Docker image: the package version (and ROUNDTABLE_COMMIT if set) must do
    return info


@dataclass
class AnswerRecord:
    task_id: str
    question: str
    state: Literal["done", "failed"]
    answer: str  # "" when failed
    duration_s: float
    prompt_tokens: int = 0
    completion_tokens: int = 0
    cost_usd: float | None = None
    error: str | None = None
    stop_reason: str | None = None
    approved: bool = False
    attachments: list[str] = field(default_factory=list)
    finished_at: str = field(default_factory=now_iso)
    attempt: int = 1  # how many times this question has been run in this run dir (not a strategy's attempts)
    # The strategy (teams/strategies/), in plain fields beside `result`: a vote's or an escalation's attempts
    # side by side (`attempt_summary`), and how the answer was chosen (`decision_summary`). Single runs:
    # "single", no attempts, no decision.
    strategy: str = "single"
    attempts: list[dict[str, Any]] = field(default_factory=list)
    decision: dict[str, Any] | None = None
    result: dict[str, Any] | None = None  # teams.result.Result.to_dict(): trace, proposals, usage, models
    # For replays (ui/replay.py), added later (older records have neither): when the question started, and its
    # run's events (teams.events as dicts, `evaluation.solve.EventRecorder`), each with `t`, seconds since then.
    started_at: str | None = None
    events: list[dict[str, Any]] = field(default_factory=list)
    node: str = ""  # the Ray node that solved it ("": the batch's own process)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> AnswerRecord:
        known = {k: data[k] for k in cls.__dataclass_fields__ if k in data}
        result = known.get("result")
        if "strategy" not in data and isinstance(result, dict) and result.get("strategy") not in (None, "single"):
            # written before these fields existed: the same summaries, from the full result
            known.update(strategy_fields(result))
        return cls(**known)


def attempt_summary(attempt: dict[str, Any]) -> dict[str, Any]:
    """One attempt of a vote or an escalation (teams.result.Attempt as a dict), in the record's plain form."""
    prompt, completion = int(attempt.get("prompt_tokens") or 0), int(attempt.get("completion_tokens") or 0)
    return {
        "number": attempt.get("number"),
        "label": attempt.get("label", ""),
        "team": attempt.get("team", ""),
        "stage": attempt.get("stage", ""),
        "answer": attempt.get("answer") or "",
        "approved": bool(attempt.get("approved")),
        "stop_reason": attempt.get("stop_reason"),
        "duration_s": attempt.get("duration_s"),
        "prompt_tokens": prompt,
        "completion_tokens": completion,
        "tokens": prompt + completion,
        "cost_usd": attempt.get("cost_usd"),
        "models": dict(attempt.get("models") or {}),
        "checks": list(attempt.get("checks") or []),
        "error": attempt.get("error"),
    }


def decision_summary(decision: dict[str, Any]) -> dict[str, Any]:
    """How a strategy chose (teams.result.Decision as a dict): method, reason, the votes, the adjudicator's text."""
    return {
        "method": decision.get("method"),
        "reason": decision.get("reason", ""),
        "votes": [
            {"answer": g.get("answer", ""), "attempts": list(g.get("attempts") or []), "count": len(g.get("attempts") or []),
             "approved": int(g.get("approved") or 0)}
            for g in decision.get("groups") or []
        ],
        "adjudicator": decision.get("adjudicator"),
    }


def strategy_fields(result: dict[str, Any]) -> dict[str, Any]:
    """`strategy`, `attempts` and `decision` of a record, from `teams.result.Result.to_dict()`."""
    decision = result.get("decision")
    return {
        "strategy": str(result.get("strategy") or "single"),
        "attempts": [attempt_summary(a) for a in result.get("attempts") or [] if isinstance(a, dict)],
        "decision": decision_summary(decision) if isinstance(decision, dict) else None,
    }


def new_run_dir(root: Path) -> Path:
    stamp = datetime.now().strftime("%Y%m%d-%H%M%S")
    path = root / stamp
    n = 2
    while path.exists():
        path = root / f"{stamp}-{n}"
        n += 1
    return path


class RunStore:
    """One run dir. `RunStore.open()` validates an existing one; `RunStore.create()` starts a new one."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self.warnings: list[str] = []
        self._meta: dict[str, Any] | None = None
        self._lock_fd: int | None = None

    # --- opening -------------------------------------------------------------------------------------
    @staticmethod
    def is_run_dir(path: Path) -> bool:
        return (Path(path) / RUN_JSON).exists()

    @classmethod
    def open(cls, path: Path) -> RunStore:
        store = cls(path)
        run_json = store.path / RUN_JSON
        if not store.path.is_dir():
            raise RunDirError(f"{store.path} does not exist (start a run with `python submit.py run`)")
        if not run_json.exists():
            raise RunDirError(f"{store.path} is not a run dir: it has no {RUN_JSON}")
        try:
            meta = json.loads(run_json.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise RunDirError(f"{run_json} is unreadable ({exc}); its answers in {ANSWERS_JSONL} are untouched") from None
        if not isinstance(meta, dict):
            raise RunDirError(f"{run_json} is not a JSON object; its answers in {ANSWERS_JSONL} are untouched")
        fmt = meta.get("format")
        if fmt != RUN_FORMAT:
            made_by = (meta.get("code_version") or {}).get("commit") if isinstance(meta.get("code_version"), dict) else None
            by = f" (commit {str(made_by)[:12]})" if made_by else ""
            if isinstance(fmt, int) and fmt > RUN_FORMAT:
                raise RunDirError(
                    f"{store.path} was written by a newer submit.py{by}: run dir format {fmt}, this version reads "
                    f"format {RUN_FORMAT}. Update this checkout to use it."
                )
            raise RunDirError(
                f"{store.path} was written by an older submit.py{by}: run dir format {'unversioned' if fmt is None else fmt}, this "
                f"version reads format {RUN_FORMAT}. Nothing in it was changed: use the version that wrote it to "
                "resume or submit it, or start a new run with `python submit.py run`."
            )
        store._meta = meta
        return store

    @classmethod
    def create(cls, path: Path, meta: dict[str, Any]) -> RunStore:
        path = Path(path)
        if path.exists() and any(p.name not in _MAY_PRECEDE for p in path.iterdir()):
            raise RunDirError(f"{path} already exists and is not an empty run dir; pick another --run-dir")
        path.mkdir(parents=True, exist_ok=True)
        store = cls(path)
        store._meta = {"format": RUN_FORMAT, "created_at": now_iso(), **meta, "sessions": []}
        store.write_meta()
        return store

    # --- run.json ------------------------------------------------------------------------------------
    @property
    def meta(self) -> dict[str, Any]:
        assert self._meta is not None
        return self._meta

    def write_meta(self) -> None:
        _atomic_write(self.path / RUN_JSON, mask(json.dumps(self.meta, indent=2, ensure_ascii=False)) + "\n")

    def begin_session(self, info: dict[str, Any]) -> dict[str, Any]:
        session = {"started_at": now_iso(), "started_epoch": time.time(), "code_version": code_version(), **info}
        self.meta.setdefault("sessions", []).append(session)
        self.write_meta()
        return session

    def end_session(self, session: dict[str, Any], info: dict[str, Any]) -> None:
        session.update(finished_at=now_iso(), wall_s=round(time.time() - session["started_epoch"], 3), **info)
        self.meta["totals"] = self.totals()
        self.write_meta()

    # --- questions -----------------------------------------------------------------------------------
    def save_tasks(self, tasks: list[TaskItem]) -> None:
        """Merge `tasks` into questions.json (known ones keep their place)."""
        current = {t.task_id: t for t in self.tasks()}
        for t in tasks:
            current[t.task_id] = t
        _atomic_write(
            self.path / QUESTIONS_JSON,
            json.dumps([t.to_dict() for t in current.values()], indent=2, ensure_ascii=False) + "\n",
        )

    def tasks(self) -> list[TaskItem]:
        path = self.path / QUESTIONS_JSON
        if not path.exists():
            return []
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
            return [TaskItem.from_dict(d) for d in data]
        except (OSError, ValueError, KeyError, TypeError) as exc:
            raise RunDirError(f"{path} is unreadable ({exc}); fetch the questions again with a new run") from None

    # --- answers -------------------------------------------------------------------------------------
    def append(self, record: AnswerRecord) -> None:
        """One line, flushed and fsynced before returning: the answer survives a crash from here on."""
        append_line(self.path / ANSWERS_JSONL, mask(json.dumps(asdict(record), ensure_ascii=False, default=str)))

    def records(self) -> dict[str, AnswerRecord]:
        """The last record of each task (torn or foreign lines are skipped, with a warning)."""
        path = self.path / ANSWERS_JSONL
        self.warnings = []
        out: dict[str, AnswerRecord] = {}
        if not path.exists():
            return out
        with open(path, encoding="utf-8", errors="replace") as fh:
            lines = fh.read().split("\n")
        for n, line in enumerate(lines, 1):
            if not line.strip():
                continue
            try:
                data = json.loads(line)
                record = AnswerRecord.from_dict(data)
            except (json.JSONDecodeError, TypeError, ValueError):
                last = n == len(lines) or all(not ln.strip() for ln in lines[n:])
                why = "cut short (the process was killed while writing it)" if last else "not a valid record"
                self.warnings.append(f"{ANSWERS_JSONL} line {n} is {why}; skipped")
                continue
            out[record.task_id] = record
        return out

    def totals(self) -> dict[str, Any]:
        records = list(self.records().values())
        return {
            "questions": len(self.tasks()),
            "done": sum(r.state == "done" for r in records),
            "failed": sum(r.state == "failed" for r in records),
            "duration_s": round(sum(r.duration_s for r in records), 3),
            "prompt_tokens": sum(r.prompt_tokens for r in records),
            "completion_tokens": sum(r.completion_tokens for r in records),
            "cost_usd": total_cost(records),
        }

    # --- one writer at a time ------------------------------------------------------------------------
    def lock(self) -> None:
        if fcntl is None or self._lock_fd is not None:
            return
        fd = os.open(self.path / LOCK_FILE, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            holder = os.read(fd, 64).decode(errors="replace").strip()
            os.close(fd)
            raise RunDirError(
                f"{self.path} is in use by another run (submit.py or the UI){f', pid {holder}' if holder else ''}; wait for it or stop it"
            ) from None
        os.ftruncate(fd, 0)
        os.write(fd, str(os.getpid()).encode())
        self._lock_fd = fd

    def unlock(self) -> None:
        if self._lock_fd is not None:
            os.close(self._lock_fd)  # closing releases the flock
            self._lock_fd = None


def append_line(path: Path, line: str) -> None:
    """Append one JSONL line, flushed and fsynced before returning."""
    with open(path, "a", encoding="utf-8") as fh:
        if _ends_without_newline(path):
            fh.write("\n")  # a torn line from a killed process stays separate (and skipped)
        fh.write(line + "\n")
        fh.flush()
        os.fsync(fh.fileno())


def _ends_without_newline(path: Path) -> bool:
    try:
        size = path.stat().st_size
    except FileNotFoundError:
        return False
    if size == 0:
        return False
    with open(path, "rb") as fh:
        fh.seek(-1, os.SEEK_END)
        return fh.read(1) != b"\n"


def _atomic_write(path: Path, text: str) -> None:
    tmp = path.with_name(path.name + ".tmp")
    with open(tmp, "w", encoding="utf-8") as fh:
        fh.write(text)
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, path)
