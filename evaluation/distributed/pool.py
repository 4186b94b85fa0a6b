"""The driver side: connect to a Ray cluster (or start a local one), keep a solver per worker node, send each
question-attempt to the least busy one, and send it again elsewhere when its worker is lost.

Why actors and not one Ray task per question in its own process: a question spends its time waiting for
models, and a worker process that imports the team costs a few hundred MB, so one asyncio actor per node runs
many questions at once. Each question-attempt is still one task (an actor task) of its own, and the driver
re-sends exactly those that were in flight on a lost worker; finished ones are already on the driver's disk.
"""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass, field
from typing import Any

from loguru import logger

from common.text import one_line
from evaluation.api import TaskItem
from evaluation.distributed.jobs import Job
from evaluation.solve import failed_record
from evaluation.store import AnswerRecord
from teams.loader import parse_team

READY_TIMEOUT_S = 180.0  # a worker that is not up by then (image pull, pip install) is reported, not waited for
NO_WORKER_WAIT_S = 300.0  # with every solver lost, how long a question waits for a replacement
RESULT_SLACK_S = 60.0  # beyond a question's own guard: the worker is hung or unreachable
NAMESPACE = "roundtable"


class PoolError(Exception):
    """The cluster cannot run the batch (no Ray, no address, no worker, a worker without a model key); the
    message says what to fix."""


@dataclass
class _Member:
    actor: Any
    node: str
    host: str
    holder: str
    sandbox: str = ""  # the backend run_python gets there
    in_flight: int = 0
    alive: bool = True
    jobs: set[str] = field(default_factory=set)


def _ray() -> Any:
    try:
        import ray
    except ImportError:
        raise PoolError("--ray needs the ray package: pip install -e '.[ray]' (or the app image built with "
                        "--build-arg EXTRAS=ray)") from None
    return ray


class SolverPool:
    def __init__(
        self,
        address: str | None = None,
        *,
        solvers: int | None = None,
        concurrency: int = 8,
        caps: dict[str, int] | None = None,
        retries: int = 2,
    ) -> None:
        """`address`: a cluster's (host:port, `auto`, or None for RAY_ADDRESS, a cluster started on this machine
        with `ray start`, or else a new local one). `solvers`: how many (default one per node with a CPU).
        `retries`: how many times a question is sent again after its worker is lost."""
        self.address = address
        self.solvers = solvers
        self.concurrency = max(1, concurrency)
        self.caps = dict(caps or {})
        self.retries = max(0, retries)
        self.members: list[_Member] = []
        self.limiter: Any = None
        self.lost: list[str] = []  # holders of the solvers this pool lost
        self.reruns = 0  # question-attempts sent again because their worker was lost
        self._jobs: dict[str, _Member] = {}
        self._teams: list[dict[str, Any]] = []
        self._started_ray = False
        self._replacing: set[asyncio.Task[None]] = set()
        self._cluster_address = ""
        self._solver_cls: Any = None

    # --- start and stop ------------------------------------------------------------------------------
    async def start(self, teams: list[dict[str, Any]]) -> None:
        """Connect, start the limiter and the solvers, and check every solver runs every team (`{"config":
        TeamConfig as JSON, "models": agent -> provider/model as the driver resolved them}`) the same way."""
        ray = _ray()
        from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

        from evaluation.distributed.limits import ProviderLimiter
        from evaluation.distributed.solver import Solver

        self._teams = teams
        if not ray.is_initialized():
            try:
                context = ray.init(address=self.address or None, namespace=NAMESPACE, log_to_driver=False,
                                   logging_level=logging.WARNING, configure_logging=True)
            except (ConnectionError, ValueError, RuntimeError) as exc:
                where = self.address or "RAY_ADDRESS / a local cluster"
                raise PoolError(f"cannot connect to the Ray cluster at {where}: {one_line(str(exc), 300)}") from None
            self._started_ray = True
            self._cluster_address = str(getattr(context, "address_info", {}).get("address", "") or self.address or "local")
        nodes = [n for n in ray.nodes() if n.get("Alive") and n.get("Resources", {}).get("CPU", 0) >= 1]
        if not nodes:
            raise PoolError("the Ray cluster has no alive node with a CPU to run solvers on; add a worker node "
                            "(`ray start --address=<head>`)")
        count = self.solvers or len(nodes)
        self._solver_cls = ray.remote(Solver)
        if self.caps:
            self.limiter = ray.remote(ProviderLimiter).options(num_cpus=0, max_concurrency=10_000).remote(self.caps)
        # soft: a node that is gone by now does not stop the batch, its solver goes elsewhere
        actors = [self._spawn(scheduling_strategy=NodeAffinitySchedulingStrategy(nodes[i % len(nodes)]["NodeID"], soft=True))
                  for i in range(count)]
        members = await self._ready_all(actors)
        if 0 < len(members) < count:  # a node listed alive was already gone (Ray notices after some heartbeats)
            members += await self._ready_all([self._spawn(scheduling_strategy="SPREAD") for _ in range(count - len(members))])
        if not members:
            raise PoolError(f"no Ray solver started (waited up to {READY_TIMEOUT_S:g}s): do the worker nodes have "
                            "this package installed (the app image, or a runtime_env)? See the README's Ray section")
        self.members = members
        logger.info("ray: {} solver(s) on {}", len(members), ", ".join(sorted({m.host for m in members})))

    def _spawn(self, **options: Any) -> Any:
        return self._solver_cls.options(
            num_cpus=1, max_concurrency=self.concurrency + 8, max_restarts=0, max_task_retries=0, **options
        ).remote(self.limiter, self.caps)

    async def _ready_all(self, actors: list[Any]) -> list[_Member]:
        return [m for m in await asyncio.gather(*(self._ready(a) for a in actors)) if m is not None]

    async def _ready(self, actor: Any) -> _Member | None:
        ray = _ray()
        try:
            info = await asyncio.wait_for(_awaitable(actor.ready.remote(self._teams)), READY_TIMEOUT_S)
        except asyncio.TimeoutError:
            ray.kill(actor)
            logger.warning("ray: a solver did not start within {:g}s", READY_TIMEOUT_S)
            return None
        except ray.exceptions.RayActorError as exc:  # its node died meanwhile: the others go on
            logger.warning("ray: a solver was lost as it started: {}", one_line(str(exc), 300))
            return None
        except ray.exceptions.RayError as exc:  # its code failed: every solver would
            raise PoolError(f"a Ray solver failed to start: {one_line(str(exc), 400)}") from None
        if info["problems"]:
            ray.kill(actor)
            raise PoolError(f"the Ray worker on {info['host']} cannot run this batch: " + "; ".join(sorted(set(info["problems"])))
                            + "\nWorkers read model keys from their own environment (see the README's Ray section).")
        return _Member(actor, info["node"], info["host"], info["holder"], sandbox=str(info.get("sandbox", "")))

    def describe(self) -> dict[str, Any]:
        return {"address": self._cluster_address or self.address or "local",
                "solvers": [{"host": m.host, "node": m.node, "sandbox": m.sandbox} for m in self.members], "caps": self.caps}

    async def shutdown(self) -> None:
        ray = _ray()
        for task in list(self._replacing):
            task.cancel()
        for m in self.members:
            try:
                ray.kill(m.actor)
            except Exception:  # already gone
                pass
        if self._started_ray:
            ray.shutdown()

    # --- one question-attempt ------------------------------------------------------------------------
    async def solve(self, job: Job) -> AnswerRecord:
        """The job's record. A lost worker sends the job elsewhere (up to `retries` times); nothing raises."""
        ray = _ray()
        task = TaskItem.from_dict(job.task)
        lost_before = 0
        while True:
            member = await self._member()
            if member is None:
                return self._failed(job, task, "no Ray worker is left to solve it (all were lost); run again to retry")
            member.in_flight += 1
            member.jobs.add(job.key)
            self._jobs[job.key] = member
            started = time.monotonic()
            try:
                ref = member.actor.solve.remote(job)
                data = await asyncio.wait_for(_awaitable(ref), job.guard_s + RESULT_SLACK_S)
                record = AnswerRecord.from_dict(data)
                return record
            except asyncio.TimeoutError:
                member.actor.cancel.remote(job.key)
                return self._failed(job, task, f"its Ray worker on {member.host} did not answer within "
                                    f"{job.guard_s + RESULT_SLACK_S:g}s; the question was abandoned", started)
            except (ray.exceptions.RayActorError, ray.exceptions.WorkerCrashedError, ray.exceptions.NodeDiedError,
                    ray.exceptions.ObjectLostError) as exc:
                self._lose(member, exc)
                lost_before += 1
                if lost_before > self.retries:
                    return self._failed(job, task, f"its Ray worker was lost {lost_before} times (last on {member.host}); "
                                        "run again to retry", started)
                self.reruns += 1
                logger.warning("question {} was in flight on {} when that worker was lost; sending it again ({}/{})",
                               task.task_id, member.host, lost_before, self.retries)
            except ray.exceptions.RayTaskError as exc:  # the worker's code raised: a bug, recorded with the question
                cause = exc.cause if getattr(exc, "cause", None) is not None else exc
                return self._failed(job, task, f"the Ray worker on {member.host} failed: {type(cause).__name__}: "
                                    f"{one_line(str(cause), 400)}", started)
            finally:
                member.in_flight -= 1
                member.jobs.discard(job.key)
                self._jobs.pop(job.key, None)

    def cancel(self, key: str) -> None:
        member = self._jobs.get(key)
        if member is not None and member.alive:
            member.actor.cancel.remote(key)

    # --- losing and replacing solvers ----------------------------------------------------------------
    async def _member(self) -> _Member | None:
        deadline = time.monotonic() + NO_WORKER_WAIT_S
        while True:
            alive = [m for m in self.members if m.alive]
            if alive:
                return min(alive, key=lambda m: m.in_flight)
            if not self._replacing or time.monotonic() > deadline:
                return None
            await asyncio.sleep(0.5)

    def _lose(self, member: _Member, exc: BaseException) -> None:
        if not member.alive:
            return
        member.alive = False
        self.lost.append(member.holder)
        logger.warning("ray: lost the solver on {} ({}); {} in flight there will run elsewhere",
                       member.host, type(exc).__name__, len(member.jobs))
        if self.limiter is not None:  # its model calls will never give their slots back
            self.limiter.release_holder.remote(member.holder)
        task = asyncio.ensure_future(self._replace())
        self._replacing.add(task)
        task.add_done_callback(self._replacing.discard)

    async def _replace(self) -> None:
        """A new solver wherever the cluster has room (a restarted or added node); it joins once ready."""
        try:
            members = await self._ready_all([self._spawn(scheduling_strategy="SPREAD")])
        except PoolError as exc:
            logger.warning("ray: a replacement solver could not start: {}", exc)
            return
        self.members.extend(members)
        for m in members:
            logger.info("ray: a replacement solver is up on {}", m.host)

    def _failed(self, job: Job, task: TaskItem, error: str, started: float | None = None) -> AnswerRecord:
        cfg = parse_team(job.config, f"{job.key} team config")
        duration = time.monotonic() - started if started is not None else 0.0
        return failed_record(task, cfg, error, job.attempt, duration)


def _awaitable(ref: Any) -> asyncio.Future[Any]:
    return asyncio.wrap_future(ref.future())
