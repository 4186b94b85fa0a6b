"""The docker CLI for the deploy tests, and the check that the app image is there (CI: fail, locally: skip)."""

from __future__ import annotations

import importlib.metadata as metadata
import os
import shutil
import subprocess
from pathlib import Path

from packaging.markers import default_environment
from packaging.requirements import Requirement

from tests.conftest import skip_or_fail

IMAGE = os.environ.get("ROUNDTABLE_APP_IMAGE", "roundtable:ci")


def docker(*args: str, timeout: float = 60, check: bool = True) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["docker", *args], capture_output=True, text=True, timeout=timeout, check=check)


def require_image() -> None:
    if shutil.which("docker") is None:
        skip_or_fail("the docker CLI is not installed")
    if docker("info", check=False).returncode != 0:
        skip_or_fail("no Docker engine answers (.ci/start-docker.sh)")
    if docker("image", "inspect", IMAGE, check=False).returncode != 0:
        skip_or_fail(f"the app image {IMAGE} is not built (make image, or .ci/app-image.sh)")


def copy_distributions(names: list[str], target: Path) -> list[str]:
    """Copy these installed distributions and what they require (pure Python, from this venv) into
    `target`, with their metadata so pytest finds its plugins there. Returns the names copied."""
    env = default_environment()
    todo, done = list(names), []
    while todo:
        name = todo.pop()
        try:
            dist = metadata.distribution(name)
        except metadata.PackageNotFoundError:
            continue
        key = dist.metadata["Name"].lower().replace("_", "-")
        if key in done:
            continue
        done.append(key)
        for line in dist.requires or []:
            req = Requirement(line)
            if req.marker is None or req.marker.evaluate({**env, "extra": ""}):
                todo.append(req.name)
        for file in dist.files or []:
            if str(file).startswith(".."):  # console scripts in bin/: not needed
                continue
            source = Path(str(dist.locate_file(file)))
            if source.is_file() and "__pycache__" not in file.parts:
                dest = target / file
                dest.parent.mkdir(parents=True, exist_ok=True)
                shutil.copyfile(source, dest)
    for path in [target, *target.rglob("*")]:  # the container's uid 1000 reads them
        path.chmod(0o755 if path.is_dir() else 0o644)
    return done
