"""Team configs (the YAML files in this folder) and the runtime that runs one question through a team."""

from teams.loader import TeamConfigError, available_teams, load_team
from teams.result import Result
from teams.runner import Question, Run, solve
from teams.schema import TeamConfig
from teams.strategies import AnyRun, StrategyRun, start_run

__all__ = ["AnyRun", "Question", "Result", "Run", "StrategyRun", "TeamConfig", "TeamConfigError", "available_teams",
           "load_team", "solve", "start_run"]
