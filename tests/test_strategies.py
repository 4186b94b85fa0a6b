"""Vote and escalate strategies: attempts side by side, one answer chosen, nothing finished ever lost."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from config.settings import Settings
from teams import events as ev
from teams.loader import TeamConfigError, available_teams, load_team, parse_team
from teams.preflight import model_choices
from teams.result import Attempt
from teams.strategies import StrategyRun, start_run
from teams.strategies.attempts import plan_attempts
from teams.strategies.grouping import answer_key, group_answers, majority
from tests.fakes.function_model import Call, Reply, ScriptedModels, Slow, tool
from tests.fakes.strategies import SOLO, PerAttempt, run_strategy, strategy


def solo_says(*answers: str) -> dict[int, ScriptedModels]:
    return {i: ScriptedModels({"solo": [f"I checked.\nFINAL ANSWER: {a}"]}) for i, a in enumerate(answers, 1)}


def adjudicator(reply: str) -> ScriptedModels:
    return ScriptedModels({"adjudicator": [reply]})


# --- grouping ---------------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("a", "b", "same"),
    [
        ("4,600", "4600", True),
        ("$4,600", "4600.0", True),
        ("12%", "12", True),
        ("Paris", "paris.", True),
        ("New York, NY", "new york,NY", True),
        ("1, 2, 3", "1,2,3", True),
        ("1, 2, 3", "3, 2, 1", False),  # GAIA compares lists in order
        ("4600", "4500", False),
        ("12 km", "12", False),
        ("St. Petersburg", "Saint Petersburg", False),
    ],
)
def test_answers_group_as_the_gaia_scorer_compares_them(a: str, b: str, same: bool) -> None:
    assert (answer_key(a) == answer_key(b)) is same


def attempt(number: int, answer: str, approved: bool = True) -> Attempt:
    return Attempt(number, f"a{number}", "solo", "vote", answer, answer, approved, "approved", 1.0)


def test_majority_needs_a_unique_top_group_above_the_threshold() -> None:
    groups = group_answers([attempt(1, "7"), attempt(2, "8"), attempt(3, "7.0")])
    assert [(g.answer, g.attempts) for g in groups] == [("7", [1, 3]), ("8", [2])]
    assert majority(groups, 3, 0.5) is groups[0]
    assert majority(groups, 3, 0.7) is None  # 2 of 3 is not above 70%
    tie = group_answers([attempt(1, "7"), attempt(2, "8")])
    assert majority(tie, 2, 0.4) is None
    # attempts without an answer count as votes nobody won: 2 of 5 is no majority
    assert majority(group_answers([attempt(1, "7"), attempt(2, "7"), attempt(3, "")]), 5, 0.5) is None


def test_a_group_shows_the_approved_spelling() -> None:
    groups = group_answers([attempt(1, "4600", approved=False), attempt(2, "4,600", approved=False), attempt(3, "$4600")])
    assert groups[0].answer == "$4600" and groups[0].approved == 1


# --- vote --------------------------------------------------------------------------------------------------
async def test_a_majority_wins_and_every_attempt_is_recorded() -> None:
    models = PerAttempt(solo_says("4600", "4,600", "4500"))
    events, result = await run_strategy(strategy("vote", [{}, {}, {}]), models)
    assert result.answer == "4600" and result.approved and result.stop_reason == "majority"
    assert result.strategy == "vote" and result.decision is not None and result.decision.method == "majority"
    assert "'4600' 2, '4500' 1 of 3" in result.decision.reason
    assert [(a.number, a.answer) for a in result.attempts] == [(1, "4600"), (2, "4600"), (3, "4500")]
    assert {a.stage for a in result.attempts} == {"vote"}
    # each attempt's own events come through, tagged with its number
    inner = [e for e in events if isinstance(e, ev.InAttempt)]
    assert {e.attempt for e in inner} == {1, 2, 3}
    assert sum(isinstance(e.event, ev.RunFinished) for e in inner) == 3
    assert [type(e) for e in events[:4]] == [ev.RunStarted, ev.AttemptStarted, ev.AttemptStarted, ev.AttemptStarted]
    assert isinstance(events[-2], ev.Decided) and isinstance(events[-1], ev.RunFinished)
    # usage of every attempt, under its number; no adjudicator was needed
    assert set(result.usage) == {"1.solo", "2.solo", "3.solo"}
    assert result.prompt_tokens == sum(a.prompt_tokens for a in result.attempts) > 0
    models.assert_complete()


async def test_unanimous_attempts_are_recorded_as_such() -> None:
    _, result = await run_strategy(strategy("vote", [{}, {}]), PerAttempt(solo_says("Paris", "paris")))
    assert result.decision is not None and result.decision.method == "unanimous" and result.answer == "Paris"


async def test_a_tie_goes_to_the_adjudicator_which_sees_each_answer_with_its_evidence() -> None:
    def researched(call: Call) -> Reply:
        if call.tools and not call.last_tool_results:
            return tool("calculator", expression="1200 + 3400")
        return "The calculator says 4600.\nFINAL ANSWER: 4600"

    attempts = {1: ScriptedModels({"solo": [researched, researched]}), **{k: v for k, v in solo_says("", "4500").items() if k == 2}}
    judge = adjudicator("Candidate 1 is backed by the calculator's output.\nAPPROVED\nFINAL ANSWER: 4600")
    models = PerAttempt(attempts, judge)
    events, result = await run_strategy(strategy("vote", [{}, {}]), models)
    assert result.answer == "4600" and result.approved and result.stop_reason == "adjudicated"
    assert result.decision is not None and result.decision.method == "adjudicated"
    assert "backed by the calculator" in (result.decision.adjudicator or "")
    brief = judge.calls_for("adjudicator")[0].question
    assert "Candidate 1: 4600" in brief and "Candidate 2: 4500" in brief
    assert "excerpt: 4600" in brief  # the calculator's result, shown as evidence
    assert "no tool result or program output of these attempts contains it" in brief  # 4500 has none
    assert "adjudicator" in result.usage
    turns = [e for e in events if isinstance(e, ev.TurnEnded) and e.agent == "adjudicator"]
    assert len(turns) == 1 and "APPROVED" in turns[0].text
    models.assert_complete()


async def test_an_adjudicator_that_rejects_all_keeps_the_largest_groups_answer_unapproved() -> None:
    models = PerAttempt(solo_says("1", "2"), adjudicator("REJECTED: neither number appears in any source."))
    _, result = await run_strategy(strategy("vote", [{}, {}]), models)
    assert result.stop_reason == "rejected" and not result.approved and result.provisional
    assert result.answer == "1"  # ties go to the earlier attempt
    assert result.decision is not None and "rejected every answer" in result.decision.reason


async def test_an_adjudicator_reply_naming_no_candidate_decides_nothing() -> None:
    models = PerAttempt(solo_says("1", "2"), adjudicator("APPROVED\nFINAL ANSWER: 3"))
    _, result = await run_strategy(strategy("vote", [{}, {}]), models)
    assert result.stop_reason == "plurality" and result.answer == "1" and not result.approved
    assert result.decision is not None and "no attempt gave" in result.decision.reason


async def test_a_failing_adjudicator_never_loses_the_attempts_answers() -> None:
    models = PerAttempt(solo_says("1", "2"), adjudicator(RuntimeError("provider down")))  # type: ignore[arg-type]
    _, result = await run_strategy(strategy("vote", [{}, {}]), models)
    assert result.answer == "1" and result.stop_reason == "plurality"
    assert result.decision is not None and "adjudicator failed" in result.decision.reason


async def test_without_an_adjudicator_a_tie_keeps_the_plurality() -> None:
    _, result = await run_strategy(strategy("vote", [{}, {}], adjudicator=None), PerAttempt(solo_says("1", "2")))
    assert result.stop_reason == "plurality" and result.answer == "1" and not result.approved


async def test_attempts_run_concurrently() -> None:
    slow = {i: ScriptedModels({"solo": [Slow(0.5, "FINAL ANSWER: 9")]}) for i in (1, 2, 3)}
    start = asyncio.get_running_loop().time()
    _, result = await run_strategy(strategy("vote", [{}, {}, {}]), PerAttempt(slow))
    assert result.answer == "9"
    assert asyncio.get_running_loop().time() - start < 1.2  # three 0.5 s attempts, not 1.5 s in a row


async def test_cancelling_a_vote_keeps_the_answers_already_given() -> None:
    models = PerAttempt({1: ScriptedModels({"solo": ["FINAL ANSWER: 5"]}),
                         2: ScriptedModels({"solo": [Slow(30, "FINAL ANSWER: 6")]})})
    run = start_run("How many?", strategy("vote", [{}, {}]), settings=Settings(_env_file=None),  # type: ignore[call-arg]
                    client_factory=models.factory)
    assert isinstance(run, StrategyRun)
    async for event in run.events():
        if isinstance(event, ev.InAttempt) and isinstance(event.event, ev.RunFinished):
            run.cancel()
    assert run.result is not None
    assert run.result.answer == "5" and run.result.stop_reason == "cancelled"
    assert [a.stop_reason for a in run.result.attempts] == ["approved", "cancelled"]


# --- escalate ----------------------------------------------------------------------------------------------
def checked_solo(answer: str) -> ScriptedModels:
    """A solo attempt whose answer comes from a tool result (so the evidence check passes)."""
    a, b = answer.split("+") if "+" in answer else (answer, "0")

    def step(call: Call) -> Reply:
        if call.tools and not call.last_tool_results:
            return tool("calculator", expression=f"{a} + {b}")
        return f"FINAL ANSWER: {int(a) + int(b)}"

    return ScriptedModels({"solo": [step, step]})


async def test_escalate_stops_at_the_first_attempt_when_it_passes_its_checks() -> None:
    cfg = strategy("escalate", [{}], escalate_to={})
    models = PerAttempt({1: checked_solo("40+2"), 2: ScriptedModels({})})
    events, result = await run_strategy(cfg, models)
    assert result.answer == "42" and result.decision is not None and result.decision.method == "first"
    assert not any(isinstance(e, ev.Escalating) for e in events)
    assert [a.stage for a in result.attempts] == ["first"]
    models.assert_complete()  # the escalation never called a model


async def test_escalate_runs_the_escalation_when_the_first_answer_has_no_evidence() -> None:
    cfg = strategy("escalate", [{}], escalate_to={})
    models = PerAttempt({1: ScriptedModels({"solo": ["I recall it is 41.\nFINAL ANSWER: 41"]}), 2: checked_solo("40+2")})
    events, result = await run_strategy(cfg, models)
    escalating = [e for e in events if isinstance(e, ev.Escalating)]
    assert len(escalating) == 1 and "appears in no tool result" in escalating[0].reason
    assert result.answer == "42" and result.decision is not None and result.decision.method == "escalated"
    assert [(a.stage, a.answer) for a in result.attempts] == [("first", "41"), ("escalated", "42")]
    models.assert_complete()


async def test_escalate_when_limits_what_escalates() -> None:
    cfg = strategy("escalate", [{}], escalate_to={}, escalate_when=["disagree", "no_answer"])
    models = PerAttempt({1: ScriptedModels({"solo": ["FINAL ANSWER: 41"]}), 2: ScriptedModels({})})
    _, result = await run_strategy(cfg, models)
    assert result.answer == "41" and result.decision is not None and result.decision.method == "first"


async def test_disagreeing_first_attempts_escalate() -> None:
    cfg = strategy("escalate", [{}, {}], escalate_to={}, escalate_when=["disagree"])
    models = PerAttempt({1: ScriptedModels({"solo": ["FINAL ANSWER: 1"]}), 2: ScriptedModels({"solo": ["FINAL ANSWER: 2"]}),
                         3: ScriptedModels({"solo": ["FINAL ANSWER: 2"]})})
    events, result = await run_strategy(cfg, models)
    assert any(isinstance(e, ev.Escalating) and "disagree" in e.reason for e in events)
    assert result.answer == "2" and [a.stage for a in result.attempts] == ["first", "first", "escalated"]


async def test_the_budget_cap_stops_the_escalation_and_keeps_an_answer() -> None:
    calls = iter(range(1000))

    def busy(call: Call) -> Reply:  # new evidence every call: only the budget can stop it early
        return tool("calculator", expression=f"{next(calls)} + 1") if call.tools else "Still checking.\nNEXT: solo"

    looping = ScriptedModels({"solo": [busy] * 40})
    cfg = strategy("escalate", [{}], escalate_to={}, budget_tokens=3_000)
    models = PerAttempt({1: ScriptedModels({"solo": ["FINAL ANSWER: 41"]}), 2: looping})
    _, result = await run_strategy(cfg, models)
    escalated = result.attempts[-1]
    assert escalated.stage == "escalated" and escalated.stop_reason == "budget"
    assert result.answer == "41" and not result.approved  # the first answer survives, unapproved
    assert result.stop_reason == "budget"
    # it stopped near the cap, not after the 40 scripted calls
    assert result.prompt_tokens + result.completion_tokens < 3_000 + 2 * result.attempts[0].prompt_tokens + 1_000


async def test_no_escalation_once_the_budget_is_spent() -> None:
    cfg = strategy("escalate", [{}], escalate_to={}, budget_tokens=10)
    models = PerAttempt({1: ScriptedModels({"solo": ["FINAL ANSWER: 41"]}), 2: ScriptedModels({})})
    events, result = await run_strategy(cfg, models)
    assert not any(isinstance(e, ev.Escalating) for e in events)
    assert result.answer == "41" and result.stop_reason == "budget" and "budget" in result.stop_detail


# --- attempts: what differs between them ------------------------------------------------------------------
def test_attempt_overrides_reach_every_model_and_agent() -> None:
    debate = load_team("debate")
    cfg = parse_team({"name": "v", "strategy": {"kind": "vote", "attempts": [
        {"team": "debate", "tier": "strong", "temperature": 0.9, "instructions": "Check twice."},
        {"team": "debate", "provider": ["anthropic", "gemini", "openai"]},
    ]}})
    settings = Settings(_env_file=None, gemini_api_key="g-test")  # type: ignore[call-arg]
    first, second = plan_attempts(cfg, settings)
    assert {s.tier for s in first.cfg.models.values()} == {"strong"}
    assert {s.temperature for s in first.cfg.models.values()} == {0.9}
    assert all(a.instructions and a.instructions.endswith("Check twice.") for a in first.cfg.agents)
    assert {s.provider for s in second.cfg.models.values()} == {"gemini"}  # the first configured of the list
    assert second.cfg.models["strong"].tier == debate.models["strong"].tier  # nothing else changed
    assert "gemini" in second.label and "strong tier" in first.label
    assert {c.agent for c in model_choices(cfg, settings)} >= {"1.planner", "2.critic", "adjudicator"}


def test_a_provider_list_with_nothing_configured_falls_back_to_auto() -> None:
    cfg = parse_team({"name": "v", "strategy": {"kind": "vote", "attempts": [{"team": "solo", "provider": ["anthropic"]},
                                                                             {"team": "solo"}]}})
    planned = plan_attempts(cfg, Settings(_env_file=None))  # type: ignore[call-arg]
    assert {s.provider for s in planned[0].cfg.models.values()} == {"auto"}


def test_repeat_expands_to_numbered_attempts() -> None:
    cfg = parse_team({"name": "v", "strategy": {"kind": "vote", "attempts": [{"team": "solo", "repeat": 3}]}})
    assert [p.number for p in plan_attempts(cfg, Settings(_env_file=None))] == [1, 2, 3]  # type: ignore[call-arg]


# --- configs -----------------------------------------------------------------------------------------------
def test_shipped_strategy_teams_load_and_are_whole_on_their_own() -> None:
    names = {p.stem for p in available_teams()}
    assert {"vote", "vote-debate", "escalate"} <= names
    for name in ("vote", "vote-debate", "escalate"):
        cfg = load_team(name)
        assert cfg.strategy.kind in ("vote", "escalate")
        # a run dir records model_dump(); it must load without the team files it named
        again = parse_team(cfg.model_dump(mode="json"), "run.json")
        assert again == cfg


@pytest.mark.parametrize(
    ("data", "path", "words"),
    [
        ({"strategy": {"kind": "vote", "attempts": [{"team": "solo"}]}}, "strategy.attempts", "at least two attempts"),
        ({"strategy": {"kind": "vote", "attempts": [{"team": "nosuch"}, {"team": "solo"}]}}, "strategy.attempts[0].team",
         "file not found"),
        ({"strategy": {"kind": "escalate", "attempts": [{"team": "solo"}]}}, "strategy.escalate_to", "needs the attempt"),
        ({"strategy": {"kind": "vote", "attempts": [{"team": "vote"}, {"team": "solo"}]}}, "strategy.attempts[0].team",
         "itself a 'vote' strategy"),
        ({"strategy": {"kind": "vote", "attempts": [{}, {}]}}, "strategy.attempts[0].team", "no `agents:`"),
        ({"strategy": {"kind": "vote", "attempts": [{"team": "solo", "models": {"nosuch": {}}}, {"team": "solo"}]}},
         "strategy.attempts[0].models.nosuch", "no model profile"),
        ({"strategy": {"kind": "vote", "attempts": [{"team": "solo", "provider": ["nosuch"]}, {"team": "solo"}]}},
         "strategy.attempts[0].provider", "unknown provider"),
        ({"strategy": {"kind": "vote", "attempts": [{"team": "solo"}, {"team": "solo"}], "adjudicator": {"model": "x"}}},
         "strategy.adjudicator.model", "unknown model profile 'x'"),
        ({}, "agents", "at least one agent"),
    ],
)
def test_a_broken_strategy_names_what_is_wrong(data: dict[str, Any], path: str, words: str) -> None:
    with pytest.raises(TeamConfigError) as caught:
        parse_team({"name": "broken", **data}, "x.yaml")
    text = str(caught.value)
    assert path in text and words in text, text


def test_an_attempt_team_is_found_beside_the_file(tmp_path: Any) -> None:
    import yaml

    (tmp_path / "mine.yaml").write_text(yaml.safe_dump({**SOLO, "name": "mine"}))
    (tmp_path / "v.yaml").write_text(yaml.safe_dump({"name": "v", "strategy": {"kind": "vote", "attempts": [
        {"team": "mine"}, {"team": "solo"}]}}))
    cfg = load_team(tmp_path / "v.yaml")
    names = [a.team.name for a in cfg.strategy.attempts]  # type: ignore[union-attr]
    assert names == ["mine", "solo"]


def test_a_single_team_runs_as_before() -> None:
    from teams.runner import Run

    assert type(start_run("q", load_team("debate"))) is Run
    with pytest.raises(ValueError, match="strategy 'single'"):
        StrategyRun("q", load_team("debate"))
