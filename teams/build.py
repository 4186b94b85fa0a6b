"""From a validated TeamConfig to a runnable AutoGen team, for one question.

Everything is built per question (clients, tools, sandbox, terminations): AutoGen's TimeoutTermination
counts from construction, and a team that was hard-cancelled must never be reused.
"""

from __future__ import annotations

from collections.abc import AsyncGenerator, Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from autogen_agentchat.base import ChatAgent, Team, TerminationCondition
from autogen_agentchat.conditions import ExternalTermination, TimeoutTermination
from autogen_agentchat.teams import BaseGroupChat, RoundRobinGroupChat, SelectorGroupChat
from autogen_core.models import ChatCompletionClient, CreateResult, LLMMessage, ModelInfo, RequestUsage
from autogen_core.tools import Tool, ToolSchema

from agents.build import build_agent
from agents.context import BoundedContext
from agents.tools.registry import ToolContext
from models.spec import ModelSpec
from teams.schema import TeamConfig
from teams.selection import RuleSelector
from teams.termination import ApprovedAnswerTermination, GuardsTermination

ClientFactory = Callable[[ModelSpec, str], ChatCompletionClient]

DEFAULT_SELECTOR_PROMPT = """You are the selector of a research team's group chat: you pick who speaks next.
Roles:
{roles}

Recent conversation:
{history}

Read the conversation and pick the one role from {participants} that should act next. Reply with the name only."""


@dataclass
class BuiltTeam:
    team: BaseGroupChat
    external: ExternalTermination
    approval: ApprovedAnswerTermination | None
    selector: RuleSelector | None
    clients: dict[str, ChatCompletionClient] = field(default_factory=dict)
    max_turns: int = 0
    # the run's stall guards: `approval` itself when there is an approver, else a guards-only termination
    guards: GuardsTermination | None = None


class _NoSelectorModel(ChatCompletionClient):
    """SelectorGroupChat requires a model even when rules choose every speaker; this one must never be called."""

    _info = ModelInfo(vision=False, function_calling=False, json_output=False, family="unknown", structured_output=False)

    async def create(self, messages: Sequence[LLMMessage], **_: Any) -> CreateResult:
        raise RuntimeError("rule-based selection asked the selector model; this is a bug in teams/selection.py")

    async def create_stream(self, messages: Sequence[LLMMessage], **_: Any) -> AsyncGenerator[str | CreateResult, None]:
        raise RuntimeError("rule-based selection asked the selector model; this is a bug in teams/selection.py")
        yield ""  # pragma: no cover

    async def close(self) -> None:
        return None

    def actual_usage(self) -> RequestUsage:
        return RequestUsage(prompt_tokens=0, completion_tokens=0)

    total_usage = actual_usage

    def count_tokens(self, messages: Sequence[LLMMessage], *, tools: Sequence[Tool | ToolSchema] = []) -> int:
        return 0

    def remaining_tokens(self, messages: Sequence[LLMMessage], *, tools: Sequence[Tool | ToolSchema] = []) -> int:
        return 0

    @property
    def capabilities(self) -> Any:
        return self._info

    @property
    def model_info(self) -> ModelInfo:
        return self._info


def build_team(
    cfg: TeamConfig,
    *,
    client_for: ClientFactory,
    tool_ctx: ToolContext,
    max_turns: int,
    timeout_s: float,
    on_select: Callable[[str], None] | None = None,
    facts_for: Callable[[str], Callable[[], str | None] | None] | None = None,
) -> BuiltTeam:
    clients: dict[str, ChatCompletionClient] = {}
    agents: list[ChatAgent | Team] = []
    for spec in cfg.agents:
        clients[spec.name] = client_for(cfg.model_spec(spec.model), spec.name)
        agents.append(build_agent(cfg, spec, clients[spec.name], tool_ctx, facts_for(spec.name) if facts_for else None))

    external = ExternalTermination()
    termination: TerminationCondition = external | TimeoutTermination(timeout_s)
    approval = None
    guards: GuardsTermination
    if cfg.termination.approver:
        approval = ApprovedAnswerTermination(
            cfg.termination.approver,
            cfg.answer.marker,
            cfg.termination.approval_marker,
            cfg.termination.rejection_marker,
            guards=cfg.guards,
        )
        guards = approval
    else:  # no approver: the consensus and stall guards still end a run that stopped moving
        guards = GuardsTermination(
            cfg.answer.marker, cfg.termination.approval_marker, cfg.termination.rejection_marker, guards=cfg.guards
        )
    termination = guards | termination

    mode: Literal["rules", "llm", "round_robin"] = cfg.selection.mode
    if mode == "round_robin":
        team: BaseGroupChat = RoundRobinGroupChat(agents, termination_condition=termination, max_turns=max_turns)
        return BuiltTeam(team, external, approval, None, clients, max_turns, guards)

    selector = RuleSelector(cfg, fall_through=(mode == "llm"))

    def select(thread: Sequence[Any]) -> str | None:
        choice = selector(thread)
        if choice is not None and on_select is not None:
            on_select(choice)
        return choice

    if mode == "rules":
        team = SelectorGroupChat(
            agents,
            model_client=_NoSelectorModel(),
            selector_func=select,
            allow_repeated_speaker=True,
            termination_condition=termination,
            max_turns=max_turns,
        )
    else:
        clients["selector"] = client_for(cfg.model_spec(cfg.selection.model), "selector")
        team = SelectorGroupChat(
            agents,
            model_client=clients["selector"],
            selector_func=select,
            # Repeats are handled here: AutoGen's own check ignores rule picks (they don't update its state).
            candidate_func=selector.candidates,
            allow_repeated_speaker=True,
            selector_prompt=cfg.selection.prompt or DEFAULT_SELECTOR_PROMPT,
            model_context=BoundedContext(keep_last=8, message_chars=1_500),
            termination_condition=termination,
            max_turns=max_turns,
            emit_team_events=True,
        )
    return BuiltTeam(team, external, approval, selector, clients, max_turns, guards)

