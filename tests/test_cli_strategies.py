"""`python -m teams --team vote`: the shipped vote team in the terminal, against the strict provider replicas.

vote.yaml puts its three attempts on openai, anthropic and gemini when each has a key; here each provider is a
local replica whose solo agent answers its own number, so the attempts really differ by provider. The output
shows each attempt's lines behind its number, the attempts side by side and the decision.
"""

from __future__ import annotations

import io
import os
import re
import subprocess
import sys
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import Any

from rich.console import Console

from cli.console import ConsoleRenderer
from config.log import register_secrets
from teams import events as ev
from tests.fakes.replicas import AnthropicReplica, GeminiReplica, OpenAIReplica, ReplicaRequest
from tests.test_cli_replicas import solo_script

ROOT = Path(__file__).resolve().parent.parent
KEY = "sk-test-not-a-real-key-0000"
QUESTION = "What is six times seven?"


def answering(answer: str) -> Any:
    """The replica's solo agent: a calculator call, then `answer` (whatever the calculator said)."""
    def script(req: ReplicaRequest) -> Any:
        step = solo_script(req)
        return step if isinstance(step, dict) else f"The calculator says 42.\nFINAL ANSWER: {answer}"
    return script


ADJUDICATOR = "Only candidate 42 matches the calculator output shown.\nAPPROVED\nFINAL ANSWER: 42"


@contextmanager
def providers(answers: dict[str, str]) -> Iterator[tuple[dict[str, Any], dict[str, str]]]:
    """One replica per provider, its solo agent answering `answers[provider]`; the adjudicator approves 42."""
    kinds = {"openai": (OpenAIReplica, "OPENAI"), "anthropic": (AnthropicReplica, "ANTHROPIC"), "gemini": (GeminiReplica, "GEMINI")}
    with ExitStack() as stack:
        apis, env = {}, {}
        for provider, answer in answers.items():
            cls, prefix = kinds[provider]
            script = {"solo": answering(answer), "default": answering(answer), "adjudicator": [ADJUDICATOR]}
            apis[provider] = stack.enter_context(cls(script, api_key=KEY))
            env.update({f"{prefix}_API_KEY": KEY, f"{prefix}_BASE_URL": apis[provider].url})
        yield apis, env


def run_cli(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    base = {k: v for k, v in os.environ.items() if k in ("PATH", "HOME", "LANG", "TMPDIR")}
    base.update(ROUNDTABLE_ENV_FILE="", SANDBOX_ALLOW_SUBPROCESS="1", COLUMNS="160", **env)
    return subprocess.run([sys.executable, "-m", "teams", QUESTION, "--team", "vote", *args],
                          cwd=ROOT, env=base, capture_output=True, text=True, timeout=240)


def table_rows(out: str) -> dict[int, list[str]]:
    """The attempts table's rows: attempt number -> its cells."""
    rows = {}
    for line in out.splitlines():
        cells = [c.strip() for c in re.split(r"[│┃]", line)[1:-1]]
        if cells and cells[0].isdigit():
            rows[int(cells[0])] = cells
    return rows


def test_the_vote_team_prints_each_attempt_behind_its_number_then_the_attempts_and_the_majority() -> None:
    with providers({"openai": "42", "anthropic": "42", "gemini": "41"}) as (apis, env):
        proc = run_cli(env)
        for api in apis.values():
            api.assert_clean()
    assert proc.returncode == 0, proc.stderr[-3000:]
    out = proc.stdout
    for n, provider in ((1, "openai"), (2, "anthropic"), (3, "gemini")):
        assert f"[{n}] Attempt {n} · solo · {provider}" in out
        assert f"[{n}] solo · turn 1" in out
        assert f"[{n}]   → calculator expression='6*7'" in out  # the attempt's tool call, behind its number
    assert "[3] solo: The calculator says 42." in out and "[3] solo: FINAL ANSWER: 41" in out
    assert "adjudicator" not in out  # a majority needs no adjudicator
    rows = table_rows(out)
    assert [rows[n][2:5] for n in (1, 2, 3)] == [["42", "yes", "approved"], ["42", "yes", "approved"], ["41", "yes", "approved"]]
    # each row's label names the attempt's team and provider (then what else differs, as vote.yaml says)
    assert [rows[n][1].split(" · ")[:2] for n in (1, 2, 3)] == [["solo", "openai"], ["solo", "anthropic"], ["solo", "gemini"]]
    assert all(int(rows[n][5].replace(",", "")) > 0 for n in rows)  # tokens per attempt
    assert "Votes: 42 ×2 (attempts 1, 2); 41 ×1 (attempt 3)" in out
    assert "Decision: majority — majority: '42' 2, '41' 1 of 3" in out
    last = out.strip().splitlines()
    assert last[-2] == "FINAL ANSWER: 42" and last[-1].startswith("vote: majority · 3 attempts")
    assert KEY not in out + proc.stderr


def test_a_three_way_split_shows_the_adjudicators_turn_and_its_decision() -> None:
    with providers({"openai": "42", "anthropic": "41", "gemini": "40"}) as (apis, env):
        proc = run_cli(env)
        for api in apis.values():
            api.assert_clean()
        adjudicated = [r for api in apis.values() for r in api.accepted if r.agent == "adjudicator"]
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert len(adjudicated) == 1
    out = proc.stdout
    assert "adjudicator · turn 1" in out and "Only candidate 42 matches the calculator output shown." in out
    assert "Votes: 42 ×1 (attempt 1); 41 ×1 (attempt 2); 40 ×1 (attempt 3)" in out
    assert "Decision: adjudicated — no majority" in out
    assert out.strip().splitlines()[-2] == "FINAL ANSWER: 42"


def test_a_single_team_prints_no_strategy_lines() -> None:
    with providers({"openai": "42"}) as (_apis, env):
        base = {k: v for k, v in os.environ.items() if k in ("PATH", "HOME", "LANG", "TMPDIR")}
        base.update(ROUNDTABLE_ENV_FILE="", SANDBOX_ALLOW_SUBPROCESS="1", COLUMNS="160", **env)
        proc = subprocess.run([sys.executable, "-m", "teams", QUESTION, "--team", "solo"],
                              cwd=ROOT, env=base, capture_output=True, text=True, timeout=240)
    assert proc.returncode == 0, proc.stderr[-3000:]
    out = proc.stdout
    assert "solo · turn 1" in out and "[1]" not in out and "Attempts" not in out and "Decision" not in out
    assert out.strip().splitlines()[-2] == "FINAL ANSWER: 42"


def test_a_key_split_over_an_attempts_tokens_is_masked_in_the_terminal() -> None:
    secret = "sk-proj-strategyCONSOLEsecret0123456789"
    register_secrets([secret])
    out = io.StringIO()
    render = ConsoleRenderer(Console(file=out, width=120, highlight=False, soft_wrap=True))
    events: list[ev.Event] = [
        ev.AttemptStarted(1, "solo · a", "solo", "vote"), ev.InAttempt(1, ev.TurnStarted("solo", 1)),
        ev.InAttempt(1, ev.Token("solo", "key " + secret[:12])), ev.InAttempt(2, ev.Token("solo", "other line\n")),
        ev.InAttempt(1, ev.Token("solo", secret[12:] + " end")), ev.InAttempt(1, ev.TurnEnded("solo", 1, "x", 1, 1)),
    ]
    for event in events:
        render(event)
    text = out.getvalue()
    assert secret not in text and secret[12:] not in text
    assert "[2] solo: other line" in text and "[1] solo: key ***" in text  # whole lines, each behind its attempt


async def test_an_escalation_prints_why_and_the_escalated_attempt_in_the_table() -> None:
    from config.settings import Settings
    from teams import start_run
    from tests.fakes.function_model import ScriptedModels
    from tests.ui.test_strategy_view import PerAttempt, escalate_team, tool_then_answer

    scripts = {"m0": ScriptedModels({"solo": ["I think it is 7.\nFINAL ANSWER: 7"]}),
               "m1": ScriptedModels({"solo": tool_then_answer("4")})}
    run = start_run("How many lamps are lit?", escalate_team(), settings=Settings(_env_file=None),
                    client_factory=PerAttempt(scripts).factory)
    out = io.StringIO()
    render = ConsoleRenderer(Console(file=out, width=160, highlight=False, soft_wrap=True))
    async for event in run.events():
        render(event)
    text = out.getvalue()
    assert "⇪ Escalating: an answer appears in no tool result or program output" in text
    assert "[2] Attempt 2 · solo · strong (escalation) started" in text
    assert text.index("[1] solo: FINAL ANSWER: 7") < text.index("⇪ Escalating") < text.index("[2]   → calculator")
    rows = table_rows(text)
    assert rows[1][1:3] == ["solo · cheap (first)", "7"] and rows[2][1:3] == ["solo · strong (escalation)", "4"]
    assert "Answers: 7 ×1 (attempt 1); 4 ×1 (attempt 2)" in text
    assert "Decision: escalated — escalated (an answer appears in no tool result" in text
    assert text.strip().splitlines()[-2] == "FINAL ANSWER: 4"
