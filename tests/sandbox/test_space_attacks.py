"""Attacks a public Space cares about, for each isolated backend (and inside the Space-like container of
tests/deploy/test_space.py, where the app's tree is /home/user/app and its secrets are the container's):
model-written code must not change the app other visitors are served, read another session's files, or
see the container's secrets in its environment or in /proc.

Every check looks at the host from outside the sandbox: a backend with a private in-memory file system
(wasm) may let a program "write" /home/user/app/x, which is harmless; the host file must be untouched.
Each attack is tried both with Python's own calls and, where the program runs in Pyodide, through its
bridge to JavaScript (`js.Deno.readTextFileSync`, `writeTextFileSync`, `env`...), the way out of the
in-memory file system that only Deno's permissions close.
"""

from __future__ import annotations

import asyncio
import hashlib
import os
import sys
import sysconfig
import tempfile
import time
import uuid
from pathlib import Path

from autogen_core import CancellationToken

from config.settings import REPO_ROOT, get_settings

# A secret without any recognisable shape, so no pattern-based masking can be what hides it.
SHAPELESS = "Qm4Tz8Rw2Yc6Hv0J"
# Read before tests/conftest.py scrubs the environment: in the Space-like container this is the fake
# key the container was started with (it is in PID 1's environment there, as a Space's secrets are).
CONTAINER_SECRET = os.environ.get("OPENAI_API_KEY", "")


def unique(label: str) -> str:
    return f"roundtable-{label}-{os.getpid()}-{time.monotonic_ns()}"


# Prepended to every attack program. `deno(...)` calls Deno's own API from Pyodide; elsewhere there is no
# `js` module and the call fails like any blocked attempt. Any exception counts as blocked: Deno's
# permission errors reach Python as JsException, not OSError.
PRELUDE = """
import os
def deno(name, *args):
    import js
    fn = js.Deno
    for part in name.split("."):
        fn = getattr(fn, part)
    return fn(*args)
def names(listing):
    return [getattr(entry, "name", entry) for entry in listing]
"""


def digest(path: Path) -> tuple[str, int]:
    st = path.stat()
    return hashlib.sha256(path.read_bytes()).hexdigest(), st.st_mode


async def test_the_app_tree_and_its_interpreter_cannot_be_changed(sandbox_factory) -> None:
    # A file of the app's own tree (made by the test, so that even a broken sandbox damages nothing real).
    canary = REPO_ROOT / f".{unique('app-canary')}.py"
    canary.write_text("SERVED = 'the app as deployed'\n")
    before = digest(canary)
    name = unique("pwned")
    purelib = Path(sysconfig.get_paths()["purelib"])  # the app's site-packages: a sitecustomize.py there runs in the app
    new_files = [REPO_ROOT / name, REPO_ROOT / "sandbox" / f"{name}.py", REPO_ROOT / ".files" / name, purelib / f"{name}.pth"]
    code = PRELUDE + f"""
canary = {str(canary)!r}
def attempt(label, fn):
    try:
        fn()
        print(label + ": done")
    except Exception as exc:
        print(label + ": blocked " + type(exc).__name__)
for path in {[str(p) for p in new_files]!r}:
    attempt("create " + path, lambda: open(path, "x").write("import os  # pwned"))
    attempt("deno create " + path, lambda: deno("writeTextFileSync", path, "import os  # pwned"))
attempt("append", lambda: open(canary, "a").write("SERVED = 'pwned'\\n"))
attempt("overwrite", lambda: open(canary, "w").write("SERVED = 'pwned'\\n"))
attempt("chmod", lambda: os.chmod(canary, 0o777))
attempt("deno overwrite", lambda: deno("writeTextFileSync", canary, "SERVED = 'pwned'\\n"))
attempt("deno chmod", lambda: deno("chmodSync", canary, 0o777))
attempt("rename", lambda: os.rename(canary, canary + ".bak"))
attempt("deno rename", lambda: deno("renameSync", canary, canary + ".bak"))
attempt("remove", lambda: os.remove(canary))
attempt("deno remove", lambda: deno("removeSync", canary))
print("finished")
"""
    try:
        sandbox = sandbox_factory()
        result = await sandbox.run_python(code, CancellationToken())
        assert "finished" in result.output, result.output  # the program ran to its end
        created = [str(p) for p in new_files if p.exists()]
        assert created == [], result.output
        moved = canary.with_name(canary.name + ".bak")
        assert canary.exists() and digest(canary) == before, result.output
        assert not moved.exists()
    finally:
        for p in [*new_files, canary, canary.with_name(canary.name + ".bak")]:
            p.unlink(missing_ok=True)


async def test_another_sessions_uploads_and_work_dir_are_unreadable(sandbox_factory) -> None:
    secret = f"{SHAPELESS}-{uuid.uuid4().hex[:8]}"
    session = unique("session")
    # Where another visitor's files live on a Space: Chainlit's uploads (.files/<session>), the app's
    # cache (attachments, evaluation files) and the temporary directory.
    planted = [
        REPO_ROOT / ".files" / session / "upload.csv",
        get_settings().cache_dir / session / "attachment.txt",
        Path(tempfile.gettempdir()) / session / "work.txt",
    ]
    for p in planted:
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_text(f"name,value\nkey,{secret}\n")
    try:
        other = sandbox_factory()  # another question's sandbox, with a file of its own in its work dir
        wrote = await other.run_python(f"open('/work/notes.txt', 'w').write({secret!r})\nprint('saved')", CancellationToken())
        assert "saved" in wrote.output, wrote.output
        other_work = getattr(other, "work_dir", None)
        if isinstance(other_work, Path):
            assert (other_work / "notes.txt").read_text() == secret  # it is on this host: a real target
            planted.append(other_work / "notes.txt")

        probe = PRELUDE + f"""
marks = {[secret, session]!r}
def attempt(label, fn):
    try:
        seen = repr(fn())
        print(label + (": FOUND" if any(m in seen for m in marks) else ": clean"))
    except Exception as exc:
        print(label + ": blocked " + type(exc).__name__)
# Labels are numbers: the paths themselves hold the session's name, which must not come back.
for i, path in enumerate({[str(p) for p in planted]!r}):
    attempt(f"read {{i}}", lambda: open(path).read())
    attempt(f"deno read {{i}}", lambda: deno("readTextFileSync", path))
for i, folder in enumerate({sorted({str(p.parent.parent) for p in planted})!r}):
    attempt(f"list {{i}}", lambda: os.listdir(folder))
    attempt(f"deno list {{i}}", lambda: names(deno("readDirSync", folder)))
print("own work dir:", sorted(os.listdir("/work")))
"""
        mine = sandbox_factory()
        result = await mine.run_python(probe, CancellationToken())
        assert "own work dir:" in result.output, result.output
        assert "FOUND" not in result.output and secret not in result.output, result.output
        assert session not in result.output, result.output  # not even the other session's folder name
        assert "notes.txt" not in result.output.split("own work dir:")[1]  # the other sandbox's file is not in ours
    finally:
        for p in planted:
            p.unlink(missing_ok=True)
            if session in str(p.parent):
                p.parent.rmdir()


async def test_secrets_of_the_app_are_not_in_the_programs_environment_or_proc(sandbox_factory, monkeypatch) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", SHAPELESS)
    monkeypatch.setenv("ANTHROPIC_API_KEY", SHAPELESS[::-1])
    secrets = [SHAPELESS, SHAPELESS[::-1], *([CONTAINER_SECRET] if CONTAINER_SECRET else [])]
    # A process of the app's user started with the secrets in its environment, as the app's own children are.
    holder = await asyncio.create_subprocess_exec(sys.executable, "-c", "import time; time.sleep(60)", env=dict(os.environ))
    sandbox = sandbox_factory()
    code = PRELUDE + f"""
import glob
marks = {[*secrets, "OPENAI_API_KEY", "ANTHROPIC_API_KEY"]!r}
def check(label, read):
    try:
        data = read()
        print(label + (": FOUND" if any(m in str(data) for m in marks) else ": clean"))
        return True
    except Exception as exc:
        print(label + ": blocked " + type(exc).__name__)
        return False
check("environ", lambda: sorted(os.environ.items()))
check("deno env", lambda: deno("env.toObject").to_py())
pids = set(glob.glob("/proc/[0-9]*"))
try:
    pids |= {{"/proc/" + n for n in names(deno("readDirSync", "/proc")) if n.isdigit()}}
except Exception:
    pass
paths = ["/proc/self/environ", "/proc/1/environ", f"/proc/{{os.getppid()}}/environ", *(p + "/environ" for p in sorted(pids))]
readable = 0
for path in paths:
    readable += check(path, lambda: open(path, "rb").read().decode(errors="replace"))
    readable += check("deno " + path, lambda: deno("readTextFileSync", path))
print("looked at", len(paths), "environments,", readable, "readable")
"""
    try:
        result = await sandbox.run_python(code, CancellationToken())
    finally:
        holder.kill()
        await holder.wait()
    assert "looked at" in result.output, result.output
    assert "FOUND" not in result.output, result.output
    for secret in secrets:
        assert secret not in result.output, result.output
