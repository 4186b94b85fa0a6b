"""Model families as data: what each family of model names can do and which request parameters it accepts.

One table (`FAMILIES`), checked in order: the first family whose pattern matches the model name wins, so a name
nobody has seen yet (`gpt-5.9-mini`, `claude-opus-5-2`) gets its family's rules. A name no family matches gets
`UNKNOWN` (safe defaults: tools on, no vision, only `max_tokens`/`temperature`) and ONE warning per name per process.

`plan_request()` turns a team profile (temperature, reasoning effort, verbosity, output tokens) into the parameters
a model accepts: a setting the model does not accept is dropped with one warning naming it and the model, never
sent. Facts and sources: /work/shared/reference/models-and-evidence-2026.md sections 3.2 and 5 (late 2026), and the
strict API replicas in tests/fakes/replicas/, which refuse what the real APIs refuse.
"""

from __future__ import annotations

import re
import threading
from dataclasses import dataclass, field, replace
from typing import Literal

from autogen_core.models import ModelFamily, ModelInfo
from loguru import logger

TokenParam = Literal["max_tokens", "max_completion_tokens"]
Thinking = Literal["none", "budget", "adaptive", "adaptive_only"]
Verbosity = Literal["low", "medium", "high"]
EffortParam = Literal["reasoning_effort", "output_config"]

_GPT5_EFFORTS = ("minimal", "low", "medium", "high")
_GPT5X_EFFORTS = ("none", "low", "medium", "high", "xhigh")
_GPT6_EFFORTS = ("none", "low", "medium", "high", "xhigh", "max")
_GPT6_NO_NONE = ("low", "medium", "high", "xhigh", "max")
_O_EFFORTS = ("low", "medium", "high")
_CLAUDE46_EFFORTS = ("low", "medium", "high", "max")
_CLAUDE47_EFFORTS = ("low", "medium", "high", "xhigh", "max")
_GEMINI_EFFORTS = ("none", "low", "medium", "high")
_GEMINI_PRO_EFFORTS = ("low", "medium", "high")


@dataclass(frozen=True)
class Family:
    """One family of model names and what its models accept."""

    name: str
    patterns: tuple[str, ...]  # regular expressions, matched at the start of the normalised name
    autogen_family: str = ModelFamily.UNKNOWN  # AutoGen's ModelInfo.family (picks its message transformers)
    vision: bool = False
    function_calling: bool = True
    json_output: bool = True
    structured_output: bool = False
    context: int = 128_000
    max_output: int = 16_384
    # what is sent when the profile sets no max_output_tokens (None: send nothing, the API's own default)
    default_max_output: int | None = None
    temperature: bool = True
    default_temperature: float | None = 0.0  # sent when the profile sets none (and temperature is accepted)
    token_param: TokenParam = "max_tokens"
    efforts: tuple[str, ...] = ()  # accepted reasoning-effort values; empty: no effort control
    effort_param: EffortParam = "reasoning_effort"  # Claude carries it as output_config.effort
    # function tools on Chat Completions only with reasoning_effort "none" (GPT-5.4+ and GPT-6 Sol/Luna)
    tools_need_effort_none: bool = False
    verbosity: bool = False
    thinking: Thinking = "none"  # Anthropic: budget thinking, adaptive (4.6), adaptive only (4.7+)
    thinking_by_default: bool = False  # Claude Opus/Sonnet 5+: thinking is on unless disabled
    note: str = ""

    def matches(self, normalised: str) -> bool:
        return any(re.match(p, normalised) for p in self.patterns)

    def model_info(self) -> ModelInfo:
        return ModelInfo(
            vision=self.vision,
            function_calling=self.function_calling,
            json_output=self.json_output,
            structured_output=self.structured_output,
            family=self.autogen_family,
            multiple_system_messages=True,
        )


_GPT5X = Family(
    "gpt-5.x", (r"gpt-5\.\d",), autogen_family=ModelFamily.GPT_5, vision=True, structured_output=True,
    context=400_000, max_output=128_000, temperature=False, default_temperature=None,
    token_param="max_completion_tokens", efforts=_GPT5X_EFFORTS, tools_need_effort_none=True, verbosity=True,
)  # fmt: skip
_CLAUDE_NEW = Family(
    "claude-4.7+", (r"claude-(opus|sonnet|haiku)-4-([7-9]|[1-9]\d)(\D|$)",),
    autogen_family=ModelFamily.CLAUDE_4_OPUS, vision=True, json_output=False, context=1_000_000,
    max_output=128_000, default_max_output=32_000, temperature=False, default_temperature=None,
    efforts=_CLAUDE47_EFFORTS, effort_param="output_config", thinking="adaptive_only",
)  # fmt: skip

FAMILIES: tuple[Family, ...] = (
    # --- OpenAI --------------------------------------------------------------------------------------------
    replace(
        _GPT5X, name="gpt-6-astra", patterns=(r"gpt-6(\.\d+)?-astra", r"gpt-6\.1-sol"), efforts=_GPT6_NO_NONE,
        function_calling=False, tools_need_effort_none=False, context=1_050_000,
        note="no reasoning_effort 'none', so no function tools on Chat Completions",
    ),  # fmt: skip
    replace(_GPT5X, name="gpt-6", patterns=(r"gpt-6",), efforts=_GPT6_EFFORTS, context=1_050_000),
    _GPT5X,
    replace(_GPT5X, name="gpt-5", patterns=(r"gpt-5(-|$)",), efforts=_GPT5_EFFORTS, tools_need_effort_none=False),
    Family(
        "o-series-text", (r"o1-mini", r"o3-mini"), autogen_family=ModelFamily.O3, structured_output=True,
        context=200_000, max_output=100_000, temperature=False, default_temperature=None,
        token_param="max_completion_tokens", efforts=_O_EFFORTS,
    ),  # fmt: skip
    Family(
        "o-series", (r"o\d",), autogen_family=ModelFamily.O3, vision=True, structured_output=True, context=200_000,
        max_output=100_000, temperature=False, default_temperature=None, token_param="max_completion_tokens",
        efforts=_O_EFFORTS,
    ),  # fmt: skip
    Family("gpt-4.1", (r"gpt-4\.1",), autogen_family=ModelFamily.GPT_41, vision=True, structured_output=True,
           context=1_047_576, max_output=32_768),  # fmt: skip
    Family("gpt-4o", (r"gpt-4o", r"chatgpt-4o"), autogen_family=ModelFamily.GPT_4O, vision=True,
           structured_output=True, max_output=16_384),  # fmt: skip
    Family("gpt-oss", (r"gpt-oss",), context=131_072, max_output=32_768, efforts=_O_EFFORTS),
    # --- Anthropic (claude-<tier>-<major>-<minor>) ------------------------------------------------------------
    replace(_CLAUDE_NEW, name="claude-haiku-5", patterns=(r"claude-haiku-5",), thinking_by_default=True,
            max_output=64_000),  # fmt: skip
    replace(_CLAUDE_NEW, name="claude-5", patterns=(r"claude-(opus|sonnet|fable)-5",), thinking_by_default=True),
    _CLAUDE_NEW,
    Family(
        "claude-4.6", (r"claude-(opus|sonnet|haiku)-4-6(\D|$)",), autogen_family=ModelFamily.CLAUDE_4_SONNET,
        vision=True, json_output=False, context=1_000_000, max_output=64_000, default_max_output=16_000,
        efforts=_CLAUDE46_EFFORTS, effort_param="output_config", thinking="adaptive",
    ),  # fmt: skip
    Family(
        "claude-4", (r"claude-(opus|sonnet|haiku)-4", r"claude-4-"), autogen_family=ModelFamily.CLAUDE_4_SONNET,
        vision=True, json_output=False, context=200_000, max_output=64_000, default_max_output=16_000,
        thinking="budget",
    ),  # fmt: skip
    Family("claude-3", (r"claude-3",), autogen_family=ModelFamily.CLAUDE_3_5_SONNET, vision=True, json_output=False,
           context=200_000, max_output=8_192, default_max_output=8_192),  # fmt: skip
    # a Claude name of a family not listed yet: the newest rules (no sampling parameters) are the safe ones
    Family("claude", (r"claude-",), autogen_family=ModelFamily.CLAUDE_4_OPUS, vision=True, json_output=False,
           context=200_000, max_output=32_000, default_max_output=16_000, temperature=False,
           default_temperature=None),  # fmt: skip
    # --- Google (OpenAI-compatible endpoint) ----------------------------------------------------------------
    Family("gemini-pro", (r"gemini-\d+(\.\d+)?-pro",), autogen_family=ModelFamily.GEMINI_2_5_PRO, vision=True,
           structured_output=True, context=1_048_576, max_output=65_536, efforts=_GEMINI_PRO_EFFORTS,
           default_temperature=None),  # fmt: skip
    Family("gemini", (r"gemini-",), autogen_family=ModelFamily.GEMINI_2_5_FLASH, vision=True, structured_output=True,
           context=1_048_576, max_output=65_536, efforts=_GEMINI_EFFORTS,
           default_temperature=None, note="Gemini 3 is tuned for its default temperature (1.0)"),  # fmt: skip
    # --- open weights (HF router, Ollama, vLLM, local) ------------------------------------------------------
    Family("qwen-vl", (r"qwen[\d.]*-?vl", r"qwen3\.5-397b"), vision=True, context=262_144, max_output=32_768),
    Family("qwen", (r"qwen", r"qwq"), context=131_072, max_output=32_768),
    Family("llama-4", (r"(meta-)?llama-?4",), autogen_family=ModelFamily.LLAMA_4_SCOUT, vision=True,
           context=1_000_000),  # fmt: skip
    Family("llama", (r"(meta-)?llama",), autogen_family=ModelFamily.LLAMA_3_3_70B),
    Family("deepseek-r1", (r"deepseek-r1",), autogen_family=ModelFamily.R1, function_calling=False),
    Family("deepseek", (r"deepseek",), context=163_840),
    Family("mistral", (r"(mistral|ministral|magistral|devstral|codestral|pixtral)",),
           autogen_family=ModelFamily.MISTRAL),  # fmt: skip
    Family("glm", (r"glm-",), context=200_000),
    Family("kimi", (r"kimi-",), context=262_144),
    Family("smollm", (r"smollm",), context=8_192, max_output=2_048),
    Family("phi", (r"phi-",), context=128_000),
    Family("gemma", (r"gemma",), vision=True, context=128_000),
)

UNKNOWN = Family("unknown", (), json_output=False, note="a model no family matches: safe defaults")

_THINKING_ROOM = 8_192  # below this, adaptive thinking can use up a Claude answer's max_tokens

_warned: set[tuple[str, str]] = set()
_warn_lock = threading.Lock()


def warn_once(key: str, model: str, message: str) -> None:
    """Log `message` once per (key, model) per process."""
    with _warn_lock:
        if (key, model) in _warned:
            return
        _warned.add((key, model))
    logger.warning(message)


def normalise(model: str) -> str:
    """The name a family pattern sees: lower case, without an `org/` or `models/` prefix or a `:provider` tag."""
    name = model.strip().lower()
    name = name.rsplit("/", 1)[-1]
    return name.split(":", 1)[0]


def family_of(model: str, *, warn: bool = True) -> Family:
    """The model's family; `UNKNOWN` (with one warning per name) when no family matches."""
    name = normalise(model)
    for family in FAMILIES:
        if family.matches(name):
            return family
    if warn:
        warn_once(
            "unknown-family",
            model,
            f"model {model!r} matches no known model family: assuming a text-only chat model with tool calls, "
            "temperature and max_tokens; declare `capabilities:` in the team YAML if that is wrong",
        )
    return UNKNOWN


@dataclass
class RequestPlan:
    """The parameters a model will be sent, after dropping what it does not accept."""

    family: Family
    temperature: float | None = None
    max_output_tokens: int | None = None
    reasoning_effort: str | None = None
    verbosity: str | None = None
    thinking: dict[str, object] | None = None  # Anthropic's `thinking` parameter
    dropped: list[str] = field(default_factory=list)

    def openai_args(self) -> dict[str, object]:
        """Constructor kwargs for AutoGen's OpenAIChatCompletionClient (they become create args)."""
        args: dict[str, object] = {}
        if self.temperature is not None:
            args["temperature"] = self.temperature
        if self.max_output_tokens is not None:
            args[self.family.token_param] = self.max_output_tokens
        if self.reasoning_effort is not None:
            args["reasoning_effort"] = self.reasoning_effort
        if self.verbosity is not None:
            args["verbosity"] = self.verbosity
        return args


def plan_request(
    model: str,
    family: Family,
    *,
    temperature: float | None,
    max_output_tokens: int | None,
    reasoning_effort: str | None,
    verbosity: str | None,
    explicit: frozenset[str] = frozenset(),
    allow_verbosity: bool = True,
) -> RequestPlan:
    """What to send `model` of `family` for a profile's settings. A setting it does not accept is dropped with one
    warning (only when the profile set it: `explicit` holds the names the profile set)."""
    plan = RequestPlan(family)

    def drop(setting: str, value: object, why: str) -> None:
        plan.dropped.append(setting)
        if setting in explicit:
            warn_once(
                f"drop-{setting}",
                model,
                f"model {model!r} does not accept {setting}={value!r} ({why}): the setting is not sent",
            )

    # temperature
    if temperature is not None:
        if family.temperature:
            plan.temperature = temperature
        else:
            drop("temperature", temperature, f"{family.name} models take no temperature")
    elif family.temperature:
        plan.temperature = family.default_temperature

    # reasoning effort
    if reasoning_effort is not None:
        if reasoning_effort in family.efforts:
            plan.reasoning_effort = reasoning_effort
        elif family.efforts:
            drop("reasoning_effort", reasoning_effort, "accepted: " + ", ".join(family.efforts))
        else:
            drop("reasoning_effort", reasoning_effort, f"{family.name} models have no reasoning effort")

    # verbosity
    if verbosity is not None:
        if family.verbosity and allow_verbosity:
            plan.verbosity = verbosity
        else:
            drop("verbosity", verbosity, "only OpenAI GPT-5 and later accept it")

    # Anthropic thinking: adaptive when an effort is asked for (4.6+) or on by default (5.x)
    if family.effort_param == "output_config" and family.thinking in ("adaptive", "adaptive_only"):
        if plan.reasoning_effort is not None or family.thinking_by_default:
            plan.thinking = {"type": "adaptive"}
            if plan.temperature is not None and plan.temperature != 1:
                # with thinking on, Claude takes temperature 1 only
                drop("temperature", plan.temperature, "thinking is on, which allows temperature 1 only")
                plan.temperature = None

    # output tokens
    tokens = max_output_tokens if max_output_tokens is not None else family.default_max_output
    if tokens is not None and tokens > family.max_output:
        if "max_output_tokens" in explicit:
            warn_once(
                "clamp-max_output_tokens",
                model,
                f"model {model!r} writes at most {family.max_output} tokens: max_output_tokens={tokens} is lowered",
            )
        tokens = family.max_output
    if plan.thinking is not None and tokens is not None and tokens < _THINKING_ROOM:
        warn_once(
            "thinking-room",
            model,
            f"model {model!r} thinks before it answers and its thinking counts against max_output_tokens={tokens}: "
            "long answers may be cut short",
        )
    plan.max_output_tokens = tokens
    return plan
