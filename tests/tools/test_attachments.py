"""evaluation/attachments.py: scoring API first, the gated dataset's one file as the fallback, cached by task id."""

from __future__ import annotations

import io
from pathlib import Path

import pytest
from loguru import logger

from config.settings import Settings
from evaluation.attachments import AttachmentError, cached_path, fetch_attachment
from tests.fakes.hf_hub import FakeHub
from tests.fakes.scoring_api import ScoringServer

TOKEN = "hf_testtokenforthefakehub000000000"
REPO = "gaia-benchmark/GAIA"


def _settings(tmp_path: Path, api: str, hub: str, token: str | None = TOKEN) -> Settings:
    values = {"SCORING_API_URL": api, "HF_ENDPOINT": hub, "ROUNDTABLE_CACHE_DIR": str(tmp_path / "cache")}
    if token:
        values["HF_TOKEN"] = token
    return Settings(_env_file=None, **values)  # type: ignore[call-arg]


@pytest.fixture
def hub():
    with FakeHub(tokens={TOKEN: "tester"}) as fake:
        fake.add_file(REPO, "2023/validation/task-0007.mp3", b"ID3 invented audio")
        fake.add_file(REPO, "2023/validation/sheet.xlsx", b"PK invented workbook")
        fake.add_file(REPO, "2023/validation/hollow.py", b"")
        fake.add_file(REPO, "2023/validation/metadata.jsonl", b'{"task_id": "task-0007", "Final answer": "secret"}\n')
        yield fake


@pytest.fixture
def api():
    with ScoringServer(questions=[], files={"task-0001": ("notes.txt", b"served by the scoring API")}) as server:
        yield server


async def test_the_scoring_api_comes_first_and_the_file_is_cached(tmp_path, api, hub) -> None:
    settings = _settings(tmp_path, api.url, hub.url)
    path = await fetch_attachment("task-0001", "notes.txt", settings=settings)
    assert path == tmp_path / "cache" / "attachments" / "task-0001" / "notes.txt"
    assert path.read_bytes() == b"served by the scoring API"
    assert hub.requests == []
    again = await fetch_attachment("task-0001", "notes.txt", settings=settings)
    assert again == path and len(api.requests_to("/files/")) == 1  # the second call did no network


async def test_a_404_falls_back_to_exactly_one_file_of_the_dataset(tmp_path, api, hub) -> None:
    settings = _settings(tmp_path, api.url, hub.url)
    path = await fetch_attachment("task-0007", "task-0007.mp3", settings=settings)
    assert path.read_bytes() == b"ID3 invented audio" and path.parent.name == "task-0007"
    assert set(hub.paths_requested()) == {f"/datasets/{REPO}/resolve/main/2023/validation/task-0007.mp3"}
    assert all(r.token == TOKEN for r in hub.requests)
    assert sorted(p.name for p in path.parent.iterdir()) == ["task-0007.mp3"]  # no download leftovers
    before = len(hub.requests)
    await fetch_attachment("task-0007", "task-0007.mp3", settings=settings)
    assert len(hub.requests) == before


async def test_a_scoring_api_outage_also_falls_back(tmp_path, api, hub) -> None:
    api.fail("files", 503)
    path = await fetch_attachment("task-0002", "sheet.xlsx", settings=_settings(tmp_path, api.url, hub.url))
    assert path.read_bytes() == b"PK invented workbook"
    unreachable = await fetch_attachment("task-0003", "sheet.xlsx", settings=_settings(tmp_path / "b", "http://127.0.0.1:9", hub.url))
    assert unreachable.read_bytes() == b"PK invented workbook"


async def test_failures_say_what_to_set_and_never_show_the_token(tmp_path, api, hub) -> None:
    captured = io.StringIO()
    sink = logger.add(captured, level="DEBUG")
    try:
        with pytest.raises(AttachmentError) as no_token:
            await fetch_attachment("task-0007", "task-0007.mp3", settings=_settings(tmp_path, api.url, hub.url, token=None))
        message = str(no_token.value)
        assert "HTTP 404" in message and "gated" in message and "HF_TOKEN" in message
        bad = "hf_wrongtokenwrongtokenwrong0000000"
        with pytest.raises(AttachmentError) as wrong:
            await fetch_attachment("task-0007", "task-0007.mp3", settings=_settings(tmp_path, api.url, hub.url, token=bad))
        assert bad not in str(wrong.value) and "HF_TOKEN" in str(wrong.value)
        with pytest.raises(AttachmentError, match="has no file 2023/validation/absent.png"):
            await fetch_attachment("task-0009", "absent.png", settings=_settings(tmp_path, api.url, hub.url))
        with pytest.raises(AttachmentError, match=r"empty \(0 bytes\)"):
            await fetch_attachment("task-0010", "hollow.py", settings=_settings(tmp_path, api.url, hub.url))
        assert not cached_path("task-0010", "hollow.py", _settings(tmp_path, api.url, hub.url)).exists()
    finally:
        logger.remove(sink)
    assert TOKEN not in captured.getvalue() and "hf_wrongtoken" not in captured.getvalue()


REFUSED = [
    ("task-0007", "metadata.jsonl"),
    ("task-0007", "metadata.parquet"),
    ("task-0007", "validation-00000-of-00001.parquet"),
    ("task-0007", "../metadata.jsonl"),
    ("task-0007", "2023/validation/metadata.jsonl"),
    ("task-0007", ".hidden"),
    ("../../etc", "passwd.txt"),
    ("task/0007", "a.txt"),
]


async def test_answer_files_and_odd_names_are_refused_before_any_request(tmp_path, api, hub) -> None:
    settings = _settings(tmp_path, api.url, hub.url)
    for task_id, file_name in REFUSED:
        with pytest.raises(AttachmentError, match="refused"):
            await fetch_attachment(task_id, file_name, settings=settings)
    assert hub.requests == [] and api.requests_to("/files/") == []
