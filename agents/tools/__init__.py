"""Every tool a team YAML can name. Importing this package registers them all."""

from agents.tools import calculator, code  # noqa: F401
from agents.tools.registry import SafeTool, ToolContext, build_tools, entries, register, tool_names

__all__ = ["SafeTool", "ToolContext", "build_tools", "entries", "register", "tool_names"]
