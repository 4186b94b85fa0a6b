"""Chainlit's upload folder, one per app instance.

Chainlit keeps every session's uploads and element files in `<app root>/.files/<session id>/` and deletes
the whole `.files` folder when its server shuts down. Two instances started from one checkout (a second
`make run`, a test server beside a dev server, a rolling restart) therefore delete each other's files, and the
survivor's next upload or evaluation table fails with a raw FileNotFoundError. Chainlit has no setting for the
folder, so each instance points Chainlit's module-level FILES_DIRECTORY at a folder of its own,
`.files/<pid>-<random>/`; Chainlit's shutdown then removes only that one.

Each instance holds an exclusive lock on a file in its folder for as long as it lives. A folder whose lock
can be taken belongs to an instance that is gone (killed, crashed) and is removed when the next one starts.
"""

from __future__ import annotations

import fcntl
import os
import secrets
import shutil
from pathlib import Path
from typing import IO

from loguru import logger

LOCK_NAME = ".instance.lock"

_held: IO[bytes] | None = None  # kept open (and locked) for the life of the process
_mine: Path | None = None


def _locked_by_someone(folder: Path) -> bool:
    lock = folder / LOCK_NAME
    try:
        with open(lock, "rb") as f:
            try:
                fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                return True
            fcntl.flock(f, fcntl.LOCK_UN)
            return False
    except FileNotFoundError:
        return False


def remove_abandoned(root: Path, keep: Path | None = None) -> list[Path]:
    """Delete the instance folders under `root` whose instance is gone; returns what was removed."""
    removed: list[Path] = []
    if not root.is_dir():
        return removed
    for folder in root.iterdir():
        if folder == keep or not folder.is_dir() or not (folder / LOCK_NAME).exists():
            continue  # a session folder of an older layout, or not ours: leave it
        if not _locked_by_someone(folder):
            shutil.rmtree(folder, ignore_errors=True)
            removed.append(folder)
    return removed


def claim(root: Path) -> Path:
    """Create and lock this instance's folder under `root` (idempotent within a process)."""
    global _held, _mine
    if _mine is not None:
        return _mine
    folder = root / f"{os.getpid()}-{secrets.token_hex(4)}"
    folder.mkdir(parents=True, mode=0o700)
    lock = open(folder / LOCK_NAME, "wb")  # noqa: SIM115  (held open until the process exits)
    fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
    _held, _mine = lock, folder
    return folder


def install() -> Path:
    """Give this Chainlit server its own upload folder; call once at app import."""
    import chainlit.config
    import chainlit.server

    root = Path(chainlit.config.APP_ROOT) / ".files"
    folder = claim(root)
    # server.py imported the name at its own import; session.py reads it from chainlit.config on each use.
    chainlit.config.FILES_DIRECTORY = folder
    chainlit.server.FILES_DIRECTORY = folder
    if removed := remove_abandoned(root, keep=folder):
        logger.info("removed {} upload folder(s) of app instances that are gone", len(removed))
    return folder
