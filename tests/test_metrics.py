"""`/metrics`: what a scripted run leaves in the Prometheus exposition, and the real app serving it."""

from __future__ import annotations

import json
import re
import urllib.request
from collections.abc import AsyncGenerator, Iterator
from pathlib import Path
from typing import Any, cast

import pytest
from prometheus_client.parser import text_string_to_metric_families

from config.settings import Settings
from observability import metrics
from teams import Run
from teams.loader import parse_team
from tests.fakes.debates import forever, run, trio, turns
from tests.fakes.function_model import Call, Reply, ScriptedModels, ToolCalls, tool
from tests.ui.harness import ChainlitApp, app_env, scratch_dir

Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


@pytest.fixture(autouse=True)
def fresh_metrics() -> Iterator[None]:
    metrics.reset()
    yield
    metrics.reset()


def exposition() -> Samples:
    """The current exposition, parsed as Prometheus would: (sample name, labels) -> value."""
    body, content_type = metrics.render()
    assert content_type.startswith("text/plain; version=0.0.4")
    return parse(body.decode())


def parse(text: str) -> Samples:
    return {(s.name, frozenset(s.labels.items())): s.value
            for family in text_string_to_metric_families(text) for s in family.samples}


def value(samples: Samples, name: str, **labels: str) -> float:
    return samples.get((name, frozenset(labels.items())), 0.0)


def checked_sum() -> ScriptedModels:
    """The planner asks; the researcher makes one good and one broken calculator call, then answers; the critic
    approves."""
    def researcher(call: Call) -> Reply:
        if call.tools and not call.last_tool_results:
            return ToolCalls([("calculator", {"expression": "1200 + 3400"}), ("calculator", {"expression": "1200 +"})])
        return "The calculator gives 4600.\nFINAL ANSWER: 4600"

    return ScriptedModels({
        "planner": forever("Researcher, check the sum with the calculator.\nNEXT: researcher"),
        "researcher": forever(researcher),
        "critic": forever("The sum matches the calculator.\nAPPROVED\nFINAL ANSWER: 4600"),
    })


async def test_a_scripted_run_shows_its_stop_reason_usage_tools_and_no_active_run_afterwards() -> None:
    events, result = await run(trio(), checked_sum())
    assert result.stop_reason == "approved" and result.answer == "4600"
    s = exposition()

    assert value(s, "roundtable_runs_total", stop_reason="approved") == 1
    assert sum(v for (name, _), v in s.items() if name == "roundtable_runs_total") == 1
    assert value(s, "roundtable_active_runs") == 0
    agents = turns(events)
    assert agents
    for agent in set(agents):
        assert value(s, "roundtable_turns_total", agent=agent) == agents.count(agent)

    model = {"provider": "function", "model": "function-model"}
    assert set(result.usage) >= {"planner", "researcher", "critic"}
    for agent, usage in result.usage.items():
        assert value(s, "roundtable_model_calls_total", agent=agent, **model) == usage.calls
        assert value(s, "roundtable_tokens_total", agent=agent, kind="prompt", **model) == usage.prompt_tokens
        assert value(s, "roundtable_tokens_total", agent=agent, kind="completion", **model) == usage.completion_tokens
    assert result.model_calls > 0

    assert value(s, "roundtable_tool_calls_total", tool="calculator") == 2
    assert value(s, "roundtable_tool_errors_total", tool="calculator") == 1
    # no label carries the question
    assert all("Alderbrook" not in v for _, labels in s for _, v in labels)


async def test_a_run_stopped_by_its_caller_is_no_longer_active() -> None:
    r = Run("What is 1200 + 3400?", trio(), settings=Settings(_env_file=None), client_factory=checked_sum().factory)
    stream = cast(AsyncGenerator[Any, None], r.events())
    await anext(stream)
    assert value(exposition(), "roundtable_active_runs") == 1
    await stream.aclose()
    assert value(exposition(), "roundtable_active_runs") == 0


def coder_team() -> ScriptedModels:
    def coder(call: Call) -> Reply:
        if call.tools and not call.last_tool_results:
            return tool("run_python", code="print(1200 + 3400)")
        return "The program printed 4600.\nFINAL ANSWER: 4600"

    return ScriptedModels({
        "planner": forever("Coder, compute the sum.\nNEXT: coder"),
        "coder": forever(coder),
        "critic": forever("The program agrees.\nAPPROVED\nFINAL ANSWER: 4600"),
    })


async def test_a_sandbox_run_is_counted_with_its_duration_by_backend() -> None:
    team = parse_team({
        "name": "coders",
        "agents": [
            {"name": "planner", "role": "planner"},
            {"name": "coder", "role": "coder", "tools": ["run_python"]},
            {"name": "critic", "role": "critic"},
        ],
        "selection": {"mode": "rules", "first": "planner", "reviewer": "critic",
                      "default_next": {"planner": "coder", "coder": "planner", "critic": "planner"}},
        "termination": {"approver": "critic"},
    })
    settings = Settings(_env_file=None, SANDBOX_BACKEND="subprocess", SANDBOX_ALLOW_SUBPROCESS=True)
    r = Run("What is 1200 + 3400?", team, settings=settings, client_factory=coder_team().factory)
    _ = [e async for e in r.events()]
    assert r.result is not None and r.result.answer == "4600"
    s = exposition()
    assert value(s, "roundtable_sandbox_runs_total", backend="subprocess") == 1
    assert value(s, "roundtable_sandbox_run_seconds_count", backend="subprocess") == 1
    assert value(s, "roundtable_sandbox_run_seconds_sum", backend="subprocess") > 0
    assert value(s, "roundtable_tool_calls_total", tool="run_python") == 1
    assert value(s, "roundtable_tool_errors_total", tool="run_python") == 0


def test_sessions_are_counted_once_each_and_a_broken_metric_never_raises(monkeypatch: pytest.MonkeyPatch) -> None:
    metrics.session_opened("a")
    metrics.session_opened("b")
    metrics.session_opened("a")
    metrics.session_closed("b")
    metrics.session_closed("never-opened")
    assert value(exposition(), "roundtable_active_sessions") == 1

    monkeypatch.setattr(metrics.current().tool_calls, "labels", None)
    metrics.tool_call("calculator", False)  # swallowed (logged), not raised


def test_the_app_serves_metrics_in_the_prometheus_text_format() -> None:
    with scratch_dir() as root, ChainlitApp(app_env(root), root) as app:
        opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
        with opener.open(f"{app.url}/metrics", timeout=10) as r:
            assert r.status == 200
            content_type = r.headers["Content-Type"]
            text = r.read().decode()
    assert content_type.startswith("text/plain; version=0.0.4")
    names = {family.name for family in text_string_to_metric_families(text)}
    assert {"roundtable_runs", "roundtable_active_runs", "roundtable_model_calls", "roundtable_tool_calls",
            "roundtable_sandbox_run_seconds", "roundtable_active_sessions"} <= names
    assert value(parse(text), "roundtable_active_runs") == 0


def test_the_grafana_dashboard_only_queries_metrics_that_exist() -> None:
    dashboard = json.loads((Path(__file__).resolve().parents[1] / "deploy" / "grafana" / "roundtable.json").read_text())
    exprs = [t["expr"] for p in dashboard["panels"] for t in p["targets"]]
    used = {name for e in exprs for name in re.findall(r"\broundtable_[a-z_]+", e)}
    exposed: set[str] = set()
    for family in metrics.current().registry.collect():
        suffixes = {"counter": ["_total"], "histogram": ["_bucket", "_count", "_sum"]}.get(family.type, [""])
        exposed.update(family.name + s for s in suffixes)
    assert used and used <= exposed, sorted(used - exposed)
    assert {"roundtable_runs_total", "roundtable_sandbox_run_seconds_bucket", "roundtable_active_sessions"} <= used


def test_metrics_need_the_token_when_one_is_set_and_are_off_on_a_space_without_one(monkeypatch) -> None:
    from fastapi import FastAPI
    from fastapi.testclient import TestClient

    from config.settings import Settings
    from ui import health

    api = FastAPI()
    api.add_api_route("/metrics", health.metrics_route, methods=["GET"])
    client = TestClient(api)

    def use(**env: str) -> None:
        monkeypatch.setattr(health, "get_settings", lambda: Settings(_env_file=None, **env))  # type: ignore[call-arg]

    use()
    assert client.get("/metrics").status_code == 200  # a local run: open
    use(SPACE_ID="alice/roundtable")
    off = client.get("/metrics")
    assert off.status_code == 404 and "ROUNDTABLE_METRICS_TOKEN" in off.text and "roundtable_" not in off.text
    use(SPACE_ID="alice/roundtable", ROUNDTABLE_METRICS_TOKEN="scrape-me-123")
    assert client.get("/metrics").status_code == 401
    assert client.get("/metrics", headers={"Authorization": "Bearer wrong-token"}).status_code == 401
    ok = client.get("/metrics", headers={"Authorization": "Bearer scrape-me-123"})
    assert ok.status_code == 200 and "roundtable_active_runs" in ok.text
