"""`teams.events` -> Chainlit steps and messages: one parent step per run, a step per agent turn (tokens
streamed into it), a child step per tool call or code run, and the final answer as its own message.

A strategy run (vote, escalate) is one parent step too; each attempt is a step under it ("Attempt 2 · solo ·
anthropic") that holds that attempt's turns, tools and code exactly as a single run shows them. Attempts run
concurrently and their events interleave, so each attempt has its own `RunView` (own turn state, own secret
filter). An escalation is a step between the attempts, the adjudicator's turn a step of its own, and the final
message adds the attempts side by side, the votes and the decision.

Steps are created with explicit `parent_id`s instead of `async with cl.Step(...)`: the events of one turn
arrive interleaved with others' ends, and the context-var nesting of `async with` would follow the code's
shape, not the run's.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import assert_never

import chainlit as cl
from chainlit.context import context
from chainlit.utils import utc_now

from config.log import mask
from models.usage import cost_line, format_cost, unknown_prices
from teams import events as ev
from teams.masking import EventMasker
from teams.result import Attempt, Result, VoteGroup

FINAL_ANSWER_AUTHOR = "Final answer"

_STOP_EXPLAINED = {
    "approved": "approved",
    "consensus": "consensus (the same answer, stated again and again, never rejected)",
    "stalled": "stalled (no new evidence and no new answer for several turns)",
    "max_turns": "turn limit reached",
    "timeout": "time limit reached",
    "cancelled": "stopped",
    "error": "error",
    "no_answer": "no answer",
    "majority": "majority vote",
    "adjudicated": "decided by the adjudicator",
    "rejected": "the adjudicator rejected every answer",
    "plurality": "no majority (the largest group's answer, unapproved)",
    "budget": "the escalation's budget was spent",
}

# & for entities ("&lt;" must not show as "<"), : for Chainlit's text directives (":alert(1)" vanishes)
_MD_SPECIAL = "\\`*_{}[]<>()#+-.!|~&:"


def md_escape(text: str) -> str:
    """Show an answer exactly as written: `4,600 *approx*` must not turn into emphasis."""
    return "".join("\\" + c if c in _MD_SPECIAL else c for c in text)


def format_duration(seconds: float) -> str:
    if seconds < 60:
        return f"{seconds:.1f} s"
    minutes, rest = divmod(int(round(seconds)), 60)
    return f"{minutes} min {rest:02d} s"


def format_tokens(prompt: int, completion: int) -> str:
    return f"{prompt + completion:,} tokens ({prompt:,} in, {completion:,} out)"


def usage_line(result: Result) -> str:
    return " · ".join(
        (
            format_duration(result.duration_s),
            format_tokens(result.prompt_tokens, result.completion_tokens),
            cost_line(result.cost_usd, unknown_prices(result.usage.values())),
        )
    )


def final_answer_text(result: Result) -> str:
    """The final message: the answer on top, then how the run ended and what it cost."""
    lines: list[str] = []
    strategy = result.strategy != "single" or bool(result.attempts)
    if result.answer and result.approved:
        lines.append(f"## ✅ Final answer: {md_escape(result.answer)}")
        if not strategy:  # a strategy's reason is its decision, shown below
            lines.append(f"{md_escape(result.stop_detail or 'approved')}")
    elif result.answer:
        lines.append(f"## ⚠️ Final answer (not approved): {md_escape(result.answer)}")
    else:
        lines.append("## ❌ No answer")
    if not result.approved:
        reason = _STOP_EXPLAINED.get(result.stop_reason, result.stop_reason)
        detail = mask(result.error or result.stop_detail or "")
        if strategy and result.decision is not None and detail == mask(result.decision.reason):
            detail = ""  # the decision below says it
        lines.append(f"**Stop reason:** {reason} (`{result.stop_reason}`)" + (f": {md_escape(detail)}" if detail else ""))
    if result.checks:  # the program checks on the answer (teams/checks.py): corrections, form, evidence
        lines.append("**Checks:**\n" + "\n".join(f"- {md_escape(c)}" for c in result.checks))
    if strategy:
        lines += strategy_sections(result)
    lines.append(usage_line(result))
    return "\n\n".join(lines)


def _cell(text: str) -> str:
    """A table cell shows the text literally, on one line (`|` escaped, so it cannot end the cell)."""
    return md_escape(" ".join(mask(text).split())) or "—"


def _stage_note(stage: str) -> str:
    return {"escalated": " (escalation)", "first": " (first)"}.get(stage, "")


def attempts_table(attempts: list[Attempt]) -> str:
    rows = ["| Attempt | Label | Answer | Approved | Stop reason | Tokens | Cost |", "|---|---|---|---|---|---|---|"]
    for a in attempts:
        rows.append(
            f"| {a.number} | {_cell(a.label + _stage_note(a.stage))} | {_cell(a.answer)} | {'✅ yes' if a.approved else 'no'} "
            f"| {_cell(a.stop_reason)} | {a.prompt_tokens + a.completion_tokens:,} | {format_cost(a.cost_usd)} |"
        )
    return "\n".join(rows)


def _votes(n: int) -> str:
    return f"{n} vote{'s' if n != 1 else ''}"


def votes_text(groups: list[VoteGroup], heading: str = "Votes") -> str:
    lines = []
    for g in groups:
        who = ", ".join(str(n) for n in g.attempts)
        approved = f"; {g.approved} approved in their own run" if g.approved else ""
        lines.append(f"- **{md_escape(g.answer)}**: {_votes(len(g.attempts))} (attempt{'s' if len(g.attempts) != 1 else ''} {who}{approved})")
    return f"**{heading}:**\n" + "\n".join(lines)


def strategy_sections(result: Result) -> list[str]:
    """What a vote or an escalation adds to the final message: the attempts side by side, the votes, the decision."""
    out: list[str] = []
    if result.attempts:
        out.append(f"**Attempts** ({result.strategy}):\n\n" + attempts_table(result.attempts))
    decision = result.decision
    if decision is None:
        return out
    if decision.groups:
        out.append(votes_text(decision.groups, "Votes" if result.strategy == "vote" else "Answers"))
    out.append(f"**Decision:** {decision.method} — {md_escape(mask(decision.reason))}")
    if decision.adjudicator:
        quoted = "\n".join("> " + md_escape(line) for line in mask(decision.adjudicator).strip().splitlines())
        out.append("**The adjudicator's reason:**\n\n" + quoted)
    return out


def _pretty_json(arguments: str) -> str | dict:
    try:
        data = json.loads(arguments)
    except (json.JSONDecodeError, TypeError):
        return arguments
    return data if isinstance(data, dict) else arguments


@dataclass
class _Turn:
    step: cl.Step
    agent: str
    streamed: bool = False  # tokens arrived since the last tool call (the current segment)
    needs_break: bool = False  # a tool step sits between the text so far and what comes next
    last_tool_output: str = ""
    tools: dict[str, cl.Step] = field(default_factory=dict)


class RunView:
    """Renders one run. Feed it every event in order with `handle()`; it sends the final message itself.

    With `attempt`, it renders one attempt of a strategy run: its step sits under `parent_id` (the strategy's
    run step) and its end is a summary on that step, not a final message.
    """

    def __init__(self, team: str, *, show_code: bool = True, file_names: dict[str, str] | None = None,
                 attempt: ev.AttemptStarted | None = None, parent_id: str | None = None) -> None:
        self.team = team
        self.file_names = file_names or {}  # staged attachment name -> the name the user gave
        self.show_code = show_code
        self.attempt = attempt
        self.parent_id = parent_id
        self.run_step: cl.Step | None = None
        self.turn: _Turn | None = None
        self.turns: list[str] = []
        self.verdicts: list[str] = []
        self.final_message: cl.Message | None = None
        self.files: list[str] = []
        self.attempts: dict[int, RunView] = {}  # a strategy run: one view per attempt, by number
        self.escalations: list[cl.Step] = []
        self.decided: ev.Decided | None = None
        self.result: Result | None = None  # an attempt's own result, once it finished
        self._agents: list[str] = []
        self._mask = EventMasker()

    @property
    def step_name(self) -> str:
        if self.attempt is not None:
            stage = " · escalation" if self.attempt.stage == "escalated" else ""
            return f"Attempt {self.attempt.attempt} · {self.attempt.label or self.team}{stage}"
        return f"{self.team} team"

    async def handle(self, event: ev.Event) -> None:
        if isinstance(event, ev.InAttempt):  # the attempt's own view masks it (its tokens are a stream of their own)
            await self._in_attempt(event)
            return
        for shown in self._mask(event):  # the page is a sink: every text masked here, keys split over tokens too
            await self._show(shown)

    async def _show(self, event: ev.Event) -> None:
        match event:
            case ev.RunStarted():
                await self._run_started(event)
            case ev.TurnStarted():
                await self._turn_started(event.agent)
            case ev.Token():
                await self._token(event)
            case ev.Thought():
                await self._text(event.agent, event.text)
            case ev.ToolCall():
                if not event.shown_as_code:
                    await self._tool_call(event)
                elif not self.show_code:
                    current = await self._current(event.agent)
                    current.streamed, current.needs_break = False, True
            case ev.ToolResult():
                if not event.shown_as_code:
                    await self._tool_result(event)
                elif (turn := self.turn) is not None:
                    turn.last_tool_output = event.output
            case ev.CodeRun():
                if self.show_code:
                    await self._code_run(event)
            case ev.TurnEnded():
                await self._turn_ended(event)
            case ev.AnswerProposed():
                self._verdict(event)
            case ev.RunFinished():
                await self._run_finished(event.result)
            case ev.AttemptStarted():
                await self._attempt_started(event)
            case ev.InAttempt():
                await self._in_attempt(event)
            case ev.Escalating():
                await self._escalating(event)
            case ev.Decided():
                self.decided = event
            case _:
                assert_never(event)

    # --- the parent step ------------------------------------------------------------------------------
    async def _run_started(self, event: ev.RunStarted) -> None:
        # Under Chainlit's own `on_message` step, like the final message: the page orders a question's
        # children by arrival, so the debate shows above its answer.
        if self.parent_id is not None:  # an attempt: under the strategy's run step
            parent_id: str | None = self.parent_id
        else:
            parent = context.current_step
            parent_id = parent.id if parent else None
        step = cl.Step(name=self.step_name, type="run", parent_id=parent_id, show_input=False, default_open=True)
        step.start = utc_now()
        self.files = list(event.attachments)
        self._agents = list(event.agents)
        step.metadata = {"run_id": event.run_id}
        if self.attempt is not None:
            step.metadata["attempt"] = self.attempt.attempt
        step.output = self._agents_line() + self._files_note()
        if event.code_unavailable:
            step.output += (f"\n\n⚠ Code execution is unavailable, so the team runs without run_python: "
                            f"{md_escape(event.code_unavailable)}")
        self.run_step = step
        await step.send()

    def _agents_line(self) -> str:
        if self.attempts:  # a strategy run: its "agents" are its attempts
            return f"Attempts: {', '.join(self._agents)}"
        return f"Agents: {', '.join(self._agents)}"

    def _files_note(self) -> str:
        # The names as the user gave them, shown literally: `_a_.csv` or `<img ...>.csv` are no markup.
        names = [md_escape(self.file_names.get(f, f)) for f in self.files]
        return f" · files: {', '.join(names)}" if names else ""

    async def _ensure_run_step(self) -> cl.Step:
        if self.run_step is None:
            await self._run_started(ev.RunStarted("-", "", self.team, []))
        assert self.run_step is not None
        return self.run_step

    # --- agent turns ----------------------------------------------------------------------------------
    async def _turn_started(self, agent: str) -> _Turn:
        if self.turn is not None:
            await self._close_turn()
        parent = await self._ensure_run_step()
        step = cl.Step(name=agent, type="llm", parent_id=parent.id, show_input=False, default_open=True)
        step.start = utc_now()
        await step.send()
        self.turn = _Turn(step=step, agent=agent)
        self.turns.append(agent)
        return self.turn

    async def _current(self, agent: str) -> _Turn:
        if self.turn is None or self.turn.agent != agent:
            return await self._turn_started(agent)
        return self.turn

    async def _token(self, event: ev.Token) -> None:
        turn = await self._current(event.agent)
        text = event.text
        if turn.needs_break and turn.step.output:
            text = "\n\n" + text.lstrip()
        turn.needs_break = False
        turn.streamed = True
        await turn.step.stream_token(text)

    async def _text(self, agent: str, text: str) -> None:
        """Text that was not streamed (a non-streaming agent's thought or message)."""
        turn = await self._current(agent)
        if turn.streamed or not text.strip() or text.strip() in turn.step.output:
            return  # already on the page (streamed, or a thought the final message repeats)
        turn.step.output = (turn.step.output + "\n\n" + text) if turn.step.output else text
        turn.needs_break = False
        await turn.step.update()

    async def _close_turn(self, note: str = "") -> None:
        turn, self.turn = self.turn, None
        if turn is None:
            return
        for tool in turn.tools.values():
            tool.output = tool.output or "(interrupted before it returned)"
            tool.end = utc_now()
            await tool.update()
        if note:
            turn.step.output = (turn.step.output + "\n\n" if turn.step.output else "") + note
        turn.step.end = utc_now()
        await turn.step.update()

    async def _turn_ended(self, event: ev.TurnEnded) -> None:
        turn = await self._current(event.agent)
        text = event.text.strip()
        # A turn that ends on tool output (no reflection) repeats that output as its message; the tool
        # step already shows it.
        if text and text != turn.last_tool_output.strip():
            await self._text(event.agent, text)
        await self._close_turn()

    # --- tools and code -------------------------------------------------------------------------------
    async def _tool_step(self, agent: str, call_id: str, name: str, show_input: str) -> cl.Step:
        turn = await self._current(agent)
        step = cl.Step(name=name, type="tool", parent_id=turn.step.id, show_input=show_input, language="text")
        step.start = utc_now()
        turn.tools[call_id] = step
        turn.streamed = False
        turn.needs_break = True
        return step

    async def _tool_call(self, event: ev.ToolCall) -> None:
        step = await self._tool_step(event.agent, event.call_id, event.name, "json")
        step.input = _pretty_json(event.arguments)
        await step.send()

    async def _tool_result(self, event: ev.ToolResult) -> None:
        turn = await self._current(event.agent)
        turn.last_tool_output = event.output
        step = turn.tools.pop(event.call_id, None)
        if step is None:  # a result without a call we saw: show it anyway
            step = await self._tool_step(event.agent, event.call_id, event.name, "json")
            turn.tools.pop(event.call_id, None)
            await step.send()
        step.output = mask(event.output)  # a provider or a page may echo a key; never show it
        step.language = "text"
        step.is_error = event.is_error
        step.end = utc_now()
        await step.update()

    async def _code_run(self, event: ev.CodeRun) -> None:
        turn = await self._current(event.agent)
        if event.output is None:
            step = await self._tool_step(event.agent, event.call_id, event.tool, "python")
            step.input = event.code
            await step.send()
            return
        found = turn.tools.pop(event.call_id, None)
        if found is not None:
            step = found
        else:
            step = await self._tool_step(event.agent, event.call_id, event.tool, "python")
            turn.tools.pop(event.call_id, None)
            step.input = event.code
            await step.send()
        warning = "" if event.isolated else f"⚠ {event.sandbox or 'subprocess'}: this code ran without isolation\n"
        step.output = warning + mask(event.output)
        step.language = "text"
        step.is_error = event.is_error or event.exit_code not in (0, None)
        step.end = utc_now()
        await step.update()

    # --- answers and the end --------------------------------------------------------------------------
    def _verdict(self, event: ev.AnswerProposed) -> None:
        answer = md_escape(event.answer)
        if event.verdict == "proposed":
            self.verdicts.append(f"{event.agent} proposed **{answer}**")
        elif event.verdict == "rejected":
            self.verdicts.append(f"**{answer}** was rejected")
        else:
            self.verdicts.append(f"{event.agent} approved **{answer}**")

    async def _run_finished(self, result: Result) -> None:
        note = "_(stopped)_" if result.stop_reason in ("cancelled", "timeout", "error") else ""
        await self._close_turn(note)
        step = await self._ensure_run_step()
        if self.attempts:
            for view in self.attempts.values():  # an attempt cut off before its end: close what it left open
                if view.result is None:
                    await view.interrupted()
            lines = self._strategy_summary(result)
        else:
            lines = [(f"{len(self.turns)} turns: {' → '.join(self.turns)}" if self.turns else "No agent spoke.") + self._files_note()]
            lines += [f"- {v}" for v in self.verdicts]
            lines.append(f"Ended: {_STOP_EXPLAINED.get(result.stop_reason, result.stop_reason)}"
                         + (f" ({md_escape(mask(result.stop_detail))})" if result.stop_detail else ""))
        if self.attempt is not None:  # an attempt: its answer on top of its own step; the strategy sends the final message
            lines = [self._attempt_answer(result), *lines, usage_line(result)]
        step.output = "\n\n".join(lines)
        step.is_error = result.stop_reason == "error"
        step.end = utc_now()
        await step.update()
        self.result = result
        if self.attempt is not None:
            return
        metadata: dict[str, object] = {"final_answer": True, "stop_reason": result.stop_reason}
        if result.strategy != "single":
            metadata["strategy"] = result.strategy
        self.final_message = cl.Message(content=final_answer_text(result), author=FINAL_ANSWER_AUTHOR, metadata=metadata)
        await self.final_message.send()

    # --- strategies: attempts, the escalation, the decision ---------------------------------------------
    async def _attempt_started(self, event: ev.AttemptStarted) -> RunView:
        parent = await self._ensure_run_step()
        first = not self.attempts
        view = RunView(event.team, show_code=self.show_code, file_names=self.file_names, attempt=event, parent_id=parent.id)
        self.attempts[event.attempt] = view
        if first and self._agents:  # now it is known to be a strategy run: its "agents" are its attempts
            parent.output = self._agents_line() + self._files_note()
            await parent.update()
        return view

    async def _in_attempt(self, event: ev.InAttempt) -> None:
        view = self.attempts.get(event.attempt)
        if view is None:  # an attempt we did not see start: show it anyway
            view = await self._attempt_started(ev.AttemptStarted(event.attempt, "", self.team, "vote"))
        await view.handle(event.event)

    async def interrupted(self) -> None:
        """The strategy ended before this attempt did: close its open steps."""
        await self._close_turn("_(stopped)_")
        if self.run_step is not None:
            self.run_step.output = (self.run_step.output + "\n\n" if self.run_step.output else "") + "Ended before it finished."
            self.run_step.end = utc_now()
            await self.run_step.update()

    async def _escalating(self, event: ev.Escalating) -> None:
        await self._close_turn()
        parent = await self._ensure_run_step()
        step = cl.Step(name="Escalating", type="undefined", parent_id=parent.id, show_input=False, default_open=True)
        step.start = step.end = utc_now()
        step.output = f"⇪ The first attempts did not settle it: {md_escape(event.reason)}"
        self.escalations.append(step)
        await step.send()

    @staticmethod
    def _attempt_answer(result: Result) -> str:
        if not result.answer:
            return "**No answer**"
        return f"Answer: **{md_escape(result.answer)}**" + (" ✅ approved" if result.approved else " (not approved)")

    def _strategy_summary(self, result: Result) -> list[str]:
        lines = [f"{len(self.attempts)} attempts" + (", then the adjudicator" if "adjudicator" in self.turns else "")
                 + self._files_note()]
        for a in result.attempts:
            lines.append(f"- Attempt {a.number}: **{_cell(a.answer)}**" + (" ✅" if a.approved else "") + f" ({_cell(a.stop_reason)})")
        decision = result.decision or (self.decided.decision if self.decided else None)
        if decision is not None:
            lines.append(f"Decision: {decision.method} — {md_escape(mask(decision.reason))}")
        else:
            lines.append(f"Ended: {_STOP_EXPLAINED.get(result.stop_reason, result.stop_reason)}")
        return lines
