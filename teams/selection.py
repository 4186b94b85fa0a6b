"""Rule-based speaker selection: deterministic, free, and cheap in prompt tokens (no selector LLM call).

Order of rules for the message that just ended:
1. the question (from the user) goes to `first`;
2. a message that proposes a final answer goes to the reviewer (unless the reviewer wrote it);
3. `NEXT: <agent>` in the message hands over explicitly (a name that is no agent of the team, or the speaker
   itself, is ignored: the next rule applies);
4. otherwise `default_next[speaker]`, else `first`.
Text inside `<think>`/`<thinking>` blocks is read by none of these rules (`teams/answer.py` `visible_text`).
In `llm` mode rules 1-3 still apply and the LLM only decides the rest.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from autogen_agentchat.messages import BaseAgentEvent, BaseChatMessage

from teams.answer import find_answers, visible_text
from teams.schema import TeamConfig


def last_chat_message(thread: Sequence[BaseAgentEvent | BaseChatMessage]) -> BaseChatMessage | None:
    for item in reversed(thread):
        if isinstance(item, BaseChatMessage):
            return item
    return None


class RuleSelector:
    def __init__(self, cfg: TeamConfig, *, fall_through: bool = False) -> None:
        self.names = cfg.agent_names
        self.first = cfg.selection.first or self.names[0]
        self.reviewer = cfg.selection.reviewer
        self.default_next = dict(cfg.selection.default_next)
        self.marker = cfg.answer.marker
        self.fall_through = fall_through  # llm mode: return None and let the LLM choose
        words = r"\s+".join(re.escape(w) for w in cfg.selection.handoff_marker.rstrip(":").split())
        self._handoff = re.compile(r"(?:\*\*)?" + words + r"(?:\*\*)?\s*:?\s*\**\s*@?([A-Za-z][A-Za-z0-9_]*)", re.IGNORECASE)
        self._by_lower = {n.lower(): n for n in self.names}

    def handoff_target(self, text: str, speaker: str) -> str | None:
        for match in reversed(list(self._handoff.finditer(visible_text(text)))):
            target = self._by_lower.get(match.group(1).lower())
            if target and target != speaker:
                return target
        return None

    def __call__(self, thread: Sequence[BaseAgentEvent | BaseChatMessage]) -> str | None:
        message = last_chat_message(thread)
        if message is None or message.source not in self.names:
            return self.first
        speaker = message.source
        text = message.to_text()
        if self.reviewer and speaker != self.reviewer and find_answers(text, self.marker):
            return self.reviewer
        if target := self.handoff_target(text, speaker):
            return target
        if self.fall_through:
            return None
        return self.default_next.get(speaker) or (self.first if speaker != self.first else self._after(speaker))

    def _after(self, speaker: str) -> str:
        i = self.names.index(speaker)
        return self.names[(i + 1) % len(self.names)]

    def candidates(self, thread: Sequence[BaseAgentEvent | BaseChatMessage]) -> list[str]:
        """For the LLM selector: anyone but the agent that just spoke."""
        message = last_chat_message(thread)
        others = [n for n in self.names if message is None or n != message.source]
        return others or list(self.names)
