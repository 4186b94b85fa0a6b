"""Where the coder's Python runs. `create_executor` picks a backend; see README "Sandbox"."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from sandbox.base import Limits, SandboxExecutor, SandboxResult
from sandbox.subprocess_backend import SubprocessSandbox

Backend = Literal["auto", "docker", "bwrap", "subprocess"]


class SandboxUnavailable(RuntimeError):
    pass


def create_executor(
    backend: Backend = "auto",
    *,
    files: list[Path] | None = None,
    limits: Limits | None = None,
    allow_subprocess: bool = False,
) -> SandboxExecutor:
    if backend in ("auto", "subprocess"):
        if not allow_subprocess:
            raise SandboxUnavailable(
                "no isolated sandbox backend is available and the subprocess backend is not allowed "
                "(set `sandbox.allow_subprocess: true` in the team YAML or SANDBOX_ALLOW_SUBPROCESS=1)"
            )
        return SubprocessSandbox(files=files, limits=limits)
    raise SandboxUnavailable(f"sandbox backend {backend!r} is not available on this machine")


__all__ = ["Backend", "Limits", "SandboxExecutor", "SandboxResult", "SandboxUnavailable", "create_executor"]
