"""The scoring API client against the local replica: validation, retries, error messages."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from collections.abc import Iterator

import httpx
import pytest

from evaluation.api import ScoringAPI, ScoringAPIError, TaskItem
from tests.evaluation.helpers import invented_questions, served, truths
from tests.fakes.scoring_api import ScoringServer

QUESTIONS = invented_questions()


@pytest.fixture
def server() -> Iterator[ScoringServer]:
    with ScoringServer(served(QUESTIONS), answers=truths(QUESTIONS), files={"task-aa02": ("task-aa02.txt", b"note")}) as s:
        yield s


def api_for(server: ScoringServer, **kwargs) -> ScoringAPI:
    kwargs.setdefault("backoff_s", 0.01)
    return ScoringAPI(server.url, **kwargs)


async def test_questions_are_parsed_into_task_items(server: ScoringServer) -> None:
    items = await api_for(server).questions()
    assert [i.task_id for i in items] == [q["task_id"] for q in QUESTIONS]
    assert items[1] == TaskItem("task-aa02", QUESTIONS[1]["question"], "1", "task-aa02.txt")
    assert items[0].file_name == ""


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        ([], "empty list of questions"),
        ({"questions": []}, "JSON dict instead of a list"),
        ("<html><body>Starting...</body></html>", "did not return JSON"),
        ([{"question": "no id here"}, "text"], "no usable question"),
    ],
)
async def test_malformed_question_lists_give_one_clear_error(server: ScoringServer, body, expected: str) -> None:
    server.questions_override = body
    with pytest.raises(ScoringAPIError, match=expected):
        await api_for(server).questions()


async def test_a_question_without_task_id_is_skipped_and_reported(server: ScoringServer) -> None:
    bad = served(QUESTIONS)
    del bad[2]["task_id"]
    bad.append(dict(bad[0]))  # a duplicate
    server.questions_override = bad
    api = api_for(server)
    items = await api.questions()
    assert [i.task_id for i in items] == ["task-aa01", "task-aa02", "task-aa04", "task-aa05"]
    assert any("question #3 has no task_id" in p and "Ossel" in p for p in api.last_problems)
    assert any("repeats task_id task-aa01" in p for p in api.last_problems)


async def test_5xx_is_retried_then_succeeds(server: ScoringServer) -> None:
    server.fail("questions", 503, times=2)
    items = await api_for(server, retries=3).questions()
    assert len(items) == 5
    assert len(server.requests_to("/questions")) == 3


async def test_persistent_5xx_names_the_status_and_the_tries(server: ScoringServer) -> None:
    server.fail("questions", 502, times=5)
    with pytest.raises(ScoringAPIError, match=r"HTTP 502.*asleep or restarting.*after 3 tries") as info:
        await api_for(server, retries=3).questions()
    assert info.value.status == 502


async def test_a_timeout_is_reported_with_its_limit(server: ScoringServer) -> None:
    server.delay["questions"] = 2.0
    started = time.monotonic()
    with pytest.raises(ScoringAPIError, match=r"no answer within 0.3s.*after 2 tries"):
        await api_for(server, timeout=0.3, retries=2).questions()
    assert time.monotonic() - started < 1.9


async def test_unreachable_api_says_it_cannot_connect() -> None:
    with ScoringServer([]) as s:
        url = s.url
    with pytest.raises(ScoringAPIError, match="cannot connect"):
        await ScoringAPI(url, retries=2, backoff_s=0.01).questions()


async def test_submit_scores_by_exact_match_and_returns_every_field(server: ScoringServer) -> None:
    answers = [{"task_id": q["task_id"], "submitted_answer": q["final_answer"]} for q in QUESTIONS[:3]]
    answers.append({"task_id": "task-aa04", "submitted_answer": "abo,mek,zib"})  # not exact
    result = await api_for(server).submit("alice", "https://huggingface.co/spaces/alice/rt/tree/main", answers)
    assert (result.username, result.correct_count, result.total_attempted, result.score) == ("alice", 3, 4, 60.0)
    assert "3/5 total questions answered correctly" in result.message
    assert server.submissions[-1]["answers"][3] == {"task_id": "task-aa04", "submitted_answer": "abo,mek,zib"}


async def test_unknown_task_ids_are_ignored_like_the_real_server(server: ScoringServer) -> None:
    result = await api_for(server).submit("bob", "x", [{"task_id": "not-a-task", "submitted_answer": "1"}])
    assert result.total_attempted == 0 and result.score == 0
    assert "no valid/matching task IDs were found in the 1 answers" in result.message


async def test_a_422_names_the_bad_field_and_is_not_retried(server: ScoringServer) -> None:
    with pytest.raises(ScoringAPIError, match=r"malformed \(HTTP 422\): answers\.0\.submitted_answer: Field required") as info:
        await api_for(server).submit("alice", "x", [{"task_id": "task-aa01"}])  # type: ignore[list-item]
    assert info.value.status == 422
    assert len(server.requests_to("/submit")) == 1


async def test_submit_is_retried_on_5xx_but_not_on_4xx(server: ScoringServer) -> None:
    server.fail("submit", 500, times=1)
    result = await api_for(server).submit("alice", "x", [{"task_id": "task-aa01", "submitted_answer": "17"}])
    assert result.correct_count == 1 and len(server.requests_to("/submit")) == 2
    server.fail("submit", 400, times=1)
    with pytest.raises(ScoringAPIError, match="HTTP 400: scripted error 400"):
        await api_for(server).submit("alice", "x", [{"task_id": "task-aa01", "submitted_answer": "17"}])
    assert len(server.requests_to("/submit")) == 3


async def test_a_submit_timeout_is_not_resent(server: ScoringServer) -> None:
    server.delay["submit"] = 1.5
    with pytest.raises(ScoringAPIError, match="may or may not have been recorded"):
        await api_for(server, submit_timeout=0.3).submit("alice", "x", [{"task_id": "task-aa01", "submitted_answer": "17"}])
    assert len(server.requests_to("/submit")) == 1


async def test_no_credentials_are_ever_sent_to_the_scoring_api(server: ScoringServer) -> None:
    api = api_for(server)
    await api.questions()
    await api.file_available("task-aa02")
    await api.submit("alice", "x", [{"task_id": "task-aa01", "submitted_answer": "17"}])
    for req in server.requests:
        assert "authorization" not in req.headers and "cookie" not in req.headers


async def test_file_route_serves_bytes_or_the_real_404_shape(server: ScoringServer) -> None:
    async with httpx.AsyncClient() as client:
        ok = await client.get(f"{server.url}/files/task-aa02")
        missing = await client.get(f"{server.url}/files/task-aa01")
    assert ok.status_code == 200 and ok.content == b"note"
    assert missing.status_code == 404
    assert missing.json() == {"detail": "No file path associated with task_id task-aa01"}
    api = api_for(server)
    assert await api.file_available("task-aa02") is True
    assert await api.file_available("task-aa01") is False


async def test_random_question_and_422_shape(server: ScoringServer) -> None:
    item = await api_for(server).random_question()
    assert item.task_id in {q["task_id"] for q in QUESTIONS}
    async with httpx.AsyncClient() as client:
        bad = await client.post(f"{server.url}/submit", json={"username": "a"})
    assert bad.status_code == 422 and isinstance(bad.json()["detail"], list)
    assert {tuple(d["loc"]) for d in bad.json()["detail"]} == {("body", "agent_code"), ("body", "answers")}


def test_the_fake_server_runs_as_a_process_with_a_questions_file(tmp_path) -> None:
    qfile = tmp_path / "questions.json"
    (tmp_path / "note.txt").write_text("hello")
    items = invented_questions()[:2]
    items[1]["file_path"] = "note.txt"
    qfile.write_text(json.dumps(items))
    proc = subprocess.Popen(
        [sys.executable, "-m", "tests.fakes.scoring_api", "--questions", str(qfile)],
        stdout=subprocess.PIPE, text=True,
    )
    try:
        assert proc.stdout is not None
        url = proc.stdout.readline().strip()
        assert url.startswith("http://127.0.0.1:")
        body = httpx.get(f"{url}/questions").json()
        assert [q["task_id"] for q in body] == ["task-aa01", "task-aa02"]
        assert all("final_answer" not in q and "file_path" not in q for q in body)
        assert httpx.get(f"{url}/files/task-aa02").content == b"hello"
        scored = httpx.post(f"{url}/submit", json={"username": "u", "agent_code": "c", "answers": [
            {"task_id": "task-aa01", "submitted_answer": "17"}]}).json()
        assert scored["correct_count"] == 1 and scored["score"] == 50.0
    finally:
        proc.terminate()
        assert proc.wait(timeout=10) == 0
