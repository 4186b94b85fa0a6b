"""What the page receives for a run's events, without a browser: the step tree, streamed tokens, tool and
code steps, and the final message (with its stop reason when the run was not approved)."""

from __future__ import annotations

from config.log import register_secrets
from models.usage import AgentUsage
from teams import events as ev
from teams.result import Result
from tests.ui.fake_session import chainlit_session
from ui.render import RunView, final_answer_text, md_escape


def _result(**kw) -> Result:
    values = dict(
        question="q", answer="4600", raw_answer="4600", approved=True, stop_reason="approved",
        stop_detail="approved by critic", duration_s=12.34,
        usage={"planner": AgentUsage(calls=2, prompt_tokens=1000, completion_tokens=200, cost_usd=0.0123)},
    )
    values.update(kw)
    return Result(**values)


def _debate_events(result: Result) -> list:
    return [
        ev.RunStarted("r1", "How many?", "debate", ["planner", "researcher", "coder", "critic"], ["ledger.csv"]),
        ev.TurnStarted("planner", 1),
        *[ev.Token("planner", t) for t in ["Plan:", " look", " it", " up.", "\nNEXT: researcher"]],
        ev.TurnEnded("planner", 1, "Plan: look it up.\nNEXT: researcher", 10, 5),
        ev.TurnStarted("researcher", 2),
        ev.Token("researcher", "Checking."),
        ev.Thought("researcher", "Checking."),
        ev.ToolCall("researcher", "c1", "calculator", '{"expression": "2+2"}'),
        ev.ToolResult("researcher", "c1", "calculator", "4", False),
        ev.Token("researcher", "It is 4."),
        ev.TurnEnded("researcher", 2, "It is 4.", 10, 5),
        ev.TurnStarted("coder", 3),
        ev.ToolCall("coder", "c2", "run_python", '{"code": "print(2+2)"}', shown_as_code=True),
        ev.CodeRun("coder", "c2", "print(2+2)", None, None, tool="run_python"),
        ev.ToolResult("coder", "c2", "run_python", "exit code 0\n4", False, shown_as_code=True),
        ev.CodeRun("coder", "c2", "print(2+2)", "exit code 0\n4", 0, tool="run_python"),
        ev.Token("coder", "FINAL ANSWER: 4"),
        ev.TurnEnded("coder", 3, "FINAL ANSWER: 4", 10, 5),
        ev.AnswerProposed("coder", "4", "proposed"),
        ev.RunFinished(result),
    ]


async def test_turns_are_steps_under_the_run_with_tools_and_code_as_their_children() -> None:
    with chainlit_session() as rec:
        view = RunView("debate")
        for event in _debate_events(_result(answer="4")):
            await view.handle(event)
    steps = rec.steps()
    run = next(s for s in steps.values() if s.get("type") == "run")
    assert run["name"] == "debate team"
    turns = [s for s in steps.values() if s.get("type") == "llm"]
    assert [t["name"] for t in turns] == ["planner", "researcher", "coder"]
    assert all(t["parentId"] == run["id"] for t in turns)
    by_name = {t["name"]: t for t in turns}
    assert by_name["planner"]["output"] == "Plan: look it up.\nNEXT: researcher"
    # text before and after the tool call, the thought not repeated
    assert by_name["researcher"]["output"] == "Checking.\n\nIt is 4."
    tools = [s for s in steps.values() if s.get("type") == "tool"]
    calc = next(t for t in tools if t["name"] == "calculator")
    assert calc["parentId"] == by_name["researcher"]["id"]
    assert '"expression": "2+2"' in calc["input"] and calc["output"] == "4" and not calc["isError"]
    code = next(t for t in tools if t["name"] == "run_python")
    assert code["parentId"] == by_name["coder"]["id"]
    assert code["input"] == "print(2+2)" and code["showInput"] == "python"
    assert code["output"] == "exit code 0\n4" and code["language"] == "text"
    assert len(tools) == 2  # run_python is shown once, as a code run, not also as a generic tool call
    # tokens were streamed into the turn's own step, not sent as one block
    planner_tokens = [d for e, d in rec.events if e == "stream_token" and d["id"] == by_name["planner"]["id"]]
    assert len(planner_tokens) == 4  # the first token starts the stream, the other four stream into it
    assert "files: ledger\\.csv" in run["output"] and "coder proposed **4**" in run["output"]  # a name is no markup
    final = rec.messages()[-1]
    assert final["name"] == "Final answer" and final["output"].startswith("## ✅ Final answer: 4")
    assert final["parentId"] == run["parentId"]  # siblings: the page shows the debate above its answer


async def test_code_runs_can_be_hidden() -> None:
    with chainlit_session() as rec:
        view = RunView("debate", show_code=False)
        for event in _debate_events(_result()):
            await view.handle(event)
    names = [s["name"] for s in rec.steps().values() if s.get("type") == "tool"]
    assert names == ["calculator"]


async def test_a_non_streaming_agent_shows_its_thought_and_message_once() -> None:
    with chainlit_session() as rec:
        view = RunView("t")
        for event in [
            ev.TurnStarted("critic", 1),
            ev.Thought("critic", "Let me verify."),
            ev.ToolCall("critic", "c1", "calculator", "not json"),
            ev.ToolResult("critic", "c1", "calculator", "Error: bad expression", True),
            ev.TurnEnded("critic", 1, "APPROVED\nFINAL ANSWER: 4", 5, 5),
            ev.RunFinished(_result()),
        ]:
            await view.handle(event)
    steps = rec.steps().values()
    critic = next(s for s in steps if s.get("name") == "critic")
    assert critic["output"] == "Let me verify.\n\nAPPROVED\nFINAL ANSWER: 4"
    tool = next(s for s in steps if s.get("type") == "tool")
    assert tool["isError"] and tool["input"] == "not json"


async def test_a_stopped_run_closes_its_open_turn_and_tool_and_says_why() -> None:
    stopped = _result(answer="", raw_answer=None, approved=False, stop_reason="cancelled", stop_detail="stopped by the user", usage={})
    with chainlit_session() as rec:
        view = RunView("debate")
        for event in [
            ev.RunStarted("r", "q", "debate", ["coder"]),
            ev.TurnStarted("coder", 1),
            ev.ToolCall("coder", "c9", "run_python", '{"code": "import time; time.sleep(60)"}', shown_as_code=True),
            ev.CodeRun("coder", "c9", "import time; time.sleep(60)", None, None, tool="run_python"),
            ev.RunFinished(stopped),
        ]:
            await view.handle(event)
    steps = rec.steps().values()
    coder = next(s for s in steps if s.get("name") == "coder")
    assert coder["output"].endswith("_(stopped)_") and coder["end"]
    code = next(s for s in steps if s.get("type") == "tool")
    assert "interrupted" in code["output"] and code["end"]
    final = rec.messages()[-1]["output"]
    assert final.startswith("## ❌ No answer")
    assert "**Stop reason:** stopped (`cancelled`): stopped by the user" in final


def test_the_final_message_carries_time_tokens_cost_and_the_stop_reason_unless_approved() -> None:
    approved = final_answer_text(_result())
    assert "Final answer: 4600" in approved and "approved by critic" in approved
    assert "12.3 s" in approved and "1,200 tokens (1,000 in, 200 out)" in approved and "≈ $0.01" in approved
    assert "Stop reason" not in approved

    capped = final_answer_text(
        _result(approved=False, stop_reason="max_turns", stop_detail="the 16-turn limit was reached",
                usage={"a": AgentUsage(calls=1, prompt_tokens=5, completion_tokens=5, cost_usd=None)}, duration_s=75)
    )
    assert "Final answer (not approved): 4600" in capped
    assert "**Stop reason:** turn limit reached (`max_turns`): the 16\\-turn limit was reached" in capped
    assert "1 min 15 s" in capped and "cost unknown" in capped

    unpriced = final_answer_text(_result(usage={"a": AgentUsage(
        calls=1, prompt_tokens=5, completion_tokens=5, cost_usd=None,
        unknown_prices=["no price known for hf/Acme/Model-9: add it to OVERRIDES in models/prices.py"])}))
    assert "cost unknown (no price known for hf/Acme/Model" in unpriced  # the UI says why, as the terminal does

    checked = final_answer_text(_result(answer="3.14", checks=["corrected: decimal_places", "evidence: only in model text"]))
    assert "**Checks:**" in checked and "- corrected\\: decimal\\_places" in checked and "only in model text" in checked
    assert "Checks" not in approved  # nothing to say, nothing shown

    failed = final_answer_text(
        _result(answer="", approved=False, stop_reason="error", stop_detail="cannot build the team",
                error="LLM provider 'openai' needs OPENAI_API_KEY, which is not set.")
    )
    assert "No answer" in failed and "OPENAI\\_API\\_KEY" in failed


def test_answers_are_shown_literally() -> None:
    assert md_escape("*bold* [x](y) `c`") == "\\*bold\\* \\[x\\]\\(y\\) \\`c\\`"


async def test_a_key_echoed_by_a_tool_or_an_error_never_reaches_the_page() -> None:
    secret = "sk-proj-uiRENDERsecret0123456789"
    register_secrets([secret])
    failed = _result(answer="", approved=False, stop_reason="error", stop_detail="provider error",
                     error=f"401: Incorrect API key provided: {secret}")
    with chainlit_session() as rec:
        view = RunView("debate")
        for event in [
            ev.TurnStarted("researcher", 1),
            ev.ToolCall("researcher", "c1", "read_page", '{"url": "http://127.0.0.1/x"}'),
            ev.ToolResult("researcher", "c1", "read_page", f"page text key={secret}", False),
            ev.RunFinished(failed),
        ]:
            await view.handle(event)
    assert secret not in str(rec.events)
    assert "***" in str(rec.events)


async def test_a_code_run_outside_an_isolated_sandbox_is_labelled() -> None:
    events = _debate_events(_result(answer="4"))
    i = next(i for i, e in enumerate(events) if isinstance(e, ev.CodeRun) and e.output is not None)
    events[i] = ev.CodeRun("coder", "c2", "print(2+2)", "exit code 0\n4", 0, sandbox="subprocess (NOT isolated)", isolated=False,
                           tool="run_python")
    with chainlit_session() as rec:
        view = RunView("debate")
        for event in events:
            await view.handle(event)
    code = next(s for s in rec.steps().values() if s.get("name") == "run_python")
    assert code["output"].startswith("⚠ subprocess (NOT isolated): this code ran without isolation\n")


async def test_a_run_without_code_execution_says_why_in_its_header() -> None:
    why = "no isolated sandbox backend is available (docker: no engine; bwrap: namespaces refused; wasm: not installed)"
    with chainlit_session() as rec:
        view = RunView("debate")
        await view.handle(ev.RunStarted("r1", "How many?", "debate", ["planner", "coder"], [], code_unavailable=why))
    header = next(s for s in rec.steps().values() if s.get("name") == "debate team")
    assert "Code execution is unavailable" in header["output"] and md_escape(why) in header["output"]
