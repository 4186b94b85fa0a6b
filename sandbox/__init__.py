"""Where the coder's Python runs. `create_executor` picks a backend; see README "Sandbox".

The backends are the modules registered in `_MODULES`, each declaring itself with a `BACKEND`
(sandbox/registry.py: its executor class and name, what it protects, how it knows it can run here).
Every list of backend names (the CLI, SANDBOX_BACKEND, the team YAML's `sandbox.backend`, the benchmark)
derives from this registry. `auto` takes the first isolated backend that works here, in `_MODULES` order:
docker (an engine answers and the image exists) > bwrap (bubblewrap can create its namespaces) > wasm
(Pyodide under Deno: deno and the runtime are installed); a backend that is not isolated (subprocess) is
used only when the config allows it.
Each probe's answer is cached for a short while so a batch of questions does not re-probe per question.
"""

from __future__ import annotations

import importlib
import time
from collections.abc import Callable
from pathlib import Path

from loguru import logger

from sandbox.base import Limits, SandboxError, SandboxExecutor, SandboxResult
from sandbox.registry import AUTO, BackendInfo, Host

# Registering a backend = adding its module here; the order is `auto`'s preference among isolated ones.
_MODULES = ("sandbox.docker_backend", "sandbox.bwrap_backend", "sandbox.wasm_backend", "sandbox.subprocess_backend")

REGISTRY: dict[str, BackendInfo] = {}
for _module in _MODULES:
    _info: BackendInfo = importlib.import_module(_module).BACKEND
    REGISTRY[_info.name] = _info

Backend = str  # "auto" or a name in REGISTRY; `check_backend` validates one
BACKENDS: tuple[str, ...] = (AUTO, *REGISTRY)  # what the CLI offers
PROBE_TTL_S = 30.0
ALLOW_HINT = "(set `sandbox.allow_subprocess: true` in the team YAML or SANDBOX_ALLOW_SUBPROCESS=1)"


class SandboxUnavailable(RuntimeError):
    pass


def backend_names() -> tuple[str, ...]:
    """Every registered backend, in `auto`'s order (without "auto")."""
    return tuple(REGISTRY)


def check_backend(name: str) -> str:
    """`name` if it is "auto" or a registered backend, else a ValueError listing the valid names
    (what the settings and the team schema validate SANDBOX_BACKEND and `sandbox.backend` with)."""
    valid = (AUTO, *REGISTRY)
    if name in valid:
        return name
    from pydantic_core import PydanticCustomError  # a ValueError whose message pydantic shows as it is

    raise PydanticCustomError("unknown_sandbox_backend", "unknown sandbox backend {name} (choose one of {valid})",
                              {"name": repr(name), "valid": ", ".join(valid)})


_probes: dict[tuple[object, Host], tuple[float, str | None]] = {}


def _cached(probe: Callable[[Host], str | None], host: Host) -> str | None:
    now = time.monotonic()
    hit = _probes.get((probe, host))
    if hit is not None and now - hit[0] < PROBE_TTL_S:
        return hit[1]
    problem = probe(host)
    _probes[(probe, host)] = (now, problem)
    return problem


def _settings():
    from config.settings import get_settings

    return get_settings()


def _host(image: str | None, python: str | None, wasm_dir: Path | None) -> Host:
    if image is None or python is None:
        settings = _settings()
        image = image or settings.sandbox_image
        python = python or settings.sandbox_python
    assert image is not None
    return Host(image=image, python=python, wasm_dir=wasm_dir)


def backend_problem(name: str, *, image: str | None = None, python: str | None = None,
                    wasm_dir: Path | None = None) -> str | None:
    """None when backend `name` can run here, else why not (defaults as in `create_executor`)."""
    if name not in REGISTRY:
        raise SandboxUnavailable(f"unknown sandbox backend {name!r} (choose one of {', '.join(REGISTRY)})")
    return _cached(REGISTRY[name].problem, _host(image, python, wasm_dir))


def create_executor(
    backend: Backend = AUTO,
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
    (default: settings' SANDBOX_WASM_DIR). `allow_subprocess`: a backend that is not isolated may be used."""
    try:
        check_backend(backend)
    except ValueError as exc:
        raise SandboxUnavailable(str(exc)) from None
    host = _host(image, python, wasm_dir)
    chosen = REGISTRY.get(backend)
    skipped: list[str] = []
    candidates = [i for i in REGISTRY.values() if i.isolated] if chosen is None else [chosen] if chosen.isolated else []
    for info in candidates:
        problem = _cached(info.problem, host)
        if problem is None:
            why = f" ({'; '.join(skipped)})" if skipped else ""
            logger.info("sandbox: {}{}{}", info.name, info.detail(host), why)
            return info.create(host, files, limits)
        if chosen is not None:
            raise SandboxUnavailable(f"sandbox backend {info.name!r} is not available: {problem}")
        skipped.append(f"{info.name}: {problem}")
    why = f" ({'; '.join(skipped)})" if skipped else ""
    if not allow_subprocess and chosen is not None:
        raise SandboxUnavailable(f"the {chosen.name} backend is not isolated and is refused unless allowed {ALLOW_HINT}")
    if not allow_subprocess:
        raise SandboxUnavailable(
            f"no isolated sandbox backend is available{why} and the subprocess backend is not allowed {ALLOW_HINT}"
        )
    fallback = chosen or next((i for i in REGISTRY.values() if not i.isolated), None)
    if fallback is None:
        raise SandboxUnavailable(f"no sandbox backend is available{why}")
    problem = _cached(fallback.problem, host)
    if problem is not None:
        raise SandboxUnavailable(f"sandbox backend {fallback.name!r} is not available: {problem}")
    logger.warning(
        "sandbox: using the {} backend, which is NOT ISOLATED: model-written code runs on this host "
        "as this user, with its files and network{}", fallback.name, why
    )
    return fallback.create(host, files, limits)


__all__ = [
    "BACKENDS",
    "REGISTRY",
    "Backend",
    "BackendInfo",
    "Host",
    "Limits",
    "SandboxError",
    "SandboxExecutor",
    "SandboxResult",
    "SandboxUnavailable",
    "backend_names",
    "backend_problem",
    "check_backend",
    "create_executor",
]
