"""OpenTelemetry: one trace per question with turns, model calls (tokens), tools and sandbox runs nested."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

import observability.tracing as telemetry
from teams import Run, load_team, solve
from tests.conftest import settings_for
from tests.test_debate import QUESTION, debate_script

_EXPORTER = InMemorySpanExporter()
_PROVIDER = TracerProvider()
_PROVIDER.add_span_processor(SimpleSpanProcessor(_EXPORTER))


@pytest.fixture
def traced() -> Iterator[InMemorySpanExporter]:
    telemetry.setup_tracing(provider=_PROVIDER)  # the global provider can be set once per process
    _EXPORTER.clear()
    yield _EXPORTER
    telemetry._enabled = None  # back to "not configured" for the other tests


def test_without_an_endpoint_no_spans_are_made() -> None:
    assert not telemetry.otlp_configured()
    assert Run("q", load_team("debate")).telemetry is None


async def test_a_debate_is_one_nested_trace(llm_server, traced: InMemorySpanExporter) -> None:
    server = llm_server(debate_script())
    result = await solve(QUESTION, load_team("debate"), settings=settings_for(server))
    spans = traced.get_finished_spans()
    by_id = {s.context.span_id: s for s in spans}

    def parent(span):  # type: ignore[no-untyped-def]
        return by_id.get(span.parent.span_id) if span.parent else None

    [question] = [s for s in spans if s.name == "question"]
    assert question.attributes["roundtable.answer"] == "4600" and question.attributes["roundtable.stop_reason"] == "approved"
    assert question.attributes["gen_ai.usage.input_tokens"] == result.prompt_tokens
    assert {s.context.trace_id for s in spans if s.name != "question" and s.name.split()[0] in ("turn", "chat", "tool", "sandbox")} == {question.context.trace_id}

    turns = [s for s in spans if s.name.startswith("turn ")]
    assert [t.name for t in sorted(turns, key=lambda t: t.start_time)] == [
        "turn planner", "turn researcher", "turn planner", "turn coder", "turn critic", "turn planner", "turn critic"
    ]
    assert all(parent(t) is question for t in turns)

    chats = [s for s in spans if s.name.startswith("chat ")]
    assert len(chats) == len(server.requests)
    assert all(parent(c).name == f"turn {c.attributes['roundtable.agent']}" for c in chats)
    assert sum(c.attributes["gen_ai.usage.input_tokens"] for c in chats) == result.prompt_tokens

    [calc] = [s for s in spans if s.name == "tool calculator"]
    assert parent(calc).name == "turn researcher"
    assert any(s.name == "execute_tool calculator" and parent(s) is calc for s in spans)  # AutoGen's own span
    [sandbox] = [s for s in spans if s.name == "sandbox run"]
    assert parent(sandbox).name == "execute_tool run_python" and parent(parent(sandbox)).name == "tool run_python"
    assert sandbox.attributes["roundtable.sandbox.exit_code"] == 0 and sandbox.attributes["roundtable.sandbox.backend"]
