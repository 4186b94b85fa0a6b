"""The coder's code in a scripted debate runs in a docker container (backend `auto`), which is gone
when the run ends - normally or cancelled while a program is running."""

from __future__ import annotations

import asyncio
import time

from teams import events as ev
from teams import load_team, solve
from teams.runner import Question, Run
from tests.conftest import settings_for
from tests.sandbox.conftest import image, require
from tests.sandbox.test_backends import sandbox_containers

QUESTION = "A ledger lists 1,200 lanterns in the east store and 3,400 in the west store. How many lanterns are there?"
WHERE = "import os, socket\nprint('docker' if os.path.exists('/.dockerenv') else 'elsewhere', os.getuid(), socket.gethostname())\n"


def script(code: str) -> dict:
    return {
        "planner": ["Coder, add the two store counts.\nNEXT: coder", "FINAL ANSWER: 4600"],
        "coder": [
            {"tool_calls": [{"name": "run_python", "arguments": {"code": code}}]},
            "The program printed 4600.\nFINAL ANSWER: 4600",
        ],
        "critic": ["APPROVED\nFINAL ANSWER: 4600"],
        "researcher": ["Nothing to look up.\nNEXT: planner"],
    }


async def test_the_coder_runs_in_a_docker_container_that_is_removed_after_the_run(llm_server, tmp_path) -> None:
    require("docker")
    ledger = tmp_path / "ledger.csv"
    ledger.write_text("store,lanterns\neast,1200\nwest,3400\n")
    code = WHERE + "import csv\nprint(sum(int(r['lanterns']) for r in csv.DictReader(open('ledger.csv'))))"
    server = llm_server(script(code))
    before = set(sandbox_containers())
    during: list[set[str]] = []
    outputs: list[str] = []

    def watch(event: ev.Event) -> None:
        if isinstance(event, ev.CodeRun) and event.output is not None:
            during.append(set(sandbox_containers()) - before)
            outputs.append(event.output)

    result = await solve(
        Question(QUESTION, attachments=[ledger]),
        load_team("debate"),
        settings=settings_for(server, SANDBOX_IMAGE=image()),
        on_event=watch,
    )
    assert result.answer == "4600" and result.approved
    # the program ran as the sandbox user inside a container, and read the attachment there
    assert outputs and outputs[0].startswith("exit code 0\ndocker 10001 sandbox\n4600"), outputs
    assert len(during) == 1 and len(during[0]) == 1, "one container for the question while it ran"
    assert not (during[0] & set(sandbox_containers())), "the container is gone after the run"


async def test_cancelling_a_run_during_a_program_kills_it_and_removes_the_container(llm_server) -> None:
    require("docker")
    code = WHERE + "import time\nprint('long job', flush=True)\ntime.sleep(120)"
    server = llm_server(script(code))
    before = set(sandbox_containers())
    run = Run(QUESTION, load_team("debate"), settings=settings_for(server, SANDBOX_IMAGE=image()))
    seen: list[ev.Event] = []
    ours: set[str] = set()
    cancelled_at: list[float] = []

    async def cancel_when_the_program_runs() -> None:
        deadline = time.monotonic() + 30
        while not ours and time.monotonic() < deadline:
            ours.update(set(sandbox_containers()) - before)
            await asyncio.sleep(0.1)
        await asyncio.sleep(1.0)  # the program is sleeping inside the container now
        cancelled_at.append(time.monotonic())
        run.cancel()

    canceller: asyncio.Task | None = None
    async for event in run.events():
        seen.append(event)
        if isinstance(event, ev.CodeRun) and event.output is None and canceller is None:
            canceller = asyncio.ensure_future(cancel_when_the_program_runs())
    assert canceller is not None and cancelled_at and ours
    assert time.monotonic() - cancelled_at[0] < 5, "the run must not wait for the 120 s program"
    assert run.result is not None and run.result.stop_reason == "cancelled"
    assert isinstance(seen[-1], ev.RunFinished)
    assert not (ours & set(sandbox_containers())), "the container is gone after the cancelled run"
