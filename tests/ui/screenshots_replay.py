"""PNGs of a replay and of the compare view for the README, made like `tests/ui/screenshots.py` (the real app, the
scripted model, the local scoring API, two real `submit.py run` run dirs; nothing leaves 127.0.0.1).

    python -m tests.ui.screenshots_replay [--out docs]     # writes replay.png and compare.png
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

from tests.fakes.hf_hub import FakeHub
from tests.fakes.scoring_api import ScoringServer
from tests.fakes.scripted_llm import ScriptedLLM
from tests.ui.harness import (
    SHOT_WIDTH,
    evaluation_table,
    launch,
    new_context,
    scratch_dir,
    screenshots_main,
    shoot_span,
    stop_all,
)
from tests.ui.test_browser_replay_compare import (
    HF_TOKEN,
    Q_CODE,
    QUESTIONS,
    SPACE_ID,
    TRUTH,
    cli_run_dirs,
    respond,
    start_app,
)


def _shoot(page: Any, top: Any, bottom: Any, path: Path) -> None:
    """Save the page from `top` to `bottom`, with `top` scrolled to the top of the chat (the evaluation and the
    lists above it would otherwise push the replay below the window)."""
    page.wait_for_timeout(400)
    top.evaluate("(e) => e.scrollIntoView({block: 'start'})")
    page.wait_for_timeout(300)
    shoot_span(page, top, bottom, path)


def take(out: Path) -> None:
    from playwright.sync_api import expect, sync_playwright

    out.mkdir(parents=True, exist_ok=True)
    with scratch_dir("roundtable-shots-replay-") as root:
        llm = ScriptedLLM({"default": respond}, token_delay=0.001).start()
        scoring = ScoringServer(QUESTIONS, answers=TRUTH).start()
        hub = FakeHub(tokens={HF_TOKEN: "alice"}).start()
        runs = root / "runs"
        app = None
        try:
            cli_run_dirs(root, llm, scoring, runs)
            app = start_app(root / "app", llm, scoring, hub, runs, SPACE_ID=SPACE_ID)
            with sync_playwright() as pw:
                browser = launch(pw)
                page = new_context(browser, viewport={"width": SHOT_WIDTH, "height": 3600}, device_scale_factor=1).new_page()
                table = evaluation_table(page, app.url)
                table.get_by_role("button", name="Replays of past runs").click()
                page.locator(".step").filter(has_text="(newest first)").last.get_by_role("button", name="cli-debate · debate").click()
                page.locator(".step").filter(has_text="Run dir cli-debate").last.get_by_role(
                    "button", name=f"Open debate: {Q_CODE}").click()
                header = page.locator(".step").filter(has_text=f"Replay of {Q_CODE}").last
                final = page.locator('.step[data-step-type="assistant_message"]').filter(has_text="Final answer: 12").last
                expect(final).to_be_visible(timeout=30_000)
                for name in ("calculator", "run_python"):
                    page.locator(f'[id^="step-{name}"]').last.click()
                _shoot(page, header, final, out / "replay.png")

                page = new_context(browser, viewport={"width": SHOT_WIDTH, "height": 3600}, device_scale_factor=1).new_page()
                table = evaluation_table(page, app.url)
                table.get_by_role("button", name="Compare run dirs").click()
                pick = page.locator(".step").filter(has_text="Pick the run dirs to compare").last
                pick.get_by_role("button", name="＋ cli-debate · debate").click()
                page.locator(".step").filter(has_text="Selected for comparison").last.wait_for()
                pick.get_by_role("button", name="＋ cli-solo · solo").click()
                page.locator(".step").filter(has_text="Selected for comparison").last.get_by_role(
                    "button", name="Compare the 2: labels of the last eval").click()
                view = page.locator(".step").filter(has_text="Comparison of 2 run dirs").last
                expect(view).to_contain_text("3 common labelled questions", timeout=30_000)
                for name in ("accuracy.png", "cost-time-tokens.png", "agreement.png"):
                    image = view.get_by_role("img", name=name)
                    image.scroll_into_view_if_needed()
                    page.wait_for_function("img => img.complete && img.naturalWidth > 0", arg=image.element_handle())
                _shoot(page, view, view, out / "compare.png")
                browser.close()
        finally:
            stop_all(app, llm, scoring, hub)


def main(argv: list[str] | None = None) -> int:
    return screenshots_main(__doc__, take, argv)


if __name__ == "__main__":
    sys.exit(main())
