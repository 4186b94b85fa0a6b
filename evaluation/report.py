"""Local evaluation of a run dir against the user's own labels: strict exact match and GAIA's scorer side by side.

The labels file is JSONL, one `{"task_id": ..., "final_answer": ...}` per line. Bad lines are reported by
line number and skipped; the report is built from the good ones. An answer that GAIA's scorer accepts but
strict matching rejects is listed as a formatting problem: the course's scorer is an exact match.
Accuracy counts every labelled question of the run, so an unanswered question counts as wrong.
A vote's or an escalation's report also scores each attempt position as if it had been submitted alone
(`attempt_positions`), and `summary_rows` lines several run dirs up: accuracy per strategy, tokens and cost
per correct answer (the GAIA scorer's).
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from evaluation.scoring import exact_match, gaia_match
from evaluation.store import AnswerRecord, RunStore, now_iso
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
    # strategy runs (vote, escalate): each attempt's answer scored like the final one; [] for a single run
    attempts: list[dict[str, Any]] = field(default_factory=list)
    decision: str | None = None  # how the answer was chosen: majority, adjudicated, escalated, ...
    decision_reason: str | None = None
    escalated: bool | None = None  # escalate: whether the debate ran for this question


@dataclass
class _Priced:
    prompt_tokens: int
    completion_tokens: int
    cost_usd: float | None


def _per_correct(amount: float | None, correct: int) -> float | None:
    return None if amount is None or not correct else amount / correct


def _strategy_of(store: RunStore, records: dict[str, AnswerRecord]) -> str:
    kinds = {r.strategy for r in records.values() if r.strategy != "single" or r.result is not None}
    if len(kinds - {"single"}) == 1:
        return (kinds - {"single"}).pop()
    config = (store.meta.get("team") or {}).get("config")
    strategy = config.get("strategy") if isinstance(config, dict) else None
    kind = strategy.get("kind") if isinstance(strategy, dict) else None
    return kind if isinstance(kind, str) else "single"


def _scored_attempts(rec: AnswerRecord | None, truth: str | None) -> list[dict[str, Any]]:
    out = []
    for a in rec.attempts if rec else []:
        answer = a.get("answer") or ""
        out.append({
            "number": a.get("number"), "label": a.get("label", ""), "team": a.get("team", ""), "stage": a.get("stage", ""),
            "answer": answer, "approved": bool(a.get("approved")), "stop_reason": a.get("stop_reason"),
            "prompt_tokens": int(a.get("prompt_tokens") or 0), "completion_tokens": int(a.get("completion_tokens") or 0),
            "tokens": int(a.get("prompt_tokens") or 0) + int(a.get("completion_tokens") or 0), "cost_usd": a.get("cost_usd"),
            "strict": None if truth is None else exact_match(answer, truth),
            "gaia": None if truth is None else gaia_match(answer, truth),
        })
    return out


def attempt_positions(rows: list[ReportRow], strategy: str) -> list[dict[str, Any]]:
    """One row per attempt position ("attempt 2 · solo · anthropic"), scored as if it had been submitted alone.

    A vote's attempts and escalate's first attempts ran on every question: their accuracy counts every labelled
    question (no answer is wrong), like the run's. The escalation ran only on the escalated questions: its
    accuracy and tokens count those."""
    numbers = sorted({a["number"] for r in rows for a in r.attempts if isinstance(a.get("number"), int)})
    labelled_all = sum(r.truth is not None for r in rows)
    out = []
    for n in numbers:
        mine = [(r, a) for r in rows for a in r.attempts if a.get("number") == n]
        labels = [a["label"] for _, a in mine]
        stage = mine[0][1].get("stage", "")
        only_where_ran = stage == "escalated"
        labelled = sum(r.truth is not None for r, _ in mine) if only_where_ran else labelled_all
        strict_ok = sum(bool(a["strict"]) for r, a in mine if r.truth is not None)
        gaia_ok = sum(bool(a["gaia"]) for r, a in mine if r.truth is not None)
        tokens = sum(a["tokens"] for _, a in mine)
        cost = total_cost(_Priced(a["prompt_tokens"], a["completion_tokens"], a["cost_usd"]) for _, a in mine) if mine else None
        out.append({
            "number": n, "label": max(set(labels), key=labels.count), "team": mine[0][1].get("team", ""), "stage": stage,
            "ran": len(mine), "answered": sum(bool(a["answer"]) for _, a in mine), "labelled": labelled,
            "strict_correct": strict_ok, "gaia_correct": gaia_ok,
            "strict_accuracy": round(strict_ok / labelled, 4) if labelled else None,
            "gaia_accuracy": round(gaia_ok / labelled, 4) if labelled else None,
            "tokens": tokens, "cost_usd": cost,
            "tokens_per_correct": _per_correct(tokens, gaia_ok), "cost_per_correct": _per_correct(cost, gaia_ok),
            "scope": "escalated questions" if only_where_ran else "all questions",
        })
    return out


def build_report(store: RunStore, labels: dict[str, str], problems: list[str] | None = None) -> dict[str, Any]:
    records = store.records()
    strategy = _strategy_of(store, records)
    rows: list[ReportRow] = []
    for task in store.tasks():
        rec = records.get(task.task_id)
        answer = rec.answer if rec and rec.state == "done" else ""
        truth = labels.get(task.task_id)
        attempts = _scored_attempts(rec, truth)
        decision = rec.decision if rec else None
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
                attempts=attempts,
                decision=decision.get("method") if decision else None,
                decision_reason=decision.get("reason") if decision else None,
                escalated=(any(a["stage"] == "escalated" for a in attempts) or (decision or {}).get("method") == "escalated")
                if strategy == "escalate" and rec is not None else None,
            )
        )
    labelled = [r for r in rows if r.truth is not None]
    strict_ok = sum(bool(r.strict) for r in labelled)
    gaia_ok = sum(bool(r.gaia) for r in labelled)
    ran = [r for r in rows if r.state != "pending"]
    sessions = store.meta.get("sessions") or []
    known = {r.task_id for r in rows}
    tokens = sum(r.prompt_tokens + r.completion_tokens for r in rows)
    totals: dict[str, Any] = {
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
    totals["tokens"] = tokens
    totals["tokens_per_correct"] = _per_correct(tokens, gaia_ok)  # GAIA scorer's correct answers
    totals["cost_per_correct"] = _per_correct(totals["cost_usd"], gaia_ok)
    team = (store.meta.get("team") or {}).get("name")
    attempts = attempt_positions(rows, strategy)
    summary: dict[str, Any] = {
        "run_dir": str(store.path), "team": team, "strategy": strategy,
        **{k: totals[k] for k in ("questions", "answered", "labelled", "strict_correct", "gaia_correct", "strict_accuracy",
                                  "gaia_accuracy", "tokens", "cost_usd", "tokens_per_correct", "cost_per_correct")},
    }
    if strategy == "escalate":
        summary["escalated"] = sum(bool(r.escalated) for r in rows)
    alone = [a for a in attempts if a["scope"] == "all questions" and a["gaia_accuracy"] is not None]
    if alone and totals["gaia_accuracy"] is not None:
        best = max(alone, key=lambda a: a["gaia_accuracy"])
        summary["gain_over_best_attempt"] = round(totals["gaia_accuracy"] - best["gaia_accuracy"], 4)
        summary["best_attempt"] = best["number"]
    return {
        "created_at": now_iso(),
        "run_dir": str(store.path),
        "team": team,
        "strategy": strategy,
        "summary": summary,
        "attempts": attempts,
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


def summary_rows(reports: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """What `submit.py eval` compares: one row per run dir (its team and strategy) and, under a vote's or an
    escalation's row, one per attempt position scored as if that attempt had been submitted alone."""
    out: list[dict[str, Any]] = []
    for report in reports:
        s = report.get("summary") or {}
        note = ""
        if s.get("strategy") == "escalate":
            note = f"escalated {s.get('escalated', 0)} of {s.get('questions', 0)} questions"
        elif s.get("gain_over_best_attempt") is not None:
            gain = 100 * s["gain_over_best_attempt"]
            note = f"{gain:+.1f} points over the best attempt ({s['best_attempt']})"
        keys = ("labelled", "strict_correct", "strict_accuracy", "gaia_correct", "gaia_accuracy", "tokens", "cost_usd",
                "tokens_per_correct", "cost_per_correct")
        out.append({"kind": "run", "run_dir": s.get("run_dir", report.get("run_dir")), "name": s.get("team") or "?",
                    "strategy": s.get("strategy", "single"), "note": note, **{k: s.get(k) for k in keys}})
        for a in report.get("attempts") or []:
            escalation = a.get("scope") == "escalated questions"
            out.append({
                "kind": "attempt", "run_dir": s.get("run_dir", report.get("run_dir")),
                "name": f"attempt {a['number']} · {a['label']}",
                "strategy": "escalation only" if escalation else "alone",
                "note": f"ran on the {a['ran']} escalated questions" if escalation else "",
                **{k: a.get(k) for k in keys},
            })
    return out


def _count(correct: int | None, labelled: int | None, accuracy: float | None) -> str:
    return f"{correct}/{labelled} ({_pct(accuracy)})" if labelled else "n/a"


def _tokens_per(value: float | None) -> str:
    return "n/a" if value is None else f"{value:,.0f}"


def _cost_per(value: float | None) -> str:
    return "n/a" if value is None else f"${value:.4f}"


def format_summary_row(row: dict[str, Any]) -> list[str]:
    """The cells of one summary row: team (or attempt), strategy, labelled, strict, GAIA, tokens, tokens and cost
    per correct answer (GAIA scorer), note."""
    return [
        row["name"], row["strategy"], str(row.get("labelled") or 0),
        _count(row.get("strict_correct"), row.get("labelled"), row.get("strict_accuracy")),
        _count(row.get("gaia_correct"), row.get("labelled"), row.get("gaia_accuracy")),
        f"{row.get('tokens') or 0:,}", _tokens_per(row.get("tokens_per_correct")),
        "unknown" if row.get("cost_usd") is None and row.get("tokens") else _cost_per(row.get("cost_per_correct")),
        row.get("note") or "",
    ]


SUMMARY_COLUMNS = ("team", "strategy", "labelled", "strict", "GAIA", "tokens", "tokens / correct", "cost / correct", "")


def _summary_markdown(rows: list[dict[str, Any]]) -> list[str]:
    lines = ["| run dir | " + " | ".join(SUMMARY_COLUMNS) + " |", "|---" * (len(SUMMARY_COLUMNS) + 1) + "|"]
    for row in rows:
        cells = format_summary_row(row)
        if row["kind"] == "attempt":
            cells[0] = f"↳ {cells[0]}"
        where = _cell(row["run_dir"]) if row["kind"] == "run" else ""
        lines.append(f"| {where} | " + " | ".join(_cell(c) for c in cells) + " |")
    return lines


def _attempts_cell(attempts: list[dict[str, Any]]) -> str:
    return " · ".join(f"{a['number']}: {a['answer'] or '(none)'} {_mark(a['gaia'])}" for a in attempts)


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
    ]
    strategy = report.get("strategy", "single")
    comparison = report.get("comparison") or summary_rows([report])
    lines += [
        "## Accuracy per strategy" if report.get("comparison") else f"## Strategy: {strategy}",
        "",
        "Tokens and cost per correct answer count the GAIA scorer's correct answers. An attempt's row scores that "
        "attempt as if it had been submitted alone.",
        "",
        *_summary_markdown(comparison),
        "",
    ]
    with_attempts = strategy != "single"
    lines += [
        "| # | task_id | answer | expected | strict | GAIA | time (s) | tokens in/out | cost |" + (" attempts | decision |" if with_attempts else ""),
        "|---|---|---|---|---|---|---|---|---|" + ("---|---|" if with_attempts else ""),
    ]
    for i, r in enumerate(report["rows"], 1):
        answer = r["answer"] if r["state"] == "done" else f"({r['state']}{': ' + r['error'] if r['error'] else ''})"
        extra = f" {_cell(_attempts_cell(r.get('attempts') or []))} | {_cell(r.get('decision') or '')} |" if with_attempts else ""
        lines.append(
            f"| {i} | {_cell(r['task_id'])} | {_cell(answer)} | {_cell(r['truth'] if r['truth'] is not None else '(no label)')} "
            f"| {_mark(r['strict'])} | {_mark(r['gaia'])} | {r['duration_s']:.1f} | {r['prompt_tokens']}/{r['completion_tokens']} "
            f"| {format_cost(r['cost_usd']) if r['state'] != 'pending' else ''} |" + extra
        )
    decided = [r for r in report["rows"] if r.get("decision_reason")]
    if decided:
        lines += ["", "How each answer was chosen:", *[f"- {_cell(r['task_id'])}: {_cell(r['decision_reason'])}" for r in decided]]
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
