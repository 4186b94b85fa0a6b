"""The `local` provider's real loading and generation code, on a tiny random-weight model built here."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

pytest.importorskip("transformers")
pytest.importorskip("torch")

from autogen_core.models import SystemMessage, UserMessage  # noqa: E402

from agents.tools.calculator import make_calculator  # noqa: E402
from agents.tools.registry import ToolContext  # noqa: E402
from config.settings import Settings  # noqa: E402
from models.local_model import (  # noqa: E402
    TransformersChatCompletionClient,
    parse_tool_calls,
    to_chat_messages,
)
from models.providers import _model_info, build_client  # noqa: E402
from models.spec import Capabilities  # noqa: E402
from models.usage import UsageLedger  # noqa: E402
from teams import solve  # noqa: E402
from teams.loader import parse_team  # noqa: E402

WORDS = "the a of is what how many river town answer tools name calculator expression number yes no".split()
TEMPLATE = (
    "{% if tools %}<|system|> Tools: {% for t in tools %}{{ t.function.name }} {% endfor %}{% endif %}"
    "{% for m in messages %}<|{{ m.role }}|> {{ m.content }} {% endfor %}"
    "{% if add_generation_prompt %}<|assistant|>{% endif %}"
)


@pytest.fixture(scope="module")
def tiny_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    import torch
    from tokenizers import Tokenizer, models, pre_tokenizers
    from transformers import LlamaConfig, LlamaForCausalLM, PreTrainedTokenizerFast

    folder = tmp_path_factory.mktemp("tiny-model")
    specials = ["[UNK]", "[PAD]", "</s>", "<|system|>", "<|user|>", "<|assistant|>", "<|tool|>"]
    vocab = {tok: i for i, tok in enumerate(specials + WORDS + ["<tool_call>", "</tool_call>", "{", "}", ":", '"']) }
    backend = Tokenizer(models.WordLevel(vocab=vocab, unk_token="[UNK]"))
    backend.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
    tokenizer = PreTrainedTokenizerFast(tokenizer_object=backend, unk_token="[UNK]", pad_token="[PAD]", eos_token="</s>")
    tokenizer.chat_template = TEMPLATE
    tokenizer.save_pretrained(folder)
    torch.manual_seed(0)
    config = LlamaConfig(
        vocab_size=len(vocab), hidden_size=32, intermediate_size=64, num_hidden_layers=1,
        num_attention_heads=2, num_key_value_heads=1, max_position_embeddings=256,
        pad_token_id=vocab["[PAD]"], eos_token_id=vocab["</s>"], bos_token_id=vocab["</s>"],
    )
    LlamaForCausalLM(config).save_pretrained(folder)
    return folder


INFO = _model_info(Capabilities())
MESSAGES = [SystemMessage(content="You are the answer tools"), UserMessage(content="how many river town", source="user")]


async def test_loads_from_disk_and_generates_with_tools_in_the_prompt(tiny_model: Path) -> None:
    client = TransformersChatCompletionClient(str(tiny_model), model_info=INFO, max_new_tokens=6)
    tool = make_calculator(ToolContext(settings=Settings(_env_file=None), workdir=tiny_model))  # type: ignore[call-arg]
    result = await client.create(MESSAGES, tools=[tool])
    assert client.last_prompt is not None and "Tools: calculator" in client.last_prompt
    assert client.last_prompt.endswith("<|assistant|>")
    assert 1 <= result.usage.completion_tokens <= 6
    assert result.usage.prompt_tokens == len(client.last_prompt.split())
    assert isinstance(result.content, (str, list))


async def test_streams_chunks_then_a_result(tiny_model: Path) -> None:
    client = TransformersChatCompletionClient(str(tiny_model), model_info=INFO, max_new_tokens=5)
    items = [i async for i in client.create_stream(MESSAGES)]
    final = items[-1]
    assert not isinstance(final, str) and final.usage.completion_tokens >= 1
    assert all(isinstance(i, str) for i in items[:-1])


async def test_a_team_runs_on_the_local_provider(tiny_model: Path) -> None:
    settings = Settings(_env_file=None, LLM_PROVIDER="local", LOCAL_MODEL=str(tiny_model))  # type: ignore[call-arg]
    client = build_client(parse_team(_TEAM).model_spec("default"), settings, agent="solo", ledger=UsageLedger())
    assert client.provider == "local" and client.model == str(tiny_model)
    result = await solve("how many river town", parse_team(_TEAM), settings=settings)
    # random weights give no answer, but the whole path (prompt, generation, accounting) runs and ends cleanly
    assert result.stop_reason in ("max_turns", "approved")
    assert result.usage["solo"].completion_tokens > 0 and result.cost_usd == 0.0


_TEAM = {
    "name": "tiny",
    "models": {"default": {"provider": "local", "max_tokens": 4}},
    "agents": [{"name": "solo", "role": "solo", "stream": False}],
    "selection": {"mode": "round_robin"},
    "termination": {"approver": "solo", "approval_marker": None, "max_turns": 1},
}


def test_tool_calls_are_parsed_from_chat_template_output() -> None:
    text = 'Let me compute.\n<tool_call>\n{"name": "calculator", "arguments": {"expression": "2+2"}}\n</tool_call>'
    plain, calls = parse_tool_calls(text)
    assert plain == "Let me compute."
    assert [(c.name, json.loads(c.arguments)) for c in calls] == [("calculator", {"expression": "2+2"})]
    assert parse_tool_calls("<tool_call>{broken</tool_call>")[1] == []


def test_group_chat_messages_name_their_speaker() -> None:
    chat = to_chat_messages([UserMessage(content="I found it", source="researcher")])
    assert chat == [{"role": "user", "content": "[researcher] I found it"}]
