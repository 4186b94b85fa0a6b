"""Faults through the real SDK clients against the strict replicas: Anthropic's 529 (as a status and as a stream
event), `x-should-retry`, `retry-after-ms`, and a model that does not exist (named with the provider and the models
it offers)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterator, Sequence
from typing import Any

import httpx
import pytest
from autogen_core.models import SystemMessage, UserMessage

from config.settings import Settings
from models.client import ManagedClient, ModelCallError, ModelNotFound
from models.providers import build_client, build_raw_client
from models.spec import ModelSpec
from tests.fakes.replicas import AnthropicReplica, GeminiReplica, HFRouterReplica, OpenAIReplica

HI = [SystemMessage(content="You are critic."), UserMessage(content="Say hi.", source="user")]
KEY = "sk-test-not-a-real-key-0000"

Lister = Callable[[], Awaitable[Sequence[str]]]


def settings(**values: Any) -> Settings:
    return Settings(_env_file=None, LLM_RETRY_BASE_DELAY=1.0, **values)  # type: ignore[call-arg]


def provider_settings(provider: str, api: Any, model: str | None = None) -> Settings:
    env = {
        "openai": {"OPENAI_API_KEY": KEY, "OPENAI_BASE_URL": api.url},
        "anthropic": {"ANTHROPIC_API_KEY": KEY, "ANTHROPIC_BASE_URL": api.url},
        "gemini": {"GEMINI_API_KEY": KEY, "GEMINI_BASE_URL": api.url},
        "hf": {"HF_TOKEN": "hf_test_not_a_real_token", "HF_ROUTER_URL": api.url},
    }[provider]
    return settings(LLM_PROVIDER=provider, **({"LLM_MODEL": model} if model else {}), **env)


def lister(provider: str, api: Any) -> Lister:
    """What the registry passes: the provider's GET /models, as names."""

    async def names() -> list[str]:
        headers = {"authorization": f"Bearer {KEY}"}
        if provider == "anthropic":
            headers = {"x-api-key": KEY, "anthropic-version": "2023-06-01"}
        elif provider == "hf":
            headers = {"authorization": "Bearer hf_test_not_a_real_token"}
        base = f"{api.url}/v1" if provider == "anthropic" else api.url  # the Anthropic SDK adds /v1 itself
        async with httpx.AsyncClient() as http:
            reply = await http.get(f"{base}/models", headers=headers)
            reply.raise_for_status()
            return [m["id"] for m in reply.json()["data"]]

    return names


def managed(
    provider: str, api: Any, model: str | None = None, *, retries: int = 3, available: Lister | None = None
) -> tuple[ManagedClient, list[float]]:
    waits: list[float] = []

    async def record_wait(seconds: float) -> None:
        waits.append(seconds)

    s = provider_settings(provider, api, model)
    inner, name, chosen = build_raw_client(ModelSpec(), s)
    client = ManagedClient(inner, agent="critic", provider=name, model=chosen, max_retries=retries,
                           base_delay=1.0, sleep=record_wait, available_models=available)
    return client, waits


@pytest.fixture
def anthropic_api() -> Iterator[AnthropicReplica]:
    with AnthropicReplica({"critic": []}, api_key=KEY) as api:
        yield api


# --- Anthropic 529 ------------------------------------------------------------------------------------------
async def test_anthropic_529_overloaded_is_retried_with_growing_backoff() -> None:
    with AnthropicReplica({"critic": [{"status": 529}, {"status": 529}, "Bonjour."]}, api_key=KEY) as api:
        client, waits = managed("anthropic", api)
        assert (await client.create(HI)).content == "Bonjour."
    assert [r.status for r in api.requests] == [529, 529, 200]
    assert len(waits) == 2 and 0.5 <= waits[0] <= 1.0 < waits[1] <= 2.0  # exponential with jitter


async def test_anthropic_529_that_never_clears_gives_up_with_the_vendors_message() -> None:
    with AnthropicReplica({"critic": [{"status": 529}] * 5}, api_key=KEY) as api:
        client, waits = managed("anthropic", api, retries=2)
        with pytest.raises(ModelCallError) as info:
            await client.create(HI)
    assert str(info.value).endswith("HTTP 529: Overloaded (gave up after 3 attempts)")
    assert len(api.requests) == 3 and len(waits) == 2


async def test_an_overloaded_event_in_a_stream_before_any_text_is_retried() -> None:
    with AnthropicReplica({"critic": [{"stream_error": "overloaded_error"}, "Bonjour."]}, api_key=KEY) as api:
        client, waits = managed("anthropic", api)
        text = "".join([c async for c in client.create_stream(HI) if isinstance(c, str)])
    assert text == "Bonjour." and len(api.requests) == 2 and len(waits) == 1


# --- x-should-retry and retry-after-ms ----------------------------------------------------------------------
async def test_x_should_retry_false_stops_a_5xx_at_once() -> None:
    with OpenAIReplica({"critic": [{"status": 503, "headers": {"x-should-retry": "false"}}, "never"]}) as api:
        client, waits = managed("openai", api)
        with pytest.raises(ModelCallError, match=r"HTTP 503: .*\(not retryable\)$"):
            await client.create(HI)
    assert len(api.requests) == 1 and waits == []


async def test_x_should_retry_true_retries_even_a_4xx() -> None:
    with OpenAIReplica({"critic": [{"status": 409, "headers": {"x-should-retry": "true"}}, "after all"]}) as api:
        client, _ = managed("openai", api)
        assert (await client.create(HI)).content == "after all"
    script = {"critic": [{"status": 400, "message": "bad", "headers": {"x-should-retry": "true"}}, "fine"]}
    with OpenAIReplica(script) as api:
        client, waits = managed("openai", api)
        assert (await client.create(HI)).content == "fine"
    assert len(api.requests) == 2 and len(waits) == 1


async def test_anthropics_own_x_should_retry_false_on_a_request_error_is_obeyed(anthropic_api) -> None:
    anthropic_api.script["critic"] = [{"status": 400, "message": "messages: bad"}, "never"]
    client, waits = managed("anthropic", anthropic_api)
    with pytest.raises(ModelCallError, match="HTTP 400: messages: bad .not retryable."):
        await client.create(HI)
    assert anthropic_api.requests[0].status == 400 and len(anthropic_api.requests) == 1 and waits == []


async def test_retry_after_ms_is_honoured() -> None:
    with OpenAIReplica({"critic": [{"status": 429, "headers": {"retry-after-ms": "250"}}, "ok"]}) as api:
        client, waits = managed("openai", api)
        assert (await client.create(HI)).content == "ok"
    assert waits == [0.25]


# --- a model that does not exist ----------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("provider", "replica", "typo", "meant"),
    [
        ("openai", OpenAIReplica, "gpt-6-lunar", "gpt-6-luna"),
        ("anthropic", AnthropicReplica, "claude-sonet-5-5", "claude-sonnet-5-5"),
        ("gemini", GeminiReplica, "gemini-3.5-flsh", "gemini-3.5-flash"),
        ("hf", HFRouterReplica, "openai/gpt-oss-12b", "openai/gpt-oss-120b"),
    ],
)
async def test_a_missing_model_names_model_provider_and_the_closest_models_offered(
    provider: str, replica: Any, typo: str, meant: str
) -> None:
    kwargs = {"token": "hf_test_not_a_real_token"} if provider == "hf" else {}
    with replica({"critic": ["never"]}, **kwargs) as api:
        # the registry's own lister (the provider's GET /models through its SDK), as a run gets it
        client = build_client(ModelSpec(), provider_settings(provider, api, typo), agent="critic")
        with pytest.raises(ModelNotFound) as info:
            await client.create(HI)
        offered = await lister(provider, api)()
    message = str(info.value)
    assert "\n" not in message
    assert message.startswith(f"critic's model: provider '{provider}' has no model '{typo}' (HTTP 40")
    shown = message.split("; it offers: ")[1].split(" (+")[0].split(", ")
    offered = [n.removeprefix("models/") for n in offered]  # Gemini lists "models/x" for a model called "x"
    assert shown[0] == meant  # the closest name first
    assert len(shown) == min(10, len(offered)) and set(shown) <= set(offered)
    if len(offered) > 10:
        assert message.endswith(f"(+{len(offered) - 10} more)")
    assert info.value.available[0] == shown[0] and len(info.value.available) == len(offered)
    # not retried
    assert len([r for r in api.requests if r.path.endswith("/completions") or r.path.endswith("/messages")]) == 1


async def test_a_missing_model_is_still_reported_when_listing_the_models_fails() -> None:
    async def broken() -> list[str]:
        raise httpx.ConnectError("listing is down")

    with OpenAIReplica({"critic": ["never"]}) as api:
        client, waits = managed("openai", api, "gpt-9", available=broken)
        with pytest.raises(ModelNotFound) as info:
            await client.create(HI)
        plain, _ = managed("openai", api, "gpt-9")
        with pytest.raises(ModelNotFound) as without:
            await plain.create(HI)
    assert str(info.value) == str(without.value) == (
        "critic's model: provider 'openai' has no model 'gpt-9' "
        "(HTTP 404: The model `gpt-9` does not exist or you do not have access to it.)"
    )
    assert waits == [] and info.value.available == []


async def test_a_missing_model_is_reported_when_streaming_too(anthropic_api) -> None:
    client, _ = managed("anthropic", anthropic_api, "claude-opus-9", available=lister("anthropic", anthropic_api))
    with pytest.raises(ModelNotFound, match=r"has no model 'claude-opus-9' \(HTTP 404: model: claude-opus-9\); it "):
        async for _ in client.create_stream(HI):
            pass


async def test_a_wrong_url_404_is_not_mistaken_for_a_missing_model() -> None:
    with OpenAIReplica({"critic": ["never"]}) as api:
        s = provider_settings("openai", api)
        s.openai_base_url = api.url + "/nope"
        inner, name, model = build_raw_client(ModelSpec(), s)
        client = ManagedClient(inner, agent="critic", provider=name, model=model, max_retries=3)
        with pytest.raises(ModelCallError) as info:
            await client.create(HI)
    assert not isinstance(info.value, ModelNotFound)
    assert "HTTP 404: Invalid URL" in str(info.value) and "not retryable" in str(info.value)


# --- what the terminal shows ----------------------------------------------------------------------------------
async def test_the_terminal_shows_a_missing_model_as_one_error_line_naming_it() -> None:
    from io import StringIO

    from rich.console import Console

    from cli.console import ConsoleRenderer
    from teams import load_team, solve

    with OpenAIReplica({"solo": ["never"]}) as api:
        s = settings(LLM_PROVIDER="openai", LLM_MODEL="gpt-9", OPENAI_API_KEY=KEY, OPENAI_BASE_URL=api.url,
                     LLM_MAX_RETRIES=3, SANDBOX_ALLOW_SUBPROCESS=True)
        result = await solve("What is 3 + 4?", load_team("solo"), settings=s)
    assert result.stop_reason == "error" and result.error is not None
    out = StringIO()
    ConsoleRenderer(Console(file=out, width=2000, highlight=False)).final(result)
    errors = [line for line in out.getvalue().splitlines() if line.startswith("Error:")]
    assert len(errors) == 1 and "provider 'openai' has no model 'gpt-9'" in errors[0]
    assert "does not exist" in errors[0] and "Traceback" not in out.getvalue()
    assert len([r for r in api.requests if r.path.endswith("/chat/completions")]) == 1  # not retried
