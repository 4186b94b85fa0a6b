"""Model families as data (models/families.py): capabilities per name, and settings a model does not accept are
dropped with one warning, never sent. The last tests send real requests through the providers to the strict
replicas (tests/fakes/replicas/), which refuse what the real APIs refuse."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from autogen_core.models import UserMessage
from loguru import logger

import models.families as families
from config.settings import Settings
from models.families import UNKNOWN, family_of, plan_request
from models.providers import build_client
from models.spec import ModelSpec
from tests.fakes.replicas import AnthropicReplica, GeminiReplica, OpenAIReplica

HI = [UserMessage(content="Say hi.", source="user")]
KEY = "sk-test-not-a-real-key-0000"


@pytest.fixture
def warnings() -> Iterator[list[str]]:
    families._warned.clear()
    seen: list[str] = []
    sink = logger.add(lambda m: seen.append(m.record["message"]), level="WARNING")
    yield seen
    logger.remove(sink)
    families._warned.clear()


def make_settings(**values: Any) -> Settings:
    return Settings(_env_file=None, **values)  # type: ignore[call-arg]


@pytest.mark.parametrize(
    ("model", "family", "vision", "tools"),
    [
        ("gpt-4.1-mini", "gpt-4.1", True, True),
        ("gpt-4o", "gpt-4o", True, True),
        ("gpt-5-mini", "gpt-5", True, True),
        ("gpt-5.4-mini", "gpt-5.x", True, True),
        ("gpt-6-luna", "gpt-6", True, True),
        ("gpt-6-astra", "gpt-6-astra", True, False),  # no effort "none": no tools on Chat Completions
        ("o4-mini", "o-series", True, True),
        ("o3-mini", "o-series-text", False, True),
        ("claude-sonnet-4-5-20250929", "claude-4", True, True),
        ("claude-opus-4-20250514", "claude-4", True, True),  # a date, not Opus 4.20
        ("claude-sonnet-4-6", "claude-4.6", True, True),
        ("claude-opus-4-7", "claude-4.7+", True, True),
        ("claude-sonnet-5-5", "claude-5", True, True),
        ("claude-haiku-5-5", "claude-haiku-5", True, True),
        ("gemini-3.5-flash", "gemini", True, True),
        ("models/gemini-3.1-pro-preview", "gemini-pro", True, True),
        ("openai/gpt-oss-120b:groq", "gpt-oss", False, True),
        ("Qwen/Qwen3.5-397B-A17B", "qwen-vl", True, True),
        ("qwen2.5:7b", "qwen", False, True),
        ("meta-llama/Llama-3.3-70B-Instruct", "llama", False, True),
        ("deepseek-ai/DeepSeek-V3.2-Exp", "deepseek", False, True),
        ("mistral-small-latest", "mistral", False, True),
        ("HuggingFaceTB/SmolLM3-3B", "smollm", False, True),
    ],
)
def test_the_table_gives_each_name_its_family(model: str, family: str, vision: bool, tools: bool) -> None:
    f = family_of(model)
    assert f.name == family
    info = f.model_info()
    assert info["vision"] is vision and info["function_calling"] is tools
    assert isinstance(info["family"], str)


def test_an_unknown_name_of_a_known_family_gets_that_familys_rules(warnings: list[str]) -> None:
    assert family_of("gpt-5.9-mini") == family_of("gpt-5.4-mini")
    assert family_of("claude-opus-5-2") == family_of("claude-opus-5-5")
    assert family_of("gemini-4.2-flash").name == "gemini"
    assert family_of("gpt-6.3-luna").name == "gpt-6"
    assert warnings == []


def test_an_unknown_family_gets_safe_defaults_and_one_warning(warnings: list[str]) -> None:
    for _ in range(3):
        assert family_of("zorblax-9000") is UNKNOWN
    assert len(warnings) == 1 and "'zorblax-9000' matches no known model family" in warnings[0]
    info = UNKNOWN.model_info()
    assert info["function_calling"] is True and info["vision"] is False
    family_of("another-mystery")
    assert len(warnings) == 2  # once per name


def test_gpt5_and_later_drop_temperature_and_use_max_completion_tokens(warnings: list[str]) -> None:
    plan = plan_request(
        "gpt-5.4-mini", family_of("gpt-5.4-mini"), temperature=0.2, max_output_tokens=2000,
        reasoning_effort="low", verbosity="low", explicit=frozenset({"temperature", "max_output_tokens"}),
    )  # fmt: skip
    assert plan.openai_args() == {"max_completion_tokens": 2000, "reasoning_effort": "low", "verbosity": "low"}
    assert warnings == ["model 'gpt-5.4-mini' does not accept temperature=0.2 (gpt-5.x models take no temperature): the setting is not sent"]  # fmt: skip
    older = plan_request("gpt-4.1", family_of("gpt-4.1"), temperature=None, max_output_tokens=500,
                         reasoning_effort=None, verbosity=None)  # fmt: skip
    assert older.openai_args() == {"temperature": 0.0, "max_tokens": 500}


def test_an_effort_the_model_lacks_is_dropped_with_one_warning(warnings: list[str]) -> None:
    for _ in range(2):
        plan = plan_request("gpt-5.4-mini", family_of("gpt-5.4-mini"), temperature=None, max_output_tokens=None,
                            reasoning_effort="minimal", verbosity=None, explicit=frozenset({"reasoning_effort"}))  # fmt: skip
        assert "reasoning_effort" not in plan.openai_args()
    assert len(warnings) == 1
    assert "'gpt-5.4-mini' does not accept reasoning_effort='minimal'" in warnings[0] and "xhigh" in warnings[0]
    # the original GPT-5 has "minimal" and no "none"
    assert plan_request("gpt-5-mini", family_of("gpt-5-mini"), temperature=None, max_output_tokens=None,
                        reasoning_effort="minimal", verbosity=None).reasoning_effort == "minimal"  # fmt: skip


def test_defaults_a_profile_did_not_set_are_dropped_silently(warnings: list[str]) -> None:
    plan = plan_request("claude-opus-4-7", family_of("claude-opus-4-7"), temperature=0.0, max_output_tokens=None,
                        reasoning_effort=None, verbosity="low", explicit=frozenset())  # fmt: skip
    assert plan.temperature is None and plan.verbosity is None and warnings == []


def test_claude_rules_temperature_thinking_and_room_for_it() -> None:
    opus47 = plan_request("claude-opus-4-7", family_of("claude-opus-4-7"), temperature=0.5, max_output_tokens=None,
                          reasoning_effort="xhigh", verbosity=None)  # fmt: skip
    assert opus47.temperature is None and opus47.thinking == {"type": "adaptive"}
    assert opus47.reasoning_effort == "xhigh" and opus47.max_output_tokens is not None
    assert opus47.max_output_tokens >= 16_000  # not AutoGen's 4096, which adaptive thinking can use up
    sonnet46 = plan_request("claude-sonnet-4-6", family_of("claude-sonnet-4-6"), temperature=0.0,
                            max_output_tokens=None, reasoning_effort="xhigh", verbosity=None)  # fmt: skip
    assert sonnet46.reasoning_effort is None  # 4.6 has no xhigh
    assert sonnet46.temperature == 0.0 and sonnet46.thinking is None
    thinking46 = plan_request("claude-sonnet-4-6", family_of("claude-sonnet-4-6"), temperature=0.0,
                              max_output_tokens=None, reasoning_effort="high", verbosity=None)  # fmt: skip
    assert thinking46.thinking == {"type": "adaptive"} and thinking46.temperature is None  # thinking: temperature 1 only
    haiku55 = plan_request("claude-haiku-5-5", family_of("claude-haiku-5-5"), temperature=None,
                           max_output_tokens=100_000, reasoning_effort=None, verbosity=None)  # fmt: skip
    assert haiku55.thinking == {"type": "adaptive"}  # on by default from 5.x
    assert haiku55.max_output_tokens == family_of("claude-haiku-5-5").max_output  # clamped


def test_a_small_output_budget_on_a_thinking_model_is_flagged(warnings: list[str]) -> None:
    plan = plan_request("claude-haiku-5-5", family_of("claude-haiku-5-5"), temperature=None, max_output_tokens=1024,
                        reasoning_effort=None, verbosity=None, explicit=frozenset({"max_output_tokens"}))  # fmt: skip
    assert plan.max_output_tokens == 1024  # the profile's choice is kept
    assert warnings == ["model 'claude-haiku-5-5' thinks before it answers and its thinking counts against "
                        "max_output_tokens=1024: long answers may be cut short"]  # fmt: skip


def test_team_profiles_take_the_new_settings_and_the_max_tokens_alias() -> None:
    spec = ModelSpec.model_validate({"max_tokens": 900, "reasoning_effort": "none", "verbosity": "low", "tier": "strong"})
    assert spec.max_output_tokens == 900 == spec.max_tokens and "max_output_tokens" in spec.model_fields_set
    with pytest.raises(ValueError, match="reasoning_effort"):
        ModelSpec.model_validate({"reasoning_effort": "extreme"})


# --- through the providers, against the replicas ---------------------------------------------------------------


async def test_openai_settings_reach_the_api_in_the_form_each_family_accepts(warnings: list[str]) -> None:
    with OpenAIReplica({"default": ["a", "b", "c"]}, api_key=KEY) as api:
        settings = make_settings(OPENAI_API_KEY=KEY, OPENAI_BASE_URL=api.url, LLM_PROVIDER="openai")
        for spec in (
            ModelSpec(model="gpt-4.1-mini", temperature=0.3, max_output_tokens=700),
            ModelSpec(model="gpt-5-mini", temperature=0.3, max_output_tokens=700, reasoning_effort="minimal", verbosity="low"),
            ModelSpec(model="gpt-5.4-mini", reasoning_effort="minimal", verbosity="high"),
        ):  # fmt: skip
            await build_client(spec, settings, agent="a").create(HI)
        api.assert_clean()
    old, gpt5, gpt54 = (r.body for r in api.accepted)
    assert old["temperature"] == 0.3 and old["max_tokens"] == 700
    assert "temperature" not in gpt5 and gpt5["max_completion_tokens"] == 700
    assert gpt5["reasoning_effort"] == "minimal" and gpt5["verbosity"] == "low"
    assert "reasoning_effort" not in gpt54 and gpt54["verbosity"] == "high"
    assert len(warnings) == 2  # gpt-5-mini's temperature, gpt-5.4-mini's "minimal"


async def test_usage_is_asked_for_on_streamed_replies_only() -> None:
    with OpenAIReplica({"default": ["plain", "streamed"]}, api_key=KEY) as api:
        settings = make_settings(OPENAI_API_KEY=KEY, OPENAI_BASE_URL=api.url)
        client = build_client(ModelSpec(model="gpt-5.4-mini"), settings, agent="a")
        assert (await client.create(HI)).content == "plain"
        text = "".join([c async for c in client.create_stream(HI) if isinstance(c, str)])
        assert text == "streamed"
        api.assert_clean()  # `stream_options` without `stream` is a 400
    plain, streamed = (r.body for r in api.accepted)
    assert "stream_options" not in plain and streamed["stream_options"] == {"include_usage": True}


async def test_gemini_drops_what_its_endpoint_refuses(warnings: list[str]) -> None:
    with GeminiReplica({"default": ["ok"]}, api_key=KEY) as api:
        settings = make_settings(GEMINI_API_KEY=KEY, GEMINI_BASE_URL=api.url)
        spec = ModelSpec(model="gemini-3.1-pro-preview", verbosity="low", reasoning_effort="none", max_output_tokens=800)
        assert (await build_client(spec, settings, agent="a").create(HI)).content == "ok"
        api.assert_clean()
    body = api.accepted[0].body
    assert "verbosity" not in body and "reasoning_effort" not in body and body["max_tokens"] == 800
    assert any("'gemini-3.1-pro-preview' does not accept reasoning_effort='none'" in w for w in warnings)


async def test_claude_thinking_and_effort_reach_the_messages_api() -> None:
    with AnthropicReplica({"default": ["one", "two", "three"]}, api_key=KEY) as api:
        settings = make_settings(ANTHROPIC_API_KEY=KEY, ANTHROPIC_BASE_URL=api.url)
        for spec in (
            ModelSpec(model="claude-sonnet-4-6", reasoning_effort="high"),
            ModelSpec(model="claude-opus-4-8", temperature=0.2, reasoning_effort="low"),
            ModelSpec(model="claude-sonnet-4-5", temperature=0.2, reasoning_effort="low", max_output_tokens=1000),
        ):
            await build_client(spec, settings, agent="a").create(HI)
        api.assert_clean()
    s46, o48, s45 = (r.body for r in api.accepted)
    assert s46["thinking"] == {"type": "adaptive"} and s46["output_config"] == {"effort": "high"}
    assert "temperature" not in s46 and s46["max_tokens"] >= 16_000
    assert "temperature" not in o48 and o48["output_config"] == {"effort": "low"}
    assert s45["temperature"] == 0.2 and s45["max_tokens"] == 1000 and "output_config" not in s45


async def test_a_name_autogen_does_not_know_still_builds_and_is_accepted(warnings: list[str]) -> None:
    """AutoGen 0.7.5 raises "model_info is required" for names it lacks (gpt-5.1, every Claude 4.5+); the family
    table always supplies it."""
    with OpenAIReplica({"default": ["one", "two"]}, api_key=KEY) as api:
        api.add_model("gpt-5.9-mini", like="gpt-5.6-luna")
        api.add_model("zorblax-9000", like="gpt-4.1-mini")
        settings = make_settings(OPENAI_API_KEY=KEY, OPENAI_BASE_URL=api.url)
        for name in ("gpt-5.9-mini", "zorblax-9000"):
            client = build_client(ModelSpec(model=name), settings, agent="a")
            await client.create(HI)
        api.assert_clean()
    assert client.model_info["function_calling"] is True and client.model_info["vision"] is False
    assert [w for w in warnings if "matches no known model family" in w] == [
        "model 'zorblax-9000' matches no known model family: assuming a text-only chat model with tool calls, "
        "temperature and max_tokens; declare `capabilities:` in the team YAML if that is wrong"
    ]
