"""What each agent's model is sent: the question, the recent turns, and bounded tool results.

AutoGen's default context resends an agent's whole history, every tool result in full, on every call.
This context keeps the question, the last `keep_last` messages and the current turn's tool results in
full; tool results from earlier turns shrink to `old_tool_result_chars` (the agent already reported what
mattered in them), and no single message may exceed `message_chars`.
"""

from __future__ import annotations

from collections.abc import Callable

from autogen_core.model_context import ChatCompletionContext
from autogen_core.models import (
    AssistantMessage,
    FunctionExecutionResult,
    FunctionExecutionResultMessage,
    LLMMessage,
    UserMessage,
)

from common.text import bound


def _shorten(message: LLMMessage, limit: int) -> LLMMessage:
    if isinstance(message, FunctionExecutionResultMessage):
        if all(len(r.content) <= limit for r in message.content):
            return message
        return FunctionExecutionResultMessage(
            content=[
                FunctionExecutionResult(
                    content=bound(r.content, limit), name=r.name, call_id=r.call_id, is_error=r.is_error
                )
                for r in message.content
            ]
        )
    if isinstance(message, (UserMessage, AssistantMessage)) and isinstance(message.content, str):
        if len(message.content) > limit:
            return message.model_copy(update={"content": bound(message.content, limit)})
    return message


class BoundedContext(ChatCompletionContext):
    def __init__(
        self,
        keep_last: int = 12,
        old_tool_result_chars: int = 1_500,
        message_chars: int = 6_000,
        facts: Callable[[], str | None] | None = None,
    ) -> None:
        super().__init__()
        # What the run knows and the model should read as facts before it answers (the reviewer: the program
        # checks on the pending answer); joined to the last message, so roles still alternate.
        self.facts = facts
        self.keep_last = keep_last
        self.old_tool_result_chars = old_tool_result_chars
        self.message_chars = message_chars

    async def get_messages(self) -> list[LLMMessage]:
        messages = self._messages
        if not messages:
            return []
        head, rest = messages[:1], messages[1:]
        tail = rest[-self.keep_last :]
        # A tool result must follow the call that asked for it, or providers reject the request.
        while tail and isinstance(tail[0], FunctionExecutionResultMessage):
            tail = tail[1:]
        dropped = len(rest) - len(tail)
        # The current turn starts after the last message another agent sent (those arrive as UserMessage).
        turn_start = max((i for i, m in enumerate(tail) if isinstance(m, UserMessage)), default=-1) + 1
        out: list[LLMMessage] = [_shorten(head[0], self.message_chars)]
        if dropped:
            out.append(UserMessage(content=f"[{dropped} earlier messages omitted to save space]", source="context"))
        for i, m in enumerate(tail):
            limit = self.old_tool_result_chars if i < turn_start else self.message_chars
            out.append(_shorten(m, limit if isinstance(m, FunctionExecutionResultMessage) else self.message_chars))
        facts = self.facts() if self.facts is not None else None
        if facts:
            last = out[-1]
            if isinstance(last, UserMessage) and isinstance(last.content, str):
                out[-1] = UserMessage(content=f"{last.content}\n\n{facts}", source=last.source)
            else:
                out.append(UserMessage(content=facts, source="checks"))
        return out
