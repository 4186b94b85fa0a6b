"""What a sandbox backend declares about itself, so every list of backends derives from one registry.

Each backend module ends with `BACKEND = BackendInfo(...)`: the executor class (which carries the name,
`SandboxExecutor.backend`, and whether it is isolated at all), what it protects, how it knows it can run
here, and how to make one. `sandbox/__init__.py` registers the modules in `auto`'s order of preference;
the CLI, the settings, the team schema and the benchmark read the names from there.

This module imports nothing of the backends (they import it), so it is cheap and free of cycles.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from sandbox.base import Limits, SandboxExecutor

AUTO = "auto"


@dataclass(frozen=True)
class Host:
    """Where a backend would run: the machine-specific choices a probe and a constructor may need."""

    image: str  # docker: the sandbox image
    python: str | None = None  # bwrap, subprocess: the interpreter (None: this one)
    wasm_dir: Path | None = None  # wasm: the Pyodide runtime (None: settings' SANDBOX_WASM_DIR)


@dataclass(frozen=True)
class BackendInfo:
    executor: type[SandboxExecutor]
    protects: str  # one line: what the isolation holds back (shown by `python -m sandbox run --help`)
    problem: Callable[[Host], str | None]  # None when it can run on this host, else why not
    create: Callable[[Host, list[Path] | None, Limits | None], SandboxExecutor]
    detail: Callable[[Host], str] = lambda host: ""  # appended to the "sandbox: NAME" log line

    @property
    def name(self) -> str:
        return self.executor.backend

    @property
    def isolated(self) -> bool:
        """False: model-written code runs on the host as this user; only used when explicitly allowed."""
        return self.executor.isolated
