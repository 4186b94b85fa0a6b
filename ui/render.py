"""`teams.events` -> Chainlit steps and messages: one parent step per run, a step per agent turn (tokens
streamed into it), a child step per tool call or code run, and the final answer as its own message.

A strategy run (vote, escalate) is one parent step too; each attempt is a step under it ("Attempt 2 · solo ·
anthropic") that holds that attempt's turns, tools and code exactly as a single run shows them. Attempts run
concurrently and their events interleave, so each attempt has its own `RunView` (own turn state, own secret
filter). An escalation is a step between the attempts, the adjudicator's turn a step of its own, and the final
message adds the attempts side by side, the votes and the decision.

Who speaks: a turn's step is titled "critic — turn 4" ("skeptic (critic) — turn 4" when the name is not the
role) and carries its agent, role and colour in its metadata; the page's script and stylesheet
(ui/frontend.py) give it the agent's avatar and colour. The run step's input is the roster, so the page shows
it above the turns. A verdict is a badge, a link to `#rt-approved` / `#rt-rejected` that the stylesheet draws
as a coloured pill, on the reviewer's turn; the reason of a rejection is read from the reviewer's message
(`rejection_reason`). The final message lists the proposals: who proposed each, who approved or rejected it,
and why. A tool step's input and output are code blocks headed "input" and "output"; a code run's output
starts with the sandbox that ran it and whether it was isolated.

Steps are created with explicit `parent_id`s instead of `async with cl.Step(...)`: the events of one turn
arrive interleaved with others' ends, and the context-var nesting of `async with` would follow the code's
shape, not the run's.
"""

from __future__ import annotations

import json
import re
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

# Each agent's colour (its avatar, the left edge and the title of its turns). public/avatars/<name>.svg is the
# avatar of a known agent; any other name gets a colour of its own from `speaker_colour` (the page's script
# in ui/frontend.py computes the same one).
SPEAKER_COLOURS = {
    "planner": "#2563eb",
    "researcher": "#0d9488",
    "coder": "#7c3aed",
    "critic": "#dc2626",
    "solo": "#d97706",
    "adjudicator": "#475569",
}

# The badges: links to these anchors are drawn as coloured pills by the page's stylesheet (ui/frontend.py).
APPROVED_ANCHOR = "#rt-approved"
REJECTED_ANCHOR = "#rt-rejected"


def name_hue(name: str) -> int:
    """A hue from the name (FNV-1a over its code points): the same name always gets the same colour."""
    h = 0x811C9DC5
    for ch in name:
        h = ((h ^ ord(ch)) * 0x01000193) & 0xFFFFFFFF
    return h % 360


def speaker_colour(name: str) -> str:
    return SPEAKER_COLOURS.get(name) or f"hsl({name_hue(name)}, 60%, 42%)"


def turn_title(agent: str, role: str | None, number: int) -> str:
    """ "critic — turn 4", or "skeptic (critic) — turn 4" when the name is not the role."""
    who = agent if not role or role == agent else f"{agent} ({role})"
    return f"{who} — turn {number}"


def approved_badge(by: str = "") -> str:
    return f"[✓ Approved{' by ' + md_escape(by) if by else ''}]({APPROVED_ANCHOR})"


def rejected_badge(reason: str, by: str = "") -> str:
    label = f"✗ Rejected{' by ' + md_escape(by) if by else ''}"
    return f"[{label}{': ' + md_escape(reason) if reason else ''}]({REJECTED_ANCHOR})"


_REJECTION = re.compile(r"^\W*REJECT(?:ED)?\W*(.*)$", re.IGNORECASE)
_DIRECTIVE = re.compile(r"^\W*(NEXT|FINAL ANSWER|APPROVED)\b", re.IGNORECASE)
REASON_CHARS = 300


def rejection_reason(text: str) -> str:
    """Why the critic rejected an answer, from its message: what follows its REJECTED marker (on that line or
    the next ones), else its first line that is no directive; one line, at most REASON_CHARS characters."""
    lines = [line.strip() for line in mask(text).splitlines() if line.strip()]
    picked: list[str] = []
    for i, line in enumerate(lines):
        if (m := _REJECTION.match(line)) is not None:
            rest = m.group(1).strip()
            picked = [rest] if rest else [x for x in lines[i + 1:i + 3] if not _DIRECTIVE.match(x)][:1]
            break
    if not picked:
        picked = [x for x in lines if not _DIRECTIVE.match(x)][:1]
    reason = " ".join(" ".join(picked).split())
    return reason if len(reason) <= REASON_CHARS else reason[: REASON_CHARS - 1].rstrip() + "…"


def plural(n: int, word: str) -> str:
    return f"{n} {word}{'' if n == 1 else 's'}"


def fenced(text: str, label: str) -> str:
    """`text` as a code block headed `label` ("input", "output", "python"), whatever backticks it holds."""
    longest = max((len(run) for run in re.findall(r"`+", text)), default=0)
    fence = "`" * max(3, longest + 1)
    return f"{fence}{label}\n{text}\n{fence}"


def stop_reason_text(stop_reason: str) -> str:
    """ "stopped (`cancelled`)": the words, then the code unless the words already are the code."""
    words = _STOP_EXPLAINED.get(stop_reason, stop_reason)
    return words if words.replace(" ", "_") == stop_reason else f"{words} (`{stop_reason}`)"


@dataclass
class ProposalLine:
    """One proposed answer as the page tells it: who proposed it, who approved or rejected it, and why."""

    agent: str
    answer: str
    verdict: str = "proposed"  # proposed / approved / rejected
    by: str = ""  # who approved or rejected it
    reason: str = ""  # why it was rejected

    def markdown(self) -> str:
        answer = f"**{md_escape(self.answer)}**"
        if self.verdict == "approved" and (not self.by or self.by == self.agent):
            return f"{answer} · {approved_badge(self.agent)}"
        who = f"proposed by {md_escape(self.agent)}"
        if self.verdict == "approved":
            return f"{answer} · {who} · {approved_badge(self.by)}"
        if self.verdict == "rejected":
            return f"{answer} · {who} · {rejected_badge(self.reason, self.by)}"
        return f"{answer} · {who} · not reviewed"


def proposals_text(proposals: list[ProposalLine]) -> str:
    return "**Proposals:**\n" + "\n".join(f"- {p.markdown()}" for p in proposals)


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


def final_answer_text(result: Result, proposals: list[ProposalLine] | None = None) -> str:
    """The final message: the answer on top, then how the run ended, the proposals with their verdicts (who
    proposed, who approved or rejected and why), and what it cost."""
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
        reason = stop_reason_text(result.stop_reason)
        detail = mask(result.error or result.stop_detail or "")
        if strategy and result.decision is not None and detail == mask(result.decision.reason):
            detail = ""  # the decision below says it
        lines.append(f"**Stop reason:** {reason}" + (f": {md_escape(detail)}" if detail else ""))
    if result.checks:  # the program checks on the answer (teams/checks.py): corrections, form, evidence
        lines.append("**Checks:**\n" + "\n".join(f"- {md_escape(c)}" for c in result.checks))
    if proposals:
        lines.append(proposals_text(proposals))
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


def _input_block(arguments: str) -> str:
    """A tool call's arguments as an "input" block, pretty-printed when they are a JSON object."""
    try:
        data = json.loads(arguments)
    except (json.JSONDecodeError, TypeError):
        data = None
    text = json.dumps(data, indent=2, ensure_ascii=False) if isinstance(data, dict) else str(arguments)
    return fenced(text, "input")


def sandbox_line(event: ev.CodeRun) -> str:
    """Which sandbox ran the code, and whether it was isolated."""
    name = (event.sandbox or "").removesuffix(" (NOT isolated)").strip()
    if not name:
        return "Sandbox: unknown (the tool did not say which ran it)"
    if event.isolated:
        return f"🔒 Sandbox: **{md_escape(name)}** (isolated)"
    return f"⚠️ Sandbox: **{md_escape(name)}**, NOT isolated: the code ran on the host as the app's user"


def _same_answer(a: str, b: str) -> bool:
    """The critic restating the answer it approves ("4600." for "4600") approves that proposal."""
    def norm(text: str) -> str:
        return " ".join(text.split()).strip(" .,;:!").casefold()
    return norm(a) == norm(b)


@dataclass
class _Turn:
    step: cl.Step
    agent: str
    number: int = 0
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
                 attempt: ev.AttemptStarted | None = None, parent_id: str | None = None,
                 roles: dict[str, str] | None = None) -> None:
        self.team = team
        self.roles = roles or {}  # agent name -> role, for the turn titles ("skeptic (critic) — turn 4")
        self.file_names = file_names or {}  # staged attachment name -> the name the user gave
        self.show_code = show_code
        self.attempt = attempt
        self.parent_id = parent_id
        self.run_step: cl.Step | None = None
        self.turn: _Turn | None = None
        self.turns: list[str] = []
        self.verdicts: list[str] = []  # the proposals as markdown lines, in order (see `proposals`)
        self.proposals: list[ProposalLine] = []
        self._last_turn: _Turn | None = None  # the turn that ended last: a verdict after it gets its badge there
        self._last_ended: ev.TurnEnded | None = None
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
                await self._turn_started(event.agent, event.turn)
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
                await self._verdict(event)
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
        # The roster is the step's input: the page shows a step's input above its children and its output below
        # them, so "Agents: ..." stays above the turns while they arrive and the summary comes after them.
        step = cl.Step(name=self.step_name, type="run", parent_id=parent_id, show_input=True, default_open=True)
        step.start = utc_now()
        self.files = list(event.attachments)
        self._agents = list(event.agents)
        step.metadata = {"run_id": event.run_id}
        if self.attempt is not None:
            step.metadata["attempt"] = self.attempt.attempt
        step.input = self._agents_line() + self._files_note()
        if event.code_unavailable:
            step.input += (f"\n\n⚠ Code execution is unavailable, so the team runs without run_python: "
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
    async def _turn_started(self, agent: str, number: int | None = None) -> _Turn:
        if self.turn is not None:
            await self._close_turn()
        parent = await self._ensure_run_step()
        number = number or len(self.turns) + 1
        # The page titles a step "Using <name>" / "Used <name>"; its stylesheet hides that word on turns (they
        # are no tool calls), so the title reads "critic — turn 4" next to the agent's avatar.
        step = cl.Step(name=turn_title(agent, self.roles.get(agent), number), type="llm", parent_id=parent.id,
                       show_input=False, default_open=True)
        step.metadata = {"agent": agent, "role": self.roles.get(agent, agent), "turn": number,
                         "colour": speaker_colour(agent)}
        step.start = utc_now()
        await step.send()
        self.turn = _Turn(step=step, agent=agent, number=number)
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
        self._last_turn = turn
        for tool in turn.tools.values():
            tool.output = tool.output or "(interrupted before it returned)"
            tool.end = utc_now()
            await tool.update()
        if note:
            turn.step.output = (turn.step.output + "\n\n" if turn.step.output else "") + note
        turn.step.end = utc_now()
        await turn.step.update()

    async def _turn_ended(self, event: ev.TurnEnded) -> None:
        self._last_ended = event
        turn = await self._current(event.agent)
        text = event.text.strip()
        # A turn that ends on tool output (no reflection) repeats that output as its message; the tool
        # step already shows it.
        if text and text != turn.last_tool_output.strip():
            await self._text(event.agent, text)
        await self._close_turn()

    # --- tools and code -------------------------------------------------------------------------------
    async def _tool_step(self, agent: str, call_id: str, name: str) -> cl.Step:
        # Input and output are markdown made here, each a code block headed "input" / "output" (the code of a
        # code run: "python"); the page would head them with their language ("json", "text") otherwise.
        turn = await self._current(agent)
        step = cl.Step(name=name, type="tool", parent_id=turn.step.id, show_input=True, language=None)
        step.start = utc_now()
        turn.tools[call_id] = step
        turn.streamed = False
        turn.needs_break = True
        return step

    async def _tool_call(self, event: ev.ToolCall) -> None:
        step = await self._tool_step(event.agent, event.call_id, event.name)
        step.input = _input_block(event.arguments)
        await step.send()

    async def _tool_result(self, event: ev.ToolResult) -> None:
        turn = await self._current(event.agent)
        turn.last_tool_output = event.output
        step = turn.tools.pop(event.call_id, None)
        if step is None:  # a result without a call we saw: show it anyway
            step = await self._tool_step(event.agent, event.call_id, event.name)
            turn.tools.pop(event.call_id, None)
            await step.send()
        step.output = fenced(mask(event.output), "output")  # a provider or a page may echo a key; never show it
        step.is_error = event.is_error
        step.end = utc_now()
        await step.update()

    async def _code_run(self, event: ev.CodeRun) -> None:
        turn = await self._current(event.agent)
        if event.output is None:
            step = await self._tool_step(event.agent, event.call_id, event.tool)
            step.input = fenced(event.code, "python")
            await step.send()
            return
        found = turn.tools.pop(event.call_id, None)
        if found is not None:
            step = found
        else:
            step = await self._tool_step(event.agent, event.call_id, event.tool)
            turn.tools.pop(event.call_id, None)
            step.input = fenced(event.code, "python")
            await step.send()
        step.output = sandbox_line(event) + "\n\n" + fenced(mask(event.output), "output")
        step.metadata = {"sandbox": event.sandbox, "isolated": event.isolated}
        step.is_error = event.is_error or event.exit_code not in (0, None)
        step.end = utc_now()
        await step.update()

    # --- answers and the end --------------------------------------------------------------------------
    async def _verdict(self, event: ev.AnswerProposed) -> None:
        """A proposal, an approval or a rejection: a line in the proposals, and a badge on the reviewer's turn.

        A rejection names the proposal it rejects (`event.agent` is its proposer); the reviewer and its reason
        are the turn that just ended. An approval is the reviewer's own proposal of the answer it approves."""
        ended = self._last_ended
        if event.verdict == "proposed":
            self.proposals.append(ProposalLine(event.agent, event.answer))
        elif event.verdict == "rejected":
            by = ended.agent if ended is not None else ""
            reason = rejection_reason(ended.text) if ended is not None else ""
            line = next((p for p in reversed(self.proposals) if p.verdict == "proposed"
                         and p.agent == event.agent and p.answer == event.answer), None)
            if line is None:
                line = ProposalLine(event.agent, event.answer)
                self.proposals.append(line)
            line.verdict, line.by, line.reason = "rejected", by, reason
            await self._badge(rejected_badge(reason))
        else:
            pending = next((p for p in reversed(self.proposals) if p.verdict == "proposed"), None)
            if pending is not None and _same_answer(pending.answer, event.answer):
                pending.verdict, pending.by = "approved", event.agent
            else:
                self.proposals.append(ProposalLine(event.agent, event.answer, "approved", event.agent))
            await self._badge(approved_badge())
        self.verdicts = [p.markdown() for p in self.proposals]

    async def _badge(self, badge: str) -> None:
        turn = self._last_turn if self.turn is None else self.turn
        if turn is None:
            return
        turn.step.output = (turn.step.output + "\n\n" if turn.step.output else "") + badge
        await turn.step.update()

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
            # (the files are named in the roster, above the turns)
            lines = [f"{plural(len(self.turns), 'turn')}: {' → '.join(self.turns)}" if self.turns else "No agent spoke."]
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
        content = final_answer_text(result, self.proposals if not self.attempts else None)
        self.final_message = cl.Message(content=content, author=FINAL_ANSWER_AUTHOR, metadata=metadata)
        await self.final_message.send()

    # --- strategies: attempts, the escalation, the decision ---------------------------------------------
    async def _attempt_started(self, event: ev.AttemptStarted) -> RunView:
        parent = await self._ensure_run_step()
        first = not self.attempts
        view = RunView(event.team, show_code=self.show_code, file_names=self.file_names, attempt=event, parent_id=parent.id,
                       roles=self.roles)
        self.attempts[event.attempt] = view
        if first and self._agents:  # now it is known to be a strategy run: its "agents" are its attempts
            parent.input = self._agents_line() + self._files_note()
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
        lines = [plural(len(self.attempts), "attempt") + (", then the adjudicator" if "adjudicator" in self.turns else "")]
        for a in result.attempts:
            lines.append(f"- Attempt {a.number}: **{_cell(a.answer)}**" + (" ✅" if a.approved else "") + f" ({_cell(a.stop_reason)})")
        decision = result.decision or (self.decided.decision if self.decided else None)
        if decision is not None:
            lines.append(f"Decision: {decision.method} — {md_escape(mask(decision.reason))}")
        else:
            lines.append(f"Ended: {_STOP_EXPLAINED.get(result.stop_reason, result.stop_reason)}")
        return lines
