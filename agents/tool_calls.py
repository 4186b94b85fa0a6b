"""A tool call whose arguments are not a JSON object, answered in words a model can act on, inside its turn.

AutoGen's AssistantAgent parses a call's arguments itself and answers a parse failure with the decoder's
message alone (`Error: Expecting value: line 1 column 1 (char 0)`), which names neither the tool nor what it
takes; a JSON array or string is passed on and fails deeper with a message about dict conversion. A model
that cannot see what to fix tends to send the same call again, round after round of its tool loop (up to
`max_tool_iterations` paid calls) before any between-turn guard reads the turn. So `RoundtableAgent` checks
the arguments first: a blank argument string means `{}` (some servers send "" for a call without
arguments); anything else that is not an object gets an error naming the tool, what was wrong and the
parameters it takes, and the run's `ToolCallCache` counts the same malformed call repeated in a row, ending
a looping turn at the team's `guards.repeated_call_limit` like any other repeat.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Sequence
from typing import Any

from autogen_agentchat.agents import AssistantAgent
from autogen_agentchat.messages import BaseAgentEvent, BaseChatMessage
from autogen_core import CancellationToken, FunctionCall
from autogen_core.models import FunctionExecutionResult
from autogen_core.tools import BaseTool, Workbench

from common.text import one_line


def argument_problem(arguments: str) -> tuple[dict[str, Any] | None, str | None]:
    """(the arguments as an object, None) when usable, else (None, what is wrong with them)."""
    if not arguments.strip():
        return {}, None
    try:
        parsed = json.loads(arguments)
    except json.JSONDecodeError as exc:
        return None, f"they are not valid JSON ({exc.msg} at character {exc.pos})"
    if not isinstance(parsed, dict):
        kind = {list: "an array", str: "a string", bool: "a boolean", type(None): "null"}.get(type(parsed), "a number")
        return None, f"they are {kind}, not a JSON object"
    return parsed, None


def _find_tool(workbenches: Sequence[Workbench], name: str) -> BaseTool[Any, Any] | None:
    for workbench in workbenches:
        # StaticWorkbench keeps its tools here; a workbench of another kind simply gets the generic message
        for tool in getattr(workbench, "_tools", []) or []:
            if isinstance(tool, BaseTool) and tool.name == name:
                return tool
    return None


def _parameters(tool: BaseTool[Any, Any] | None) -> str:
    if tool is None:
        return ""
    params: dict[str, Any] = dict(tool.schema.get("parameters") or {})
    properties = params.get("properties") or {}
    required = set(params.get("required") or [])
    if not properties:
        return "; it takes no arguments: send {}"
    shown = ", ".join(
        f'"{key}" ({(spec or {}).get("type", "any")}{"" if key in required else ", optional"})'
        for key, spec in properties.items()
    )
    return f"; it takes one JSON object with {shown}"


def malformed_message(name: str, problem: str, tool: BaseTool[Any, Any] | None) -> str:
    return (f"Error: the arguments of this {name} call could not be read: {problem}. Nothing was run. "
            f"Call {name} again with its arguments as one JSON object{_parameters(tool)}.")


class RoundtableAgent(AssistantAgent):
    """AutoGen's AssistantAgent, with tool-call arguments checked before AutoGen parses them (see above)."""

    @staticmethod
    async def _execute_tool_call(
        tool_call: FunctionCall,
        workbench: Sequence[Workbench],
        handoff_tools: list[BaseTool[Any, Any]],
        agent_name: str,
        cancellation_token: CancellationToken,
        stream: asyncio.Queue[BaseAgentEvent | BaseChatMessage | None],
    ) -> tuple[FunctionCall, FunctionExecutionResult]:
        parsed, problem = argument_problem(tool_call.arguments or "")
        if problem is None:
            if parsed == {} and tool_call.arguments != "{}":
                tool_call = FunctionCall(id=tool_call.id, name=tool_call.name, arguments="{}")
            return await AssistantAgent._execute_tool_call(
                tool_call, workbench, handoff_tools, agent_name, cancellation_token, stream
            )
        tool = _find_tool(workbench, tool_call.name)
        guard = getattr(tool, "loop_guard", None)
        if guard is not None:
            guard.malformed(tool_call.name, agent_name, tool_call.arguments)
        text = malformed_message(tool_call.name, one_line(problem, 200), tool)
        return tool_call, FunctionExecutionResult(content=text, call_id=tool_call.id, is_error=True, name=tool_call.name)
