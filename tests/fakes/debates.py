"""Small teams, runs and misbehaving models for in-process debate tests and benches (driven by `ScriptedModels`)."""

from __future__ import annotations

from typing import Any

from config.settings import Settings
from teams import Run
from teams import events as ev
from teams.loader import parse_team
from teams.result import Result
from teams.schema import TeamConfig
from tests.fakes.function_model import Call, Reply, ScriptedModels, tool

QUESTION = "The almanac lists Alderbrook with 1,200 inhabitants and Birchwell with 3,400. How many live in both towns together?"


def trio(guards: dict[str, Any] | None = None, **termination: object) -> TeamConfig:
    """Planner, researcher (with the calculator) and critic, on rules; `termination` and `guards` as in the YAML."""
    return parse_team({
        "name": "trio",
        "agents": [
            {"name": "planner", "role": "planner"},
            {"name": "researcher", "role": "researcher", "tools": ["calculator"]},
            {"name": "critic", "role": "critic"},
        ],
        "selection": {"mode": "rules", "first": "planner", "reviewer": "critic",
                      "default_next": {"planner": "researcher", "researcher": "planner", "critic": "planner"}},
        "termination": {"approver": "critic", **termination},
        **({"guards": guards} if guards is not None else {}),
    })


async def run(team: TeamConfig, models: ScriptedModels, question: str = QUESTION) -> tuple[list[ev.Event], Result]:
    """Run `team` on `models` in-process: its events and its result."""
    r = Run(question, team, settings=Settings(_env_file=None), client_factory=models.factory)  # type: ignore[call-arg]
    events = [e async for e in r.events()]
    assert r.result is not None
    return events, r.result


def turns(events: list[ev.Event]) -> list[str]:
    return [e.agent for e in events if isinstance(e, ev.TurnStarted)]


def forever(reply: Any) -> list[Any]:
    return [reply] * 200  # more than any run can use


def critic_agrees_in_prose() -> ScriptedModels:
    """The planner proposes; the critic agrees in prose and restates the answer, but never writes APPROVED."""
    return ScriptedModels({
        "planner": forever("Both figures are in the question: 1,200 + 3,400.\nFINAL ANSWER: 4600"),
        "critic": forever("That looks right to me, the two figures add up.\nFINAL ANSWER: 4600"),
    })


def researcher_repeats_one_call() -> ScriptedModels:
    """The researcher makes one identical tool call over and over and never proposes an answer."""
    def researcher(call: Call) -> Reply:
        if call.tools:  # AutoGen's tool rounds
            return tool("calculator", expression="1200 + 3400")
        return "Still checking the sum.\nNEXT: planner"  # the reflection, offered no tools

    return ScriptedModels({
        "planner": forever("Researcher, check the sum with the calculator.\nNEXT: researcher"),
        "researcher": forever(researcher),
    })
