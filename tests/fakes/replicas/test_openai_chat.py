"""The OpenAI replica, driven by the real `openai` SDK: valid traffic round-trips, each documented rule refuses
the request that breaks it with OpenAI's message, and faults carry their headers."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import httpx
import openai
import pytest

from tests.fakes.replicas import OpenAIReplica, describe_rejection

TOOLS = [
    {
        "type": "function",
        "function": {
            "name": "web_search",
            "description": "Search the web.",
            "parameters": {
                "type": "object",
                "properties": {"query": {"type": "string"}},
                "required": ["query"],
            },
        },
    }
]
SYSTEM = {"role": "system", "content": "You are planner, a careful agent."}
USER = {"role": "user", "content": "Who wrote it?"}


def _echo(req: Any) -> str:
    return "ok"


@pytest.fixture
def api() -> Iterator[OpenAIReplica]:
    with OpenAIReplica({"default": _echo}) as server:
        yield server


def client(api: OpenAIReplica, **kwargs: Any) -> openai.OpenAI:
    return openai.OpenAI(
        base_url=api.url, api_key=kwargs.pop("api_key", "sk-test"), max_retries=kwargs.pop("max_retries", 0)
    )


def tool_turn(call_id: str = "call_1", name: str = "web_search") -> list[dict[str, Any]]:
    return [
        SYSTEM,
        USER,
        {
            "role": "assistant",
            "content": None,
            "tool_calls": [
                {"id": call_id, "type": "function", "function": {"name": name, "arguments": '{"query": "x"}'}}
            ],
        },
        {"role": "tool", "tool_call_id": call_id, "content": "result"},
    ]


@pytest.mark.parametrize("stream", [False, True])
def test_a_tool_call_round_trips(stream: bool) -> None:
    script = {
        "planner": [
            {"tool_calls": [{"name": "web_search", "arguments": {"query": "author of the book"}}]},
            "The author is Jane Doe.",
        ]
    }
    with OpenAIReplica(script) as api:
        c = client(api)
        args = {"model": "gpt-5.4-mini", "tools": TOOLS}
        messages: list[Any] = [SYSTEM, USER]
        if stream:
            with c.chat.completions.stream(
                messages=messages, stream_options={"include_usage": True}, **args
            ) as s:
                first = s.get_final_completion()
        else:
            first = c.chat.completions.create(messages=messages, **args)
        call = first.choices[0].message.tool_calls[0]
        assert first.choices[0].finish_reason == "tool_calls"
        assert call.function.name == "web_search"
        assert json.loads(call.function.arguments) == {"query": "author of the book"}
        messages += [
            {"role": "assistant", "content": None, "tool_calls": [call.model_dump()]},
            {"role": "tool", "tool_call_id": call.id, "content": "Jane Doe wrote it."},
        ]
        second = c.chat.completions.create(messages=messages, **args)
        assert second.choices[0].message.content == "The author is Jane Doe."
        assert second.usage.prompt_tokens > first.usage.prompt_tokens
        api.assert_clean()
        assert [r.agent for r in api.requests] == ["planner", "planner"]
        assert api.requests[0].stream is stream


def test_the_stream_is_chunked_as_openai_sends_it() -> None:
    script = {
        "default": [{"tool_calls": [{"name": "web_search", "arguments": {"query": "a long enough query"}}]}]
    }
    with OpenAIReplica(script) as api:
        body = {
            "model": "gpt-5",
            "messages": [USER],
            "tools": TOOLS,
            "stream": True,
            "stream_options": {"include_usage": True},
        }
        r = httpx.post(api.url + "/chat/completions", json=body, headers={"Authorization": "Bearer k"})
    lines = [line[6:] for line in r.text.splitlines() if line.startswith("data: ")]
    assert r.headers["content-type"].startswith("text/event-stream")
    assert lines[-1] == "[DONE]"
    chunks = [json.loads(line) for line in lines[:-1]]
    assert all(c["object"] == "chat.completion.chunk" for c in chunks)
    first = chunks[0]["choices"][0]["delta"]
    assert first["role"] == "assistant" and first["content"] is None
    assert first["tool_calls"][0]["index"] == 0 and first["tool_calls"][0]["id"].startswith("call_")
    assert first["tool_calls"][0]["function"] == {"name": "web_search", "arguments": ""}
    fragments = [c["choices"][0]["delta"]["tool_calls"][0] for c in chunks[1:-2]]
    assert len(fragments) > 1 and all("id" not in f and f["index"] == 0 for f in fragments)
    assert json.loads("".join(f["function"]["arguments"] for f in fragments)) == {
        "query": "a long enough query"
    }
    assert chunks[-2]["choices"][0]["finish_reason"] == "tool_calls" and chunks[-2]["usage"] is None
    assert chunks[-1]["choices"] == [] and chunks[-1]["usage"]["total_tokens"] > 0


REJECTED = [
    ("gpt-5-mini", {"max_tokens": 100}, "Unsupported parameter: 'max_tokens' is not supported with this model. Use 'max_completion_tokens' instead."),
    ("gpt-5-mini", {"temperature": 0.0}, "Unsupported value: 'temperature' does not support 0.0 with this model. Only the default (1) value is supported."),
    ("o3", {"temperature": 0.2}, "does not support 0.2 with this model"),
    ("o4-mini", {"top_p": 0.5}, "Unsupported parameter: 'top_p' is not supported with this model."),
    ("gpt-5", {"reasoning_effort": "none"}, "Supported values are: 'minimal', 'low', 'medium', and 'high'."),
    ("gpt-5.4-mini", {"reasoning_effort": "minimal"}, "'reasoning_effort' does not support 'minimal' with this model"),
    ("gpt-5.4-mini", {"tools": TOOLS, "reasoning_effort": "low"}, "Function tools with reasoning_effort are not supported for gpt-5.4-mini in /v1/chat/completions."),
    ("gpt-5.6-luna", {"tools": TOOLS}, "To use function tools, use /v1/responses or set reasoning_effort to 'none'."),
    ("gpt-6-luna", {"tools": TOOLS, "reasoning_effort": "high"}, "Function tools with reasoning_effort are not supported for gpt-6-luna"),
    ("gpt-6-sol", {"tools": TOOLS}, "set reasoning_effort to 'none'"),
    ("gpt-6-astra", {"tools": TOOLS, "reasoning_effort": "none"}, "'reasoning_effort' does not support 'none' with this model"),
    ("gpt-6.1-sol", {"tools": TOOLS, "reasoning_effort": "low"}, "Function tools with reasoning_effort are not supported for gpt-6.1-sol"),
    ("gpt-6-luna", {"temperature": 0.0}, "Only the default (1) value is supported."),
    ("gpt-4.1", {"verbosity": "low"}, "Unsupported parameter: 'verbosity' is not supported with this model."),
    ("gpt-4.1-mini", {"reasoning_effort": "low"}, "Unsupported parameter: 'reasoning_effort'"),
    ("gpt-5", {"verbosity": "loud"}, "Supported values are: 'low', 'medium', and 'high'."),
    ("gpt-5-nano", {"max_completion_tokens": 500_000}, "max_completion_tokens is too large: 500000"),
    ("gpt-4.1", {"extra_body": {"top_k": 3}}, "Unrecognized request argument supplied: top_k"),
    ("gpt-4.1", {"stream_options": {"include_usage": True}}, "The 'stream_options' parameter is only allowed when 'stream' is enabled."),
    ("gpt-4.1", {"tool_choice": "auto"}, "'tool_choice' is only allowed when 'tools' are specified."),
    ("gpt-4.1", {"tools": [{"type": "function", "function": {"name": "web.search"}}]}, "Invalid 'tools[0].function.name': string does not match pattern. Expected a string that matches the pattern '^[a-zA-Z0-9_-]+$'."),
    ("gpt-4.1", {"tools": [{"type": "function", "function": {"name": "x" * 65}}]}, "string too long. Expected a string with maximum length 64"),
    ("gpt-4.1", {"tools": [{"type": "function", "function": {"name": "f", "parameters": {"type": "string"}}}]}, "Invalid schema for function 'f': schema must be a JSON Schema of 'type: \"object\"', got 'type: \"string\"'."),
    ("gpt-4.1", {"tools": [{"type": "function", "function": {"name": "f", "strict": True, "parameters": {"type": "object", "properties": {"a": {"type": "string"}}, "required": ["a"]}}}]}, "'additionalProperties' is required to be supplied and to be false."),
    ("gpt-4.1", {"tools": []}, "Invalid 'tools': empty array."),
]  # fmt: skip


@pytest.mark.parametrize(("model", "extra", "expected"), REJECTED, ids=[f"{m}-{e}" for m, _, e in REJECTED])
def test_a_request_breaking_a_rule_is_refused_with_openais_message(
    api: OpenAIReplica, model: str, extra: dict[str, Any], expected: str
) -> None:
    with pytest.raises(openai.BadRequestError) as exc:
        client(api).chat.completions.create(model=model, messages=[SYSTEM, USER], **extra)
    assert expected in describe_rejection(exc.value)
    assert exc.value.body["type"] == "invalid_request_error"
    assert api.rejections[-1].rejected == describe_rejection(exc.value)


BAD_MESSAGES = [
    ([SYSTEM, USER, tool_turn()[2]], "An assistant message with 'tool_calls' must be followed by tool messages responding to each 'tool_call_id'. The following tool_call_ids did not have response messages: call_1"),
    ([*tool_turn()[:3], USER, tool_turn()[3]], "did not have response messages: call_1"),
    ([SYSTEM, USER, {"role": "tool", "tool_call_id": "call_1", "content": "r"}], "Invalid parameter: messages with role 'tool' must be a response to a preceeding message with 'tool_calls'."),
    ([*tool_turn()[:3], {"role": "tool", "tool_call_id": "call_2", "content": "r"}], "'tool_call_id' of 'call_2' not found in 'tool_calls' of previous message."),
    ([SYSTEM, {"role": "user", "name": "Jane Doe", "content": "hi"}], "Invalid 'messages[1].name': string does not match pattern."),
    (tool_turn(name="web search"), "Invalid 'messages[2].tool_calls[0].function.name': string does not match pattern."),
    ([SYSTEM, {"role": "critic", "content": "hi"}], "Invalid value: 'critic'. Supported values are:"),
    ([], "Invalid 'messages': empty array."),
    ([{"role": "system", "content": [{"type": "image_url", "image_url": {"url": "https://x/y.png"}}]}, USER], "Image URLs are only allowed for messages with role 'user'"),
    ([{"role": "user", "content": [{"type": "image_url", "image_url": {"url": "/tmp/y.png"}}]}], "Expected a base64-encoded data URL with an image MIME type"),
]  # fmt: skip


@pytest.mark.parametrize(("messages", "expected"), BAD_MESSAGES, ids=[e[:50] for _, e in BAD_MESSAGES])
def test_a_conversation_the_api_refuses_is_refused(
    api: OpenAIReplica, messages: list[Any], expected: str
) -> None:
    with pytest.raises(openai.BadRequestError) as exc:
        client(api).chat.completions.create(model="gpt-4.1", messages=messages)
    assert expected in describe_rejection(exc.value)


def test_image_parts_need_a_vision_model(api: OpenAIReplica) -> None:
    image = {"role": "user", "content": [{"type": "text", "text": "what is this?"}, {"type": "image_url", "image_url": {"url": "data:image/png;base64,iVBORw0KGgo="}}]}  # fmt: skip
    assert (
        client(api).chat.completions.create(model="gpt-5-mini", messages=[image]).choices[0].message.content
        == "ok"
    )
    with pytest.raises(openai.BadRequestError) as exc:
        client(api).chat.completions.create(model="o3-mini", messages=[image])
    assert (
        describe_rejection(exc.value)
        == "Invalid content type. image_url is only supported by certain models."
    )


ACCEPTED = [
    (
        "gpt-5-mini",
        {"temperature": 1, "max_completion_tokens": 1000, "reasoning_effort": "minimal", "verbosity": "low"},
    ),
    ("gpt-5.4-mini", {"tools": TOOLS}),
    ("gpt-5.5", {"tools": TOOLS, "reasoning_effort": "none", "temperature": 0.2}),
    ("gpt-5.6-luna", {"tools": TOOLS, "reasoning_effort": "none"}),
    ("gpt-6-luna", {"tools": TOOLS, "reasoning_effort": "none", "temperature": 0.0}),
    ("gpt-6-astra", {"reasoning_effort": "max"}),
    (
        "gpt-4.1-mini",
        {
            "max_tokens": 500,
            "temperature": 0.0,
            "tools": TOOLS,
            "tool_choice": "auto",
            "parallel_tool_calls": False,
        },
    ),
    ("o4-mini", {"reasoning_effort": "high", "tools": TOOLS}),
]


@pytest.mark.parametrize(("model", "extra"), ACCEPTED, ids=[m for m, _ in ACCEPTED])
def test_a_request_the_api_accepts_is_answered(api: OpenAIReplica, model: str, extra: dict[str, Any]) -> None:
    reply = client(api).chat.completions.create(model=model, messages=tool_turn(), **extra)
    assert reply.choices[0].message.content == "ok"
    assert reply.model == model
    api.assert_clean()


def test_an_unknown_model_is_a_404_naming_it(api: OpenAIReplica) -> None:
    with pytest.raises(openai.NotFoundError) as exc:
        client(api).chat.completions.create(model="gpt-9-mini", messages=[USER])
    assert (
        describe_rejection(exc.value)
        == "The model `gpt-9-mini` does not exist or you do not have access to it."
    )
    assert exc.value.code == "model_not_found"
    with pytest.raises(openai.NotFoundError):
        client(api).models.retrieve("gpt-9-mini")
    api.add_model("gpt-9-mini", like="gpt-5.4-mini")
    assert (
        client(api).chat.completions.create(model="gpt-9-mini", messages=[USER]).choices[0].message.content
        == "ok"
    )


def test_the_model_list_is_the_catalogue(api: OpenAIReplica) -> None:
    ids = {m.id for m in client(api).models.list()}
    assert {"gpt-5.4-mini", "gpt-6-luna", "gpt-4.1", "o3"} <= ids


def test_a_key_is_required() -> None:
    with OpenAIReplica({"default": _echo}, api_key="sk-right-key-1234") as api:
        r = httpx.post(api.url + "/chat/completions", json={"model": "gpt-4.1", "messages": [USER]})
        assert r.status_code == 401 and "You didn't provide an API key" in r.json()["error"]["message"]
        with pytest.raises(openai.AuthenticationError) as exc:
            client(api, api_key="sk-wrong-key-9999").chat.completions.create(model="gpt-4.1", messages=[USER])
        assert exc.value.code == "invalid_api_key" and "Incorrect API key provided" in describe_rejection(
            exc.value
        )
        assert "sk-wrong-key" not in describe_rejection(exc.value)  # the key is masked, as OpenAI does


def test_a_429_carries_retry_after_and_the_sdk_honours_it() -> None:
    script = {"default": [{"status": 429, "headers": {"retry-after": "0"}}, "after the wait"]}
    with OpenAIReplica(script) as api:
        with pytest.raises(openai.RateLimitError) as exc:
            client(api).chat.completions.create(model="gpt-5-mini", messages=[USER])
        assert exc.value.response.headers["retry-after"] == "0"
        assert "Rate limit reached for gpt-5-mini" in describe_rejection(exc.value)
        assert api.requests[-1].status == 429 and api.requests[-1].rejected is None
    with OpenAIReplica(script) as api:
        reply = client(api, max_retries=1).chat.completions.create(model="gpt-5-mini", messages=[USER])
        assert reply.choices[0].message.content == "after the wait"
        assert [r.status for r in api.requests] == [429, 200]


def test_agents_are_told_apart_by_header_or_system_prompt() -> None:
    with OpenAIReplica({"planner": ["plan"], "critic": ["critique"]}) as api:
        c = client(api)
        assert (
            c.chat.completions.create(model="gpt-4.1", messages=[SYSTEM, USER]).choices[0].message.content
            == "plan"
        )
        reply = c.chat.completions.create(
            model="gpt-4.1", messages=[USER], extra_headers={"X-Agent": "critic"}
        )
        assert reply.choices[0].message.content == "critique"
        assert api.remaining("planner") == 0 and api.remaining("critic") == 0


def test_a_refused_request_consumes_no_step() -> None:
    with OpenAIReplica({"planner": ["only reply"]}) as api:
        with pytest.raises(openai.BadRequestError):
            client(api).chat.completions.create(model="gpt-5", messages=[SYSTEM, USER], max_tokens=10)
        assert api.remaining("planner") == 1
        assert (
            client(api)
            .chat.completions.create(model="gpt-5", messages=[SYSTEM, USER])
            .choices[0]
            .message.content
            == "only reply"
        )
        with pytest.raises(AssertionError, match="max_completion_tokens"):
            api.assert_clean()
