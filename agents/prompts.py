"""Role prompts, kept as markdown files in agents/prompts/ and filled with `string.Template` ($name ...)."""

from __future__ import annotations

from functools import cache
from importlib import resources
from string import Template


@cache
def _read(name: str) -> str:
    return resources.files("agents").joinpath("prompts", f"{name}.md").read_text(encoding="utf-8").strip()


def render_prompt(
    role: str,
    *,
    name: str,
    team: str,
    roster: str,
    tools: list[str],
    marker: str,
    handoff: str,
    approval: str,
    rejection: str,
    override: str | None = None,
    instructions: str | None = None,
) -> str:
    template = Template(override if override is not None else _read(role))
    text = template.safe_substitute(
        name=name,
        team=team,
        roster=roster,
        tools=", ".join(tools) if tools else "none",
        marker=marker,
        handoff=handoff,
        approval=approval,
        rejection=rejection,
        answer_rules=_read("answer_rules"),
        # Researcher and coder only propose; the full rules go to whoever states or approves the final form.
        answer_form=_read("answer_form_short"),
        untrusted=_read("untrusted"),
    )
    if instructions:
        text += "\n\n" + instructions.strip()
    return text
