"""A vote interrupted mid-question does not pay twice for the attempts that had ended: the shipped `vote` team
through the real BatchRun against the scripted model server, cancelled while its third attempt still waits
for the model, then resumed (evaluation/checkpoints.py, teams/strategies/run.py)."""

from __future__ import annotations

import asyncio
import json
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from evaluation import checkpoints
from evaluation.api import TaskItem
from evaluation.batch import BatchRun
from teams.result import Result
from teams.strategies.attempts import FinishedAttempt
from tests.conftest import settings_for
from tests.evaluation.helpers import invented_questions
from tests.evaluation.test_strategy_records import answers_lines, attempt_of
from tests.fakes.scripted_llm import RecordedRequest

QUESTION = next(q for q in invented_questions() if q["task_id"] == "task-aa01")
TASK = TaskItem(QUESTION["task_id"], QUESTION["question"], QUESTION["Level"], QUESTION["file_name"])
VOTES = ["17", "18", "17"]  # the two that end first do not settle it: the question needs the third


class SlowThird:
    """Attempts 1 and 2 answer at once; attempt 3 waits until `release` is set (or answers at once after)."""

    def __init__(self) -> None:
        self.release = threading.Event()
        self.calls: list[int] = []

    def solo(self, req: RecordedRequest) -> Any:
        number = attempt_of(req)
        self.calls.append(number)
        if number == 3:
            self.release.wait(30)
        return f"FINAL ANSWER: {VOTES[number - 1]}"

    def script(self) -> dict[str, Any]:
        return {"solo": self.solo, "adjudicator": "FINAL ANSWER: 17"}


def kept_lines(run_dir: Path) -> list[dict[str, Any]]:
    path = checkpoints.checkpoint_path(run_dir, TASK.task_id)
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()] if path.exists() else []


async def interrupted(run_dir: Path, settings: Any) -> None:
    """Start the vote, wait until attempts 1 and 2 are kept, then cancel the batch as Ctrl-C does."""
    batch = BatchRun("vote", run_dir, settings=settings)
    running = asyncio.create_task(batch.run([TASK]))
    for _ in range(600):
        if len(kept_lines(run_dir)) == 2:
            break
        await asyncio.sleep(0.05)
    assert sorted(line["number"] for line in kept_lines(run_dir)) == [1, 2]
    batch.cancel()
    await asyncio.wait_for(running, 60)


@dataclass
class Interrupted:
    voters: SlowThird
    settings: Any
    run_dir: Path

    async def resume(self) -> list[Any]:
        """Let attempt 3 answer and resume the batch, counting the model calls from here on."""
        self.voters.release.set()
        self.voters.calls.clear()
        return await BatchRun("vote", self.run_dir, settings=self.settings).run([TASK])


@pytest.fixture
async def stopped(llm_server, tmp_path: Path) -> Interrupted:
    """A vote cancelled once attempts 1 and 2 are kept."""
    voters = SlowThird()
    settings = settings_for(llm_server(voters.script()), LLM_MAX_RETRIES=0)
    await interrupted(tmp_path / "run", settings)
    return Interrupted(voters, settings, tmp_path / "run")


async def test_a_resumed_vote_runs_only_the_attempt_that_had_not_ended(stopped: Interrupted) -> None:
    voters, run_dir = stopped.voters, stopped.run_dir
    first = answers_lines(run_dir)[TASK.task_id]
    assert first["state"] == "failed" and first["error"] == "cancelled before it finished"
    assert voters.calls.count(1) == voters.calls.count(2) == 1

    statuses = await stopped.resume()
    assert [s.state for s in statuses] == ["done"] and statuses[0].answer == "17"
    assert voters.calls == [3]  # attempts 1 and 2 were not asked again
    line = answers_lines(run_dir)[TASK.task_id]
    assert [(a["number"], a["answer"]) for a in line["attempts"]] == [(1, "17"), (2, "18"), (3, "17")]
    assert line["decision"]["method"] == "majority"
    # the question's spend is all three attempts', the two reused ones included
    assert line["prompt_tokens"] == sum(a["prompt_tokens"] for a in line["attempts"]) > 0
    assert not checkpoints.checkpoint_path(run_dir, TASK.task_id).exists()  # gone once the answer is written


async def test_kept_attempts_of_another_team_config_run_again(stopped: Interrupted) -> None:
    run_dir = stopped.run_dir
    path = checkpoints.checkpoint_path(run_dir, TASK.task_id)
    lines = kept_lines(run_dir)
    lines[0]["fingerprint"] = "another-config"  # what a changed YAML, model or provider gives
    path.write_text("\n".join(json.dumps(line) for line in lines) + "\n" + '{"number": 2, "fingerpr')  # torn tail

    statuses = await stopped.resume()
    assert statuses[0].state == "done"
    kept = next(line["number"] for line in lines if line["fingerprint"] != "another-config")
    assert sorted(stopped.voters.calls) == sorted({1, 2, 3} - {kept})  # the mismatched one ran again; the torn line was skipped


def test_an_attempt_kept_after_a_torn_line_is_still_read(tmp_path: Path) -> None:
    """A process killed while writing leaves a cut-off last line; what the next session keeps must not join it."""
    path = checkpoints.checkpoint_path(tmp_path, TASK.task_id)
    path.parent.mkdir(parents=True)
    path.write_text('{"number": 1, "fingerpr')
    result = Result(question=TASK.question, answer="17", raw_answer="17", approved=True, stop_reason="approved",
                    stop_detail="", duration_s=1.0)
    checkpoints.keep(tmp_path, TASK.task_id, FinishedAttempt(2, "f" * 32, result, ["17 kites"]))
    kept = checkpoints.finished(tmp_path, TASK.task_id)
    assert list(kept) == [2] and kept[2].result.answer == "17" and kept[2].evidence == ["17 kites"]
