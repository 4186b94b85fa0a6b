"""The Anthropic replica, driven by the real `anthropic` SDK: valid traffic round-trips, each documented rule refuses
the request that breaks it with Anthropic's message, and 529/429 faults carry the headers the SDK obeys."""

from __future__ import annotations

import base64
import io
import json
from collections.abc import Iterator
from typing import Any

import anthropic
import httpx
import pytest
from PIL import Image

from tests.fakes.replicas import AnthropicReplica, describe_rejection

TOOLS = [
    {
        "name": "web_search",
        "description": "Search the web.",
        "input_schema": {
            "type": "object",
            "properties": {"query": {"type": "string"}},
            "required": ["query"],
        },
    }
]
SYSTEM = "You are critic, a careful agent."
USER = {"role": "user", "content": "Who wrote it?"}
HEADERS = {"x-api-key": "k", "anthropic-version": "2023-06-01"}


def _echo(req: Any) -> str:
    return "ok"


@pytest.fixture
def api() -> Iterator[AnthropicReplica]:
    with AnthropicReplica({"default": _echo}) as server:
        yield server


def client(api: AnthropicReplica, max_retries: int = 0) -> anthropic.Anthropic:
    return anthropic.Anthropic(base_url=api.url, api_key="k", max_retries=max_retries)


def png(width: int, height: int) -> str:
    buf = io.BytesIO()
    Image.new("L", (width, height)).save(buf, format="PNG")
    return base64.b64encode(buf.getvalue()).decode()


def image_block(data: str, media_type: str = "image/png") -> dict[str, Any]:
    return {"type": "image", "source": {"type": "base64", "media_type": media_type, "data": data}}


def tool_exchange(use_id: str = "toolu_1") -> list[dict[str, Any]]:
    return [
        USER,
        {
            "role": "assistant",
            "content": [{"type": "tool_use", "id": use_id, "name": "web_search", "input": {"query": "x"}}],
        },
        {"role": "user", "content": [{"type": "tool_result", "tool_use_id": use_id, "content": "Jane Doe"}]},
    ]


@pytest.mark.parametrize("model", ["claude-sonnet-4-5", "claude-opus-5-5"])
@pytest.mark.parametrize("stream", [False, True])
def test_a_tool_call_round_trips(model: str, stream: bool) -> None:
    script = {
        "critic": [
            {
                "content": "Let me check.",
                "tool_calls": [{"name": "web_search", "arguments": {"query": "author"}}],
            },
            "Jane Doe wrote it.",
        ]
    }
    with AnthropicReplica(script) as api:
        c = client(api)
        args: dict[str, Any] = {"model": model, "max_tokens": 2048, "system": SYSTEM, "tools": TOOLS}
        messages: list[Any] = [USER]
        if stream:
            with c.messages.stream(messages=messages, **args) as s:
                first = s.get_final_message()
        else:
            first = c.messages.create(messages=messages, **args)
        assert first.stop_reason == "tool_use"
        text, use = first.content
        assert text.text == "Let me check." and use.name == "web_search" and use.input == {"query": "author"}
        messages += [
            {"role": "assistant", "content": [b.model_dump(exclude_none=True) for b in first.content]},
            {
                "role": "user",
                "content": [{"type": "tool_result", "tool_use_id": use.id, "content": "Jane Doe"}],
            },
        ]
        second = c.messages.create(messages=messages, **args)
        assert second.content[0].text == "Jane Doe wrote it." and second.stop_reason == "end_turn"
        assert second.usage.input_tokens > first.usage.input_tokens
        api.assert_clean()
        assert [r.agent for r in api.requests] == ["critic", "critic"]


def test_the_stream_follows_the_documented_event_sequence() -> None:
    script = {
        "default": [
            {
                "content": "Hm.",
                "tool_calls": [{"name": "web_search", "arguments": {"query": "long query text"}}],
            }
        ]
    }
    with AnthropicReplica(script) as api:
        body = {
            "model": "claude-haiku-4-5",
            "max_tokens": 100,
            "messages": [USER],
            "tools": TOOLS,
            "stream": True,
        }
        r = httpx.post(api.url + "/v1/messages", json=body, headers=HEADERS)
    events = [line[7:] for line in r.text.splitlines() if line.startswith("event: ")]
    data = [json.loads(line[6:]) for line in r.text.splitlines() if line.startswith("data: ")]
    assert [d["type"] for d in data] == events
    assert events[:3] == ["message_start", "ping", "content_block_start"]
    assert events[-2:] == ["message_delta", "message_stop"]
    assert data[0]["message"]["content"] == [] and data[0]["message"]["usage"]["input_tokens"] > 0
    tool_start = next(
        d for d in data if d["type"] == "content_block_start" and d["content_block"]["type"] == "tool_use"
    )
    assert tool_start["index"] == 1 and tool_start["content_block"]["input"] == {}
    fragments = [
        d["delta"]["partial_json"] for d in data if d["type"] == "content_block_delta" and d["index"] == 1
    ]
    assert fragments[0] == "" and json.loads("".join(fragments)) == {"query": "long query text"}
    assert events.count("content_block_stop") == 2
    assert data[-2]["delta"]["stop_reason"] == "tool_use" and data[-2]["usage"]["output_tokens"] > 0


REJECTED = [
    ("claude-sonnet-4-5", {"messages": [{"role": "system", "content": "Be brief."}, USER]}, 'messages: Unexpected role "system". The Messages API accepts a top-level `system` parameter, not "system" as an input message role.'),
    ("claude-opus-4-8", {"messages": [{"role": "system", "content": "Be brief."}, USER]}, "must immediately follow a user turn"),
    ("claude-sonnet-4-5", {"messages": tool_exchange()[:2] + [USER]}, "messages.1: `tool_use` ids were found without `tool_result` blocks immediately after: toolu_1. Each `tool_use` block must have a corresponding `tool_result` block in the next message."),
    ("claude-sonnet-4-5", {"messages": [USER, {"role": "assistant", "content": "hm"}, tool_exchange()[2]]}, "messages.2.content.0: unexpected `tool_use_id` found in `tool_result` blocks: toolu_1. Each `tool_result` block must have a corresponding `tool_use` block in the previous message."),
    ("claude-opus-4-7", {"temperature": 0.0}, "`temperature` is deprecated for this model."),
    ("claude-opus-4-7", {"temperature": 1.0}, "`temperature` is deprecated for this model."),
    ("claude-sonnet-5", {"temperature": 0.3}, "`temperature` is deprecated for this model."),
    ("claude-opus-5", {"top_p": 0.9}, "`top_p` is deprecated for this model."),
    ("claude-haiku-5-5", {"top_k": 5}, "`top_k` is deprecated for this model."),
    ("claude-sonnet-4-5", {"temperature": 0.5, "top_p": 0.9}, "`temperature` and `top_p` cannot both be specified for this model. Please use only one."),
    ("claude-opus-4-7", {"thinking": {"type": "enabled", "budget_tokens": 2048}}, '"thinking.type.enabled" is not supported for this model. Use "thinking.type.adaptive" and "output_config.effort" to control thinking behavior.'),
    ("claude-sonnet-4-5", {"max_tokens": 2000, "thinking": {"type": "enabled", "budget_tokens": 4000}}, "`max_tokens` must be greater than `thinking.budget_tokens`."),
    ("claude-sonnet-4-5", {"thinking": {"type": "enabled", "budget_tokens": 500}}, "budget_tokens: Input should be greater than or equal to 1024"),
    ("claude-sonnet-4-6", {"temperature": 0.5, "thinking": {"type": "adaptive"}}, "temperature may only be set to 1 when thinking is enabled or in adaptive mode"),
    ("claude-opus-5", {"tools": TOOLS, "tool_choice": {"type": "any"}}, "Thinking may not be enabled when tool_choice forces tool use."),
    ("claude-opus-4-6", {"output_config": {"effort": "xhigh"}}, "output_config.effort: Input should be"),
    ("claude-haiku-4-5", {"max_tokens": 100_000, "stream": True}, "max_tokens: 100000 > 64000, which is the maximum allowed number of output tokens for claude-haiku-4-5"),
    ("claude-sonnet-4-5", {"tools": [{"name": "web.search", "input_schema": {"type": "object"}}]}, "tools.0.custom.name: String should match pattern '^[a-zA-Z0-9_-]{1,64}$'"),
    ("claude-sonnet-4-5", {"tools": [{"name": "f", "input_schema": {"type": "string"}}]}, "tools.0.custom.input_schema.type: Input should be 'object'"),
    ("claude-sonnet-4-5", {"tools": TOOLS + TOOLS}, "tools: Tool names must be unique."),
    ("claude-sonnet-4-5", {"messages": [{"role": "user", "content": [{"type": "text", "text": ""}]}]}, "messages: text content blocks must be non-empty"),
    ("claude-sonnet-4-5", {"messages": [{"role": "user", "content": ""}, {"role": "assistant", "content": "x"}]}, "messages.0: all messages must have non-empty content except for the optional final assistant message"),
    ("claude-sonnet-4-5", {"extra_body": {"reasoning_effort": "low"}}, "reasoning_effort: Extra inputs are not permitted"),
    ("claude-sonnet-4-5", {"messages": [{"role": "user", "content": [image_block(png(8001, 2))]}]}, "messages.0.content.0.image.source.base64.data: At least one of the image dimensions exceed max allowed size: 8000 pixels"),
    ("claude-sonnet-4-5", {"messages": [{"role": "user", "content": [image_block("A" * (5 * 1024 * 1024 + 4))]}]}, "image exceeds 5 MB maximum: 5242884 bytes > 5242880 bytes"),
    ("claude-sonnet-4-5", {"messages": [{"role": "user", "content": [image_block(png(10, 10), "image/jpeg")]}]}, "Image does not match the provided media type image/jpeg"),
    ("claude-sonnet-4-5", {"messages": [{"role": "user", "content": [image_block(png(10, 10), "image/bmp")]}]}, "media_type: Input should be 'image/jpeg', 'image/png', 'image/gif' or 'image/webp'"),
    ("claude-sonnet-4-5", {"messages": [{"role": "user", "content": [image_block(png(2500, 10))] * 21}]}, "exceed max allowed size for many-image requests: 2000 pixels"),
    ("claude-sonnet-4-5", {"messages": [{"role": "user", "content": [{"type": "tool_result", "tool_use_id": "t", "content": [image_block(png(9000, 2))]}]}]}, "unexpected `tool_use_id`"),
]  # fmt: skip


@pytest.mark.parametrize(
    ("model", "extra", "expected"), REJECTED, ids=[f"{m}-{e[:40]}" for m, _, e in REJECTED]
)
def test_a_request_breaking_a_rule_is_refused_with_anthropics_message(
    api: AnthropicReplica, model: str, extra: dict[str, Any], expected: str
) -> None:
    args = {"max_tokens": 1024, "messages": [USER], **extra}
    with pytest.raises(anthropic.BadRequestError) as exc:
        client(api).messages.create(model=model, **args)
    assert expected in describe_rejection(exc.value)
    assert exc.value.body["type"] == "error" and exc.value.body["error"]["type"] == "invalid_request_error"
    assert exc.value.response.headers["x-should-retry"] == "false"
    assert exc.value.response.headers["request-id"] == exc.value.body["request_id"]
    assert api.rejections[-1].rejected == describe_rejection(exc.value)


ACCEPTED = [
    (
        "claude-sonnet-4-5",
        {"temperature": 0.0, "messages": [USER, USER]},
    ),  # consecutive turns are combined (docs)
    ("claude-haiku-4-5", {"thinking": {"type": "enabled", "budget_tokens": 1024}, "max_tokens": 2048}),
    (
        "claude-sonnet-4-6",
        {"thinking": {"type": "adaptive"}, "temperature": 1.0, "output_config": {"effort": "max"}},
    ),
    (
        "claude-opus-4-7",
        {"thinking": {"type": "adaptive"}, "output_config": {"effort": "xhigh"}, "tools": TOOLS},
    ),
    ("claude-opus-4-8", {"messages": [USER, {"role": "system", "content": "Now be brief."}]}),
    ("claude-opus-5-5", {"messages": tool_exchange(), "tools": TOOLS}),
    (
        "claude-sonnet-5-5",
        {
            "messages": [
                {"role": "user", "content": [{"type": "text", "text": "what?"}, image_block(png(100, 100))]}
            ]
        },
    ),
    ("claude-sonnet-4-5-20250929", {"tools": TOOLS, "tool_choice": {"type": "any"}}),
]


@pytest.mark.parametrize(("model", "extra"), ACCEPTED, ids=[m for m, _ in ACCEPTED])
def test_a_request_the_api_accepts_is_answered(
    api: AnthropicReplica, model: str, extra: dict[str, Any]
) -> None:
    args = {"max_tokens": 1024, "messages": [USER], **extra}
    reply = client(api).messages.create(model=model, **args)
    assert reply.content[0].text == "ok" and reply.model == model
    api.assert_clean()


def test_strict_alternation_is_opt_in() -> None:
    with AnthropicReplica({"default": _echo}, enforce_alternation=True) as api:
        with pytest.raises(anthropic.BadRequestError) as exc:
            client(api).messages.create(model="claude-sonnet-4-5", max_tokens=10, messages=[USER, USER])
        assert (
            'roles must alternate between "user" and "assistant", but found multiple "user" roles'
            in describe_rejection(exc.value)
        )


def test_temperature_one_passes_only_when_allowed() -> None:
    with AnthropicReplica({"default": _echo}, accept_default_temperature=True) as api:
        c = client(api)
        assert (
            c.messages.create(model="claude-opus-4-7", max_tokens=10, temperature=1.0, messages=[USER])
            .content[0]
            .text
            == "ok"
        )
        with pytest.raises(anthropic.BadRequestError):
            c.messages.create(model="claude-opus-4-7", max_tokens=10, temperature=0.7, messages=[USER])


def test_budget_thinking_requires_the_thinking_block_back(api: AnthropicReplica) -> None:
    turn = tool_exchange()
    args = {
        "model": "claude-sonnet-4-5",
        "max_tokens": 4096,
        "thinking": {"type": "enabled", "budget_tokens": 2048},
    }
    with pytest.raises(anthropic.BadRequestError) as exc:
        client(api).messages.create(messages=turn, **args)
    assert "Expected `thinking` or `redacted_thinking`, but found `tool_use`" in describe_rejection(exc.value)
    turn[1]["content"].insert(0, {"type": "thinking", "thinking": "hm", "signature": "c2ln"})
    assert client(api).messages.create(messages=turn, **args).content[0].text == "ok"


def test_raw_protocol_errors(api: AnthropicReplica) -> None:
    body = {"model": "claude-sonnet-4-5", "max_tokens": 10, "messages": [USER]}
    r = httpx.post(api.url + "/v1/messages", json=body, headers={"x-api-key": "k"})
    assert r.status_code == 400 and r.json()["error"]["message"] == "anthropic-version: header is required"
    r = httpx.post(api.url + "/v1/messages", json=body, headers={"anthropic-version": "2023-06-01"})
    assert r.status_code == 401 and r.json()["error"]["type"] == "authentication_error"
    r = httpx.post(
        api.url + "/v1/messages", json={"model": "claude-sonnet-4-5", "messages": [USER]}, headers=HEADERS
    )
    assert r.json() == {"type": "error", "error": {"type": "invalid_request_error", "message": "max_tokens: Field required"}, "request_id": r.headers["request-id"]}  # fmt: skip


def test_an_unknown_model_is_a_404_naming_it(api: AnthropicReplica) -> None:
    with pytest.raises(anthropic.NotFoundError) as exc:
        client(api).messages.create(model="claude-opus-9", max_tokens=10, messages=[USER])
    assert describe_rejection(exc.value) == "model: claude-opus-9"
    assert exc.value.body["error"]["type"] == "not_found_error"
    listed = {m.id for m in client(api).models.list()}
    assert {"claude-sonnet-4-5", "claude-opus-4-7", "claude-opus-5-5", "claude-haiku-5-5"} <= listed
    assert client(api).models.retrieve("claude-opus-4-7").display_name == "Claude Opus 4.7"


def test_a_529_is_overloaded_and_retried_as_its_header_says() -> None:
    script = {"default": [{"status": 529}, "after the overload"]}
    with AnthropicReplica(script) as api:
        with pytest.raises(anthropic.APIStatusError) as exc:
            client(api).messages.create(model="claude-haiku-4-5", max_tokens=10, messages=[USER])
        assert exc.value.status_code == 529
        assert exc.value.body["error"] == {"type": "overloaded_error", "message": "Overloaded"}
        assert exc.value.response.headers["x-should-retry"] == "true"
    with AnthropicReplica(script) as api:
        reply = client(api, max_retries=1).messages.create(
            model="claude-haiku-4-5", max_tokens=10, messages=[USER]
        )
        assert reply.content[0].text == "after the overload"
        assert [r.status for r in api.requests] == [529, 200]
    refused = {"default": [{"status": 529, "headers": {"x-should-retry": "false"}}, "never sent"]}
    with AnthropicReplica(refused) as api:
        with pytest.raises(anthropic.APIStatusError):
            client(api, max_retries=2).messages.create(
                model="claude-haiku-4-5", max_tokens=10, messages=[USER]
            )
        assert [r.status for r in api.requests] == [529]


def test_a_429_carries_retry_after() -> None:
    script = {"default": [{"status": 429, "headers": {"retry-after": "0"}}, "after the wait"]}
    with AnthropicReplica(script) as api:
        with pytest.raises(anthropic.RateLimitError) as exc:
            client(api).messages.create(model="claude-sonnet-4-6", max_tokens=10, messages=[USER])
        assert exc.value.response.headers["retry-after"] == "0"
        assert exc.value.body["error"]["type"] == "rate_limit_error"
        reply = client(api, max_retries=1).messages.create(
            model="claude-sonnet-4-6", max_tokens=10, messages=[USER]
        )
        assert reply.content[0].text == "after the wait"


def test_an_overload_mid_stream_is_an_error_event() -> None:
    with AnthropicReplica({"default": [{"stream_error": "overloaded_error"}]}) as api:
        with pytest.raises(anthropic.APIStatusError) as exc:
            with client(api).messages.stream(model="claude-opus-5", max_tokens=100, messages=[USER]) as s:
                s.get_final_message()
        assert "Overloaded" in str(exc.value)


def test_a_scripted_thinking_block_streams_with_its_signature() -> None:
    with AnthropicReplica({"default": [{"thinking": "Let me think.", "content": "Done."}]}) as api:
        with client(api).messages.stream(model="claude-opus-5", max_tokens=100, messages=[USER]) as s:
            message = s.get_final_message()
    thinking, text = message.content
    assert thinking.type == "thinking" and thinking.thinking == "Let me think." and thinking.signature
    assert text.text == "Done."
