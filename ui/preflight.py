"""Before a run: which model each agent will use, or exactly which variable is missing.

`teams.preflight` does the same resolution `build_client` does at build time, without building anything,
so the welcome message can say "set OPENAI_API_KEY" while the app still starts and the chat stays usable.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from config.settings import Settings
from models.providers import ProviderNotConfigured
from teams.preflight import model_choices
from teams.schema import TeamConfig

LOCAL_HINT = (
    "No API key is set, so every agent runs a local CPU model (slow, and it must be downloaded once). "
    "For a hosted model set OPENAI_API_KEY, ANTHROPIC_API_KEY or HF_TOKEN."
)


@dataclass
class ModelPlan:
    models: dict[str, list[str]] = field(default_factory=dict)  # "provider/model" -> agents using it
    problems: list[str] = field(default_factory=list)  # each names the variable to set
    hints: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems

    def summary(self) -> str:
        return "; ".join(f"{model} ({', '.join(agents)})" for model, agents in self.models.items())


def plan_models(cfg: TeamConfig, settings: Settings) -> ModelPlan:
    plan = ModelPlan()
    try:
        choices = model_choices(cfg, settings)
    except ProviderNotConfigured as exc:
        plan.problems.append(str(exc))
        return plan
    for choice in choices:
        plan.models.setdefault(f"{choice.provider}/{choice.model}", []).append(choice.agent)
    if settings.llm_provider == "auto" and any(c.provider == "local" for c in choices):
        plan.hints.append(LOCAL_HINT)
    return plan
