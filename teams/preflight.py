"""Checking, before a run, that every agent's model can be built: the clear error comes first, not mid-run."""

from __future__ import annotations

from dataclasses import dataclass

from config.settings import Settings
from models.providers import resolve_model, resolve_provider
from teams.schema import TeamConfig


@dataclass(frozen=True)
class ModelChoice:
    agent: str
    provider: str
    model: str


def model_choices(cfg: TeamConfig, settings: Settings) -> list[ModelChoice]:
    """The provider/model each agent (and an LLM selector) will use. Raises ProviderNotConfigured."""
    refs = [(a.name, a.model) for a in cfg.agents]
    if cfg.selection.mode == "llm":
        refs.append(("selector", cfg.selection.model))
    choices = []
    for agent, ref in refs:
        spec = cfg.model_spec(ref)
        provider = resolve_provider(spec, settings)
        choices.append(ModelChoice(agent, provider, resolve_model(spec, provider, settings)))
    return choices

