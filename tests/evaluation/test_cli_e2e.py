"""`submit.py` end to end as a real process: the local scoring API, the scripted model server, a fake dataset hub.

The big test runs the shipped debate team on five invented questions (one attachment served only by the fake
GAIA dataset hub: the scoring API answers 404 for it), SIGKILLs the process mid-run, resumes, and proves from
the model server's recorded requests that finished questions were not recomputed; then a dry run, a real
submit, and a local evaluation.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from evaluation.store import RunStore
from tests.conftest import OPENAI_STRONG
from tests.evaluation.helpers import (
    ATTACHMENT_TEXT,
    CODE_WORD,
    GAIA_REPO,
    HUB_TOKEN,
    HUB_USER,
    Responder,
    flat,
    invented_questions,
    questions_asked,
    read_answers,
    served,
    truths,
)
from tests.fakes.hf_hub import FakeHub
from tests.fakes.scoring_api import ScoringServer
from tests.fakes.scripted_llm import ScriptedLLM

REPO = Path(__file__).resolve().parents[2]
SUBMIT = REPO / "submit.py"
QUESTIONS = invented_questions()
SPACE_ID = "alice/roundtable-agent"


@dataclass
class World:
    llm: ScriptedLLM
    responder: Responder
    scoring: ScoringServer
    hub: FakeHub
    tmp: Path

    def env(self, **extra: str) -> dict[str, str]:
        env = {
            **os.environ,  # the autouse fixture already removed every key and endpoint from it
            "OPENAI_BASE_URL": self.llm.url,
            "OPENAI_API_KEY": "sk-test-not-a-real-key-0000",
            "LLM_PROVIDER": "openai",
            "LLM_RETRY_BASE_DELAY": "0.01",
            "SCORING_API_URL": self.scoring.url,
            "HF_ENDPOINT": self.hub.url,
            "HF_TOKEN": HUB_TOKEN,
            "HF_HOME": str(self.tmp / "hf-home"),  # no developer login cache
            "ROUNDTABLE_ENV_FILE": "",
            "ROUNDTABLE_CACHE_DIR": str(self.tmp / "cache"),
            "SANDBOX_BACKEND": "subprocess",
            "SANDBOX_ALLOW_SUBPROCESS": "1",
            "SPACE_ID": SPACE_ID,
            "COLUMNS": "200",
            "PYTHONUNBUFFERED": "1",
        }
        env.pop("CI", None)
        for key, value in extra.items():
            if value is None:
                env.pop(key, None)
            else:
                env[key] = value
        return env

    def cli(self, *args: str, env: dict[str, str] | None = None, timeout: float = 120) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, str(SUBMIT), *args], env=env or self.env(), cwd=self.tmp,
            capture_output=True, text=True, timeout=timeout,
        )


@pytest.fixture
def world(llm_server, tmp_path: Path) -> Iterator[World]:
    responder = Responder(QUESTIONS, answers={"task-aa03": "lake varn"})  # right but not exact: GAIA ✓, strict ✗
    llm = llm_server(responder.script())
    with ScoringServer(served(QUESTIONS), answers=truths(QUESTIONS)) as scoring, FakeHub(tokens={HUB_TOKEN: HUB_USER}) as hub:
        hub.add_file(GAIA_REPO, "2023/validation/task-aa02.txt", ATTACHMENT_TEXT)
        yield World(llm, responder, scoring, hub, tmp_path)


def assert_no_secret_in(run_dir: Path, *texts: str) -> None:
    for path in run_dir.rglob("*"):
        if path.is_file():
            assert HUB_TOKEN not in path.read_text(errors="replace"), path
    for text in texts:
        assert HUB_TOKEN not in text


def test_run_killed_mid_run_resumes_without_recomputing_then_submits_and_evaluates(world: World) -> None:
    run_dir = world.tmp / "runs" / "first"
    # the first two questions finish at once; the other three are stuck in slow model calls when the kill comes
    world.responder.delay_for.update({"task-aa03": 60, "task-aa04": 60, "task-aa05": 60})
    log = open(world.tmp / "first-session.out", "w")
    proc = subprocess.Popen(
        [sys.executable, str(SUBMIT), "run", "--team", "debate", "--concurrency", "2", "--run-dir", str(run_dir)],
        env=world.env(), cwd=world.tmp, stdout=log, stderr=subprocess.STDOUT,
    )
    try:
        deadline = time.monotonic() + 90
        while sum(a["state"] == "done" for a in read_answers(run_dir)) < 2:
            assert proc.poll() is None, (world.tmp / "first-session.out").read_text()
            assert time.monotonic() < deadline, "the first two answers never reached the disk"
            time.sleep(0.05)
        while not any(r.agent == "planner" and "Ossel" in r.question for r in world.llm.requests):
            assert time.monotonic() < deadline
            time.sleep(0.05)  # the next question is in flight
        os.kill(proc.pid, signal.SIGKILL)
        assert proc.wait(timeout=10) == -signal.SIGKILL
    finally:
        if proc.poll() is None:
            proc.kill()
        log.close()

    first = read_answers(run_dir)
    assert [(a["task_id"], a["state"], a["answer"]) for a in first] in (
        [("task-aa01", "done", "17"), ("task-aa02", "done", CODE_WORD)],
        [("task-aa02", "done", CODE_WORD), ("task-aa01", "done", "17")],
    )
    # the attachment came from the gated dataset hub, with the token, after the scoring API's 404
    assert [r.path for r in world.scoring.requests_to("/files")] == ["/files/task-aa02"]
    downloads = [r for r in world.hub.requests if r.method == "GET" and "/resolve/" in r.path]
    assert [r.path for r in downloads] == [f"/datasets/{GAIA_REPO}/resolve/main/2023/validation/task-aa02.txt"]
    assert downloads[0].token == HUB_TOKEN
    assert (world.tmp / "cache" / "attachments" / "task-aa02" / "task-aa02.txt").read_bytes() == ATTACHMENT_TEXT
    coder_saw = [r for r in world.llm.requests_for("coder") if any(m.get("role") == "tool" for m in r.messages)]
    assert coder_saw and CODE_WORD in json.dumps(coder_saw[0].messages)

    # resume: the slow questions are quick now; the finished ones must not be asked again
    world.responder.delay_for.clear()
    before = len(world.llm.requests)
    resumed = world.cli("run", "--run-dir", str(run_dir))
    assert resumed.returncode == 0, resumed.stdout + resumed.stderr
    out = flat(resumed.stdout)
    assert f"Resuming {run_dir}" in out and "2 question(s) already answered" in out
    asked = questions_asked(world.llm.requests[before:], QUESTIONS)
    assert asked["task-aa01"] == 0 and asked["task-aa02"] == 0
    assert all(asked[t] > 0 for t in ("task-aa03", "task-aa04", "task-aa05"))
    after = read_answers(run_dir)
    assert after[:2] == first  # the finished lines are untouched
    assert {a["task_id"]: a["answer"] for a in after} == {
        "task-aa01": "17", "task-aa02": CODE_WORD, "task-aa03": "lake varn", "task-aa04": "abo, mek, zib", "task-aa05": "210",
    }
    assert [r for r in world.hub.requests if r.method == "GET" and "/resolve/" in r.path] == downloads  # no re-download
    meta = json.loads((run_dir / "run.json").read_text())
    assert meta["team"]["name"] == "debate" and meta["models"]["planner"] == f"openai/{OPENAI_STRONG}"
    assert meta["code_version"]["commit"] or meta["code_version"]["package"]
    assert len(meta["sessions"]) == 2 and "finished_at" not in meta["sessions"][0]  # the killed one
    assert meta["sessions"][1]["resumed"] == 2 and meta["sessions"][1]["done"] == 5

    # dry run: shows the payload and who it would be submitted as; sends nothing
    dry = world.cli("submit", "--run-dir", str(run_dir))
    assert dry.returncode == 0, dry.stderr
    out = flat(dry.stdout)
    assert f"as {HUB_USER} (verified by the Hugging Face token" in out
    assert f"agent_code: https://huggingface.co/spaces/{SPACE_ID}/tree/main" in out
    assert '"submitted_answer": "lake varn"' in out and "Dry run: nothing was sent" in out
    assert world.scoring.submissions == []

    sent = world.cli("submit", "--run-dir", str(run_dir), "--yes")
    assert sent.returncode == 0, sent.stderr
    assert f"Submitted as {HUB_USER}: score 80% (4/5 correct)" in flat(sent.stdout)
    assert "Score calculated successfully: 4/5" in flat(sent.stdout)
    assert world.scoring.submissions == [{
        "username": HUB_USER,
        "agent_code": f"https://huggingface.co/spaces/{SPACE_ID}/tree/main",
        "answers": [{"task_id": a["task_id"], "submitted_answer": a["answer"]} for a in sorted(after, key=lambda a: a["task_id"])],
    }]
    assert all("authorization" not in r.headers for r in world.scoring.requests)
    saved = json.loads((run_dir / "submission.json").read_text())
    assert saved["result"]["correct_count"] == 4 and saved["payload"]["username"] == HUB_USER

    # local evaluation against labels (one bad line): strict and GAIA side by side
    labels = world.tmp / "labels.jsonl"
    labels.write_text("\n".join([*(json.dumps({"task_id": t, "final_answer": a}) for t, a in truths(QUESTIONS).items()), "oops"]) + "\n")
    ev = world.cli("eval", "--run-dir", str(run_dir), "--labels", str(labels))
    assert ev.returncode == 0, ev.stderr
    assert "strict exact match: 4/5 (80.0%) · GAIA scorer: 5/5 (100.0%)" in flat(ev.stdout)
    assert "labels.jsonl line 6: not valid JSON" in flat(ev.stderr)
    report = json.loads((run_dir / "report.json").read_text())
    assert report["formatting_problems"] == ["task-aa03"] and report["totals"]["answered"] == 5
    assert "| accuracy | 80.0% | 100.0% |" in (run_dir / "report.md").read_text()
    assert_no_secret_in(run_dir, dry.stdout, dry.stderr, sent.stdout, sent.stderr, resumed.stdout, resumed.stderr)


def small_run_dir(world: World, answers: dict[str, str]) -> Path:
    """A finished run dir made through the API (no team run needed for the submit-side tests)."""
    from evaluation.api import TaskItem
    from evaluation.store import AnswerRecord

    store = RunStore.create(world.tmp / "run", {"team": {"name": "solo"}})
    store.save_tasks([TaskItem(q["task_id"], q["question"], q["Level"], q["file_name"]) for q in QUESTIONS])
    for task_id, answer in answers.items():
        store.append(AnswerRecord(task_id, "q", "done", answer, 1.0))
    return store.path


def test_submit_without_a_token_is_a_clear_error_and_sends_nothing(world: World) -> None:
    run_dir = small_run_dir(world, {"task-aa01": "17"})
    res = world.cli("submit", "--run-dir", str(run_dir), "--yes", env=world.env(HF_TOKEN=None))
    assert res.returncode == 1
    assert "no Hugging Face token found: set HF_TOKEN" in flat(res.stderr) and "Nothing was submitted" in flat(res.stderr)
    assert world.scoring.submissions == [] and world.hub.requests == []


def test_submit_refuses_a_username_that_is_not_the_token_owner(world: World) -> None:
    run_dir = small_run_dir(world, {"task-aa01": "17"})
    res = world.cli("submit", "--run-dir", str(run_dir), "--yes", "--username", "mallory")
    assert res.returncode == 1
    assert "--username 'mallory' does not match the authenticated Hugging Face user 'alice'" in flat(res.stderr)
    assert world.scoring.submissions == []
    ok = world.cli("submit", "--run-dir", str(run_dir), "--yes", "--username", "alice", "--agent-code", "alice/other")
    assert ok.returncode == 0, ok.stderr
    assert world.scoring.submissions[0]["agent_code"] == "https://huggingface.co/spaces/alice/other/tree/main"
    # every question is in the payload, "" where there is no answer
    assert [a["submitted_answer"] for a in world.scoring.submissions[0]["answers"]] == ["17", "", "", "", ""]
    assert "4 of 5 questions have no answer" in flat(ok.stderr)


def test_submit_needs_an_agent_code_and_never_logs_in_without_a_terminal(world: World) -> None:
    run_dir = small_run_dir(world, {"task-aa01": "17"})
    res = world.cli("submit", "--run-dir", str(run_dir), "--yes", env=world.env(SPACE_ID=None))
    assert res.returncode == 1 and "no agent_code: set SPACE_ID" in flat(res.stderr)
    res = world.cli("submit", "--run-dir", str(run_dir), "--login", env=world.env(HF_TOKEN=None))
    assert res.returncode == 1 and "--login needs an interactive terminal" in flat(res.stderr)
    assert world.scoring.submissions == []


def test_a_422_or_a_dead_api_on_submit_fails_loudly_and_keeps_the_answers(world: World) -> None:
    run_dir = small_run_dir(world, {"task-aa01": "17"})
    before = (run_dir / "answers.jsonl").read_text()
    world.scoring.fail("submit", 422)
    res = world.cli("submit", "--run-dir", str(run_dir), "--yes")
    assert res.returncode == 1
    assert "Submission failed: the scoring API rejected the submission as malformed (HTTP 422): answers: Field required" in flat(res.stderr)
    world.scoring.fail("submit", 503, times=5)
    res = world.cli("submit", "--run-dir", str(run_dir), "--yes")
    assert res.returncode == 1 and "HTTP 503" in flat(res.stderr) and "after 3 tries" in flat(res.stderr)
    assert len(world.scoring.requests_to("/submit")) == 4  # the 422 once, the 503 three times
    assert (run_dir / "answers.jsonl").read_text() == before and not (run_dir / "submission.json").exists()


def test_run_with_a_broken_question_list_says_so_and_creates_nothing(world: World) -> None:
    world.scoring.questions_override = []
    res = world.cli("run", "--run-dir", str(world.tmp / "r1"))
    assert res.returncode == 1 and "empty list of questions" in flat(res.stderr) and "Nothing was run" in flat(res.stderr)
    world.scoring.questions_override = "<html>502 Bad Gateway</html>"
    res = world.cli("run", "--run-dir", str(world.tmp / "r1"))
    assert res.returncode == 1 and "did not return JSON" in flat(res.stderr)
    assert not (world.tmp / "r1").exists()


def test_run_skips_a_question_without_task_id_and_answers_the_rest(world: World) -> None:
    items = served(QUESTIONS)
    del items[2]["task_id"]
    world.scoring.questions_override = [items[0], items[2]]
    res = world.cli("run", "--team", "solo", "--run-dir", str(world.tmp / "r2"))
    assert res.returncode == 0, res.stderr
    assert "question #2 has no task_id" in flat(res.stderr)
    assert [a["task_id"] for a in read_answers(world.tmp / "r2")] == ["task-aa01"]


def test_resuming_a_run_dir_from_an_older_version_is_refused_clearly(world: World) -> None:
    old = world.tmp / "old-run"
    old.mkdir()
    (old / "run.json").write_text(json.dumps({"format": 0, "team": "debate"}))
    (old / "answers.jsonl").write_text('{"task_id": "task-aa01", "answer": "17"}\n')
    res = world.cli("run", "--run-dir", str(old))
    assert res.returncode == 1
    assert f"{old} was written by an older submit.py: run dir format 0" in flat(res.stderr)
    assert sorted(p.name for p in old.iterdir()) == ["answers.jsonl", "run.json"]
    assert world.llm.requests == [] and world.scoring.requests == []


def test_only_runs_the_chosen_questions_but_saves_them_all(world: World) -> None:
    res = world.cli("run", "--team", "solo", "--only", "task-aa05", "--run-dir", str(world.tmp / "r3"))
    assert res.returncode == 0, res.stderr
    assert [a["task_id"] for a in read_answers(world.tmp / "r3")] == ["task-aa05"]
    assert len(RunStore.open(world.tmp / "r3").tasks()) == 5
    res = world.cli("run", "--only", "nope", "--run-dir", str(world.tmp / "r3"))
    assert res.returncode == 1 and "--only: unknown task id(s) nope" in flat(res.stderr)


def test_questions_lists_attachment_availability(world: World) -> None:
    res = world.cli("questions")
    assert res.returncode == 0, res.stderr
    out = flat(res.stdout)
    assert "5 questions from" in out and "task-aa02.txt (GAIA dataset (HF))" in out
    res = world.cli("questions", "--json", env=world.env(HF_TOKEN=None))
    rows = {r["task_id"]: r for r in json.loads(res.stdout)}
    assert rows["task-aa02"]["attachment"] == "missing: set HF_TOKEN (GAIA dataset is gated)"
    assert rows["task-aa01"]["attachment"] is None
    assert not any(r.method == "GET" and "/resolve/" in r.path for r in world.hub.requests)  # checked, never downloaded
    world.scoring.files["task-aa02"] = ("task-aa02.txt", ATTACHMENT_TEXT)
    res = world.cli("questions", "--json")
    assert {r["task_id"]: r["attachment"] for r in json.loads(res.stdout)}["task-aa02"] == "scoring API"


def test_every_command_documents_itself(world: World) -> None:
    top = world.cli("--help")
    assert top.returncode == 0 and all(c in top.stdout for c in ("run", "submit", "eval", "questions"))
    for command, flags in {
        "run": ("--team", "--concurrency", "--only", "--run-dir", "--timeout"),
        "submit": ("--run-dir", "--yes", "--login", "--username", "--agent-code"),
        "eval": ("--run-dir", "--labels"),
        "questions": ("--json",),
    }.items():
        res = world.cli(command, "--help")
        assert res.returncode == 0 and all(f in res.stdout for f in flags), command


def test_ctrl_c_stops_the_run_and_keeps_every_finished_answer(world: World) -> None:
    run_dir = world.tmp / "interrupted"
    world.responder.delay_for.update({"task-aa03": 60, "task-aa04": 60, "task-aa05": 60})
    proc = subprocess.Popen(
        [sys.executable, str(SUBMIT), "run", "--team", "solo", "--concurrency", "2", "--run-dir", str(run_dir)],
        env=world.env(), cwd=world.tmp, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )
    deadline = time.monotonic() + 90
    while not (sum(a["state"] == "done" for a in read_answers(run_dir)) == 2
               and sum("Ossel" in r.question for r in world.llm.requests) and sum("zib" in r.question for r in world.llm.requests)):
        assert proc.poll() is None and time.monotonic() < deadline
        time.sleep(0.05)
    started = time.monotonic()
    proc.send_signal(signal.SIGINT)
    out, _ = proc.communicate(timeout=30)
    assert proc.returncode == 130, out
    assert time.monotonic() - started < 15
    assert "stopping: running questions are cancelled, finished answers are saved" in flat(out)
    records = {a["task_id"]: a for a in read_answers(run_dir)}
    assert {t: r["state"] for t, r in records.items()} == {
        "task-aa01": "done", "task-aa02": "done", "task-aa03": "failed", "task-aa04": "failed"}
    assert records["task-aa03"]["error"] == "cancelled before it finished"
    assert json.loads((run_dir / "run.json").read_text())["sessions"][0]["cancelled"] is True

    world.responder.delay_for.clear()
    again = world.cli("run", "--run-dir", str(run_dir))
    assert again.returncode == 0, again.stdout + again.stderr
    assert {a["task_id"] for a in read_answers(run_dir) if a["state"] == "done"} == {q["task_id"] for q in QUESTIONS}
