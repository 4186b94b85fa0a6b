"""The history data layer in-process, on SQLite and on a real PostgreSQL server (tests/fakes/postgres.py).

A real team run (the chat handler with a scripted model) is written through Chainlit's own persistence path;
a second data layer instance (= the app restarted) reads the thread back with every step the page was shown.
Also: threads are listed per user, the schema is created idempotently, and when conversations are stored.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace
from typing import Any, cast

import chainlit.data as cl_data
import pytest
from chainlit.types import Pagination, ThreadFilter
from chainlit.user import User

from config.settings import Settings
from tests.conftest import settings_for, skip_or_fail
from tests.fakes import postgres
from tests.fakes.scripted_llm import ScriptedLLM
from tests.ui.fake_session import chainlit_session
from ui import chat, history

OAUTH_ENV = {"OAUTH_CLIENT_ID": "id", "OAUTH_CLIENT_SECRET": "secret", "OPENID_PROVIDER_URL": "http://127.0.0.1:9"}


@pytest.fixture(params=["sqlite", "postgresql"])
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite+aiosqlite:///{tmp_path / 'history.sqlite3'}"
    if reason := postgres.missing():
        skip_or_fail(reason)
    url = postgres.shared_server().new_database()
    return history.database_url(Settings(_env_file=None, DATABASE_URL=url), tmp_path / "unused.sqlite3")


@pytest.fixture
def use_layer(monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    """Make a data layer Chainlit's current one (what the `cl.data_layer` hook does in the app)."""

    def use(layer: history.HistoryDataLayer) -> None:
        monkeypatch.setattr(cl_data, "_data_layer", layer)
        monkeypatch.setattr(cl_data, "_data_layer_initialized", True)

    yield use


async def _run_question(layer: history.HistoryDataLayer, user: Any, server: ScriptedLLM, monkeypatch: pytest.MonkeyPatch,
                        question: str) -> tuple[str, dict[str, dict[str, Any]]]:
    base = settings_for(server)
    monkeypatch.setattr(chat, "base_settings", lambda: base)
    thread_id = str(uuid.uuid4())
    with chainlit_session(user=user) as rec:
        rec.session.thread_id = thread_id
        await layer.update_thread(thread_id, name=question, user_id=user.id)  # Chainlit does this on the first message
        await chat.settings_changed({"team": "solo"})
        await chat.answer(cast(Any, SimpleNamespace(content=question, elements=[])))
        await _settle()  # Chainlit persists each step send/update in a task of its own
        await layer.flush()
    return thread_id, rec.steps()


async def _settle(timeout: float = 10.0) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while loop.time() < deadline:
        if not [t for t in asyncio.all_tasks() if t is not asyncio.current_task() and not t.done()]:
            return
        await asyncio.sleep(0.02)


async def test_a_real_run_survives_an_app_restart_with_every_step(db_url: str, use_layer: Any, llm_server: Any,
                                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    server: ScriptedLLM = llm_server({"solo": ["Two and one.\nFINAL ANSWER: 3"]})
    first = history.HistoryDataLayer(db_url)
    use_layer(first)
    alice = await first.create_user(User(identifier="alice", metadata={"provider": "huggingface"}))
    assert alice is not None
    thread_id, shown = await _run_question(first, alice, server, monkeypatch, "What is one plus two?")
    await first.close()

    restarted = history.HistoryDataLayer(db_url)  # a new process: nothing in memory
    thread = await restarted.get_thread(thread_id)
    assert thread is not None
    assert thread["userIdentifier"] == "alice"
    stored = {s["id"]: s for s in thread["steps"]}
    # every step the page showed (turns, the run, the final answer) is stored, with its text and its nesting
    assert set(shown) <= set(stored), f"missing steps: {[shown[i].get('name') for i in set(shown) - set(stored)]}"
    for step_id, step in shown.items():
        assert stored[step_id]["name"] == step["name"]
        assert stored[step_id]["parentId"] == step.get("parentId")
        if step.get("output"):
            assert stored[step_id]["output"] == step["output"]
        for key in ("showInput", "defaultOpen"):  # how the page lays the step out: open turns, inputs shown
            if step.get(key) is not None:
                assert stored[step_id].get(key) == step[key], (step["name"], key)
    assert any("Final answer: 3" in (s.get("output") or "") for s in stored.values())
    assert len(stored) >= 3  # the question's run, at least one agent turn, the answer
    await restarted.close()


async def test_threads_are_listed_per_user(db_url: str, use_layer: Any, llm_server: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    server: ScriptedLLM = llm_server({"solo": ["FINAL ANSWER: 3", "FINAL ANSWER: 4"]})
    layer = history.HistoryDataLayer(db_url)
    use_layer(layer)
    alice = await layer.create_user(User(identifier="alice"))
    bob = await layer.create_user(User(identifier="bob"))
    assert alice is not None and bob is not None
    alice_thread, _ = await _run_question(layer, alice, server, monkeypatch, "What is one plus two?")
    bob_thread, _ = await _run_question(layer, bob, server, monkeypatch, "What is two plus two?")

    def ids(page: Any) -> list[str]:
        return [t["id"] for t in page.data]

    alices = await layer.list_threads(Pagination(first=20), ThreadFilter(userId=alice.id))
    bobs = await layer.list_threads(Pagination(first=20), ThreadFilter(userId=bob.id))
    assert ids(alices) == [alice_thread]
    assert ids(bobs) == [bob_thread]
    assert [t["name"] for t in alices.data] == ["What is one plus two?"]
    await layer.close()


async def test_a_later_update_of_a_step_is_never_overwritten_by_an_earlier_one(db_url: str, use_layer: Any,
                                                                                monkeypatch: pytest.MonkeyPatch) -> None:
    # Chainlit persists a step's send and its update (a turn, then the turn with its verdict badge) in two
    # concurrent tasks; here the first one is slow, as a busy database makes it.
    layer = history.HistoryDataLayer(db_url)
    use_layer(layer)
    dave = await layer.create_user(User(identifier="dave"))
    assert dave is not None
    thread_id, step_id = str(uuid.uuid4()), str(uuid.uuid4())
    await layer.update_thread(thread_id, name="race", user_id=dave.id)
    delays = iter([0.3])
    original = layer.update_thread

    async def slow_first(*args: Any, **kwargs: Any) -> Any:
        await asyncio.sleep(next(delays, 0.0))
        return await original(*args, **kwargs)

    monkeypatch.setattr(layer, "update_thread", slow_first)
    step: dict[str, Any] = {"id": step_id, "threadId": thread_id, "name": "critic", "type": "llm", "streaming": False,
                            "createdAt": "2026-12-02T10:00:00Z", "metadata": {}}
    with chainlit_session(user=dave):
        first = asyncio.create_task(layer.update_step(cast(Any, {**step, "output": "Looks right."})))
        second = asyncio.create_task(layer.update_step(cast(Any, {**step, "output": "Looks right.\n\n✓ Approved"})))
        await asyncio.gather(first, second)
    thread = await layer.get_thread(thread_id)
    assert thread is not None
    assert [s["output"] for s in thread["steps"]] == ["Looks right.\n\n✓ Approved"]
    await layer.close()


async def test_the_schema_is_created_once_and_again_without_harm(db_url: str) -> None:
    for _ in range(2):  # two app starts on the same database
        layer = history.HistoryDataLayer(db_url)
        await layer.ensure_schema()
        user = await layer.create_user(User(identifier="carol", metadata={"provider": "local"}))
        assert user is not None and user.identifier == "carol" and user.metadata == {"provider": "local"}
        await layer.close()


async def test_a_resumed_thread_gets_back_its_team_and_settings_panel() -> None:
    import chainlit as cl

    with chainlit_session(user=User(identifier="alice")) as rec:
        rec.session.chat_settings = {"team": "solo", "show_code": False}  # what Chainlit restores from the thread
        await history.resume({"id": str(uuid.uuid4()), "steps": []})
        choices = cl.user_session.get("choices")
        assert choices.team == "solo" and choices.show_code is False
        assert chat.current_choices() is choices  # the next question runs with them
    panels = [d for e, d in rec.events if e == "chat_settings"]
    assert panels, "the settings panel was not sent"
    team_widget = next(w for w in panels[-1] if w.get("id") == "team")
    assert team_widget.get("initial") == "solo"


def _settings(**env: str) -> Settings:
    return Settings(_env_file=None, **env)  # type: ignore[arg-type]


def test_conversations_are_stored_locally_and_not_on_a_space_by_default() -> None:
    local = history.decide(_settings(), env={})
    assert local.store and local.local_login
    space = history.decide(_settings(SPACE_ID="me/roundtable"), env=OAUTH_ENV)
    assert not space.store
    asked = history.decide(_settings(SPACE_ID="me/roundtable", ROUNDTABLE_HISTORY="on"), env=OAUTH_ENV)
    assert asked.store and not asked.local_login  # users are told apart by their Hugging Face login
    # on a Space without login, storing would show everyone's chats to everyone: refused even when asked
    assert not history.decide(_settings(SPACE_ID="me/roundtable", ROUNDTABLE_HISTORY="on"), env={}).store
    assert not history.decide(_settings(ROUNDTABLE_HISTORY="off"), env={}).store


def test_the_ui_note_says_whether_conversations_are_stored() -> None:
    stored = history.History(history.Decision(True, "local", True), url="sqlite+aiosqlite:////x/h.sqlite3", where="SQLite")
    assert "Conversations are stored" in stored.note() and "SQLite" in stored.note()
    off = history.History(history.Decision(False, "off"))
    assert "not stored" in off.note()
    assert off.data_layer() is None  # no data layer: Chainlit does not open its own on DATABASE_URL either


def test_database_url_gets_the_async_driver_and_the_password_never_shows(tmp_path: Path) -> None:
    s = _settings(DATABASE_URL="postgres://roundtable:s3cr3t-pw@db.internal:5433/chats")
    url = history.database_url(s, tmp_path / "h.sqlite3")
    assert url == "postgresql+asyncpg://roundtable:s3cr3t-pw@db.internal:5433/chats"
    assert "s3cr3t-pw" not in history.describe_url(url)
    assert "db.internal:5433/chats" in history.describe_url(url)
    assert "s3cr3t-pw" not in repr(s)
    assert any("s3cr3t-pw" in v for v in s.secret_values())  # masked in every log line
    assert history.database_url(_settings(), tmp_path / "h.sqlite3") == f"sqlite+aiosqlite:///{tmp_path / 'h.sqlite3'}"
    with pytest.raises(ValueError, match="postgresql"):
        history.database_url(_settings(DATABASE_URL="mysql://x@h/db"), tmp_path / "h.sqlite3")
