"""A replica of the Hugging Face Inference Providers router: `POST /v1/chat/completions`, `GET /v1/models`.

Usage: `with HFRouterReplica(script) as api: openai.OpenAI(base_url=api.url, api_key="hf_...")` (`url` ends in /v1,
like https://router.huggingface.co/v1). Recording and the script format: tests/fakes/replicas/common.py.

Enforced:
- an HF token as `Authorization: Bearer` (401 without; 401 when `token=` is set and differs);
- `model` as `org/name`, `org/name:provider` or `org/name:fastest|cheapest|preferred` (the routing policies); a model
  no provider serves: 400 "The requested model 'x' is not supported by any provider you have enabled."; a provider
  that does not serve it: 400 (wording ours); tools sent to a provider entry marked without tool support: 400
  (wording ours);
- OpenAI Chat Completions message semantics (roles, `name` pattern, tool-call pairing, content parts) and tool
  schemas, reusing the OpenAI replica's checks: the router forwards an OpenAI-format request to the provider, and
  providers built on OpenAI-compatible servers enforce the same structure. Unknown top-level fields are NOT refused
  (providers take extras such as top_k).
Errors: `{"error": {"message", "type", "param", "code"}}` (the OpenAI shape the router answers in; the 400 text is
quoted from router answers in n4ze3m/page-assist#727, cline/cline#5098 and vercel/ai#7788).
`GET /v1/models` lists each model with its `providers` (provider, status, context_length, pricing, supports_tools),
as the router does. The catalogue (`HF_MODELS`) is illustrative: which providers serve which model changes weekly
and could not be confirmed for late 2026 (/work/shared/reference/models-and-evidence-2026.md §5.4); pass `models=`
to change it.

Sources (stored copies): huggingface.co/docs/inference-providers (OpenAI-compatible router, `model:provider`
suffixes, policies), the HF changelog of 2025-07-18, huggingface.co/inference/models (providers and prices).
Not enforced: per-provider parameter quirks, context lengths, billing/credit errors (script a 402), rate limits.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from tests.fakes.replicas.common import Rejection
from tests.fakes.replicas.openai_chat import ChatCompletionsReplica

POLICIES = ("fastest", "cheapest", "preferred")


@dataclass(frozen=True)
class HFProvider:
    name: str
    tools: bool = True
    context_length: int = 131_072
    input_price: float = 0.5
    output_price: float = 1.0


@dataclass(frozen=True)
class HFModel:
    providers: tuple[HFProvider, ...]
    vision: bool = False
    owned_by: str = field(default="")


HF_MODELS: dict[str, HFModel] = {
    "openai/gpt-oss-120b": HFModel(
        (
            HFProvider("groq", input_price=0.15, output_price=0.75),
            HFProvider("cerebras"),
            HFProvider("fireworks-ai"),
        )
    ),
    "openai/gpt-oss-20b": HFModel(
        (HFProvider("groq", input_price=0.10, output_price=0.50), HFProvider("together"))
    ),
    "Qwen/Qwen3.5-397B-A17B": HFModel(
        (HFProvider("novita", context_length=262_144), HFProvider("together", context_length=262_144)),
        vision=True,
    ),
    "Qwen/Qwen2.5-72B-Instruct": HFModel(
        (HFProvider("novita", context_length=32_768), HFProvider("nebius", context_length=32_768))
    ),
    "meta-llama/Llama-3.3-70B-Instruct": HFModel(
        (HFProvider("groq"), HFProvider("sambanova"), HFProvider("hyperbolic", tools=False))
    ),
    "deepseek-ai/DeepSeek-V3.2-Exp": HFModel((HFProvider("novita", context_length=163_840),)),
    "zai-org/GLM-4.6": HFModel(
        (HFProvider("novita", context_length=200_000), HFProvider("zai-org", context_length=200_000))
    ),
}


class HFRouterReplica(ChatCompletionsReplica):
    base_path = "/v1"

    def __init__(self, *args: Any, token: str | None = None, **kwargs: Any) -> None:
        super().__init__(*args, api_key=token, **kwargs)

    def default_models(self) -> dict[str, Any]:
        return dict(HF_MODELS)

    def add_model(self, name: str, like: str) -> None:
        self.models[name] = self.models[like]

    def authenticate(self, headers: dict[str, str]) -> None:
        auth = headers.get("authorization", "")
        token = auth[7:].strip() if auth.lower().startswith("bearer ") else ""
        if not token:
            raise self.error(
                401,
                "You must provide a valid HF token in the Authorization header.",
                type="authentication_error",
            )  # (wording ours)
        if self.api_key is not None and token != self.api_key:
            raise self.error(401, "Invalid credentials in Authorization header", type="authentication_error")

    @staticmethod
    def split(name: str) -> tuple[str, str | None]:
        base, _, provider = name.partition(":")
        return base, provider or None

    def lookup_model(self, name: str) -> Any:
        return self.models.get(self.split(name)[0])

    def model_not_found(self, name: str) -> Rejection:
        return self.error(
            400,
            f"The requested model '{self.split(name)[0]}' is not supported by any provider you have enabled.",
            param="model",
            code="model_not_supported",
        )

    def model_object(self, name: str) -> dict[str, Any]:
        spec: HFModel = self.models[name]
        return {
            "id": name,
            "object": "model",
            "created": 1_750_000_000,
            "owned_by": spec.owned_by or name.split("/")[0],
            "providers": [
                {
                    "provider": p.name,
                    "status": "live",
                    "context_length": p.context_length,
                    "pricing": {"input": p.input_price, "output": p.output_price},
                    "supports_tools": p.tools,
                    "supports_structured_output": True,
                }
                for p in spec.providers
            ],
        }

    def response_model(self, req: Any) -> str:
        return self.split(req.model)[0]

    def validate(self, body: dict[str, Any], spec: HFModel) -> None:
        base, provider = self.split(str(body["model"]))
        chosen = spec.providers[0]
        if provider and provider not in POLICIES:
            match = [p for p in spec.providers if p.name == provider]
            if not match:
                raise self.error(
                    400, f"The requested model '{base}' is not supported by provider '{provider}'.",  # (wording ours)
                    param="model", code="model_not_supported",
                )  # fmt: skip
            chosen = match[0]
        if body.get("tools") and not chosen.tools:
            raise self.error(
                400,
                f"Provider '{chosen.name}' does not support tools for model '{base}'.",
                param="tools",  # (wording ours)
            )
        if "stream_options" in body and body.get("stream") is not True:
            raise self.error(
                400,
                "The 'stream_options' parameter is only allowed when 'stream' is enabled.",
                param="stream_options",
            )
        self.check_messages(body["messages"], vision=spec.vision)
        self.check_tools(body)
