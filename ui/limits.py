"""Per-user rate limits and daily cost caps for the web UI: a public Space spends its owner's model keys.

One process-wide `Limiter` holds, per user key, the times of the questions asked in the last hour (a
sliding window), the runs going now, and the day's spend; plus the app's spend for the day. Days are UTC
days: the ledger starts afresh at 00:00 UTC. Everything lives in this process (a restart forgets it) and
sits behind one lock, so the event loop and worker threads can call it.

A run is admitted or refused before it starts (`admit`, which raises `LimitReached` with a sentence for the
user); while it runs it reports its cost so far (`Ticket.charge`), so other runs of the same user and the
app-wide total see it at once. A run that crosses a cost cap is finished, not cut off: the cap refuses the
next run. (`over_budget` lets a batch stop starting new questions.) Costs come from the runs' usage
ledgers; a model without a known price counts $0, so on such a model only the rate limits hold.
"""

from __future__ import annotations

import math
import threading
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta, timezone
from typing import Literal

from config.settings import Settings

Clock = Callable[[], datetime]
LimitKind = Literal["questions_per_hour", "concurrent_runs", "user_daily_usd", "daily_usd"]
WINDOW = timedelta(hours=1)


def utc_now() -> datetime:
    return datetime.now(timezone.utc)


@dataclass(frozen=True)
class Limits:
    """0 means no limit."""

    questions_per_hour: int = 20
    concurrent_runs: int = 2
    user_daily_usd: float = 1.0
    daily_usd: float = 10.0
    exempt: frozenset[str] = frozenset()  # user keys free of the per-user limits

    @classmethod
    def from_settings(cls, settings: Settings) -> Limits:
        names = (n.strip() for n in settings.limit_exempt_users.split(","))
        return cls(
            questions_per_hour=settings.questions_per_hour,
            concurrent_runs=settings.concurrent_runs,
            user_daily_usd=settings.user_daily_usd,
            daily_usd=settings.daily_usd,
            exempt=frozenset(hf_user_key(n) for n in names if n),
        )


def describe(limits: Limits) -> str:
    """One line for the welcome message, so users know the limits before they meet one ("" if none)."""
    per_user = []
    if limits.questions_per_hour:
        per_user.append(f"{limits.questions_per_hour} questions an hour")
    if limits.concurrent_runs:
        per_user.append(f"{limits.concurrent_runs} run{'s' if limits.concurrent_runs != 1 else ''} at a time")
    if limits.user_daily_usd:
        per_user.append(f"≈ {_usd(limits.user_daily_usd)} of model cost a day")
    parts = [f"per user {', '.join(per_user)}"] if per_user else []
    if limits.daily_usd:
        parts.append(f"{_usd(limits.daily_usd)} a day for the whole app")
    if not parts:
        return ""
    resets = " (the budgets reset at 00:00 UTC)" if limits.user_daily_usd or limits.daily_usd else ""
    return f"**Limits:** {'; '.join(parts)}{resets}."


def hf_user_key(username: str) -> str:
    return f"hf:{username}"


class LimitReached(Exception):
    """A run was refused; `str()` is the sentence to show the user."""

    def __init__(self, kind: LimitKind, message: str, resets_at: datetime | None) -> None:
        super().__init__(message)
        self.kind = kind
        self.resets_at = resets_at


def _clock_time(moment: datetime) -> str:
    """`14:05 UTC`, rounded up to the minute: at the time shown the limit has really reset."""
    moment = moment.astimezone(timezone.utc)
    if moment.second or moment.microsecond:
        moment = moment.replace(second=0, microsecond=0) + timedelta(minutes=1)
    return moment.strftime("%H:%M UTC")


def _wait(delta: timedelta) -> str:
    minutes = max(1, math.ceil(delta.total_seconds() / 60))
    hours, minutes = divmod(minutes, 60)
    return f"{hours} h {minutes:02d} min" if hours else f"{minutes} min"


def _usd(value: float) -> str:
    return f"${value:.2f}" if value >= 0.01 or value == 0 else f"${value:.4f}"


@dataclass
class _User:
    asked: deque[datetime] = field(default_factory=deque)
    running: int = 0
    spent: float = 0.0  # today (UTC)


class Limiter:
    def __init__(self, clock: Clock = utc_now) -> None:
        self._clock = clock
        self._lock = threading.Lock()
        self._users: dict[str, _User] = {}
        self._day: date = clock().astimezone(timezone.utc).date()
        self._spent = 0.0  # the whole app, today

    # --- bookkeeping (call with the lock held) ------------------------------------------------------------
    def _now(self) -> datetime:
        now = self._clock().astimezone(timezone.utc)
        if now.date() != self._day:  # a new UTC day: the budgets start afresh
            self._day = now.date()
            self._spent = 0.0
            for user in self._users.values():
                user.spent = 0.0
        return now

    def _user(self, key: str, now: datetime) -> _User:
        user = self._users.setdefault(key, _User())
        while user.asked and user.asked[0] <= now - WINDOW:
            user.asked.popleft()
        return user

    def _midnight(self, now: datetime) -> datetime:
        return datetime.combine(now.date() + timedelta(days=1), datetime.min.time(), tzinfo=timezone.utc)

    def _refusal(self, key: str, limits: Limits, now: datetime, user: _User) -> LimitReached | None:
        midnight = self._midnight(now)
        resets = f"it resets at 00:00 UTC (in {_wait(midnight - now)})"
        if limits.daily_usd and self._spent >= limits.daily_usd:
            return LimitReached(
                "daily_usd",
                f"This app has used its daily budget of {_usd(limits.daily_usd)} (≈ {_usd(self._spent)} spent today "
                f"by all its users); {resets}.",
                midnight,
            )
        if key in limits.exempt:
            return None
        if limits.user_daily_usd and user.spent >= limits.user_daily_usd:
            return LimitReached(
                "user_daily_usd",
                f"You have used your daily budget of {_usd(limits.user_daily_usd)} (≈ {_usd(user.spent)} spent today); "
                f"{resets}.",
                midnight,
            )
        if limits.concurrent_runs and user.running >= limits.concurrent_runs:
            runs = "run" if limits.concurrent_runs == 1 else "runs"
            return LimitReached(
                "concurrent_runs",
                f"You already have {user.running} {runs} going (the limit is {limits.concurrent_runs} at a time); "
                "ask again when one has finished.",
                None,
            )
        if limits.questions_per_hour and len(user.asked) >= limits.questions_per_hour:
            at = user.asked[-limits.questions_per_hour] + WINDOW
            return LimitReached(
                "questions_per_hour",
                f"You have asked {len(user.asked)} question{'s' if len(user.asked) != 1 else ''} in the last hour "
                "(the limit); the next one is possible "
                f"at {_clock_time(at)}.",
                at,
            )
        return None

    # --- the API ------------------------------------------------------------------------------------------
    def admit(self, key: str, limits: Limits) -> Ticket:
        """Start a run for `key`, or raise LimitReached saying which limit and when it resets."""
        with self._lock:
            now = self._now()
            user = self._user(key, now)
            if (refused := self._refusal(key, limits, now, user)) is not None:
                raise refused
            user.asked.append(now)
            user.running += 1
        return Ticket(self, key, limits)

    def check(self, key: str, limits: Limits) -> LimitReached | None:
        """What `admit` would refuse, without starting anything."""
        with self._lock:
            now = self._now()
            return self._refusal(key, limits, now, self._user(key, now))

    def spent_today(self, key: str | None = None) -> float:
        with self._lock:
            self._now()
            if key is None:
                return self._spent
            user = self._users.get(key)
            return user.spent if user else 0.0

    def running(self, key: str) -> int:
        with self._lock:
            user = self._users.get(key)
            return user.running if user else 0

    def _charge(self, key: str, usd: float) -> None:
        with self._lock:
            self._now()
            self._users.setdefault(key, _User()).spent += usd
            self._spent += usd

    def _release(self, key: str) -> None:
        with self._lock:
            user = self._users.get(key)
            if user is not None and user.running > 0:
                user.running -= 1

    def _over_budget(self, key: str, limits: Limits) -> LimitReached | None:
        refused = self.check(key, limits)
        return refused if refused is not None and refused.kind in ("daily_usd", "user_daily_usd") else None


class Ticket:
    """One admitted run. `charge()` its cost so far as it grows; `release()` (or leave the `with`) at its end."""

    def __init__(self, limiter: Limiter, key: str, limits: Limits) -> None:
        self._limiter = limiter
        self.key = key
        self.limits = limits
        self.charged = 0.0
        self._released = False

    def charge(self, total_usd: float | None) -> None:
        """The run's cost so far (it only grows); what is new since the last call is added to today's spend."""
        if total_usd is None or total_usd <= self.charged:
            return
        delta, self.charged = total_usd - self.charged, total_usd
        self._limiter._charge(self.key, delta)

    def over_budget(self) -> LimitReached | None:
        """The cost cap this user (or the app) has now reached, if any."""
        return self._limiter._over_budget(self.key, self.limits)

    def release(self) -> None:
        if not self._released:
            self._released = True
            self._limiter._release(self.key)

    def __enter__(self) -> Ticket:
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()


_LIMITER = Limiter()


def limiter() -> Limiter:
    """The process-wide limiter every session shares."""
    return _LIMITER
