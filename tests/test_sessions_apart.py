"""Two questions at once (two chat sessions): one's attachments and work dir are out of reach of the other's
tools and code."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

from teams import Question, load_team, solve
from teams import events as ev
from tests.conftest import settings_for, skip_or_fail

SECRET = "ONLY-SESSION-A-MAY-READ-THIS"


def _prying_program(upload: Path) -> str:
    return (
        "import glob\n"
        f"paths = [{str(upload)!r}] + glob.glob('/tmp/roundtable-*/*') + glob.glob('/tmp/**/ledger-a.csv', recursive=True)\n"
        "seen = []\n"
        "for p in paths:\n"
        "    try:\n"
        "        seen.append(open(p).read()[:80])\n"
        "    except Exception as exc:\n"
        "        seen.append(type(exc).__name__)\n"
        "print('looked at', len(paths), 'paths:', seen)\n"
    )


async def test_a_session_cannot_read_another_sessions_upload_or_work_dir(llm_server, tmp_path: Path) -> None:
    upload = tmp_path / "session-a" / "ledger-a.csv"
    upload.parent.mkdir()
    upload.write_text(f"name,value\nsecret,{SECRET}\n")

    # Session A holds its attachment (staged in its work dir) while B tries to reach it.
    server_a = llm_server({"solo": [{"delay": 4.0, "content": "FINAL ANSWER: done"}]})
    server_b = llm_server({
        "solo": [
            {"tool_calls": [
                {"name": "read_file", "arguments": {"path": str(upload)}},
                {"name": "run_python", "arguments": {"code": _prying_program(upload)}},
            ]},
            "Nothing to see.\nFINAL ANSWER: nothing",
        ]
    })
    isolated = {"SANDBOX_BACKEND": "auto", "SANDBOX_ALLOW_SUBPROCESS": False}
    team = load_team("solo")
    events_b: list = []
    run_a = asyncio.create_task(
        solve(Question("Sum the ledger.", attachments=[upload]), team, settings=settings_for(server_a, **isolated))
    )
    await asyncio.sleep(1.0)  # A has staged its attachment and is waiting on its model
    result_b = await solve("Find any ledger on this machine.", team, settings=settings_for(server_b, **isolated),
                           on_event=events_b.append)
    result_a = await run_a

    if result_b.code_unavailable:
        skip_or_fail(f"no isolated sandbox backend here: {result_b.code_unavailable}")
    outputs = {e.name: e.output for e in events_b if isinstance(e, ev.ToolResult)}
    assert outputs["read_file"].startswith("Error:")
    assert "looked at" in outputs["run_python"], outputs["run_python"]
    assert SECRET not in json.dumps(outputs)
    assert SECRET not in json.dumps(result_b.to_dict())
    assert result_a.answer == "done"
