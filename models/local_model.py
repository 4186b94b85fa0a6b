"""The `local` provider: a Hugging Face transformers chat model on the CPU, as an AutoGen ChatCompletionClient.

Tool calls come from the model's chat template: the tools are rendered into the prompt by
`apply_chat_template(tools=...)` and the reply's `<tool_call>{json}</tool_call>` blocks (the Qwen/Hermes
convention) are parsed back into FunctionCalls. Needs the optional `[local]` extra (transformers, torch).
"""

from __future__ import annotations

import asyncio
import json
import re
import threading
import uuid
from collections.abc import AsyncGenerator, Mapping, Sequence
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
_LOADED: dict[str, tuple[Any, Any]] = {}
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


def load_model(name_or_path: str) -> tuple[Any, Any]:
    """Load (and cache for the process) a tokenizer and causal LM; a directory path works offline."""
    with _LOAD_LOCK:
        if name_or_path not in _LOADED:
            import torch
            from transformers import AutoModelForCausalLM, AutoTokenizer

            tokenizer = AutoTokenizer.from_pretrained(name_or_path)
            model = AutoModelForCausalLM.from_pretrained(name_or_path, dtype=torch.float32)
            model.eval()
            _LOADED[name_or_path] = (tokenizer, model)
        return _LOADED[name_or_path]


class TransformersChatCompletionClient(ChatCompletionClient):
    def __init__(
        self,
        model: str,
        *,
        model_info: ModelInfo,
        max_new_tokens: int = 512,
        temperature: float = 0.0,
    ) -> None:
        self._model_name = model
        self._model_info = model_info
        self._max_new_tokens = max_new_tokens
        self._temperature = temperature
        self._last = RequestUsage(prompt_tokens=0, completion_tokens=0)
        self._total = RequestUsage(prompt_tokens=0, completion_tokens=0)
        self.last_prompt: str | None = None

    def _prompt(self, messages: Sequence[LLMMessage], tools: Sequence[Tool | ToolSchema]) -> tuple[Any, Any, str]:
        tokenizer, model = load_model(self._model_name)
        kwargs: dict[str, Any] = {"tokenize": False, "add_generation_prompt": True}
        if tools:
            kwargs["tools"] = _tool_schemas(tools)
        prompt = tokenizer.apply_chat_template(to_chat_messages(messages), **kwargs)
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
        _, model = load_model(self._model_name)
        limit = int(getattr(model.config, "max_position_embeddings", 32768))
        return limit - self.count_tokens(messages, tools=tools)

    @property
    def capabilities(self) -> ModelCapabilities:
        return self._model_info

    @property
    def model_info(self) -> ModelInfo:
        return self._model_info
