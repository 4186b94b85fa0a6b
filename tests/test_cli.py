"""`python -m teams`: a readable debate and a final answer in the terminal, against the scripted server."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from tests.test_debate import QUESTION, debate_script

ROOT = Path(__file__).resolve().parent.parent


def run_cli(args: list[str], env: dict[str, str], stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    base = {k: v for k, v in os.environ.items() if k in ("PATH", "HOME", "LANG", "TMPDIR")}
    base.update(ROUNDTABLE_ENV_FILE="", SANDBOX_ALLOW_SUBPROCESS="1", COLUMNS="100", **env)
    return subprocess.run(
        [sys.executable, "-m", "teams", *args], cwd=ROOT, env=base, input=stdin, capture_output=True, text=True, timeout=120
    )


def model_env(server) -> dict[str, str]:
    return {"OPENAI_API_KEY": "sk-test-cli-000000", "OPENAI_BASE_URL": server.url, "LLM_PROVIDER": "openai"}


def test_prints_the_debate_and_the_final_answer(llm_server) -> None:
    server = llm_server(debate_script())
    proc = run_cli([QUESTION], model_env(server))
    assert proc.returncode == 0, proc.stderr
    out = proc.stdout
    for header in ("planner · turn 1", "researcher · turn 2", "coder · turn 4", "critic · turn 5", "critic · turn 7"):
        assert header in out
    assert "→ calculator expression='1200 + 3400'" in out
    assert "print(sum([1200, 3400]))" in out and "exit code 0" in out  # the code run, and its result
    assert "✘ rejected: 4,600 inhabitants" in out
    assert "FINAL ANSWER: 4600" in out.splitlines()[-2]
    assert "approved by critic" in out.splitlines()[-1] and "tokens" in out.splitlines()[-1]
    assert "sk-test-cli" not in out + proc.stderr


def test_quiet_and_json_output_read_the_question_from_stdin(llm_server) -> None:
    server = llm_server(debate_script())
    proc = run_cli(["-", "--quiet", "--json"], model_env(server), stdin=QUESTION)
    assert proc.returncode == 0, proc.stderr
    first, rest = proc.stdout.split("\n", 1)
    assert first == "4600"
    data = json.loads(rest)
    assert data["answer"] == "4600" and data["approved"] is True and data["usage"]["critic"]["calls"] == 2


def test_missing_key_and_broken_team_exit_with_a_clear_message(tmp_path: Path) -> None:
    proc = run_cli(["What is 2+2?"], {"LLM_PROVIDER": "openai"})
    assert proc.returncode == 2 and "LLM provider 'openai' needs OPENAI_API_KEY" in proc.stderr
    bad = tmp_path / "bad.yaml"
    bad.write_text("name: x\nagents: []\n")
    proc = run_cli(["What is 2+2?", "--team", str(bad)], {"OPENAI_API_KEY": "sk-x"})
    assert proc.returncode == 2 and f"{bad}: agents: a team needs at least one agent" in proc.stderr
    proc = run_cli(["What?", "--file", str(tmp_path / "missing.xlsx")], {"OPENAI_API_KEY": "sk-x"})
    assert proc.returncode == 2 and "attachment not found" in proc.stderr


def test_the_installed_commands_start() -> None:
    """`pip install` puts roundtable, roundtable-submit and roundtable-sandbox next to the interpreter."""
    bindir = Path(sys.executable).parent
    for command, expected in (("roundtable", "question"), ("roundtable-submit", "COMMAND"), ("roundtable-sandbox", "status")):
        done = subprocess.run([str(bindir / command), "--help"], capture_output=True, text=True, timeout=60)
        assert done.returncode == 0 and expected in done.stdout, (command, done.stderr[-500:])
