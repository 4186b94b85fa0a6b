"""Every tool a team YAML can name. Importing this package registers them all."""

from agents.tools import (  # noqa: F401
    audio,
    calculator,
    chess_board,
    code,
    files,
    images,
    pages,
    video,
    wayback,
    web_search,
    wikipedia,
    youtube,
)
from agents.tools.registry import SafeTool, ToolContext, build_tools, entries, register, tool_names

__all__ = ["SafeTool", "ToolContext", "build_tools", "entries", "register", "tool_names"]
