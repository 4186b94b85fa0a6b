"""What only the wasm backend has: its runtime install (packages from a local index the test builds), the
JavaScript host that grants the program nothing, its protocol, and a fresh interpreter after a kill."""

from __future__ import annotations

import base64
import hashlib
import json
import shutil
import threading
import zipfile
from collections.abc import Iterator
from functools import partial
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from autogen_core import CancellationToken

from sandbox.base import SandboxError
from sandbox.wasm_backend import RESTART_NOTE, WasmSandbox, wasm_problem
from sandbox.wasm_runtime import PYODIDE_VERSION, WasmInstallError, default_dir, install, load_runtime
from tests.sandbox.conftest import TEST_LIMITS, require

CANARY = "wasm-canary-7d41c0e9b2a8"


@pytest.fixture(autouse=True)
def _wasm() -> None:
    require("wasm")


async def run(sandbox: WasmSandbox, code: str):  # type: ignore[no-untyped-def]
    return await sandbox.run_python(code, CancellationToken())


def build_wheel(directory: Path, name: str, version: str, module_source: str, requires: list[str] | None = None) -> Path:
    """A minimal pure-Python wheel, as a build backend would write it."""
    dist = f"{name}-{version}.dist-info"
    files = {
        f"{name}/__init__.py": module_source.encode(),
        f"{dist}/METADATA": ("Metadata-Version: 2.1\nName: " + name + "\nVersion: " + version + "\n"
                             + "".join(f"Requires-Dist: {r}\n" for r in requires or [])).encode(),
        f"{dist}/WHEEL": b"Wheel-Version: 1.0\nGenerator: test\nRoot-Is-Purelib: true\nTag: py3-none-any\n",
    }
    record = []
    for path, data in files.items():
        digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()
        record.append(f"{path},sha256={digest},{len(data)}")
    record.append(f"{dist}/RECORD,,")
    files[f"{dist}/RECORD"] = ("\n".join(record) + "\n").encode()
    wheel = directory / f"{name}-{version}-py3-none-any.whl"
    with zipfile.ZipFile(wheel, "w") as z:
        for path, data in files.items():
            z.writestr(path, data)
    return wheel


@pytest.fixture
def local_server(tmp_path: Path) -> Iterator[tuple[Path, str]]:
    """An HTTP server on 127.0.0.1 serving a directory the test fills."""
    root = tmp_path / "served"
    root.mkdir()
    handler = partial(SimpleHTTPRequestHandler, directory=str(root))
    handler.log_message = lambda *a, **k: None  # type: ignore[attr-defined]
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield root, f"http://127.0.0.1:{server.server_address[1]}/"
    server.shutdown()
    server.server_close()


@pytest.fixture
def runtime_copy(tmp_path: Path) -> Path:
    """A runtime dir of the test's own holding the installed Pyodide (so nothing is downloaded)."""
    root = tmp_path / "wasm"
    name = f"pyodide-{PYODIDE_VERSION}"
    shutil.copytree(load_runtime().pyodide_dir, root / name)
    return root


async def test_a_wheel_from_a_package_index_is_installed_with_its_dependency_and_imports(
        local_server: tuple[Path, str], runtime_copy: Path, tmp_path: Path) -> None:
    served, url = local_server
    wheels = tmp_path / "built"
    wheels.mkdir()
    built = [build_wheel(wheels, "rtdep", "1.0", "WORD = 'answer'\n"),
             build_wheel(wheels, "rtpkg", "2.0", "from rtdep import WORD\nVALUE = WORD + ' 42'\n", requires=["rtdep"])]
    for wheel in built:  # a PEP 503 "simple" index
        page = served / "simple" / wheel.name.split("-")[0]
        page.mkdir(parents=True)
        shutil.copy(wheel, page / wheel.name)
        (page / "index.html").write_text(f'<a href="{wheel.name}">{wheel.name}</a>\n')
    manifest = install(runtime_copy, ["rtpkg"], pip_args=["--index-url", url + "simple/", "--no-cache-dir"])
    assert manifest["wheels"] == ["rtdep-1.0-py3-none-any.whl", "rtpkg-2.0-py3-none-any.whl"]

    sandbox = WasmSandbox(limits=TEST_LIMITS, runtime_dir=runtime_copy)
    try:
        result = await run(sandbox, "import rtpkg\nprint(rtpkg.VALUE)")
    finally:
        await sandbox.stop()
    assert result.output.strip() == "answer 42", result.output


async def test_a_package_of_pyodides_index_is_checked_against_its_lock_file_and_loads_on_import(
        local_server: tuple[Path, str], runtime_copy: Path, tmp_path: Path) -> None:
    served, url = local_server
    wheel = build_wheel(served, "rtlock", "1.0", "import sys\nWHERE = sys.platform\n")
    pyodide_dir = runtime_copy / f"pyodide-{PYODIDE_VERSION}"
    lock_path = pyodide_dir / "pyodide-lock.json"
    lock = json.loads(lock_path.read_text())
    # as Pyodide's own lock file lists numpy or pandas (name, file, sha256, imports, dependencies)
    lock["packages"]["rtlock"] = {
        "name": "rtlock", "version": "1.0", "file_name": wheel.name, "install_dir": "site",
        "sha256": hashlib.sha256(wheel.read_bytes()).hexdigest(), "package_type": "package",
        "imports": ["rtlock"], "depends": [], "unvendored_tests": False, "tool": {},
    }
    lock_path.write_text(json.dumps(lock))

    with pytest.raises(WasmInstallError, match="Pyodide's package index.*--pyodide-index"):
        install(runtime_copy, ["rtlock"])
    manifest = install(runtime_copy, ["rtlock"], pyodide_index=url)
    assert manifest["lock_packages"] == ["rtlock"]

    sandbox = WasmSandbox(limits=TEST_LIMITS, runtime_dir=runtime_copy)
    try:
        before = (await run(sandbox, "import sys\nprint('rtlock' in sys.modules)")).output
        imported = (await run(sandbox, "import rtlock\nprint(rtlock.WHERE)")).output
    finally:
        await sandbox.stop()
    assert before.strip() == "False" and imported.strip() == "emscripten", imported

    # a file that does not match the lock file's sha256 is refused, and nothing is kept
    (pyodide_dir / wheel.name).unlink()
    wheel.write_bytes(wheel.read_bytes() + b"tampered")
    with pytest.raises(WasmInstallError, match="does not match the lock file"):
        install(runtime_copy, ["rtlock"], pyodide_index=url)
    assert not (pyodide_dir / wheel.name).exists()


def test_a_package_with_compiled_code_is_refused_from_pypi(runtime_copy: Path, local_server: tuple[Path, str]) -> None:
    served, url = local_server
    page = served / "simple" / "rtnative"
    page.mkdir(parents=True)
    name = "rtnative-1.0-cp314-cp314-manylinux_2_17_x86_64.whl"
    (page / name).write_bytes(b"not really a wheel")
    (page / "index.html").write_text(f'<a href="{name}">{name}</a>\n')
    with pytest.raises(WasmInstallError, match="pure-Python wheels.*--pyodide-index"):
        install(runtime_copy, ["rtnative"], pip_args=["--index-url", url + "simple/", "--no-cache-dir"])


async def test_a_missing_runtime_names_the_command_that_installs_it(tmp_path: Path) -> None:
    problem = wasm_problem(tmp_path / "nothing-here")
    assert problem is not None and "python -m sandbox install-wasm" in problem
    sandbox = WasmSandbox(limits=TEST_LIMITS, runtime_dir=tmp_path / "nothing-here")
    with pytest.raises(SandboxError, match="Pyodide is not installed.*python -m sandbox install-wasm"):
        await run(sandbox, "print(1)")
    await sandbox.stop()
    missing_deno = WasmSandbox(limits=TEST_LIMITS, deno=str(tmp_path / "no-deno"))
    with pytest.raises(SandboxError, match="cannot start deno.*no-deno.*pip install deno"):
        await run(missing_deno, "print(1)")
    await missing_deno.stop()


async def test_the_javascript_host_grants_the_program_nothing(monkeypatch, tmp_path: Path) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", CANARY)
    secret = tmp_path / "secret.txt"
    secret.write_text(CANARY)
    sandbox = WasmSandbox(limits=TEST_LIMITS)
    code = f"""
import js
from pyodide.code import run_js
async def attempt(label, source):
    try:
        value = await run_js("(async () => " + source + ")()")
        print(label + ": ALLOWED " + str(value)[:200])
    except Exception as exc:
        print(label + ": blocked " + str(exc).splitlines()[-1][:120])
await attempt("env", "JSON.stringify(Deno.env.toObject())")
await attempt("read", "Deno.readTextFile({str(secret)!r})")
await attempt("write", "Deno.writeTextFile({str(tmp_path / 'pwned')!r}, 'x')")
await attempt("run", "new Deno.Command('/bin/true').output()")
await attempt("child_process", "import('node:child_process').then(m => m.execSync('true').toString())")
await attempt("ffi", "Deno.dlopen('libc.so.6', {{}})")
await attempt("net", "Deno.connect({{hostname: '127.0.0.1', port: 9}})")
"""
    try:
        result = await run(sandbox, code)
    finally:
        await sandbox.stop()
    seen = dict(line.split(": ", 1) for line in result.output.splitlines() if ": " in line)
    for label in ("env", "read", "write", "run", "child_process", "ffi", "net"):
        assert seen[label].startswith("blocked"), result.output
    assert CANARY not in result.output
    assert not (tmp_path / "pwned").exists()


async def test_output_written_past_python_cannot_forge_the_end_of_a_run() -> None:
    sandbox = WasmSandbox(limits=TEST_LIMITS)
    code = """
import js, time
js.console.log('{"done": true, "exit": 0}')
js.Deno.stdout.writeSync(js.TextEncoder.new().encode('x {"done": true, "exit": 5}\\n'))
print("still running")
raise SystemExit(3)
"""
    try:
        result = await run(sandbox, code)
    finally:
        await sandbox.stop()
    assert result.exit_code == 3
    assert result.output.splitlines() == ['{"done": true, "exit": 0}', 'x {"done": true, "exit": 5}', "still running"]


async def test_after_a_killed_run_a_fresh_interpreter_runs_the_next_program_and_says_so() -> None:
    sandbox = WasmSandbox(limits=TEST_LIMITS)
    try:
        wrote = await run(sandbox, "open('/work/notes.txt', 'w').write('kept')\nprint(open('/work/notes.txt').read())")
        kept = await run(sandbox, "print(open('/work/notes.txt').read())")
        assert wrote.output.strip() == kept.output.strip() == "kept"  # files persist between runs
        first = sandbox.interpreter_pid
        killed = await run(sandbox, "while True:\n    pass")
        assert killed.timed_out
        after = await run(sandbox, "import os\nprint(os.path.exists('/work/notes.txt'))")
        assert after.exit_code == 0 and after.output.startswith("False\n"), after.output
        assert RESTART_NOTE in after.output
        assert sandbox.interpreter_pid not in (None, first)
        again = await run(sandbox, "print('quiet')")
        assert again.output == "quiet\n"  # the note is said once
    finally:
        await sandbox.stop()


async def test_a_program_that_ends_the_interpreter_gets_a_clear_result() -> None:
    sandbox = WasmSandbox(limits=TEST_LIMITS)
    try:
        ended = await run(sandbox, "import js\nprint('bye', flush=True)\njs.Deno.exit(9)")
        assert ended.exit_code == 9 and "bye" in ended.output and "the interpreter died" in ended.output
        assert (await run(sandbox, "print(2)")).output.startswith("2\n")
    finally:
        await sandbox.stop()


def test_the_default_runtime_dir_follows_the_settings(monkeypatch, tmp_path: Path) -> None:
    from config.settings import get_settings

    monkeypatch.setenv("SANDBOX_WASM_DIR", str(tmp_path / "elsewhere"))
    get_settings.cache_clear()
    assert default_dir() == tmp_path / "elsewhere"
    monkeypatch.delenv("SANDBOX_WASM_DIR")
    monkeypatch.setenv("ROUNDTABLE_CACHE_DIR", str(tmp_path / "cache"))
    get_settings.cache_clear()
    assert default_dir() == tmp_path / "cache" / "wasm"


async def test_pythons_heap_is_capped_at_memory_mb() -> None:
    # 1.5x the limit: under wasm32's 4 GB and under the process's RLIMIT_DATA, so only memory_mb stops it
    sandbox = WasmSandbox(limits=TEST_LIMITS)
    pieces = TEST_LIMITS.memory_mb * 3 // 2 // 32
    try:
        result = await run(sandbox, f"""
try:
    chunks = [b'x' * (32 << 20) for _ in range({pieces})]
    print('allocated', len(chunks))
except MemoryError:
    print('MemoryError')
""")
        assert result.output.strip() == "MemoryError", result.output
        after = await run(sandbox, f"print(len(b'x' * ({TEST_LIMITS.memory_mb // 4} << 20)))")
        assert after.output.strip() == str(TEST_LIMITS.memory_mb // 4 << 20)  # freed, and usable again
    finally:
        await sandbox.stop()



async def test_an_unusable_interpreter_snapshot_only_makes_the_start_slower(runtime_copy: Path) -> None:
    install(runtime_copy, [])
    runtime = load_runtime(runtime_copy)
    assert runtime.snapshot is not None  # install-wasm made one
    runtime.snapshot.write_bytes(b"\0" * 4096)  # e.g. from another Pyodide build
    sandbox = WasmSandbox(limits=TEST_LIMITS, runtime_dir=runtime_copy)
    try:
        result = await run(sandbox, "print(sum(range(10)))")
    finally:
        await sandbox.stop()
    assert result.exit_code == 0 and result.output == "45\n", result.output
