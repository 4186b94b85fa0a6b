"""Replays, the compare view and the evaluation panel's rough edges in a real browser (the real app, headless).

The fixture runs `submit.py run` twice as real processes (the debate team and the solo team, on three invented
questions from the local scoring API, against the scripted model server) and `submit.py eval` on both, so the
app finds two run dirs from the CLI under ROUNDTABLE_RUN_DIRS; the UI's own evaluation makes the third.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests.fakes.hf_hub import FakeHub
from tests.fakes.scoring_api import ScoringServer
from tests.fakes.scripted_llm import RecordedRequest, ScriptedLLM
from tests.ui.harness import (
    FAKE_KEY,
    REPO,
    ChainlitApp,
    app_env,
    evaluation_table,
    last_tool_output,
    stop_all,
)

try:
    from playwright.sync_api import expect
except ImportError:  # a dev dependency; CI must fail, not skip, without it
    from tests.conftest import require_system

    if require_system():
        raise
    pytest.skip("playwright is not installed (pip install -e '.[dev]')", allow_module_level=True)

HF_TOKEN = "hf_replaytestTOKENforAlice01"
SPACE_ID = "tester/roundtable"
# Invented questions; long ids whose first 8 characters differ (the old table cut them to 8).
Q_CODE, Q_RIVER, Q_WHEELS = "3f9c2a1e-7b44-4c1d-9e0a-000000replay1", "8d1e4b7a-2c55-4e6f-8a1b-000000replay2", \
    "c2a7e9f0-9d66-4a2b-b3c4-000000replay3"
QUESTIONS = [
    {"task_id": Q_CODE, "question": "Replay check one: a keeper polishes 3 lenses in each of 4 invented towers. How many lenses?",
     "Level": "1", "file_name": ""},
    {"task_id": Q_RIVER, "question": "Replay check two: which invented river is longer, Arl (3 km) or Bemmerford (9 km)?",
     "Level": "1", "file_name": ""},
    {"task_id": Q_WHEELS, "question": "Replay check three: how many wheels do two invented tricycles have?",
     "Level": "1", "file_name": ""},
]
TRUTH = {Q_CODE: "12", Q_RIVER: "Bemmerford", Q_WHEELS: "6"}
DEBATE_GIVES = {Q_CODE: "12", Q_RIVER: "Bemmerford", Q_WHEELS: "7"}  # one wrong
SOLO_GIVES = {Q_CODE: "12", Q_RIVER: "Arl", Q_WHEELS: "6"}  # another one wrong
LENS_CODE = "print(3 * 4)"


def _which(req: RecordedRequest) -> str | None:
    return next((q["task_id"] for q in QUESTIONS if q["question"] in req.question), None)


def _tools_used(req: RecordedRequest) -> int:
    return sum(1 for m in req.messages if m.get("role") == "tool")


def respond(req: RecordedRequest) -> Any:
    """Stateless replies (the same question is solved by three runs): decided by what the conversation holds."""
    task = _which(req)
    if task is None:
        return "FINAL ANSWER: unknown"
    proposed = re.findall(r"FINAL ANSWER:\s*(.+)", "\n".join(str(m.get("content") or "") for m in req.messages))
    if req.agent == "solo":
        if task == Q_CODE and not _tools_used(req):
            return {"tool_calls": [{"name": "run_python", "arguments": {"code": LENS_CODE}}]}
        return f"FINAL ANSWER: {SOLO_GIVES[task]}"
    if req.agent == "critic":
        return f"APPROVED\nFINAL ANSWER: {proposed[-1].strip() if proposed else 'none'}"
    if task != Q_CODE:
        return f"Straightforward.\nFINAL ANSWER: {DEBATE_GIVES[task]}"
    if req.agent == "planner":
        return "Researcher, check the arithmetic; then the coder computes it.\nNEXT: researcher"
    if req.agent == "researcher":
        if not _tools_used(req):
            return {"tool_calls": [{"name": "calculator", "arguments": {"expression": "3 * 4"}}], "content": "Checking."}
        return "The calculator gives 12. Coder, confirm it with a program.\nNEXT: coder"
    if req.agent == "coder":
        if "print(3 * 4)" not in json.dumps(req.messages):
            return {"tool_calls": [{"name": "run_python", "arguments": {"code": LENS_CODE}}]}
        printed = last_tool_output(req).split("\n", 1)[-1].strip()
        return f"The program printed {printed}.\nFINAL ANSWER: {printed}"
    return "FINAL ANSWER: unknown"


@dataclass
class Stack:
    llm: ScriptedLLM
    scoring: ScoringServer
    hub: FakeHub
    root: Path
    runs: Path
    app: ChainlitApp


def _cli(root: Path, llm: ScriptedLLM, scoring: ScoringServer, *args: str) -> None:
    env = {k: v for k, v in os.environ.items() if k != "CI"}
    env.update(OPENAI_BASE_URL=llm.url, OPENAI_API_KEY=FAKE_KEY, LLM_PROVIDER="openai", LLM_RETRY_BASE_DELAY="0.01",
               SCORING_API_URL=scoring.url, ROUNDTABLE_ENV_FILE="", ROUNDTABLE_CACHE_DIR=str(root / "cli-cache"),
               HF_HOME=str(root / "hf-home"), SANDBOX_BACKEND="subprocess", SANDBOX_ALLOW_SUBPROCESS="1", COLUMNS="200",
               HTTP_PROXY="http://127.0.0.1:9", HTTPS_PROXY="http://127.0.0.1:9", NO_PROXY="127.0.0.1,localhost")
    out = subprocess.run([sys.executable, str(REPO / "submit.py"), *args], cwd=root, env=env, capture_output=True,
                         text=True, timeout=300)
    assert out.returncode == 0, f"submit.py {' '.join(args)}:\n{out.stdout}\n{out.stderr}"


def start_app(root: Path, llm: ScriptedLLM, scoring: ScoringServer, hub: FakeHub, runs: Path, **extra: str) -> ChainlitApp:
    env = app_env(root, llm, SCORING_API_URL=scoring.url, HF_ENDPOINT=hub.url, HF_TOKEN=HF_TOKEN,
                  SANDBOX_BACKEND="subprocess", ROUNDTABLE_RUN_DIRS=str(runs), **extra)
    return ChainlitApp(env, root).start()


def cli_run_dirs(root: Path, llm: ScriptedLLM, scoring: ScoringServer, runs: Path) -> None:
    """Two run dirs made by `submit.py run` (runs/cli-debate, runs/cli-solo), both scored by `submit.py eval`."""
    _cli(root, llm, scoring, "run", "--team", "teams/debate.yaml", "--run-dir", str(runs / "cli-debate"))
    _cli(root, llm, scoring, "run", "--team", "teams/solo.yaml", "--run-dir", str(runs / "cli-solo"))
    labels = root / "labels.jsonl"
    labels.write_text("".join(json.dumps({"task_id": t, "final_answer": a}) + "\n" for t, a in TRUTH.items()))
    _cli(root, llm, scoring, "eval", "--run-dir", str(runs / "cli-debate"), str(runs / "cli-solo"), "--labels", str(labels))


@pytest.fixture(scope="module")
def stack(browser: Any, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    root = tmp_path_factory.mktemp("ui-replay")
    llm = ScriptedLLM({"default": respond}, token_delay=0.001).start()
    scoring = ScoringServer(QUESTIONS, answers=TRUTH).start()
    hub = FakeHub(tokens={HF_TOKEN: "alice"}).start()
    runs = root / "runs"
    app: ChainlitApp | None = None
    try:
        cli_run_dirs(root, llm, scoring, runs)
        app = start_app(root / "app-a", llm, scoring, hub, runs, SPACE_ID=SPACE_ID)
        yield Stack(llm, scoring, hub, root, runs, app)
    finally:
        stop_all(app, llm, scoring, hub)


def steps(root: Any, kind: str, prefix: str) -> Any:
    page = getattr(root, "page", root)
    return root.locator(f'.step[data-step-type="{kind}"]').filter(has=page.locator(f'[id^="step-{prefix}"]'))


TIMED = re.compile(r"· \d+(\.\d)? s|· \d+ min \d\d s")


def test_a_replay_of_a_cli_run_dir_shows_its_turns_tool_calls_and_code_runs_with_timings(stack: Stack, page: Any) -> None:
    table = evaluation_table(page, stack.app.url)
    table.get_by_role("button", name="Replays of past runs").click()
    listing = page.locator(".step").filter(has_text="(newest first)").last
    expect(listing).to_be_visible()
    listing.get_by_role("button", name="cli-debate · debate").click()
    questions = page.locator(".step").filter(has_text="Run dir cli-debate").last
    expect(questions).to_contain_text(Q_CODE)
    questions.get_by_role("button", name=f"Open debate: {Q_CODE}").click()

    header = page.locator(".step").filter(has_text=f"Replay of {Q_CODE}").last
    expect(header).to_contain_text("team debate")
    expect(header).to_contain_text("Times are as recorded.")
    run = steps(page, "run", "debate team").last
    expect(run).to_be_visible()
    for agent in ("planner", "researcher", "coder", "critic"):  # every turn, each with how long it took
        turn = steps(run, "llm", agent).first
        expect(turn).to_be_visible()
        expect(turn.locator(f'[id^="step-{agent}"]').first).to_have_text(TIMED)
    calc = steps(run, "tool", "calculator").first
    expect(calc.locator('[id^="step-calculator"]').first).to_have_text(TIMED)
    calc.locator('[id^="step-calculator"]').first.click()
    expect(calc).to_contain_text("3 * 4")
    code = steps(run, "tool", "run_python").first
    expect(code.locator('[id^="step-run_python"]').first).to_have_text(TIMED)
    code.locator('[id^="step-run_python"]').first.click()
    expect(code).to_contain_text(LENS_CODE)
    expect(code).to_contain_text("12")
    expect(steps(run, "llm", "coder").first).to_contain_text("The program printed 12.")
    final = page.locator('.step[data-step-type="assistant_message"]').filter(has_text="Final answer: 12").last
    expect(final).to_be_visible()


def test_clicking_a_question_in_the_evaluation_table_opens_its_debate(stack: Stack, page: Any) -> None:
    table = evaluation_table(page, stack.app.url)
    served = len(stack.llm.requests)
    table.get_by_role("button", name=f"Open debate: {Q_RIVER}").click()
    header = page.locator(".step").filter(has_text=f"Replay of {Q_RIVER}").last
    expect(header).to_contain_text("which invented river is longer")
    run = steps(page, "run", "debate team").last
    expect(steps(run, "llm", "planner").first).to_contain_text("Straightforward.")
    expect(steps(run, "llm", "critic").first).to_contain_text("APPROVED")
    expect(page.locator('.step[data-step-type="assistant_message"]').filter(has_text="Final answer: Bemmerford").last).to_be_visible()
    assert len(stack.llm.requests) == served, "a replay asks no model"


def test_the_compare_view_shows_the_tables_and_the_charts(stack: Stack, page: Any) -> None:
    table = evaluation_table(page, stack.app.url)
    table.get_by_role("button", name="Compare run dirs").click()
    pick = page.locator(".step").filter(has_text="Pick the run dirs to compare").last
    pick.get_by_role("button", name="＋ cli-debate · debate").click()
    expect(page.locator(".step").filter(has_text="Selected for comparison").last).to_contain_text("Pick at least two")
    pick.get_by_role("button", name="＋ cli-solo · solo").click()
    selection = page.locator(".step").filter(has_text="Selected for comparison").last
    expect(selection).to_contain_text("cli-debate (baseline)")
    selection.get_by_role("button", name="Compare the 2: labels of the last eval").click()
    view = page.locator(".step").filter(has_text="Comparison of 2 run dirs").last
    expect(view).to_contain_text("3 common labelled questions", timeout=30_000)
    tables = view.locator("table")
    expect(tables).to_have_count(3)  # totals, differences, agreement
    totals = tables.nth(0)
    expect(totals.locator("th")).to_have_text(["run", "team · strategy", "strict", "GAIA", "time", "tokens", "cost"])
    expect(totals.locator("tbody tr").nth(0)).to_contain_text("2/3 (66.7%)")
    expect(totals.locator("tbody tr").nth(1).locator("td").nth(1)).to_have_text("solo · single")
    expect(view).to_contain_text("Models: run 1: openai/")
    expect(tables.nth(1).locator("tbody tr").first).to_contain_text("+0.0")
    agreement = tables.nth(2)
    expect(agreement.locator("tbody tr").filter(has_text=Q_RIVER)).to_contain_text("run 1")
    expect(agreement.locator("tbody tr").filter(has_text=Q_WHEELS)).to_contain_text("run 2")
    expect(agreement.locator("tbody tr").filter(has_text=Q_CODE)).to_contain_text("run 1, run 2")
    images = view.locator("img:not([alt^='Avatar'])")
    expect(images).to_have_count(3, timeout=15_000)
    for name in ["accuracy.png", "cost-time-tokens.png", "agreement.png"]:
        image = view.get_by_role("img", name=name)
        image.scroll_into_view_if_needed()
        expect(image).to_be_visible()
        page.wait_for_function("img => img.complete && img.naturalWidth > 100", arg=image.element_handle(),
                               timeout=10_000)  # the chart really loaded


_LINES_JS = """td => {
  // the distinct line tops of the cell's text: 1 when the value stays on one line
  const walker = document.createTreeWalker(td, NodeFilter.SHOW_TEXT);
  const tops = new Set();
  for (let node = walker.nextNode(); node; node = walker.nextNode()) {
    if (!node.textContent.trim()) continue;
    const r = document.createRange(); r.selectNodeContents(node);
    for (const rect of r.getClientRects()) if (rect.width > 0) tops.add(Math.round(rect.top));
  }
  return tops.size;
}"""


def test_the_table_shows_full_task_ids_and_times_on_one_line(stack: Stack, browser: Any) -> None:
    from tests.ui.harness import new_context

    context = new_context(browser, viewport={"width": 1280, "height": 900})  # at phone widths Chainlit breaks cells anywhere (report)
    try:
        page = context.new_page()
        table = evaluation_table(page, stack.app.url)
        for task_id in TRUTH:
            expect(table.locator("td code", has_text=task_id)).to_have_text(task_id)  # the whole id
        times = table.locator("tbody tr td:nth-child(4)")
        expect(times).to_have_count(3)
        for i in range(3):
            assert re.fullmatch(r"\d+\.\d\u00a0s", times.nth(i).inner_text()), times.nth(i).inner_text()

            assert times.nth(i).evaluate(_LINES_JS) == 1, "the time wraps"
        tasks = page.locator(".tasklist").first
        for task_id in TRUTH:
            expect(tasks).to_contain_text(task_id)
    finally:
        context.close()


def test_submit_asks_for_confirmation_and_sends_only_after_it(stack: Stack, page: Any) -> None:
    table = evaluation_table(page, stack.app.url)
    before, posts = len(stack.scoring.submissions), len(stack.scoring.requests_to("/submit"))
    table.get_by_role("button", name="Submit as alice").click()
    ask = page.locator(".step").filter(has_text="Nothing is sent until you confirm").last
    expect(ask).to_contain_text("Send 3 answers (3 non-empty) as alice")
    expect(ask).to_contain_text(f"https://huggingface.co/spaces/{SPACE_ID}/tree/main")
    page.wait_for_timeout(500)
    assert len(stack.scoring.submissions) == before and len(stack.scoring.requests_to("/submit")) == posts
    expect(ask.get_by_role("button", name="Cancel")).to_be_visible()
    ask.get_by_role("button", name="Cancel").click()
    expect(page.locator(".step").filter(has_text="Not submitted: cancelled.").last).to_be_visible()
    expect(page.get_by_role("button", name="Confirm: send as alice")).to_have_count(0)  # the cancelled ask is done
    assert len(stack.scoring.submissions) == before
    table.get_by_role("button", name="Submit as alice").click()
    ask = page.locator(".step").filter(has_text="Nothing is sent until you confirm").last
    ask.get_by_role("button", name="Confirm: send as alice").click()
    result = page.locator(".step").filter(has_text="Submitted as alice").last
    expect(result).to_contain_text("2/3 correct", timeout=30_000)
    assert len(stack.scoring.submissions) == before + 1
    assert {a["task_id"]: a["submitted_answer"] for a in stack.scoring.submissions[-1]["answers"]} == DEBATE_GIVES


def test_without_space_id_submit_is_not_offered_and_says_what_to_set(stack: Stack, page: Any) -> None:
    app = start_app(stack.root / "app-b", stack.llm, stack.scoring, stack.hub, stack.runs)  # no SPACE_ID
    try:
        before, posts = len(stack.scoring.submissions), len(stack.scoring.requests_to("/submit"))
        table = evaluation_table(page, app.url)
        expect(table).to_contain_text("Submit is not available")
        expect(table).to_contain_text("SPACE_ID is set by the Space itself")
        expect(table).to_contain_text("Settings → Variables and secrets")
        expect(table).not_to_contain_text("--agent-code")
        expect(table.get_by_role("button", name=re.compile("^Submit"))).to_have_count(0)
        page.wait_for_timeout(300)
        assert len(stack.scoring.submissions) == before and len(stack.scoring.requests_to("/submit")) == posts
    finally:
        app.stop()


def test_the_compare_view_scores_against_an_uploaded_labels_file(stack: Stack, page: Any) -> None:
    labels = stack.root / "other-labels.jsonl"  # labels of its own: the debate's "7" counts as right here
    labels.write_text("".join(json.dumps({"task_id": t, "final_answer": a}) + "\n" for t, a in {**TRUTH, Q_WHEELS: "7"}.items()))
    table = evaluation_table(page, stack.app.url)
    table.get_by_role("button", name="Compare run dirs").click()
    pick = page.locator(".step").filter(has_text="Pick the run dirs to compare").last
    pick.get_by_role("button", name="＋ cli-debate · debate").click()
    expect(page.locator(".step").filter(has_text="Selected for comparison").last).to_contain_text("Pick at least two")
    pick.get_by_role("button", name="＋ cli-solo · solo").click()
    page.locator(".step").filter(has_text="Selected for comparison").last.get_by_role(
        "button", name="Compare the 2: upload labels").click()
    ask = page.locator(".step").filter(has_text="Upload the labels file").last
    expect(ask).to_be_visible()
    # the question's own drop zone, not the composer's paperclip
    page.locator('input[type="file"]:not(#upload-button-input)').last.set_input_files(str(labels))
    view = page.locator(".step").filter(has_text="Comparison of 2 run dirs").last
    expect(view).to_contain_text("labels from the uploaded other-labels.jsonl", timeout=30_000)
    totals = view.locator("table").first
    expect(totals.locator("tbody tr").nth(0)).to_contain_text("3/3 (100.0%)")
    expect(totals.locator("tbody tr").nth(1)).to_contain_text("1/3 (33.3%)")
