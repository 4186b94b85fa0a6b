"""The run dir: answers survive torn writes, old or foreign run dirs are refused clearly and left untouched."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from config.log import register_secrets
from evaluation.api import TaskItem
from evaluation.store import ANSWERS_JSONL, RUN_FORMAT, AnswerRecord, RunDirError, RunStore, new_run_dir


def record(task_id: str, answer: str = "42", state: str = "done", **kw) -> AnswerRecord:
    return AnswerRecord(task_id=task_id, question=f"question {task_id}", state=state, answer=answer, duration_s=1.0, **kw)  # type: ignore[arg-type]


def test_a_new_run_dir_records_format_and_code_version(tmp_path: Path) -> None:
    store = RunStore.create(tmp_path / "r", {"team": {"name": "t"}})
    meta = json.loads((tmp_path / "r" / "run.json").read_text())
    assert meta["format"] == RUN_FORMAT and meta["team"] == {"name": "t"} and meta["sessions"] == []
    store.save_tasks([TaskItem("a", "qa", "1", ""), TaskItem("b", "qb", "1", "b.png")])
    store.save_tasks([TaskItem("b", "qb", "1", "b.png"), TaskItem("c", "qc", "1", "")])
    assert [t.task_id for t in RunStore.open(tmp_path / "r").tasks()] == ["a", "b", "c"]


def test_timestamped_dirs_never_collide(tmp_path: Path) -> None:
    first = new_run_dir(tmp_path)
    first.mkdir()
    second = new_run_dir(tmp_path)
    assert second != first and second.name.startswith(first.name)


def test_the_last_record_of_a_task_wins(tmp_path: Path) -> None:
    store = RunStore.create(tmp_path / "r", {})
    store.append(record("a", "", state="failed", error="boom"))
    store.append(record("a", "7", attempt=2))
    store.append(record("b", "8"))
    records = RunStore.open(tmp_path / "r").records()
    assert records["a"].answer == "7" and records["a"].state == "done" and records["a"].attempt == 2
    assert records["b"].answer == "8"


def test_a_torn_last_line_is_skipped_and_the_next_answer_is_kept(tmp_path: Path) -> None:
    store = RunStore.create(tmp_path / "r", {})
    store.append(record("a", "1"))
    with open(tmp_path / "r" / ANSWERS_JSONL, "a") as fh:
        fh.write('{"task_id": "b", "question": "q", "sta')  # what a SIGKILL mid-write leaves
    reread = RunStore.open(tmp_path / "r")
    assert set(reread.records()) == {"a"}
    assert reread.warnings == [f"{ANSWERS_JSONL} line 2 is cut short (the process was killed while writing it); skipped"]
    reread.append(record("c", "3"))
    assert {k: v.answer for k, v in reread.records().items()} == {"a": "1", "c": "3"}


def test_a_run_dir_from_an_older_version_is_refused_and_left_untouched(tmp_path: Path) -> None:
    old = tmp_path / "old"
    old.mkdir()
    (old / "run.json").write_text(json.dumps({"team": "debate", "code_version": {"commit": "abcdef1234567890"}}))
    (old / "answers.jsonl").write_text('{"task": "a", "answer": "1"}\n')
    before = {p.name: p.read_bytes() for p in old.iterdir()}
    with pytest.raises(RunDirError, match=r"written by an older submit.py \(commit abcdef123456\).*format unversioned.*reads format 1.*Nothing in it was changed"):
        RunStore.open(old)
    assert {p.name: p.read_bytes() for p in old.iterdir()} == before


def test_newer_and_foreign_dirs_are_refused(tmp_path: Path) -> None:
    newer = tmp_path / "newer"
    newer.mkdir()
    (newer / "run.json").write_text(json.dumps({"format": RUN_FORMAT + 1}))
    with pytest.raises(RunDirError, match="written by a newer submit.py"):
        RunStore.open(newer)
    with pytest.raises(RunDirError, match="is not a run dir"):
        RunStore.open(tmp_path)
    with pytest.raises(RunDirError, match="does not exist"):
        RunStore.open(tmp_path / "nope")
    (tmp_path / "busy").mkdir()
    (tmp_path / "busy" / "notes.txt").write_text("mine")
    with pytest.raises(RunDirError, match="already exists and is not an empty run dir"):
        RunStore.create(tmp_path / "busy", {})


def test_secrets_never_reach_the_run_dir(tmp_path: Path) -> None:
    secret = "hf_supersecretvalue123456"
    register_secrets([secret])
    store = RunStore.create(tmp_path / "r", {"note": f"token {secret}"})
    store.append(record("a", "1", result={"trace": [{"content": f"HF_TOKEN={secret}"}]}))
    for path in (tmp_path / "r").iterdir():
        assert secret not in path.read_text(errors="replace")
    assert "***" in (tmp_path / "r" / ANSWERS_JSONL).read_text()


def test_one_writer_at_a_time(tmp_path: Path) -> None:
    store = RunStore.create(tmp_path / "r", {})
    store.lock()
    code = (
        "import sys; from evaluation.store import RunStore, RunDirError\n"
        "try:\n    RunStore.open(sys.argv[1]).lock()\nexcept RunDirError as e:\n    print(e); sys.exit(3)\n"
    )
    proc = subprocess.run([sys.executable, "-c", code, str(tmp_path / "r")], capture_output=True, text=True,
                          cwd=Path(__file__).resolve().parents[2], env={**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[2])})
    assert proc.returncode == 3, proc.stderr
    assert f"in use by another run (submit.py or the UI), pid {os.getpid()}" in proc.stdout
    store.unlock()
    again = RunStore.open(tmp_path / "r")
    again.lock()  # free once released
    again.unlock()
