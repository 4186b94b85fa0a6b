"""A strict replica of Gemini's OpenAI-compatible endpoint: `POST /v1beta/openai/chat/completions`,
`GET /v1beta/openai/models`.

Usage: `with GeminiReplica(script) as api: openai.OpenAI(base_url=api.url, api_key="GEMINI_API_KEY")` (`url` ends
in /v1beta/openai, like https://generativelanguage.googleapis.com/v1beta/openai/). Recording and the script format:
tests/fakes/replicas/common.py.

Enforced (errors in Google's shape, a JSON list: `[{"error": {"code", "message", "status", "details"?}}]`, which the
openai SDK shows as `Error code: 400 - [{'error': ...}]`):
- the key as `Authorization: Bearer` (403 PERMISSION_DENIED without one; 400 "API key not valid. Please pass a valid
  API key." when `api_key=` is set and differs);
- models `gemini-…` or `models/gemini-…` from the catalogue (404 NOT_FOUND "models/x is not found for API version
  v1main, or is not supported for generateContent. ...");
- fields the endpoint does not know: one "Invalid JSON payload received. Unknown name "x": Cannot find field." per
  field, joined by newlines, with `fieldViolations` (e.g. frequency_penalty, top_k, reasoning, thinking, store,
  metadata, logit_bias, prompt_cache_key, web_search_options, verbosity, parallel_tool_calls, user, ...);
  `extra_body` only as `{"google": {...}}` with known keys (thinking_config, cached_content, thought_tag_marker);
- `presence_penalty`: "Penalty is not enabled for models/x" (reported for Gemini 3.x);
- `reasoning_effort`: values "none", "low", "medium", "high" ("Invalid reasoning_effort: minimal. Valid values are:
  high, low, medium, none", the live answer even where the docs' table lists "minimal"); Pro models refuse levels
  they lack ("Thinking level NONE is not supported for this model. Please retry with other thinking level");
  `reasoning_effort` together with `extra_body.google.thinking_config` thinking_budget/thinking_level is refused (the
  docs say the two overlap and cannot be used together; wording ours);
- messages: roles, a function response turn right after the function call turn and one response per call ("Please
  ensure that function response turn comes immediately after a function call turn." / "Please ensure that the number
  of function response parts is equal to the number of function call parts of the function call turn."); content
  part types; tool schemas with `type: "object"` at the top; `stream_options` only with `stream`.
Answers are OpenAI-shaped; tool-call ids look like Gemini's ("function-call-…"), a streamed tool call arrives whole
in one delta, and usage rides on the final chunk. `GeminiReplica(tool_finish_reason="stop")` reproduces the reported
quirk of `finish_reason: "stop"` on tool calls (discuss.ai.google.dev, Dec 2025).

Sources (stored copies): ai.google.dev/gemini-api/docs/openai (and /api/compatibility: base URL, bearer auth,
reasoning_effort → thinking_level/thinking_budget mapping, extra_body.google, service_tier), developersdigest.tech
"API compatibility - Google" summary of those docs, discuss.ai.google.dev threads 117875 and 118724 (reasoning_effort
values), 112648 (Pro thinking levels); live errors quoted in bytedance/deer-flow#1515 (Unknown name "thinking"),
MinLL/SkyrimNet-GamePlugin#77 (frequency_penalty, reasoning, top_k, extra_body), FuzzAnything/PromptFuzz#42
(web_search_options), leookun/cursor-byok#112 (prompt_cache_key), Alishahryar1/free-claude-code#542 (google),
n4ze3m/page-assist#418 and versun/RSSBox#132 (frequency_penalty), Ikalus1988/MisakaNet#1473 (penalties on 3.x).
Not enforced: Gemini's schema subset inside tool parameters, image/audio/video size limits, safety blocks, quotas
(script a 429/503). `parallel_tool_calls`, `user` and `logprobs` are refused as unknown for want of evidence either way.
"""

from __future__ import annotations

import time
import uuid
from dataclasses import dataclass
from typing import Any

from tests.fakes.replicas.common import Rejection, ReplicaHandler, ReplicaRequest, text_pieces
from tests.fakes.replicas.openai_chat import ChatCompletionsReplica

GOOGLE_STATUS = {
    400: "INVALID_ARGUMENT",
    401: "UNAUTHENTICATED",
    403: "PERMISSION_DENIED",
    404: "NOT_FOUND",
    429: "RESOURCE_EXHAUSTED",
    500: "INTERNAL",
    503: "UNAVAILABLE",
    504: "DEADLINE_EXCEEDED",
}

KNOWN_FIELDS = frozenset(
    {
        "model", "messages", "max_tokens", "max_completion_tokens", "n", "temperature", "top_p", "stop", "stream",
        "stream_options", "tools", "tool_choice", "response_format", "reasoning_effort", "seed", "presence_penalty",
        "service_tier", "extra_body",
    }
)  # fmt: skip
GOOGLE_EXTRA = frozenset({"thinking_config", "cached_content", "thought_tag_marker"})
EFFORT_VALUES = ("high", "low", "medium", "none")


@dataclass(frozen=True)
class GeminiModel:
    display_name: str
    efforts: tuple[str, ...] = ("none", "low", "medium", "high")
    vision: bool = True
    max_output: int = 65_536


GEMINI_MODELS: dict[str, GeminiModel] = {
    "gemini-2.5-flash": GeminiModel("Gemini 2.5 Flash"),
    "gemini-3.5-flash": GeminiModel("Gemini 3.5 Flash"),
    "gemini-3.5-flash-lite": GeminiModel("Gemini 3.5 Flash-Lite"),
    "gemini-3.6-flash": GeminiModel("Gemini 3.6 Flash"),
    "gemini-3.1-pro-preview": GeminiModel("Gemini 3.1 Pro Preview", efforts=("low", "medium", "high")),
}


class GeminiReplica(ChatCompletionsReplica):
    base_path = "/v1beta/openai"
    chat_path = "/v1beta/openai/chat/completions"
    models_path = "/v1beta/openai/models"
    call_id_prefix = "function-call-"
    completion_prefix = ""

    def __init__(self, *args: Any, tool_finish_reason: str = "tool_calls", **kwargs: Any) -> None:
        self.tool_finish_reason = tool_finish_reason
        super().__init__(*args, **kwargs)

    def default_models(self) -> dict[str, Any]:
        return dict(GEMINI_MODELS)

    # --- errors ----------------------------------------------------------------------------------------
    def error(
        self,
        status: int,
        message: str,
        *,
        headers: dict[str, str] | None = None,
        violations: list[str] | None = None,
        **_: Any,
    ) -> Rejection:
        inner: dict[str, Any] = {
            "code": status,
            "message": message,
            "status": GOOGLE_STATUS.get(status, "UNKNOWN"),
        }
        if violations:
            inner["details"] = [
                {
                    "@type": "type.googleapis.com/google.rpc.BadRequest",
                    "fieldViolations": [{"description": v} for v in violations],
                }
            ]
        return Rejection(status, [{"error": inner}], message, headers)

    def malformed_body(self, detail: str) -> Rejection:
        return self.error(400, f"Invalid JSON payload received. {detail}")

    def fault(self, status: int, spec: dict[str, Any], model: str) -> Rejection:
        defaults = {
            429: "You exceeded your current quota, please check your plan and billing details. For more information on "
            "this error, head to: https://ai.google.dev/gemini-api/docs/rate-limits.",
            503: "The model is overloaded. Please try again later.",
            500: "An internal error has occurred. Please retry or report in "
            "https://developers.generativeai.google/guide/troubleshooting",
        }
        rejection = self.error(
            status,
            spec.get("message") or defaults.get(status, "scripted error"),
            headers=dict(spec.get("headers") or {}),
        )
        if "body" in spec:
            rejection.body = spec["body"]
        return rejection

    # --- checks ----------------------------------------------------------------------------------------
    def authenticate(self, headers: dict[str, str]) -> None:
        auth = headers.get("authorization", "")
        key = auth[7:].strip() if auth.lower().startswith("bearer ") else ""
        if not key:
            raise self.error(
                403,
                "Method doesn't allow unregistered callers (callers without established identity). Please use API Key "
                "or other form of API consumer identity to call this API.",
            )
        if self.api_key is not None and key != self.api_key:
            raise self.error(400, "API key not valid. Please pass a valid API key.")

    def lookup_model(self, name: str) -> Any:
        return self.models.get(name.removeprefix("models/"))

    def model_not_found(self, name: str) -> Rejection:
        return self.error(
            404,
            f"models/{name.removeprefix('models/')} is not found for API version v1main, or is not supported for "
            "generateContent. Call ListModels to see the list of available models and their supported methods.",
        )

    def model_object(self, name: str) -> dict[str, Any]:
        return {"id": f"models/{name}", "object": "model", "owned_by": "google"}

    def check_model(self, body: dict[str, Any]) -> Any:
        if "model" not in body:
            raise self.error(400, "model is not specified")  # (wording ours)
        spec = self.lookup_model(str(body["model"]))
        if spec is None:
            raise self.model_not_found(str(body["model"]))
        return spec

    def validate(self, body: dict[str, Any], spec: GeminiModel) -> None:
        unknown = [
            f'Invalid JSON payload received. Unknown name "{k}": Cannot find field.'
            for k in body
            if k not in KNOWN_FIELDS
        ]
        extra = body.get("extra_body")
        if extra is not None:
            google = extra.get("google") if isinstance(extra, dict) else None
            if not isinstance(extra, dict) or set(extra) - {"google"}:
                for k in (set(extra) - {"google"}) if isinstance(extra, dict) else {"extra_body"}:
                    unknown.append(
                        f"Invalid JSON payload received. Unknown name \"{k}\" at 'extra_body': Cannot find field."
                    )
            elif isinstance(google, dict):
                for k in set(google) - GOOGLE_EXTRA:
                    unknown.append(
                        f"Invalid JSON payload received. Unknown name \"{k}\" at 'extra_body.google': Cannot find field."
                    )
        if unknown:
            raise self.error(400, "\n".join(unknown), violations=unknown)
        model = str(body["model"]).removeprefix("models/")
        if "presence_penalty" in body:
            raise self.error(400, f"Penalty is not enabled for models/{model}")
        if "stream_options" in body and body.get("stream") is not True:
            raise self.error(400, "stream_options is only allowed when stream is enabled")  # (wording ours)
        effort = body.get("reasoning_effort")
        if effort is not None:
            if effort not in EFFORT_VALUES:
                raise self.error(
                    400, f"Invalid reasoning_effort: {effort}. Valid values are: {', '.join(EFFORT_VALUES)}"
                )
            if effort not in spec.efforts:
                raise self.error(
                    400,
                    f"Thinking level {effort.upper()} is not supported for this model. Please retry with other thinking level",
                )
            thinking = ((extra or {}).get("google") or {}).get("thinking_config") or {}
            if "thinking_budget" in thinking or "thinking_level" in thinking:
                raise self.error(  # (wording ours; the docs say the two cannot be used at the same time)
                    400,
                    "reasoning_effort and thinking_config.thinking_budget/thinking_level cannot both be set",
                )
        if "messages" not in body or not isinstance(body["messages"], list) or not body["messages"]:
            raise self.error(400, "* GenerateContentRequest.contents: contents is not specified\n")
        self.check_gemini_messages(body["messages"], spec)
        tools = body.get("tools")
        for i, tool in enumerate(tools or []):
            function = tool.get("function") if isinstance(tool, dict) else None
            if not isinstance(function, dict) or not function.get("name"):
                raise self.error(
                    400,
                    f"* GenerateContentRequest.tools[0].function_declarations[{i}].name: Name cannot be empty.\n",
                )
            params = function.get("parameters")
            if params is not None and (not isinstance(params, dict) or params.get("type") != "object"):
                raise self.error(
                    400,
                    f"* GenerateContentRequest.tools[0].function_declarations[{i}].parameters.type: must be OBJECT\n",  # (wording ours)
                )

    def check_gemini_messages(self, messages: list[Any], spec: GeminiModel) -> None:
        pending: list[str] = []
        expecting = False
        for i, m in enumerate(messages):
            role = m.get("role") if isinstance(m, dict) else None
            if role not in ("system", "developer", "user", "assistant", "tool"):
                raise self.error(
                    400, f"Invalid role: {role}. Valid roles are: system, developer, user, assistant, tool"
                )  # (wording ours)
            if role == "tool":
                if not expecting:
                    raise self.error(
                        400,
                        "Please ensure that function response turn comes immediately after a function call turn.",
                    )
                if m.get("tool_call_id") in pending:
                    pending.remove(m["tool_call_id"])
                continue
            if pending:
                raise self.error(
                    400,
                    "Please ensure that the number of function response parts is equal to the number of function call "
                    "parts of the function call turn.",
                )
            expecting = False
            content = m.get("content")
            if isinstance(content, list):
                for part in content:
                    kind = part.get("type") if isinstance(part, dict) else None
                    if kind not in ("text", "image_url", "input_audio", "file"):
                        raise self.error(400, f"Invalid content part type: {kind}")  # (wording ours)
                    if kind == "image_url" and not spec.vision:
                        raise self.error(
                            400, "Image input modality is not enabled for this model"
                        )  # (wording ours)
            elif content is None and not (role == "assistant" and m.get("tool_calls")):
                raise self.error(
                    400, f"* GenerateContentRequest.contents[{i}].parts: contents.parts must not be empty.\n"
                )
            if role == "assistant" and m.get("tool_calls"):
                pending = [c.get("id") for c in m["tool_calls"] if isinstance(c, dict)]
                expecting = True
        if pending:
            raise self.error(
                400,
                "Please ensure that the number of function response parts is equal to the number of function call parts "
                "of the function call turn.",
            )

    # --- answers ---------------------------------------------------------------------------------------
    def reply(self, h: ReplicaHandler, req: ReplicaRequest, spec: dict[str, Any]) -> None:
        if spec.get("tool_calls") and "stop" not in spec:
            spec = {**spec, "stop": self.tool_finish_reason}
        super().reply(h, req, spec)

    def usage(self, prompt: int, completion: int) -> dict[str, Any]:
        return {"prompt_tokens": prompt, "completion_tokens": completion, "total_tokens": prompt + completion}

    def stream(
        self,
        h: ReplicaHandler,
        req: ReplicaRequest,
        content: str | None,
        calls: list[dict[str, Any]],
        finish: str,
        usage: dict[str, Any],
    ) -> None:
        cid = uuid.uuid4().hex[:20]
        created = int(time.time())
        include_usage = bool((req.body.get("stream_options") or {}).get("include_usage"))

        def send(delta: dict[str, Any], finish_reason: str | None = None, usage_: Any = None) -> None:
            chunk: dict[str, Any] = {
                "id": cid,
                "object": "chat.completion.chunk",
                "created": created,
                "model": req.model,
                "choices": [{"index": 0, "delta": delta, "finish_reason": finish_reason}],
            }
            if usage_ is not None:
                chunk["usage"] = usage_
            h.sse(chunk)

        h.start_sse()
        pieces = text_pieces(content) if content else []
        for piece in pieces:
            if self.token_delay:
                time.sleep(self.token_delay)
            send({"content": piece, "role": "assistant"})
        if calls:
            send(
                {
                    "role": "assistant",
                    "tool_calls": [
                        {
                            "index": i,
                            "id": c["id"],
                            "type": "function",
                            "function": {"name": c["name"], "arguments": c["arguments"]},
                        }
                        for i, c in enumerate(calls)
                    ],
                }
            )
        send({"role": "assistant"}, finish, usage if include_usage else None)
        h.sse("[DONE]")
