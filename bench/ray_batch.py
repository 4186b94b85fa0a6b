"""A batch on a local Ray cluster: 200 scripted questions with 0.5 s model calls, at 16 and 64 at once, and
the driver's memory as the question count grows.

The cluster is real and on this machine (tests/fakes/ray_cluster.py): a head (no CPU for solvers) and two
worker nodes, each its own `ray start` process. The model is the scripted OpenAI-compatible server on
loopback, in a process of its own; every call waits `--latency` seconds before answering, as a remote model
would. The driver is the
real `evaluation.batch.BatchRun` with an `evaluation.distributed.pool.SolverPool`: run dir, fsynced answers,
per-question team runs on the workers.

Ideal wall time at concurrency c: ceil(questions / c) x (model calls per question) x latency, the model's
time alone with zero overhead. Target: >= 0.8 of ideal at 16 and at 64. The driver's resident memory is read
after batches of growing size (target: flat, since finished records go to disk, not to memory). The
machine's CPU count bounds the figures: each question also costs its team's set-up in CPU on a worker, so a
2-core machine with three Ray nodes on it reaches the model's limit only at low concurrency.

    python bench/ray_batch.py [--questions 200] [--latency 0.5] [--concurrency 16 64] [--memory 50 100 200 400]
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import math
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from loguru import logger  # noqa: E402

from config.settings import Settings  # noqa: E402
from evaluation.api import TaskItem  # noqa: E402
from evaluation.batch import BatchRun  # noqa: E402
from evaluation.distributed.pool import SolverPool  # noqa: E402
from tests.fakes.ray_cluster import LocalRayCluster, descendants  # noqa: E402
from tests.fakes.scripted_llm import RecordedRequest, ScriptedLLM  # noqa: E402

TARGET = 0.8


def questions(n: int, offset: int = 0) -> list[TaskItem]:
    return [TaskItem(f"bench-{i:05d}", f"Invented bench question {i}: what is {i} plus {i}?", "1", "")
            for i in range(offset, offset + n)]


def script(latency: float) -> dict:
    def solo(req: RecordedRequest) -> dict:
        i = int(req.question.split("question ")[1].split(":")[0])
        return {"delay": latency, "content": f"FINAL ANSWER: {2 * i}"}

    return {"solo": solo}


def cpu_seconds(cluster: LocalRayCluster) -> float:
    """CPU time used so far by the cluster's processes (every node's raylet, store and solvers) and this driver."""
    ticks = os.sysconf("SC_CLK_TCK")
    pids = [os.getpid()]
    for node in [cluster.head, *cluster.workers.values()]:
        if node is not None and node.alive:
            pids += [node.process.pid, *descendants(node.process.pid)]
    total = 0.0
    for pid in pids:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        total += (int(fields[11]) + int(fields[12])) / ticks  # utime, stime
    return total


def rss_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


async def batch(pool: SolverPool, settings: Settings, tasks: list[TaskItem], run_dir: Path, concurrency: int) -> float:
    run = BatchRun("solo", run_dir, settings=settings, concurrency=concurrency, pool=pool)
    started = time.perf_counter()
    statuses = await run.run(tasks)
    wall = time.perf_counter() - started
    wrong = [s.task_id for s in statuses if s.answer != str(2 * int(s.task_id.split("-")[1]))]
    if wrong:
        raise SystemExit(f"wrong or missing answers at concurrency {concurrency}: {wrong[:5]} …")
    return wall


def serve_model(latency: float) -> int:
    """The scripted model in a process of its own: it records every request, which must not count as the
    driver's memory."""
    server = ScriptedLLM(script(latency)).start()
    print(server.url, flush=True)
    try:
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        server.stop()
    return 0


class ModelProcess:
    def __init__(self, latency: float) -> None:
        self.process = subprocess.Popen([sys.executable, __file__, "--serve-model", str(latency)], stdout=subprocess.PIPE,
                                        text=True)
        assert self.process.stdout is not None
        self.url = self.process.stdout.readline().strip()
        if not self.url.startswith("http"):
            raise SystemExit("the scripted model server did not start")

    def stop(self) -> None:
        self.process.terminate()
        self.process.wait(timeout=30)


async def main_async(args: argparse.Namespace, root: Path) -> int:
    server = ModelProcess(args.latency)
    env = {k: v for k, v in os.environ.items() if not k.endswith(("_API_KEY", "_TOKEN")) and k != "CI"}
    model_env = {"OPENAI_BASE_URL": server.url, "OPENAI_API_KEY": "sk-bench-not-a-real-key", "LLM_PROVIDER": "openai",
                 "ROUNDTABLE_ENV_FILE": "", "ROUNDTABLE_CACHE_DIR": str(root / "cache")}
    env.update(model_env, PATH=f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}")
    cluster = LocalRayCluster(root / "cluster", env)
    try:
        cluster.start(workers=2, cpus_per_worker=args.cpus_per_worker)
        os.environ.update(cluster.driver_env())
        settings = Settings(_env_file=None, **model_env)  # type: ignore[arg-type]
        pool = SolverPool(cluster.address, concurrency=max(args.concurrency + args.memory))
        await pool.start([{"config": BatchRun("solo", root / "probe", settings=settings).cfg.model_dump(mode="json"),
                           "models": BatchRun("solo", root / "probe", settings=settings).models}])
        print(f"{args.questions} questions, team solo (1 model call each), {args.latency:g}s per model call, "
              f"{len(pool.members)} solvers on 2 worker nodes of {args.cpus_per_worker} CPUs ({os.cpu_count()} cores here)")
        await batch(pool, settings, questions(16, offset=900_000), root / "warm-up", 16)  # workers import the team
        cores = os.cpu_count() or 1
        print(f"{'concurrency':>11} {'wall (s)':>9} {'ideal (s)':>9} {'ideal/wall':>10} {'CPU ms/question':>15} {'CPU floor (s)':>13}")
        ratios, floors = {}, {}
        for c in args.concurrency:
            cpu0 = cpu_seconds(cluster)
            wall = await batch(pool, settings, questions(args.questions), root / f"c{c}", c)
            cpu = cpu_seconds(cluster) - cpu0
            ideal = math.ceil(args.questions / c) * args.latency
            ratios[c], floors[c] = ideal / wall, cpu / cores  # the wall time this machine's cores allow at best
            print(f"{c:>11} {wall:>9.2f} {ideal:>9.2f} {ideal / wall:>10.2f} {1000 * cpu / args.questions:>15.0f} {cpu / cores:>13.2f}")
        for c, ratio in ratios.items():
            ideal = math.ceil(args.questions / c) * args.latency
            bound = f" (CPU-bound here: {cores} cores need {floors[c]:.2f}s for it at best)" if floors[c] > ideal else ""
            print(f"at concurrency {c}: {ratio:.2f} of ideal ({'meets' if ratio >= TARGET else 'MISSES'} the {TARGET} target){bound}")
        print(f"\ndriver memory (resident) after a batch of N questions at concurrency {max(args.concurrency)}:")
        print(f"{'questions':>9} {'RSS (MB)':>9}")
        offset, readings = 100_000, []
        for n in args.memory:
            await batch(pool, settings, questions(n, offset), root / f"m{n}", max(args.concurrency))
            offset += n
            gc.collect()
            readings.append((n, rss_mb()))
            print(f"{n:>9} {readings[-1][1]:>9.1f}")
        (n0, m0), (n1, m1) = readings[0], readings[-1]
        per_100 = (m1 - m0) / max(1, n1 - n0) * 100
        print(f"growth: {per_100:+.2f} MB per 100 more questions ({'flat' if abs(per_100) < 5 else 'GROWS'}: target flat, < 5 MB)")
        await pool.shutdown()
    finally:
        cluster.stop()
        server.stop()
    return 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--questions", type=int, default=200)
    parser.add_argument("--latency", type=float, default=0.5, help="seconds per model call")
    parser.add_argument("--concurrency", type=int, nargs="+", default=[16, 64])
    parser.add_argument("--memory", type=int, nargs="+", default=[50, 100, 200, 400], help="batch sizes for the memory figure")
    parser.add_argument("--cpus-per-worker", type=int, default=2)
    parser.add_argument("--serve-model", type=float, metavar="LATENCY", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve_model is not None:
        return serve_model(args.serve_model)
    logger.remove()  # the runner's INFO lines would be most of the output
    with tempfile.TemporaryDirectory(prefix="bench-ray-") as root:
        return asyncio.run(main_async(args, Path(root)))


if __name__ == "__main__":
    sys.exit(main())
