"""Costs add up one way and show one way, wherever they appear."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from decimal import Decimal

import pytest

from cli.console import summary_line
from models.prices import Price, genai_prices_version, quote
from models.usage import AgentUsage, UsageLedger, cost_line, estimate_cost, format_cost, total_cost
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


# --- prices -----------------------------------------------------------------------------------------------------
def test_late_2026_models_are_priced_per_million_tokens() -> None:
    # 1,000 tokens in and out: the per-million price / 1000 (below every long-context tier)
    assert estimate_cost("openai", "gpt-6-luna", 1000, 1000) == pytest.approx((0.10 + 0.50) / 1000)
    assert estimate_cost("openai", "gpt-5.6-sol", 1000, 1000) == pytest.approx((4 + 20) / 1000)
    assert estimate_cost("anthropic", "claude-sonnet-5-5", 1000, 1000) == pytest.approx((2 + 10) / 1000)
    assert estimate_cost("gemini", "gemini-3.5-flash", 1000, 1000) == pytest.approx((1.50 + 9) / 1000)
    assert estimate_cost("gemini", "models/gemini-3.5-flash", 1000, 1000) == pytest.approx((1.50 + 9) / 1000)


def test_every_providers_tier_models_have_a_price() -> None:
    from models.providers import REGISTRY

    for name, provider in REGISTRY.items():
        for tier, model in provider.tiers.items():
            if name != "local":
                assert quote(name, model, 1000, 1000).cost_usd, f"{name} {tier} tier {model}: no price"


def test_hf_is_priced_at_the_router_provider_or_at_the_most_expensive_one_when_the_router_picks() -> None:
    groq = estimate_cost("hf", "openai/gpt-oss-120b:groq", 1000, 1000)
    assert groq == pytest.approx((0.15 + 0.75) / 1000)
    picked = estimate_cost("hf", "openai/gpt-oss-120b", 1000, 1000)
    cheapest = estimate_cost("hf", "openai/gpt-oss-120b:cheapest", 1000, 1000)
    assert picked is not None and cheapest is not None and cheapest < groq < picked
    assert estimate_cost("hf", "openai/gpt-oss-120b:fastest", 1000, 1000) == picked
    unknown_provider = quote("hf", "openai/gpt-oss-120b:nowhere-ai", 1000, 1000)
    assert unknown_provider.cost_usd is None and "on router provider nowhere-ai" in str(unknown_provider.reason)


def test_an_unknown_price_says_why_and_what_to_do_everywhere_the_cost_is_shown() -> None:
    ledger = UsageLedger()
    ledger.add("planner", "openai", "gpt-6-luna", 1000, 100)
    ledger.add("critic", "hf", "Qwen/Qwen9-1T", 1000, 100)
    ledger.add("critic", "hf", "Qwen/Qwen9-1T", 500, 50)
    reasons = ledger.unknown_prices()
    assert reasons == [reasons[0]] and reasons[0].startswith("no price known for hf/Qwen/Qwen9-1T: ")
    assert "OVERRIDES in models/prices.py" in reasons[0] and f"genai-prices {genai_prices_version()}" in reasons[0]
    usage = ledger.by_agent()
    assert usage["critic"].unknown_prices == reasons and usage["critic"].as_dict()["unknown_prices"] == reasons
    assert "unknown_prices" not in usage["planner"].as_dict()
    result = Result("q", "a", "a", True, "approved", "", 1.0, usage=usage)
    line = summary_line(result)
    assert "\n" not in line and line.endswith(f"· cost unknown ({reasons[0]})")
    assert cost_line(0.5, reasons) == "≈ $0.50" and cost_line(None) == "cost unknown"
    assert cost_line(None, ["a", "b", "c"]) == "cost unknown (a; +2 more)"


def test_local_models_cost_nothing_and_an_unpriced_compatible_server_is_explained() -> None:
    assert format_cost(estimate_cost("local", "Qwen/Qwen2.5-1.5B-Instruct", 1000, 1000)) == "no cost"
    ollama = quote("openai-compatible", "qwen2.5:7b", 1000, 1000)
    assert ollama.cost_usd is None and "self-hosted server costs nothing" in str(ollama.reason)


def test_a_dated_override_prices_a_model_genai_prices_lacks_and_wins_over_it(monkeypatch: pytest.MonkeyPatch) -> None:
    assert quote("openai", "gpt-7-nova", 1000, 1000).cost_usd is None
    table = {
        ("openai", "gpt-7-nova"): Price(Decimal("3"), Decimal("12"), "https://example.invalid/pricing", date(2026, 12, 1)),
        ("openai", "gpt-6-luna"): Price(Decimal("1"), Decimal("1"), "https://example.invalid/pricing", date(2026, 12, 1)),
    }
    monkeypatch.setattr("models.prices.OVERRIDES", table)
    assert estimate_cost("openai", "gpt-7-nova", 1_000_000, 1_000_000) == pytest.approx(15.0)
    assert estimate_cost("openai", "gpt-6-luna", 1000, 1000) == pytest.approx(0.002)
