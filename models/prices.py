"""What a model call costs: the dated `OVERRIDES` table below (it wins), else `genai-prices`' bundled offline snapshot.

`genai-prices` 0.2.3 (the newest release as of 2026-12-02) knows every model the providers' tiers and the reference
notes name: gpt-5.4 ... gpt-6-astra, Claude 4.5 ... Opus/Sonnet/Haiku 5.5 and Fable 5.x, Gemini 3.x, and the open
models the HF router serves, per router provider (`huggingface_<provider>`). `OVERRIDES` is for the names it lacks
(or gets wrong): each entry carries its source URL and the date the price was read. It is empty because no name in
use is missing; add an entry rather than editing genai-prices' data.

An unknown price is `None` with a one-line reason saying what to do, never a guess or an error.
"""

from __future__ import annotations

import datetime
from dataclasses import dataclass
from decimal import Decimal
from importlib import metadata


def genai_provider_id(provider: str) -> str | None:
    """genai-prices' id for one of our providers, as its registry module declares it (None: match by model name)."""
    from models.providers import (
        REGISTRY,  # the registry builds clients that record into the ledger: import late
    )

    entry = REGISTRY.get(provider)
    return entry.pricing_id if entry is not None else None


# Providers that charge nothing per token.
FREE_PROVIDERS = frozenset({"local"})
# HF router suffixes that are a selection policy, not a provider (`model:fastest`).
HF_POLICIES = frozenset({"fastest", "cheapest", "preferred"})


@dataclass(frozen=True)
class Price:
    """USD per million tokens, with where the number comes from and when it was read."""

    input_mtok: Decimal
    output_mtok: Decimal
    source: str  # a URL
    as_of: datetime.date

    def cost(self, prompt_tokens: int, completion_tokens: int) -> float:
        return float((self.input_mtok * prompt_tokens + self.output_mtok * completion_tokens) / 1_000_000)


# (provider, model) -> Price. For hf, the model is "org/name" or "org/name:provider".
OVERRIDES: dict[tuple[str, str], Price] = {}


@dataclass(frozen=True)
class Quote:
    """The cost of one call, or None with the reason (one line) when no price is known."""

    cost_usd: float | None
    reason: str | None = None


def genai_prices_version() -> str:
    try:
        return metadata.version("genai-prices")
    except metadata.PackageNotFoundError:  # pragma: no cover - it is a pinned dependency
        return "missing"


def _unknown(provider: str, model: str, detail: str = "", hint: str = "") -> Quote:
    where = f"{provider}/{model}" if provider else model
    fix = f"add it to OVERRIDES in models/prices.py with its source URL (genai-prices {genai_prices_version()} lacks it)"
    return Quote(None, f"no price known for {where}{detail}: {hint}{fix}")


def _genai_cost(model: str, provider_id: str | None, prompt_tokens: int, completion_tokens: int) -> float | None:
    try:
        from genai_prices import Usage, calc_price

        price = calc_price(
            Usage(input_tokens=prompt_tokens, output_tokens=completion_tokens), model, provider_id=provider_id
        )
        return float(Decimal(price.total_price))
    except Exception:  # LookupError for unknown models or providers; pricing must never break a run
        return None


def _hf_cost(model: str, prompt_tokens: int, completion_tokens: int) -> Quote:
    """The HF router: `org/name:provider` is priced at that provider. Without one (or with a policy suffix) the
    router picks the provider, so the price is the highest among the providers known to serve the model (an upper
    bound), or the lowest for `:cheapest`."""
    base, _, suffix = model.partition(":")
    if suffix and suffix not in HF_POLICIES:
        cost = _genai_cost(base, f"huggingface_{suffix}", prompt_tokens, completion_tokens)
        return Quote(cost) if cost is not None else _unknown("hf", model, f" on router provider {suffix}")
    try:
        from genai_prices import data_snapshot

        providers = [p.id for p in data_snapshot.get_snapshot().providers if p.id.startswith("huggingface_")]
    except Exception:  # pragma: no cover - a broken genai-prices install
        providers = []
    costs = [c for p in providers if (c := _genai_cost(base, p, prompt_tokens, completion_tokens)) is not None]
    if not costs:
        return _unknown("hf", model)
    return Quote(min(costs) if suffix == "cheapest" else max(costs))


def quote(provider: str, model: str, prompt_tokens: int, completion_tokens: int) -> Quote:
    """The estimated cost of one call (no network)."""
    if provider in FREE_PROVIDERS:
        return Quote(0.0)
    name = model.removeprefix("models/") if provider == "gemini" else model
    if (override := OVERRIDES.get((provider, name))) is not None:
        return Quote(override.cost(prompt_tokens, completion_tokens))
    if provider == "hf":
        return _hf_cost(name, prompt_tokens, completion_tokens)
    cost = _genai_cost(name, genai_provider_id(provider), prompt_tokens, completion_tokens)
    if cost is not None:
        return Quote(cost)
    if provider == "openai-compatible":
        return _unknown(provider, model, hint="a self-hosted server costs nothing; for a paid one, ")
    return _unknown(provider, model)
