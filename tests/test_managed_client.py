"""The managed client's promises, checked in-process against the function model double."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence

import pytest
from autogen_core import CancellationToken
from autogen_core.models import UserMessage

from models.client import ManagedClient, ModelNotFound, RunAborted, closest_models, retry_delay
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


# --- a model that does not exist: the listing of what the provider offers -----------------------------------
def not_found(model: str, *, retry_header: str | None = None) -> Exception:
    """What the openai SDK raises for OpenAI's 404 `model_not_found` (an x-should-retry header optional)."""
    import httpx2
    import openai

    headers = {"x-should-retry": retry_header} if retry_header else {}
    response = httpx2.Response(404, headers=headers, request=httpx2.Request("POST", "http://api.test/v1/chat/completions"))
    body = {"message": f"The model `{model}` does not exist or you do not have access to it.",
            "type": "invalid_request_error", "param": None, "code": "model_not_found"}
    return openai.NotFoundError(f"Error code: 404 - {body}", response=response, body=body)


def failing_client(
    errors: list[Exception | str], available: Callable[[], Awaitable[Sequence[str]]] | None = None,
    abort: CancellationToken | None = None,
) -> tuple[ManagedClient, FunctionModel]:
    pending = list(errors)
    inner = FunctionModel(lambda _: pending.pop(0), agent="planner")
    client = ManagedClient(inner, agent="planner", provider="openai", model="gpt-6-lunar", max_retries=3,
                           base_delay=0, sleep=_no_wait, available_models=available, abort=abort)
    return client, inner


HI = [UserMessage(content="Hi.", source="user")]


async def test_a_missing_model_is_not_retried_even_when_the_server_says_retry() -> None:
    client, inner = failing_client([not_found("gpt-6-lunar", retry_header="true"), "never"])
    with pytest.raises(ModelNotFound, match="provider 'openai' has no model 'gpt-6-lunar'"):
        await client.create(HI)
    assert len(inner.calls) == 1
    assert retry_delay(not_found("gpt-6-lunar", retry_header="true"), 0, 1.0, 60.0) is None


async def test_at_most_ten_models_are_listed_closest_first_with_the_rest_counted() -> None:
    offered = [f"tts-{i}" for i in range(20)] + ["gpt-6-luna", "gpt-6-sol", "gpt-5.6-luna", "gpt-6-luna"]

    async def listing() -> list[str]:
        return offered

    client, _ = failing_client([not_found("gpt-6-lunar")], listing)
    with pytest.raises(ModelNotFound) as info:
        await client.create(HI)
    listed = str(info.value).split("; it offers: ")[1]
    assert listed.startswith("gpt-6-luna, gpt-5.6-luna, ") and listed.endswith(" (+13 more)")
    assert len(listed.split(" (+")[0].split(", ")) == 10
    assert closest_models("gpt-6-lunar", offered, limit=0) == [] and closest_models("x", []) == []


async def test_a_listing_that_hangs_does_not_hold_the_error_back(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("models.client.LIST_MODELS_TIMEOUT", 0.05)

    async def hangs() -> list[str]:
        await asyncio.sleep(30)
        return ["gpt-6-luna"]

    client, _ = failing_client([not_found("gpt-6-lunar")], hangs)
    with pytest.raises(ModelNotFound) as info:
        await asyncio.wait_for(client.create(HI), 5)
    assert "it offers" not in str(info.value) and info.value.available == []


async def test_stopping_the_run_while_the_models_are_listed_stops_at_once() -> None:
    abort = CancellationToken()

    async def hangs() -> list[str]:
        abort.cancel()
        await asyncio.sleep(30)
        return []

    client, _ = failing_client([not_found("gpt-6-lunar")], hangs, abort=abort)
    with pytest.raises(RunAborted):
        await asyncio.wait_for(client.create(HI), 5)



# --- the provider's own retryable errors ---------------------------------------------------------------------
def unvalidated_reply(sdk: str) -> Exception:
    """What the SDK raises for a 200 whose body it could not validate: no status says "retry"."""
    import httpx2

    response = httpx2.Response(200, request=httpx2.Request("POST", "http://api.test/v1/messages"))
    module = __import__(sdk)
    return module.APIResponseValidationError(response=response, body={"content": "not a list"})


def dropped_connection(sdk: str) -> Exception:
    import httpx2

    return __import__(sdk).APIConnectionError(request=httpx2.Request("POST", "http://api.test/v1/messages"))


@pytest.mark.parametrize("provider, sdk", [("openai", "openai"), ("hf", "openai"), ("anthropic", "anthropic")])
@pytest.mark.parametrize("fault", [unvalidated_reply, dropped_connection])
async def test_what_the_provider_declares_retryable_is_retried_to_the_answer(
    provider: str, sdk: str, fault: Callable[[str], Exception]
) -> None:
    pending: list[Exception | str] = [fault(sdk), "The answer is 4600."]
    inner = FunctionModel(lambda _: pending.pop(0), agent="planner")
    client = ManagedClient(inner, agent="planner", provider=provider, model="some-model", max_retries=3,
                           base_delay=0, sleep=_no_wait)
    result = await client.create(HI)
    assert result.content == "The answer is 4600." and len(inner.calls) == 2


async def test_an_sdk_error_of_another_provider_is_not_retried() -> None:
    """The local model declares nothing: an error it does not know is reported at once, not retried."""
    from models.client import ModelCallError

    pending: list[Exception | str] = [unvalidated_reply("anthropic"), "late"]
    inner = FunctionModel(lambda _: pending.pop(0), agent="planner")
    client = ManagedClient(inner, agent="planner", provider="local", model="smollm2", max_retries=3,
                           base_delay=0, sleep=_no_wait)
    with pytest.raises(ModelCallError, match="not retryable"):
        await client.create(HI)
    assert len(inner.calls) == 1
