"""What a record keeps for replays (`evaluation.solve.EventRecorder`), how `ui.replay` reads it back (recorded events,
or an older record's trace), and which run dirs a replay may open."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from config.settings import Settings
from evaluation.api import TaskItem
from evaluation.solve import EventRecorder
from evaluation.store import AnswerRecord, RunStore
from teams import events as ev
from teams.result import Decision, Result, TraceEntry, VoteGroup
from ui import replay


def _result(**extra: object) -> Result:
    return Result("How many?", "12", "12", True, "approved", "critic approved", 3.5, team="debate", **extra)  # type: ignore[arg-type]


def test_the_recorder_keeps_every_event_with_its_time_and_merges_a_turns_tokens() -> None:
    rec = EventRecorder()
    rec.add(ev.RunStarted("r1", "How many?", "debate", ["planner", "coder"]))
    rec.add(ev.TurnStarted("planner", 1))
    for tok in ["Coder, ", "compute ", "it."]:
        rec.add(ev.Token("planner", tok))
    rec.add(ev.TurnEnded("planner", 1, "Coder, compute it.", 10, 5))
    rec.add(ev.TurnStarted("coder", 2))
    rec.add(ev.ToolCall("coder", "call_7", "run_python", '{"code": "print(12)"}', shown_as_code=True))
    rec.add(ev.CodeRun("coder", "call_7", "print(12)", None, None, tool="run_python"))
    rec.add(ev.CodeRun("coder", "call_7", "print(12)", "12", 0, sandbox="docker", isolated=True, tool="run_python"))
    rec.add(ev.InAttempt(2, ev.Token("solo", "a")))
    rec.add(ev.InAttempt(2, ev.Token("solo", "b")))
    rec.add(ev.InAttempt(3, ev.Token("solo", "c")))
    rec.add(ev.Decided(Decision("majority", "2 of 3", [VoteGroup("12", [1, 2], 1)]), "12"))
    rec.add(ev.RunFinished(_result()))
    kinds = [e["type"] for e in rec.events]
    assert kinds == ["RunStarted", "TurnStarted", "Token", "TurnEnded", "TurnStarted", "ToolCall", "CodeRun", "CodeRun",
                     "InAttempt", "InAttempt", "Decided", "RunFinished"]
    assert rec.events[2]["text"] == "Coder, compute it."  # one token per stretch of one agent's text
    assert rec.events[8]["event"]["text"] == "ab" and rec.events[9]["event"]["text"] == "c"  # per attempt
    assert rec.events[5]["call_id"] == "call_7" and rec.events[7]["sandbox"] == "docker"
    assert rec.events[-1] == {"type": "RunFinished", "t": rec.events[-1]["t"]}  # the record's result is the result
    times = [e["t"] for e in rec.events]
    assert times == sorted(times) and all(isinstance(t, float) for t in times)
    json.dumps(rec.events)  # JSON-ready


def test_recorded_events_come_back_as_the_same_events_with_their_times(tmp_path: Path) -> None:
    rec = EventRecorder()
    events: list[ev.Event] = [
        ev.RunStarted("r1", "How many?", "debate", ["planner", "coder"]),
        ev.TurnStarted("coder", 1),
        ev.ToolCall("coder", "call_1", "calculator", '{"expression": "3 * 4"}'),
        ev.ToolResult("coder", "call_1", "calculator", "12", False),
        ev.TurnEnded("coder", 1, "FINAL ANSWER: 12", 10, 5),
        ev.InAttempt(1, ev.RunFinished(_result(trace=[TraceEntry("coder", "TextMessage", "x")]))),
        ev.RunFinished(_result()),
    ]
    for e in events:
        rec.add(e)
    record = AnswerRecord("t1", "How many?", "done", "12", 3.5, result=_result().to_dict(), started_at=rec.started_at,
                          events=rec.events)
    back, recorded = replay.recorded_events(AnswerRecord.from_dict(json.loads(json.dumps(record.__dict__, default=str))))
    assert recorded
    assert [type(e) for _, e in back] == [type(e) for e in events]
    assert back[:5] == [(t, e) for t, e in zip([x["t"] for x in rec.events], events[:5], strict=False)]
    attempt = back[5][1]
    assert isinstance(attempt, ev.InAttempt) and isinstance(attempt.event, ev.RunFinished)
    assert attempt.event.result.answer == "12" and attempt.event.result.trace == []  # the trace is the record's
    final = back[6][1]
    assert isinstance(final, ev.RunFinished) and final.result.stop_detail == "critic approved"


def test_an_older_record_is_rebuilt_from_its_trace_without_times() -> None:
    trace = [
        TraceEntry("planner", "TextMessage", "Coder, compute it.\nNEXT: coder"),
        TraceEntry("coder", "ToolCallRequestEvent",
                   "[FunctionCall(id='call_9', arguments='{\"code\": \"print(3 * 4)\"}', name='run_python')]"),
        TraceEntry("coder", "ToolCallExecutionEvent",
                   "[FunctionExecutionResult(content='12\\n', name='run_python', call_id='call_9', is_error=False)]"),
        TraceEntry("coder", "TextMessage", "FINAL ANSWER: 12"),
        TraceEntry("critic", "TextMessage", "APPROVED"),
    ]
    record = AnswerRecord("t1", "How many?", "done", "12", 3.5, result=_result(trace=trace).to_dict())
    back, recorded = replay.recorded_events(record)
    assert not recorded and all(t is None for t, _ in back)
    events = [e for _, e in back]
    assert [type(e).__name__ for e in events] == ["RunStarted", "TurnStarted", "TurnEnded", "TurnStarted", "CodeRun",
                                                  "CodeRun", "TurnEnded", "TurnStarted", "TurnEnded", "RunFinished"]
    started, ran = events[4], events[5]
    assert isinstance(started, ev.CodeRun) and started.code == "print(3 * 4)" and started.call_id == "call_9"
    assert isinstance(ran, ev.CodeRun) and ran.output == "12\n" and ran.call_id == "call_9"
    assert [e.agent for e in events if isinstance(e, ev.TurnStarted)] == ["planner", "coder", "critic"]


def test_only_run_dirs_under_the_allowed_roots_open(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    cache = tmp_path / "cache"
    allowed = tmp_path / "allowed"
    settings = Settings(_env_file=None, ROUNDTABLE_CACHE_DIR=str(cache), ROUNDTABLE_RUN_DIRS=str(allowed))
    inside = RunStore.create(allowed / "run-1", {"team": {"name": "solo"}})
    inside.save_tasks([TaskItem("t1", "q", "1", "")])
    ui_run = RunStore.create(cache / "ui-evaluation" / "debate-abc", {"team": {"name": "debate"}}).path
    outside = RunStore.create(tmp_path / "elsewhere" / "run-2", {"team": {"name": "solo"}}).path
    (allowed / "link").symlink_to(outside)

    assert replay.resolve_run_dir("run-1", settings) == inside.path.resolve()
    assert replay.resolve_run_dir(str(inside.path), settings) == inside.path.resolve()
    assert replay.resolve_run_dir("debate-abc", settings) == ui_run.resolve()
    for bad in (str(outside), "../elsewhere/run-2", "link", str(allowed), "/etc", "", "run-404"):
        with pytest.raises(replay.ReplayError):
            replay.resolve_run_dir(bad, settings)
    listed = replay.list_run_dirs(settings)
    assert set(listed) == {inside.path.resolve(), ui_run.resolve()}  # the link out of the root is not listed
