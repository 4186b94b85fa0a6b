"""Google Gemini through its OpenAI-compatible endpoint (https://generativelanguage.googleapis.com/v1beta/openai/).

The endpoint refuses fields it does not know (`verbosity`, penalties, ...), so only what the family table allows is
sent; `reasoning_effort` takes none/low/medium/high (Pro models: no none).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from models.providers.base import OpenAIWireProvider
from models.spec import ModelSpec

if TYPE_CHECKING:
    from config.settings import Settings


class GeminiProvider(OpenAIWireProvider):
    name = "gemini"
    label = "Google Gemini (GEMINI_API_KEY)"
    env = ("GEMINI_API_KEY", "GOOGLE_API_KEY", "GEMINI_BASE_URL")
    needs = "GEMINI_API_KEY (or GOOGLE_API_KEY)"
    hint = "GEMINI_API_KEY (Google Gemini)"
    pricing_id = "google"
    # flash-lite: $0.30/$2.50, the cheap tier; 3.5 Flash: first on HAL's GAIA board (79.2%), $1.50/$9.
    tiers = {"default": "gemini-3.5-flash-lite", "strong": "gemini-3.5-flash"}
    allow_verbosity = False  # the endpoint refuses it

    def is_configured(self, settings: Settings, spec: ModelSpec | None = None) -> bool:
        return settings.gemini_api_key is not None

    def endpoint(self, spec: ModelSpec, settings: Settings) -> tuple[str, str | None]:
        assert settings.gemini_api_key is not None
        return settings.gemini_api_key.get_secret_value(), settings.gemini_base_url


PROVIDER = GeminiProvider()
