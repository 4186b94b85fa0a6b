"""`python -m teams "question" [--team teams/debate.yaml] [--file path]`: one question, debated in the terminal."""

from __future__ import annotations

import argparse
import asyncio
import json
import signal
import sys
from pathlib import Path

from agents.tools.registry import entries
from cli.console import ConsoleRenderer
from config.log import setup_logging
from config.settings import get_settings
from models.providers import ProviderNotConfigured
from teams.loader import TeamConfigError, load_team
from teams.preflight import model_choices
from teams.runner import Question
from teams.strategies import start_run

EXIT_OK, EXIT_NO_ANSWER, EXIT_CONFIG = 0, 1, 2


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    settings = get_settings()
    p = argparse.ArgumentParser(prog="python -m teams", description="Debate one question with a team and print the final answer.")
    p.add_argument("question", nargs="?", help="the question; '-' reads it from standard input")
    p.add_argument("--tools", action="store_true", help="list the tools a team YAML can name, and what each needs")
    p.add_argument("--team", default=str(settings.team), help="team YAML path or name in teams/ (default: %(default)s)")
    p.add_argument("--file", action="append", default=[], type=Path, metavar="PATH", help="attach a file (repeatable)")
    p.add_argument("--timeout", type=float, help="seconds before the run stops with its best answer")
    p.add_argument("--max-turns", type=int, help="agent turns before the run stops with its best answer")
    p.add_argument("--json", action="store_true", help="print the full result as JSON at the end")
    p.add_argument("--quiet", action="store_true", help="print only the final answer")
    p.add_argument("--no-code", action="store_true", help="hide code runs")
    p.add_argument("--verbose", action="store_true", help="log every turn and tool call to stderr")
    args = p.parse_args(argv)
    if args.question is None and not args.tools:
        p.error("the question is required (or --tools)")
    return args


def list_tools() -> int:
    for entry in entries():
        print(f"{entry.name:20} {entry.summary}" + (f"  [needs {entry.needs}]" if entry.needs else ""))
    return EXIT_OK


async def run_cli(args: argparse.Namespace) -> int:
    settings = get_settings()
    if args.verbose:
        settings = settings.model_copy(update={"log_level": "INFO" if settings.log_level.upper() != "DEBUG" else "DEBUG"})
    else:
        settings = settings.model_copy(update={"log_level": "WARNING"})
    setup_logging(settings)
    try:
        team = load_team(args.team)
        model_choices(team, settings)
    except (TeamConfigError, ProviderNotConfigured) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_CONFIG
    question_text = sys.stdin.read().strip() if args.question == "-" else args.question
    missing = [str(f) for f in args.file if not f.is_file()]
    if missing:
        print(f"error: attachment not found: {', '.join(missing)}", file=sys.stderr)
        return EXIT_CONFIG
    run = start_run(Question(question_text, attachments=list(args.file)), team, settings=settings, timeout_s=args.timeout, max_turns=args.max_turns)
    renderer = None if args.quiet else ConsoleRenderer(show_code=not args.no_code)
    loop = asyncio.get_running_loop()
    try:
        loop.add_signal_handler(signal.SIGINT, run.cancel)  # first Ctrl-C: stop and keep the best answer
    except (NotImplementedError, RuntimeError):  # pragma: no cover - non-POSIX
        pass
    async for event in run.events():
        if renderer is not None:
            renderer(event)
    loop.remove_signal_handler(signal.SIGINT)
    result = run.result
    assert result is not None
    if args.quiet:
        print(result.answer)
    if args.json:
        print(json.dumps(result.to_dict(), indent=2, default=str))
    return EXIT_OK if result.answer else EXIT_NO_ANSWER


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.tools:
        return list_tools()
    return asyncio.run(run_cli(args))


if __name__ == "__main__":
    sys.exit(main())
