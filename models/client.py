"""A ChatCompletionClient wrapper every agent's model goes through.

It adds what AutoGen's clients lack or get wrong for our use:
- retries with exponential backoff on 429, 5xx (Anthropic's 529 "overloaded" included), timeouts, connection errors
  and an error event in a stream before its first chunk, honouring `retry-after`/`retry-after-ms`; the server's
  `x-should-retry: true/false` (OpenAI's and Anthropic's convention) overrides the status-based rule (the SDKs'
  own retries are switched off so there is one policy, logged and tested);
- a missing model (404 `model_not_found` / `not_found_error` "model: x" / Gemini NOT_FOUND / HF
  `model_not_supported`) fails at once with one line naming the model, the provider and, when the provider can list
  them, the closest models it offers;
- usage accounting per agent into the run's ledger (selector calls included, streamed calls included);
- a run-level abort token: a cancelled or timed-out run interrupts an in-flight model call at once,
  instead of waiting for it (AutoGen's own token hangs the team when cancelled during a tool call).
"""

from __future__ import annotations

import asyncio
import difflib
import email.utils
import json
import random
import time
from collections.abc import AsyncGenerator, Awaitable, Callable, Mapping, Sequence
from typing import Any, Literal, TypeVar

import httpx
from autogen_core import CancellationToken
from autogen_core.models import (
    ChatCompletionClient,
    CreateResult,
    LLMMessage,
    ModelCapabilities,
    ModelInfo,
    RequestUsage,
)
from autogen_core.tools import Tool, ToolSchema
from loguru import logger
from pydantic import BaseModel

from models import gate
from observability.tracing import maybe_span

T = TypeVar("T")

_RETRYABLE_STATUS = {408, 409, 425, 429}


class RunAborted(Exception):
    """The run was cancelled or ran out of time while this call was in flight."""


class ModelCallError(Exception):
    """A model call failed for good (after retries, or with an error that retrying cannot fix). One line."""

    def __init__(self, message: str) -> None:
        super().__init__(" ".join(message.split()))


class ModelNotFound(ModelCallError):
    """The provider has no model by that name. `available`: what it offers (closest first; empty if unknown)."""

    def __init__(self, message: str, *, provider: str, model: str, available: Sequence[str] = ()) -> None:
        super().__init__(message)
        self.provider = provider
        self.model = model
        self.available = list(available)


#: the most model names a "not found" message lists
SHOWN_MODELS = 10
#: how long listing the provider's models may take before the error is raised without the list
LIST_MODELS_TIMEOUT = 10.0


def _status_code(exc: BaseException) -> int | None:
    status = getattr(exc, "status_code", None)
    if isinstance(status, int):
        return status
    response = getattr(exc, "response", None)
    status = getattr(response, "status_code", None)
    return status if isinstance(status, int) else None


class EmptyReply(Exception):
    """The model answered with neither text nor tool calls (a filtered or broken reply)."""


def _is_transport_error(exc: BaseException) -> bool:
    # Malformed bodies (a proxy's HTML error page sent with status 200, a cut-off stream) are usually
    # transient, so they are retried like connection errors. The SDKs' own connection and validation errors
    # are declared by their providers (`Provider.retryable_errors()`).
    return isinstance(exc, (TimeoutError, asyncio.TimeoutError, httpx.TransportError, ConnectionError,
                            json.JSONDecodeError, EmptyReply))


def retry_after_seconds(exc: BaseException) -> float | None:
    """The server's requested wait, from `retry-after-ms` or `retry-after` (seconds or an HTTP date)."""
    response = getattr(exc, "response", None)
    headers = getattr(response, "headers", None)
    if not headers:
        return None
    if (ms := headers.get("retry-after-ms")) is not None:
        try:
            return max(0.0, float(ms) / 1000)
        except ValueError:
            pass
    value = headers.get("retry-after")
    if value is None:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        parsed = email.utils.parsedate_to_datetime(value) if value else None
        if parsed is None:
            return None
        return max(0.0, parsed.timestamp() - time.time())


def _error_body(exc: BaseException) -> dict[str, Any]:
    """The vendor's error object: OpenAI's `error` (the SDK unwraps it), Anthropic's `{"type": "error", "error": {..}}`,
    Gemini's `[{"error": {..}}]`. Empty when there is none."""
    body = getattr(exc, "body", None)
    if isinstance(body, list) and body:
        body = body[0]
    if not isinstance(body, dict):
        return {}
    inner = body.get("error")
    return inner if isinstance(inner, dict) else body


def _error_message(exc: BaseException) -> str:
    message = _error_body(exc).get("message")
    return message if isinstance(message, str) else ""


def should_retry_header(exc: BaseException) -> bool | None:
    """The server's own word: `x-should-retry: true|false` (None when absent or unreadable)."""
    response = getattr(exc, "response", None)
    headers = getattr(response, "headers", None)
    if not headers:
        return None
    value = str(headers.get("x-should-retry") or "").strip().lower()
    return {"true": True, "false": False}.get(value)


_NOT_FOUND_WORDS = ("not found", "does not exist", "not_found", "no such model", "unknown model")


def is_model_not_found(exc: BaseException) -> bool:
    """A 404 (or HF's 400 `model_not_supported`) saying the requested model does not exist. A 404 for a wrong URL
    ("Invalid URL", Anthropic's bare "Not Found") is not one."""
    status = _status_code(exc)
    if status not in (400, 404):
        return False
    body = _error_body(exc)
    code = str(body.get("code") or "")
    if code in ("model_not_found", "model_not_supported"):
        return True
    if status != 404:
        return False
    message = _error_message(exc) or str(exc)
    if body.get("type") == "not_found_error" and message.startswith("model:"):  # Anthropic
        return True
    lowered = message.lower()
    return "model" in lowered and any(w in lowered for w in _NOT_FOUND_WORDS)


# An error event inside a 200 stream (Anthropic's SSE `error`): its type says whether it is worth retrying.
_RETRYABLE_ERROR_TYPES = {"overloaded_error", "api_error", "rate_limit_error", "timeout_error"}


def is_retryable(exc: BaseException, declared: tuple[type[BaseException], ...] = ()) -> bool:
    """Whether `exc` is worth another call. `declared`: the provider's own retryable SDK errors
    (`Provider.retryable_errors()`): its connection errors and a response the SDK could not validate, which
    carry no status that says so. A "model not found" and the server's `x-should-retry` come first."""
    if is_model_not_found(exc):
        return False  # retrying cannot create the model, whatever the server's header says
    if (server_says := should_retry_header(exc)) is not None:
        return server_says
    if declared and isinstance(exc, declared):
        return True
    if _is_transport_error(exc):
        return True
    status = _status_code(exc)
    if status in _RETRYABLE_STATUS or (status is not None and status >= 500):
        return True
    return status == 200 and _error_body(exc).get("type") in _RETRYABLE_ERROR_TYPES


def retry_delay(exc: BaseException, attempt: int, base: float, cap: float,
                declared: tuple[type[BaseException], ...] = ()) -> float | None:
    """Seconds to wait before retrying `exc`, or None when it is not worth retrying."""
    if not is_retryable(exc, declared):
        return None
    requested = retry_after_seconds(exc)
    if requested is not None:
        return min(float(requested), cap)
    return min(cap, base * 2.0**attempt) * (0.5 + random.random() / 2)


def describe_error(exc: BaseException) -> str:
    """One line: `HTTP <status>: <the vendor's message>` (or the exception's first line)."""
    status = _status_code(exc)
    text = _error_message(exc).strip() or str(exc).strip()
    text = text.splitlines()[0] if text else type(exc).__name__
    kind = _error_body(exc).get("type")
    if status == 200 and isinstance(kind, str):  # an error event inside a stream
        text = f"{kind}: {text}" if kind not in text else text
    prefix = f"HTTP {status}: " if status and status != 200 else f"{type(exc).__name__}: "
    return " ".join((prefix + text).split())[:300]


def closest_models(wanted: str, offered: Sequence[str], limit: int = SHOWN_MODELS) -> list[str]:
    """`offered`, the names most like `wanted` first (difflib), then the rest in the provider's order; at most `limit`."""
    names = list(dict.fromkeys(n for n in offered if n))
    if limit <= 0 or not names:
        return []
    close = difflib.get_close_matches(wanted, names, n=limit, cutoff=0.5)
    rest = [n for n in names if n not in close]
    return (close + rest)[:limit]


def _declared_errors(provider: str) -> tuple[type[BaseException], ...]:
    from models.providers import REGISTRY  # here: the registry's modules import this one

    known = REGISTRY.get(provider)
    return known.retryable_errors() if known is not None else ()


class ManagedClient(ChatCompletionClient):
    def __init__(
        self,
        inner: ChatCompletionClient,
        *,
        agent: str,
        provider: str,
        model: str,
        ledger: Any | None = None,
        abort: CancellationToken | None = None,
        max_retries: int = 5,
        base_delay: float = 1.0,
        max_delay: float = 60.0,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
        telemetry: Any | None = None,
        available_models: Callable[[], Awaitable[Sequence[str]]] | None = None,
        retryable_errors: tuple[type[BaseException], ...] | None = None,
    ) -> None:
        self._inner = inner
        # None: what `provider` declares in the registry (nothing for a provider it does not hold, e.g. a double)
        self._retryable_errors = _declared_errors(provider) if retryable_errors is None else retryable_errors
        self._available_models = available_models
        self._telemetry = telemetry
        self.agent = agent
        self.provider = provider
        self.model = model
        self._ledger = ledger
        self._abort = abort
        self._max_retries = max_retries
        self._base_delay = base_delay
        self._max_delay = max_delay
        self._sleep = sleep

    @property
    def _who(self) -> str:
        return f"{self.agent}'s model {self.provider}/{self.model}"

    # --- the two calls ---------------------------------------------------------------------------------
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
        with maybe_span(self._telemetry, f"chat {self.model}", self.agent, **self._span_attributes()) as span:
            result = await self._create_with_retries(
                messages, tools, tool_choice, json_output, extra_create_args, cancellation_token
            )
            _set_usage(span, result.usage)
            return result

    async def _create_with_retries(
        self,
        messages: Sequence[LLMMessage],
        tools: Sequence[Tool | ToolSchema],
        tool_choice: Tool | Literal["auto", "required", "none"],
        json_output: bool | type[BaseModel] | None,
        extra_create_args: Mapping[str, Any],
        cancellation_token: CancellationToken | None,
    ) -> CreateResult:
        attempt = 0
        while True:
            self._check_abort()
            try:
                async with gate.slot(self.provider):  # held for the call only, not for the backoff below
                    result = await self._guard(
                        self._inner.create(
                            messages,
                            tools=tools,
                            tool_choice=tool_choice,
                            json_output=json_output,
                            extra_create_args=extra_create_args,
                            cancellation_token=cancellation_token,
                        )
                    )
            except (RunAborted, asyncio.CancelledError):
                raise
            except Exception as exc:
                await self._backoff_or_raise(exc, attempt)
                attempt += 1
                continue
            self._record(result.usage)
            if _is_empty(result) and attempt < self._max_retries:
                await self._backoff_or_raise(EmptyReply("the model returned an empty reply"), attempt)
                attempt += 1
                continue
            return result

    async def create_stream(
        self,
        messages: Sequence[LLMMessage],
        *,
        tools: Sequence[Tool | ToolSchema] = [],
        tool_choice: Tool | Literal["auto", "required", "none"] = "auto",
        json_output: bool | type[BaseModel] | None = None,
        extra_create_args: Mapping[str, Any] = {},
        cancellation_token: CancellationToken | None = None,
    ) -> AsyncGenerator[str | CreateResult, None]:
        span = self._telemetry.start(f"chat {self.model}", self.agent, **self._span_attributes()) if self._telemetry else None
        inner = self._stream_with_retries(messages, tools, tool_choice, json_output, extra_create_args, cancellation_token)
        try:
            async for item in inner:
                if isinstance(item, CreateResult):
                    _set_usage(span, item.usage)
                yield item
        finally:
            await _aclose_quietly(inner)
            if span is not None:
                span.end()

    async def _stream_with_retries(
        self,
        messages: Sequence[LLMMessage],
        tools: Sequence[Tool | ToolSchema],
        tool_choice: Tool | Literal["auto", "required", "none"],
        json_output: bool | type[BaseModel] | None,
        extra_create_args: Mapping[str, Any],
        cancellation_token: CancellationToken | None,
    ) -> AsyncGenerator[str | CreateResult, None]:
        attempt = 0
        while True:
            self._check_abort()
            held = gate.slot(self.provider)  # held while the stream lasts; released before any backoff
            await held.__aenter__()
            stream = self._inner.create_stream(
                messages,
                tools=tools,
                tool_choice=tool_choice,
                json_output=json_output,
                extra_create_args=extra_create_args,
                cancellation_token=cancellation_token,
            )
            yielded = False
            failure: Exception | None = None
            try:
                while True:
                    try:
                        item = await self._guard(stream.__anext__())
                    except StopAsyncIteration:
                        return
                    if isinstance(item, CreateResult):
                        self._record(item.usage)
                        if not yielded and _is_empty(item) and attempt < self._max_retries:
                            raise EmptyReply("the model returned an empty reply")
                    elif item:
                        yielded = True
                    yield item
            except (RunAborted, asyncio.CancelledError, GeneratorExit):
                raise
            except Exception as exc:
                # Once text reached the agent, a retry would duplicate it: only retry failures before the first chunk.
                if yielded:
                    raise ModelCallError(f"{self._who}: {describe_error(exc)}") from exc
                failure = exc
            finally:
                await _aclose_quietly(stream)
                await held.__aexit__(None, None, None)
            assert failure is not None  # the loop above only ends by returning, raising or failing
            await self._backoff_or_raise(failure, attempt)
            attempt += 1

    # --- helpers ---------------------------------------------------------------------------------------
    def _span_attributes(self) -> dict[str, Any]:
        return {"gen_ai.system": self.provider, "gen_ai.request.model": self.model, "roundtable.agent": self.agent}

    def _check_abort(self) -> None:
        if self._abort is not None and self._abort.is_cancelled():
            raise RunAborted("the run was stopped")

    async def _guard(self, awaitable: Awaitable[T]) -> T:
        if self._abort is None:
            return await awaitable
        task = asyncio.ensure_future(awaitable)
        self._abort.link_future(task)
        try:
            return await task
        except asyncio.CancelledError:
            if self._abort.is_cancelled() and task.cancelled():
                raise RunAborted("the run was stopped") from None
            raise

    async def _backoff_or_raise(self, exc: Exception, attempt: int) -> None:
        if is_model_not_found(exc):
            error = await self._model_not_found(exc)
            logger.warning("model call failed agent={} model={}: {}", self.agent, self.model, error)
            raise error from exc
        delay = retry_delay(exc, attempt, self._base_delay, self._max_delay, self._retryable_errors)
        if delay is None or attempt >= self._max_retries:
            why = "not retryable" if delay is None else f"gave up after {attempt + 1} attempts"
            logger.warning("model call failed agent={} model={}: {} ({})", self.agent, self.model, describe_error(exc), why)
            raise ModelCallError(f"{self._who}: {describe_error(exc)} ({why})") from exc
        logger.warning(
            "model call failed agent={} model={}: {}; retry {}/{} in {:.1f}s",
            self.agent,
            self.model,
            describe_error(exc),
            attempt + 1,
            self._max_retries,
            delay,
        )
        await self._guard(self._sleep(delay))

    async def _model_not_found(self, exc: Exception) -> ModelNotFound:
        offered: list[str] = []
        listed = ""
        if self._available_models is not None:
            try:
                names = await self._guard(asyncio.wait_for(self._available_models(), LIST_MODELS_TIMEOUT))
                offered = [str(n) for n in names]
                if not self.model.startswith("models/"):  # Gemini lists "models/x"; it is called as "x"
                    offered = [n.removeprefix("models/") for n in offered]
                offered = list(dict.fromkeys(n for n in offered if n))
            except (RunAborted, asyncio.CancelledError):
                raise
            except Exception as list_exc:  # the listing is a courtesy: never fail worse because of it
                logger.debug("listing {}'s models failed: {}", self.provider, describe_error(list_exc))
        if offered:
            shown = closest_models(self.model, offered)
            more = f" (+{len(offered) - len(shown)} more)" if len(offered) > len(shown) else ""
            listed = f"; it offers: {', '.join(shown)}{more}"
        said = describe_error(exc)
        said = said if len(said) <= 160 else said[:159] + "…"
        message = f"{self.agent}'s model: provider '{self.provider}' has no model '{self.model}' ({said}){listed}"
        ranked = closest_models(self.model, offered, limit=len(offered))
        return ModelNotFound(message, provider=self.provider, model=self.model, available=ranked)

    def _record(self, usage: RequestUsage | None) -> None:
        if self._ledger is None or usage is None:
            return
        self._ledger.add(self.agent, self.provider, self.model, usage.prompt_tokens, usage.completion_tokens)

    # --- pass-through ----------------------------------------------------------------------------------
    async def close(self) -> None:
        await self._inner.close()

    def actual_usage(self) -> RequestUsage:
        return self._inner.actual_usage()

    def total_usage(self) -> RequestUsage:
        return self._inner.total_usage()

    def count_tokens(self, messages: Sequence[LLMMessage], *, tools: Sequence[Tool | ToolSchema] = []) -> int:
        return self._inner.count_tokens(messages, tools=tools)

    def remaining_tokens(self, messages: Sequence[LLMMessage], *, tools: Sequence[Tool | ToolSchema] = []) -> int:
        return self._inner.remaining_tokens(messages, tools=tools)

    @property
    def capabilities(self) -> ModelCapabilities:
        return self._inner.capabilities

    @property
    def model_info(self) -> ModelInfo:
        return self._inner.model_info


def _set_usage(span: Any, usage: RequestUsage | None) -> None:
    if span is not None and usage is not None:
        span.set_attribute("gen_ai.usage.input_tokens", usage.prompt_tokens)
        span.set_attribute("gen_ai.usage.output_tokens", usage.completion_tokens)


def _is_empty(result: CreateResult) -> bool:
    return not result.content or (isinstance(result.content, str) and not result.content.strip())


async def _aclose_quietly(stream: AsyncGenerator[Any, None]) -> None:
    try:
        await stream.aclose()
    except Exception:  # a broken stream must not mask the error that ended it
        pass
