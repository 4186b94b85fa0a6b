"""Stall guards (teams/termination.py, agents/tools/registry.py): repeated tool calls, consensus and stalls,
and how a critic's review is read, with models that misbehave the way real ones do (in-process doubles)."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest
from autogen_agentchat.messages import TextMessage, ToolCallExecutionEvent
from autogen_core import CancellationToken
from autogen_core.models import FunctionExecutionResult

from agents.tools.errors import ToolError, ToolFailed
from agents.tools.registry import REPEAT_NOTE_PREFIX, SafeTool, ToolCallCache, ToolContext, build_tools
from config.settings import Settings
from teams import events as ev
from teams import load_team
from teams.result import Result
from teams.schema import GuardsSpec, TeamConfig
from teams.termination import RunGuards
from tests.fakes.debates import (
    critic_agrees_in_prose,
    forever,
    researcher_repeats_one_call,
    run,
    trio,
    turns,
)
from tests.fakes.function_model import ScriptedModels, tool
from tests.guard_helpers import calculator_runs as calculator_runs  # a fixture: pytest finds it here
from tests.guard_helpers import verdict_of

# --- the two measured stalls (issue 13), on the shipped debate team ---------------------------------------


async def test_a_critic_agreeing_in_prose_ends_by_consensus_on_turn_3_not_after_16() -> None:
    models = critic_agrees_in_prose()
    events, result = await run(load_team("debate"), models)
    assert turns(events) == ["planner", "critic", "planner"]
    assert (result.stop_reason, result.answer, result.approved) == ("consensus", "4600", False)
    assert "stated 3 times with no rejection" in result.stop_detail
    assert result.model_calls == 3


def without_loop_limit(team: TeamConfig) -> TeamConfig:
    return team.model_copy(update={"guards": team.guards.model_copy(update={"repeated_call_limit": None})})


async def test_a_researcher_looping_on_one_call_inside_its_turn_ends_the_run_at_once(calculator_runs: list[str]) -> None:
    models = researcher_repeats_one_call()
    events, result = await run(load_team("debate"), models)
    assert calculator_runs == ["1200 + 3400"]
    assert result.stop_reason == "stalled"
    assert "researcher repeated the same calculator call 3 times in a row" in result.stop_detail
    assert turns(events) == ["planner", "researcher"]
    assert result.model_calls == 1 + 4  # the planner; the researcher's call that ran and its three repeats


async def test_a_researcher_repeating_one_call_runs_it_once_and_the_run_stalls(calculator_runs: list[str]) -> None:
    models = researcher_repeats_one_call()
    events, result = await run(without_loop_limit(load_team("debate")), models)
    assert calculator_runs == ["1200 + 3400"]  # run once; every repeat got the earlier result
    repeats = [e for e in events if isinstance(e, ev.ToolResult)][1:]
    assert repeats and all(e.output.startswith(REPEAT_NOTE_PREFIX) and e.output.endswith("4600") for e in repeats)
    assert result.stop_reason == "stalled" and "4 turns" in result.stop_detail
    assert turns(events) == ["planner", "researcher"] * 3
    assert result.model_calls == 3 + 3 * 9  # 8 tool rounds and the reflection per researcher turn


# --- repeated tool calls ----------------------------------------------------------------------------------
def counting_tool(calls: list[dict[str, Any]], fail: bool = False) -> SafeTool:
    def lookup(title: str, lang: str = "en") -> str:
        calls.append({"title": title, "lang": lang})
        if fail:
            raise ToolError("the server answered 503")
        return f"{title} ({lang}): founded in 1702."

    built = SafeTool(lookup, name="lookup", description="Look a title up.")
    built.cache = ToolCallCache()
    built.agent = "researcher"
    return built


async def test_an_identical_call_returns_the_earlier_result_with_a_note_and_does_not_run_again() -> None:
    calls: list[dict[str, Any]] = []
    lookup = counting_tool(calls)
    token = CancellationToken()
    first = await lookup.run_json({"title": "Quillwater"}, token)
    again = await lookup.run_json({"title": "Quillwater", "lang": "en"}, token)  # the default spelled out: same call
    other = await lookup.run_json({"title": "Quillwater", "lang": "de"}, token)
    assert calls == [{"title": "Quillwater", "lang": "en"}, {"title": "Quillwater", "lang": "de"}]
    assert first == "Quillwater (en): founded in 1702."
    assert again.startswith(REPEAT_NOTE_PREFIX) and "not run again" in again and again.endswith("\n\n" + first)
    assert other == "Quillwater (de): founded in 1702."


async def test_two_identical_calls_in_one_reply_run_once() -> None:
    calls: list[dict[str, Any]] = []
    lookup = counting_tool(calls)
    token = CancellationToken()
    results = await asyncio.gather(lookup.run_json({"title": "Quillwater"}, token), lookup.run_json({"title": "Quillwater"}, token))
    assert len(calls) == 1 and sum(r.startswith(REPEAT_NOTE_PREFIX) for r in results) == 1


async def test_a_failed_call_is_not_remembered_and_runs_again() -> None:
    calls: list[dict[str, Any]] = []
    lookup = counting_tool(calls, fail=True)
    for _ in range(2):
        with pytest.raises(ToolFailed, match="503"):
            await lookup.run_json({"title": "Quillwater"}, CancellationToken())
    assert len(calls) == 2


def test_programs_always_run_again_and_the_cache_can_be_turned_off(tmp_path: Path) -> None:
    ctx = ToolContext(settings=Settings(_env_file=None), workdir=tmp_path)
    cached = {t.name: t.cache for t in build_tools(["calculator", "run_python"], ctx) if isinstance(t, SafeTool)}
    assert cached == {"calculator": ctx.call_cache, "run_python": None}
    off = ToolContext(settings=Settings(_env_file=None), workdir=tmp_path, repeat_calls="run")
    assert [t.cache for t in build_tools(["calculator"], off) if isinstance(t, SafeTool)] == [None]


async def test_the_cache_is_per_run(calculator_runs: list[str]) -> None:
    for _ in range(2):
        models = ScriptedModels({
            "planner": ["Check it.", "FINAL ANSWER: 4600"],
            "researcher": [tool("calculator", expression="1200 + 3400"), "4600.\nNEXT: planner"],
            "critic": ["APPROVED\nFINAL ANSWER: 4600"],
        })
        _, result = await run(trio(), models)
        models.assert_complete()
        assert models.calls_for("researcher")[1].last_tool_results == ["4600"]  # not a repeat in a new run
    assert calculator_runs == ["1200 + 3400"] * 2


async def test_repeated_tool_calls_run_can_be_set_in_the_team_yaml(calculator_runs: list[str]) -> None:
    models = ScriptedModels({
        "planner": ["Check it twice.", "FINAL ANSWER: 4600"],
        "researcher": [tool("calculator", expression="1200 + 3400"), tool("calculator", expression="1200 + 3400"),
                       "4600, twice.\nNEXT: planner"],
        "critic": ["APPROVED\nFINAL ANSWER: 4600"],
    })
    await run(trio(guards={"repeated_tool_calls": "run"}), models)
    models.assert_complete()
    assert calculator_runs == ["1200 + 3400"] * 2


# --- consensus --------------------------------------------------------------------------------------------
async def test_a_rejection_resets_the_consensus_count() -> None:
    models = ScriptedModels({
        "planner": ["FINAL ANSWER: 4600", "FINAL ANSWER: 4,600", "FINAL ANSWER: 4600."],
        "critic": ["REJECTED: show the sum.\nNEXT: planner", "Fine by me.\nFINAL ANSWER: 4600"],
    })
    events, result = await run(trio(max_turns=5), models)
    models.assert_complete()
    # 4600 stated: turn 1 (then rejected), turns 3, 4 and 5: the third statement after the rejection ends it
    assert turns(events) == ["planner", "critic", "planner", "critic", "planner"]
    assert (result.stop_reason, result.answer) == ("consensus", "4600")


async def test_consensus_ends_with_the_agreed_answer_even_when_on_stop_returns_nothing() -> None:
    team = trio().model_copy(deep=True)
    team.answer.on_stop = "none"
    models = ScriptedModels({
        "planner": forever("FINAL ANSWER: 4600"),
        "critic": forever("Agreed.\nFINAL ANSWER: 4600"),
    })
    _, result = await run(team, models)
    assert (result.stop_reason, result.answer, result.approved, result.provisional) == ("consensus", "4600", False, True)


async def test_consensus_can_be_turned_off_in_the_team_yaml() -> None:
    models = critic_agrees_in_prose()
    events, result = await run(trio(guards={"consensus_after": None, "stall_turns": None}, max_turns=7), models)
    assert len(turns(events)) == 7 and result.stop_reason == "max_turns"


# --- stalls -----------------------------------------------------------------------------------------------
async def test_turns_without_evidence_or_a_new_answer_stall_with_the_best_answer() -> None:
    models = ScriptedModels({
        "planner": ["FINAL ANSWER: 4500"] + forever("Let me think again.\nNEXT: critic"),
        "critic": forever("REJECTED: recheck the sum.\nNEXT: planner"),
    })
    events, result = await run(trio(), models)
    # proposal (new) then critic, planner, critic, planner: 4 quiet turns
    assert turns(events) == ["planner", "critic", "planner", "critic", "planner"]
    assert result.stop_reason == "stalled"
    assert result.answer == "4500" and not result.approved  # the best (only) answer, marked as not approved


async def test_new_tool_results_keep_the_run_going(calculator_runs: list[str]) -> None:
    expressions = [f"1200 + {3400 + i}" for i in range(6)]
    models = ScriptedModels({
        "planner": forever("Check another figure.\nNEXT: researcher"),
        "researcher": [step for e in expressions for step in (tool("calculator", expression=e), "Done.\nNEXT: planner")],
    })
    events, result = await run(trio(max_turns=12), models)
    assert calculator_runs == expressions and result.stop_reason == "max_turns" and len(turns(events)) == 12


async def test_the_stall_bound_is_set_in_the_team_yaml() -> None:
    models = ScriptedModels({"planner": forever("Hmm.\nNEXT: critic"), "critic": forever("Hmm.\nNEXT: planner")})
    events, result = await run(trio(guards={"stall_turns": 2}), models)
    assert len(turns(events)) == 2 and result.stop_reason == "stalled"


def guard_turns(guards: RunGuards, *turns_: list[Any]) -> list[str | None]:
    return [guards.observe(t) for t in turns_]


def test_a_cached_repeat_is_not_new_evidence() -> None:
    guards = RunGuards(GuardsSpec(stall_turns=2), answer_marker="FINAL ANSWER:", approver="critic",
                       approval_marker="APPROVED", rejection_marker="REJECTED")

    def looked_up(text: str) -> list[Any]:
        result = FunctionExecutionResult(call_id="c", name="lookup", content=text, is_error=False)
        return [ToolCallExecutionEvent(content=[result], source="researcher"), TextMessage(content="ok", source="researcher")]

    repeat = f"{REPEAT_NOTE_PREFIX} (lookup with the same arguments) already ran in this run.\n\nfounded in 1702"
    stops = guard_turns(guards, looked_up("founded in 1702"), looked_up(repeat), looked_up("founded  in 1702"))
    assert stops[:2] == [None, None] and stops[2] is not None and stops[2].startswith("stalled")


# --- reading a review -------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "review,verdict",
    [
        ("APPROVED\nFINAL ANSWER: 4600", "approved"),
        ("**Approved.**\nFINAL ANSWER: 4600", "approved"),
        ("Approved: the sum checks out.\n**FINAL ANSWER:** 4600", "approved"),
        ("approved\nfinal answer: 4600", "approved"),
        ("No issues found. APPROVED\nFINAL ANSWER: 4600", "approved"),  # a "no" in an earlier sentence
        ("I do not see a problem, approved.\nFINAL ANSWER: 4600", "approved"),
        ("Not approved.\nFINAL ANSWER: 4600", "rejected"),
        ("**NOT APPROVED**: the unit is missing.\nFINAL ANSWER: 4600", "rejected"),
        ("This cannot be approved yet.\nFINAL ANSWER: 4600", "rejected"),
        ("I haven't approved it.\nFINAL ANSWER: 4600", "rejected"),
        ("**REJECTED**: a bare number is asked for.", "rejected"),
        ("Verdict: Rejected - recheck the year.\nNEXT: researcher", "rejected"),
        ("APPROVED", None),  # no final answer: nothing approved
        ("Looks right to me.\nFINAL ANSWER: 4600", None),  # a restatement: not an approval
        ("Disapproved.\nFINAL ANSWER: 4600", None),
        ("APPROVED\nFINAL ANSWER: not approved by the council", "approved"),  # the answer's words are not the review
    ],
)
def test_how_a_review_is_read(review: str, verdict: str | None) -> None:
    assert verdict_of(review) == verdict


async def test_not_approved_is_a_rejection_and_never_ends_the_run() -> None:
    models = ScriptedModels({
        "planner": ["FINAL ANSWER: 4,600 people", "FINAL ANSWER: 4600"],
        "critic": ["Not approved: a bare number is asked for.\nFINAL ANSWER: 4,600 people\nNEXT: planner",
                   "**Approved.**\nFINAL ANSWER: 4600"],
    })
    events, result = await run(trio(), models)
    models.assert_complete()
    verdicts = [(e.answer, e.verdict) for e in events if isinstance(e, ev.AnswerProposed)]
    assert verdicts == [("4,600 people", "proposed"), ("4,600 people", "rejected"), ("4600", "proposed"), ("4600", "approved")]
    assert (result.stop_reason, result.answer, result.approved) == ("approved", "4600", True)


def test_every_shipped_team_has_the_guards_on() -> None:
    for name in ("debate", "solo", "small", "ollama"):
        guards = load_team(name).guards
        assert guards.repeated_tool_calls == "cache" and guards.consensus_after and guards.stall_turns, name




def test_the_terminal_says_the_answer_came_by_consensus() -> None:
    from rich.console import Console

    from cli.console import ConsoleRenderer

    console = Console(record=True, width=200)
    result = Result(question="q", answer="4600", raw_answer="4600", approved=False, stop_reason="consensus",
                    stop_detail="the same answer was stated 3 times with no rejection (by planner and critic)", duration_s=1.0)
    ConsoleRenderer(console).final(result)
    shown = console.export_text()
    assert "ANSWER BY CONSENSUS (not approved): 4600" in shown and "stated 3 times with no rejection" in shown


async def test_an_answer_breaking_the_question_form_never_ends_by_consensus() -> None:
    """Stated over and over, a number in words where a number is asked is no consensus; the run stalls."""
    models = ScriptedModels({
        "planner": forever("FINAL ANSWER: four"),
        "critic": forever("Agreed.\nFINAL ANSWER: four"),
    })
    _, result = await run(trio(), models, "The hall has 3 lanterns on the left and 1 on the right. How many lanterns?")
    assert result.stop_reason == "stalled" and not result.approved
    assert any(c.startswith("form: number_not_words") for c in result.checks)


async def test_without_a_question_given_the_termination_reads_it_from_the_task_message() -> None:
    from teams.termination import ApprovedAnswerTermination

    stop = ApprovedAnswerTermination("critic", "FINAL ANSWER:", "APPROVED")
    task = TextMessage(content="How many lanterns hang in the hall?", source="user")
    in_words = TextMessage(content="APPROVED\nFINAL ANSWER: four", source="critic")
    assert await stop([task]) is None and stop.question == task.content
    assert await stop([in_words]) is None and stop.rejects(in_words)
    assert await stop([TextMessage(content="APPROVED\nFINAL ANSWER: 4", source="critic")]) is not None
