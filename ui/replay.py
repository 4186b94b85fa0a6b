"""Replays: a run dir's question opened in the UI as its debate, rendered by the live run's own `ui.render.RunView`.

A record written since `evaluation.solve.EventRecorder` exists holds the run's events with their times (`events`,
`started_at`): they are fed back to a RunView as they were recorded, each turn and each tool or code step named
with how long it took ("run_python · 0.4 s") and carrying its recorded start and end. An older record has only
its trace: its turns, tool calls and results are rebuilt from it (without times, and the replay says so).

Which run dirs can be opened: those directly under the allowed roots, never a path outside them (a payload is
the client's, so every callback checks it again): the UI's own evaluations (`<cache dir>/ui-evaluation`),
`runs/` (where `submit.py run` writes) in the repo and in the app's working directory, and the directories
listed in ROUNDTABLE_RUN_DIRS (separated by `:`).

Entry points (action callbacks, registered when this module is imported): `replay_runs` lists the run dirs,
`replay_run` lists one run dir's questions, `replay_question` replays one question. The evaluation table adds
an "Open debate" action per question.
"""

from __future__ import annotations

import ast
import json
import os
import re
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import chainlit as cl
from loguru import logger

from config.log import mask
from config.settings import REPO_ROOT, Settings
from evaluation.store import AnswerRecord, RunDirError, RunStore
from teams import events as ev
from teams.result import Decision, Result, VoteGroup, result_from_dict
from teams.result import known_fields as _known
from ui.render import RunView, format_duration, md_escape

RUNS_ACTION, RUN_ACTION, QUESTION_ACTION = "replay_runs", "replay_run", "replay_question"
RUN_DIRS_ENV = "ROUNDTABLE_RUN_DIRS"
MAX_LISTED = 30


def code(text: str) -> str:
    """Inline code showing `text` literally (no escapes inside a code span; a backtick cannot end it)."""
    return "`" + " ".join(text.replace("`", "'").split()) + "`"


class ReplayError(Exception):
    """The run dir or question cannot be replayed; the message says why."""


# --- which run dirs ------------------------------------------------------------------------------------------
def allowed_roots(settings: Settings) -> list[Path]:
    roots = [settings.cache_dir / "ui-evaluation", REPO_ROOT / "runs", Path.cwd() / "runs"]
    roots += [Path(p) for p in (settings.run_dirs or "").split(os.pathsep) if p.strip()]
    out: list[Path] = []
    for root in roots:
        resolved = root.expanduser().resolve()
        if resolved not in out:
            out.append(resolved)
    return out


def _inside(path: Path, roots: list[Path]) -> bool:
    return any(path != root and path.is_relative_to(root) for root in roots)


def resolve_run_dir(text: str, settings: Settings) -> Path:
    """The run dir `text` names (a path, or a name under one of the roots), if it lies under an allowed root."""
    text = (text or "").strip()
    if not text:
        raise ReplayError("name a run dir")
    roots = allowed_roots(settings)
    given = Path(text).expanduser()
    candidates = [given] if given.is_absolute() else [root / given for root in roots]
    for candidate in candidates:
        path = candidate.resolve()  # symlinks followed: a link out of the roots is outside
        if not _inside(path, roots):
            continue
        if RunStore.is_run_dir(path):
            return path
    raise ReplayError(f"{text} is not a run dir under the allowed roots ({', '.join(str(r) for r in roots)})")


def list_run_dirs(settings: Settings) -> list[Path]:
    found: list[Path] = []
    roots = allowed_roots(settings)
    for root in roots:
        try:
            children = list(root.iterdir()) if root.is_dir() else []
        except OSError:
            continue
        found += [c.resolve() for c in children if c.is_dir() and RunStore.is_run_dir(c) and _inside(c.resolve(), roots)]
    unique = list(dict.fromkeys(found))
    unique.sort(key=lambda p: (p / "run.json").stat().st_mtime, reverse=True)
    return unique[:MAX_LISTED]


def run_dir_title(path: Path) -> str:
    try:
        meta = RunStore.open(path).meta
    except RunDirError:
        return path.name
    team = (meta.get("team") or {}).get("name") or "?"
    return f"{path.name} · {team}"


# --- records back into events ----------------------------------------------------------------------------------
_EVENTS: dict[str, Any] = {cls.__name__: cls for cls in (
    ev.RunStarted, ev.TurnStarted, ev.Token, ev.Thought, ev.ToolCall, ev.ToolResult, ev.CodeRun, ev.TurnEnded,
    ev.AnswerProposed, ev.RunFinished, ev.AttemptStarted, ev.InAttempt, ev.Escalating, ev.Decided)}


def event_from_dict(data: dict[str, Any], final: Result) -> ev.Event | None:
    kind = data.get("type")
    if kind == "InAttempt":
        inner = event_from_dict(data.get("event") or {}, final)
        return None if inner is None else ev.InAttempt(int(data.get("attempt") or 0), inner)
    if kind == "RunFinished":
        result = data.get("result")
        return ev.RunFinished(result_from_dict(result) if isinstance(result, dict) else final)
    if kind == "Decided":
        decision = data.get("decision") or {}
        dd = _known(Decision, decision)
        dd["groups"] = [VoteGroup(**_known(VoteGroup, g)) for g in decision.get("groups") or [] if isinstance(g, dict)]
        return ev.Decided(Decision(**dd), str(data.get("answer") or ""))
    cls = _EVENTS.get(str(kind))
    if cls is None:
        return None
    try:
        return cls(**_known(cls, data))
    except TypeError:
        return None


_CALL = re.compile(r"FunctionCall\(id=(?P<id>'(?:[^'\\]|\\.)*'), arguments=(?P<args>'(?:[^'\\]|\\.)*'|\"(?:[^\"\\]|\\.)*\"), "
                   r"name=(?P<name>'[^']*')\)")
_EXEC = re.compile(r"FunctionExecutionResult\(content=(?P<content>'(?:[^'\\]|\\.)*'|\"(?:[^\"\\]|\\.)*\"), name=(?P<name>'[^']*'), "
                   r"call_id=(?P<id>'[^']*'), is_error=(?P<err>True|False)\)")


def _literal(text: str) -> str:
    try:
        return str(ast.literal_eval(text))
    except (ValueError, SyntaxError):
        return text.strip("'\"")


def events_from_trace(result: Result) -> list[ev.Event]:
    """A record without recorded events: its turns, tool calls and results rebuilt from the trace."""
    out: list[ev.Event] = [ev.RunStarted(result.run_id or "-", result.question, result.team, sorted(
        {t.source for t in result.trace}) or list(result.models))]
    turn, speaker, code_calls = 0, "", set()
    for t in result.trace:
        if t.source != speaker:
            speaker, turn = t.source, turn + 1
            out.append(ev.TurnStarted(t.source, turn))
        if t.kind == "ToolCallRequestEvent":
            calls = list(_CALL.finditer(t.content))
            for m in calls:
                call_id, args, name = _literal(m["id"]), _literal(m["args"]), _literal(m["name"])
                if name == "run_python":
                    code_calls.add(call_id)
                    try:
                        code = str(json.loads(args).get("code", args))
                    except (ValueError, AttributeError):
                        code = args
                    out.append(ev.CodeRun(t.source, call_id, code, None, None, tool=name))
                else:
                    out.append(ev.ToolCall(t.source, call_id, name, args))
            if not calls:
                out.append(ev.ToolCall(t.source, f"call-{len(out)}", "tool call", t.content))
        elif t.kind == "ToolCallExecutionEvent":
            results = list(_EXEC.finditer(t.content))
            for m in results:
                call_id, name, content = _literal(m["id"]), _literal(m["name"]), _literal(m["content"])
                if call_id in code_calls:
                    out.append(ev.CodeRun(t.source, call_id, "", content, None, sandbox="not recorded", isolated=True,
                                          is_error=m["err"] == "True", tool=name))
                else:
                    out.append(ev.ToolResult(t.source, call_id, name, content, m["err"] == "True"))
            if not results:
                out.append(ev.ToolResult(t.source, f"call-{len(out) - 1}", "tool call", t.content, False))
        elif t.kind == "ThoughtEvent":
            out.append(ev.Thought(t.source, t.content))
        else:  # TextMessage, ToolCallSummaryMessage, ...: the turn's message
            out.append(ev.TurnEnded(t.source, turn, t.content, 0, 0))
            speaker = ""
    out.append(ev.RunFinished(result))
    return out


def recorded_events(record: AnswerRecord) -> tuple[list[tuple[float | None, ev.Event]], bool]:
    """The events to replay, each with its time (seconds since the start; None when not recorded), and whether
    they are the recorded events (True) or rebuilt from the trace (False)."""
    final = result_from_dict(record.result) if isinstance(record.result, dict) else Result(
        record.question, record.answer, None, record.approved, "error", record.error or "", record.duration_s)
    if record.events:
        out: list[tuple[float | None, ev.Event]] = []
        for data in record.events:
            event = event_from_dict(data, final)
            if event is not None:
                out.append((float(data["t"]) if isinstance(data.get("t"), (int, float)) else None, event))
        if not any(isinstance(e, ev.RunFinished) for _, e in out):
            out.append((record.duration_s, ev.RunFinished(final)))
        return out, True
    return [(None, e) for e in events_from_trace(final)], False


# --- playing them back ---------------------------------------------------------------------------------------
def _target(view: RunView, event: ev.Event) -> tuple[RunView | None, ev.Event]:
    target: RunView | None = view
    while isinstance(event, ev.InAttempt) and target is not None:
        target = target.attempts.get(event.attempt)
        event = event.event
    return target, event


class Replayer:
    """Feeds recorded events to a RunView and gives each turn and tool step its recorded times."""

    def __init__(self, view: RunView, started_at: str | None) -> None:
        self.view = view
        self.origin: datetime | None = None
        if started_at:
            try:
                self.origin = datetime.fromisoformat(started_at)
            except ValueError:
                self.origin = None
        self.opened: dict[str, float | None] = {}  # step id -> when it started
        self.timed: list[tuple[str, str, float]] = []  # (kind, name, seconds), for the summary

    def _iso(self, t: float | None) -> str | None:
        if t is None or self.origin is None:
            return None
        return (self.origin + timedelta(seconds=t)).isoformat().replace("+00:00", "Z")

    def _open(self, step: cl.Step, t: float | None) -> None:
        if step.id in self.opened:
            return
        self.opened[step.id] = t
        if (stamp := self._iso(t)) is not None:
            step.start = stamp

    async def _finish(self, step: cl.Step, t: float | None, kind: str) -> None:
        began = self.opened.pop(step.id, None)
        if t is None or began is None:
            return
        took = max(0.0, t - began)
        if (stamp := self._iso(t)) is not None:
            step.end = stamp
        self.timed.append((kind, step.name, took))
        step.name = f"{step.name} · {format_duration(took)}"
        await step.update()

    async def play(self, events: list[tuple[float | None, ev.Event]]) -> None:
        for t, event in events:
            target, inner = _target(self.view, event)
            turn_before = target.turn if target is not None else None
            tool_before = None
            if turn_before is not None and isinstance(inner, (ev.ToolResult, ev.CodeRun)):
                tool_before = turn_before.tools.get(inner.call_id)
            await self.view.handle(event)
            target, inner = _target(self.view, event)
            if target is None:
                continue
            if tool_before is not None and turn_before is not None and tool_before not in turn_before.tools.values():
                await self._finish(tool_before, t, "tool")
            if turn_before is not None and target.turn is not turn_before:
                await self._finish(turn_before.step, t, "turn")
            if target.turn is not None:
                self._open(target.turn.step, t)
                if isinstance(inner, (ev.ToolCall, ev.CodeRun)) and (step := target.turn.tools.get(inner.call_id)) is not None:
                    self._open(step, t)


async def replay(run_dir: Path, task_id: str) -> None:
    """Open one question of `run_dir` (already checked to be allowed) as its debate."""
    try:
        store = RunStore.open(run_dir)
        record = store.records().get(task_id)
    except RunDirError as exc:
        raise ReplayError(str(exc)) from None
    if record is None:
        raise ReplayError(f"{run_dir.name} has no finished record of {task_id} (not run yet)")
    events, recorded = recorded_events(record)
    team = str((record.result or {}).get("team") or (store.meta.get("team") or {}).get("name") or "?")
    when = f", recorded {record.started_at or record.finished_at}"
    note = ("Times are as recorded." if recorded else
            "This record predates recorded events: its turns and tool calls are rebuilt from the trace, without times.")
    await cl.Message(
        content=f"### ▶ Replay of {code(task_id)}\n\nRun dir {code(run_dir.name)} · team **{md_escape(team)}**"
                f"{md_escape(when)} · {md_escape(record.state)} in {format_duration(record.duration_s)}\n\n"
                f"**Question:** {md_escape(mask(record.question))}\n\n{note}",
        metadata={"replay": True, "task_id": task_id},
    ).send()
    view = RunView(team, show_code=True)
    player = Replayer(view, record.started_at)
    await player.play(events)
    if record.state == "failed" and record.error:
        await cl.Message(content=f"⚠️ This question failed: {md_escape(mask(record.error))}").send()
    logger.info("replayed {} of {} ({} events, recorded={})", task_id, run_dir, len(events), recorded)


# --- actions ---------------------------------------------------------------------------------------------------
def runs_action(label: str = "Replays of past runs") -> cl.Action:
    return cl.Action(name=RUNS_ACTION, payload={}, label=label, tooltip="Open a run dir's questions as their debates")


def question_action(run_dir: Path, task_id: str, label: str | None = None) -> cl.Action:
    return cl.Action(name=QUESTION_ACTION, payload={"run_dir": str(run_dir), "task_id": task_id},
                     label=label or f"Open debate: {task_id}", tooltip=f"Replay the debate of {task_id}")


def _settings() -> Settings:
    from ui import chat

    return chat.session_settings()


def _refusal(what: str) -> str | None:
    from ui import chat

    return chat.login_refusal(what)


@cl.action_callback(RUNS_ACTION)
async def on_runs(action: cl.Action) -> None:
    if refusal := _refusal("open a replay"):
        await cl.Message(content=refusal).send()
        return
    settings = _settings()
    dirs = list_run_dirs(settings)
    if not dirs:
        roots = ", ".join(f"{code(str(r))}" for r in allowed_roots(settings))
        await cl.Message(content=f"No run dirs yet. Run dirs are looked for in {roots}.").send()
        return
    actions = [cl.Action(name=RUN_ACTION, payload={"run_dir": str(d)}, label=run_dir_title(d)) for d in dirs]
    await cl.Message(content=f"**{len(dirs)} run dirs** (newest first): pick one to see its questions.", actions=actions,
                     metadata={"replay_runs": True}).send()


@cl.action_callback(RUN_ACTION)
async def on_run(action: cl.Action) -> None:
    if refusal := _refusal("open a replay"):
        await cl.Message(content=refusal).send()
        return
    try:
        run_dir = resolve_run_dir(str(action.payload.get("run_dir") or ""), _settings())
        store = RunStore.open(run_dir)
        records = store.records()
        tasks = store.tasks()
    except (ReplayError, RunDirError) as exc:
        await cl.Message(content=f"⚠️ Cannot open it: {md_escape(str(exc))}").send()
        return
    lines = [f"### Run dir {code(run_dir.name)}", "| Task | State | Answer |", "|---|---|---|"]
    actions = []
    for t in tasks:
        rec = records.get(t.task_id)
        state = rec.state if rec else "not run"
        answer = md_escape(mask(rec.answer)) if rec and rec.state == "done" else ""
        lines.append(f"| {code(t.task_id).replace('|', '/')} | {state} | {answer or ' '} |")
        if rec is not None:
            actions.append(question_action(run_dir, t.task_id))
    await cl.Message(content="\n".join(lines), actions=actions, metadata={"replay_run": True}).send()


@cl.action_callback(QUESTION_ACTION)
async def on_question(action: cl.Action) -> None:
    if refusal := _refusal("open a replay"):
        await cl.Message(content=refusal).send()
        return
    try:
        run_dir = resolve_run_dir(str(action.payload.get("run_dir") or ""), _settings())
        await replay(run_dir, str(action.payload.get("task_id") or ""))
    except ReplayError as exc:
        await cl.Message(content=f"⚠️ Cannot replay it: {md_escape(str(exc))}").send()
