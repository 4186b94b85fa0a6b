"""Where the wasm backend's runtime lives and how to install it: Deno (a PyPI wheel) and Pyodide.

    python -m sandbox install-wasm [--packages openpyxl ...] [--pyodide-index URL] [--dir DIR]

The layout of SANDBOX_WASM_DIR (default: ROUNDTABLE_CACHE_DIR/wasm):
    pyodide-<version>/   the npm package `pyodide` (interpreter + standard library), verified by its pinned
                         sha512, plus any package of Pyodide's own index (numpy, pandas: compiled to wasm,
                         not on PyPI) fetched with --pyodide-index and verified by the sha256 in its lock file
    wheels/              pure-Python wheels from PyPI (py3-none-any only), dependencies included
    manifest.json        what was installed; the backend reads it and nothing else
Everything is fetched at install time; a run never downloads anything (Deno runs with --no-remote --no-npm
and no network permission).
"""

from __future__ import annotations

import base64
import hashlib
import io
import json
import os
import re
import shutil
import subprocess
import sys
import tarfile
import tempfile
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Any

PYODIDE_VERSION = "314.0.8"
# `dist.integrity` of pyodide@314.0.8 in the npm registry: the tarball is refused unless it matches.
PYODIDE_INTEGRITY = "sha512-74Wq1kXOC+CCEzAfxuRAO701nAcCMLjf8NrwvWpu8S41dVMXwXmLQ05dYB+F4e46AdnGo0oq7YHSVUpHsoarLQ=="
PYODIDE_PYTHON = "3.14"
DEFAULT_PACKAGES = ("openpyxl",)
NPM_REGISTRY = "https://registry.npmjs.org/"
MANIFEST = "manifest.json"
RUNNER = Path(__file__).with_name("wasm_runner.mjs")
INSTALL_HINT = "python -m sandbox install-wasm"


class WasmInstallError(RuntimeError):
    pass


@dataclass(frozen=True)
class Runtime:
    root: Path
    pyodide_dir: Path
    wheels: tuple[Path, ...]
    lock_packages: tuple[str, ...]  # packages of Pyodide's index present in pyodide_dir, loaded on import
    snapshot: Path | None = None  # a memory image of a started interpreter (install-wasm makes it)

    @property
    def read_dirs(self) -> tuple[Path, ...]:
        return (self.pyodide_dir, self.root / "wheels")


def default_dir() -> Path:
    from config.settings import get_settings

    settings = get_settings()
    return Path(settings.sandbox_wasm_dir or settings.cache_dir / "wasm")


def find_deno() -> str | None:
    """The deno binary: the `deno` PyPI package's, else one on PATH."""
    try:
        from deno import find_deno_bin

        path = find_deno_bin()
        if path and os.access(path, os.X_OK):
            return str(path)
    except (ImportError, FileNotFoundError, RuntimeError):
        pass
    return shutil.which("deno")


def load_runtime(root: Path | None = None) -> Runtime:
    """The installed runtime, or WasmInstallError saying what is missing and which command installs it."""
    root = Path(root or default_dir())
    manifest_path = root / MANIFEST
    if not manifest_path.is_file():
        raise WasmInstallError(f"Pyodide is not installed in {root} (run `{INSTALL_HINT}`)")
    try:
        manifest = json.loads(manifest_path.read_text())
    except (OSError, ValueError) as exc:
        raise WasmInstallError(f"{manifest_path} is unreadable ({exc}); run `{INSTALL_HINT}` again") from exc
    if manifest.get("pyodide") != PYODIDE_VERSION:
        raise WasmInstallError(f"{root} holds Pyodide {manifest.get('pyodide')}, this app needs {PYODIDE_VERSION} "
                               f"(run `{INSTALL_HINT}`)")
    pyodide_dir = root / f"pyodide-{PYODIDE_VERSION}"
    wheels = tuple(root / "wheels" / name for name in manifest.get("wheels", []))
    missing = [p for p in (pyodide_dir / "pyodide.mjs", pyodide_dir / "pyodide.asm.wasm", *wheels) if not p.is_file()]
    if missing:
        raise WasmInstallError(f"the wasm runtime in {root} is incomplete ({missing[0]} is missing); run `{INSTALL_HINT}`")
    snapshot = pyodide_dir / manifest["snapshot"] if manifest.get("snapshot") else None
    return Runtime(root=root, pyodide_dir=pyodide_dir, wheels=wheels,
                   lock_packages=tuple(manifest.get("lock_packages", [])),
                   snapshot=snapshot if snapshot is not None and snapshot.is_file() else None)


SNAPSHOT = "interpreter.snapshot"


def make_snapshot(pyodide_dir: Path) -> Path | None:
    """A memory image of a freshly started interpreter: Pyodide then starts in ~0.4 s instead of ~3 s.
    Optional: when it cannot be made (or later does not load), the interpreter starts the slow way."""
    deno = find_deno()
    if deno is None:
        return None
    target = pyodide_dir / SNAPSHOT
    tmp = pyodide_dir / (SNAPSHOT + ".tmp")
    command = [deno, "run", "--no-prompt", "--no-remote", "--no-npm", "--no-config", "--no-lock", "--quiet",
               f"--allow-read={pyodide_dir}", f"--allow-write={tmp}", str(RUNNER)]
    setup = {"token": "install", "pyodide_module": (pyodide_dir / "pyodide.mjs").as_uri(),
             "index_url": str(pyodide_dir) + "/", "memory_mb": 4096, "output_bytes": 64000,
             "make_snapshot": str(tmp)}
    with tempfile.TemporaryDirectory(prefix="deno-") as home:
        try:
            done = subprocess.run(command, input=json.dumps(setup) + "\n", capture_output=True, text=True,
                                  timeout=300, check=False,
                                  env={"HOME": home, "DENO_DIR": home, "PATH": "/usr/bin:/bin", "NO_COLOR": "1"})
        except (OSError, subprocess.TimeoutExpired) as exc:
            print(f"warning: no interpreter snapshot ({exc}); the wasm sandbox starts slower", file=sys.stderr)
            return None
    if done.returncode != 0 or not tmp.is_file():
        print(f"warning: no interpreter snapshot ({(done.stderr or done.stdout).strip()[-300:]}); "
              "the wasm sandbox starts slower", file=sys.stderr)
        tmp.unlink(missing_ok=True)
        return None
    tmp.chmod(0o644)
    tmp.replace(target)
    return target


# --- installing ------------------------------------------------------------------------------------------
def _fetch(url: str, timeout: float = 120) -> bytes:
    request = urllib.request.Request(url, headers={"User-Agent": "roundtable-install-wasm"})
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:  # noqa: S310 (https or a local index)
            return response.read()
    except OSError as exc:
        raise WasmInstallError(f"cannot download {url}: {exc}") from exc


def _npm_registry() -> str:
    # npm's own setting, as `npm config` would read it from the environment; no npm needed.
    return (os.environ.get("NPM_CONFIG_REGISTRY") or os.environ.get("npm_config_registry") or NPM_REGISTRY).rstrip("/") + "/"


def _check_integrity(data: bytes, integrity: str, what: str) -> None:
    algorithm, _, expected = integrity.partition("-")
    digest = base64.b64encode(hashlib.new(algorithm, data).digest()).decode()
    if digest != expected:
        raise WasmInstallError(f"{what}: integrity check failed (expected {integrity}, got {algorithm}-{digest})")


def install_pyodide(root: Path, tarball: bytes | None = None) -> Path:
    """Download (unless given) the pinned pyodide npm tarball, verify it and unpack it into root."""
    target = root / f"pyodide-{PYODIDE_VERSION}"
    if (target / "pyodide.asm.wasm").is_file() and (target / ".verified").is_file():
        return target
    url = f"{_npm_registry()}pyodide/-/pyodide-{PYODIDE_VERSION}.tgz"
    data = tarball if tarball is not None else _fetch(url)
    _check_integrity(data, PYODIDE_INTEGRITY, url)
    staging = Path(tempfile.mkdtemp(prefix=".pyodide-", dir=root))
    try:
        with tarfile.open(fileobj=io.BytesIO(data), mode="r:gz") as tar:
            # Debian bookworm's Python 3.11.2 (the app image) predates extraction filters; the tarball
            # passed its pinned integrity check above.
            tar.extractall(staging, **({"filter": "data"} if hasattr(tarfile, "data_filter") else {}))  # type: ignore[arg-type]
        if target.exists():
            shutil.rmtree(target)
        (staging / "package").rename(target)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    for path in target.iterdir():
        path.chmod(0o644)
    (target / ".verified").write_text(PYODIDE_INTEGRITY + "\n")
    return target


def read_lock(pyodide_dir: Path) -> dict[str, Any]:
    return json.loads((pyodide_dir / "pyodide-lock.json").read_text())["packages"]


def _normal(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def lock_closure(names: list[str], lock: dict[str, Any]) -> list[str]:
    """`names` and every package they depend on, by the lock file's names."""
    by_normal = {_normal(k): k for k in lock}
    seen: list[str] = []
    stack = [by_normal[_normal(n)] for n in names]
    while stack:
        name = stack.pop()
        if name in seen:
            continue
        seen.append(name)
        stack.extend(by_normal[_normal(d)] for d in lock[name].get("depends", []) if _normal(d) in by_normal)
    return seen


def install_lock_packages(names: list[str], index_url: str, pyodide_dir: Path, lock: dict[str, Any]) -> list[str]:
    """Fetch packages of Pyodide's index (with their dependencies) into pyodide_dir, each checked against
    the sha256 the lock file gives; loadPackage then finds them next to the interpreter."""
    index_url = index_url.rstrip("/") + "/"
    installed = []
    for name in lock_closure(names, lock):
        info = lock[name]
        target = pyodide_dir / info["file_name"]
        if not target.is_file() or hashlib.sha256(target.read_bytes()).hexdigest() != info["sha256"]:
            data = _fetch(index_url + info["file_name"])
            digest = hashlib.sha256(data).hexdigest()
            if digest != info["sha256"]:
                raise WasmInstallError(f"{info['file_name']} from {index_url}: sha256 {digest} does not match "
                                       f"the lock file's {info['sha256']}")
            target.write_bytes(data)
        installed.append(name)
    return installed


def install_wheels(names: list[str], wheels_dir: Path, pip_args: list[str] | None = None) -> list[str]:
    """Download pure-Python wheels (and their dependencies) for Pyodide's Python from PyPI with pip."""
    wheels_dir.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="wheels-", dir=wheels_dir.parent) as tmp:
        command = [sys.executable, "-m", "pip", "download", "--quiet", "--disable-pip-version-check",
                   "--only-binary", ":all:", "--platform", "any", "--implementation", "py",
                   "--python-version", PYODIDE_PYTHON, "--dest", tmp, *(pip_args or []), *names]
        done = subprocess.run(command, capture_output=True, text=True, check=False)
        if done.returncode != 0:
            raise WasmInstallError(
                f"pip could not download pure-Python wheels for {', '.join(names)} (a package with compiled code "
                f"must come from Pyodide's index: --pyodide-index URL): {done.stderr.strip()[-800:]}")
        found = sorted(Path(tmp).glob("*.whl"))
        impure = [w.name for w in found if not w.name.endswith("-none-any.whl")]
        if impure:
            raise WasmInstallError(f"not pure-Python wheels, which Pyodide cannot load: {', '.join(impure)}")
        for wheel in found:
            shutil.move(str(wheel), wheels_dir / wheel.name)
        return [w.name for w in found]


def install(root: Path, packages: list[str], *, pyodide_index: str | None = None,
            pip_args: list[str] | None = None, tarball: bytes | None = None) -> dict[str, Any]:
    """Install everything the wasm backend needs into root and write its manifest."""
    root.mkdir(parents=True, exist_ok=True)
    pyodide_dir = install_pyodide(root, tarball)
    lock = read_lock(pyodide_dir)
    lock_names = {_normal(k) for k in lock}
    from_index = [p for p in packages if _normal(p) in lock_names]
    from_pypi = [p for p in packages if _normal(p) not in lock_names]
    previous = {}
    if (root / MANIFEST).is_file():
        try:
            previous = json.loads((root / MANIFEST).read_text())
        except ValueError:
            previous = {}
    lock_installed: list[str] = []
    if from_index:
        if pyodide_index is None:
            raise WasmInstallError(
                f"{', '.join(from_index)} come{'s' if len(from_index) == 1 else ''} from Pyodide's package index "
                f"(compiled for wasm, not on PyPI): pass --pyodide-index URL, e.g. "
                f"https://cdn.jsdelivr.net/pyodide/v{PYODIDE_VERSION}/full/")
        lock_installed = install_lock_packages(from_index, pyodide_index, pyodide_dir, lock)
    wheels = install_wheels(from_pypi, root / "wheels", pip_args) if from_pypi else []
    snapshot = make_snapshot(pyodide_dir)
    def project(wheel: str) -> str:
        return _normal(wheel.split("-")[0])

    fresh = {project(w) for w in wheels}  # a new version replaces the one installed before
    kept = [w for w in previous.get("wheels", []) if project(w) not in fresh]
    manifest: dict[str, Any] = {
        "pyodide": PYODIDE_VERSION,
        "snapshot": snapshot.name if snapshot else None,
        "lock_packages": sorted(set(previous.get("lock_packages") or []) | set(lock_installed)),
        "wheels": sorted(set(kept) | set(wheels)),
    }
    manifest["wheels"] = [w for w in manifest["wheels"] if (root / "wheels" / w).is_file()]
    tmp = root / (MANIFEST + ".tmp")
    tmp.write_text(json.dumps(manifest, indent=2) + "\n")
    tmp.replace(root / MANIFEST)
    return manifest
