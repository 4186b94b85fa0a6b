"""`submit.py eval` per strategy: one row per run dir, one per attempt scored as if submitted alone, tokens and
cost per correct answer, escalations counted; old run dirs still evaluate; the report files carry it all.

The run dirs here are written record by record (invented tasks and answers), so every figure is known; the
vote and escalate records have the shape evaluation/batch.py writes from a strategy's Result
(tests/evaluation/test_strategy_records.py runs the real thing).
"""

from __future__ import annotations

import io
import json
from pathlib import Path
from typing import Any

import pytest
from rich.console import Console

import submit
from evaluation.api import TaskItem
from evaluation.report import build_report, render_markdown, summary_rows
from evaluation.store import AnswerRecord, RunStore, strategy_fields

LABELS = {"t1": "17", "t2": "paris", "t3": "Lake Varn", "t4": "9"}
TASKS = [TaskItem(t, f"invented question {t}", "1", "") for t in LABELS]


def attempt(number: int, answer: str, stage: str = "vote", team: str = "solo", label: str | None = None,
            tokens: tuple[int, int] = (90, 10), cost: float | None = 0.01) -> dict[str, Any]:
    return {"number": number, "label": label or f"{team} · provider{number}", "team": team, "stage": stage,
            "answer": answer, "raw_answer": answer, "approved": bool(answer), "stop_reason": "approved" if answer else "max_turns",
            "duration_s": 1.0, "prompt_tokens": tokens[0], "completion_tokens": tokens[1], "cost_usd": cost}


def strategy_record(task_id: str, kind: str, answer: str, attempts: list[dict[str, Any]], method: str, reason: str,
                    extra_tokens: int = 0, extra_cost: float = 0.0) -> AnswerRecord:
    prompt = sum(a["prompt_tokens"] for a in attempts) + extra_tokens
    completion = sum(a["completion_tokens"] for a in attempts)
    cost = round(sum(a["cost_usd"] for a in attempts) + extra_cost, 6)
    result = {"answer": answer, "strategy": kind, "attempts": attempts,
              "decision": {"method": method, "reason": reason, "groups": [], "adjudicator": None}}
    return AnswerRecord(task_id, f"invented question {task_id}", "done" if answer else "failed", answer, 3.0, prompt,
                        completion, cost, stop_reason=method, **strategy_fields(result), result=result)


def make_store(path: Path, team: str, kind: str, records: list[AnswerRecord]) -> RunStore:
    config = {"name": team, "strategy": {"kind": kind}}
    store = RunStore.create(path, {"team": {"name": team, "config": config}})
    store.save_tasks(TASKS)
    for rec in records:
        store.append(rec)
    return store


def vote_run(path: Path) -> RunStore:
    return make_store(path, "vote", "vote", [
        strategy_record("t1", "vote", "17", [attempt(1, "17"), attempt(2, "17"), attempt(3, "18")], "majority", "majority: '17' 2, '18' 1 of 3"),
        strategy_record("t2", "vote", "Paris", [attempt(1, "Rome"), attempt(2, "Paris"), attempt(3, "paris")], "majority", "majority: 'Paris' 2"),
        strategy_record("t3", "vote", "Lake Varn", [attempt(1, "Lake Varn"), attempt(2, "Lake Ossel"), attempt(3, "")],
                        "adjudicated", "no majority; the adjudicator picked 'Lake Varn': the excerpt names it", extra_tokens=50, extra_cost=0.005),
        strategy_record("t4", "vote", "9", [attempt(1, "9"), attempt(2, "9"), attempt(3, "8")], "majority", "majority: '9' 2"),
    ])


def escalate_run(path: Path) -> RunStore:
    first: dict[str, Any] = {"stage": "first", "label": "solo · default tier"}
    debate: dict[str, Any] = {"stage": "escalated", "team": "debate", "label": "debate", "tokens": (900, 100), "cost": 0.1}
    return make_store(path, "escalate", "escalate", [
        strategy_record("t1", "escalate", "17", [attempt(1, "17", **first)], "first", "the first attempt passed its checks"),
        strategy_record("t2", "escalate", "Paris", [attempt(1, "Rome", **first), attempt(2, "Paris", **debate)], "escalated", "escalated (no evidence)"),
        strategy_record("t3", "escalate", "Lake Varn", [attempt(1, "Lake Varn", **first)], "first", "the first attempt passed its checks"),
        strategy_record("t4", "escalate", "8", [attempt(1, "8", **first), attempt(2, "", **debate)], "escalated", "escalated; no answer"),
    ])


def old_single_run(path: Path) -> RunStore:
    """A run dir as submit.py wrote it before strategies: no strategy fields, no strategy in the team config."""
    store = RunStore.create(path, {"team": {"name": "solo", "config": {"name": "solo"}}})
    store.save_tasks(TASKS)
    lines: list[dict[str, Any]] = [{"task_id": t, "question": f"invented question {t}", "state": "done", "answer": a, "duration_s": 2.0,
              "prompt_tokens": 180, "completion_tokens": 20, "cost_usd": 0.02, "error": None, "stop_reason": "approved",
              "approved": True, "attachments": [], "finished_at": "2026-11-01T10:00:00+00:00", "attempt": 1,
              "result": {"answer": a, "trace": []}}
             for t, a in {"t1": "17", "t2": "Rome", "t3": "Lake Varn", "t4": "8"}.items()]
    (path / "answers.jsonl").write_text("".join(json.dumps(line) + "\n" for line in lines))
    return store


def test_a_vote_is_scored_beside_each_of_its_attempts_as_if_submitted_alone(tmp_path: Path) -> None:
    report = build_report(vote_run(tmp_path / "vote"), LABELS)
    s = report["summary"]
    assert (s["strategy"], s["team"], s["labelled"], s["strict_correct"], s["gaia_correct"]) == ("vote", "vote", 4, 3, 4)
    assert s["tokens"] == 1250 and s["tokens_per_correct"] == pytest.approx(312.5)
    assert s["cost_per_correct"] == pytest.approx(0.03125)
    assert (s["gain_over_best_attempt"], s["best_attempt"]) == (0.25, 1)
    by_number = {a["number"]: a for a in report["attempts"]}
    assert [(a["gaia_correct"], a["strict_correct"], a["labelled"]) for a in by_number.values()] == [(3, 3, 4), (3, 2, 4), (1, 1, 4)]
    assert by_number[1]["tokens"] == 400 and by_number[1]["tokens_per_correct"] == pytest.approx(400 / 3)
    assert by_number[2]["tokens_per_correct"] == pytest.approx(400 / 3)  # GAIA's 3 correct, not strict's 2
    assert by_number[2]["cost_per_correct"] == pytest.approx(0.04 / 3)
    assert by_number[3]["answered"] == 3 and by_number[2]["label"] == "solo · provider2"
    rows = {r["task_id"]: r for r in report["rows"]}
    assert [(a["answer"], a["gaia"]) for a in rows["t3"]["attempts"]] == [("Lake Varn", True), ("Lake Ossel", False), ("", False)]
    assert rows["t3"]["decision"] == "adjudicated" and "the excerpt names it" in rows["t3"]["decision_reason"]

    md = render_markdown(report)
    assert "| vote | vote | 4 | 3/4 (75.0%) | 4/4 (100.0%) | 1,250 | 312 | $0.0312 | +25.0 points over the best attempt (1) |" in md
    assert "| ↳ attempt 3 · solo · provider3 | alone | 4 | 1/4 (25.0%) | 1/4 (25.0%) | 400 | 400 | $0.0400 |" in md
    assert "1: Lake Varn ✓ · 2: Lake Ossel ✗ · 3: (none) ✗ | adjudicated |" in md
    assert "- t3: no majority; the adjudicator picked 'Lake Varn'" in md


def test_an_escalation_counts_its_escalations_and_scores_the_debate_where_it_ran(tmp_path: Path) -> None:
    report = build_report(escalate_run(tmp_path / "esc"), LABELS)
    s = report["summary"]
    assert (s["strategy"], s["escalated"], s["gaia_correct"]) == ("escalate", 2, 3)
    first, debate = report["attempts"]
    assert (first["stage"], first["labelled"], first["gaia_correct"], first["ran"]) == ("first", 4, 2, 4)
    assert (debate["stage"], debate["labelled"], debate["gaia_correct"], debate["ran"]) == ("escalated", 2, 1, 2)
    assert debate["gaia_accuracy"] == 0.5 and debate["tokens"] == 2000
    assert [r["escalated"] for r in report["rows"]] == [False, True, False, True]
    rows = summary_rows([report])
    assert rows[0]["note"] == "escalated 2 of 4 questions"
    assert rows[2]["strategy"] == "escalation only" and rows[2]["note"] == "ran on the 2 escalated questions"


def test_a_run_dir_from_before_strategies_still_evaluates_as_single(tmp_path: Path) -> None:
    report = build_report(old_single_run(tmp_path / "old"), LABELS)
    assert report["strategy"] == "single" and report["attempts"] == []
    assert all(r["attempts"] == [] and r["decision"] is None for r in report["rows"])
    s = report["summary"]
    assert (s["gaia_correct"], s["tokens"], s["tokens_per_correct"]) == (2, 800, 400)
    assert "gain_over_best_attempt" not in s and "escalated" not in s
    md = render_markdown(report)
    assert "| attempts |" not in md and "How each answer was chosen" not in md
    assert "| solo | single | 4 | 2/4 (50.0%) | 2/4 (50.0%) | 800 | 400 | $0.0400 |" in md


def run_eval(monkeypatch: pytest.MonkeyPatch, *argv: str) -> tuple[int, str]:
    out = io.StringIO()
    monkeypatch.setattr(submit, "console", Console(file=out, width=250, highlight=False, soft_wrap=True))
    monkeypatch.setattr(submit, "err", Console(file=out, width=250, highlight=False, soft_wrap=True))
    code = submit.main(["eval", *argv])
    return code, out.getvalue()


def test_eval_with_several_run_dirs_prints_one_row_per_strategy_and_attempt(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    vote_run(tmp_path / "vote")
    old_single_run(tmp_path / "solo")
    escalate_run(tmp_path / "esc")
    labels = tmp_path / "labels.jsonl"
    labels.write_text("".join(json.dumps({"task_id": t, "final_answer": a}) + "\n" for t, a in LABELS.items()))
    code, out = run_eval(monkeypatch, "--run-dir", str(tmp_path / "solo"), str(tmp_path / "vote"),
                         "--run-dir", str(tmp_path / "esc"), "--labels", str(labels))
    assert code == 0, out
    lines = [" ".join(line.split()) for line in out.splitlines()]
    assert any("│ solo │ single │ 4 │ 2/4 (50.0%) │ 2/4 (50.0%) │ 800 │ 400 │ $0.0400 │" in line for line in lines), out
    assert any("│ vote │ vote │ 4 │ 3/4 (75.0%) │ 4/4 (100.0%) │ 1,250 │ 312 │ $0.0312 │ +25.0 points over the best attempt (1)"
               in line for line in lines), out
    assert sum("↳ attempt" in line for line in lines) == 5  # three vote attempts, escalate's solo and its debate
    assert any("↳ attempt 2 · solo · provider2 │ alone │ 4 │ 2/4 (50.0%) │ 3/4 (75.0%) │ 400 │ 133" in line for line in lines)
    assert any("escalate │ escalate │ 4" in line and "escalated 2 of 4 questions" in line for line in lines)
    assert not any("task_id" in line for line in lines)  # no per-question table when comparing

    for name in ("solo", "vote", "esc"):
        report = json.loads((tmp_path / name / "report.json").read_text())
        assert [r["name"] for r in report["comparison"] if r["kind"] == "run"] == ["solo", "vote", "escalate"]
        assert "## Accuracy per strategy" in (tmp_path / name / "report.md").read_text()


def test_eval_of_one_strategy_run_dir_shows_each_questions_attempts(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    vote_run(tmp_path / "vote")
    labels = tmp_path / "labels.jsonl"
    labels.write_text("".join(json.dumps({"task_id": t, "final_answer": a}) + "\n" for t, a in LABELS.items()))
    code, out = run_eval(monkeypatch, "--run-dir", str(tmp_path / "vote"), "--labels", str(labels))
    assert code == 0, out
    flat = " ".join(out.split())
    assert "attempts" in flat and "1: Lake Varn ✓ 2: Lake Ossel ✗ 3: (none) ✗ → adjudicated" in flat
    assert "GAIA scorer: 4/4 (100.0%)" in flat and "↳ attempt 1 · solo · provider1" in flat
    assert "comparison" not in json.loads((tmp_path / "vote" / "report.json").read_text())
