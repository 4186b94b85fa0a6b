"""The one error path of every tool.

A tool raises `ToolError` (or a subclass) with a message the model can act on. `SafeTool` is the only place
that turns any failure (a ToolError, bad arguments, a time limit, a cancelled run, a bug) into the one line the
model reads, `Error: ...`, and it raises that line as `ToolFailed`, so AutoGen's workbench marks the result
`is_error`: everything downstream reads that flag, never the text.
"""

from __future__ import annotations


class ToolError(Exception):
    """A failure the model should read: the message is one line, without the "Error:" prefix."""


class ToolFailed(Exception):
    """What SafeTool raises to AutoGen for a failed call; `str()` is the line the model reads."""

    def __init__(self, text: str) -> None:
        super().__init__(text)
        self.text = text
