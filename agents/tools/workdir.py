"""Opening a question's attached files by name, and nothing else.

File tools take a name from the model. The name is resolved inside `ToolContext.workdir` (the question's
own folder, where the runner staged its attachments); `..`, absolute paths elsewhere and symlinks that lead
out are refused, as are the benchmark's answer files (metadata*, *.jsonl, *.parquet) whatever folder
they sit in.
"""

from __future__ import annotations

from pathlib import Path

from agents.tools.errors import ToolError
from agents.tools.registry import ToolContext
from agents.tools.sources import is_answer_file_name


class FileRefused(ToolError):
    """One line for the agent."""


def available(workdir: Path, limit: int = 20) -> str:
    try:
        names = sorted(p.name for p in workdir.iterdir() if p.is_file() and not p.name.startswith("."))
    except OSError:
        names = []
    if not names:
        return "this question has no attached files"
    more = f" (+{len(names) - limit} more)" if len(names) > limit else ""
    return "attached files: " + ", ".join(names[:limit]) + more


def resolve_attachment(ctx: ToolContext, name: str) -> Path:
    """The path of attachment `name` inside the question's folder. Raises FileRefused naming the problem."""
    raw = (name or "").strip().strip("\"'`")
    if not raw:
        raise FileRefused(f"give the file's name ({available(ctx.workdir)})")
    workdir = ctx.workdir.resolve()
    given = Path(raw)
    if ".." in given.parts:
        raise FileRefused(f"refused: {raw!r} climbs out of the question's folder; only its attached files can be opened")
    target = given if given.is_absolute() else workdir / given
    try:
        resolved = target.resolve()
    except (OSError, RuntimeError) as exc:  # a symlink loop
        raise FileRefused(f"cannot open {raw!r}: {exc}") from None
    if not resolved.is_relative_to(workdir):
        raise FileRefused(f"refused: {raw!r} is outside the question's folder; {available(ctx.workdir)}")
    if is_answer_file_name(resolved.name) or is_answer_file_name(given.name):
        raise FileRefused(f"refused: {given.name!r} is a benchmark answer file (metadata, jsonl or parquet); it is never read")
    if not resolved.exists():
        raise FileRefused(f"no file named {raw!r} in the question's folder; {available(ctx.workdir)}")
    if not resolved.is_file():
        raise FileRefused(f"{raw!r} is not a regular file; {available(ctx.workdir)}")
    return resolved
