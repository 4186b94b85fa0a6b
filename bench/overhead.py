"""Framework overhead per agent turn and memory per concurrent team, with a zero-latency model.

Two zero-latency models:
  replay - AutoGen's ReplayChatCompletionClient in-process: the time is ours + AutoGen's, nothing else;
  http   - the scripted OpenAI-compatible server on localhost: adds the openai SDK, HTTP and SSE parsing.
Target: <= 10 ms of framework time per agent turn.

    python bench/overhead.py [--questions 20] [--concurrency 8]
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import logging
import resource
import statistics
import sys
import time
import tracemalloc
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from autogen_core import CancellationToken, FunctionCall  # noqa: E402
from autogen_core.models import CreateResult, ModelInfo, RequestUsage  # noqa: E402
from autogen_ext.models.replay import ReplayChatCompletionClient  # noqa: E402

from config.settings import Settings  # noqa: E402
from models.client import ManagedClient  # noqa: E402
from models.spec import ModelSpec  # noqa: E402
from models.usage import UsageLedger  # noqa: E402
from teams import Run, load_team  # noqa: E402
from teams import events as ev  # noqa: E402
from tests.fakes.scripted_llm import ScriptedLLM  # noqa: E402

INFO = ModelInfo(vision=False, function_calling=True, json_output=False, family="unknown", structured_output=False)
TOOL_CALL = CreateResult(
    finish_reason="function_calls",
    content=[FunctionCall(id="c1", name="calculator", arguments='{"expression": "1200 + 3400"}')],
    usage=RequestUsage(prompt_tokens=50, completion_tokens=10),
    cached=False,
)
REPLIES: dict[str, list] = {
    "planner": ["Plan: look it up, then add.\nNEXT: researcher", "FINAL ANSWER: 4600"],
    "researcher": [TOOL_CALL, "Alderbrook 1,200 and Birchwell 3,400: 4600.\nNEXT: planner"],
    "critic": ["APPROVED\nFINAL ANSWER: 4600"],
    "coder": ["unused"],
}
HTTP_SCRIPT = {
    "planner": REPLIES["planner"],
    "researcher": [{"tool_calls": [{"name": "calculator", "arguments": {"expression": "1200 + 3400"}}]}, REPLIES["researcher"][1]],
    "critic": REPLIES["critic"],
}
QUESTION = "How many people live in Alderbrook and Birchwell together?"


def replay_factory(spec: ModelSpec, agent: str, ledger: UsageLedger, abort: CancellationToken) -> ManagedClient:
    inner = ReplayChatCompletionClient(list(REPLIES.get(agent, ["unused"])), model_info=INFO)
    return ManagedClient(inner, agent=agent, provider="replay", model="replay", ledger=ledger, abort=abort)


def settings(url: str | None = None) -> Settings:
    values = {"SANDBOX_ALLOW_SUBPROCESS": True}
    if url:
        values.update(OPENAI_API_KEY="sk-bench-0000", OPENAI_BASE_URL=url, LLM_PROVIDER="openai")
    return Settings(_env_file=None, **values)  # type: ignore[call-arg]


async def one(team, s: Settings, factory) -> int:  # type: ignore[no-untyped-def]
    run = Run(QUESTION, team, settings=s, client_factory=factory)
    turns = 0
    async for e in run.events():
        turns += isinstance(e, ev.TurnEnded)
    assert run.result is not None and run.result.answer == "4600", run.result
    return turns


async def sequential(n: int, s: Settings, factory, server: ScriptedLLM | None = None) -> tuple[float, int, list[float]]:  # type: ignore[no-untyped-def]
    team = load_team("debate")
    per_q = []
    turns = 0
    for _ in range(n):
        if server is not None:
            server._cursor.clear()  # replay the same script for every question
        t0 = time.perf_counter()
        turns += await one(team, s, factory)
        per_q.append(time.perf_counter() - t0)
    return sum(per_q), turns, per_q


async def concurrent_memory(k: int) -> tuple[float, float]:
    team = load_team("debate")
    s = settings()
    gc.collect()
    tracemalloc.start()
    await asyncio.gather(*(one(team, s, replay_factory) for _ in range(k)))
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    return peak / k / 2**20, resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--questions", type=int, default=20)
    p.add_argument("--concurrency", type=int, default=8)
    args = p.parse_args()
    from loguru import logger

    logger.remove()
    logging.disable(logging.WARNING)  # AutoGen's replay client warns on every token count
    asyncio.run(sequential(2, settings(), replay_factory))  # warm imports and caches
    total, turns, per_q = asyncio.run(sequential(args.questions, settings(), replay_factory))
    print(f"replay model: {args.questions} questions, {turns} agent turns, {total:.2f}s")
    print(f"  framework time per agent turn: {total / turns * 1000:.1f} ms (target <= 10 ms)")
    print(f"  per question: median {statistics.median(per_q) * 1000:.0f} ms")
    with ScriptedLLM(HTTP_SCRIPT) as server:
        total_h, turns_h, per_q_h = asyncio.run(sequential(args.questions, settings(server.url), None, server))
    print(f"http scripted model: {args.questions} questions, {turns_h} agent turns, {total_h:.2f}s")
    print(f"  time per agent turn incl. openai SDK + localhost HTTP: {total_h / turns_h * 1000:.1f} ms")
    per_team, rss = asyncio.run(concurrent_memory(args.concurrency))
    print(f"memory: {args.concurrency} concurrent teams, peak Python allocations {per_team:.2f} MiB per team; process max RSS {rss:.0f} MiB")


if __name__ == "__main__":
    main()
