"""How a team YAML describes a model: provider, model name (per provider if wanted), capabilities."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

ProviderName = Literal["openai", "anthropic", "hf", "openai-compatible", "local"]
PROVIDERS: tuple[ProviderName, ...] = ("openai", "anthropic", "hf", "openai-compatible", "local")

# Used when neither the YAML nor LLM_MODEL names a model for the provider that was picked.
DEFAULT_MODELS: dict[ProviderName, str] = {
    "openai": "gpt-4.1-mini",
    "anthropic": "claude-sonnet-4-5",
    "hf": "Qwen/Qwen2.5-72B-Instruct",
    "local": "Qwen/Qwen2.5-1.5B-Instruct",
}


class Capabilities(BaseModel):
    """AutoGen's ModelInfo, declared in YAML for models AutoGen does not know by name."""

    model_config = ConfigDict(extra="forbid")

    vision: bool = False
    function_calling: bool = True
    json_output: bool = False
    structured_output: bool = False
    family: str = "unknown"


class ModelSpec(BaseModel):
    """One model profile. `model` may be a single name or a map provider -> name, so one team YAML works
    whichever provider `auto` resolves to."""

    model_config = ConfigDict(extra="forbid")

    provider: Literal["auto", "openai", "anthropic", "hf", "openai-compatible", "local"] = "auto"
    model: str | dict[ProviderName, str] | None = None
    base_url: str | None = Field(None, description="OpenAI-compatible endpoint; falls back to OPENAI_BASE_URL")
    capabilities: Capabilities | None = None
    temperature: float | None = Field(0.0, ge=0, le=2)
    max_tokens: int | None = Field(None, gt=0)
    # Some OpenAI-compatible servers reject `stream_options` or the per-message `name` field.
    stream_usage: bool = True
    send_names: bool = True

    def model_for(self, provider: ProviderName) -> str | None:
        if isinstance(self.model, dict):
            return self.model.get(provider)
        return self.model
