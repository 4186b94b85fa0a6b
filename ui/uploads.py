"""Uploaded files -> a question's attachments, under the names the user gave them.

Chainlit stores an upload as `.files/<session>/<uuid>.<ext>`; the agents (and the sandbox, which copies
attachments by file name) must see `sales.xlsx`, not a uuid. So each message's files are copied into a
fresh folder under their sanitised original names; the folder is deleted after the run.
"""

from __future__ import annotations

import re
import shutil
import tempfile
from collections.abc import Iterable
from pathlib import Path
from typing import Any

_UNSAFE = re.compile(r"[^\w.\- ()+,=@]")


def safe_name(name: str, fallback: str = "attachment") -> str:
    base = Path(name.replace("\\", "/")).name.strip()
    base = _UNSAFE.sub("_", base).lstrip(".")
    return base[:120] or fallback


def stage_uploads(elements: Iterable[Any]) -> tuple[Path | None, list[Path]]:
    """Copy every uploaded element that has a file on disk; returns (folder to delete later, paths)."""
    files = [e for e in elements if getattr(e, "path", None) and Path(e.path).is_file()]
    if not files:
        return None, []
    folder = Path(tempfile.mkdtemp(prefix="roundtable-upload-"))
    paths: list[Path] = []
    taken: set[str] = set()
    for i, element in enumerate(files):
        name = safe_name(getattr(element, "name", "") or "", f"attachment{i + 1}")
        stem, suffix = Path(name).stem, Path(name).suffix
        n = 2
        while name.lower() in taken:
            name = f"{stem} ({n}){suffix}"
            n += 1
        taken.add(name.lower())
        dest = folder / name
        shutil.copyfile(element.path, dest)
        paths.append(dest)
    return folder, paths


def discard(folder: Path | None) -> None:
    if folder is not None:
        shutil.rmtree(folder, ignore_errors=True)
