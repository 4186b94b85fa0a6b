"""The Agents Course evaluation from a terminal (or a Space job): questions, run, eval, submit.

    python submit.py questions                          # the current questions and where their files are
    python submit.py run [--team teams/debate.yaml] [--concurrency 4] [--only TASK_ID ...] [--run-dir DIR] [--ray [ADDR]]
    python submit.py sweep --team debate --team vote --attempts 3 [--ray [ADDR]] [--sweep-dir DIR]   # teams x attempts
    python submit.py eval --run-dir DIR [DIR ...] --labels FILE.jsonl   # several: accuracy per strategy
    python submit.py compare DIR DIR [DIR ...] --labels FILE.jsonl [--out DIR]   # side by side, bootstrap CIs
    python submit.py submit --run-dir DIR               # a dry run: the payload and who it would be sent as
    python submit.py submit --run-dir DIR --yes         # send it

The scoring API is SCORING_API_URL; the username is always the verified owner of the Hugging Face token
(HF_TOKEN or `hf auth login`), and that token is never sent to the scoring API, printed, or saved.
Exit status: 0 on success, 1 on any error or failed question, 130 when a run was interrupted.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import signal
import sys
from pathlib import Path
from typing import Any

from pydantic import ValidationError
from rich.console import Console
from rich.table import Table
from rich.text import Text

from models.usage import format_cost

console = Console(highlight=False, soft_wrap=True)  # messages unwrapped (paths stay copyable); tables fit the width
err = Console(stderr=True, highlight=False, soft_wrap=True)

EXIT_OK, EXIT_ERROR, EXIT_INTERRUPTED = 0, 1, 130


class CliError(Exception):
    """A user-facing error: printed as one message, exit status 1."""


# --- shared -------------------------------------------------------------------------------------------
def load_settings() -> Any:
    from config.settings import get_settings

    try:
        return get_settings()
    except ValidationError as exc:
        problems = "; ".join(f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in exc.errors())
        raise CliError(f"invalid settings (environment or .env): {problems}") from None


def setup_logs(settings: Any, log_file: Path | None = None) -> None:
    """Warnings on the terminal (above the live progress), the full log in the run dir; secrets masked in both."""
    from loguru import logger

    from config.log import TEXT_FORMAT, setup_logging

    setup_logging(settings.model_copy(update={"log_level": "WARNING"}), sink=lambda m: err.print(Text(str(m).rstrip("\n"))))
    if log_file is not None:
        logger.add(log_file, level=settings.log_level.upper(), format=TEXT_FORMAT, colorize=False, delay=True,
                   backtrace=False, diagnose=False, serialize=settings.log_format == "json")


def warn(lines: list[str]) -> None:
    for line in lines:
        err.print(Text(f"warning: {line}", style="yellow"))


def scoring_api(settings: Any, args: argparse.Namespace) -> Any:
    from evaluation.api import ScoringAPI

    return ScoringAPI(settings.scoring_api_url, timeout=args.api_timeout)


# --- questions ----------------------------------------------------------------------------------------
async def attachment_source(task: Any, settings: Any, api: Any) -> str:
    """Where `run` would get the attachment: the local cache, the scoring API, or the gated GAIA dataset."""
    from evaluation.attachments import AttachmentError, cached_path

    try:
        cached = cached_path(task.task_id, task.file_name, settings)
    except AttachmentError as exc:  # a file name the fetcher refuses (not a plain name, an answer file)
        return f"missing: {exc}"
    if cached.is_file() and cached.stat().st_size > 0:
        return "cached"
    try:
        if await api.file_available(task.task_id):
            return "scoring API"
    except Exception:
        pass  # the fallback below decides
    from huggingface_hub import get_hf_file_metadata, hf_hub_url
    from huggingface_hub.errors import EntryNotFoundError, GatedRepoError, HfHubHTTPError

    from evaluation.identity import find_token

    url = hf_hub_url("gaia-benchmark/GAIA", f"2023/validation/{task.file_name}", repo_type="dataset",
                     endpoint=settings.hf_endpoint)
    token = find_token(settings)
    try:  # a HEAD request on exactly that file: no download, no metadata files
        await asyncio.to_thread(get_hf_file_metadata, url, token=token or False, endpoint=settings.hf_endpoint)
        return "GAIA dataset (HF)"
    except GatedRepoError:
        return "missing: GAIA dataset is gated, set HF_TOKEN and accept its terms" if token else "missing: set HF_TOKEN (GAIA dataset is gated)"
    except EntryNotFoundError:
        return "missing: not served, not in the GAIA dataset"
    except HfHubHTTPError as exc:
        status = exc.response.status_code if exc.response is not None else "?"
        return f"missing: GAIA dataset answered HTTP {status}"
    except Exception as exc:
        return f"unknown: {type(exc).__name__}"


async def cmd_questions(args: argparse.Namespace) -> int:
    settings = load_settings()
    setup_logs(settings)
    from evaluation.api import ScoringAPIError

    api = scoring_api(settings, args)
    try:
        tasks = await api.questions()
    except ScoringAPIError as exc:
        raise CliError(str(exc)) from None
    warn(api.last_problems)
    sources: dict[str, str] = {}
    if not args.no_check:
        with_files = [t for t in tasks if t.file_name]
        found = await asyncio.gather(*(attachment_source(t, settings, api) for t in with_files))
        sources = {t.task_id: s for t, s in zip(with_files, found, strict=True)}
    if args.json:
        print(json.dumps([{**t.to_dict(), "attachment": sources.get(t.task_id)} for t in tasks], indent=2, ensure_ascii=False))
        return EXIT_OK
    table = Table(title=f"{len(tasks)} questions from {settings.scoring_api_url}", show_lines=False)
    for col in ("#", "task_id", "level", "question", "attachment"):
        table.add_column(col, overflow="fold" if col == "question" else "ellipsis")
    for i, t in enumerate(tasks, 1):
        where = "" if not t.file_name else f"{t.file_name} ({sources.get(t.task_id, 'not checked')})"
        style = "red" if "missing" in where else ""
        table.add_row(str(i), t.task_id, t.level, Text(" ".join(t.question.split())[:160]), Text(where, style=style))
    console.print(table)
    return EXIT_OK


# --- live runs (run and sweep) ------------------------------------------------------------------------
def show_status(out: Console, label: str, status: Any) -> None:
    where = f"[{label}] " if label else ""
    if status.state == "done":
        out.print(Text.assemble(("✓ ", "green"), f"{where}{status.task_id}: {status.answer!r}",
                                (f"  {status.duration_s:.1f}s", "dim")))
    elif status.state == "failed":
        out.print(Text.assemble(("✗ ", "red"), f"{where}{status.task_id}: {status.error}"))


async def run_interruptible(start: Any, cancel: Any, live: Any, resume: str, where: str) -> Any:
    """Await `start()`; the first Ctrl-C (or SIGTERM) calls `cancel` (running questions stop, finished answers
    are kept), a second one quits at once. None when quit that way."""
    interrupted = {"count": 0}
    loop = asyncio.get_running_loop()
    main_task = asyncio.current_task()
    assert main_task is not None

    def on_signal() -> None:
        interrupted["count"] += 1
        if interrupted["count"] == 1:
            live.console.print(Text("stopping: running questions are cancelled, finished answers are saved "
                                    "(press Ctrl-C again to quit at once)", style="yellow"))
            cancel()
        else:
            main_task.cancel()

    for sig in (signal.SIGINT, signal.SIGTERM):
        try:
            loop.add_signal_handler(sig, on_signal)
        except (NotImplementedError, RuntimeError):  # pragma: no cover  (Windows)
            pass
    try:
        return await start()
    except asyncio.CancelledError:
        live.stop()
        err.print(f"interrupted; finished answers are in {where}. Resume with `{resume}`")
        return None


def only(tasks: list[Any], wanted: list[str] | None) -> list[Any]:
    """The tasks --only names (all of them without it); an unknown task id is an error."""
    if not wanted:
        return tasks
    unknown = [t for t in wanted if t not in {t.task_id for t in tasks}]
    if unknown:
        raise CliError(f"--only: unknown task id(s) {', '.join(unknown)}; `python submit.py questions` lists them")
    return [t for t in tasks if t.task_id in set(wanted)]


def provider_caps(settings: Any, args: argparse.Namespace) -> dict[str, int]:
    """ROUNDTABLE_PROVIDER_CAPS, with --provider-cap on top."""
    from models.gate import CapsError, parse_caps

    try:
        return {**parse_caps(settings.provider_caps), **parse_caps(getattr(args, "provider_cap", None))}
    except CapsError as exc:
        raise CliError(f"--provider-cap: {exc}") from None


async def start_pool(args: argparse.Namespace, settings: Any, teams: list[dict[str, Any]]) -> Any:
    """With --ray, the cluster's solvers (checked to run `teams` as this process would); without, None, and
    the provider caps apply to this process."""
    from models import gate

    caps = provider_caps(settings, args)
    if args.ray is None:
        gate.install(gate.LocalGate(caps) if caps else None)
        return None
    from evaluation.distributed.pool import PoolError, SolverPool

    pool = SolverPool(args.ray or None, solvers=args.solvers, concurrency=args.concurrency, caps=caps,
                      retries=args.retries)
    console.print(f"Connecting to Ray ({args.ray or 'RAY_ADDRESS, a cluster on this machine, or a new local one'}) …")
    try:
        await pool.start(teams)
    except PoolError as exc:
        await pool.shutdown()
        raise CliError(str(exc)) from None
    hosts = sorted({m.host for m in pool.members})
    sandboxes = sorted({m.sandbox for m in pool.members})
    console.print(f"Ray: {len(pool.members)} solver(s) on {len(hosts)} host(s) ({', '.join(hosts)}) · "
                  f"run_python sandbox: {', '.join(sandboxes)}"
                  + (f" · provider caps {', '.join(f'{k}={v}' for k, v in caps.items())} across the cluster" if caps else ""))
    if any(s == "none" or "NOT isolated" in s for s in sandboxes):
        warn(["a Ray worker has no isolated sandbox: its questions run without run_python (or unisolated, if "
              "allowed); give workers Docker, bubblewrap or the wasm runtime (the app image has it)"])
    return pool


# --- run ----------------------------------------------------------------------------------------------
async def cmd_run(args: argparse.Namespace) -> int:
    from rich.live import Live

    from evaluation.api import ScoringAPIError
    from evaluation.batch import BatchError, BatchProgress, BatchRun
    from evaluation.store import RUN_LOG, RunDirError, RunStore, new_run_dir

    settings = load_settings()
    provider_caps(settings, args)  # a cap that does not parse is said before anything is fetched
    run_dir: Path = args.run_dir or new_run_dir(Path("runs"))
    resume = args.run_dir is not None and RunStore.is_run_dir(run_dir)
    team = args.team
    tasks = []
    if resume:
        try:
            store = RunStore.open(run_dir)
            tasks = store.tasks()
            store.records()
        except RunDirError as exc:
            raise CliError(str(exc)) from None
        warn(store.warnings)
        team = team or (store.meta.get("team") or {}).get("source") or (store.meta.get("team") or {}).get("name")
    setup_logs(settings)
    if not tasks:
        api = scoring_api(settings, args)
        try:
            tasks = await api.questions()
        except ScoringAPIError as exc:
            raise CliError(f"{exc}\nNothing was run.") from None
        warn(api.last_problems)
    else:
        console.print(f"Resuming {run_dir}: {len(tasks)} questions saved in it (the scoring API is not asked again).")
    selected = only(tasks, args.only)
    try:
        batch = BatchRun(team or settings.team, run_dir, settings=settings, concurrency=args.concurrency, timeout_s=args.timeout)
    except BatchError as exc:
        raise CliError(str(exc)) from None
    warn(batch.notes)
    try:  # every question is saved, so `submit` covers them all even after a run with --only
        batch.prepare(tasks)
    except BatchError as exc:
        raise CliError(str(exc)) from None
    setup_logs(settings, run_dir / RUN_LOG)
    console.print(
        f"Run dir {run_dir} · team {batch.cfg.name} · {len(selected)} questions · concurrency {batch.concurrency} · "
        f"{batch.timeout_s:g}s per question"
    )
    progress = BatchProgress(len(selected))

    resumed = batch.done_in_run_dir(selected)
    if resumed:
        console.print(f"{len(resumed)} question(s) already answered in {run_dir} are skipped.")

    def on_update(status: Any) -> None:
        progress.update(status)
        if status.started is None:  # answered in an earlier session, or not started yet
            return
        show_status(live.console, "", status)

    pool = await start_pool(args, settings, [{"config": batch.cfg.model_dump(mode="json"), "models": batch.models}])
    batch.pool = pool
    try:
        with Live(progress, console=console, refresh_per_second=4, transient=True) as live:
            try:
                statuses = await run_interruptible(lambda: batch.run(selected, on_update=on_update), batch.cancel,
                                                   live, f"python submit.py run --run-dir {run_dir}", f"{run_dir}/answers.jsonl")
            except BatchError as exc:
                raise CliError(str(exc)) from None
            if statuses is None:
                return EXIT_INTERRUPTED
    finally:
        if pool is not None:
            await pool.shutdown()
    print_run_summary(run_dir, statuses, progress)
    if pool is not None and pool.reruns:
        console.print(f"{pool.reruns} question-attempt(s) were sent again after their Ray worker was lost.")
    if batch.cancelled:
        return EXIT_INTERRUPTED
    return EXIT_OK if all(s.state == "done" for s in statuses) else EXIT_ERROR


def print_run_summary(run_dir: Path, statuses: list[Any], progress: Any) -> None:
    table = Table(title="Answers", show_lines=False)
    for col in ("task_id", "state", "answer / error", "time", "tokens", "cost"):
        table.add_column(col, overflow="fold" if col == "answer / error" else "ellipsis")
    for s in statuses:
        what = s.answer if s.state == "done" else (s.error or "")
        style = {"done": "green", "failed": "red"}.get(s.state, "dim")
        table.add_row(s.task_id, Text(s.state + (" (earlier)" if s.resumed else ""), style=style), Text(str(what)),
                      f"{s.duration_s:.1f}s", f"{s.prompt_tokens + s.completion_tokens}", format_cost(s.cost_usd))
    console.print(table)
    console.print(progress.summary_line())
    failed = [s for s in statuses if s.state != "done"]
    if failed:
        console.print(f"{len(failed)} question(s) without an answer: run `python submit.py run --run-dir {run_dir}` to retry them.")
    console.print(f"Next: `python submit.py eval --run-dir {run_dir} --labels FILE.jsonl` or "
                  f"`python submit.py submit --run-dir {run_dir}`")


# --- sweep --------------------------------------------------------------------------------------------
async def cmd_sweep(args: argparse.Namespace) -> int:
    from rich.live import Live

    from evaluation.api import ScoringAPIError
    from evaluation.batch import BatchProgress
    from evaluation.store import RUN_LOG
    from evaluation.sweep import Sweep, SweepError

    settings = load_settings()
    provider_caps(settings, args)
    sweep_dir: Path = args.sweep_dir or Path("sweeps") / new_stamp()
    try:
        sweep = Sweep(sweep_dir, settings=settings, teams=args.team, attempts=args.attempts,
                      concurrency=args.concurrency, timeout_s=args.timeout)
    except SweepError as exc:
        raise CliError(str(exc)) from None
    warn(sweep.notes)
    setup_logs(settings)
    tasks = sweep.tasks()
    if tasks:
        console.print(f"Resuming {sweep_dir}: {len(tasks)} questions saved in it (the scoring API is not asked again).")
    else:
        api = scoring_api(settings, args)
        try:
            tasks = await api.questions()
        except ScoringAPIError as exc:
            raise CliError(f"{exc}\nNothing was run.") from None
        warn(api.last_problems)
    selected = only(tasks, args.only)
    try:
        sweep.prepare(tasks)
    except SweepError as exc:
        raise CliError(str(exc)) from None
    setup_logs(settings, sweep_dir / RUN_LOG)
    labels = [label for label, _ in sweep.batches]
    console.print(f"Sweep dir {sweep_dir} · {len(labels)} run dirs ({', '.join(labels)}) · {len(selected)} questions each · "
                  f"concurrency {sweep.concurrency} · {sweep.timeout_s:g}s per question")
    done = sweep.done(selected)
    if done:
        console.print(f"{done} question-attempt(s) already answered in {sweep_dir} are skipped.")
    progress = BatchProgress(len(selected) * len(labels))

    def on_update(label: str, status: Any) -> None:
        progress.update(status, key=f"{label}/{status.task_id}", label=label)
        if status.started is not None:
            show_status(live.console, label, status)

    pool = await start_pool(args, settings, sweep.teams)
    sweep.set_pool(pool)
    try:
        with Live(progress, console=console, refresh_per_second=4, transient=True) as live:
            try:
                results = await run_interruptible(lambda: sweep.run(selected, on_update=on_update), sweep.cancel, live,
                                                  f"python submit.py sweep --sweep-dir {sweep_dir}", str(sweep_dir))
            except SweepError as exc:
                raise CliError(str(exc)) from None
            if results is None:
                return EXIT_INTERRUPTED
    finally:
        if pool is not None:
            await pool.shutdown()
    table = Table(title=f"Sweep {sweep_dir}")
    for col in ("run dir", "done", "failed", "time", "tokens", "cost"):
        table.add_column(col)
    from models.usage import total_cost

    for label, statuses in results.items():
        table.add_row(label, str(sum(s.state == "done" for s in statuses)), str(sum(s.state == "failed" for s in statuses)),
                      f"{sum(s.duration_s for s in statuses):.1f}s",
                      str(sum(s.prompt_tokens + s.completion_tokens for s in statuses)), format_cost(total_cost(statuses)))
    console.print(table)
    console.print(progress.summary_line())
    if pool is not None and pool.reruns:
        console.print(f"{pool.reruns} question-attempt(s) were sent again after their Ray worker was lost.")
    dirs = " ".join(str(d) for d in sweep.run_dirs)
    failed = sum(s.state != "done" for statuses in results.values() for s in statuses)
    if failed:
        console.print(f"{failed} question-attempt(s) without an answer: run `python submit.py sweep --sweep-dir {sweep_dir}` to retry them.")
    console.print(f"Next: `python submit.py eval --run-dir {dirs} --labels FILE.jsonl` or "
                  f"`python submit.py compare {dirs} --labels FILE.jsonl`")
    if sweep.cancelled:
        return EXIT_INTERRUPTED
    return EXIT_OK if not failed else EXIT_ERROR


def new_stamp() -> str:
    from evaluation.store import new_run_dir

    return new_run_dir(Path("sweeps")).name


# --- submit -------------------------------------------------------------------------------------------
async def cmd_submit(args: argparse.Namespace) -> int:
    from evaluation.api import ScoringAPIError
    from evaluation.batch import answers_payload
    from evaluation.identity import AgentCodeError, IdentityError, agent_code_url, resolve_identity
    from evaluation.store import RunDirError, RunStore
    from evaluation.submission import payload, result_text, save_submission, submit_answers

    settings = load_settings()
    setup_logs(settings)
    try:
        store = RunStore.open(args.run_dir)
        answers = answers_payload(store)
    except RunDirError as exc:
        raise CliError(str(exc)) from None
    warn(store.warnings)
    if not answers:
        raise CliError(f"{args.run_dir} holds no questions; run `python submit.py run` first")
    empty = [a["task_id"] for a in answers if not a["submitted_answer"]]
    if len(empty) == len(answers):
        raise CliError(f"no question in {args.run_dir} has an answer; nothing to submit")
    problems: list[str] = []
    agent_code = "<missing>"
    try:
        agent_code = agent_code_url(settings.space_id, args.agent_code)
    except AgentCodeError as exc:
        problems.append(str(exc))
    identity = None
    try:
        identity = resolve_identity(settings, login=args.login, username=args.username)
    except IdentityError as exc:
        problems.append(str(exc))
    body = payload(identity.username if identity else "<unknown>", agent_code, answers)

    if empty:
        warn([f"{len(empty)} of {len(answers)} questions have no answer and are submitted as \"\": {', '.join(empty[:8])}"
              + (" …" if len(empty) > 8 else "")])
    if not args.yes or problems:
        table = Table(title=f"{len(answers)} answers from {args.run_dir}")
        table.add_column("task_id")
        table.add_column("submitted_answer", overflow="fold")
        for a in body["answers"]:
            table.add_row(a["task_id"], a["submitted_answer"] or Text('""', style="dim"))
        console.print(table)
        console.print_json(json.dumps(body, ensure_ascii=False))
        who = f"{identity.username} (verified by the Hugging Face token at {settings.hf_endpoint})" if identity else "?"
        console.print(f"POST {settings.scoring_api_url}/submit as {who}\nagent_code: {agent_code}")
    if problems:
        for p in problems:
            err.print(Text(f"error: {p}", style="red"))
        err.print("Nothing was submitted.")
        return EXIT_ERROR
    if not args.yes:
        console.print(Text("Dry run: nothing was sent. Add --yes to submit.", style="bold"))
        return EXIT_OK
    assert identity is not None
    try:
        result = await submit_answers(scoring_api(settings, args), identity, agent_code, body["answers"])
    except ScoringAPIError as exc:
        err.print(Text(f"Submission failed: {exc}", style="red"))
        return EXIT_ERROR
    saved = save_submission(store.path, body, result, settings.scoring_api_url, identity.source)
    console.print(result_text(result))
    console.print(Text(f"(saved to {saved})", style="dim"))
    return EXIT_OK


# --- eval ---------------------------------------------------------------------------------------------
async def cmd_eval(args: argparse.Namespace) -> int:
    from evaluation.report import (
        SUMMARY_COLUMNS,
        ReportError,
        build_report,
        format_summary_row,
        load_labels,
        summary_rows,
        write_report,
    )
    from evaluation.store import RunDirError, RunStore

    run_dirs: list[Path] = list(dict.fromkeys(args.run_dir))  # each one team or strategy; a repeat counts once
    try:
        labels, problems = load_labels(args.labels)
        stores = [RunStore.open(d) for d in run_dirs]
        reports = [build_report(store, labels, problems) for store in stores]
    except (RunDirError, ReportError) as exc:
        raise CliError(str(exc)) from None
    warn(problems + [f"{store.path}: {w}" if len(stores) > 1 else w for store in stores for w in store.warnings])
    mark = {True: Text("✓", style="green"), False: Text("✗", style="red"), None: Text("–", style="dim")}

    def pct(v: float | None) -> str:
        return "n/a" if v is None else f"{100 * v:.1f}%"

    if len(stores) == 1:  # the per-question table
        report = reports[0]
        with_attempts = report.get("strategy", "single") != "single"
        table = Table(title=f"Evaluation of {run_dirs[0]}")
        cols = ["task_id", "answer", "expected", "strict", "GAIA", "time", "tokens", "cost"] + (["attempts"] if with_attempts else [])
        for col in cols:
            table.add_column(col, overflow="fold" if col in ("answer", "expected", "attempts") else "ellipsis")
        for r in report["rows"]:
            answer = Text(r["answer"]) if r["state"] == "done" else Text(f"({r['state']})", style="dim")
            cells: list[Any] = [r["task_id"], answer, Text(r["truth"] if r["truth"] is not None else "(no label)"),
                                mark[r["strict"]], mark[r["gaia"]], f"{r['duration_s']:.1f}s",
                                str(r["prompt_tokens"] + r["completion_tokens"]),
                                format_cost(r["cost_usd"]) if r["state"] != "pending" else ""]
            if with_attempts:
                shown = Text()
                for i, a in enumerate(r.get("attempts") or []):
                    shown.append(("  " if i else "") + f"{a['number']}: {a['answer'] or '(none)'} ")
                    shown.append_text(mark[a["gaia"]])
                if r.get("decision"):
                    shown.append(f"  → {r['decision']}", style="dim")
                cells.append(shown)
            table.add_row(*cells)
        console.print(table)
        t = report["totals"]
        console.print(
            f"strict exact match: {t['strict_correct']}/{t['labelled']} ({pct(t['strict_accuracy'])}) · "
            f"GAIA scorer: {t['gaia_correct']}/{t['labelled']} ({pct(t['gaia_accuracy'])}) · "
            f"answered {t['answered']}/{t['questions']} · time {t['duration_s']:.1f}s · "
            f"tokens {t['prompt_tokens']} in / {t['completion_tokens']} out · {format_cost(t['cost_usd'])}"
        )
    rows = summary_rows(reports)
    if len(stores) > 1 or any(r["kind"] == "attempt" for r in rows):
        summary = Table(title="Accuracy per strategy (tokens and cost per correct answer: GAIA scorer)")
        for col in ("run dir", *SUMMARY_COLUMNS):
            summary.add_column(col, overflow="fold" if col in ("run dir", "team", "") else "ellipsis")
        for row in rows:
            cells = format_summary_row(row)
            attempt = row["kind"] == "attempt"
            summary.add_row("" if attempt else str(row["run_dir"]), *[Text(("↳ " if attempt and i == 0 else "") + c,
                            style="dim" if attempt else "") for i, c in enumerate(cells)])
        console.print(summary)
    for report in reports:
        if report["formatting_problems"]:
            where = f"{report['run_dir']}: " if len(reports) > 1 else ""
            warn([f"{where}accepted by the GAIA scorer but not by exact match (fix the format): {', '.join(report['formatting_problems'])}"])
    for store, report in zip(stores, reports, strict=True):
        if len(reports) > 1:
            report["comparison"] = rows  # every run dir's report.md shows the whole comparison
        json_path, md_path = write_report(store, report)
        console.print(f"Wrote {json_path} and {md_path}")
    return EXIT_OK


# --- compare ------------------------------------------------------------------------------------------
async def cmd_compare(args: argparse.Namespace) -> int:
    from evaluation.compare import (
        CompareError,
        agreement_table,
        compare_runs,
        default_out_dir,
        differences_table,
        totals_table,
        write_comparison,
    )
    from evaluation.report import ReportError, load_labels
    from evaluation.store import RunDirError

    try:
        labels, problems = load_labels(args.labels)
        comparison = compare_runs(list(args.run_dirs), labels, problems, resamples=args.resamples, seed=args.seed)
    except (RunDirError, ReportError, CompareError) as exc:
        raise CliError(str(exc)) from None
    warn(problems)
    if comparison["excluded"]:
        warn([f"{len(comparison['excluded'])} question(s) are left out: not in every run dir, or not labelled"])
    for line in [*totals_table(comparison), "", *differences_table(comparison), "", *agreement_table(comparison)]:
        console.print(Text(line))
    out = args.out or default_out_dir(list(args.run_dirs))
    written = write_comparison(comparison, out)
    console.print(f"Wrote {written['markdown']}, {written['json']} and {len(written) - 2} charts in {out}")
    return EXIT_OK


# --- the parser ---------------------------------------------------------------------------------------
def positive_int(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError("must be at least 1")
    return value


def positive_float(text: str) -> float:
    value = float(text)
    if value <= 0:
        raise argparse.ArgumentTypeError("must be greater than 0")
    return value


def add_scale_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--ray", nargs="?", const="", default=None, metavar="ADDRESS",
                   help="solve on a Ray cluster: ADDRESS (host:port, or auto), or none for RAY_ADDRESS, a cluster "
                   "started on this machine, or else a new local one")
    p.add_argument("--solvers", type=positive_int, metavar="N", help="with --ray: solver actors (default one per node with a CPU)")
    p.add_argument("--retries", type=int, default=2, metavar="N",
                   help="with --ray: times a question is sent again after its worker is lost (default 2)")
    p.add_argument("--provider-cap", action="append", metavar="PROVIDER=N",
                   help="model calls at once per provider, e.g. openai=8 (repeatable; *=N for the rest); with --ray "
                   "shared by the whole cluster. Default: ROUNDTABLE_PROVIDER_CAPS")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="submit.py",
        description="Run the Agents Course evaluation with a Roundtable team and submit it under your Hugging Face identity.",
        epilog="Settings: SCORING_API_URL (scoring API), HF_TOKEN (identity and gated attachments), HF_ENDPOINT, "
        "SPACE_ID (agent_code), ROUNDTABLE_TEAM, ROUNDTABLE_QUESTION_TIMEOUT, ROUNDTABLE_CACHE_DIR, plus the model keys.",
    )
    parser.add_argument("--api-timeout", type=positive_float, default=30.0, metavar="S",
                        help="seconds to wait for the scoring API (submit waits at least 60)")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    q = sub.add_parser("questions", help="list the current questions and whether their attachments are available",
                       description="Fetch GET /questions and show each question with where its attachment would come "
                       "from: the local cache, the scoring API, or the gated GAIA dataset on Hugging Face.")
    q.add_argument("--json", action="store_true", help="print JSON instead of a table")
    q.add_argument("--no-check", action="store_true", help="do not check attachment availability")
    q.set_defaults(func=cmd_questions)

    r = sub.add_parser("run", help="solve the questions concurrently and save every answer at once (resumable)",
                       description="Fetch the questions (and attachments) and solve them with bounded concurrency and a "
                       "per-question time limit, with live progress. Each finished answer is written to the run dir "
                       "(runs/<timestamp>/answers.jsonl, with its trace) at once, so nothing finished is lost on a crash, "
                       "Ctrl-C or kill. --run-dir on an existing run dir resumes it: done questions are skipped, failed "
                       "ones retried, with the team config recorded in its run.json.")
    r.add_argument("--team", help="team YAML or name (default: ROUNDTABLE_TEAM or teams/debate.yaml; a resumed run keeps its own)")
    r.add_argument("--concurrency", type=positive_int, default=4, metavar="N", help="questions solved at once (default 4)")
    r.add_argument("--only", nargs="+", metavar="TASK_ID", help="solve only these task ids (all questions are still saved)")
    r.add_argument("--run-dir", type=Path, metavar="DIR", help="where to write; an existing run dir is resumed")
    r.add_argument("--timeout", type=positive_float, metavar="S", help="time limit per question (default: the team's)")
    add_scale_options(r)
    r.set_defaults(func=cmd_run)

    w = sub.add_parser("sweep", help="several teams x the questions x N attempts, one run dir each, locally or on Ray",
                       description="Solve every question with each --team, --attempts times, in one command: one run "
                       "dir per team and attempt under the sweep dir (sweeps/<timestamp>/<team>-<k>), all sharing one "
                       "concurrency. With --ray the question-attempts run on a Ray cluster's workers; this process "
                       "stays the only writer of the run dirs. --sweep-dir on an existing sweep resumes it: done "
                       "question-attempts are skipped, failed ones retried. `eval` and `compare` read the run dirs.")
    w.add_argument("--team", action="append", metavar="TEAM", help="a team YAML or name (repeat for several; a resumed sweep keeps its own)")
    w.add_argument("--attempts", type=positive_int, metavar="N", help="run dirs per team (default 1)")
    w.add_argument("--sweep-dir", type=Path, metavar="DIR", help="where to write; an existing sweep dir is resumed")
    w.add_argument("--concurrency", type=positive_int, default=8, metavar="N", help="question-attempts at once, over all run dirs (default 8)")
    w.add_argument("--only", nargs="+", metavar="TASK_ID", help="solve only these task ids (all questions are still saved)")
    w.add_argument("--timeout", type=positive_float, metavar="S", help="time limit per question (default: each team's)")
    add_scale_options(w)
    w.set_defaults(func=cmd_sweep)

    s = sub.add_parser("submit", help="submit a run's answers (a dry run unless --yes)",
                       description="Show the payload and the verified Hugging Face user it would be submitted as; with "
                       "--yes, POST it to the scoring API and print the score. Every question of the run is in the "
                       "payload (\"\" when unanswered). The username comes from whoami on your token (HF_TOKEN or "
                       "`hf auth login`), never from free text.")
    s.add_argument("--run-dir", type=Path, required=True, metavar="DIR", help="the run dir to submit")
    s.add_argument("--yes", action="store_true", help="really submit (without it: dry run)")
    s.add_argument("--login", action="store_true", help="without a token, log in to Hugging Face interactively (terminal only, not in CI)")
    s.add_argument("--username", help="accepted only if it is the authenticated user's name (a safety check)")
    s.add_argument("--agent-code", metavar="URL", help="your public Space, https://huggingface.co/spaces/<owner>/<name>/tree/main "
                   "or <owner>/<name> (default: from SPACE_ID)")
    s.set_defaults(func=cmd_submit)

    e = sub.add_parser("eval", help="score runs locally against your own labels (strict and GAIA scorer), per strategy",
                       description="Compare each answer with your labels file (JSONL: task_id, final_answer per line) by "
                       "strict exact match and by GAIA's scorer, side by side; print the per-question table and the "
                       "totals (accuracy, time, tokens, cost) and write report.json and report.md into the run dir. "
                       "Several run dirs (one per team or strategy) print one row each: accuracy, tokens, and tokens and "
                       "cost per correct answer; a vote's or an escalation's row is followed by one row per attempt, "
                       "scored as if that attempt had been submitted alone, and escalate says how many questions escalated.")
    e.add_argument("--run-dir", type=Path, required=True, action="extend", nargs="+", metavar="DIR",
                   help="one or more run dirs (repeat --run-dir or list them)")
    e.add_argument("--labels", type=Path, required=True, metavar="FILE.jsonl")
    e.set_defaults(func=cmd_eval)

    c = sub.add_parser("compare", help="compare run dirs on the same questions: accuracy, cost, time, tokens, agreement",
                       description="Score two or more run dirs (teams, strategies or models) against one labels file "
                       "on the questions they all answered and the labels file labels: accuracy (strict and GAIA "
                       "scorer), cost, time and tokens per question and in total, which run dirs got each question "
                       "right, and each accuracy difference against the first run dir with a paired bootstrap 95% "
                       "interval. Writes compare.md (with PNG charts) and compare.json into --out "
                       "(default: <first run dir>/compare).")
    c.add_argument("run_dirs", type=Path, nargs="+", metavar="RUN_DIR", help="two or more run dirs; the first is the baseline")
    c.add_argument("--labels", type=Path, required=True, metavar="FILE.jsonl")
    c.add_argument("--out", type=Path, metavar="DIR", help="where to write compare.md and the charts")
    c.add_argument("--resamples", type=positive_int, default=10_000, metavar="N", help="bootstrap resamples (default 10000)")
    c.add_argument("--seed", type=int, default=20261202, help="bootstrap seed (default: fixed, so reruns agree)")
    c.set_defaults(func=cmd_compare)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return asyncio.run(args.func(args))
    except CliError as exc:
        err.print(Text(f"error: {exc}", style="red"))
        return EXIT_ERROR
    except KeyboardInterrupt:
        err.print("interrupted")
        return EXIT_INTERRUPTED


if __name__ == "__main__":
    sys.exit(main())
