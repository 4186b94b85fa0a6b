"""Speakers and verdicts in a real browser (issue 15, part 1) and the chat's rough edges: each agent's turn has
its own avatar and colour and is titled by agent and turn number, the critic's verdicts are badges, tool boxes
are headed input/output, code runs name their sandbox, actions look like buttons, the page fits a phone; and
"1 turn", one stop-reason wording, files sent without a question, the roster above the turns, and a Stop that
leaves no traceback in the server log. One app for the module, its own question per test."""

from __future__ import annotations

import re
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import require_system
from tests.fakes.scripted_llm import ScriptedLLM
from tests.ui import scenarios as sc
from tests.ui.harness import ChainlitApp, app_env, ask, final_answers, new_context, open_chat, wait_for
from ui.render import speaker_colour

try:
    from playwright.sync_api import expect
except ImportError:  # a dev dependency; CI must fail, not skip, without it
    if require_system():
        raise
    pytest.skip("playwright is not installed (pip install -e '.[dev]')", allow_module_level=True)

AGENTS = ("planner", "researcher", "coder", "critic")
REASON = "the answer must be a bare number, without the unit and the thousands separator."


@dataclass
class Stack:
    app: ChainlitApp
    llm: ScriptedLLM
    ticks: Path


@pytest.fixture(scope="module")
def stack(browser: Any, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    root = tmp_path_factory.mktemp("ui-speakers")
    ticks = root / "ticks.txt"
    llm = sc.build_speakers(ticks).server(token_delay=0.002)
    app = ChainlitApp(app_env(root, llm, SANDBOX_BACKEND="subprocess"), root)
    try:
        app.start()
        yield Stack(app, llm, ticks)
    finally:
        app.stop()
        llm.stop()


def turns(page: Any) -> Any:
    return page.locator('.step[data-step-type="llm"]')


def title(step: Any) -> Any:
    """A step's own title (the page gives it the id "step-<name>"), not its children's."""
    return step.locator('[id^="step-"]').nth(1)


def colour_of(locator: Any, prop: str) -> str:
    return str(locator.evaluate(f"(e) => getComputedStyle(e).{prop}"))


def test_each_agent_speaks_with_its_own_avatar_and_colour_under_a_title_without_used(stack: Stack, page: Any) -> None:
    open_chat(page, stack.app.url)
    ask(page, sc.DEBATE_QUESTION)
    expect(final_answers(page).first).to_contain_text("Final answer: 4600", timeout=60_000)
    expect(turns(page)).to_have_count(7)
    titles = [title(turns(page).nth(i)).inner_text().strip() for i in range(7)]  # what the user reads
    assert titles == ["planner — turn 1", "researcher — turn 2", "planner — turn 3", "coder — turn 4",
                      "critic — turn 5", "planner — turn 6", "critic — turn 7"]
    run_title = title(page.locator('.step[data-step-type="run"]').first).inner_text().strip()
    assert run_title == "debate team"  # Chainlit's "Used"/"Using" (its wording for tool calls) is not shown

    edges: dict[str, str] = {}
    avatars: dict[str, str] = {}
    for i, agent in zip(range(7), [t.split(" ")[0] for t in titles], strict=True):
        step = turns(page).nth(i)
        edges.setdefault(agent, colour_of(step, "borderLeftColor"))
        assert colour_of(title(step), "color") == edges[agent]  # the title in the agent's colour too
        avatars.setdefault(agent, title(step).evaluate("(e) => getComputedStyle(e, '::before').backgroundImage"))
    assert len(set(edges.values())) == 4, edges  # four agents, four colours
    assert "rgb(37, 99, 235)" in edges["planner"]  # ui.render.SPEAKER_COLOURS["planner"] = #2563eb
    for agent in AGENTS:
        assert f"/roundtable/avatars/{agent}.svg" in avatars[agent]
        with urllib.request.build_opener(urllib.request.ProxyHandler({})).open(f"{stack.app.url}/roundtable/avatars/{agent}.svg") as r:
            svg = r.read().decode()
            assert r.headers["content-type"].startswith("image/svg+xml")
        assert f"<title>{agent}</title>" in svg and speaker_colour(agent) in svg
    # the avatar really drew: the pseudo-element has a size on the page
    assert title(turns(page).first).evaluate("(e) => parseFloat(getComputedStyle(e, '::before').width)") >= 16

    # any other agent name gets a colour of its own, the same in the page's script and on the server
    page_colour = page.evaluate("() => window.roundtableSpeakerColour('skeptic')")
    assert page_colour == speaker_colour("skeptic") != speaker_colour("historian")
    with urllib.request.build_opener(urllib.request.ProxyHandler({})).open(f"{stack.app.url}/roundtable/avatars/skeptic.svg") as r:
        assert speaker_colour("skeptic") in r.read().decode()


def test_verdicts_are_coloured_badges_in_the_turn_and_the_proposals_say_who_and_why(stack: Stack, page: Any) -> None:
    open_chat(page, stack.app.url)
    ask(page, sc.SPEAKERS_QUESTION)
    answer = final_answers(page).first
    expect(answer).to_contain_text("Final answer: 4600", timeout=60_000)
    critic_turns = turns(page).filter(has=page.locator('[id^="step-critic"]'))
    expect(critic_turns).to_have_count(2)
    rejected = critic_turns.nth(0).locator('a[href="#rt-rejected"]')
    expect(rejected).to_have_text(f"✗ Rejected: {REASON}")
    approved = critic_turns.nth(1).locator('a[href="#rt-approved"]')
    expect(approved).to_have_text("✓ Approved")
    red, green = colour_of(rejected, "backgroundColor"), colour_of(approved, "backgroundColor")
    assert red == "rgb(254, 226, 226)" and green == "rgb(220, 252, 231)", (red, green)  # pills, not plain text
    assert rejected.evaluate("(e) => getComputedStyle(e).borderRadius") != "0px"

    # the final message: who proposed each answer, who rejected it and why, who approved the other
    proposals = answer.locator("li").filter(has_text="proposed by")  # (the checks are a list too)
    expect(proposals).to_have_count(2)
    expect(proposals.nth(0)).to_contain_text(f"4,600 inhabitants · proposed by coder · ✗ Rejected by critic: {REASON}")
    expect(proposals.nth(0).locator('a[href="#rt-rejected"]')).to_be_visible()
    expect(proposals.nth(1)).to_contain_text("4600 · proposed by planner · ✓ Approved by critic")
    expect(proposals.nth(1).locator('a[href="#rt-approved"]')).to_be_visible()
    expect(answer).not_to_contain_text("was rejected")


def test_tool_boxes_are_headed_input_and_output_and_code_runs_name_their_sandbox(stack: Stack, page: Any) -> None:
    open_chat(page, stack.app.url)
    ask(page, sc.TOOLS_QUESTION)
    expect(final_answers(page).first).to_contain_text("Final answer: 4600", timeout=60_000)
    tools = page.locator('.step[data-step-type="tool"]')
    calculator = tools.filter(has=page.locator('[id="step-calculator"]'))
    calculator.locator('[id="step-calculator"]').click()
    boxes = calculator.locator(".relative.my-2")  # Chainlit's code cards, each headed by its language
    expect(boxes).to_have_count(2)
    assert [boxes.nth(i).locator("span").first.inner_text() for i in range(2)] == ["input", "output"]
    expect(boxes.nth(0)).to_contain_text('"expression": "1200 + 3400"')
    expect(boxes.nth(1)).to_contain_text("4600")

    code = tools.filter(has=page.locator('[id="step-run_python"]'))
    code.locator('[id="step-run_python"]').click()
    boxes = code.locator(".relative.my-2")
    expect(boxes).to_have_count(2)
    assert [boxes.nth(i).locator("span").first.inner_text() for i in range(2)] == ["python", "output"]
    expect(boxes.nth(1)).to_contain_text("exit code 0")
    expect(code).to_contain_text("Sandbox: subprocess, NOT isolated: the code ran on the host as the app's user")
    headers = page.locator(".relative.my-2 > div:first-child > span")
    assert not [h for h in headers.all_inner_texts() if h.strip() in ("json", "text")]


def test_action_buttons_look_like_buttons(stack: Stack, page: Any) -> None:
    open_chat(page, stack.app.url)
    button = page.get_by_role("button", name="Run the course evaluation")
    expect(button).to_be_visible()
    style = button.evaluate("""(e) => { const s = getComputedStyle(e);
        return {border: s.borderTopWidth, borderColour: s.borderTopColor, background: s.backgroundColor, weight: s.fontWeight}; }""")
    assert style["border"] == "1px" and style["borderColour"] not in ("rgba(0, 0, 0, 0)", "transparent"), style
    assert style["background"] != "rgba(0, 0, 0, 0)" and int(style["weight"]) >= 600, style


# What of the chat sticks out of the screen, or is cut off by a box that hides its overflow (only a box in the
# message that scrolls, like a code block, may hold something wider than the screen; the chat pane's own
# scrolling does not count).
_CUT_OFF_JS = """() => {
  const W = window.innerWidth, out = [];
  for (const el of document.querySelectorAll('.step *')) {
    const r = el.getBoundingClientRect();
    if (r.width === 0 || r.height === 0) continue;
    let scrolls = false, limit = W, top = el.closest('.step');
    for (let up = top; up; up = up.parentElement.closest('.step')) top = up;  // the message the element is in
    for (let a = el.parentElement; a && a !== top.parentElement; a = a.parentElement) {
      const o = getComputedStyle(a).overflowX;
      if (o === 'auto' || o === 'scroll') { scrolls = true; break; }
      if (o === 'hidden' || o === 'clip') limit = Math.min(limit, a.getBoundingClientRect().right);
    }
    if (!scrolls && r.right > limit + 1) out.push(`${el.tagName} ${Math.round(r.right)}>${Math.round(limit)}: ${el.textContent.slice(0, 50)}`);
  }
  return out;
}"""


def test_a_phone_shows_the_debate_without_sideways_scrolling(stack: Stack, browser: Any) -> None:
    context = new_context(browser, viewport={"width": 390, "height": 844}, device_scale_factor=2, is_mobile=True, has_touch=True)
    page = context.new_page()
    try:
        open_chat(page, stack.app.url)
        ask(page, sc.PHONE_QUESTION)
        answer = final_answers(page).first
        expect(answer).to_contain_text("Final answer", timeout=60_000)
        page.locator('[id="step-run_python"]').first.click()
        page.wait_for_timeout(400)
        assert page.evaluate(_CUT_OFF_JS) == []
        assert page.evaluate("() => document.documentElement.scrollWidth <= window.innerWidth + 1")
        first = title(turns(page).first)
        expect(first).to_be_visible()
        box = first.bounding_box()
        assert box and box["x"] >= 0 and box["x"] + box["width"] <= 391
        size = float(first.evaluate("(e) => parseFloat(getComputedStyle(e).fontSize)"))
        assert size >= 13, f"turn titles are {size}px on a phone"
    finally:
        context.close()


def test_a_file_sent_without_a_question_is_kept_for_the_next_one(stack: Stack, page: Any, tmp_path: Path) -> None:
    ledger = tmp_path / sc.UPLOAD_FILE_NAME
    ledger.write_text(sc.UPLOAD_CONTENT, encoding="utf-8")
    open_chat(page, stack.app.url)
    served = len(stack.llm.requests)
    ask(page, "", files=[ledger])
    reply = page.locator('.step[data-step-type="assistant_message"]').filter(has_text="What should the team do with it?")
    expect(reply).to_contain_text(f"Got {sc.UPLOAD_FILE_NAME}.")
    expect(reply).to_contain_text("it is asked with this file attached")
    bubble = page.locator('.step[data-step-type="user_message"]').last
    expect(bubble).to_contain_text(f"📎 {sc.UPLOAD_FILE_NAME}")  # not an empty bubble
    assert bubble.inner_text().strip()
    expect(page.locator('.step[data-step-type="run"]')).to_have_count(0)  # nothing ran
    assert len(stack.llm.requests) == served

    # the next question, with no file attached, is asked with the kept one
    page.locator("#chat-input").fill(sc.UPLOAD_QUESTION.replace("What", "Now: what"))
    expect(page.locator("#chat-submit")).to_be_enabled(timeout=10_000)
    page.locator("#chat-submit").click()
    expect(final_answers(page).first).to_contain_text(f"Final answer: {sc.UPLOAD_TOTAL}", timeout=60_000)
    expect(page.locator('.step[data-step-type="run"]').first).to_contain_text(f"files: {sc.UPLOAD_FILE_NAME}")


def test_one_turn_is_one_turn_and_an_error_says_error_once(stack: Stack, page: Any) -> None:
    open_chat(page, stack.app.url)
    page.locator("#chat-settings-open-modal").click()
    dialog = page.get_by_role("dialog")
    dialog.locator("#team").click()
    page.get_by_role("option", name="solo", exact=True).click()
    dialog.locator("#confirm").click()
    expect(page.locator(".step").filter(has_text="Settings updated")).to_contain_text("team solo")
    ask(page, sc.SOLO_TALLY_QUESTION)
    expect(final_answers(page).first).to_contain_text("Final answer: 8", timeout=60_000)
    run = page.locator('.step[data-step-type="run"]').first
    expect(run).to_contain_text("1 turn: solo")
    expect(run).not_to_contain_text("1 turns")
    expect(title(turns(page).first)).to_have_text(re.compile(r"solo — turn 1"))

    ask(page, sc.UNSCRIPTED_QUESTION)  # the scripted model refuses it: the run ends in an error
    failed = final_answers(page).nth(1)
    expect(failed).to_contain_text("Stop reason: error", timeout=60_000)
    expect(failed).not_to_contain_text("error (error)")
    assert "(`error`)" not in failed.inner_text() and "error (error)" not in failed.inner_text()


def test_the_roster_is_above_the_turns_while_they_arrive_and_stop_logs_no_traceback(stack: Stack, page: Any) -> None:
    open_chat(page, stack.app.url)
    logged = len(stack.app.log())
    stack.ticks.unlink(missing_ok=True)
    ask(page, sc.SLOW_STOP_QUESTION)
    expect(page.get_by_text("run_python")).to_be_visible(timeout=60_000)
    assert wait_for(lambda: stack.ticks.exists() and stack.ticks.stat().st_size >= 3, timeout=20), "the program never ran"
    run = page.locator('.step[data-step-type="run"]').first
    roster = run.get_by_text("Agents: planner, researcher, coder, critic")
    expect(roster).to_be_visible()
    first_turn = turns(page).first
    expect(first_turn).to_be_visible()
    roster_box, turn_box = roster.bounding_box(), first_turn.bounding_box()
    assert roster_box and turn_box and roster_box["y"] + roster_box["height"] <= turn_box["y"] + 1, (roster_box, turn_box)

    page.locator("#stop-button").click()
    answer = final_answers(page).first
    expect(answer).to_contain_text("No answer", timeout=15_000)
    expect(answer).to_contain_text("stopped (cancelled)")
    expect(page.locator("#stop-button")).to_have_count(0, timeout=15_000)
    time.sleep(1.0)  # let the runtime finish unwinding and the log flush
    log = stack.app.log()[logged:]
    assert "stopping run: cancelled" in log  # the log is the one of this run
    assert "Traceback" not in log and not re.search(r"^\S+ ERROR ", log, re.MULTILINE), log[-3000:]
