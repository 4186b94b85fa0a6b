"""Logging in with Hugging Face in a real browser, against a local fake of HF's OAuth endpoints reached
through OPENID_PROVIDER_URL (as a Space with `hf_oauth: true` injects it). The app also has no model
configured here: it must still start and say which variable to set."""

from __future__ import annotations

import base64
import json
import secrets
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest

from tests.conftest import require_system
from tests.fakes.hf_oauth import FakeHFOAuth
from tests.fakes.scripted_llm import ScriptedLLM
from tests.ui.harness import WELCOME_TEXT, ChainlitApp, Scenarios, app_env, ask, final_answers, raw_socket
from tests.ui.scenarios import _approve

try:
    from playwright.sync_api import expect
except ImportError:  # a dev dependency; CI must fail, not skip, without it
    if require_system():
        raise
    pytest.skip("playwright is not installed (pip install -e '.[dev]')", allow_module_level=True)


@dataclass
class LoginStack:
    app: ChainlitApp
    hf: FakeHFOAuth


@pytest.fixture(scope="module")
def login_stack(browser: Any, tmp_path_factory: pytest.TempPathFactory) -> Iterator[LoginStack]:
    root = tmp_path_factory.mktemp("ui-login")
    hf = FakeHFOAuth(username="alice", fullname="Alice Example").start()
    env = app_env(
        root,
        None,
        OAUTH_CLIENT_ID=hf.client_id,
        OAUTH_CLIENT_SECRET=hf.client_secret,
        OPENID_PROVIDER_URL=hf.url,
        OAUTH_SCOPES="openid profile",
        CHAINLIT_AUTH_SECRET=secrets.token_urlsafe(32),
        LLM_PROVIDER="openai",  # and no OPENAI_API_KEY: no model is configured
    )
    app = ChainlitApp(env, root)
    try:
        app.start()
        yield LoginStack(app, hf)
    finally:
        app.stop()
        hf.stop()


LOGGED_IN_QUESTION = "Login check: how many corners do two invented squares have?"


@dataclass
class ModelStack:
    app: ChainlitApp
    hf: FakeHFOAuth
    llm: ScriptedLLM


@pytest.fixture(scope="module")
def model_stack(browser: Any, tmp_path_factory: pytest.TempPathFactory) -> Iterator[ModelStack]:
    """The login on, and a (scripted) model that answers: what a Space with its owner's keys is."""
    root = tmp_path_factory.mktemp("ui-login-model")
    hf = FakeHFOAuth(username="alice", fullname="Alice Example").start()
    scenarios = Scenarios()
    scenarios.add("login check", {"planner": ["Two squares, four corners each.\nFINAL ANSWER: 8"], "critic": [_approve]})
    llm = scenarios.server()
    env = app_env(
        root,
        llm,
        OAUTH_CLIENT_ID=hf.client_id,
        OAUTH_CLIENT_SECRET=hf.client_secret,
        OPENID_PROVIDER_URL=hf.url,
        CHAINLIT_AUTH_SECRET=secrets.token_urlsafe(32),
    )
    app = ChainlitApp(env, root)
    try:
        app.start()
        yield ModelStack(app, hf, llm)
    finally:
        app.stop()
        llm.stop()
        hf.stop()


def _jwt_payload(value: str) -> str:
    part = value.split(".")[1]
    return base64.urlsafe_b64decode(part + "=" * (-len(part) % 4)).decode()


def test_logging_in_with_hugging_face_keeps_the_token_on_the_server(login_stack: LoginStack, page: Any) -> None:
    app, hf = login_stack.app, login_stack.hf
    page.goto(app.url + "/")
    expect(page).to_have_url(f"{app.url}/login", timeout=30_000)
    page.get_by_role("button", name="Continue with Huggingface").click()

    welcome = page.locator(".step").filter(has_text=WELCOME_TEXT).first
    expect(welcome).to_be_visible(timeout=30_000)
    expect(welcome).to_contain_text("Logged in with Hugging Face as alice")
    # no model configured: the app runs anyway and names the variable to set
    expect(welcome).to_contain_text("OPENAI_API_KEY")
    expect(welcome.get_by_role("button", name="Run the course evaluation")).to_be_visible()

    authorize = hf.requests_to("/oauth/authorize")[0].query
    assert authorize["client_id"] == hf.client_id and authorize["response_type"] == "code"
    assert authorize["redirect_uri"] == f"{app.url}/auth/oauth/huggingface/callback"
    assert authorize["scope"] == "openid profile" and authorize["state"]
    token_request = hf.requests_to("/oauth/token")[0]
    assert token_request.headers["authorization"].startswith("Basic ")
    assert len(hf.issued_tokens) == 1
    token = hf.issued_tokens[0]
    assert hf.requests_to("/oauth/userinfo")[0].headers["authorization"] == f"Bearer {token}"

    # the access token is nowhere the browser can see: cookies (the JWT decoded too), page, storage, URL
    cookies = page.context.cookies()
    assert cookies and all(token not in c["value"] for c in cookies)
    session = next(c for c in cookies if c["name"].startswith("access_token"))
    assert session["httpOnly"]
    payload = json.loads(_jwt_payload(session["value"]))
    assert payload["identifier"] == "alice" and token not in json.dumps(payload)
    assert token not in page.content() and token not in page.url
    storage = page.evaluate("() => JSON.stringify([Object.entries(localStorage), Object.entries(sessionStorage)])")
    assert token not in storage
    user = page.context.request.get(app.url + "/user")
    assert user.ok and "alice" in user.text() and token not in user.text()
    # ... nor in the server's log
    assert token not in app.log()


def test_without_logging_in_the_chat_is_not_reachable(login_stack: LoginStack, page: Any) -> None:
    page.goto(login_stack.app.url + "/")
    expect(page).to_have_url(f"{login_stack.app.url}/login", timeout=30_000)
    expect(page.get_by_role("button", name="Continue with Huggingface")).to_be_visible()
    assert page.context.request.get(login_stack.app.url + "/user").status == 401


def test_a_logged_out_user_cannot_run_a_question(model_stack: ModelStack, page: Any) -> None:
    app, llm = model_stack.app, model_stack.llm
    page.goto(app.url + "/")
    expect(page).to_have_url(f"{app.url}/login", timeout=30_000)
    expect(page.locator("#chat-input")).to_have_count(0)
    # nor around the page: the app's socket refuses a client without the login cookie
    refused = raw_socket(page, app.url, [LOGGED_IN_QUESTION], until="44{", timeout_ms=10_000)  # CONNECT_ERROR
    assert refused["matched"] and not refused["connected"], refused["frames"]
    assert "Connection refused" in refused["frames"][-1]
    assert llm.requests == []

    # logged in, the same question is answered ...
    page.get_by_role("button", name="Continue with Huggingface").click()
    expect(page.locator(".step").filter(has_text=WELCOME_TEXT).first).to_contain_text("Logged in with Hugging Face as alice", timeout=30_000)
    ask(page, LOGGED_IN_QUESTION)
    expect(final_answers(page).first).to_contain_text("Final answer: 8", timeout=60_000)
    asked = len(llm.requests)
    assert asked > 0

    # ... and once logged out, nothing runs again
    page.context.clear_cookies()
    page.goto(app.url + "/")
    expect(page).to_have_url(f"{app.url}/login", timeout=30_000)
    again = raw_socket(page, app.url, [LOGGED_IN_QUESTION], until="44{", timeout_ms=10_000)
    assert again["matched"] and not again["connected"]
    assert len(llm.requests) == asked
