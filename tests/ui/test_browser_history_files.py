"""Files of a stored chat in a real browser, on SQLite and on a real PostgreSQL server: a user sends two csv files
(one with a hostile name) with a question; after a reload, reopening the thread from the list shows both file
chips under the names as given, and each chip's link gives back the very bytes sent. Deleting the thread from
the list deletes its files from the disk, and their old links give nothing any more."""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import require_system
from tests.fakes.scripted_llm import ScriptedLLM
from tests.ui import scenarios as sc
from tests.ui.harness import ChainlitApp, ask, final_answers, open_chat, wait_for
from tests.ui.test_browser_history import _stack, open_thread, stored_env, threads

try:
    from playwright.sync_api import expect
except ImportError:  # a dev dependency; CI must fail, not skip, without it
    if require_system():
        raise
    pytest.skip("playwright is not installed (pip install -e '.[dev]')", allow_module_level=True)

RUN_TIMEOUT_MS = 90_000
HOSTILE_NAME = sc.HOSTILE_NAMES[0]  # "<img src=x onerror=alert(2)>.csv"
HOSTILE_CONTENT = "name,note\nwren,\"<b>not markup</b>\"\n"
THREAD_NAME = sc.UPLOAD_QUESTION[:25]

_FETCH_JS = """
async (href) => {
  const r = await fetch(href);
  return {status: r.status, body: await r.text(), type: r.headers.get("content-type"),
          disposition: r.headers.get("content-disposition"), nosniff: r.headers.get("x-content-type-options")};
}
"""


@dataclass
class Stack:
    app: ChainlitApp
    llm: ScriptedLLM
    root: Path

    @property
    def files_dir(self) -> Path:
        return self.root / "cache" / "history-files"  # a local run: next to the SQLite file in the cache dir


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def stored(request: pytest.FixtureRequest, browser: Any, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    root = tmp_path_factory.mktemp(f"ui-history-files-{request.param}")
    app, llm = _stack(root, **stored_env(request.param))
    try:
        app.start()
        yield Stack(app, llm, root)
    finally:
        app.stop()
        llm.stop()


def stored_files(stack: Stack) -> list[Path]:
    return sorted(p for p in stack.files_dir.rglob("*") if p.is_file() and not p.name.endswith(".json"))


def chip(page: Any, name: str) -> Any:
    """A file element's chip: a link named by the file's name (Chainlit's `<a class="inline-file" download=...>`)."""
    return page.locator("a.inline-file").filter(has=page.get_by_text(name, exact=True))


def test_files_sent_with_a_question_come_back_with_the_thread_and_go_when_it_is_deleted(stored: Stack, page: Any,
                                                                                         tmp_path: Path) -> None:
    ledger = tmp_path / sc.UPLOAD_FILE_NAME
    ledger.write_text(sc.UPLOAD_CONTENT, encoding="utf-8")
    hostile = tmp_path / HOSTILE_NAME
    hostile.write_text(HOSTILE_CONTENT, encoding="utf-8")
    sent = {sc.UPLOAD_FILE_NAME: sc.UPLOAD_CONTENT, HOSTILE_NAME: HOSTILE_CONTENT}

    open_chat(page, stored.app.url)
    ask(page, sc.UPLOAD_QUESTION, files=[ledger, hostile])
    expect(final_answers(page).first).to_contain_text(f"Final answer: {sc.UPLOAD_TOTAL}", timeout=RUN_TIMEOUT_MS)
    expect(page.locator("#stop-button")).to_have_count(0, timeout=RUN_TIMEOUT_MS)
    assert wait_for(lambda: len(stored_files(stored)) == 2, timeout=15), (stored_files(stored), stored.app.log()[-3000:])
    assert sorted(p.read_text(encoding="utf-8") for p in stored_files(stored)) == sorted(sent.values())
    assert all(re.fullmatch(r"[0-9a-f]{64}", p.name) for p in stored_files(stored))  # no name of the user's on disk

    # a reload forgets the session (and Chainlit's own copies of the uploads): the stored thread brings them back
    page.reload()
    open_thread(page, THREAD_NAME)
    hrefs = {}
    for name, content in sent.items():
        link = chip(page, name)
        expect(link).to_have_count(1, timeout=30_000)
        expect(link).to_be_visible()
        href = link.get_attribute("href")
        assert href and "/history-files/" in href, href
        got = page.evaluate(_FETCH_JS, href)
        assert got["status"] == 200, got
        assert got["body"] == content
        assert got["type"] == "application/octet-stream" and got["nosniff"] == "nosniff"
        assert got["disposition"].startswith("attachment;"), got
        hrefs[name] = href
    expect(page.locator("img[src='x']")).to_have_count(0)  # the hostile name stayed text

    # deleting the thread deletes its files: from the disk, and their links answer 404
    entry = threads(page).filter(has_text=THREAD_NAME).first
    entry.hover()
    entry.locator("#thread-options").click()
    page.locator("#delete-thread").click()
    page.get_by_role("button", name="Confirm").click()
    expect(threads(page).filter(has_text=THREAD_NAME)).to_have_count(0, timeout=30_000)
    assert wait_for(lambda: not stored_files(stored), timeout=15), stored_files(stored)
    assert not [p for p in stored.files_dir.rglob("*") if p.is_file()]  # the sidecars too
    for href in hrefs.values():
        assert page.evaluate(_FETCH_JS, href)["status"] == 404
