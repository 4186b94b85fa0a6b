"""Small teams, runs and misbehaving models for in-process debate tests and benches (driven by `ScriptedModels`)."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from autogen_core import CancellationToken, FunctionCall
from autogen_core.models import ChatCompletionClient, CreateResult, LLMMessage
from autogen_core.tools import Tool, ToolSchema

from config.settings import Settings
from models.client import ManagedClient
from models.spec import ModelSpec
from models.usage import UsageLedger
from teams import Run
from teams import events as ev
from teams.loader import parse_team
from teams.result import Result
from teams.schema import TeamConfig
from tests.fakes.function_model import Call, FunctionModel, Reply, ScriptedModels, ToolCalls, tool

QUESTION = "The almanac lists Alderbrook with 1,200 inhabitants and Birchwell with 3,400. How many live in both towns together?"


def trio(guards: dict[str, Any] | None = None, **termination: object) -> TeamConfig:
    """Planner, researcher (with the calculator) and critic, on rules; `termination` and `guards` as in the YAML
    (`approver=None`: a team with no approver)."""
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
    r = Run(question, team, settings=Settings(_env_file=None), client_factory=models.factory)
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


# --- the four other stalls of issue 13 --------------------------------------------------------------------

def handoff_to_unknown_agent() -> ScriptedModels:
    """Every agent hands over to a `librarian` the team does not have, every turn, and no one answers."""
    return ScriptedModels({
        agent: forever("The almanac's figures should be confirmed by the librarian.\nNEXT: librarian")
        for agent in ("planner", "researcher", "coder", "critic")
    })


_RAW = "__raw_arguments__"


def raw_call(name: str, arguments: str) -> ToolCalls:
    """A tool call whose arguments are sent exactly as `arguments` (not necessarily JSON)."""
    return ToolCalls([(name, {_RAW: arguments})])


class _RawArgumentsModel(FunctionModel):
    def _reply(self, messages: Sequence[LLMMessage], tools: Sequence[Tool | ToolSchema], stream: bool) -> CreateResult:
        result = super()._reply(messages, tools, stream)
        if not isinstance(result.content, list):
            return result
        calls = []
        for call in result.content:
            arguments = json.loads(call.arguments)
            raw = arguments.get(_RAW) if isinstance(arguments, dict) else None
            calls.append(call if raw is None else FunctionCall(id=call.id, name=call.name, arguments=raw))
        return result.model_copy(update={"content": calls})


@dataclass
class RawArgumentModels(ScriptedModels):
    """`ScriptedModels` whose `raw_call` steps send their arguments as written (malformed JSON included), and
    whose client retries `max_retries` times what a provider's would (an empty reply), without waiting."""

    max_retries: int = 0

    def factory(self, spec: ModelSpec, agent: str, ledger: UsageLedger, abort: CancellationToken) -> ChatCompletionClient:
        client = _RawArgumentsModel(self._answer, agent=agent, vision=self.vision, peek=self._peek)
        self.clients[agent] = client
        return ManagedClient(client, agent=agent, provider="function", model="function-model", ledger=ledger,
                             abort=abort, max_retries=self.max_retries, base_delay=0.0, max_delay=0.0)


def malformed_tool_arguments(arguments: str = '{"expression": "1200 + 3400"') -> ScriptedModels:
    """The researcher calls the calculator with the same malformed arguments (by default JSON cut short; `"{}"`:
    the required argument missing) in every tool round, and never proposes an answer."""
    def researcher(call: Call) -> Reply:
        if call.tools:  # AutoGen's tool rounds
            return raw_call("calculator", arguments)
        return "The calculator keeps refusing my call.\nNEXT: planner"  # the reflection, offered no tools

    return RawArgumentModels({
        "planner": forever("Researcher, check the sum with the calculator.\nNEXT: researcher"),
        "researcher": forever(researcher),
    })


THINK_DRAFT = "4500"  # the wrong draft the models write inside their reasoning blocks; 4600 is right


def think_block_drafts() -> ScriptedModels:
    """Reasoning blocks hold what the visible text does not say: the planner's `<think>` holds a draft answer
    (its visible text none), the researcher's a different one than its visible answer, the critic's
    `<thinking>` a rejection line (its visible text approves)."""
    def researcher(call: Call) -> Reply:
        if call.tools and not call.last_tool_results:
            return tool("calculator", expression="1200 + 3400")
        return (f"<think>The planner guessed FINAL ANSWER: {THINK_DRAFT}; the calculator says otherwise.</think>\n"
                "The calculator gives 4600.\nFINAL ANSWER: 4600")

    return ScriptedModels({
        "planner": forever(f"<think>1,200 + 3,400 is about {THINK_DRAFT}.\nFINAL ANSWER: {THINK_DRAFT}\n"
                           "Better have it checked.</think>\nResearcher, check the sum with the calculator.\n"
                           "NEXT: researcher"),
        "researcher": forever(researcher),
        "critic": forever(f"<thinking>If it were {THINK_DRAFT}:\nREJECTED: the sum is off.\nBut the calculator "
                          "agrees with the figures.</thinking>\nThe sum matches the calculator.\nAPPROVED\n"
                          "FINAL ANSWER: 4600"),
    })


def empty_replies(retries: int = 0) -> ScriptedModels:
    """The planner proposes once; from then on every model returns empty content. `retries`: the client retries an
    empty reply that many times, as `ManagedClient` does with a provider (LLM_MAX_RETRIES, 5 by default)."""
    return RawArgumentModels(max_retries=retries, scripts={
        "planner": ["Both figures are in the question: 1,200 + 3,400.\nFINAL ANSWER: 4600"] + forever(""),
        "researcher": forever(""),
        "coder": forever(""),
        "critic": forever(""),
    })
