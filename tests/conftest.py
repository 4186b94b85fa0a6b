"""Shared fixtures. No test may reach the internet: sockets to anything but loopback are refused."""

from __future__ import annotations

import ipaddress
import os
import socket
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from config.settings import Settings, get_settings
from models.providers import get_provider
from tests.fakes.scripted_llm import ScriptedLLM

# The OpenAI models a team's `default` and `strong` tiers resolve to (tests assert them, not a copy of the names).
OPENAI_DEFAULT = get_provider("openai").tiers["default"]
OPENAI_STRONG = get_provider("openai").tiers["strong"]


def _settings_env_names() -> set[str]:
    """Every variable Settings reads, so no developer or CI value leaks into a test."""
    names: set[str] = set()
    for field in Settings.model_fields.values():
        alias = field.validation_alias
        for choice in getattr(alias, "choices", [alias]):
            if isinstance(choice, str):
                names.add(choice)
    return names


_SECRET_VARS = (
    "OPENAI_API_KEY",
    "ANTHROPIC_API_KEY",
    "HF_TOKEN",
    "HUGGING_FACE_HUB_TOKEN",
    "HF_ENDPOINT",
    "SCORING_API_URL",
    "OPENAI_BASE_URL",
    "ANTHROPIC_BASE_URL",
    "LLM_PROVIDER",
    "LLM_MODEL",
    "ROUNDTABLE_TEAM",
    "ROUNDTABLE_MAX_TURNS",
    "ROUNDTABLE_QUESTION_TIMEOUT",
    "SANDBOX_BACKEND",
    "SANDBOX_ALLOW_SUBPROCESS",
    "SERPER_API_KEY",
    "TAVILY_API_KEY",
    "BRAVE_API_KEY",
)


def require_system() -> bool:
    """CI sets ROUNDTABLE_REQUIRE_SYSTEM=1: then a missing Docker/browser fails a test instead of skipping it."""
    return os.environ.get("ROUNDTABLE_REQUIRE_SYSTEM") == "1"


def skip_or_fail(reason: str) -> None:
    if require_system():
        pytest.fail(f"required system prerequisite missing: {reason}")
    pytest.skip(reason)


def _is_local(address: Any) -> bool:
    if isinstance(address, (str, bytes)):  # AF_UNIX
        return True
    host = address[0]
    if host in ("localhost",):
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


@pytest.fixture(autouse=True)
def _offline_and_clean_env(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    for var in set(_SECRET_VARS) | _settings_env_names() | {"SPACE_ID", "OTEL_EXPORTER_OTLP_ENDPOINT"}:
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("ROUNDTABLE_ENV_FILE", "")  # never read a developer's .env
    # ddgs talks through a Rust HTTP client the socket guard cannot see: point it at a dead local port.
    monkeypatch.setenv("DDGS_URL", "http://127.0.0.1:9/")
    real_connect = socket.socket.connect
    real_connect_ex = socket.socket.connect_ex

    def guarded_connect(self: socket.socket, address: Any) -> Any:
        if not _is_local(address):
            raise ConnectionRefusedError(f"tests may not reach the internet (tried {address!r})")
        return real_connect(self, address)

    def guarded_connect_ex(self: socket.socket, address: Any) -> Any:
        if not _is_local(address):
            raise ConnectionRefusedError(f"tests may not reach the internet (tried {address!r})")
        return real_connect_ex(self, address)

    monkeypatch.setattr(socket.socket, "connect", guarded_connect)
    monkeypatch.setattr(socket.socket, "connect_ex", guarded_connect_ex)
    get_settings.cache_clear()
    yield
    get_settings.cache_clear()


@pytest.fixture
def llm_server() -> Iterator[Callable[..., ScriptedLLM]]:
    """Start scripted OpenAI-compatible servers; each is stopped after the test."""
    servers: list[ScriptedLLM] = []

    def start(script: dict[str, Any] | None = None, **kwargs: Any) -> ScriptedLLM:
        server = ScriptedLLM(script, **kwargs).start()
        servers.append(server)
        return server

    yield start
    for s in servers:
        s.stop()


def settings_for(server: ScriptedLLM, **overrides: Any) -> Settings:
    """Settings that drive the real `openai` provider path against a scripted server."""
    values: dict[str, Any] = {
        "OPENAI_API_KEY": "sk-test-not-a-real-key-0000",
        "OPENAI_BASE_URL": server.url,
        "LLM_PROVIDER": "openai",
        "LLM_RETRY_BASE_DELAY": 0.01,
        "LLM_MAX_RETRIES": 3,
        "SANDBOX_ALLOW_SUBPROCESS": True,
    }
    values.update(overrides)
    return Settings(_env_file=None, **values)  # type: ignore[call-arg]


SYSTEM_COMMAND = "sudo make system"  # Debian packages (docker.io, bubblewrap, chromium), the Docker engine, the images


def pytest_terminal_summary(terminalreporter: Any) -> None:
    """End a run that skipped tests by naming the skipped suites, why, and the one command that fixes it."""
    skipped = terminalreporter.stats.get("skipped", [])
    if not skipped:
        return
    by_suite: dict[str, set[str]] = {}
    for report in skipped:
        path = str(report.location[0] if report.location else report.nodeid.split("::")[0])
        suite = path.rsplit("/", 1)[0] if path.count("/") > 1 else path
        reason = report.longrepr[2] if isinstance(report.longrepr, tuple) else str(report.longrepr)
        by_suite.setdefault(suite, set()).add(reason.removeprefix("Skipped: "))
    tr = terminalreporter
    tr.section("skipped suites")
    for suite, reasons in sorted(by_suite.items()):
        count = sum(1 for r in skipped if str(r.location[0]).startswith(suite))
        tr.write_line(f"{suite}: {count} skipped ({'; '.join(sorted(reasons))[:300]})")
    tr.write_line(f"To run them, install what they need with: {SYSTEM_COMMAND}")
