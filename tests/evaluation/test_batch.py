"""BatchRun in-process on the shipped `solo` team against the scripted model server."""

from __future__ import annotations

import json
import threading
import time
from pathlib import Path

import pytest
import yaml

from evaluation.api import TaskItem
from evaluation.batch import BatchError, BatchRun, QuestionStatus
from evaluation.store import RunStore
from tests.conftest import OPENAI_STRONG, settings_for
from tests.evaluation.helpers import Responder, invented_questions, questions_asked
from tests.fakes.scripted_llm import RecordedRequest

QUESTIONS = [q for q in invented_questions() if not q["file_name"]]  # attachments: see test_cli_e2e.py
SOLO_YAML = (Path(__file__).resolve().parents[2] / "teams" / "solo.yaml").read_text()


def tasks(questions=QUESTIONS) -> list[TaskItem]:
    return [TaskItem(q["task_id"], q["question"], q["Level"], q["file_name"]) for q in questions]


async def test_questions_run_concurrently_up_to_the_bound(llm_server, tmp_path: Path) -> None:
    many = [dict(q, task_id=f"{q['task_id']}-{i}", question=f"{q['question']} (variant {i})") for i in range(2) for q in QUESTIONS]
    responder = Responder(many)
    state = {"now": 0, "max": 0}
    lock = threading.Lock()

    def slow_solo(req: RecordedRequest):
        with lock:
            state["now"] += 1
            state["max"] = max(state["max"], state["now"])
        time.sleep(0.8)  # long enough that three runs starting one after another still overlap
        with lock:
            state["now"] -= 1
        return responder.solo(req)

    server = llm_server({"solo": slow_solo})
    batch = BatchRun("solo", tmp_path / "run", settings=settings_for(server), concurrency=3)
    statuses = await batch.run(tasks(many))
    assert [s.state for s in statuses] == ["done"] * len(many)
    assert [s.answer for s in statuses] == [q["final_answer"] for q in many]
    assert state["max"] == 3


async def test_every_answer_is_on_disk_before_anyone_hears_of_it(llm_server, tmp_path: Path) -> None:
    server = llm_server(Responder(QUESTIONS).script())
    seen: list[tuple[str, bool]] = []

    def on_update(status: QuestionStatus) -> None:
        if status.state == "done":
            on_disk = RunStore.open(tmp_path / "run").records().get(status.task_id)
            seen.append((status.task_id, on_disk is not None and on_disk.answer == status.answer))

    batch = BatchRun("solo", tmp_path / "run", settings=settings_for(server), concurrency=2)
    await batch.run(tasks(), on_update=on_update)
    assert sorted(seen) == sorted((q["task_id"], True) for q in QUESTIONS)
    line = json.loads((tmp_path / "run" / "answers.jsonl").read_text().splitlines()[0])
    assert line["result"]["trace"][0]["content"].startswith("FINAL ANSWER:")  # the trace is kept with the answer
    meta = json.loads((tmp_path / "run" / "run.json").read_text())
    assert meta["team"]["name"] == "solo" and meta["models"] == {"solo": f"openai/{OPENAI_STRONG}"}
    assert meta["sessions"][0]["done"] == 4 and meta["sessions"][0]["wall_s"] > 0
    assert meta["totals"]["prompt_tokens"] > 0 and meta["totals"]["cost_usd"] > 0


async def test_one_failing_question_does_not_stop_the_others_and_is_retried_on_resume(llm_server, tmp_path: Path) -> None:
    responder = Responder(QUESTIONS, fail_for={"task-aa03"})
    server = llm_server(responder.script())
    settings = settings_for(server, LLM_MAX_RETRIES=0)
    first = await BatchRun("solo", tmp_path / "run", settings=settings, concurrency=2).run(tasks())
    by_id = {s.task_id: s for s in first}
    assert by_id["task-aa03"].state == "failed" and "scripted failure" in (by_id["task-aa03"].error or "")
    assert all(s.state == "done" for k, s in by_id.items() if k != "task-aa03")

    before = len(server.requests)
    responder.fail_for.clear()
    batch = BatchRun("solo", tmp_path / "run", settings=settings, concurrency=2)
    second = await batch.run(tasks())
    assert all(s.state == "done" for s in second)
    assert {s.task_id for s in second if s.resumed} == {"task-aa01", "task-aa04", "task-aa05"}
    assert {s.task_id: s.attempts for s in second}["task-aa03"] == 2
    asked = questions_asked(server.requests[before:], QUESTIONS)
    assert asked == {"task-aa01": 0, "task-aa03": 1, "task-aa04": 0, "task-aa05": 0}
    assert batch.answers_payload() == [{"task_id": q["task_id"], "submitted_answer": q["final_answer"]} for q in QUESTIONS]


async def test_the_per_question_time_limit_fails_only_the_slow_question(llm_server, tmp_path: Path) -> None:
    server = llm_server(Responder(QUESTIONS, delay_for={"task-aa04": 30}).script())
    batch = BatchRun("solo", tmp_path / "run", settings=settings_for(server), concurrency=4, timeout_s=3.0)
    started = time.monotonic()
    statuses = {s.task_id: s for s in await batch.run(tasks())}
    assert time.monotonic() - started < 15
    assert statuses["task-aa04"].state == "failed"
    assert "3s time limit" in (statuses["task-aa04"].error or "")
    assert [statuses[k].state for k in ("task-aa01", "task-aa03", "task-aa05")] == ["done"] * 3
    assert batch.answers_payload()[2] == {"task_id": "task-aa04", "submitted_answer": ""}


async def test_cancel_keeps_what_finished_and_resume_does_the_rest(llm_server, tmp_path: Path) -> None:
    responder = Responder(QUESTIONS, delay_for={q["task_id"]: 20 for q in QUESTIONS[1:]})
    server = llm_server(responder.script())
    settings = settings_for(server)
    batch = BatchRun("solo", tmp_path / "run", settings=settings, concurrency=2)

    def on_update(status: QuestionStatus) -> None:
        if status.state == "done":
            batch.cancel()

    statuses = {s.task_id: s for s in await batch.run(tasks(), on_update=on_update)}
    assert statuses["task-aa01"].state == "done"
    assert statuses["task-aa03"].state == "failed" and statuses["task-aa03"].error == "cancelled before it finished"
    assert statuses["task-aa04"].state == "pending" and statuses["task-aa05"].state == "pending"
    assert batch.cancelled

    responder.delay_for.clear()
    before = len(server.requests)
    resumed = await BatchRun("solo", tmp_path / "run", settings=settings).run(tasks())
    assert all(s.state == "done" for s in resumed)
    assert questions_asked(server.requests[before:], QUESTIONS)["task-aa01"] == 0


async def test_a_resumed_run_keeps_its_team(llm_server, tmp_path: Path) -> None:
    server = llm_server(Responder(QUESTIONS).script())
    settings = settings_for(server)
    await BatchRun("solo", tmp_path / "run", settings=settings).run(tasks()[:1])
    with pytest.raises(BatchError, match=r"was started with team 'solo'.*resume it with that team"):
        BatchRun("debate", tmp_path / "run", settings=settings)
    data = yaml.safe_load(SOLO_YAML)
    recorded_turns = data["termination"]["max_turns"]
    data["termination"]["max_turns"] = recorded_turns + 2
    edited = tmp_path / "solo-edited.yaml"
    edited.write_text(yaml.safe_dump(data))
    batch = BatchRun(edited, tmp_path / "run", settings=settings)
    assert batch.cfg.termination.max_turns == recorded_turns  # the recorded config, not the edited file
    assert any("has changed since this run started" in n for n in batch.notes)


async def test_setup_problems_are_batch_errors(tmp_path: Path) -> None:
    from config.settings import Settings

    no_keys = Settings(_env_file=None, LLM_PROVIDER="openai")  # type: ignore[call-arg]
    with pytest.raises(BatchError, match="LLM provider 'openai' needs OPENAI_API_KEY"):
        BatchRun("solo", tmp_path / "run", settings=no_keys)
    with pytest.raises(BatchError, match="file not found"):
        BatchRun(tmp_path / "nope.yaml", tmp_path / "run", settings=no_keys)
    (tmp_path / "old").mkdir()
    (tmp_path / "old" / "run.json").write_text("{}")
    with pytest.raises(BatchError, match="older submit.py"):
        BatchRun("solo", tmp_path / "old", settings=no_keys)
