"""Model calls and tokens a misbehaving model costs on debate.yaml, with the stall guards on and off.

Each case is a model that misbehaves the way real ones do, scripted in-process (tests/fakes/function_model.py):
  critic agrees in prose  - the critic restates the answer but never writes APPROVED;
  researcher repeats      - the researcher calls the calculator with the same arguments, turn after turn.
"off" is the same team with `guards: {repeated_tool_calls: run, consensus_after: null, stall_turns: null}`.
Tokens are the doubles' word counts, not a real tokenizer. Targets (issue 13): every run ends with a stop reason and
keeps its answer; the tool-loop case at most 15 model calls (guards.repeated_call_limit ends it inside the turn).

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
from tests.fakes.debates import QUESTION, critic_agrees_in_prose, researcher_repeats_one_call  # noqa: E402
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
        run = Run(QUESTION, team, settings=Settings(_env_file=None), client_factory=models.factory)  # type: ignore[call-arg]
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
    off = on.model_copy(update={"guards": GuardsSpec(repeated_tool_calls="run", consensus_after=None, stall_turns=None)})
    for name, make in [("critic agrees in prose", critic_agrees_in_prose),
                       ("researcher repeats one call", researcher_repeats_one_call)]:
        for label, team in [("guards off", off), ("guards on ", on)]:
            print(f"{name:<28} {label}: {await measure(team, make)}")


if __name__ == "__main__":
    asyncio.run(main())
