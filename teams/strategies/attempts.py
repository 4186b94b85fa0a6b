"""From a strategy's `attempts:` to the team configs its attempts run, with what differs in each applied."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from typing import Any, Literal

from config.settings import Settings
from models.providers import is_configured, resolve_provider
from models.spec import ModelSpec
from teams.result import Result, result_from_dict
from teams.schema import AttemptSpec, TeamConfig, agent_models

Stage = Literal["vote", "first", "escalated"]


@dataclass(frozen=True)
class PlannedAttempt:
    number: int  # 1-based over the whole strategy (the escalation comes last)
    label: str
    stage: Stage
    cfg: TeamConfig

    def fingerprint(self) -> str:
        """What the attempt runs (its stage and its whole team config, models included): a finished attempt is
        reused only by the same attempt, never after the team YAML, a model or a provider changed."""
        text = f"{self.number}|{self.stage}|{self.label}|{self.cfg.model_dump_json()}"
        return hashlib.sha256(text.encode()).hexdigest()[:32]


# An attempt that ended like this is run again on a resume rather than reused: it was cut off or failed.
NOT_REUSED = ("cancelled", "error")


@dataclass
class FinishedAttempt:
    """An attempt that ended on its own, kept so that a question interrupted later (a cancelled batch, a crash)
    does not pay for it twice: its result and its evidence (the tool results the adjudicator is shown)."""

    number: int
    fingerprint: str
    result: Result
    evidence: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {"number": self.number, "fingerprint": self.fingerprint, "result": self.result.to_dict(),
                "evidence": list(self.evidence)}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> FinishedAttempt:
        """Raises ValueError (or TypeError) for a line that is not one."""
        number, fingerprint, result = data["number"], data["fingerprint"], data["result"]
        if not isinstance(number, int) or not isinstance(fingerprint, str) or not isinstance(result, dict):
            raise ValueError("not a finished attempt")
        evidence = [str(t) for t in data.get("evidence") or []]
        return cls(number, fingerprint, result_from_dict(result), evidence)


def pick_provider(choice: str | list[str] | None, settings: Settings) -> str | None:
    """A provider list's first configured entry ("auto" always is); none configured: "auto"."""
    if choice is None or isinstance(choice, str):
        return choice
    return next((p for p in choice if p == "auto" or is_configured(p, settings)), "auto")


def _patched(spec: ModelSpec, provider: str | None, attempt: AttemptSpec) -> ModelSpec:
    update: dict[str, object] = {}
    if provider is not None:
        update["provider"] = provider
    if attempt.tier is not None:
        update["tier"] = attempt.tier
    if attempt.temperature is not None:
        update["temperature"] = attempt.temperature
    return spec.model_copy(update=update) if update else spec


def attempt_config(parent: TeamConfig, attempt: AttemptSpec, settings: Settings) -> TeamConfig:
    """The team an attempt runs: its `team` (or the parent's own agents) with the attempt's overrides on every
    model (profiles, inline agent models, an LLM selector's model) and its instructions on every agent."""
    if isinstance(attempt.team, TeamConfig):
        base = attempt.team
    else:  # validated by the loader: `team` is a resolved config, or left out with agents in the parent
        base = parent.model_copy(update={"strategy": type(parent.strategy)()})
    provider = pick_provider(attempt.provider, settings)
    models = {name: _patched(spec, provider, attempt) for name, spec in base.models.items()}
    models.update({name: _patched(spec, provider, attempt) for name, spec in attempt.models.items()})
    agents = []
    for agent in base.agents:
        update: dict[str, object] = {}
        if isinstance(agent.model, ModelSpec):
            update["model"] = _patched(agent.model, provider, attempt)
        if attempt.instructions:
            update["instructions"] = "\n\n".join(t for t in (agent.instructions, attempt.instructions) if t)
        agents.append(agent.model_copy(update=update) if update else agent)
    selection = base.selection
    if isinstance(selection.model, ModelSpec):
        selection = selection.model_copy(update={"model": _patched(selection.model, provider, attempt)})
    return base.model_copy(update={"models": models, "agents": agents, "selection": selection})


def _provider_shown(provider: str, settings: Settings) -> str:
    if provider != "auto":
        return provider
    try:
        return resolve_provider(ModelSpec(), settings)
    except Exception:  # no provider configured: the run says so, with the fix; the label stays "auto"
        return provider


def _label(attempt: AttemptSpec, cfg: TeamConfig, provider: str | None, settings: Settings) -> str:
    """`team · provider · what differs`: the attempt's own `label`, else its tier, temperature and instructions."""
    parts = [cfg.name]
    if provider is not None:
        parts.append(_provider_shown(provider, settings))
    if attempt.label:
        return " · ".join([*parts, attempt.label])
    if attempt.tier is not None:
        parts.append(f"{attempt.tier} tier")
    if attempt.temperature is not None:
        parts.append(f"temperature {attempt.temperature:g}")
    if attempt.instructions:
        parts.append("own instructions")
    return " · ".join(parts)


def plan_attempts(parent: TeamConfig, settings: Settings) -> list[PlannedAttempt]:
    """Every attempt of `parent`'s strategy, `repeat` expanded, numbered, the escalation (if any) last."""
    strategy = parent.strategy
    stage: Stage = "vote" if strategy.kind == "vote" else "first"
    specs: list[tuple[Stage, AttemptSpec]] = [(stage, a) for a in strategy.attempts for _ in range(a.repeat)]
    if strategy.kind == "escalate" and strategy.escalate_to is not None:
        specs.append(("escalated", strategy.escalate_to))
    planned = []
    for number, (stage_of, spec) in enumerate(specs, 1):
        cfg = attempt_config(parent, spec, settings)
        planned.append(PlannedAttempt(number, _label(spec, cfg, pick_provider(spec.provider, settings), settings), stage_of, cfg))
    return planned


def strategy_models(parent: TeamConfig, settings: Settings) -> list[tuple[str, ModelSpec]]:
    """(agent, model profile) of every attempt (`2.critic`) and the adjudicator, as the strategy will build them."""
    if parent.strategy.kind == "single":
        return agent_models(parent)
    out = [(f"{p.number}.{agent}", spec) for p in plan_attempts(parent, settings) for agent, spec in agent_models(p.cfg)]
    if parent.strategy.kind == "vote" and parent.strategy.adjudicator is not None:
        out.append(("adjudicator", parent.adjudicator_model()))
    return out
