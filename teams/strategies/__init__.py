"""Strategies: how many independent attempts a question gets and how one answer is chosen (README "Strategies").

`start_run(question, cfg, ...)` is what the CLI, the UI and the batch call: a `Run` for `strategy: single`, a
`StrategyRun` for `vote` and `escalate`. Both stream `teams.events` and end with a `Result`.
"""

from __future__ import annotations

from typing import Any

from teams.runner import Question, Run
from teams.schema import TeamConfig
from teams.strategies.run import StrategyRun

AnyRun = Run | StrategyRun


def start_run(question: Question | str, cfg: TeamConfig, **kwargs: Any) -> AnyRun:
    """A run of `cfg` on `question`, whatever its strategy (the same keyword arguments as `Run`)."""
    if cfg.strategy.kind == "single":
        return Run(question, cfg, **kwargs)
    return StrategyRun(question, cfg, **kwargs)


__all__ = ["AnyRun", "StrategyRun", "start_run"]
