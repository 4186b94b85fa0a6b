"""Uploaded files -> a question's attachments, under the names the user gave them.

Chainlit stores an upload as `.files/<session>/<uuid>.<ext>`; the agents (and the sandbox, which copies
attachments by file name) must see `sales.xlsx`, not a uuid. So each message's files are copied into a
fresh folder under their sanitised original names; the folder is deleted after the run. The page shows the
names as the user gave them (`Staged.given`), the agents get the safe ones.
"""

from __future__ import annotations

import re
import shutil
import tempfile
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

_UNSAFE = re.compile(r"[^\w.\- ()+,=@]")


def safe_name(name: str, fallback: str = "attachment") -> str:
    base = Path(name.replace("\\", "/")).name.strip()
    base = _UNSAFE.sub("_", base).lstrip(".")
    return base[:120] or fallback


@dataclass
class Staged:
    """A message's files: the folder to delete after the run, the copies the agents get, and what to show."""

    folder: Path | None = None
    paths: list[Path] = field(default_factory=list)
    given: dict[str, str] = field(default_factory=dict)  # staged file name -> the name the user gave
    unreadable: list[str] = field(default_factory=list)  # given names of files that are gone or unreadable

    def renamed(self) -> dict[str, str]:
        """given name -> staged name, for the files whose name had to change."""
        return {given: staged for staged, given in self.given.items() if given != staged}


def stage_uploads(elements: Iterable[Any]) -> Staged:
    """Copy every uploaded element into a fresh folder under its sanitised name. An element whose file is
    missing or unreadable is listed in `unreadable`, never silently left out."""
    staged = Staged()
    taken: set[str] = set()
    for i, element in enumerate(elements):
        given = str(getattr(element, "name", "") or "") or f"attachment{i + 1}"
        source = getattr(element, "path", None)
        if not source or not Path(source).is_file():
            staged.unreadable.append(given)
            continue
        name = safe_name(given, f"attachment{i + 1}")
        stem, suffix = Path(name).stem, Path(name).suffix
        n = 2
        while name.lower() in taken:
            name = f"{stem} ({n}){suffix}"
            n += 1
        if staged.folder is None:
            staged.folder = Path(tempfile.mkdtemp(prefix="roundtable-upload-"))
        dest = staged.folder / name
        try:
            shutil.copyfile(source, dest)
        except OSError:
            staged.unreadable.append(given)
            continue
        taken.add(name.lower())
        staged.paths.append(dest)
        staged.given[name] = given
    return staged


def discard(folder: Path | None) -> None:
    if folder is not None:
        shutil.rmtree(folder, ignore_errors=True)
