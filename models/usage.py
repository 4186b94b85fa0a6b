"""Token and cost accounting for every model call of a run, selector calls included.

AutoGen's per-message `models_usage` misses speaker-selection calls and streamed replies without
`include_usage`, so the client wrapper records each call here instead.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Literal, Protocol, overload

from loguru import logger

from models.prices import quote
from observability import metrics


@dataclass
class UsageRecord:
    agent: str
    provider: str
    model: str
    prompt_tokens: int
    completion_tokens: int
    cost_usd: float | None
    price_unknown: str | None = None  # why cost_usd is None: what to set or add


class Priced(Protocol):
    """Anything that spent tokens at a price: a model call, an agent's usage, a question's record."""

    @property
    def prompt_tokens(self) -> int: ...
    @property
    def completion_tokens(self) -> int: ...
    @property
    def cost_usd(self) -> float | None: ...


@overload
def total_cost(items: Iterable[Priced], *, unknown_as_zero: Literal[True]) -> float: ...
@overload
def total_cost(items: Iterable[Priced], *, unknown_as_zero: bool = False) -> float | None: ...
def total_cost(items: Iterable[Priced], *, unknown_as_zero: bool = False) -> float | None:
    """The one way costs add up everywhere (terminal, UI, batch, report): the sum over what made model calls,
    or None (unknown) when any of those has no known price. Something that made no call costs nothing.
    `unknown_as_zero`: the known part only (a budget's lower bound)."""
    total = 0.0
    for item in items:
        if not (item.prompt_tokens or item.completion_tokens):
            continue
        if item.cost_usd is None:
            if unknown_as_zero:
                continue
            return None
        total += item.cost_usd
    return round(total, 6)


def format_cost(cost_usd: float | None) -> str:
    """The one way a cost is shown: 'cost unknown', 'no cost', '≈ $0.0031' under a cent, else '≈ $1.24'."""
    if cost_usd is None:
        return "cost unknown"
    if cost_usd == 0:
        return "no cost"
    if cost_usd < 0.01:
        return f"≈ ${cost_usd:.4f}"
    return f"≈ ${cost_usd:.2f}"


def cost_line(cost_usd: float | None, reasons: Sequence[str] = ()) -> str:
    """`format_cost`, and when the cost is unknown, why (the first reason; one line)."""
    shown = format_cost(cost_usd)
    if cost_usd is not None or not reasons:
        return shown
    more = f"; +{len(reasons) - 1} more" if len(reasons) > 1 else ""
    return f"{shown} ({reasons[0]}{more})"


def unknown_prices(items: Iterable[object]) -> list[str]:
    """The distinct reasons why some of `items` (AgentUsage, UsageRecord) have no price, in first-seen order."""
    out: list[str] = []
    for item in items:
        found = getattr(item, "unknown_prices", None)
        reasons = list(found) if found is not None else [getattr(item, "price_unknown", None)]
        for reason in reasons:
            if reason and reason not in out:
                out.append(reason)
    return out


@dataclass
class AgentUsage:
    calls: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    cost_usd: float | None = 0.0  # None once any of its calls has no known price
    unknown_prices: list[str] = field(default_factory=list)  # why cost_usd is None (one line each)

    def as_dict(self) -> dict[str, object]:
        data: dict[str, object] = {
            "calls": self.calls,
            "prompt_tokens": self.prompt_tokens,
            "completion_tokens": self.completion_tokens,
            "cost_usd": None if self.cost_usd is None else round(self.cost_usd, 6),
        }
        if self.unknown_prices:
            data["unknown_prices"] = list(self.unknown_prices)
        return data


def estimate_cost(provider: str, model: str, prompt_tokens: int, completion_tokens: int) -> float | None:
    """The estimated cost of one call (models/prices.py; no network). None when the model has no known price."""
    return quote(provider, model, prompt_tokens, completion_tokens).cost_usd


@dataclass
class UsageLedger:
    records: list[UsageRecord] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def add(self, agent: str, provider: str, model: str, prompt_tokens: int, completion_tokens: int) -> None:
        priced = quote(provider, model, prompt_tokens, completion_tokens)
        record = UsageRecord(agent, provider, model, prompt_tokens, completion_tokens, priced.cost_usd, priced.reason)
        with self._lock:
            self.records.append(record)
        metrics.model_call(provider, model, agent, prompt_tokens, completion_tokens, priced.cost_usd)
        logger.debug("model call agent={} model={} tokens in={} out={}", agent, model, prompt_tokens, completion_tokens)

    def by_agent(self) -> dict[str, AgentUsage]:
        out: dict[str, AgentUsage] = {}
        with self._lock:
            records = list(self.records)
        for r in records:
            u = out.setdefault(r.agent, AgentUsage())
            u.calls += 1
            u.prompt_tokens += r.prompt_tokens
            u.completion_tokens += r.completion_tokens
            u.cost_usd = None if r.cost_usd is None or u.cost_usd is None else u.cost_usd + r.cost_usd
            if r.price_unknown and r.price_unknown not in u.unknown_prices:
                u.unknown_prices.append(r.price_unknown)
        return out

    @property
    def prompt_tokens(self) -> int:
        return sum(r.prompt_tokens for r in self.records)

    @property
    def completion_tokens(self) -> int:
        return sum(r.completion_tokens for r in self.records)

    @property
    def calls(self) -> int:
        return len(self.records)

    @property
    def cost_usd(self) -> float | None:
        """Total estimated cost; None if any call's model had no known price."""
        with self._lock:
            records = list(self.records)
        return total_cost(records)

    def unknown_prices(self) -> list[str]:
        """Why the total cost is unknown: one line per model without a known price (empty when all are known)."""
        with self._lock:
            records = list(self.records)
        return unknown_prices(records)
