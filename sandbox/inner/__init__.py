"""Programs that run INSIDE a sandbox (as `python -I -S -c <source>`), kept as files so they can be read,
linted and tested. They use only the standard library, and must work on any Python 3.8+."""

from __future__ import annotations

from functools import cache
from pathlib import Path


@cache
def source(name: str) -> str:
    return (Path(__file__).parent / f"{name}.py").read_text(encoding="utf-8")
