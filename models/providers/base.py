"""What every provider declares, and the OpenAI-wire client the OpenAI-shaped providers share.

A provider module defines one `Provider` subclass instance, `PROVIDER`, and is listed in
`models/providers/__init__.py`. Its parts: `name`, `label` (the UI), `env` (the variables it reads), `needs` (what to
set, for the "not configured" error), `hint` (its part of the "nothing configured" message), `pricing_id`
(genai-prices' provider id), `tiers` (default model per tier), `is_configured()`, `build()` (the AutoGen client) and
`retryable_errors()` (the SDK exceptions worth retrying).
"""

from __future__ import annotations

import ssl
from collections.abc import AsyncGenerator, Awaitable, Callable, Mapping, Sequence
from functools import lru_cache
from typing import TYPE_CHECKING, Any, Literal

from autogen_core import CancellationToken
from autogen_core.models import ChatCompletionClient, CreateResult, LLMMessage, ModelInfo
from autogen_core.tools import Tool, ToolSchema
from pydantic import BaseModel

from models.families import Family, RequestPlan, family_of, plan_request, warn_once
from models.spec import Capabilities, ModelSpec, Tier

if TYPE_CHECKING:
    from config.settings import Settings


class Provider:
    """One model provider. Subclasses set the class attributes and implement `is_configured` and `build`."""

    name: str = ""
    label: str = ""
    env: tuple[str, ...] = ()
    needs: str = ""
    hint: str = ""
    pricing_id: str | None = None
    tiers: Mapping[Tier, str] = {}

    def is_configured(self, settings: Settings, spec: ModelSpec | None = None) -> bool:
        raise NotImplementedError

    def not_configured_reason(self, settings: Settings, spec: ModelSpec | None = None) -> str:
        return f"LLM provider '{self.name}' needs {self.needs}, which is not set."

    def default_model(self, tier: Tier, settings: Settings) -> str | None:
        return self.tiers.get(tier) or self.tiers.get("default")

    def build(self, model: str, spec: ModelSpec, settings: Settings) -> ChatCompletionClient:
        raise NotImplementedError

    def retryable_errors(self) -> tuple[type[BaseException], ...]:
        return ()

    async def prepare(self, model: str, spec: ModelSpec, settings: Settings) -> None:
        """Slow set-up `build` would otherwise do on the event loop (loading weights), done off it first."""
        return None

    def model_lister(self, spec: ModelSpec, settings: Settings) -> ModelLister | None:
        """What lists the models this provider offers (for a "model not found" error), or None if it cannot."""
        return None


ModelLister = Callable[[], Awaitable[Sequence[str]]]


def openai_model_lister(api_key: str, base_url: str | None, settings: Settings) -> ModelLister:
    """GET {base_url}/models through the openai SDK: OpenAI, Gemini's OpenAI endpoint, the HF router, Ollama, vLLM."""

    async def list_models() -> Sequence[str]:
        import openai

        async with openai.AsyncOpenAI(
            api_key=api_key, base_url=base_url, max_retries=0, timeout=settings.llm_request_timeout,
            http_client=openai.DefaultAsyncHttpxClient(verify=ssl_context("httpx2")),
        ) as client:
            return [m.id async for m in client.models.list()]

    return list_models


@lru_cache(maxsize=2)
def ssl_context(library: str) -> ssl.SSLContext:
    """One verified TLS context per HTTP library, shared by every client of the process.

    Each new SDK client otherwise loads the CA bundle again (~30 ms), and a run builds one client per agent.
    """
    if library == "httpx2":
        import httpx2

        return httpx2.create_ssl_context()
    import httpx

    return httpx.create_ssl_context()


def model_info_of(caps: Capabilities) -> ModelInfo:
    return ModelInfo(
        vision=caps.vision,
        function_calling=caps.function_calling,
        json_output=caps.json_output,
        structured_output=caps.structured_output,
        family=caps.family,
    )


def family_and_info(model: str, spec: ModelSpec) -> tuple[Family, ModelInfo]:
    """The model's family (its parameter rules) and the ModelInfo AutoGen gets: the YAML's `capabilities` when
    given, else the family's. Never AutoGen's "model_info is required"."""
    family = family_of(model, warn=spec.capabilities is None)
    info = model_info_of(spec.capabilities) if spec.capabilities is not None else family.model_info()
    return family, info


def plan_for(model: str, family: Family, spec: ModelSpec, *, allow_verbosity: bool = True) -> RequestPlan:
    explicit = frozenset(spec.model_fields_set)
    return plan_request(
        model,
        family,
        temperature=spec.temperature,
        max_output_tokens=spec.max_output_tokens,
        reasoning_effort=spec.reasoning_effort,
        verbosity=spec.verbosity,
        explicit=explicit,
        allow_verbosity=allow_verbosity,
    )


def retryable_openai_errors() -> tuple[type[BaseException], ...]:
    import openai

    return (
        openai.APIConnectionError,  # includes APITimeoutError
        openai.APIResponseValidationError,
        openai.RateLimitError,
        openai.InternalServerError,
    )


def _ruled_openai_class() -> type[ChatCompletionClient]:
    from autogen_ext.models.openai import OpenAIChatCompletionClient

    class RuledOpenAIChatCompletionClient(OpenAIChatCompletionClient):
        """AutoGen's OpenAI client plus the per-request rules of the model's family: usage on streamed replies only
        (`stream_options` without `stream` is a 400), and `reasoning_effort: none` whenever tools are offered to a
        model that takes tools only at that effort (GPT-5.4+ and GPT-6 on Chat Completions)."""

        def __init__(self, *, plan: RequestPlan, stream_usage: bool, **kwargs: Any) -> None:
            super().__init__(**kwargs)
            self._plan = plan
            self._stream_usage = stream_usage

        def _rule_args(self, tools: Sequence[Tool | ToolSchema], extra: Mapping[str, Any]) -> dict[str, Any]:
            args = dict(extra)
            if tools and self._plan.family.tools_need_effort_none:
                asked = args.get("reasoning_effort", self._plan.reasoning_effort)
                if asked not in (None, "none"):
                    model = self._create_args["model"]
                    warn_once(
                        "tools-effort",
                        model,
                        f"model {model!r} takes function tools on Chat Completions only with reasoning_effort "
                        f"'none': requests with tools are sent with 'none' instead of {asked!r}",
                    )
                args["reasoning_effort"] = "none"
            return args

        async def create(
            self,
            messages: Sequence[LLMMessage],
            *,
            tools: Sequence[Tool | ToolSchema] = [],
            tool_choice: Tool | Literal["auto", "required", "none"] = "auto",
            json_output: bool | type[BaseModel] | None = None,
            extra_create_args: Mapping[str, Any] = {},
            cancellation_token: CancellationToken | None = None,
        ) -> CreateResult:
            args = self._rule_args(tools, extra_create_args)
            args.pop("stream_options", None)
            return await super().create(
                messages,
                tools=tools,
                tool_choice=tool_choice,
                json_output=json_output,
                extra_create_args=args,
                cancellation_token=cancellation_token,
            )

        def create_stream(
            self,
            messages: Sequence[LLMMessage],
            *,
            tools: Sequence[Tool | ToolSchema] = [],
            tool_choice: Tool | Literal["auto", "required", "none"] = "auto",
            json_output: bool | type[BaseModel] | None = None,
            extra_create_args: Mapping[str, Any] = {},
            cancellation_token: CancellationToken | None = None,
            max_consecutive_empty_chunk_tolerance: int = 0,
            include_usage: bool | None = None,
        ) -> AsyncGenerator[str | CreateResult, None]:
            args = self._rule_args(tools, extra_create_args)
            if self._stream_usage:
                # Without it, streamed replies report 0 tokens.
                args.setdefault("stream_options", {"include_usage": True})
            return super().create_stream(
                messages,
                tools=tools,
                tool_choice=tool_choice,
                json_output=json_output,
                extra_create_args=args,
                cancellation_token=cancellation_token,
                max_consecutive_empty_chunk_tolerance=max_consecutive_empty_chunk_tolerance,
            )

    return RuledOpenAIChatCompletionClient


_RULED_OPENAI: list[type[ChatCompletionClient]] = []


def openai_chat_client(
    model: str,
    spec: ModelSpec,
    settings: Settings,
    *,
    api_key: str,
    base_url: str | None,
    allow_verbosity: bool = True,
    send_names: bool | None = None,
) -> ChatCompletionClient:
    """An AutoGen OpenAI-wire client for `model`, sending only the parameters its family accepts."""
    import openai

    if not _RULED_OPENAI:
        _RULED_OPENAI.append(_ruled_openai_class())
    family, info = family_and_info(model, spec)
    plan = plan_for(model, family, spec, allow_verbosity=allow_verbosity)
    args: dict[str, Any] = {
        "model": model,
        "api_key": api_key,
        "max_retries": 0,  # ManagedClient owns the retry policy
        "timeout": settings.llm_request_timeout,
        "include_name_in_message": spec.send_names if send_names is None else send_names,
        "http_client": openai.DefaultAsyncHttpxClient(verify=ssl_context("httpx2")),
        "model_info": info,
        **plan.openai_args(),
    }
    if base_url:
        args["base_url"] = base_url
    return _RULED_OPENAI[0](plan=plan, stream_usage=spec.stream_usage, **args)  # type: ignore[call-arg]


class OpenAIWireProvider(Provider):
    """A provider that speaks OpenAI's Chat Completions (OpenAI, Gemini's endpoint, the HF router, compatible
    servers): they differ only in where they are and which key they send (`endpoint`) and in two request rules."""

    allow_verbosity = True
    send_names: bool | None = None  # None: as the profile says

    def endpoint(self, spec: ModelSpec, settings: Settings) -> tuple[str, str | None]:
        """(api key, base URL) of this provider for `spec`."""
        raise NotImplementedError

    def build(self, model: str, spec: ModelSpec, settings: Settings) -> ChatCompletionClient:
        api_key, base_url = self.endpoint(spec, settings)
        return openai_chat_client(model, spec, settings, api_key=api_key, base_url=base_url,
                                  allow_verbosity=self.allow_verbosity, send_names=self.send_names)

    def retryable_errors(self) -> tuple[type[BaseException], ...]:
        return retryable_openai_errors()

    def model_lister(self, spec: ModelSpec, settings: Settings) -> ModelLister | None:
        return openai_model_lister(*self.endpoint(spec, settings), settings)
