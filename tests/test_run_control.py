"""Runs that do not end on approval: timeouts, turn caps, cancellation, failing tools and models.
Each still returns a Result, keeps the best answer proposed so far, and says why it stopped."""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from agents.tools import registry
from agents.tools.registry import SafeTool, ToolEntry
from teams import Question, Run, load_team, solve
from teams import events as ev
from teams.stop_noise import StopNoiseFilter
from tests.conftest import OPENAI_DEFAULT, settings_for
from tests.fakes.debates import trio as team

QUESTION = "Which invented river is longer, the Quillwater or the Marrow?"


@pytest.fixture
def extra_tools(monkeypatch: pytest.MonkeyPatch):
    """Register test-only tools for one test (the registry is restored afterwards)."""

    def add(name: str, fn) -> None:  # type: ignore[no-untyped-def]
        entry = ToolEntry(name, "test tool", lambda ctx: SafeTool(fn, name=name, description="test tool"))
        monkeypatch.setitem(registry._REGISTRY, name, entry)

    return add


async def test_cancel_during_a_slow_tool_stops_promptly_and_the_next_run_works(llm_server, extra_tools) -> None:
    async def slow_lookup(query: str) -> str:
        await asyncio.sleep(60)
        return "never"

    extra_tools("slow_lookup", slow_lookup)
    cfg = team()
    cfg.agents[1].tools = ["slow_lookup"]
    server = llm_server(
        {
            "planner": ["Look it up.\nNEXT: researcher", "FINAL ANSWER: Marrow"],
            "researcher": [{"tool_calls": [{"name": "slow_lookup", "arguments": {"query": "rivers"}}]}, "n/a"],
            "critic": ["APPROVED\nFINAL ANSWER: Marrow"],
        }
    )
    run = Run(QUESTION, cfg, settings=settings_for(server))
    started: list[float] = []
    async for e in run.events():
        if isinstance(e, ev.ToolCall):
            started.append(time.monotonic())
            asyncio.get_running_loop().call_later(0.3, run.cancel)
    assert run.result is not None and run.result.stop_reason == "cancelled"
    assert time.monotonic() - started[0] < 3, "the stop must not wait for the 60 s tool"

    # a fresh run on the same server script continues normally
    cfg.agents[1].tools = ["calculator"]
    server2 = llm_server(
        {"planner": ["FINAL ANSWER: Marrow"], "critic": ["APPROVED\nFINAL ANSWER: Marrow"]}
    )
    assert (await solve(QUESTION, cfg, settings=settings_for(server2))).answer == "Marrow"


async def test_a_tool_that_raises_becomes_an_error_line_and_the_run_goes_on(llm_server, extra_tools) -> None:
    def flaky_lookup(query: str) -> str:
        raise RuntimeError("the archive is on fire")

    extra_tools("flaky_lookup", flaky_lookup)
    cfg = team()
    cfg.agents[1].tools = ["flaky_lookup"]
    server = llm_server(
        {
            "planner": ["NEXT: researcher", "FINAL ANSWER: Marrow"],
            "researcher": [{"tool_calls": [{"name": "flaky_lookup", "arguments": {"query": "rivers"}}]}, "The lookup failed.\nNEXT: planner"],
            "critic": ["APPROVED\nFINAL ANSWER: Marrow"],
        }
    )
    events: list[ev.Event] = []
    result = await solve(QUESTION, cfg, settings=settings_for(server), on_event=events.append)
    [tool_result] = [e for e in events if isinstance(e, ev.ToolResult)]
    assert tool_result.output == "Error: flaky_lookup failed: RuntimeError: the archive is on fire"
    # the model saw the error text as the tool's result
    second = server.requests_for("researcher")[1]
    assert any("the archive is on fire" in str(m.get("content")) for m in second.messages if m.get("role") == "tool")
    assert result.answer == "Marrow" and result.approved


async def test_bad_tool_arguments_are_reported_to_the_model(llm_server) -> None:
    server = llm_server(
        {
            "planner": ["NEXT: researcher", "FINAL ANSWER: 3"],
            "researcher": [{"tool_calls": [{"name": "calculator", "arguments": "{not json"}]}, "Oops.\nNEXT: planner"],
            "critic": ["APPROVED\nFINAL ANSWER: 3"],
        }
    )
    events: list[ev.Event] = []
    result = await solve(QUESTION, team(), settings=settings_for(server), on_event=events.append)
    [tool_result] = [e for e in events if isinstance(e, ev.ToolResult)]
    assert tool_result.is_error and result.approved


async def test_a_garbage_reply_is_retried(llm_server) -> None:
    server = llm_server(
        {
            "planner": ["FINAL ANSWER: Quillwater"],
            "critic": [{"raw": "<html>502 from a proxy</html>"}, "APPROVED\nFINAL ANSWER: Quillwater"],
        }
    )
    result = await solve(QUESTION, team(), settings=settings_for(server))
    assert result.answer == "Quillwater" and result.approved
    assert len(server.requests_for("critic")) == 2


async def test_a_model_returning_only_garbage_ends_the_run_with_a_clear_error_and_keeps_the_answer(llm_server) -> None:
    cfg = team()
    cfg.agents[2].stream = False
    server = llm_server(
        {"planner": ["FINAL ANSWER: Quillwater"], "critic": [{"raw": "<html>502 from a proxy</html>"}] * 10}
    )
    result = await solve(QUESTION, cfg, settings=settings_for(server))
    assert result.stop_reason == "error"
    assert f"critic's model openai/{OPENAI_DEFAULT}: JSONDecodeError" in (result.error or "")
    assert result.answer == "Quillwater" and result.provisional
    assert len(server.requests_for("critic")) == 4  # LLM_MAX_RETRIES=3 in settings_for


async def test_provider_429_then_success_inside_a_debate(llm_server) -> None:
    server = llm_server(
        {
            "planner": [{"status": 429, "headers": {"retry-after": "0.05"}}, "FINAL ANSWER: Marrow"],
            "critic": ["APPROVED\nFINAL ANSWER: Marrow"],
        }
    )
    result = await solve(QUESTION, team(), settings=settings_for(server))
    assert result.answer == "Marrow" and result.approved
    assert len(server.requests_for("planner")) == 2
    assert result.usage["planner"].calls == 1  # the failed attempt cost nothing


async def test_missing_api_key_is_a_clear_error_result(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("models.providers.local_available", lambda: False)
    from config.settings import Settings

    result = await solve(QUESTION, load_team("debate"), settings=Settings(_env_file=None))  # type: ignore[call-arg]
    assert result.stop_reason == "error" and result.answer == ""
    assert "No model provider is configured. Set OPENAI_API_KEY" in result.stop_detail


async def test_attachments_are_staged_by_name_and_removed_afterwards(llm_server, tmp_path: Path) -> None:
    src = tmp_path / "ledger.csv"
    src.write_text("town,people\nA,1\n")
    server = llm_server({"planner": ["FINAL ANSWER: 1"], "critic": ["APPROVED\nFINAL ANSWER: 1"]})
    run = Run(Question(QUESTION, attachments=[src]), team(), settings=settings_for(server))
    started = None
    async for e in run.events():
        if isinstance(e, ev.RunStarted):
            started = e
    assert started is not None and started.attachments == ["ledger.csv"]
    assert "Attached file(s), in the question's folder: ledger.csv" in server.requests[0].question
    assert str(tmp_path) not in server.requests[0].question  # the model sees names, not host paths
    assert src.exists()


async def test_an_unreadable_attachment_is_a_clear_error_result(tmp_path: Path) -> None:
    result = await solve(Question(QUESTION, attachments=[tmp_path / "gone.xlsx"]), team(), settings=settings_for_nothing())
    assert result.stop_reason == "error" and "cannot read the attachment gone.xlsx" in result.stop_detail


def settings_for_nothing():  # type: ignore[no-untyped-def]
    from config.settings import Settings

    return Settings(_env_file=None, OPENAI_API_KEY="sk-unused-0000", LLM_PROVIDER="openai")  # type: ignore[call-arg]


async def test_a_consumer_that_stops_listening_stops_the_run(llm_server) -> None:
    server = llm_server({"planner": [{"delay": 30, "content": "late"}]})
    run = Run(QUESTION, team(), settings=settings_for(server))
    stream = run.events()
    async for e in stream:
        if isinstance(e, ev.TurnStarted):
            break
    started = time.monotonic()
    await stream.aclose()  # e.g. the UI's task was cancelled mid-run
    assert time.monotonic() - started < 3
    assert run.abort.is_cancelled()  # the model call in flight was interrupted, not left running


class _Records(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


@pytest.fixture
def autogen_log() -> Iterator[list[logging.LogRecord]]:
    """What AutoGen's runtime logger lets through, starting with no stop filter installed (as in a new process)."""
    runtime = logging.getLogger("autogen_core")
    before = [f for f in runtime.filters if isinstance(f, StopNoiseFilter)]
    for f in before:
        runtime.removeFilter(f)
    handler = _Records()
    runtime.addHandler(handler)
    yield handler.records
    runtime.removeHandler(handler)
    for f in [f for f in runtime.filters if isinstance(f, StopNoiseFilter)]:
        runtime.removeFilter(f)
    for f in before:
        runtime.addFilter(f)


@pytest.mark.parametrize("during", ["model call", "tool call"])
async def test_a_stopped_run_logs_no_error_or_traceback(llm_server, extra_tools, autogen_log, during: str) -> None:
    """Whoever stops a run (the UI's Stop, a cancelled batch, the CLI), AutoGen's aborted handlers, the
    GroupChatError they broadcast and the queue shut-down are not logged as errors with a traceback."""
    reached = threading.Event()

    async def slow_lookup(query: str) -> str:
        reached.set()
        await asyncio.sleep(60)
        return "never"

    def slow_reply(_request: object) -> dict[str, object]:
        reached.set()
        return {"delay": 30, "content": "late"}

    extra_tools("slow_lookup", slow_lookup)
    cfg = team()
    cfg.agents[1].tools = ["slow_lookup"]
    lookup = {"tool_calls": [{"name": "slow_lookup", "arguments": {"query": "rivers"}}]}
    script = ({"planner": slow_reply} if during == "model call"
              else {"planner": ["Look it up.\nNEXT: researcher"], "researcher": [lookup]})
    run = Run(QUESTION, cfg, settings=settings_for(llm_server(script)))

    async def stop_when_reached() -> None:
        await asyncio.to_thread(reached.wait, 30)
        run.cancel()

    stopper = asyncio.create_task(stop_when_reached())
    async for _ in run.events():
        pass
    await stopper
    await asyncio.sleep(0.5)  # let the runtime finish unwinding: its last errors come after the run's end
    assert run.result is not None and run.result.stop_reason == "cancelled"
    errors = [f"{r.getMessage()} ({r.exc_info[1]!r})" if r.exc_info else r.getMessage()
              for r in autogen_log if r.levelno >= logging.ERROR]
    assert errors == []
