"""`make screenshots`: PNGs of a debate, of its speakers and verdicts (desktop and phone), and of the evaluation
table for the README, made with the browser test harness (the real app, the scripted model, the local scoring
API; nothing leaves 127.0.0.1).

    python -m tests.ui.screenshots [--out docs]
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

from tests.fakes.hf_hub import FakeHub
from tests.fakes.scoring_api import ScoringServer
from tests.ui import scenarios as sc
from tests.ui.harness import (
    SHOT_WIDTH,
    ChainlitApp,
    app_env,
    ask,
    evaluation_table,
    final_answers,
    launch,
    new_context,
    open_chat,
    scratch_dir,
    screenshots_main,
    shoot_span,
    stop_all,
)

HF_TOKEN = "hf_screenshotTOKEN0123456"


def _shoot(page: Any, top: Any, bottom: Any, path: Path) -> None:
    """Save the part of the page from `top` to `bottom` (tall viewport, so nothing has to scroll)."""
    page.wait_for_timeout(400)  # let the last re-render and the syntax highlighting settle
    # Chainlit scrolls the newest question to the top of its message pane: scroll back to show it all.
    page.evaluate("""() => { for (const el of document.querySelectorAll('*')) {
        const s = getComputedStyle(el).overflowY;
        if ((s === 'auto' || s === 'scroll') && el.scrollHeight > el.clientHeight) el.scrollTop = 0; } }""")
    page.wait_for_timeout(200)
    shoot_span(page, top, bottom, path)


def _shoot_phone(page: Any, target: Any, path: Path) -> None:
    """What a phone shows with `target` at the top of the chat: the whole screen, composer included."""
    target.evaluate("(e) => e.scrollIntoView({block: 'start'})")
    page.wait_for_timeout(400)
    page.screenshot(path=str(path))
    print(f"wrote {path}")


def take(out: Path) -> None:
    from playwright.sync_api import expect, sync_playwright

    out.mkdir(parents=True, exist_ok=True)
    with scratch_dir("roundtable-shots-") as root:
        llm = sc.build_speakers(root / "ticks.txt").server(token_delay=0.002)
        scoring = ScoringServer(sc.EVAL_QUESTIONS, answers=sc.EVAL_ANSWERS, files=sc.EVAL_FILES).start()
        hub = FakeHub(tokens={HF_TOKEN: "alice"}).start()
        env = app_env(root, llm, SCORING_API_URL=scoring.url, HF_ENDPOINT=hub.url, HF_TOKEN=HF_TOKEN,
                      SPACE_ID="alice/roundtable", SANDBOX_BACKEND="subprocess")
        app = ChainlitApp(env, root)
        try:
            app.start()
            with sync_playwright() as pw:
                browser = launch(pw)
                context = new_context(browser, viewport={"width": SHOT_WIDTH, "height": 3600}, device_scale_factor=1)
                page = context.new_page()

                open_chat(page, app.url)
                ask(page, sc.DEBATE_QUESTION)
                answer = final_answers(page).first
                expect(answer).to_contain_text("Final answer", timeout=60_000)
                for name in ("calculator", "run_python"):
                    page.locator(f'[id="step-{name}"]').first.click()
                question = page.locator('.step[data-step-type="user_message"]').first
                _shoot(page, question, answer, out / "debate.png")

                # speakers and verdicts: each agent's avatar and colour, the badges, the proposals in the answer
                page = new_context(browser, viewport={"width": SHOT_WIDTH, "height": 3600}, device_scale_factor=1).new_page()
                open_chat(page, app.url)
                ask(page, sc.SPEAKERS_QUESTION)
                answer = final_answers(page).first
                expect(answer).to_contain_text("Final answer", timeout=60_000)
                expect(page.locator('a[href="#rt-approved"]').first).to_be_visible()
                run = page.locator('.step[data-step-type="run"]').first
                _shoot(page, run, answer, out / "speakers.png")

                # the same on a phone: the critic's rejection, then the next turns
                phone = new_context(browser, viewport={"width": 390, "height": 844}, device_scale_factor=2,
                                    is_mobile=True, has_touch=True).new_page()
                open_chat(phone, app.url)
                ask(phone, sc.PHONE_QUESTION)
                answer = final_answers(phone).first
                expect(answer).to_contain_text("Final answer", timeout=60_000)
                phone.wait_for_timeout(600)
                critic = phone.locator('.step[data-step-type="llm"]').filter(has=phone.locator('[id^="step-critic"]')).first
                _shoot_phone(phone, critic, out / "phone.png")

                # the task list is a side panel at the top: a normal-sized window shows it with the table
                page = new_context(browser, viewport={"width": SHOT_WIDTH, "height": 1120}).new_page()
                evaluation_table(page, app.url, timeout_ms=90_000)
                expect(page.locator(".tasklist").first).to_contain_text("Evaluation finished")
                page.wait_for_timeout(600)
                page.screenshot(path=str(out / "evaluation.png"))
                print(f"wrote {out / 'evaluation.png'}")
                browser.close()
        finally:
            stop_all(app, llm, scoring, hub)


def main(argv: list[str] | None = None) -> int:
    return screenshots_main(__doc__, take, argv)


if __name__ == "__main__":
    sys.exit(main())
