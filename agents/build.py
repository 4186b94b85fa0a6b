"""Building one agent of a team: its system prompt (role prompt, roster, markers) and its AutoGen agent."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from autogen_agentchat.agents import AssistantAgent
from autogen_core.models import ChatCompletionClient

from agents.context import BoundedContext
from agents.prompts import render_prompt
from agents.roles import describe
from agents.tool_calls import RoundtableAgent
from agents.tools.registry import ToolContext, build_tools

if TYPE_CHECKING:
    from teams.schema import AgentSpec, TeamConfig


def roster(cfg: TeamConfig, exclude: str) -> str:
    return "\n".join(
        f"- {a.name}: {a.description or describe(a.role)}" for a in cfg.agents if a.name != exclude
    ) or "- (none: you work alone)"


def system_prompt(cfg: TeamConfig, spec: AgentSpec) -> str:
    return render_prompt(
        spec.role,
        name=spec.name,
        team=", ".join(cfg.agent_names),
        roster=roster(cfg, spec.name),
        tools=spec.tools,
        marker=cfg.answer.marker,
        handoff=cfg.selection.handoff_marker,
        approval=cfg.termination.approval_marker or "",
        rejection=cfg.termination.rejection_marker,
        override=spec.prompt,
        instructions=spec.instructions,
    )


def build_agent(
    cfg: TeamConfig,
    spec: AgentSpec,
    client: ChatCompletionClient,
    tool_ctx: ToolContext,
    facts: Callable[[], str | None] | None = None,
) -> AssistantAgent:
    tools = build_tools(spec.tools, tool_ctx, agent=spec.name)
    return RoundtableAgent(
        spec.name,
        model_client=client,
        tools=tools or None,  # type: ignore[arg-type]
        model_context=BoundedContext(
            keep_last=spec.context.keep_last,
            old_tool_result_chars=spec.context.old_tool_result_chars,
            message_chars=spec.context.message_chars,
            facts=facts,
        ),
        description=spec.description or describe(spec.role),
        system_message=system_prompt(cfg, spec),
        model_client_stream=spec.stream,
        # Only the agent's own summary reaches the others; raw tool output stays in its own context.
        reflect_on_tool_use=bool(tools),
        max_tool_iterations=spec.max_tool_iterations,
    )
