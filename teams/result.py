"""What a run produces: the answer and everything needed to trust, debug and price it."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, fields
from typing import Any, Literal

from models.usage import AgentUsage, total_cost

# consensus: the same answer stated `guards.consensus_after` times with no rejection (not marked approved);
# stalled: `guards.stall_turns` turns without new evidence or a new answer (teams/termination.py).
# Strategies (teams/strategies/): majority: the vote's largest group won outright; adjudicated: the adjudicator
# picked the answer; rejected: the adjudicator rejected every answer; plurality: no majority and no ruling, the
# largest group's answer is kept unapproved; budget: the escalation hit its budget cap.
StopReason = Literal[
    "approved", "consensus", "stalled", "max_turns", "timeout", "cancelled", "error", "no_answer",
    "majority", "adjudicated", "rejected", "plurality", "budget",
]
Strategy = Literal["single", "vote", "escalate"]


@dataclass
class TraceEntry:
    source: str
    kind: str  # TextMessage, ToolCallRequestEvent, ...
    content: str


@dataclass
class Proposal:
    agent: str
    answer: str
    verdict: Literal["proposed", "approved", "rejected"] = "proposed"


@dataclass
class Attempt:
    """One independent attempt of a vote or an escalation, as the records and the UI show it side by side."""

    number: int  # 1-based, in the order of the strategy's attempts
    label: str
    team: str
    stage: Literal["vote", "first", "escalated"]
    answer: str
    raw_answer: str | None
    approved: bool
    stop_reason: str
    duration_s: float
    prompt_tokens: int = 0
    completion_tokens: int = 0
    cost_usd: float | None = None
    models: dict[str, str] = field(default_factory=dict)
    checks: list[str] = field(default_factory=list)
    error: str | None = None
    run_id: str = ""


@dataclass
class VoteGroup:
    """Attempts whose answers the GAIA scorer counts as the same answer (teams/strategies/grouping.py)."""

    answer: str  # the form the group's members wrote most (an approved one first)
    attempts: list[int]  # attempt numbers
    approved: int = 0  # how many of them were approved in their own run


@dataclass
class Decision:
    """How a strategy chose its answer: the groups, the method and the reason, in words."""

    method: Literal["unanimous", "majority", "adjudicated", "rejected", "plurality", "first", "escalated", "none"]
    reason: str
    groups: list[VoteGroup] = field(default_factory=list)
    adjudicator: str | None = None  # what the adjudicator wrote, if it was asked


@dataclass
class Result:
    question: str
    answer: str  # normalised, exact-match ready; "" when the run produced none
    raw_answer: str | None
    approved: bool
    stop_reason: StopReason
    stop_detail: str
    duration_s: float
    usage: dict[str, AgentUsage] = field(default_factory=dict)
    trace: list[TraceEntry] = field(default_factory=list)
    proposals: list[Proposal] = field(default_factory=list)
    team: str = ""
    models: dict[str, str] = field(default_factory=dict)  # agent -> provider/model
    run_id: str = ""
    error: str | None = None
    code_unavailable: str | None = None  # why the team ran without run_python, if it did
    # the program's checks (teams/checks.py): "corrected: <rule>", "not approved: ...", "evidence: ..."
    checks: list[str] = field(default_factory=list)
    strategy: Strategy = "single"
    attempts: list[Attempt] = field(default_factory=list)  # vote and escalate: every attempt, in order
    decision: Decision | None = None

    @property
    def prompt_tokens(self) -> int:
        return sum(u.prompt_tokens for u in self.usage.values())

    @property
    def completion_tokens(self) -> int:
        return sum(u.completion_tokens for u in self.usage.values())

    @property
    def model_calls(self) -> int:
        return sum(u.calls for u in self.usage.values())

    @property
    def cost_usd(self) -> float | None:
        return total_cost(self.usage.values())

    @property
    def provisional(self) -> bool:
        """The answer exists but nobody approved it (consensus, stall, timeout, turn cap, error)."""
        return bool(self.answer) and not self.approved

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["usage"] = {k: v.as_dict() for k, v in self.usage.items()}
        data.update(
            prompt_tokens=self.prompt_tokens,
            completion_tokens=self.completion_tokens,
            model_calls=self.model_calls,
            cost_usd=self.cost_usd,
            provisional=self.provisional,
        )
        return data


def known_fields(cls: Any, data: dict[str, Any]) -> dict[str, Any]:
    """The items of `data` that are fields of dataclass `cls` (a record written by another version may hold more)."""
    names = {f.name for f in fields(cls)}
    return {k: v for k, v in data.items() if k in names}


def result_from_dict(data: dict[str, Any]) -> Result:
    """`teams.result.Result` from its `to_dict()` (as a record stores it)."""
    d = known_fields(Result, data)
    d["usage"] = {k: AgentUsage(**known_fields(AgentUsage, v)) for k, v in (data.get("usage") or {}).items() if isinstance(v, dict)}
    d["trace"] = [TraceEntry(**known_fields(TraceEntry, t)) for t in data.get("trace") or [] if isinstance(t, dict)]
    d["proposals"] = [Proposal(**known_fields(Proposal, p)) for p in data.get("proposals") or [] if isinstance(p, dict)]
    d["attempts"] = [Attempt(**known_fields(Attempt, a)) for a in data.get("attempts") or [] if isinstance(a, dict)]
    decision = data.get("decision")
    if isinstance(decision, dict):
        dd = known_fields(Decision, decision)
        dd["groups"] = [VoteGroup(**known_fields(VoteGroup, g)) for g in decision.get("groups") or [] if isinstance(g, dict)]
        d["decision"] = Decision(**dd)
    d.setdefault("question", "")
    d.setdefault("answer", "")
    d.setdefault("raw_answer", None)
    d.setdefault("approved", False)
    d.setdefault("stop_reason", "error")
    d.setdefault("stop_detail", "")
    d.setdefault("duration_s", 0.0)
    return Result(**d)
