"""One factory from a team's ModelSpec (plus settings) to an AutoGen ChatCompletionClient.

Provider precedence: LLM_PROVIDER (when not `auto`) > the YAML's `provider` (when not `auto`) > the first
configured provider in the order OpenAI > Anthropic > HF > openai-compatible > local.
"""

from __future__ import annotations

import importlib.util
import ssl
from functools import lru_cache
from typing import Any

from autogen_core import CancellationToken
from autogen_core.models import ChatCompletionClient, ModelInfo

from config.settings import Settings
from models.client import ManagedClient
from models.spec import DEFAULT_MODELS, PROVIDERS, Capabilities, ModelSpec, ProviderName


class ProviderNotConfigured(Exception):
    """No usable model provider, or the chosen one lacks its credentials. The message names the variable."""


_NEEDS = {
    "openai": "OPENAI_API_KEY",
    "anthropic": "ANTHROPIC_API_KEY",
    "hf": "HF_TOKEN",
    "openai-compatible": "OPENAI_BASE_URL (or `base_url:` in the team YAML)",
    "local": "the [local] extra (pip install -e '.[local]')",
}

NOTHING_CONFIGURED = (
    "No model provider is configured. Set OPENAI_API_KEY (OpenAI), ANTHROPIC_API_KEY (Anthropic), HF_TOKEN "
    "(Hugging Face Inference Providers) or OPENAI_BASE_URL (an OpenAI-compatible server such as Ollama), "
    "or install the [local] extra; see .env.example."
)


def local_available() -> bool:
    return importlib.util.find_spec("transformers") is not None and importlib.util.find_spec("torch") is not None


def is_configured(provider: ProviderName, settings: Settings, spec: ModelSpec | None = None) -> bool:
    if provider == "openai":
        return settings.openai_api_key is not None
    if provider == "anthropic":
        return settings.anthropic_api_key is not None
    if provider == "hf":
        return settings.hf_token is not None
    if provider == "openai-compatible":
        return bool((spec and spec.base_url) or settings.openai_base_url)
    return local_available()


def resolve_provider(spec: ModelSpec, settings: Settings) -> ProviderName:
    chosen = settings.llm_provider if settings.llm_provider != "auto" else spec.provider
    if chosen != "auto":
        if not is_configured(chosen, settings, spec):
            raise ProviderNotConfigured(f"LLM provider '{chosen}' needs {_NEEDS[chosen]}, which is not set.")
        return chosen
    for provider in PROVIDERS:
        if is_configured(provider, settings, spec):
            return provider
    raise ProviderNotConfigured(NOTHING_CONFIGURED)


def resolve_model(spec: ModelSpec, provider: ProviderName, settings: Settings) -> str:
    name = settings.llm_model or spec.model_for(provider)
    if provider == "local" and not name:
        name = settings.local_model
    name = name or DEFAULT_MODELS.get(provider)
    if not name:
        raise ProviderNotConfigured(
            f"LLM provider '{provider}' needs a model name: set LLM_MODEL or `model:` in the team YAML."
        )
    return name


@lru_cache(maxsize=2)
def _ssl_context(library: str) -> ssl.SSLContext:
    """One verified TLS context per HTTP library, shared by every client of the process.

    Each new SDK client otherwise loads the CA bundle again (~30 ms), and a run builds one client per agent.
    """
    if library == "httpx2":
        import httpx2

        return httpx2.create_ssl_context()
    import httpx

    return httpx.create_ssl_context()


def _openai_http_client() -> Any:
    import openai

    return openai.DefaultAsyncHttpxClient(verify=_ssl_context("httpx2"))


def _anthropic_http_client() -> Any:
    import anthropic

    return anthropic.DefaultAsyncHttpxClient(verify=_ssl_context("httpx"))


def _model_info(caps: Capabilities) -> ModelInfo:
    return ModelInfo(
        vision=caps.vision,
        function_calling=caps.function_calling,
        json_output=caps.json_output,
        structured_output=caps.structured_output,
        family=caps.family,
    )


def _openai_client(model: str, spec: ModelSpec, settings: Settings, **kwargs: Any) -> ChatCompletionClient:
    from autogen_ext.models.openai import OpenAIChatCompletionClient

    args: dict[str, Any] = {
        "model": model,
        "max_retries": 0,  # ManagedClient owns the retry policy
        "timeout": settings.llm_request_timeout,
        "include_name_in_message": spec.send_names,
        "http_client": _openai_http_client(),
        **kwargs,
    }
    if spec.temperature is not None:
        args["temperature"] = spec.temperature
    if spec.max_tokens is not None:
        args["max_tokens"] = spec.max_tokens
    if spec.stream_usage:
        # Without it, streamed replies report 0 tokens.
        args["stream_options"] = {"include_usage": True}
    if spec.capabilities is not None:
        return OpenAIChatCompletionClient(model_info=_model_info(spec.capabilities), **args)
    try:
        return OpenAIChatCompletionClient(**args)
    except ValueError as exc:  # a name AutoGen does not know: declare the usual chat-model capabilities
        if "model_info" not in str(exc):
            raise
        return OpenAIChatCompletionClient(model_info=_model_info(Capabilities()), **args)


def _anthropic_client(model: str, spec: ModelSpec, settings: Settings) -> ChatCompletionClient:
    from autogen_ext.models.anthropic import AnthropicChatCompletionClient

    assert settings.anthropic_api_key is not None
    args: dict[str, Any] = {
        "model": model,
        "api_key": settings.anthropic_api_key.get_secret_value(),
        "max_retries": 0,
        "timeout": settings.llm_request_timeout,
        "max_tokens": spec.max_tokens or 4096,
        "http_client": _anthropic_http_client(),
    }
    if settings.anthropic_base_url:
        args["base_url"] = settings.anthropic_base_url
    if spec.temperature is not None:
        args["temperature"] = spec.temperature
    if spec.capabilities is not None:
        args["model_info"] = _model_info(spec.capabilities)
    return AnthropicChatCompletionClient(**args)


def build_raw_client(spec: ModelSpec, settings: Settings) -> tuple[ChatCompletionClient, ProviderName, str]:
    """The provider's own client, unwrapped. Raises ProviderNotConfigured with the variable to set."""
    provider = resolve_provider(spec, settings)
    model = resolve_model(spec, provider, settings)
    if provider == "openai":
        assert settings.openai_api_key is not None
        extra: dict[str, Any] = {"api_key": settings.openai_api_key.get_secret_value()}
        if settings.openai_base_url:
            extra["base_url"] = settings.openai_base_url
        return _openai_client(model, spec, settings, **extra), provider, model
    if provider == "anthropic":
        return _anthropic_client(model, spec, settings), provider, model
    if provider == "hf":
        assert settings.hf_token is not None
        hf_spec = spec.model_copy(update={"send_names": False})  # the router rejects `name` on some backends
        client = _openai_client(
            model, hf_spec, settings, api_key=settings.hf_token.get_secret_value(), base_url=settings.hf_router_url
        )
        return client, provider, model
    if provider == "openai-compatible":
        key = settings.openai_api_key.get_secret_value() if settings.openai_api_key else "not-needed"
        # The environment wins over the YAML, as LLM_PROVIDER and LLM_MODEL do (e.g. localhost vs a compose host).
        base_url = settings.openai_base_url or spec.base_url
        if spec.capabilities is None:
            spec = spec.model_copy(update={"capabilities": Capabilities()})
        return _openai_client(model, spec, settings, api_key=key, base_url=base_url), provider, model
    from models.local_model import TransformersChatCompletionClient

    caps = spec.capabilities or Capabilities()
    client = TransformersChatCompletionClient(
        model, model_info=_model_info(caps), max_new_tokens=spec.max_tokens or 512, temperature=spec.temperature or 0.0
    )
    return client, provider, model


def build_client(
    spec: ModelSpec,
    settings: Settings,
    *,
    agent: str,
    ledger: Any | None = None,
    abort: CancellationToken | None = None,
    telemetry: Any | None = None,
) -> ManagedClient:
    inner, provider, model = build_raw_client(spec, settings)
    return ManagedClient(
        inner,
        agent=agent,
        provider=provider,
        model=model,
        ledger=ledger,
        abort=abort,
        max_retries=settings.llm_max_retries,
        base_delay=settings.llm_retry_base_delay,
        max_delay=settings.llm_retry_max_delay,
        telemetry=telemetry,
    )
