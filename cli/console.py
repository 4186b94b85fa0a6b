"""Rendering a run's events in a terminal: one block per agent turn, streamed, with tool calls and code runs."""

from __future__ import annotations

import json
from typing import assert_never

from rich.console import Console
from rich.rule import Rule
from rich.syntax import Syntax
from rich.text import Text

from common.text import one_line
from models.usage import cost_line, unknown_prices
from teams import events as ev
from teams.masking import EventMasker
from teams.result import Result

_COLORS = ["cyan", "magenta", "green", "yellow", "blue", "red"]


def summary_line(result: Result) -> str:
    turns = sum(1 for t in result.trace if t.kind in ("TextMessage", "ToolCallSummaryMessage"))
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

    def _color(self, agent: str) -> str:
        return self._colors.setdefault(agent, _COLORS[len(self._colors) % len(_COLORS)])

    def _end_stream(self) -> None:
        if self._streamed:
            self.console.print()
            self._streamed = False

    def __call__(self, event: ev.Event) -> None:
        for shown in self._mask(event):  # the terminal is a sink too: keys in model text or tool output are masked
            self._show(shown)

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
            case _:
                assert_never(event)

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


def _args(arguments: str) -> str:
    try:
        data = json.loads(arguments)
    except json.JSONDecodeError:
        return arguments
    if isinstance(data, dict):
        return ", ".join(f"{k}={v!r}" for k, v in data.items())
    return arguments
