"""The coder's code in a scripted debate runs in a docker container (backend `auto`), which is gone
when the run ends - normally or cancelled while a program is running."""

from __future__ import annotations

import asyncio
import time

from sandbox.docker_backend import LABEL, OWNER_LABEL, USER, _owner
from teams import events as ev
from teams import load_team, solve
from teams.runner import Question, Run
from tests.conftest import settings_for
from tests.sandbox.conftest import image, require

QUESTION = "A ledger lists 1,200 lanterns in the east store and 3,400 in the west store. How many lanterns are there?"
WHERE = "import os, socket\nprint('docker' if os.path.exists('/.dockerenv') else 'elsewhere', os.getuid(), socket.gethostname())\n"
STARTED = "/work/started"  # the long program writes it once it runs


def own_containers() -> set[str]:
    """Sandbox containers this test process made (not those of another test run or clone on the machine)."""
    import docker

    client = docker.from_env()
    try:
        found = client.containers.list(all=True, filters={"label": [LABEL, f"{OWNER_LABEL}={_owner()}"]})
        return {c.name for c in found}
    finally:
        client.close()


def has_started(name: str) -> bool:
    """Whether the program in container `name` has written its marker (False while it cannot tell)."""
    import docker

    client = docker.from_env()
    try:
        return client.containers.get(name).exec_run(["test", "-e", STARTED], user=USER).exit_code == 0
    except docker.errors.DockerException:
        return False
    finally:
        client.close()


async def until(predicate, timeout: float, what: str) -> None:
    """Wait for a condition another process brings about, or fail saying which one never came."""
    deadline = time.monotonic() + timeout
    while not await asyncio.to_thread(predicate):
        assert time.monotonic() < deadline, f"{what}: not after {timeout:g}s"
        await asyncio.sleep(0.1)



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
    during: list[set[str]] = []
    outputs: list[str] = []

    def watch(event: ev.Event) -> None:
        if isinstance(event, ev.CodeRun) and event.output is not None:
            during.append(own_containers())
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
    await until(lambda: not (during[0] & own_containers()), 30, "the container is gone after the run")


async def test_cancelling_a_run_during_a_program_kills_it_and_removes_the_container(llm_server) -> None:
    require("docker")
    code = WHERE + f"import time\nopen({STARTED!r}, 'w').close()\nprint('long job', flush=True)\ntime.sleep(120)"
    server = llm_server(script(code))
    run = Run(QUESTION, load_team("debate"), settings=settings_for(server, SANDBOX_IMAGE=image()))
    seen: list[ev.Event] = []
    ours: set[str] = set()
    cancelled_at: list[float] = []

    async def cancel_when_the_program_runs() -> None:
        # Conditions, not sleeps: a loaded host may take seconds to start the container or the program.
        def found() -> bool:
            ours.update(own_containers())
            return bool(ours)

        await until(found, 60, "the question's container exists")
        (name,) = ours
        await until(lambda: has_started(name), 60, "the program runs in the container")
        cancelled_at.append(time.monotonic())
        run.cancel()

    canceller: asyncio.Task | None = None
    async for event in run.events():
        seen.append(event)
        if isinstance(event, ev.CodeRun) and event.output is None and canceller is None:
            canceller = asyncio.ensure_future(cancel_when_the_program_runs())
    assert canceller is not None and canceller.done()
    canceller.result()  # a condition that never came fails here, with its name
    assert cancelled_at and ours
    # The bound is far below the program's 120 s and leaves room for a busy docker engine to stop things.
    took = time.monotonic() - cancelled_at[0]
    print(f"cancel to RunFinished: {took:.2f}s")
    assert took < 20, f"the run must not wait for the 120 s program (it took {took:.1f}s after the cancel)"
    assert run.result is not None and run.result.stop_reason == "cancelled"
    assert isinstance(seen[-1], ev.RunFinished)
    code_runs = [e for e in seen if isinstance(e, ev.CodeRun) and e.output is not None]
    assert code_runs and "the run was cancelled" in code_runs[-1].output, code_runs
    # Removal is asked for before the run ends; the engine may take a moment to finish it.
    await until(lambda: not (ours & own_containers()), 30, "the container is gone after the cancelled run")
