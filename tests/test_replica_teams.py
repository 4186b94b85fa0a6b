"""Every shipped team, against every provider's strict replica, runs a debate with tool calls cleanly.

A replica refuses what the real API refuses (tests/fakes/replicas/): a parameter a model family does not accept, a
broken tool-call pairing, a bad `name`, a missing `max_tokens`... The team runs through the real provider path
(settings -> registry -> SDK -> HTTP), with the models the team YAML and the provider's tiers choose, so a request the
real API would reject fails here with the replica's own error message.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

from config.settings import Settings
from teams import events as ev
from teams import load_team, solve
from teams.strategies.attempts import plan_attempts
from tests.fakes.replicas import (
    AnthropicReplica,
    GeminiReplica,
    HFRouterReplica,
    OpenAIReplica,
    ReplicaRequest,
)

TEAMS_DIR = Path(__file__).resolve().parent.parent / "teams"
SHIPPED_TEAMS = sorted(p.stem for p in TEAMS_DIR.glob("*.yaml"))
QUESTION = "What is six times seven? Check it with the calculator."
KEY = "sk-test-not-a-real-key-0000"


def offered_tools(req: ReplicaRequest) -> set[str]:
    names = set()
    for tool in req.body.get("tools") or []:
        names.add(tool.get("name") or (tool.get("function") or {}).get("name"))
    return names


class TeamScript:
    """Plays each role by the protocol: the planner hands off, whoever holds the calculator uses it once and
    proposes, the critic approves. Replies depend only on the role and on how often it was asked."""

    def __init__(self) -> None:
        self.calls: Counter[str] = Counter()
        self.tool_calls: Counter[str] = Counter()

    def __call__(self, req: ReplicaRequest) -> Any:
        agent = req.agent
        self.calls[agent] += 1
        if "calculator" in offered_tools(req) and not self.tool_calls[agent]:
            self.tool_calls[agent] += 1
            return {"content": "Checking with the calculator.", "tool_calls": [{"name": "calculator", "arguments": {"expression": "6 * 7"}}]}
        if agent == "planner":
            return "1. The researcher computes it.\nNEXT: researcher" if self.calls[agent] == 1 else "FINAL ANSWER: 42"
        if agent == "critic":
            return "APPROVED\nFINAL ANSWER: 42"
        return "The calculator gives 42.\nFINAL ANSWER: 42"

    def script(self, team_agents: list[str]) -> dict[str, Any]:
        return {name: self for name in [*team_agents, "default"]}


@contextmanager
def provider_replica(provider: str, script: dict[str, Any]) -> Iterator[tuple[Any, dict[str, Any]]]:
    """The provider's replica and the environment that points the app at it (no other provider configured)."""
    if provider == "openai":
        with OpenAIReplica(script, api_key=KEY) as api:
            yield api, {"OPENAI_API_KEY": KEY, "OPENAI_BASE_URL": api.url}
    elif provider == "anthropic":
        with AnthropicReplica(script, api_key=KEY) as api:
            yield api, {"ANTHROPIC_API_KEY": KEY, "ANTHROPIC_BASE_URL": api.url}
    elif provider == "gemini":
        with GeminiReplica(script, api_key=KEY) as api:
            yield api, {"GEMINI_API_KEY": KEY, "GEMINI_BASE_URL": api.url}
    elif provider == "hf":
        with HFRouterReplica(script, token="hf_test_not_a_real_token") as api:
            yield api, {"HF_TOKEN": "hf_test_not_a_real_token", "HF_ROUTER_URL": api.url}
    elif provider == "openai-compatible":
        # An OpenAI-compatible server (Ollama, vLLM) speaks OpenAI's wire format; the replica serves the team's own
        # model name with the rules of a plain chat model.
        with OpenAIReplica(script) as api:
            api.add_model("qwen2.5:7b", like="gpt-4.1-mini")
            yield api, {"OPENAI_BASE_URL": api.url}
    else:  # pragma: no cover
        raise AssertionError(provider)


# The ollama team names a local server's model on purpose: it runs against an OpenAI-compatible server only.
CASES = [(team, p) for team in SHIPPED_TEAMS if team != "ollama" for p in ("openai", "anthropic", "gemini", "hf")]
CASES += [("ollama", "openai-compatible")]


@pytest.mark.parametrize(("team_name", "provider"), CASES, ids=[f"{t}-{p}" for t, p in CASES])
async def test_a_shipped_team_runs_cleanly_against_the_providers_replica(
    team_name: str, provider: str, tmp_path: Path
) -> None:
    team = load_team(team_name)
    player = TeamScript()
    # a vote or an escalation runs its attempts' teams (and may ask the adjudicator)
    agents = {a.name for p in plan_attempts(team, Settings(_env_file=None)) for a in p.cfg.agents}  # type: ignore[call-arg]
    agents |= {a.name for a in team.agents} | {"adjudicator"}
    with provider_replica(provider, player.script(sorted(agents))) as (api, env):
        settings = Settings(
            _env_file=None,  # type: ignore[call-arg]
            LLM_PROVIDER=provider,
            LLM_MAX_RETRIES=0,
            SANDBOX_ALLOW_SUBPROCESS=True,
            ROUNDTABLE_CACHE_DIR=str(tmp_path),
            **env,
        )
        events: list[ev.Event] = []
        result = await solve(QUESTION, team, settings=settings, on_event=events.append)
        events = [e.event if isinstance(e, ev.InAttempt) else e for e in events]

        api.assert_clean()
        assert result.error is None, result.error
        assert result.answer == "42", (result.stop_reason, result.stop_detail)
        assert result.stop_reason in ("approved", "max_turns", "majority")  # majority: a vote's attempts agreed
        calculator = [e for e in events if isinstance(e, ev.ToolResult) and e.name == "calculator"]
        assert calculator and calculator[0].output == "42" and not calculator[0].is_error
        # every model call was counted, by the replica and by the run
        assert sum(u.calls for u in result.usage.values()) == len(api.accepted) > 0
        assert {r.model for r in api.requests} <= set(api.models), "every model the team chose is one the API serves"
