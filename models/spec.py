"""How a team YAML describes a model: provider, model name (per provider if wanted) or tier, settings, capabilities.

Provider names are not listed here: they come from the registry (`models/providers/`), and a name it does not
know fails validation with the list of valid ones.
"""

from __future__ import annotations

from typing import Literal

from pydantic import AliasChoices, BaseModel, ConfigDict, Field, field_validator

# A provider name as the registry knows it ("openai", "anthropic", "gemini", ...); validated against the registry.
ProviderName = str
Tier = Literal["default", "strong"]
TIERS: tuple[Tier, ...] = ("default", "strong")


def provider_names() -> tuple[str, ...]:
    from models.providers import PROVIDERS

    return PROVIDERS


def check_provider(name: str, *, allow_auto: bool = True) -> str:
    """`name` if the registry knows it (or it is "auto"), else a ValueError listing the valid names."""
    names = provider_names()
    if (allow_auto and name == "auto") or name in names:
        return name
    valid = (["auto"] if allow_auto else []) + list(names)
    raise ValueError(f"unknown provider {name!r}; valid: {', '.join(valid)}")


def __getattr__(name: str) -> object:
    # `PROVIDERS` and `DEFAULT_MODELS` used to live here; they now come from the registry.
    if name == "PROVIDERS":
        return provider_names()
    if name == "DEFAULT_MODELS":
        from models.providers import default_models

        return default_models("default")
    raise AttributeError(name)


class Capabilities(BaseModel):
    """AutoGen's ModelInfo, declared in YAML for models the family table (models/families.py) gets wrong."""

    model_config = ConfigDict(extra="forbid")

    vision: bool = False
    function_calling: bool = True
    json_output: bool = False
    structured_output: bool = False
    family: str = "unknown"


class ModelSpec(BaseModel):
    """One model profile. `model` may be a single name or a map provider -> name, so one team YAML works
    whichever provider `auto` resolves to; a provider with no name here uses its model for `tier`."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    provider: str = "auto"
    model: str | dict[str, str] | None = None
    tier: Tier = Field("default", description="which of the provider's default models: default (cheap) or strong")
    base_url: str | None = Field(None, description="OpenAI-compatible endpoint; falls back to OPENAI_BASE_URL")
    capabilities: Capabilities | None = None
    # None: the model family's own default (0 where temperature is accepted, nothing sent where it is not)
    temperature: float | None = Field(None, ge=0, le=2)
    max_output_tokens: int | None = Field(
        None, gt=0, validation_alias=AliasChoices("max_output_tokens", "max_tokens")
    )
    reasoning_effort: Literal["none", "minimal", "low", "medium", "high", "xhigh", "max"] | None = None
    verbosity: Literal["low", "medium", "high"] | None = None
    # Some OpenAI-compatible servers reject `stream_options` or the per-message `name` field.
    stream_usage: bool = True
    send_names: bool = True

    @field_validator("provider")
    @classmethod
    def _known_provider(cls, value: str) -> str:
        return check_provider(value)

    @field_validator("model")
    @classmethod
    def _known_provider_keys(cls, value: str | dict[str, str] | None) -> str | dict[str, str] | None:
        if isinstance(value, dict):
            for key in value:
                check_provider(key, allow_auto=False)
        return value

    @property
    def max_tokens(self) -> int | None:
        """The old name of `max_output_tokens`."""
        return self.max_output_tokens

    def model_for(self, provider: str) -> str | None:
        if isinstance(self.model, dict):
            return self.model.get(provider)
        return self.model
