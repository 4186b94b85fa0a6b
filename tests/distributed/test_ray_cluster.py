"""`submit.py run --ray` and `submit.py sweep --ray` on a real Ray cluster started here: a head node and two
worker nodes, each its own `ray start` process (tests/fakes/ray_cluster.py).

The model is the scripted server on loopback; the workers read its URL and key from their own environment,
as real workers read theirs. Every check reads what a user would see: the run dir's records, the driver's
output and exit status, and the requests the model server received (which prove what ran twice and what the
provider saw at once).
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from tests.evaluation.helpers import Responder, flat, served, truths
from tests.evaluation.helpers import read_answers as records
from tests.fakes.ray_cluster import LocalRayCluster
from tests.fakes.scoring_api import ScoringServer
from tests.fakes.scripted_llm import RecordedRequest, ScriptedLLM

REPO = Path(__file__).resolve().parents[2]
SUBMIT = REPO / "submit.py"
pytestmark = pytest.mark.timeout(600)


def invented(n: int) -> list[dict[str, Any]]:
    return [{"task_id": f"task-r{i:02d}", "question": f"Invented sum number {i}: what is {i} plus {i}?", "Level": "1",
             "file_name": "", "final_answer": str(2 * i)} for i in range(n)]


QUESTIONS = invented(20)


@dataclass
class Model:
    """The scripted model, counting each question's calls and the calls under way at once."""

    responder: Responder
    latency: float = 1.0
    in_flight: int = 0
    peak: int = 0
    calls: Counter[str] = field(default_factory=Counter)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def reset(self, latency: float) -> None:
        with self.lock:
            self.latency, self.in_flight, self.peak = latency, 0, 0
            self.calls.clear()

    def _call(self, agent: str) -> Any:
        def reply(req: RecordedRequest) -> Any:
            task = self.responder.task_of(req)
            with self.lock:
                self.in_flight += 1
                self.peak = max(self.peak, self.in_flight)
                if task is not None:
                    self.calls[task["task_id"]] += 1
            try:
                time.sleep(self.latency)  # the call is under way at the provider for this long
            finally:
                with self.lock:
                    self.in_flight -= 1
            return getattr(self.responder, agent)(req)

        return reply

    def script(self) -> dict[str, Any]:
        return {agent: self._call(agent) for agent in ("planner", "coder", "critic", "solo")}


@dataclass
class World:
    cluster: LocalRayCluster
    model: Model
    scoring: ScoringServer
    tmp: Path

    def env(self) -> dict[str, str]:
        return {**self.cluster.driver_env(), "SCORING_API_URL": self.scoring.url, "COLUMNS": "200"}

    def submit(self, *args: str, timeout: float = 400) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, str(SUBMIT), *args], env=self.env(), cwd=self.tmp,
                              capture_output=True, text=True, timeout=timeout)

    def start(self, *args: str) -> subprocess.Popen[str]:
        return subprocess.Popen([sys.executable, str(SUBMIT), *args], env=self.env(), cwd=self.tmp,
                                stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, start_new_session=True)

    def ensure_workers(self) -> None:
        """Two alive worker nodes (a test before may have killed one)."""
        alive = [n for n in self.cluster.workers.values() if n.alive]
        while len(alive) < 2:
            alive.append(self.cluster.add_worker(f"w{len(self.cluster.workers) + 1}"))


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    tmp = tmp_path_factory.mktemp("ray")
    model = Model(Responder(QUESTIONS))
    llm = ScriptedLLM(model.script()).start()
    env = {k: v for k, v in os.environ.items() if not k.endswith(("_API_KEY", "_TOKEN")) and k != "CI"}
    env.update({
        "PATH": f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}",
        "OPENAI_BASE_URL": llm.url, "OPENAI_API_KEY": "sk-test-not-a-real-key-0000", "LLM_PROVIDER": "openai",
        "LLM_RETRY_BASE_DELAY": "0.01", "ROUNDTABLE_ENV_FILE": "", "ROUNDTABLE_CACHE_DIR": str(tmp / "cache"),
        "SANDBOX_BACKEND": "subprocess", "SANDBOX_ALLOW_SUBPROCESS": "1", "HF_HOME": str(tmp / "hf-home"),
        "PYTHONUNBUFFERED": "1",
    })
    cluster = LocalRayCluster(tmp / "cluster", env)
    try:
        cluster.start(workers=2)
        with ScoringServer(served(QUESTIONS), answers=truths(QUESTIONS)) as scoring:
            yield World(cluster, model, scoring, tmp)
    finally:
        cluster.stop()
        llm.stop()


def done_ids(run_dir: Path) -> set[str]:
    return {r["task_id"] for r in records(run_dir) if r["state"] == "done"}


def wait_until(check: Any, timeout: float, what: str, process: subprocess.Popen[str] | None = None) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        if process is not None and process.poll() is not None:
            raise AssertionError(f"the driver exited ({process.returncode}) before {what}: {process.stdout.read() if process.stdout else ''}")
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.2)


def assert_all_answered_once(run_dir: Path) -> None:
    done = [r for r in records(run_dir) if r["state"] == "done"]
    assert Counter(r["task_id"] for r in done) == Counter({q["task_id"]: 1 for q in QUESTIONS})  # each answer written once
    assert {r["task_id"]: r["answer"] for r in done} == truths(QUESTIONS)


def test_a_batch_spreads_over_both_workers_and_the_provider_cap_holds_for_the_cluster(world: World) -> None:
    world.ensure_workers()
    world.model.reset(latency=1.0)
    run_dir = world.tmp / "spread"
    out = world.submit("run", "--team", "solo", "--ray", world.cluster.address, "--concurrency", "8",
                       "--provider-cap", "openai=3", "--run-dir", str(run_dir))
    assert out.returncode == 0, out.stdout + out.stderr
    assert_all_answered_once(run_dir)
    nodes = Counter(r["node"] for r in records(run_dir))
    workers = {world.cluster.node_id(name) for name, node in world.cluster.workers.items() if node.alive}
    assert set(nodes) == workers and min(nodes.values()) >= 3, nodes  # both workers solved a fair share
    # 8 questions at once over two machines, yet the provider never saw more than 3 calls at once: the cap is
    # the cluster's, not each worker's (each worker alone would allow 3)
    assert world.model.peak == 3, world.model.peak
    text = flat(out.stdout)
    assert "Ray: 2 solver(s)" in text and "provider caps openai=3 across the cluster" in text, text
    # these workers run code unisolated (SANDBOX_BACKEND=subprocess): the driver says so
    assert "run_python sandbox: subprocess (NOT isolated)" in text
    assert "a Ray worker has no isolated sandbox" in flat(out.stderr)
    session = json.loads((run_dir / "run.json").read_text())["sessions"][-1]
    assert len(session["ray"]["solvers"]) == 2


def test_killing_a_worker_mid_batch_loses_nothing_finished_and_reruns_only_what_was_in_flight(world: World) -> None:
    world.ensure_workers()
    world.model.reset(latency=1.5)
    run_dir = world.tmp / "kill-worker"
    driver = world.start("run", "--team", "solo", "--ray", world.cluster.address, "--concurrency", "8",
                         "--run-dir", str(run_dir))
    victim_name, victim = next((n, w) for n, w in world.cluster.workers.items() if w.alive)
    victim_id = world.cluster.node_id(victim_name)
    # Kill once answers exist and the next questions' calls are under way at the provider on both nodes (8 at
    # once, split evenly by the driver): the victim then surely dies with calls of its own in flight.
    wait_until(lambda: len(done_ids(run_dir)) >= 4 and world.model.in_flight >= 7, 240, "4 answers and 7 calls", driver)
    victim.kill()
    finished_before = done_ids(run_dir)  # the driver writes nothing more from the lost node
    time.sleep(1.0)  # a request the victim sent just before it died is still counted by the server
    with world.model.lock:
        started_before = {t for t, n in world.model.calls.items() if n}
    output, _ = driver.communicate(timeout=400)
    assert driver.returncode == 0, output
    assert_all_answered_once(run_dir)
    calls = world.model.calls
    assert all(calls[t] == 1 for t in finished_before), calls  # nothing finished was recomputed
    assert all(calls[t] == 1 for t in {q["task_id"] for q in QUESTIONS} - started_before), calls  # nor started twice
    rerun = {t for t, n in calls.items() if n > 1}
    in_flight = started_before - finished_before
    assert rerun and rerun <= in_flight, (rerun, in_flight)  # only what was under way on the lost node ran again
    assert all(r["node"] != victim_id for r in records(run_dir) if r["task_id"] in rerun)
    text = flat(output)
    assert f"{len(rerun)} question-attempt(s) were sent again after their Ray worker was lost" in text, text
    log = (run_dir / "run.log").read_text()
    assert "when that worker was lost; sending it again" in log


def test_killing_the_driver_and_resuming_finishes_the_rest_without_recomputing(world: World) -> None:
    world.ensure_workers()
    world.model.reset(latency=1.0)
    run_dir = world.tmp / "kill-driver"
    driver = world.start("run", "--team", "solo", "--ray", world.cluster.address, "--concurrency", "4",
                         "--run-dir", str(run_dir))
    wait_until(lambda: len(done_ids(run_dir)) >= 4, 240, "4 answers", driver)
    os.killpg(driver.pid, signal.SIGKILL)
    driver.wait(timeout=30)
    finished_before = done_ids(run_dir)
    assert 4 <= len(finished_before) < len(QUESTIONS)
    out = world.submit("run", "--ray", world.cluster.address, "--run-dir", str(run_dir))
    assert out.returncode == 0, out.stdout + out.stderr
    assert f"{len(finished_before)} question(s) already answered" in flat(out.stdout)
    assert_all_answered_once(run_dir)
    assert all(world.model.calls[t] == 1 for t in finished_before), world.model.calls


def test_a_sweep_of_two_teams_times_two_attempts_runs_on_the_cluster_and_resumes(world: World) -> None:
    world.ensure_workers()
    world.model.reset(latency=0.2)
    sweep_dir = world.tmp / "sweep"
    ids = [q["task_id"] for q in QUESTIONS[:5]]
    out = world.submit("sweep", "--team", "solo", "--team", "debate", "--attempts", "2", "--ray", world.cluster.address,
                       "--concurrency", "8", "--sweep-dir", str(sweep_dir), "--only", *ids)
    assert out.returncode == 0, out.stdout + out.stderr
    run_dirs = sorted(p.name for p in sweep_dir.iterdir() if p.is_dir())
    assert run_dirs == ["debate-1", "debate-2", "solo-1", "solo-2"]
    for name in run_dirs:
        done = {r["task_id"]: r["answer"] for r in records(sweep_dir / name) if r["state"] == "done"}
        assert done == {t: truths(QUESTIONS)[t] for t in ids}, (name, done)
        assert json.loads((sweep_dir / name / "run.json").read_text())["team"]["name"] == name.split("-")[0]
    assert len({r["node"] for name in run_dirs for r in records(sweep_dir / name)}) == 2
    calls = sum(world.model.calls.values())
    again = world.submit("sweep", "--ray", world.cluster.address, "--sweep-dir", str(sweep_dir), "--only", *ids)
    assert again.returncode == 0, again.stdout + again.stderr
    assert "20 question-attempt(s) already answered" in flat(again.stdout)
    assert sum(world.model.calls.values()) == calls  # nothing was solved again


def test_workers_that_would_run_other_models_are_named_before_anything_runs(world: World) -> None:
    world.ensure_workers()
    # The driver has an Anthropic key and picks Anthropic; the workers' environment says OpenAI. Solving on
    # them would record Claude in run.json and ask GPT: refused, naming both.
    env = {**world.env(), "LLM_PROVIDER": "anthropic", "ANTHROPIC_API_KEY": "sk-ant-test-not-a-real-key-0000"}
    out = subprocess.run([sys.executable, str(SUBMIT), "run", "--team", "solo", "--ray", world.cluster.address,
                          "--run-dir", str(world.tmp / "other-models")], env=env, cwd=world.tmp, capture_output=True,
                         text=True, timeout=300)
    assert out.returncode == 1, out.stdout
    text = flat(out.stderr)
    assert "cannot run this batch" in text and "solo would run openai/" in text and "but anthropic/" in text, text
    assert "same LLM_PROVIDER, LLM_MODEL and keys" in text
    assert "sk-ant-test" not in out.stdout + out.stderr
    assert records(world.tmp / "other-models") == []
