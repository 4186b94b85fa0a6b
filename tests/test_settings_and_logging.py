"""Settings never show secrets; logs mask them wherever they appear."""

from __future__ import annotations

import io
import json
import logging
import sys
from collections.abc import Iterator

import pytest
from loguru import logger

from config.log import mask, setup_logging
from config.settings import Settings


@pytest.fixture(autouse=True)
def _restore_logging() -> Iterator[None]:
    yield
    logger.remove()
    logger.add(sys.stderr)
    logging.basicConfig(handlers=[logging.StreamHandler()], level=logging.WARNING, force=True)


KEY = "sk-proj-verysecretvalue1234567890"
TOKEN = "hf_abcdefghijklmnopqrstuvwxyz"


def test_settings_read_env_and_mask_secrets(monkeypatch) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", KEY)
    monkeypatch.setenv("HF_TOKEN", TOKEN)
    monkeypatch.setenv("ROUNDTABLE_MAX_TURNS", "7")
    monkeypatch.setenv("LLM_PROVIDER", "hf")
    s = Settings(_env_file=None)  # type: ignore[call-arg]
    assert s.max_turns == 7 and s.llm_provider == "hf"
    assert s.openai_api_key is not None and s.openai_api_key.get_secret_value() == KEY
    for text in (repr(s), str(s), s.model_dump_json()):
        assert KEY not in text and TOKEN not in text


def test_empty_variables_count_as_unset(monkeypatch, tmp_path) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", "")
    env = tmp_path / ".env"
    env.write_text("ANTHROPIC_API_KEY=\nLLM_PROVIDER=auto\n")
    s = Settings(_env_file=str(env))  # type: ignore[call-arg]
    assert s.openai_api_key is None and s.anthropic_api_key is None


def test_settings_read_a_dotenv_file(tmp_path, monkeypatch) -> None:
    env = tmp_path / ".env"
    env.write_text(f"ANTHROPIC_API_KEY={KEY}\nROUNDTABLE_TEAM=teams/solo.yaml\n")
    s = Settings(_env_file=str(env))  # type: ignore[call-arg]
    assert s.anthropic_api_key is not None and str(s.team) == "teams/solo.yaml"


def test_logs_mask_known_secrets_and_key_shapes() -> None:
    sink = io.StringIO()
    setup_logging(Settings(_env_file=None, OPENAI_API_KEY=KEY, HF_TOKEN=TOKEN, LOG_LEVEL="DEBUG"), sink=sink)  # type: ignore[call-arg]
    logger.info("calling with key {} and token {}", KEY, TOKEN)
    logger.bind(run_id="r1").debug("header Authorization: Bearer abc.def-ghi_jkl")
    logging.getLogger("some.library").warning("library says %s", KEY)  # std logging is routed and masked too
    logger.info("an unrelated key sk-ant-0123456789abcdef leaked by a provider error")
    out = sink.getvalue()
    assert KEY not in out and TOKEN not in out and "abc.def-ghi_jkl" not in out and "0123456789abcdef" not in out
    assert out.count("***") >= 5
    assert "[r1 -]" in out


def test_json_logs_carry_run_and_question_ids() -> None:
    sink = io.StringIO()
    setup_logging(Settings(_env_file=None, LOG_FORMAT="json"), sink=sink)  # type: ignore[call-arg]
    logger.bind(run_id="r9", question_id="q-7").info("hello {}", KEY)
    record = json.loads(sink.getvalue().splitlines()[-1])["record"]
    assert record["extra"]["run_id"] == "r9" and record["extra"]["question_id"] == "q-7"
    assert KEY not in record["message"]


def test_mask_leaves_ordinary_text() -> None:
    assert mask("the skyline of hf") == "the skyline of hf"
