"""The pure part of a run: AutoGen's stream in, our events out, the proposals kept, the Result assembled.

No I/O, no clock, no task: a `Transcript` is fed AutoGen messages one by one (`feed`) and asked for the
Result at the end (`result`), so it is tested with hand-built messages. `teams/runner.py` owns everything with
a lifetime (work dir, sandbox, clients, telemetry, the stop logic) and feeds it.

The checks of `teams/checks.py` (when the question is given) end up in `Result.checks`, one line each:
`not approved: <rule>: <why>` (an approval the form checks turned into a rejection), `corrected: <rule>` (a
cosmetic violation fixed in the final answer), `form: <rule>: <why>` (a violation left in an unapproved final
answer), `list: <rule>: <why>` (advisory list problems) and `evidence: ...` (whether the final answer appears
in a tool result or program output of the run, or only in model text).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from autogen_agentchat.base import TaskResult
from autogen_agentchat.messages import (
    BaseChatMessage,
    ModelClientStreamingChunkEvent,
    SelectSpeakerEvent,
    StopMessage,
    ThoughtEvent,
    ToolCallExecutionEvent,
    ToolCallRequestEvent,
)

from agents.tools.code import CodeOutput
from agents.tools.registry import code_argument
from common.text import one_line
from models.usage import UsageLedger
from teams import events as ev
from teams.answer import find_answers, normalise_answer
from teams.checks import apply_fixes, evidence_for, form_violations, list_problems
from teams.result import Proposal, Result, StopReason, TraceEntry
from teams.schema import TeamConfig
from teams.termination import CONSENSUS_REASON, ApprovedAnswerTermination, guard_stop


@dataclass(frozen=True)
class Ending:
    """How the run's lifecycle ended it, for `Transcript.result`."""

    stop_kind: StopReason | None = None  # a stop the runner requested (timeout, cancel, error)
    stop_detail: str = ""
    failure: BaseException | None = None  # what ended the group chat, if it failed
    max_turns: int = 0
    timeout_s: float = 0.0


class Transcript:
    def __init__(self, cfg: TeamConfig, ledger: UsageLedger, *, outputs: dict[str, Any] | None = None,
                 question: str = "") -> None:
        self.cfg = cfg
        self.question = question  # read by the form checks; "" turns them off
        self.ledger = ledger
        self.outputs = outputs if outputs is not None else {}  # the tools' structured results, by call id
        t = cfg.termination
        self.approval = (
            ApprovedAnswerTermination(t.approver, cfg.answer.marker, t.approval_marker, t.rejection_marker,
                                      guards=cfg.guards, question=question)
            if t.approver else None
        )
        self.checks: list[str] = []  # what the checks found during the run (module docstring)
        self.corrected: list[str] = []  # the cosmetic fixes applied to the final answer
        self.evidence: list[str] = []  # tool results and program outputs, for `evidence_for`
        self.trace: list[TraceEntry] = []
        self.proposals: list[Proposal] = []
        self.task_result: TaskResult | None = None
        self.turn = 0
        self._speaker: str | None = None
        self._turn_ledger_start = 0
        self._code_calls: dict[str, str] = {}
        self._streamed = ""  # text streamed since the last tool event, to drop AutoGen's repeat as a ThoughtEvent

    # --- AutoGen stream -> our events ----------------------------------------------------------------
    def feed(self, item: object) -> list[ev.Event]:
        match item:
            case TaskResult():
                self.task_result = item
                return []
            case SelectSpeakerEvent(content=content):  # from our rules or AutoGen's LLM selector
                names = content if isinstance(content, list) else [str(content)]
                return self._start_turn(names[0]) if names and names[0] in self.cfg.agent_names else []
        source = getattr(item, "source", "")
        if source not in self.cfg.agent_names:  # the task itself, AutoGen's stop messages
            if isinstance(item, BaseChatMessage) and not isinstance(item, StopMessage) and source != "user":
                self.trace.append(TraceEntry(source, type(item).__name__, item.to_text()))
            return []
        out = self._start_turn(source)
        if isinstance(item, ModelClientStreamingChunkEvent):
            if item.content:
                self._streamed += item.content
                out.append(ev.Token(source, item.content))
            return out
        self.trace.append(TraceEntry(source, type(item).__name__, getattr(item, "to_text", lambda: str(item))()))
        streamed, self._streamed = self._streamed, ""
        match item:
            case ThoughtEvent(content=text):
                if text.strip() != streamed.strip():  # already shown as tokens otherwise
                    out.append(ev.Thought(source, text))
            case ToolCallRequestEvent(content=calls):
                for call in calls:
                    argument = code_argument(call.name)
                    out.append(ev.ToolCall(source, call.id, call.name, call.arguments, shown_as_code=argument is not None))
                    if argument is not None:
                        code = _code_from(call.arguments, argument)
                        self._code_calls[call.id] = code
                        out.append(ev.CodeRun(source, call.id, code, None, None, tool=call.name))
            case ToolCallExecutionEvent(content=results):
                for res in results:
                    self.evidence.append(res.content)
                    code_call = res.call_id in self._code_calls
                    out.append(ev.ToolResult(source, res.call_id, res.name, res.content, bool(res.is_error), code_call))
                    if code_call:
                        out.append(self._code_ran(source, res.call_id, res.name, res.content, bool(res.is_error)))
            case BaseChatMessage():
                out += self._end_turn(source, item)
        return out

    def _code_ran(self, agent: str, call_id: str, tool: str, text: str, is_error: bool) -> ev.CodeRun:
        code = self._code_calls.pop(call_id)
        ran = self.outputs.pop(call_id, None)
        if isinstance(ran, CodeOutput):
            return ev.CodeRun(agent, call_id, code, text, ran.exit_code, sandbox=ran.backend, isolated=ran.isolated,
                              is_error=is_error, tool=tool)
        return ev.CodeRun(agent, call_id, code, text, None, is_error=is_error, tool=tool)

    def _start_turn(self, agent: str) -> list[ev.Event]:
        if agent == self._speaker:
            return []
        self._speaker = agent
        self.turn += 1
        self._turn_ledger_start = len(self.ledger.records)
        return [ev.TurnStarted(agent, self.turn)]

    def _end_turn(self, agent: str, message: BaseChatMessage) -> list[ev.Event]:
        text = message.to_text()
        records = [r for r in self.ledger.records[self._turn_ledger_start :] if r.agent == agent]
        prompt = sum(r.prompt_tokens for r in records)
        completion = sum(r.completion_tokens for r in records)
        out: list[ev.Event] = [ev.TurnEnded(agent, self.turn, text, prompt, completion)]
        self._speaker = None
        answers = find_answers(text, self.cfg.answer.marker)
        if self.approval is not None and agent == self.approval.approver:
            verdict = self.approval.verdict(message)
            for v in self.approval.form_block(message):
                self.checks.append(f"not approved: {v.rule}: {v.message}")
            if verdict == "approved":
                return out + [self._propose(agent, answers[-1], "approved")]
            if verdict == "rejected":
                pending = next((p for p in reversed(self.proposals) if p.verdict == "proposed"), None)
                if pending is not None:
                    pending.verdict = "rejected"
                    out.append(ev.AnswerProposed(pending.agent, pending.answer, "rejected"))
                return out
        if answers:
            out.append(self._propose(agent, answers[-1], "proposed"))
        return out

    def _propose(self, agent: str, answer: str, verdict: ev.Verdict) -> ev.AnswerProposed:
        self.proposals.append(Proposal(agent, answer, verdict))
        return ev.AnswerProposed(agent, answer, verdict)

    # --- the result ----------------------------------------------------------------------------------
    def stop_reason(self, ending: Ending) -> tuple[StopReason, str, str | None]:
        """(stop reason, detail, error). AutoGen resets terminations when a run ends, so approval is read
        from the proposals."""
        approved_by = next((p.agent for p in self.proposals if p.verdict == "approved"), None)
        said = (self.task_result.stop_reason or "") if self.task_result else ""
        if approved_by is not None:
            return "approved", f"approved by {approved_by}", None
        if ending.stop_kind is not None:
            error = one_line(str(ending.failure), 500) if ending.stop_kind == "error" and ending.failure else None
            return ending.stop_kind, ending.stop_detail, error
        if ending.failure is not None:
            error = _describe_failure(ending.failure)
            return "error", error, error
        if (guarded := guard_stop(said)) is not None:
            return guarded[0], guarded[1], None
        if "maximum number of turns" in said.lower():
            return "max_turns", f"the {ending.max_turns}-turn limit was reached", None
        if "timeout" in said.lower():
            return "timeout", f"the {ending.timeout_s:g}s time limit was reached", None
        return "no_answer", said or "the team stopped", None

    def answer(self, stop: StopReason | None = None) -> tuple[str, str | None]:
        """(normalised answer, raw answer): the approved one, else the latest unrejected proposal (on a
        consensus always: the answer agreed on is what the run ends with; otherwise per `answer.on_stop`)."""
        raw: str | None = None
        approved = [p for p in self.proposals if p.verdict == "approved"]
        if approved:
            raw = approved[-1].answer
        elif (self.cfg.answer.on_stop == "best_proposed" or stop == CONSENSUS_REASON) and self.proposals:
            raw = next((p for p in reversed(self.proposals) if p.verdict != "rejected"), self.proposals[-1]).answer
        if not raw:
            return "", raw
        answer = normalise_answer(raw) if self.cfg.answer.normalise else raw.strip()
        if self.question:  # cosmetic form violations are corrected (`teams/checks.py`), and recorded
            answer, self.corrected = apply_fixes(self.question, answer)
        return answer, raw

    def final_checks(self, answer: str) -> list[str]:
        """`checks` plus what the checks say about the final `answer` (module docstring: the lines)."""
        if not answer:
            return list(self.checks)
        lines = self.checks + [f"corrected: {rule}" for rule in self.corrected]
        if self.question:
            lines += [f"form: {v.rule}: {v.message}" for v in form_violations(self.question, answer)]
        lines += [f"list: {v.rule}: {v.message}" for v in list_problems(answer)]
        lines.append("evidence: the answer appears in a tool result or program output" if evidence_for(
            answer, self.evidence) else "evidence: the answer appears in no tool result or program output, only in model text")
        return lines

    def result(self, question: str, ending: Ending, *, duration_s: float, models: dict[str, str], run_id: str,
               code_unavailable: str | None = None) -> Result:
        stop, detail, error = self.stop_reason(ending)
        answer, raw = self.answer(stop)
        return Result(
            question=question,
            answer=answer,
            raw_answer=raw,
            approved=stop == "approved",
            stop_reason=stop,
            stop_detail=detail,
            duration_s=duration_s,
            usage=self.ledger.by_agent(),
            trace=self.trace,
            proposals=list(self.proposals),
            team=self.cfg.name,
            models=models,
            run_id=run_id,
            error=error,
            code_unavailable=code_unavailable,
            checks=self.final_checks(answer),
        )


def _code_from(arguments: str, argument: str) -> str:
    try:
        data = json.loads(arguments)
    except json.JSONDecodeError:
        return arguments
    return str(data.get(argument, arguments)) if isinstance(data, dict) else arguments


def _describe_failure(exc: BaseException) -> str:
    text = str(exc)
    # AutoGen wraps agent errors as "RuntimeError: <Type>: <message>\nTraceback..."; keep the first line.
    return one_line(text.splitlines()[0] if text else type(exc).__name__, 500)
