"""Model calls and tokens a misbehaving model costs on debate.yaml, with the stall guards on and off.

Each case is a model that misbehaves the way real ones do, scripted in-process (tests/fakes/function_model.py):
  critic agrees in prose  - the critic restates the answer but never writes APPROVED;
  researcher repeats      - the researcher calls the calculator with the same arguments, turn after turn;
  handoff to unknown agent - every agent writes `NEXT: librarian` (no such agent) every turn, no one answers;
  malformed tool arguments - the researcher calls the calculator with JSON cut short, in every tool round;
  draft answer in <think>  - reasoning blocks hold a wrong draft answer and a rejection line the visible text
                             does not say (the planner's visible text no answer, the critic's an approval);
  empty replies            - the planner proposes once, then every model returns empty content; "(5 retries)":
                             through the client's retry policy for a provider (LLM_MAX_RETRIES=5, no waits).
"off" is the same team with
`guards: {repeated_tool_calls: run, repeated_call_limit: null, consensus_after: null, stall_turns: null}`.
Tokens are the doubles' word counts, not a real tokenizer; the doubles are not retried, except in the last case
(an empty reply from a provider is retried LLM_MAX_RETRIES times, each a model call). Targets (issue 13): every run ends with a stop
reason and keeps its best answer; the tool-loop case at most 15 model calls (guards.repeated_call_limit ends
it inside the turn); no case over 20 with the guards on.

    python bench/stalls.py
"""

from __future__ import annotations

import asyncio
import logging
import sys
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from loguru import logger  # noqa: E402

import agents.tools.calculator as calculator  # noqa: E402
from config.settings import Settings  # noqa: E402
from teams import Run, load_team  # noqa: E402
from teams import events as ev  # noqa: E402
from teams.schema import GuardsSpec, TeamConfig  # noqa: E402
from tests.fakes.debates import (  # noqa: E402
    QUESTION,
    critic_agrees_in_prose,
    empty_replies,
    handoff_to_unknown_agent,
    malformed_tool_arguments,
    researcher_repeats_one_call,
    think_block_drafts,
)
from tests.fakes.function_model import ScriptedModels  # noqa: E402


async def measure(team: TeamConfig, make: Callable[[], ScriptedModels]) -> str:
    runs: list[str] = []
    real = calculator.calculate

    def counted(expression: str) -> str:
        runs.append(expression)
        return real(expression)

    calculator.calculate = counted
    try:
        models = make()
        run = Run(QUESTION, team, settings=Settings(_env_file=None), client_factory=models.factory)
        turns = sum([isinstance(e, ev.TurnStarted) async for e in run.events()])
    finally:
        calculator.calculate = real
    r = run.result
    assert r is not None
    return (f"{turns:>3} turns {r.model_calls:>3} model calls {r.prompt_tokens:>7,} prompt tokens "
            f"{len(runs):>3} tool runs  stop={r.stop_reason} answer={r.answer or '-'}")


async def main() -> None:
    logger.remove()  # the figures, not the runs' logs
    logging.getLogger("autogen_core").setLevel(logging.CRITICAL)  # nor AutoGen's report of a run stopped mid-turn
    on = load_team("debate")
    off = on.model_copy(update={"guards": GuardsSpec(repeated_tool_calls="run", repeated_call_limit=None,
                                                     consensus_after=None, stall_turns=None)})
    cases: list[tuple[str, Callable[[], ScriptedModels]]] = [
        ("critic agrees in prose", critic_agrees_in_prose),
        ("researcher repeats one call", researcher_repeats_one_call),
        ("handoff to unknown agent", handoff_to_unknown_agent),
        ("malformed tool arguments", malformed_tool_arguments),
        ("draft answer in <think>", think_block_drafts),
        ("empty replies", empty_replies),
        ("empty replies (5 retries)", lambda: empty_replies(retries=Settings(_env_file=None).llm_max_retries)),
    ]
    for name, make in cases:
        for label, team in [("guards off", off), ("guards on ", on)]:
            print(f"{name:<28} {label}: {await measure(team, make)}")


if __name__ == "__main__":
    asyncio.run(main())
