"""Anthropic's Messages API through AutoGen's AnthropicChatCompletionClient.

AutoGen 0.7.5 always sends `temperature` (1.0 when unset) and `max_tokens` (4096 when unset), and has no
`output_config`. Claude Opus 4.7 and later refuse any temperature, and with adaptive thinking 4096 tokens can
truncate an answer silently. So the SDK client inside AutoGen's is wrapped: each request is rewritten to what the
model's family accepts (models/families.py) before it leaves.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from autogen_core.models import ChatCompletionClient

from models.families import RequestPlan
from models.providers.base import ModelLister, Provider, family_and_info, plan_for, ssl_context
from models.spec import ModelSpec

if TYPE_CHECKING:
    from config.settings import Settings

_FALLBACK_MAX_TOKENS = 8_192  # a Claude name no family knows (max_tokens is required)


class _Messages:
    def __init__(self, messages: Any, plan: RequestPlan) -> None:
        self._messages = messages
        self._plan = plan

    async def create(self, **kwargs: Any) -> Any:
        return await self._messages.create(**rewrite(kwargs, self._plan))

    def __getattr__(self, name: str) -> Any:
        return getattr(self._messages, name)


class _RuledAnthropic:
    """The AsyncAnthropic client AutoGen holds, with `messages.create` rewritten by the family's rules."""

    def __init__(self, client: Any, plan: RequestPlan) -> None:
        self._client = client
        self.messages = _Messages(client.messages, plan)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._client, name)


def rewrite(request: dict[str, Any], plan: RequestPlan) -> dict[str, Any]:
    """A Messages request as the model's family accepts it."""
    out = dict(request)
    if plan.temperature is None:
        out.pop("temperature", None)  # AutoGen's default 1.0, or a value the plan dropped
    else:
        out["temperature"] = plan.temperature
    if plan.thinking is not None:
        out["thinking"] = plan.thinking
    if plan.reasoning_effort is not None:
        out["output_config"] = {**(out.get("output_config") or {}), "effort": plan.reasoning_effort}
    out["max_tokens"] = plan.max_output_tokens or _FALLBACK_MAX_TOKENS
    return out


class AnthropicProvider(Provider):
    name = "anthropic"
    label = "Anthropic (ANTHROPIC_API_KEY)"
    env = ("ANTHROPIC_API_KEY", "ANTHROPIC_BASE_URL")
    needs = "ANTHROPIC_API_KEY"
    hint = "ANTHROPIC_API_KEY (Anthropic)"
    pricing_id = "anthropic"
    # Haiku 5.5: the cheap 1M-context Claude; Sonnet 5.5 ($2/$10): the strong planner/critic.
    tiers = {"default": "claude-haiku-5-5", "strong": "claude-sonnet-5-5"}

    def is_configured(self, settings: Settings, spec: ModelSpec | None = None) -> bool:
        return settings.anthropic_api_key is not None

    def build(self, model: str, spec: ModelSpec, settings: Settings) -> ChatCompletionClient:
        import anthropic
        from autogen_ext.models.anthropic import AnthropicChatCompletionClient

        assert settings.anthropic_api_key is not None
        family, info = family_and_info(model, spec)
        plan = plan_for(model, family, spec, allow_verbosity=False)
        args: dict[str, Any] = {
            "model": model,
            "api_key": settings.anthropic_api_key.get_secret_value(),
            "max_retries": 0,  # ManagedClient owns the retry policy
            "timeout": settings.llm_request_timeout,
            "max_tokens": plan.max_output_tokens or _FALLBACK_MAX_TOKENS,
            "http_client": anthropic.DefaultAsyncHttpxClient(verify=ssl_context("httpx")),
            "model_info": info,
        }
        if settings.anthropic_base_url:
            args["base_url"] = settings.anthropic_base_url
        client = AnthropicChatCompletionClient(**args)
        client._client = _RuledAnthropic(client._client, plan)
        return client

    def retryable_errors(self) -> tuple[type[BaseException], ...]:
        import anthropic

        return (
            anthropic.APIConnectionError,  # includes APITimeoutError
            anthropic.APIResponseValidationError,
            anthropic.RateLimitError,
            anthropic.InternalServerError,  # 5xx
            *((anthropic.OverloadedError,) if hasattr(anthropic, "OverloadedError") else ()),  # 529
        )

    def model_lister(self, spec: ModelSpec, settings: Settings) -> ModelLister | None:
        assert settings.anthropic_api_key is not None
        key, base_url, timeout = settings.anthropic_api_key.get_secret_value(), settings.anthropic_base_url, settings.llm_request_timeout

        async def list_models() -> Sequence[str]:
            import anthropic

            async with anthropic.AsyncAnthropic(
                api_key=key, base_url=base_url, max_retries=0, timeout=timeout,
                http_client=anthropic.DefaultAsyncHttpxClient(verify=ssl_context("httpx")),
            ) as client:
                return [m.id async for m in client.models.list()]

        return list_models


PROVIDER = AnthropicProvider()
