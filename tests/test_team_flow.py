"""Who speaks, when a run ends and what it answers, driven in-process by `ScriptedModels` (no HTTP, no SDK)."""

from __future__ import annotations

import asyncio
import time

import pytest

from agents.tools.registry import ToolContext, build_tools, tool_names
from config.settings import Settings
from teams import Run, load_team
from teams import events as ev
from tests.fakes.debates import QUESTION, run, trio, turns
from tests.fakes.function_model import Call, ScriptedModels, Slow, ToolCalls, tool


async def test_rules_pick_the_speakers_and_a_proposal_goes_to_the_reviewer() -> None:
    models = ScriptedModels({
        "planner": ["Look both figures up.", "FINAL ANSWER: 4600"],
        "researcher": [tool("calculator", expression="1200 + 3400"), "1,200 and 3,400 make 4600.\nNEXT: planner"],
        "critic": ["APPROVED\nFINAL ANSWER: 4600"],
    })
    events, result = await run(trio(), models)
    models.assert_complete()
    assert turns(events) == ["planner", "researcher", "planner", "critic"]
    assert result.answer == "4600" and result.approved and result.stop_reason == "approved"
    # the calculator really ran and its result reached the researcher's next call
    assert models.calls_for("researcher")[1].last_tool_results == ["4600"]
    assert result.usage["planner"].calls == 2 and result.usage["planner"].prompt_tokens > 0


async def test_a_handoff_names_the_next_speaker() -> None:
    models = ScriptedModels({
        "planner": ["Critic, anything to add before we start?\nNEXT: critic", "FINAL ANSWER: 4600"],
        "critic": ["Nothing yet.", "APPROVED\nFINAL ANSWER: 4600"],
    })
    events, _ = await run(trio(), models)
    models.assert_complete()
    assert turns(events) == ["planner", "critic", "planner", "critic"]


async def test_the_approval_marker_is_required() -> None:
    """A critic that restates the answer without writing APPROVED has not approved it: the run goes on."""
    models = ScriptedModels({
        "planner": ["FINAL ANSWER: 4600", "Then confirm it.\nNEXT: critic"],
        "critic": ["Looks right to me.\nFINAL ANSWER: 4600\nNEXT: planner", "APPROVED\nFINAL ANSWER: 4600"],
    })
    events, result = await run(trio(), models)
    models.assert_complete()
    assert turns(events) == ["planner", "critic", "planner", "critic"]
    verdicts = [(e.agent, e.verdict) for e in events if isinstance(e, ev.AnswerProposed)]
    assert verdicts[-1] == ("critic", "approved") and ("critic", "approved") not in verdicts[:-1]
    assert result.approved


async def test_without_a_marker_any_final_answer_of_the_approver_ends_the_run() -> None:
    models = ScriptedModels({
        "planner": ["FINAL ANSWER: 4600"],
        "critic": ["Looks right to me.\nFINAL ANSWER: 4600"],
    })
    events, result = await run(trio(approval_marker=None), models)
    models.assert_complete()
    assert result.approved and turns(events) == ["planner", "critic"]


async def test_a_rejection_marks_the_pending_proposal_and_the_turn_cap_keeps_the_latest_unrejected() -> None:
    models = ScriptedModels({
        "planner": ["FINAL ANSWER: 4,600 inhabitants", "FINAL ANSWER: 4600"],
        "critic": ["REJECTED: a bare number is asked for.\nNEXT: planner"],
    })
    events, result = await run(trio(max_turns=3), models)
    models.assert_complete()
    verdicts = [(e.answer, e.verdict) for e in events if isinstance(e, ev.AnswerProposed)]
    assert verdicts == [("4,600 inhabitants", "proposed"), ("4,600 inhabitants", "rejected"), ("4600", "proposed")]
    assert result.stop_reason == "max_turns" and result.answer == "4600" and not result.approved


async def test_a_tool_call_reply_with_text_streams_the_text_once() -> None:
    models = ScriptedModels({
        "planner": ["Look it up.", "FINAL ANSWER: 4600"],
        "researcher": [ToolCalls([("calculator", {"expression": "1200 + 3400"})], thought="Checking."), "4600.\nNEXT: planner"],
        "critic": ["APPROVED\nFINAL ANSWER: 4600"],
    })
    events, _ = await run(trio(), models)
    models.assert_complete()
    tokens = "".join(e.text for e in events if isinstance(e, ev.Token) and e.agent == "researcher")
    assert tokens.startswith("Checking.")
    assert not [e for e in events if isinstance(e, ev.Thought)]


async def test_the_double_fails_on_an_unused_step_and_on_an_unexpected_call() -> None:
    unused = ScriptedModels({
        "planner": ["FINAL ANSWER: 4600", "never reached"],
        "critic": ["APPROVED\nFINAL ANSWER: 4600"],
    })
    await run(trio(), unused)
    with pytest.raises(AssertionError, match="planner: 1 scripted step"):
        unused.assert_complete()

    unexpected = ScriptedModels({"planner": ["FINAL ANSWER: 4600"]})
    _, result = await run(trio(), unexpected)
    assert result.stop_reason == "error"
    with pytest.raises(AssertionError, match="critic has no script"):
        unexpected.assert_complete()


async def test_the_debate_team_runs_in_process_with_its_real_prompts() -> None:
    def critic(call: Call) -> str:
        assert "APPROVED" in call.system and "untrusted data" in call.system
        return "APPROVED\nFINAL ANSWER: 4600"

    models = ScriptedModels({
        "planner": ["Coder, add them.\nNEXT: coder"],
        "coder": ["1200 + 3400 = 4600.\nFINAL ANSWER: 4600"],
        "critic": [critic],
    })
    _, result = await run(load_team("debate"), models)
    models.assert_complete()
    assert result.answer == "4600" and result.approved
    assert models.calls_for("coder")[0].tools == ["run_python", "read_file"]


# --- every registered tool, called as a model would call it ------------------------------------------------
def _example(schema: dict) -> object:
    kind = schema.get("type")
    if "anyOf" in schema:
        return _example(next(s for s in schema["anyOf"] if s.get("type") != "null"))
    if "default" in schema and schema["default"] is not None:
        return schema["default"]
    return {"string": "example", "integer": 1, "number": 1.5, "boolean": True, "array": [], "object": {}}.get(str(kind), "example")


async def test_every_registered_tool_answers_schema_generated_arguments_with_text_or_one_error_line(tmp_path) -> None:
    from autogen_core.tools import StaticWorkbench

    ctx = ToolContext(settings=Settings(_env_file=None), workdir=tmp_path)  # type: ignore[call-arg]
    tools = build_tools(tool_names(), ctx, agent="tester")
    bench = StaticWorkbench(tools)  # how AutoGen's AssistantAgent calls them
    for built in tools:
        params = built.schema.get("parameters", {})
        args = {name: _example(prop) for name, prop in params.get("properties", {}).items()}
        result = await bench.call_tool(built.name, args, ctx.abort, call_id="c1")
        output = result.to_text()
        assert output, built.name
        assert result.is_error == output.startswith("Error:"), (built.name, output)
        if result.is_error:
            assert "Traceback" not in output and "\n" not in output, (built.name, output)


async def test_llm_selection_asks_the_selector_only_where_rules_do_not_decide() -> None:
    team = load_team("debate").model_copy(deep=True)
    team.selection.mode = "llm"
    models = ScriptedModels({
        "planner": ["Let someone look it up.", "FINAL ANSWER: 4600"],
        "researcher": ["Alderbrook 1,200 and Birchwell 3,400, so 4600 together."],
        "selector": ["researcher", "planner"],
        "critic": ["APPROVED\nFINAL ANSWER: 4600"],
    })
    events, result = await run(team, models)
    models.assert_complete()
    assert turns(events) == ["planner", "researcher", "planner", "critic"]
    assert result.answer == "4600" and result.approved
    # the first speaker and the review were decided by rules: the selector was asked twice, and counted
    selector_calls = models.calls_for("selector")
    assert len(selector_calls) == 2
    assert result.usage["selector"].calls == 2 and result.usage["selector"].prompt_tokens > 0
    assert "pick the one role from ['researcher', 'coder', 'critic']" in selector_calls[0].transcript


async def test_the_max_turns_setting_overrides_the_yaml() -> None:
    models = ScriptedModels({"planner": ["thinking NEXT: researcher"] * 2, "researcher": ["nothing NEXT: planner"]})
    settings = Settings(_env_file=None, ROUNDTABLE_MAX_TURNS=3)  # type: ignore[call-arg]
    r = Run(QUESTION, trio(max_turns=50), settings=settings, client_factory=models.factory)
    events = [e async for e in r.events()]
    models.assert_complete()
    assert r.result is not None and r.result.stop_reason == "max_turns" and r.result.answer == ""
    assert turns(events) == ["planner", "researcher", "planner"]


async def test_nonsense_text_does_not_break_the_debate() -> None:
    models = ScriptedModels({
        "planner": ["}}{{ ]] ::: NEXT NEXT :", "FINAL ANSWER: 4600"],
        "researcher": ["@@@ \x00 ???"],
        "critic": ["APPROVED\nFINAL ANSWER: 4600"],
    })
    _, result = await run(trio(), models)
    models.assert_complete()
    assert result.answer == "4600" and result.approved


# --- approval as real models write it (issue 13) ----------------------------------------------------------
@pytest.mark.parametrize("approval", ["**Approved.**", "Approved: both figures are in the question.", "approved"])
async def test_approval_is_read_in_any_case_and_markdown(approval: str) -> None:
    models = ScriptedModels({
        "planner": ["FINAL ANSWER: 4600"],
        "critic": [f"{approval}\n**FINAL ANSWER:** 4600"],
    })
    events, result = await run(trio(), models)
    models.assert_complete()
    assert turns(events) == ["planner", "critic"] and result.approved and result.stop_reason == "approved"


@pytest.mark.parametrize("refusal", ["Not approved: a bare number is asked for.", "**NOT APPROVED**", "I cannot approve... not approved yet."])
async def test_not_approved_is_never_read_as_approval(refusal: str) -> None:
    models = ScriptedModels({
        "planner": ["FINAL ANSWER: 4,600 people", "FINAL ANSWER: 4600"],
        "critic": [f"{refusal}\nFINAL ANSWER: 4,600 people\nNEXT: planner", "APPROVED\nFINAL ANSWER: 4600"],
    })
    events, result = await run(trio(), models)
    models.assert_complete()
    verdicts = [(e.answer, e.verdict) for e in events if isinstance(e, ev.AnswerProposed)]
    assert ("4,600 people", "approved") not in verdicts and ("4,600 people", "rejected") in verdicts
    assert result.answer == "4600" and result.approved


async def test_a_critic_restating_the_answer_without_the_marker_ends_by_consensus_not_approval() -> None:
    """The documented rule (teams/termination.py): a restatement is one more statement of the answer, never an
    approval; the third statement with no rejection ends the run as `consensus`."""
    models = ScriptedModels({
        "planner": ["FINAL ANSWER: 4600", "FINAL ANSWER: 4600"],
        "critic": ["Looks right to me.\nFINAL ANSWER: 4600"],
    })
    events, result = await run(trio(), models)
    models.assert_complete()
    assert turns(events) == ["planner", "critic", "planner"]
    assert not [e for e in events if isinstance(e, ev.AnswerProposed) and e.verdict == "approved"]
    assert (result.stop_reason, result.answer, result.approved) == ("consensus", "4600", False)


async def test_a_timeout_does_not_wait_for_a_slow_model_and_keeps_the_best_proposed_answer() -> None:
    models = ScriptedModels({
        "planner": ["Alderbrook 1,200 and Birchwell 3,400.\nFINAL ANSWER: 4600"],
        "critic": [Slow(30, "APPROVED\nFINAL ANSWER: 4600")],
    })
    started = time.monotonic()
    _, result = await run(trio(timeout_seconds=1.5), models)
    assert time.monotonic() - started < 5, "a timeout must not wait for the slow model call"
    assert result.stop_reason == "timeout" and "1.5s" in result.stop_detail
    assert result.answer == "4600" and not result.approved
    assert models.unused() == {"critic": 1}  # the slow reply never arrived


async def test_cancelling_during_a_model_call_stops_promptly() -> None:
    models = ScriptedModels({"planner": [Slow(30, "late")]})
    r = Run(QUESTION, trio(), settings=Settings(_env_file=None), client_factory=models.factory)  # type: ignore[call-arg]
    seen: list[ev.Event] = []

    async def consume() -> None:
        async for e in r.events():
            seen.append(e)
            if isinstance(e, ev.TurnStarted):
                asyncio.get_running_loop().call_later(0.3, r.cancel)

    started = time.monotonic()
    await asyncio.wait_for(consume(), timeout=10)
    assert time.monotonic() - started < 3
    assert r.result is not None and r.result.stop_reason == "cancelled"
    assert isinstance(seen[-1], ev.RunFinished)
    assert models.unused() == {"planner": 1}  # stopped while the reply was still on its way


# --- the program's form checks (teams/checks.py) ------------------------------------------------------------
RATIO_QUESTION = "A wheel of 1 unit diameter rolls once; what distance does it cover, to 2 decimal places?"
LANTERN_QUESTION = "The hall has 3 lanterns on the left and 1 on the right. How many lanterns hang in the hall?"


async def test_an_approved_answer_with_too_many_decimals_is_rounded_and_the_correction_recorded() -> None:
    models = ScriptedModels({
        "planner": ["FINAL ANSWER: 3.14159"],
        "critic": ["APPROVED\nFINAL ANSWER: 3.14159"],
    })
    events, result = await run(trio(), models, RATIO_QUESTION)
    models.assert_complete()
    assert (result.answer, result.raw_answer, result.approved) == ("3.14", "3.14159", True)
    assert "corrected: decimal_places" in result.checks
    assert "corrected: decimal_places" in result.to_dict()["checks"]  # what answers.jsonl stores


async def test_an_approval_of_a_number_in_words_does_not_end_the_run() -> None:
    models = ScriptedModels({
        "planner": ["FINAL ANSWER: four", "FINAL ANSWER: 4"],
        "critic": ["APPROVED\nFINAL ANSWER: four", "APPROVED\nFINAL ANSWER: 4"],
    })
    events, result = await run(trio(), models, LANTERN_QUESTION)
    models.assert_complete()
    assert turns(events) == ["planner", "critic", "planner", "critic"]
    verdicts = [(e.answer, e.verdict) for e in events if isinstance(e, ev.AnswerProposed)]
    assert ("four", "approved") not in verdicts and ("four", "rejected") in verdicts
    assert (result.answer, result.approved, result.stop_reason) == ("4", True, "approved")
    assert any(c.startswith("not approved: number_not_words") for c in result.checks)


async def test_the_result_says_whether_a_tool_produced_the_answer() -> None:
    models = ScriptedModels({
        "planner": ["Sum them.", "FINAL ANSWER: 4600"],
        "researcher": [tool("calculator", expression="1200 + 3400"), "4600.\nNEXT: planner"],
        "critic": ["APPROVED\nFINAL ANSWER: 4600"],
    })
    _, with_tool = await run(trio(), models)
    models = ScriptedModels({"planner": ["FINAL ANSWER: 4600"], "critic": ["APPROVED\nFINAL ANSWER: 4600"]})
    _, without = await run(trio(), models)
    assert "evidence: the answer appears in a tool result or program output" in with_tool.checks
    assert any(c.startswith("evidence: the answer appears in no tool result") for c in without.checks)


async def test_the_critic_reads_the_program_checks_on_the_answer_it_reviews() -> None:
    models = ScriptedModels({
        "planner": ["FINAL ANSWER: four", "FINAL ANSWER: 4"],
        "critic": ["REJECTED: the question asks for a number.\nNEXT: planner", "APPROVED\nFINAL ANSWER: 4"],
    })
    _, result = await run(trio(), models, LANTERN_QUESTION)
    models.assert_complete()
    first, second = (c.transcript for c in models.calls_for("critic"))
    assert "Program checks on the answer 'four':" in first and "number_not_words" in first
    assert "cannot be approved as it is" in first and "only in model text" in first
    assert "Program checks on the answer '4':" in second and "number_not_words" not in second
    assert not any("Program checks" in c.transcript for c in models.calls_for("planner"))  # the reviewer's only
    assert result.answer == "4" and result.approved
