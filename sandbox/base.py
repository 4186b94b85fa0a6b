"""What every sandbox backend shares: limits, the result shape, output capping, the AutoGen interface.

A backend implements `start`, `stop` and `_run(code, token)`; this module serialises runs (one program
at a time per question), turns an already-cancelled token into an immediate answer, and writes the
notes the agent reads when a program was stopped ("killed after the 60s time limit", "output truncated").
"""

from __future__ import annotations

import asyncio
import os
import shutil
import signal
import stat
import threading
from abc import abstractmethod
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from autogen_core import CancellationToken
from autogen_core.code_executor import CodeBlock, CodeExecutor, CodeResult

TIMEOUT_EXIT_CODE = 124
CANCELLED_EXIT_CODE = 130  # what a shell reports for a program stopped by Ctrl-C

StopCause = Literal["exited", "timeout", "cancelled", "quota"]


@dataclass(frozen=True)
class Limits:
    timeout_s: float = 60.0  # wall clock per run; the program is killed when it is over
    memory_mb: int = 1024  # docker: the container's RAM (no swap); bwrap/subprocess: address space per process
    cpus: float = 1.0  # docker only (bwrap/subprocess: CPU seconds per process are capped by the timeout)
    pids: int = 128  # processes and threads
    output_bytes: int = 64_000  # what comes back to the agent (head and tail are kept)
    file_size_mb: int = 256  # largest file a program may write
    work_mb: int = 512  # the work dir: docker's tmpfs size, bwrap's quota
    lifetime_s: float = 3 * 3600  # a docker container removes itself after this long even if nobody stops it


@dataclass
class SandboxResult(CodeResult):
    backend: str = ""
    timed_out: bool = False
    cancelled: bool = False
    truncated: bool = False
    duration_s: float = 0.0
    notes: list[str] = field(default_factory=list)


class UnsupportedLanguage(ValueError):
    pass


class SandboxError(RuntimeError):
    """The sandbox itself failed (not the program): engine gone, image missing, bwrap refused to start."""


def cap_output(data: bytes, limit: int) -> tuple[str, bool]:
    """Decode and cap program output, keeping the head and the tail (errors are usually at the end)."""
    if len(data) <= limit:
        return data.decode("utf-8", errors="replace"), False
    head, tail = data[: limit * 3 // 4], data[-limit // 4 :]
    cut = len(data) - len(head) - len(tail)
    text = (
        head.decode("utf-8", errors="replace")
        + f"\n[... output truncated: {cut} bytes not shown ...]\n"
        + tail.decode("utf-8", errors="replace")
    )
    return text, True


class OutputCollector:
    """Takes a program's output chunk by chunk but keeps only what `cap_output` can show.

    A program printing 100 MB (or forever) costs its reader a bounded amount of memory: the first
    `limit` bytes and a rolling tail are kept, the rest is only counted.
    """

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.total = 0
        self._keep = max(1, limit // 4)
        self._head = bytearray()
        self._last = bytearray()  # a rolling window over the end of the stream
        self._lock = threading.Lock()

    def feed(self, chunk: bytes) -> None:
        if not chunk:
            return
        with self._lock:
            self.total += len(chunk)
            if len(self._head) < self.limit:
                self._head += chunk[: self.limit - len(self._head)]
            self._last += chunk[-self._keep :]
            if len(self._last) > 4 * self._keep:
                del self._last[: -self._keep]

    def skip(self, count: int) -> None:
        """Count `count` bytes that were dropped before they got here (a producer that caps its own output);
        what is fed afterwards is the stream's tail."""
        if count <= 0:
            return
        with self._lock:
            self.total += count
            self._last.clear()

    async def read_from(self, stream: asyncio.StreamReader) -> None:
        """Feed everything `stream` yields until it ends (the program closed its output)."""
        while chunk := await stream.read(1 << 16):
            self.feed(chunk)

    def text(self) -> tuple[str, bool]:
        with self._lock:
            if self.total <= self.limit:
                return cap_output(bytes(self._head), self.limit)
            head = bytes(self._head[: self.limit * 3 // 4])
            tail = bytes(self._last[-self._keep :])
            cut = self.total - len(head) - len(tail)
        return (
            head.decode("utf-8", errors="replace")
            + f"\n[... output truncated: {cut} bytes not shown ...]\n"
            + tail.decode("utf-8", errors="replace"),
            True,
        )


def kill_group(pgid: int) -> None:
    """SIGKILL a process group; one that is already gone is fine."""
    try:
        os.killpg(pgid, signal.SIGKILL)
    except ProcessLookupError:
        pass


def shell_exit_code(returncode: int | None) -> int:
    """asyncio's -N for "killed by signal N" reported as a shell does (128+N); None (unknown) as -1."""
    rc = returncode if returncode is not None else -1
    return 128 - rc if rc < -1 else rc


def stage_files(files: list[Path], target: Path) -> list[Path]:
    """Copy attachments into `target` read-only, so a program cannot change the question's files."""
    target.mkdir(parents=True, exist_ok=True)
    staged = []
    for f in files:
        src = Path(f)
        if not src.is_file():
            raise FileNotFoundError(f"sandbox attachment not found or not a file: {src}")
        dest = target / src.name
        if dest.exists():
            raise ValueError(f"two sandbox attachments are named {src.name!r}")
        shutil.copyfile(src, dest)
        dest.chmod(stat.S_IRUSR | stat.S_IRGRP | stat.S_IROTH)
        staged.append(dest)
    return staged


# Blocking work (the docker SDK, directory scans) runs here rather than in asyncio's default pool, so a
# batch of questions streaming program output cannot starve everything else that uses `to_thread`.
_POOL = ThreadPoolExecutor(max_workers=32, thread_name_prefix="sandbox")


async def blocking(fn, /, *args, **kwargs):
    loop = asyncio.get_running_loop()
    return await loop.run_in_executor(_POOL, lambda: fn(*args, **kwargs))


def in_thread(fn, /, *args) -> asyncio.Future:
    """Run a long blocking call (reading a program's output) in its own daemon thread.

    Daemon threads never hold up interpreter exit, and long readers never occupy the shared pool.
    """
    loop = asyncio.get_running_loop()
    future: asyncio.Future = loop.create_future()

    def settle(result: object, error: BaseException | None) -> None:
        if future.done():
            return
        if error is not None:
            future.set_exception(error)
        else:
            future.set_result(result)

    def target() -> None:
        try:
            result, error = fn(*args), None
        except BaseException as exc:
            result, error = None, exc
        try:
            loop.call_soon_threadsafe(settle, result, error)
        except RuntimeError:  # the loop is closed
            pass

    threading.Thread(target=target, daemon=True, name="sandbox-output").start()
    return future


def submit_blocking(fn, /, *args, **kwargs) -> None:
    """Fire and forget (used while a task is being cancelled and cannot await any more)."""
    _POOL.submit(fn, *args, **kwargs)


def cancel_event(token: CancellationToken) -> asyncio.Event:
    """An asyncio.Event set when `token` is cancelled, from whatever thread cancels it.

    The token calls back while holding its own lock, so the callback must not touch the token.
    """
    loop = asyncio.get_running_loop()
    event = asyncio.Event()

    def on_cancel() -> None:
        try:
            loop.call_soon_threadsafe(event.set)
        except RuntimeError:  # the loop is closed: nobody waits any more
            pass

    token.add_callback(on_cancel)
    return event


async def wait_for_end(done: asyncio.Future, cancelled: asyncio.Event, timeout_s: float,
                       extra: asyncio.Future | None = None) -> StopCause:
    """Wait until the program ends, the time limit passes, or the run is cancelled (whichever is first)."""
    waiter = asyncio.ensure_future(cancelled.wait())
    waits: set[asyncio.Future] = {done, waiter}
    if extra is not None:
        waits.add(extra)
    try:
        finished, _ = await asyncio.wait(waits, timeout=timeout_s, return_when=asyncio.FIRST_COMPLETED)
    finally:
        waiter.cancel()
    if done in finished:
        return "exited"
    if waiter in finished:
        return "cancelled"
    if extra is not None and extra in finished:
        return "quota"
    return "timeout"


def make_result(
    backend: str,
    *,
    exit_code: int,
    output: str,
    truncated: bool,
    cause: StopCause,
    limits: Limits,
    duration_s: float,
    notes: list[str] | None = None,
) -> SandboxResult:
    notes = list(notes or [])
    if cause == "timeout":
        exit_code = TIMEOUT_EXIT_CODE
        notes.insert(0, f"killed after the {limits.timeout_s:g}s time limit")
    elif cause == "cancelled":
        exit_code = CANCELLED_EXIT_CODE
        notes.insert(0, "stopped: the run was cancelled")
    elif cause == "quota":
        notes.insert(0, f"killed: the work dir grew past its {limits.work_mb} MB limit")
    if truncated:
        notes.append(f"output truncated to {limits.output_bytes} bytes")
    if notes:
        output += ("" if output.endswith("\n") or not output else "\n") + "[sandbox: " + "; ".join(notes) + "]"
    return SandboxResult(
        exit_code=exit_code,
        output=output,
        backend=backend,
        timed_out=cause == "timeout",
        cancelled=cause == "cancelled",
        truncated=truncated,
        duration_s=duration_s,
        notes=notes,
    )


def signal_note(exit_code: int, limits: Limits, *, oom: bool = False) -> list[str]:
    """Explain an exit by signal (shells report 128+N) in words the agent can act on."""
    if oom:
        return [f"killed: out of memory (the limit is {limits.memory_mb} MB)"]
    if exit_code in (137, -9):
        return ["killed by SIGKILL"]
    if exit_code in (152, -24):
        return ["killed: CPU time limit reached"]
    if exit_code in (153, -25):
        return [f"killed: a file grew past the {limits.file_size_mb} MB limit"]
    return []


class SandboxExecutor(CodeExecutor):
    """AutoGen's CodeExecutor, so CodeExecutorAgent or our run_python tool use any backend unchanged.

    `backend` names what runs the code and `isolated` says whether it is contained at all (only the
    subprocess backend is not); the UI shows both.
    """

    backend: str = "abstract"
    isolated: bool = True

    def __init__(self, *, files: list[Path] | None = None, limits: Limits | None = None) -> None:
        self.files = [Path(f) for f in (files or [])]
        self.limits = limits or Limits()
        self._run_lock = asyncio.Lock()

    def describe(self) -> str:
        return self.backend if self.isolated else f"{self.backend} (NOT isolated)"

    async def execute_code_blocks(
        self, code_blocks: list[CodeBlock], cancellation_token: CancellationToken
    ) -> SandboxResult:
        outputs: list[str] = []
        last: SandboxResult | None = None
        for block in code_blocks:
            language = block.language.lower().strip()
            if language not in ("python", "py", "python3"):
                raise UnsupportedLanguage(f"the sandbox runs Python only, not {block.language!r}")
            last = await self.run_python(block.code, cancellation_token)
            outputs.append(last.output)
            if last.exit_code != 0:
                break
        if last is None:
            return SandboxResult(exit_code=0, output="", backend=self.backend)
        last.output = "".join(outputs)
        return last

    async def run_python(self, code: str, cancellation_token: CancellationToken) -> SandboxResult:
        """Run one program to its end, its time limit or the token's cancellation."""
        if cancellation_token.is_cancelled():
            return make_result(self.backend, exit_code=0, output="", truncated=False, cause="cancelled",
                               limits=self.limits, duration_s=0.0)
        async with self._run_lock:
            return await self._run(code, cancellation_token)

    @abstractmethod
    async def _run(self, code: str, cancellation_token: CancellationToken) -> SandboxResult: ...

    async def restart(self) -> None:
        await self.stop()
        await self.start()
