"""The Gemini OpenAI-compatible and Hugging Face router replicas, driven by the real `openai` SDK."""

from __future__ import annotations

from typing import Any

import httpx
import openai
import pytest

from tests.fakes.replicas import GeminiReplica, HFRouterReplica, describe_rejection

TOOLS = [{"type": "function", "function": {"name": "web_search", "parameters": {"type": "object", "properties": {"q": {"type": "string"}}}}}]  # fmt: skip
SYSTEM = {"role": "system", "content": "You are researcher."}
USER = {"role": "user", "content": "Who wrote it?"}
SCRIPT: dict[str, Any] = {"default": lambda req: "ok"}


def client(api: Any, max_retries: int = 0) -> openai.OpenAI:
    return openai.OpenAI(base_url=api.url, api_key="key", max_retries=max_retries)


@pytest.mark.parametrize("replica", [GeminiReplica, HFRouterReplica])
@pytest.mark.parametrize("stream", [False, True])
def test_a_tool_call_round_trips(replica: type, stream: bool) -> None:
    model = "gemini-3.5-flash" if replica is GeminiReplica else "openai/gpt-oss-120b:groq"
    script = {
        "researcher": [{"tool_calls": [{"name": "web_search", "arguments": {"q": "author"}}]}, "Jane Doe."]
    }
    with replica(script) as api:
        c = client(api)
        messages: list[Any] = [SYSTEM, USER]
        if stream:
            with c.chat.completions.stream(model=model, messages=messages, tools=TOOLS) as s:
                first = s.get_final_completion()
        else:
            first = c.chat.completions.create(model=model, messages=messages, tools=TOOLS)
        call = first.choices[0].message.tool_calls[0]
        assert call.function.name == "web_search" and first.choices[0].finish_reason == "tool_calls"
        messages += [
            {"role": "assistant", "content": None, "tool_calls": [call.model_dump()]},
            {"role": "tool", "tool_call_id": call.id, "content": "Jane Doe"},
        ]
        second = c.chat.completions.create(model=model, messages=messages, tools=TOOLS)
        assert second.choices[0].message.content == "Jane Doe."
        assert second.model == model.split(":")[0]
        api.assert_clean()


GEMINI_REJECTED = [
    ({"frequency_penalty": 0.5}, 'Invalid JSON payload received. Unknown name "frequency_penalty": Cannot find field.'),
    ({"extra_body": {"top_k": 3, "store": True}}, 'Unknown name "store": Cannot find field.'),
    ({"extra_body": {"extra_body": {"google": {"thinking": {}}}}}, "Unknown name \"thinking\" at 'extra_body.google'"),
    ({"presence_penalty": 0.5}, "Penalty is not enabled for models/gemini-3.5-flash"),
    ({"reasoning_effort": "minimal"}, "Invalid reasoning_effort: minimal. Valid values are: high, low, medium, none"),
    ({"reasoning_effort": "low", "extra_body": {"extra_body": {"google": {"thinking_config": {"thinking_budget": 10}}}}}, "cannot both be set"),
    ({"messages": [USER, {"role": "tool", "tool_call_id": "a", "content": "r"}]}, "Please ensure that function response turn comes immediately after a function call turn."),
    ({"messages": [USER, {"role": "assistant", "tool_calls": [{"id": "a", "type": "function", "function": {"name": "f", "arguments": "{}"}}]}, USER]}, "Please ensure that the number of function response parts is equal to the number of function call parts"),
]  # fmt: skip


@pytest.mark.parametrize(("extra", "expected"), GEMINI_REJECTED, ids=[e[:40] for _, e in GEMINI_REJECTED])
def test_gemini_refuses_what_its_endpoint_refuses(extra: dict[str, Any], expected: str) -> None:
    args = {"model": "gemini-3.5-flash", "messages": [USER], **extra}
    with GeminiReplica(SCRIPT) as api, pytest.raises(openai.BadRequestError) as exc:
        client(api).chat.completions.create(**args)
    assert expected in describe_rejection(exc.value)
    assert isinstance(exc.value.body, list) and exc.value.body[0]["error"]["status"] == "INVALID_ARGUMENT"


def test_gemini_thinking_levels_and_models() -> None:
    with GeminiReplica(SCRIPT) as api:
        c = client(api)
        ok = c.chat.completions.create(
            model="models/gemini-2.5-flash", messages=[USER], reasoning_effort="none", max_completion_tokens=100,
            extra_body={"extra_body": {"google": {"thinking_config": {"include_thoughts": True}}}},
        )  # fmt: skip
        assert ok.choices[0].message.content == "ok"
        with pytest.raises(openai.BadRequestError) as exc:
            c.chat.completions.create(
                model="gemini-3.1-pro-preview", messages=[USER], reasoning_effort="none"
            )
        assert "Thinking level NONE is not supported for this model" in describe_rejection(exc.value)
        with pytest.raises(openai.NotFoundError) as nf:
            c.chat.completions.create(model="gemini-9-flash", messages=[USER])
        assert describe_rejection(nf.value).startswith(
            "models/gemini-9-flash is not found for API version v1main"
        )
        assert "models/gemini-3.6-flash" in {m.id for m in c.models.list()}
        r = httpx.post(api.url + "/chat/completions", json={"model": "gemini-3.5-flash", "messages": [USER]})
        assert r.status_code == 403 and r.json()[0]["error"]["status"] == "PERMISSION_DENIED"


def test_gemini_503_and_the_stop_quirk() -> None:
    script = {"default": [{"status": 503}, {"tool_calls": [{"name": "web_search", "arguments": {}}]}]}
    with GeminiReplica(script, tool_finish_reason="stop") as api:
        with pytest.raises(openai.InternalServerError) as exc:
            client(api).chat.completions.create(model="gemini-3.5-flash", messages=[USER])
        assert describe_rejection(exc.value) == "The model is overloaded. Please try again later."
        reply = client(api).chat.completions.create(model="gemini-3.5-flash", messages=[USER], tools=TOOLS)
        assert reply.choices[0].finish_reason == "stop" and reply.choices[0].message.tool_calls


def test_hf_router_models_providers_and_token() -> None:
    with HFRouterReplica(SCRIPT, token="hf_right") as api:
        c = openai.OpenAI(base_url=api.url, api_key="hf_right", max_retries=0)
        with pytest.raises(openai.BadRequestError) as exc:
            c.chat.completions.create(model="acme/NoSuchModel", messages=[USER])
        assert (
            describe_rejection(exc.value)
            == "The requested model 'acme/NoSuchModel' is not supported by any provider you have enabled."
        )
        with pytest.raises(openai.BadRequestError) as exc:
            c.chat.completions.create(model="openai/gpt-oss-120b:novita", messages=[USER])
        assert "not supported by provider 'novita'" in describe_rejection(exc.value)
        with pytest.raises(openai.BadRequestError) as exc:
            c.chat.completions.create(
                model="meta-llama/Llama-3.3-70B-Instruct:hyperbolic", messages=[USER], tools=TOOLS
            )
        assert "does not support tools" in describe_rejection(exc.value)
        with pytest.raises(openai.BadRequestError) as exc:
            c.chat.completions.create(
                model="openai/gpt-oss-20b",
                messages=[USER, {"role": "tool", "tool_call_id": "x", "content": "r"}],
            )
        assert "must be a response to a preceeding message with 'tool_calls'" in describe_rejection(exc.value)
        ok = c.chat.completions.create(
            model="Qwen/Qwen2.5-72B-Instruct:cheapest", messages=[USER], extra_body={"top_k": 5}
        )
        assert ok.choices[0].message.content == "ok" and ok.model == "Qwen/Qwen2.5-72B-Instruct"
        listed = {m.id: m for m in c.models.list()}
        assert [p["provider"] for p in listed["openai/gpt-oss-120b"].model_extra["providers"]][:1] == ["groq"]
        with pytest.raises(openai.AuthenticationError):
            openai.OpenAI(base_url=api.url, api_key="hf_wrong", max_retries=0).chat.completions.create(
                model="openai/gpt-oss-20b", messages=[USER]
            )
