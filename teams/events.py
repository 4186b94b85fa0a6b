"""The event stream of one run, for the terminal, the Chainlit UI and the batch runner.

AutoGen's own stream mixes chunks, tool events and messages without turn boundaries or usage of the
selector; these events are the same run as our UI and CLI think of it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Literal

if TYPE_CHECKING:
    from teams.result import Decision, Result


@dataclass(frozen=True)
class RunStarted:
    run_id: str
    question: str
    team: str
    agents: list[str]
    attachments: list[str] = field(default_factory=list)
    code_unavailable: str | None = None  # why run_python was taken away (no isolated sandbox here)


@dataclass(frozen=True)
class TurnStarted:
    agent: str
    turn: int


@dataclass(frozen=True)
class Token:
    agent: str
    text: str


@dataclass(frozen=True)
class Thought:
    """Text a model wrote alongside its tool calls."""

    agent: str
    text: str


@dataclass(frozen=True)
class ToolCall:
    agent: str
    call_id: str
    name: str
    arguments: str  # JSON text as the model wrote it
    shown_as_code: bool = False  # the call runs a program: a CodeRun event shows it too


@dataclass(frozen=True)
class ToolResult:
    agent: str
    call_id: str
    name: str
    output: str
    is_error: bool  # the tool failed (its output is then one "Error: ..." line)
    shown_as_code: bool = False


@dataclass(frozen=True)
class CodeRun:
    """A run_python call, with the code and what it printed (also reported as ToolCall/ToolResult)."""

    agent: str
    call_id: str
    code: str
    output: str | None  # None while running
    exit_code: int | None
    sandbox: str | None = None  # which backend ran it, e.g. "docker" or "subprocess (NOT isolated)"
    isolated: bool = True
    is_error: bool = False  # the tool call failed before or around the program (no sandbox, time limit)
    tool: str = "code"  # the tool's name, e.g. run_python


@dataclass(frozen=True)
class TurnEnded:
    agent: str
    turn: int
    text: str
    prompt_tokens: int
    completion_tokens: int


Verdict = Literal["proposed", "approved", "rejected"]


@dataclass(frozen=True)
class AnswerProposed:
    agent: str
    answer: str
    verdict: Verdict


@dataclass(frozen=True)
class RunFinished:
    result: Result


# --- strategies (teams/strategies/): attempts side by side, then the decision ---------------------------------
@dataclass(frozen=True)
class AttemptStarted:
    attempt: int  # 1-based
    label: str  # e.g. "solo · openai/gpt-6-luna"
    team: str
    stage: Literal["vote", "first", "escalated"]


@dataclass(frozen=True)
class InAttempt:
    """An event of one attempt's own run (its RunStarted .. RunFinished included)."""

    attempt: int
    event: Event


@dataclass(frozen=True)
class Escalating:
    """The first attempts did not settle the question: the escalation starts, and why."""

    reason: str


@dataclass(frozen=True)
class Decided:
    """The strategy's choice; `decision` is also in the final Result."""

    decision: Decision
    answer: str


Event = (
    RunStarted | TurnStarted | Token | Thought | ToolCall | ToolResult | CodeRun | TurnEnded | AnswerProposed | RunFinished
    | AttemptStarted | InAttempt | Escalating | Decided
)
