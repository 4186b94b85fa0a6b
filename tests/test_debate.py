"""A full debate through the real openai provider path against the scripted server."""

from __future__ import annotations

from teams import events as ev
from teams import load_team, solve
from tests.conftest import OPENAI_DEFAULT, OPENAI_STRONG, settings_for

QUESTION = "The almanac lists Alderbrook with 1,200 inhabitants and Birchwell with 3,400. How many live in both towns together?"


def debate_script() -> dict:
    return {
        "planner": [
            "1. Confirm both figures in the almanac. 2. Add them with code. 3. Answer with a bare number.\nNEXT: researcher",
            "Both figures confirmed. Coder, add 1200 and 3400.\nNEXT: coder",
            "The critic is right about the form.\nFINAL ANSWER: 4600",
        ],
        "researcher": [
            {"tool_calls": [{"name": "calculator", "arguments": {"expression": "1200 + 3400"}}], "content": "Checking."},
            "The almanac gives Alderbrook 1,200 and Birchwell 3,400 (calculator check: 4600).\nNEXT: planner",
        ],
        "coder": [
            {"tool_calls": [{"name": "run_python", "arguments": {"code": "print(sum([1200, 3400]))"}}]},
            "The program printed 4600.\nFINAL ANSWER: 4,600 inhabitants",
        ],
        "critic": [
            "REJECTED: the answer must be a bare number, without the unit and the thousands separator.\nNEXT: planner",
            "APPROVED\nFINAL ANSWER: 4600.",
        ],
    }


async def test_full_debate_reaches_the_approved_normalised_answer(llm_server) -> None:
    server = llm_server(debate_script())
    events: list = []
    result = await solve(QUESTION, load_team("debate"), settings=settings_for(server), on_event=events.append)

    assert result.answer == "4600"
    assert result.approved and result.stop_reason == "approved"
    turns = [e.agent for e in events if isinstance(e, ev.TurnStarted)]
    assert turns == ["planner", "researcher", "planner", "coder", "critic", "planner", "critic"]

    # the researcher's tool and the coder's code really ran
    results = {e.name: e.output for e in events if isinstance(e, ev.ToolResult)}
    assert results["calculator"] == "4600"
    assert results["run_python"].startswith("exit code 0") and "4600" in results["run_python"]
    code_runs = [e for e in events if isinstance(e, ev.CodeRun) and e.output is not None]
    assert code_runs and code_runs[0].code == "print(sum([1200, 3400]))" and code_runs[0].exit_code == 0

    # the researcher's streamed "Checking." before its tool call is shown once, as tokens, not again as a thought
    researcher_tokens = "".join(e.text for e in events if isinstance(e, ev.Token) and e.agent == "researcher")
    assert researcher_tokens.startswith("Checking.")
    assert not [e for e in events if isinstance(e, ev.Thought)]

    verdicts = [(e.answer, e.verdict) for e in events if isinstance(e, ev.AnswerProposed)]
    assert verdicts == [
        ("4,600 inhabitants", "proposed"),
        ("4,600 inhabitants", "rejected"),
        ("4600", "proposed"),
        ("4600.", "approved"),
    ]

    # tokens per agent match what the server counted, and cost is priced from the real model names
    for agent in ("planner", "researcher", "coder", "critic"):
        served = server.requests_for(agent)
        assert result.usage[agent].calls == len(served)
        assert result.usage[agent].prompt_tokens == sum(r.prompt_tokens for r in served) > 0
    assert result.cost_usd is not None and result.cost_usd > 0
    assert result.models["planner"] == f"openai/{OPENAI_STRONG}" and result.models["coder"] == f"openai/{OPENAI_DEFAULT}"
    assert all(r.stream for r in server.requests), "debate.yaml streams every agent"


async def test_agents_get_their_role_prompt_and_only_their_tools(llm_server) -> None:
    server = llm_server(debate_script())
    await solve(QUESTION, load_team("debate"), settings=settings_for(server))

    critic = server.requests_for("critic")[0]
    assert "critic" in critic.system and "APPROVED" in critic.system and "no articles" in critic.system
    assert "untrusted data" in critic.system
    assert critic.tool_names == []
    assert server.requests_for("coder")[0].tool_names == ["run_python", "read_file"]
    assert "calculator" in server.requests_for("researcher")[0].tool_names
    # the coder never sees the researcher's raw tool output, only its summary
    coder_text = " ".join(str(m.get("content")) for m in server.requests_for("coder")[0].messages)
    assert "calculator check: 4600" in coder_text


async def test_code_runs_say_which_sandbox_ran_them(llm_server) -> None:
    server = llm_server(debate_script())
    events: list = []
    await solve(QUESTION, load_team("debate"), settings=settings_for(server, SANDBOX_BACKEND="subprocess"), on_event=events.append)
    [run] = [e for e in events if isinstance(e, ev.CodeRun) and e.output is not None]
    assert run.sandbox == "subprocess (NOT isolated)" and not run.isolated
