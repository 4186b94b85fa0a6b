"""The evaluation actions without a browser: Stop during the batch, the run dir per team and models, the
answers table, and Submit refusing without what it needs."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from types import SimpleNamespace

import pytest

from config.settings import Settings
from evaluation.batch import QuestionStatus
from teams import load_team
from tests.conftest import settings_for
from tests.fakes.scoring_api import ScoringServer
from tests.fakes.scripted_llm import RecordedRequest
from tests.ui.fake_session import chainlit_session
from ui import chat, evaluation

QUESTIONS = [
    {"task_id": "unit-eval-1", "question": "Quick invented question one?", "Level": "1", "file_name": ""},
    {"task_id": "unit-eval-2", "question": "Slow invented question two?", "Level": "1", "file_name": ""},
]


def _solo(req: RecordedRequest) -> dict | str:
    if "Slow" in req.question:
        return {"delay": 20, "content": "FINAL ANSWER: late"}
    return "FINAL ANSWER: 1"


async def test_stop_during_the_evaluation_keeps_finished_answers_and_says_it_was_cancelled(
    llm_server, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    server = llm_server({"solo": _solo})
    with ScoringServer(QUESTIONS, answers={}) as scoring:
        base = settings_for(server, SCORING_API_URL=scoring.url, ROUNDTABLE_CACHE_DIR=str(tmp_path), ROUNDTABLE_TEAM="solo")
        monkeypatch.setattr(chat, "base_settings", lambda: base)
        with chainlit_session() as rec:
            await evaluation.start(SimpleNamespace(payload={}))
            task = chat.cl.user_session.get("evaluation_task")
            for _ in range(200):  # until the slow question is running and the quick one is done
                ev = chat.cl.user_session.get("evaluation")
                states = {s.task_id: s.state for s in (ev.batch.statuses if ev and ev.batch else [])}
                if states == {"unit-eval-1": "done", "unit-eval-2": "running"}:
                    break
                await asyncio.sleep(0.05)
            assert states == {"unit-eval-1": "done", "unit-eval-2": "running"}
            started = asyncio.get_running_loop().time()
            await chat.stop()
            await asyncio.wait_for(task, timeout=15)
            took = asyncio.get_running_loop().time() - started
    assert took < 10
    names = [e for e, _ in rec.events]
    assert names.count("task_start") == 1 and names.count("task_end") == 1  # the stop button came and went
    table = rec.messages()[-1]["output"]
    assert table.startswith("### Evaluation cancelled") and "1/2 answered" in table
    assert "| `unit-eval-1` |" in table and "cancelled before it finished" in table
    tasklist = json.loads([f for f in rec.files if f["name"] == "tasklist"][-1]["content"])
    assert tasklist["status"].startswith("Evaluation cancelled")
    assert [t["status"] for t in tasklist["tasks"]] == ["done", "failed"]


def test_each_team_and_set_of_models_has_its_own_fixed_run_dir(tmp_path: Path) -> None:
    base = Settings(_env_file=None, OPENAI_API_KEY="sk-test-0000000000", ROUNDTABLE_CACHE_DIR=str(tmp_path))  # type: ignore[call-arg]
    debate = load_team("debate")
    first = evaluation.run_dir_for(base, debate)
    assert first == evaluation.run_dir_for(base, debate) and first.parent == tmp_path / "ui-evaluation"
    assert first.name.startswith("debate-")
    assert evaluation.run_dir_for(base.model_copy(update={"llm_model": "gpt-4.1-nano"}), debate) != first
    assert evaluation.run_dir_for(base, load_team("solo")) != first


def test_the_answers_table_escapes_and_shortens_cells() -> None:
    rows = [
        QuestionStatus("abc12345-0000", "What is a|b? " + "long " * 40, "done", "x | y", 3.21, 100, 20, 0.001, None),
        QuestionStatus("abc12399-0000", "Another?", "failed", None, 1.0, 5, 0, None, "model error: 500"),
    ]
    table = evaluation.answers_table(rows)
    lines = table.splitlines()
    assert len(lines) == 4 and all(line.count("|") - line.count("\\|") == 6 for line in lines)
    assert "`abc12345-0000`" in table and "`abc12399-0000`" in table  # task ids in full
    assert "x \\| y" in table and "…" in table and "⚠️ model error\\: 500" in table and "3.2\u00a0s" in table and "120" in table  # a time never wraps
    assert evaluation.id_width(["abc12345-0000", "abc12345-1111"]) == 10


async def test_submit_needs_an_evaluation_and_a_space_id(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    with chainlit_session() as rec:
        await evaluation.submit(SimpleNamespace(payload={}))
        assert "Run the course evaluation first" in rec.texts()
        settings = Settings(_env_file=None, HF_TOKEN="hf_tokenNoWhoami000", HF_ENDPOINT="http://127.0.0.1:9")  # type: ignore[call-arg]
        chat.cl.user_session.set("evaluation", evaluation.Evaluation(Path("teams/solo.yaml"), tmp_path, settings))
        monkeypatch.setattr(evaluation, "submit_identity", _alice)
        await evaluation.submit(SimpleNamespace(payload={}))
        assert "this app does not know which Space it is" in rec.texts() and "Settings → Variables and secrets" in rec.texts()


async def _alice(settings: Settings) -> evaluation.Identity:
    return evaluation.Identity("alice", "token")
