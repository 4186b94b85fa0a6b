"""The `docker` backend: one hardened container per question, started once and reused through `exec`.

The container has no network, a read-only root, a tmpfs work dir, the unprivileged user 10001, no
capabilities, no-new-privileges, and memory (no swap), CPU and pids limits. Attachments are bind-mounted
read-only at /work/<name>; programs are written to a read-only /code mount. Nothing of the host's
environment enters: the container gets only the variables in `program_env`.

Each run is `sh -c 'python3 /code/main.py; kill -9 -1'` through `docker exec`, so whatever the program
leaves behind dies with it. On a timeout or a cancel the host sends SIGUSR1 to the container's PID 1
(sandbox/inner/docker_init.py), which kills every program without needing a free pid. If even that
fails, the container is replaced. The container removes itself when its PID 1 ends (auto-remove, a
lifetime alarm), is removed by `stop()`, by a finaliser at interpreter exit, and - should the owning
process die abruptly - by the next sandbox started on this machine (`_reap_orphans`).

Unlike AutoGen's DockerCommandLineCodeExecutor (bridge network, root, no limits, pulls images), this
never pulls: the image must exist (`make sandbox-image`).
"""

from __future__ import annotations

import asyncio
import os
import re
import shutil
import socket
import tempfile
import threading
import time
import uuid
import weakref
from pathlib import Path
from typing import Any

from autogen_core import CancellationToken
from loguru import logger

from sandbox.base import (
    Limits,
    OutputCollector,
    SandboxError,
    SandboxExecutor,
    SandboxResult,
    blocking,
    cancel_event,
    in_thread,
    make_result,
    signal_note,
    stage_files,
    submit_blocking,
    wait_for_end,
)
from sandbox.env import program_env
from sandbox.inner import source
from sandbox.registry import BackendInfo

USER = "10001:10001"
LABEL = "org.roundtable.sandbox"
OWNER_LABEL = "org.roundtable.sandbox.owner"
DIR_LABEL = "org.roundtable.sandbox.dir"  # the host directory with its code and attachments
KILL_GRACE_S = 5.0  # after SIGUSR1, how long the run may take to end before the container is replaced
KILL_REPEAT_S = 0.25  # SIGUSR1 again this often meanwhile: a program `docker exec` was still starting got away
# `kill -9 -1` as the sandbox user reaches every process of that user except PID 1 and the shell itself.
RUN_SCRIPT = 'python3 "$1"; rc=$?; kill -9 -1 2>/dev/null; exit $rc'
_OOM_LINE = re.compile(rb"^oom_kill (\d+)$", re.M)
_reaped_orphans = False


def _owner() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


def _docker() -> Any:
    import docker  # imported lazily: hosts without Docker never pay for (or need) the SDK

    return docker


def docker_problem(image: str) -> str | None:
    """Why the docker backend cannot run here, or None when the engine answers and the image exists."""
    try:
        docker = _docker()
    except ImportError:
        return "the docker Python package is not installed"
    try:
        client = docker.from_env(timeout=5)
    except Exception as exc:
        return f"no Docker engine answers ({type(exc).__name__}: {exc})"
    try:
        client.ping()
        client.images.get(image)
    except docker.errors.ImageNotFound:
        return f"the sandbox image {image!r} does not exist (build it with `make sandbox-image`)"
    except Exception as exc:
        return f"no Docker engine answers ({type(exc).__name__}: {exc})"
    finally:
        client.close()
    return None


def _reap_orphans(client: Any) -> None:
    """Remove sandbox containers whose owning process on this machine is gone (it crashed or was killed)."""
    host = socket.gethostname()
    for container in client.containers.list(all=True, filters={"label": LABEL}):
        owner = container.labels.get(OWNER_LABEL, "")
        owner_host, _, pid = owner.rpartition(":")
        if owner_host != host or not pid.isdigit():
            continue
        try:
            os.kill(int(pid), 0)
            continue  # still alive (or someone else's: PermissionError below)
        except ProcessLookupError:
            pass
        except PermissionError:
            continue
        logger.info("removing sandbox container {} left by dead process {}", container.name, pid)
        try:
            container.remove(force=True)
        except Exception:
            pass
        host_dir = Path(container.labels.get(DIR_LABEL, ""))
        if host_dir.name.startswith("roundtable-docker-") and host_dir.parent == Path(tempfile.gettempdir()):
            shutil.rmtree(host_dir, ignore_errors=True)


def _remove_container(client: Any, container_id: str) -> None:
    docker = _docker()
    try:
        client.api.remove_container(container_id, force=True)
    except docker.errors.NotFound:
        pass
    except docker.errors.APIError as exc:
        if "removal of container" not in str(exc) and "already in progress" not in str(exc):
            raise


def _finalise(client: Any, container_id: str, host_dir: str) -> None:
    """Last resort when an executor is dropped or the interpreter exits without `stop()`."""
    try:
        _remove_container(client, container_id)
    except Exception:
        pass
    shutil.rmtree(host_dir, ignore_errors=True)


class DockerSandbox(SandboxExecutor):
    backend = "docker"
    isolated = True

    def __init__(
        self,
        *,
        files: list[Path] | None = None,
        limits: Limits | None = None,
        image: str = "roundtable-sandbox:latest",
    ) -> None:
        super().__init__(files=files, limits=limits)
        self.image = image
        self.container_id: str | None = None
        self.container_name: str | None = None
        self._client: Any = None
        self._host_dir: Path | None = None
        self._finaliser: weakref.finalize | None = None
        self._oom_seen = 0
        self._start_lock = asyncio.Lock()

    # --- lifecycle -----------------------------------------------------------------------------------
    async def start(self) -> None:
        async with self._start_lock:
            if self.container_id is None:
                await blocking(self._start_sync)

    def _start_sync(self) -> None:
        global _reaped_orphans
        docker = _docker()
        started = time.monotonic()
        if self._client is None:
            try:
                # The client timeout bounds every API call; a silent program must not trip it mid-stream.
                self._client = docker.from_env(timeout=int(self.limits.timeout_s) + 30)
                self._client.ping()
            except Exception as exc:
                raise SandboxError(f"docker sandbox: no Docker engine answers ({type(exc).__name__}: {exc})") from exc
        client = self._client
        try:
            client.images.get(self.image)
        except docker.errors.ImageNotFound:
            raise SandboxError(
                f"docker sandbox: the image {self.image!r} does not exist; build it with `make sandbox-image`"
            ) from None
        if not _reaped_orphans:
            _reaped_orphans = True
            try:
                _reap_orphans(client)
            except Exception as exc:
                logger.debug("could not look for orphaned sandbox containers: {}", exc)

        if self._host_dir is None:
            self._host_dir = Path(tempfile.mkdtemp(prefix="roundtable-docker-"))
            (self._host_dir / "code").mkdir()
            for d in (self._host_dir, self._host_dir / "code"):
                d.chmod(0o755)  # the container user reads the code through the bind mount
            staged = stage_files(self.files, self._host_dir / "files")
        else:
            staged = sorted((self._host_dir / "files").glob("*")) if (self._host_dir / "files").exists() else []
        Mount = docker.types.Mount
        mounts = [Mount("/code", str(self._host_dir / "code"), type="bind", read_only=True)]
        mounts += [Mount(f"/work/{p.name}", str(p), type="bind", read_only=True) for p in staged]
        lim = self.limits
        name = f"roundtable-sbx-{uuid.uuid4().hex[:10]}"
        try:
            container = client.containers.run(
                self.image,
                ["python3", "-I", "-S", "-c", source("docker_init"), str(int(lim.lifetime_s))],
                name=name,
                detach=True,
                auto_remove=True,
                network_mode="none",
                read_only=True,
                user=USER,
                cap_drop=["ALL"],
                security_opt=["no-new-privileges:true"],
                mem_limit=f"{lim.memory_mb}m",
                memswap_limit=f"{lim.memory_mb}m",
                nano_cpus=int(lim.cpus * 1e9),
                pids_limit=lim.pids,
                ipc_mode="private",
                ulimits=[
                    docker.types.Ulimit(name="nofile", soft=1024, hard=1024),
                    docker.types.Ulimit(name="core", soft=0, hard=0),
                    docker.types.Ulimit(name="fsize", soft=lim.file_size_mb << 20, hard=lim.file_size_mb << 20),
                ],
                tmpfs={
                    "/work": f"rw,size={lim.work_mb}m,uid=10001,gid=10001,mode=0755",
                    "/tmp": f"rw,size={lim.work_mb}m,mode=1777",
                },
                mounts=mounts,
                environment=program_env(home="/work", tmp="/tmp", cpus=lim.cpus),
                working_dir="/work",
                hostname="sandbox",
                labels={LABEL: "1", OWNER_LABEL: _owner(), DIR_LABEL: str(self._host_dir)},
                log_config=docker.types.LogConfig(type="none"),
            )
        except docker.errors.APIError as exc:
            raise SandboxError(f"docker sandbox: could not start a container from {self.image!r}: {exc}") from exc
        self.container_id, self.container_name = container.id, name
        self._oom_seen = 0
        if self._finaliser is not None:
            self._finaliser.detach()
        self._finaliser = weakref.finalize(self, _finalise, client, container.id, str(self._host_dir))
        logger.info("sandbox: docker container {} started from {} in {:.2f}s", name, self.image, time.monotonic() - started)

    async def stop(self) -> None:
        async with self._start_lock:
            await blocking(self._stop_sync)

    def _stop_sync(self) -> None:
        if self._finaliser is not None:
            self._finaliser.detach()
            self._finaliser = None
        if self.container_id is not None and self._client is not None:
            try:
                _remove_container(self._client, self.container_id)
                logger.info("sandbox: docker container {} removed", self.container_name)
            except Exception as exc:
                logger.warning("sandbox: could not remove docker container {}: {}", self.container_name, exc)
        self.container_id = None
        if self._host_dir is not None:
            shutil.rmtree(self._host_dir, ignore_errors=True)
            self._host_dir = None
        if self._client is not None:
            self._client.close()
            self._client = None

    async def _replace_container(self) -> None:
        """Throw the container away and start a fresh one (files written by earlier runs are lost)."""
        container_id = self.container_id
        if container_id is not None and self._client is not None:
            await blocking(_remove_container, self._client, container_id)
        self.container_id = None
        await blocking(self._start_sync)

    # --- one run -------------------------------------------------------------------------------------
    async def _run(self, code: str, cancellation_token: CancellationToken) -> SandboxResult:
        await self.start()
        if cancellation_token.is_cancelled():  # cancelled while the container was starting: run nothing
            return make_result(self.backend, exit_code=0, output="", truncated=False, cause="cancelled",
                               limits=self.limits, duration_s=0.0)
        notes: list[str] = []
        docker = _docker()
        try:
            exec_id = await blocking(self._create_exec, code)
        except (docker.errors.NotFound, docker.errors.APIError) as exc:
            # The container is gone (its lifetime ran out, someone removed it): start a fresh one once.
            logger.warning("sandbox: docker container {} unusable ({}); starting a new one", self.container_name, exc)
            await self._replace_container()
            notes.append("the sandbox was restarted; files written by earlier runs are gone")
            exec_id = await blocking(self._create_exec, code)

        started = time.monotonic()
        collector = OutputCollector(self.limits.output_bytes)
        cancelled = cancel_event(cancellation_token)
        stopping = threading.Event()  # set before the first kill: a program not started yet is not started
        finished = threading.Event()  # the program's output ended (set by the reading thread itself)
        done = in_thread(self._pump, exec_id, collector, stopping, finished)
        try:
            cause = await wait_for_end(done, cancelled, self.limits.timeout_s)
            if cause != "exited":
                stopping.set()
                await self._kill_programs(done, notes)
        except asyncio.CancelledError:
            # The task running us was cancelled: the program must still die, without awaiting anything.
            stopping.set()
            if self._client is not None and self.container_id is not None:
                submit_blocking(self._kill_until_done, self._client, self.container_id, finished)
            raise
        duration = time.monotonic() - started
        # A stopped run reports 124 or 130 whatever the exec says (it may never have started).
        exit_code = await blocking(self._exit_code, exec_id) if cause == "exited" else -1
        if cause == "exited" and exit_code == 137:
            oom = await blocking(self._oom_kills)
            notes += signal_note(exit_code, self.limits, oom=oom > self._oom_seen)
            self._oom_seen = max(self._oom_seen, oom)
        elif cause == "exited":
            notes += signal_note(exit_code, self.limits)
        output, truncated = collector.text()
        return make_result(self.backend, exit_code=exit_code, output=output, truncated=truncated, cause=cause,
                           limits=self.limits, duration_s=duration, notes=notes)

    def _create_exec(self, code: str) -> str:
        assert self._host_dir is not None and self.container_id is not None
        code_dir = self._host_dir / "code"
        tmp = code_dir / ".main.py.tmp"
        tmp.write_text(code, encoding="utf-8")
        tmp.chmod(0o644)
        os.replace(tmp, code_dir / "main.py")
        created = self._client.api.exec_create(
            self.container_id,
            ["/bin/sh", "-c", RUN_SCRIPT, "sh", "/code/main.py"],
            stdout=True,
            stderr=True,
            stdin=False,
            tty=False,
            user=USER,
            workdir="/work",
        )
        return str(created["Id"])

    def _pump(self, exec_id: str, collector: OutputCollector, stopping: threading.Event,
              finished: threading.Event) -> None:
        """Start the program and read its output until it ends (runs in a worker thread)."""
        try:
            if stopping.is_set():
                return
            stream = self._client.api.exec_start(exec_id, stream=True, demux=True)
            for out, err in stream:  # frames arrive in the order the program wrote them
                if out:
                    collector.feed(out)
                if err:
                    collector.feed(err)
        finally:
            finished.set()

    async def _kill_programs(self, done: asyncio.Future, notes: list[str]) -> None:
        """Kill every program in the container; replace the container if they will not die.

        The signal is repeated until the run ends: a cancel can arrive while `docker exec` is still starting
        the program, and a SIGUSR1 sent before the program exists kills nothing."""
        deadline = time.monotonic() + KILL_GRACE_S
        warned = False
        while True:
            try:
                await blocking(self._client.api.kill, self.container_id, signal="SIGUSR1")
            except Exception as exc:
                if not warned:
                    logger.warning("sandbox: could not signal docker container {}: {}", self.container_name, exc)
                    warned = True
            left = deadline - time.monotonic()
            try:
                await asyncio.wait_for(asyncio.shield(done), timeout=max(0.0, min(KILL_REPEAT_S, left)))
                return
            except asyncio.TimeoutError:
                if time.monotonic() < deadline:
                    continue
            except Exception:
                return
            logger.warning("sandbox: programs in {} did not die; replacing the container", self.container_name)
            await self._replace_container()
            notes.append("the sandbox was restarted; files written by earlier runs are gone")
            return

    @staticmethod
    def _kill_until_done(client: Any, container_id: str, finished: threading.Event) -> None:
        """SIGUSR1 the container until the run's output ends (or KILL_GRACE_S passes); in a worker thread."""
        deadline = time.monotonic() + KILL_GRACE_S
        while not finished.is_set() and time.monotonic() < deadline:
            try:
                client.api.kill(container_id, signal="SIGUSR1")
            except Exception:
                return
            finished.wait(KILL_REPEAT_S)

    def _exit_code(self, exec_id: str) -> int:
        # The stream ends when the program's output closes; its exit status can land a moment later.
        deadline = time.monotonic() + 2.0
        while True:
            try:
                info = self._client.api.exec_inspect(exec_id)
            except Exception:
                return -1
            if not info.get("Running") and info.get("ExitCode") is not None:
                return int(info["ExitCode"])
            if time.monotonic() > deadline:
                return -1
            time.sleep(0.02)

    def _oom_kills(self) -> int:
        """How many processes the kernel killed for memory in this container (cgroup v1 or v2)."""
        try:
            result = self._client.api.exec_create(
                self.container_id,
                ["/bin/sh", "-c", "cat /sys/fs/cgroup/memory.events /sys/fs/cgroup/memory/memory.oom_control 2>/dev/null"],
                user=USER,
            )
            out = self._client.api.exec_start(result["Id"])
        except Exception:
            return 0
        return sum(int(m) for m in _OOM_LINE.findall(out or b""))


BACKEND = BackendInfo(
    executor=DockerSandbox,
    protects="a hardened container per question: no network, read-only root, unprivileged user, no "
             "capabilities, memory/CPU/pids limits",
    problem=lambda host: docker_problem(host.image),
    create=lambda host, files, limits: DockerSandbox(files=files, limits=limits, image=host.image),
    detail=lambda host: f" (image {host.image})",
)
