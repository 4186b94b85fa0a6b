"""Batch throughput: 20 scripted questions with a fixed model latency, at concurrency 1, 4 and 8.

The model is the scripted OpenAI-compatible server on localhost; every call waits `--latency` seconds before
answering, like a remote model would. The run is the real `evaluation.batch.BatchRun` (run dir, fsynced
answers, per-question Run with its own clients) on a shipped team. The ideal wall time at concurrency c is
ceil(questions / c) x (model calls per question) x latency: the model's time alone, with zero overhead.
Target: measured >= 0.8 of ideal at concurrency 8.

    python bench/batch.py [--questions 20] [--latency 0.5] [--team debate] [--concurrency 1 4 8]
"""

from __future__ import annotations

import argparse
import asyncio
import math
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from loguru import logger  # noqa: E402

from config.settings import Settings  # noqa: E402
from evaluation.api import TaskItem  # noqa: E402
from evaluation.batch import BatchRun  # noqa: E402
from tests.fakes.scripted_llm import RecordedRequest, ScriptedLLM  # noqa: E402

TARGET = 0.8


def questions(n: int) -> list[TaskItem]:
    return [TaskItem(f"bench-{i:03d}", f"Invented bench question {i}: what is {i} plus {i}?", "1", "") for i in range(n)]


def script(latency: float) -> dict:
    def answer(req: RecordedRequest) -> str:
        i = int(req.question.split("question ")[1].split(":")[0])
        return str(2 * i)

    return {
        "planner": lambda r: {"delay": latency, "content": f"FINAL ANSWER: {answer(r)}"},
        "critic": lambda r: {"delay": latency, "content": f"APPROVED\nFINAL ANSWER: {answer(r)}"},
        "solo": lambda r: {"delay": latency, "content": f"FINAL ANSWER: {answer(r)}"},
    }


async def one(team: str, concurrency: int, tasks: list[TaskItem], settings: Settings, root: Path) -> tuple[float, int]:
    batch = BatchRun(team, root / f"c{concurrency}", settings=settings, concurrency=concurrency)
    started = time.perf_counter()
    statuses = await batch.run(tasks)
    wall = time.perf_counter() - started
    wrong = [s.task_id for s in statuses if s.answer != str(2 * int(s.task_id.split("-")[1]))]
    if wrong:
        raise SystemExit(f"wrong or missing answers at concurrency {concurrency}: {wrong}")
    return wall, len(statuses)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--questions", type=int, default=20)
    parser.add_argument("--latency", type=float, default=0.5, help="seconds per model call")
    parser.add_argument("--team", default="debate", help="debate (2 model calls per question here) or solo (1)")
    parser.add_argument("--concurrency", type=int, nargs="+", default=[1, 4, 8])
    args = parser.parse_args()
    logger.remove()  # the runner's INFO lines would be most of the output
    calls = {"debate": 2, "solo": 1}.get(args.team)
    if calls is None:
        parser.error("--team must be debate or solo (the scripted replies know those)")
    tasks = questions(args.questions)
    server = ScriptedLLM(script(args.latency)).start()
    settings = Settings(  # type: ignore[call-arg]
        _env_file=None, OPENAI_API_KEY="sk-bench-not-a-real-key", OPENAI_BASE_URL=server.url, LLM_PROVIDER="openai",
        ROUNDTABLE_CACHE_DIR=tempfile.mkdtemp(prefix="bench-cache-"),
    )
    print(f"{args.questions} questions, team {args.team} ({calls} model calls each), {args.latency:g}s per model call")
    print(f"{'concurrency':>11} {'wall (s)':>9} {'ideal (s)':>9} {'ideal/wall':>10}")
    worst = 1.0
    with tempfile.TemporaryDirectory(prefix="bench-batch-") as root:
        for c in args.concurrency:
            wall, n = asyncio.run(one(args.team, c, tasks, settings, Path(root)))
            ideal = math.ceil(n / c) * calls * args.latency
            ratio = ideal / wall
            if c == max(args.concurrency):
                worst = ratio
            print(f"{c:>11} {wall:>9.2f} {ideal:>9.2f} {ratio:>10.2f}")
    server.stop()
    verdict = "meets" if worst >= TARGET else "MISSES"
    print(f"at concurrency {max(args.concurrency)}: {worst:.2f} of ideal ({verdict} the {TARGET} target)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
