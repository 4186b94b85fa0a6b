"""The calculator's bounded work: time of the heaviest expressions within the bounds and of the hostile ones,
the event loop's longest stall meanwhile, and what running it in a worker process would cost instead.
Targets: every hostile expression ends in an `Error:` line in well under 1 s; the loop never stalls 200 ms.

    python bench/calculator.py [--repeat 5]
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import multiprocessing as mp
import statistics
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from autogen_core import CancellationToken  # noqa: E402
from loguru import logger  # noqa: E402

from agents.tools.calculator import calculate  # noqa: E402
from agents.tools.registry import ToolContext, build_tools  # noqa: E402
from config.settings import Settings  # noqa: E402
from tests.tools.test_calculator import HEAVY, HOSTILE  # noqa: E402


def _rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS"):
            return int(line.split()[1]) / 1024
    return float("nan")


async def main(repeat: int) -> None:
    logger.remove()  # SafeTool logs every call; the figures are what this prints
    tool = build_tools(["calculator"], ToolContext(settings=Settings(_env_file=None), workdir=Path(".")))[0]  # type: ignore[call-arg]
    ticks: list[float] = []
    stop = asyncio.Event()

    async def ticker() -> None:
        while not stop.is_set():
            ticks.append(time.monotonic())
            await asyncio.sleep(0.01)

    task = asyncio.create_task(ticker())
    for label, expressions in (("heavy, within bounds", HEAVY), ("hostile", [e for e, _ in HOSTILE.values()])):
        worst = 0.0
        for expression in expressions:
            times = []
            for _ in range(repeat):
                started = time.perf_counter()
                await tool.run_json({"expression": expression}, CancellationToken())
                times.append(time.perf_counter() - started)
            worst = max(worst, statistics.median(times))
        print(f"{label:22} {len(expressions):3} expressions, slowest median {worst * 1000:7.1f} ms")
    stop.set()
    await task
    print(f"{'event loop':22} longest gap between 10 ms ticks: {max(b - a for a, b in itertools.pairwise(ticks)) * 1000:.1f} ms")

    loop = asyncio.get_running_loop()
    n = 200
    started = time.perf_counter()
    for _ in range(n):
        await tool.run_json({"expression": "(17 * 3.5) / 2"}, CancellationToken())
    print(f"{'per call, thread':22} {(time.perf_counter() - started) / n * 1000:.3f} ms (SafeTool.run_json, as AutoGen calls it)")
    for method in ("forkserver", "spawn"):
        started = time.perf_counter()
        with ProcessPoolExecutor(max_workers=1, mp_context=mp.get_context(method)) as pool:
            await loop.run_in_executor(pool, calculate, "1+1")
            cold = time.perf_counter() - started
            started = time.perf_counter()
            for _ in range(n):
                await loop.run_in_executor(pool, calculate, "(17 * 3.5) / 2")
            warm = (time.perf_counter() - started) / n
            rss = _rss_mb(next(iter(pool._processes)))
        print(f"{'per call, ' + method:22} {warm * 1000:.3f} ms warm, {cold * 1000:.0f} ms to start, worker RSS {rss:.0f} MB")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeat", type=int, default=5)
    asyncio.run(main(parser.parse_args().repeat))
