"""Two app instances from one checkout keep their own upload folders: one's shutdown leaves the other's alone."""

from __future__ import annotations

import subprocess
import sys
import time
import urllib.request
from pathlib import Path

from tests.ui.harness import ChainlitApp, app_env, scratch_dir
from ui import files_dir


def _folder_of(app: ChainlitApp) -> Path:
    assert app.proc is not None
    root = app.root / "app" / ".files"
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        found = sorted(root.glob(f"{app.proc.pid}-*"))
        if found:
            return found[0]
        time.sleep(0.1)
    raise AssertionError(f"no upload folder for pid {app.proc.pid} in {sorted(p.name for p in root.iterdir())}")


def _healthy(app: ChainlitApp) -> bool:
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    with opener.open(f"{app.url}/healthz", timeout=5) as r:
        return r.status == 200


def test_stopping_one_instance_keeps_the_other_instances_uploads() -> None:
    with scratch_dir() as root:
        env = app_env(root)
        first = ChainlitApp(env, root).start()
        try:
            with ChainlitApp(env, root) as second:
                mine, theirs = _folder_of(first), _folder_of(second)
                assert mine != theirs
                upload = mine / "session-1" / "sales.xlsx"
                upload.parent.mkdir()
                upload.write_bytes(b"a user's upload")
            # the second instance has shut down (Chainlit deletes its files folder on the way out)
            assert not theirs.exists()
            assert upload.read_bytes() == b"a user's upload"
            assert _healthy(first)
        finally:
            first.stop()
        assert not mine.exists()  # each instance still cleans up after itself


def test_a_folder_left_by_a_killed_instance_is_removed_and_a_live_ones_is_kept(tmp_path: Path) -> None:
    root = tmp_path / ".files"
    dead = root / "4242-dead"
    dead.mkdir(parents=True)
    (dead / files_dir.LOCK_NAME).touch()
    (dead / "old-upload.csv").write_text("x")
    live = root / "4343-live"
    live.mkdir()
    (live / files_dir.LOCK_NAME).touch()
    older_layout = root / "0b9f6a2e-session"  # a session folder of the old layout (no lock): not ours to judge
    older_layout.mkdir()
    holder = subprocess.Popen(
        [sys.executable, "-c",
         "import fcntl, sys, time; f = open(sys.argv[1], 'rb'); fcntl.flock(f, fcntl.LOCK_EX); print('held', flush=True); time.sleep(60)",
         str(live / files_dir.LOCK_NAME)],
        stdout=subprocess.PIPE,
    )
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == b"held"
        removed = files_dir.remove_abandoned(root)
        assert removed == [dead]
        assert not dead.exists() and live.is_dir() and older_layout.is_dir()
    finally:
        holder.kill()
        holder.wait()
