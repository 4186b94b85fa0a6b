"""The worker side: a `Solver` actor solves the questions the driver sends it, many at once (asyncio).

A worker reads its settings (model keys, sandbox backend) from its own environment, never from the driver:
secrets do not travel in task arguments, which Ray keeps in its control store and shows in its dashboard.
It returns each question's record, masked with its own secrets; the driver writes it.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import tempfile
import uuid
from dataclasses import asdict
from pathlib import Path
from typing import Any

from config.log import mask, register_secrets
from evaluation.api import TaskItem
from evaluation.distributed.jobs import Job
from evaluation.distributed.limits import RayGate
from teams.strategies import AnyRun


class Solver:
    """One per worker node (a Ray actor: `ray.remote(Solver)`)."""

    def __init__(self, limiter: Any | None, caps: dict[str, int]) -> None:
        import ray

        from config.log import setup_logging
        from config.settings import get_settings
        from evaluation.identity import find_token
        from models import gate

        self.settings = get_settings()
        # Ray keeps a worker's stderr in its session logs: warnings only, masked like everywhere else.
        setup_logging(self.settings.model_copy(update={"log_level": "WARNING"}))
        register_secrets(self.settings.secret_values())
        if token := find_token(self.settings):
            register_secrets([token])
        context = ray.get_runtime_context()
        self.node = context.get_node_id()
        self.host = socket.gethostname()
        # A fresh id per incarnation: the driver gives back the slots of exactly the one it lost.
        self.holder = f"{self.host}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
        if limiter is not None and caps:
            gate.install(RayGate(limiter, self.holder, caps))
        self._runs: dict[str, AnyRun] = {}
        self._cancelled: set[str] = set()

    def ready(self, teams: list[dict[str, Any]]) -> dict[str, Any]:
        """Who this worker is, and what it cannot run: each team (`{"config", "models"}`) must resolve here to
        the models the driver resolved (the run dir records those), with their keys configured."""
        from evaluation.batch import team_models
        from models.providers import ProviderNotConfigured
        from teams.loader import TeamConfigError, parse_team

        problems = []
        for team in teams:
            try:
                cfg = parse_team(team["config"], "the driver's team config")
                here = team_models(cfg, self.settings)
            except (ProviderNotConfigured, TeamConfigError) as exc:
                problems.append(mask(str(exc)))
                continue
            for agent, model in sorted(here.items()):
                wanted = team["models"].get(agent)
                if wanted != model:
                    problems.append(f"team {cfg.name}: {agent} would run {model} here but {wanted} on the driver "
                                    "(give workers the same LLM_PROVIDER, LLM_MODEL and keys)")
        return {"node": self.node, "host": self.host, "holder": self.holder, "pid": os.getpid(), "problems": problems,
                "sandbox": self._sandbox()}

    def _sandbox(self) -> str:
        """The backend `auto` picks on this worker for run_python ("none" when no isolated one works)."""
        import sandbox
        from sandbox import backend_problem

        chosen = self.settings.sandbox_backend
        if chosen and chosen != "auto":
            info = sandbox.REGISTRY[chosen]
            return str(chosen) if info.isolated else f"{chosen} (NOT isolated)"
        for info in sandbox.REGISTRY.values():
            if info.isolated and backend_problem(info.name, image=self.settings.sandbox_image,
                                                 python=self.settings.sandbox_python) is None:
                return str(info.name)
        return "subprocess (NOT isolated)" if self.settings.sandbox_allow_subprocess else "none"

    async def solve(self, job: Job) -> dict[str, Any]:
        from evaluation.solve import solve_question
        from teams.loader import parse_team

        task = TaskItem.from_dict(job.task)
        cfg = parse_team(job.config, f"{job.key} team config")
        workdir = Path(tempfile.mkdtemp(prefix="roundtable-job-"))

        async def attachment() -> Path:
            path = workdir / Path(task.file_name).name  # the driver already refused odd names
            path.write_bytes(job.attachment or b"")
            return path

        def on_run(run: AnyRun | None) -> None:
            if run is None:
                self._runs.pop(job.key, None)
                return
            self._runs[job.key] = run
            if job.key in self._cancelled:
                run.cancel("the batch was cancelled")

        try:
            record = await solve_question(
                task, cfg, settings=self.settings, timeout_s=job.timeout_s, attempt=job.attempt,
                allow_loopback=job.allow_loopback, attachment=attachment if job.attachment is not None else None,
                on_run=on_run,
            )
        finally:
            self._cancelled.discard(job.key)
            shutil.rmtree(workdir, ignore_errors=True)
        record.node = self.node
        masked: dict[str, Any] = json.loads(mask(json.dumps(asdict(record), ensure_ascii=False, default=str)))
        return masked

    def cancel(self, key: str) -> bool:
        run = self._runs.get(key)
        if run is None:
            self._cancelled.add(key)  # not started yet: cancelled as it starts
            return False
        run.cancel("the batch was cancelled")
        return True

    def active(self) -> int:
        return len(self._runs)
