"""A full scripted debate over an attached spreadsheet: the researcher reads it with read_file, the coder
sums a column with run_python, and the answer the team settles on is the sum the sandbox really printed."""

from __future__ import annotations

import re
from pathlib import Path

from teams import events as ev
from teams import load_team, solve
from teams.runner import Question
from tests.conftest import settings_for
from tests.tools import documents

QUESTION = "The attached workbook lists the mooring fees paid at the invented harbour of Quillby last week. What is the total of the Fee column?"
FEES = [("Sloop Marigold", "A1", 120), ("Ketch Bramble", "A2", 85), ("Dory Pip", "B1", 240), ("Yawl Heron", "B4", 55), ("Cutter Wren", "C2", 310)]
CODE = "import pandas as pd\ndf = pd.read_excel('harbour_fees.xlsx', sheet_name='Fees')\nprint(int(df['Fee'].sum()))"


def _tool_messages(request) -> list[str]:
    return [str(m.get("content")) for m in request.messages if m.get("role") == "tool"]


def researcher(request):
    results = _tool_messages(request)
    if not results:
        return {"tool_calls": [{"name": "read_file", "arguments": {"file": "harbour_fees.xlsx"}}], "content": "Reading the attachment."}
    table = results[-1]
    boats = len(re.findall(r"^\| \d+ \| (?:Sloop|Ketch|Dory|Yawl|Cutter) ", table, re.MULTILINE))
    return f"The workbook has a sheet 'Fees' with columns Boat, Berth and Fee, one row per boat ({boats} boats).\nNEXT: planner"


def coder(request):
    results = _tool_messages(request)
    if not results:
        return {"tool_calls": [{"name": "run_python", "arguments": {"code": CODE}}]}
    printed = results[-1].splitlines()[1].strip()  # "exit code 0" then the value
    return f"The program printed {printed}.\nFINAL ANSWER: {printed}"


def critic(request):
    proposed = re.findall(r"FINAL ANSWER: (\S+)", request.last_user)
    return f"APPROVED\nFINAL ANSWER: {proposed[-1]}" if proposed else "REJECTED: no answer was proposed.\nNEXT: planner"


def script() -> dict:
    return {
        "planner": [
            "1. Researcher: read the attached workbook. 2. Coder: add up the Fee column.\nNEXT: researcher",
            "The Fee column is clear. Coder, sum it with code.\nNEXT: coder",
        ],
        "researcher": researcher,
        "coder": coder,
        "critic": critic,  # approves what the coder proposed, so the answer is the sandbox's own output
    }


async def test_the_team_reads_the_attachment_and_sums_its_column(llm_server, tmp_path: Path) -> None:
    sheet = documents.xlsx(
        tmp_path / "harbour_fees.xlsx",
        {"Fees": [["Boat", "Berth", "Fee"], *[list(row) for row in FEES]], "Notes": [["Fees are in invented crowns."]]},
    )
    server = llm_server(script())
    events: list = []
    result = await solve(
        Question(QUESTION, attachments=[sheet]), load_team("debate"), settings=settings_for(server), on_event=events.append
    )

    assert result.answer == "810" and result.approved, (result.stop_reason, result.stop_detail)
    assert [e.agent for e in events if isinstance(e, ev.TurnStarted)] == ["planner", "researcher", "planner", "coder", "critic"]
    outputs = {e.name: e.output for e in events if isinstance(e, ev.ToolResult)}
    assert "Workbook with 2 sheet(s): 'Fees', 'Notes'" in outputs["read_file"]
    assert "| row | A | B | C |" in outputs["read_file"] and "| 4 | Dory Pip | B1 | 240 |" in outputs["read_file"]
    assert outputs["run_python"].startswith("exit code 0") and "810" in outputs["run_python"]
    # the researcher saw the attachment named in the task, and summarised what the tool really returned
    first = server.requests_for("researcher")[0]
    assert "harbour_fees.xlsx" in first.question and "read_file" in first.tool_names
    assert any("(5 boats)" in e.text for e in events if isinstance(e, ev.TurnEnded) and e.agent == "researcher")
    assert sum(fee for _, _, fee in FEES) == 810
