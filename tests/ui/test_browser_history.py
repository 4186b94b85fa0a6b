"""History in a real browser: a debate asked in the real app comes back after a reload and after an app restart
(the app process stopped and started again), on SQLite and on a real PostgreSQL server: the thread list shows
it, opening it shows every step, and a new question in the resumed thread runs. With history off the welcome
says conversations are not stored and there is no thread list."""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import require_system, skip_or_fail
from tests.fakes import postgres
from tests.fakes.scripted_llm import ScriptedLLM
from tests.ui import scenarios as sc
from tests.ui.harness import ChainlitApp, app_env, ask, final_answers, open_chat

try:
    from playwright.sync_api import expect
except ImportError:  # a dev dependency; CI must fail, not skip, without it
    if require_system():
        raise
    pytest.skip("playwright is not installed (pip install -e '.[dev]')", allow_module_level=True)

THREAD_NAME = sc.DEBATE_QUESTION[:30]
RUN_TIMEOUT_MS = 90_000
NINE = re.compile(r"Final answer: 9\b")


@dataclass
class Stack:
    app: ChainlitApp
    llm: ScriptedLLM
    root: Path
    backend: str


def _stack(root: Path, **extra: str) -> tuple[ChainlitApp, ScriptedLLM]:
    llm = sc.build(root / "ticks.txt").server(token_delay=0.001)
    env = app_env(root, llm, SANDBOX_BACKEND="subprocess", **extra)
    return ChainlitApp(env, root), llm


def stored_env(backend: str) -> dict[str, str]:
    """History on, in SQLite or in a database of the shared throwaway PostgreSQL server."""
    extra = {"ROUNDTABLE_HISTORY": "on"}
    if backend == "postgresql":
        if reason := postgres.missing():
            skip_or_fail(reason)
        extra["DATABASE_URL"] = postgres.shared_server().new_database()
    return extra


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def stored(request: pytest.FixtureRequest, browser: Any, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    extra = stored_env(request.param)
    root = tmp_path_factory.mktemp(f"ui-history-{request.param}")
    app, llm = _stack(root, **extra)
    try:
        app.start()
        yield Stack(app, llm, root, request.param)
    finally:
        app.stop()
        llm.stop()


def thread_list(page: Any) -> Any:
    return page.locator("#thread-history")


def threads(page: Any) -> Any:
    """The entries of the thread list (each `thread-<id>`; `thread-options` is an entry's menu button)."""
    return thread_list(page).locator('[id^="thread-"]:not(#thread-options)')


def shown_steps(page: Any) -> list[str]:
    """What the chat shows: each step's type and header, and each message's text, in order."""
    items = page.locator(".step[data-step-type]")
    out = []
    for i in range(items.count()):
        item = items.nth(i)
        kind = item.get_attribute("data-step-type") or ""
        header = item.locator('[id^="step-"]').first
        label = header.get_attribute("id") if header.count() else ""
        text = item.inner_text(timeout=5_000).split("\n")[0][:80] if "message" in kind else ""
        out.append(f"{kind}|{label}|{text}")
    return out


def run_step_text(page: Any) -> str:
    """Everything the debate's run step shows (its turns are open by default)."""
    return str(page.locator('.step[data-step-type="run"]').first.inner_text())


def open_thread(page: Any, name: str) -> None:
    entry = threads(page).filter(has_text=name).first
    expect(entry).to_be_visible(timeout=30_000)
    entry.click()
    expect(page).to_have_url(re.compile(r"/thread/"), timeout=30_000)
    expect(final_answers(page).first).to_be_visible(timeout=30_000)


def test_a_debate_comes_back_whole_after_a_reload_and_after_an_app_restart(stored: Stack, page: Any) -> None:
    open_chat(page, stored.app.url)
    expect(page.locator(".step").filter(has_text="Conversations are stored").first).to_be_visible()
    ask(page, sc.DEBATE_QUESTION)
    expect(final_answers(page).first).to_be_visible(timeout=RUN_TIMEOUT_MS)
    expect(page.locator("#stop-button")).to_have_count(0, timeout=RUN_TIMEOUT_MS)
    answer = final_answers(page).first.inner_text()
    run_text = run_step_text(page)
    assert "Rejected by critic" in run_text or "rejected" in run_text.lower(), run_text[:500]
    before = [s for s in shown_steps(page) if "Ask anything" not in s]
    assert any(s.startswith("run|") for s in before), before

    # a reload: the page forgets everything; the thread list brings the debate back
    page.reload()
    open_thread(page, THREAD_NAME)
    after_reload = [s for s in shown_steps(page) if "Ask anything" not in s]
    assert after_reload == before
    assert final_answers(page).first.inner_text() == answer
    assert run_step_text(page) == run_text  # every turn's text, tool call, verdict and the summary

    # an app restart: a new process, the same database
    stored.app.restart()
    page.goto(stored.app.url + "/")
    open_thread(page, THREAD_NAME)
    after_restart = [s for s in shown_steps(page) if "Ask anything" not in s]
    assert after_restart == before
    assert run_step_text(page) == run_text

    # the resumed thread takes a new question, and it is stored too
    ask(page, sc.QUICK_QUESTION)
    expect(final_answers(page).filter(has_text=NINE)).to_have_count(1, timeout=RUN_TIMEOUT_MS)
    expect(page.locator("#stop-button")).to_have_count(0, timeout=RUN_TIMEOUT_MS)
    page.reload()
    expect(final_answers(page).filter(has_text=NINE)).to_have_count(1, timeout=30_000)
    texts = [final_answers(page).nth(i).inner_text()[:60] for i in range(final_answers(page).count())]
    assert len(texts) == 2, texts


def test_with_history_off_the_chat_says_it_is_not_stored_and_lists_no_threads(browser: Any, page: Any,
                                                                               tmp_path_factory: pytest.TempPathFactory) -> None:
    root = tmp_path_factory.mktemp("ui-history-off")
    app, llm = _stack(root, ROUNDTABLE_HISTORY="off")
    try:
        app.start()
        open_chat(page, app.url)
        expect(page.locator(".step").filter(has_text="Conversations are not stored").first).to_be_visible()
        ask(page, sc.QUICK_QUESTION)
        expect(final_answers(page).filter(has_text=NINE)).to_have_count(1, timeout=RUN_TIMEOUT_MS)
        expect(thread_list(page)).to_have_count(0)
        assert not (root / "cache" / "history.sqlite3").exists()
        page.reload()
        expect(page.locator(".step").filter(has_text="Ask anything").first).to_be_visible(timeout=30_000)
        expect(final_answers(page)).to_have_count(0)
    finally:
        app.stop()
        llm.stop()


def _login_as(page: Any, url: str, username: str, secret: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """The cookie Hugging Face login would leave (signed with the app's secret), without the OAuth dance."""
    from chainlit.auth import create_jwt
    from chainlit.user import User

    monkeypatch.setenv("CHAINLIT_AUTH_SECRET", secret)
    token = create_jwt(User(identifier=username, display_name=username, metadata={"provider": "huggingface"}))
    page.context.add_cookies([{"name": "access_token", "value": token, "url": url}])


def test_on_a_space_with_login_each_user_sees_only_their_own_debates(browser: Any, tmp_path_factory: pytest.TempPathFactory,
                                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    import secrets as pysecrets

    from tests.fakes.hf_oauth import FakeHFOAuth
    from tests.ui.harness import new_context

    root = tmp_path_factory.mktemp("ui-history-users")
    hf = FakeHFOAuth(username="alice", fullname="Alice").start()
    secret = pysecrets.token_urlsafe(32)
    app, llm = _stack(root, SPACE_ID="tester/roundtable", ROUNDTABLE_HISTORY="on", OAUTH_CLIENT_ID=hf.client_id,
                      OAUTH_CLIENT_SECRET=hf.client_secret, OPENID_PROVIDER_URL=hf.url, CHAINLIT_AUTH_SECRET=secret)
    contexts = []
    try:
        app.start()
        pages = {}
        for user, question in (("alice", sc.QUICK_QUESTION), ("bob", sc.AFTER_LONG_QUESTION)):
            context = new_context(browser, viewport={"width": 1280, "height": 1000})
            contexts.append(context)
            page = context.new_page()
            _login_as(page, app.url, user, secret, monkeypatch)
            open_chat(page, app.url)
            expect(page.locator(".step").filter(has_text="Conversations are stored").first).to_be_visible()
            ask(page, question)
            expect(final_answers(page).first).to_be_visible(timeout=RUN_TIMEOUT_MS)
            expect(page.locator("#stop-button")).to_have_count(0, timeout=RUN_TIMEOUT_MS)
            pages[user] = page
        alice, bob = pages["alice"], pages["bob"]
        alice_thread = alice.url
        for page in (alice, bob):
            page.goto(app.url + "/")
            expect(threads(page).first).to_be_visible(timeout=30_000)
            page.wait_for_timeout(1_000)
            names = threads(page).all_inner_texts()
            assert len(names) == 1, names
        expect(thread_list(alice)).to_contain_text(sc.QUICK_QUESTION[:25])
        expect(thread_list(bob)).to_contain_text(sc.AFTER_LONG_QUESTION[:25])
        expect(thread_list(bob)).not_to_contain_text(sc.QUICK_QUESTION[:25])
        open_thread(alice, sc.QUICK_QUESTION[:25])
        alice_thread = alice.url
        # bob cannot open alice's debate by its address
        thread_id = alice_thread.rstrip("/").rsplit("/", 1)[-1]
        assert alice.request.get(f"{app.url}/project/thread/{thread_id}").ok
        assert not bob.request.get(f"{app.url}/project/thread/{thread_id}").ok
        bob.goto(alice_thread)
        bob.wait_for_timeout(2_000)
        expect(bob.get_by_text("tripods")).to_have_count(0)
    finally:
        for context in contexts:
            context.close()
        app.stop()
        llm.stop()
        hf.stop()
