"""A concurrency cap on model calls per provider: rate limits are per key, so the cap must count every call the
key makes, wherever it runs.

Every model call of a `ManagedClient` holds one slot of its provider for as long as the call (or the stream)
lasts; backoff sleeps between retries hold none. The gate is process-wide and off by default:

- `LocalGate` caps the calls of this process (`submit.py run --provider-cap openai=8`, or
  ROUNDTABLE_PROVIDER_CAPS);
- `evaluation.distributed.limits.RayGate` asks one limiter actor, so the cap holds across a whole Ray cluster.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncIterator
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from typing import Protocol

_CAP = re.compile(r"^\s*([A-Za-z0-9_.-]+|\*)\s*=\s*(\d+)\s*$")


class CapsError(ValueError):
    """A provider cap that does not parse; the message names the part."""


def parse_caps(text: str | list[str] | None) -> dict[str, int]:
    """`openai=8,anthropic=4` (or a list of `name=N`) -> {"openai": 8, "anthropic": 4}. `*=N` caps every provider
    that has no cap of its own."""
    parts: list[str] = []
    for chunk in [text] if isinstance(text, str) else list(text or []):
        parts.extend(p for p in chunk.split(",") if p.strip())
    caps: dict[str, int] = {}
    for part in parts:
        m = _CAP.match(part)
        if m is None:
            raise CapsError(f"provider cap {part.strip()!r}: write PROVIDER=N, e.g. openai=8 (or *=N for every provider)")
        n = int(m.group(2))
        if n < 1:
            raise CapsError(f"provider cap {part.strip()!r}: N must be at least 1")
        caps[m.group(1).lower()] = n
    return caps


def cap_for(caps: dict[str, int], provider: str) -> int | None:
    return caps.get(provider.lower(), caps.get("*"))


class CallGate(Protocol):
    def slot(self, provider: str) -> AbstractAsyncContextManager[None]:
        """Holds one of `provider`'s slots while inside."""
        ...


class LocalGate:
    """Caps this process's calls: one asyncio semaphore per capped provider (created in the loop that uses it)."""

    def __init__(self, caps: dict[str, int]) -> None:
        self.caps = dict(caps)
        self._semaphores: dict[tuple[int, str], asyncio.Semaphore] = {}

    @asynccontextmanager
    async def slot(self, provider: str) -> AsyncIterator[None]:
        cap = cap_for(self.caps, provider)
        if cap is None:
            yield
            return
        key = (id(asyncio.get_running_loop()), provider.lower())
        semaphore = self._semaphores.setdefault(key, asyncio.Semaphore(cap))
        async with semaphore:
            yield


_gate: CallGate | None = None


def install(gate: CallGate | None) -> CallGate | None:
    """Make `gate` this process's gate (None: no cap); returns the one it replaces."""
    global _gate
    previous, _gate = _gate, gate
    return previous


def current() -> CallGate | None:
    return _gate


@asynccontextmanager
async def slot(provider: str) -> AsyncIterator[None]:
    gate = _gate
    if gate is None:
        yield
        return
    async with gate.slot(provider):
        yield
