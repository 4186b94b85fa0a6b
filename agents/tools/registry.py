"""The tool registry: team YAMLs name tools, this module turns names into AutoGen tools.

YAML never carries tool code (AutoGen's own component loading `exec`s tool source); it can only pick
from what is registered here. Each tool is built per question from a ToolContext, so it sees only that
question's folder, sandbox and abort signal.
"""

from __future__ import annotations

import asyncio
import copy
import difflib
import json
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, Protocol, runtime_checkable

from autogen_core import CancellationToken
from autogen_core.code_executor import CodeExecutor
from autogen_core.models import ChatCompletionClient
from autogen_core.tools import BaseTool, FunctionTool, ToolSchema
from loguru import logger
from pydantic import ValidationError

from agents.tools.errors import ToolError, ToolFailed
from common.text import DEFAULT_MAX_CHARS, bound, one_line
from config.settings import Settings
from observability import metrics
from observability.tracing import maybe_span


@dataclass
class ToolContext:
    """What a tool may touch for one question."""

    settings: Settings
    workdir: Path  # the question's folder: attachments live here, file tools may open nothing else
    abort: CancellationToken = field(default_factory=CancellationToken)
    executor: Callable[[], Awaitable[CodeExecutor]] | None = None  # the question's sandbox, started on first use
    vision_client: ChatCompletionClient | None = None
    allow_loopback: bool = False  # only tests serving fixtures on 127.0.0.1 turn this on
    telemetry: Any | None = None  # observability.tracing.RunTelemetry when tracing is on
    # call id -> a tool's structured result (StructuredOutput), for the run's transcript
    outputs: dict[str, Any] = field(default_factory=dict)
    # A team's `guards.repeated_tool_calls`: "cache" answers a repeated identical call from `call_cache`.
    repeat_calls: Literal["cache", "run"] = "cache"
    call_cache: ToolCallCache = field(default_factory=lambda: ToolCallCache())
    # The run's models.usage.UsageLedger: a tool that calls a model itself (watch_video's Gemini path) books it here.
    ledger: Any | None = None


REPEAT_NOTE_PREFIX = "Note: this exact call"


class ToolCallCache:
    """The results of one run's tool calls, by (tool, arguments), so an identical call is not run twice.

    Only successes are kept: a failed call (a time limit, a server error) may be retried and may succeed.
    Calls with the same key wait for each other, so two identical calls in one reply run once.
    """

    def __init__(self, *, loop_limit: int | None = None, on_loop: Callable[[str], None] | None = None) -> None:
        self._results: dict[str, tuple[str, str | None]] = {}  # key -> (text, agent that made the call)
        self._locks: dict[str, asyncio.Lock] = {}
        self.hits = 0
        # guards.repeated_call_limit: an agent that gets this many repeats in a row, with no call that ran in
        # between, is looping inside its turn (a model's tool loop runs up to max_tool_iterations rounds before
        # any between-turn guard can act): `on_loop` ends the run as stalled.
        self.loop_limit = loop_limit
        self.on_loop = on_loop
        self._streak: dict[str | None, int] = {}
        # agent -> (its last malformed call as written, how often it was repeated since); reset by a call that ran
        self._malformed: dict[str | None, tuple[str, int]] = {}

    def repeated(self, tool: str, agent: str | None) -> None:
        self.hits += 1
        self._streak[agent] = streak = self._streak.get(agent, 0) + 1
        if self.loop_limit is not None and streak >= self.loop_limit and self.on_loop is not None:
            self.on_loop(f"{agent or 'an agent'} repeated the same {tool} call {streak} times in a row")

    def malformed(self, tool: str, agent: str | None, arguments: str) -> None:
        """A call whose arguments could not be read (agents/tool_calls.py): the same one again, with no call
        that ran in between, is the model looping on a call it cannot fix."""
        call = f"{tool} {arguments}"
        last, repeats = self._malformed.get(agent, ("", 0))
        repeats = repeats + 1 if call == last else 0
        self._malformed[agent] = (call, repeats)
        if self.loop_limit is not None and repeats >= self.loop_limit and self.on_loop is not None:
            self.on_loop(f"{agent or 'an agent'} repeated the same malformed {tool} call {repeats} times in a row")

    def ran(self, agent: str | None) -> None:
        self._streak[agent] = 0
        self._malformed.pop(agent, None)

    @staticmethod
    def key(tool: str, arguments: Mapping[str, Any]) -> str:
        return tool + " " + json.dumps(dict(arguments), sort_keys=True, ensure_ascii=False, default=str)

    def lock(self, key: str) -> asyncio.Lock:
        return self._locks.setdefault(key, asyncio.Lock())

    def get(self, key: str) -> tuple[str, str | None] | None:
        return self._results.get(key)

    def put(self, key: str, text: str, agent: str | None) -> None:
        self._results[key] = (text, agent)


def repeated_result(tool: str, text: str, *, first_agent: str | None, agent: str | None) -> str:
    """What a repeated identical call returns: a note, a blank line, then the earlier result unchanged."""
    who = "" if first_agent is None else (" by you" if first_agent == agent else f" by {first_agent}")
    return (
        f"{REPEAT_NOTE_PREFIX} was already made{who} in this run; it was not run again. Same result below: use it "
        f"or try another call.\n\n{text}"
    )


def strip_repeat_note(text: str) -> str:
    """The result itself, without the note a repeated call gets (for telling new evidence from old)."""
    if text.startswith(REPEAT_NOTE_PREFIX):
        _, sep, rest = text.partition("\n\n")
        return rest if sep else text
    return text


ToolFactory = Callable[[ToolContext], BaseTool[Any, Any]]


@dataclass(frozen=True)
class ToolEntry:
    name: str
    summary: str
    factory: ToolFactory
    needs: str = ""  # what the tool needs to be useful (keys, extras), shown by `roundtable --tools`
    code_argument: str | None = None  # the argument holding a program: its calls are shown as code runs


_REGISTRY: dict[str, ToolEntry] = {}


def register(
    name: str, summary: str, needs: str = "", *, code_argument: str | None = None
) -> Callable[[ToolFactory], ToolFactory]:
    def decorate(factory: ToolFactory) -> ToolFactory:
        if name in _REGISTRY:
            raise ValueError(f"tool {name!r} registered twice")
        _REGISTRY[name] = ToolEntry(name, summary, factory, needs, code_argument)
        return factory

    return decorate


def _ensure_loaded() -> None:
    import agents.tools  # noqa: F401  (importing the package registers every tool module)


def tool_names() -> list[str]:
    _ensure_loaded()
    return sorted(_REGISTRY)


def entries() -> list[ToolEntry]:
    _ensure_loaded()
    return [_REGISTRY[n] for n in sorted(_REGISTRY)]


def code_argument(name: str) -> str | None:
    """The argument of tool `name` that holds a program, when its calls are code runs."""
    _ensure_loaded()
    entry = _REGISTRY.get(name)
    return entry.code_argument if entry else None


def unknown_tool_message(name: str) -> str:
    hint = difflib.get_close_matches(name, tool_names(), n=1)
    return f"unknown tool {name!r}" + (f" (did you mean {hint[0]!r}?)" if hint else "")


def build_tools(names: list[str], ctx: ToolContext, agent: str | None = None) -> list[BaseTool[Any, Any]]:
    _ensure_loaded()
    tools = []
    for name in names:
        if name not in _REGISTRY:
            raise KeyError(unknown_tool_message(name))
        tool = _REGISTRY[name].factory(ctx)
        if isinstance(tool, SafeTool):
            if tool.timeout_from_settings:
                tool.timeout = ctx.settings.tool_timeout
            tool.abort = ctx.abort
            tool.agent = agent
            tool.telemetry = ctx.telemetry
            tool.outputs = ctx.outputs
            tool.loop_guard = ctx.call_cache  # counts malformed calls (agents/tool_calls.py), cache or not
            # Programs always run again: one may read a file an earlier one wrote, or print something new.
            if ctx.repeat_calls == "cache" and _REGISTRY[name].code_argument is None:
                tool.cache = ctx.call_cache
        tools.append(tool)
    return tools


class _Stopped(Exception):
    pass


class _TimedOut(Exception):
    pass


DEFAULT_TOOL_TIMEOUT = 120.0  # the TOOL_TIMEOUT setting's default, for a SafeTool built outside build_tools


class SafeTool(FunctionTool):
    """A FunctionTool whose every outcome is text the model can use.

    Exceptions, bad arguments, oversized results and calls over the tool's time limit never reach AutoGen as
    errors that could end a turn badly: they come back as one clear line (`Error: ...`) or a truncated text
    that says it was cut.

    `timeout` is the wall-clock limit of one call: "setting" (the default) takes TOOL_TIMEOUT, a number is the
    tool's own limit, None means the tool enforces its own (run_python: the sandbox's time limit). When the
    limit passes, the await ends: an async tool is cancelled; a sync tool's worker thread cannot be killed and
    finishes on its own, so a sync tool must bound its own work (the calculator does).
    """

    def __init__(
        self,
        func: Callable[..., Any],
        *,
        name: str,
        description: str,
        max_chars: int = DEFAULT_MAX_CHARS,
        timeout: float | None | Literal["setting"] = "setting",
    ):
        super().__init__(func, name=name, description=description)
        self.max_chars = max_chars
        self.timeout_from_settings = timeout == "setting"
        self.timeout: float | None = DEFAULT_TOOL_TIMEOUT if timeout == "setting" else timeout
        # Set by build_tools to the run's abort token: a stopped run must not wait for a slow tool.
        self.abort: CancellationToken | None = None
        self.agent: str | None = None
        self.telemetry: Any | None = None
        self.outputs: dict[str, Any] | None = None
        self.cache: ToolCallCache | None = None  # set by build_tools: the run's results of earlier calls
        self.loop_guard: ToolCallCache | None = None  # set by build_tools, also when results are not cached

    # AutoGen regenerates a tool's JSON schema (pydantic) on every model call; the schema only depends on the
    # name, description and signature, identical for every question, so it is computed once per process.
    _schemas: dict[tuple[str, str, str], ToolSchema] = {}

    @property
    def schema(self) -> ToolSchema:
        key = (self.name, self.description, str(self._signature))
        cached = SafeTool._schemas.get(key)
        if cached is None:
            cached = SafeTool._schemas[key] = super().schema
        return copy.deepcopy(cached)  # callers may adjust their copy (e.g. strict mode)

    async def _call(self, args: Mapping[str, Any], cancellation_token: CancellationToken, call_id: str | None) -> Any:
        if self.abort is not None and self.abort.is_cancelled():
            raise _Stopped()
        task = asyncio.ensure_future(super().run_json(args, cancellation_token, call_id))
        if self.abort is not None:
            self.abort.link_future(task)
        limit = asyncio.timeout(self.timeout)
        try:
            async with limit:
                return await task
        except TimeoutError:
            if limit.expired():  # not a TimeoutError the tool itself raised
                raise _TimedOut() from None
            raise
        except asyncio.CancelledError:
            if task.cancelled() and self.abort is not None and self.abort.is_cancelled():
                raise _Stopped() from None
            raise
        finally:
            task.cancel()  # no-op once done; stops an async tool that outlived its limit

    async def run_json(
        self, args: Mapping[str, Any], cancellation_token: CancellationToken, call_id: str | None = None
    ) -> Any:
        """The tool's text on success. Any failure is formatted here, once, and raised as `ToolFailed`.

        With the run's cache (guards.repeated_tool_calls: cache), a call identical to an earlier successful
        one (same tool, same arguments once defaults are filled in) is not run: it returns the earlier text
        behind a note saying so."""
        if self.cache is None:
            return await self._run_once(args, cancellation_token, call_id)
        try:
            canonical = self.args_type().model_validate(dict(args)).model_dump(mode="json")
        except ValidationError:
            return await self._run_once(args, cancellation_token, call_id)  # reports the bad arguments
        key = ToolCallCache.key(self.name, canonical)
        async with self.cache.lock(key):
            if (earlier := self.cache.get(key)) is not None:
                self.cache.repeated(self.name, self.agent)
                text, first_agent = earlier
                logger.info("tool {} {} -> repeated call, earlier result returned", self.name,
                            one_line(json.dumps(canonical, ensure_ascii=False, default=str), 160))
                return repeated_result(self.name, text, first_agent=first_agent, agent=self.agent)
            self.cache.ran(self.agent)
            text = await self._run_once(args, cancellation_token, call_id)
            self.cache.put(key, text, self.agent)
            return text

    async def _run_once(
        self, args: Mapping[str, Any], cancellation_token: CancellationToken, call_id: str | None
    ) -> str:
        started = time.monotonic()
        shown = one_line(json.dumps(dict(args), ensure_ascii=False, default=str), 160)
        error: str | None = None
        try:
            with maybe_span(self.telemetry, f"tool {self.name}", self.agent, **{"gen_ai.tool.name": self.name}):
                result = await self._call(args, cancellation_token, call_id)
            if call_id is not None and self.outputs is not None and isinstance(result, StructuredOutput):
                self.outputs[call_id] = result  # the run reads the structure; the model reads the text
            text = bound(self.return_value_as_string(result), self.max_chars)
        except ToolError as exc:
            error = one_line(str(exc), 2_000) or f"{self.name} failed"
        except _Stopped:
            error = f"{self.name} was stopped because the run was cancelled"
        except _TimedOut:
            setting = " (TOOL_TIMEOUT)" if self.timeout_from_settings else ""
            error = f"{self.name} was stopped after its {self.timeout:g}s time limit{setting}; try a smaller request"
        except ValidationError as exc:
            problems = "; ".join(f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in exc.errors())
            error = f"bad arguments for {self.name}: {problems}"
        except Exception as exc:
            error = f"{self.name} failed: {one_line(f'{type(exc).__name__}: {exc}', 300)}"
        elapsed = time.monotonic() - started
        metrics.tool_call(self.name, error is not None)
        if error is not None:
            text = f"Error: {error}"
            logger.info("tool {} {} -> error in {:.2f}s: {}", self.name, shown, elapsed, text)
            raise ToolFailed(text)
        if self.loop_guard is not None:
            self.loop_guard.ran(self.agent)  # a call that ran breaks a streak of repeats
        logger.info("tool {} {} -> {} chars in {:.2f}s", self.name, shown, len(text), elapsed)
        logger.debug("tool {} output: {}", self.name, text)
        return text

    def return_value_as_string(self, value: Any) -> str:
        if isinstance(value, StructuredOutput):
            return value.render()
        return super().return_value_as_string(value)


@runtime_checkable
class StructuredOutput(Protocol):
    """A tool result with structure the run keeps (run_python's exit code, backend); `render()` is the model's text."""

    def render(self) -> str: ...
