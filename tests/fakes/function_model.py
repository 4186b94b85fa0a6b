"""An in-process model double, in the spirit of pydantic-ai's FunctionModel and openai-agents' scripted model.

- `FunctionModel`: an AutoGen `ChatCompletionClient` whose every reply comes from a Python function
  `(Call) -> Reply`. It streams (word by word) when the agent streams, reports token usage, and never touches a
  thread, a socket or an SDK. Usage is the word count of the messages (in) and of the reply (out), unless a
  `usage` function says what to report per call (`(Call, reply) -> (prompt_tokens, completion_tokens)`, e.g. a
  few thousand in and a few hundred out, as a real model with its system prompt and tool schemas would).
- `ScriptedModels`: one list of replies per agent. `factory` plugs into `Run(client_factory=...)`, so each
  agent's double is still wrapped by the real `ManagedClient` (ledger, abort token, retries). A call from an
  agent with no script, or past its last step, is an unexpected call; `assert_complete()` fails the test on any
  unexpected call and on any step that was never used.

The HTTP scripted server (`tests/fakes/scripted_llm.py`) stays for what must go through an SDK: providers,
the UI, the CLI and the container.
"""

from __future__ import annotations

import asyncio
import json
import re
from collections.abc import AsyncGenerator, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from autogen_core import CancellationToken, FunctionCall
from autogen_core.models import (
    AssistantMessage,
    ChatCompletionClient,
    CreateResult,
    FunctionExecutionResultMessage,
    LLMMessage,
    ModelInfo,
    RequestUsage,
    SystemMessage,
    UserMessage,
)
from autogen_core.tools import Tool, ToolSchema
from pydantic import BaseModel

from models.client import ManagedClient
from models.spec import ModelSpec
from models.usage import UsageLedger

_WORD = re.compile(r"\S+\s*|\s+")


def _text(content: Any) -> str:
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return " ".join(_text(part) if not isinstance(part, str) else part for part in content)
    return str(content)


def count_tokens(text: str) -> int:
    return len(text.split())


@dataclass(frozen=True)
class Call:
    """One model call as the double saw it."""

    agent: str
    messages: Sequence[LLMMessage]
    tools: list[str]
    stream: bool

    @property
    def system(self) -> str:
        return "\n".join(_text(m.content) for m in self.messages if isinstance(m, SystemMessage))

    @property
    def question(self) -> str:
        return next((_text(m.content) for m in self.messages if isinstance(m, UserMessage)), "")

    @property
    def last_tool_results(self) -> list[str]:
        """What the agent's most recent tool calls returned (empty when the last message is not a tool result)."""
        if self.messages and isinstance(self.messages[-1], FunctionExecutionResultMessage):
            return [r.content for r in self.messages[-1].content]
        return []

    @property
    def transcript(self) -> str:
        return "\n".join(_text(m.content) for m in self.messages if isinstance(m, (UserMessage, AssistantMessage)))


@dataclass(frozen=True)
class ToolCalls:
    """A reply that calls tools, optionally with text before the calls (a "thought")."""

    calls: list[tuple[str, dict[str, Any]]]
    thought: str | None = None


def tool(name: str, /, **arguments: Any) -> ToolCalls:
    return ToolCalls([(name, arguments)])


@dataclass(frozen=True)
class Slow:
    """A reply that takes `seconds` to arrive (a slow model: for timeouts and cancellation)."""

    seconds: float
    reply: str | ToolCalls


Reply = str | ToolCalls | Slow | BaseException
ModelFunction = Callable[[Call], Reply]
UsageFunction = Callable[[Call, str | ToolCalls], tuple[int, int]]  # (prompt, completion) tokens to report


class UnexpectedCall(AssertionError):
    pass


class FunctionModel(ChatCompletionClient):
    """A chat client that answers with `fn(call)`; an exception returned by `fn` is raised as the call's error."""

    def __init__(self, fn: ModelFunction, *, agent: str, vision: bool = False,
                 peek: Callable[[str], Any] | None = None, usage: UsageFunction | None = None) -> None:
        self.fn = fn
        self.usage = usage  # None: word counts
        self.peek = peek  # the agent's next scripted step, not consumed (to honour a `Slow` one before answering)
        self.agent = agent
        self.calls: list[Call] = []
        self._usage = RequestUsage(prompt_tokens=0, completion_tokens=0)
        self._info = ModelInfo(vision=vision, function_calling=True, json_output=True, family="unknown",
                               structured_output=False)
        self._ids = 0

    def _reply(self, messages: Sequence[LLMMessage], tools: Sequence[Tool | ToolSchema], stream: bool) -> CreateResult:
        names = [t.name if isinstance(t, Tool) else t["name"] for t in tools]
        call = Call(self.agent, list(messages), names, stream)
        self.calls.append(call)
        reply = self.fn(call)
        if isinstance(reply, Slow):
            reply = reply.reply
        if isinstance(reply, BaseException):
            raise reply
        prompt = sum(count_tokens(_text(m.content)) for m in messages)
        if isinstance(reply, ToolCalls):
            unknown = [name for name, _ in reply.calls if name not in names]
            if unknown:
                raise UnexpectedCall(f"{self.agent} was scripted to call {unknown}, but it was offered only {names}")
            content: str | list[FunctionCall] = []
            for name, arguments in reply.calls:
                self._ids += 1
                content.append(FunctionCall(id=f"call_{self.agent}_{self._ids}", name=name, arguments=json.dumps(arguments)))
            completion = count_tokens(json.dumps([list(c) for c in reply.calls])) + count_tokens(reply.thought or "")
            if self.usage is not None:
                prompt, completion = self.usage(call, reply)
            usage = RequestUsage(prompt_tokens=prompt, completion_tokens=completion)
            result = CreateResult(finish_reason="function_calls", content=content, usage=usage, cached=False,
                                  thought=reply.thought)
        else:
            prompt, completion = self.usage(call, reply) if self.usage is not None else (prompt, count_tokens(reply))
            usage = RequestUsage(prompt_tokens=prompt, completion_tokens=completion)
            result = CreateResult(finish_reason="stop", content=reply, usage=usage, cached=False)
        self._usage = RequestUsage(self._usage.prompt_tokens + usage.prompt_tokens,
                                   self._usage.completion_tokens + usage.completion_tokens)
        return result

    async def create(
        self,
        messages: Sequence[LLMMessage],
        *,
        tools: Sequence[Tool | ToolSchema] = [],
        tool_choice: Tool | Literal["auto", "required", "none"] = "auto",
        json_output: bool | type[BaseModel] | None = None,
        extra_create_args: Mapping[str, Any] = {},
        cancellation_token: CancellationToken | None = None,
    ) -> CreateResult:
        await self._wait(messages, tools)
        return self._reply(messages, tools, stream=False)

    async def _wait(self, messages: Sequence[LLMMessage], tools: Sequence[Tool | ToolSchema]) -> None:
        """Sleep first when the step about to be answered is `Slow` (peeked without consuming it)."""
        step = self.peek(self.agent) if self.peek is not None else None
        if isinstance(step, Slow):
            await asyncio.sleep(step.seconds)

    async def create_stream(
        self,
        messages: Sequence[LLMMessage],
        *,
        tools: Sequence[Tool | ToolSchema] = [],
        tool_choice: Tool | Literal["auto", "required", "none"] = "auto",
        json_output: bool | type[BaseModel] | None = None,
        extra_create_args: Mapping[str, Any] = {},
        cancellation_token: CancellationToken | None = None,
        max_consecutive_empty_chunk_tolerance: int = 0,
        include_usage: bool | None = None,
    ) -> AsyncGenerator[str | CreateResult, None]:
        await self._wait(messages, tools)
        result = self._reply(messages, tools, stream=True)
        text = result.content if isinstance(result.content, str) else (result.thought or "")
        for chunk in _WORD.findall(text):
            yield chunk
        yield result

    async def close(self) -> None:
        return None

    def actual_usage(self) -> RequestUsage:
        return self._usage

    def total_usage(self) -> RequestUsage:
        return self._usage

    def count_tokens(self, messages: Sequence[LLMMessage], *, tools: Sequence[Tool | ToolSchema] = []) -> int:
        return sum(count_tokens(_text(m.content)) for m in messages)

    def remaining_tokens(self, messages: Sequence[LLMMessage], *, tools: Sequence[Tool | ToolSchema] = []) -> int:
        return 128_000 - self.count_tokens(messages)

    @property
    def capabilities(self) -> Any:
        return self._info

    @property
    def model_info(self) -> ModelInfo:
        return self._info


Step = Reply | ModelFunction


@dataclass
class ScriptedModels:
    """Replies per agent, in order. Use `factory` as `Run(client_factory=...)`; call `assert_complete()` at the end."""

    scripts: dict[str, list[Step]]
    vision: bool = False
    usage: UsageFunction | None = None  # what each call reports as its tokens (None: word counts)
    clients: dict[str, FunctionModel] = field(default_factory=dict)
    unexpected: list[str] = field(default_factory=list)
    _cursor: dict[str, int] = field(default_factory=dict)

    def _peek(self, agent: str) -> Step | None:
        steps = self.scripts.get(agent)
        i = self._cursor.get(agent, 0)
        return steps[i] if steps is not None and i < len(steps) else None

    def _answer(self, call: Call) -> Reply:
        steps = self.scripts.get(call.agent)
        i = self._cursor.get(call.agent, 0)
        if steps is None or i >= len(steps):
            why = "has no script" if steps is None else f"used all {len(steps)} scripted step(s)"
            self.unexpected.append(f"{call.agent} was called again after it {why}" if steps else f"{call.agent} {why}")
            return UnexpectedCall(f"unexpected model call: {self.unexpected[-1]}")
        self._cursor[call.agent] = i + 1
        step = steps[i]
        if callable(step) and not isinstance(step, BaseException):
            return step(call)
        return step

    def factory(self, spec: ModelSpec, agent: str, ledger: UsageLedger, abort: CancellationToken) -> ChatCompletionClient:
        client = FunctionModel(self._answer, agent=agent, vision=self.vision, peek=self._peek, usage=self.usage)
        self.clients[agent] = client
        # max_retries=0: a scripted error is the test's point, not something to retry past.
        return ManagedClient(client, agent=agent, provider="function", model="function-model", ledger=ledger,
                             abort=abort, max_retries=0)

    def calls_for(self, agent: str) -> list[Call]:
        client = self.clients.get(agent)
        return list(client.calls) if client else []

    def unused(self) -> dict[str, int]:
        return {agent: len(steps) - self._cursor.get(agent, 0)
                for agent, steps in self.scripts.items() if len(steps) > self._cursor.get(agent, 0)}

    def assert_complete(self) -> None:
        problems = list(self.unexpected)
        problems += [f"{agent}: {n} scripted step(s) never used" for agent, n in self.unused().items()]
        if problems:
            raise AssertionError("the model script did not run as written:\n- " + "\n- ".join(problems))
