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
    """The provider/model each agent (and an LLM selector) will use; for a vote or an escalation, every attempt's
    agents (`2.critic`) and the adjudicator. Raises ProviderNotConfigured."""
    from teams.strategies.attempts import strategy_models

    choices = []
    for agent, spec in strategy_models(cfg, settings):
        provider = resolve_provider(spec, settings)
        choices.append(ModelChoice(agent, provider, resolve_model(spec, provider, settings)))
    return choices

