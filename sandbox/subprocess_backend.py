"""The `subprocess` backend: a plain child process with rlimits and a timeout in a temporary directory.

It is NOT isolated: the program runs as this user, can read what this user can read (the project's
.env included) and can use the network. Only its environment is cleaned. It exists for machines without
Docker or bubblewrap, is refused unless the config allows it, and says so loudly in the log.
"""

from __future__ import annotations

import asyncio
import os
import resource
import sys
import tempfile
import time
from pathlib import Path

from autogen_core import CancellationToken
from loguru import logger

from sandbox.base import (
    Limits,
    OutputCollector,
    SandboxExecutor,
    SandboxResult,
    cancel_event,
    kill_group,
    make_result,
    shell_exit_code,
    signal_note,
    stage_files,
    wait_for_end,
)
from sandbox.env import program_env
from sandbox.registry import BackendInfo
from sandbox.undumpable import make_undumpable


def _limit_child(limits: Limits) -> None:
    """Runs in the child between fork and exec."""
    mem = limits.memory_mb * 1024 * 1024
    resource.setrlimit(resource.RLIMIT_AS, (mem, mem))
    cpu = int(limits.timeout_s) + 1
    resource.setrlimit(resource.RLIMIT_CPU, (cpu, cpu))
    size = limits.file_size_mb * 1024 * 1024
    resource.setrlimit(resource.RLIMIT_FSIZE, (size, size))
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
    os.nice(10)


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
        # The program may read /proc/<pid>/environ of any process of this user: hide ours (API keys).
        make_undumpable()
        self._tmp = tempfile.TemporaryDirectory(prefix="roundtable-sbx-")
        self.work_dir = Path(self._tmp.name) / "work"
        (Path(self._tmp.name) / "code").mkdir()
        stage_files(self.files, self.work_dir)

    async def stop(self) -> None:
        if self._tmp is not None:
            self._tmp.cleanup()
            self._tmp = None
            self.work_dir = None

    async def _run(self, code: str, cancellation_token: CancellationToken) -> SandboxResult:
        await self.start()
        assert self.work_dir is not None
        script = self.work_dir.parent / "code" / "main.py"
        script.write_text(code, encoding="utf-8")
        started = time.monotonic()
        env = program_env(home=str(self.work_dir), tmp=str(self.work_dir), cpus=self.limits.cpus,
                          path=os.environ.get("PATH", "/usr/local/bin:/usr/bin:/bin"))
        proc = await asyncio.create_subprocess_exec(
            self.python,
            "-s",  # no user site-packages
            str(script),
            cwd=self.work_dir,
            env=env,
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.STDOUT,
            start_new_session=True,  # its own process group, so we can kill children too
            preexec_fn=lambda: _limit_child(self.limits),
        )

        collector = OutputCollector(self.limits.output_bytes)
        assert proc.stdout is not None
        done = asyncio.ensure_future(collector.read_from(proc.stdout))
        # The program's group is killed when it ends too: that also reaps what it left running. A child
        # that left the group (setsid) survives; this backend does not pretend to contain anything.
        exited = asyncio.ensure_future(proc.wait())
        cancelled = cancel_event(cancellation_token)
        try:
            cause = await wait_for_end(exited, cancelled, self.limits.timeout_s)
        finally:
            kill_group(proc.pid)
        try:
            await asyncio.wait_for(done, timeout=5)
        except asyncio.TimeoutError:  # an escaped child still holds the pipe
            done.cancel()
        await proc.wait()
        exit_code = shell_exit_code(proc.returncode)
        output, truncated = collector.text()
        notes = signal_note(exit_code, self.limits) if cause == "exited" else []
        return make_result(self.backend, exit_code=exit_code, output=output, truncated=truncated, cause=cause,
                           limits=self.limits, duration_s=time.monotonic() - started, notes=notes)


BACKEND = BackendInfo(
    executor=SubprocessSandbox,
    protects="nothing: the program runs on this host as this user, with its files and network (rlimits "
             "and a scrubbed environment only); used only when explicitly allowed",
    problem=lambda host: None,
    create=lambda host, files, limits: SubprocessSandbox(files=files, limits=limits, python=host.python),
)
