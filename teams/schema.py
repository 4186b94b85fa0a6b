"""The team YAML schema (documented in README "Team configs"). Structure is checked by pydantic here;
references between parts (agent names, model profiles, tool names) are checked in teams/loader.py so each
error can name its exact key path."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from agents.roles import ROLES, Role, default_tools
from models.spec import ModelSpec, Tier

ROLE_NAMES = frozenset(ROLES)
AGENT_NAME_PATTERN = r"^[A-Za-z][A-Za-z0-9_]{0,39}$"  # AutoGen requires Python identifiers as agent names


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class ContextSpec(Strict):
    """What an agent's model sees of the shared history on each call."""

    keep_last: int = Field(12, ge=2, description="messages kept after the question (older ones are dropped)")
    old_tool_result_chars: int = Field(1_500, ge=100, description="older tool results are cut to this size")
    message_chars: int = Field(6_000, ge=200, description="any single message is cut to this size")


class AgentSpec(Strict):
    name: str = Field(pattern=AGENT_NAME_PATTERN)
    role: Role
    description: str | None = Field(None, description="one line used by an LLM speaker selector")
    instructions: str | None = Field(None, description="extra text appended to the role's prompt")
    prompt: str | None = Field(None, description="replaces the role's built-in prompt entirely")
    model: str | ModelSpec = Field("default", description="a profile name from `models:` or an inline spec")
    tools: list[str] = Field(default_factory=list, description="tool names; left out: the role's default tools")
    stream: bool = True
    max_tool_iterations: int = Field(6, ge=1, le=30)
    context: ContextSpec = Field(default_factory=ContextSpec)

    @model_validator(mode="before")
    @classmethod
    def _role_default_tools(cls, data: Any) -> Any:
        if isinstance(data, dict) and "tools" not in data and data.get("role") in ROLE_NAMES:
            return {**data, "tools": default_tools(data["role"])}
        return data


class SelectionSpec(Strict):
    """Who speaks next.

    - `rules`: deterministic and free. The first speaker opens; any message that proposes a final answer
      goes to the reviewer; a message with `NEXT: <agent>` hands over; otherwise `default_next`.
    - `llm`: the same rules where they apply, an LLM picks from the others otherwise.
    - `round_robin`: agents in order (the only choice for a one-agent team).
    """

    mode: Literal["rules", "llm", "round_robin"] = "rules"
    first: str | None = None
    reviewer: str | None = None
    handoff_marker: str = "NEXT:"
    default_next: dict[str, str] = Field(default_factory=dict)
    prompt: str | None = Field(None, description="LLM selector prompt with {roles}, {participants}, {history}")
    model: str | ModelSpec = "default"


class TerminationSpec(Strict):
    approver: str | None = Field(None, description="the agent whose approved final answer ends the run")
    approval_marker: str | None = Field("APPROVED", description="text the approver must write; null = any answer")
    rejection_marker: str = "REJECTED"
    max_turns: int = Field(16, ge=1, le=200)
    timeout_seconds: float = Field(600, gt=0)


class GuardsSpec(Strict):
    """Stall guards: stop paying for a debate that has stopped moving (README "Stall guards").

    - `repeated_tool_calls: cache`: a tool call identical to an earlier one of the run (same tool, same
      arguments) returns the earlier result with a note instead of running again (`run`: always run).
      Programs (run_python) always run: one may read what an earlier one wrote.
    - `repeated_call_limit` (with `cache`): an agent that gets this many repeated results in a row, with no
      call of its own that ran in between, is looping inside its turn; the run ends at once, stop reason
      `stalled`, with the best answer so far. Also (cache or not): the same call failing this many times
      plus one in the run (a malformed call fails every time) ends it, `stalled`. null: off.
    - `consensus_after`: the same answer stated this many times (by any agent, the approver's restatements
      included) with no rejection since ends the run with it, stop reason `consensus`. null: off.
    - `stall_turns`: this many agent turns in a row without new evidence (a tool result or program output
      not seen before in the run; a failed call's error is none) or a new proposed answer end the run with
      the best answer so far, stop reason `stalled`. An empty turn counts twice (its empty replies were
      already retried by the client). null: off.
    """

    repeated_tool_calls: Literal["cache", "run"] = "cache"
    repeated_call_limit: int | None = Field(3, ge=2, le=50)
    consensus_after: int | None = Field(3, ge=2, le=50)
    stall_turns: int | None = Field(4, ge=2, le=200)


class AnswerSpec(Strict):
    marker: str = "FINAL ANSWER:"
    normalise: bool = True
    on_stop: Literal["best_proposed", "none"] = Field(
        "best_proposed", description="what a timed-out or turn-capped run returns"
    )


class SandboxSpec(Strict):
    backend: str = Field("auto", description="auto or a backend registered in sandbox/__init__.py")
    allow_subprocess: bool = False
    timeout_seconds: float = Field(60, gt=0, le=3600)
    memory_mb: int = Field(1024, ge=64, le=65536)

    @field_validator("backend")
    @classmethod
    def _known_backend(cls, value: str) -> str:
        from sandbox import check_backend

        return check_backend(value)


class AttemptSpec(Strict):
    """One independent attempt of a `vote` or `escalate` strategy: a team, with what differs in this attempt."""

    team: str | TeamConfig | None = Field(
        None, description="a team name in teams/ or a path, or an inline team; left out: this file's own agents"
    )
    repeat: int = Field(1, ge=1, le=9, description="this many identical attempts (they differ only by chance)")
    label: str | None = Field(
        None, description="what makes this attempt different, shown after its team and provider (`solo · openai · "
        "second source`); left out: its tier, temperature and instructions"
    )
    provider: str | list[str] | None = Field(
        None, description="every model of the attempt on this provider; a list: the first one configured, else auto"
    )
    tier: Tier | None = Field(None, description="every model of the attempt on this tier")
    temperature: float | None = Field(None, ge=0, le=2, description="every model of the attempt at this temperature")
    models: dict[str, ModelSpec] = Field(default_factory=dict, description="model profiles of the team replaced")
    instructions: str | None = Field(None, description="appended to every agent's instructions in this attempt")

    @field_validator("provider")
    @classmethod
    def _known_providers(cls, value: str | list[str] | None) -> str | list[str] | None:
        from models.spec import check_provider

        if isinstance(value, list):
            if not value:
                raise ValueError("an empty provider list; name at least one provider or leave `provider` out")
            return [check_provider(v) for v in value]
        return value if value is None else check_provider(value)


class AdjudicatorSpec(Strict):
    """Decides a vote the attempts leave open: it sees each answer with its evidence and picks one or rejects all."""

    model: str | ModelSpec | None = Field(
        None, description="a profile name from this file's `models:` or an inline spec; left out: `strong` if defined, "
        "else `default`"
    )
    instructions: str | None = Field(None, description="extra text appended to the adjudicator's prompt")


EscalateWhen = Literal["disagree", "not_approved", "form", "no_evidence", "no_answer"]
ESCALATE_WHEN: tuple[EscalateWhen, ...] = ("disagree", "not_approved", "form", "no_evidence", "no_answer")


class StrategySpec(Strict):
    """How a question is attempted (README "Strategies").

    - `single`: the team of this file runs once (the default).
    - `vote`: `attempts` run concurrently and independently; answers are grouped by GAIA-scorer equivalence
      and the largest group wins when it holds more than `min_agreement` of the attempts that answered. A tie,
      or less agreement, goes to the `adjudicator` (null: the largest group, ties to the approved, then the
      earlier attempt).
    - `escalate`: `attempts` first (cheap: one or more solo attempts); when `escalate_when` holds for them,
      `escalate_to` runs (the full debate on strong models), while the spend stays within the budget.
    """

    kind: Literal["single", "vote", "escalate"] = "single"
    attempts: list[AttemptSpec] = Field(default_factory=list)
    min_agreement: float = Field(0.5, ge=0, lt=1, description="vote: the winner's share must be above this")
    adjudicator: AdjudicatorSpec | None = Field(default_factory=AdjudicatorSpec)
    escalate_to: AttemptSpec | None = None
    escalate_when: list[EscalateWhen] = Field(default_factory=lambda: list(ESCALATE_WHEN))
    budget_tokens: int | None = Field(None, gt=0, description="escalate: the escalation stops at this many tokens in all")
    budget_usd: float | None = Field(None, gt=0, description="escalate: the escalation stops at this spend in all")


class TeamConfig(Strict):
    name: str
    description: str = ""
    models: dict[str, ModelSpec] = Field(default_factory=lambda: {"default": ModelSpec()})
    # Required for `strategy: single`; a strategy whose attempts all name their team needs none (teams/loader.py).
    agents: list[AgentSpec] = Field(default_factory=list)
    strategy: StrategySpec = Field(default_factory=StrategySpec)
    selection: SelectionSpec = Field(default_factory=SelectionSpec)
    termination: TerminationSpec = Field(default_factory=TerminationSpec)
    answer: AnswerSpec = Field(default_factory=AnswerSpec)
    guards: GuardsSpec = Field(default_factory=GuardsSpec)
    sandbox: SandboxSpec = Field(default_factory=SandboxSpec)

    def agent(self, name: str) -> AgentSpec:
        return next(a for a in self.agents if a.name == name)

    @property
    def agent_names(self) -> list[str]:
        return [a.name for a in self.agents]

    def model_spec(self, ref: str | ModelSpec) -> ModelSpec:
        return ref if isinstance(ref, ModelSpec) else self.models[ref]

    def adjudicator_model(self) -> ModelSpec:
        adj = self.strategy.adjudicator
        ref = adj.model if adj is not None and adj.model is not None else None
        if ref is None:
            ref = "strong" if "strong" in self.models else "default"
            return self.models.get(ref) or ModelSpec(tier="strong")
        return self.model_spec(ref)


def agent_models(cfg: TeamConfig) -> list[tuple[str, ModelSpec]]:
    """(agent, model profile) for every agent of `cfg` and an LLM selector, as the team will build them."""
    refs = [(a.name, a.model) for a in cfg.agents]
    if cfg.selection.mode == "llm":
        refs.append(("selector", cfg.selection.model))
    return [(agent, cfg.model_spec(ref)) for agent, ref in refs]


AttemptSpec.model_rebuild()
StrategySpec.model_rebuild()
