"""What every sandbox backend shares: limits, the result shape, output capping, the AutoGen interface."""

from __future__ import annotations

import shutil
import stat
from abc import abstractmethod
from dataclasses import dataclass, field
from pathlib import Path

from autogen_core import CancellationToken
from autogen_core.code_executor import CodeBlock, CodeExecutor, CodeResult

TIMEOUT_EXIT_CODE = 124


@dataclass(frozen=True)
class Limits:
    timeout_s: float = 60.0
    memory_mb: int = 1024
    cpus: float = 1.0
    pids: int = 128
    output_bytes: int = 64_000
    file_size_mb: int = 256


@dataclass
class SandboxResult(CodeResult):
    backend: str = ""
    timed_out: bool = False
    truncated: bool = False
    duration_s: float = 0.0
    notes: list[str] = field(default_factory=list)


class UnsupportedLanguage(ValueError):
    pass


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


def stage_files(files: list[Path], target: Path) -> list[Path]:
    """Copy attachments into `target` read-only, so a program cannot change the question's files."""
    target.mkdir(parents=True, exist_ok=True)
    staged = []
    for f in files:
        dest = target / f.name
        shutil.copyfile(f, dest)
        dest.chmod(stat.S_IRUSR | stat.S_IRGRP | stat.S_IROTH)
        staged.append(dest)
    return staged


class SandboxExecutor(CodeExecutor):
    """AutoGen's CodeExecutor, so CodeExecutorAgent or our run_python tool use any backend unchanged."""

    backend: str = "abstract"
    isolated: bool = True

    def __init__(self, *, files: list[Path] | None = None, limits: Limits | None = None) -> None:
        self.files = list(files or [])
        self.limits = limits or Limits()

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

    @abstractmethod
    async def run_python(self, code: str, cancellation_token: CancellationToken) -> SandboxResult: ...

    async def restart(self) -> None:
        await self.stop()
        await self.start()
