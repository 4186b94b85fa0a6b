"""Turning a run's answers into the scoring API's payload, checking it, and submitting it.

Every question of the run goes in the payload, with "" for one without an answer (the course's score
counts all questions, so a missing task can only cost). Answers are stripped strings, task ids unique.
Neither the payload nor the saved `submission.json` holds anything but username, agent_code and answers.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

from evaluation.api import ScoringAPI, ScoringAPIError, SubmitResult
from evaluation.store import now_iso

if TYPE_CHECKING:
    from evaluation.identity import Identity

SUBMISSION_JSON = "submission.json"


def clean_answers(answers: list[dict[str, Any]]) -> list[dict[str, str]]:
    """`[{"task_id", "submitted_answer"}]` as strings, stripped, one per task. Raises ScoringAPIError on bad items."""
    out: list[dict[str, str]] = []
    seen: set[str] = set()
    for i, item in enumerate(answers):
        task_id = item.get("task_id") if isinstance(item, dict) else None
        if not isinstance(task_id, str) or not task_id.strip():
            raise ScoringAPIError(f"answer #{i + 1} has no task_id; nothing was submitted")
        task_id = task_id.strip()
        if task_id in seen:
            raise ScoringAPIError(f"task {task_id} has two answers; nothing was submitted")
        seen.add(task_id)
        value = item.get("submitted_answer")
        out.append({"task_id": task_id, "submitted_answer": "" if value is None else str(value).strip()})
    if not out:
        raise ScoringAPIError("there are no answers to submit")
    return out


def payload(username: str, agent_code: str, answers: list[dict[str, Any]]) -> dict[str, Any]:
    return {"username": username, "agent_code": agent_code, "answers": clean_answers(answers)}


async def submit_answers(
    api: ScoringAPI, identity: Identity, agent_code: str, answers: list[dict[str, str]]
) -> SubmitResult:
    """Submit as the verified `identity` (never a typed-in name). Raises ScoringAPIError with the reason."""
    if not identity.username.strip():
        raise ScoringAPIError("the identity has no username; nothing was submitted")
    return await api.submit(identity.username.strip(), agent_code, clean_answers(answers))


def save_submission(run_dir: Path, body: dict[str, Any], result: SubmitResult, api_url: str, source: str) -> Path:
    path = Path(run_dir) / SUBMISSION_JSON
    record = {"submitted_at": now_iso(), "api_url": api_url, "identity_source": source, "payload": body,
              "result": result.to_dict()}
    path.write_text(json.dumps(record, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    return path


def result_text(result: SubmitResult) -> str:
    return (
        f"Submitted as {result.username}: score {result.score:g}% "
        f"({result.correct_count}/{result.total_attempted} correct)\nMessage: {result.message or '(none)'}"
    )
