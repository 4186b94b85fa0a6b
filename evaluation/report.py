"""Local evaluation of a run dir against the user's own labels: strict exact match and GAIA's scorer side by side.

The labels file is JSONL, one `{"task_id": ..., "final_answer": ...}` per line. Bad lines are reported by
line number and skipped; the report is built from the good ones. An answer that GAIA's scorer accepts but
strict matching rejects is listed as a formatting problem: the course's scorer is an exact match.
Accuracy counts every labelled question of the run, so an unanswered question counts as wrong.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from evaluation.scoring import exact_match, gaia_match
from evaluation.store import RunStore, now_iso
from models.usage import format_cost, total_cost

REPORT_JSON, REPORT_MD = "report.json", "report.md"


class ReportError(Exception):
    """The labels file cannot be used at all; the message says why."""


def load_labels(path: Path) -> tuple[dict[str, str], list[str]]:
    """`{task_id: final_answer}` and one problem line per skipped line of the file."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ReportError(f"labels file {path} not found") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ReportError(f"cannot read the labels file {path}: {exc}") from None
    labels: dict[str, str] = {}
    first_line: dict[str, int] = {}
    problems: list[str] = []
    for n, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        where = f"{path.name} line {n}"
        try:
            item = json.loads(line)
        except json.JSONDecodeError as exc:
            problems.append(f"{where}: not valid JSON ({exc.msg}); skipped")
            continue
        if not isinstance(item, dict):
            problems.append(f"{where}: a JSON {type(item).__name__}, not an object with task_id and final_answer; skipped")
            continue
        task_id, truth = item.get("task_id"), item.get("final_answer")
        if not isinstance(task_id, str) or not task_id.strip():
            problems.append(f"{where}: no task_id; skipped")
            continue
        task_id = task_id.strip()
        if truth is None or isinstance(truth, (dict, list, bool)):
            problems.append(f"{where} ({task_id}): final_answer is {'missing' if truth is None else 'not a string'}; skipped")
            continue
        if task_id in labels:
            problems.append(f"{where}: {task_id} is labelled again (first on line {first_line[task_id]}); the first label is kept")
            continue
        labels[task_id], first_line[task_id] = str(truth), n
    if not labels:
        detail = f": {problems[0]}" if problems else " (the file is empty)"
        raise ReportError(f"{path} holds no usable label{detail}")
    return labels, problems


@dataclass
class ReportRow:
    task_id: str
    question: str
    state: str  # done | failed | pending
    answer: str
    truth: str | None  # None: not labelled
    strict: bool | None
    gaia: bool | None
    duration_s: float
    prompt_tokens: int
    completion_tokens: int
    cost_usd: float | None
    error: str | None


def build_report(store: RunStore, labels: dict[str, str], problems: list[str] | None = None) -> dict[str, Any]:
    records = store.records()
    rows: list[ReportRow] = []
    for task in store.tasks():
        rec = records.get(task.task_id)
        answer = rec.answer if rec and rec.state == "done" else ""
        truth = labels.get(task.task_id)
        rows.append(
            ReportRow(
                task_id=task.task_id,
                question=task.question,
                state=rec.state if rec else "pending",
                answer=answer,
                truth=truth,
                strict=None if truth is None else exact_match(answer, truth),
                gaia=None if truth is None else gaia_match(answer, truth),
                duration_s=rec.duration_s if rec else 0.0,
                prompt_tokens=rec.prompt_tokens if rec else 0,
                completion_tokens=rec.completion_tokens if rec else 0,
                cost_usd=rec.cost_usd if rec else None,
                error=rec.error if rec else None,
            )
        )
    labelled = [r for r in rows if r.truth is not None]
    strict_ok = sum(bool(r.strict) for r in labelled)
    gaia_ok = sum(bool(r.gaia) for r in labelled)
    ran = [r for r in rows if r.state != "pending"]
    sessions = store.meta.get("sessions") or []
    known = {r.task_id for r in rows}
    totals = {
        "questions": len(rows),
        "answered": sum(r.state == "done" for r in rows),
        "failed": sum(r.state == "failed" for r in rows),
        "pending": sum(r.state == "pending" for r in rows),
        "labelled": len(labelled),
        "strict_correct": strict_ok,
        "gaia_correct": gaia_ok,
        "strict_accuracy": round(strict_ok / len(labelled), 4) if labelled else None,
        "gaia_accuracy": round(gaia_ok / len(labelled), 4) if labelled else None,
        "duration_s": round(sum(r.duration_s for r in rows), 3),
        "wall_s": round(sum(float(s.get("wall_s") or 0) for s in sessions), 3),
        "prompt_tokens": sum(r.prompt_tokens for r in rows),
        "completion_tokens": sum(r.completion_tokens for r in rows),
        "cost_usd": total_cost(ran) if ran else None,
    }
    return {
        "created_at": now_iso(),
        "run_dir": str(store.path),
        "team": (store.meta.get("team") or {}).get("name"),
        "models": store.meta.get("models") or {},
        "code_version": store.meta.get("code_version") or {},
        "totals": totals,
        "formatting_problems": [r.task_id for r in labelled if r.gaia and not r.strict],
        "unlabelled": [r.task_id for r in rows if r.truth is None],
        "labels_not_in_run": sorted(set(labels) - known),
        "label_problems": list(problems or []),
        "rows": [asdict(r) for r in rows],
    }


def _cell(value: Any) -> str:
    text = "" if value is None else str(value)
    return " ".join(text.split()).replace("|", "\\|")


def _mark(value: bool | None) -> str:
    return "–" if value is None else ("✓" if value else "✗")


def _pct(value: float | None) -> str:
    return "n/a" if value is None else f"{100 * value:.1f}%"


def render_markdown(report: dict[str, Any]) -> str:
    t = report["totals"]
    lines = [
        f"# Evaluation of {report['run_dir']}",
        "",
        f"Team **{report.get('team') or '?'}**; labelled questions: {t['labelled']} of {t['questions']}.",
        "",
        "| | strict exact match | GAIA scorer |",
        "|---|---|---|",
        f"| correct | {t['strict_correct']}/{t['labelled']} | {t['gaia_correct']}/{t['labelled']} |",
        f"| accuracy | {_pct(t['strict_accuracy'])} | {_pct(t['gaia_accuracy'])} |",
        "",
        f"Answered {t['answered']}, failed {t['failed']}, not run {t['pending']}. Time: {t['duration_s']:.1f}s of "
        f"question time ({t['wall_s']:.1f}s wall). Tokens: {t['prompt_tokens']} in, {t['completion_tokens']} out. "
        f"Cost: {format_cost(t['cost_usd'])}.",
        "",
        "| # | task_id | answer | expected | strict | GAIA | time (s) | tokens in/out | cost |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for i, r in enumerate(report["rows"], 1):
        answer = r["answer"] if r["state"] == "done" else f"({r['state']}{': ' + r['error'] if r['error'] else ''})"
        lines.append(
            f"| {i} | {_cell(r['task_id'])} | {_cell(answer)} | {_cell(r['truth'] if r['truth'] is not None else '(no label)')} "
            f"| {_mark(r['strict'])} | {_mark(r['gaia'])} | {r['duration_s']:.1f} | {r['prompt_tokens']}/{r['completion_tokens']} "
            f"| {format_cost(r['cost_usd']) if r['state'] != 'pending' else ''} |"
        )
    if report["formatting_problems"]:
        lines += ["", "Accepted by GAIA's scorer but not by exact match (fix the answer format before submitting): "
                  + ", ".join(report["formatting_problems"])]
    if report["label_problems"]:
        lines += ["", "Skipped label lines:", *[f"- {p}" for p in report["label_problems"]]]
    if report["labels_not_in_run"]:
        lines += ["", f"{len(report['labels_not_in_run'])} labels name tasks that are not in this run."]
    return "\n".join(lines) + "\n"


def write_report(store: RunStore, report: dict[str, Any]) -> tuple[Path, Path]:
    json_path, md_path = store.path / REPORT_JSON, store.path / REPORT_MD
    json_path.write_text(json.dumps(report, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    md_path.write_text(render_markdown(report), encoding="utf-8")
    return json_path, md_path
