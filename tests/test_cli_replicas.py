"""`python -m teams` against the strict provider replicas: a current model name of each provider, and names of a
future model of a known family, produce requests the real API would accept (the replicas refuse what it refuses).

Each run is the real CLI in a subprocess: settings from the environment -> registry -> family rules -> SDK -> HTTP.
The solo team's agent is offered every tool; it calls the calculator once, then answers.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

from tests.fakes.replicas import AnthropicReplica, GeminiReplica, OpenAIReplica, ReplicaRequest

ROOT = Path(__file__).resolve().parent.parent
KEY = "sk-test-not-a-real-key-0000"
QUESTION = "What is six times seven?"


def solo_script(req: ReplicaRequest) -> Any:
    """A tool call while no tool result is in the conversation, then the answer."""
    answered = any(m.get("role") == "tool" for m in req.messages) or any(
        isinstance(m.get("content"), list) and any(b.get("type") == "tool_result" for b in m["content"])
        for m in req.messages
    )
    if not answered and req.tool_names:
        return {"content": "Let me compute it.", "tool_calls": [{"name": "calculator", "arguments": {"expression": "6*7"}}]}
    return "The calculator says 42.\nFINAL ANSWER: 42"


SCRIPT = {"default": solo_script, "solo": solo_script}


@contextmanager
def replica_for(provider: str, model: str, like: str | None) -> Iterator[tuple[Any, dict[str, str]]]:
    if provider == "openai":
        with OpenAIReplica(SCRIPT, api_key=KEY) as api:
            if like:
                api.add_model(model, like=like)
            yield api, {"OPENAI_API_KEY": KEY, "OPENAI_BASE_URL": api.url}
    elif provider == "anthropic":
        with AnthropicReplica(SCRIPT, api_key=KEY) as api:
            if like:
                api.add_model(model, like=like)
            yield api, {"ANTHROPIC_API_KEY": KEY, "ANTHROPIC_BASE_URL": api.url}
    else:
        with GeminiReplica(SCRIPT, api_key=KEY) as api:
            if like:
                api.add_model(model, like=like)
            yield api, {"GEMINI_API_KEY": KEY, "GEMINI_BASE_URL": api.url}


def run_cli(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    base = {k: v for k, v in os.environ.items() if k in ("PATH", "HOME", "LANG", "TMPDIR")}
    base.update(ROUNDTABLE_ENV_FILE="", SANDBOX_ALLOW_SUBPROCESS="1", COLUMNS="100", **env)
    return subprocess.run(
        [sys.executable, "-m", "teams", QUESTION, "--team", "solo", "--quiet", *args],
        cwd=ROOT, env=base, capture_output=True, text=True, timeout=180,
    )  # fmt: skip


CASES = [
    # provider, model name, served by the replica like (None: the replica knows the name)
    ("openai", "gpt-5.6-luna", None),  # GPT-5.6: tools need an explicit reasoning_effort "none"
    ("openai", "gpt-6-luna", None),
    ("openai", "gpt-5.9-mini", "gpt-5.6-luna"),  # a future GPT-5.x name
    ("anthropic", "claude-opus-4-7", None),  # no temperature at all
    ("anthropic", "claude-sonnet-5-5", None),
    ("anthropic", "claude-opus-5-2", "claude-opus-5-5"),  # a future Claude 5.x name
    ("gemini", "gemini-3.5-flash", None),
    ("gemini", "gemini-3.1-pro-preview", None),
]


@pytest.mark.parametrize(("provider", "model", "like"), CASES, ids=[c[1] for c in CASES])
def test_the_cli_sends_requests_the_replica_accepts(provider: str, model: str, like: str | None) -> None:
    with replica_for(provider, model, like) as (api, env):
        proc = run_cli({**env, "LLM_MODEL": model})
        api.assert_clean()
        assert proc.returncode == 0, proc.stderr[-3000:]
        assert proc.stdout.strip().splitlines()[-1] == "42"
        bodies = [r.body for r in api.accepted]
        assert len(bodies) >= 2 and {b["model"] for b in bodies} == {model}
        with_tools = [b for b in bodies if b.get("tools")]
        assert with_tools, "the agent was offered its tools"
        if provider == "openai":
            assert all("max_tokens" not in b and "temperature" not in b for b in bodies)
            assert all(b["reasoning_effort"] == "none" for b in with_tools)
        elif provider == "anthropic":
            assert all("temperature" not in b for b in bodies)
            assert all(b["max_tokens"] >= 16_000 for b in bodies)  # room for adaptive thinking, not AutoGen's 4096
        else:
            assert all("verbosity" not in b for b in bodies)
        assert KEY not in proc.stdout + proc.stderr


def test_the_default_tier_models_of_each_provider_are_accepted() -> None:
    """No LLM_MODEL: the registry's own defaults (the solo team takes the strong tier) pass the replicas."""
    for provider in ("openai", "anthropic", "gemini"):
        with replica_for(provider, "", None) as (api, env):
            proc = run_cli(env)
            api.assert_clean()
            assert proc.returncode == 0, proc.stderr[-3000:]
            assert proc.stdout.strip().splitlines()[-1] == "42"
