"""A team without code execution: what changes when no isolated sandbox can run here.

Model-written code never runs unisolated by default. When no isolated backend works (a host without Docker,
bubblewrap or the wasm runtime) and the subprocess backend was not opted into, the run goes on without
its code tools (run_python): every agent that had one gets the calculator instead, and the agents that plan or compute are told
why, so nobody plans on a program that cannot run.
"""

from __future__ import annotations

from agents.tools.registry import code_argument
from teams.schema import TeamConfig

FALLBACK_TOOL = "calculator"
# Roles that plan around code or write it: they are told it is unavailable even if they hold no code tool.
_TOLD_ROLES = ("planner", "coder", "solo")


def _runs_code(tool: str) -> bool:
    return code_argument(tool) is not None


def uses_code(cfg: TeamConfig) -> bool:
    return any(_runs_code(t) for agent in cfg.agents for t in agent.tools)


def unavailable_note(reason: str) -> str:
    return (
        f"Code execution is unavailable in this run ({reason}). Do not plan on running Python programs or ask "
        f"anyone to; compute exact arithmetic with the {FALLBACK_TOOL} tool where you have it, read files with "
        "read_file, and say so if the question cannot be answered without running code."
    )


def without_code(cfg: TeamConfig, reason: str) -> TeamConfig:
    """`cfg` with `run_python` replaced by the calculator and the planners and coders told why."""
    note = unavailable_note(reason)
    agents = []
    for agent in cfg.agents:
        had_code = any(_runs_code(t) for t in agent.tools)
        tools = [t for t in agent.tools if not _runs_code(t)]
        if had_code and FALLBACK_TOOL not in tools:
            tools.append(FALLBACK_TOOL)
        update: dict[str, object] = {"tools": tools}
        if had_code or agent.role in _TOLD_ROLES:
            update["instructions"] = f"{agent.instructions.strip()}\n\n{note}" if agent.instructions else note
        if had_code and agent.role == "coder" and agent.description is None:
            # The others pick whom to ask from this line: it must not promise programs.
            update["description"] = "Computes exactly with the calculator and reads attached files (code execution is unavailable)."
        agents.append(agent.model_copy(update=update))
    return cfg.model_copy(update={"agents": agents})

