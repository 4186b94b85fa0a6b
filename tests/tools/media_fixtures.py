"""What the chess_position and watch_video tests share: the small team of their scripted debates."""

from __future__ import annotations

from teams.loader import parse_team
from teams.schema import TeamConfig


def researcher_team(name: str, tool: str) -> TeamConfig:
    """Planner, a researcher with only `tool`, and a critic who approves, on rules."""
    return parse_team({
        "name": name,
        "agents": [
            {"name": "planner", "role": "planner"},
            {"name": "researcher", "role": "researcher", "tools": [tool]},
            {"name": "critic", "role": "critic"},
        ],
        "selection": {"mode": "rules", "first": "planner", "reviewer": "critic",
                      "default_next": {"planner": "researcher", "researcher": "planner", "critic": "planner"}},
        "termination": {"approver": "critic"},
    })
