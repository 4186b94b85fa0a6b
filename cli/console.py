"""Rendering a run's events in a terminal: one block per agent turn, streamed, with tool calls and code runs.

A strategy run (vote, escalate) prints each attempt's events with the attempt's number in front (`[2] solo ·
turn 1`). Attempts run concurrently, so their lines interleave: an attempt's streamed text is printed a whole
line at a time (`[2] solo: ...`), never mixed with another's. The final summary adds the attempts side by side
and the decision.
"""

from __future__ import annotations

import json
from typing import assert_never

from rich.console import Console
from rich.rule import Rule
from rich.syntax import Syntax
from rich.table import Table
from rich.text import Text

from common.text import one_line
from models.usage import cost_line, format_cost, unknown_prices
from teams import events as ev
from teams.masking import EventMasker
from teams.result import Attempt, Decision, Result

_COLORS = ["cyan", "magenta", "green", "yellow", "blue", "red"]


def summary_line(result: Result) -> str:
    turns = sum(1 for t in result.trace if t.kind in ("TextMessage", "ToolCallSummaryMessage"))
    if result.strategy != "single":  # the decision line above says why
        return (
            f"{result.strategy}: {result.stop_reason} · {len(result.attempts)} attempts, {turns} turns · {result.duration_s:.1f}s · "
            f"tokens {result.prompt_tokens} in / {result.completion_tokens} out · {cost_line(result.cost_usd, unknown_prices(result.usage.values()))}"
        )
    return (
        f"{result.stop_detail or result.stop_reason} · {turns} turns · {result.duration_s:.1f}s · "
        f"tokens {result.prompt_tokens} in / {result.completion_tokens} out · {cost_line(result.cost_usd, unknown_prices(result.usage.values()))}"
    )


class ConsoleRenderer:
    """Prints events as they come. Model text is printed as plain text (never parsed as markup)."""

    def __init__(self, console: Console | None = None, *, show_code: bool = True, max_output_lines: int = 12) -> None:
        self.console = console or Console(highlight=False, soft_wrap=True)
        self.show_code = show_code
        self.max_output_lines = max_output_lines
        self._colors: dict[str, str] = {}
        self._streamed = False  # did the current turn print streamed text?
        self._mask = EventMasker()
        # strategy runs: each attempt's events masked apart (its tokens are a stream of their own), the text
        # each attempt's agent streamed since its last whole line, and which agents streamed in their current turn
        self._attempt_masks: dict[int, EventMasker] = {}
        self._pending: dict[tuple[int, str], str] = {}  # an attempt's streamed text not yet printed (an unfinished line)
        self._spoke: set[tuple[int, str]] = set()

    def _color(self, agent: str) -> str:
        return self._colors.setdefault(agent, _COLORS[len(self._colors) % len(_COLORS)])

    def _end_stream(self) -> None:
        if self._streamed:
            self.console.print()
            self._streamed = False

    def __call__(self, event: ev.Event) -> None:
        if isinstance(event, ev.InAttempt):
            self._in_attempt(event)
            return
        for shown in self._mask(event):  # the terminal is a sink too: keys in model text or tool output are masked
            self._show(shown)

    def _in_attempt(self, event: ev.InAttempt) -> None:
        masker = self._attempt_masks.setdefault(event.attempt, EventMasker())
        for shown in masker(event.event):
            self._show_attempt(event.attempt, shown)

    def _show(self, event: ev.Event) -> None:
        c = self.console
        match event:
            case ev.RunStarted():
                c.print(Text.assemble(("Question: ", "bold"), event.question))
                extra = f" · attachments: {', '.join(event.attachments)}" if event.attachments else ""
                c.print(Text(f"Team: {event.team} ({', '.join(event.agents)}){extra}", style="dim"))
                if event.code_unavailable:
                    c.print(Text(f"⚠ Code execution is unavailable, the team runs without run_python: {event.code_unavailable}",
                                 style="bold yellow"))
            case ev.TurnStarted():
                self._end_stream()
                c.print(Rule(Text(f"{event.agent} · turn {event.turn}", style=f"bold {self._color(event.agent)}"), align="left"))
            case ev.Token():
                c.print(Text(event.text), end="")
                self._streamed = True
            case ev.Thought():
                self._end_stream()
                c.print(Text(event.text, style="italic dim"))
            case ev.ToolCall():
                self._end_stream()
                if event.shown_as_code and self.show_code:
                    return  # the CodeRun event shows it better
                c.print(Text.assemble(("  → ", "bold"), (event.name, "bold"), " ", one_line(_args(event.arguments), 200)))
            case ev.CodeRun():
                self._code_run(event)
            case ev.ToolResult():
                if event.shown_as_code and self.show_code:
                    return
                style = "red" if event.is_error else "dim"
                c.print(Text.assemble(("  ← ", "bold"), (self._clip(event.output).lstrip(), style)))
            case ev.TurnEnded():
                if not self._streamed:
                    c.print(Text(event.text))
                self._end_stream()
            case ev.AnswerProposed():
                self._end_stream()
                mark = {"proposed": "?", "approved": "✔", "rejected": "✘"}[event.verdict]
                c.print(Text(f"  {mark} {event.verdict}: {event.answer}", style="bold"))
            case ev.RunFinished():
                self._end_stream()
                self.final(event.result)
            case ev.AttemptStarted():
                self._end_stream()
                stage = {"first": " (first)", "escalated": " (escalation)"}.get(event.stage, "")
                c.print(Text.assemble((f"[{event.attempt}] ", "bold"), (f"Attempt {event.attempt} · {event.label}{stage}", "bold"),
                                      (f" started: team {event.team}", "dim")))
            case ev.InAttempt():
                self._in_attempt(event)
            case ev.Escalating():
                self._end_stream()
                c.print(Text.assemble(("⇪ Escalating: ", "bold yellow"), event.reason))
            case ev.Decided():
                self._end_stream()  # the final summary shows the decision, with the attempts
            case _:
                assert_never(event)

    # --- one attempt's events, prefixed with its number ---------------------------------------------------
    def _show_attempt(self, n: int, event: ev.Event) -> None:
        c = self.console
        tag = (f"[{n}] ", "bold")
        match event:
            case ev.Token():
                owner = (n, event.agent)
                self._spoke.add(owner)
                text = self._pending.pop(owner, "") + event.text
                *lines, rest = text.split("\n")
                if lines:
                    self._end_stream()
                for line in lines:
                    self._said(n, event.agent, line)
                if rest:
                    self._pending[owner] = rest
                return
            case ev.TurnStarted():
                self._end_stream()
                self._flush_attempt(n)
                self._spoke.discard((n, event.agent))
                c.print(Rule(Text(f"[{n}] {event.agent} · turn {event.turn}", style=f"bold {self._color(event.agent)}"), align="left"))
            case ev.TurnEnded():
                self._end_stream()
                self._flush_attempt(n)
                if (n, event.agent) not in self._spoke:
                    for line in event.text.strip().splitlines():
                        self._said(n, event.agent, line)
                self._spoke.discard((n, event.agent))
            case ev.RunStarted():
                self._end_stream()
                self._flush_attempt(n)
                c.print(Text.assemble(tag, (f"team {event.team} ({', '.join(event.agents)})", "dim")))
                if event.code_unavailable:
                    c.print(Text.assemble(tag, (f"⚠ Code execution is unavailable, this attempt runs without run_python: "
                                                f"{event.code_unavailable}", "bold yellow")))
            case ev.RunFinished():
                self._end_stream()
                self._flush_attempt(n)
                r = event.result
                answer = (f"answer {r.answer}" + (" ✔ approved" if r.approved else " (not approved)")) if r.answer else "no answer"
                c.print(Text.assemble(tag, (f"{answer} · ", "bold"), (summary_line(r), "dim")))
            case _:  # one line each, as in a single run, behind the attempt's number
                self._end_stream()
                self._flush_attempt(n)
                with c.capture() as captured:
                    self._show(event)
                for line in captured.get().splitlines():
                    c.print(Text.assemble(tag, Text.from_ansi(line)))

    def _said(self, n: int, agent: str, line: str) -> None:
        self.console.print(Text.assemble((f"[{n}] ", "bold"), (f"{agent}: ", self._color(agent)), line))

    def _flush_attempt(self, n: int) -> None:
        """Print what attempt `n` streamed since its last whole line (before its next event)."""
        for owner in [o for o in self._pending if o[0] == n]:
            if (rest := self._pending.pop(owner)).strip():
                self._said(n, owner[1], rest)

    def _code_run(self, event: ev.CodeRun) -> None:
        c = self.console
        if not self.show_code:
            return
        if event.output is None:
            c.print(Text(f"  → {event.tool}", style="bold"))
            c.print(Syntax(event.code, "python", line_numbers=False, word_wrap=True, padding=(0, 2)))
            return
        ok = event.exit_code == 0 and not event.is_error
        c.print(Text(f"  ← exit code {event.exit_code}" if event.exit_code is not None else "  ← failed",
                     style="bold green" if ok else "bold red"))
        if not event.isolated:
            c.print(Text(f"    ⚠ {event.sandbox}: this code ran without isolation", style="bold yellow"))
        body = event.output.split("\n", 1)[1] if event.output.startswith("exit code") else event.output
        c.print(Text(self._clip(body), style="dim"))

    def _clip(self, text: str) -> str:
        lines = text.strip().splitlines()
        if len(lines) > self.max_output_lines:
            lines = lines[: self.max_output_lines] + [f"[... {len(lines) - self.max_output_lines} more lines]"]
        return "\n".join("    " + ln for ln in lines).strip("\n")

    def final(self, result: Result) -> None:
        c = self.console
        c.print(Rule())
        if result.attempts:
            c.print(attempts_table(result.attempts))
        if result.decision is not None:
            for line in decision_lines(result.decision, "Votes" if result.strategy == "vote" else "Answers"):
                c.print(line)
        # the program checks on the answer (teams/checks.py) above it: the answer and the summary end the output
        for check in result.checks:
            c.print(Text(f"check: {check}", style="dim"))
        if result.answer:
            label = ("FINAL ANSWER" if result.approved else
                     "ANSWER BY CONSENSUS (not approved)" if result.stop_reason == "consensus" else
                     "BEST ANSWER SO FAR (not approved)")
            c.print(Text.assemble((f"{label}: ", "bold green" if result.approved else "bold yellow"), (result.answer, "bold")))
        else:
            c.print(Text("No answer.", style="bold red"))
        if result.error:
            c.print(Text(f"Error: {result.error}", style="red"))
        c.print(Text(summary_line(result), style="dim"))


def attempts_table(attempts: list[Attempt]) -> Table:
    """The attempts side by side (cells are Text: an answer is never read as markup)."""
    table = Table(title="Attempts", title_justify="left", show_lines=False)
    for name, justify in (("#", "right"), ("label", "left"), ("answer", "left"), ("approved", "left"),
                          ("stop reason", "left"), ("tokens", "right"), ("cost", "right")):
        table.add_column(name, justify=justify)  # type: ignore[arg-type]
    for a in attempts:
        stage = {"first": " (first)", "escalated": " (escalation)"}.get(a.stage, "")
        table.add_row(Text(str(a.number)), Text(a.label + stage), Text(one_line(a.answer, 80) or "—"),
                      Text("yes" if a.approved else "no", style="green" if a.approved else "yellow"), Text(a.stop_reason),
                      Text(f"{a.prompt_tokens + a.completion_tokens:,}"), Text(format_cost(a.cost_usd)))
    return table


def decision_lines(decision: Decision, heading: str = "Votes") -> list[Text]:
    lines = []
    if decision.groups:
        votes = "; ".join(f"{g.answer} ×{len(g.attempts)} (attempt{'s' if len(g.attempts) != 1 else ''} "
                          f"{', '.join(map(str, g.attempts))})" for g in decision.groups)
        lines.append(Text.assemble((f"{heading}: ", "bold"), votes))
    lines.append(Text.assemble(("Decision: ", "bold"), (decision.method, "bold"), f" — {decision.reason}"))
    if decision.adjudicator and one_line(decision.adjudicator, 400) not in decision.reason:
        lines.append(Text.assemble(("Adjudicator: ", "bold"), one_line(decision.adjudicator, 400)))
    return lines


def _args(arguments: str) -> str:
    try:
        data = json.loads(arguments)
    except json.JSONDecodeError:
        return arguments
    if isinstance(data, dict):
        return ", ".join(f"{k}={v!r}" for k, v in data.items())
    return arguments
