"""Choosing a backend, the docker container's life, the command line, and output capping."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import textwrap
import time
from dataclasses import replace
from pathlib import Path

import pytest
from autogen_core import CancellationToken
from autogen_core.code_executor import CodeBlock

import sandbox as sandbox_pkg
from config.settings import REPO_ROOT
from sandbox import SandboxUnavailable, create_executor
from sandbox.base import OutputCollector
from sandbox.bwrap_backend import BwrapSandbox
from sandbox.docker_backend import LABEL, DockerSandbox, _reap_orphans
from sandbox.subprocess_backend import SubprocessSandbox
from sandbox.wasm_backend import WasmSandbox
from tests.sandbox.conftest import TEST_LIMITS, eventually, image, require


def sandbox_containers() -> list[str]:
    import docker

    client = docker.from_env()
    try:
        return [c.name for c in client.containers.list(all=True, filters={"label": LABEL})]
    finally:
        client.close()


# --- choosing ---------------------------------------------------------------------------------------
def test_auto_prefers_docker_when_the_engine_and_image_are_there() -> None:
    require("docker")
    executor = create_executor("auto", image=image())
    assert isinstance(executor, DockerSandbox)
    assert executor.backend == "docker" and executor.isolated and executor.describe() == "docker"


def test_auto_falls_back_to_bwrap_when_the_image_is_missing() -> None:
    require("bwrap")
    executor = create_executor("auto", image="roundtable-no-such-image:0")
    assert isinstance(executor, BwrapSandbox) and executor.isolated


def test_an_explicit_backend_that_cannot_run_says_why() -> None:
    with pytest.raises(SandboxUnavailable, match=r"'docker' is not available: .*roundtable-no-such-image:0.*make sandbox-image|'docker' is not available: no Docker engine"):
        create_executor("docker", image="roundtable-no-such-image:0")
    with pytest.raises(SandboxUnavailable, match="unknown sandbox backend 'dokker'"):
        create_executor("dokker")


def test_the_subprocess_backend_is_refused_unless_allowed_and_labelled_when_it_is() -> None:
    with pytest.raises(SandboxUnavailable, match="not isolated.*allow_subprocess"):
        create_executor("subprocess")
    executor = create_executor("subprocess", allow_subprocess=True)
    assert isinstance(executor, SubprocessSandbox)
    assert executor.isolated is False and executor.describe() == "subprocess (NOT isolated)"


def unavailable(monkeypatch: pytest.MonkeyPatch, name: str, why: str) -> None:
    """Make the registered backend `name` report `why` as the reason it cannot run here."""
    monkeypatch.setitem(sandbox_pkg.REGISTRY, name, replace(sandbox_pkg.REGISTRY[name], problem=lambda host: why))


def test_auto_falls_back_to_wasm_without_docker_and_bwrap(monkeypatch) -> None:
    require("wasm")
    unavailable(monkeypatch, "docker", "no Docker engine answers")
    unavailable(monkeypatch, "bwrap", "bubblewrap is not installed")
    executor = create_executor("auto")
    assert isinstance(executor, WasmSandbox) and executor.isolated and executor.describe() == "wasm"


def test_auto_without_any_isolated_backend_refuses_or_warns(monkeypatch) -> None:
    unavailable(monkeypatch, "docker", "no Docker engine answers")
    unavailable(monkeypatch, "bwrap", "bubblewrap is not installed")
    unavailable(monkeypatch, "wasm", "deno is not installed")
    with pytest.raises(SandboxUnavailable) as info:
        create_executor("auto")
    message = str(info.value)
    assert "no Docker engine answers" in message and "bubblewrap is not installed" in message
    assert "deno is not installed" in message
    assert "SANDBOX_ALLOW_SUBPROCESS=1" in message

    from loguru import logger

    seen: list[str] = []
    sink = logger.add(lambda m: seen.append(str(m)), level="WARNING")
    try:
        executor = create_executor("auto", allow_subprocess=True)
    finally:
        logger.remove(sink)
    assert isinstance(executor, SubprocessSandbox)
    assert any("NOT ISOLATED" in line for line in seen)


# --- the docker container's life ---------------------------------------------------------------------
async def test_one_container_serves_every_run_of_a_question_and_is_removed_at_the_end() -> None:
    require("docker")
    sandbox = DockerSandbox(limits=TEST_LIMITS, image=image())
    await sandbox.start()
    name = sandbox.container_name
    assert name in sandbox_containers()
    first = await sandbox.run_python("open('/work/state.txt', 'w').write('kept')\nimport socket; print(socket.gethostname())", CancellationToken())
    second = await sandbox.run_python("print(open('/work/state.txt').read())", CancellationToken())
    assert first.output.strip() == "sandbox" and second.output.strip() == "kept"
    assert sandbox.container_name == name
    attrs = sandbox._client.api.inspect_container(sandbox.container_id)
    host = attrs["HostConfig"]
    assert host["NetworkMode"] == "none" and host["ReadonlyRootfs"] is True
    assert host["CapDrop"] == ["ALL"] and "no-new-privileges:true" in host["SecurityOpt"]
    assert host["Memory"] == TEST_LIMITS.memory_mb << 20 and host["MemorySwap"] == host["Memory"]
    assert host["PidsLimit"] == TEST_LIMITS.pids and host["NanoCpus"] == int(TEST_LIMITS.cpus * 1e9)
    assert attrs["Config"]["User"] == "10001:10001"
    await sandbox.stop()
    assert name not in sandbox_containers()
    await sandbox.stop()  # stopping twice is harmless


def test_a_container_whose_owner_died_is_removed_by_the_next_sandbox(tmp_path) -> None:
    require("docker")
    script = tmp_path / "owner.py"
    script.write_text(textwrap.dedent(f"""
        import asyncio, os, signal, sys
        sys.path.insert(0, {str(REPO_ROOT)!r})
        from sandbox.docker_backend import DockerSandbox
        async def main():
            sb = DockerSandbox(image={image()!r})
            await sb.start()
            print(sb.container_name, sb._host_dir, flush=True)
            os.kill(os.getpid(), signal.SIGKILL)  # crash: no stop(), no finaliser
        asyncio.run(main())
    """))
    proc = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, timeout=60)
    assert proc.returncode == -signal.SIGKILL
    orphan, host_dir = proc.stdout.split()
    assert orphan in sandbox_containers() and Path(host_dir).is_dir()
    import docker

    client = docker.from_env()
    try:
        _reap_orphans(client)  # what the first sandbox started by a process does
    finally:
        client.close()
    assert orphan not in sandbox_containers()
    assert not Path(host_dir).exists()  # its code and attachments on the host are gone too


async def test_a_container_ends_by_itself_after_its_lifetime() -> None:
    require("docker")
    sandbox = DockerSandbox(limits=replace(TEST_LIMITS, lifetime_s=2), image=image())
    await sandbox.start()
    name = sandbox.container_name
    assert await eventually(lambda: name not in sandbox_containers(), timeout=15)
    # a run after that gets a fresh container and says so
    result = await sandbox.run_python("print('back')", CancellationToken())
    assert result.output.startswith("back") and "the sandbox was restarted" in result.output
    await sandbox.stop()


async def test_a_cancel_that_races_the_programs_start_still_stops_it_at_once() -> None:
    """A cancel can land while `docker exec` is still starting the program (the run is only just begun):
    the program must still be stopped at once, not left to run until the container is thrown away."""
    require("docker")
    sandbox = DockerSandbox(limits=replace(TEST_LIMITS, timeout_s=60), image=image())
    await sandbox.start()
    name = sandbox.container_name
    try:
        for delay in (0.0, 0.01, 0.03, 0.06, 0.1, 0.2):
            token = CancellationToken()
            task = asyncio.ensure_future(sandbox.run_python("import time\nprint('working', flush=True)\ntime.sleep(60)", token))
            await asyncio.sleep(delay)
            cancelled_at = time.monotonic()
            token.cancel()
            result = await task
            took = time.monotonic() - cancelled_at
            assert result.cancelled and took < 3.0, f"cancelled {delay}s into the run: took {took:.1f}s"
            assert "restarted" not in result.output, f"cancelled {delay}s into the run: {result.output}"
            assert sandbox.container_name == name
        assert (await sandbox.run_python("print('still here')", CancellationToken())).output == "still here\n"
    finally:
        await sandbox.stop()


async def test_a_missing_image_is_a_clear_error() -> None:
    require("docker")
    from sandbox.base import SandboxError

    sandbox = DockerSandbox(image="roundtable-no-such-image:0")
    with pytest.raises(SandboxError, match="roundtable-no-such-image:0.*make sandbox-image"):
        await sandbox.start()
    await sandbox.stop()


# --- every backend, including subprocess ---------------------------------------------------------------
@pytest.mark.parametrize("kind", ["docker", "bwrap", "wasm", "subprocess"])
async def test_execute_code_blocks_runs_blocks_in_order_and_stops_at_the_first_failure(kind) -> None:
    if kind != "subprocess":
        require(kind)
    executor = create_executor(kind, allow_subprocess=True, limits=TEST_LIMITS, image=image())
    async with executor:
        result = await executor.execute_code_blocks(
            [CodeBlock("print('one')", "python"), CodeBlock("raise SystemExit(3)", "python"), CodeBlock("print('three')", "python")],
            CancellationToken(),
        )
        assert result.exit_code == 3 and result.output == "one\n" and result.backend == kind
        with pytest.raises(ValueError, match="Python only"):
            await executor.execute_code_blocks([CodeBlock("ls", "sh")], CancellationToken())


async def test_the_subprocess_backend_is_cancelled_within_a_second_too() -> None:
    executor = SubprocessSandbox(limits=replace(TEST_LIMITS, timeout_s=30))
    async with executor:
        token = CancellationToken()
        task = asyncio.ensure_future(executor.run_python("import time\nprint('working', flush=True)\ntime.sleep(30)", token))
        await asyncio.sleep(0.5)
        cancelled_at = time.monotonic()
        token.cancel()
        result = await task
        assert time.monotonic() - cancelled_at < 1.0
        assert result.cancelled and "working" in result.output and "cancelled" in result.output


async def test_an_already_cancelled_run_does_not_start_the_program(tmp_path) -> None:
    executor = SubprocessSandbox(limits=TEST_LIMITS)
    token = CancellationToken()
    token.cancel()
    marker = tmp_path / "ran"
    async with executor:
        result = await executor.run_python(f"open({str(marker)!r}, 'w')", token)
    assert result.cancelled and not marker.exists()


# --- the command line ----------------------------------------------------------------------------------
@pytest.mark.parametrize("kind", ["docker", "bwrap", "wasm"])
def test_the_cli_prints_the_output_names_the_backend_and_passes_the_exit_code(kind, tmp_path) -> None:
    require(kind)
    data = tmp_path / "numbers.csv"
    data.write_text("n\n4\n5\n6\n")
    script = tmp_path / "total.py"
    script.write_text("import csv\nrows = list(csv.DictReader(open('numbers.csv')))\nprint(sum(int(r['n']) for r in rows))\nraise SystemExit(7)\n")
    env = {k: v for k, v in os.environ.items() if k != "SANDBOX_BACKEND"}
    done = subprocess.run([sys.executable, "-m", "sandbox", "run", "--backend", kind, "--file", str(data), str(script)],
                          capture_output=True, text=True, cwd=REPO_ROOT, env=env, timeout=120)
    assert done.stdout == "15\n", done.stderr
    assert f"ran with {kind}" in done.stderr
    assert done.returncode == 7

    slow = tmp_path / "slow.py"
    slow.write_text("import time\nprint('started', flush=True)\ntime.sleep(30)\n")
    timed = subprocess.run([sys.executable, "-m", "sandbox", "run", "--backend", kind, "--timeout", "1", str(slow)],
                           capture_output=True, text=True, cwd=REPO_ROOT, env=env, timeout=120)
    assert timed.returncode == 124
    assert "started" in timed.stdout and "killed after the 1s time limit" in timed.stdout


def test_the_cli_refuses_the_subprocess_backend_unless_allowed(tmp_path) -> None:
    script = tmp_path / "hello.py"
    script.write_text("print('hello')\n")
    env = {k: v for k, v in os.environ.items() if k not in ("SANDBOX_BACKEND", "SANDBOX_ALLOW_SUBPROCESS")}
    refused = subprocess.run([sys.executable, "-m", "sandbox", "run", "--backend", "subprocess", str(script)],
                             capture_output=True, text=True, cwd=REPO_ROOT, env=env, timeout=60)
    assert refused.returncode == 125 and "not isolated" in refused.stderr and refused.stdout == ""
    allowed = subprocess.run([sys.executable, "-m", "sandbox", "run", "--backend", "subprocess", "--allow-subprocess", str(script)],
                             capture_output=True, text=True, cwd=REPO_ROOT, env=env, timeout=60)
    assert allowed.returncode == 0 and allowed.stdout == "hello\n"
    assert "NOT isolated" in allowed.stderr


# --- output capping ----------------------------------------------------------------------------------
def test_output_keeps_its_head_and_tail_and_says_how_much_was_cut() -> None:
    collector = OutputCollector(1000)
    collector.feed(b"START ")
    for _ in range(10_000):
        collector.feed(b"0123456789")
    collector.feed(b" FINAL ERROR")
    text, truncated = collector.text()
    assert truncated and text.startswith("START 0123") and text.endswith(" FINAL ERROR")
    shown = len(text.encode())
    cut = int(text.split("output truncated: ")[1].split()[0])
    assert cut == collector.total - 750 - 250 and shown < 1100

    small = OutputCollector(1000)
    small.feed(b"short\n")
    assert small.text() == ("short\n", False)
