"""`submit.py sweep` without Ray: several teams x attempts as run dirs, one concurrency, resumable, refusals
that say what to do. (tests/distributed/ runs the same sweep on a Ray cluster.)"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from evaluation.api import TaskItem
from evaluation.report import build_report, load_labels
from evaluation.store import RunStore
from evaluation.sweep import Sweep, SweepError
from tests.conftest import settings_for
from tests.evaluation.helpers import Responder, invented_questions, questions_asked

QUESTIONS = [q for q in invented_questions() if not q["file_name"]]
REPO = Path(__file__).resolve().parents[2]


def tasks() -> list[TaskItem]:
    return [TaskItem(q["task_id"], q["question"], q["Level"], q["file_name"]) for q in QUESTIONS]


async def test_a_sweep_writes_one_run_dir_per_team_and_attempt_and_resumes_without_recomputing(
    llm_server, tmp_path: Path
) -> None:
    responder = Responder(QUESTIONS)
    server = llm_server(responder.script())
    settings = settings_for(server)
    sweep_dir = tmp_path / "sweep"
    sweep = Sweep(sweep_dir, settings=settings, teams=["solo", "debate", "solo"], attempts=2, concurrency=3)
    sweep.prepare(tasks())
    results = await sweep.run(tasks())
    assert sorted(results) == ["debate-1", "debate-2", "solo-1", "solo-2"]  # the repeated team counts once
    truth = {q["task_id"]: q["final_answer"] for q in QUESTIONS}
    for label in results:
        store = RunStore.open(sweep_dir / label)
        assert {t: r.answer for t, r in store.records().items()} == truth, label
        assert store.meta["team"]["name"] == label.split("-")[0]
    meta = json.loads((sweep_dir / "sweep.json").read_text())
    assert meta["attempts"] == 2 and [e["run_dir"] for e in meta["run_dirs"]] == ["solo-1", "solo-2", "debate-1", "debate-2"]
    asked = questions_asked(server.requests, QUESTIONS)
    assert all(n > 0 for n in asked.values())

    again = Sweep(sweep_dir, settings=settings)  # no teams: the sweep dir says
    assert again.tasks() == tasks() and again.done(tasks()) == 4 * len(QUESTIONS)
    await again.run(again.tasks())
    assert questions_asked(server.requests, QUESTIONS) == asked  # nothing was solved again

    labels = tmp_path / "labels.jsonl"
    labels.write_text("".join(json.dumps({"task_id": t, "final_answer": a}) + "\n" for t, a in truth.items()))
    found, problems = load_labels(labels)
    report = build_report(RunStore.open(sweep_dir / "debate-2"), found, problems)
    assert report["totals"]["gaia_correct"] == len(QUESTIONS)  # eval reads a sweep's run dir like any run's


def test_a_sweep_dir_refuses_other_teams_other_attempts_and_foreign_dirs(llm_server, tmp_path: Path) -> None:
    settings = settings_for(llm_server({}))
    sweep_dir = tmp_path / "sweep"
    Sweep(sweep_dir, settings=settings, teams=["solo"], attempts=2).prepare(tasks())
    with pytest.raises(SweepError, match=r"is a sweep of .*solo\.yaml; resume it without --team"):
        Sweep(sweep_dir, settings=settings, teams=["debate"])
    with pytest.raises(SweepError, match="was started with --attempts 2"):
        Sweep(sweep_dir, settings=settings, attempts=3)
    foreign = tmp_path / "notes"
    foreign.mkdir()
    (foreign / "todo.txt").write_text("mine")
    with pytest.raises(SweepError, match="exists and is not a sweep dir"):
        Sweep(foreign, settings=settings, teams=["solo"])
    (sweep_dir / "sweep.json").write_text("{not json")
    with pytest.raises(SweepError, match="sweep.json is unreadable"):
        Sweep(sweep_dir, settings=settings)
    with pytest.raises(SweepError, match="no-such-team"):
        Sweep(tmp_path / "new", settings=settings, teams=["no-such-team"])
    with pytest.raises(SweepError, match="at least one --team"):
        Sweep(tmp_path / "new", settings=settings)


def test_the_sweep_command_says_what_is_missing(tmp_path: Path) -> None:
    out = subprocess.run([sys.executable, str(REPO / "submit.py"), "sweep", "--sweep-dir", str(tmp_path / "s")],
                         capture_output=True, text=True, timeout=120, cwd=tmp_path,
                         env={"PATH": "/usr/bin:/bin", "ROUNDTABLE_ENV_FILE": "", "HOME": str(tmp_path)})
    assert out.returncode == 1 and "a sweep needs at least one --team" in out.stderr, out.stderr
    assert not (tmp_path / "s").exists()
    help_text = subprocess.run([sys.executable, str(REPO / "submit.py"), "sweep", "--help"], capture_output=True,
                               text=True, timeout=120).stdout
    for option in ("--team", "--attempts", "--sweep-dir", "--ray", "--provider-cap", "--solvers", "--retries"):
        assert option in help_text
