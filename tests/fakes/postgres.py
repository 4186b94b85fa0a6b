"""A throwaway PostgreSQL server for the history tests: Debian's `postgresql` binaries, a cluster made with
initdb in a temp dir, started with pg_ctl on a free 127.0.0.1 port, trust auth, removed at exit.

PostgreSQL refuses to run as root (CI runs as root): then the cluster belongs to `nobody` and the binaries run
through `runuser`. One server per test process (`shared_server()`); each test takes a fresh database
(`new_database()`), so tests never see each other's threads. Without the binaries the tests skip, and fail
with ROUNDTABLE_REQUIRE_SYSTEM=1 (tests/conftest.py skip_or_fail).
"""

from __future__ import annotations

import atexit
import glob
import os
import shutil
import socket
import subprocess
import tempfile
import threading
import uuid
from pathlib import Path

RUN_AS = "nobody"


def binaries() -> Path | None:
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"), key=lambda p: int(p.split("/")[4]) if p.split("/")[4].isdigit() else 0)
    if found:
        return Path(found[-1]).parent
    initdb = shutil.which("initdb")
    return Path(initdb).parent if initdb else None


def missing() -> str | None:
    if binaries() is None:
        return "PostgreSQL is not installed (apt-get install -y postgresql)"
    if os.geteuid() == 0 and shutil.which("runuser") is None:
        return "running as root without runuser: cannot start PostgreSQL as an unprivileged user"
    return None


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class PostgresServer:
    def __init__(self) -> None:
        bindir = binaries()
        if bindir is None:
            raise RuntimeError("PostgreSQL is not installed")
        self.bindir = bindir
        self.root = Path(tempfile.mkdtemp(prefix="roundtable-pg-"))
        self.data = self.root / "data"
        self.sockets = self.root / "run"
        self.port = _free_port()
        self.user = "postgres"
        self._as_root = os.geteuid() == 0
        self._lock = threading.Lock()
        self.started = False

    def _run(self, *args: str) -> subprocess.CompletedProcess[str]:
        cmd = list(args)
        if self._as_root:
            cmd = ["runuser", "-u", RUN_AS, "--", *cmd]
        return subprocess.run(cmd, capture_output=True, text=True, timeout=120, cwd=self.root, check=False)

    def start(self) -> PostgresServer:
        self.sockets.mkdir()
        if self._as_root:
            shutil.chown(self.root, RUN_AS)
            shutil.chown(self.sockets, RUN_AS)
        r = self._run(str(self.bindir / "initdb"), "-D", str(self.data), "-U", self.user, "-A", "trust",
                      "-E", "UTF8", "--no-sync")
        if r.returncode:
            raise RuntimeError(f"initdb failed: {r.stdout}\n{r.stderr}")
        opts = f"-p {self.port} -k {self.sockets} -c listen_addresses=127.0.0.1 -c fsync=off"
        r = self._run(str(self.bindir / "pg_ctl"), "-D", str(self.data), "-o", opts, "-l", str(self.root / "log"),
                      "-w", "-t", "60", "start")
        if r.returncode:
            log = (self.root / "log").read_text(errors="replace") if (self.root / "log").exists() else ""
            raise RuntimeError(f"pg_ctl start failed: {r.stdout}\n{r.stderr}\n{log}")
        self.started = True
        return self

    def stop(self) -> None:
        if self.started:
            self._run(str(self.bindir / "pg_ctl"), "-D", str(self.data), "-m", "immediate", "-w", "stop")
            self.started = False
        shutil.rmtree(self.root, ignore_errors=True)

    def url(self, database: str = "postgres") -> str:
        """The URL a user would set as DATABASE_URL (no driver: the app adds asyncpg)."""
        return f"postgresql://{self.user}@127.0.0.1:{self.port}/{database}"

    def psql(self, database: str, sql: str) -> str:
        r = self._run(str(self.bindir / "psql"), "-h", "127.0.0.1", "-p", str(self.port), "-U", self.user,
                      "-d", database, "-v", "ON_ERROR_STOP=1", "-At", "-c", sql)
        if r.returncode:
            raise RuntimeError(f"psql failed: {r.stderr}")
        return r.stdout

    def new_database(self) -> str:
        name = f"t_{uuid.uuid4().hex[:12]}"
        with self._lock:
            self.psql("postgres", f"CREATE DATABASE {name}")
        return self.url(name)


_server: PostgresServer | None = None
_server_lock = threading.Lock()


def shared_server() -> PostgresServer:
    """The test process's one server, started on first use and stopped at exit."""
    global _server
    with _server_lock:
        if _server is None:
            server = PostgresServer().start()
            atexit.register(server.stop)
            _server = server
        return _server
