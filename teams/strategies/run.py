"""Running one question under a `vote` or `escalate` strategy: attempts side by side, then one answer.

A `StrategyRun` has the interface of `teams.runner.Run` (`events()`, `cancel()`, `ledger`, `result`), so the
CLI, the UI and the batch run any team YAML the same way (`teams.strategies.start_run`). Each attempt is a
whole `Run` of its own (own work dir, sandbox, clients, guards); its events come through wrapped in
`InAttempt`, and the strategy's own events (`AttemptStarted`, `Escalating`, the adjudicator's turn, `Decided`)
frame them.

Time: the strategy file's `termination.timeout_seconds` (or the caller's) is the question's whole time. A
vote's attempts get 90% of it, the rest is the adjudicator's; escalate's first attempts get 40%, the
escalation what is left. No finished answer is lost: a cancel, a timeout or a failing adjudicator still ends
with the answer the attempts agreed on most.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from typing import Any, Literal

from autogen_core.models import ChatCompletionClient

from common.text import one_line
from config.settings import Settings
from models.providers import build_client, prepare_models
from models.usage import AgentUsage, UsageLedger, total_cost, unknown_prices
from teams import events as ev
from teams.result import Attempt, Decision, Proposal, Result, StopReason, TraceEntry, VoteGroup
from teams.run_setup import ClientFactory as ClientFactory  # re-exported, as before the move
from teams.run_setup import Question, RunSetup
from teams.runner import Run
from teams.schema import TeamConfig
from teams.strategies.adjudicate import Ruling, adjudicate
from teams.strategies.attempts import NOT_REUSED, FinishedAttempt, PlannedAttempt, plan_attempts
from teams.strategies.grouping import group_answers, majority

VOTE_SHARE = 0.9  # of the question's time, for a vote's attempts (the rest: the adjudicator)
FIRST_SHARE = 0.4  # of the question's time, for escalate's first attempts
ADJUDICATOR_MIN_S = 5.0


class LedgerView:
    """The usage of every attempt and the adjudicator, summed (what the batch shows while a question runs).
    `reused`: what the attempts reused from an earlier session spent then (it counts towards a budget)."""

    def __init__(self) -> None:
        self.ledgers: list[UsageLedger] = []
        self.reused: list[AgentUsage] = []

    @property
    def records(self) -> list[Any]:
        return [r for ledger in self.ledgers for r in ledger.records]

    @property
    def prompt_tokens(self) -> int:
        return sum(ledger.prompt_tokens for ledger in self.ledgers) + sum(u.prompt_tokens for u in self.reused)

    @property
    def completion_tokens(self) -> int:
        return sum(ledger.completion_tokens for ledger in self.ledgers) + sum(u.completion_tokens for u in self.reused)

    @property
    def calls(self) -> int:
        return sum(ledger.calls for ledger in self.ledgers) + sum(u.calls for u in self.reused)

    @property
    def cost_usd(self) -> float | None:
        return total_cost([*self.records, *self.reused])

    def unknown_prices(self) -> list[str]:
        return unknown_prices(self.records)


def _attempt_record(planned: PlannedAttempt, result: Result) -> Attempt:
    return Attempt(
        number=planned.number, label=planned.label, team=result.team or planned.cfg.name, stage=planned.stage,
        answer=result.answer, raw_answer=result.raw_answer, approved=result.approved, stop_reason=result.stop_reason,
        duration_s=round(result.duration_s, 3), prompt_tokens=result.prompt_tokens,
        completion_tokens=result.completion_tokens, cost_usd=result.cost_usd, models=dict(result.models),
        checks=list(result.checks), error=result.error, run_id=result.run_id,
    )


class StrategyRun(RunSetup):
    """One question under `cfg.strategy` (vote or escalate). Iterate `events()` once; `cancel()` from anywhere."""

    def __init__(
        self,
        question: Question | str,
        team: TeamConfig,
        *,
        settings: Settings | None = None,
        client_factory: ClientFactory | None = None,
        timeout_s: float | None = None,
        max_turns: int | None = None,
        run_id: str | None = None,
        allow_loopback: bool = False,
        finished: Mapping[int, FinishedAttempt] | None = None,
        on_attempt: Callable[[FinishedAttempt], None] | None = None,
    ) -> None:
        """`finished`: attempts of this question that ended in an earlier session (by number); one whose
        fingerprint still matches is reused, not run. `on_attempt` hears of each attempt that ends on its own
        (to keep it for such a resume)."""
        if team.strategy.kind == "single":
            raise ValueError(f"team {team.name!r} has strategy 'single': run it with teams.runner.Run")
        super().__init__(question, team, settings=settings, client_factory=client_factory, timeout_s=timeout_s,
                         run_id=run_id, allow_loopback=allow_loopback)
        self.max_turns = max_turns
        self.ledger = LedgerView()
        self.adjudicator_ledger = UsageLedger()
        self.ledger.ledgers.append(self.adjudicator_ledger)
        self.runs: dict[int, Run] = {}
        self._finished = dict(finished or {})
        self._on_attempt = on_attempt
        self.reused: dict[int, Result] = {}  # attempt number -> its result from an earlier session
        self._stopped: tuple[StopReason, str] | None = None

    # --- control -------------------------------------------------------------------------------------
    def cancel(self, reason: str = "stopped by the user") -> None:
        if self._stopped is None:
            self._stopped = ("cancelled", reason)
        for run in self.runs.values():
            run.cancel(reason)
        self.abort.cancel()

    # --- the run -------------------------------------------------------------------------------------
    async def events(self) -> AsyncIterator[ev.Event]:
        started = time.monotonic()
        deadline = started + self.timeout_s
        attempts: list[Attempt] = []
        evidence: dict[int, list[str]] = {}
        decision: Decision
        answer, approved, stop, detail = "", False, "no_answer", ""
        try:
            planned = plan_attempts(self.cfg, self.settings)
        except Exception as exc:  # a provider list naming an unknown provider, ...
            planned = []
            self._stopped = ("error", f"cannot plan the attempts: {one_line(str(exc))}")
        first = [p for p in planned if p.stage != "escalated"]
        yield ev.RunStarted(self.run_id, self.question.text, self.cfg.name, [f"{p.number}. {p.label}" for p in planned],
                            [p.name for p in self.question.attachments])
        self._log.info("strategy {} started: team={} attempts={}", self.cfg.strategy.kind, self.cfg.name, len(planned))
        share = VOTE_SHARE if self.cfg.strategy.kind == "vote" else FIRST_SHARE
        async for item in self._stage(first, self.timeout_s * share, attempts, evidence):
            yield item
        if self.cfg.strategy.kind == "vote":
            async for item in self._vote(attempts, evidence, deadline):
                if isinstance(item, tuple):
                    decision, answer, approved, stop, detail = item
                else:
                    yield item
        else:
            async for item in self._escalate(planned, attempts, evidence, deadline):
                if isinstance(item, tuple):
                    decision, answer, approved, stop, detail = item
                else:
                    yield item
        if self._stopped is not None and stop not in ("majority", "adjudicated", "approved"):
            stop, detail = self._stopped[0], self._stopped[1] if not detail else f"{self._stopped[1]}; {detail}"
        yield ev.Decided(decision, answer)
        self.result = self._result(attempts, decision, answer, approved, stop, detail, time.monotonic() - started)
        self._log.info("strategy finished: {} answer={!r} ({})", self.result.stop_reason, answer, decision.reason)
        yield ev.RunFinished(self.result)

    async def _stage(self, planned: Sequence[PlannedAttempt], budget_s: float, attempts: list[Attempt],
                     evidence: dict[int, list[str]], watch: Callable[[Run], None] | None = None) -> AsyncIterator[ev.Event]:
        """Run `planned` concurrently, streaming their events; their records go into `attempts`."""
        queue: asyncio.Queue[tuple[int, ev.Event | None]] = asyncio.Queue()
        tasks = []
        for p in planned:
            if self._stopped is not None:
                break
            if (kept := self._reusable(p)) is not None:
                self.reused[p.number] = kept.result
                self.ledger.reused.extend(kept.result.usage.values())
                evidence[p.number] = list(kept.evidence)
                self._log.info("attempt {} reused from an earlier session: answer={!r}", p.number, kept.result.answer)
                yield ev.AttemptStarted(p.number, p.label, p.cfg.name, p.stage)
                yield ev.InAttempt(p.number, ev.RunFinished(kept.result))
                continue
            timeout = max(1.0, min(p.cfg.termination.timeout_seconds, budget_s))
            run = Run(self.question, p.cfg, settings=self.settings, client_factory=self._client_factory,
                      timeout_s=timeout, max_turns=self.max_turns, run_id=f"{self.run_id}.{p.number}",
                      allow_loopback=self._allow_loopback)
            self.runs[p.number] = run
            self.ledger.ledgers.append(run.ledger)
            yield ev.AttemptStarted(p.number, p.label, p.cfg.name, p.stage)

            async def pump(number: int = p.number, run: Run = run, planned_attempt: PlannedAttempt = p) -> None:
                try:
                    async for event in run.events():
                        await queue.put((number, event))
                    self._keep(planned_attempt, run)
                finally:
                    await queue.put((number, None))

            tasks.append(asyncio.create_task(pump()))
        open_runs = len(tasks)
        try:
            while open_runs:
                number, event = await queue.get()
                if event is None:
                    open_runs -= 1
                    continue
                if watch is not None:
                    watch(self.runs[number])
                yield ev.InAttempt(number, event)
        finally:
            for task in tasks:
                if not task.done():
                    task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
        for p in planned:
            ran = self.runs.get(p.number)
            result = ran.result if ran is not None else self.reused.get(p.number)
            if result is not None:
                attempts.append(_attempt_record(p, result))
            if ran is not None and ran.result is not None:
                evidence[p.number] = list(ran.transcript.evidence)

    def _reusable(self, p: PlannedAttempt) -> FinishedAttempt | None:
        kept = self._finished.get(p.number)
        if kept is None or kept.fingerprint != p.fingerprint() or kept.result.stop_reason in NOT_REUSED:
            return None
        return kept

    def _keep(self, p: PlannedAttempt, run: Run) -> None:
        """Hand an attempt that ended on its own to `on_attempt`; a failing keeper never fails the question."""
        if self._on_attempt is None or run.result is None or run.result.stop_reason in NOT_REUSED:
            return
        try:
            self._on_attempt(FinishedAttempt(p.number, p.fingerprint(), run.result, list(run.transcript.evidence)))
        except Exception as exc:
            self._log.warning("attempt {} could not be kept for a resume: {}", p.number, one_line(str(exc)))

    # --- vote ----------------------------------------------------------------------------------------
    async def _vote(self, attempts: list[Attempt], evidence: dict[int, list[str]], deadline: float) -> AsyncIterator[Any]:
        s = self.cfg.strategy
        groups = group_answers(attempts)
        voters = sum(a.repeat for a in s.attempts)
        tally = _tally(groups, voters)
        if not groups:
            reasons = ", ".join(sorted({a.stop_reason for a in attempts})) or "none ran"
            yield (Decision("none", f"no attempt produced an answer ({reasons})"), "", False, "no_answer",
                   f"no attempt produced an answer ({reasons})")
            return
        win = majority(groups, voters, s.min_agreement)
        if win is not None:
            method: Literal["unanimous", "majority"] = "unanimous" if len(win.attempts) == voters else "majority"
            reason = f"{method}: {tally}"
            yield (Decision(method, reason, groups), win.answer, True, "majority", reason)
            return
        if s.adjudicator is None or self._stopped is not None:
            why = "no adjudicator is configured" if s.adjudicator is None else "the run was stopped"
            reason = f"no majority ({tally}); {why}: the largest group's answer is kept, unapproved"
            yield (Decision("plurality", reason, groups), groups[0].answer, False, "plurality", reason)
            return
        ruling: Ruling | None = None
        async for item in self._adjudicate(groups, attempts, evidence, deadline):
            if isinstance(item, Ruling):
                ruling = item
            else:
                yield item
        assert ruling is not None
        if ruling.verdict == "approved" and ruling.group is not None:
            reason = f"no majority ({tally}); {ruling.reason}"
            yield (Decision("adjudicated", reason, groups, ruling.text), ruling.group.answer, True, "adjudicated", reason)
        elif ruling.verdict == "rejected":
            kept = groups[0].answer if self.cfg.answer.on_stop == "best_proposed" else ""
            reason = f"no majority ({tally}); {ruling.reason}" + ("; the largest group's answer is kept, unapproved" if kept else "")
            yield (Decision("rejected", reason, groups, ruling.text), kept, False, "rejected", reason)
        else:
            reason = f"no majority ({tally}); {ruling.reason}: the largest group's answer is kept, unapproved"
            yield (Decision("plurality", reason, groups, ruling.text or None), groups[0].answer, False, "plurality", reason)

    async def _adjudicate(self, groups: list[VoteGroup], attempts: list[Attempt], evidence: dict[int, list[str]],
                          deadline: float) -> AsyncIterator[Any]:
        spec = self.cfg.adjudicator_model()
        yield ev.TurnStarted("adjudicator", 1)
        ruling: Ruling
        client: ChatCompletionClient | None = None
        try:
            if self._client_factory is not None:
                client = self._client_factory(spec, "adjudicator", self.adjudicator_ledger, self.abort)
            else:
                await prepare_models([spec], self.settings)
                client = build_client(spec, self.settings, agent="adjudicator", ledger=self.adjudicator_ledger,
                                      abort=self.abort)
            remaining = max(ADJUDICATOR_MIN_S, deadline - time.monotonic())
            ruling = await asyncio.wait_for(
                adjudicate(self.cfg, self.question.text, groups, attempts, evidence, client, self.abort), remaining
            )
        except asyncio.TimeoutError:
            ruling = Ruling("none", None, "", "the adjudicator did not answer in time")
        except Exception as exc:  # a provider error must not lose the attempts' answers
            self._log.warning("adjudicator failed: {}", one_line(str(exc)))
            ruling = Ruling("none", None, "", f"the adjudicator failed ({one_line(str(exc), 200)})")
        finally:
            if client is not None:
                try:
                    await client.close()
                except Exception:
                    pass
        u = self.adjudicator_ledger
        yield ev.TurnEnded("adjudicator", 1, ruling.text or ruling.reason, u.prompt_tokens, u.completion_tokens)
        yield ruling

    # --- escalate ------------------------------------------------------------------------------------
    def _spent(self) -> tuple[int, float | None]:
        return self.ledger.prompt_tokens + self.ledger.completion_tokens, self.ledger.cost_usd

    def _over_budget(self) -> str | None:
        s = self.cfg.strategy
        tokens, cost = self._spent()
        if s.budget_tokens is not None and tokens >= s.budget_tokens:
            return f"the budget of {s.budget_tokens:,} tokens was spent ({tokens:,})"
        if s.budget_usd is not None and cost is not None and cost >= s.budget_usd:
            return f"the budget of ${s.budget_usd:g} was spent (${cost:.4f})"
        return None

    async def _escalate(self, planned: list[PlannedAttempt], attempts: list[Attempt], evidence: dict[int, list[str]],
                        deadline: float) -> AsyncIterator[Any]:
        s = self.cfg.strategy
        groups = group_answers(attempts)
        best = groups[0].answer if groups else ""
        reasons = escalation_reasons(attempts, groups, s.escalate_when)
        if not reasons:
            lead = next(a for a in attempts if a.number in groups[0].attempts)
            reason = f"the first attempt{'s agree' if len(attempts) > 1 else ' passed its checks'}: {_tally(groups, len(attempts))}"
            yield (Decision("first", reason, groups), best, lead.approved, lead.stop_reason, reason)
            return
        why = "; ".join(reasons)
        over = self._over_budget()
        if over is not None or self._stopped is not None:
            held = over or "the run was stopped"
            reason = f"not escalated ({why}) because {held}; the first attempts' answer is kept, unapproved"
            yield (Decision("first", reason, groups), best, False, "budget" if over else "cancelled", reason)
            return
        yield ev.Escalating(why)
        escalation = [p for p in planned if p.stage == "escalated"]
        before = len(attempts)

        def watch(run: Run) -> None:
            if (over := self._over_budget()) is not None:
                run.stop_over_budget(over)

        async for item in self._stage(escalation, max(1.0, deadline - time.monotonic()), attempts, evidence, watch):
            yield item
        final = attempts[before] if len(attempts) > before else None
        all_groups = group_answers(attempts)
        if final is not None and final.answer:
            reason = f"escalated ({why}); the escalation answered ({final.stop_reason})"
            yield (Decision("escalated", reason, all_groups), final.answer, final.approved, final.stop_reason, reason)
            return
        ended = final.stop_reason if final is not None else "did not run"
        reason = f"escalated ({why}); the escalation gave no answer ({ended})" + (
            ": the first attempts' answer is kept, unapproved" if best else "")
        stop: StopReason = "budget" if final is not None and final.stop_reason == "budget" else "no_answer"
        if best and stop == "no_answer":
            stop = "plurality"
        yield (Decision("escalated", reason, all_groups), best, False, stop, reason)

    # --- the result ----------------------------------------------------------------------------------
    def _result(self, attempts: list[Attempt], decision: Decision, answer: str, approved: bool, stop: Any,
                detail: str, duration: float) -> Result:
        usage, models, trace, proposals = {}, {}, [], []
        results = {n: run.result for n, run in self.runs.items() if run.result is not None} | self.reused
        for number, r in sorted(results.items()):
            usage.update({f"{number}.{agent}": u for agent, u in r.usage.items()})
            models.update({f"{number}.{agent}": m for agent, m in r.models.items()})
            trace += [TraceEntry(f"{number}.{t.source}", t.kind, t.content) for t in r.trace]
            proposals += [Proposal(f"{number}.{p.agent}", p.answer, p.verdict) for p in r.proposals]
        usage.update(self.adjudicator_ledger.by_agent())
        chosen = next((a for a in attempts if answer and a.answer == answer), None)
        errors = [a.error for a in attempts if a.error]
        return Result(
            question=self.question.text, answer=answer, raw_answer=chosen.raw_answer if chosen else (answer or None),
            approved=approved and bool(answer), stop_reason=stop, stop_detail=detail, duration_s=duration,
            usage=usage, trace=trace, proposals=proposals, team=self.cfg.name, models=models, run_id=self.run_id,
            error=errors[0] if errors and not answer else None,
            code_unavailable=next((r.code_unavailable for r in self.runs.values() if r.code_unavailable), None),
            checks=list(chosen.checks) if chosen else [], strategy=self.cfg.strategy.kind, attempts=attempts,
            decision=decision,
        )


def _tally(groups: Sequence[VoteGroup], voters: int) -> str:
    if not groups:
        return f"no answer from {voters} attempts"
    votes = ", ".join(f"{g.answer!r} {len(g.attempts)}" for g in groups)
    answered = sum(len(g.attempts) for g in groups)
    return f"{votes} of {voters}" + ("" if answered == voters else f" ({voters - answered} without an answer)")


def escalation_reasons(attempts: Sequence[Attempt], groups: Sequence[VoteGroup], when: Sequence[str]) -> list[str]:
    """Why the first attempts do not settle the question, restricted to `escalate_when`'s kinds."""
    found: list[tuple[str, str]] = []
    if not groups:
        found.append(("no_answer", "no first attempt answered"))
    else:
        if len(groups) > 1:
            found.append(("disagree", "the first attempts disagree: " + _tally(groups, len(attempts))))
        if any(not a.answer for a in attempts):
            found.append(("no_answer", "a first attempt gave no answer"))
    answered = [a for a in attempts if a.answer]
    if any(not a.approved for a in answered):
        found.append(("not_approved", "an answer was not approved in its run (" +
                      ", ".join(sorted({a.stop_reason for a in answered if not a.approved})) + ")"))
    if any(c.startswith(("form:", "not approved:")) for a in answered for c in a.checks):
        found.append(("form", "an answer breaks the question's form instructions"))
    if any(c.startswith("evidence: the answer appears in no") for a in answered for c in a.checks):
        found.append(("no_evidence", "an answer appears in no tool result or program output"))
    return [text for kind, text in found if kind in when]
