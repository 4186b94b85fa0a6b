"""The `bwrap` backend: each run in fresh bubblewrap namespaces, for hosts without Docker.

A run gets new pid, network (loopback only, nothing reachable), ipc, uts and cgroup namespaces; a root
that holds only /usr (read-only), the Python interpreter (read-only), a few harmless /etc files and a
generated /etc/passwd; a private /tmp; the question's work dir at /work (it persists between the runs of
one question) with the attachments bind-mounted read-only; and no capabilities, no-new-privileges.
Its PID 1 is sandbox/inner/launcher.py, which applies the rlimits and exits with the program, taking
every leftover process with it (the kernel kills a pid namespace whose init exits).

Two ways in, chosen by who we are:
- not root (a Space, a laptop): bwrap makes a user namespace; the program is uid 10001 inside it and our
  own uid outside. RLIMIT_NPROC is counted per user namespace, so the fork limit is the sandbox's own.
- root (CI, a server): a user namespace would map the program to host root, which is exempt from
  RLIMIT_NPROC. Instead bwrap runs without one and the launcher switches to a dedicated unprivileged uid
  (a fresh one per question) before running anything, so the kernel enforces every limit.
What it does not do (see README "Sandbox"): limit CPU share or total memory across processes (no
cgroups without privileges; RLIMIT_AS is per process), filter system calls, or hide the host's kernel.
"""

from __future__ import annotations

import asyncio
import json
import os
import secrets
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import weakref
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path, PurePosixPath

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
    kill_group,
    make_result,
    shell_exit_code,
    signal_note,
    stage_files,
    wait_for_end,
)
from sandbox.env import program_env
from sandbox.inner import source
from sandbox.registry import BackendInfo

INSIDE_UID = 10001  # the program's uid inside a user namespace
HOST_UID_BASE = 1_900_000_000  # dedicated host uids (root mode): far above any real account
VENV_INSIDE = "/opt/venv"
RESERVED = ("/work", "/code", "/tmp", "/proc", "/dev", "/etc", VENV_INSIDE)
SYSTEM_LINKS = ("/bin", "/sbin", "/lib", "/lib32", "/lib64", "/libx32")
ETC_FILES = ("/etc/ld.so.cache", "/etc/ld.so.conf", "/etc/ld.so.conf.d", "/etc/alternatives", "/etc/localtime")
QUOTA_POLL_S = 0.25
NICE = 10  # a fork bomb or a busy loop must not starve the host's own work


@dataclass(frozen=True)
class Interpreter:
    """Where a Python lives on the host and how the sandbox sees it."""

    executable: str  # the path to run inside the sandbox
    binds: tuple[tuple[str, str], ...]  # (host path, sandbox path), read-only
    path_dirs: tuple[str, ...]  # what goes first on PATH inside


@lru_cache(maxsize=8)
def interpreter(python: str | None) -> Interpreter:
    if python is None or os.path.realpath(python) == os.path.realpath(sys.executable):
        prefix, base, executable = sys.prefix, sys.base_prefix, sys.executable
    else:
        probe = subprocess.run(
            [python, "-I", "-S", "-c", "import json,sys; print(json.dumps([sys.prefix, sys.base_prefix, sys.executable]))"],
            capture_output=True, text=True, timeout=30, check=False,
        )
        if probe.returncode != 0:
            raise SandboxError(f"bwrap sandbox: cannot run the interpreter {python!r}: {probe.stderr.strip()[-300:]}")
        prefix, base, executable = json.loads(probe.stdout)
    base = os.path.realpath(base)
    binds: list[tuple[str, str]] = []
    if not _under(base, "/usr"):
        _check_free(base)
        binds.append((base, base))  # at its own path: a venv's pyvenv.cfg and the rpath point there
    name = os.path.basename(executable)
    if os.path.realpath(prefix) != base:  # a virtual environment: mount it at a fixed, neutral place
        binds.append((os.path.realpath(prefix), VENV_INSIDE))
        return Interpreter(f"{VENV_INSIDE}/bin/{name}", tuple(binds), (f"{VENV_INSIDE}/bin",))
    inside = executable if _under(executable, "/usr") or _under(executable, base) else f"{base}/bin/{name}"
    return Interpreter(inside, tuple(binds), (str(PurePosixPath(inside).parent),))


def _under(path: str, root: str) -> bool:
    return path == root or path.startswith(root.rstrip("/") + "/")


def _check_free(path: str) -> None:
    for reserved in RESERVED:
        if _under(path, reserved) or _under(reserved, path):
            raise SandboxError(f"bwrap sandbox: the interpreter lives under {path}, which the sandbox needs for {reserved}")


def _memfd(name: str, data: bytes) -> int:
    fd = os.memfd_create(name, 0)
    os.write(fd, data)
    os.lseek(fd, 0, os.SEEK_SET)
    return fd


def _dir_bytes(path: Path) -> int:
    total = 0
    stack = [str(path)]
    while stack:
        try:
            with os.scandir(stack.pop()) as entries:
                for entry in entries:
                    try:
                        if entry.is_dir(follow_symlinks=False):
                            stack.append(entry.path)
                        else:
                            total += entry.stat(follow_symlinks=False).st_blocks * 512
                    except OSError:
                        continue
        except OSError:
            continue
    return total


def _ancestors(path: str) -> list[str]:
    parts = PurePosixPath(path).parts[1:-1]
    return ["/" + "/".join(parts[: i + 1]) for i in range(len(parts))]


class BwrapSandbox(SandboxExecutor):
    backend = "bwrap"
    isolated = True

    def __init__(
        self,
        *,
        files: list[Path] | None = None,
        limits: Limits | None = None,
        python: str | None = None,
        userns: bool | None = None,
        run_as: int = 65534,
    ) -> None:
        """`python`: the interpreter (default: this one). `userns`: force the user-namespace way in (default:
        only when not root). `run_as`: the host uid bwrap itself runs as when root chooses `userns`."""
        super().__init__(files=files, limits=limits)
        self.python = python
        self.root = os.geteuid() == 0
        self.userns = (not self.root) if userns is None else userns
        self.run_as = run_as if (self.root and self.userns) else None
        self.host_uid = HOST_UID_BASE + secrets.randbelow(10_000_000) if (self.root and not self.userns) else None
        self._dir: Path | None = None
        self._staged: list[Path] = []
        self._interp: Interpreter | None = None
        self._finaliser: weakref.finalize | None = None

    @property
    def work_dir(self) -> Path | None:
        return None if self._dir is None else self._dir / "work"

    # --- lifecycle -----------------------------------------------------------------------------------
    async def start(self) -> None:
        if self._dir is None:
            await blocking(self._start_sync)

    def _start_sync(self) -> None:
        if shutil.which("bwrap") is None:
            raise SandboxError("bwrap sandbox: bubblewrap is not installed (apt-get install bubblewrap)")
        self._interp = interpreter(self.python)
        d = Path(tempfile.mkdtemp(prefix="roundtable-bwrap-"))
        try:
            self._staged = stage_files(self.files, d / "files")
            (d / "work").mkdir()
            owner = self.host_uid if self.host_uid is not None else self.run_as
            if owner is not None:
                os.chown(d / "work", owner, owner)
                if self.run_as is not None:  # bwrap itself (as run_as) must reach the mount sources
                    for p in (d, d / "files"):
                        p.chmod(0o755)
        except BaseException:
            shutil.rmtree(d, ignore_errors=True)
            raise
        self._dir = d
        # If nobody calls stop() (the app exits first), the question's files still go at interpreter exit.
        self._finaliser = weakref.finalize(self, shutil.rmtree, str(d), True)

    async def stop(self) -> None:
        if self._dir is not None:
            d, self._dir = self._dir, None
            if self._finaliser is not None:
                self._finaliser.detach()
                self._finaliser = None
            await blocking(shutil.rmtree, d, True)

    # --- the command line ----------------------------------------------------------------------------
    def _args(self, fds: dict[str, int], program: list[str]) -> list[str]:
        assert self._dir is not None and self._interp is not None
        lim = self.limits
        a = ["bwrap", "--unshare-pid", "--unshare-net", "--unshare-ipc", "--unshare-uts", "--unshare-cgroup-try",
             "--die-with-parent", "--new-session", "--as-pid-1", "--hostname", "sandbox", "--info-fd", "-1"]
        if self.userns:
            a += ["--unshare-user", "--disable-userns", "--uid", str(INSIDE_UID), "--gid", str(INSIDE_UID)]
            uid = INSIDE_UID
        else:
            # Root without a user namespace: only what the launcher needs to become the sandbox user.
            a += ["--cap-drop", "ALL", "--cap-add", "CAP_SETUID", "--cap-add", "CAP_SETGID"]
            assert self.host_uid is not None
            uid = self.host_uid
        a += ["--ro-bind", "/usr", "/usr"]
        for link in SYSTEM_LINKS:
            if os.path.islink(link):
                a += ["--symlink", os.readlink(link), link]
            elif os.path.isdir(link):
                a += ["--ro-bind", link, link]
        for f in ETC_FILES:
            a += ["--ro-bind-try", f, f]
        for name in ("passwd", "group", "hosts", "hostname"):
            a += ["--perms", "0444", "--ro-bind-data", str(fds[name]), f"/etc/{name}"]
        made: set[str] = {"/usr", "/etc"}
        for host, inside in self._interp.binds:
            for parent in _ancestors(inside):
                if parent not in made:
                    a += ["--perms", "0755", "--dir", parent]
                    made.add(parent)
            a += ["--ro-bind", host, inside]
        a += ["--proc", "/proc", "--dev", "/dev",
              "--size", str(64 << 20), "--perms", "1777", "--tmpfs", "/dev/shm",
              "--size", str(lim.work_mb << 20), "--perms", "1777", "--tmpfs", "/tmp",
              "--bind", str(self._dir / "work"), "/work"]
        for staged in self._staged:
            a += ["--ro-bind", str(staged), f"/work/{staged.name}"]
        a += ["--perms", "0755", "--dir", "/code", "--perms", "0444", "--ro-bind-data", str(fds["code"]), "/code/main.py",
              "--remount-ro", "/", "--chdir", "/work", "--"]
        launcher = [self._interp.executable, "-I", "-S", "-c", source("launcher"),
                    str(uid), str(uid), str(lim.pids), str(lim.memory_mb << 20), str(int(lim.timeout_s) + 1),
                    str(lim.file_size_mb << 20), "1024", str(NICE)]
        return a + launcher + program

    def _etc(self, uid: int) -> dict[str, bytes]:
        return {
            "passwd": f"root:x:0:0:root:/nonexistent:/usr/sbin/nologin\nsandbox:x:{uid}:{uid}:sandbox:/work:/usr/sbin/nologin\n".encode(),
            "group": f"root:x:0:\nsandbox:x:{uid}:\n".encode(),
            "hosts": b"127.0.0.1 localhost sandbox\n::1 localhost\n",
            "hostname": b"sandbox\n",
        }

    # --- one run -------------------------------------------------------------------------------------
    def _prepare(self, code: str) -> tuple[list[str], dict[str, int], dict[str, str], dict[str, object]]:
        """The bwrap command for one run, the fds it reads (caller closes them), its env and user switch."""
        assert self._interp is not None and self._dir is not None
        uid = INSIDE_UID if self.userns else self.host_uid
        assert uid is not None
        fds = {name: _memfd(name, data) for name, data in self._etc(uid).items()}
        fds["code"] = _memfd("code", code.encode("utf-8"))
        env = program_env(home="/work", tmp="/tmp", cpus=self.limits.cpus,
                          path=":".join([*self._interp.path_dirs, "/usr/local/bin", "/usr/bin", "/bin", "/usr/games"]))
        user = {} if self.run_as is None else {"user": self.run_as, "group": self.run_as, "extra_groups": []}
        return self._args(fds, [self._interp.executable, "/code/main.py"]), fds, env, user

    def probe(self) -> str | None:
        """Run `print('ok')` synchronously; None when it works, else what went wrong."""
        self._start_sync()
        info_r, info_w = os.pipe()
        try:
            args, fds, env, user = self._prepare("print('ok')")
            args[args.index("--info-fd") + 1] = str(info_w)
            try:
                proc = subprocess.run(args, stdin=subprocess.DEVNULL, capture_output=True, env=env, cwd="/",  # type: ignore[call-overload]
                                      pass_fds=(*fds.values(), info_w), timeout=30, check=False, **user)
            finally:
                for fd in fds.values():
                    os.close(fd)
            if proc.returncode == 0 and proc.stdout.strip() == b"ok":
                return None
            return (proc.stdout + proc.stderr).decode(errors="replace").strip()[-300:] or f"exit code {proc.returncode}"
        except Exception as exc:
            return f"{type(exc).__name__}: {exc}"
        finally:
            os.close(info_r)
            os.close(info_w)
            if self._dir is not None:
                shutil.rmtree(self._dir, ignore_errors=True)
                self._dir = None
            if self._finaliser is not None:
                self._finaliser.detach()
                self._finaliser = None

    async def _run(self, code: str, cancellation_token: CancellationToken) -> SandboxResult:
        await self.start()
        assert self._dir is not None
        args, fds, env, user = self._prepare(code)
        info_r, info_w = os.pipe()  # bwrap writes {"child-pid": N}: the sandbox's PID 1, seen from here
        os.set_blocking(info_r, False)
        fds["info"] = info_w
        args[args.index("--info-fd") + 1] = str(info_w)
        started = time.monotonic()
        try:
            try:
                proc = await asyncio.create_subprocess_exec(
                    *args,
                    stdin=asyncio.subprocess.DEVNULL,
                    stdout=asyncio.subprocess.PIPE,
                    stderr=asyncio.subprocess.STDOUT,
                    env=env,
                    cwd="/",
                    pass_fds=tuple(fds.values()),
                    start_new_session=True,  # its own process group: one killpg reaches bwrap and its helpers
                    **user,  # type: ignore[arg-type]
                )
            finally:
                for fd in fds.values():
                    os.close(fd)
        except BaseException:
            os.close(info_r)
            raise
        child_pid: list[int] = []

        def sandbox_init_pid() -> int | None:
            if not child_pid:
                try:
                    data = os.read(info_r, 4096)
                    child_pid.append(int(json.loads(data.decode())["child-pid"]))
                except (OSError, ValueError, KeyError):
                    return None
            return child_pid[0]

        def kill() -> None:
            init = sandbox_init_pid()
            if init is not None:
                try:
                    os.kill(init, signal.SIGKILL)  # PID 1 of the sandbox: the kernel then kills all of it
                except ProcessLookupError:
                    pass
            kill_group(proc.pid)

        collector = OutputCollector(self.limits.output_bytes)
        assert proc.stdout is not None
        stdout = proc.stdout

        async def pump() -> None:
            await collector.read_from(stdout)
            await proc.wait()

        done = asyncio.ensure_future(pump())
        quota = asyncio.ensure_future(self._watch_quota())
        cancelled = cancel_event(cancellation_token)
        try:
            cause = await wait_for_end(done, cancelled, self.limits.timeout_s, extra=quota)
            if cause != "exited":
                kill()
                try:
                    await asyncio.wait_for(asyncio.shield(done), timeout=5)
                except asyncio.TimeoutError:
                    logger.warning("sandbox: bwrap run did not end after SIGKILL")
        except asyncio.CancelledError:
            kill()
            raise
        finally:
            quota.cancel()
            os.close(info_r)
        duration = time.monotonic() - started
        exit_code = shell_exit_code(proc.returncode)
        output, truncated = collector.text()
        notes: list[str] = []
        if cause == "exited" and exit_code == 1 and output.startswith("bwrap: "):
            raise SandboxError(f"bwrap sandbox could not start: {output.strip().splitlines()[0]}")
        if cause == "exited":
            notes += signal_note(exit_code, self.limits)
        if await blocking(_dir_bytes, self._dir / "work") > self.limits.work_mb << 20:
            await blocking(self._clear_work)
            notes.append(f"the work dir was over its {self.limits.work_mb} MB limit and was emptied")
        return make_result(self.backend, exit_code=exit_code, output=output, truncated=truncated, cause=cause,
                           limits=self.limits, duration_s=duration, notes=notes)

    async def _watch_quota(self) -> None:
        """Return when the work dir (on the host's disk) grows past the limit; the run is then killed."""
        assert self._dir is not None
        work, limit = self._dir / "work", self.limits.work_mb << 20
        while True:
            await asyncio.sleep(QUOTA_POLL_S)
            if await blocking(_dir_bytes, work) > limit:
                return

    def _clear_work(self) -> None:
        assert self._dir is not None
        for entry in (self._dir / "work").iterdir():
            if entry.is_dir() and not entry.is_symlink():
                shutil.rmtree(entry, ignore_errors=True)
            else:
                entry.unlink(missing_ok=True)


@lru_cache(maxsize=4)
def _probe(python: str | None, root: bool) -> str | None:
    return BwrapSandbox(python=python, limits=Limits(timeout_s=20)).probe()


def bwrap_problem(python: str | None = None) -> str | None:
    """Why the bwrap backend cannot run here, or None when a sandboxed `print('ok')` works."""
    if shutil.which("bwrap") is None:
        return "bubblewrap is not installed"
    if python is not None and not os.access(python, os.X_OK):
        return f"the interpreter {python} (SANDBOX_PYTHON) does not exist or is not executable"
    return _probe(python, os.geteuid() == 0)


BACKEND = BackendInfo(
    executor=BwrapSandbox,
    protects="fresh bubblewrap namespaces per run: no network, a root of read-only /usr, an unprivileged "
             "uid, rlimits (no cgroups: no CPU share or total-memory limit)",
    problem=lambda host: bwrap_problem(host.python),
    create=lambda host, files, limits: BwrapSandbox(files=files, limits=limits, python=host.python),
)
