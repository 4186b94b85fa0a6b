"""What the page receives for a run's events, without a browser: the step tree, streamed tokens, tool and
code steps, and the final message (with its stop reason when the run was not approved)."""

from __future__ import annotations

from config.log import register_secrets
from models.usage import AgentUsage
from teams import events as ev
from teams.result import Result
from tests.ui.fake_session import chainlit_session
from ui.render import (
    RunView,
    final_answer_text,
    md_escape,
    name_hue,
    rejection_reason,
    speaker_colour,
    turn_title,
)


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
    # titled by agent and turn number (the role is the name here), the agent in the step's metadata
    assert [t["name"] for t in turns] == ["planner — turn 1", "researcher — turn 2", "coder — turn 3"]
    assert all(t["parentId"] == run["id"] for t in turns)
    by_name = {t["metadata"]["agent"]: t for t in turns}
    assert by_name["planner"]["output"] == "Plan: look it up.\nNEXT: researcher"
    # text before and after the tool call, the thought not repeated
    assert by_name["researcher"]["output"] == "Checking.\n\nIt is 4."
    tools = [s for s in steps.values() if s.get("type") == "tool"]
    calc = next(t for t in tools if t["name"] == "calculator")
    assert calc["parentId"] == by_name["researcher"]["id"]
    # boxes headed "input" and "output", not by their language ("json", "text")
    assert calc["input"] == '```input\n{\n  "expression": "2+2"\n}\n```' and calc["showInput"] is True
    assert calc["output"] == "```output\n4\n```" and not calc["language"] and not calc["isError"]
    code = next(t for t in tools if t["name"] == "run_python")
    assert code["parentId"] == by_name["coder"]["id"]
    assert code["input"] == "```python\nprint(2+2)\n```"
    assert code["output"].endswith("\n\n```output\nexit code 0\n4\n```")
    assert len(tools) == 2  # run_python is shown once, as a code run, not also as a generic tool call
    # tokens were streamed into the turn's own step, not sent as one block
    planner_tokens = [d for e, d in rec.events if e == "stream_token" and d["id"] == by_name["planner"]["id"]]
    assert len(planner_tokens) == 4  # the first token starts the stream, the other four stream into it
    # the roster is the run step's input (shown above the turns), the summary its output (below them)
    assert run["input"] == "Agents: planner, researcher, coder, critic · files: ledger\\.csv" and run["showInput"] is True
    assert "3 turns: planner → researcher → coder" in run["output"]
    assert "**4** · proposed by coder · not reviewed" in run["output"]  # a name is no markup
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
    critic = next(s for s in steps if s.get("name") == "critic — turn 1")
    assert critic["output"] == "Let me verify.\n\nAPPROVED\nFINAL ANSWER: 4"
    tool = next(s for s in steps if s.get("type") == "tool")
    assert tool["isError"] and tool["input"] == "```input\nnot json\n```"
    run = next(s for s in steps if s.get("type") == "run")
    assert "1 turn: critic" in run["output"] and "1 turns" not in run["output"]


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
    coder = next(s for s in steps if s.get("name") == "coder — turn 1")
    assert coder["output"].endswith("_(stopped)_") and coder["end"]
    code = next(s for s in steps if s.get("type") == "tool")
    assert "interrupted" in code["output"] and code["end"]
    final = rec.messages()[-1]["output"]
    assert final.startswith("## ❌ No answer")
    assert "**Stop reason:** stopped (`cancelled`): stopped by the user" in final
    assert "1 turn: coder" in next(s for s in steps if s.get("type") == "run")["output"]


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
    # the words once, not "error (`error`)"
    assert "**Stop reason:** error: " in failed and "(`error`)" not in failed
    assert "**Stop reason:** no answer\n" in final_answer_text(_result(answer="", approved=False, stop_reason="no_answer", stop_detail=""))


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
    assert code["output"].startswith("⚠️ Sandbox: **subprocess**, NOT isolated: the code ran on the host")
    assert code["metadata"] == {"sandbox": "subprocess (NOT isolated)", "isolated": False}


async def test_a_code_run_says_which_sandbox_ran_it() -> None:
    events = _debate_events(_result(answer="4"))
    i = next(i for i, e in enumerate(events) if isinstance(e, ev.CodeRun) and e.output is not None)
    events[i] = ev.CodeRun("coder", "c2", "print(2+2)", "exit code 0\n4", 0, sandbox="docker", isolated=True, tool="run_python")
    with chainlit_session() as rec:
        view = RunView("debate")
        for event in events:
            await view.handle(event)
    code = next(s for s in rec.steps().values() if s.get("name") == "run_python")
    assert code["output"].startswith("🔒 Sandbox: **docker** (isolated)\n\n```output\n")


async def test_a_run_without_code_execution_says_why_in_its_header() -> None:
    why = "no isolated sandbox backend is available (docker: no engine; bwrap: namespaces refused; wasm: not installed)"
    with chainlit_session() as rec:
        view = RunView("debate")
        await view.handle(ev.RunStarted("r1", "How many?", "debate", ["planner", "coder"], [], code_unavailable=why))
    header = next(s for s in rec.steps().values() if s.get("name") == "debate team")
    assert "Code execution is unavailable" in header["input"] and md_escape(why) in header["input"]


def _review_events(result: Result) -> list:
    """A proposal rejected by the critic with its reason, then a second one it approves (restated with a dot)."""
    return [
        ev.RunStarted("r2", "How many?", "debate", ["planner", "coder", "skeptic"]),
        ev.TurnStarted("coder", 1),
        ev.TurnEnded("coder", 1, "FINAL ANSWER: 4,600 inhabitants", 1, 1),
        ev.AnswerProposed("coder", "4,600 inhabitants", "proposed"),
        ev.TurnStarted("skeptic", 2),
        ev.TurnEnded("skeptic", 2, "REJECTED: the answer must be a bare number.\nNEXT: planner", 1, 1),
        ev.AnswerProposed("coder", "4,600 inhabitants", "rejected"),
        ev.TurnStarted("planner", 3),
        ev.TurnEnded("planner", 3, "FINAL ANSWER: 4600", 1, 1),
        ev.AnswerProposed("planner", "4600", "proposed"),
        ev.TurnStarted("skeptic", 4),
        ev.TurnEnded("skeptic", 4, "APPROVED\nFINAL ANSWER: 4600.", 1, 1),
        ev.AnswerProposed("skeptic", "4600.", "approved"),
        ev.RunFinished(result),
    ]


async def test_verdicts_are_badges_on_the_reviewers_turn_and_the_proposals_say_who_and_why() -> None:
    with chainlit_session() as rec:
        view = RunView("debate", roles={"planner": "planner", "coder": "coder", "skeptic": "critic"})
        for event in _review_events(_result(stop_detail="approved by skeptic")):
            await view.handle(event)
    steps = rec.steps()
    turns = [s for s in steps.values() if s.get("type") == "llm"]
    assert [t["name"] for t in turns] == ["coder — turn 1", "skeptic (critic) — turn 2", "planner — turn 3",
                                          "skeptic (critic) — turn 4"]
    assert turns[1]["metadata"] == {"agent": "skeptic", "role": "critic", "turn": 2, "colour": speaker_colour("skeptic")}
    assert turns[1]["output"].endswith("\n\n[✗ Rejected: the answer must be a bare number\\.](#rt-rejected)")
    assert turns[3]["output"].endswith("\n\n[✓ Approved](#rt-approved)")
    assert "#rt-" not in turns[0]["output"] + turns[2]["output"]  # a proposal is no verdict
    final = rec.messages()[-1]["output"]
    assert ("**Proposals:**\n- **4,600 inhabitants** · proposed by coder · "
            "[✗ Rejected by skeptic: the answer must be a bare number\\.](#rt-rejected)\n"
            "- **4600** · proposed by planner · [✓ Approved by skeptic](#rt-approved)") in final
    run = next(s for s in steps.values() if s.get("type") == "run")
    assert "✗ Rejected by skeptic: the answer must be a bare number" in run["output"]


def test_the_rejection_reason_is_what_follows_the_marker() -> None:
    assert rejection_reason("REJECTED: too vague.\nNEXT: planner") == "too vague."
    assert rejection_reason("**REJECTED**\nThe unit is missing.\nNEXT: coder") == "The unit is missing."
    assert rejection_reason("I disagree, the sum is wrong.\nNEXT: coder") == "I disagree, the sum is wrong."
    assert len(rejection_reason("REJECTED: " + "x" * 1000)) == 300


def test_each_agent_has_its_own_colour_and_a_custom_name_a_stable_one() -> None:
    known = [speaker_colour(a) for a in ("planner", "researcher", "coder", "critic", "solo", "adjudicator")]
    assert len(set(known)) == 6
    assert speaker_colour("skeptic") == speaker_colour("skeptic") == f"hsl({name_hue('skeptic')}, 60%, 42%)"
    assert len({name_hue(n) for n in ("skeptic", "historian", "auditor", "scout")}) == 4
    assert turn_title("critic", "critic", 4) == "critic — turn 4"
    assert turn_title("skeptic", "critic", 2) == "skeptic (critic) — turn 2"
