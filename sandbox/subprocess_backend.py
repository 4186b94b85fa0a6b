"""The `subprocess` backend: a plain child process with rlimits and a timeout in a temporary directory.

It is NOT isolated: the program runs as this user, can read what this user can read and can use the
network. It exists for machines without Docker or bubblewrap and is refused unless the config allows it.
"""

from __future__ import annotations

import asyncio
import os
import resource
import signal
import sys
import tempfile
import time
from pathlib import Path

from autogen_core import CancellationToken
from loguru import logger

from sandbox.base import TIMEOUT_EXIT_CODE, Limits, SandboxExecutor, SandboxResult, cap_output, stage_files

# Only what a Python program needs to start; the parent's environment (API keys!) never passes through.
_SAFE_ENV_KEYS = ("PATH", "LANG", "LC_ALL", "TZ")


def _child_env(home: Path) -> dict[str, str]:
    env = {k: os.environ[k] for k in _SAFE_ENV_KEYS if k in os.environ}
    env.update(HOME=str(home), TMPDIR=str(home), PYTHONUNBUFFERED="1", PYTHONDONTWRITEBYTECODE="1", MPLBACKEND="Agg")
    return env


def _limit_child(limits: Limits) -> None:
    """Runs in the child between fork and exec."""
    mem = limits.memory_mb * 1024 * 1024
    resource.setrlimit(resource.RLIMIT_AS, (mem, mem))
    cpu = int(limits.timeout_s) + 1
    resource.setrlimit(resource.RLIMIT_CPU, (cpu, cpu))
    size = limits.file_size_mb * 1024 * 1024
    resource.setrlimit(resource.RLIMIT_FSIZE, (size, size))
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))


async def _read_capped(stream: asyncio.StreamReader, limit: int) -> tuple[bytes, int]:
    """Read everything (so the child never blocks on a full pipe) but keep only head and tail."""
    head = bytearray()
    tail = bytearray()
    total = 0
    while chunk := await stream.read(65536):
        total += len(chunk)
        if len(head) < limit:
            take = limit - len(head)
            head += chunk[:take]
            chunk = chunk[take:]
        if chunk:
            tail = (tail + chunk)[-limit // 4 :]
    return bytes(head + tail), total


class SubprocessSandbox(SandboxExecutor):
    backend = "subprocess"
    isolated = False

    def __init__(self, *, files: list[Path] | None = None, limits: Limits | None = None, python: str | None = None):
        super().__init__(files=files, limits=limits)
        self.python = python or sys.executable
        self._tmp: tempfile.TemporaryDirectory[str] | None = None
        self.work_dir: Path | None = None

    async def start(self) -> None:
        if self._tmp is not None:
            return
        logger.warning("sandbox backend 'subprocess' is NOT isolated: code runs on the host as this user")
        self._tmp = tempfile.TemporaryDirectory(prefix="roundtable-sbx-")
        self.work_dir = Path(self._tmp.name)
        stage_files(self.files, self.work_dir)

    async def stop(self) -> None:
        if self._tmp is not None:
            self._tmp.cleanup()
            self._tmp = None
            self.work_dir = None

    async def run_python(self, code: str, cancellation_token: CancellationToken) -> SandboxResult:
        await self.start()
        assert self.work_dir is not None
        script = self.work_dir / f"_run_{time.monotonic_ns()}.py"
        script.write_text(code, encoding="utf-8")
        started = time.monotonic()
        proc = await asyncio.create_subprocess_exec(
            self.python,
            "-I",  # isolated mode: ignore PYTHON* variables and the user site
            str(script),
            cwd=self.work_dir,
            env=_child_env(self.work_dir),
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.STDOUT,
            start_new_session=True,  # its own process group, so we can kill children too
            preexec_fn=lambda: _limit_child(self.limits),
        )

        def kill() -> None:
            try:
                os.killpg(proc.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass

        cancellation_token.add_callback(kill)
        assert proc.stdout is not None
        reader = asyncio.ensure_future(_read_capped(proc.stdout, self.limits.output_bytes))
        timed_out = False
        try:
            await asyncio.wait_for(proc.wait(), timeout=self.limits.timeout_s)
        except asyncio.TimeoutError:
            timed_out = True
        finally:
            kill()  # also reaps anything the program left running in its group
        data, _total = await reader
        await proc.wait()
        script.unlink(missing_ok=True)
        output, truncated = cap_output(data, self.limits.output_bytes)
        notes = []
        exit_code = proc.returncode if proc.returncode is not None else -1
        if timed_out:
            exit_code = TIMEOUT_EXIT_CODE
            notes.append(f"killed after the {self.limits.timeout_s:g}s time limit")
        elif cancellation_token.is_cancelled():
            notes.append("stopped: the run was cancelled")
        if truncated:
            notes.append("output truncated")
        if notes:
            output += "\n[sandbox: " + "; ".join(notes) + "]"
        return SandboxResult(
            exit_code=exit_code,
            output=output,
            backend=self.backend,
            timed_out=timed_out,
            truncated=truncated,
            duration_s=time.monotonic() - started,
            notes=notes,
        )
