"""Fixtures for the sandbox tests: real backends (docker, bwrap) or a skip/fail when one is missing.

`sandbox_factory` is parametrised over every isolated way in this machine offers:
- docker: the engine and the sandbox image (make sandbox-image);
- bwrap: this host's default mode (root: no user namespace + uid switch; otherwise: user namespace);
- bwrap-userns: only as root, the user-namespace mode a non-root host (a Space) uses, run as nobody with
  the system Python (root's interpreter may live in a directory nobody cannot read).
Under ROUNDTABLE_REQUIRE_SYSTEM=1 (CI) a missing engine, image or bubblewrap FAILS the test.
"""

from __future__ import annotations

import asyncio
import os
import socket
import threading
import time
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from config.settings import get_settings
from sandbox import Limits, SandboxExecutor, bwrap_problem, docker_problem
from sandbox.bwrap_backend import BwrapSandbox
from sandbox.docker_backend import DockerSandbox
from tests.conftest import skip_or_fail

TEST_LIMITS = Limits(timeout_s=4, memory_mb=512, pids=64, output_bytes=20_000, work_mb=64)
ISOLATED = ["docker", "bwrap", "bwrap-userns"]
SYSTEM_PYTHON = "/usr/bin/python3"


def image() -> str:
    return get_settings().sandbox_image


def require(kind: str) -> None:
    """Skip (locally) or fail (CI) when this machine cannot run `kind`."""
    if kind == "docker":
        problem = docker_problem(image())
        if problem:
            skip_or_fail(f"docker sandbox: {problem}")
    elif kind in ("bwrap", "bwrap-userns"):
        if kind == "bwrap-userns":
            if os.geteuid() != 0:
                pytest.skip("not root: the plain 'bwrap' case already uses a user namespace")
            if not os.access(SYSTEM_PYTHON, os.X_OK):
                skip_or_fail(f"{SYSTEM_PYTHON} is needed for the user-namespace bwrap case")
        problem = bwrap_problem()
        if problem:
            skip_or_fail(f"bwrap sandbox: {problem}")


def make_sandbox(kind: str, *, files: list[Path] | None = None, limits: Limits = TEST_LIMITS) -> SandboxExecutor:
    if kind == "docker":
        return DockerSandbox(files=files, limits=limits, image=image())
    if kind == "bwrap":
        return BwrapSandbox(files=files, limits=limits)
    if kind == "bwrap-userns":
        return BwrapSandbox(files=files, limits=limits, python=SYSTEM_PYTHON, userns=True)
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


class CountingServer:
    """A TCP server on every host interface that counts the connections it accepts."""

    def __init__(self) -> None:
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind(("0.0.0.0", 0))
        self.sock.listen(16)
        self.sock.settimeout(0.2)
        self.port = self.sock.getsockname()[1]
        self.accepted = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    def _serve(self) -> None:
        while not self._stop.is_set():
            try:
                conn, _ = self.sock.accept()
            except OSError:
                continue
            self.accepted += 1
            conn.close()

    def close(self) -> None:
        self._stop.set()
        self._thread.join(timeout=2)
        self.sock.close()


@pytest.fixture
def counting_server() -> Iterator[CountingServer]:
    server = CountingServer()
    yield server
    server.close()


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
