"""The chat handlers without a browser: what the welcome says when no model is configured or the team YAML
is broken, the settings panel's mapping onto Settings, and uploads keeping their names."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import pytest

from config.settings import get_settings
from tests.conftest import settings_for
from tests.fakes.scripted_llm import ScriptedLLM
from tests.ui.fake_session import chainlit_session
from ui import chat, options
from ui.uploads import safe_name, stage_uploads

BROKEN = "name: broken\nagents:\n  - name: solo\n    role: solo\n    tools: [serch]\n"


@pytest.fixture
def broken_team(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    path = tmp_path / "mine.yaml"
    path.write_text(BROKEN, encoding="utf-8")
    monkeypatch.setenv("ROUNDTABLE_TEAM", str(path))
    get_settings.cache_clear()
    return path.resolve()


def _actions(rec) -> list[str]:
    return [a["name"] for m in rec.messages() for a in (m.get("actions") or [])] + [
        d["name"] for e, d in rec.events if e == "action"
    ]


async def test_without_a_model_the_app_starts_and_names_the_variable_to_set(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LLM_PROVIDER", "openai")
    get_settings.cache_clear()
    with chainlit_session() as rec:
        await chat.start()
    assert "OPENAI_API_KEY" in rec.texts() and "No model configured" in rec.texts()
    assert [d for e, d in rec.events if e == "chat_settings"], "the settings panel is still offered"
    assert chat.EVALUATION_ACTION in _actions(rec)


async def test_with_no_key_at_all_the_welcome_says_which_keys_give_a_hosted_model(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("models.providers.local_available", lambda: False)
    get_settings.cache_clear()
    with chainlit_session() as rec:
        await chat.start()
    text = rec.texts()
    for var in ("OPENAI_API_KEY", "ANTHROPIC_API_KEY", "HF_TOKEN", "OPENAI_BASE_URL"):
        assert var in text


async def test_a_broken_team_yaml_shows_its_error_in_the_chat_and_runs_nothing(broken_team: Path) -> None:
    with chainlit_session() as rec:
        await chat.start()
        assert "The team config is broken" in rec.texts() and "unknown tool 'serch'" in rec.texts()
        before = len(rec.events)
        await chat.answer(SimpleNamespace(content="Does it run?", elements=[]))
    later = rec.events[before:]
    assert not [d for e, d in later if e == "new_message" and d.get("type") == "run"]
    assert "unknown tool 'serch'" in str(later)


async def test_picking_a_team_in_the_settings_checks_it_and_says_what_changed(broken_team: Path) -> None:
    settings = get_settings()
    labels = list(options.team_options(settings))
    assert {"debate", "solo", "small"} <= set(labels) and str(broken_team) in labels
    with chainlit_session() as rec:
        await chat.start()
        await chat.settings_changed({"team": "solo", "provider": options.label_of("anthropic"), "model": "", "show_code": False})
        choices = chat.current_choices()
        assert (choices.team, choices.provider, choices.show_code) == ("solo", "anthropic", False)
        update = rec.messages()[-1]["output"]
        assert "team **solo**" in update and "provider **anthropic**" in update and "code runs hidden" in update
        assert "ANTHROPIC_API_KEY" in update  # the chosen provider has no key: said at once
        await chat.settings_changed({"team": "no-such-team"})
        assert "unknown team 'no-such-team'" in rec.messages()[-1]["output"]
        assert chat.current_choices().team == "solo"


async def test_a_question_runs_the_chosen_team_with_the_sessions_model(llm_server, monkeypatch: pytest.MonkeyPatch) -> None:
    server: ScriptedLLM = llm_server({"solo": ["Easy.\nFINAL ANSWER: 3"]})
    base = settings_for(server)
    monkeypatch.setattr(chat, "base_settings", lambda: base)
    with chainlit_session() as rec:
        await chat.settings_changed({"team": "solo", "model": "gpt-4.1-nano"})
        await chat.answer(SimpleNamespace(content="What is one plus two?", elements=[]))
    assert "Final answer: 3" in rec.texts()
    assert [r.body["model"] for r in server.requests] == ["gpt-4.1-nano"]


def test_provider_and_model_choices_override_settings_for_the_session_only() -> None:
    base = get_settings()
    choices = options.parse({"team": "debate", "provider": options.label_of("hf"), "model": " Qwen/Qwen3 "}, base, options.default_choices(base))
    session = options.run_settings(base, choices)
    assert (session.llm_provider, session.llm_model) == ("hf", "Qwen/Qwen3")
    assert (base.llm_provider, base.llm_model) == ("auto", None)
    with pytest.raises(options.ChoiceError):
        options.parse({"provider": "magic"}, base, choices)


def test_uploads_keep_their_names_safely_and_a_missing_file_is_reported(tmp_path: Path) -> None:
    a = tmp_path / "u1.csv"
    b = tmp_path / "u2.csv"
    a.write_text("x", encoding="utf-8")
    b.write_text("y", encoding="utf-8")
    staged = stage_uploads([
        SimpleNamespace(name="sales.csv", path=str(a)),
        SimpleNamespace(name="../../sales.csv", path=str(b)),
        SimpleNamespace(name="gone.txt", path=str(tmp_path / "missing")),
    ])
    assert staged.folder is not None
    assert [p.name for p in staged.paths] == ["sales.csv", "sales (2).csv"]
    assert [p.read_text() for p in staged.paths] == ["x", "y"] and all(p.parent == staged.folder for p in staged.paths)
    assert staged.given == {"sales.csv": "sales.csv", "sales (2).csv": "../../sales.csv"}
    assert staged.unreadable == ["gone.txt"]
    assert safe_name(".hidden<>.txt") == "hidden__.txt" and safe_name("") == "attachment"
