"""Model providers: choosing one, its credentials, and retries against real HTTP servers."""

from __future__ import annotations

from typing import Any

import pytest
from autogen_core.models import SystemMessage, UserMessage

from config.settings import Settings
from models.client import ManagedClient, ModelCallError
from models.providers import (
    NOTHING_CONFIGURED,
    PROVIDERS,
    REGISTRY,
    ProviderNotConfigured,
    build_client,
    resolve_model,
    resolve_provider,
)
from models.spec import ModelSpec
from models.usage import UsageLedger
from tests.conftest import settings_for
from tests.fakes.replicas import AnthropicReplica

HI = [UserMessage(content="Say hi.", source="user")]


def make_settings(**values: Any) -> Settings:
    return Settings(_env_file=None, **values)  # type: ignore[call-arg]


def test_auto_picks_the_first_configured_provider_in_order(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("models.providers.local_available", lambda: False)
    spec = ModelSpec()
    assert resolve_provider(spec, make_settings(HF_TOKEN="hf_x", ANTHROPIC_API_KEY="a", OPENAI_API_KEY="o")) == "openai"
    assert resolve_provider(spec, make_settings(HF_TOKEN="hf_x", ANTHROPIC_API_KEY="a", GEMINI_API_KEY="g")) == "anthropic"
    assert resolve_provider(spec, make_settings(HF_TOKEN="hf_x", GOOGLE_API_KEY="g")) == "gemini"
    assert resolve_provider(spec, make_settings(HF_TOKEN="hf_x", OPENAI_BASE_URL="http://x/v1")) == "hf"
    assert resolve_provider(spec, make_settings(OPENAI_BASE_URL="http://x/v1")) == "openai-compatible"
    monkeypatch.setattr("models.providers.local_available", lambda: True)
    monkeypatch.setattr("models.local_model.local_problem", lambda model: None)  # its model is on disk
    assert resolve_provider(spec, make_settings()) == "local"


def test_nothing_configured_says_which_variables_to_set(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("models.providers.local_available", lambda: False)
    with pytest.raises(ProviderNotConfigured) as info:
        resolve_provider(ModelSpec(), make_settings())
    assert str(info.value) == NOTHING_CONFIGURED
    for variable in ("OPENAI_API_KEY", "ANTHROPIC_API_KEY", "GEMINI_API_KEY", "HF_TOKEN", "OPENAI_BASE_URL"):
        assert variable in NOTHING_CONFIGURED


def test_a_chosen_provider_without_its_key_names_the_key() -> None:
    with pytest.raises(ProviderNotConfigured, match="LLM provider 'anthropic' needs ANTHROPIC_API_KEY"):
        resolve_provider(ModelSpec(), make_settings(LLM_PROVIDER="anthropic", OPENAI_API_KEY="o"))
    with pytest.raises(ProviderNotConfigured, match="'hf' needs HF_TOKEN"):
        resolve_provider(ModelSpec(provider="hf"), make_settings(OPENAI_API_KEY="o"))


def test_model_names_per_provider_and_the_llm_model_override() -> None:
    spec = ModelSpec(model={"openai": "gpt-4.1", "anthropic": "claude-haiku-4-5"})
    assert resolve_model(spec, "openai", make_settings()) == "gpt-4.1"
    assert resolve_model(spec, "hf", make_settings()) == "openai/gpt-oss-120b"  # the provider's default tier
    assert resolve_model(spec, "anthropic", make_settings(LLM_MODEL="claude-x")) == "claude-x"
    with pytest.raises(ProviderNotConfigured, match="needs a model name: set LLM_MODEL"):
        resolve_model(ModelSpec(), "openai-compatible", make_settings())


def test_a_profiles_tier_picks_the_providers_model() -> None:
    strong = ModelSpec(tier="strong", model={"hf": "my/own-model"})
    expected = {"openai": "gpt-5.6-sol", "anthropic": "claude-sonnet-5-5", "gemini": "gemini-3.5-flash", "hf": "my/own-model"}
    assert {p: resolve_model(strong, p, make_settings()) for p in expected} == expected
    cheap = ModelSpec()
    assert resolve_model(cheap, "openai", make_settings()) == "gpt-6-luna"
    assert resolve_model(cheap, "anthropic", make_settings()) == "claude-haiku-5-5"
    assert resolve_model(cheap, "gemini", make_settings()) == "gemini-3.5-flash-lite"
    assert resolve_model(strong, "local", make_settings(LOCAL_MODEL="org/tiny")) == "org/tiny"


def test_an_unknown_provider_name_lists_the_valid_ones() -> None:
    valid = "valid: auto, openai, anthropic, gemini, hf, openai-compatible, local"
    with pytest.raises(ValueError, match=f"unknown provider 'openia'; {valid}"):
        ModelSpec(provider="openia")
    with pytest.raises(ValueError, match="unknown provider 'gemni'"):
        ModelSpec(model={"gemni": "gemini-3.5-flash"})
    with pytest.raises(ValueError, match=f"unknown provider 'antropic'; {valid}"):
        make_settings(LLM_PROVIDER="antropic")


def test_every_provider_declares_its_variables_pricing_label_and_retryable_errors() -> None:
    import anthropic
    import openai

    assert PROVIDERS == ("openai", "anthropic", "gemini", "hf", "openai-compatible", "local")
    assert {n: p.pricing_id for n, p in REGISTRY.items()} == {
        "openai": "openai", "anthropic": "anthropic", "gemini": "google", "hf": None, "openai-compatible": None,
        "local": None,
    }  # fmt: skip
    assert REGISTRY["gemini"].env == ("GEMINI_API_KEY", "GOOGLE_API_KEY", "GEMINI_BASE_URL")
    for name in ("openai", "gemini", "hf", "openai-compatible"):
        errors = REGISTRY[name].retryable_errors()
        assert openai.RateLimitError in errors and openai.APIConnectionError in errors
        assert openai.BadRequestError not in errors and not issubclass(openai.BadRequestError, errors)
    errors = REGISTRY["anthropic"].retryable_errors()
    assert issubclass(anthropic.RateLimitError, errors) and issubclass(anthropic.InternalServerError, errors)
    assert not issubclass(anthropic.BadRequestError, errors)
    assert REGISTRY["local"].retryable_errors() == ()


def test_the_ui_lists_every_registered_provider() -> None:
    from ui.options import PROVIDERS as UI_PROVIDERS

    assert list(UI_PROVIDERS.values()) == ["auto", *PROVIDERS]
    assert UI_PROVIDERS["Google Gemini (GEMINI_API_KEY)"] == "gemini"


def test_the_gemini_key_is_a_secret_from_either_variable() -> None:
    settings = make_settings(GOOGLE_API_KEY="AIza-google-key-123")
    assert settings.gemini_api_key is not None and "AIza" not in repr(settings)
    assert "AIza-google-key-123" in settings.secret_values()
    with pytest.raises(ProviderNotConfigured, match="'gemini' needs GEMINI_API_KEY"):
        resolve_provider(ModelSpec(provider="gemini"), make_settings(OPENAI_API_KEY="o"))


async def test_openai_provider_streams_and_counts_usage(llm_server) -> None:
    server = llm_server({"default": ["Hello there."]})
    ledger = UsageLedger()
    client = build_client(ModelSpec(), settings_for(server), agent="tester", ledger=ledger)
    chunks = [c async for c in client.create_stream(HI)]
    assert "".join(c for c in chunks if isinstance(c, str)) == "Hello there."
    assert server.requests[0].headers["authorization"] == "Bearer sk-test-not-a-real-key-0000"
    assert server.requests[0].body["stream_options"] == {"include_usage": True}
    assert ledger.by_agent()["tester"].prompt_tokens == server.requests[0].prompt_tokens > 0
    assert server.requests[0].body["model"] == "gpt-6-luna"  # OpenAI's default tier
    assert ledger.cost_usd is not None and ledger.cost_usd > 0  # gpt-6-luna has a known price


async def test_hf_provider_uses_the_router_with_the_hf_token(llm_server) -> None:
    server = llm_server({"default": ["ok"]})
    settings = make_settings(HF_TOKEN="hf_secret_token_123", HF_ROUTER_URL=server.url, LLM_PROVIDER="hf")
    client = build_client(ModelSpec(), settings, agent="a")
    result = await client.create(HI)
    assert result.content == "ok"
    req = server.requests[0]
    assert req.headers["authorization"] == "Bearer hf_secret_token_123"
    assert req.body["model"] == "openai/gpt-oss-120b"
    assert all("name" not in m for m in req.messages)  # the router rejects `name` on some backends


async def test_openai_compatible_needs_no_key_and_uses_yaml_capabilities(llm_server) -> None:
    server = llm_server({"default": ["local reply"]})
    spec = ModelSpec(provider="openai-compatible", model="qwen2.5:7b", base_url=server.url, stream_usage=False)
    client = build_client(spec, make_settings(), agent="a")
    assert (await client.create(HI)).content == "local reply"
    assert client.model_info["function_calling"] is True
    assert "stream_options" not in server.requests[0].body


async def test_anthropic_provider_against_the_messages_replica() -> None:
    with AnthropicReplica({"critic": ["Bonjour."]}, api_key="sk-ant-test-key-000") as api:
        settings = make_settings(ANTHROPIC_API_KEY="sk-ant-test-key-000", ANTHROPIC_BASE_URL=api.url)
        ledger = UsageLedger()
        client = build_client(ModelSpec(), settings, agent="critic", ledger=ledger)
        result = await client.create([SystemMessage(content="You are critic."), *HI])
        assert result.content == "Bonjour."
        api.assert_clean()
    body = api.accepted[0].body
    assert body["model"] == "claude-haiku-5-5"  # Anthropic's default tier
    assert "temperature" not in body and body["max_tokens"] == 32_000
    assert ledger.by_agent()["critic"].prompt_tokens == api.accepted[0].prompt_tokens > 0


def managed(server, **overrides: Any) -> tuple[ManagedClient, list[float]]:
    waits: list[float] = []

    async def fake_sleep(seconds: float) -> None:
        waits.append(seconds)

    client = build_client(ModelSpec(), settings_for(server, **overrides), agent="a")
    client._sleep = fake_sleep  # record the backoff instead of waiting it out
    return client, waits


async def test_429_then_success_honours_retry_after(llm_server) -> None:
    server = llm_server({"default": [{"status": 429, "headers": {"retry-after": "7"}}, "after the wait"]})
    client, waits = managed(server)
    assert (await client.create(HI)).content == "after the wait"
    assert waits == [7.0] and len(server.requests) == 2


async def test_5xx_is_retried_with_growing_backoff_then_gives_up(llm_server) -> None:
    server = llm_server({"default": [{"status": 503}] * 10})
    client, waits = managed(server, LLM_MAX_RETRIES=3, LLM_RETRY_BASE_DELAY=1.0)
    with pytest.raises(ModelCallError, match=r"a's model openai/gpt-6-luna: HTTP 503.*gave up after 4 attempts"):
        await client.create(HI)
    assert len(server.requests) == 4 and len(waits) == 3
    assert waits[0] <= 1.0 < waits[2] <= 4.0  # exponential, with jitter


async def test_a_client_error_is_not_retried(llm_server) -> None:
    server = llm_server({"default": [{"status": 400, "message": "bad request shape"}, "never reached"]})
    client, waits = managed(server)
    with pytest.raises(ModelCallError, match="HTTP 400.*not retryable"):
        await client.create(HI)
    assert len(server.requests) == 1 and waits == []


async def test_a_timeout_is_retried(llm_server) -> None:
    server = llm_server({"default": [{"delay": 1.0, "content": "too late"}, "in time"]})
    client, _ = managed(server, LLM_REQUEST_TIMEOUT=0.3)
    assert (await client.create(HI)).content == "in time"


async def test_a_stream_failing_before_its_first_chunk_is_retried(llm_server) -> None:
    server = llm_server({"default": [{"status": 502}, "streamed fine"]})
    client, waits = managed(server)
    text = "".join([c async for c in client.create_stream(HI) if isinstance(c, str)])
    assert text == "streamed fine" and len(waits) == 1


async def test_a_garbage_body_is_a_clear_error(llm_server) -> None:
    server = llm_server({"default": [{"raw": "<html>upstream exploded</html>"}]})
    client, _ = managed(server)
    with pytest.raises(ModelCallError, match="a's model openai/gpt-6-luna"):
        await client.create(HI)


async def test_the_ollama_team_needs_no_key_and_the_env_url_overrides_its_yaml(llm_server) -> None:
    from teams import load_team, solve

    team = load_team("ollama")
    spec = team.model_spec("default")
    assert resolve_provider(spec, make_settings()) == "openai-compatible"  # its base_url is in the YAML
    server = llm_server({"researcher": ["Found: 7.\nFINAL ANSWER: 7"], "critic": ["APPROVED\nFINAL ANSWER: 7"]})
    result = await solve("What is 3 + 4?", team, settings=make_settings(OPENAI_BASE_URL=server.url))
    assert result.answer == "7" and result.models["researcher"] == "openai-compatible/qwen2.5:7b"
    assert server.requests[0].headers["authorization"] == "Bearer not-needed"
