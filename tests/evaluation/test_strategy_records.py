"""answers.jsonl for a strategy team: the shipped `vote` and `escalate` teams through the real BatchRun, against
the scripted model server (the real `openai` provider path); old records still load.

The three attempts of teams/vote.yaml all land on the one configured provider here, so the scripted `solo`
tells them apart by what differs between them: the instructions each attempt adds to the solo prompt.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from evaluation.api import TaskItem
from evaluation.batch import BatchRun
from evaluation.store import AnswerRecord, RunStore
from teams.loader import parse_team
from tests.conftest import settings_for
from tests.evaluation.helpers import Responder, invented_questions, questions_asked, served, truths
from tests.fakes.scoring_api import ScoringServer
from tests.fakes.scripted_llm import RecordedRequest

QUESTIONS = [q for q in invented_questions() if not q["file_name"]]
BY_ID = {q["task_id"]: q for q in QUESTIONS}
# task -> what attempts 1, 2 and 3 of teams/vote.yaml answer
VOTES = {
    "task-aa01": ["17", "17", "18"],  # a majority
    "task-aa03": ["Lake Ossel", "Lake Varn", "lake varn"],  # a majority by GAIA-scorer equivalence
    "task-aa04": ["abo, mek, zib", "abo, mek", "mek"],  # no majority: the adjudicator decides
    "task-aa05": ["210", "210", "210"],  # unanimous
}
ADJUDICATOR_SAYS = "Candidate 1 follows the requested order and the others do not.\nAPPROVED\nFINAL ANSWER: abo, mek, zib"


def tasks(ids: list[str] | None = None) -> list[TaskItem]:
    return [TaskItem(q["task_id"], q["question"], q["Level"], q["file_name"]) for q in QUESTIONS
            if ids is None or q["task_id"] in ids]


def attempt_of(req: RecordedRequest) -> int:
    """Which attempt of teams/vote.yaml made the request (by the instructions it adds to the solo prompt)."""
    if "second, independent source" in req.system:
        return 2
    if "compute it with run_python" in req.system:
        return 3
    return 1


class Voters:
    def __init__(self, fail_for: set[str] | None = None) -> None:
        self.responder = Responder(QUESTIONS, fail_for=fail_for or set())
        self.adjudicated: list[str] = []

    def solo(self, req: RecordedRequest) -> Any:
        task = self.responder.task_of(req)
        if task is None or task["task_id"] in self.responder.fail_for:
            return self.responder.solo(req)
        return f"FINAL ANSWER: {VOTES[task['task_id']][attempt_of(req) - 1]}"

    def adjudicator(self, req: RecordedRequest) -> Any:
        self.adjudicated.append(req.last_user)
        return ADJUDICATOR_SAYS

    def script(self) -> dict[str, Any]:
        return {"solo": self.solo, "adjudicator": self.adjudicator}


def answers_lines(run_dir: Path) -> dict[str, dict[str, Any]]:
    out = {}
    for line in (run_dir / "answers.jsonl").read_text().splitlines():
        data = json.loads(line)
        out[data["task_id"]] = data
    return out


async def test_a_vote_records_its_attempts_side_by_side_with_the_votes_and_the_adjudicators_reason(
    llm_server, tmp_path: Path
) -> None:
    voters = Voters()
    server = llm_server(voters.script())
    batch = BatchRun("vote", tmp_path / "run", settings=settings_for(server), concurrency=2)
    statuses = {s.task_id: s for s in await batch.run(tasks())}
    assert {k: s.answer for k, s in statuses.items()} == {
        "task-aa01": "17", "task-aa03": "Lake Varn", "task-aa04": "abo, mek, zib", "task-aa05": "210"}

    lines = answers_lines(tmp_path / "run")
    for task_id, votes in VOTES.items():
        line = lines[task_id]
        assert line["strategy"] == "vote"
        assert [(a["number"], a["answer"]) for a in line["attempts"]] == list(enumerate(votes, 1))
        for a in line["attempts"]:
            assert a["team"] == "solo" and a["approved"] and a["stop_reason"] == "approved"
            assert a["tokens"] == a["prompt_tokens"] + a["completion_tokens"] > 0
            assert a["cost_usd"] > 0 and a["label"].startswith("solo")
        # the full result stays beside the plain fields
        assert len(line["result"]["attempts"]) == 3 and line["result"]["decision"]["method"] == line["decision"]["method"]

    majority = lines["task-aa01"]["decision"]
    assert majority["method"] == "majority" and "'17' 2" in majority["reason"]
    assert majority["votes"] == [{"answer": "17", "attempts": [1, 2], "count": 2, "approved": 2},
                                 {"answer": "18", "attempts": [3], "count": 1, "approved": 1}]
    assert lines["task-aa01"]["attempts"][1]["label"] != lines["task-aa01"]["attempts"][0]["label"]  # what differs
    assert [v["attempts"] for v in lines["task-aa03"]["decision"]["votes"]] == [[2, 3], [1]]
    assert lines["task-aa05"]["decision"]["method"] == "unanimous"
    assert all(line["decision"]["adjudicator"] is None for k, line in lines.items() if k != "task-aa04")

    adjudicated = lines["task-aa04"]
    assert adjudicated["decision"]["method"] == "adjudicated"
    assert "the adjudicator picked 'abo, mek, zib'" in adjudicated["decision"]["reason"]
    assert "follows the requested order" in adjudicated["decision"]["reason"]
    assert adjudicated["decision"]["adjudicator"] == ADJUDICATOR_SAYS
    assert [v["count"] for v in adjudicated["decision"]["votes"]] == [1, 1, 1]
    assert len(voters.adjudicated) == 1 and "Candidate 2: abo, mek" in voters.adjudicated[0]
    # the question's tokens are the attempts' and the adjudicator's
    spent = adjudicated["prompt_tokens"] + adjudicated["completion_tokens"]
    assert spent > sum(a["tokens"] for a in adjudicated["attempts"])

    meta = json.loads((tmp_path / "run" / "run.json").read_text())
    assert set(meta["models"]) >= {"1.solo", "2.solo", "3.solo", "adjudicator"}

    # the UI's evaluation panel shows the attempts beside the answer, for this run and after a resume
    from ui.evaluation import answers_table

    assert "| Attempts |" in answers_table(batch.statuses) and "| 17 · 17 · 18 |" in answers_table(batch.statuses)
    resumed = BatchRun("vote", tmp_path / "run", settings=settings_for(server))
    table = answers_table(await resumed.run(tasks()))
    assert "| abo, mek, zib · abo, mek · mek |" in table and len(voters.adjudicated) == 1


async def test_a_strategy_run_dir_resumes_with_its_recorded_self_contained_config(llm_server, tmp_path: Path) -> None:
    voters = Voters(fail_for={"task-aa03"})
    server = llm_server(voters.script())
    settings = settings_for(server, LLM_MAX_RETRIES=0)
    first = {s.task_id: s for s in await BatchRun("vote", tmp_path / "run", settings=settings, concurrency=2).run(tasks())}
    assert first["task-aa03"].state == "failed" and first["task-aa01"].state == "done"
    failed = answers_lines(tmp_path / "run")["task-aa03"]
    assert failed["state"] == "failed" and failed["strategy"] == "vote"  # a failed vote is still a vote
    assert [a["stop_reason"] for a in failed["attempts"]] == ["error"] * 3

    meta = json.loads((tmp_path / "run" / "run.json").read_text())
    recorded = meta["team"]["config"]
    assert all(isinstance(a["team"], dict) and a["team"]["agents"][0]["role"] == "solo"
               for a in recorded["strategy"]["attempts"])  # the attempts' teams inline, not names
    assert parse_team(recorded, "run.json").strategy.kind == "vote"

    voters.responder.fail_for.clear()
    before = len(server.requests)
    batch = BatchRun("vote", tmp_path / "run", settings=settings, concurrency=2)
    second = {s.task_id: s for s in await batch.run(tasks())}
    assert all(s.state == "done" for s in second.values())
    assert {k for k, s in second.items() if s.resumed} == {"task-aa01", "task-aa04", "task-aa05"}
    assert questions_asked(server.requests[before:], QUESTIONS) == {
        "task-aa01": 0, "task-aa03": 3, "task-aa04": 0, "task-aa05": 0}  # three attempts, no adjudicator
    line = answers_lines(tmp_path / "run")["task-aa03"]
    assert line["answer"] == "Lake Varn" and [a["answer"] for a in line["attempts"]] == VOTES["task-aa03"]


def escalate_script(responder: Responder) -> dict[str, Any]:
    """The solo attempt computes aa01 with the calculator (evidence: it settles the question) and answers the
    others from model text alone (no evidence: escalated to the debate)."""

    def solo(req: RecordedRequest) -> Any:
        task = responder.task_of(req)
        if task is not None and task["task_id"] == "task-aa01":
            if not any(m.get("role") == "tool" for m in req.messages):
                return {"tool_calls": [{"name": "calculator", "arguments": {"expression": "8 + 9"}}]}
            return "FINAL ANSWER: 17"
        if task is not None and task["task_id"] == "task-aa05":
            return "FINAL ANSWER: 200"  # wrong; the debate corrects it
        return responder.solo(req)

    return {**responder.script(), "solo": solo}


async def test_an_escalation_records_the_cheap_attempt_and_the_debate(llm_server, tmp_path: Path) -> None:
    responder = Responder(QUESTIONS)
    server = llm_server(escalate_script(responder))
    batch = BatchRun("escalate", tmp_path / "run", settings=settings_for(server), concurrency=2)
    statuses = {s.task_id: s for s in await batch.run(tasks(["task-aa01", "task-aa05"]))}
    assert statuses["task-aa01"].answer == "17" and statuses["task-aa05"].answer == "210"

    lines = answers_lines(tmp_path / "run")
    settled, escalated = lines["task-aa01"], lines["task-aa05"]
    assert settled["strategy"] == escalated["strategy"] == "escalate"
    assert [(a["stage"], a["team"], a["answer"]) for a in settled["attempts"]] == [("first", "solo", "17")]
    assert settled["decision"]["method"] == "first"
    assert [(a["stage"], a["team"], a["answer"]) for a in escalated["attempts"]] == [
        ("first", "solo", "200"), ("escalated", "debate", "210")]
    assert escalated["decision"]["method"] == "escalated"
    assert "no tool result or program output" in escalated["decision"]["reason"]
    assert escalated["attempts"][1]["tokens"] > 0


def test_records_written_before_strategies_still_load(tmp_path: Path) -> None:
    store = RunStore.create(tmp_path / "run", {"team": {"name": "debate"}})
    old = {"task_id": "t1", "question": "q", "state": "done", "answer": "17", "duration_s": 1.0, "prompt_tokens": 5,
           "completion_tokens": 2, "cost_usd": 0.001, "error": None, "stop_reason": "approved", "approved": True,
           "attachments": [], "finished_at": "2026-11-01T10:00:00+00:00", "attempt": 1,
           "result": {"answer": "17", "trace": []}}
    # written by the tree in between: the strategy only inside `result`
    between = {**old, "task_id": "t2", "result": {
        "answer": "17", "strategy": "vote",
        "attempts": [{"number": 1, "label": "solo · openai", "team": "solo", "stage": "vote", "answer": "17",
                      "approved": True, "stop_reason": "approved", "prompt_tokens": 3, "completion_tokens": 1,
                      "cost_usd": 0.0005}],
        "decision": {"method": "unanimous", "reason": "unanimous: '17' 1 of 1",
                     "groups": [{"answer": "17", "attempts": [1], "approved": 1}], "adjudicator": None}}}
    (tmp_path / "run" / "answers.jsonl").write_text(json.dumps(old) + "\n" + json.dumps(between) + "\n")
    records = store.records()
    assert store.warnings == []
    single = records["t1"]
    assert (single.strategy, single.attempts, single.decision, single.answer) == ("single", [], None, "17")
    vote = records["t2"]
    assert vote.strategy == "vote" and vote.attempts[0]["tokens"] == 4 and vote.attempts[0]["answer"] == "17"
    assert vote.decision == {"method": "unanimous", "reason": "unanimous: '17' 1 of 1", "adjudicator": None,
                             "votes": [{"answer": "17", "attempts": [1], "count": 1, "approved": 1}]}
    assert AnswerRecord.from_dict({**old, "strategy": "single", "attempts": [], "decision": None}).strategy == "single"


def test_submit_py_runs_the_vote_team_resumes_it_and_compares_it_with_solo(llm_server, tmp_path: Path) -> None:
    """The real CLI as a process: `run --team vote`, a resume, `run --team solo`, then `eval` over both run dirs."""
    server = llm_server(Voters().script())
    env = {**os.environ, "OPENAI_BASE_URL": server.url, "OPENAI_API_KEY": "sk-test-not-a-real-key-0000",
           "LLM_PROVIDER": "openai", "LLM_RETRY_BASE_DELAY": "0.01", "ROUNDTABLE_ENV_FILE": "",
           "ROUNDTABLE_CACHE_DIR": str(tmp_path / "cache"), "HF_HOME": str(tmp_path / "hf-home"),
           "SANDBOX_BACKEND": "subprocess", "SANDBOX_ALLOW_SUBPROCESS": "1", "COLUMNS": "250", "PYTHONUNBUFFERED": "1"}
    submit_py = Path(__file__).resolve().parents[2] / "submit.py"

    def cli(*args: str) -> subprocess.CompletedProcess[str]:
        proc = subprocess.run([sys.executable, str(submit_py), *args], env=env, cwd=tmp_path, capture_output=True,
                              text=True, timeout=180)
        assert proc.returncode == 0, proc.stdout + proc.stderr
        return proc

    with ScoringServer(served(QUESTIONS), answers=truths(QUESTIONS)) as scoring:
        env["SCORING_API_URL"] = scoring.url
        ran = cli("run", "--team", "vote", "--run-dir", "runs/vote", "--concurrency", "2")
        assert "team vote" in ran.stdout and "4/4 done" in " ".join(ran.stdout.split())
        before = len(server.requests)
        again = cli("run", "--run-dir", "runs/vote")  # no --team: the recorded config
        assert "4 question(s) already answered" in again.stdout and len(server.requests) == before
        assert "has changed" not in again.stderr
        cli("run", "--team", "solo", "--run-dir", "runs/solo", "--concurrency", "2")
    lines = answers_lines(tmp_path / "runs" / "vote")
    assert [a["answer"] for a in lines["task-aa01"]["attempts"]] == VOTES["task-aa01"]
    assert lines["task-aa04"]["decision"]["method"] == "adjudicated"

    labels = tmp_path / "labels.jsonl"
    labels.write_text("".join(json.dumps({"task_id": q["task_id"], "final_answer": q["final_answer"]}) + "\n" for q in QUESTIONS))
    out = cli("eval", "--run-dir", "runs/solo", "runs/vote", "--labels", str(labels)).stdout
    rows = [" ".join(line.split()) for line in out.splitlines()]
    assert any("│ solo │ single │ 4 │ 3/4 (75.0%) │ 3/4 (75.0%) │" in r for r in rows), out  # solo writes attempt 1's answers
    assert any("│ vote │ vote │ 4 │ 4/4 (100.0%) │ 4/4 (100.0%) │" in r and "+25.0 points over the best attempt" in r
               for r in rows), out
    assert sum("↳ attempt" in r for r in rows) == 3


async def test_a_vote_question_that_crashes_is_recorded_as_a_failed_vote(
    llm_server, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from teams.strategies import start_run as real

    def crashing(question: Any, cfg: Any, **kwargs: Any) -> Any:
        if question.task_id == "task-aa05":
            raise RuntimeError("a bug in the strategy")
        return real(question, cfg, **kwargs)

    monkeypatch.setattr("evaluation.solve.start_run", crashing)
    server = llm_server(Voters().script())
    statuses = {s.task_id: s for s in await BatchRun("vote", tmp_path / "run", settings=settings_for(server)).run(
        tasks(["task-aa01", "task-aa05"]))}
    assert statuses["task-aa01"].state == "done" and statuses["task-aa05"].state == "failed"
    line = answers_lines(tmp_path / "run")["task-aa05"]
    assert (line["strategy"], line["attempts"], line["decision"], line["result"]) == ("vote", [], None, None)
    assert "a bug in the strategy" in line["error"]
