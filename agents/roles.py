"""The roles an agent can play: the one list of them, each with its description and default tools.

A role's prompt is `agents/prompts/<role>.md`. A team YAML that leaves an agent's `tools` out gets its role's
defaults; adding a role is a line here and a prompt file.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal, get_args

Role = Literal["planner", "researcher", "coder", "critic", "solo"]

RESEARCH_TOOLS = (
    "web_search", "read_page", "wikipedia_search", "wikipedia_page", "wayback",
    "youtube_transcript", "transcribe_audio", "describe_image", "read_file", "calculator",
)


@dataclass(frozen=True)
class RoleInfo:
    description: str  # one line: the others pick whom to ask from it (and an LLM speaker selector reads it)
    tools: tuple[str, ...] = ()


ROLES: dict[Role, RoleInfo] = {
    "planner": RoleInfo("Breaks the question down, plans the steps, assigns them and proposes the answer."),
    "researcher": RoleInfo(
        "Finds facts with web search, Wikipedia, web pages, YouTube, audio, images and attached files.", RESEARCH_TOOLS
    ),
    "coder": RoleInfo("Writes and runs Python in a sandbox for exact computation and for reading files.",
                      ("run_python", "read_file")),
    "critic": RoleInfo("Checks each proposed answer against the evidence and the exact answer format; approves or rejects."),
    "solo": RoleInfo("Answers the question alone with every tool.", (*RESEARCH_TOOLS, "run_python")),
}

assert set(ROLES) == set(get_args(Role)), "every role needs a RoleInfo"


def describe(role: Role) -> str:
    return ROLES[role].description


def default_tools(role: Role) -> list[str]:
    return list(ROLES[role].tools)
