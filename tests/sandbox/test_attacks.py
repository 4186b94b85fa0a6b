"""The attack suite: hostile programs run in each isolated backend (docker, bwrap, bwrap-userns, wasm).

Every attack must be contained, come back to the agent as a clear result (an error, a note that says
what the sandbox did), leave the host unharmed, and leave the sandbox usable for the next program.
"""

from __future__ import annotations

import ast
import asyncio
import os
import socket
import subprocess
import sys
import time
from dataclasses import replace
from pathlib import Path

import pytest
from autogen_core import CancellationToken

from config.settings import REPO_ROOT
from sandbox.docker_backend import DockerSandbox
from sandbox.wasm_backend import RESTART_NOTE, WasmSandbox
from tests.sandbox.conftest import (
    TEST_LIMITS,
    CountingServer,
    NetnsHost,
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
    output = result.output
    if isinstance(sandbox, WasmSandbox):  # after a killed run it says it started a fresh interpreter
        output = output.replace(f"\n[sandbox: {RESTART_NOTE}]", "")
    assert result.exit_code == 0 and output.strip() == "42", result.output


def lines_of(output: str) -> dict[str, str]:
    """`name: verdict` lines printed by an attack program."""
    found = {}
    for line in output.splitlines():
        if ": " in line:
            name, _, verdict = line.partition(": ")
            found[name.strip()] = verdict.strip()
    return found


# --- network ---------------------------------------------------------------------------------------------
# No test dials a public address: a broken sandbox would send that traffic out. "No network" is shown with
# what stays on this machine: the interfaces a program sees, servers on every address of this host, and a
# test host in a network namespace the test creates (a stand-in for anywhere a route could lead).
PROBE_SOCKETS = """
import socket
def attempt(label, fn):
    try:
        fn()
        print(label + ": CONNECTED")
    except OSError as exc:
        print(label + ": blocked " + type(exc).__name__ + " " + str(exc))
def udp(host, port):
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.sendto(b"x", (host, port))
def tcp(host, port):
    socket.create_connection((host, port), timeout=2).close()
"""

# Pyodide's own way out is the JavaScript host's fetch (top-level await: the wasm runner allows it).
PROBE_FETCH = """
import js
for url in {urls!r}:
    try:
        await js.fetch(url)
        print(url + ": CONNECTED")
    except Exception as exc:
        print(url + ": blocked " + type(exc).__name__)
"""


async def test_the_sandbox_sees_no_network_interface_but_loopback(sandbox_factory) -> None:
    sandbox = sandbox_factory()
    code = """
import socket
try:
    names = sorted(name for _, name in socket.if_nameindex())
except OSError as exc:  # wasm: there are no interfaces to list
    names = []
print("interfaces:", ",".join(names) or "none")
"""
    result = await run(sandbox, code)
    assert lines_of(result.output)["interfaces"] in ("lo", "none"), result.output
    await still_works(sandbox)


async def test_no_socket_reaches_the_host(sandbox_factory, counting_server: CountingServer) -> None:
    sandbox = sandbox_factory()
    addresses = host_ipv4_addresses()
    assert len(addresses) >= 2, "expected loopback and at least one other host address"
    code = PROBE_SOCKETS + f"""
import os
for host in {addresses!r}:
    attempt(host + " tcp", lambda: tcp(host, {counting_server.port}))
    attempt(host + " udp", lambda: udp(host, {counting_server.udp_port}))
for path in ("/var/run/docker.sock", "/run/docker.sock", "/run/containerd/containerd.sock"):
    print(f"{{path}}: {{'PRESENT' if os.path.exists(path) else 'absent'}}")
"""
    result = await run(sandbox, code)
    seen = lines_of(result.output)
    for host in addresses:
        assert seen[f"{host} tcp"].startswith("blocked"), result.output
    assert all(v == "absent" for k, v in seen.items() if k.endswith(".sock")), result.output
    if isinstance(sandbox, WasmSandbox):
        urls = [f"http://{host}:{counting_server.port}/" for host in addresses]
        fetched = await run(sandbox, PROBE_FETCH.format(urls=urls))
        assert all(lines_of(fetched.output)[url].startswith("blocked") for url in urls), fetched.output
    await asyncio.sleep(0.3)  # a datagram that did get out has time to arrive
    assert counting_server.accepted == 0 and counting_server.datagrams == 0
    # the host side really was listening: the test process itself gets through
    socket.create_connection(("127.0.0.1", counting_server.port), timeout=2).close()
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.sendto(b"x", ("127.0.0.1", counting_server.udp_port))
    assert await eventually(lambda: counting_server.accepted == 1 and counting_server.datagrams == 1, timeout=2)


async def test_a_host_on_the_network_is_unreachable(sandbox_factory, netns_host: NetnsHost) -> None:
    host, port = netns_host.address, netns_host.port
    # the route exists: a program outside any sandbox reaches the test host over TCP and UDP (a child
    # process: this one's sockets are guarded to loopback by tests/conftest.py)
    # (sent again if a datagram is lost on a fresh veth under load: the route is what is being shown, once)
    control = PROBE_SOCKETS + f"tcp({host!r}, {port})\nudp({host!r}, {port})\n"
    for _ in range(5):
        await asyncio.to_thread(subprocess.run, [sys.executable, "-c", control], check=True, timeout=10)
        if await eventually(lambda: netns_host.count("tcp") >= 1 and netns_host.count("udp") >= 1, timeout=3):
            break
    assert netns_host.count("tcp") >= 1 and netns_host.count("udp") >= 1, netns_host.events
    reached = (netns_host.count("tcp"), netns_host.count("udp"))
    sandbox = sandbox_factory()
    result = await run(sandbox, PROBE_SOCKETS + f"attempt('tcp', lambda: tcp({host!r}, {port}))\n"
                                                f"attempt('udp', lambda: udp({host!r}, {port}))\n")
    seen = lines_of(result.output)
    assert seen["tcp"].startswith("blocked") and seen["udp"].startswith("blocked"), result.output
    assert "unreachable" in seen["tcp"].lower(), result.output  # a clear error at once, not a hang
    assert result.duration_s < 3
    if isinstance(sandbox, WasmSandbox):
        fetched = await run(sandbox, PROBE_FETCH.format(urls=[f"http://{host}:{port}/"]))
        assert lines_of(fetched.output)[f"http://{host}:{port}/"].startswith("blocked"), fetched.output
    await asyncio.sleep(0.3)
    assert (netns_host.count("tcp"), netns_host.count("udp")) == reached, netns_host.events  # nothing more arrived
    await still_works(sandbox)


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
    if isinstance(sandbox, WasmSandbox):  # WebAssembly has no processes: here the bomb is only a busy loop
        probe = await run(sandbox, "import os\ntry:\n    os.fork()\nexcept OSError as exc:\n    print('fork:', exc)")
        assert "fork: " in probe.output, probe.output
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
    # In 64 MB pieces: one 5 GB object would not even fit wasm's 32-bit address space (an OverflowError).
    code = f"chunks = [b'x' * (64 << 20) for _ in range({TEST_LIMITS.memory_mb * 10 // 64})]\nprint('allocated', len(chunks))"
    result = await run(sandbox, code)
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


# What can outlive a run in wasm: work left on the JavaScript event loop (an asyncio task, a JS interval).
WASM_LEFTOVERS = """
import asyncio, js
from pyodide.ffi import create_proxy
async def beat():
    while True:
        open('/work/heartbeat', 'a').write('.')
        await asyncio.sleep(0.05)
asyncio.ensure_future(beat())
js.setInterval(create_proxy(lambda: open('/work/heartbeat', 'a').write('.')), 50)
await asyncio.sleep(0.5)  # they beat while the run lasts
print("spawned")
"""
# Waiting with asyncio: the event loop runs meanwhile, so anything left on it would beat.
WAIT_FOR_BEATS = """
import asyncio, os
s = os.path.getsize('/work/heartbeat')
await asyncio.sleep(0.5)
print(s > 0, os.path.getsize('/work/heartbeat') == s)
"""


async def test_a_child_that_outlives_the_run_is_dead_after_it(sandbox_factory) -> None:
    sandbox = sandbox_factory()
    await still_works(sandbox)  # warm: the timing below is the program's, not an interpreter's start
    if isinstance(sandbox, WasmSandbox):
        code = WASM_LEFTOVERS
    else:
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
    check = await run(sandbox, WAIT_FOR_BEATS if isinstance(sandbox, WasmSandbox) else
                      "import os, time\ns = os.path.getsize('/work/heartbeat')\ntime.sleep(0.5)\nprint(s > 0, os.path.getsize('/work/heartbeat') == s)")
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
        pytest.skip("no pandas in this wasm runtime (python -m sandbox install-wasm --pyodide-index URL "
                    "--packages openpyxl numpy pandas)" if isinstance(sandbox, WasmSandbox)
                    else "the system Python used for the user-namespace case has no pandas")
    code = """
import pandas as pd
df = pd.read_excel("stock list.xlsx")
print(len(df), (df["Quantity"] * df["Unit price"]).sum())
"""
    result = await run(sandbox, code)
    assert result.exit_code == 0, result.output
    assert result.output.strip() == "3 100.0"


async def test_an_attached_spreadsheet_is_read_with_openpyxl(sandbox_factory, tmp_path) -> None:
    from openpyxl import Workbook

    book = Workbook()
    sheet = book.active
    sheet.append(["Item", "Quantity", "Unit price"])
    for row in (["lantern", 3, 12.5], ["rope", 10, 2.25], ["compass", 1, 40.0]):
        sheet.append(row)
    path = tmp_path / "stock list.xlsx"
    book.save(path)
    sandbox = sandbox_factory(files=[path])
    if not has_pandas(sandbox):  # the same Python lacks openpyxl too
        if not isinstance(sandbox, WasmSandbox):
            pytest.skip("the system Python used for the user-namespace case has no openpyxl")
    code = """
from openpyxl import load_workbook
sheet = load_workbook("stock list.xlsx", read_only=True).active
rows = list(sheet.iter_rows(min_row=2, values_only=True))
print(len(rows), sum(quantity * price for _, quantity, price in rows))
"""
    result = await run(sandbox, code)
    assert result.exit_code == 0, result.output
    assert result.output.strip() == "3 100.0"


# --- cancellation -------------------------------------------------------------------------------------
async def test_cancelling_the_run_kills_the_program_within_a_second(sandbox_factory) -> None:
    sandbox = sandbox_factory(limits=replace(TEST_LIMITS, timeout_s=30))
    await still_works(sandbox)  # warm: the container or the interpreter is ready
    token = CancellationToken()
    code = ("import subprocess, time\ntry:\n    subprocess.Popen(['sleep', '30'])\nexcept OSError:\n    pass  # wasm: no processes\n"
            "print('working', flush=True)\ntime.sleep(30)")
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
