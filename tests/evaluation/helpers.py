"""Invented questions and scripted team replies keyed on the question text, for the evaluation tests.

Nothing here is a GAIA question or answer. The replies work for the shipped `debate` team (the planner
answers, or hands the attachment question to the coder, who reads the file with run_python; the critic
approves whatever was last proposed) and for the shipped `solo` team.
"""

from __future__ import annotations

import json
import re
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tests.fakes.scripted_llm import RecordedRequest

HUB_TOKEN = "hf_evaltesttoken0123456789"
HUB_USER = "alice"
OTHER_TOKEN = "hf_othertesttoken987654321"
GAIA_REPO = "gaia-benchmark/GAIA"
CODE_WORD = "quinceberry"
ATTACHMENT_TEXT = f"Inventory note 17\nThe code word is {CODE_WORD}.\n".encode()


def invented_questions() -> list[dict[str, Any]]:
    """Five invented questions in the scoring API's shape, each with its invented answer."""
    return [
        {"task_id": "task-aa01", "question": "A toy shop in Pemberly sells 8 kites on Friday and 9 on Saturday. How many kites in all?", "Level": "1", "file_name": "", "final_answer": "17"},
        {"task_id": "task-aa02", "question": "Read the attached inventory note. Which code word does it give?", "Level": "1", "file_name": "task-aa02.txt", "final_answer": CODE_WORD},
        {"task_id": "task-aa03", "question": "The invented river Ossel flows into Lake Varn. Into which lake does the Ossel flow?", "Level": "1", "file_name": "", "final_answer": "Lake Varn"},
        {"task_id": "task-aa04", "question": "Sort the made-up words zib, abo and mek alphabetically, comma separated.", "Level": "1", "file_name": "", "final_answer": "abo, mek, zib"},
        {"task_id": "task-aa05", "question": "A fictional train leaves at 14:00 and arrives at 17:30. How many minutes is the trip?", "Level": "1", "file_name": "", "final_answer": "210"},
    ]


def served(questions: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The questions as the API serves them (no answers)."""
    return [{k: v for k, v in q.items() if k != "final_answer"} for q in questions]


def truths(questions: list[dict[str, Any]]) -> dict[str, str]:
    return {q["task_id"]: q["final_answer"] for q in questions}


def _all_text(req: RecordedRequest) -> str:
    parts = []
    for m in req.messages:
        c = m.get("content")
        parts.append(c if isinstance(c, str) else " ".join(p.get("text", "") for p in c or [] if isinstance(p, dict)))
    return "\n".join(parts)


@dataclass
class Responder:
    """Scripted replies for every question at once; `delay_for` slows chosen questions down."""

    questions: list[dict[str, Any]]
    answers: dict[str, str] = field(default_factory=dict)  # task_id -> answer the team gives (default: the truth)
    delay_for: dict[str, float] = field(default_factory=dict)  # task_id -> seconds before the reply
    fail_for: set[str] = field(default_factory=set)  # task_ids whose model calls answer HTTP 400
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def task_of(self, req: RecordedRequest) -> dict[str, Any] | None:
        text = req.question
        return next((q for q in self.questions if q["question"] in text), None)

    def answer(self, task: dict[str, Any]) -> str:
        return self.answers.get(task["task_id"], task["final_answer"])

    def _wrap(self, task: dict[str, Any] | None, step: Any) -> Any:
        if task is None:
            return "I cannot tell which question this is.\nFINAL ANSWER: unknown"
        if task["task_id"] in self.fail_for:
            return {"status": 400, "message": "scripted failure for this question"}
        with self._lock:
            delay = self.delay_for.get(task["task_id"], 0.0)
        if delay:
            step = {"content": step} if isinstance(step, str) else dict(step)
            step["delay"] = delay
        return step

    # debate team ------------------------------------------------------------------------------------
    def planner(self, req: RecordedRequest) -> Any:
        task = self.task_of(req)
        if task is not None and task["file_name"]:
            return self._wrap(task, "The coder should read the attached note.\nNEXT: coder")
        return self._wrap(task, f"Straightforward.\nFINAL ANSWER: {self.answer(task) if task else ''}")

    def coder(self, req: RecordedRequest) -> Any:
        task = self.task_of(req)
        tool_results = [m for m in req.messages if m.get("role") == "tool"]
        if not tool_results:
            name = task["file_name"] if task else "missing.txt"
            return self._wrap(task, {"tool_calls": [{"name": "run_python", "arguments": {"code": f"print(open({name!r}).read())"}}]})
        m = re.search(r"code word is (\w+)", str(tool_results[-1].get("content")))
        return self._wrap(task, f"The note says so.\nFINAL ANSWER: {m.group(1) if m else 'unreadable'}")

    def critic(self, req: RecordedRequest) -> Any:
        task = self.task_of(req)
        proposed = re.findall(r"FINAL ANSWER:\s*(.+)", _all_text(req))
        return self._wrap(task, f"APPROVED\nFINAL ANSWER: {proposed[-1].strip() if proposed else 'none'}")

    # solo team --------------------------------------------------------------------------------------
    def solo(self, req: RecordedRequest) -> Any:
        task = self.task_of(req)
        return self._wrap(task, f"FINAL ANSWER: {self.answer(task) if task else ''}")

    def script(self) -> dict[str, Callable[[RecordedRequest], Any]]:
        return {"planner": self.planner, "coder": self.coder, "critic": self.critic, "solo": self.solo}


def questions_asked(requests: list[RecordedRequest], questions: list[dict[str, Any]]) -> dict[str, int]:
    """How many model requests each task caused."""
    out = {q["task_id"]: 0 for q in questions}
    for r in requests:
        for q in questions:
            if q["question"] in r.question:
                out[q["task_id"]] += 1
    return out


def flat(text: str) -> str:
    """Terminal output with rich's line wrapping undone, for substring checks."""
    return " ".join(text.split())


def read_answers(run_dir: Path) -> list[dict[str, Any]]:
    """A run dir's answers.jsonl records, in order; [] before the first, a torn line skipped."""
    path = run_dir / "answers.jsonl"
    if not path.exists():
        return []
    out = []
    for line in path.read_text().splitlines():
        try:
            out.append(json.loads(line))
        except json.JSONDecodeError:
            pass
    return out
