"""`evaluation.compare` and `submit.py compare`: run dirs written record by record, compared on the same questions."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from evaluation.api import TaskItem
from evaluation.compare import CompareError, bootstrap_diff, compare_runs, render_markdown, write_comparison
from evaluation.store import AnswerRecord, RunStore

REPO = Path(__file__).resolve().parents[2]
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
TASKS = [f"q{i:02d}" for i in range(1, 9)]
TRUTH = {t: str(i * 10) for i, t in enumerate(TASKS, 1)}


def make_run(root: Path, name: str, right: set[str], *, team: str, extra: list[str] | None = None,
             cost: float = 0.01, seconds: float = 2.0, wrong_format: set[str] | None = None) -> Path:
    """A run dir answering TASKS (+ extra); the tasks in `right` correctly, those in `wrong_format` with a
    form GAIA's scorer accepts but exact match does not; the others wrongly."""
    store = RunStore.create(root / name, {"team": {"name": team}, "models": {"solo": f"openai/{team}-model"}})
    tasks = TASKS + (extra or [])
    store.save_tasks([TaskItem(t, f"question {t}", "1", "") for t in tasks])
    for t in tasks:
        truth = TRUTH.get(t, "0")
        if t in (wrong_format or set()):
            answer = f"{truth}.0"
        else:
            answer = truth if t in right else "999"
        store.append(AnswerRecord(t, f"question {t}", "done", answer, seconds, 100, 20, cost))
    return store.path


def labels_file(path: Path, labels: dict[str, str]) -> Path:
    path.write_text("".join(json.dumps({"task_id": t, "final_answer": a}) + "\n" for t, a in labels.items()))
    return path


@pytest.fixture
def runs(tmp_path: Path) -> list[Path]:
    a = make_run(tmp_path, "a", {"q01", "q02", "q03", "q04"}, team="solo")
    b = make_run(tmp_path, "b", {"q01", "q02", "q03", "q04", "q05", "q06"}, team="debate", cost=0.03, seconds=5.0,
                 wrong_format={"q07"}, extra=["only-in-b"])
    c = make_run(tmp_path, "c", {"q02", "q05"}, team="vote", cost=0.05)
    return [a, b, c]


def test_accuracies_totals_and_the_agreement_table_are_exact(runs: list[Path]) -> None:
    c = compare_runs(runs, {**TRUTH, "only-in-b": "0"})
    assert c["common"] == 8 and c["excluded"] == ["only-in-b"]  # not in every run dir: left out
    a, b, v = c["runs"]
    assert (a["strict_correct"], a["gaia_correct"], a["strict_accuracy"]) == (4, 4, 0.5)
    assert (b["strict_correct"], b["gaia_correct"]) == (6, 7)  # q07 "70.0": GAIA's scorer accepts it, exact match not
    assert (b["strict_accuracy"], b["gaia_accuracy"]) == (0.75, 0.875)
    assert (v["strict_correct"], v["gaia_accuracy"]) == (2, 0.25)
    assert a["tokens"] == 8 * 120 and b["duration_s"] == 40.0
    assert b["cost_usd"] == pytest.approx(0.24) and v["cost_usd"] == pytest.approx(0.40)
    assert [r["team"] for r in c["runs"]] == ["solo", "debate", "vote"]
    right = {q["task_id"]: [lbl.split(":")[0] for lbl in q["right_in"]] for q in c["questions"]}
    assert right == {"q01": ["1", "2"], "q02": ["1", "2", "3"], "q03": ["1", "2"], "q04": ["1", "2"],
                     "q05": ["2", "3"], "q06": ["2"], "q07": ["2"], "q08": []}
    assert c["agreement"]["all_right"] == 1 and c["agreement"]["none_right"] == 1 and c["agreement"]["split"] == 6
    assert list(c["agreement"]["only"].values()) == [0, 2, 0]


def test_unlabelled_questions_are_left_out_and_nothing_in_common_is_an_error(runs: list[Path], tmp_path: Path) -> None:
    c = compare_runs(runs, {t: TRUTH[t] for t in TASKS[:4]})
    assert c["common"] == 4 and c["runs"][0]["strict_accuracy"] == 1.0
    with pytest.raises(CompareError, match="share no labelled question"):
        compare_runs(runs, {"elsewhere": "1"})
    with pytest.raises(CompareError, match="at least two"):
        compare_runs([runs[0], runs[0]], TRUTH)


def test_the_bootstrap_interval_holds_the_true_difference_and_is_seeded(runs: list[Path]) -> None:
    c = compare_runs(runs, TRUTH)
    d_b, d_c = c["differences"]
    assert d_b["strict"]["diff"] == 0.25 and d_b["gaia"]["diff"] == 0.375
    assert d_c["gaia"]["diff"] == -0.25
    for d in (d_b["strict"], d_b["gaia"], d_c["strict"], d_c["gaia"]):
        assert d["low"] <= d["diff"] <= d["high"] and d["low"] < d["high"]
        assert d["resamples"] == 10_000
    # b is never worse than a on any question: no resample can make it worse
    assert d_b["strict"]["low"] >= 0
    assert compare_runs(runs, TRUTH)["differences"] == c["differences"]  # the same seed, the same interval
    other = compare_runs(runs, TRUTH, seed=7)["differences"]
    assert other != c["differences"]


def test_bootstrap_covers_a_known_difference() -> None:
    # 200 paired questions: the other run is right on 30 more; the interval holds +0.15 and excludes 0
    base = [i < 100 for i in range(200)]
    other = [i < 130 for i in range(200)]
    d = bootstrap_diff(base, other)
    assert d["diff"] == 0.15 and d["low"] < 0.15 < d["high"] and d["low"] > 0
    assert d["high"] - d["low"] < 0.15  # a paired interval: narrow, since the runs agree on 170 questions
    assert bootstrap_diff(base, other) == d


def test_the_report_has_its_tables_and_the_charts_are_valid_pngs(runs: list[Path], tmp_path: Path) -> None:
    c = compare_runs(runs, TRUTH)
    written = write_comparison(c, tmp_path / "out")
    md = written["markdown"].read_text()
    for name in ("accuracy.png", "cost-time-tokens.png", "agreement.png"):
        png = (tmp_path / "out" / name).read_bytes()
        assert png.startswith(PNG_MAGIC) and len(png) > 2000
        assert f"]({name})" in md
        from PIL import Image

        with Image.open(tmp_path / "out" / name) as im:
            im.verify()
    assert "| 2: b | debate | single | openai/debate-model | 6/8 (75.0%) | 7/8 (87.5%) | 40.0 | 960 |" in md
    assert "| q06 | 60 | ✗ | ✓ | ✗ | run 2 |" in md
    assert "| 2: b | +25.0 | [" in md
    assert json.loads(written["json"].read_text())["runs"][1]["gaia_correct"] == 7
    assert render_markdown(c) == render_markdown(c)


def test_submit_compare_cli(runs: list[Path], tmp_path: Path) -> None:
    labels = labels_file(tmp_path / "labels.jsonl", TRUTH)
    env = {k: v for k, v in os.environ.items() if k != "CI"}
    env.update(COLUMNS="200", ROUNDTABLE_ENV_FILE="")
    out = subprocess.run([sys.executable, str(REPO / "submit.py"), "compare", *map(str, runs), "--labels", str(labels),
                          "--resamples", "2000"], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert "| 1: a | solo | single | openai/solo-model | 4/8 (50.0%) | 4/8 (50.0%) |" in out.stdout
    assert "2,000 resamples" in " ".join(out.stdout.split())
    assert "| q08 | 80 | ✗ | ✗ | ✗ | none |" in out.stdout
    report = runs[0] / "compare" / "compare.md"  # default: under the first run dir
    assert report.exists() and (runs[0] / "compare" / "accuracy.png").read_bytes().startswith(PNG_MAGIC)
    bad = subprocess.run([sys.executable, str(REPO / "submit.py"), "compare", str(runs[0]), str(tmp_path / "nope"),
                          "--labels", str(labels)], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120)
    assert bad.returncode == 1 and "does not exist" in bad.stderr
