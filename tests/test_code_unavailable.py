"""No isolated sandbox and no opt-in to the subprocess backend: the team runs without run_python and says so."""

from __future__ import annotations

import io

from rich.console import Console

from cli.console import ConsoleRenderer
from teams import events as ev
from teams import load_team, solve
from tests.conftest import settings_for

QUESTION = "The almanac lists Alderbrook with 1,200 inhabitants and Birchwell with 3,400. How many live in both towns together?"

# Every isolated backend is made unavailable through its real probe: no such image, no such interpreter for
# bwrap, no wasm runtime where it is looked for.
NO_SANDBOX = {
    "SANDBOX_BACKEND": "auto",
    "SANDBOX_ALLOW_SUBPROCESS": False,
    "SANDBOX_IMAGE": "roundtable-no-such-image:none",
    "SANDBOX_PYTHON": "/nonexistent/python3",
    "SANDBOX_WASM_DIR": "/nonexistent/wasm",
}


def script() -> dict:
    return {
        "planner": ["Coder, add the two figures.\nNEXT: coder"],
        "coder": [
            {"tool_calls": [{"name": "calculator", "arguments": {"expression": "1200 + 3400"}}]},
            "The calculator gives 4600.\nFINAL ANSWER: 4600",
        ],
        "critic": ["APPROVED\nFINAL ANSWER: 4600"],
    }


async def test_without_an_isolated_sandbox_the_coder_gets_the_calculator_and_everyone_is_told(llm_server) -> None:
    server = llm_server(script())
    events: list = []
    result = await solve(QUESTION, load_team("debate"), settings=settings_for(server, **NO_SANDBOX), on_event=events.append)

    assert result.answer == "4600" and result.approved
    [started] = [e for e in events if isinstance(e, ev.RunStarted)]
    assert started.code_unavailable and "no isolated sandbox" in started.code_unavailable
    assert "docker" in started.code_unavailable and "bwrap" in started.code_unavailable
    assert result.code_unavailable == started.code_unavailable
    assert result.to_dict()["code_unavailable"] == started.code_unavailable  # recorded in answers.jsonl

    coder = server.requests_for("coder")[0]
    assert "run_python" not in coder.tool_names and "calculator" in coder.tool_names
    assert "Code execution is unavailable" in coder.system
    assert "Code execution is unavailable" in server.requests_for("planner")[0].system
    assert "Code execution is unavailable" not in server.requests_for("critic")[0].system
    assert not [e for e in events if isinstance(e, ev.CodeRun)]


async def test_the_terminal_says_why_code_cannot_run(llm_server) -> None:
    server = llm_server(script())
    out = io.StringIO()
    renderer = ConsoleRenderer(Console(file=out, width=200, color_system=None))
    await solve(QUESTION, load_team("debate"), settings=settings_for(server, **NO_SANDBOX), on_event=renderer)
    text = out.getvalue()
    assert "Code execution is unavailable" in text and "no isolated sandbox" in text


async def test_with_a_sandbox_the_team_keeps_run_python(llm_server) -> None:
    server = llm_server(script())
    events: list = []
    result = await solve(QUESTION, load_team("debate"), settings=settings_for(server, SANDBOX_BACKEND="subprocess"),
                         on_event=events.append)
    assert result.code_unavailable is None
    assert server.requests_for("coder")[0].tool_names == ["run_python", "read_file"]
    assert "Code execution is unavailable" not in server.requests_for("coder")[0].system
