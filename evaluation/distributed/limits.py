"""One concurrency cap per provider for a whole Ray cluster.

`ProviderLimiter` is a single async actor holding, per provider, how many model calls are under way. Every
worker's `RayGate` (installed as the process's `models.gate`) asks it for a slot before a call and gives the
slot back after. A slot is a lease named by the worker that holds it, so the driver can give back every slot
of a worker it has lost (`release_holder`), and a lease whose waiter gave up is returned as soon as it is
granted. Calls of providers without a cap never ask.
"""

from __future__ import annotations

import asyncio
import uuid
from collections import defaultdict
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from models.gate import cap_for


class ProviderLimiter:
    """The cluster's slots (a Ray actor: `ray.remote(ProviderLimiter)`; plain Python in unit tests)."""

    def __init__(self, caps: dict[str, int]) -> None:
        self.caps = {k.lower(): v for k, v in caps.items()}
        self._used: dict[str, int] = defaultdict(int)
        self._peak: dict[str, int] = defaultdict(int)
        self._granted: dict[str, tuple[str, str]] = {}  # lease -> (provider, holder)
        self._abandoned: set[str] = set()  # leases given back before they were granted
        self._changed: asyncio.Condition | None = None

    def _condition(self) -> asyncio.Condition:
        if self._changed is None:  # made in the actor's own loop
            self._changed = asyncio.Condition()
        return self._changed

    async def acquire(self, provider: str, holder: str, lease: str) -> bool:
        """Wait for a slot of `provider`; True once granted (False: no cap, nothing to give back)."""
        provider = provider.lower()
        cap = cap_for(self.caps, provider)
        if cap is None:
            return False
        changed = self._condition()
        async with changed:
            await changed.wait_for(lambda: self._used[provider] < cap or lease in self._abandoned)
            if lease in self._abandoned:
                self._abandoned.discard(lease)
                return False
            self._used[provider] += 1
            self._peak[provider] = max(self._peak[provider], self._used[provider])
            self._granted[lease] = (provider, holder)
        return True

    async def release(self, lease: str) -> None:
        changed = self._condition()
        async with changed:
            granted = self._granted.pop(lease, None)
            if granted is None:
                self._abandoned.add(lease)  # still waiting (or never asked): free it as it is granted
            else:
                self._used[granted[0]] -= 1
            changed.notify_all()

    async def release_holder(self, holder: str) -> int:
        """Give back every slot `holder` (a lost worker) held; returns how many."""
        changed = self._condition()
        async with changed:
            leases = [lease for lease, (_, h) in self._granted.items() if h == holder]
            for lease in leases:
                provider, _ = self._granted.pop(lease)
                self._used[provider] -= 1
            changed.notify_all()
        return len(leases)

    def stats(self) -> dict[str, Any]:
        return {"caps": dict(self.caps), "in_use": {k: v for k, v in self._used.items() if v},
                "peak": dict(self._peak)}


class RayGate:
    """`models.gate.CallGate` for a Ray worker: each slot is a lease from the cluster's `ProviderLimiter`."""

    def __init__(self, limiter: Any, holder: str, caps: dict[str, int]) -> None:
        self._limiter = limiter  # an ActorHandle of ProviderLimiter
        self._holder = holder
        self._caps = caps  # only capped providers ask the actor: the others pay no round trip

    @asynccontextmanager
    async def slot(self, provider: str) -> AsyncIterator[None]:
        if cap_for(self._caps, provider) is None:
            yield
            return
        lease = uuid.uuid4().hex
        try:
            granted = await self._limiter.acquire.remote(provider, self._holder, lease)
        except asyncio.CancelledError:
            self._limiter.release.remote(lease)  # the call was stopped while waiting: the slot must not leak
            raise
        try:
            yield
        finally:
            if granted:
                self._limiter.release.remote(lease)
