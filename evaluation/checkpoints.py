"""The attempts of a vote or an escalation that ended, kept per question until the question's answer is written.

A batch stopped while a question's attempts run (Ctrl-C, a cancel from the UI, a crash, the machine going
down) records that question as failed; the resume runs it again. Without this, every attempt would run again,
the ones that had already ended included: for a five-way vote, up to four whole debates paid twice. So each
attempt that ends on its own is appended here as it ends (`attempts/<key>.jsonl` in the run dir, one
`FinishedAttempt` per line, fsynced, secrets masked like answers.jsonl), and the resumed question reuses it
(teams/strategies/run.py, when its fingerprint still matches). The file goes once the question's record is
done. A cut-off last line (a process killed while writing it) is skipped.

Only the batch's own process writes here. On Ray the attempts run inside a worker's solver and are not kept:
a question lost with its worker runs all its attempts again (README, "On a Ray cluster").
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

from loguru import logger

from config.log import mask
from evaluation.store import append_line
from teams.strategies.attempts import FinishedAttempt

DIRNAME = "attempts"


def checkpoint_path(run_dir: Path, task_id: str) -> Path:
    # a task id is whatever the API sent: hashed, it is always one safe file name
    return run_dir / DIRNAME / (hashlib.sha256(task_id.encode()).hexdigest()[:24] + ".jsonl")


def keep(run_dir: Path, task_id: str, attempt: FinishedAttempt) -> None:
    path = checkpoint_path(run_dir, task_id)
    path.parent.mkdir(parents=True, exist_ok=True)
    append_line(path, mask(json.dumps(attempt.to_dict(), ensure_ascii=False, default=str)))


def finished(run_dir: Path, task_id: str) -> dict[int, FinishedAttempt]:
    """The kept attempts of `task_id`, by number (the last line of a number wins); {} when none."""
    path = checkpoint_path(run_dir, task_id)
    out: dict[int, FinishedAttempt] = {}
    try:
        lines = path.read_text(encoding="utf-8", errors="replace").split("\n")
    except FileNotFoundError:
        return out
    except OSError as exc:
        logger.warning("the kept attempts in {} are unreadable ({}): they run again", path, exc)
        return out
    for n, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            attempt = FinishedAttempt.from_dict(json.loads(line))
        except (ValueError, TypeError, KeyError):
            logger.warning("{} line {} is not a kept attempt (cut short?); skipped", path.name, n)
            continue
        out[attempt.number] = attempt
    return out


def discard(run_dir: Path, task_id: str) -> None:
    try:
        checkpoint_path(run_dir, task_id).unlink()
    except FileNotFoundError:
        pass
    except OSError as exc:
        logger.warning("could not remove the kept attempts of {}: {}", task_id, exc)
