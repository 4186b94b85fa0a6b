"""Hugging Face Inference Providers through the OpenAI-compatible router (`HF_ROUTER_URL`)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from models.providers.base import OpenAIWireProvider
from models.spec import ModelSpec

if TYPE_CHECKING:
    from config.settings import Settings


class HFProvider(OpenAIWireProvider):
    name = "hf"
    label = "Hugging Face Inference Providers (HF_TOKEN)"
    env = ("HF_TOKEN", "HF_ROUTER_URL")
    needs = "HF_TOKEN"
    hint = "HF_TOKEN (Hugging Face Inference Providers)"
    pricing_id = None  # genai-prices knows router models only under the serving provider (groq, ...)
    # gpt-oss-120b: tools, served by groq/cerebras/fireworks ($0.15/$0.75 on groq); Qwen3.5-397B-A17B: open
    # weights, vision, 262K context (which providers serve it in late 2026 is unconfirmed).
    tiers = {"default": "openai/gpt-oss-120b", "strong": "Qwen/Qwen3.5-397B-A17B"}
    allow_verbosity = False
    send_names = False  # the router rejects `name` on some backends

    def is_configured(self, settings: Settings, spec: ModelSpec | None = None) -> bool:
        return settings.hf_token is not None

    def endpoint(self, spec: ModelSpec, settings: Settings) -> tuple[str, str | None]:
        assert settings.hf_token is not None
        return settings.hf_token.get_secret_value(), settings.hf_router_url


PROVIDER = HFProvider()
