"""OpenTelemetry traces of each question, exported over OTLP when OTEL_EXPORTER_OTLP_ENDPOINT is set.

One trace per question: `question` > `turn <agent>` > `chat <model>` (token counts) and `tool <name>`
(AutoGen's own `execute_tool` span nests inside) > `sandbox run`. AutoGen's runtime spans are switched off:
they scatter one question over many traces joined only by links (see the AutoGen notes, §7).

When no endpoint is set nothing is installed and every helper here is a no-op: no spans are created.

Secrets are masked where spans leave the process (`span_processor`, around the exporter): names, attributes,
events (a recorded exception's message and stack trace), links and status texts, of our spans and of the
ones AutoGen and the SDKs make without passing through our code.
"""

from __future__ import annotations

import contextlib
import os
import threading
from collections.abc import Iterator
from typing import Any

from opentelemetry import context as otel_context
from opentelemetry import trace

_lock = threading.Lock()
_enabled: bool | None = None
TRACER_NAME = "roundtable"


def otlp_configured() -> bool:
    return bool(os.environ.get("OTEL_EXPORTER_OTLP_ENDPOINT") or os.environ.get("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT"))


def setup_tracing(provider: Any | None = None) -> bool:
    """Install the OTLP exporter once per process (or `provider`, for tests). Returns whether tracing is on."""
    global _enabled
    with _lock:
        os.environ.setdefault("AUTOGEN_DISABLE_RUNTIME_TRACING", "true")
        if provider is not None:
            trace.set_tracer_provider(provider)
            _enabled = True
            return True
        if _enabled is not None:
            return _enabled
        if not otlp_configured():
            _enabled = False
            return False
        from opentelemetry.sdk.resources import Resource
        from opentelemetry.sdk.trace import TracerProvider

        exporter: Any
        if os.environ.get("OTEL_EXPORTER_OTLP_PROTOCOL", "http/protobuf").startswith("grpc"):
            from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter as GrpcExporter

            exporter = GrpcExporter()
        else:
            from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter as HttpExporter

            exporter = HttpExporter()
        tp = TracerProvider(resource=Resource.create({"service.name": os.environ.get("OTEL_SERVICE_NAME", "roundtable")}))
        tp.add_span_processor(span_processor(exporter))  # endpoint and headers come from OTEL_* env
        trace.set_tracer_provider(tp)
        _enabled = True
        return True


def span_processor(exporter: Any) -> Any:
    """The processor every exporter is installed with: batched, and masked before a span is exported."""
    from opentelemetry.sdk.trace.export import BatchSpanProcessor

    return BatchSpanProcessor(MaskingSpanExporter(exporter))  # type: ignore[arg-type]


class MaskingSpanExporter:
    """A SpanExporter that hands `inner` copies of the spans with every string masked (config.log.mask)."""

    def __init__(self, inner: Any) -> None:
        self._inner = inner

    def export(self, spans: Any) -> Any:
        return self._inner.export([_masked(span) for span in spans])

    def shutdown(self) -> None:
        self._inner.shutdown()

    def force_flush(self, timeout_millis: int = 30_000) -> bool:
        return bool(self._inner.force_flush(timeout_millis))


def _masked(span: Any) -> Any:
    from opentelemetry.sdk.trace import Event, ReadableSpan
    from opentelemetry.trace import Link, Status

    from config.log import mask, mask_data

    def attrs(attributes: Any) -> dict[str, Any]:
        return {k: mask_data(list(v) if isinstance(v, tuple) else v) for k, v in (attributes or {}).items()}

    status = span.status
    if status.description:
        status = Status(status.status_code, mask(status.description))
    return ReadableSpan(
        name=mask(span.name),
        context=span.context,
        parent=span.parent,
        resource=span.resource,
        attributes=attrs(span.attributes),
        events=[Event(mask(e.name), attrs(e.attributes), e.timestamp) for e in span.events],
        links=[Link(link.context, attrs(link.attributes)) for link in span.links],
        kind=span.kind,
        status=status,
        start_time=span.start_time,
        end_time=span.end_time,
        instrumentation_scope=span.instrumentation_scope,
    )


class RunTelemetry:
    """The spans of one question. Model calls, tools and sandbox runs attach to the speaking agent's turn."""

    def __init__(self, run_id: str, question_id: str | None, team: str) -> None:
        self._tracer = trace.get_tracer(TRACER_NAME)
        self.question = self._tracer.start_span(
            "question", attributes={"roundtable.run_id": run_id, "roundtable.question_id": question_id or "", "roundtable.team": team}
        )
        self._root = trace.set_span_in_context(self.question)
        self._turns: dict[str, trace.Span] = {}

    def context_for(self, agent: str | None) -> otel_context.Context:
        span = self._turns.get(agent or "")
        return trace.set_span_in_context(span) if span is not None else self._root

    @contextlib.contextmanager
    def attached(self) -> Iterator[None]:
        """Make the question span current, so tasks created inside inherit it."""
        token = otel_context.attach(self._root)
        try:
            yield
        finally:
            otel_context.detach(token)

    def turn_started(self, agent: str, turn: int) -> None:
        self.turn_ended(agent)
        self._turns[agent] = self._tracer.start_span(
            f"turn {agent}", context=self._root, attributes={"roundtable.agent": agent, "roundtable.turn": turn}
        )

    def turn_ended(self, agent: str, prompt_tokens: int | None = None, completion_tokens: int | None = None) -> None:
        span = self._turns.pop(agent, None)
        if span is None:
            return
        if prompt_tokens is not None:
            span.set_attribute("gen_ai.usage.input_tokens", prompt_tokens)
            span.set_attribute("gen_ai.usage.output_tokens", completion_tokens or 0)
        span.end()

    @contextlib.contextmanager
    def span(self, name: str, agent: str | None, **attributes: Any) -> Iterator[trace.Span]:
        parent = self.context_for(agent) if agent else None  # None: nest in whatever span is current
        with self._tracer.start_as_current_span(name, context=parent, attributes=attributes) as span:
            yield span

    def start(self, name: str, agent: str | None, **attributes: Any) -> trace.Span:
        """A span ended by the caller (for async generators, where a current span cannot cross yields)."""
        return self._tracer.start_span(name, context=self.context_for(agent), attributes=attributes)

    def finish(self, **attributes: Any) -> None:
        for agent in list(self._turns):
            self.turn_ended(agent)
        for key, value in attributes.items():
            if value is not None:
                self.question.set_attribute(key, value)
        self.question.end()


@contextlib.contextmanager
def maybe_span(telemetry: RunTelemetry | None, name: str, agent: str | None, **attributes: Any) -> Iterator[Any]:
    """A child span when tracing is on; otherwise nothing at all."""
    if telemetry is None:
        yield None
        return
    with telemetry.span(name, agent, **attributes) as span:
        yield span
