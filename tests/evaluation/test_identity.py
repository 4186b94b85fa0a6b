"""The submitting identity: the verified owner of a Hugging Face token, checked against a fake whoami server."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import huggingface_hub
import pytest
from huggingface_hub import constants as hf_constants

from config.settings import Settings
from evaluation import identity as ident
from evaluation.api import ScoringAPI
from evaluation.identity import (
    AgentCodeError,
    Identity,
    IdentityError,
    agent_code_url,
    identity_from_token,
    resolve_identity,
    submit_answers,
)
from tests.evaluation.helpers import HUB_TOKEN, HUB_USER, OTHER_TOKEN
from tests.fakes.hf_hub import FakeHub
from tests.fakes.scoring_api import ScoringServer


@pytest.fixture
def hub() -> Iterator[FakeHub]:
    with FakeHub(tokens={HUB_TOKEN: HUB_USER, OTHER_TOKEN: "bob"}) as h:
        yield h


@pytest.fixture(autouse=True)
def no_cached_login(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A developer's own `hf auth login` must not count as a token here."""
    monkeypatch.setattr(hf_constants, "HF_TOKEN_PATH", str(tmp_path / "hf-home" / "token"))
    monkeypatch.setattr(hf_constants, "HF_STORED_TOKENS_PATH", str(tmp_path / "hf-home" / "stored_tokens"))
    monkeypatch.delenv("CI", raising=False)


def settings(hub: FakeHub, **values) -> Settings:
    return Settings(_env_file=None, HF_ENDPOINT=hub.url, **values)  # type: ignore[call-arg]


def test_the_username_comes_from_whoami_on_the_token(hub: FakeHub) -> None:
    who = identity_from_token(HUB_TOKEN, endpoint=hub.url)
    assert who == Identity(HUB_USER, "token")
    assert [r.path for r in hub.requests] == ["/api/whoami-v2"]
    assert hub.requests[0].token == HUB_TOKEN


def test_token_from_the_environment(hub: FakeHub, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HF_TOKEN", OTHER_TOKEN)
    who = resolve_identity(Settings(_env_file=None, HF_ENDPOINT=hub.url))  # type: ignore[call-arg]
    assert who.username == "bob"


def test_a_cached_login_token_is_used_when_no_env_token(hub: FakeHub, tmp_path: Path) -> None:
    token_file = Path(hf_constants.HF_TOKEN_PATH)
    token_file.parent.mkdir(parents=True)
    token_file.write_text(HUB_TOKEN)
    assert resolve_identity(settings(hub)).username == HUB_USER


def test_no_token_is_a_clear_error(hub: FakeHub) -> None:
    with pytest.raises(IdentityError, match=r"no Hugging Face token found: set HF_TOKEN .*hf auth login.*--login"):
        resolve_identity(settings(hub))
    assert hub.requests == []


def test_a_refused_token_is_a_clear_error_without_the_token(hub: FakeHub) -> None:
    with pytest.raises(IdentityError, match="refused the Hugging Face token") as info:
        resolve_identity(settings(hub, HF_TOKEN="hf_revokedtoken000000000"))
    assert "hf_revokedtoken" not in str(info.value)


def test_an_unreachable_hub_is_a_clear_error() -> None:
    with FakeHub() as gone:
        url = gone.url
    with pytest.raises(IdentityError, match=f"cannot reach {url}"):
        identity_from_token(HUB_TOKEN, endpoint=url)


def test_username_must_match_the_authenticated_user(hub: FakeHub) -> None:
    s = settings(hub, HF_TOKEN=HUB_TOKEN)
    with pytest.raises(IdentityError, match="--username 'mallory' does not match the authenticated Hugging Face user 'alice'"):
        resolve_identity(s, username="mallory")
    assert resolve_identity(s, username="Alice").username == "alice"  # the Hub's spelling is kept


def test_login_is_refused_without_a_terminal_or_in_ci(hub: FakeHub, monkeypatch: pytest.MonkeyPatch) -> None:
    called = []
    monkeypatch.setattr(huggingface_hub, "login", lambda *a, **k: called.append(1))
    monkeypatch.setattr(ident, "can_prompt", lambda: False)
    with pytest.raises(IdentityError, match="--login needs an interactive terminal"):
        resolve_identity(settings(hub), login=True)
    assert called == []


def test_can_prompt_is_false_in_ci(monkeypatch: pytest.MonkeyPatch) -> None:
    class Tty:
        def isatty(self) -> bool:
            return True

    monkeypatch.setattr("sys.stdin", Tty())
    assert ident.can_prompt() is True
    monkeypatch.setenv("CI", "true")
    assert ident.can_prompt() is False


def test_login_runs_the_interactive_flow_on_a_terminal(hub: FakeHub, monkeypatch: pytest.MonkeyPatch) -> None:
    def fake_login() -> None:  # what huggingface_hub.login() leaves behind: the saved token
        Path(hf_constants.HF_TOKEN_PATH).parent.mkdir(parents=True, exist_ok=True)
        Path(hf_constants.HF_TOKEN_PATH).write_text(OTHER_TOKEN)

    monkeypatch.setattr(huggingface_hub, "login", fake_login)
    monkeypatch.setattr(ident, "can_prompt", lambda: True)
    assert resolve_identity(settings(hub), login=True).username == "bob"


@pytest.mark.parametrize(
    ("space_id", "override", "expected"),
    [
        ("alice/roundtable", None, "https://huggingface.co/spaces/alice/roundtable/tree/main"),
        (None, "alice/my-agent.v2", "https://huggingface.co/spaces/alice/my-agent.v2/tree/main"),
        ("x/y", "https://huggingface.co/spaces/alice/rt", "https://huggingface.co/spaces/alice/rt/tree/main"),
        (None, "https://huggingface.co/spaces/alice/rt/tree/dev", "https://huggingface.co/spaces/alice/rt/tree/dev"),
    ],
)
def test_agent_code_url(space_id, override, expected: str) -> None:
    assert agent_code_url(space_id, override) == expected


@pytest.mark.parametrize(
    ("space_id", "override", "message"),
    [
        (None, None, "set SPACE_ID"),
        ("", "", "set SPACE_ID"),
        ("None", None, "is not <owner>/<name>"),
        (None, "https://github.com/alice/rt", "is not a Space"),
        (None, "https://huggingface.co/alice/rt", "is not a Space"),
        (None, "alice/rt/extra", "is not a Space"),
    ],
)
def test_agent_code_url_refuses_what_is_not_a_space(space_id, override, message: str) -> None:
    with pytest.raises(AgentCodeError, match=message):
        agent_code_url(space_id, override)


async def test_submit_answers_sends_the_verified_name_and_clean_answers() -> None:
    with ScoringServer() as server:
        result = await submit_answers(
            ScoringAPI(server.url),
            Identity("alice", "oauth"),
            "https://huggingface.co/spaces/alice/rt/tree/main",
            [{"task_id": "inv-0001", "submitted_answer": " 12 "}, {"task_id": "inv-0002", "submitted_answer": ""}],
        )
    assert result.correct_count == 1 and result.username == "alice"
    assert server.submissions == [
        {
            "username": "alice",
            "agent_code": "https://huggingface.co/spaces/alice/rt/tree/main",
            "answers": [{"task_id": "inv-0001", "submitted_answer": "12"}, {"task_id": "inv-0002", "submitted_answer": ""}],
        }
    ]
