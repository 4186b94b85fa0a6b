"""The provider registry: one factory from a team's ModelSpec (plus settings) to an AutoGen ChatCompletionClient.

One module per provider (openai, anthropic, gemini, hf, openai_compatible, local), each defining `PROVIDER` (see
models/providers/base.py for what a provider declares). Adding a provider = one module, its line in `_MODULES`,
and its tests. Every provider-name list of the app (settings, YAML validation, the UI, preflight) comes from here.

Provider precedence: LLM_PROVIDER (when not `auto`) > the YAML's `provider` (when not `auto`) > the first
configured provider in registry order: OpenAI > Anthropic > Gemini > HF > openai-compatible > local.
Model precedence: LLM_MODEL > the YAML's name for that provider > the provider's model for the profile's `tier`.
"""

from __future__ import annotations

import importlib.util
from typing import Any

from autogen_core import CancellationToken
from autogen_core.models import ChatCompletionClient, ModelInfo

from config.settings import Settings
from models.client import ManagedClient
from models.errors import ProviderNotConfigured
from models.providers import anthropic, gemini, hf, local, openai, openai_compatible
from models.providers.base import Provider, model_info_of
from models.spec import Capabilities, ModelSpec, Tier

__all__ = [
    "NOTHING_CONFIGURED",
    "PROVIDERS",
    "REGISTRY",
    "Provider",
    "ProviderNotConfigured",
    "build_client",
    "build_raw_client",
    "default_models",
    "get_provider",
    "is_configured",
    "local_available",
    "resolve_model",
    "resolve_provider",
]

_MODULES = (openai, anthropic, gemini, hf, openai_compatible, local)  # the `auto` order
REGISTRY: dict[str, Provider] = {m.PROVIDER.name: m.PROVIDER for m in _MODULES}
PROVIDERS: tuple[str, ...] = tuple(REGISTRY)

NOTHING_CONFIGURED = (
    "No model provider is configured. Set "
    + ", ".join(p.hint for p in REGISTRY.values() if p.name != "local")
    + ", or install the [local] extra; see .env.example."
)


def get_provider(name: str) -> Provider:
    try:
        return REGISTRY[name]
    except KeyError:
        raise ProviderNotConfigured(f"unknown LLM provider {name!r}; valid: {', '.join(PROVIDERS)}") from None


def default_models(tier: Tier = "default", settings: Settings | None = None) -> dict[str, str]:
    """provider -> its model for `tier` (providers without one, like openai-compatible, are left out)."""
    settings = settings or Settings(_env_file=None)
    out = {}
    for name, provider in REGISTRY.items():
        if model := provider.default_model(tier, settings):
            out[name] = model
    return out


def local_available() -> bool:
    return importlib.util.find_spec("transformers") is not None and importlib.util.find_spec("torch") is not None


def is_configured(provider: str, settings: Settings, spec: ModelSpec | None = None) -> bool:
    return get_provider(provider).is_configured(settings, spec)


def resolve_provider(spec: ModelSpec, settings: Settings) -> str:
    chosen = settings.llm_provider if settings.llm_provider != "auto" else spec.provider
    if chosen != "auto":
        provider = get_provider(chosen)
        if not provider.is_configured(settings, spec):
            raise ProviderNotConfigured(provider.not_configured_reason(settings, spec))
        return chosen
    for name, provider in REGISTRY.items():
        if provider.is_configured(settings, spec):
            return name
    if local_available():  # the extra is there but its model cannot run: say what to set or download
        from models.local_model import local_problem

        fallback = REGISTRY["local"]
        assert isinstance(fallback, local.LocalProvider)
        why = local_problem(fallback.model(settings, spec))
        raise ProviderNotConfigured(f"No model provider is configured, and the local model cannot run: {why}")
    raise ProviderNotConfigured(NOTHING_CONFIGURED)


def resolve_model(spec: ModelSpec, provider: str, settings: Settings) -> str:
    name = settings.llm_model or spec.model_for(provider) or get_provider(provider).default_model(spec.tier, settings)
    if not name:
        raise ProviderNotConfigured(
            f"LLM provider '{provider}' needs a model name: set LLM_MODEL or `model:` in the team YAML."
        )
    return name


def _model_info(caps: Capabilities) -> ModelInfo:
    return model_info_of(caps)


async def prepare_models(specs: list[ModelSpec], settings: Settings) -> None:
    """Do each model's slow set-up off the event loop before the team is built (see `Provider.prepare`)."""
    for spec in specs:
        provider = resolve_provider(spec, settings)
        await get_provider(provider).prepare(resolve_model(spec, provider, settings), spec, settings)


def build_raw_client(spec: ModelSpec, settings: Settings) -> tuple[ChatCompletionClient, str, str]:
    """The provider's own client, unwrapped. Raises ProviderNotConfigured with the variable to set."""
    provider = resolve_provider(spec, settings)
    model = resolve_model(spec, provider, settings)
    return get_provider(provider).build(model, spec, settings), provider, model


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
        available_models=get_provider(provider).model_lister(spec, settings),
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
