"""Role prompts, kept as markdown files in agents/prompts/ and filled with `string.Template` ($name ...).

A line that starts with `[if <tool>] ` is kept (without that prefix) only for an agent that has the tool, so a
prompt never tells an agent to call a tool it was not given.
"""

from __future__ import annotations

import re
from functools import cache
from importlib import resources
from string import Template

_IF_TOOL = re.compile(r"^\[if ([a-z_]+)\] ", re.MULTILINE)


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
    source = override if override is not None else _read(role)
    template = Template(_for_tools(source, tools))
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


def _for_tools(text: str, tools: list[str]) -> str:
    kept = []
    for line in text.splitlines(keepends=True):
        match = _IF_TOOL.match(line)
        if match is None:
            kept.append(line)
        elif match.group(1) in tools:
            kept.append(line[match.end():])
    return "".join(kept)
