"""What the guard tests (tests/test_guards.py) and the stall cases (tests/test_stall_cases.py) share: a
calculator that counts what it really evaluated, and a review read with the shipped teams' markers."""

from __future__ import annotations

import pytest

import agents.tools.calculator as calculator_module
from teams.termination import Verdict, review_verdict


@pytest.fixture
def calculator_runs(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Every expression the calculator really evaluated."""
    ran: list[str] = []
    real = calculator_module.calculate

    def counting(expression: str) -> str:
        ran.append(expression)
        return real(expression)

    monkeypatch.setattr(calculator_module, "calculate", counting)
    return ran


def verdict_of(review: str) -> Verdict | None:
    """The critic's verdict in `review`, read with the markers of the shipped teams."""
    return review_verdict(review, answer_marker="FINAL ANSWER:", approval_marker="APPROVED", rejection_marker="REJECTED")
