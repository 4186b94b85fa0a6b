"""Running one question through a team: `solve()` for a Result, `Run.events()` for the live stream.

Stopping (timeout or cancel) never waits on AutoGen's CancellationToken, which hangs a team cancelled
during a tool call (autogen#7007). Instead the run's own abort token interrupts model calls, tools and
the sandbox at once, ExternalTermination ends the group chat, and a bounded hard cancel is the last
resort. Whatever happens, the best answer proposed so far is kept.
"""

from __future__ import annotations

import asyncio
import contextlib
import shutil
import tempfile
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from autogen_agentchat.messages import SelectSpeakerEvent
from autogen_core.code_executor import CodeExecutor
from autogen_core.models import ChatCompletionClient
from loguru import logger

from agents.tools.registry import ToolCallCache, ToolContext
from common.text import one_line
from config.settings import Settings
from models.client import ManagedClient
from models.providers import build_client, prepare_models
from models.spec import ModelSpec
from models.usage import UsageLedger
from observability import metrics
from observability.tracing import RunTelemetry, setup_tracing
from sandbox import Limits, SandboxUnavailable, create_executor
from teams import events as ev
from teams.build import BuiltTeam, build_team
from teams.checks import facts_for_critic
from teams.code_execution import uses_code, without_code
from teams.result import Result, StopReason
from teams.run_setup import ClientFactory as ClientFactory  # re-exported, as before the move
from teams.run_setup import Question as Question  # re-exported: callers import it from here
from teams.run_setup import RunSetup
from teams.schema import TeamConfig, agent_models
from teams.stop_noise import quiet_expected_stop_errors
from teams.transcript import Ending, Transcript

STOP_GRACE_S = 5.0  # how long a stopping team may take to unwind before its task is cancelled
HARD_CANCEL_WAIT_S = 2.0


class _Done:
    pass


@dataclass
class _Failed:
    error: BaseException


_WAKE = object()


def task_text(question: Question) -> str:
    if not question.attachments:
        return question.text
    names = ", ".join(p.name for p in question.attachments)
    return f"{question.text}\n\nAttached file(s), in the question's folder: {names}"


class Run(RunSetup):
    """One question, one team. Iterate `events()` once; call `cancel()` from anywhere to stop it."""

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
    ) -> None:
        super().__init__(question, team, settings=settings, client_factory=client_factory, timeout_s=timeout_s,
                         run_id=run_id, allow_loopback=allow_loopback)
        self.max_turns = max_turns or self.settings.max_turns or team.termination.max_turns
        self.ledger = UsageLedger()
        self._stop_kind: StopReason | None = None
        self._stop_detail = ""
        self._queue: asyncio.Queue[Any] = asyncio.Queue()
        self._executor: CodeExecutor | None = None
        self._executor_started = False
        self._executor_lock = asyncio.Lock()
        # Why this run has no run_python (no isolated sandbox here, subprocess not opted into); None = it has it.
        self.code_unavailable: str | None = None
        self._staged: list[Path] = []
        self.telemetry = RunTelemetry(self.run_id, self.question.task_id, team.name) if setup_tracing() else None
        self.outputs: dict[str, Any] = {}  # tools' structured results by call id, shared with the transcript
        self.transcript = Transcript(team, self.ledger, outputs=self.outputs, question=self.question.text)
        self._failure: BaseException | None = None
        self._built: BuiltTeam | None = None

    # --- control -------------------------------------------------------------------------------------
    def cancel(self, reason: str = "stopped by the user") -> None:
        self._request_stop("cancelled", reason)

    def stop_over_budget(self, detail: str) -> None:
        """End the run now with stop reason `budget`, keeping its best answer (an escalation's spending cap)."""
        self._request_stop("budget", detail)

    def _request_stop(self, kind: StopReason, detail: str) -> None:
        if self._stop_kind is not None:
            return
        self._stop_kind, self._stop_detail = kind, detail
        self._log.info("stopping run: {} ({})", kind, detail)
        quiet_expected_stop_errors()  # before the abort: the errors it makes AutoGen log are expected
        if self._built is not None:
            self._built.external.set()
        self.abort.cancel()  # interrupts in-flight model calls, tools and sandbox runs
        self._queue.put_nowait(_WAKE)

    def _facts_for(self, agent: str) -> Callable[[], str | None] | None:
        """For the approver: the program checks on the answer it is about to review (teams/checks.py)."""
        if agent != self.cfg.termination.approver:
            return None

        def facts() -> str | None:
            pending = next((p for p in reversed(self.transcript.proposals) if p.verdict == "proposed"), None)
            if pending is None:
                return None
            return facts_for_critic(self.question.text, pending.answer, self.transcript.evidence) or None

        return facts

    # --- resources -----------------------------------------------------------------------------------
    def _client(self, spec: ModelSpec, agent: str) -> ChatCompletionClient:
        if self._client_factory is not None:
            return self._client_factory(spec, agent, self.ledger, self.abort)
        return build_client(
            spec, self.settings, agent=agent, ledger=self.ledger, abort=self.abort, telemetry=self.telemetry
        )

    def _create_executor(self) -> CodeExecutor:
        sb = self.cfg.sandbox
        allow = sb.allow_subprocess if self.settings.sandbox_allow_subprocess is None else self.settings.sandbox_allow_subprocess
        return create_executor(
            self.settings.sandbox_backend or sb.backend,
            files=list(self._staged),
            limits=Limits(timeout_s=sb.timeout_seconds, memory_mb=sb.memory_mb),
            allow_subprocess=allow,
            image=self.settings.sandbox_image,
            python=self.settings.sandbox_python,
            wasm_dir=self.settings.sandbox_wasm_dir,
        )

    async def _choose_executor(self) -> str | None:
        """Pick the sandbox before the team is built (not started: that waits for the first program).
        Returns why code cannot run here, or None."""
        try:
            # Probing docker/bwrap blocks (a hung daemon for seconds): keep it off the event loop.
            self._executor = await asyncio.to_thread(self._create_executor)
        except SandboxUnavailable as exc:
            return str(exc)
        return None

    async def _get_executor(self) -> CodeExecutor:
        async with self._executor_lock:
            if self._executor is None:
                self._executor = await asyncio.to_thread(self._create_executor)
            if not self._executor_started:
                self._executor_started = True  # set first: a start that fails half-way is still stopped
                await self._executor.start()
            return self._executor

    def _stage_attachments(self, workdir: Path) -> None:
        for src in self.question.attachments:
            dest = workdir / Path(src).name
            try:
                shutil.copyfile(src, dest)
            except OSError as exc:
                raise OSError(f"cannot read the attachment {Path(src).name}: {exc.strerror or exc}") from None
            self._staged.append(dest)

    # --- the run -------------------------------------------------------------------------------------
    async def events(self) -> AsyncIterator[ev.Event]:
        started = time.monotonic()
        workdir = Path(tempfile.mkdtemp(prefix=f"roundtable-{self.run_id}-"))
        producer: asyncio.Task[None] | None = None
        metrics.run_started()
        try:
            tool_ctx = ToolContext(
                settings=self.settings,
                workdir=workdir,
                abort=self.abort,
                executor=self._get_executor,
                allow_loopback=self._allow_loopback,
                telemetry=self.telemetry,
                outputs=self.outputs,
                ledger=self.ledger,
                repeat_calls=self.cfg.guards.repeated_tool_calls,
                call_cache=ToolCallCache(
                    loop_limit=self.cfg.guards.repeated_call_limit,
                    on_loop=lambda detail: self._request_stop("stalled", detail),
                ),
            )
            try:
                self._stage_attachments(workdir)
                cfg = self.cfg
                if uses_code(cfg) and (problem := await self._choose_executor()) is not None:
                    self.code_unavailable = problem
                    self._log.warning("running without code execution: {}", problem)
                    cfg = without_code(cfg, "no isolated sandbox can run programs on this host")
                if self._client_factory is None:
                    await prepare_models([spec for _, spec in agent_models(cfg)], self.settings)
                self._built = build_team(
                    cfg,
                    client_for=self._client,
                    tool_ctx=tool_ctx,
                    max_turns=self.max_turns,
                    timeout_s=self.timeout_s,
                    on_select=lambda name: self._queue.put_nowait(SelectSpeakerEvent(content=[name], source="rules")),
                    facts_for=self._facts_for,
                )
                if self._built.guards is not None:  # the form checks read the question (teams/checks.py)
                    self._built.guards.question = self.question.text
                tool_ctx.vision_client = next(
                    (c for c in self._built.clients.values() if c.model_info.get("vision")), None
                )
            except Exception as exc:
                self._failure = exc
                self._request_stop("error", f"cannot start the run: {one_line(str(exc))}")
            yield ev.RunStarted(
                self.run_id,
                self.question.text,
                self.cfg.name,
                self.cfg.agent_names,
                [p.name for p in self._staged],
                code_unavailable=self.code_unavailable,
            )
            if self._built is not None and self._failure is None:
                self._log.info("run started: team={} agents={} question={}", self.cfg.name, ",".join(self.cfg.agent_names), one_line(self.question.text, 100))
                with logger.contextualize(run_id=self.run_id, question_id=self.question.task_id or "-"), (
                    self.telemetry.attached() if self.telemetry else contextlib.nullcontext()
                ):
                    # Created inside these contexts so every AutoGen task of this run logs with our ids and
                    # nests its spans (AutoGen's execute_tool, invoke_agent) under this question.
                    producer = asyncio.create_task(self._pump(self._built))
                async for item in self._drain(started, producer):
                    yield item
        finally:
            metrics.run_stopped()
            if producer is not None and not producer.done():
                # The consumer stopped listening (or the stop grace ran out): stop everything in flight.
                self._request_stop("cancelled", "the run's caller stopped it")
                await asyncio.wait({producer}, timeout=HARD_CANCEL_WAIT_S)
                producer.cancel()
                await asyncio.wait({producer}, timeout=HARD_CANCEL_WAIT_S)
            await self._release(workdir)
        self.result = self._finish(time.monotonic() - started)
        metrics.run_finished(self.result)
        if self.telemetry is not None:
            r = self.result
            self.telemetry.finish(**{
                "roundtable.answer": r.answer, "roundtable.approved": r.approved, "roundtable.stop_reason": r.stop_reason,
                "gen_ai.usage.input_tokens": r.prompt_tokens, "gen_ai.usage.output_tokens": r.completion_tokens,
                "roundtable.cost_usd": r.cost_usd,
            })
        self._log.info(
            "run finished: stop={} answer={!r} tokens in={} out={} in {:.1f}s",
            self.result.stop_reason,
            self.result.answer,
            self.result.prompt_tokens,
            self.result.completion_tokens,
            self.result.duration_s,
        )
        yield ev.RunFinished(self.result)

    async def _pump(self, built: BuiltTeam) -> None:
        try:
            async for item in built.team.run_stream(task=task_text(self.question)):
                await self._queue.put(item)
        except Exception as exc:  # an agent error ends the group chat; keep what we have
            await self._queue.put(_Failed(exc))
        finally:
            await self._queue.put(_Done())

    async def _drain(self, started: float, producer: asyncio.Task[None]) -> AsyncIterator[ev.Event]:
        deadline = started + self.timeout_s
        stop_deadline: float | None = None
        while True:
            now = time.monotonic()
            if self._stop_kind is None and now >= deadline:
                self._request_stop("timeout", f"the {self.timeout_s:g}s time limit was reached")
            if self._stop_kind is not None and stop_deadline is None:
                stop_deadline = now + STOP_GRACE_S
            wait_until = stop_deadline if stop_deadline is not None else deadline
            try:
                item = await asyncio.wait_for(self._queue.get(), timeout=max(0.0, wait_until - now))
            except asyncio.TimeoutError:
                if stop_deadline is not None and time.monotonic() >= stop_deadline:
                    self._log.warning("team did not stop within {:.0f}s; cancelling its task", STOP_GRACE_S)
                    producer.cancel()
                    await asyncio.wait({producer}, timeout=HARD_CANCEL_WAIT_S)
                    return
                continue
            if item is _WAKE:
                continue
            if isinstance(item, _Done):
                return
            if isinstance(item, _Failed):
                self._failure = item.error
                continue
            for event in self.transcript.feed(item):
                self._observe(event)
                yield event

    async def _release(self, workdir: Path) -> None:
        if self._executor is not None and self._executor_started:
            try:
                await asyncio.wait_for(self._executor.stop(), timeout=30)
            except Exception as exc:
                self._log.warning("sandbox did not stop cleanly: {}", one_line(str(exc)))
        if self._built is not None:
            for client in self._built.clients.values():
                try:
                    await client.close()
                except Exception:
                    pass
        shutil.rmtree(workdir, ignore_errors=True)

    # --- bookkeeping of the live run ------------------------------------------------------------------
    def _observe(self, event: ev.Event) -> None:
        """Telemetry and the log follow the run's turns."""
        match event:
            case ev.TurnStarted(agent=agent, turn=turn):
                metrics.turn(agent)
                if self.telemetry is not None:
                    self.telemetry.turn_started(agent, turn)
            case ev.TurnEnded(agent=agent, turn=turn, text=text, prompt_tokens=prompt, completion_tokens=completion):
                if self.telemetry is not None:
                    self.telemetry.turn_ended(agent, prompt, completion)
                self._log.info("turn {} {}: tokens in={} out={}: {}", turn, agent, prompt, completion, one_line(text, 120))
                self._log.debug("turn {} {} full text: {}", turn, agent, text)
            case _:
                pass

    def _finish(self, duration: float) -> Result:
        models = {}
        if self._built is not None:
            for name, client in self._built.clients.items():
                if isinstance(client, ManagedClient):
                    models[name] = f"{client.provider}/{client.model}"
        ending = Ending(self._stop_kind, self._stop_detail, self._failure, self.max_turns, self.timeout_s)
        return self.transcript.result(self.question.text, ending, duration_s=duration, models=models,
                                      run_id=self.run_id, code_unavailable=self.code_unavailable)


async def solve(
    question: Question | str,
    team: TeamConfig,
    *,
    on_event: Callable[[ev.Event], Any] | None = None,
    **kwargs: Any,
) -> Result:
    """Run one question to its end, whatever the team's strategy, and return the Result (events go to
    `on_event` if given)."""
    from teams.strategies import start_run  # the strategies build on this module

    run = start_run(question, team, **kwargs)
    async for event in run.events():
        if on_event is not None:
            maybe = on_event(event)
            if asyncio.iscoroutine(maybe):
                await maybe
    assert run.result is not None
    return run.result
