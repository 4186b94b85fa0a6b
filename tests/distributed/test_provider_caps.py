"""Per-provider caps on model calls: the parsing a user writes, the local gate a batch uses, and the cluster
limiter's bookkeeping (as plain Python: the Ray cluster tests drive it as an actor)."""

from __future__ import annotations

import asyncio
import threading
import time
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
from pydantic import ValidationError

from config.settings import Settings
from evaluation.api import TaskItem
from evaluation.batch import BatchRun
from evaluation.distributed.limits import ProviderLimiter
from models import gate
from models.gate import CapsError, LocalGate, parse_caps
from tests.conftest import settings_for
from tests.fakes.scripted_llm import RecordedRequest


def test_caps_parse_from_the_forms_users_write() -> None:
    assert parse_caps("openai=8, anthropic=4") == {"openai": 8, "anthropic": 4}
    assert parse_caps(["OpenAI=2", "*=1"]) == {"openai": 2, "*": 1}
    assert parse_caps("") == {} and parse_caps(None) == {}
    for bad, says in (("openai", "write PROVIDER=N"), ("openai=0", "at least 1"), ("openai=many", "write PROVIDER=N")):
        with pytest.raises(CapsError, match=says):
            parse_caps(bad)


def test_a_broken_cap_setting_is_named_when_settings_load() -> None:
    with pytest.raises(ValidationError, match="provider cap 'openai=lots'"):
        Settings(_env_file=None, ROUNDTABLE_PROVIDER_CAPS="openai=lots")  # type: ignore[call-arg]


class Counting:
    """Model replies that take a while, counting the calls the provider has under way at once."""

    def __init__(self, latency: float) -> None:
        self.latency, self.now, self.peak, self.lock = latency, 0, 0, threading.Lock()

    def __call__(self, req: RecordedRequest) -> Any:
        with self.lock:
            self.now += 1
            self.peak = max(self.peak, self.now)
        time.sleep(self.latency)
        with self.lock:
            self.now -= 1
        n = req.question.split("number ")[1].split(":")[0]
        return f"FINAL ANSWER: {n}"


async def test_a_local_batch_never_has_more_calls_under_way_than_its_providers_cap(llm_server, tmp_path: Path) -> None:
    model = Counting(latency=0.3)
    server = llm_server({"solo": model})
    tasks = [TaskItem(f"t{i}", f"Invented question number {i}: say it", "1", "") for i in range(8)]
    previous = gate.install(LocalGate({"openai": 2}))
    try:
        statuses = await BatchRun("solo", tmp_path / "capped", settings=settings_for(server), concurrency=6).run(tasks)
    finally:
        gate.install(previous)
    assert [s.answer for s in statuses] == [str(i) for i in range(8)]
    assert model.peak == 2  # 6 questions at once, 2 calls at once

    model.peak = 0
    uncapped = await BatchRun("solo", tmp_path / "free", settings=settings_for(server), concurrency=6).run(tasks)
    assert all(s.state == "done" for s in uncapped) and model.peak > 2  # without the gate the batch goes wider


async def test_the_cluster_limiter_grants_up_to_the_cap_and_frees_a_lost_workers_slots() -> None:
    limiter = ProviderLimiter({"openai": 2})
    assert await limiter.acquire("anthropic", "w1", "free") is False  # uncapped: nothing to give back
    assert await limiter.acquire("openai", "w1", "a") and await limiter.acquire("openai", "w2", "b")
    third = asyncio.ensure_future(limiter.acquire("openai", "w2", "c"))
    await asyncio.sleep(0.05)
    assert not third.done()  # the cap is reached: it waits
    assert await limiter.release_holder("w1") == 1  # w1 was lost with a call under way
    assert await asyncio.wait_for(third, 1) is True
    assert limiter.stats()["in_use"] == {"openai": 2} and limiter.stats()["peak"] == {"openai": 2}


async def test_a_slot_given_up_while_waiting_is_never_held() -> None:
    limiter = ProviderLimiter({"openai": 1})
    assert await limiter.acquire("openai", "w1", "first")
    waiting = asyncio.ensure_future(limiter.acquire("openai", "w1", "gave-up"))
    await asyncio.sleep(0.05)
    await limiter.release("gave-up")  # its call was stopped before the slot came
    await limiter.release("first")
    assert await asyncio.wait_for(waiting, 1) is False
    assert limiter.stats()["in_use"] == {}
    assert await asyncio.wait_for(limiter.acquire("openai", "w2", "next"), 1) is True  # the slot is free for others


def test_submit_refuses_a_broken_provider_cap_before_running(tmp_path: Path) -> None:
    import subprocess
    import sys

    out = subprocess.run([sys.executable, str(Path(__file__).resolve().parents[2] / "submit.py"), "run", "--provider-cap",
                          "openai:8", "--run-dir", str(tmp_path / "r")], capture_output=True, text=True, timeout=120,
                         env={"PATH": "/usr/bin:/bin", "ROUNDTABLE_ENV_FILE": "", "SCORING_API_URL": "http://127.0.0.1:9",
                              "HOME": str(tmp_path)})
    assert out.returncode == 1
    assert Counter(out.stderr.split())["--provider-cap:"] == 1 and "write PROVIDER=N" in out.stderr, out.stderr


class RecordingGate:
    """A gate that says, at any moment, how many slots of each provider are held."""

    def __init__(self) -> None:
        self.held: Counter[str] = Counter()

    def slot(self, provider: str) -> Any:
        from contextlib import asynccontextmanager

        @asynccontextmanager
        async def held() -> Any:
            self.held[provider] += 1
            try:
                yield
            finally:
                self.held[provider] -= 1

        return held()


@pytest.mark.parametrize("streamed", [False, True])
async def test_a_model_call_holds_its_providers_slot_while_it_runs_and_not_while_it_backs_off(streamed: bool) -> None:
    from autogen_core.models import UserMessage

    from models.client import ManagedClient
    from tests.fakes.function_model import FunctionModel

    recording = RecordingGate()
    seen: list[tuple[str, int]] = []
    replies: list[Any] = [ConnectionError("the provider dropped the connection"), "The answer is 4600."]

    def reply(_: Any) -> Any:
        seen.append(("call", recording.held["openai"]))
        return replies.pop(0)

    async def backoff(_: float) -> None:
        seen.append(("backoff", recording.held["openai"]))

    client = ManagedClient(FunctionModel(reply, agent="planner"), agent="planner", provider="openai", model="m",
                           max_retries=2, base_delay=0, sleep=backoff)
    previous = gate.install(recording)
    try:
        messages = [UserMessage(content="Add 1200 and 3400.", source="user")]
        if streamed:
            items = [i async for i in client.create_stream(messages)]
            content = items[-1].content  # type: ignore[union-attr]
        else:
            content = (await client.create(messages)).content
    finally:
        gate.install(previous)
    assert content == "The answer is 4600."
    assert seen == [("call", 1), ("backoff", 0), ("call", 1)]
    assert recording.held["openai"] == 0  # every slot was given back
