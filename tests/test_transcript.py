"""The transcript alone: hand-built AutoGen messages in, our events and the Result out (no team, no model)."""

from __future__ import annotations

from autogen_agentchat.base import TaskResult
from autogen_agentchat.messages import (
    ModelClientStreamingChunkEvent,
    SelectSpeakerEvent,
    StopMessage,
    TextMessage,
    ThoughtEvent,
    ToolCallExecutionEvent,
    ToolCallRequestEvent,
)
from autogen_core import FunctionCall
from autogen_core.models import FunctionExecutionResult

from agents.tools.code import CodeOutput
from models.usage import UsageLedger
from teams import events as ev
from teams import load_team
from teams.transcript import Ending, Transcript


def transcript() -> Transcript:
    return Transcript(load_team("debate"), UsageLedger())


def feed(t: Transcript, *items: object) -> list[ev.Event]:
    return [e for item in items for e in t.feed(item)]


def test_turns_tokens_tool_calls_and_code_runs_become_our_events() -> None:
    t = transcript()
    events = feed(t, TextMessage(content="How many?", source="user"), SelectSpeakerEvent(content=["coder"], source="rules"))
    t.ledger.add("coder", "openai", "gpt-4.1-mini", 100, 20)  # the turn's model call
    t.outputs["c1"] = CodeOutput(0, "4600\n", "docker", True)  # what run_python left for the run
    events += feed(
        t,
        ModelClientStreamingChunkEvent(content="Running ", source="coder"),
        ThoughtEvent(content="Running ", source="coder"),  # AutoGen repeats the streamed text: not shown twice
        ToolCallRequestEvent(content=[FunctionCall(id="c1", name="run_python", arguments='{"code": "print(4600)"}')], source="coder"),
        ToolCallExecutionEvent(content=[FunctionExecutionResult(call_id="c1", name="run_python", content="exit code 0\n4600", is_error=False)], source="coder"),
        TextMessage(content="It printed 4600.\nFINAL ANSWER: 4600", source="coder"),
    )
    kinds = [type(e).__name__ for e in events]
    assert kinds == ["TurnStarted", "Token", "ToolCall", "CodeRun", "ToolResult", "CodeRun", "TurnEnded", "AnswerProposed"]
    done = [e for e in events if isinstance(e, ev.CodeRun)][-1]
    assert (done.code, done.exit_code, done.sandbox, done.isolated, done.tool) == ("print(4600)", 0, "docker", True, "run_python")
    assert not t.outputs  # taken once
    ended = next(e for e in events if isinstance(e, ev.TurnEnded))
    assert (ended.prompt_tokens, ended.completion_tokens) == (100, 20)
    assert [p.answer for p in t.proposals] == ["4600"]


def test_a_rejection_marks_the_pending_proposal_and_an_approval_ends_as_approved() -> None:
    t = transcript()
    feed(
        t,
        TextMessage(content="FINAL ANSWER: 4,600 inhabitants", source="planner"),
        TextMessage(content="**REJECTED**: a bare number.", source="critic"),
        TextMessage(content="FINAL ANSWER: 4600", source="planner"),
        TextMessage(content="APPROVED\nFINAL ANSWER: 4600", source="critic"),
        StopMessage(content="answer approved by critic", source="ApprovedAnswerTermination"),
    )
    assert [(p.answer, p.verdict) for p in t.proposals] == [
        ("4,600 inhabitants", "rejected"), ("4600", "proposed"), ("4600", "approved")]
    r = t.result("q", Ending(), duration_s=1.0, models={}, run_id="r1")
    assert (r.answer, r.approved, r.stop_reason, r.stop_detail) == ("4600", True, "approved", "approved by critic")


def test_stop_reasons_and_the_best_answer_when_nobody_approved() -> None:
    t = transcript()
    feed(t, TextMessage(content="FINAL ANSWER: Quillwater.", source="planner"))
    timeout = t.result("q", Ending("timeout", "the 5s time limit was reached"), duration_s=5.0, models={}, run_id="r")
    assert (timeout.stop_reason, timeout.answer, timeout.approved) == ("timeout", "Quillwater", False)
    failed = t.result("q", Ending(failure=RuntimeError("ValueError: boom\nTraceback ...")), duration_s=1, models={}, run_id="r")
    assert (failed.stop_reason, failed.error) == ("error", "ValueError: boom")
    t.feed(TaskResult(messages=[], stop_reason="Maximum number of turns 16 reached."))
    capped = t.result("q", Ending(max_turns=16), duration_s=1, models={}, run_id="r")
    assert (capped.stop_reason, capped.stop_detail) == ("max_turns", "the 16-turn limit was reached")
