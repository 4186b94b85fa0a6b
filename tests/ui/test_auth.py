"""The Hugging Face OAuth provider against the local fake of HF's endpoints, and whose name Submit uses."""

from __future__ import annotations

import base64
import json
import os
import tempfile
from collections.abc import Iterator

import pytest
from chainlit.oauth_providers import providers
from chainlit.user import User
from fastapi import HTTPException

from config.settings import Settings
from evaluation.identity import IdentityError
from tests.fakes.hf_hub import FakeHub
from tests.fakes.hf_oauth import FakeHFOAuth
from tests.ui.fake_session import chainlit_session
from ui import auth
from ui.evaluation import submit_identity


@pytest.fixture
def fake_hf(monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeHFOAuth]:
    with FakeHFOAuth(username="alice") as fake:
        monkeypatch.setenv("OAUTH_CLIENT_ID", fake.client_id)
        monkeypatch.setenv("OAUTH_CLIENT_SECRET", fake.client_secret)
        monkeypatch.setenv("OPENID_PROVIDER_URL", fake.url)
        monkeypatch.setenv("OAUTH_SCOPES", "openid profile")
        yield fake


@pytest.fixture
def clean_providers() -> Iterator[None]:
    before = list(providers)
    yield
    providers[:] = before


def _authorize(fake: FakeHFOAuth, redirect: str) -> str:
    import urllib.parse
    import urllib.request

    class NoRedirect(urllib.request.HTTPRedirectHandler):
        def redirect_request(self, *a, **k):  # type: ignore[no-untyped-def]
            return None

    query = urllib.parse.urlencode({"client_id": fake.client_id, "redirect_uri": redirect, "state": "s1", "scope": "openid profile", "response_type": "code"})
    opener = urllib.request.build_opener(NoRedirect, urllib.request.ProxyHandler({}))
    try:
        opener.open(f"{fake.url}/oauth/authorize?{query}")
    except urllib.error.HTTPError as exc:
        location = exc.headers["Location"]
    return urllib.parse.parse_qs(urllib.parse.urlsplit(location).query)["code"][0]


async def test_the_code_is_exchanged_with_basic_auth_and_the_username_comes_from_userinfo(fake_hf: FakeHFOAuth) -> None:
    provider = auth.HuggingFaceOAuthProvider()
    redirect = "http://127.0.0.1:1/auth/oauth/huggingface/callback"
    code = _authorize(fake_hf, redirect)
    token = await provider.get_token(code, redirect)
    assert token in fake_hf.issued_tokens
    sent = fake_hf.requests_to("/oauth/token")[0]
    assert sent.headers["authorization"] == "Basic " + base64.b64encode(f"{fake_hf.client_id}:{fake_hf.client_secret}".encode()).decode()
    assert "client_secret" not in sent.form and sent.form["redirect_uri"] == redirect
    info, user = await provider.get_user_info(token)
    assert user.identifier == "alice" and user.display_name == "Alice Example"
    assert user.metadata["provider"] == "huggingface"
    logged_in = await auth.accept_login("huggingface", token, info, user)
    assert logged_in is not None and logged_in.identifier == "alice"
    assert token not in json.dumps(logged_in.to_dict()), "the access token must not ride in the JWT"
    assert auth.hf_username(logged_in) == "alice"


async def test_a_wrong_secret_or_a_used_code_is_refused(fake_hf: FakeHFOAuth, monkeypatch: pytest.MonkeyPatch) -> None:
    redirect = "http://127.0.0.1:1/cb"
    code = _authorize(fake_hf, redirect)
    monkeypatch.setenv("OAUTH_CLIENT_SECRET", "wrong")
    with pytest.raises(HTTPException, match="token endpoint HTTP 401"):
        await auth.HuggingFaceOAuthProvider().get_token(code, redirect)
    monkeypatch.setenv("OAUTH_CLIENT_SECRET", fake_hf.client_secret)
    provider = auth.HuggingFaceOAuthProvider()
    await provider.get_token(code, redirect)
    with pytest.raises(HTTPException, match="HTTP 400"):
        await provider.get_token(code, redirect)
    with pytest.raises(HTTPException, match="userinfo endpoint answered HTTP 401"):
        await provider.get_user_info("hf_oauth_not_issued")


async def test_other_providers_are_refused() -> None:
    assert await auth.accept_login("github", "t", {}, User(identifier="mallory")) is None
    assert auth.hf_username(User(identifier="mallory", metadata={"provider": "github"})) is None


def test_login_is_on_only_with_the_space_variables(monkeypatch: pytest.MonkeyPatch, clean_providers: None) -> None:
    for var in auth.OAUTH_VARS + ("CHAINLIT_AUTH_SECRET", "CHAINLIT_URL"):
        monkeypatch.setenv(var, "")  # empty = unset, and restored after the test (install() writes to os.environ)
    monkeypatch.setenv("SPACE_HOST", "alice-roundtable.hf.space")
    assert auth.install() is False and not any(p.id == "huggingface" for p in providers)
    monkeypatch.setenv("OAUTH_CLIENT_ID", "id")
    monkeypatch.setenv("OAUTH_CLIENT_SECRET", "secret")
    assert auth.install() is False  # OPENID_PROVIDER_URL missing
    monkeypatch.setenv("OPENID_PROVIDER_URL", "http://127.0.0.1:9")
    assert auth.install() is True
    assert [p.id for p in providers].count("huggingface") == 1
    assert len(os.environ["CHAINLIT_AUTH_SECRET"]) >= 32  # generated so Chainlit can start
    assert os.environ["CHAINLIT_URL"] == "https://alice-roundtable.hf.space"  # the OAuth redirect's host
    auth.install()
    assert [p.id for p in providers].count("huggingface") == 1


async def test_submit_uses_the_hf_login_or_else_the_owner_of_hf_token(monkeypatch: pytest.MonkeyPatch) -> None:
    for var in auth.OAUTH_VARS:
        monkeypatch.delenv(var, raising=False)
    with FakeHub(tokens={"hf_tokenOfBob0123456": "bob"}) as hub:
        settings = Settings(_env_file=None, HF_TOKEN="hf_tokenOfBob0123456", HF_ENDPOINT=hub.url)  # type: ignore[call-arg]
        with chainlit_session(user=User(identifier="alice", metadata={"provider": "huggingface"})):
            identity = await submit_identity(settings)
        assert (identity.username, identity.source) == ("alice", "oauth")
        with chainlit_session():
            identity = await submit_identity(settings)
        assert (identity.username, identity.source) == ("bob", "token")
        monkeypatch.setenv("HF_HOME", tempfile.mkdtemp())
        with chainlit_session(), pytest.raises(IdentityError, match="HF_TOKEN"):
            await submit_identity(Settings(_env_file=None, HF_ENDPOINT=hub.url))  # type: ignore[call-arg]
        monkeypatch.setenv("OAUTH_CLIENT_ID", "id")
        monkeypatch.setenv("OAUTH_CLIENT_SECRET", "secret")
        monkeypatch.setenv("OPENID_PROVIDER_URL", "http://127.0.0.1:9")
        with chainlit_session(), pytest.raises(IdentityError, match="log in with Hugging Face"):
            await submit_identity(settings)  # with login on, a token on the server is no one's identity
