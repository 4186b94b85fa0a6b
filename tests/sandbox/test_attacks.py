"""The attack suite: hostile programs run in each isolated backend (docker, bwrap, bwrap-userns).

Every attack must be contained, come back to the agent as a clear result (an error, a note that says
what the sandbox did), leave the host unharmed, and leave the sandbox usable for the next program.
"""

from __future__ import annotations

import ast
import asyncio
import os
import subprocess
import sys
import time
from dataclasses import replace
from pathlib import Path

import pytest
from autogen_core import CancellationToken

from config.settings import REPO_ROOT
from sandbox.docker_backend import DockerSandbox
from tests.sandbox.conftest import (
    TEST_LIMITS,
    CountingServer,
    eventually,
    existing,
    has_pandas,
    host_ipv4_addresses,
    remove,
    sandbox_processes,
)

CANARY_KEY = "sk-sandbox-canary-9f3b1c7e5a2d4b6f"
INTERPRETER = os.path.realpath(sys.base_prefix)


async def run(sandbox, code: str, token: CancellationToken | None = None):  # type: ignore[no-untyped-def]
    return await sandbox.run_python(code, token or CancellationToken())


async def still_works(sandbox) -> None:  # type: ignore[no-untyped-def]
    result = await run(sandbox, "print(6 * 7)")
    assert result.exit_code == 0 and result.output.strip() == "42", result.output


def lines_of(output: str) -> dict[str, str]:
    """`name: verdict` lines printed by an attack program."""
    found = {}
    for line in output.splitlines():
        if ": " in line:
            name, _, verdict = line.partition(": ")
            found[name.strip()] = verdict.strip()
    return found


# --- network ------------------------------------------------------------------------------------------
async def test_no_network_interface_and_no_route_to_the_internet(sandbox_factory) -> None:
    sandbox = sandbox_factory()
    code = """
import socket
print("interfaces:", ",".join(sorted(name for _, name in socket.if_nameindex())))
for label, attempt in [
    ("dns", lambda: socket.getaddrinfo("pypi.org", 443)),
    ("tcp", lambda: socket.create_connection(("1.1.1.1", 443), timeout=3)),
    ("udp", lambda: socket.socket(socket.AF_INET, socket.SOCK_DGRAM).sendto(b"x", ("8.8.8.8", 53))),
]:
    try:
        attempt()
        print(label + ": CONNECTED")
    except OSError as exc:
        print(label + ": blocked " + type(exc).__name__ + " " + str(exc))
"""
    result = await run(sandbox, code)
    seen = lines_of(result.output)
    assert seen["interfaces"] == "lo", result.output  # nothing but the sandbox's own loopback
    for label in ("dns", "tcp", "udp"):
        assert seen[label].startswith("blocked"), result.output
    assert "unreachable" in seen["tcp"].lower()  # a clear error, not a hang until the timeout
    await still_works(sandbox)


async def test_no_socket_reaches_the_host(sandbox_factory, counting_server: CountingServer) -> None:
    sandbox = sandbox_factory()
    targets = [(address, counting_server.port) for address in host_ipv4_addresses()]
    assert len(targets) >= 2, "expected loopback and at least one other host address"
    code = f"""
import os, socket
for host, port in {targets!r}:
    try:
        socket.create_connection((host, port), timeout=2).close()
        print(f"{{host}}: CONNECTED")
    except OSError as exc:
        print(f"{{host}}: blocked {{type(exc).__name__}}")
for path in ("/var/run/docker.sock", "/run/docker.sock", "/run/containerd/containerd.sock"):
    print(f"{{path}}: {{'PRESENT' if os.path.exists(path) else 'absent'}}")
"""
    result = await run(sandbox, code)
    seen = lines_of(result.output)
    for host, _ in targets:
        assert seen[host].startswith("blocked"), result.output
    assert all(v == "absent" for k, v in seen.items() if k.endswith(".sock")), result.output
    assert counting_server.accepted == 0
    # the host side really was listening: the test process itself can connect
    import socket

    socket.create_connection(("127.0.0.1", counting_server.port), timeout=2).close()
    assert await eventually(lambda: counting_server.accepted == 1, timeout=2)


# --- reading what is not theirs -----------------------------------------------------------------------
async def test_host_secrets_home_and_environment_are_out_of_reach(sandbox_factory, monkeypatch, tmp_path) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", CANARY_KEY)
    monkeypatch.setenv("HF_TOKEN", "hf_" + CANARY_KEY)
    fake_home = tmp_path / "home"
    (fake_home / ".cache" / "huggingface").mkdir(parents=True)
    token_file = fake_home / ".cache" / "huggingface" / "token"
    token_file.write_text(CANARY_KEY)
    sandbox = sandbox_factory()
    host_home = str(Path.home())
    code = f"""
import glob, os
def attempt(label, fn):
    try:
        value = fn()
        print(label + ": READ " + repr(value)[:300])
    except OSError as exc:
        print(label + ": blocked " + type(exc).__name__)
attempt("shadow", lambda: open("/etc/shadow").read())
attempt("token", lambda: open({str(token_file)!r}).read())
attempt("home", lambda: os.listdir({host_home!r}))
attempt("repo", lambda: os.listdir({str(REPO_ROOT)!r}))
print("environ:", dict(os.environ))
for path in glob.glob("/proc/*/environ"):
    try:
        print("procenv:", open(path, "rb").read().replace(b"\\0", b" ").decode())
    except OSError:
        pass
"""
    result = await run(sandbox, code)
    seen = lines_of(result.output)
    assert seen["shadow"].startswith("blocked"), result.output
    assert seen["token"].startswith("blocked"), result.output
    # The host home is absent, unreadable, or (bwrap, when the interpreter lives in it) shows only the
    # read-only path down to that interpreter: none of the home's own files.
    if not seen["home"].startswith("blocked"):
        listed = ast.literal_eval(seen["home"].removeprefix("READ "))
        assert all(INTERPRETER.startswith(os.path.join(host_home, name) + os.sep) for name in listed), result.output
    assert seen["repo"].startswith("blocked"), result.output
    assert CANARY_KEY not in result.output
    assert "root:" not in result.output  # no line of any shadow file
    if isinstance(sandbox, DockerSandbox):
        env = sandbox._client.api.inspect_container(sandbox.container_id)["Config"]["Env"]
        assert not any(CANARY_KEY in e for e in env)
        assert not any(e.startswith(("OPENAI_API_KEY=", "HF_TOKEN=")) for e in env)


# --- writing where they may not -----------------------------------------------------------------------
async def test_writes_outside_the_work_dir_fail_and_the_host_is_untouched(sandbox_factory, tmp_path) -> None:
    sandbox = sandbox_factory()
    host_target = tmp_path / "pwned.txt"
    # Only new, uniquely named files: even a broken sandbox must not damage this machine's own files.
    name = f"roundtable-pwned-{os.getpid()}-{time.monotonic_ns()}"
    inside = [f"/etc/{name}", f"/usr/{name}", f"/usr/bin/{name}", f"/{name}", f"/code/{name}"]
    code = f"""
for path in {[*inside, str(host_target)]!r}:
    try:
        with open(path, "x") as f:
            f.write("pwned")
        print(path + ": WRITTEN")
    except OSError as exc:
        print(path + ": blocked " + type(exc).__name__)
open("/work/ok.txt", "w").write("fine")
open("/tmp/ok.txt", "w").write("fine")
print("work: " + open("/work/ok.txt").read() + " tmp: " + open("/tmp/ok.txt").read())
"""
    try:
        result = await run(sandbox, code)
        on_host = existing([*inside, str(host_target)])
    finally:
        remove(inside)
    seen = lines_of(result.output)
    for path in inside:
        assert seen[path].startswith("blocked"), result.output
    assert on_host == []
    assert "work: fine tmp: fine" in result.output  # the places a program may write still work
    follow_up = await run(sandbox, "print(open('/work/ok.txt').read())")
    assert follow_up.output.strip() == "fine"  # the work dir persists between runs of one question


# --- resources ----------------------------------------------------------------------------------------
async def test_a_fork_bomb_is_contained_and_killed_at_the_time_limit(sandbox_factory) -> None:
    sandbox = sandbox_factory()
    bomb = """
import os
while True:
    try:
        os.fork()
    except OSError:
        pass
"""
    task = asyncio.ensure_future(run(sandbox, bomb))
    await asyncio.sleep(2)
    # the host can still start processes while the bomb runs
    started = time.monotonic()
    assert (await asyncio.to_thread(subprocess.run, ["true"], timeout=10)).returncode == 0
    assert time.monotonic() - started < 5
    result = await task
    assert result.timed_out and result.exit_code == 124
    assert f"killed after the {TEST_LIMITS.timeout_s:g}s time limit" in result.output
    assert result.duration_s < TEST_LIMITS.timeout_s + 6
    assert sandbox_processes(sandbox) == []
    await still_works(sandbox)


async def test_allocating_ten_times_the_memory_limit_fails_cleanly(sandbox_factory) -> None:
    sandbox = sandbox_factory()
    result = await run(sandbox, f"data = b'x' * ({TEST_LIMITS.memory_mb * 10} * 1024 * 1024)\nprint('allocated', len(data))")
    assert result.exit_code != 0
    assert "allocated" not in result.output
    assert "MemoryError" in result.output or "out of memory" in result.output, result.output
    assert not result.timed_out
    await still_works(sandbox)


async def test_an_infinite_loop_is_killed_at_the_time_limit(sandbox_factory) -> None:
    sandbox = sandbox_factory()
    result = await run(sandbox, "print('spinning', flush=True)\nwhile True:\n    pass")
    assert result.timed_out and result.exit_code == 124
    assert result.output.startswith("spinning")  # what it printed before is kept
    assert TEST_LIMITS.timeout_s <= result.duration_s < TEST_LIMITS.timeout_s + 2
    await still_works(sandbox)


async def test_printing_100_mb_is_capped_with_a_note(sandbox_factory) -> None:
    sandbox = sandbox_factory()
    code = "import sys\nfor _ in range(100):\n    sys.stdout.write('x' * 1_000_000)\nprint()\nprint('THE END')"
    result = await run(sandbox, code)
    assert result.exit_code == 0 and result.truncated
    assert len(result.output) < TEST_LIMITS.output_bytes + 500
    assert "output truncated" in result.output and "bytes not shown" in result.output
    assert "THE END" in result.output  # the tail (where errors usually are) is kept
    await still_works(sandbox)


async def test_sleeping_past_the_timeout_is_killed(sandbox_factory) -> None:
    sandbox = sandbox_factory()
    result = await run(sandbox, "import time\ntime.sleep(60)")
    assert result.timed_out and result.exit_code == 124
    assert result.duration_s < TEST_LIMITS.timeout_s + 1.5
    await still_works(sandbox)


async def test_a_child_that_outlives_the_run_is_dead_after_it(sandbox_factory) -> None:
    sandbox = sandbox_factory()
    code = """
import os, subprocess, sys, time
beat = "import time\\nwhile True:\\n    open('/work/heartbeat', 'a').write('.')\\n    time.sleep(0.05)"
subprocess.Popen([sys.executable, "-c", beat, "sandbox-canary"], start_new_session=True,
                 stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
if os.fork() == 0:  # a classic double-forked daemon that keeps our output open
    os.setsid()
    if os.fork() == 0:
        os.execv(sys.executable, [sys.executable, "-c", "import time; time.sleep(300)", "sandbox-canary"])
    os._exit(0)
time.sleep(0.5)
print("spawned")
"""
    started = time.monotonic()
    result = await run(sandbox, code)
    assert result.exit_code == 0 and "spawned" in result.output
    assert time.monotonic() - started < 4  # the run did not wait for its children
    assert sandbox_processes(sandbox) == []
    check = await run(sandbox, "import os, time\ns = os.path.getsize('/work/heartbeat')\ntime.sleep(0.5)\nprint(s > 0, os.path.getsize('/work/heartbeat') == s)")
    assert check.output.strip() == "True True", check.output  # it had been beating, and has stopped


# --- attachments --------------------------------------------------------------------------------------
async def test_an_attached_program_cannot_modify_itself(sandbox_factory, tmp_path) -> None:
    attachment = tmp_path / "tool.py"
    original = """import os
path = os.path.abspath(__file__)
before = open(path).read()
for label, attempt in [
    ("append", lambda: open(path, "a").write("# pwned\\n")),
    ("chmod", lambda: os.chmod(path, 0o777)),
    ("remove", lambda: os.remove(path)),
    ("rename", lambda: os.rename(path, path + ".bak")),
    ("replace", lambda: os.replace(os.devnull, path)),
]:
    try:
        attempt()
        print(label + ": MODIFIED")
    except OSError as exc:
        print(label + ": blocked " + type(exc).__name__)
print("intact:", open(path).read() == before)
"""
    attachment.write_text(original)
    sandbox = sandbox_factory(files=[attachment])
    result = await run(sandbox, "import runpy\nrunpy.run_path('tool.py', run_name='__main__')")
    seen = lines_of(result.output)
    for label in ("append", "chmod", "remove", "rename", "replace"):
        assert seen[label].startswith("blocked"), result.output
    assert seen["intact"] == "True"
    assert attachment.read_text() == original
    again = await run(sandbox, "print(open('tool.py').read(), end='')")
    assert again.output == original


async def test_an_attached_spreadsheet_is_read_with_pandas(sandbox_factory, tmp_path) -> None:
    from openpyxl import Workbook

    book = Workbook()
    sheet = book.active
    sheet.append(["Item", "Quantity", "Unit price"])
    for row in (["lantern", 3, 12.5], ["rope", 10, 2.25], ["compass", 1, 40.0]):
        sheet.append(row)
    path = tmp_path / "stock list.xlsx"
    book.save(path)
    sandbox = sandbox_factory(files=[path])
    if not has_pandas(sandbox):
        pytest.skip("the system Python used for the user-namespace case has no pandas")
    code = """
import pandas as pd
df = pd.read_excel("stock list.xlsx")
print(len(df), (df["Quantity"] * df["Unit price"]).sum())
"""
    result = await run(sandbox, code)
    assert result.exit_code == 0, result.output
    assert result.output.strip() == "3 100.0"


# --- cancellation -------------------------------------------------------------------------------------
async def test_cancelling_the_run_kills_the_program_within_a_second(sandbox_factory) -> None:
    sandbox = sandbox_factory(limits=replace(TEST_LIMITS, timeout_s=30))
    await still_works(sandbox)  # warm: the container or the interpreter is ready
    token = CancellationToken()
    code = "import subprocess, time\nsubprocess.Popen(['sleep', '30'])\nprint('working', flush=True)\ntime.sleep(30)"
    task = asyncio.ensure_future(run(sandbox, code, token))
    await asyncio.sleep(1.0)
    cancelled_at = time.monotonic()
    token.cancel()
    result = await task
    assert time.monotonic() - cancelled_at < 1.0
    assert result.cancelled and result.exit_code == 130
    assert "working" in result.output and "the run was cancelled" in result.output
    assert sandbox_processes(sandbox) == []
    await still_works(sandbox)


async def test_cancelling_the_task_still_kills_the_program(sandbox_factory) -> None:
    sandbox = sandbox_factory(limits=replace(TEST_LIMITS, timeout_s=30))
    await still_works(sandbox)
    task = asyncio.ensure_future(run(sandbox, "import time\nprint('working', flush=True)\ntime.sleep(30)"))
    await asyncio.sleep(1.0)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert await eventually(lambda: sandbox_processes(sandbox) == [], timeout=2)
