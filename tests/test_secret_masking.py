"""Secrets with no recognisable shape never reach a sink: logs (text and JSON, tracebacks included), a run dir
of `submit.py run`, exported spans, and the page.

The keys here have no `sk-`/`hf_`/`Bearer` prefix, so the shape patterns of `config.log` cannot catch them:
only masking the exact values this process knows can. Each test fails when that masking is removed.
"""

from __future__ import annotations

import io
import json
import logging
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from loguru import logger
from opentelemetry import trace
from opentelemetry.sdk.trace import SpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from rich.console import Console

import observability.tracing as telemetry
from cli.console import ConsoleRenderer
from config.log import _KEY_PATTERNS, MASK, StreamMasker, register_secrets, setup_logging
from config.settings import Settings
from teams import events as ev
from teams import load_team, solve
from teams.result import Result
from tests.conftest import settings_for
from tests.fakes.scoring_api import ScoringServer
from tests.test_telemetry import _PROVIDER
from tests.ui.fake_session import chainlit_session
from ui.render import RunView

REPO = Path(__file__).resolve().parents[1]
SECRETS = {  # made up, random-looking, and of no provider's shape
    "OPENAI_API_KEY": "K7f2Qx9Lm3Vb8Np1Zt6W",
    "ANTHROPIC_API_KEY": "q3Rz8TnW1vLp5XsY0dKe",
    "HF_TOKEN": "Mb4Jc9Vf2Hs7Lx1Qw6Pt",
    "SERPER_API_KEY": "Zr5Dk8Gm1Tq3Wy7Nb2Fh",
}
OPENAI, ANTHROPIC, HF, SERPER = SECRETS.values()
QUESTION = "The invented town of Quillby has 12 bridges and 5 ferries. How many crossings in all?"


def shapeless_settings(**extra: Any) -> Settings:
    return Settings(_env_file=None, **SECRETS, **extra)  # type: ignore[call-arg]


def assert_masked(text: str, where: str) -> None:
    for name, value in SECRETS.items():
        assert value not in text, f"{name} leaked into {where}"
        assert value[:10] not in text and value[10:] not in text, f"half of {name} leaked into {where}"
    assert MASK in text, f"nothing was masked in {where}: the test did not put a secret there"


def test_the_secrets_have_no_shape_a_pattern_would_catch() -> None:
    for value in SECRETS.values():
        assert _KEY_PATTERNS.search(value) is None and _KEY_PATTERNS.search(f"key {value} and x-api-key: {value}") is None


@pytest.fixture(autouse=True)
def _restore_logging() -> Iterator[None]:
    yield
    logger.remove()
    logger.add(sys.stderr)
    logging.basicConfig(handlers=[logging.StreamHandler()], level=logging.WARNING, force=True)


# --- logs -------------------------------------------------------------------------------------------------
class ProviderError(Exception):
    """Like an SDK's error: its text quotes the request it failed on."""


def _fail_like_an_sdk() -> None:
    """The error's own text is clean; the keys are in the exception it was raised from, and in its notes."""
    try:
        raise ConnectionError(f"POST https://api.example/v1 headers={{'x-api-key': '{ANTHROPIC}', 'api-key': '{SERPER}'}}")
    except ConnectionError as cause:
        error = ProviderError("the provider refused the request")
        error.add_note(f"sent Authorization: {OPENAI} and token {HF}")
        raise error from cause


@pytest.mark.parametrize("log_format", ["text", "json"])
def test_logs_never_show_a_shapeless_key_in_messages_extras_or_tracebacks(log_format: str) -> None:
    sink = io.StringIO()
    setup_logging(shapeless_settings(LOG_LEVEL="DEBUG", LOG_FORMAT=log_format), sink=sink)
    logger.info("calling the model with {} and {}", OPENAI, ANTHROPIC)
    logger.bind(headers={"X-API-KEY": SERPER}, token=HF).debug("search request")
    logging.getLogger("some.sdk").warning("sdk says: key=%s token=%s", OPENAI, HF)  # std logging is routed here
    try:
        _fail_like_an_sdk()
    except ProviderError:
        logger.exception("the model call failed")
        logging.getLogger("openai").error("the model call failed", exc_info=True)
    out = sink.getvalue()
    assert_masked(out, f"the {log_format} log")
    assert out.count("ProviderError") >= 2 and "ConnectionError" in out  # the tracebacks are still there, masked
    if log_format == "json":
        records = [json.loads(line)["record"] for line in out.splitlines()]
        assert records[1]["extra"]["headers"] == {"X-API-KEY": MASK} and records[1]["extra"]["token"] == MASK


def test_a_key_too_short_to_mask_is_reported_and_a_six_character_one_is_masked() -> None:
    sink = io.StringIO()
    setup_logging(Settings(_env_file=None, OPENAI_API_KEY="ab12c", TAVILY_API_KEY="x9Kq2Z"), sink=sink)  # type: ignore[call-arg]
    logger.warning("tavily key x9Kq2Z")
    out = sink.getvalue()
    assert "OPENAI_API_KEY is shorter than 6 characters" in out and "ab12c" not in out
    assert "x9Kq2Z" not in out and f"tavily key {MASK}" in out


def test_streamed_text_is_masked_even_when_a_key_is_split_across_pieces() -> None:
    register_secrets([OPENAI])
    stream = StreamMasker()
    pieces = ["The key is K7f2", "Qx9Lm", "3Vb8Np1Zt6W, and a header Bearer", " abc.def-", "ghi_jkl1 ends", " here."]
    shown = [stream.feed(p) for p in pieces] + [stream.flush()]
    assert "".join(shown) == f"The key is {MASK}, and a header Bearer {MASK} ends here."
    assert not any("K7f2" in s or "3Vb8" in s or "abc.def" in s for s in shown)
    # A run without whitespace longer than the stream holds back is let out, but never through a key.
    blob = "x" * (StreamMasker.HOLD_MAX - 100) + OPENAI + "y" * (StreamMasker.TAIL - 10)  # the tail cut lands in the key
    for at in range(0, len(blob), 7):
        long_stream = StreamMasker()
        shown = [long_stream.feed(blob[:at]), long_stream.feed(blob[at:]), long_stream.flush()]
        assert OPENAI not in "".join(shown) and not any(OPENAI[:6] in s or OPENAI[-6:] in s for s in shown), at


# --- a run dir of `submit.py run` -------------------------------------------------------------------------
def _model_that_echoes_the_keys() -> dict[str, Any]:
    """The solo agent prints two keys with run_python (a tool result holding them), then answers with the others."""

    def solo(req: Any) -> Any:
        if not any(m.get("role") == "tool" for m in req.messages):
            code = f"print('serper is {SERPER}'); print('anthropic is {ANTHROPIC}')"
            return {"tool_calls": [{"name": "run_python", "arguments": {"code": code}}], "content": f"Using {HF}."}
        return f"The token {HF} worked.\nFINAL ANSWER: {OPENAI}"

    return {"solo": solo}


def test_a_run_dir_of_submit_run_holds_no_shapeless_key(llm_server, tmp_path: Path) -> None:
    llm = llm_server(_model_that_echoes_the_keys())
    questions = [{"task_id": "task-mask1", "question": QUESTION, "Level": "1", "file_name": ""}]
    run_dir = tmp_path / "runs" / "masked"
    with ScoringServer(questions, answers={"task-mask1": "17"}) as scoring:
        env = {
            **os.environ, **SECRETS,
            "OPENAI_BASE_URL": llm.url, "LLM_PROVIDER": "openai", "LLM_RETRY_BASE_DELAY": "0.01",
            "SCORING_API_URL": scoring.url, "HF_HOME": str(tmp_path / "hf-home"), "ROUNDTABLE_ENV_FILE": "",
            "ROUNDTABLE_CACHE_DIR": str(tmp_path / "cache"), "SANDBOX_BACKEND": "subprocess",
            "SANDBOX_ALLOW_SUBPROCESS": "1", "LOG_LEVEL": "DEBUG", "COLUMNS": "200", "PYTHONUNBUFFERED": "1",
        }
        env.pop("CI", None)
        done = subprocess.run(
            [sys.executable, str(REPO / "submit.py"), "run", "--team", "solo", "--run-dir", str(run_dir)],
            env=env, cwd=tmp_path, capture_output=True, text=True, timeout=180,
        )
    assert done.returncode == 0, done.stdout + done.stderr
    tool_results = [m for r in llm.requests for m in r.messages if m.get("role") == "tool"]
    assert any(SERPER in str(m.get("content")) for m in tool_results)  # the tool result really held the key
    files = {p.name: p.read_text(errors="replace") for p in run_dir.rglob("*") if p.is_file()}
    assert {"answers.jsonl", "run.json", "run.log"} <= set(files)
    for name in ("answers.jsonl", "run.log"):
        assert_masked(files[name], name)
    for name, text in files.items():
        for value in SECRETS.values():
            assert value not in text, name
    assert json.loads(files["answers.jsonl"].splitlines()[-1])["answer"] == MASK
    for value in SECRETS.values():
        assert value not in done.stdout and value not in done.stderr


# --- spans ------------------------------------------------------------------------------------------------
class _Switch(SpanProcessor):
    """A span processor forwarding to `inner` only during one test (the global provider outlives it)."""

    def __init__(self) -> None:
        self.inner: Any = None

    def on_start(self, span: Any, parent_context: Any = None) -> None:
        if self.inner is not None:
            self.inner.on_start(span, parent_context)

    def on_end(self, span: Any) -> None:
        if self.inner is not None:
            self.inner.on_end(span)

    def shutdown(self) -> None:
        pass

    def force_flush(self, timeout_millis: int = 30_000) -> bool:
        return True if self.inner is None else bool(self.inner.force_flush(timeout_millis))


_SWITCH = _Switch()
_PROVIDER.add_span_processor(_SWITCH)


@pytest.fixture
def exported() -> Iterator[InMemorySpanExporter]:
    """Spans as the OTLP exporter would receive them: through `telemetry.span_processor`, as installed."""
    memory = InMemorySpanExporter()
    telemetry.setup_tracing(provider=_PROVIDER)
    _SWITCH.inner = telemetry.span_processor(memory)
    yield memory
    _SWITCH.inner = None
    telemetry._enabled = None


def _span_text(spans: Any) -> str:
    return "\n".join(span.to_json() for span in spans)


async def test_exported_spans_hold_no_shapeless_key(llm_server, exported: InMemorySpanExporter) -> None:
    setup_logging(shapeless_settings(), sink=io.StringIO())  # as every entry point does: the keys become known
    server = llm_server({"solo": [f"Checked with {HF}.\nFINAL ANSWER: {OPENAI}"]})
    result = await solve(QUESTION, load_team("solo"), settings=settings_for(server, **SECRETS, OPENAI_BASE_URL=server.url))
    assert result.answer == OPENAI  # the question span's answer attribute would carry it
    run = telemetry.RunTelemetry("r-mask", "task-mask", "solo")
    with pytest.raises(ProviderError), run.span("tool web_search", None, query=f"serper {SERPER}"):
        _fail_like_an_sdk()  # recorded as an exception event with message and stack trace
    run.finish(**{"roundtable.answer": ANTHROPIC})
    with trace.get_tracer("some.sdk").start_as_current_span("sdk call", attributes={"headers": [f"api-key: {SERPER}"]}) as span:
        span.add_event("retry", {"reason": f"token {HF} rejected"})  # a span no code of ours made
    assert _SWITCH.inner.force_flush()
    spans = exported.get_finished_spans()
    question = next(s for s in spans if s.name == "question" and s.attributes.get("roundtable.run_id") != "r-mask")
    assert question.attributes["roundtable.answer"] == MASK
    failed = next(s for s in spans if s.name == "tool web_search")
    assert failed.events and failed.events[0].name == "exception"
    assert MASK in str(failed.events[0].attributes["exception.stacktrace"])
    assert_masked(_span_text(spans), "the exported spans")


# --- the page ---------------------------------------------------------------------------------------------
async def test_the_page_never_shows_a_shapeless_key_from_the_model_or_a_tool() -> None:
    setup_logging(shapeless_settings(), sink=io.StringIO())  # what chainlit_app does at start
    result = Result(
        question=QUESTION, answer=OPENAI, raw_answer=f"FINAL ANSWER: {OPENAI}", approved=False, stop_reason="error",
        stop_detail=f"provider said {ANTHROPIC}", duration_s=1.0, error=f"401: key {ANTHROPIC} rejected",
    )
    events = [
        ev.RunStarted("r1", QUESTION, "debate", ["researcher", "coder"]),
        ev.TurnStarted("researcher", 1),
        *[ev.Token("researcher", t) for t in ["I will use ", OPENAI[:8], OPENAI[8:], " to search."]],
        ev.ToolCall("researcher", "c1", "web_search", json.dumps({"query": f"key {SERPER}"})),
        ev.ToolResult("researcher", "c1", "web_search", f"result: the token is {HF}", False),
        ev.Thought("researcher", f"It said {HF}."),
        ev.TurnEnded("researcher", 1, f"I will use {OPENAI} to search.", 5, 5),
        ev.TurnStarted("coder", 2),
        ev.ToolCall("coder", "c2", "run_python", json.dumps({"code": f"print('{SERPER}')"}), shown_as_code=True),
        ev.CodeRun("coder", "c2", f"print('{SERPER}')", None, None, tool="run_python"),
        ev.ToolResult("coder", "c2", "run_python", f"exit code 0\n{SERPER}", False, shown_as_code=True),
        ev.CodeRun("coder", "c2", f"print('{SERPER}')", f"exit code 0\n{SERPER}", 0, tool="run_python"),
        ev.Token("coder", f"FINAL ANSWER: {OPENAI}"),
        ev.TurnEnded("coder", 2, f"FINAL ANSWER: {OPENAI}", 5, 5),
        ev.AnswerProposed("coder", OPENAI, "proposed"),
        ev.RunFinished(result),
    ]
    with chainlit_session() as rec:
        view = RunView("debate")
        for event in events:
            await view.handle(event)
    assert_masked(str(rec.events), "the page")
    terminal = io.StringIO()
    renderer = ConsoleRenderer(Console(file=terminal, width=200, color_system=None))
    for event in events:
        renderer(event)
    assert_masked(terminal.getvalue(), "the terminal")
    researcher = next(s for s in rec.steps().values() if s.get("name") == "researcher — turn 1")
    assert researcher["output"].startswith(f"I will use {MASK} to search.")  # the streamed reply, masked whole
    final = rec.messages()[-1]["output"]
    assert f"Final answer (not approved): {MASK}" in final.replace("\\", "")
