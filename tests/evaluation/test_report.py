"""Local evaluation: labels with bad lines, strict and GAIA scoring side by side, the written reports."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from evaluation.api import TaskItem
from evaluation.report import ReportError, build_report, load_labels, render_markdown, write_report
from evaluation.store import AnswerRecord, RunStore


def make_run(tmp_path: Path) -> RunStore:
    store = RunStore.create(tmp_path / "run", {"team": {"name": "solo"}})
    store.save_tasks([TaskItem(t, f"question {t}", "1", "") for t in ("t1", "t2", "t3", "t4", "t5")])
    answers = {"t1": "17", "t2": "abo,mek,zib", "t3": "Paris", "t5": "wrong"}
    for task_id, answer in answers.items():
        store.append(AnswerRecord(task_id, f"question {task_id}", "done", answer, 2.0, 100, 10, 0.01))
    store.append(AnswerRecord("t4", "question t4", "failed", "", 1.0, 50, 5, 0.005, error="timed out"))
    return store


def write_labels(path: Path, lines: list[str]) -> Path:
    path.write_text("\n".join(lines) + "\n")
    return path


def test_bad_label_lines_are_reported_by_number_and_skipped(tmp_path: Path) -> None:
    labels, problems = load_labels(write_labels(tmp_path / "labels.jsonl", [
        json.dumps({"task_id": "t1", "final_answer": "17"}),
        "{not json",
        json.dumps(["t2", "x"]),
        json.dumps({"final_answer": "x"}),
        json.dumps({"task_id": "t3"}),
        "",
        json.dumps({"task_id": "t1", "final_answer": "18"}),
        json.dumps({"task_id": "t5", "final_answer": 12}),
    ]))
    assert labels == {"t1": "17", "t5": "12"}
    assert problems == [
        "labels.jsonl line 2: not valid JSON (Expecting property name enclosed in double quotes); skipped",
        "labels.jsonl line 3: a JSON list, not an object with task_id and final_answer; skipped",
        "labels.jsonl line 4: no task_id; skipped",
        "labels.jsonl line 5 (t3): final_answer is missing; skipped",
        "labels.jsonl line 7: t1 is labelled again (first on line 1); the first label is kept",
    ]


def test_an_unusable_labels_file_is_one_clear_error(tmp_path: Path) -> None:
    with pytest.raises(ReportError, match="not found"):
        load_labels(tmp_path / "missing.jsonl")
    with pytest.raises(ReportError, match="holds no usable label: labels.jsonl line 1: not valid JSON"):
        load_labels(write_labels(tmp_path / "labels.jsonl", ["nope"]))
    with pytest.raises(ReportError, match="the file is empty"):
        load_labels(write_labels(tmp_path / "empty.jsonl", [""]))


def test_strict_and_gaia_scores_side_by_side(tmp_path: Path) -> None:
    store = make_run(tmp_path)
    labels = {"t1": "17", "t2": "abo, mek, zib", "t3": "paris", "t4": "9", "t5": "right", "elsewhere": "x"}
    report = build_report(store, labels, ["a skipped line"])
    rows = {r["task_id"]: r for r in report["rows"]}
    assert (rows["t1"]["strict"], rows["t1"]["gaia"]) == (True, True)
    assert (rows["t2"]["strict"], rows["t2"]["gaia"]) == (False, True)  # a formatting problem
    assert (rows["t3"]["strict"], rows["t3"]["gaia"]) == (False, True)
    assert (rows["t4"]["strict"], rows["t4"]["gaia"]) == (False, False)  # unanswered counts as wrong
    assert (rows["t5"]["strict"], rows["t5"]["gaia"]) == (False, False)
    t = report["totals"]
    assert (t["labelled"], t["strict_correct"], t["gaia_correct"]) == (5, 1, 3)
    assert (t["strict_accuracy"], t["gaia_accuracy"]) == (0.2, 0.6)
    assert (t["answered"], t["failed"], t["prompt_tokens"], t["completion_tokens"]) == (4, 1, 450, 45)
    assert t["cost_usd"] == pytest.approx(0.045) and t["duration_s"] == 9.0
    assert report["formatting_problems"] == ["t2", "t3"]
    assert report["labels_not_in_run"] == ["elsewhere"]

    json_path, md_path = write_report(store, report)
    assert json.loads(json_path.read_text())["totals"] == t
    md = md_path.read_text()
    assert "| correct | 1/5 | 3/5 |" in md and "| accuracy | 20.0% | 60.0% |" in md
    assert "| 2 | t2 | abo,mek,zib | abo, mek, zib | ✗ | ✓ |" in md
    assert "(failed: timed out)" in md and "- a skipped line" in md


def test_unlabelled_questions_are_shown_but_not_counted(tmp_path: Path) -> None:
    report = build_report(make_run(tmp_path), {"t1": "17"})
    assert report["totals"]["labelled"] == 1 and report["totals"]["strict_accuracy"] == 1.0
    assert report["unlabelled"] == ["t2", "t3", "t4", "t5"]
    assert "(no label)" in render_markdown(report)
