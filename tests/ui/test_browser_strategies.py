"""A vote in a real browser: the real app (`chainlit run --headless`) running the shipped teams/vote.yaml, the
real strategy runtime and the scripted model server. With only an OpenAI key, vote.yaml's three attempts all run
on openai and differ by temperature and instructions; the scripted solo agent answers by those instructions, so
the three attempts give three different answers and the adjudicator settles it."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from tests.fakes.scripted_llm import RecordedRequest
from tests.ui.harness import REPO, ChainlitApp, Scenarios, app_env, ask, final_answers, open_chat

try:
    from playwright.sync_api import expect
except ImportError:  # a dev dependency; CI must fail, not skip, without it
    from tests.conftest import require_system

    if require_system():
        raise
    pytest.skip("playwright is not installed (pip install -e '.[dev]')", allow_module_level=True)

QUESTION = "Vote check: how many lanterns hang on the invented bridge of Quillmere?"


def by_instructions(req: RecordedRequest) -> str:
    """Each vote.yaml attempt has its own instructions in the system prompt: each answers differently."""
    if "second, independent source" in req.system:
        return "The second source says 14.\nFINAL ANSWER: 14"
    if "compute it with run_python" in req.system:
        return "Counting again gives 15.\nFINAL ANSWER: 15"
    return "The town page says 12.\nFINAL ANSWER: 12"


ADJUDICATION = "Candidate 12 is the one a source states.\nAPPROVED\nFINAL ANSWER: 12"


@pytest.fixture(scope="module")
def app(browser: Any, tmp_path_factory: pytest.TempPathFactory) -> Iterator[ChainlitApp]:
    root = tmp_path_factory.mktemp("ui-strategies")
    scenarios = Scenarios()
    scenarios.add("vote check", {"solo": [by_instructions] * 3, "adjudicator": [ADJUDICATION]})
    llm = scenarios.server(token_delay=0.002)
    chainlit = ChainlitApp(app_env(root, llm, ROUNDTABLE_TEAM=str(REPO / "teams" / "vote.yaml"), SANDBOX_BACKEND="subprocess"), root)
    try:
        chainlit.start()
        yield chainlit
    finally:
        chainlit.stop()
        llm.stop()


def step(root: Any, kind: str, name: str, *, prefix: bool = False) -> Any:
    """The Chainlit steps of `kind` under `root` whose header is "Used <name>" (or starts with it)."""
    page = getattr(root, "page", root)
    match = f'[id^="step-{name}"]' if prefix else f'[id="step-{name}"]'
    return root.locator(f'.step[data-step-type="{kind}"]').filter(has=page.locator(match))


def test_a_vote_shows_each_attempt_as_a_step_the_adjudicator_and_a_final_table(app: ChainlitApp, page: Any) -> None:
    open_chat(page, app.url)
    ask(page, QUESTION)
    answer = final_answers(page).first
    expect(answer).to_contain_text("Final answer: 12", timeout=90_000)

    run = step(page, "run", "vote team")
    expect(run).to_have_count(1)
    said = {1: "The town page says 12.", 2: "The second source says 14.", 3: "Counting again gives 15."}
    for n, text in said.items():  # "Attempt 2 · solo · openai · <what vote.yaml says differs>"
        attempt = step(run, "run", f"Attempt {n} · solo · openai", prefix=True)
        expect(attempt).to_have_count(1)
        expect(step(attempt, "llm", "solo — turn 1")).to_contain_text(text)  # the attempt's own turn, inside its step
    expect(step(run, "llm", "adjudicator — turn 1")).to_contain_text("Candidate 12 is the one a source states.")
    # the roster is the run step's input: "Attempts: 1. solo · openai · …", shown above the attempts
    roster = run.get_by_role("article").filter(has_text="Attempts: 1. solo · openai")
    expect(roster).to_have_count(1)
    expect(roster).to_contain_text("2. solo · openai")
    first = step(run, "run", "Attempt 1 · solo · openai", prefix=True)
    assert roster.bounding_box()["y"] < first.bounding_box()["y"]

    # the attempts side by side, the votes and the decision, in the final message
    table = answer.locator("table")
    expect(table).to_have_count(1)
    expect(table.locator("th")).to_have_text(["Attempt", "Label", "Answer", "Approved", "Stop reason", "Tokens", "Cost"])
    rows = table.locator("tbody tr")
    expect(rows).to_have_count(3)
    for i, value in enumerate(["12", "14", "15"]):
        expect(rows.nth(i).locator("td").nth(0)).to_have_text(str(i + 1))
        expect(rows.nth(i).locator("td").nth(2)).to_have_text(value)
        expect(rows.nth(i).locator("td").nth(3)).to_contain_text("yes")
    expect(answer).to_contain_text("Votes:")
    expect(answer).to_contain_text("12: 1 vote (attempt 1")
    expect(answer).to_contain_text("Decision: adjudicated")
    expect(answer).to_contain_text("The adjudicator's reason:")
    expect(answer.locator("blockquote")).to_contain_text("Candidate 12 is the one a source states.")
