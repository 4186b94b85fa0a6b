"""The stalls of issue 13 beyond the two first measured (tests/test_guards.py): a handoff to an agent the team
does not have, malformed tool arguments, draft answers inside `<think>` blocks, empty replies, and the guards
of a team without an approver. Each runs the shipped debate team (or a small team) through the real Run on
in-process model doubles (tests/fakes/debates.py), the same cases `bench/stalls.py` measures."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from autogen_agentchat.messages import TextMessage, ToolCallExecutionEvent
from autogen_core.models import FunctionExecutionResult

from teams import events as ev
from teams import load_team
from teams.answer import find_answers
from teams.schema import GuardsSpec
from teams.selection import RuleSelector
from teams.termination import RunGuards
from tests.fakes.debates import (
    THINK_DRAFT,
    RawArgumentModels,
    critic_agrees_in_prose,
    empty_replies,
    forever,
    handoff_to_unknown_agent,
    malformed_tool_arguments,
    raw_call,
    researcher_repeats_one_call,
    run,
    think_block_drafts,
    trio,
    turns,
)
from tests.fakes.function_model import ScriptedModels
from tests.guard_helpers import calculator_runs as calculator_runs  # a fixture: pytest finds it here
from tests.guard_helpers import verdict_of

GUARDED_CALL_LIMIT = 20  # issue 13: no stall case costs more model calls than this with the guards on


# --- every case, as the bench runs it -----------------------------------------------------------------------
@pytest.mark.parametrize(
    "make,answer",
    [
        pytest.param(critic_agrees_in_prose, "4600", id="critic agrees in prose"),
        pytest.param(researcher_repeats_one_call, "", id="researcher repeats one call"),
        pytest.param(handoff_to_unknown_agent, "", id="handoff to unknown agent"),
        pytest.param(malformed_tool_arguments, "", id="malformed tool arguments"),
        pytest.param(think_block_drafts, "4600", id="draft answer in think"),
        pytest.param(empty_replies, "4600", id="empty replies"),
        pytest.param(lambda: empty_replies(retries=5), "4600", id="empty replies, 5 retries"),
    ],
)
async def test_every_stall_case_ends_with_a_stop_reason_and_its_best_answer_within_20_calls(
    make: Callable[[], ScriptedModels], answer: str
) -> None:
    _, result = await run(load_team("debate"), make())
    assert result.stop_reason in ("approved", "consensus", "stalled"), result.stop_detail
    assert result.stop_detail
    assert result.answer == answer
    assert result.model_calls <= GUARDED_CALL_LIMIT


# --- a handoff to an agent that does not exist --------------------------------------------------------------
def test_a_handoff_to_a_name_the_team_lacks_goes_to_default_next() -> None:
    selector = RuleSelector(load_team("debate"))
    said = TextMessage(content="The librarian should confirm the figures.\nNEXT: librarian", source="planner")
    assert selector([said]) == "researcher"  # debate.yaml: default_next planner -> researcher


async def test_handing_over_to_a_missing_librarian_every_turn_stalls_after_four_turns() -> None:
    events, result = await run(load_team("debate"), handoff_to_unknown_agent())
    assert turns(events) == ["planner", "researcher", "planner", "researcher"]
    assert result.stop_reason == "stalled" and "4 turns in a row" in result.stop_detail
    assert result.model_calls == 4 and result.answer == ""


# --- malformed tool arguments -------------------------------------------------------------------------------
async def test_a_call_with_arguments_that_are_not_json_repeated_ends_the_run_inside_that_turn(
    calculator_runs: list[str],
) -> None:
    events, result = await run(load_team("debate"), malformed_tool_arguments())
    errors = [e for e in events if isinstance(e, ev.ToolResult)]
    # the first call and its three repeats (repeated_call_limit 3), not all 8 tool rounds of the turn
    assert len(errors) == 4 and all(e.is_error for e in errors)
    assert calculator_runs == []
    assert result.stop_reason == "stalled"
    assert "researcher repeated the same malformed calculator call 3 times in a row" in result.stop_detail
    assert turns(events) == ["planner", "researcher"]
    assert result.model_calls == 1 + 4  # the planner; the researcher's four tool rounds


async def test_the_model_is_told_which_tool_could_not_read_its_arguments_and_what_it_takes(
    calculator_runs: list[str],
) -> None:
    events, _ = await run(load_team("debate"), malformed_tool_arguments())
    said = next(e.output for e in events if isinstance(e, ev.ToolResult))
    assert said.startswith("Error: the arguments of this calculator call could not be read: they are not valid JSON")
    assert "Nothing was run" in said and '"expression" (string)' in said


@pytest.mark.parametrize("arguments, problem", [
    ('["1200 + 3400"]', "they are an array, not a JSON object"),
    ('"1200 + 3400"', "they are a string, not a JSON object"),
])
async def test_arguments_that_are_json_but_not_an_object_are_named_as_such(
    arguments: str, problem: str, calculator_runs: list[str],
) -> None:
    events, result = await run(load_team("debate"), malformed_tool_arguments(arguments))
    said = [e.output for e in events if isinstance(e, ev.ToolResult)]
    assert said and all(problem in s for s in said)
    assert calculator_runs == [] and result.stop_reason == "stalled"


async def test_blank_arguments_are_an_empty_object(calculator_runs: list[str]) -> None:
    """Some servers send "" for a call without arguments: it is read as {} (here: the required argument missing)."""
    events, _ = await run(load_team("debate"), malformed_tool_arguments(""))
    said = next(e.output for e in events if isinstance(e, ev.ToolResult))
    assert said.startswith("Error: bad arguments for calculator: expression")


async def test_a_malformed_call_fixed_in_the_same_turn_goes_on_to_the_answer(calculator_runs: list[str]) -> None:
    cut_short = '{"expression": "1200 + 3400"'
    models = RawArgumentModels({
        "planner": ["Researcher, add the figures.\nNEXT: researcher", "FINAL ANSWER: 4600"],
        "researcher": [raw_call("calculator", cut_short), raw_call("calculator", cut_short),
                       raw_call("calculator", cut_short), raw_call("calculator", cut_short + "}"),
                       "4600.\nNEXT: planner"],
        "critic": ["APPROVED\nFINAL ANSWER: 4600"],
    })
    _, result = await run(load_team("debate"), models)
    assert calculator_runs == ["1200 + 3400"]
    assert (result.stop_reason, result.answer) == ("approved", "4600")


async def test_a_call_missing_its_required_argument_repeated_ends_the_run(calculator_runs: list[str]) -> None:
    events, result = await run(load_team("debate"), malformed_tool_arguments("{}"))
    errors = [e.output for e in events if isinstance(e, ev.ToolResult)]
    assert errors and all("bad arguments for calculator" in e for e in errors)
    assert calculator_runs == []
    assert result.stop_reason == "stalled" and "same failing calculator call" in result.stop_detail
    assert result.model_calls == 10


async def test_a_failing_call_repeated_less_often_than_the_limit_does_not_end_the_run(
    calculator_runs: list[str],
) -> None:
    models = RawArgumentModels({
        "planner": ["Researcher, add the figures.\nNEXT: researcher", "FINAL ANSWER: 4600"],
        "researcher": [raw_call("calculator", "{}"), raw_call("calculator", "{}"),
                       raw_call("calculator", '{"expression": "1200 + 3400"}'), "4600.\nNEXT: planner"],
        "critic": ["APPROVED\nFINAL ANSWER: 4600"],
    })
    _, result = await run(trio(), models)
    models.assert_complete()
    assert calculator_runs == ["1200 + 3400"]
    assert (result.stop_reason, result.answer) == ("approved", "4600")


async def test_an_agent_that_fixes_its_call_in_the_same_turn_is_not_stopped(calculator_runs: list[str]) -> None:
    models = RawArgumentModels({
        "planner": ["Researcher, add the figures.\nNEXT: researcher", "FINAL ANSWER: 4600"],
        "researcher": [raw_call("calculator", "{}"), raw_call("calculator", "{}"), raw_call("calculator", "{}"),
                       raw_call("calculator", "{}"), raw_call("calculator", '{"expression": "1200 + 3400"}'),
                       "4600.\nNEXT: planner"],
        "critic": ["APPROVED\nFINAL ANSWER: 4600"],
    })
    _, result = await run(trio(), models)
    models.assert_complete()
    assert calculator_runs == ["1200 + 3400"]
    assert (result.stop_reason, result.answer) == ("approved", "4600")


# --- <think> blocks -----------------------------------------------------------------------------------------
async def test_a_draft_answer_inside_think_blocks_is_never_proposed_approved_or_returned() -> None:
    events, result = await run(load_team("debate"), think_block_drafts())
    # the planner's visible text proposes nothing: it goes to the researcher, not to the critic
    assert turns(events) == ["planner", "researcher", "critic"]
    proposed = [(e.agent, e.answer, e.verdict) for e in events if isinstance(e, ev.AnswerProposed)]
    assert proposed == [("researcher", "4600", "proposed"), ("critic", "4600", "approved")]
    assert all(p.answer != THINK_DRAFT for p in result.proposals)
    # the critic's reasoning holds a `REJECTED:` line; its visible approval is what counts
    assert (result.stop_reason, result.answer, result.approved) == ("approved", "4600", True)


async def test_drafts_only_in_think_blocks_never_reach_a_consensus() -> None:
    models = ScriptedModels({
        "planner": forever(f"<think>FINAL ANSWER: {THINK_DRAFT}</think>\nLet me think again.\nNEXT: critic"),
        "critic": forever(f"<think>FINAL ANSWER: {THINK_DRAFT}</think>\nGo on.\nNEXT: planner"),
    })
    events, result = await run(trio(), models)
    assert result.stop_reason == "stalled" and len(turns(events)) == 4
    assert result.answer == "" and result.proposals == []


@pytest.mark.parametrize(
    "text,answers",
    [
        (f"<think>FINAL ANSWER: {THINK_DRAFT}</think>\nFINAL ANSWER: 4600", ["4600"]),
        (f"<think>\nFINAL ANSWER: {THINK_DRAFT}\n</think>\nThe researcher should check.", []),
        (f"<think>Unclosed, cut off by the token limit.\nFINAL ANSWER: {THINK_DRAFT}", []),  # an unclosed block
        (f"<thinking>FINAL ANSWER: {THINK_DRAFT}</thinking>\nFINAL ANSWER: 4600", ["4600"]),
        (f"<THINK>FINAL ANSWER: {THINK_DRAFT}</THINK>", []),
        (f"<think >FINAL ANSWER: {THINK_DRAFT}</thinking>\nFINAL ANSWER: 4600", ["4600"]),  # tags that do not match
        (f"<think>a</think>FINAL ANSWER: 4600<think>FINAL ANSWER: {THINK_DRAFT}</think>", ["4600"]),
        (f"No opening tag: FINAL ANSWER: {THINK_DRAFT}\n</think>\nFINAL ANSWER: 4600", ["4600"]),
        ("FINAL ANSWER: 4600\n<think>but maybe FINAL ANSWER: 4500", ["4600"]),
    ],
)
def test_answers_inside_reasoning_blocks_are_not_read(text: str, answers: list[str]) -> None:
    assert find_answers(text) == answers


@pytest.mark.parametrize(
    "review,verdict",
    [
        ("<think>APPROVED\nFINAL ANSWER: 4600</think>\nI need the almanac's figures first.", None),
        ("<think>APPROVED\nFINAL ANSWER: 4600", None),  # unclosed: all of it is reasoning
        ("<thinking>\nREJECTED: is the sum off?\n</thinking>\nAPPROVED\nFINAL ANSWER: 4600", "approved"),
        ("<think>Not approved yet...</think>\n**Approved.**\nFINAL ANSWER: 4600", "approved"),
        ("<think>APPROVED\nFINAL ANSWER: 4600</think>\nREJECTED: show the sum.", "rejected"),
    ],
)
def test_verdicts_inside_reasoning_blocks_are_not_read(review: str, verdict: str | None) -> None:
    assert verdict_of(review) == verdict


def test_a_handoff_inside_a_think_block_is_not_read() -> None:
    selector = RuleSelector(load_team("debate"))
    said = TextMessage(content="<think>NEXT: coder</think>\nLet the researcher check.", source="planner")
    assert selector([said]) == "researcher"  # default_next, not the coder named in the reasoning


# --- empty replies ------------------------------------------------------------------------------------------
async def test_empty_replies_stall_after_two_empty_turns_and_keep_the_answer_proposed_before() -> None:
    events, result = await run(load_team("debate"), empty_replies())
    assert turns(events) == ["planner", "critic", "planner"]  # an empty turn counts as two of stall_turns (4)
    assert (result.stop_reason, result.answer, result.approved) == ("stalled", "4600", False)
    assert "2 turns in a row" in result.stop_detail and "2 of them empty" in result.stop_detail
    assert result.model_calls == 3


async def test_empty_replies_retried_by_the_client_stay_within_20_calls() -> None:
    _, result = await run(load_team("debate"), empty_replies(retries=5))
    assert (result.stop_reason, result.answer) == ("stalled", "4600")
    assert result.model_calls == 1 + 2 * 6  # the proposal; two empty turns of 1 call and 5 retries each


def test_a_reply_with_only_a_reasoning_block_is_an_empty_turn_and_a_tool_turn_is_not() -> None:
    guards = RunGuards(GuardsSpec(stall_turns=4), answer_marker="FINAL ANSWER:", approver="critic",
                       approval_marker="APPROVED", rejection_marker="REJECTED")
    thought = TextMessage(content=f"<think>FINAL ANSWER: {THINK_DRAFT}</think>\n", source="planner")
    assert guards.observe([thought]) is None and guards.quiet_turns == 2
    said = TextMessage(content="Let me check.", source="planner")
    assert guards.observe([said]) is None and guards.quiet_turns == 3
    looked_up = ToolCallExecutionEvent(source="researcher", content=[
        FunctionExecutionResult(call_id="c", name="lookup", content="founded in 1702", is_error=False)])
    assert guards.observe([looked_up, TextMessage(content="", source="researcher")]) is None  # new evidence
    assert guards.quiet_turns == 0
    assert guards.observe([looked_up, TextMessage(content="", source="researcher")]) is None  # old: one quiet turn
    assert guards.quiet_turns == 1
    stop = guards.observe([TextMessage(content="", source="critic")])
    assert stop is None and guards.quiet_turns == 3
    stop = guards.observe([thought])
    assert stop is not None and stop.startswith("stalled: 3 turns in a row") and "2 of them empty" in stop


# --- a team without an approver -----------------------------------------------------------------------------
async def test_a_team_without_an_approver_stops_on_a_stall() -> None:
    models = ScriptedModels({
        "planner": ["FINAL ANSWER: 4500"] + forever("Let me think again.\nNEXT: critic"),
        "critic": forever("Hmm.\nNEXT: planner"),
    })
    events, result = await run(trio(approver=None, max_turns=16), models)
    assert turns(events) == ["planner", "critic", "planner", "critic", "planner"]
    assert result.stop_reason == "stalled" and "4 turns in a row" in result.stop_detail
    assert (result.answer, result.approved) == ("4500", False)


async def test_a_team_without_an_approver_stops_on_a_consensus() -> None:
    models = ScriptedModels({
        "planner": forever("FINAL ANSWER: 4600"),
        "critic": forever("Agreed.\nFINAL ANSWER: 4,600"),
    })
    events, result = await run(trio(approver=None, max_turns=16), models)
    assert len(turns(events)) == 3
    assert (result.stop_reason, result.answer, result.approved) == ("consensus", "4600", False)


async def test_without_an_approver_any_agents_rejection_resets_the_consensus() -> None:
    models = ScriptedModels({
        "planner": forever("FINAL ANSWER: 4600"),
        "critic": ["REJECTED: show the sum.\nNEXT: planner"] + forever("Agreed.\nFINAL ANSWER: 4600"),
    })
    events, result = await run(trio(approver=None, max_turns=16), models)
    # 4600 stated on turn 1, rejected on turn 2, stated again on turns 3, 4 and 5
    assert len(turns(events)) == 5 and result.stop_reason == "consensus"


async def test_a_team_without_an_approver_stops_on_a_repeated_failing_call(calculator_runs: list[str]) -> None:
    models = malformed_tool_arguments("{}")  # read, then refused: the guard that reads each turn as it ends
    events, result = await run(trio(approver=None, max_turns=16), models)
    assert result.stop_reason == "stalled" and "same failing calculator call" in result.stop_detail
    assert calculator_runs == []
