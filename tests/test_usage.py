"""Costs add up one way and show one way, wherever they appear."""

from __future__ import annotations

from dataclasses import dataclass

from models.usage import AgentUsage, UsageLedger, format_cost, total_cost
from teams.result import Result


@dataclass
class Spent:
    prompt_tokens: int
    completion_tokens: int
    cost_usd: float | None


def test_what_made_no_model_call_costs_nothing_and_one_unknown_price_makes_the_total_unknown() -> None:
    assert total_cost([Spent(100, 10, 0.25), Spent(0, 0, None), Spent(50, 5, 0.5)]) == 0.75
    assert total_cost([Spent(100, 10, 0.25), Spent(3, 0, None)]) is None
    assert total_cost([]) == 0.0


def test_a_ledger_an_agent_and_a_result_agree() -> None:
    ledger = UsageLedger()
    ledger.add("planner", "openai", "gpt-4.1", 1000, 100)
    ledger.add("critic", "openai", "no-such-model-xyz", 1000, 100)
    by_agent = ledger.by_agent()
    assert by_agent["planner"].cost_usd and by_agent["planner"].cost_usd > 0
    assert by_agent["critic"].cost_usd is None and by_agent["critic"].as_dict()["cost_usd"] is None
    result = Result("q", "a", "a", True, "approved", "", 1.0, usage=by_agent)
    assert result.cost_usd is None and ledger.cost_usd is None
    priced = Result("q", "a", "a", True, "approved", "", 1.0, usage={"planner": by_agent["planner"]})
    assert priced.cost_usd == round(by_agent["planner"].cost_usd, 6)
    idle = AgentUsage(calls=0, cost_usd=None)  # a selector that was never asked
    assert Result("q", "a", "a", True, "approved", "", 1.0, usage={"p": by_agent["planner"], "s": idle}).cost_usd is not None


def test_one_format() -> None:
    assert [format_cost(c) for c in (None, 0, 0.00312, 1.2449)] == ["cost unknown", "no cost", "≈ $0.0031", "≈ $1.24"]
