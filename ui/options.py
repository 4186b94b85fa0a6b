"""The chat settings panel: which team YAML, which provider/model (for this browser session only), and
whether code runs are shown.

Team options are the YAML files in `teams/`, plus the team ROUNDTABLE_TEAM points at when it lives
elsewhere (a user's own YAML). Option values are labels, never server paths, so the page shows no
directory layout. Provider and model map onto `Settings.llm_provider` / `llm_model`, which override the
YAML for every agent, exactly like the environment variables of the same name.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from chainlit.input_widget import InputWidget, Select, Switch, TextInput

from config.settings import Settings
from models.providers import REGISTRY
from teams import available_teams
from teams.loader import TEAMS_DIR, resolve_team_path

# label shown in the select -> Settings.llm_provider value (the providers and their labels come from the registry)
PROVIDERS: dict[str, str] = {
    "as the team YAML says (auto)": "auto",
    **{provider.label: name for name, provider in REGISTRY.items()},
}


def label_of(provider: str) -> str:
    return next((label for label, value in PROVIDERS.items() if value == provider), provider)


class ChoiceError(ValueError):
    """A settings value the panel cannot accept (a team that vanished, an unknown provider)."""


@dataclass(frozen=True)
class Choices:
    team: str  # a label from team_options()
    provider: str = "auto"
    model: str = ""
    show_code: bool = True


def team_label(path: Path) -> str:
    path = path.resolve()
    return path.stem if path.parent == TEAMS_DIR.resolve() else str(path)


def team_options(settings: Settings) -> dict[str, Path]:
    options = {team_label(p): p.resolve() for p in available_teams()}
    configured = resolve_team_path(settings.team)
    options.setdefault(team_label(configured), configured.resolve())
    return options


def default_choices(settings: Settings) -> Choices:
    return Choices(
        team=team_label(resolve_team_path(settings.team)),
        provider=settings.llm_provider,
        model=settings.llm_model or "",
    )


def widgets(choices: Choices, settings: Settings) -> list[InputWidget]:
    teams = list(team_options(settings))
    provider_label = label_of(choices.provider) if choices.provider in PROVIDERS.values() else next(iter(PROVIDERS))
    return [
        Select(
            id="team",
            label="Team",
            values=teams,
            initial_index=teams.index(choices.team) if choices.team in teams else 0,
            description="A team YAML from teams/",
        ),
        Select(
            id="provider",
            label="Model provider",
            items={label: label for label in PROVIDERS},
            initial_value=provider_label,
            description="Overrides the YAML's provider for this session (like LLM_PROVIDER)",
        ),
        TextInput(
            id="model",
            label="Model name",
            initial=choices.model,
            placeholder="blank: the team YAML's models",
            description="One model for every agent, this session only (like LLM_MODEL)",
        ),
        Switch(id="show_code", label="Show code runs", initial=choices.show_code),
    ]


def parse(values: dict[str, Any], settings: Settings, current: Choices) -> Choices:
    team = str(values.get("team") or current.team)
    if team not in team_options(settings):
        raise ChoiceError(f"unknown team {team!r}")
    label = values.get("provider")
    if label is None:
        provider = current.provider
    elif label in PROVIDERS:
        provider = PROVIDERS[label]
    elif label in PROVIDERS.values():
        provider = str(label)
    else:
        raise ChoiceError(f"unknown provider {label!r}")
    model = values.get("model")
    show_code = values.get("show_code")
    return Choices(
        team=team,
        provider=provider,
        model=current.model if model is None else str(model).strip(),
        show_code=current.show_code if show_code is None else bool(show_code),
    )


def team_path(choices: Choices, settings: Settings) -> Path:
    return team_options(settings).get(choices.team) or resolve_team_path(choices.team)


def run_settings(base: Settings, choices: Choices) -> Settings:
    """The settings one session's runs use: the process's, with this session's provider/model on top."""
    update: dict[str, Any] = {"llm_provider": choices.provider}
    if choices.model:
        update["llm_model"] = choices.model
    return base.model_copy(update=update)
