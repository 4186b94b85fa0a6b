"""Any OpenAI-compatible server: Ollama, vLLM, llama.cpp, LM Studio. A key is optional."""

from __future__ import annotations

from typing import TYPE_CHECKING

from models.providers.base import OpenAIWireProvider
from models.spec import ModelSpec

if TYPE_CHECKING:
    from config.settings import Settings


class OpenAICompatibleProvider(OpenAIWireProvider):
    name = "openai-compatible"
    label = "OpenAI-compatible server (OPENAI_BASE_URL)"
    env = ("OPENAI_BASE_URL", "OPENAI_API_KEY")
    needs = "OPENAI_BASE_URL (or `base_url:` in the team YAML)"
    hint = "OPENAI_BASE_URL (an OpenAI-compatible server such as Ollama)"
    pricing_id = None
    tiers = {}  # the server decides what it serves: name the model in the YAML or LLM_MODEL

    def is_configured(self, settings: Settings, spec: ModelSpec | None = None) -> bool:
        return bool((spec and spec.base_url) or settings.openai_base_url)

    def endpoint(self, spec: ModelSpec, settings: Settings) -> tuple[str, str | None]:
        key = settings.openai_api_key.get_secret_value() if settings.openai_api_key else "not-needed"
        # The environment wins over the YAML, as LLM_PROVIDER and LLM_MODEL do (e.g. localhost vs a compose host).
        return key, settings.openai_base_url or spec.base_url


PROVIDER = OpenAICompatibleProvider()
