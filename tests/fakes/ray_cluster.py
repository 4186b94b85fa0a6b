"""A real Ray cluster on this machine: a head node and worker nodes, each its own `ray start --block` process
(its own raylet, object store and worker processes), as on separate machines. For tests and bench/ray_batch.py.

The head runs no solver (`--num-cpus 0`, as a production head should). Each worker carries a custom resource
`rt_<name>` so a test can tell which node a solver ran on and kill exactly that node: SIGKILL of its process
group takes its raylet and every worker process with it, like a machine that drops off the network.
"""

from __future__ import annotations

import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

OBJECT_STORE_BYTES = 100 * 1024 * 1024  # per node: the tests move kilobytes; the default would reserve GBs of /dev/shm


def ray_bin() -> str:
    found = shutil.which("ray", path=str(Path(sys.executable).parent)) or shutil.which("ray")
    if found is None:
        raise RuntimeError("the `ray` command is missing: pip install -e '.[dev]' (ray is a dev dependency)")
    return found


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class Node:
    name: str
    process: subprocess.Popen[bytes]
    log: Path

    @property
    def alive(self) -> bool:
        return self.process.poll() is None

    def kill(self) -> None:
        """SIGKILL every process of the node at once (`ray start`, its raylet and object store, and the raylet's
        worker processes, which Ray puts in process groups of their own), as if the machine dropped off."""
        victims = [self.process.pid, *descendants(self.process.pid)]
        for pid in victims:
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        self.process.wait(timeout=30)


def descendants(pid: int) -> list[int]:
    """Every process below `pid`, from /proc (Linux)."""
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        ppid = int(stat.rsplit(")", 1)[1].split()[1])
        children.setdefault(ppid, []).append(int(entry.name))
    out, todo = [], [pid]
    while todo:
        for child in children.get(todo.pop(), []):
            out.append(child)
            todo.append(child)
    return out


@dataclass
class LocalRayCluster:
    root: Path
    env: dict[str, str]  # what every node's processes see (the workers' model settings)
    port: int = field(default_factory=free_port)
    head: Node | None = None
    workers: dict[str, Node] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.root.mkdir(parents=True, exist_ok=True)
        # Ray 2.5x+ authenticates every node and driver with a token; the same one for all of this cluster.
        self.env = {**self.env, "RAY_AUTH_MODE": "token", "RAY_AUTH_TOKEN": secrets.token_hex(16),
                    "RAY_USAGE_STATS_ENABLED": "0"}

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    def _start(self, name: str, args: list[str]) -> Node:
        log = self.root / f"{name}.log"
        with open(log, "ab") as out:
            process = subprocess.Popen(
                [ray_bin(), "start", "--block", "--disable-usage-stats", "--node-ip-address=127.0.0.1",
                 f"--object-store-memory={OBJECT_STORE_BYTES}", *args],
                env=self.env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True, cwd=self.root,
            )
        return Node(name, process, log)

    def start(self, workers: int = 2, cpus_per_worker: int = 2) -> LocalRayCluster:
        self.head = self._start("head", ["--head", f"--port={self.port}", "--num-cpus=0", "--include-dashboard=false"])
        self._wait_nodes(1, self.head)
        for i in range(1, workers + 1):
            self.add_worker(f"w{i}", cpus_per_worker)
        return self

    def add_worker(self, name: str, cpus: int = 2) -> Node:
        expected = len(self.alive_nodes()) + 1
        node = self._start(name, [f"--address={self.address}", f"--num-cpus={cpus}", f'--resources={{"rt_{name}": 1}}'])
        self.workers[name] = node
        self._wait_nodes(expected, node)
        return node

    def driver_env(self) -> dict[str, str]:
        """For a driver process (submit.py --ray): the cluster's token and address, on loopback."""
        return {**self.env, "RAY_ADDRESS": self.address, "RAY_NODE_IP_ADDRESS": "127.0.0.1"}

    def nodes(self) -> list[dict[str, Any]]:
        """`ray.nodes()` as a separate short-lived driver sees it (this process never joins the cluster)."""
        code = "import json, ray; ray.init(log_to_driver=False); print(json.dumps(ray.nodes()))"
        out = subprocess.run([sys.executable, "-c", code], env=self.driver_env(), capture_output=True, text=True, timeout=120)
        if out.returncode != 0:
            raise RuntimeError(f"cannot list the cluster's nodes: {out.stderr[-2000:]}")
        import json

        nodes: list[dict[str, Any]] = json.loads(out.stdout.strip().splitlines()[-1])
        return nodes

    def alive_nodes(self) -> list[dict[str, Any]]:
        return [n for n in self.nodes() if n.get("Alive")]

    def node_id(self, name: str) -> str:
        for n in self.alive_nodes():
            if n.get("Resources", {}).get(f"rt_{name}"):
                return str(n["NodeID"])
        raise KeyError(name)

    def _wait_nodes(self, count: int, starting: Node, timeout: float = 120) -> None:
        deadline = time.monotonic() + timeout
        while True:
            for node in {id(n): n for n in (self.head, starting) if n is not None}.values():
                if not node.alive:
                    raise RuntimeError(f"ray node {node.name} exited: {node.log.read_text(errors='replace')[-3000:]}")
            try:
                if len(self.alive_nodes()) >= count:
                    return
            except RuntimeError:
                pass  # the head is still starting
            if time.monotonic() > deadline:
                raise RuntimeError(f"the Ray cluster did not reach {count} nodes within {timeout:g}s")
            time.sleep(1)

    def stop(self) -> None:
        for node in [*self.workers.values(), self.head]:
            if node is not None and node.alive:
                node.kill()
