"""The chat in a real browser: the real app (`chainlit run --headless`), the real team runtime and sandbox,
the scripted model server, the local scoring API and a fake Hub for `whoami`. One app for the module;
each test has its own browser session and its own invented question."""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import OPENAI_STRONG, require_system
from tests.fakes.hf_hub import FakeHub
from tests.fakes.scoring_api import ScoringServer
from tests.fakes.scripted_llm import ScriptedLLM
from tests.ui import scenarios as sc
from tests.ui.harness import ChainlitApp, app_env, ask, final_answers, open_chat, raw_socket, wait_for

try:
    from playwright.sync_api import expect
except ImportError:  # a dev dependency; CI must fail, not skip, without it
    if require_system():
        raise
    pytest.skip("playwright is not installed (pip install -e '.[dev]')", allow_module_level=True)

HF_TOKEN = "hf_uitestTOKENforAlice0123"
SPACE_ID = "tester/roundtable"


@dataclass
class Stack:
    app: ChainlitApp
    llm: ScriptedLLM
    scoring: ScoringServer
    hub: FakeHub
    ticks: Path
    root: Path


@pytest.fixture(scope="module")
def stack(browser: Any, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    root = tmp_path_factory.mktemp("ui-chat")
    ticks = root / "ticks.txt"
    llm = sc.build(ticks).server(token_delay=0.002)
    scoring = ScoringServer(sc.EVAL_QUESTIONS, answers=sc.EVAL_ANSWERS, files=sc.EVAL_FILES).start()
    hub = FakeHub(tokens={HF_TOKEN: "alice"}).start()
    env = app_env(
        root,
        llm,
        SCORING_API_URL=scoring.url,
        HF_ENDPOINT=hub.url,
        HF_TOKEN=HF_TOKEN,
        SPACE_ID=SPACE_ID,
        SANDBOX_BACKEND="subprocess",
    )
    app = ChainlitApp(env, root)
    try:
        app.start()
        yield Stack(app, llm, scoring, hub, ticks, root)
    finally:
        app.stop()
        llm.stop()
        scoring.stop()
        hub.stop()


def step(root: Any, kind: str, name: str) -> Any:
    """The Chainlit steps of `kind` (run/tool) under `root` named `name` (the page gives a step the id "step-<name>")."""
    page = getattr(root, "page", root)
    return root.locator(f'.step[data-step-type="{kind}"]').filter(has=page.locator(f'[id="step-{name}"]'))


def turns(root: Any, agent: str) -> Any:
    """The turns of `agent` under `root`: steps titled "<agent> — turn <n>"."""
    page = getattr(root, "page", root)
    return root.locator('.step[data-step-type="llm"]').filter(has=page.locator(f'[id^="step-{agent} — turn "]'))


def test_a_question_streams_nested_agent_steps_tool_and_code_steps_then_the_final_answer(stack: Stack, page: Any) -> None:
    frames: list[str] = []
    page.on("websocket", lambda ws: ws.on("framereceived", lambda payload: frames.append(str(payload))))
    open_chat(page, stack.app.url)
    welcome = page.locator(".step").filter(has_text="Ask anything").first
    expect(welcome).to_contain_text(f"openai/{OPENAI_STRONG} (planner, critic)")
    expect(welcome.get_by_role("button", name="Run the course evaluation")).to_be_visible()

    ask(page, sc.DEBATE_QUESTION)
    answer = final_answers(page).first
    expect(answer).to_contain_text("Final answer: 4600", timeout=60_000)
    expect(answer).to_contain_text("approved by critic")
    expect(answer).to_contain_text("tokens")
    expect(answer).to_contain_text("$")  # the strong tier has a price: the cost is estimated, not "unknown"

    run = step(page, "run", "debate team")
    expect(run).to_have_count(1)
    for agent in ("planner", "researcher", "coder", "critic"):
        expect(turns(run, agent).first).to_be_visible()
    expect(turns(run, "planner")).to_have_count(3)
    # the tool call is a child of the researcher's turn, the code run a child of the coder's
    calculator = step(turns(run, "researcher"), "tool", "calculator")
    calculator.locator('[id="step-calculator"]').click()
    expect(calculator).to_contain_text('"expression": "1200 + 3400"')
    expect(calculator).to_contain_text("4600")
    code = step(turns(run, "coder"), "tool", "run_python")
    code.locator('[id="step-run_python"]').click()
    expect(code.locator("pre, code").filter(has_text="print(sum([1200, 3400]))").first).to_be_visible()
    expect(code).to_contain_text("exit code 0")
    # the critic's rejection (with its reason) and the approval are summed up on the run step
    expect(run).to_contain_text("4,600 inhabitants · proposed by coder · ✗ Rejected by critic: the answer must be a bare number")
    expect(run).to_contain_text("4600 · proposed by planner · ✓ Approved by critic")
    # tokens were streamed to the page, many per turn (not one message per turn)
    assert sum('"stream_token"' in f for f in frames) > 50


def test_an_uploaded_file_becomes_the_attachment_the_code_reads(stack: Stack, page: Any, tmp_path: Path) -> None:
    ledger = tmp_path / sc.UPLOAD_FILE_NAME
    ledger.write_text(sc.UPLOAD_CONTENT, encoding="utf-8")
    open_chat(page, stack.app.url)
    ask(page, sc.UPLOAD_QUESTION, files=[ledger])
    answer = final_answers(page).first
    expect(answer).to_contain_text(f"Final answer: {sc.UPLOAD_TOTAL}", timeout=60_000)
    run = step(page, "run", "debate team")
    expect(run).to_contain_text(f"files: {sc.UPLOAD_FILE_NAME}")
    code = step(run, "tool", "run_python")
    code.locator('[id="step-run_python"]').click()
    expect(code).to_contain_text(f"exit code 0\n{sc.UPLOAD_TOTAL}")
    # the model was told the file under the name the user gave it
    coder = [r for r in stack.llm.requests_for("coder") if "ledger" in r.question]
    assert coder and f"Attached file(s), in the question's folder: {sc.UPLOAD_FILE_NAME}" in coder[0].question


def test_stop_ends_the_run_and_its_sandbox_promptly_and_the_chat_takes_the_next_question(stack: Stack, page: Any) -> None:
    open_chat(page, stack.app.url)
    ask(page, sc.SLOW_QUESTION)
    expect(page.get_by_text("Using run_python")).to_be_visible(timeout=60_000)
    assert wait_for(lambda: stack.ticks.exists() and stack.ticks.stat().st_size >= 3, timeout=20), "the program never ran"

    page.locator("#stop-button").click()
    pressed = time.monotonic()
    answer = final_answers(page).first
    expect(answer).to_contain_text("No answer", timeout=15_000)
    took = time.monotonic() - pressed
    expect(answer).to_contain_text("cancelled")
    expect(page.get_by_text("Task manually stopped.")).to_be_visible()
    expect(page.locator("#stop-button")).to_have_count(0, timeout=15_000)
    assert took < 10, f"the run took {took:.1f}s to stop"
    # the sandboxed program stopped too: no new ticks
    size = stack.ticks.stat().st_size
    time.sleep(1.0)
    assert stack.ticks.stat().st_size == size, "the sandboxed program kept running after Stop"

    ask(page, sc.QUICK_QUESTION)
    expect(final_answers(page).nth(1)).to_contain_text("Final answer: 9", timeout=60_000)


def test_settings_switch_the_team_the_model_and_hide_code_runs(stack: Stack, page: Any) -> None:
    open_chat(page, stack.app.url)
    page.locator("#chat-settings-open-modal").click()
    dialog = page.get_by_role("dialog")
    expect(dialog).to_be_visible()
    dialog.locator("#team").click()
    page.get_by_role("option", name="solo", exact=True).click()
    dialog.locator("#model").fill("gpt-4.1-nano")
    dialog.locator("#show_code").click()
    dialog.locator("#confirm").click()
    changed = page.locator(".step").filter(has_text="Settings updated")
    expect(changed).to_contain_text("team solo")
    expect(changed).to_contain_text("model gpt-4.1-nano")
    expect(changed).to_contain_text("code runs hidden")
    expect(changed).to_contain_text("openai/gpt-4.1-nano (solo)")

    ask(page, sc.SOLO_QUESTION)
    expect(final_answers(page).first).to_contain_text("Final answer: 6", timeout=60_000)
    run = step(page, "run", "solo team")
    expect(turns(run, "solo").first).to_be_visible()
    expect(page.locator('[id="step-run_python"]')).to_have_count(0)
    expect(page.locator('[id^="step-planner"]')).to_have_count(0)
    solo = [r for r in stack.llm.requests_for("solo") if "solo check" in r.question.lower()]
    assert len(solo) == 2 and {r.body["model"] for r in solo} == {"gpt-4.1-nano"}


def test_the_course_evaluation_runs_with_a_task_list_then_a_table_submits_and_is_cached(stack: Stack, page: Any) -> None:
    open_chat(page, stack.app.url)
    page.get_by_role("button", name="Run the course evaluation").click()
    tasks = page.locator(".tasklist")
    expect(tasks.first).to_be_visible(timeout=30_000)
    table = page.locator(".step").filter(has_text="Evaluation finished")
    expect(table).to_be_visible(timeout=90_000)
    expect(tasks.first).to_contain_text("Evaluation finished: 4/4 answered")
    for q in sc.EVAL_QUESTIONS:
        expect(tasks.first).to_contain_text(q["task_id"])
    rows = table.locator("tr")
    expect(rows).to_have_count(1 + len(sc.EVAL_QUESTIONS))
    for q in sc.EVAL_QUESTIONS:
        row = rows.filter(has_text=q["task_id"])
        expect(row).to_contain_text(sc.EVAL_GIVEN[q["task_id"]])
        expect(row).to_contain_text(q["question"][:30])
    assert stack.scoring.requests_to("/files/ui-eval-0004"), "the attachment was fetched from the scoring API"
    expect(table).to_contain_text("as alice (the owner of HF_TOKEN)")
    served = len(stack.llm.requests)

    table.get_by_role("button", name="Submit as alice").click()
    confirm = page.get_by_role("button", name="Confirm: send as alice")
    expect(confirm).to_be_visible()
    assert not stack.scoring.submissions, "nothing is sent before the confirmation"
    confirm.click()
    result = page.locator(".step").filter(has_text="Submitted as alice")
    expect(result).to_contain_text("Score: 75%", timeout=30_000)
    expect(result).to_contain_text("3/4 correct")
    assert len(stack.scoring.submissions) == 1
    sent = stack.scoring.submissions[0]
    assert sent["username"] == "alice"
    assert sent["agent_code"] == f"https://huggingface.co/spaces/{SPACE_ID}/tree/main"
    assert {a["task_id"]: a["submitted_answer"] for a in sent["answers"]} == sc.EVAL_GIVEN

    # a reload and a second click: the answers come from the run dir, nothing is recomputed
    page.reload()
    open_chat(page, stack.app.url)
    page.get_by_role("button", name="Run the course evaluation").click()
    again = page.locator(".step").filter(has_text="Evaluation finished")
    expect(again).to_contain_text("4 from the cache", timeout=30_000)
    assert len(stack.llm.requests) == served


_PASTE_JS = """(text) => {
  const box = document.getElementById("chat-input");
  box.focus();
  const data = new DataTransfer();
  data.setData("text/plain", text);
  return box.dispatchEvent(new ClipboardEvent("paste", {clipboardData: data, bubbles: true, cancelable: true}));
}"""


def test_hostile_input_long_messages_and_file_names_break_nothing(stack: Stack, page: Any, tmp_path: Path) -> None:
    console: list[str] = []
    dialogs: list[str] = []
    sent: list[str] = []
    page.on("console", lambda m: console.append(m.text))
    page.on("dialog", lambda d: (dialogs.append(d.message), d.dismiss()))
    page.on("websocket", lambda ws: ws.on("framesent", lambda payload: sent.append(str(payload)[:200])))
    open_chat(page, stack.app.url)
    limit = 100_000  # ROUNDTABLE_MAX_QUESTION_CHARS's default
    alert = page.locator("#roundtable-composer-error")

    # over the limit, in the page: a paste and a send are refused with the reason, nothing goes out
    page.evaluate(_PASTE_JS, "p" * (limit + 1))
    expect(alert).to_have_text(
        f"Not pasted: This message is {limit + 1:,} characters long; the limit is {limit:,}. "
        "Shorten it, or attach long text as a file (the paperclip)."
    )
    page.locator("#chat-input").fill("s" * (limit + 5))
    page.locator("#chat-submit").click()
    expect(alert).to_contain_text(f"Not sent: This message is {limit + 5:,} characters long")
    page.locator("#chat-input").press("Enter")
    expect(page.locator("#chat-input")).to_have_value("s" * (limit + 5))  # kept, for the user to shorten
    assert not [f for f in sent if "client_message" in f]

    # a client without that script: 1.5 M characters (over engine.io's stock 1 MB packet limit) get the same
    # reason from the server instead of a dropped connection, and the next question on that socket is answered
    reply = raw_socket(page, stack.app.url, ["l" * 1_500_000, sc.AFTER_LONG_QUESTION], until="Final answer: 6")
    assert reply["connected"] and reply["matched"] and not reply["closed"], reply["frames"][-5:]
    assert any("This message is 1,500,000 characters long; the limit is 100,000." in f for f in reply["frames"])

    # files sent without text, with names that look like markup: nothing runs, the reply asks what to do with
    # them, the bubble names them; the next question is run with them. Every name shows as given, as text
    page.locator("#chat-input").fill("")
    files = []
    for name in sc.HOSTILE_NAMES:
        (tmp_path / name).write_text("n\n1\n", encoding="utf-8")
        files.append(tmp_path / name)
    ask(page, "", files=files)
    held = page.locator('.step[data-step-type="assistant_message"]').filter(has_text="What should the team do with them?")
    expect(held).to_contain_text("Type your question: it is asked with these files attached.", timeout=30_000)
    expect(page.locator('.step[data-step-type="run"]')).to_have_count(0)  # nothing ran
    bubble = page.locator('.step[data-step-type="user_message"]').filter(has_text="📎 ")
    expect(bubble).to_have_count(1)  # not an empty bubble
    for name in sc.HOSTILE_NAMES:
        expect(held).to_contain_text(name)
    ask(page, "Describe the attached files.")
    answer = final_answers(page).first
    expect(answer).to_contain_text("Final answer: _a_.csv", timeout=60_000)  # the sandbox listed the staged files
    run = step(page, "run", "debate team")
    for name in sc.HOSTILE_NAMES:
        expect(run).to_contain_text(name)
        expect(bubble).to_contain_text(name)
    summary = run.get_by_role("article").filter(has_text="files:")  # the run's own text (the agents write markdown)
    expect(summary).to_have_count(1)
    expect(summary.locator("em, strong, a, img, code")).to_have_count(0)
    expect(answer.locator("em")).to_have_count(0)
    expect(page.locator('img[src="x"]')).to_have_count(0)
    expect(page.locator('a[href*="javascript"]')).to_have_count(0)
    assert dialogs == []
    coder = [r for r in stack.llm.requests_for("coder") if "describe the attached files" in r.question.lower()]
    assert coder and "Attached file(s), in the question's folder:" in coder[0].question  # the run got the files
    assert "'_a_.csv' is" not in coder[0].question  # _a_.csv is safe as it is
    assert "'✓.csv' is '_.csv'" in coder[0].question  # the agents learn which file the user meant

    # uploads of any type without the browser's MIME warnings ('Skipped "*/*" because it is not a valid MIME type')
    assert not [m for m in console if "*/*" in m or "valid MIME type" in m]
