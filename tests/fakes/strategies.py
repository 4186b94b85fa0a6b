"""Strategy teams for in-process tests: each attempt on its own scripted models (`PerAttempt`)."""

from __future__ import annotations

from typing import Any

from autogen_core import CancellationToken
from autogen_core.models import ChatCompletionClient

from config.settings import Settings
from models.spec import ModelSpec
from models.usage import UsageLedger
from teams import events as ev
from teams.loader import parse_team
from teams.result import Result
from teams.schema import TeamConfig
from teams.strategies import start_run
from tests.fakes.function_model import ScriptedModels

SOLO: dict[str, Any] = {
    "name": "solo",
    "agents": [{"name": "solo", "role": "solo", "tools": ["calculator"]}],
    "selection": {"mode": "round_robin"},
    "termination": {"approver": "solo", "approval_marker": None, "max_turns": 2},
}


def attempt_model(number: int) -> str:
    return f"attempt-{number}"


class PerAttempt:
    """Routes every model call of attempt N (its profiles are named `attempt-N` by `strategy`) to `attempts[N]`,
    and the adjudicator's to `adjudicator`."""

    def __init__(self, attempts: dict[int, ScriptedModels], adjudicator: ScriptedModels | None = None) -> None:
        self.attempts = attempts
        self.adjudicator = adjudicator or ScriptedModels({})

    def factory(self, spec: ModelSpec, agent: str, ledger: UsageLedger, abort: CancellationToken) -> ChatCompletionClient:
        if agent == "adjudicator":
            return self.adjudicator.factory(spec, agent, ledger, abort)
        number = int(str(spec.model).rsplit("-", 1)[1])
        return self.attempts[number].factory(spec, agent, ledger, abort)

    def assert_complete(self) -> None:
        for models in [*self.attempts.values(), self.adjudicator]:
            models.assert_complete()


def strategy(kind: str, attempts: list[dict[str, Any]], **options: Any) -> TeamConfig:
    """A `kind` strategy over `attempts` (each a dict of AttemptSpec keys; `team` defaults to SOLO), every
    attempt's models renamed `attempt-N` so `PerAttempt` can route them."""
    numbered, n = [], 0
    for a in attempts:
        spec = {"team": SOLO, **a}
        team = spec["team"]
        n += 1
        spec["models"] = {name: {"model": attempt_model(n)} for name in team.get("models", {"default": {}})}
        numbered.append(spec)
    escalate_to = options.pop("escalate_to", None)
    if escalate_to is not None:
        team = escalate_to.get("team", SOLO)
        escalate_to = {"team": team, **escalate_to,
                       "models": {name: {"model": attempt_model(n + 1)} for name in team.get("models", {"default": {}})}}
    data: dict[str, Any] = {"name": f"{kind}-test", "models": {"default": {}, "strong": {"tier": "strong"}},
                            "strategy": {"kind": kind, "attempts": numbered, **options}}
    if escalate_to is not None:
        data["strategy"]["escalate_to"] = escalate_to
    return parse_team(data)


async def run_strategy(cfg: TeamConfig, models: PerAttempt, question: str = "How many?",
                       **kwargs: Any) -> tuple[list[ev.Event], Result]:
    run = start_run(question, cfg, settings=Settings(_env_file=None), client_factory=models.factory, **kwargs)  # type: ignore[call-arg]
    events = [e async for e in run.events()]
    assert run.result is not None
    return events, run.result
