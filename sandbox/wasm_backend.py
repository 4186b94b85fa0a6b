"""The `wasm` backend: CPython compiled to WebAssembly (Pyodide) under Deno, for hosts where nothing else
isolates (a Hugging Face Space: unprivileged, no Docker, no user namespaces, Docker's default seccomp).

The program runs inside a wasm instance: it has no system calls of its own, only what Pyodide's emulated
POSIX layer offers, backed by an in-memory file system; no process can be started (there is no fork or
exec in wasm). The one way out is the JavaScript host, and Deno grants it nothing but reading the Pyodide
runtime, the wheel dir and this question's staged attachments: no network, no environment, no writes, no
subprocesses, no FFI, no prompt. The deno process gets an environment built from scratch.

One Deno process per question (its first run starts it: Pyodide takes ~3 s to load), running
sandbox/wasm_runner.mjs, spoken to in JSON lines over stdin/stdout. A run that must be stopped (time limit,
cancel, memory) is stopped by killing the process group from here, since a busy wasm loop cannot be
interrupted from inside; the next run starts a fresh interpreter and says so. Memory: Python's heap is the
wasm memory, capped at `memory_mb` (growing past it is a MemoryError); V8's own heap is capped by a flag
and the whole process by RLIMIT_DATA. Files a program writes live in the interpreter's memory under /work
and /tmp (everything else is read-only), so they persist between runs of a question until a restart.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import resource
import secrets
import shutil
import tempfile
import time
import weakref
from pathlib import Path

from autogen_core import CancellationToken
from loguru import logger

from sandbox.base import (
    Limits,
    OutputCollector,
    SandboxError,
    SandboxExecutor,
    SandboxResult,
    blocking,
    cancel_event,
    kill_group,
    make_result,
    shell_exit_code,
    stage_files,
    wait_for_end,
)
from sandbox.registry import BackendInfo
from sandbox.wasm_runtime import INSTALL_HINT, RUNNER, Runtime, WasmInstallError, find_deno, load_runtime

STARTUP_TIMEOUT_S = 90.0  # loading Pyodide: ~3 s on an idle core, much more on a busy host
V8_HEAP_MB = 256  # JavaScript's own heap (the program's Python objects live in wasm memory, not here)
# RLIMIT_DATA counts what V8 reserves writable at start-up (its code range and cages: ~700 MB) on top of
# the heaps; past this the kernel refuses memory and V8 aborts, which we report as out of memory.
V8_RESERVE_MB = 1024
FILE_SIZE_MB = 64  # what deno itself may write (its cache db in the private DENO_DIR)
NICE = 10
MAX_LINE = 1 << 20  # a line on stdout longer than this without a newline is program output, not protocol
RESTART_NOTE = "the interpreter was restarted after the last run was stopped: files written to /work are gone"


def deno_command(deno: str, runtime: Runtime, files_dir: Path) -> list[str]:
    readable = ",".join(str(p) for p in (*runtime.read_dirs, files_dir))
    return [
        deno, "run", "--no-prompt", "--no-remote", "--no-npm", "--no-config", "--no-lock", "--no-code-cache",
        "--quiet", f"--v8-flags=--max-old-space-size={V8_HEAP_MB}",
        f"--allow-read={readable}",
        "--deny-write", "--deny-net", "--deny-env", "--deny-run", "--deny-ffi", "--deny-sys", "--deny-import",
        str(RUNNER),
    ]


def deno_env(home: Path) -> dict[str, str]:
    """Everything the deno process sees: nothing of the app's environment."""
    return {
        "HOME": str(home),
        "DENO_DIR": str(home / "deno"),
        "TMPDIR": str(home),
        "PATH": "/usr/bin:/bin",
        "LANG": "C.UTF-8",
        "NO_COLOR": "1",
        "DENO_NO_UPDATE_CHECK": "1",
        "DENO_NO_PROMPT": "1",
    }


def _limit_child(limits: Limits) -> None:
    """Runs in the child between fork and exec."""
    data = (limits.memory_mb + V8_HEAP_MB + V8_RESERVE_MB) << 20
    resource.setrlimit(resource.RLIMIT_DATA, (data, data))
    resource.setrlimit(resource.RLIMIT_FSIZE, (FILE_SIZE_MB << 20, FILE_SIZE_MB << 20))
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
    os.nice(NICE)


class _Stdout:
    """Splits deno's stdout into protocol messages (lines starting with the token) and program output."""

    def __init__(self, stream: asyncio.StreamReader, token: str) -> None:
        self.stream = stream
        self.prefix = (token + " ").encode()
        self.buffer = bytearray()
        self.eof = False

    async def next(self, raw: OutputCollector | None) -> dict | None:
        """The next message; raw output met on the way goes to `raw`. None at end of stream."""
        while True:
            newline = self.buffer.find(b"\n")
            if newline >= 0:
                line = bytes(self.buffer[: newline + 1])
                del self.buffer[: newline + 1]
                if line.startswith(self.prefix):
                    try:
                        return json.loads(line[len(self.prefix):])
                    except ValueError:
                        pass
                if raw is not None:
                    raw.feed(line)
                continue
            if len(self.buffer) > MAX_LINE and not self.buffer.startswith(self.prefix):
                if raw is not None:
                    raw.feed(bytes(self.buffer))
                self.buffer.clear()
            if self.eof:
                if self.buffer and raw is not None:
                    raw.feed(bytes(self.buffer))
                self.buffer.clear()
                return None
            chunk = await self.stream.read(1 << 16)
            if not chunk:
                self.eof = True
            self.buffer += chunk


class WasmSandbox(SandboxExecutor):
    backend = "wasm"
    isolated = True

    def __init__(self, *, files: list[Path] | None = None, limits: Limits | None = None,
                 runtime_dir: Path | None = None, deno: str | None = None) -> None:
        """`runtime_dir`: SANDBOX_WASM_DIR (default: settings). `deno`: the binary (default: the deno wheel's)."""
        super().__init__(files=files, limits=limits)
        self.runtime_dir = runtime_dir
        self.deno = deno
        self._dir: Path | None = None
        self._finaliser: weakref.finalize | None = None
        self._proc: asyncio.subprocess.Process | None = None
        self._out: _Stdout | None = None
        self._stderr_tail = bytearray()
        self._stderr_task: asyncio.Task | None = None
        self._starting: asyncio.Future | None = None  # an interpreter being loaded (first run, or after a kill)
        self._restarted = False  # the last interpreter was killed: the next result says its files are gone
        self.load_s: float | None = None  # how long the last interpreter took to load
        self.launched_pids: list[int] = []  # every deno this sandbox started (the tests check the dead stay dead)

    # --- lifecycle -----------------------------------------------------------------------------------
    async def start(self) -> None:
        if self._dir is None:
            await blocking(self._prepare_dir)

    def _prepare_dir(self) -> None:
        d = Path(tempfile.mkdtemp(prefix="roundtable-wasm-"))
        try:
            stage_files(self.files, d / "files")
            (d / "deno").mkdir()
        except BaseException:
            shutil.rmtree(d, ignore_errors=True)
            raise
        self._dir = d
        self._finaliser = weakref.finalize(self, shutil.rmtree, str(d), True)

    async def stop(self) -> None:
        if self._starting is not None:
            starting, self._starting = self._starting, None
            starting.cancel()
            with contextlib.suppress(BaseException):
                await starting
        await self._kill()
        if self._dir is not None:
            d, self._dir = self._dir, None
            if self._finaliser is not None:
                self._finaliser.detach()
                self._finaliser = None
            await blocking(shutil.rmtree, d, True)

    async def _kill(self) -> None:
        proc, self._proc, self._out = self._proc, None, None
        if proc is None:
            return
        if proc.returncode is None:  # once reaped, its pid (and group id) may belong to someone else
            kill_group(proc.pid)
        with contextlib.suppress(ProcessLookupError):
            await proc.wait()
        if self._stderr_task is not None:
            self._stderr_task.cancel()
            self._stderr_task = None

    async def _read_stderr(self, stream: asyncio.StreamReader) -> None:
        while chunk := await stream.read(1 << 14):
            self._stderr_tail += chunk
            del self._stderr_tail[:-4096]

    def _stderr(self) -> str:
        return self._stderr_tail.decode("utf-8", errors="replace").strip()

    async def _launch(self) -> None:
        """Start deno + Pyodide and wait until it is ready (this time is not the program's)."""
        await self.start()
        assert self._dir is not None
        deno = self.deno or find_deno()
        if deno is None:
            raise SandboxError("wasm sandbox: deno is not installed (pip install deno, or `make` installs it)")
        try:
            runtime = await blocking(load_runtime, self.runtime_dir)
        except WasmInstallError as exc:
            raise SandboxError(f"wasm sandbox: {exc}") from exc
        token = secrets.token_hex(16)
        self._stderr_tail.clear()
        try:
            proc = await asyncio.create_subprocess_exec(
                *deno_command(deno, runtime, self._dir / "files"),
                stdin=asyncio.subprocess.PIPE,
                stdout=asyncio.subprocess.PIPE,
                stderr=asyncio.subprocess.PIPE,
                env=deno_env(self._dir),
                cwd=str(self._dir),
                start_new_session=True,  # its own process group: one killpg stops it
                preexec_fn=lambda: _limit_child(self.limits),
            )
        except OSError as exc:
            raise SandboxError(f"wasm sandbox: cannot start deno ({deno}): {exc}; pip install deno") from exc
        self._proc = proc
        self.launched_pids.append(proc.pid)
        assert proc.stdout is not None and proc.stderr is not None and proc.stdin is not None
        self._out = _Stdout(proc.stdout, token)
        self._stderr_task = asyncio.ensure_future(self._read_stderr(proc.stderr))
        setup = {
            "token": token,
            "pyodide_module": (runtime.pyodide_dir / "pyodide.mjs").as_uri(),
            "index_url": str(runtime.pyodide_dir) + "/",
            "wheels": [str(w) for w in runtime.wheels],
            "lock_packages": list(runtime.lock_packages),
            "snapshot": str(runtime.snapshot) if runtime.snapshot else None,
            "files": [[str(self._dir / "files" / f.name), f.name] for f in self.files],
            "memory_mb": self.limits.memory_mb,
            "output_bytes": self.limits.output_bytes,
        }
        proc.stdin.write(json.dumps(setup).encode() + b"\n")

        async def first_word() -> dict | None:
            assert self._out is not None
            while (message := await self._out.next(None)) is not None and "warning" in message:
                logger.warning("sandbox: wasm: {}", message["warning"])
            return message

        try:
            message = await asyncio.wait_for(first_word(), STARTUP_TIMEOUT_S)
        except asyncio.TimeoutError:
            await self._kill()
            raise SandboxError(f"wasm sandbox: the Pyodide interpreter did not load within {STARTUP_TIMEOUT_S:g}s") from None
        except BaseException:
            await self._kill()
            raise
        if not (message or {}).get("ready"):
            with contextlib.suppress(asyncio.TimeoutError, ProcessLookupError):
                await asyncio.wait_for(proc.wait(), 5)
            await asyncio.sleep(0.05)  # the stderr reader's last words
            why = (message or {}).get("fatal") or self._stderr() or f"exit code {proc.returncode}"
            await self._kill()
            raise SandboxError(f"wasm sandbox: the Pyodide interpreter did not start: {why[-600:]}")
        self.load_s = float((message or {}).get("load_s", 0))
        logger.info("sandbox: wasm interpreter loaded in {:.2f}s", self.load_s)

    async def _ready(self, cancelled: asyncio.Event) -> bool:
        """Wait for a live interpreter (starting one if needed); False when the run was cancelled first.
        A start that a cancel interrupted goes on, for the next run."""
        if self._starting is None and (self._proc is None or self._proc.returncode is not None):
            if self._proc is not None:  # it died between runs (e.g. the kernel's OOM killer)
                self._restarted = True
            await self._kill()
            self._starting = asyncio.ensure_future(self._launch())
        if self._starting is None:
            return True
        starting = self._starting
        waiter = asyncio.ensure_future(cancelled.wait())
        try:
            await asyncio.wait({starting, waiter}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            waiter.cancel()
        if not starting.done():
            return False
        self._starting = None
        starting.result()  # a SandboxError says why it could not start
        return True

    def _respawn(self) -> None:
        """After a kill, load the next interpreter now, so the agent's next run does not wait for it."""
        self._restarted = True
        if self._starting is None:
            self._starting = asyncio.ensure_future(self._launch())
            # retrieved by the next run or by stop(); a failure is reported there
            self._starting.add_done_callback(lambda f: f.cancelled() or f.exception())

    # --- one run -------------------------------------------------------------------------------------
    async def _run(self, code: str, cancellation_token: CancellationToken) -> SandboxResult:
        cancelled = cancel_event(cancellation_token)
        notes: list[str] = []
        if not await self._ready(cancelled):
            return make_result(self.backend, exit_code=0, output="", truncated=False, cause="cancelled",
                               limits=self.limits, duration_s=0.0)
        if self._restarted:
            notes.append(RESTART_NOTE)
            self._restarted = False
        proc, out = self._proc, self._out
        assert proc is not None and out is not None and proc.stdin is not None
        collector = OutputCollector(self.limits.output_bytes)
        started = time.monotonic()
        try:
            proc.stdin.write(json.dumps({"code": code}).encode() + b"\n")
            await proc.stdin.drain()
        except (BrokenPipeError, ConnectionResetError):
            pass  # it died: reading says how

        async def until_done() -> int | None:
            while True:
                message = await out.next(collector)
                if message is None:
                    return None
                if "out" in message:
                    collector.feed(str(message["out"]).encode("utf-8", errors="replace"))
                elif "held" in message:
                    tail = str(message.get("tail", "")).encode("utf-8", errors="replace")
                    collector.skip(int(message["held"]) - len(tail))
                    collector.feed(tail)
                elif "done" in message:
                    return int(message.get("exit", 1))
                elif "fatal" in message:
                    collector.feed(f"sandbox: {message['fatal']}\n".encode())

        done = asyncio.ensure_future(until_done())
        try:
            cause = await wait_for_end(done, cancelled, self.limits.timeout_s)
        except asyncio.CancelledError:
            done.cancel()
            await asyncio.shield(self._kill())
            self._restarted = True
            raise
        exit_code = 0
        if cause != "exited":
            done.cancel()
            await self._kill()
            self._respawn()
        else:
            result = done.result()
            if result is None:  # the interpreter died: out of memory, or the program ended it
                with contextlib.suppress(asyncio.TimeoutError):
                    await asyncio.wait_for(proc.wait(), 5)
                exit_code = shell_exit_code(proc.returncode)
                await asyncio.sleep(0)  # let the stderr reader take the last words
                notes += self._death_note(exit_code)
                await self._kill()
                self._respawn()
            else:
                exit_code = result
        output, truncated = collector.text()
        return make_result(self.backend, exit_code=exit_code, output=output, truncated=truncated, cause=cause,
                           limits=self.limits, duration_s=time.monotonic() - started, notes=notes)

    @property
    def interpreter_pid(self) -> int | None:
        return None if self._proc is None or self._proc.returncode is not None else self._proc.pid

    def _death_note(self, exit_code: int) -> list[str]:
        stderr = self._stderr()
        if "out of memory" in stderr.lower() or "allocation failed" in stderr.lower():
            return [f"killed: out of memory (the limit is {self.limits.memory_mb} MB)"]
        if exit_code == 0:
            return ["the program ended the interpreter"]
        return [f"the interpreter died (exit code {exit_code})" + (f": {stderr[-300:]}" if stderr else "")]


def wasm_problem(runtime_dir: Path | None = None) -> str | None:
    """Why the wasm backend cannot run here, or None when deno runs and the runtime is installed."""
    deno = find_deno()
    if deno is None:
        return "deno is not installed (pip install deno; `make` installs it into .venv)"
    try:
        load_runtime(runtime_dir)
    except WasmInstallError as exc:
        return str(exc)
    import subprocess

    try:
        done = subprocess.run([deno, "--version"], capture_output=True, text=True, timeout=30, check=False,
                              env={"PATH": "/usr/bin:/bin", "NO_COLOR": "1", "DENO_NO_UPDATE_CHECK": "1"})
    except (OSError, subprocess.TimeoutExpired) as exc:
        return f"deno cannot run here: {exc}"
    if done.returncode != 0:
        return f"deno cannot run here: {(done.stderr or done.stdout).strip()[-300:]}"
    return None


BACKEND = BackendInfo(
    executor=WasmSandbox,
    protects="Pyodide (WebAssembly) under Deno with no permissions but reading its runtime and the "
             "attachments: no host processes, files or network",
    problem=lambda host: wasm_problem(host.wasm_dir),
    create=lambda host, files, limits: WasmSandbox(files=files, limits=limits, runtime_dir=host.wasm_dir),
)

__all__ = ["BACKEND", "INSTALL_HINT", "WasmSandbox", "wasm_problem"]
