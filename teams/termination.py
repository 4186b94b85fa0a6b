"""Ending a run on an approved answer, and telling apart why a run ended."""

from __future__ import annotations

from collections.abc import Sequence

from autogen_agentchat.base import TerminationCondition
from autogen_agentchat.messages import BaseAgentEvent, BaseChatMessage, StopMessage
from pydantic import BaseModel

from teams.answer import find_answers

APPROVED_REASON = "answer approved"


def is_rejection(text: str, rejection_marker: str) -> bool:
    """A review that opens with the rejection marker (markdown emphasis allowed) is a rejection."""
    first = text.strip().lstrip("*_#> ").upper()
    return first.startswith(rejection_marker.upper())


class ApprovedAnswerTermination(TerminationCondition):
    """Stops when `approver` states a final answer (and the approval marker, when one is required)."""

    def __init__(
        self, approver: str, answer_marker: str, approval_marker: str | None, rejection_marker: str = "REJECTED"
    ) -> None:
        self.approver = approver
        self.answer_marker = answer_marker
        self.approval_marker = approval_marker
        self.rejection_marker = rejection_marker
        self._terminated = False

    @property
    def terminated(self) -> bool:
        return self._terminated

    def approves(self, message: BaseChatMessage) -> bool:
        if message.source != self.approver:
            return False
        text = message.to_text()
        if is_rejection(text, self.rejection_marker):
            return False
        if self.approval_marker and self.approval_marker.lower() not in text.lower():
            return False
        return bool(find_answers(text, self.answer_marker))

    async def __call__(self, messages: Sequence[BaseAgentEvent | BaseChatMessage]) -> StopMessage | None:
        if self._terminated:
            return None
        for m in messages:
            if isinstance(m, BaseChatMessage) and self.approves(m):
                self._terminated = True
                return StopMessage(content=f"{APPROVED_REASON} by {self.approver}", source="ApprovedAnswerTermination")
        return None

    async def reset(self) -> None:
        self._terminated = False

    def _to_config(self) -> BaseModel:  # pragma: no cover - teams are built from our YAML, never dumped
        raise NotImplementedError("built from the team YAML; not serialisable")
