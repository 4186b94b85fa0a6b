"""A strict replica of OpenAI Chat Completions: `POST /v1/chat/completions` and `GET /v1/models`.

Usage: `with OpenAIReplica({"planner": ["hi", {"tool_calls": [...]}]}) as api: OpenAI(base_url=api.url, ...)`.
`api.requests` records every request (accepted or not), `api.rejections` the refused ones, `api.assert_clean()`
fails listing them. See tests/fakes/replicas/common.py for the script format.

Enforced (each rule answers with OpenAI's error JSON `{"error": {"message", "type", "param", "code"}}` and status):
- auth: `Authorization: Bearer <key>` (401 without it; 401 `invalid_api_key` if `api_key=` is set and differs);
- the model must be in the catalogue (404 `model_not_found`, "The model `x` does not exist or you do not have
  access to it.");
- unknown top-level fields ("Unrecognized request argument supplied: x");
- per-family parameter rules (`OPENAI_MODELS`): reasoning models (o-series, GPT-5 and later) reject `max_tokens`
  ("Use 'max_completion_tokens' instead"), a temperature other than 1 and `top_p`/penalties/logprobs unless the
  effective `reasoning_effort` is "none" (GPT-5.x from 5.4, GPT-6 Sol/Luna); `reasoning_effort` values per model;
  `verbosity` only on GPT-5 and later; function tools on Chat Completions only with an effective effort of "none"
  (gpt-5.4/5.5 default to "none"; gpt-5.6 and GPT-6 Sol/Luna default to a reasoning effort, so they need an explicit
  "none"; gpt-6-astra and gpt-6.1-sol have no "none", so no function tools here at all); `max_completion_tokens`
  against the model's output limit;
- messages: roles, required fields, `name` pattern `^[a-zA-Z0-9_-]+$` (max 64), content part types per role, image
  parts only on vision models and only in user messages, data-URL form; tool-call pairing (each assistant
  `tool_calls` id answered by a `tool` message before any other message; no orphan `tool` message; no unknown
  `tool_call_id`); `function.arguments` must be a string;
- tools: type "function", name pattern and length, `parameters` a JSON Schema with `type: "object"` at the top,
  and with `strict: true` the structured-outputs rules (`additionalProperties: false`, every property required);
  `tool_choice`/`parallel_tool_calls` only with tools; `stream_options` only with `stream: true`.
Answers: `chat.completion` objects, or SSE `chat.completion.chunk`s as OpenAI sends them (a role delta, content
deltas, tool-call deltas carrying index/id/name first and then argument fragments, a finish chunk, a usage chunk with
`choices: []` when `stream_options.include_usage`, then `data: [DONE]`).

Sources (stored copies): the Chat Completions reference and the reasoning guide at developers.openai.com/api/docs
(guides/reasoning), and the exact error texts as quoted from the live API in issue threads: openai/openai-openapi#541,
pipecat-ai/pipecat#4043 (gpt-5.4 tools + effort), BerriAI/litellm#34569 and GEMISIS/leviath#333 (gpt-5.6: tools need
an explicit "none"), onyx-dot-app/onyx#15008 (gpt-6-sol), bolna-ai/bolna#1019 (gpt-6-astra: no "none", efforts
low..max, no tools on Chat Completions), livekit/agents#3966 (reasoning_effort wording), decolua/9router#560 and
/work/shared/reference/models-and-evidence-2026.md §3.2 (max_tokens, temperature), ailoy#109 / crazyyanchao
llmcompiler#1 (name pattern), simonw/llm#937 and microsoft/promptflow#3130 (tool pairing), bytedance/trae-agent#173
and OpenManus#1162 (schema errors).

Not enforced: the Responses API, audio/files/predicted outputs, `response_format` schemas, rate limits (script a
429 instead), content size limits, `n` > 1 (answered with one choice), logprobs in answers. The exact wording of
the few messages marked "(wording ours)" could not be found in stored material.
"""

from __future__ import annotations

import base64
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
    normalise_calls,
    prompt_tokens_of,
    step_spec,
    text_pieces,
)
from tests.fakes.scripted_llm import count_tokens

NAME_PATTERN = re.compile(r"^[a-zA-Z0-9_-]+$")
NAME_PATTERN_TEXT = "^[a-zA-Z0-9_-]+$"

GPT5_EFFORTS = ("minimal", "low", "medium", "high")
GPT5X_EFFORTS = ("none", "low", "medium", "high", "xhigh")
GPT6_EFFORTS = ("none", "low", "medium", "high", "xhigh", "max")
GPT6_ASTRA_EFFORTS = ("low", "medium", "high", "xhigh", "max")
O_EFFORTS = ("low", "medium", "high")

# Parameters a reasoning model refuses unless its effective effort is "none".
SAMPLING_PARAMS = ("top_p", "presence_penalty", "frequency_penalty", "logprobs", "top_logprobs", "logit_bias")

KNOWN_FIELDS = frozenset(
    {
        "model", "messages", "audio", "frequency_penalty", "function_call", "functions", "logit_bias", "logprobs",
        "max_completion_tokens", "max_tokens", "metadata", "modalities", "n", "parallel_tool_calls", "prediction",
        "presence_penalty", "prompt_cache_key", "prompt_cache_retention", "reasoning_effort", "response_format",
        "safety_identifier", "seed", "service_tier", "stop", "store", "stream", "stream_options", "temperature",
        "tool_choice", "tools", "top_logprobs", "top_p", "user", "verbosity", "web_search_options",
    }
)  # fmt: skip


@dataclass(frozen=True)
class OpenAIModel:
    """What one model accepts on Chat Completions."""

    family: str
    efforts: tuple[str, ...] = ()  # empty: not a reasoning model, `reasoning_effort` unsupported
    default_effort: str | None = None
    # "any": function tools at any effort; "none": only when the effective effort is "none"
    tools: str = "any"
    tools_hint: str = "Please use /v1/responses instead."
    verbosity: bool = False
    vision: bool = True
    max_output: int = 128_000
    context: int = 400_000

    @property
    def reasoning(self) -> bool:
        return bool(self.efforts)


_GPT41 = OpenAIModel("gpt-4.1", max_output=32_768, context=1_047_576)
_GPT5 = OpenAIModel("gpt-5", GPT5_EFFORTS, "medium", verbosity=True)
_GPT54 = OpenAIModel("gpt-5.4", GPT5X_EFFORTS, "none", tools="none", verbosity=True)
_NONE_HINT = "To use function tools, use /v1/responses or set reasoning_effort to 'none'."
_GPT56 = OpenAIModel("gpt-5.6", GPT5X_EFFORTS, "medium", tools="none", tools_hint=_NONE_HINT, verbosity=True)
_GPT6 = OpenAIModel(
    "gpt-6", GPT6_EFFORTS, "medium", tools="none", tools_hint=_NONE_HINT, verbosity=True, context=1_050_000
)
_GPT6_ASTRA = OpenAIModel(
    "gpt-6-astra", GPT6_ASTRA_EFFORTS, "low", tools="none", verbosity=True, context=1_050_000
)
_O = OpenAIModel("o-series", O_EFFORTS, "medium", max_output=100_000, context=200_000)

OPENAI_MODELS: dict[str, OpenAIModel] = {
    "gpt-4.1": _GPT41,
    "gpt-4.1-mini": _GPT41,
    "gpt-5": _GPT5,
    "gpt-5-mini": _GPT5,
    "gpt-5-nano": _GPT5,
    "gpt-5.4": replace(_GPT54, context=1_050_000),
    "gpt-5.4-mini": _GPT54,
    "gpt-5.4-nano": _GPT54,
    "gpt-5.5": replace(_GPT54, family="gpt-5.5", context=1_050_000),
    "gpt-5.6-sol": _GPT56,
    "gpt-5.6-terra": _GPT56,
    "gpt-5.6-luna": _GPT56,
    "gpt-6-sol": _GPT6,
    "gpt-6-luna": _GPT6,
    "gpt-6-astra": _GPT6_ASTRA,
    "gpt-6.1-sol": replace(_GPT6_ASTRA, family="gpt-6.1"),
    "o3": _O,
    "o4-mini": _O,
    # a reasoning model without vision, so the image-part rule has a model to fail on
    "o3-mini": replace(_O, vision=False),
}


def quoted_list(values: tuple[str, ...] | list[str]) -> str:
    """OpenAI's enumeration style: 'a', 'b', and 'c'."""
    q = [f"'{v}'" for v in values]
    if len(q) <= 2:
        return " and ".join(q)
    return ", ".join(q[:-1]) + ", and " + q[-1]


def _json_value(value: Any) -> str:
    return json.dumps(value) if not isinstance(value, str) else f"'{value}'"


def _json_type(value: Any) -> str:
    if value is None:
        return "null"
    return {
        dict: "an object",
        list: "an array",
        str: "a string",
        bool: "a boolean",
        int: "an integer",
        float: "a number",
    }.get(type(value), "a value")


class ChatCompletionsReplica(ReplicaServer):
    """The OpenAI wire format (request checks, answers, streaming), shared with the OpenAI-compatible replicas."""

    base_path = "/v1"
    chat_path = "/v1/chat/completions"
    models_path = "/v1/models"
    call_id_prefix = "call_"
    completion_prefix = "chatcmpl-"

    def __init__(
        self,
        script: Script | None = None,
        *,
        models: dict[str, Any] | None = None,
        api_key: str | None = None,
        **kwargs: Any,
    ) -> None:
        self.models: dict[str, Any] = dict(models if models is not None else self.default_models())
        self.api_key = api_key
        super().__init__(script, **kwargs)

    def default_models(self) -> dict[str, Any]:
        return {}

    def add_model(self, name: str, like: str) -> None:
        """Serve a new name with an existing model's rules (e.g. a future snapshot of a known family)."""
        self.models[name] = self.models[like]

    # --- errors ----------------------------------------------------------------------------------------
    def error(
        self,
        status: int,
        message: str,
        *,
        type: str = "invalid_request_error",
        param: str | None = None,
        code: str | None = None,
        headers: dict[str, str] | None = None,
    ) -> Rejection:
        body = {"error": {"message": message, "type": type, "param": param, "code": code}}
        return Rejection(status, body, message, headers)

    def malformed_body(self, detail: str) -> Rejection:
        return self.error(
            400,
            "We could not parse the JSON body of your request. (HINT: This likely means you aren't using your HTTP "
            "library correctly. The OpenAI API expects a JSON payload, but what was sent was not valid JSON. If you "
            "have trouble figuring out how to fix this, please contact us through our help center at "
            "help.openai.com.)",
        )

    def fault(self, status: int, spec: dict[str, Any], model: str) -> Rejection:
        """A scripted HTTP error, in this API's body shape unless the step gives a body."""
        headers = dict(spec.get("headers") or {})
        if status == 429:
            message = spec.get("message") or (
                f"Rate limit reached for {model} in organization org-replica on tokens per min (TPM): "
                "Limit 30000, Used 30000, Requested 1000. Please try again in 2s. Visit "
                "https://platform.openai.com/account/rate-limits to learn more."
            )
            type_, code = spec.get("type", "tokens"), spec.get("code", "rate_limit_exceeded")
        elif status >= 500:
            message = (
                spec.get("message")
                or "The server had an error while processing your request. Sorry about that!"
            )
            type_, code = spec.get("type", "server_error"), spec.get("code")
        else:
            message = spec.get("message") or "scripted error"
            type_, code = spec.get("type", "invalid_request_error"), spec.get("code")
        rejection = self.error(status, message, type=type_, code=code, headers=headers)
        if "body" in spec:
            rejection.body = spec["body"]
        return rejection

    # --- routes ----------------------------------------------------------------------------------------
    def handle_get(self, h: ReplicaHandler, path: str) -> None:
        self.authenticate(h.lower_headers)
        if path == self.models_path:
            h.send_json(200, self.models_list())
        elif path.startswith(self.models_path + "/"):
            name = path[len(self.models_path) + 1 :]
            if self.lookup_model(name) is None:
                raise self.model_not_found(name)
            h.send_json(200, self.model_object(name))
        else:
            raise self.error(404, f"Invalid URL (GET {path})")

    def models_list(self) -> dict[str, Any]:
        return {"object": "list", "data": [self.model_object(name) for name in self.models]}

    def model_object(self, name: str) -> dict[str, Any]:
        return {"id": name, "object": "model", "created": 1_700_000_000, "owned_by": "system"}

    def handle_post(self, h: ReplicaHandler, path: str, body: dict[str, Any]) -> None:
        headers = h.lower_headers
        if path != self.chat_path:
            raise self.error(404, f"Invalid URL (POST {path})")
        req = ReplicaRequest(
            agent=self.identify(body, headers),
            path=path,
            body=body,
            headers=headers,
            prompt_tokens=prompt_tokens_of(body),
            stream=body.get("stream") is True,
        )
        try:
            self.authenticate(headers)
            spec = self.check_model(body)
            self.validate(body, spec)
        except Rejection as r:
            req.status, req.rejected = r.status, r.message
            self.record(req)
            raise
        self.record(req)
        step = self.next_step(req)
        if step is None:
            req.status = 500
            raise self.error(500, f"replica script exhausted for agent {req.agent!r}", type="server_error")
        try:
            self.reply(h, req, step_spec(step))
        except Rejection as r:
            req.status = r.status  # a scripted fault: recorded with its status, not as a rule violation
            raise

    # --- checks ----------------------------------------------------------------------------------------
    def authenticate(self, headers: dict[str, str]) -> None:
        auth = headers.get("authorization", "")
        if not auth.lower().startswith("bearer ") or not auth[7:].strip():
            raise self.error(
                401,
                "You didn't provide an API key. You need to provide your API key in an Authorization header using "
                "Bearer auth (i.e. Authorization: Bearer YOUR_KEY), or as the password field (with blank username) "
                "if you're accessing the API from your browser and are prompted for a username and password. You "
                "can obtain an API key from https://platform.openai.com/account/api-keys.",
            )
        key = auth[7:].strip()
        if self.api_key is not None and key != self.api_key:
            shown = key[:3] + "*" * 4 + key[-4:] if len(key) > 8 else "*" * len(key)
            raise self.error(
                401,
                f"Incorrect API key provided: {shown}. You can find your API key at "
                "https://platform.openai.com/account/api-keys.",
                code="invalid_api_key",
            )

    def lookup_model(self, name: str) -> Any:
        return self.models.get(name)

    def model_not_found(self, name: str) -> Rejection:
        return self.error(
            404, f"The model `{name}` does not exist or you do not have access to it.", code="model_not_found"
        )

    def check_model(self, body: dict[str, Any]) -> Any:
        if "model" not in body:
            raise self.error(400, "you must provide a model parameter")
        if "messages" not in body:
            raise self.error(
                400,
                "Missing required parameter: 'messages'.",
                param="messages",
                code="missing_required_parameter",
            )
        spec = self.lookup_model(str(body["model"]))
        if spec is None:
            raise self.model_not_found(str(body["model"]))
        return spec

    def validate(self, body: dict[str, Any], spec: OpenAIModel) -> None:
        for key in body:
            if key not in KNOWN_FIELDS:
                raise self.error(400, f"Unrecognized request argument supplied: {key}")
        self.check_parameters(body, spec)
        self.check_messages(body["messages"], vision=spec.vision)
        self.check_tools(body)
        if spec.reasoning and body.get("tools"):
            effort = body.get("reasoning_effort", spec.default_effort)
            if spec.tools == "none" and effort != "none":
                raise self.error(
                    400,
                    f"Function tools with reasoning_effort are not supported for {body['model']} in "
                    f"/v1/chat/completions. {spec.tools_hint}",
                    param="reasoning_effort",
                )

    def unsupported_parameter(self, name: str, hint: str = "") -> Rejection:
        return self.error(
            400,
            f"Unsupported parameter: '{name}' is not supported with this model.{hint}",
            param=name,
            code="unsupported_parameter",
        )

    def check_parameters(self, body: dict[str, Any], spec: OpenAIModel) -> None:
        if "stream_options" in body and body.get("stream") is not True:
            raise self.error(
                400,
                "The 'stream_options' parameter is only allowed when 'stream' is enabled.",
                param="stream_options",
            )
        temperature = body.get("temperature")
        if temperature is not None and not (isinstance(temperature, (int, float)) and 0 <= temperature <= 2):
            raise self.error(
                400,
                f"Invalid 'temperature': decimal above maximum value. Expected a value <= 2, but got {temperature} instead.",
                param="temperature",
                code="decimal_above_max_value",
            )
        if spec.reasoning:
            if "max_tokens" in body:
                raise self.unsupported_parameter("max_tokens", " Use 'max_completion_tokens' instead.")
            if "reasoning_effort" in body and body["reasoning_effort"] not in spec.efforts:
                raise self.error(
                    400,
                    f"Unsupported value: 'reasoning_effort' does not support {_json_value(body['reasoning_effort'])} "
                    f"with this model. Supported values are: {quoted_list(spec.efforts)}.",
                    param="reasoning_effort",
                    code="unsupported_value",
                )
            if body.get("reasoning_effort", spec.default_effort) != "none":
                if temperature is not None and temperature != 1:
                    raise self.error(
                        400,
                        f"Unsupported value: 'temperature' does not support {json.dumps(temperature)} with this model. "
                        "Only the default (1) value is supported.",
                        param="temperature",
                        code="unsupported_value",
                    )
                for name in SAMPLING_PARAMS:
                    if name in body:
                        raise self.unsupported_parameter(name)
        elif "reasoning_effort" in body:
            raise self.unsupported_parameter("reasoning_effort")
        if "verbosity" in body:
            if not spec.verbosity:
                raise self.unsupported_parameter("verbosity")
            if body["verbosity"] not in ("low", "medium", "high"):
                raise self.error(
                    400,
                    f"Invalid value: {_json_value(body['verbosity'])}. Supported values are: 'low', 'medium', and 'high'.",
                    param="verbosity",
                    code="invalid_value",
                )
        for name in ("max_completion_tokens", "max_tokens"):
            value = body.get(name)
            if value is not None and (not isinstance(value, int) or value > spec.max_output or value < 1):
                raise self.error(
                    400,
                    f"{name} is too large: {value}. This model supports at most {spec.max_output} completion tokens, "
                    f"whereas you provided {value}.",
                    param=name,
                    code="invalid_value",
                )

    def check_name(self, value: Any, where: str) -> None:
        if not isinstance(value, str):
            raise self.error(
                400, f"Invalid type for '{where}': expected a string, but got {_json_type(value)} instead.",
                param=where, code="invalid_type",
            )  # fmt: skip
        if not NAME_PATTERN.match(value):
            raise self.error(
                400,
                f"Invalid '{where}': string does not match pattern. Expected a string that matches the pattern "
                f"'{NAME_PATTERN_TEXT}'.",
                param=where,
                code="invalid_value",
            )
        if len(value) > 64:
            raise self.error(
                400,
                f"Invalid '{where}': string too long. Expected a string with maximum length 64, but got a string "
                f"with length {len(value)} instead.",
                param=where,
                code="string_above_max_length",
            )

    def check_messages(self, messages: Any, *, vision: bool) -> None:
        if not isinstance(messages, list):
            raise self.error(
                400, f"Invalid type for 'messages': expected an array, but got {_json_type(messages)} instead.",
                param="messages", code="invalid_type",
            )  # fmt: skip
        if not messages:
            raise self.error(
                400,
                "Invalid 'messages': empty array. Expected an array with minimum length 1, but got an empty array instead.",
                param="messages",
                code="empty_array",
            )
        roles = ("system", "assistant", "user", "function", "tool", "developer")
        pending: list[str] = []  # tool_call ids of the last assistant message still unanswered
        answerable: set[str] = set()
        in_tool_block = False
        for i, m in enumerate(messages):
            if not isinstance(m, dict):
                raise self.error(
                    400, f"Invalid type for 'messages[{i}]': expected an object, but got {_json_type(m)} instead.",
                    param=f"messages[{i}]", code="invalid_type",
                )  # fmt: skip
            role = m.get("role")
            if role not in roles:
                raise self.error(
                    400,
                    f"Invalid value: {_json_value(role)}. Supported values are: {quoted_list(roles)}.",
                    param=f"messages[{i}].role",
                    code="invalid_value",
                )
            if role != "tool" and pending:
                raise self.error(
                    400,
                    "An assistant message with 'tool_calls' must be followed by tool messages responding to each "
                    f"'tool_call_id'. The following tool_call_ids did not have response messages: {', '.join(pending)}",
                    param=f"messages.[{i}].role",
                )
            if "name" in m:
                self.check_name(m["name"], f"messages[{i}].name")
            if role == "tool":
                if not in_tool_block:
                    raise self.error(
                        400,
                        "Invalid parameter: messages with role 'tool' must be a response to a preceeding message "
                        "with 'tool_calls'.",
                        param=f"messages.[{i}].role",
                    )
                if "tool_call_id" not in m:
                    raise self.error(
                        400, f"Missing required parameter: 'messages[{i}].tool_call_id'.",
                        param=f"messages[{i}].tool_call_id", code="missing_required_parameter",
                    )  # fmt: skip
                if m["tool_call_id"] not in answerable:
                    raise self.error(
                        400,
                        f"Invalid parameter: 'tool_call_id' of '{m['tool_call_id']}' not found in 'tool_calls' of "
                        "previous message.",
                        param=f"messages.[{i}].tool_call_id",
                    )
                if m["tool_call_id"] in pending:
                    pending.remove(m["tool_call_id"])
                self.check_content(m, i, role, vision=vision)
                continue
            in_tool_block = False
            if role == "assistant":
                calls = m.get("tool_calls") or []
                if not calls and m.get("content") is None and "function_call" not in m and "audio" not in m:
                    raise self.error(
                        400, f"Missing required parameter: 'messages[{i}].content'.",
                        param=f"messages[{i}].content", code="missing_required_parameter",
                    )  # fmt: skip
                if m.get("content") is not None:
                    self.check_content(m, i, role, vision=vision)
                for j, call in enumerate(calls):
                    self.check_tool_call(call, i, j)
                if calls:
                    pending = [c["id"] for c in calls]
                    answerable = set(pending)
                    in_tool_block = True
            else:
                if "content" not in m:
                    raise self.error(
                        400, f"Missing required parameter: 'messages[{i}].content'.",
                        param=f"messages[{i}].content", code="missing_required_parameter",
                    )  # fmt: skip
                self.check_content(m, i, role, vision=vision)
        if pending:
            raise self.error(
                400,
                "An assistant message with 'tool_calls' must be followed by tool messages responding to each "
                f"'tool_call_id'. The following tool_call_ids did not have response messages: {', '.join(pending)}",
                param="messages",
            )

    def check_tool_call(self, call: Any, i: int, j: int) -> None:
        where = f"messages[{i}].tool_calls[{j}]"
        if not isinstance(call, dict) or "id" not in call:
            raise self.error(
                400,
                f"Missing required parameter: '{where}.id'.",
                param=f"{where}.id",
                code="missing_required_parameter",
            )
        if call.get("type", "function") != "function":
            raise self.error(
                400, f"Invalid value: {_json_value(call.get('type'))}. Supported values are: 'function' and 'custom'.",
                param=f"{where}.type", code="invalid_value",
            )  # fmt: skip
        function = call.get("function") or {}
        self.check_name(function.get("name"), f"{where}.function.name")
        args = function.get("arguments")
        if not isinstance(args, str):
            raise self.error(
                400,
                f"Invalid type for '{where}.function.arguments': expected a string, but got {_json_type(args)} instead.",
                param=f"{where}.function.arguments",
                code="invalid_type",
            )

    def check_content(self, m: dict[str, Any], i: int, role: str, *, vision: bool) -> None:
        content = m.get("content")
        if isinstance(content, str):
            return
        if not isinstance(content, list):
            raise self.error(
                400,
                f"Invalid type for 'messages[{i}].content': expected one of a string or array of objects, but got "
                f"{_json_type(content)} instead.",
                param=f"messages[{i}].content",
                code="invalid_type",
            )
        allowed = {
            "user": ("text", "image_url", "input_audio", "file"),
            "assistant": ("text", "refusal"),
        }.get(role, ("text",))
        for j, part in enumerate(content):
            kind = part.get("type") if isinstance(part, dict) else None
            if kind == "image_url" and role != "user":
                raise self.error(
                    400,
                    f"Invalid 'messages[{i}]'. Image URLs are only allowed for messages with role 'user', but this "
                    f"message with role '{role}' contains an image URL.",
                    param=f"messages[{i}]",
                    code="invalid_value",
                )
            if kind not in allowed:
                raise self.error(
                    400,
                    f"Invalid value: {_json_value(kind)}. Supported values are: {quoted_list(allowed)}.",
                    param=f"messages[{i}].content[{j}].type",
                    code="invalid_value",
                )
            if kind == "text" and not isinstance(part.get("text"), str):
                raise self.error(
                    400, f"Missing required parameter: 'messages[{i}].content[{j}].text'.",
                    param=f"messages[{i}].content[{j}].text", code="missing_required_parameter",
                )  # fmt: skip
            if kind == "image_url":
                if not vision:
                    raise self.error(
                        400,
                        "Invalid content type. image_url is only supported by certain models.",
                        param=f"messages.[{i}].content.[{j}].type",
                    )
                self.check_image_url(part, i, j)

    def check_image_url(self, part: dict[str, Any], i: int, j: int) -> None:
        url = (part.get("image_url") or {}).get("url")
        where = f"messages[{i}].content[{j}].image_url.url"
        if not isinstance(url, str):
            raise self.error(
                400, f"Missing required parameter: '{where}'.", param=where, code="missing_required_parameter"
            )
        if url.startswith(("http://", "https://")):
            return
        m = re.match(r"data:image/(png|jpeg|jpg|gif|webp);base64,(.*)$", url, re.S)
        if not m:
            raise self.error(
                400,
                f"Invalid image URL: '{where}'. Expected a base64-encoded data URL with an image MIME type (e.g. "
                "'data:image/png;base64,aW1nIGJ5dGVzIGhlcmU='), but got a value without the 'data:' prefix."
                if not url.startswith("data:")
                else f"Invalid image URL: '{where}'. Expected a base64-encoded data URL with an image MIME type.",
                param=where,
                code="invalid_value",
            )
        try:
            base64.b64decode(m.group(2), validate=True)
        except ValueError:
            raise self.error(
                400, "You uploaded an unsupported image. Please make sure your image is valid.",
                param=where, code="invalid_image_format",
            ) from None  # fmt: skip

    def check_tools(self, body: dict[str, Any]) -> None:
        tools = body.get("tools")
        if tools is None:
            for name in ("tool_choice", "parallel_tool_calls"):
                if name in body and body[name] is not None:
                    raise self.error(
                        400,
                        f"Invalid value for '{name}': '{name}' is only allowed when 'tools' are specified.",
                        param=name,
                    )
            return
        if not isinstance(tools, list) or not tools:
            raise self.error(
                400,
                "Invalid 'tools': empty array. Expected an array with minimum length 1, but got an empty array instead.",
                param="tools",
                code="empty_array",
            )
        for i, tool in enumerate(tools):
            if not isinstance(tool, dict) or tool.get("type") != "function":
                raise self.error(
                    400,
                    f"Invalid value: {_json_value(tool.get('type') if isinstance(tool, dict) else None)}. "
                    "Supported values are: 'function' and 'custom'.",
                    param=f"tools[{i}].type",
                    code="invalid_value",
                )
            function = tool.get("function")
            if not isinstance(function, dict) or "name" not in function:
                raise self.error(
                    400, f"Missing required parameter: 'tools[{i}].function.name'.",
                    param=f"tools[{i}].function.name", code="missing_required_parameter",
                )  # fmt: skip
            self.check_name(function["name"], f"tools[{i}].function.name")
            if "parameters" in function:
                self.check_schema(function["name"], function["parameters"], bool(function.get("strict")), i)

    def check_schema(self, name: str, schema: Any, strict: bool, i: int) -> None:
        param = f"tools[{i}].function.parameters"
        if not isinstance(schema, dict):
            raise self.error(
                400, f"Invalid schema for function '{name}': {json.dumps(schema)} is not of type 'object', 'boolean'.",
                param=param, code="invalid_function_parameters",
            )  # fmt: skip
        if schema.get("type") != "object":
            raise self.error(
                400,
                f"Invalid schema for function '{name}': schema must be a JSON Schema of 'type: \"object\"', got "
                f"'type: \"{schema.get('type')}\"'.",
                param=param,
                code="invalid_function_parameters",
            )
        if strict:
            self.check_strict(name, schema, (), param)

    def check_strict(self, name: str, schema: dict[str, Any], context: tuple[str, ...], param: str) -> None:
        if schema.get("type") == "object":
            if schema.get("additionalProperties") is not False:
                raise self.error(
                    400,
                    f"Invalid schema for function '{name}': In context={context!r}, 'additionalProperties' is required "
                    "to be supplied and to be false.",
                    param=param,
                    code="invalid_function_parameters",
                )
            props = schema.get("properties") or {}
            required = schema.get("required") or []
            for key in props:
                if key not in required:
                    raise self.error(
                        400,
                        f"Invalid schema for function '{name}': In context={context!r}, 'required' is required to be "
                        f"supplied and to be an array including every key in properties. Missing '{key}'.",
                        param=param,
                        code="invalid_function_parameters",
                    )
            for key, sub in props.items():
                if isinstance(sub, dict):
                    self.check_strict(name, sub, (*context, "properties", key), param)
        if schema.get("type") == "array" and isinstance(schema.get("items"), dict):
            self.check_strict(name, schema["items"], (*context, "items"), param)

    # --- answers ---------------------------------------------------------------------------------------
    def response_model(self, req: ReplicaRequest) -> str:
        return req.model

    def reply(self, h: ReplicaHandler, req: ReplicaRequest, spec: dict[str, Any]) -> None:
        model = self.response_model(req)
        if "status" in spec:
            raise self.fault(int(spec["status"]), spec, model)
        if "raw" in spec:
            h.send_raw(200, str(spec["raw"]))
            return
        content = spec.get("content")
        calls = normalise_calls(spec, self.call_id_prefix)
        completion_tokens = count_tokens((content or "") + "".join(c["arguments"] for c in calls)) + len(
            calls
        )
        usage = self.usage(req.prompt_tokens, completion_tokens)
        finish = spec.get("stop") or ("tool_calls" if calls else "stop")
        if req.stream:
            self.stream(h, req, content, calls, finish, usage)
            return
        message: dict[str, Any] = {
            "role": "assistant",
            "content": content,
            "refusal": None,
            "annotations": [],
        }
        if calls:
            message["tool_calls"] = [self.call_object(c) for c in calls]
        h.send_json(
            200,
            {
                "id": self.completion_prefix + uuid.uuid4().hex[:24],
                "object": "chat.completion",
                "created": int(time.time()),
                "model": model,
                "choices": [{"index": 0, "message": message, "logprobs": None, "finish_reason": finish}],
                "usage": usage,
                "service_tier": "default",
                "system_fingerprint": None,
            },
        )

    def call_object(self, call: dict[str, Any]) -> dict[str, Any]:
        return {
            "id": call["id"],
            "type": "function",
            "function": {"name": call["name"], "arguments": call["arguments"]},
        }

    def usage(self, prompt: int, completion: int) -> dict[str, Any]:
        return {
            "prompt_tokens": prompt,
            "completion_tokens": completion,
            "total_tokens": prompt + completion,
            "prompt_tokens_details": {"cached_tokens": 0, "audio_tokens": 0},
            "completion_tokens_details": {
                "reasoning_tokens": 0,
                "audio_tokens": 0,
                "accepted_prediction_tokens": 0,
                "rejected_prediction_tokens": 0,
            },
        }

    def stream(
        self,
        h: ReplicaHandler,
        req: ReplicaRequest,
        content: str | None,
        calls: list[dict[str, Any]],
        finish: str,
        usage: dict[str, Any],
    ) -> None:
        cid = self.completion_prefix + uuid.uuid4().hex[:24]
        created = int(time.time())
        include_usage = bool((req.body.get("stream_options") or {}).get("include_usage"))

        def send(delta: dict[str, Any] | None, finish_reason: str | None = None, usage_: Any = None) -> None:
            chunk: dict[str, Any] = {
                "id": cid,
                "object": "chat.completion.chunk",
                "created": created,
                "model": self.response_model(req),
                "service_tier": "default",
                "system_fingerprint": None,
                "choices": []
                if delta is None
                else [{"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish_reason}],
            }
            if include_usage:
                chunk["usage"] = usage_  # null on every chunk but the last, as OpenAI sends it
            h.sse(chunk)

        h.start_sse()
        first_call = (
            {
                "index": 0,
                "id": calls[0]["id"],
                "type": "function",
                "function": {"name": calls[0]["name"], "arguments": ""},
            }
            if calls
            else None
        )
        if content:
            send({"role": "assistant", "content": "", "refusal": None})
            for piece in text_pieces(content):
                if self.token_delay:
                    time.sleep(self.token_delay)
                send({"content": piece})
        elif first_call:
            send({"role": "assistant", "content": None, "tool_calls": [first_call], "refusal": None})
        else:
            send({"role": "assistant", "content": "", "refusal": None})
        for i, call in enumerate(calls):
            if i > 0 or content:
                start = {
                    "index": i,
                    "id": call["id"],
                    "type": "function",
                    "function": {"name": call["name"], "arguments": ""},
                }
                send({"tool_calls": [start]})
            args = call["arguments"]
            for j in range(0, len(args), 12):
                send({"tool_calls": [{"index": i, "function": {"arguments": args[j : j + 12]}}]})
        send({}, finish)
        if include_usage:
            send(None, usage_=usage)
        h.sse("[DONE]")


class OpenAIReplica(ChatCompletionsReplica):
    """OpenAI's own API: `url` is the `base_url` for `openai.OpenAI` (…/v1)."""

    def default_models(self) -> dict[str, Any]:
        return dict(OPENAI_MODELS)
