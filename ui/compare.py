"""The compare view: two or more run dirs on the same questions, with the tables and charts of `submit.py compare`.

Flow (action callbacks, registered when this module is imported): `compare_pick` lists the run dirs the replays
may open (`ui.replay.list_run_dirs`, the same allowed roots) with one button each; each click adds that run dir
to the session's selection (the first picked is the baseline); `compare_go` compares the selection.

Labels, the user's choice of two buttons: a labels file (JSONL, task_id and final_answer per line) uploaded when
asked, or the labels a previous `submit.py eval` stored in the picked run dirs' report.json (each row's
expected answer). The output (compare.md, compare.json, PNG charts) goes to
`<cache dir>/ui-compare/<digest of the selection>/`.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

import chainlit as cl

from config.settings import Settings
from evaluation.compare import (
    CompareError,
    agreement_table,
    compare_runs,
    differences_table,
    write_comparison,
)
from evaluation.report import REPORT_JSON, ReportError, load_labels
from evaluation.store import RunDirError
from models.usage import format_cost
from ui import replay
from ui.render import md_escape
from ui.replay import code

PICK_ACTION, ADD_ACTION, GO_ACTION, CLEAR_ACTION = "compare_pick", "compare_add", "compare_go", "compare_clear"
SELECTION = "compare_selection"


def compare_action(label: str = "Compare run dirs") -> cl.Action:
    return cl.Action(name=PICK_ACTION, payload={}, label=label, tooltip="Compare two or more run dirs on the same questions")


def labels_from_reports(run_dirs: list[Path]) -> dict[str, str]:
    """The expected answers a previous `submit.py eval` stored in the run dirs' report.json."""
    labels: dict[str, str] = {}
    for d in run_dirs:
        try:
            report = json.loads((d / REPORT_JSON).read_text(encoding="utf-8"))
        except (OSError, ValueError):
            continue
        for row in report.get("rows") or [] if isinstance(report, dict) else []:
            if isinstance(row, dict) and isinstance(row.get("task_id"), str) and isinstance(row.get("truth"), str):
                labels.setdefault(row["task_id"], row["truth"])
    return labels


def totals_table(c: dict[str, Any]) -> list[str]:
    """`evaluation.compare.totals_table` for the chat's width: the models on a line of their own below it."""
    lines = ["| run | team · strategy | strict | GAIA | time | tokens | cost |", "|---|---|---|---|---|---|---|"]
    for r in c["runs"]:
        lines.append(
            f"| {md_escape(r['label'])} | {md_escape(r['team'])} · {md_escape(r['strategy'])} "
            f"| {r['strict_correct']}/{r['questions']} ({100 * r['strict_accuracy']:.1f}%) "
            f"| {r['gaia_correct']}/{r['questions']} ({100 * r['gaia_accuracy']:.1f}%) | {r['duration_s']:.1f}\u00a0s "
            f"| {r['tokens']:,} | {md_escape(format_cost(r['cost_usd']))} |"
        )
    lines += ["", "Models: " + "; ".join(f"run {r['index'] + 1}: {md_escape(r['models_text'])}" for r in c["runs"])]
    return lines


def _selection() -> list[str]:
    value = cl.user_session.get(SELECTION)
    return list(value) if isinstance(value, list) else []


def _settings() -> Settings:
    from ui import chat

    return chat.session_settings()


async def _show_selection(settings: Settings) -> None:
    chosen = _selection()
    lines = [f"{i}. {code(Path(p).name)}" + (" (baseline)" if i == 1 else "") for i, p in enumerate(chosen, 1)]
    actions = []
    if len(chosen) >= 2:
        actions.append(cl.Action(name=GO_ACTION, payload={"labels": "upload"}, label=f"Compare the {len(chosen)}: upload labels"))
        actions.append(cl.Action(name=GO_ACTION, payload={"labels": "reports"},
                                 label=f"Compare the {len(chosen)}: labels of the last eval"))
    actions.append(cl.Action(name=CLEAR_ACTION, payload={}, label="Clear the selection"))
    await cl.Message(content="**Selected for comparison:**\n\n" + ("\n".join(lines) or "none")
                     + ("" if len(chosen) >= 2 else "\n\nPick at least two."), actions=actions,
                     metadata={"compare_selection": True}).send()


@cl.action_callback(PICK_ACTION)
async def on_pick(action: cl.Action) -> None:
    from ui import chat

    if refusal := chat.login_refusal("compare runs"):
        await cl.Message(content=refusal).send()
        return
    dirs = replay.list_run_dirs(_settings())
    if len(dirs) < 2:
        await cl.Message(content="A comparison needs at least two run dirs; there are "
                                 f"{len(dirs)} under the allowed roots.").send()
        return
    actions = [cl.Action(name=ADD_ACTION, payload={"run_dir": str(d)}, label=f"＋ {replay.run_dir_title(d)}") for d in dirs]
    await cl.Message(content="Pick the run dirs to compare, the baseline first (each click adds one).", actions=actions,
                     metadata={"compare_pick": True}).send()


@cl.action_callback(ADD_ACTION)
async def on_add(action: cl.Action) -> None:
    settings = _settings()
    try:
        path = replay.resolve_run_dir(str(action.payload.get("run_dir") or ""), settings)
    except replay.ReplayError as exc:
        await cl.Message(content=f"⚠️ {md_escape(str(exc))}").send()
        return
    chosen = _selection()
    if str(path) not in chosen:
        chosen.append(str(path))
    cl.user_session.set(SELECTION, chosen)
    await _show_selection(settings)


@cl.action_callback(CLEAR_ACTION)
async def on_clear(action: cl.Action) -> None:
    cl.user_session.set(SELECTION, [])
    await cl.Message(content="The comparison selection is cleared.").send()


async def _labels(run_dirs: list[Path], upload: bool) -> tuple[dict[str, str], list[str], str]:
    asked = await cl.AskFileMessage(
        content="Upload the labels file (JSONL: one `{\"task_id\": ..., \"final_answer\": ...}` per line).",
        accept=["*/*"], max_files=1, timeout=300, raise_on_timeout=False,
    ).send() if upload else None
    if asked:
        path = Path(asked[0].path)
        labels, problems = load_labels(path)
        return labels, problems, f"the uploaded {md_escape(asked[0].name)}"
    return labels_from_reports(run_dirs), [], "the labels of a previous `submit.py eval` (report.json)"


@cl.action_callback(GO_ACTION)
async def on_go(action: cl.Action) -> None:
    settings = _settings()
    try:
        run_dirs = [replay.resolve_run_dir(p, settings) for p in _selection()]
    except replay.ReplayError as exc:
        await cl.Message(content=f"⚠️ {md_escape(str(exc))}").send()
        return
    if len(run_dirs) < 2:
        await cl.Message(content="Pick at least two run dirs first.").send()
        return
    try:
        labels, problems, source = await _labels(run_dirs, action.payload.get("labels") == "upload")
        if not labels:
            raise CompareError("no labels: upload a labels file, or run `submit.py eval` on these run dirs first")
        comparison = compare_runs(run_dirs, labels, problems)
    except (ReportError, RunDirError, CompareError) as exc:
        await cl.Message(content=f"⚠️ Cannot compare: {md_escape(str(exc))}").send()
        return
    digest = hashlib.sha256("\n".join(map(str, run_dirs)).encode()).hexdigest()[:10]
    written = write_comparison(comparison, settings.cache_dir / "ui-compare" / digest)
    charts = [cl.Image(path=str(p), name=p.name, display="inline", size="large")
              for key, p in written.items() if key not in ("markdown", "json")]
    text = "\n".join([f"### Comparison of {len(run_dirs)} run dirs", "",
                      f"{comparison['common']} common labelled questions; labels from {source}.", "",
                      *totals_table(comparison), "", *differences_table(comparison), "",
                      "**Agreement (GAIA scorer):**", "", *agreement_table(comparison)])
    await cl.Message(content=text, elements=charts, metadata={"comparison": True}).send()
