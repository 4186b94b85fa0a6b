"""OpenAI (Chat Completions, which is what AutoGen's client speaks). `OPENAI_BASE_URL` points it elsewhere."""

from __future__ import annotations

from typing import TYPE_CHECKING

from models.providers.base import OpenAIWireProvider
from models.spec import ModelSpec

if TYPE_CHECKING:
    from config.settings import Settings


class OpenAIProvider(OpenAIWireProvider):
    name = "openai"
    label = "OpenAI (OPENAI_API_KEY)"
    env = ("OPENAI_API_KEY", "OPENAI_BASE_URL")
    needs = "OPENAI_API_KEY"
    hint = "OPENAI_API_KEY (OpenAI)"
    pricing_id = "openai"
    # gpt-6-luna: OpenAI's migration target for GPT-4.x, $0.20/$0.50 (genai-prices), 1.05M context; tools on Chat
    # Completions only at reasoning_effort "none", which requests with tools get. gpt-5.6-sol: the strong planner
    # and critic (requests without tools keep its default reasoning).
    tiers = {"default": "gpt-6-luna", "strong": "gpt-5.6-sol"}

    def is_configured(self, settings: Settings, spec: ModelSpec | None = None) -> bool:
        return settings.openai_api_key is not None

    def endpoint(self, spec: ModelSpec, settings: Settings) -> tuple[str, str | None]:
        assert settings.openai_api_key is not None
        return settings.openai_api_key.get_secret_value(), settings.openai_base_url


PROVIDER = OpenAIProvider()
