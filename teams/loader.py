"""Loading a team YAML with errors a user can act on: `teams/x.yaml: agents[2].tools[0]: unknown tool 'serch'`."""

from __future__ import annotations

import difflib
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ValidationError

from agents.tools.registry import tool_names, unknown_tool_message
from teams.schema import AttemptSpec, TeamConfig

TEAMS_DIR = Path(__file__).resolve().parent


class TeamConfigError(Exception):
    def __init__(self, source: str, problems: list[tuple[str, str]]) -> None:
        self.source = source
        self.problems = problems
        super().__init__("\n".join(f"{source}: {path}: {msg}" if path else f"{source}: {msg}" for path, msg in problems))


def _path(loc: tuple[Any, ...]) -> str:
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += ("." if out else "") + str(part)
    return out


def _models_in(annotation: Any) -> list[type[BaseModel]]:
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return [annotation]
    found: list[type[BaseModel]] = []
    for arg in getattr(annotation, "__args__", ()):
        found += _models_in(arg)
    return found


def _fields_of(model: type[BaseModel], loc: tuple[Any, ...]) -> list[str]:
    """The keys allowed where an unknown key was found, for a "did you mean" hint."""
    current = model
    for part in loc[:-1]:
        fields = current.model_fields
        if isinstance(part, str) and part in fields:
            found = _models_in(fields[part].annotation)
            if not found:
                return []
            current = found[0]
        # list indexes and dict keys leave `current` on the element's model
    return list(current.model_fields)


def _pydantic_problems(exc: ValidationError) -> list[tuple[str, str]]:
    problems = []
    seen = set()
    for err in exc.errors():
        loc = tuple(err["loc"])
        # Union members (str | ModelSpec) each report; keep the first message per key path.
        loc = tuple(p for p in loc if not (isinstance(p, str) and (p in ("str", "ModelSpec") or p.startswith("dict["))))
        path = _path(loc)
        if path in seen:
            continue
        seen.add(path)
        if err["type"] == "extra_forbidden":
            key = str(loc[-1])
            hint = difflib.get_close_matches(key, _fields_of(TeamConfig, loc), n=1)
            msg = f"unknown key {key!r}" + (f" (did you mean {hint[0]!r}?)" if hint else "")
            path = _path(loc[:-1]) or "(top level)"
            problems.append((path, msg))
            continue
        msg = err["msg"]
        if err["type"] == "missing":
            msg = "required key is missing"
        elif err["type"] == "literal_error":
            msg = f"{err['input']!r} is not allowed: {err['msg'].replace('Input should be ', 'expected ')}"
        problems.append((path, msg))
    return problems


def check_references(cfg: TeamConfig) -> list[tuple[str, str]]:
    """Cross-references pydantic cannot see: names of agents, model profiles and tools."""
    problems: list[tuple[str, str]] = []
    names = cfg.agent_names
    known_tools = set(tool_names())

    def agent_ref(path: str, name: str | None) -> None:
        if name is not None and name not in names:
            hint = difflib.get_close_matches(name, names, n=1)
            problems.append((path, f"unknown agent {name!r}" + (f" (did you mean {hint[0]!r}?)" if hint else "")))

    def model_ref(path: str, ref: object) -> None:
        if isinstance(ref, str) and ref not in cfg.models:
            problems.append((path, f"unknown model profile {ref!r} (defined: {', '.join(cfg.models) or 'none'})"))

    strategy = cfg.strategy
    if strategy.kind == "single" and not cfg.agents:
        problems.append(("agents", "a team needs at least one agent (or a `strategy:` whose attempts name their teams)"))
    if strategy.kind != "single":
        problems += _strategy_problems(cfg)
    seen: set[str] = set()
    for i, agent in enumerate(cfg.agents):
        if agent.name in seen:
            problems.append((f"agents[{i}].name", f"duplicate agent name {agent.name!r}"))
        seen.add(agent.name)
        model_ref(f"agents[{i}].model", agent.model)
        for j, tool in enumerate(agent.tools):
            if tool not in known_tools:
                problems.append((f"agents[{i}].tools[{j}]", unknown_tool_message(tool)))
    sel = cfg.selection
    agent_ref("selection.first", sel.first)
    agent_ref("selection.reviewer", sel.reviewer)
    for src, dst in sel.default_next.items():
        agent_ref(f"selection.default_next.{src}", src)
        agent_ref(f"selection.default_next.{src}", dst)
    if sel.mode == "llm":
        model_ref("selection.model", sel.model)
    if sel.mode in ("rules", "llm") and len(cfg.agents) == 1:
        problems.append(("selection.mode", f"{sel.mode!r} needs at least two agents; use 'round_robin'"))
    agent_ref("termination.approver", cfg.termination.approver)
    return problems


def _attempts(cfg: TeamConfig) -> list[tuple[str, AttemptSpec]]:
    s = cfg.strategy
    found = [(f"strategy.attempts[{i}]", a) for i, a in enumerate(s.attempts)]
    if s.escalate_to is not None:
        found.append(("strategy.escalate_to", s.escalate_to))
    return found


def _strategy_problems(cfg: TeamConfig) -> list[tuple[str, str]]:
    s = cfg.strategy
    problems: list[tuple[str, str]] = []
    voters = sum(a.repeat for a in s.attempts)
    if s.kind == "vote" and voters < 2:
        problems.append(("strategy.attempts", f"a vote needs at least two attempts (counting `repeat`), got {voters}"))
    if s.kind == "escalate":
        if not s.attempts:
            problems.append(("strategy.attempts", "escalate needs at least one first attempt"))
        if s.escalate_to is None:
            problems.append(("strategy.escalate_to", "escalate needs the attempt to escalate to"))
    elif s.escalate_to is not None:
        problems.append(("strategy.escalate_to", f"only `kind: escalate` escalates; this strategy is {s.kind!r}"))
    if s.adjudicator is not None and isinstance(s.adjudicator.model, str) and s.adjudicator.model not in cfg.models:
        problems.append(("strategy.adjudicator.model",
                         f"unknown model profile {s.adjudicator.model!r} (defined: {', '.join(cfg.models) or 'none'})"))
    for path, attempt in _attempts(cfg):
        team = attempt.team
        if team is None and not cfg.agents:
            problems.append((f"{path}.team", "names no team, and this file has no `agents:` of its own to run"))
        if isinstance(team, TeamConfig):
            if team.strategy.kind != "single":
                problems.append((f"{path}.team", f"team {team.name!r} is itself a {team.strategy.kind!r} strategy; "
                                 "an attempt runs one team"))
            profiles = team.models
        else:
            profiles = cfg.models
        for name in attempt.models:
            if not isinstance(team, str) and name not in profiles:
                problems.append((f"{path}.models.{name}",
                                 f"the attempt's team has no model profile {name!r} (defined: {', '.join(profiles)})"))
    return problems


def resolve_attempts(data: dict[str, Any], source: str, base_dir: Path) -> dict[str, Any]:
    """`strategy.attempts[].team: <name or path>` replaced by the team it names, so the config is whole on its own
    (a run dir records it, and a resume never reads the team files again)."""
    strategy = data.get("strategy")
    if not isinstance(strategy, dict):
        return data
    problems: list[tuple[str, str]] = []

    def resolve(path: str, attempt: Any) -> Any:
        if not isinstance(attempt, dict) or not isinstance(attempt.get("team"), str):
            return attempt
        ref = attempt["team"]
        beside = [c for c in (base_dir / ref, base_dir / f"{ref}.yaml") if c.is_file()]
        target = beside[0] if beside else resolve_team_path(ref)
        try:
            team = load_team(target)
        except TeamConfigError as exc:
            problems.append((f"{path}.team", f"team {ref!r}: " + "; ".join(
                f"{p}: {m}" if p else m for p, m in exc.problems)))
            return attempt
        return {**attempt, "team": team.model_dump(mode="json", exclude_unset=True)}

    out = dict(strategy)
    if isinstance(strategy.get("attempts"), list):
        out["attempts"] = [resolve(f"strategy.attempts[{i}]", a) for i, a in enumerate(strategy["attempts"])]
    if "escalate_to" in strategy:
        out["escalate_to"] = resolve("strategy.escalate_to", strategy["escalate_to"])
    if problems:
        raise TeamConfigError(source, problems)
    return {**data, "strategy": out}


def parse_team(data: Any, source: str = "<team>", base_dir: Path = TEAMS_DIR) -> TeamConfig:
    if not isinstance(data, dict):
        kind = "empty" if data is None else f"a {type(data).__name__}"
        raise TeamConfigError(source, [("", f"a team config must be a mapping of keys, but the file is {kind}")])
    data = resolve_attempts(data, source, base_dir)
    try:
        cfg = TeamConfig.model_validate(data)
    except ValidationError as exc:
        raise TeamConfigError(source, _pydantic_problems(exc)) from None
    problems = check_references(cfg)
    if problems:
        raise TeamConfigError(source, problems)
    return cfg


def _display(path: Path) -> str:
    try:
        return str(path.resolve().relative_to(Path.cwd()))
    except ValueError:
        return str(path)


def resolve_team_path(ref: str | Path) -> Path:
    """A path, or a bare name looked up in teams/ (`debate` -> teams/debate.yaml)."""
    path = Path(ref)
    if path.exists():
        return path
    for candidate in (TEAMS_DIR / path, TEAMS_DIR / f"{path}.yaml", TEAMS_DIR / path.name):
        if candidate.exists():
            return candidate
    return path


def load_team(ref: str | Path) -> TeamConfig:
    path = resolve_team_path(ref)
    source = _display(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise TeamConfigError(source, [("", "file not found")]) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise TeamConfigError(source, [("", f"cannot read the file: {exc}")]) from None
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        problem = getattr(exc, "problem", None) or str(exc)
        raise TeamConfigError(source, [(where, f"invalid YAML: {problem}")]) from None
    return parse_team(data, source, base_dir=_teams_dir_of(path))


def _teams_dir_of(path: Path) -> Path:
    """Where an attempt's `team: <name>` is looked up: beside the file, then in teams/ (resolve_team_path)."""
    return path.resolve().parent


def available_teams() -> list[Path]:
    return sorted(TEAMS_DIR.glob("*.yaml"))
