"""Accuracy and tokens of the strategies (single, vote(3), vote(5), escalate(1), escalate(2)) with noisy models,
against the binomial expectation.

A noisy model is scripted in-process (tests/fakes/function_model.py): on each simulated question (generated
numbers, "a crates of b items each; how many items?") a solo attempt calls the calculator once, with the right
expression with probability p (independently per attempt) and a wrong one otherwise, and answers the figure
the calculator returned. Every attempt is a real `Run` of a one-agent solo team whose only tool is the
calculator, under the real `StrategyRun` (grouping, tally, adjudicator, escalation): no network, no sandbox.

- Tokens: each call reports fixed figures, as a real model with its system prompt and tool schemas would: a
  cheap attempt is 2 calls (3,000 in / 150 out for the tool call, 3,400 in / 250 out for the answer) = 6,800
  tokens; the strong model (escalate's second stage) is right with p + 0.15 and reports 4x those tokens
  (27,200 per attempt); the adjudicator's call is 2,500 in / 120 out. Tokens, not dollars: a strong model's
  price per token is higher too.
- "one wrong answer": a wrong attempt gives the question's one plausible wrong answer (a*(b+1)), so wrong
  attempts agree with each other and the binomial expectation applies (vote(3) at p: p^3 + 3p^2(1-p)).
- "all wrong answers different": each wrong attempt gives its own wrong answer (a*(b+k), k its attempt), so
  a tie goes to the adjudicator, scripted as uninformed: it approves the first candidate listed (the largest
  group, ties to the earliest attempt).
- escalate(2): 2 cheap solo attempts first; the strong solo attempt runs when the first attempts do not settle
  the question (escalate_when: all kinds; here only `disagree` can hold), no budget cap.
- escalate(1): one cheap solo attempt first, as teams/escalate.yaml ships; the strong attempt runs only when a
  check fails: here half of its wrong answers (drawn) are unsupported (one step on the calculator, the answer in
  its text only: `no_evidence`), the other half are backed by a tool result like right answers (no check can
  tell them from right ones). Only this strategy's attempts are ever unsupported.

Columns: accuracy and tokens of 200 seeded questions (one sample: the sampling error of an accuracy is about
+-3.4 points); "exact" weighs every right/wrong pattern of the attempts, each run once through the same code,
by its probability (the exact expectation of the code); "formula" is the closed form (binomial). The same
random draws serve every strategy (attempt k of a question is right in vote(3) iff it is in vote(5)).
Target (issue 13): vote(3) at p = 0.6 within 2 points of 64.8%.

    python bench/strategies.py
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import random
import re
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from math import comb
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from autogen_core import CancellationToken  # noqa: E402
from autogen_core.models import ChatCompletionClient  # noqa: E402
from loguru import logger  # noqa: E402

from config.settings import Settings  # noqa: E402
from evaluation.scoring import gaia_match  # noqa: E402
from models.spec import ModelSpec  # noqa: E402
from models.usage import UsageLedger  # noqa: E402
from teams import start_run  # noqa: E402
from teams.loader import parse_team  # noqa: E402
from teams.schema import TeamConfig  # noqa: E402
from tests.fakes.function_model import Call, ScriptedModels, ToolCalls, tool  # noqa: E402

SEED = 13
QUESTIONS = 200
PS = (0.5, 0.6, 0.7)
STRONG_GAIN = 0.15  # the strong model is right with p + this
STRONG_TOKENS = 4  # and reports this many times the cheap model's tokens
CHEAP_CALLS = {"tool": (3_000, 150), "answer": (3_400, 250)}  # (prompt, completion) tokens per call
ADJUDICATOR_CALL = (2_500, 120)
UNSUPPORTED = 0.5  # escalate(1): the share of wrong cheap answers that no tool result backs (its check fails)
CONCURRENT = 16  # questions in flight

SOLO: dict[str, Any] = {
    "name": "solo-sim",
    "agents": [{"name": "solo", "role": "solo", "tools": ["calculator"]}],
    "selection": {"mode": "round_robin"},
    "termination": {"approver": "solo", "approval_marker": None, "max_turns": 2},
}


def _attempt(model: str) -> dict[str, Any]:
    return {"team": SOLO, "models": {"default": {"model": model}}}


def strategies() -> dict[str, tuple[TeamConfig, list[str]]]:
    """name -> (team config, the model names of its attempts in order; `strong` is escalate's second stage)."""
    strong = {"default": {}, "strong": {"tier": "strong", "model": "adjudicator"}}
    out: dict[str, tuple[TeamConfig, list[str]]] = {
        "single": (parse_team({**SOLO, "name": "single", "models": {"default": {"model": "cheap1"}}}), ["cheap1"]),
    }
    for n in (3, 5):
        names = [f"cheap{i}" for i in range(1, n + 1)]
        out[f"vote({n})"] = (parse_team({"name": f"vote{n}", "models": strong, "strategy": {
            "kind": "vote", "attempts": [_attempt(m) for m in names]}}), names)
    # as teams/escalate.yaml: one cheap attempt; it escalates only when a check fails. `unsupported` is not a
    # model: the draw that makes a wrong answer of cheap1 one no tool result backs
    out["escalate(1)"] = (parse_team({"name": "escalate1", "models": {"default": {}}, "strategy": {
        "kind": "escalate", "attempts": [_attempt("cheap1")],
        "escalate_to": _attempt("strong")}}), ["cheap1", "unsupported", "strong"])
    out["escalate(2)"] = (parse_team({"name": "escalate2", "models": {"default": {}}, "strategy": {
        "kind": "escalate", "attempts": [_attempt("cheap1"), _attempt("cheap2")],
        "escalate_to": _attempt("strong")}}), ["cheap1", "cheap2", "strong"])
    return out


def chance(model: str, p: float) -> float:
    """The probability that `model` is right (for `unsupported`: that a wrong answer is unsupported)."""
    return min(1.0, p + STRONG_GAIN) if model == "strong" else UNSUPPORTED if model == "unsupported" else p


@dataclass(frozen=True)
class Question:
    number: int
    a: int
    b: int

    @property
    def text(self) -> str:
        return (f"Simulated question {self.number}: a depot ships {self.a} crates of {self.b} items each. "
                "How many items does it ship?")

    @property
    def truth(self) -> str:
        return str(self.a * self.b)

    def expression(self, right: bool, wrong_k: int) -> str:
        return f"{self.a}*{self.b}" if right else f"{self.a}*({self.b}+{wrong_k})"

    def wrong(self, wrong_k: int) -> str:
        return str(self.a * (self.b + wrong_k))


def _usage(factor: int) -> Callable[[Call, str | ToolCalls], tuple[int, int]]:
    def usage(call: Call, reply: str | ToolCalls) -> tuple[int, int]:
        prompt, completion = CHEAP_CALLS["tool" if isinstance(reply, ToolCalls) else "answer"]
        return prompt * factor, completion * factor
    return usage


def _answer_the_tool_result(call: Call) -> str:
    figure = call.last_tool_results[0].strip()
    return f"The calculator gives {figure} items.\nFINAL ANSWER: {figure}"


def _uninformed_adjudicator(call: Call) -> str:
    first = re.search(r"^Candidate 1: (.+)$", call.question, re.MULTILINE)
    return f"APPROVED\nFINAL ANSWER: {first.group(1) if first else ''}"


class Models:
    """Routes each model name of a question's run to its own scripted model (made on its first call)."""

    def __init__(self, question: Question, right: dict[str, bool], distinct: bool) -> None:
        self.question, self.right, self.distinct = question, right, distinct
        self.scripted: dict[str, ScriptedModels] = {}

    def _make(self, model: str) -> ScriptedModels:
        if model == "adjudicator":
            return ScriptedModels({"adjudicator": [_uninformed_adjudicator]}, usage=lambda c, r: ADJUDICATOR_CALL)
        k = int(model[5:]) if model.startswith("cheap") else 9  # the strong model's own wrong answer
        k = k if self.distinct else 1
        usage = _usage(STRONG_TOKENS if model == "strong" else 1)
        if not self.right[model] and self.right.get("unsupported", False):
            # one step on the calculator, the rest in its text: the answer is in no tool result
            wrong = self.question.wrong(k)
            return ScriptedModels({"solo": [tool("calculator", expression=f"{self.question.b}+{k}"),
                                            f"So {self.question.a} crates hold {wrong} items.\nFINAL ANSWER: {wrong}"]},
                                  usage=usage)
        expression = self.question.expression(self.right[model], k)
        return ScriptedModels({"solo": [tool("calculator", expression=expression), _answer_the_tool_result]},
                              usage=usage)

    def factory(self, spec: ModelSpec, agent: str, ledger: UsageLedger, abort: CancellationToken) -> ChatCompletionClient:
        model = spec.model if isinstance(spec.model, str) else agent
        if model not in self.scripted:
            self.scripted[model] = self._make(model)
        return self.scripted[model].factory(spec, agent, ledger, abort)


@dataclass(frozen=True)
class Outcome:
    correct: bool
    tokens: int
    escalated: bool
    adjudicated: bool


SETTINGS = Settings(_env_file=None)


async def run_one(cfg: TeamConfig, question: Question, right: dict[str, bool], distinct: bool) -> Outcome:
    models = Models(question, right, distinct)
    run = start_run(question.text, cfg, settings=SETTINGS, client_factory=models.factory)
    async for _ in run.events():
        pass
    r = run.result
    assert r is not None, "the run ended without a result"
    for scripted in models.scripted.values():
        scripted.assert_complete()  # every attempt made its tool call and answered, no extra call
    method = r.decision.method if r.decision is not None else ""
    return Outcome(gaia_match(r.answer, question.truth), r.prompt_tokens + r.completion_tokens,
                   method == "escalated", "adjudicator" in r.usage)


def formula(name: str, p: float, distinct: bool) -> float:
    """The closed-form accuracy (binomial; an uninformed adjudicator picks the plurality, ties uniformly)."""
    q = min(1.0, p + STRONG_GAIN)

    def k_right(n: int, k: int) -> float:
        return comb(n, k) * p**k * (1 - p) ** (n - k)

    if name == "single":
        return p
    if name == "escalate(1)":  # escalated when its answer is wrong and unsupported
        return p + (1 - p) * UNSUPPORTED * q
    if name == "escalate(2)":  # the first two agree when both are right (or, one wrong answer, both wrong)
        settled_right = p * p
        escalated = 1 - p * p - (0 if distinct else (1 - p) ** 2)
        return settled_right + escalated * q
    n = int(name[5])
    majority = sum(k_right(n, k) for k in range(n // 2 + 1, n + 1))
    if not distinct:
        return majority
    # all wrong answers different: below a majority, the right group is picked when it is the largest alone
    # (k >= 2), or by the adjudicator's tie-break among n singletons (k == 1: the earliest attempt, 1 in n)
    return majority + sum(k_right(n, k) for k in range(2, n // 2 + 1)) + k_right(n, 1) / n


async def exact(cfg: TeamConfig, models: Sequence[str], distinct: bool) -> list[tuple[tuple[bool, ...], Outcome]]:
    """Every right/wrong pattern of the attempts, run once."""
    question = Question(0, 417, 23)
    patterns = list(itertools.product((True, False), repeat=len(models)))
    outcomes = await asyncio.gather(*(run_one(cfg, question, dict(zip(models, pat, strict=True)), distinct) for pat in patterns))
    return list(zip(patterns, outcomes, strict=True))


def weigh(patterns: list[tuple[tuple[bool, ...], Outcome]], models: Sequence[str], p: float) -> tuple[float, float, float]:
    """(accuracy, tokens per question, share escalated) expected at p."""
    acc = tokens = esc = 0.0
    for pattern, o in patterns:
        w = 1.0
        for model, right in zip(models, pattern, strict=True):
            w *= chance(model, p) if right else 1 - chance(model, p)
        acc, tokens, esc = acc + w * o.correct, tokens + w * o.tokens, esc + w * o.escalated
    return acc, tokens, esc


async def sample(cfg: TeamConfig, models: Sequence[str], questions: list[Question], draws: list[dict[str, float]],
                 p: float, distinct: bool) -> list[Outcome]:
    gate = asyncio.Semaphore(CONCURRENT)

    async def one(question: Question, draw: dict[str, float]) -> Outcome:
        right = {m: draw[m] < chance(m, p) for m in models}
        async with gate:
            return await run_one(cfg, question, right, distinct)

    return list(await asyncio.gather(*(one(q, d) for q, d in zip(questions, draws, strict=True))))


async def main() -> None:
    logger.remove()  # the figures, not the runs' logs
    logging.getLogger("autogen_core").setLevel(logging.CRITICAL)
    started = time.monotonic()
    rng = random.Random(SEED)
    questions = [Question(i, rng.randint(12, 980), rng.randint(3, 97)) for i in range(1, QUESTIONS + 1)]
    # one uniform draw per question and attempt: attempt k is right iff its draw < p (the same draws for all)
    draws = [{m: rng.random() for m in ("cheap1", "cheap2", "cheap3", "cheap4", "cheap5", "strong")} for _ in questions]
    unsupported = random.Random(SEED + 1)  # its own stream: escalate(1) leaves the others' draws as they were
    for draw in draws:
        draw["unsupported"] = unsupported.random()
    plans = strategies()
    print(f"{QUESTIONS} simulated questions (seed {SEED}) per p and strategy, through StrategyRun with in-process "
          "noisy models.\n"
          f"A cheap solo attempt: 1 calculator call + answer, right with p, 6,800 tokens. escalate(2): 2 cheap attempts, "
          f"on disagreement a strong one (right with p+{STRONG_GAIN:g}, {STRONG_TOKENS}x the tokens: 27,200).\n"
          f"escalate(1): 1 cheap attempt (as teams/escalate.yaml), the strong one when a check fails: here "
          f"{UNSUPPORTED:.0%} of its wrong answers are in no tool result (no_evidence), the rest are backed like right "
          "ones.\n"
          "accuracy, tokens/q, tokens/correct, escalated: the 200 questions, one seeded sample (accuracy +-3.4 "
          "points);\n"
          "exact: the exact expectation (every right/wrong pattern of the attempts run once through the same code, "
          "weighted by its probability); formula: the closed form (binomial);\n"
          "adjudicated: questions of the 200 the adjudicator decided.")
    worst = 0.0
    for distinct in (False, True):
        title = ("all wrong answers different; ties to an uninformed adjudicator (picks the first candidate)"
                 if distinct else "one plausible wrong answer per question (wrong attempts agree: the binomial case)")
        print(f"\n{title}")
        print(f"{'p':>4}  {'strategy':<11} {'accuracy':>8} {'exact':>7} {'formula':>7} {'tokens/q':>9} {'exact':>7} "
              f"{'tokens/correct':>14} {'exact':>7} {'escalated':>9} {'exact':>6} {'adjudicated':>11}")
        enumerated = {name: await exact(cfg, models, distinct) for name, (cfg, models) in plans.items()}
        for p in PS:
            for name, (cfg, models) in plans.items():
                outcomes = await sample(cfg, models, questions, draws, p, distinct)
                right = sum(o.correct for o in outcomes)
                tokens = sum(o.tokens for o in outcomes)
                acc, exp_tokens, exp_esc = weigh(enumerated[name], models, p)
                closed = formula(name, p, distinct)
                worst = max(worst, abs(acc - closed))
                escalated = (f"{sum(o.escalated for o in outcomes) / len(outcomes):>9.1%} {exp_esc:>6.1%}"
                             if name.startswith("escalate") else f"{'-':>9} {'-':>6}")
                adjudicated = sum(o.adjudicated for o in outcomes)
                print(f"{p:>4.2f}  {name:<11} {right / len(outcomes):>8.1%} {acc:>7.1%} {closed:>7.1%} "
                      f"{tokens / len(outcomes):>9,.0f} {exp_tokens:>7,.0f} {tokens / max(right, 1):>14,.0f} "
                      f"{exp_tokens / acc:>7,.0f} {escalated} {adjudicated:>11}")
    print(f"\nexact (through the code) vs formula: largest difference {worst * 100:.4f} points; "
          f"wall time {time.monotonic() - started:.0f}s")


if __name__ == "__main__":
    asyncio.run(main())
