"""What the chat refuses before spending anything, without a browser: a limit reached (which one, when it
resets), a session without the Hugging Face login on an app that has one, an over-long message, a file that
is gone; and what it does with files sent without text."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from datetime import datetime, timezone
from pathlib import Path
from types import SimpleNamespace
from typing import Any
from unittest.mock import Mock

import chainlit as cl
import pytest

from config.settings import Settings
from evaluation.batch import QuestionStatus
from models.usage import UsageLedger, estimate_cost
from teams import events as ev
from tests.conftest import settings_for
from tests.fakes.scripted_llm import ScriptedLLM
from tests.ui.fake_session import chainlit_session
from ui import chat, evaluation
from ui.limits import Limiter, LimitReached, Limits
from ui.render import RunView


class Clock:
    now = datetime(2026, 3, 4, 13, 4, 30, tzinfo=timezone.utc)

    def __call__(self) -> datetime:
        return self.now


@pytest.fixture
def limiter(monkeypatch: pytest.MonkeyPatch) -> Iterator[Limiter]:
    fresh = Limiter(Clock())
    monkeypatch.setattr(chat, "limiter", lambda: fresh)
    yield fresh


def _use(monkeypatch: pytest.MonkeyPatch, server: ScriptedLLM, **overrides: Any) -> None:
    base = settings_for(server, **overrides)
    monkeypatch.setattr(chat, "base_settings", lambda: base)


async def _ask(rec: Any, text: str, elements: list[Any] | None = None) -> str:
    before = len(rec.texts())
    await chat.answer(SimpleNamespace(content=text, elements=elements or []))
    return rec.texts()[before:]


async def test_a_user_over_the_hourly_limit_is_told_which_limit_and_when_it_resets(
    llm_server, monkeypatch: pytest.MonkeyPatch, limiter: Limiter
) -> None:
    server = llm_server({"solo": ["Easy.\nFINAL ANSWER: 3", "Easy.\nFINAL ANSWER: 4"]})
    _use(monkeypatch, server, ROUNDTABLE_QUESTIONS_PER_HOUR="1")
    with chainlit_session() as rec:
        await chat.settings_changed({"team": "solo"})
        assert "Final answer: 3" in await _ask(rec, "What is one plus two?")
        refused = await _ask(rec, "What is two plus two?")
        key = chat.user_key()
    assert "Limit reached:** You have asked 1 question in the last hour (the limit); the next one is possible at 14:05 UTC." in refused
    assert "Final answer" not in refused and len(server.requests) == 1  # the second question never reached the model
    assert key.startswith("session:") and limiter.running(key) == 0  # no login here: counted per session


async def test_a_run_that_crosses_the_budget_finishes_and_the_next_question_is_refused(
    llm_server, monkeypatch: pytest.MonkeyPatch, limiter: Limiter
) -> None:
    server = llm_server({"solo": ["Easy.\nFINAL ANSWER: 3"]})
    _use(monkeypatch, server, ROUNDTABLE_USER_DAILY_USD="0.000001")  # less than one gpt-4.1 call
    with chainlit_session() as rec:
        await chat.settings_changed({"team": "solo"})
        first = await _ask(rec, "What is one plus two?")
        key = chat.user_key()
        assert "Final answer: 3" in first  # finished, not cut off
        assert "The budget is used up" in first and "resets at 00:00 UTC" in first
        assert limiter.spent_today(key) > 0.000001 and limiter.running(key) == 0
        refused = await _ask(rec, "What is two plus two?")
    assert "You have used your daily budget of $0.0000" in refused and "it resets at 00:00 UTC (in 10 h 56 min)" in refused
    assert len(server.requests) == 1


async def test_with_the_login_on_a_session_without_it_runs_no_question_and_no_evaluation(
    llm_server, monkeypatch: pytest.MonkeyPatch, limiter: Limiter
) -> None:
    server = llm_server({"solo": ["Easy.\nFINAL ANSWER: 3"]})
    _use(monkeypatch, server)
    for var, value in (("OAUTH_CLIENT_ID", "id"), ("OAUTH_CLIENT_SECRET", "secret"), ("OPENID_PROVIDER_URL", "http://127.0.0.1:9")):
        monkeypatch.setenv(var, value)
    with chainlit_session(user=cl.User(identifier="mallory", metadata={"provider": "password"})) as rec:
        refused = await _ask(rec, "What is one plus two?")
        await evaluation.start(SimpleNamespace(payload={}))
        assert cl.user_session.get("evaluation_task") is None
    assert refused.count("Log in with Hugging Face") == 1 and "Log in with Hugging Face** to run the evaluation" in rec.texts()
    assert server.requests == []
    with chainlit_session(user=cl.User(identifier="alice", metadata={"provider": "huggingface"})) as rec:
        await chat.settings_changed({"team": "solo"})
        assert "Final answer: 3" in await _ask(rec, "What is one plus two?")


async def test_an_over_long_message_is_refused_with_the_limit_and_the_chat_goes_on(
    llm_server, monkeypatch: pytest.MonkeyPatch, limiter: Limiter
) -> None:
    server = llm_server({"solo": ["Easy.\nFINAL ANSWER: 3"]})
    _use(monkeypatch, server, ROUNDTABLE_MAX_QUESTION_CHARS="1000")
    with chainlit_session() as rec:
        await chat.settings_changed({"team": "solo"})
        refused = await _ask(rec, "x" * 1001)
        assert "This message is 1,001 characters long; the limit is 1,000." in refused and server.requests == []
        assert "Final answer: 3" in await _ask(rec, "What is one plus two? " + "y" * 900)


async def test_files_without_text_become_a_question_about_them_shown_in_the_users_bubble(
    llm_server, monkeypatch: pytest.MonkeyPatch, limiter: Limiter, tmp_path: Path
) -> None:
    """A file sent with no text runs nothing: the reply names the file and asks what to do with it; the user's
    bubble shows the file's name; the next question is run with the file attached."""
    server = llm_server({"solo": ["It is a ledger.\nFINAL ANSWER: a ledger"]})
    _use(monkeypatch, server)
    upload = tmp_path / "0b6e.csv"  # Chainlit's own name for the upload
    upload.write_text("item,amount\n", encoding="utf-8")
    with chainlit_session() as rec:
        await chat.settings_changed({"team": "solo"})
        message = cl.Message(content="", author="User", type="user_message", elements=[cl.File(name="**b**.csv", path=str(upload))])
        before = len(rec.texts())
        await chat.answer(message)
        reply = rec.texts()[before:]
        assert server.requests == []  # nothing ran
        assert not [s for s in rec.steps().values() if s.get("type") == "run"]
        assert "Got \\*\\*b\\*\\*\\.csv" in reply  # the given name, as text
        assert "What should the team do with it? Type your question: it is asked with this file attached." in reply
        bubble = [d for e, d in rec.events if e == "update_message" and d["id"] == message.id]
        assert bubble and bubble[-1]["output"] == "📎 \\*\\*b\\*\\*\\.csv"
        await chat.answer(cl.Message(content="What is in it?", author="User", type="user_message"))
    (request,) = server.requests
    question = request.question
    assert question.startswith("What is in it?")
    assert "Attached file(s), in the question's folder: __b__.csv" in question
    assert "'**b**.csv' is '__b__.csv'" in question  # the agents can match the name the user typed
    run = next(s for s in rec.steps().values() if s.get("type") == "run")
    assert "files: \\*\\*b\\*\\*\\.csv" in run["input"]  # the given name, as text, in the roster


async def test_a_file_that_is_gone_is_said_and_the_question_is_not_run_without_it(
    llm_server, monkeypatch: pytest.MonkeyPatch, limiter: Limiter, tmp_path: Path
) -> None:
    server = llm_server({"solo": ["Easy.\nFINAL ANSWER: 3"]})
    _use(monkeypatch, server)
    with chainlit_session() as rec:
        await chat.settings_changed({"team": "solo"})
        said = await _ask(rec, "Sum the ledger.", [SimpleNamespace(name="ledger.csv", path=str(tmp_path / "expired"))])
    assert "Not run:** the attached file(s) ledger\\.csv could not be read" in said and "Attach them again" in said
    assert server.requests == []


class _FakeRun:
    """A run whose events the test writes: the consumer's state can be read between two events."""

    def __init__(self, seen: list[float], limiter: Limiter, key: str) -> None:
        self.ledger = UsageLedger()
        self.seen, self.limiter, self.key = seen, limiter, key

    def cancel(self, reason: str = "") -> None:
        pass

    async def events(self) -> AsyncIterator[ev.Event]:
        self.ledger.add("planner", "openai", "gpt-4.1", 10_000, 1_000)
        yield ev.TurnEnded("planner", 1, "Thinking.", 10_000, 1_000)
        self.seen.append(self.limiter.spent_today(self.key))  # the next turn has not started yet
        self.ledger.add("critic", "openai", "gpt-4.1", 10_000, 1_000)
        yield ev.TurnEnded("critic", 2, "Done.", 10_000, 1_000)
        self.seen.append(self.limiter.spent_today(self.key))


async def test_a_runs_cost_counts_turn_by_turn_while_it_runs(limiter: Limiter) -> None:
    seen: list[float] = []
    with chainlit_session():
        key = chat.user_key()
        ticket = limiter.admit(key, Limits())
        run = _FakeRun(seen, limiter, key)
        await chat._render(run, RunView("debate"), ticket)  # type: ignore[arg-type]
    one_turn = estimate_cost("openai", "gpt-4.1", 10_000, 1_000)
    assert one_turn and seen == pytest.approx([one_turn, 2 * one_turn])
    assert limiter.running(key) == 0  # released when the run ended


def test_the_evaluations_cost_counts_as_it_accrues_and_a_reached_budget_cancels_it(limiter: Limiter) -> None:
    limits = Limits(questions_per_hour=0, concurrent_runs=0, user_daily_usd=0.10, daily_usd=0)
    ticket = limiter.admit("hf:alice", limits)
    batch = Mock()
    spend = evaluation._Spend(ticket, batch)
    spend.update(QuestionStatus("t1", "q1", "done", "x", cost_usd=0.50, resumed=True))  # from the run dir: free now
    spend.update(QuestionStatus("t2", "q2", "running", cost_usd=0.04))
    spend.update(QuestionStatus("t2", "q2", "done", "y", cost_usd=0.06))  # the same question, further on
    assert limiter.spent_today("hf:alice") == pytest.approx(0.06) and not batch.cancel.called
    spend.update(QuestionStatus("t3", "q3", "running", cost_usd=0.05))
    assert limiter.spent_today("hf:alice") == pytest.approx(0.11)
    spend.update(QuestionStatus("t3", "q3", "done", "z", cost_usd=0.07))
    assert batch.cancel.call_count == 1 and spend.stopped_by is not None and spend.stopped_by.kind == "user_daily_usd"
    with pytest.raises(LimitReached):
        limiter.admit("hf:alice", limits)


async def test_the_evaluation_counts_against_the_limits(monkeypatch: pytest.MonkeyPatch, limiter: Limiter) -> None:
    base = Settings(_env_file=None, ROUNDTABLE_CONCURRENT_RUNS="1")  # type: ignore[call-arg]
    monkeypatch.setattr(chat, "base_settings", lambda: base)
    with chainlit_session() as rec:
        limiter.admit(chat.user_key(), Limits.from_settings(base))  # a question of this user is running
        await evaluation.start(SimpleNamespace(payload={}))
        assert cl.user_session.get("evaluation_task") is None
    assert "Limit reached:** You already have 1 run going" in rec.texts()


async def test_the_welcome_says_the_limits_before_anyone_meets_one(monkeypatch: pytest.MonkeyPatch) -> None:
    for env, shown in (({}, True), ({"ROUNDTABLE_QUESTIONS_PER_HOUR": "0", "ROUNDTABLE_CONCURRENT_RUNS": "0",
                                     "ROUNDTABLE_USER_DAILY_USD": "0", "ROUNDTABLE_DAILY_USD": "0"}, False)):
        base = Settings(_env_file=None, **env)  # type: ignore[arg-type]
        monkeypatch.setattr(chat, "base_settings", lambda base=base: base)
        with chainlit_session() as rec:
            await chat.start()
        line = ("**Limits:** per user 20 questions an hour, 2 runs at a time, ≈ $1.00 of model cost a day; "
                "$10.00 a day for the whole app (the budgets reset at 00:00 UTC).")
        assert (line in rec.texts()) is shown and ("Limits:" in rec.texts()) is shown
