"""The managed client's promises, checked in-process against the function model double."""

from __future__ import annotations

from autogen_core import CancellationToken
from autogen_core.models import UserMessage

from models.client import ManagedClient
from models.usage import UsageLedger
from tests.fakes.function_model import Call, FunctionModel


async def _no_wait(_: float) -> None:
    return None


def managed(replies: list[str]) -> tuple[ManagedClient, FunctionModel, UsageLedger]:
    pending = list(replies)

    def reply(_: Call) -> str:
        return pending.pop(0)

    inner = FunctionModel(reply, agent="planner")
    ledger = UsageLedger()
    client = ManagedClient(inner, agent="planner", provider="function", model="function-model", ledger=ledger,
                           abort=CancellationToken(), max_retries=2, base_delay=0, sleep=_no_wait)
    return client, inner, ledger


async def test_an_empty_non_streamed_reply_is_retried_and_both_calls_are_counted() -> None:
    client, inner, ledger = managed(["", "   ", "The answer is 4600."])
    result = await client.create([UserMessage(content="Add 1200 and 3400.", source="user")])
    assert result.content == "The answer is 4600."
    assert len(inner.calls) == 3 and len(ledger.records) == 3


async def test_an_empty_streamed_reply_is_retried() -> None:
    client, inner, _ = managed(["", "The answer is 4600."])
    items = [i async for i in client.create_stream([UserMessage(content="Add 1200 and 3400.", source="user")])]
    assert items[-1].content == "The answer is 4600." and len(inner.calls) == 2


async def test_a_model_that_stays_empty_returns_its_last_reply_after_the_retries() -> None:
    client, inner, _ = managed(["", "", ""])
    result = await client.create([UserMessage(content="Add 1200 and 3400.", source="user")])
    assert result.content == "" and len(inner.calls) == 3  # max_retries=2: three attempts, then the agent sees it
