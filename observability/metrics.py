"""Prometheus metrics of the process: runs, turns, model calls, tokens, cost, tools, sandbox runs, sessions.

The metric objects live on their own CollectorRegistry (not prometheus_client's global one), served by
`GET /metrics` (ui/health.py) in the classic text format. The code books through the small functions below;
each swallows its own errors, so a metrics failure can never break a run.

Labels are bounded by configuration only: agent names, tool names, providers, models, sandbox backends and stop
reasons. Never question text, task ids, run ids or anything else a user typed; never secrets.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any, ParamSpec

from loguru import logger
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from prometheus_client.exposition import CONTENT_TYPE_PLAIN_0_0_4, generate_latest

CONTENT_TYPE = CONTENT_TYPE_PLAIN_0_0_4  # "text/plain; version=0.0.4; charset=utf-8"
_LABEL_MAX = 80  # a label value longer than this is cut: labels come from configs, not from users

SANDBOX_BUCKETS = (0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0, 900.0, 3600.0)


class Metrics:
    """One set of metric objects on one registry (a test can `reset()` to a fresh set)."""

    def __init__(self) -> None:
        r = self.registry = CollectorRegistry(auto_describe=True)
        self.runs = Counter("roundtable_runs", "Finished runs, by why they stopped", ["stop_reason"], registry=r)
        self.active_runs = Gauge("roundtable_active_runs", "Runs in progress", registry=r)
        self.turns = Counter("roundtable_turns", "Agent turns, by agent", ["agent"], registry=r)
        model_labels = ["provider", "model", "agent"]
        self.model_calls = Counter("roundtable_model_calls", "Model calls (speaker selection included)",
                                   model_labels, registry=r)
        self.tokens = Counter("roundtable_tokens", "Tokens of model calls; kind is prompt or completion",
                              [*model_labels, "kind"], registry=r)
        self.cost = Counter("roundtable_cost_usd", "Estimated cost of model calls with a known price (USD)",
                            model_labels, registry=r)
        self.unpriced_calls = Counter("roundtable_unpriced_model_calls", "Model calls whose model has no known price",
                                      model_labels, registry=r)
        self.tool_calls = Counter("roundtable_tool_calls", "Tool calls, by tool", ["tool"], registry=r)
        self.tool_errors = Counter("roundtable_tool_errors", "Tool calls that ended in an error, by tool",
                                   ["tool"], registry=r)
        self.sandbox_runs = Counter("roundtable_sandbox_runs", "Programs run in the sandbox, by backend",
                                    ["backend"], registry=r)
        self.sandbox_seconds = Histogram("roundtable_sandbox_run_seconds", "Wall time of one sandbox run",
                                         ["backend"], buckets=SANDBOX_BUCKETS, registry=r)
        self.active_sessions = Gauge("roundtable_active_sessions", "Open chat sessions of the web app", registry=r)
        self.sessions: set[str] = set()  # ids of the open sessions (never a label): an end without a start is a no-op


_current = Metrics()


def current() -> Metrics:
    return _current


def reset() -> Metrics:
    """A fresh set of metrics (tests); what was booked before is gone."""
    global _current
    _current = Metrics()
    return _current


def render() -> tuple[bytes, str]:
    """The exposition of the current metrics and its content type."""
    return generate_latest(_current.registry), CONTENT_TYPE


P = ParamSpec("P")


def _safe(fn: Callable[P, None]) -> Callable[P, None]:
    @functools.wraps(fn)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> None:
        try:
            fn(*args, **kwargs)
        except Exception as exc:  # metrics must never break a run
            logger.warning("metrics: {} failed: {}: {}", fn.__name__, type(exc).__name__, exc)

    return wrapper


def _label(value: object) -> str:
    text = str(value or "unknown").strip() or "unknown"
    return text[:_LABEL_MAX]


@_safe
def run_started() -> None:
    _current.active_runs.inc()


@_safe
def run_stopped() -> None:
    """A run's stream ended (finished, failed or abandoned by its caller)."""
    _current.active_runs.dec()


@_safe
def run_finished(result: Any) -> None:
    _current.runs.labels(_label(result.stop_reason)).inc()


@_safe
def turn(agent: str) -> None:
    _current.turns.labels(_label(agent)).inc()


@_safe
def model_call(provider: str, model: str, agent: str, prompt_tokens: int, completion_tokens: int,
               cost_usd: float | None) -> None:
    labels = (_label(provider), _label(model), _label(agent))
    m = _current
    m.model_calls.labels(*labels).inc()
    m.tokens.labels(*labels, "prompt").inc(max(0, prompt_tokens))
    m.tokens.labels(*labels, "completion").inc(max(0, completion_tokens))
    if cost_usd is None:
        m.unpriced_calls.labels(*labels).inc()
    else:
        m.cost.labels(*labels).inc(max(0.0, cost_usd))


@_safe
def tool_call(tool: str, error: bool) -> None:
    _current.tool_calls.labels(_label(tool)).inc()
    if error:
        _current.tool_errors.labels(_label(tool)).inc()


@_safe
def sandbox_run(backend: str, seconds: float) -> None:
    _current.sandbox_runs.labels(_label(backend)).inc()
    _current.sandbox_seconds.labels(_label(backend)).observe(max(0.0, seconds))


@_safe
def session_opened(session_id: object) -> None:
    _current.sessions.add(str(session_id))
    _current.active_sessions.set(len(_current.sessions))


@_safe
def session_closed(session_id: object) -> None:
    _current.sessions.discard(str(session_id))
    _current.active_sessions.set(len(_current.sessions))
