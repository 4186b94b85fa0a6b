"""`python -m sandbox run SCRIPT.py` runs a program the way the coder's code runs; `status` lists backends.

    python -m sandbox run [--backend auto|NAME] [--timeout S] [--memory MB]
                          [--file PATH ...] [--allow-subprocess] SCRIPT.py|-
    python -m sandbox status
    python -m sandbox install-wasm [--packages NAME ...] [--pyodide-index URL] [--dir DIR]

NAME is a registered backend (sandbox/__init__.py; `status` and `run --help` list them).
`run` prints the program's output on stdout, one line on stderr saying which backend ran it, and exits
with the program's exit code (124 when it was killed at the time limit, 130 when stopped with Ctrl-C).
"""

from __future__ import annotations

import argparse
import asyncio
import signal
import sys
from pathlib import Path

from autogen_core import CancellationToken

import sandbox
from config.log import setup_logging
from config.settings import get_settings
from sandbox import BACKENDS, Limits, SandboxUnavailable, backend_problem, create_executor
from sandbox.base import SandboxError

EXIT_SANDBOX_ERROR = 125  # like `docker run`: the sandbox itself failed, not the program


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    settings = get_settings()
    p = argparse.ArgumentParser(prog="python -m sandbox", description="Run Python in the coder's sandbox.")
    sub = p.add_subparsers(dest="command", required=True)
    backends = "; ".join(f"{info.name}: {info.protects}" for info in sandbox.REGISTRY.values())
    run = sub.add_parser("run", help="run a script and print its output", epilog=f"backends: {backends}")
    run.add_argument("script", help="the Python file to run; '-' reads it from standard input")
    run.add_argument("--backend", choices=BACKENDS, default=settings.sandbox_backend or "auto",
                     help="where to run it (default: SANDBOX_BACKEND or auto)")
    run.add_argument("--timeout", type=float, default=60.0, metavar="S", help="wall-clock limit (default: %(default)s)")
    run.add_argument("--memory", type=int, default=1024, metavar="MB", help="memory limit (default: %(default)s)")
    run.add_argument("--file", action="append", default=[], type=Path, metavar="PATH",
                     help="attach a file: it is in the working directory, read-only (repeatable)")
    run.add_argument("--allow-subprocess", action="store_true", default=bool(settings.sandbox_allow_subprocess),
                     help="allow the NOT isolated subprocess backend (also SANDBOX_ALLOW_SUBPROCESS=1)")
    run.add_argument("--verbose", action="store_true", help="log the sandbox's own steps to stderr")
    sub.add_parser("status", help="say which backends work on this machine")
    from sandbox.wasm_runtime import DEFAULT_PACKAGES, PYODIDE_VERSION

    wasm = sub.add_parser("install-wasm", help=f"install the wasm backend's runtime (Pyodide {PYODIDE_VERSION}) and packages")
    wasm.add_argument("--packages", nargs="*", default=list(DEFAULT_PACKAGES), metavar="NAME",
                      help="packages for wasm programs: pure-Python ones come from PyPI, numpy/pandas and other "
                           "compiled ones from --pyodide-index (default: %(default)s)")
    wasm.add_argument("--pyodide-index", metavar="URL",
                      help=f"Pyodide's package index, e.g. https://cdn.jsdelivr.net/pyodide/v{PYODIDE_VERSION}/full/")
    wasm.add_argument("--dir", type=Path, metavar="DIR", help="where to install (default: SANDBOX_WASM_DIR or "
                      "ROUNDTABLE_CACHE_DIR/wasm)")
    wasm.add_argument("--pip-arg", action="append", default=[], metavar="ARG",
                      help="passed to `pip download` (e.g. --pip-arg=--index-url=URL); repeatable")
    return p.parse_args(argv)


async def run(args: argparse.Namespace, code: str) -> int:
    executor = create_executor(
        args.backend,
        files=list(args.file),
        limits=Limits(timeout_s=args.timeout, memory_mb=args.memory),
        allow_subprocess=args.allow_subprocess,
    )
    token = CancellationToken()
    loop = asyncio.get_running_loop()
    loop.add_signal_handler(signal.SIGINT, token.cancel)
    try:
        async with executor:
            result = await executor.run_python(code, token)
    finally:
        loop.remove_signal_handler(signal.SIGINT)
    sys.stdout.write(result.output)
    if result.output and not result.output.endswith("\n"):
        sys.stdout.write("\n")
    sys.stdout.flush()
    print(f"sandbox: ran with {executor.describe()} in {result.duration_s:.2f}s, exit code {result.exit_code}",
          file=sys.stderr)
    return result.exit_code if 0 <= result.exit_code <= 255 else 1


def status() -> int:
    settings = get_settings()
    isolated = [info.name for info in sandbox.REGISTRY.values() if info.isolated]
    problems = {name: backend_problem(name, image=settings.sandbox_image, python=settings.sandbox_python)
                for name in isolated}
    for name, problem in problems.items():
        print(f"{name:10} {'ok' if problem is None else 'unavailable: ' + problem}")
    allowed = "allowed" if settings.sandbox_allow_subprocess else "refused unless SANDBOX_ALLOW_SUBPROCESS=1"
    unisolated = [info.name for info in sandbox.REGISTRY.values() if not info.isolated]
    for name in unisolated:
        print(f"{name:10} NOT isolated; {allowed}")
    picked = next((name for name, problem in problems.items() if problem is None), None)
    if picked is None:
        picked = (f"{unisolated[0]} (NOT isolated)" if settings.sandbox_allow_subprocess and unisolated
                  else "none: runs go on without run_python")
    print(f"{'auto':10} {picked}")
    return 0 if any(p is None for p in problems.values()) else 1


def install_wasm(args: argparse.Namespace) -> int:
    from sandbox.wasm_runtime import WasmInstallError, default_dir, install

    root = args.dir or default_dir()
    try:
        manifest = install(root, list(args.packages), pyodide_index=args.pyodide_index, pip_args=list(args.pip_arg))
    except WasmInstallError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    packages = [*manifest["lock_packages"], *manifest["wheels"]]
    print(f"wasm runtime: Pyodide {manifest['pyodide']} in {root}; packages: {', '.join(packages) or 'none'}")
    return 0


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    settings = get_settings()
    level = "INFO" if getattr(args, "verbose", False) else "WARNING"  # warnings: the subprocess one
    setup_logging(settings.model_copy(update={"log_level": level}))
    if args.command == "status":
        return status()
    if args.command == "install-wasm":
        return install_wasm(args)
    missing = [str(f) for f in args.file if not f.is_file()]
    if missing or (args.script != "-" and not Path(args.script).is_file()):
        print(f"error: file not found: {', '.join(missing or [args.script])}", file=sys.stderr)
        return 2
    try:
        code = sys.stdin.read() if args.script == "-" else Path(args.script).read_text(encoding="utf-8")
        return asyncio.run(run(args, code))
    except (SandboxUnavailable, SandboxError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_SANDBOX_ERROR


if __name__ == "__main__":
    sys.exit(main())
