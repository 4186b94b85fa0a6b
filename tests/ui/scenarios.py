"""Invented questions and the scripted debates that answer them, for the UI tests, screenshots and bench.

Each scenario is keyed by a phrase of its question (see `harness.Scenarios`). Replies that depend on what
really happened (a file's content, a program's output) are callables reading the request, so the final
answer can only be right if the UI really delivered the file and the sandbox really ran the code.
"""

from __future__ import annotations

import re
from pathlib import Path

from tests.fakes.scripted_llm import RecordedRequest
from tests.test_debate import QUESTION as DEBATE_QUESTION
from tests.test_debate import debate_script
from tests.ui.harness import Scenarios, last_tool_output

_ANSWER = re.compile(r"FINAL ANSWER:\s*(.+)")
_NUMBER = re.compile(r"-?\d+(?:\.\d+)?")

UPLOAD_QUESTION = "What is the total amount in the attached ledger?"
UPLOAD_FILE_NAME = "ledger.csv"
UPLOAD_CONTENT = "item,amount\napples,120\npears,35\nplums,7\n"  # total 162
UPLOAD_TOTAL = "162"

SLOW_QUESTION = "Run the sleepy simulation of the tide tables and report the last value."
QUICK_QUESTION = "After the stop: how many legs do three invented tripods have together?"
SOLO_QUESTION = "Solo check: how many sides do two invented triangles have in total?"
AFTER_LONG_QUESTION = "After the long message: how many wheels do two invented tricycles have?"

# File names a user may give, none of which may become markup or script on the page.
HOSTILE_NAMES = ["<img src=x onerror=alert(2)>.csv", "_a_.csv", "✓.csv", "**b**.csv", "[x](javascript:alert(1)).csv"]
LIST_FILES_CODE = "import os\nprint(sorted(os.listdir('.')))"

# The course evaluation, served by the local scoring API (invented, never GAIA's).
EVAL_QUESTIONS = [
    {"task_id": "ui-eval-0001", "question": "A lamplighter lights 4 lamps on each of 3 invented streets. How many lamps?", "Level": "1", "file_name": ""},
    {"task_id": "ui-eval-0002", "question": "The imaginary river Wendle has two banks, north and south. Which comes first alphabetically?", "Level": "1", "file_name": ""},
    {"task_id": "ui-eval-0003", "question": "An invented board game uses 5 dice per player and 2 players. How many dice?", "Level": "1", "file_name": ""},
    {"task_id": "ui-eval-0004", "question": "The attached memo names a pastry. Which one?", "Level": "1", "file_name": "memo.txt"},
]
EVAL_FILES = {"ui-eval-0004": ("memo.txt", b"Memo: bring the quince tart.\n")}
EVAL_ANSWERS = {"ui-eval-0001": "12", "ui-eval-0002": "north", "ui-eval-0003": "10", "ui-eval-0004": "quince tart"}
# what the scripted team answers: one wrong; the memo's pastry only if the attachment reached the sandbox
EVAL_GIVEN = {"ui-eval-0001": "12", "ui-eval-0002": "north", "ui-eval-0003": "11", "ui-eval-0004": "quince tart"}


def last_answer(req: RecordedRequest) -> str:
    """The newest FINAL ANSWER anyone wrote in the conversation the model was sent."""
    for message in reversed(req.messages):
        content = message.get("content")
        if isinstance(content, str) and (m := _ANSWER.findall(content)):
            return m[-1].strip()
    return ""


def _report_program_output(req: RecordedRequest) -> str:
    numbers = _NUMBER.findall(last_tool_output(req).split("\n", 1)[-1])
    value = numbers[-1] if numbers else "unknown"
    return f"The program printed {value}.\nFINAL ANSWER: {value}"


def _pastry_from_program(req: RecordedRequest) -> str:
    printed = last_tool_output(req).split("\n", 1)[-1]
    m = re.search(r"bring the (.+?)\.", printed)
    return f"The memo says {m.group(1) if m else 'nothing'}.\nFINAL ANSWER: {m.group(1) if m else 'unknown'}"


def _name_from_listing(req: RecordedRequest) -> str:
    # Answers with a file name only if the sandbox really got the files (under their safe names).
    listing = last_tool_output(req)
    return "FINAL ANSWER: _a_.csv" if "'_a_.csv'" in listing else "FINAL ANSWER: no files"


def _approve(req: RecordedRequest) -> str:
    return f"APPROVED\nFINAL ANSWER: {last_answer(req)}"


LEDGER_CODE = "import csv\nrows = list(csv.DictReader(open('ledger.csv')))\nprint(sum(int(r['amount']) for r in rows))"


def sleepy_code(ticks: Path) -> str:
    # Appends a tick every 0.1 s for a minute: the test watches the file to see the sandbox really stop.
    return f"import time\nfor i in range(600):\n    open({str(ticks)!r}, 'a').write('.')\n    time.sleep(0.1)\nprint(i)"


def build(ticks: Path) -> Scenarios:
    s = Scenarios()
    s.add("alderbrook", debate_script())
    s.add("attached ledger", {
        "planner": ["The ledger is attached. Coder, add up the amount column.\nNEXT: coder"],
        "coder": [{"tool_calls": [{"name": "run_python", "arguments": {"code": LEDGER_CODE}}]}, _report_program_output],
        "critic": [_approve],
    })
    s.add("sleepy simulation", {
        "planner": ["Coder, run the simulation.\nNEXT: coder"],
        "coder": [{"tool_calls": [{"name": "run_python", "arguments": {"code": sleepy_code(ticks)}}]}, "It ended.\nFINAL ANSWER: 0"],
        "critic": [_approve],
    })
    s.add("three invented tripods", {
        "planner": ["Three tripods with three legs each.\nFINAL ANSWER: 9"],
        "critic": [_approve],
    })
    s.add("after the long message", {
        "planner": ["Two tricycles with three wheels each.\nFINAL ANSWER: 6"],
        "critic": [_approve],
    })
    s.add("describe the attached files", {
        "planner": ["Coder, list the files.\nNEXT: coder"],
        "coder": [{"tool_calls": [{"name": "run_python", "arguments": {"code": LIST_FILES_CODE}}]}, _name_from_listing],
        "critic": [_approve],
    })
    s.add("solo check", {
        "solo": [
            {"tool_calls": [{"name": "run_python", "arguments": {"code": "print(2 * 3)"}}]},
            "Two triangles have 6 sides.\nFINAL ANSWER: 6",
        ],
    })
    for q in EVAL_QUESTIONS:
        if q["file_name"]:
            s.add(q["question"][:40], {
                "planner": [f"Coder, read {q['file_name']}.\nNEXT: coder"],
                "coder": [{"tool_calls": [{"name": "run_python", "arguments": {"code": f"print(open({q['file_name']!r}).read())"}}]},
                          _pastry_from_program],
                "critic": [_approve],
            })
            continue
        given = EVAL_GIVEN[q["task_id"]]
        s.add(q["question"][:40], {"planner": [f"Counting.\nFINAL ANSWER: {given}"], "critic": [_approve]})
    return s


__all__ = ["DEBATE_QUESTION", "build"]


# --- speakers and verdicts (tests/ui/test_browser_speakers.py, the speakers screenshot) -------------------------
# The same debate as DEBATE_QUESTION (a rejection with its reason, then an approval) under other phrases, so one
# app can show it more than once (each phrase has its own script cursor).
PHONE_QUESTION = "The atlas lists Quillmere with 1,200 inhabitants and Rookhaven with 3,400. How many live in both towns together?"
TOOLS_QUESTION = "The register lists Tolworth with 1,200 inhabitants and Dunmere with 3,400. How many live in both towns together?"
SPEAKERS_QUESTION = "The gazette lists Wrenfold with 1,200 inhabitants and Ashcombe with 3,400. How many live in both towns together?"
SLOW_STOP_QUESTION = "Run the drowsy simulation of the canal locks and report the last value."
SOLO_TALLY_QUESTION = "Solo tally: how many corners do two invented squares have in total?"
UNSCRIPTED_QUESTION = "Nobody scripted this: how many feathers has the invented owl Pemberly?"


def build_speakers(ticks: Path) -> Scenarios:
    """`build`'s scenarios, plus the ones the speaker tests and screenshots use."""
    s = build(ticks)
    s.add("quillmere", debate_script())
    s.add("wrenfold", debate_script())
    s.add("tolworth", debate_script())
    s.add("drowsy simulation", {
        "planner": ["Coder, run the simulation.\nNEXT: coder"],
        "coder": [{"tool_calls": [{"name": "run_python", "arguments": {"code": sleepy_code(ticks)}}]}, "It ended.\nFINAL ANSWER: 0"],
        "critic": [_approve],
    })
    s.add("solo tally", {"solo": ["Two squares have 8 corners.\nFINAL ANSWER: 8"]})
    return s
