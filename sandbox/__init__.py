"""Where the coder's Python runs. `create_executor` picks a backend; see README "Sandbox".

`auto` takes the first that works here: docker (an engine answers and the image exists) > bwrap
(bubblewrap can create its namespaces) > wasm (Pyodide under Deno: deno and the runtime are installed)
> subprocess (not isolated; only when the config allows it).
Each probe's answer is cached for a short while so a batch of questions does not re-probe per question.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Literal

from loguru import logger

from sandbox.base import Limits, SandboxError, SandboxExecutor, SandboxResult
from sandbox.subprocess_backend import SubprocessSandbox

Backend = Literal["auto", "docker", "bwrap", "wasm", "subprocess"]
BACKENDS: tuple[str, ...] = ("auto", "docker", "bwrap", "wasm", "subprocess")
PROBE_TTL_S = 30.0


class SandboxUnavailable(RuntimeError):
    pass


_probes: dict[tuple[str, str], tuple[float, str | None]] = {}


def _cached(kind: str, key: str, probe) -> str | None:
    now = time.monotonic()
    hit = _probes.get((kind, key))
    if hit is not None and now - hit[0] < PROBE_TTL_S:
        return hit[1]
    problem = probe()
    _probes[(kind, key)] = (now, problem)
    return problem


def docker_problem(image: str) -> str | None:
    """None when the docker backend can run here, else why not."""
    from sandbox.docker_backend import docker_problem as probe

    return _cached("docker", image, lambda: probe(image))


def bwrap_problem(python: str | None = None) -> str | None:
    """None when the bwrap backend can run here, else why not."""
    from sandbox.bwrap_backend import bwrap_problem as probe

    return _cached("bwrap", python or "", lambda: probe(python))


def wasm_problem(runtime_dir: Path | None = None) -> str | None:
    """None when the wasm backend can run here, else why not (and which command installs what is missing)."""
    from sandbox.wasm_backend import wasm_problem as probe

    return _cached("wasm", str(runtime_dir or ""), lambda: probe(runtime_dir))


def _settings():
    from config.settings import get_settings

    return get_settings()


def create_executor(
    backend: Backend = "auto",
    *,
    files: list[Path] | None = None,
    limits: Limits | None = None,
    allow_subprocess: bool = False,
    image: str | None = None,
    python: str | None = None,
    wasm_dir: Path | None = None,
) -> SandboxExecutor:
    """A sandbox for one question. `image`: the docker image (default: settings' SANDBOX_IMAGE);
    `python`: the interpreter bwrap and subprocess run (default: this one); `wasm_dir`: the wasm runtime
    (default: settings' SANDBOX_WASM_DIR)."""
    if backend not in BACKENDS:
        raise SandboxUnavailable(f"unknown sandbox backend {backend!r} (choose one of {', '.join(BACKENDS)})")
    if image is None or python is None:
        settings = _settings()
        image = image or settings.sandbox_image
        python = python or settings.sandbox_python
    skipped: list[str] = []
    if backend in ("auto", "docker"):
        problem = docker_problem(image)
        if problem is None:
            from sandbox.docker_backend import DockerSandbox

            logger.info("sandbox: docker (image {})", image)
            return DockerSandbox(files=files, limits=limits, image=image)
        if backend == "docker":
            raise SandboxUnavailable(f"sandbox backend 'docker' is not available: {problem}")
        skipped.append(f"docker: {problem}")
    if backend in ("auto", "bwrap"):
        problem = bwrap_problem(python)
        if problem is None:
            from sandbox.bwrap_backend import BwrapSandbox

            logger.info("sandbox: bwrap{}", f" ({'; '.join(skipped)})" if skipped else "")
            return BwrapSandbox(files=files, limits=limits, python=python)
        if backend == "bwrap":
            raise SandboxUnavailable(f"sandbox backend 'bwrap' is not available: {problem}")
        skipped.append(f"bwrap: {problem}")
    if backend in ("auto", "wasm"):
        problem = wasm_problem(wasm_dir)
        if problem is None:
            from sandbox.wasm_backend import WasmSandbox

            logger.info("sandbox: wasm{}", f" ({'; '.join(skipped)})" if skipped else "")
            return WasmSandbox(files=files, limits=limits, runtime_dir=wasm_dir)
        if backend == "wasm":
            raise SandboxUnavailable(f"sandbox backend 'wasm' is not available: {problem}")
        skipped.append(f"wasm: {problem}")
    if not allow_subprocess and backend == "subprocess":
        raise SandboxUnavailable(
            "the subprocess backend is not isolated and is refused unless allowed "
            "(set `sandbox.allow_subprocess: true` in the team YAML or SANDBOX_ALLOW_SUBPROCESS=1)"
        )
    if not allow_subprocess:
        why = f" ({'; '.join(skipped)})" if skipped else ""
        raise SandboxUnavailable(
            f"no isolated sandbox backend is available{why} and the subprocess backend is not allowed "
            "(set `sandbox.allow_subprocess: true` in the team YAML or SANDBOX_ALLOW_SUBPROCESS=1)"
        )
    logger.warning(
        "sandbox: using the subprocess backend, which is NOT ISOLATED: model-written code runs on this host "
        "as this user, with its files and network{}", f" ({'; '.join(skipped)})" if skipped else ""
    )
    return SubprocessSandbox(files=files, limits=limits, python=python)


__all__ = [
    "BACKENDS",
    "Backend",
    "Limits",
    "SandboxError",
    "SandboxExecutor",
    "SandboxResult",
    "SandboxUnavailable",
    "bwrap_problem",
    "create_executor",
    "docker_problem",
    "wasm_problem",
]
