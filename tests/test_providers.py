"""Model providers: choosing one, its credentials, and retries against real HTTP servers."""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from autogen_core.models import UserMessage

from config.settings import Settings
from models.client import ManagedClient, ModelCallError
from models.providers import (
    NOTHING_CONFIGURED,
    ProviderNotConfigured,
    build_client,
    resolve_model,
    resolve_provider,
)
from models.spec import ModelSpec
from models.usage import UsageLedger
from tests.conftest import settings_for

HI = [UserMessage(content="Say hi.", source="user")]


def make_settings(**values: Any) -> Settings:
    return Settings(_env_file=None, **values)  # type: ignore[call-arg]


def test_auto_picks_the_first_configured_provider_in_order(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("models.providers.local_available", lambda: False)
    spec = ModelSpec()
    assert resolve_provider(spec, make_settings(HF_TOKEN="hf_x", ANTHROPIC_API_KEY="a", OPENAI_API_KEY="o")) == "openai"
    assert resolve_provider(spec, make_settings(HF_TOKEN="hf_x", ANTHROPIC_API_KEY="a")) == "anthropic"
    assert resolve_provider(spec, make_settings(HF_TOKEN="hf_x", OPENAI_BASE_URL="http://x/v1")) == "hf"
    assert resolve_provider(spec, make_settings(OPENAI_BASE_URL="http://x/v1")) == "openai-compatible"
    monkeypatch.setattr("models.providers.local_available", lambda: True)
    assert resolve_provider(spec, make_settings()) == "local"


def test_nothing_configured_says_which_variables_to_set(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("models.providers.local_available", lambda: False)
    with pytest.raises(ProviderNotConfigured) as info:
        resolve_provider(ModelSpec(), make_settings())
    assert str(info.value) == NOTHING_CONFIGURED
    assert "OPENAI_API_KEY" in NOTHING_CONFIGURED and "HF_TOKEN" in NOTHING_CONFIGURED


def test_a_chosen_provider_without_its_key_names_the_key() -> None:
    with pytest.raises(ProviderNotConfigured, match="LLM provider 'anthropic' needs ANTHROPIC_API_KEY"):
        resolve_provider(ModelSpec(), make_settings(LLM_PROVIDER="anthropic", OPENAI_API_KEY="o"))
    with pytest.raises(ProviderNotConfigured, match="'hf' needs HF_TOKEN"):
        resolve_provider(ModelSpec(provider="hf"), make_settings(OPENAI_API_KEY="o"))


def test_model_names_per_provider_and_the_llm_model_override() -> None:
    spec = ModelSpec(model={"openai": "gpt-4.1", "anthropic": "claude-haiku-4-5"})
    assert resolve_model(spec, "openai", make_settings()) == "gpt-4.1"
    assert resolve_model(spec, "hf", make_settings()) == "Qwen/Qwen2.5-72B-Instruct"  # the provider default
    assert resolve_model(spec, "anthropic", make_settings(LLM_MODEL="claude-x")) == "claude-x"
    with pytest.raises(ProviderNotConfigured, match="needs a model name: set LLM_MODEL"):
        resolve_model(ModelSpec(), "openai-compatible", make_settings())


async def test_openai_provider_streams_and_counts_usage(llm_server) -> None:
    server = llm_server({"default": ["Hello there."]})
    ledger = UsageLedger()
    client = build_client(ModelSpec(), settings_for(server), agent="tester", ledger=ledger)
    chunks = [c async for c in client.create_stream(HI)]
    assert "".join(c for c in chunks if isinstance(c, str)) == "Hello there."
    assert server.requests[0].headers["authorization"] == "Bearer sk-test-not-a-real-key-0000"
    assert server.requests[0].body["stream_options"] == {"include_usage": True}
    assert ledger.by_agent()["tester"].prompt_tokens == server.requests[0].prompt_tokens > 0
    assert ledger.cost_usd is not None and ledger.cost_usd > 0  # gpt-4.1-mini has a known price


async def test_hf_provider_uses_the_router_with_the_hf_token(llm_server) -> None:
    server = llm_server({"default": ["ok"]})
    settings = make_settings(HF_TOKEN="hf_secret_token_123", HF_ROUTER_URL=server.url, LLM_PROVIDER="hf")
    client = build_client(ModelSpec(), settings, agent="a")
    result = await client.create(HI)
    assert result.content == "ok"
    req = server.requests[0]
    assert req.headers["authorization"] == "Bearer hf_secret_token_123"
    assert req.body["model"] == "Qwen/Qwen2.5-72B-Instruct"
    assert all("name" not in m for m in req.messages)  # the router rejects `name` on some backends


async def test_openai_compatible_needs_no_key_and_uses_yaml_capabilities(llm_server) -> None:
    server = llm_server({"default": ["local reply"]})
    spec = ModelSpec(provider="openai-compatible", model="qwen2.5:7b", base_url=server.url, stream_usage=False)
    client = build_client(spec, make_settings(), agent="a")
    assert (await client.create(HI)).content == "local reply"
    assert client.model_info["function_calling"] is True
    assert "stream_options" not in server.requests[0].body


class _FakeAnthropic(BaseHTTPRequestHandler):
    seen: list[dict[str, Any]] = []

    def log_message(self, *args: Any) -> None:
        pass

    def do_POST(self) -> None:
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        _FakeAnthropic.seen.append({"path": self.path, "key": self.headers.get("x-api-key"), "body": body})
        data = json.dumps(
            {
                "id": "msg_1",
                "type": "message",
                "role": "assistant",
                "model": body["model"],
                "content": [{"type": "text", "text": "Bonjour."}],
                "stop_reason": "end_turn",
                "stop_sequence": None,
                "usage": {"input_tokens": 11, "output_tokens": 3},
            }
        ).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)


async def test_anthropic_provider_against_a_messages_endpoint() -> None:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _FakeAnthropic)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        host, port = server.server_address[:2]
        settings = make_settings(ANTHROPIC_API_KEY="sk-ant-test-key-000", ANTHROPIC_BASE_URL=f"http://{host}:{port}")
        ledger = UsageLedger()
        client = build_client(ModelSpec(), settings, agent="critic", ledger=ledger)
        result = await client.create(HI)
        assert result.content == "Bonjour."
        assert _FakeAnthropic.seen[-1]["key"] == "sk-ant-test-key-000"
        assert _FakeAnthropic.seen[-1]["body"]["model"] == "claude-sonnet-4-5"
        assert ledger.by_agent()["critic"].prompt_tokens == 11
    finally:
        server.shutdown()
        server.server_close()


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
    with pytest.raises(ModelCallError, match=r"a's model openai/gpt-4.1-mini: HTTP 503.*gave up after 4 attempts"):
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
    with pytest.raises(ModelCallError, match="a's model openai/gpt-4.1-mini"):
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
