"""A tool call that does not finish within its wall-clock limit ends in an `Error:` line naming the limit
(TOOL_TIMEOUT, or the tool's own), so a stuck tool never holds up an agent's turn."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import Any

import pytest
from autogen_core import CancellationToken
from autogen_core.code_executor import CodeResult

from agents.tools import registry
from agents.tools.registry import SafeTool, ToolContext, ToolEntry
from tests.tools.conftest import call, tool_settings


@pytest.fixture
def extra_tool(monkeypatch: pytest.MonkeyPatch) -> Callable[..., None]:
    def add(name: str, fn: Callable[..., Any], **kwargs: Any) -> None:
        entry = ToolEntry(name, "test tool", lambda ctx: SafeTool(fn, name=name, description="test tool", **kwargs))
        monkeypatch.setitem(registry._REGISTRY, name, entry)

    return add


async def test_a_stuck_async_tool_ends_at_tool_timeout_and_is_cancelled(
    make_ctx: Callable[..., ToolContext], extra_tool: Callable[..., None]
) -> None:
    cancelled = asyncio.Event()

    async def stuck(query: str) -> str:
        try:
            await asyncio.sleep(30)
        except asyncio.CancelledError:
            cancelled.set()
            raise
        return "never"

    extra_tool("stuck", stuck)
    started = time.monotonic()
    out = await call(make_ctx(tool_settings(TOOL_TIMEOUT=0.3)), "stuck", query="x")
    assert time.monotonic() - started < 5
    assert out == "Error: stuck was stopped after its 0.3s time limit (TOOL_TIMEOUT); try a smaller request"
    assert cancelled.is_set(), "the tool's coroutine kept running after its limit"


async def test_a_stuck_sync_tool_ends_at_its_own_limit(
    make_ctx: Callable[..., ToolContext], extra_tool: Callable[..., None]
) -> None:
    def slow(query: str) -> str:  # AutoGen runs a sync tool in a worker thread
        time.sleep(1.2)
        return "late"

    extra_tool("slow", slow, timeout=0.3)
    started = time.monotonic()
    out = await call(make_ctx(tool_settings(TOOL_TIMEOUT=100)), "slow", query="x")  # its own limit wins
    assert time.monotonic() - started < 1
    assert out == "Error: slow was stopped after its 0.3s time limit; try a smaller request"


async def test_a_tool_within_its_limit_and_a_tools_own_timeout_error_are_reported_as_such(
    make_ctx: Callable[..., ToolContext], extra_tool: Callable[..., None]
) -> None:
    async def quick(query: str) -> str:
        await asyncio.sleep(0.05)
        return f"found {query}"

    async def upstream(query: str) -> str:
        raise TimeoutError("the upstream API timed out")

    extra_tool("quick", quick)
    extra_tool("upstream", upstream)
    ctx = make_ctx(tool_settings(TOOL_TIMEOUT=2))
    assert await call(ctx, "quick", query="x") == "found x"
    assert await call(ctx, "upstream", query="x") == "Error: upstream failed: TimeoutError: the upstream API timed out"


class _SlowSandbox:
    backend = "fake"

    async def execute_code_blocks(self, code_blocks: list[Any], cancellation_token: CancellationToken) -> CodeResult:
        await asyncio.sleep(0.6)
        return CodeResult(exit_code=0, output="done\n")


async def test_run_python_keeps_the_sandboxs_own_time_limit(make_ctx: Callable[..., ToolContext]) -> None:
    async def executor() -> Any:
        return _SlowSandbox()

    ctx = make_ctx(tool_settings(TOOL_TIMEOUT=0.2), executor=executor)
    assert await call(ctx, "run_python", code="print('done')") == "exit code 0\ndone\n"


async def test_the_runs_cancel_still_stops_a_tool_before_its_limit(
    make_ctx: Callable[..., ToolContext], extra_tool: Callable[..., None]
) -> None:
    async def stuck(query: str) -> str:
        await asyncio.sleep(30)
        return "never"

    extra_tool("stuck", stuck)
    abort = CancellationToken()
    ctx = make_ctx(tool_settings(TOOL_TIMEOUT=20), abort=abort)
    asyncio.get_running_loop().call_later(0.2, abort.cancel)
    started = time.monotonic()
    out = await call(ctx, "stuck", query="x")
    assert time.monotonic() - started < 5
    assert out == "Error: stuck was stopped because the run was cancelled"
