"""Helpers for the tool tests: a ToolContext on a temporary question folder, and a way to call a tool the
way AutoGen does (through the registry and SafeTool.run_json, so error handling and bounds are real)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from autogen_core import CancellationToken

from agents.tools.errors import ToolFailed
from agents.tools.registry import ToolContext, build_tools
from config.settings import Settings

FAST = {"WEB_TIMEOUT": 5.0, "WEB_MAX_BYTES": 20_000, "LLM_REQUEST_TIMEOUT": 5.0}


def tool_settings(**overrides: Any) -> Settings:
    """Settings with short timeouts and a small size cap, so timeout and oversize cases run fast."""
    return Settings(_env_file=None, **{**FAST, **overrides})  # type: ignore[call-arg]


TOOL_VARS = (
    "WEB_TIMEOUT", "WEB_MAX_BYTES", "WEB_SEARCH_PROVIDER", "WEB_SEARCH_RESULTS", "SERPER_URL", "TAVILY_URL",
    "BRAVE_URL", "DDGS_BACKEND", "WIKIPEDIA_API_URL", "WAYBACK_API_URL", "YOUTUBE_BASE_URL", "TRANSCRIBE_MODEL",
    "WHISPER_MODEL", "LLM_REQUEST_TIMEOUT", "ROUNDTABLE_CACHE_DIR",
)


@pytest.fixture(autouse=True)
def _tool_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for var in TOOL_VARS:  # a developer's shell must not change what these tests see
        monkeypatch.delenv(var, raising=False)
    # ddgs talks through a Rust HTTP client that the socket guard in tests/conftest.py cannot see: unless a
    # test points it at a fake, send it to a closed local port rather than to the real engines.
    monkeypatch.setenv("DDGS_URL", "http://127.0.0.1:9/html/")


@pytest.fixture
def workdir(tmp_path: Path) -> Path:
    folder = tmp_path / "question"
    folder.mkdir()
    return folder


@pytest.fixture
def make_ctx(workdir: Path) -> Callable[..., ToolContext]:
    def make(settings: Settings | None = None, **kwargs: Any) -> ToolContext:
        kwargs.setdefault("allow_loopback", True)
        return ToolContext(settings=settings or tool_settings(), workdir=workdir, **kwargs)

    return make


async def call(ctx: ToolContext, name: str, **args: Any) -> str:
    """What the model reads from one call: the tool's text, or its one `Error: ...` line."""
    tool = build_tools([name], ctx)[0]
    try:
        return str(await tool.run_json(args, CancellationToken()))
    except ToolFailed as failed:
        return failed.text


@pytest.fixture
def started() -> Iterator[Callable[[Any], Any]]:
    """Start fake servers for the test; each is stopped afterwards."""
    servers: list[Any] = []

    def start(server: Any) -> Any:
        servers.append(server.start())
        return server

    yield start
    for server in servers:
        server.stop()
