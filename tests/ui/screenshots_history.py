"""docs/history.png: the thread list with a resumed debate (run: `.venv/bin/python -m tests.ui.screenshots_history`).

The real app with history on (SQLite), a scripted debate asked once, the page reloaded, the debate reopened from
the thread list."""

from __future__ import annotations

import sys
from pathlib import Path

from tests.ui import scenarios as sc
from tests.ui.harness import (
    REPO,
    ChainlitApp,
    app_env,
    ask,
    final_answers,
    launch,
    new_context,
    open_chat,
    scratch_dir,
)

OUT = REPO / "docs" / "history.png"


def history_screenshot(out: Path = OUT) -> Path:
    from playwright.sync_api import expect, sync_playwright

    with scratch_dir("roundtable-shot-history-") as root:
        llm = sc.build(root / "ticks.txt").server(token_delay=0.001)
        app = ChainlitApp(app_env(root, llm, SANDBOX_BACKEND="subprocess", ROUNDTABLE_HISTORY="on"), root)
        try:
            app.start()
            with sync_playwright() as pw:
                browser = launch(pw)
                context = new_context(browser, viewport={"width": 1280, "height": 900})
                page = context.new_page()
                open_chat(page, app.url)
                ask(page, sc.DEBATE_QUESTION)
                expect(final_answers(page).first).to_be_visible(timeout=90_000)
                expect(page.locator("#stop-button")).to_have_count(0, timeout=90_000)
                app.restart()
                page.goto(app.url + "/")
                entry = page.locator("#thread-history [id^='thread-']:not(#thread-options)").first
                expect(entry).to_be_visible(timeout=30_000)
                entry.click()
                expect(final_answers(page).first).to_be_visible(timeout=30_000)
                page.wait_for_timeout(500)
                out.parent.mkdir(parents=True, exist_ok=True)
                page.screenshot(path=str(out))
                browser.close()
        finally:
            app.stop()
            llm.stop()
    return out


if __name__ == "__main__":
    print(history_screenshot(Path(sys.argv[1]) if len(sys.argv) > 1 else OUT))
