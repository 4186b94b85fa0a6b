"""Checking, before a run, that every agent's model can be built: the clear error comes first, not mid-run."""

from __future__ import annotations

from dataclasses import dataclass

from config.settings import Settings
from models.providers import resolve_model, resolve_provider
from teams.schema import TeamConfig, agent_models


@dataclass(frozen=True)
class ModelChoice:
    agent: str
    provider: str
    model: str


def model_choices(cfg: TeamConfig, settings: Settings) -> list[ModelChoice]:
    """The provider/model each agent (and an LLM selector) will use. Raises ProviderNotConfigured."""
    choices = []
    for agent, spec in agent_models(cfg):
        provider = resolve_provider(spec, settings)
        choices.append(ModelChoice(agent, provider, resolve_model(spec, provider, settings)))
    return choices

