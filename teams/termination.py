"""Ending a run on an approved answer, on a consensus or on a stall, and telling apart why a run ended.

How a review is read (`review_verdict`), so that real models' wording does not flip a verdict:
- **Rejection**: a line that opens with the rejection marker (markdown, `>`/`-` and a `Verdict:`-style label
  allowed: `**REJECTED**: ...`, `Verdict: rejected`), or the approval marker negated (`not approved`,
  `NOT APPROVED`, `can't be approved`, `not yet approved`). Rejection wins over anything else in the message.
- **Approval**: the approval marker as a word (any case, any markdown: `APPROVED`, `**Approved.**`,
  `Approved:`), never negated anywhere in the message, plus a final answer. `disapproved`/`unapproved` are
  not the marker. With `approval_marker: null` any final answer of the approver that is not a rejection.
- **A restatement without the marker** (the approver writes `FINAL ANSWER: x`, agrees in prose, but never
  writes the marker) is *not* an approval: the marker stays required. It counts as one more statement of
  `x`, and the consensus guard ends the run once the same answer has been stated `guards.consensus_after`
  times (3 by default: e.g. proposed, restated by the critic, proposed again) with no rejection since; the
  run then stops with reason `consensus` and answers `x`, not marked approved.
- **Reasoning is not read**: text inside `<think>...</think>` or `<thinking>...</thinking>` (an unclosed
  opening tag: the rest of the message; a closing tag with no opening one: all before it) is never read as
  an answer, an approval or a rejection (`teams/answer.py` `visible_text`, applied by `find_answers` and
  `without_answers`, which every reading here goes through).
- **Form checks** (`teams/checks.py`, when the question is known: `question=` or the run's task message): an
  approval of an answer that breaks the question's explicit form instructions in a way a program cannot
  correct (words where a number is asked, a full name where the first name is asked, ...) is read as a
  rejection, and such an answer never counts towards a consensus. A cosmetic violation (decimal places,
  order, list spacing) does not block: the final answer is corrected (`teams/transcript.py`).

The guards (`guards:` in the team YAML, `RunGuards`) watch every agent turn:
- consensus: as above;
- stall: `guards.stall_turns` turns in a row without new evidence (a tool result or program output whose
  text was not seen before in the run; a repeated call's cached result is not new, a failed call's error is
  no evidence) and without a new proposed answer end the run with the best answer so far, reason `stalled`.
  An empty turn (nothing visible outside reasoning blocks, no tool call) counts as two: the client has
  already retried an empty reply;
- a failing call repeated: the same tool call (same tool, same arguments, malformed JSON compared as
  written) failing `guards.repeated_call_limit` + 1 times in the run (the first failure and that many
  repeats; a bad argument fails the same way every time) ends the run with the best answer, reason
  `stalled`, unless that turn brought new evidence or a new answer (the agent fixed its call). Failed calls are never cached (they may succeed later), so the cache's own loop limit does not
  see them; this guard reads the turn when it ends.

A team without an approver gets the same guards (`GuardsTermination`): there, any agent's rejection resets the
consensus count.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Sequence
from typing import Literal

from autogen_agentchat.base import TerminationCondition
from autogen_agentchat.messages import (
    BaseAgentEvent,
    BaseChatMessage,
    StopMessage,
    ToolCallExecutionEvent,
    ToolCallRequestEvent,
)
from pydantic import BaseModel

from agents.tools.registry import strip_repeat_note
from teams.answer import find_answers, normalise_answer, visible_text
from teams.checks import Violation, blocking
from teams.schema import GuardsSpec

APPROVED_REASON = "answer approved"
CONSENSUS_REASON = "consensus"  # a StopMessage "consensus: <detail>" ends the run as stop reason "consensus"
STALLED_REASON = "stalled"

Verdict = Literal["approved", "rejected"]

_NEGATIONS = frozenset(  # within three words before the marker; "no" only right before it
    "not never cannot cant nor without isnt wasnt arent werent dont doesnt didnt wont shouldnt couldnt "
    "wouldnt hasnt havent hadnt".split()
)
_LINE_LEAD = r"^[\s>*_#`~\-–•]*(?:(?:verdict|decision|review|status|result)[*_\s]*[:：\-–][\s*_`]*)?"


def _words_pattern(marker: str) -> str:
    return r"\s+".join(re.escape(w) for w in marker.strip().rstrip(":：").split())


def _marker_uses(text: str, marker: str) -> tuple[int, int]:
    """(plain uses, negated uses) of `marker` as a word in `text`: `not approved` is a negated use."""
    plain = negated = 0
    pattern = re.compile(r"(?<![A-Za-z0-9])" + _words_pattern(marker) + r"(?![A-Za-z0-9])", re.IGNORECASE)
    for match in pattern.finditer(text):
        # the clause before the marker: "No issues found. APPROVED" is not negated, "not yet approved" is
        clause = re.split(r"[.!?;:,\n]", text[: match.start()])[-1]
        words = [w.replace("'", "").replace("’", "").lower() for w in re.findall(r"[A-Za-z'’]+", clause)[-3:]]
        if any(w in _NEGATIONS for w in words) or words[-1:] == ["no"]:
            negated += 1
        else:
            plain += 1
    return plain, negated


def opens_a_line_with(text: str, marker: str) -> bool:
    pattern = re.compile(_LINE_LEAD + _words_pattern(marker) + r"(?![A-Za-z0-9])", re.IGNORECASE | re.MULTILINE)
    return pattern.search(text) is not None


def is_rejection(text: str, rejection_marker: str, approval_marker: str | None = None) -> bool:
    """A line opening with the rejection marker, or the approval marker negated (`not approved`)."""
    if opens_a_line_with(text, rejection_marker):
        return True
    return bool(approval_marker) and _marker_uses(text, approval_marker or "")[1] > 0


def without_answers(text: str, answer_marker: str) -> str:
    """`text` with its reasoning blocks dropped and what follows each answer marker on its line cut: an answer
    may contain "not approved", a draft in `<think>` may say anything."""
    text = visible_text(text)
    pattern = re.compile(r"(?:\*\*|__)?" + _words_pattern(answer_marker) + r".*$", re.IGNORECASE | re.MULTILINE)
    return pattern.sub("", text)


def review_verdict(
    text: str, *, answer_marker: str, approval_marker: str | None, rejection_marker: str
) -> Verdict | None:
    """What a message of the approver says about the pending answer (module docstring: the rules)."""
    review = without_answers(text, answer_marker)
    if is_rejection(review, rejection_marker, approval_marker):
        return "rejected"
    if approval_marker and _marker_uses(review, approval_marker)[0] == 0:
        return None
    return "approved" if find_answers(text, answer_marker) else None


def answer_key(answer: str) -> str:
    """Two statements of the same answer compare equal (`4,600` and `4600.`, case and spacing aside)."""
    return normalise_answer(answer).casefold()


class RunGuards:
    """Consensus and stall detection over a run's turns; pure (fed one turn's messages at a time)."""

    def __init__(
        self,
        spec: GuardsSpec,
        *,
        answer_marker: str,
        approver: str | None,
        approval_marker: str | None,
        rejection_marker: str,
        question: str = "",
    ) -> None:
        self.spec = spec
        self.question = question  # the form checks: an answer breaking the question's form never reaches consensus
        self.answer_marker = answer_marker
        self.approver = approver
        self.approval_marker = approval_marker
        self.rejection_marker = rejection_marker
        self.reset()

    def reset(self) -> None:
        self._evidence: set[str] = set()
        self._answers: set[str] = set()
        self._tally: dict[str, list[str]] = {}  # answer key -> who stated it since the last rejection
        self._failures: dict[str, int] = {}  # tool call key -> how many times it failed in the run
        self.quiet_turns = 0  # turns in a row without progress, an empty one counted twice
        self._quiet = self._empty = 0  # those turns, and how many of them were empty

    def _new_evidence(self, event: ToolCallExecutionEvent) -> bool:
        new = False
        for result in event.content:
            if result.is_error:  # a failed call found nothing
                continue
            text = " ".join(strip_repeat_note(result.content).split())
            fingerprint = hashlib.sha256(f"{result.name}\0{text}".encode()).hexdigest()
            if fingerprint not in self._evidence:
                self._evidence.add(fingerprint)
                new = True
        return new

    def _repeated_failure(self, turn: Sequence[BaseAgentEvent | BaseChatMessage]) -> str | None:
        """A stall detail when a failing tool call of this turn has failed `repeated_call_limit` + 1 times."""
        limit = self.spec.repeated_call_limit
        if limit is None:
            return None
        calls = {c.id: c for item in turn if isinstance(item, ToolCallRequestEvent) for c in item.content}
        failed: dict[str, tuple[str, str]] = {}  # key -> (agent, tool), the calls that failed in this turn
        for item in turn:
            if not isinstance(item, ToolCallExecutionEvent):
                continue
            for result in item.content:
                call = calls.get(result.call_id)
                if not result.is_error or call is None:
                    continue
                key = failing_call_key(call.name, call.arguments)
                self._failures[key] = self._failures.get(key, 0) + 1
                failed[key] = (item.source, call.name)
        for key, (agent, tool) in failed.items():
            if self._failures[key] > limit:
                return f"{agent} repeated the same failing {tool} call {self._failures[key]} times"
        return None

    def observe(self, turn: Sequence[BaseAgentEvent | BaseChatMessage]) -> str | None:
        """Feed one agent turn (AutoGen's delta); returns "consensus: ..." or "stalled: ..." to stop."""
        messages = [m for m in turn if isinstance(m, BaseChatMessage) and m.source != "user"]
        if not messages:  # the task itself, when the group chat starts
            return None
        progress = False
        for item in turn:
            if isinstance(item, ToolCallExecutionEvent) and self._new_evidence(item):
                progress = True
        failing = self._repeated_failure(turn)
        for message in messages:
            text = message.to_text()
            if (self.approver is None or message.source == self.approver) and is_rejection(
                without_answers(text, self.answer_marker), self.rejection_marker, self.approval_marker
            ):
                self._tally.clear()
                continue
            answers = find_answers(text, self.answer_marker)
            if not answers:
                continue
            key = answer_key(answers[-1])
            if not key:
                continue
            if key not in self._answers:
                self._answers.add(key)
                progress = True
            if self.question and blocking(self.question, normalise_answer(answers[-1])):
                continue
            stated = self._tally.setdefault(key, [])
            stated.append(message.source)
            if self.spec.consensus_after and len(stated) >= self.spec.consensus_after:
                return (
                    f"{CONSENSUS_REASON}: the same answer was stated {len(stated)} times with no rejection"
                    f" (by {' and '.join(dict.fromkeys(stated))})"
                )
        if failing is not None and not progress:  # a turn that found something new has recovered
            return f"{STALLED_REASON}: {failing}"
        # nothing visible (empty content, or only a reasoning block) and no tool call: a provider's empty reply
        # has already been retried by the client (LLM_MAX_RETRIES calls), so it weighs double
        empty = not any(isinstance(item, ToolCallExecutionEvent) for item in turn) and not any(
            visible_text(m.to_text()).strip() for m in messages
        )
        if progress:
            self.quiet_turns = self._quiet = self._empty = 0
        else:
            self.quiet_turns += 2 if empty else 1
            self._quiet += 1
            self._empty += empty
        if self.spec.stall_turns and self.quiet_turns >= self.spec.stall_turns:
            why = f" ({self._empty} of them empty; an empty reply counts twice)" if self._empty else ""
            return f"{STALLED_REASON}: {self._quiet} turns in a row brought no new evidence and no new answer{why}"
        return None


def failing_call_key(tool: str, arguments: str) -> str:
    """Two calls with the same tool and arguments compare equal (JSON key order and spacing aside; arguments
    that are not JSON as written)."""
    try:
        canonical = json.dumps(json.loads(arguments), sort_keys=True, ensure_ascii=False)
    except (json.JSONDecodeError, TypeError, ValueError):
        canonical = " ".join(arguments.split())
    return f"{tool} {canonical}"


class GuardsTermination(TerminationCondition):
    """The run's guards alone (consensus, stall, a failing call repeated), for a team with no approver
    (`termination.approver` unset); `ApprovedAnswerTermination` adds the approval. Stops with a StopMessage
    "consensus: ..." or "stalled: ..." (read back by `guard_stop`)."""

    def __init__(
        self,
        answer_marker: str,
        approval_marker: str | None = "APPROVED",
        rejection_marker: str = "REJECTED",
        *,
        guards: GuardsSpec | None = None,
        question: str = "",
        approver: str | None = None,
    ) -> None:
        self.answer_marker = answer_marker
        self.approval_marker = approval_marker
        self.rejection_marker = rejection_marker
        self.guards = RunGuards(
            guards if guards is not None else GuardsSpec(),
            answer_marker=answer_marker,
            approver=approver,
            approval_marker=approval_marker,
            rejection_marker=rejection_marker,
            question=question,
        )
        self._terminated = False

    @property
    def question(self) -> str:
        """The question the form checks read; set by the runner, else taken from the run's task message."""
        return self.guards.question

    @question.setter
    def question(self, text: str) -> None:
        self.guards.question = text

    @property
    def terminated(self) -> bool:
        return self._terminated

    def _read_question(self, messages: Sequence[BaseAgentEvent | BaseChatMessage]) -> None:
        if not self.question:  # the task message opens the run
            task = next((m for m in messages if isinstance(m, BaseChatMessage) and m.source == "user"), None)
            if task is not None:
                self.question = task.to_text()

    def _guard_stop(self, messages: Sequence[BaseAgentEvent | BaseChatMessage]) -> StopMessage | None:
        if (reason := self.guards.observe(messages)) is not None:
            self._terminated = True
            return StopMessage(content=reason, source="RunGuards")
        return None

    async def __call__(self, messages: Sequence[BaseAgentEvent | BaseChatMessage]) -> StopMessage | None:
        if self._terminated:
            return None
        self._read_question(messages)
        return self._guard_stop(messages)

    async def reset(self) -> None:
        self._terminated = False
        self.guards.reset()

    def _to_config(self) -> BaseModel:  # pragma: no cover - teams are built from our YAML, never dumped
        raise NotImplementedError("built from the team YAML; not serialisable")


class ApprovedAnswerTermination(GuardsTermination):
    """Stops when `approver` approves a final answer (module docstring: how a review is read), and on the
    run's guards: a consensus or a stall (`guards`; left out, the defaults of `GuardsSpec`)."""

    def __init__(
        self,
        approver: str,
        answer_marker: str,
        approval_marker: str | None,
        rejection_marker: str = "REJECTED",
        *,
        guards: GuardsSpec | None = None,
        question: str = "",
    ) -> None:
        super().__init__(answer_marker, approval_marker, rejection_marker, guards=guards, question=question,
                         approver=approver)
        self.approver = approver

    def form_block(self, message: BaseChatMessage) -> list[Violation]:
        """The form violations no program can correct in the answer `message` approves (empty otherwise)."""
        if message.source != self.approver or not self.question:
            return []
        text = message.to_text()
        verdict = review_verdict(text, answer_marker=self.answer_marker, approval_marker=self.approval_marker,
                                 rejection_marker=self.rejection_marker)
        answers = find_answers(text, self.answer_marker)
        if verdict != "approved" or not answers:
            return []
        return blocking(self.question, normalise_answer(answers[-1]))

    def verdict(self, message: BaseChatMessage) -> Verdict | None:
        """The approver's review; an approval of an answer with a blocking form violation is a rejection."""
        if message.source != self.approver:
            return None
        said = review_verdict(
            message.to_text(),
            answer_marker=self.answer_marker,
            approval_marker=self.approval_marker,
            rejection_marker=self.rejection_marker,
        )
        if said == "approved" and self.form_block(message):
            return "rejected"
        return said

    def approves(self, message: BaseChatMessage) -> bool:
        return self.verdict(message) == "approved"

    def rejects(self, message: BaseChatMessage) -> bool:
        return self.verdict(message) == "rejected"

    async def __call__(self, messages: Sequence[BaseAgentEvent | BaseChatMessage]) -> StopMessage | None:
        if self._terminated:
            return None
        self._read_question(messages)
        for m in messages:
            if isinstance(m, BaseChatMessage) and self.approves(m):
                self._terminated = True
                return StopMessage(content=f"{APPROVED_REASON} by {self.approver}", source="ApprovedAnswerTermination")
        return self._guard_stop(messages)


def guard_stop(stop_reason: str) -> tuple[Literal["consensus", "stalled"], str] | None:
    """A group chat's stop reason written by the guards, as (our stop reason, its detail)."""
    match = re.search(rf"\b({CONSENSUS_REASON}|{STALLED_REASON}): ([^,]+)", stop_reason)
    if match is None:
        return None
    kind: Literal["consensus", "stalled"] = "consensus" if match.group(1) == CONSENSUS_REASON else "stalled"
    return kind, match.group(2).strip()
