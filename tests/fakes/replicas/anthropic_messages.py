"""A strict replica of Anthropic's Messages API: `POST /v1/messages`, `GET /v1/models`, `GET /v1/models/{id}`.

Usage: `with AnthropicReplica(script) as api: anthropic.Anthropic(base_url=api.url, api_key="k")` (`url` has no
/v1: the SDK adds it). Recording and the script format: tests/fakes/replicas/common.py.

Enforced (errors in Anthropic's shape `{"type": "error", "error": {"type", "message"}, "request_id"}` with the
`request-id` header, and `x-should-retry: false` on request errors):
- `x-api-key` (401 authentication_error), the `anthropic-version` header ("anthropic-version: header is required");
- `model`, `max_tokens` and `messages` required ("max_tokens: Field required"), unknown fields ("x: Extra inputs are
  not permitted"), the catalogue (404 not_found_error "model: x"), `max_tokens` against the model's output limit;
- the system prompt only as top-level `system`: a `system`-role message is refused ("Unexpected role "system" ...")
  except on models from Opus 4.8 on, which accept a mid-conversation system message right after a user turn;
- roles "user"/"assistant"; non-empty content; `tool_use` only in assistant turns, `tool_result` only in user turns;
  each `tool_use` answered by a `tool_result` in the next message ("`tool_use` ids were found without `tool_result`
  blocks immediately after: ..."), no `tool_result` without a `tool_use` in the previous message ("unexpected
  `tool_use_id` found in `tool_result` blocks"); tool names `^[a-zA-Z0-9_-]{1,64}$`, unique, with an
  `input_schema` of type object; tool_use ids `^[a-zA-Z0-9_-]+$`;
- sampling: Claude Opus 4.7 and later (4.8, 5, 5.5, Sonnet 5/5.5, Haiku 5.5) refuse `temperature`, `top_p` and
  `top_k` ("`temperature` is deprecated for this model.", quoted from the live API in many issue threads). The
  stored sources conflict on whether `temperature: 1` passes (memberjunction's summary of the thinking docs says
  the default value is accepted with anthropic-version 2023-06-01; other reports say any value is a 400), so by
  default ANY value is refused; `AnthropicReplica(accept_default_temperature=True)` accepts exactly 1. The 4.5/4.6
  models refuse `temperature` together with `top_p` ("`temperature` and `top_p` cannot both be specified for this
  model. Please use only one."); `temperature` in [0, 1];
- thinking: budget thinking (`type: enabled`) is refused from Opus 4.7 on (""thinking.type.enabled" is not supported
  for this model. Use "thinking.type.adaptive" ..."); adaptive thinking from 4.6 on; `budget_tokens` >= 1024 and
  < `max_tokens`; with thinking on, older models take only temperature 1, no top_k, top_p in [0.95, 1]; thinking is
  not allowed with a `tool_choice` that forces a tool; with `type: enabled` the last assistant turn carrying
  tool_use must start with a thinking block; `output_config.effort` values per model (xhigh from 4.7 on); Opus 5 and
  5.5 refuse thinking disabled with effort xhigh/max; thinking is on by default from Opus/Sonnet 5;
- images (also inside tool_result): media type jpeg/png/gif/webp and matching the bytes, base64 data over 5 MB
  (5,242,880 bytes of base64 text) refused, any side over 8000 px refused, over 2000 px when a request carries
  more than 20 images.
Not enforced: the old strict role alternation. Anthropic's Messages reference says "Consecutive user or assistant
turns in your request will be combined into a single turn", and anthropics/courses#79 reports that an
assistant-first request no longer fails; `AnthropicReplica(enforce_alternation=True)` restores the 2024 errors
("roles must alternate ...", "first message must use the "user" role"). Also not enforced: documents/PDF limits,
prompt-cache rules, server tools, the 32 MB request limit, rate limits (script a 429), token counting.

Faults: a step `{"status": 529}` answers `overloaded_error` ("Overloaded"), `{"status": 429}` `rate_limit_error`
with `retry-after`; 5xx/429/529 carry `x-should-retry: true` unless the step's headers say otherwise (the SDK obeys
that header before anything else); `{"stream_error": "overloaded_error"}` sends an SSE `error` event after
`message_start` when streaming (a 529 otherwise).
Streaming follows the documented sequence: message_start (empty content, usage), ping, for each block
content_block_start / content_block_delta (text_delta, thinking_delta + signature_delta, input_json_delta starting
with an empty partial_json) / content_block_stop, message_delta (stop_reason, usage), message_stop.

Sources (stored copies): platform.claude.com/docs build-with-claude/streaming, build-with-claude/
mid-conversation-system-messages, about-claude/models (whats-new-claude-4-7/4-8, migration guide via
openrouter.ai/docs/guides/.../claude-4-7 and claude-5-sonnet), learn.microsoft.com dev-proxy
"anthropic-529-overloaded-error" (error shape, 429 vs 529, retry-after), docs.memberjunction.org
RejectsSamplingParams/ResolveSamplingParams/UsesAdaptiveThinking (sampling and thinking rules, quoted errors), and
live-API error texts quoted in issues: lobehub#1496/#1601 (alternation, x-should-retry), Maol-1997/
cursor-claude-connector#3 (system role), anthropics/claude-code#1237/#5989 (tool_use pairing), #5147/#9375
(image dimensions), Mintplex-Labs/anything-llm#5461, danielmiessler/Fabric#2109 (temperature deprecated),
SalesforceAIResearch/MCP-Universe#49 (temperature + top_p), NousResearch/hermes-agent#11137 (thinking.type.enabled),
BuilderIO/agent-native 0.164.25 (temperature with thinking), PipedreamHQ/pipedream#9697 (anthropic-version),
tailcallhq/forgecode#1142 (tool_use id pattern), anthropics/anthropic-sdk-python#1692 (x-should-retry).
Model ids: claude-sonnet-4-5(-20250929), claude-haiku-4-5(-20251001), claude-sonnet-4-6, claude-opus-4-6,
claude-opus-4-7, claude-opus-4-8, claude-opus-5, claude-sonnet-5 are in the installed anthropic SDK's model list;
claude-opus-5-5 appears in the streaming docs; claude-sonnet-5-5 and claude-haiku-5-5 follow the same pattern (seen
only in release notes naming "Sonnet 5.5"/"Haiku 5.5"). Output limits are approximate. Messages marked "(wording
ours)" in the code could not be found verbatim.
"""

from __future__ import annotations

import base64
import binascii
import io
import json
import re
import time
import uuid
from dataclasses import dataclass, replace
from typing import Any

from tests.fakes.replicas.common import (
    Rejection,
    ReplicaHandler,
    ReplicaRequest,
    ReplicaServer,
    Script,
    agent_from_system,
    content_text,
    normalise_calls,
    prompt_tokens_of,
    step_spec,
    text_pieces,
)
from tests.fakes.scripted_llm import count_tokens

TOOL_NAME = re.compile(r"^[a-zA-Z0-9_-]{1,64}$")
TOOL_ID = re.compile(r"^[a-zA-Z0-9_-]+$")
IMAGE_TYPES = ("image/jpeg", "image/png", "image/gif", "image/webp")
MAX_IMAGE_BASE64 = 5 * 1024 * 1024
MAX_IMAGE_SIDE = 8000
MANY_IMAGES, MANY_IMAGE_SIDE = 20, 2000
API_VERSIONS = ("2023-06-01", "2023-01-01", "2026-10-21")

KNOWN_FIELDS = frozenset(
    {
        "model", "messages", "max_tokens", "system", "metadata", "stop_sequences", "stream", "temperature", "top_p",
        "top_k", "tools", "tool_choice", "thinking", "service_tier", "container", "mcp_servers", "output_config",
        "output_format", "context_management", "inference_geo",
    }
)  # fmt: skip

ERROR_TYPES = {
    400: "invalid_request_error",
    401: "authentication_error",
    402: "billing_error",
    403: "permission_error",
    404: "not_found_error",
    413: "request_too_large",
    429: "rate_limit_error",
    500: "api_error",
    504: "timeout_error",
    529: "overloaded_error",
}


@dataclass(frozen=True)
class ClaudeModel:
    display_name: str
    version: tuple[int, int]
    max_output: int = 64_000
    efforts: tuple[str, ...] = ()  # output_config.effort values; empty: no effort control
    thinking_by_default: bool = False
    created_at: str = "2025-09-29T00:00:00Z"

    @property
    def sampling_removed(self) -> bool:
        return self.version >= (4, 7)

    @property
    def adaptive_only(self) -> bool:
        return self.version >= (4, 7)

    @property
    def adaptive(self) -> bool:
        return self.version >= (4, 6)

    @property
    def mid_conversation_system(self) -> bool:
        return self.version >= (4, 8)


_E46 = ("low", "medium", "high", "max")
_E47 = ("low", "medium", "high", "xhigh", "max")
_SONNET45 = ClaudeModel("Claude Sonnet 4.5", (4, 5))
_HAIKU45 = ClaudeModel("Claude Haiku 4.5", (4, 5), created_at="2025-10-01T00:00:00Z")
_OPUS48 = ClaudeModel("Claude Opus 4.8", (4, 8), 128_000, _E47, created_at="2026-05-28T00:00:00Z")

CLAUDE_MODELS: dict[str, ClaudeModel] = {
    "claude-sonnet-4-5": _SONNET45,
    "claude-sonnet-4-5-20250929": _SONNET45,
    "claude-haiku-4-5": _HAIKU45,
    "claude-haiku-4-5-20251001": _HAIKU45,
    "claude-sonnet-4-6": ClaudeModel(
        "Claude Sonnet 4.6", (4, 6), 64_000, _E46, created_at="2026-02-17T00:00:00Z"
    ),
    "claude-opus-4-6": ClaudeModel(
        "Claude Opus 4.6", (4, 6), 128_000, _E46, created_at="2026-02-05T00:00:00Z"
    ),
    "claude-opus-4-7": ClaudeModel(
        "Claude Opus 4.7", (4, 7), 128_000, _E47, created_at="2026-04-16T00:00:00Z"
    ),
    "claude-opus-4-8": _OPUS48,
    "claude-opus-4-8-20260528": _OPUS48,
    "claude-opus-5": ClaudeModel("Claude Opus 5", (5, 0), 128_000, _E47, True, "2026-07-24T00:00:00Z"),
    "claude-sonnet-5": ClaudeModel("Claude Sonnet 5", (5, 0), 128_000, _E47, True, "2026-06-30T00:00:00Z"),
    "claude-opus-5-5": ClaudeModel("Claude Opus 5.5", (5, 5), 128_000, _E47, True, "2026-10-01T00:00:00Z"),
    "claude-sonnet-5-5": ClaudeModel(
        "Claude Sonnet 5.5", (5, 5), 128_000, _E47, True, "2026-10-01T00:00:00Z"
    ),
    "claude-haiku-5-5": ClaudeModel("Claude Haiku 5.5", (5, 5), 64_000, _E47, True, "2026-10-01T00:00:00Z"),
}

_OPUS_5_FAMILY = {"Claude Opus 5", "Claude Opus 5.5"}


def _system_text(system: Any) -> str:
    return content_text(system)


class AnthropicReplica(ReplicaServer):
    base_path = ""

    def __init__(
        self,
        script: Script | None = None,
        *,
        models: dict[str, ClaudeModel] | None = None,
        api_key: str | None = None,
        accept_default_temperature: bool = False,
        enforce_alternation: bool = False,
        **kwargs: Any,
    ) -> None:
        self.models = dict(models if models is not None else CLAUDE_MODELS)
        self.api_key = api_key
        self.accept_default_temperature = accept_default_temperature
        self.enforce_alternation = enforce_alternation
        super().__init__(script, **kwargs)

    def add_model(self, name: str, like: str) -> None:
        self.models[name] = replace(self.models[like])

    def system_text(self, body: dict[str, Any]) -> str:
        return _system_text(body.get("system"))

    def _identify(self, body: dict[str, Any], headers: dict[str, str]) -> str:
        if (name := headers.get("x-agent")) and name in self.script:
            return name
        if isinstance(body.get("model"), str) and body["model"] in self.script:
            return str(body["model"])
        return agent_from_system(self.system_text(body)) or "default"

    # --- errors ----------------------------------------------------------------------------------------
    def error(
        self, status: int, message: str, *, type: str | None = None, headers: dict[str, str] | None = None
    ) -> Rejection:
        request_id = "req_" + uuid.uuid4().hex[:24]
        body = {
            "type": "error",
            "error": {"type": type or ERROR_TYPES.get(status, "api_error"), "message": message},
        }
        body["request_id"] = request_id
        retryable = status in (408, 409, 429) or status >= 500
        all_headers = {"request-id": request_id, "x-should-retry": "true" if retryable else "false"}
        all_headers.update(headers or {})
        return Rejection(status, body, message, all_headers)

    def invalid(self, message: str) -> Rejection:
        return self.error(400, message)

    def malformed_body(self, detail: str) -> Rejection:
        return self.invalid(f"There was an issue with your request body: {detail}")

    def fault(self, status: int, spec: dict[str, Any]) -> Rejection:
        defaults = {
            529: "Overloaded",
            429: "Number of request tokens has exceeded your per-minute rate limit",
            500: "Internal server error",
        }
        headers = dict(spec.get("headers") or {})
        if status == 429:
            headers.setdefault("retry-after", "1")
        rejection = self.error(
            status,
            spec.get("message") or defaults.get(status, "scripted error"),
            type=spec.get("type"),
            headers=headers,
        )
        if "body" in spec:
            rejection.body = spec["body"]
        return rejection

    # --- routes ----------------------------------------------------------------------------------------
    def authenticate(self, headers: dict[str, str]) -> None:
        key = headers.get("x-api-key")
        if not key:
            raise self.error(401, "x-api-key header is required")
        if self.api_key is not None and key != self.api_key:
            raise self.error(401, "invalid x-api-key")
        version = headers.get("anthropic-version")
        if not version:
            raise self.invalid("anthropic-version: header is required")
        if version not in API_VERSIONS:
            raise self.invalid(f"anthropic-version: invalid version {version!r}")  # (wording ours)

    def model_object(self, name: str) -> dict[str, Any]:
        spec = self.models[name]
        return {"type": "model", "id": name, "display_name": spec.display_name, "created_at": spec.created_at}

    def handle_get(self, h: ReplicaHandler, path: str) -> None:
        self.authenticate(h.lower_headers)
        if path == "/v1/models":
            data = [self.model_object(name) for name in self.models]
            h.send_json(
                200,
                {
                    "data": data,
                    "has_more": False,
                    "first_id": data[0]["id"] if data else None,
                    "last_id": data[-1]["id"] if data else None,
                },
            )
        elif path.startswith("/v1/models/"):
            name = path[len("/v1/models/") :]
            if name not in self.models:
                raise self.error(404, f"model: {name}")
            h.send_json(200, self.model_object(name))
        else:
            raise self.error(404, "Not Found")

    def handle_post(self, h: ReplicaHandler, path: str, body: dict[str, Any]) -> None:
        headers = h.lower_headers
        if path != "/v1/messages":
            raise self.error(404, "Not Found")
        req = ReplicaRequest(
            agent=self.identify(body, headers),
            path=path,
            body=body,
            headers=headers,
            prompt_tokens=prompt_tokens_of(body, _system_text(body.get("system"))),
            stream=body.get("stream") is True,
        )
        try:
            self.authenticate(headers)
            spec = self.validate(body, headers)
        except Rejection as r:
            req.status, req.rejected = r.status, r.message
            self.record(req)
            raise
        self.record(req)
        step = self.next_step(req)
        if step is None:
            req.status = 500
            raise self.error(500, f"replica script exhausted for agent {req.agent!r}")
        try:
            self.reply(h, req, step_spec(step), spec)
        except Rejection as r:
            req.status = r.status  # a scripted fault: recorded with its status, not as a rule violation
            raise

    # --- checks ----------------------------------------------------------------------------------------
    def validate(self, body: dict[str, Any], headers: dict[str, str]) -> ClaudeModel:
        for name in ("model", "messages", "max_tokens"):
            if name not in body:
                raise self.invalid(f"{name}: Field required")
        for key in body:
            if key not in KNOWN_FIELDS:
                raise self.invalid(f"{key}: Extra inputs are not permitted")
        spec = self.models.get(str(body["model"]))
        if spec is None:
            raise self.error(404, f"model: {body['model']}")
        max_tokens = body["max_tokens"]
        if not isinstance(max_tokens, int) or isinstance(max_tokens, bool) or max_tokens < 1:
            raise self.invalid("max_tokens: Input should be greater than or equal to 1")
        if max_tokens > spec.max_output:
            raise self.invalid(
                f"max_tokens: {max_tokens} > {spec.max_output}, which is the maximum allowed number of output tokens "
                f"for {body['model']}"
            )
        system = body.get("system")
        if system is not None and not isinstance(system, (str, list)):
            raise self.invalid("system: Input should be a valid string")
        thinking_on = self.check_thinking(body, spec)
        self.check_sampling(body, spec, thinking_on, headers.get("anthropic-version", ""))
        self.check_tools(body, thinking_on)
        self.check_messages(
            body["messages"], spec, thinking_explicit=(body.get("thinking") or {}).get("type") == "enabled"
        )
        return spec

    def check_thinking(self, body: dict[str, Any], spec: ClaudeModel) -> bool:
        thinking = body.get("thinking")
        effort = (body.get("output_config") or {}).get("effort")
        if effort is not None:
            if not spec.efforts:
                raise self.invalid(
                    "output_config.effort: effort is not supported for this model"
                )  # (wording ours)
            if effort not in spec.efforts:
                allowed = ", ".join(f"'{e}'" for e in spec.efforts)
                raise self.invalid(f"output_config.effort: Input should be {allowed}")
        if thinking is None:
            return spec.thinking_by_default
        kind = thinking.get("type") if isinstance(thinking, dict) else None
        if kind not in ("enabled", "disabled", "adaptive"):
            raise self.invalid(
                f"thinking: Input tag '{kind}' found using 'type' does not match any of the expected tags: 'adaptive', 'disabled', 'enabled'"
            )
        if kind == "enabled":
            if spec.adaptive_only:
                raise self.invalid(
                    '"thinking.type.enabled" is not supported for this model. Use "thinking.type.adaptive" and '
                    '"output_config.effort" to control thinking behavior.'
                )
            budget = thinking.get("budget_tokens")
            if not isinstance(budget, int) or budget < 1024:
                raise self.invalid(
                    "thinking.enabled.budget_tokens: Input should be greater than or equal to 1024"
                )
            if budget >= body["max_tokens"]:
                raise self.invalid(
                    "`max_tokens` must be greater than `thinking.budget_tokens`. Please consult our documentation at "
                    "https://docs.claude.com/en/docs/build-with-claude/extended-thinking#max-tokens-and-context-window-size"
                )
            return True
        if kind == "adaptive":
            if not spec.adaptive:
                raise self.invalid(
                    '"thinking.type.adaptive" is not supported for this model.'
                )  # (wording ours)
            return True
        if spec.display_name in _OPUS_5_FAMILY and effort in ("xhigh", "max"):
            raise self.invalid(  # (wording ours; the rule is from the Opus 5 migration notes)
                f"output_config.effort '{effort}' requires thinking; it cannot be used with thinking.type.disabled"
            )
        return False

    def check_sampling(
        self, body: dict[str, Any], spec: ClaudeModel, thinking_on: bool, version: str
    ) -> None:
        temperature = body.get("temperature")
        if temperature is not None and not (isinstance(temperature, (int, float)) and 0 <= temperature <= 1):
            raise self.invalid("temperature: Input should be less than or equal to 1")
        if spec.sampling_removed:
            default_ok = self.accept_default_temperature and temperature == 1 and version < "2026-10-21"
            if temperature is not None and not default_ok:
                raise self.invalid("`temperature` is deprecated for this model.")
            for name in ("top_p", "top_k"):
                if name in body:
                    raise self.invalid(
                        f"`{name}` is deprecated for this model."
                    )  # (by analogy with temperature)
            return
        if temperature is not None and "top_p" in body:
            raise self.invalid(
                "`temperature` and `top_p` cannot both be specified for this model. Please use only one."
            )
        if thinking_on:
            if temperature is not None and temperature != 1:
                raise self.invalid(
                    "temperature may only be set to 1 when thinking is enabled or in adaptive mode"
                )
            if "top_k" in body:
                raise self.invalid("top_k is not supported when thinking is enabled")  # (wording ours)
            top_p = body.get("top_p")
            if top_p is not None and not 0.95 <= top_p <= 1:
                raise self.invalid(
                    "top_p must be between 0.95 and 1 when thinking is enabled"
                )  # (wording ours)

    def check_tools(self, body: dict[str, Any], thinking_on: bool) -> None:
        tools = body.get("tools")
        choice = body.get("tool_choice")
        if choice is not None:
            kind = choice.get("type") if isinstance(choice, dict) else None
            if kind not in ("auto", "any", "tool", "none"):
                raise self.invalid(
                    f"tool_choice: Input tag '{kind}' found using 'type' does not match any of the expected tags: "
                    "'auto', 'any', 'tool', 'none'"
                )
            if thinking_on and kind in ("any", "tool"):
                raise self.invalid("Thinking may not be enabled when tool_choice forces tool use.")
        if tools is None:
            return
        if not isinstance(tools, list):
            raise self.invalid("tools: Input should be a valid list")
        seen: set[str] = set()
        for i, tool in enumerate(tools):
            if not isinstance(tool, dict):
                raise self.invalid(f"tools.{i}: Input should be a valid dictionary")
            kind = tool.get("type", "custom")
            if kind != "custom":
                if re.match(r"^[a-z_]+_\d{8}$", str(kind)):
                    continue  # a server tool (web search, code execution...): not modelled here
                raise self.invalid(
                    f"tools.{i}: Input tag '{kind}' found using 'type' does not match any of the expected tags"
                )
            name = tool.get("name")
            if not isinstance(name, str) or not TOOL_NAME.match(name):
                raise self.invalid(
                    f"tools.{i}.custom.name: String should match pattern '^[a-zA-Z0-9_-]{{1,64}}$'"
                )
            if name in seen:
                raise self.invalid("tools: Tool names must be unique.")
            seen.add(name)
            schema = tool.get("input_schema")
            if schema is None:
                raise self.invalid(f"tools.{i}.custom.input_schema: Field required")
            if not isinstance(schema, dict) or schema.get("type") != "object":
                raise self.invalid(f"tools.{i}.custom.input_schema.type: Input should be 'object'")

    def check_messages(self, messages: Any, spec: ClaudeModel, *, thinking_explicit: bool) -> None:
        if not isinstance(messages, list):
            raise self.invalid("messages: Input should be a valid list")
        if not messages:
            raise self.invalid("messages: at least one message is required")
        images: list[tuple[str, dict[str, Any]]] = []
        prev_role: str | None = None
        for i, m in enumerate(messages):
            if not isinstance(m, dict):
                raise self.invalid(f"messages.{i}: Input should be a valid dictionary")
            role = m.get("role")
            if role == "system":
                if not spec.mid_conversation_system:
                    raise self.invalid(
                        'messages: Unexpected role "system". The Messages API accepts a top-level `system` parameter, '
                        'not "system" as an input message role.'
                    )
                if prev_role != "user":
                    raise self.invalid(  # (wording ours; the placement rule is from the docs)
                        f"messages.{i}: a mid-conversation system message must immediately follow a user turn"
                    )
                prev_role = role
                continue
            if role not in ("user", "assistant"):
                raise self.invalid(f"messages.{i}.role: Input should be 'user' or 'assistant'")
            if self.enforce_alternation:
                if i == 0 and role != "user":
                    raise self.invalid('messages: first message must use the "user" role')
                if role == prev_role:
                    raise self.invalid(
                        f'messages: roles must alternate between "user" and "assistant", but found multiple "{role}" roles in a row'
                    )
            prev_role = role
            blocks = self.blocks_of(m, i, final=i == len(messages) - 1)
            for j, block in enumerate(blocks):
                self.check_block(block, i, j, role, images)
        self.check_pairing(messages)
        if thinking_explicit:
            self.check_thinking_turn(messages)
        for where, source in images:
            self.check_image(where, source, many=len(images) > MANY_IMAGES)

    def blocks_of(self, m: dict[str, Any], i: int, *, final: bool) -> list[dict[str, Any]]:
        content = m.get("content")
        role = m.get("role")
        if isinstance(content, str):
            if not content and not (final and role == "assistant"):
                raise self.invalid(
                    f"messages.{i}: all messages must have non-empty content except for the optional final assistant message"
                )
            if final and role == "assistant" and content != content.rstrip():
                raise self.invalid("messages: final assistant content cannot end with trailing whitespace")
            return [{"type": "text", "text": content}] if content else []
        if not isinstance(content, list):
            raise self.invalid(f"messages.{i}.content: Input should be a valid list")
        if not content and not (final and role == "assistant"):
            raise self.invalid(
                f"messages.{i}: all messages must have non-empty content except for the optional final assistant message"
            )
        return content

    def check_block(
        self, block: Any, i: int, j: int, role: str, images: list[tuple[str, dict[str, Any]]]
    ) -> None:
        where = f"messages.{i}.content.{j}"
        if not isinstance(block, dict):
            raise self.invalid(f"{where}: Input should be a valid dictionary")
        kind = block.get("type")
        user_only = {"tool_result", "image", "document", "search_result"}
        assistant_only = {
            "tool_use",
            "thinking",
            "redacted_thinking",
            "server_tool_use",
            "web_search_tool_result",
        }
        if kind not in user_only | assistant_only | {"text"}:
            raise self.invalid(
                f"{where}: Input tag '{kind}' found using 'type' does not match any of the expected tags"
            )
        if kind in user_only and role != "user":
            raise self.invalid(f"{where}: `{kind}` blocks can only be in `user` messages")  # (wording ours)
        if kind in assistant_only and role != "assistant":
            raise self.invalid(
                f"{where}: `{kind}` blocks can only be in `assistant` messages"
            )  # (wording ours)
        if kind == "text":
            if not isinstance(block.get("text"), str):
                raise self.invalid(f"{where}.text.text: Field required")
            if not block["text"]:
                raise self.invalid("messages: text content blocks must be non-empty")
        elif kind == "tool_use":
            if not isinstance(block.get("id"), str) or not TOOL_ID.match(block["id"]):
                raise self.invalid(f"{where}.tool_use.id: String should match pattern '^[a-zA-Z0-9_-]+$'")
            if not isinstance(block.get("name"), str) or not TOOL_NAME.match(block["name"]):
                raise self.invalid(
                    f"{where}.tool_use.name: String should match pattern '^[a-zA-Z0-9_-]{{1,64}}$'"
                )
            if not isinstance(block.get("input"), dict):
                raise self.invalid(f"{where}.tool_use.input: Input should be a valid dictionary")
        elif kind == "tool_result":
            if not isinstance(block.get("tool_use_id"), str):
                raise self.invalid(f"{where}.tool_result.tool_use_id: Field required")
            inner = block.get("content")
            if isinstance(inner, list):
                for k, sub in enumerate(inner):
                    sub_kind = sub.get("type") if isinstance(sub, dict) else None
                    if sub_kind not in ("text", "image", "search_result", "document"):
                        raise self.invalid(
                            f"{where}.tool_result.content.{k}: Input tag '{sub_kind}' found using 'type' does not match "
                            "any of the expected tags: 'text', 'image', 'search_result', 'document'"
                        )
                    if sub_kind == "text" and not sub.get("text"):
                        raise self.invalid("messages: text content blocks must be non-empty")
                    if sub_kind == "image":
                        images.append((f"{where}.tool_result.content.{k}", sub.get("source") or {}))
            elif inner is not None and not isinstance(inner, str):
                raise self.invalid(f"{where}.tool_result.content: Input should be a valid string")
        elif kind == "image":
            images.append((where, block.get("source") or {}))

    def check_pairing(self, messages: list[dict[str, Any]]) -> None:
        def blocks(m: dict[str, Any]) -> list[dict[str, Any]]:
            c = m.get("content")
            return [b for b in c if isinstance(b, dict)] if isinstance(c, list) else []

        for i, m in enumerate(messages):
            if m.get("role") == "assistant":
                uses = [b["id"] for b in blocks(m) if b.get("type") == "tool_use"]
                if not uses:
                    continue
                nxt = messages[i + 1] if i + 1 < len(messages) else None
                answered = (
                    {b.get("tool_use_id") for b in blocks(nxt) if b.get("type") == "tool_result"}
                    if nxt and nxt.get("role") == "user"
                    else set()
                )
                missing = [u for u in uses if u not in answered]
                if missing:
                    raise self.invalid(
                        f"messages.{i}: `tool_use` ids were found without `tool_result` blocks immediately after: "
                        f"{', '.join(missing)}. Each `tool_use` block must have a corresponding `tool_result` block in "
                        "the next message."
                    )
            elif m.get("role") == "user":
                prev = messages[i - 1] if i > 0 else None
                offered = (
                    {b.get("id") for b in blocks(prev) if b.get("type") == "tool_use"}
                    if prev and prev.get("role") == "assistant"
                    else set()
                )
                for j, b in enumerate(blocks(m)):
                    if b.get("type") == "tool_result" and b.get("tool_use_id") not in offered:
                        raise self.invalid(
                            f"messages.{i}.content.{j}: unexpected `tool_use_id` found in `tool_result` blocks: "
                            f"{b.get('tool_use_id')}. Each `tool_result` block must have a corresponding `tool_use` "
                            "block in the previous message."
                        )

    def check_thinking_turn(self, messages: list[dict[str, Any]]) -> None:
        for i in range(len(messages) - 1, -1, -1):
            m = messages[i]
            if m.get("role") != "assistant":
                continue
            content = m.get("content")
            if not isinstance(content, list) or not any(
                isinstance(b, dict) and b.get("type") == "tool_use" for b in content
            ):
                return
            first = content[0].get("type") if content and isinstance(content[0], dict) else None
            if first not in ("thinking", "redacted_thinking"):
                raise self.invalid(
                    f"messages.{i}.content.0.type: Expected `thinking` or `redacted_thinking`, but found `{first}`. When "
                    "`thinking` is enabled, a final `assistant` message must start with a thinking block (preceeding "
                    "the lastmost set of `tool_use` and `tool_result` blocks). We recommend you include thinking blocks "
                    "from previous turns. To avoid this requirement, disable `thinking`. Please consult our "
                    "documentation at https://docs.claude.com/en/docs/build-with-claude/extended-thinking"
                )
            return

    def check_image(self, where: str, source: dict[str, Any], *, many: bool) -> None:
        kind = source.get("type")
        if kind in ("url", "file"):
            return
        if kind != "base64":
            raise self.invalid(
                f"{where}.image.source: Input tag '{kind}' found using 'type' does not match any of the expected tags: "
                "'base64', 'url', 'file'"
            )
        media_type = source.get("media_type")
        if media_type not in IMAGE_TYPES:
            raise self.invalid(
                f"{where}.image.source.base64.media_type: Input should be 'image/jpeg', 'image/png', 'image/gif' or 'image/webp'"
            )
        data = source.get("data")
        if not isinstance(data, str):
            raise self.invalid(f"{where}.image.source.base64.data: Field required")
        if len(data) > MAX_IMAGE_BASE64:
            raise self.invalid(
                f"{where}.image.source.base64: image exceeds 5 MB maximum: {len(data)} bytes > {MAX_IMAGE_BASE64} bytes"
            )
        try:
            raw = base64.b64decode(data, validate=True)
        except (binascii.Error, ValueError):
            raise self.invalid(
                f"{where}.image.source.base64.data: The image data is not valid base64"
            ) from None
        from PIL import Image, UnidentifiedImageError

        try:
            with Image.open(io.BytesIO(raw)) as img:
                fmt, size = (img.format or "").lower(), img.size
        except (UnidentifiedImageError, OSError):
            raise self.invalid(
                f"{where}.image.source.base64.data: Image does not match the provided media type {media_type}"
            ) from None
        if media_type.split("/")[1] != {"jpg": "jpeg"}.get(fmt, fmt):
            raise self.invalid(
                f"{where}.image.source.base64.data: Image does not match the provided media type {media_type}"
            )
        if max(size) > MAX_IMAGE_SIDE:
            raise self.invalid(
                f"{where}.image.source.base64.data: At least one of the image dimensions exceed max allowed size: 8000 pixels"
            )
        if many and max(size) > MANY_IMAGE_SIDE:
            raise self.invalid(
                f"{where}.image.source.base64.data: At least one of the image dimensions exceed max allowed size for "
                "many-image requests: 2000 pixels"
            )

    # --- answers ---------------------------------------------------------------------------------------
    def reply(self, h: ReplicaHandler, req: ReplicaRequest, spec: dict[str, Any], model: ClaudeModel) -> None:
        if "status" in spec:
            raise self.fault(int(spec["status"]), spec)
        if "stream_error" in spec and not req.stream:
            raise self.fault(529, {"type": spec["stream_error"]})
        if "raw" in spec:
            h.send_raw(200, str(spec["raw"]))
            return
        blocks: list[dict[str, Any]] = []
        if spec.get("thinking"):
            signature = base64.b64encode(uuid.uuid4().bytes * 4).decode()
            blocks.append({"type": "thinking", "thinking": spec["thinking"], "signature": signature})
        if spec.get("content"):
            blocks.append({"type": "text", "text": spec["content"]})
        calls = normalise_calls(spec, "toolu_")
        for call in calls:
            blocks.append(
                {
                    "type": "tool_use",
                    "id": call["id"],
                    "name": call["name"],
                    "input": json.loads(call["arguments"]),
                }
            )
        output_tokens = (
            count_tokens(" ".join(content_text([b]) or json.dumps(b.get("input", "")) for b in blocks)) + 1
        )
        stop = spec.get("stop") or ("tool_use" if calls else "end_turn")
        message_id = "msg_" + uuid.uuid4().hex[:24]
        usage = {
            "input_tokens": req.prompt_tokens,
            "cache_creation_input_tokens": 0,
            "cache_read_input_tokens": 0,
            "output_tokens": output_tokens,
            "service_tier": "standard",
        }
        headers = {"request-id": "req_" + uuid.uuid4().hex[:24]}
        if not req.stream:
            h.send_json(
                200,
                {
                    "id": message_id,
                    "type": "message",
                    "role": "assistant",
                    "model": req.model,
                    "content": blocks,
                    "stop_reason": stop,
                    "stop_sequence": None,
                    "usage": usage,
                },
                headers,
            )
            return
        h.start_sse(headers)
        start = {
            "id": message_id,
            "type": "message",
            "role": "assistant",
            "model": req.model,
            "content": [],
            "stop_reason": None,
            "stop_sequence": None,
            "usage": {**usage, "output_tokens": 1},
        }
        h.sse({"type": "message_start", "message": start}, "message_start")
        if "stream_error" in spec:
            kind = spec["stream_error"]
            h.sse(
                {
                    "type": "error",
                    "error": {"type": kind, "message": "Overloaded" if kind == "overloaded_error" else kind},
                },
                "error",
            )
            return
        h.sse({"type": "ping"}, "ping")
        for index, block in enumerate(blocks):
            self.stream_block(h, index, block)
        h.sse(
            {
                "type": "message_delta",
                "delta": {"stop_reason": stop, "stop_sequence": None},
                "usage": {
                    "input_tokens": req.prompt_tokens,
                    "cache_creation_input_tokens": 0,
                    "cache_read_input_tokens": 0,
                    "output_tokens": output_tokens,
                },
            },
            "message_delta",
        )
        h.sse({"type": "message_stop"}, "message_stop")

    def stream_block(self, h: ReplicaHandler, index: int, block: dict[str, Any]) -> None:
        def delta(d: dict[str, Any]) -> None:
            if self.token_delay:
                time.sleep(self.token_delay)
            h.sse({"type": "content_block_delta", "index": index, "delta": d}, "content_block_delta")

        kind = block["type"]
        if kind == "text":
            h.sse(
                {
                    "type": "content_block_start",
                    "index": index,
                    "content_block": {"type": "text", "text": ""},
                },
                "content_block_start",
            )
            for piece in text_pieces(block["text"]):
                delta({"type": "text_delta", "text": piece})
        elif kind == "thinking":
            start = {"type": "thinking", "thinking": "", "signature": ""}
            h.sse(
                {"type": "content_block_start", "index": index, "content_block": start}, "content_block_start"
            )
            for piece in text_pieces(block["thinking"]):
                delta({"type": "thinking_delta", "thinking": piece})
            delta({"type": "signature_delta", "signature": block["signature"]})
        else:
            start = {"type": "tool_use", "id": block["id"], "name": block["name"], "input": {}}
            h.sse(
                {"type": "content_block_start", "index": index, "content_block": start}, "content_block_start"
            )
            args = json.dumps(block["input"])
            delta({"type": "input_json_delta", "partial_json": ""})
            for j in range(0, len(args), 10):
                delta({"type": "input_json_delta", "partial_json": args[j : j + 10]})
        h.sse({"type": "content_block_stop", "index": index}, "content_block_stop")
