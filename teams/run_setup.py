"""What a team run and a strategy run set up alike: `RunSetup`, the base of `teams.runner.Run` and
`teams.strategies.run.StrategyRun`.

Both take the same arguments and hold them the same way: the question (a `Question`), the team config, the
settings, a run id, the question's time limit, their own abort token, the result once finished, and a logger
bound to the run and question ids. What differs (the ledger, the turn limit, the live state) stays in each class.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from autogen_core import CancellationToken
from autogen_core.models import ChatCompletionClient
from loguru import logger

from config.settings import Settings, get_settings
from models.spec import ModelSpec
from models.usage import UsageLedger
from teams.result import Result
from teams.schema import TeamConfig

ClientFactory = Callable[[ModelSpec, str, UsageLedger, CancellationToken], ChatCompletionClient]


@dataclass
class Question:
    text: str
    attachments: list[Path] = field(default_factory=list)
    task_id: str | None = None


class RunSetup:
    """The common part of a run's `__init__`; subclasses call it first, then add their own state."""

    def __init__(
        self,
        question: Question | str,
        team: TeamConfig,
        *,
        settings: Settings | None = None,
        client_factory: ClientFactory | None = None,
        timeout_s: float | None = None,
        run_id: str | None = None,
        allow_loopback: bool = False,
    ) -> None:
        self.question = question if isinstance(question, Question) else Question(question)
        self.cfg = team
        self.settings = settings or get_settings()
        self.run_id = run_id or uuid.uuid4().hex[:8]
        self.timeout_s = timeout_s or self.settings.question_timeout or team.termination.timeout_seconds
        self.abort = CancellationToken()
        self.result: Result | None = None
        self._client_factory = client_factory
        self._allow_loopback = allow_loopback
        self._log = logger.bind(run_id=self.run_id, question_id=self.question.task_id or "-")
