"""Keep the UI's evaluation run dirs (and the SQLite history, when stored) across a Space's restarts.

A Space's disk is lost when it restarts. Two ways out, chosen at start:

- **disk**: a persistent directory (`ROUNDTABLE_PERSIST_DIR`, or `/data/roundtable` on a Space whose `/data`
  exists and is writable). `<cache>/ui-evaluation` (where ui/evaluation.py keeps its run dirs) becomes a link
  into it, and the SQLite history file lives in it.
- **hub**: a private dataset repo (`ROUNDTABLE_PERSIST_REPO`) written with the Space's `HF_TOKEN`. At start its
  contents are downloaded back into place; then a `huggingface_hub.CommitScheduler` pushes a staging folder
  every `ROUNDTABLE_PERSIST_MINUTES` (and once more at exit). The staging folder holds copies of the run dirs
  and a consistent snapshot of the SQLite history (sqlite3's backup API, never a half-written file). A file
  that contains one of the process's secrets (settings.secret_values()) is never staged, and neither is
  anything outside those two places (no `.env`, no auth secret, no sandbox or model caches).

Without either, nothing is kept beyond the process's disk (the default for a local run, whose disk persists).
"""

from __future__ import annotations

import contextlib
import os
import shutil
import sqlite3
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from loguru import logger

from agents.tools.sources import blocked_source
from config.settings import Settings

RUNS_DIRNAME = "ui-evaluation"  # ui/evaluation.py: settings.cache_dir / "ui-evaluation"
HISTORY_FILENAME = "history.sqlite3"
STAGING_DIRNAME = "persist-staging"
SPACE_DATA_ROOT = Path("/data")
REPO_RUNS = "runs"  # layout of the dataset repo: runs/<run dir>/..., history/history.sqlite3
REPO_HISTORY = f"history/{HISTORY_FILENAME}"
SKIP_SUFFIXES = (".lock", ".tmp", ".part", "-journal", "-wal", "-shm")

Mode = Literal["disk", "hub", "none"]


@dataclass
class Plan:
    mode: Mode
    reason: str
    persist_dir: Path | None = None  # disk mode
    repo_id: str | None = None  # hub mode

    def describe(self) -> str:
        if self.mode == "disk":
            return f"run dirs and history are kept in {self.persist_dir}"
        if self.mode == "hub":
            return f"run dirs and history are pushed to the private dataset {self.repo_id}"
        return "run dirs and history stay on this machine's disk"


def writable_dir(path: Path) -> bool:
    return path.is_dir() and os.access(path, os.W_OK | os.X_OK)


def choose(settings: Settings, data_root: Path = SPACE_DATA_ROOT) -> Plan:
    """Where things persist: an explicit dir, a Space's /data, a dataset repo, or nowhere beyond this disk."""
    if settings.persist_dir is not None:
        return Plan("disk", "ROUNDTABLE_PERSIST_DIR is set", persist_dir=settings.persist_dir)
    if settings.space_id and writable_dir(data_root):
        return Plan("disk", f"the Space has persistent storage at {data_root}", persist_dir=data_root / "roundtable")
    if settings.persist_repo:
        # The repo is downloaded back into the cache dir at start: never the benchmark's data or a mirror of it.
        if (why := blocked_source(f"https://huggingface.co/datasets/{settings.persist_repo}")) is not None:
            return Plan("none", f"ROUNDTABLE_PERSIST_REPO={settings.persist_repo!r} is refused ({why}): nothing is pushed")
        if settings.hf_token is None:
            return Plan("none", "ROUNDTABLE_PERSIST_REPO is set but HF_TOKEN is not: nothing is pushed")
        return Plan("hub", "ROUNDTABLE_PERSIST_REPO is set", repo_id=settings.persist_repo)
    if settings.space_id:
        return Plan("none", "this Space has no writable /data and no ROUNDTABLE_PERSIST_REPO: run dirs and history "
                            "are lost when it restarts")
    return Plan("none", "a local run: the cache dir persists on its own")


def history_file(settings: Settings, plan: Plan | None = None) -> Path:
    """The SQLite history file: in the persistent dir in disk mode, else in the cache dir."""
    plan = plan or choose(settings)
    if plan.mode == "disk" and plan.persist_dir is not None:
        return plan.persist_dir / HISTORY_FILENAME
    return settings.cache_dir / HISTORY_FILENAME


# --- disk mode ----------------------------------------------------------------------------------------------
def link_runs(cache_dir: Path, persist_dir: Path) -> Path:
    """Make `<cache>/ui-evaluation` a link to `<persist>/ui-evaluation`, moving any run dirs already there."""
    target = persist_dir / RUNS_DIRNAME
    target.mkdir(parents=True, exist_ok=True)
    link = cache_dir / RUNS_DIRNAME
    cache_dir.mkdir(parents=True, exist_ok=True)
    if link.is_symlink():
        if link.resolve() == target.resolve():
            return target
        link.unlink()
    elif link.is_dir():
        for entry in link.iterdir():
            if not (target / entry.name).exists():
                shutil.move(str(entry), str(target / entry.name))
        shutil.rmtree(link)
    link.symlink_to(target, target_is_directory=True)
    return target


# --- hub mode -----------------------------------------------------------------------------------------------
def contains_secret(path: Path, secrets: list[str]) -> bool:
    if not secrets:
        return False
    try:
        data = path.read_bytes()
    except OSError:
        return True  # unreadable: do not push what we cannot check
    return any(s.encode() in data for s in secrets)


def snapshot_sqlite(source: Path, dest: Path) -> bool:
    """A consistent copy of a live SQLite database (the backup API copies a committed state)."""
    if not source.is_file():
        return False
    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp = dest.with_name(dest.name + ".tmp")
    src = sqlite3.connect(f"file:{source}?mode=ro", uri=True)
    try:
        out = sqlite3.connect(tmp)
        try:
            src.backup(out)
        finally:
            out.close()
    finally:
        src.close()
    os.replace(tmp, dest)
    return True


@dataclass
class Stager:
    """Copies what may be pushed into the staging folder the CommitScheduler watches."""

    runs_dir: Path
    history_db: Path | None
    staging: Path
    secrets: list[str] = field(default_factory=list)
    refused: list[str] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def stage(self) -> None:
        with self._lock:  # the scheduler's thread and push_now() may stage at once
            self._stage()

    def _stage(self) -> None:
        runs_out = self.staging / REPO_RUNS
        if self.runs_dir.is_dir():
            for src in sorted(self.runs_dir.rglob("*")):
                if not src.is_file() or src.is_symlink() or src.name.endswith(SKIP_SUFFIXES):
                    continue
                dest = runs_out / src.relative_to(self.runs_dir)
                st = src.stat()
                if dest.exists() and dest.stat().st_size == st.st_size and dest.stat().st_mtime >= st.st_mtime:
                    continue
                if contains_secret(src, self.secrets):
                    rel = str(src.relative_to(self.runs_dir))
                    if rel not in self.refused:
                        self.refused.append(rel)
                        logger.warning("persistence: not pushing {} (it contains a secret)", rel)
                    continue
                dest.parent.mkdir(parents=True, exist_ok=True)
                shutil.copy2(src, dest)
        if self.history_db is not None:
            snap = self.staging / REPO_HISTORY
            if snapshot_sqlite(self.history_db, snap) and contains_secret(snap, self.secrets):
                snap.unlink()
                logger.warning("persistence: not pushing the history (it contains a secret)")


def restore_from_repo(repo_id: str, token: str, staging: Path, runs_dir: Path, history_db: Path | None,
                      endpoint: str | None = None) -> int:
    """Download the dataset repo into the staging folder and put its run dirs and history back in place.
    Files already present locally win. Returns how many files were restored."""
    from huggingface_hub import snapshot_download
    from huggingface_hub.errors import RepositoryNotFoundError, RevisionNotFoundError

    staging.mkdir(parents=True, exist_ok=True)
    try:
        snapshot_download(repo_id=repo_id, repo_type="dataset", local_dir=staging, token=token, endpoint=endpoint)
    except (RepositoryNotFoundError, RevisionNotFoundError):
        return 0  # a new repo: nothing to restore yet
    restored = 0
    runs_in = staging / REPO_RUNS
    if runs_in.is_dir():
        for src in runs_in.rglob("*"):
            if src.is_file():
                dest = runs_dir / src.relative_to(runs_in)
                if not dest.exists():
                    dest.parent.mkdir(parents=True, exist_ok=True)
                    shutil.copy2(src, dest)
                    restored += 1
    snap = staging / REPO_HISTORY
    if history_db is not None and snap.is_file() and not history_db.exists():
        history_db.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(snap, history_db)
        restored += 1
    return restored


def make_scheduler(repo_id: str, token: str, stager: Stager, every_minutes: float, endpoint: str | None = None) -> Any:
    """A CommitScheduler that stages before each push (so it pushes copies, never live files)."""
    from huggingface_hub import CommitScheduler, HfApi

    class StagingScheduler(CommitScheduler):
        def push_to_hub(self) -> Any:
            stager.stage()
            return super().push_to_hub()

    stager.staging.mkdir(parents=True, exist_ok=True)
    return StagingScheduler(
        repo_id=repo_id, repo_type="dataset", folder_path=stager.staging, every=every_minutes, private=True,
        token=token, hf_api=HfApi(token=token, endpoint=endpoint),
        ignore_patterns=[".cache/**", "**/.cache/**", ".env*", "**/.env*"],
    )


@dataclass
class Persistence:
    plan: Plan
    history_db: Path
    scheduler: Any = None

    def push_now(self) -> None:
        """Push at once (hub mode); the app's exit does the same through the scheduler's atexit hook."""
        if self.scheduler is not None:
            self.scheduler.trigger().result()

    def stop(self) -> None:
        """No more pushes; waits for one already under way."""
        if self.scheduler is not None:
            future = getattr(self.scheduler, "last_future", None)
            self.scheduler.stop()
            if future is not None:
                with contextlib.suppress(Exception):
                    future.result(timeout=60)


_lock = threading.Lock()
_installed: Persistence | None = None


def install(settings: Settings, *, store_history: bool, data_root: Path = SPACE_DATA_ROOT) -> Persistence:
    """Set persistence up once per process (called at app start, before the data layer opens the database)."""
    global _installed
    with _lock:
        if _installed is not None:
            return _installed
        plan = choose(settings, data_root)
        db = history_file(settings, plan)
        persistence = Persistence(plan, db)
        runs_dir = settings.cache_dir / RUNS_DIRNAME
        if plan.mode == "disk" and plan.persist_dir is not None:
            try:
                link_runs(settings.cache_dir, plan.persist_dir)
            except OSError as exc:
                logger.warning("persistence: cannot use {} ({}); run dirs stay in the cache dir", plan.persist_dir, exc)
                persistence = Persistence(Plan("none", f"{plan.persist_dir} is not usable: {exc}"),
                                          settings.cache_dir / HISTORY_FILENAME)
        elif plan.mode == "hub" and plan.repo_id and settings.hf_token is not None:
            token = settings.hf_token.get_secret_value()
            staging = settings.cache_dir / STAGING_DIRNAME
            history_db = db if store_history else None
            endpoint = settings.hf_endpoint
            try:
                n = restore_from_repo(plan.repo_id, token, staging, runs_dir, history_db, endpoint=endpoint)
                logger.info("persistence: restored {} file(s) from the dataset {}", n, plan.repo_id)
                stager = Stager(runs_dir, history_db, staging, secrets=settings.secret_values())
                persistence.scheduler = make_scheduler(plan.repo_id, token, stager, settings.persist_minutes, endpoint=endpoint)
            except Exception as exc:  # the Hub being down must not keep the app from starting
                logger.warning("persistence: the dataset {} is not usable ({}); nothing is pushed",
                               plan.repo_id, type(exc).__name__)
                persistence = Persistence(Plan("none", f"the dataset {plan.repo_id} is not usable"), db)
        logger.info("persistence: {} ({})", persistence.plan.describe(), persistence.plan.reason)
        _installed = persistence
        return persistence


def reset_for_tests() -> None:
    global _installed
    with _lock:
        if _installed is not None:
            _installed.stop()
        _installed = None
