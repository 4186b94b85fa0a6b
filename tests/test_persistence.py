"""Run dirs and the SQLite history survive a Space restart: on a (fake) /data when writable, else pushed to a
private dataset repo on a fake Hub with CommitScheduler and downloaded back at the next start; secrets never leave."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from pathlib import Path

import pytest

from config.settings import Settings
from tests.fakes.hub_commits import HubCommits
from ui import persistence

TOKEN = "hf_persistTESTtoken000111"
REPO = "tester/roundtable-state"


@pytest.fixture(autouse=True)
def fresh() -> Iterator[None]:
    persistence.reset_for_tests()
    yield
    persistence.reset_for_tests()


def _settings(cache: Path, **env: str) -> Settings:
    return Settings(_env_file=None, ROUNDTABLE_CACHE_DIR=str(cache), **env)  # type: ignore[arg-type]


def _write_run(cache: Path, name: str, text: str) -> Path:
    run = cache / persistence.RUNS_DIRNAME / name
    run.mkdir(parents=True, exist_ok=True)
    (run / "results.jsonl").write_text(text, encoding="utf-8")
    return run


def _write_history(db: Path, value: str) -> None:
    db.parent.mkdir(parents=True, exist_ok=True)
    con = sqlite3.connect(db)
    con.execute("CREATE TABLE IF NOT EXISTS threads (id TEXT PRIMARY KEY, name TEXT)")
    con.execute("INSERT INTO threads VALUES (?, ?)", (value, value))
    con.commit()
    con.close()


def _threads(db: Path) -> list[str]:
    con = sqlite3.connect(db)
    try:
        return [r[0] for r in con.execute("SELECT name FROM threads ORDER BY name")]
    finally:
        con.close()


def test_on_a_space_with_writable_data_run_dirs_and_history_live_there(tmp_path: Path) -> None:
    data = tmp_path / "data"
    data.mkdir()
    settings = _settings(tmp_path / "cache1", SPACE_ID="me/roundtable")
    _write_run(settings.cache_dir, "debate-abc", '{"task_id": "t1"}\n')  # written before the link existed
    p = persistence.install(settings, store_history=True, data_root=data)
    assert p.plan.mode == "disk"
    assert p.history_db == data / "roundtable" / persistence.HISTORY_FILENAME
    _write_run(settings.cache_dir, "debate-abc", '{"task_id": "t1"}\n{"task_id": "t2"}\n')
    persistence.reset_for_tests()

    # the restart: a fresh container disk (new cache dir), the same /data
    restarted = _settings(tmp_path / "cache2", SPACE_ID="me/roundtable")
    persistence.install(restarted, store_history=True, data_root=data)
    results = restarted.cache_dir / persistence.RUNS_DIRNAME / "debate-abc" / "results.jsonl"
    assert results.read_text(encoding="utf-8").count("task_id") == 2


def test_a_space_without_data_or_a_repo_says_what_is_lost(tmp_path: Path) -> None:
    plan = persistence.choose(_settings(tmp_path / "c", SPACE_ID="me/roundtable"), data_root=tmp_path / "absent")
    assert plan.mode == "none" and "lost" in plan.reason
    no_token = persistence.choose(_settings(tmp_path / "c", SPACE_ID="me/roundtable", ROUNDTABLE_PERSIST_REPO=REPO),
                                  data_root=tmp_path / "absent")
    assert no_token.mode == "none" and "HF_TOKEN" in no_token.reason


def test_without_data_run_dirs_and_history_go_to_a_private_dataset_and_come_back(tmp_path: Path) -> None:
    hub = HubCommits(TOKEN).start()
    try:
        env = {"SPACE_ID": "me/roundtable", "ROUNDTABLE_PERSIST_REPO": REPO, "HF_TOKEN": TOKEN, "HF_ENDPOINT": hub.url,
               "OPENAI_API_KEY": "sk-secret-never-pushed-0123"}
        first = _settings(tmp_path / "cache1", **env)
        p = persistence.install(first, store_history=True, data_root=tmp_path / "no-data")
        assert p.plan.mode == "hub"
        _write_run(first.cache_dir, "debate-abc", '{"task_id": "t1", "answer": "4600"}\n')
        _write_run(first.cache_dir, "debate-abc", "")  # ensure the dir exists
        (first.cache_dir / persistence.RUNS_DIRNAME / "debate-abc" / "results.jsonl").write_text('{"answer": "4600"}\n')
        (first.cache_dir / persistence.RUNS_DIRNAME / "debate-abc" / "leak.log").write_text("key=sk-secret-never-pushed-0123\n")
        _write_history(p.history_db, "first debate")
        (first.cache_dir / ".env").write_text("OPENAI_API_KEY=sk-secret-never-pushed-0123\n")
        p.push_now()

        repo = hub.repos[REPO]
        assert repo.private
        assert "runs/debate-abc/results.jsonl" in repo.files
        assert "history/history.sqlite3" in repo.files
        assert all(b"sk-secret-never-pushed" not in c for c in repo.files.values())
        assert not any(path.endswith((".env", "leak.log")) for path in repo.files)
        assert all(ok for _, _, ok in hub.requests)  # every call carried the Space's token
        persistence.reset_for_tests()

        # the restart: an empty disk; the dataset brings the run dir and the history back
        second = _settings(tmp_path / "cache2", **env)
        p2 = persistence.install(second, store_history=True, data_root=tmp_path / "no-data")
        restored = second.cache_dir / persistence.RUNS_DIRNAME / "debate-abc" / "results.jsonl"
        assert restored.read_text(encoding="utf-8") == '{"answer": "4600"}\n'
        assert _threads(p2.history_db) == ["first debate"]
    finally:
        persistence.reset_for_tests()
        hub.stop()


def test_history_is_not_pushed_when_conversations_are_not_stored(tmp_path: Path) -> None:
    hub = HubCommits(TOKEN).start()
    try:
        settings = _settings(tmp_path / "cache", SPACE_ID="me/roundtable", ROUNDTABLE_PERSIST_REPO=REPO, HF_TOKEN=TOKEN,
                             HF_ENDPOINT=hub.url)
        p = persistence.install(settings, store_history=False, data_root=tmp_path / "no-data")
        _write_run(settings.cache_dir, "debate-abc", '{"answer": "1"}\n')
        _write_history(p.history_db, "should stay local")
        p.push_now()
        assert "runs/debate-abc/results.jsonl" in hub.repos[REPO].files
        assert not any(path.startswith("history/") for path in hub.repos[REPO].files)
    finally:
        persistence.reset_for_tests()
        hub.stop()


def test_a_local_run_keeps_everything_in_the_cache_dir(tmp_path: Path) -> None:
    settings = _settings(tmp_path / "cache")
    plan = persistence.choose(settings, data_root=tmp_path)  # a /data that exists, but this is no Space
    assert plan.mode == "none"
    assert persistence.history_file(settings, plan) == settings.cache_dir / persistence.HISTORY_FILENAME


def test_a_persistence_repo_that_is_the_benchmarks_data_is_refused() -> None:
    from config.settings import Settings
    from ui.persistence import choose

    for repo in ("gaia-benchmark/GAIA", "someone/gaia-validation-answers"):
        plan = choose(Settings(_env_file=None, ROUNDTABLE_PERSIST_REPO=repo, HF_TOKEN="hf_test_token_000"))  # type: ignore[call-arg]
        assert plan.mode == "none" and plan.repo_id is None and "refused" in plan.reason
    plan = choose(Settings(_env_file=None, ROUNDTABLE_PERSIST_REPO="alice/roundtable-runs", HF_TOKEN="hf_test_token_000"))  # type: ignore[call-arg]
    assert plan.mode == "hub" and plan.repo_id == "alice/roundtable-runs"
