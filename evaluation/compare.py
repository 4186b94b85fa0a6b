"""Several run dirs side by side on the same questions: teams, strategies and models compared.

`compare_runs` scores every run dir with `evaluation.report.build_report` (strict exact match and GAIA's
scorer, the same labels file), keeps the questions that every run dir holds and the labels file labels (the
*common* questions), and gives per run dir: accuracy (strict, GAIA), cost, question time and tokens; per
question: each run dir's answer, marks, time, tokens and cost; the agreement table (which run dirs got each
question right, by the GAIA scorer); and for every run dir after the first, its accuracy difference against
the first with a paired bootstrap confidence interval (questions resampled with replacement, the same resample
for both run dirs; seeded, so the interval is the same on every call).

`write_comparison` writes compare.json, compare.md and the charts (PNG, matplotlib's Agg backend) into an
output dir: `<first run dir>/compare/` unless told otherwise.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from evaluation.report import build_report
from evaluation.store import RunStore, now_iso
from models.usage import format_cost, total_cost

COMPARE_DIR, COMPARE_JSON, COMPARE_MD = "compare", "compare.json", "compare.md"
CHART_ACCURACY, CHART_COSTS, CHART_AGREEMENT = "accuracy.png", "cost-time-tokens.png", "agreement.png"
RESAMPLES, SEED, CONFIDENCE = 10_000, 20261202, 0.95


class CompareError(Exception):
    """The run dirs cannot be compared; the message says why."""


@dataclass
class _Priced:
    prompt_tokens: int
    completion_tokens: int
    cost_usd: float | None


def bootstrap_diff(base: list[bool], other: list[bool], *, resamples: int = RESAMPLES, seed: int = SEED,
                   confidence: float = CONFIDENCE) -> dict[str, Any]:
    """accuracy(other) - accuracy(base) over paired questions, and its percentile bootstrap interval."""
    import numpy as np

    if len(base) != len(other):
        raise ValueError("paired lists must have the same length")
    n = len(base)
    if n == 0:
        return {"diff": None, "low": None, "high": None, "resamples": resamples, "seed": seed, "confidence": confidence}
    a = np.asarray(base, dtype=float)
    b = np.asarray(other, dtype=float)
    rng = np.random.default_rng(seed)
    idx = rng.integers(0, n, size=(resamples, n))
    diffs = b[idx].mean(axis=1) - a[idx].mean(axis=1)
    tail = (1 - confidence) / 2
    low, high = np.quantile(diffs, [tail, 1 - tail])
    return {"diff": round(float(b.mean() - a.mean()), 4), "low": round(float(low), 4), "high": round(float(high), 4),
            "resamples": resamples, "seed": seed, "confidence": confidence}


def _run_label(report: dict[str, Any], index: int) -> str:
    return f"{index + 1}: {Path(report['run_dir']).name}"


def _models_text(models: dict[str, str]) -> str:
    return ", ".join(sorted(set(models.values()))) if models else "?"


def compare_runs(run_dirs: list[Path], labels: dict[str, str], problems: list[str] | None = None, *,
                 resamples: int = RESAMPLES, seed: int = SEED) -> dict[str, Any]:
    """The comparison of `run_dirs` (two or more, the first is the baseline) on their common labelled questions.
    Raises RunDirError (a run dir) or CompareError (nothing to compare)."""
    dirs = list(dict.fromkeys(Path(d) for d in run_dirs))
    if len(dirs) < 2:
        raise CompareError("compare needs at least two different run dirs")
    stores = [RunStore.open(d) for d in dirs]
    reports = [build_report(s, labels, problems) for s in stores]
    by_task = [{r["task_id"]: r for r in rep["rows"]} for rep in reports]
    order = [r["task_id"] for r in reports[0]["rows"]]
    common = [t for t in order if t in labels and all(t in rows for rows in by_task)]
    if not common:
        raise CompareError("the run dirs share no labelled question: they must answer the same questions, and the "
                           "labels file must label some of them")
    excluded = sorted({t for rows in by_task for t in rows} - set(common))
    runs: list[dict[str, Any]] = []
    for i, (store, rep, rows) in enumerate(zip(stores, reports, by_task, strict=True)):
        mine = [rows[t] for t in common]
        ran = [r for r in mine if r["state"] != "pending"]
        strict_ok = sum(bool(r["strict"]) for r in mine)
        gaia_ok = sum(bool(r["gaia"]) for r in mine)
        cost = total_cost(_Priced(r["prompt_tokens"], r["completion_tokens"], r["cost_usd"]) for r in ran) if ran else None
        runs.append({
            "index": i, "label": _run_label(rep, i), "run_dir": str(store.path), "team": rep.get("team") or "?",
            "strategy": rep.get("strategy", "single"), "models": rep.get("models") or {},
            "models_text": _models_text(rep.get("models") or {}),
            "questions": len(common), "answered": sum(r["state"] == "done" for r in mine),
            "strict_correct": strict_ok, "gaia_correct": gaia_ok,
            "strict_accuracy": round(strict_ok / len(common), 4), "gaia_accuracy": round(gaia_ok / len(common), 4),
            "duration_s": round(sum(r["duration_s"] for r in mine), 3),
            "prompt_tokens": sum(r["prompt_tokens"] for r in mine),
            "completion_tokens": sum(r["completion_tokens"] for r in mine),
            "tokens": sum(r["prompt_tokens"] + r["completion_tokens"] for r in mine),
            "cost_usd": cost,
        })
    questions: list[dict[str, Any]] = []
    for t in common:
        cells = [rows[t] for rows in by_task]
        right = [runs[i]["label"] for i, c in enumerate(cells) if c["gaia"]]
        questions.append({
            "task_id": t, "question": cells[0]["question"], "truth": labels[t],
            "runs": [{"answer": c["answer"], "state": c["state"], "strict": bool(c["strict"]), "gaia": bool(c["gaia"]),
                      "duration_s": c["duration_s"], "tokens": c["prompt_tokens"] + c["completion_tokens"],
                      "cost_usd": c["cost_usd"]} for c in cells],
            "right_in": right,
        })
    differences = []
    for i in range(1, len(runs)):
        diff: dict[str, Any] = {"run": runs[i]["label"], "against": runs[0]["label"]}
        for scorer in ("strict", "gaia"):
            base = [q["runs"][0][scorer] for q in questions]
            other = [q["runs"][i][scorer] for q in questions]
            diff[scorer] = bootstrap_diff(base, other, resamples=resamples, seed=seed)
        differences.append(diff)
    n_runs = len(runs)
    agreement = {
        "all_right": sum(len(q["right_in"]) == n_runs for q in questions),
        "none_right": sum(not q["right_in"] for q in questions),
        "split": sum(0 < len(q["right_in"]) < n_runs for q in questions),
        "only": {r["label"]: sum(q["right_in"] == [r["label"]] for q in questions) for r in runs},
    }
    return {
        "created_at": now_iso(), "runs": runs, "questions": questions, "differences": differences,
        "agreement": agreement, "common": len(common), "excluded": excluded,
        "label_problems": list(problems or []), "bootstrap": {"resamples": resamples, "seed": seed, "confidence": CONFIDENCE},
    }


# --- rendering ---------------------------------------------------------------------------------------------
def _cell(value: Any) -> str:
    text = "" if value is None else str(value)
    return " ".join(text.split()).replace("|", "\\|") or " "


def _pct(value: float | None) -> str:
    return "n/a" if value is None else f"{100 * value:.1f}%"


def _points(value: float | None) -> str:
    return "n/a" if value is None else f"{100 * value:+.1f}"


def _mark(ok: bool) -> str:
    return "✓" if ok else "✗"


def totals_table(c: dict[str, Any]) -> list[str]:
    lines = ["| run | team | strategy | models | strict | GAIA | time (s) | tokens | cost |",
             "|---|---|---|---|---|---|---|---|---|"]
    for r in c["runs"]:
        lines.append(
            f"| {_cell(r['label'])} | {_cell(r['team'])} | {_cell(r['strategy'])} | {_cell(r['models_text'])} "
            f"| {r['strict_correct']}/{r['questions']} ({_pct(r['strict_accuracy'])}) "
            f"| {r['gaia_correct']}/{r['questions']} ({_pct(r['gaia_accuracy'])}) | {r['duration_s']:.1f} "
            f"| {r['tokens']:,} | {_cell(format_cost(r['cost_usd']))} |"
        )
    return lines


def differences_table(c: dict[str, Any]) -> list[str]:
    b = c["bootstrap"]
    lines = [f"Accuracy difference against {_cell(c['runs'][0]['label'])}, in points, with a {100 * b['confidence']:.0f}% "
             f"paired bootstrap interval ({b['resamples']:,} resamples of the {c['common']} questions, seed {b['seed']}):",
             "", "| run | strict | strict CI | GAIA | GAIA CI |", "|---|---|---|---|---|"]
    for d in c["differences"]:
        s, g = d["strict"], d["gaia"]
        lines.append(f"| {_cell(d['run'])} | {_points(s['diff'])} | [{_points(s['low'])}, {_points(s['high'])}] "
                     f"| {_points(g['diff'])} | [{_points(g['low'])}, {_points(g['high'])}] |")
    return lines


def agreement_table(c: dict[str, Any]) -> list[str]:
    heads = [f"run {r['index'] + 1}" for r in c["runs"]]
    lines = ["| task_id | expected | " + " | ".join(heads) + " | right in |", "|---|---|" + "---|" * len(heads) + "---|"]
    for q in c["questions"]:
        marks = " | ".join(_mark(x["gaia"]) for x in q["runs"])
        right = ", ".join(f"run {lbl.split(':', 1)[0]}" for lbl in q["right_in"]) or "none"
        lines.append(f"| {_cell(q['task_id'])} | {_cell(q['truth'])} | {marks} | {right} |")
    a = c["agreement"]
    lines += ["", f"All right: {a['all_right']} · none right: {a['none_right']} · split: {a['split']} · "
              + " · ".join(f"only {_cell(k)}: {v}" for k, v in a["only"].items())]
    return lines


def questions_table(c: dict[str, Any]) -> list[str]:
    lines = ["| task_id | run | answer | strict | GAIA | time (s) | tokens | cost |", "|---|---|---|---|---|---|---|---|"]
    for q in c["questions"]:
        for r, x in zip(c["runs"], q["runs"], strict=True):
            answer = x["answer"] if x["state"] == "done" else f"({x['state']})"
            lines.append(f"| {_cell(q['task_id'])} | {r['index'] + 1} | {_cell(answer)} | {_mark(x['strict'])} "
                         f"| {_mark(x['gaia'])} | {x['duration_s']:.1f} | {x['tokens']:,} "
                         f"| {_cell(format_cost(x['cost_usd']) if x['state'] != 'pending' else '')} |")
    return lines


def render_markdown(c: dict[str, Any], charts: list[str] | None = None) -> str:
    lines = [f"# Comparison of {len(c['runs'])} run dirs", "",
             f"{c['common']} common labelled questions (in every run dir and in the labels file)."
             + (f" Left out (not in every run dir, or unlabelled): {len(c['excluded'])}." if c["excluded"] else ""),
             "", "## Totals", "", *totals_table(c), "", "## Differences", "", *differences_table(c), ""]
    names = charts or []
    if names:
        lines += ["## Charts", "", *[f"![{Path(n).stem}]({n})" for n in names], ""]
    lines += ["## Agreement (GAIA scorer)", "", *agreement_table(c), "", "## Per question", "", *questions_table(c), ""]
    lines += ["Runs:", *[f"- run {r['index'] + 1}: `{_cell(r['run_dir'])}`" for r in c["runs"]]]
    if c["label_problems"]:
        lines += ["", "Skipped label lines:", *[f"- {_cell(p)}" for p in c["label_problems"]]]
    return "\n".join(lines) + "\n"


# --- charts ------------------------------------------------------------------------------------------------
def write_charts(c: dict[str, Any], out_dir: Path) -> list[Path]:
    """accuracy.png (strict and GAIA, with the bootstrap intervals), cost-time-tokens.png, agreement.png."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    out_dir.mkdir(parents=True, exist_ok=True)
    runs = c["runs"]
    names = [f"run {r['index'] + 1}" for r in runs]
    x = range(len(runs))
    paths = []

    fig, ax = plt.subplots(figsize=(max(4.0, 1.4 * len(runs) + 2), 3.2), dpi=100)
    width = 0.38
    for offset, key, colour in ((-width / 2, "strict_accuracy", "#4c72b0"), (width / 2, "gaia_accuracy", "#55a868")):
        values = [100 * r[key] for r in runs]
        ax.bar([i + offset for i in x], values, width, label=key.split("_")[0], color=colour)
    ax.set_xticks(list(x), names)
    ax.set_ylim(0, 105)
    ax.set_ylabel("accuracy (%)")
    ax.set_title(f"Accuracy on {c['common']} common questions")
    ax.legend(loc="upper right", fontsize=8)
    fig.tight_layout()
    paths.append(out_dir / CHART_ACCURACY)
    fig.savefig(paths[-1], format="png")
    plt.close(fig)

    fig, axes = plt.subplots(1, 3, figsize=(max(7.5, 2.2 * len(runs) + 4), 2.8), dpi=100)
    for ax, key, title in zip(axes, ("cost_usd", "duration_s", "tokens"), ("cost ($)", "question time (s)", "tokens"), strict=True):
        ax.bar(list(x), [float(r[key] or 0) for r in runs], color="#8172b2")
        ax.set_xticks(list(x), names)
        ax.set_title(title + (" (unknown counts 0)" if key == "cost_usd" and any(r[key] is None for r in runs) else ""),
                     fontsize=9)
    fig.tight_layout()
    paths.append(out_dir / CHART_COSTS)
    fig.savefig(paths[-1], format="png")
    plt.close(fig)

    qs = c["questions"]
    fig, ax = plt.subplots(figsize=(max(4.0, 1.1 * len(runs) + 3), max(2.0, 0.3 * len(qs) + 1)), dpi=100)
    grid = [[1.0 if q["runs"][i]["gaia"] else 0.0 for i in range(len(runs))] for q in qs]
    ax.imshow(grid, cmap="RdYlGn", vmin=0, vmax=1, aspect="auto")
    ax.set_xticks(list(x), names)
    ax.set_yticks(range(len(qs)), [q["task_id"][:24] for q in qs], fontsize=7)
    ax.set_title("Right (green) / wrong (red), GAIA scorer", fontsize=9)
    fig.tight_layout()
    paths.append(out_dir / CHART_AGREEMENT)
    fig.savefig(paths[-1], format="png")
    plt.close(fig)
    return paths


def default_out_dir(run_dirs: list[Path]) -> Path:
    return Path(run_dirs[0]) / COMPARE_DIR


def write_comparison(c: dict[str, Any], out_dir: Path) -> dict[str, Path]:
    """compare.json, compare.md (charts linked by file name, next to it) and the chart PNGs."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    charts = write_charts(c, out_dir)
    md = out_dir / COMPARE_MD
    md.write_text(render_markdown(c, [p.name for p in charts]), encoding="utf-8")
    js = out_dir / COMPARE_JSON
    js.write_text(json.dumps(c, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    return {"markdown": md, "json": js, **{p.stem: p for p in charts}}
