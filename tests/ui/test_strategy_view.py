"""What the page receives for a strategy run (vote, escalate), without a browser: one step per attempt under the
run's step, each holding that attempt's own turns and tools even when the attempts' events interleave, the
escalation and the adjudicator's turn as steps, and a final message with the attempts side by side, the votes and
the decision. The runs are real `StrategyRun`s over in-process scripted models (tests/fakes/function_model.py)."""

from __future__ import annotations

from typing import Any

from config.log import register_secrets
from config.settings import Settings
from models.spec import ModelSpec
from models.usage import UsageLedger
from teams import events as ev
from teams import start_run
from teams.loader import parse_team
from teams.result import Attempt, Decision, Result, VoteGroup
from teams.schema import TeamConfig
from tests.fakes.function_model import ScriptedModels, tool
from tests.ui.fake_session import Recorder, chainlit_session
from ui.render import RunView, final_answer_text

SOLO: dict[str, Any] = {
    "name": "solo", "agents": [{"name": "solo", "role": "solo", "tools": ["calculator"]}],
    "selection": {"mode": "round_robin"}, "termination": {"approver": "solo", "approval_marker": None, "max_turns": 3},
}


def _attempt(i: int, label: str) -> dict[str, Any]:
    # each attempt's models are named m<i>: `PerAttempt` routes its calls to that attempt's own script; the page
    # names it "<team> · <label>"
    return {"team": SOLO, "label": label, "models": {"default": {"model": f"m{i}"}}}


def vote_team(labels: list[str]) -> TeamConfig:
    return parse_team({"name": "vote", "models": {"default": {}, "strong": {"tier": "strong"}},
                       "strategy": {"kind": "vote", "attempts": [_attempt(i, lb) for i, lb in enumerate(labels)]}})


def escalate_team() -> TeamConfig:
    return parse_team({"name": "escalate", "models": {"default": {}},
                       "strategy": {"kind": "escalate", "attempts": [_attempt(0, "cheap")],
                                    "escalate_to": _attempt(1, "strong"), "escalate_when": ["no_evidence"]}})


class PerAttempt:
    """A client factory that gives each attempt (by its model name) and the adjudicator their own script."""

    def __init__(self, scripts: dict[str, ScriptedModels]) -> None:
        self.scripts = scripts

    def factory(self, spec: ModelSpec, agent: str, ledger: UsageLedger, abort: Any) -> Any:
        key = spec.model if isinstance(spec.model, str) and spec.model in self.scripts else agent
        return self.scripts[key].factory(spec, agent, ledger, abort)


def tool_then_answer(answer: str) -> list[Any]:
    return [tool("calculator", expression="2+2"), f"Computed.\nFINAL ANSWER: {answer}"]


async def render(cfg: TeamConfig, scripts: dict[str, ScriptedModels], rec: Recorder) -> RunView:
    run = start_run("How many lamps are lit?", cfg, settings=Settings(_env_file=None), client_factory=PerAttempt(scripts).factory)
    view = RunView(cfg.name)
    async for event in run.events():
        await view.handle(event)
    return view


def kids(rec: Recorder, parent: dict[str, Any], kind: str | None = None) -> list[dict[str, Any]]:
    return [s for s in rec.steps().values() if s.get("parentId") == parent["id"] and (kind is None or s.get("type") == kind)]


async def test_a_vote_shows_one_step_per_attempt_with_its_own_turns_and_a_final_table() -> None:
    scripts = {"m0": ScriptedModels({"solo": tool_then_answer("4600")}),
               "m1": ScriptedModels({"solo": ["FINAL ANSWER: 4,600"]}),
               "m2": ScriptedModels({"solo": ["FINAL ANSWER: 4500"]})}
    with chainlit_session() as rec:
        await render(vote_team(["openai", "anthropic", "gemini"]), scripts, rec)
    steps = rec.steps()
    run = next(s for s in steps.values() if s.get("name") == "vote team")
    attempts = kids(rec, run, "run")
    assert [a["name"] for a in attempts] == ["Attempt 1 · solo · openai", "Attempt 2 · solo · anthropic", "Attempt 3 · solo · gemini"]
    # each attempt holds its own turn, and its turn its own tool call
    for a, said, answer in zip(attempts, ["4600", "4,600", "4500"], ["4600", "4600", "4500"], strict=True):
        (turn,) = kids(rec, a, "llm")
        assert turn["name"] == "solo — turn 1" and turn["metadata"]["agent"] == "solo"
        assert f"FINAL ANSWER: {said}" in turn["output"]
        assert f"Answer: **{answer}** ✅ approved" in a["output"] and a["end"]  # normalised, as the vote counts it
    (calc,) = kids(rec, kids(rec, attempts[0], "llm")[0], "tool")
    assert calc["name"] == "calculator" and calc["output"] == "```output\n4\n```"
    assert not kids(rec, kids(rec, attempts[1], "llm")[0], "tool")
    assert "Decision: majority" in run["output"]
    final = rec.messages()[-1]
    assert final["name"] == "Final answer" and final["parentId"] == run["parentId"]
    text = final["output"]
    assert text.startswith("## ✅ Final answer: 4600")
    assert "| Attempt | Label | Answer | Approved | Stop reason | Tokens | Cost |" in text
    rows = [ln for ln in text.splitlines() if ln.startswith("| 1 ") or ln.startswith("| 2 ") or ln.startswith("| 3 ")]
    assert len(rows) == 3
    assert rows[0].startswith("| 1 | solo · openai | 4600 | ✅ yes | approved |")
    assert rows[2].startswith("| 3 | solo · gemini | 4500 | ✅ yes | approved |")
    assert "- **4600**: 2 votes (attempts 1, 2; 2 approved in their own run)" in text
    assert "- **4500**: 1 vote (attempt 3; 1 approved in their own run)" in text
    assert "**Decision:** majority" in text


async def test_interleaved_attempts_keep_their_turns_apart() -> None:
    """Two attempts stream at once: each token lands in its own attempt's turn, a tool result in its own call."""
    def result(answer: str) -> Result:
        return Result(question="q", answer=answer, raw_answer=answer, approved=True, stop_reason="approved",
                      stop_detail="approved by solo", duration_s=1.0)

    attempts = [Attempt(1, "solo · a", "solo", "vote", "12", "12", True, "approved", 1.0, 10, 2, 0.001),
                Attempt(2, "solo · b", "solo", "vote", "12", "12", True, "approved", 1.0, 10, 2, None)]
    decision = Decision("unanimous", "unanimous: '12' 2 of 2", [VoteGroup("12", [1, 2], 2)])
    final = Result(question="q", answer="12", raw_answer="12", approved=True, stop_reason="majority",
                   stop_detail="unanimous: '12' 2 of 2", duration_s=2.0, strategy="vote", attempts=attempts, decision=decision)
    def a(e: ev.Event) -> ev.Event:
        return ev.InAttempt(1, e)

    def b(e: ev.Event) -> ev.Event:
        return ev.InAttempt(2, e)

    events: list[ev.Event] = [
        ev.RunStarted("r", "q", "vote", ["1. solo · a", "2. solo · b"]),
        ev.AttemptStarted(1, "solo · a", "solo", "vote"), ev.AttemptStarted(2, "solo · b", "solo", "vote"),
        a(ev.RunStarted("r.1", "q", "solo", ["solo"])), b(ev.RunStarted("r.2", "q", "solo", ["solo"])),
        a(ev.TurnStarted("solo", 1)), b(ev.TurnStarted("solo", 1)),
        a(ev.Token("solo", "Alpha ")), b(ev.Token("solo", "Beta ")),
        a(ev.ToolCall("solo", "c1", "calculator", '{"expression": "3*4"}')),
        b(ev.ToolCall("solo", "c1", "calculator", '{"expression": "6*2"}')),
        b(ev.ToolResult("solo", "c1", "calculator", "12 (b)", False)),
        a(ev.ToolResult("solo", "c1", "calculator", "12 (a)", False)),
        a(ev.Token("solo", "one.")), b(ev.Token("solo", "two.")),
        b(ev.TurnEnded("solo", 1, "Beta two.", 5, 1)), a(ev.TurnEnded("solo", 1, "Alpha one.", 5, 1)),
        a(ev.RunFinished(result("12"))), b(ev.RunFinished(result("12"))),
        ev.Decided(decision, "12"), ev.RunFinished(final),
    ]
    with chainlit_session() as rec:
        view = RunView("vote")
        for event in events:
            await view.handle(event)
    run = next(s for s in rec.steps().values() if s.get("name") == "vote team")
    first, second = kids(rec, run, "run")
    (turn_a,), (turn_b,) = kids(rec, first, "llm"), kids(rec, second, "llm")
    assert turn_a["output"] == "Alpha \n\none." and turn_b["output"] == "Beta \n\ntwo."
    (tool_a,), (tool_b,) = kids(rec, turn_a, "tool"), kids(rec, turn_b, "tool")
    assert "3*4" in tool_a["input"] and tool_a["output"] == "```output\n12 (a)\n```"
    assert "6*2" in tool_b["input"] and tool_b["output"] == "```output\n12 (b)\n```"
    # the step's input (shown above its children) lists the attempts while it runs and after; at the end, its
    # output has each attempt's answer and the decision
    shown = [d.get("input") for e, d in rec.events if e in ("new_message", "update_message") and d["id"] == run["id"]]
    assert "Attempts: 1. solo · a, 2. solo · b" in shown
    assert run["input"] == "Attempts: 1. solo · a, 2. solo · b" and run["showInput"]
    assert "Attempts:" not in run["output"]
    assert run["output"].startswith("2 attempts") and "- Attempt 2: **12** ✅ (approved)" in run["output"]
    assert len(rec.messages()) == 1  # one final message: an attempt's end is a summary on its step
    assert "**Decision:** unanimous" in rec.messages()[0]["output"]


async def test_a_tie_shows_the_adjudicators_turn_and_reason() -> None:
    scripts = {"m0": ScriptedModels({"solo": ["FINAL ANSWER: north"]}),
               "m1": ScriptedModels({"solo": ["FINAL ANSWER: south"]}),
               "adjudicator": ScriptedModels({"adjudicator": ["Candidate 1 has the source.\nAPPROVED\nFINAL ANSWER: north"]})}
    with chainlit_session() as rec:
        await render(vote_team(["a", "b"]), scripts, rec)
    run = next(s for s in rec.steps().values() if s.get("name") == "vote team")
    (adjudicator,) = [s for s in kids(rec, run, "llm")]
    assert adjudicator["name"] == "adjudicator — turn 1" and adjudicator["metadata"]["agent"] == "adjudicator"
    assert "Candidate 1 has the source." in adjudicator["output"]
    text = rec.messages()[-1]["output"]
    assert text.startswith("## ✅ Final answer: north")
    assert "**Decision:** adjudicated" in text
    assert "**The adjudicator's reason:**\n\n> Candidate 1 has the source\\." in text
    assert "- **north**: 1 vote (attempt 1" in text and "- **south**: 1 vote (attempt 2" in text


async def test_an_escalation_is_a_step_between_the_attempts_and_the_table_marks_it() -> None:
    scripts = {"m0": ScriptedModels({"solo": ["I think it is 7.\nFINAL ANSWER: 7"]}),
               "m1": ScriptedModels({"solo": tool_then_answer("4")})}
    with chainlit_session() as rec:
        await render(escalate_team(), scripts, rec)
    run = next(s for s in rec.steps().values() if s.get("name") == "escalate team")
    children = kids(rec, run)
    assert [c["name"] for c in children] == ["Attempt 1 · solo · cheap", "Escalating", "Attempt 2 · solo · strong · escalation"]
    assert "appears in no tool result" in children[1]["output"]
    assert "Answer: **4** ✅ approved" in children[2]["output"] and "Answer: **7**" in children[0]["output"]
    text = rec.messages()[-1]["output"]
    assert "| 1 | solo · cheap \\(first\\) | 7 | ✅ yes | approved |" in text
    assert "| 2 | solo · strong \\(escalation\\) | 4 | ✅ yes | approved |" in text
    assert "**Answers:**\n- **7**: 1 vote (attempt 1" in text and "Votes" not in text
    assert "**Decision:** escalated" in text


async def test_a_key_in_an_attempts_streamed_text_never_reaches_the_page() -> None:
    secret = "sk-proj-strategyVIEWsecret0123456789"
    register_secrets([secret])
    with chainlit_session() as rec:
        view = RunView("vote")
        shown: list[ev.Event] = [
            ev.RunStarted("r", "q", "vote", ["1. solo"]), ev.AttemptStarted(1, "solo", "solo", "vote"),
            ev.InAttempt(1, ev.TurnStarted("solo", 1)),
            ev.InAttempt(1, ev.Token("solo", "key " + secret[:12])), ev.InAttempt(1, ev.Token("solo", secret[12:] + " end")),
            ev.InAttempt(1, ev.TurnEnded("solo", 1, "key " + secret + " end", 1, 1)),
        ]
        for event in shown:
            await view.handle(event)
    assert secret not in str(rec.events) and secret[12:] not in str(rec.events)


def test_a_single_runs_final_message_has_no_strategy_sections() -> None:
    single = final_answer_text(Result(question="q", answer="4", raw_answer="4", approved=True, stop_reason="approved",
                                      stop_detail="approved by critic", duration_s=1.0))
    assert "approved by critic" in single
    assert "Attempts" not in single and "Decision" not in single and "Votes" not in single


async def test_an_attempt_cut_off_by_the_strategys_end_has_its_open_steps_closed() -> None:
    stopped = Result(question="q", answer="", raw_answer=None, approved=False, stop_reason="cancelled",
                     stop_detail="stopped by the user", duration_s=1.0, strategy="vote",
                     decision=Decision("none", "no attempt produced an answer (cancelled)"))
    events: list[ev.Event] = [
        ev.RunStarted("r", "q", "vote", ["1. solo"]), ev.AttemptStarted(1, "solo · a", "solo", "vote"),
        ev.InAttempt(1, ev.RunStarted("r.1", "q", "solo", ["solo"])), ev.InAttempt(1, ev.TurnStarted("solo", 1)),
        ev.InAttempt(1, ev.ToolCall("solo", "c1", "read_page", '{"url": "http://127.0.0.1/x"}')),
        ev.Decided(Decision("none", "no attempt produced an answer (cancelled)"), ""), ev.RunFinished(stopped),
    ]
    with chainlit_session() as rec:
        view = RunView("vote")
        for event in events:
            await view.handle(event)
    run = next(s for s in rec.steps().values() if s.get("name") == "vote team")
    (attempt,) = kids(rec, run, "run")
    (turn,) = kids(rec, attempt, "llm")
    (tool_step,) = kids(rec, turn, "tool")
    assert turn["output"].endswith("_(stopped)_") and turn["end"]
    assert "interrupted" in tool_step["output"] and tool_step["end"]
    assert "Ended before it finished." in attempt["output"] and attempt["end"]
    final = rec.messages()[-1]["output"]
    assert final.startswith("## ❌ No answer") and "**Decision:** none" in final


def test_the_welcome_names_a_strategys_attempts_and_their_models() -> None:
    from config.settings import Settings
    from teams import load_team
    from ui.chat import describe_team

    settings = Settings(_env_file=None, OPENAI_API_KEY="sk-test-not-a-real-key-0000")  # type: ignore[call-arg]
    text = describe_team(load_team("escalate"), settings)
    assert "escalate: 1. solo · default tier; 2. debate (if needed)" in text
    assert "2.critic" in text and "1.solo" in text  # the models of every attempt's agents
    text = describe_team(load_team("vote"), settings)
    assert "1. solo · openai · plain" in text and "adjudicator" in text
