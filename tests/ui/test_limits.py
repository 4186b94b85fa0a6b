"""The UI's rate limits and cost caps (ui/limits.py), on an injected clock."""

from __future__ import annotations

import threading
import time
from datetime import datetime, timedelta, timezone

import pytest

from config.settings import Settings
from ui.limits import Limiter, LimitReached, Limits


class Clock:
    def __init__(self, start: datetime) -> None:
        self.now = start

    def __call__(self) -> datetime:
        return self.now

    def advance(self, **delta: float) -> None:
        self.now += timedelta(**delta)


T0 = datetime(2026, 3, 4, 13, 4, 30, tzinfo=timezone.utc)
NO_LIMITS = Limits(questions_per_hour=0, concurrent_runs=0, user_daily_usd=0, daily_usd=0)


def refusal(limiter: Limiter, key: str, limits: Limits) -> LimitReached:
    with pytest.raises(LimitReached) as info:
        limiter.admit(key, limits)
    return info.value


def test_questions_per_hour_is_a_sliding_window_and_says_when_the_next_one_is_possible() -> None:
    clock = Clock(T0)
    limiter = Limiter(clock)
    limits = Limits(questions_per_hour=3, concurrent_runs=0, user_daily_usd=0, daily_usd=0)
    for _ in range(3):
        limiter.admit("hf:alice", limits).release()
        clock.advance(minutes=10)
    clock.now = T0 + timedelta(minutes=45)
    refused = refusal(limiter, "hf:alice", limits)
    assert refused.kind == "questions_per_hour"
    # the first question (13:04:30) leaves the window at 14:04:30: shown rounded up, so it is really possible then
    assert str(refused) == "You have asked 3 questions in the last hour (the limit); the next one is possible at 14:05 UTC."
    assert refused.resets_at == T0 + timedelta(hours=1)
    limiter.admit("hf:bob", limits).release()  # per user
    clock.now = T0 + timedelta(hours=1)  # the first one has left the window
    limiter.admit("hf:alice", limits).release()
    assert refusal(limiter, "hf:alice", limits).resets_at == T0 + timedelta(minutes=70)
    limiter.admit("hf:alice", NO_LIMITS).release()  # 0 = no limit


def test_concurrent_runs_per_user_are_freed_when_a_run_ends() -> None:
    limiter = Limiter(Clock(T0))
    limits = Limits(questions_per_hour=0, concurrent_runs=2, user_daily_usd=0, daily_usd=0)
    first = limiter.admit("session:a", limits)
    with limiter.admit("session:a", limits):
        refused = refusal(limiter, "session:a", limits)
        assert refused.kind == "concurrent_runs"
        assert "You already have 2 runs going (the limit is 2 at a time)" in str(refused)
        limiter.admit("session:b", limits).release()
    first.release()
    first.release()  # twice is once
    assert limiter.running("session:a") == 0
    limiter.admit("session:a", limits).release()


def test_the_user_budget_refuses_the_next_run_until_utc_midnight_and_a_run_charges_as_it_accrues() -> None:
    clock = Clock(datetime(2026, 3, 4, 21, 30, tzinfo=timezone.utc))
    limiter = Limiter(clock)
    limits = Limits(questions_per_hour=0, concurrent_runs=0, user_daily_usd=0.50, daily_usd=0)
    ticket = limiter.admit("hf:alice", limits)
    ticket.charge(0.20)
    ticket.charge(0.45)  # the run's total so far, not an increment
    ticket.charge(None)  # an unknown price adds nothing
    assert limiter.spent_today("hf:alice") == pytest.approx(0.45)
    assert ticket.over_budget() is None
    with limiter.admit("hf:alice", limits) as other:  # under the cap: admitted, and it sees the first run's cost
        other.charge(0.10)
    assert ticket.over_budget() is not None and ticket.over_budget().kind == "user_daily_usd"
    ticket.charge(0.70)  # the run in progress keeps going and keeps being counted
    ticket.release()
    refused = refusal(limiter, "hf:alice", limits)
    assert refused.kind == "user_daily_usd"
    assert str(refused) == ("You have used your daily budget of $0.50 (≈ $0.80 spent today); "
                            "it resets at 00:00 UTC (in 2 h 30 min).")
    assert refused.resets_at == datetime(2026, 3, 5, tzinfo=timezone.utc)
    limiter.admit("hf:bob", limits).release()  # another user's budget is their own
    clock.now = datetime(2026, 3, 5, 0, 0, 1, tzinfo=timezone.utc)
    limiter.admit("hf:alice", limits).release()
    assert limiter.spent_today("hf:alice") == 0


def test_the_app_budget_is_shared_by_everyone_exempt_users_included() -> None:
    clock = Clock(datetime(2026, 3, 4, 23, 50, tzinfo=timezone.utc))
    limiter = Limiter(clock)
    limits = Limits(questions_per_hour=1, concurrent_runs=1, user_daily_usd=0.10, daily_usd=1.0, exempt=frozenset({"hf:owner"}))
    with limiter.admit("hf:owner", limits) as a, limiter.admit("hf:owner", limits) as b:  # exempt: 2 at once, 2 an hour
        a.charge(0.60)  # over the user cap, which does not apply to the owner
        b.charge(0.45)
    assert limiter.spent_today() == pytest.approx(1.05)
    for who in ("hf:owner", "hf:alice"):
        refused = refusal(limiter, who, limits)
        assert refused.kind == "daily_usd"
        assert str(refused) == ("This app has used its daily budget of $1.00 (≈ $1.05 spent today by all its users); "
                                "it resets at 00:00 UTC (in 10 min).")
    clock.advance(minutes=10)
    limiter.admit("hf:alice", limits).release()


def test_limits_come_from_the_settings_with_safe_defaults() -> None:
    default = Limits.from_settings(Settings(_env_file=None))  # type: ignore[call-arg]
    assert (default.questions_per_hour, default.concurrent_runs, default.user_daily_usd, default.daily_usd) == (20, 2, 1.0, 10.0)
    assert default.exempt == frozenset()
    mine = Limits.from_settings(Settings(  # type: ignore[call-arg]
        _env_file=None, ROUNDTABLE_QUESTIONS_PER_HOUR="0", ROUNDTABLE_DAILY_USD="2.5",
        ROUNDTABLE_LIMIT_EXEMPT_USERS=" owner , other ",
    ))
    assert mine.questions_per_hour == 0 and mine.daily_usd == 2.5 and mine.exempt == {"hf:owner", "hf:other"}
    with pytest.raises(ValueError):
        Settings(_env_file=None, ROUNDTABLE_USER_DAILY_USD="-1")  # type: ignore[call-arg]


class SlowLimits:
    """Limits whose rate takes a moment to read: a thread switch then lands between the check and the count."""

    concurrent_runs = 0
    user_daily_usd = 0.0
    daily_usd = 0.0
    exempt: frozenset[str] = frozenset()

    @property
    def questions_per_hour(self) -> int:
        time.sleep(0.0002)
        return 50


def test_admissions_from_many_threads_never_exceed_the_limit() -> None:
    limiter = Limiter(Clock(T0))
    admitted: list[object] = []
    barrier = threading.Barrier(8)

    def worker() -> None:
        barrier.wait()
        for _ in range(20):
            try:
                admitted.append(limiter.admit("hf:alice", SlowLimits()))  # type: ignore[arg-type]
            except LimitReached:
                pass

    threads = [threading.Thread(target=worker) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(admitted) == 50 and limiter.running("hf:alice") == 50
