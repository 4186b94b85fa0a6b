"""Fixtures for the sandbox tests: real backends (docker, bwrap) or a skip/fail when one is missing.

`sandbox_factory` is parametrised over every isolated way in this machine offers:
- docker: the engine and the sandbox image (make sandbox-image);
- bwrap: this host's default mode (root: no user namespace + uid switch; otherwise: user namespace);
- bwrap-userns: only as root, the user-namespace mode a non-root host (a Space) uses, run as nobody with
  the system Python (root's interpreter may live in a directory nobody cannot read);
- wasm: Pyodide under Deno (the deno wheel and `python -m sandbox install-wasm`).
Under ROUNDTABLE_REQUIRE_SYSTEM=1 (CI) a missing engine, image, bubblewrap, deno or Pyodide FAILS the test.
"""

from __future__ import annotations

import asyncio
import itertools
import os
import re
import shutil
import socket
import subprocess
import sys
import threading
import time
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from config.settings import get_settings
from sandbox import Limits, SandboxExecutor, backend_problem
from sandbox.bwrap_backend import BwrapSandbox
from sandbox.docker_backend import DockerSandbox
from sandbox.wasm_backend import WasmSandbox
from tests.conftest import skip_or_fail

TEST_LIMITS = Limits(timeout_s=4, memory_mb=512, pids=64, output_bytes=20_000, work_mb=64)
ISOLATED = ["docker", "bwrap", "bwrap-userns", "wasm"]
SYSTEM_PYTHON = "/usr/bin/python3"


def image() -> str:
    return get_settings().sandbox_image


def require(kind: str) -> None:
    """Skip (locally) or fail (CI) when this machine cannot run `kind`."""
    if kind == "docker":
        problem = backend_problem("docker", image=image())
        if problem:
            skip_or_fail(f"docker sandbox: {problem}")
    elif kind in ("bwrap", "bwrap-userns"):
        if kind == "bwrap-userns":
            if os.geteuid() != 0:
                pytest.skip("not root: the plain 'bwrap' case already uses a user namespace")
            if not os.access(SYSTEM_PYTHON, os.X_OK):
                skip_or_fail(f"{SYSTEM_PYTHON} is needed for the user-namespace bwrap case")
        problem = backend_problem("bwrap")
        if problem:
            skip_or_fail(f"bwrap sandbox: {problem}")
    elif kind == "wasm":
        problem = backend_problem("wasm")
        if problem:
            skip_or_fail(f"wasm sandbox: {problem}")
    else:
        raise ValueError(kind)


def make_sandbox(kind: str, *, files: list[Path] | None = None, limits: Limits = TEST_LIMITS) -> SandboxExecutor:
    if kind == "docker":
        return DockerSandbox(files=files, limits=limits, image=image())
    if kind == "bwrap":
        return BwrapSandbox(files=files, limits=limits)
    if kind == "bwrap-userns":
        return BwrapSandbox(files=files, limits=limits, python=SYSTEM_PYTHON, userns=True)
    if kind == "wasm":
        return WasmSandbox(files=files, limits=limits)
    raise ValueError(kind)


@pytest.fixture(params=ISOLATED)
def kind(request: pytest.FixtureRequest) -> str:
    require(request.param)
    return str(request.param)


@pytest.fixture
async def sandbox_factory(kind: str) -> AsyncIterator[Callable[..., SandboxExecutor]]:
    """Make sandboxes of the parametrised kind; each is stopped after the test."""
    made: list[SandboxExecutor] = []

    def make(**kwargs: Any) -> SandboxExecutor:
        sb = make_sandbox(kind, **kwargs)
        made.append(sb)
        return sb

    yield make
    for sb in made:
        await sb.stop()


def has_pandas(sandbox: SandboxExecutor) -> bool:
    """Whether programs in `sandbox` can import pandas (wasm: only when install-wasm got it from Pyodide's index)."""
    if isinstance(sandbox, WasmSandbox):
        from sandbox.wasm_runtime import load_runtime

        return "pandas" in load_runtime(sandbox.runtime_dir).lock_packages
    return not (isinstance(sandbox, BwrapSandbox) and sandbox.python == SYSTEM_PYTHON)


# --- looking at the host ------------------------------------------------------------------------------
def host_ipv4_addresses() -> list[str]:
    """Every IPv4 address of this host (loopback, LAN, docker bridge), from /proc/net/fib_trie."""
    found: set[str] = {"127.0.0.1"}
    try:
        lines = Path("/proc/net/fib_trie").read_text().splitlines()
    except OSError:
        return sorted(found)
    for i, line in enumerate(lines):
        if "/32 host LOCAL" in line and i > 0:
            address = lines[i - 1].split()[-1]
            found.add(address)
    return sorted(found)


def sandbox_processes(sandbox: SandboxExecutor) -> list[str]:
    """Host-side view of programs still running for `sandbox` (their command lines)."""
    if isinstance(sandbox, DockerSandbox):
        if sandbox.container_id is None or sandbox._client is None:
            return []
        api = sandbox._client.api
        init_pid = str(api.inspect_container(sandbox.container_id)["State"]["Pid"])
        top = api.top(sandbox.container_id)
        pid_col = top["Titles"].index("PID")
        # PID 1 (the container's init) stays; anything else is a program left running.
        return [p[-1] for p in top.get("Processes") or [] if p[pid_col] != init_pid and "<defunct>" not in p[-1]]
    if isinstance(sandbox, WasmSandbox):
        # A wasm program has no process of its own. What could outlive a stopped run is an interpreter that
        # was not really killed (a program that outlives a run it finished is tested by its effects).
        return [_cmdline(pid) for pid in sandbox.launched_pids if pid != sandbox.interpreter_pid and _alive(pid)]
    uid = None
    if isinstance(sandbox, BwrapSandbox):
        uid = sandbox.host_uid if sandbox.host_uid is not None else (sandbox.run_as if sandbox.run_as is not None else os.getuid())
    left = []
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
            status = Path(f"/proc/{pid}/status").read_text()
        except OSError:
            continue
        owner = int(status.split("Uid:")[1].split()[0])
        zombie = status.split("State:")[1].split()[0] == "Z"
        if owner == uid and not zombie and ("/code/main.py" in cmdline or "sandbox-canary" in cmdline):
            left.append(cmdline)
    return left


def _alive(pid: int) -> bool:
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return False
    return status.split("State:")[1].split()[0] != "Z"


def _cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
    except OSError:
        return f"pid {pid}"


class CountingServer:
    """A TCP and a UDP server on every host interface that count the connections and datagrams they get."""

    def __init__(self) -> None:
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind(("0.0.0.0", 0))
        self.sock.listen(16)
        self.sock.settimeout(0.2)
        self.port = self.sock.getsockname()[1]
        self.udp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.udp.bind(("0.0.0.0", 0))
        self.udp.settimeout(0.2)
        self.udp_port = self.udp.getsockname()[1]
        self.accepted = 0
        self.datagrams = 0
        self._stop = threading.Event()
        self._threads = [threading.Thread(target=self._serve, daemon=True),
                         threading.Thread(target=self._serve_udp, daemon=True)]
        for thread in self._threads:
            thread.start()

    def _serve(self) -> None:
        while not self._stop.is_set():
            try:
                conn, _ = self.sock.accept()
            except OSError:
                continue
            self.accepted += 1
            conn.close()

    def _serve_udp(self) -> None:
        while not self._stop.is_set():
            try:
                self.udp.recvfrom(2048)
            except OSError:
                continue
            self.datagrams += 1

    def close(self) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(timeout=2)
        self.sock.close()
        self.udp.close()


@pytest.fixture
def counting_server() -> Iterator[CountingServer]:
    server = CountingServer()
    yield server
    server.close()


# --- a test host in a network namespace of the test's own -----------------------------------------------
# It stands in for "somewhere on the network": a sandbox with a network could reach it through a route of
# the host's, as it would reach the internet, while nothing ever leaves this machine. Its /30 is from
# 198.18.0.0/15 (RFC 2544, reserved for benchmarks and never routed), made here and removed after.
NETNS_SERVER = """
import socket, sys, threading, time
tcp = socket.socket(); tcp.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
tcp.bind((sys.argv[1], int(sys.argv[2]))); tcp.listen(16); tcp.settimeout(0.2)
udp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); udp.bind((sys.argv[1], int(sys.argv[2]))); udp.settimeout(0.2)
def tcp_loop():
    while True:
        try:
            conn, _ = tcp.accept()
        except OSError:
            continue
        print("tcp", flush=True); conn.close()
def udp_loop():
    while True:
        try:
            udp.recvfrom(2048)
        except OSError:
            continue
        print("udp", flush=True)
for loop in (tcp_loop, udp_loop):
    threading.Thread(target=loop, daemon=True).start()
print("ready", flush=True)
time.sleep(float(sys.argv[3]))  # it ends by itself even if the test dies
"""


class NetnsHost:
    def __init__(self, address: str, port: int, proc: subprocess.Popen[str]) -> None:
        self.address, self.port, self.proc = address, port, proc
        self.events: list[str] = []
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self.events.append(line.strip())

    def count(self, kind: str) -> int:
        return self.events.count(kind)


_NETNS_SERIAL = itertools.count()


def _free_test_subnet(start: int) -> int:
    """A 198.18.<n>.0/30 no interface on this machine uses yet: another test process (a second CI clone) may
    have picked the same n from its pid, and two veths on one subnet make the control connection flaky."""
    listed = subprocess.run(["ip", "-o", "-4", "addr"], capture_output=True, text=True, timeout=10, check=False).stdout
    used = {int(m) for m in re.findall(r"inet 198\.18\.(\d+)\.", listed)}
    return next((n for n in (*range(start, 250), *range(start)) if n not in used), start)


@pytest.fixture
def netns_host() -> Iterator[NetnsHost]:
    if os.geteuid() != 0:
        pytest.skip("creating a network namespace needs root")
    if shutil.which("ip") is None:
        skip_or_fail("iproute2 (`ip`) is needed to create the test's network namespace")
    # Fresh names, subnet and port for every test: a namespace or veth of the previous one may still be
    # going away (its deletion is asynchronous), and reusing its names or port makes the setup race.
    serial = next(_NETNS_SERIAL)
    tag = f"{os.getpid() % 10000}{serial % 100:02d}"
    name, outer, inner = f"rt-sbx-{tag}", f"rtsbx{tag}a", f"rtsbx{tag}b"
    subnet = _free_test_subnet((os.getpid() + serial) % 250)
    host_ip, ns_ip = f"198.18.{subnet}.1", f"198.18.{subnet}.2"

    def ip(*args: str) -> None:
        done = subprocess.run(["ip", *args], capture_output=True, text=True, timeout=10, check=False)
        if done.returncode != 0:
            raise RuntimeError(f"ip {' '.join(args)}: {done.stderr.strip()}")

    proc = None
    try:
        try:
            ip("netns", "add", name)
            ip("link", "add", outer, "type", "veth", "peer", "name", inner)
            ip("link", "set", inner, "netns", name)
            ip("addr", "add", f"{host_ip}/30", "dev", outer)
            ip("link", "set", outer, "up")
            ip("-n", name, "addr", "add", f"{ns_ip}/30", "dev", inner)
            ip("-n", name, "link", "set", inner, "up")
            ip("-n", name, "link", "set", "lo", "up")
        except RuntimeError as exc:
            skip_or_fail(f"cannot create the test's network namespace: {exc}")
        port = 40000 + (os.getpid() * 7 + serial) % 20000
        proc = subprocess.Popen(["ip", "netns", "exec", name, sys.executable, "-c", NETNS_SERVER, ns_ip, str(port), "120"],
                                stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, stdin=subprocess.DEVNULL, text=True)
        assert proc.stdout is not None
        if proc.stdout.readline().strip() != "ready":
            skip_or_fail("the test host in the network namespace did not start")
        host = NetnsHost(ns_ip, port, proc)
        yield host
    finally:
        if proc is not None:
            proc.kill()
            proc.wait(timeout=10)
        subprocess.run(["ip", "link", "del", outer], capture_output=True, timeout=10, check=False)
        subprocess.run(["ip", "netns", "del", name], capture_output=True, timeout=10, check=False)


async def eventually(predicate: Callable[[], bool], timeout: float) -> bool:
    """Poll `predicate` until it holds or `timeout` passes; its last answer."""
    deadline = time.monotonic() + timeout
    while not predicate() and time.monotonic() < deadline:  # noqa: ASYNC110 (polling another process)
        await asyncio.sleep(0.05)
    return predicate()


def existing(paths: list[str]) -> list[str]:
    return [p for p in paths if Path(p).exists()]


def remove(paths: list[str]) -> None:
    for p in paths:
        Path(p).unlink(missing_ok=True)
