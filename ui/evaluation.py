"""The course evaluation from the UI: fetch the questions, run them with `evaluation.batch.BatchRun` under a
live task list, show the answers table, and submit under the verified Hugging Face identity.

Each team (and provider/model override) has one fixed run dir under `settings.cache_dir`, so a reload or
a second click resumes it: finished answers are read back, not recomputed. The action callback runs inside
Chainlit's HTTP request, so the evaluation itself runs in its own task (which inherits the session's
Chainlit context) and the request returns at once. It announces itself with task_start/task_end, so the
stop button shows and `on_stop` cancels the batch.

Whose name a submission uses: the Hugging Face login when the app has one (the identity Chainlit's JWT
carries, set from HF's userinfo), otherwise the owner of HF_TOKEN (or the cached `hf auth login`) as
`whoami` reports it — the same `evaluation.identity` code as `submit.py`. Never a name typed in the page.
"""

from __future__ import annotations

import asyncio
import hashlib
import re
import secrets
from dataclasses import dataclass
from pathlib import Path

import chainlit as cl
from chainlit.context import context
from loguru import logger

from config.log import mask
from config.settings import Settings
from evaluation.api import ScoringAPI, ScoringAPIError, TaskItem
from evaluation.batch import BatchError, BatchRun, QuestionStatus
from evaluation.identity import (
    AgentCodeError,
    Identity,
    IdentityError,
    agent_code_url,
    find_token,
    identity_from_token,
)
from evaluation.submission import submit_answers
from models.providers import ProviderNotConfigured
from models.usage import format_cost, total_cost
from teams import TeamConfigError
from teams.preflight import model_choices
from teams.schema import TeamConfig
from ui import auth, chat, options, replay
from ui import compare as compare_view  # also registers the compare view's action callbacks
from ui.limits import LimitReached, Ticket
from ui.render import format_duration, md_escape

SUBMIT_ACTION = "submit_answers"
CONFIRM_ACTION, CANCEL_ACTION = "submit_confirm", "submit_cancel"
NO_SPACE_ID = (
    "this app does not know which Space it is, so the submission would have no agent_code link to your code. "
    "On a Hugging Face Space, SPACE_ID is set by the Space itself; anywhere else, add the variable SPACE_ID with "
    "your public Space as <owner>/<name> (on a Space: Settings → Variables and secrets → New variable) and restart the app"
)
CONCURRENCY = 4
QUESTION_CHARS = 90
ANSWER_CHARS = 60

_STATUS = {
    "pending": cl.TaskStatus.READY,
    "running": cl.TaskStatus.RUNNING,
    "done": cl.TaskStatus.DONE,
    "failed": cl.TaskStatus.FAILED,
}


@dataclass
class Evaluation:
    """What the session remembers of its evaluation, for Submit."""

    team: Path
    run_dir: Path
    settings: Settings
    batch: BatchRun | None = None


def run_dir_for(settings: Settings, cfg: TeamConfig) -> Path:
    """One fixed dir per team and set of models: answers from other models are another evaluation, and
    a run dir resumed with other models would mix them."""
    try:
        models = sorted(f"{c.agent}={c.provider}/{c.model}" for c in model_choices(cfg, settings))
    except ProviderNotConfigured:
        models = []  # BatchRun refuses to start and says which variable to set
    digest = hashlib.sha256("\n".join(models).encode()).hexdigest()[:10]
    name = re.sub(r"[^\w.\-]+", "_", cfg.name)
    return settings.cache_dir / "ui-evaluation" / f"{name}-{digest}"


def _short(text: str, limit: int) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _cell(text: str, limit: int) -> str:
    return md_escape(_short(text, limit)) or " "


def id_width(task_ids: list[str], minimum: int = 8) -> int:
    """The shortest prefix length (at least `minimum`) that tells every task id apart. No longer used for the
    table or the task list (they show full ids: a prefix cannot be looked up); kept for callers."""
    width = minimum
    longest = max((len(t) for t in task_ids), default=minimum)
    while width < longest and len({t[:width] for t in task_ids}) < len(set(task_ids)):
        width += 1
    return width


def no_wrap(text: str) -> str:
    """A value that must stay on one line in a table cell ("29.7 s", not "29.7" over "s")."""
    return text.replace(" ", "\u00a0")


def task_title(status: QuestionStatus) -> str:
    """The task list's line: the full task id (a prefix cannot be looked up), the question, a failure's reason."""
    title = f"{status.task_id} · {_short(status.question, 60)}"
    if status.state == "failed" and status.error:
        title += f" — {_short(status.error, 60)}"
    return title


def answers_table(statuses: list[QuestionStatus]) -> str:
    strategy = any(s.attempt_answers for s in statuses)  # a vote or an escalation: its attempts side by side
    rows = ["| Task | Question | Answer | Time | Tokens |" + (" Attempts |" if strategy else ""),
            "|---|---|---|---|---|" + ("---|" if strategy else "")]
    for s in statuses:
        if s.state == "done":
            answer = _cell(s.answer or "", ANSWER_CHARS)
        elif s.state == "failed":
            answer = "⚠️ " + _cell(mask(s.error or "failed"), ANSWER_CHARS)
        else:
            answer = f"_{s.state}_"
        tokens = f"{s.prompt_tokens + s.completion_tokens:,}"
        rows.append(
            f"| `{s.task_id}` | {_cell(s.question, QUESTION_CHARS)} | {answer} | {no_wrap(format_duration(s.duration_s))} "
            f"| {no_wrap(tokens)} |"
            + (f" {_cell(' · '.join(a or '–' for a in s.attempt_answers), ANSWER_CHARS)} |" if strategy else "")
        )
    return "\n".join(rows)


def summary_line(statuses: list[QuestionStatus]) -> str:
    done = sum(s.state == "done" for s in statuses)
    failed = sum(s.state == "failed" for s in statuses)
    cached = sum(s.resumed for s in statuses)
    tokens = sum(s.prompt_tokens + s.completion_tokens for s in statuses)
    cost = format_cost(total_cost(statuses))
    parts = [f"{done}/{len(statuses)} answered", f"{failed} failed"]
    if cached:
        parts.append(f"{cached} from the cache")
    parts += [f"{tokens:,} tokens", cost]
    return " · ".join(parts)


def cannot_start_text(exc: BatchError) -> str:
    if "in use" in str(exc):  # the run dir's lock: another tab or user runs this team's evaluation now
        return ("⚠️ This team's evaluation is already running in another session; click again when it has "
                "finished to see its answers.")
    return f"⚠️ The evaluation cannot start: {mask(str(exc))}"


# --- identity ------------------------------------------------------------------------------------------
async def submit_identity(settings: Settings) -> Identity:
    """The name a submission from this session goes under. Raises IdentityError saying what to do."""
    user = cl.user_session.get("user")
    if username := auth.hf_username(user):
        return Identity(username=username, source="oauth")
    if auth.oauth_configured():
        raise IdentityError("log in with Hugging Face first (this app submits only under a Hugging Face login)")
    token = find_token(settings)
    if not token:
        raise IdentityError("Submit needs a Hugging Face identity: set HF_TOKEN for this app (or log in with `hf auth login`)")
    return await asyncio.to_thread(identity_from_token, token, endpoint=settings.hf_endpoint)


def _identity_source(identity: Identity) -> str:
    return "Hugging Face login" if identity.source == "oauth" else "the owner of HF_TOKEN"


# --- running ---------------------------------------------------------------------------------------------
async def start(action: cl.Action) -> None:
    """The action callback: start the evaluation in its own task and return. It needs the login (when the
    app has one) and counts as one run against the user's limits; its cost counts as it accrues."""
    if refusal := chat.login_refusal("run the evaluation"):
        await cl.Message(content=refusal).send()
        return
    if _running():
        await cl.Message(content="The evaluation is already running; its task list shows the progress.").send()
        return
    try:
        ticket = chat.admit()
    except LimitReached as exc:
        await cl.Message(content=chat.limit_text(exc)).send()
        return
    task = asyncio.create_task(_run_guarded(ticket))
    cl.user_session.set("evaluation_task", task)


def _running() -> bool:
    task = cl.user_session.get("evaluation_task")
    return isinstance(task, asyncio.Task) and not task.done()


async def _run_guarded(ticket: Ticket) -> None:
    await context.emitter.task_start()
    try:
        await run_evaluation(ticket)
    except Exception as exc:  # whatever happens, the chat must stay usable and say what went wrong
        logger.exception("the evaluation failed")
        await cl.ErrorMessage(content=mask(f"The evaluation stopped: {type(exc).__name__}: {exc}")).send()
    finally:
        ticket.release()
        cl.user_session.set("batch", None)
        await context.emitter.task_end()


class _Spend:
    """The batch's cost as it accrues (answers read back from the run dir cost nothing now). When a cost cap
    is reached the batch is cancelled: a batch could otherwise spend many runs' worth past the cap."""

    def __init__(self, ticket: Ticket, batch: BatchRun) -> None:
        self.ticket, self.batch = ticket, batch
        self.costs: dict[str, float] = {}
        self.stopped_by: LimitReached | None = None

    def update(self, status: QuestionStatus) -> None:
        if status.resumed or not status.cost_usd:
            return
        self.costs[status.task_id] = max(self.costs.get(status.task_id, 0.0), status.cost_usd)
        self.ticket.charge(sum(self.costs.values()))
        if self.stopped_by is None and (reached := self.ticket.over_budget()) is not None:
            self.stopped_by = reached
            logger.info("UI evaluation stopped by a cost cap: {}", reached.kind)
            self.batch.cancel()


async def run_evaluation(ticket: Ticket) -> None:
    choices = chat.current_choices()
    settings = chat.session_settings()
    try:
        cfg = chat.load_chosen_team(choices)
    except TeamConfigError as exc:
        await cl.Message(content=chat.team_error_text(exc)).send()
        return
    team = options.team_path(choices, chat.base_settings())
    run_dir = run_dir_for(settings, cfg)
    logger.info("UI evaluation: team {} in run dir {}", cfg.name, run_dir)
    api = ScoringAPI(settings.scoring_api_url)
    status_msg = cl.Message(content=f"Fetching the questions from {settings.scoring_api_url} …")
    await status_msg.send()
    try:
        tasks: list[TaskItem] = await api.questions()
    except ScoringAPIError as exc:
        status_msg.content = f"⚠️ Cannot fetch the questions: {exc}"
        await status_msg.update()
        return
    try:
        batch = BatchRun(team, run_dir, settings=settings, concurrency=CONCURRENCY)
        batch.prepare(tasks)  # creates the run dir and tries its lock: say now if it cannot run
    except BatchError as exc:
        status_msg.content = cannot_start_text(exc)
        await status_msg.update()
        return
    evaluation = Evaluation(team=team, run_dir=run_dir, settings=settings, batch=batch)
    cl.user_session.set("evaluation", evaluation)
    cl.user_session.set("batch", batch)
    status_msg.content = (
        f"Running the course evaluation: **{len(tasks)} questions**, team **{cfg.name}**, {CONCURRENCY} at a time. "
        "Finished answers are kept, so a reload or a second click does not recompute them; Stop cancels the rest."
    )
    await status_msg.update()
    for note in batch.notes:
        await cl.Message(content=f"ℹ️ {note}").send()

    task_list = cl.TaskList(status=f"Evaluation: 0/{len(tasks)} done")
    rows: dict[str, cl.Task] = {}
    for t in tasks:
        rows[t.task_id] = cl.Task(title=f"{t.task_id} · {_short(t.question, 60)}", status=cl.TaskStatus.READY)
        await task_list.add_task(rows[t.task_id])
    await task_list.send()
    lock = asyncio.Lock()

    spend = _Spend(ticket, batch)

    async def on_update(status: QuestionStatus) -> None:
        spend.update(status)
        row = rows.get(status.task_id)
        if row is None:
            return
        shown = (row.status, row.title)
        row.status = _STATUS[status.state]
        row.title = task_title(status)
        if (row.status, row.title) == shown:
            return  # a token count moved; every send stores a copy of the list, so only send changes
        finished = sum(r.status in (cl.TaskStatus.DONE, cl.TaskStatus.FAILED) for r in rows.values())
        task_list.status = f"Evaluation: {finished}/{len(rows)} done"
        async with lock:  # one send at a time, so the last state sent is the newest
            await task_list.send()

    try:
        statuses = await batch.run(tasks, on_update=on_update)
    except BatchError as exc:  # the lock taken by another session in the meantime
        await cl.Message(content=cannot_start_text(exc)).send()
        return
    for s in statuses:
        rows[s.task_id].status = _STATUS[s.state]
        rows[s.task_id].title = task_title(s)
    ended = "cancelled" if batch.cancelled else "finished"
    task_list.status = f"Evaluation {ended}: {summary_line(statuses)}"
    await task_list.send()
    if spend.stopped_by is not None:
        await cl.Message(content=f"{chat.limit_text(spend.stopped_by)} The evaluation was stopped there; its "
                                 "finished answers are kept and the next click runs the rest.").send()
    await _send_table(evaluation, statuses, ended)


async def _send_table(evaluation: Evaluation, statuses: list[QuestionStatus], ended: str) -> None:
    lines = [f"### Evaluation {ended}", summary_line(statuses), answers_table(statuses)]
    actions: list[cl.Action] = []
    try:
        identity = await submit_identity(evaluation.settings)
        agent_code_url(evaluation.settings.space_id)
    except IdentityError as exc:
        lines.append(f"⚠️ **Submit is not available:** {exc}")
    except AgentCodeError:
        lines.append(f"⚠️ **Submit is not available:** {NO_SPACE_ID}.")
    else:
        lines.append(f"**Submit** sends every answer (\"\" for the unanswered) as **{identity.username}** "
                     f"({_identity_source(identity)}), after you confirm.")
        actions.append(cl.Action(name=SUBMIT_ACTION, payload={}, label=f"Submit as {identity.username}"))
    lines.append("**Open debate** replays a question's debate as it ran; **Compare run dirs** sets this evaluation "
                 "beside others.")
    answered = [s for s in statuses if s.state in ("done", "failed")]
    actions += [replay.question_action(evaluation.run_dir, s.task_id) for s in answered]
    actions += [compare_view.compare_action(), replay.runs_action()]
    await cl.Message(content="\n\n".join(lines), actions=actions, metadata={"evaluation_table": True}).send()


# --- submitting -------------------------------------------------------------------------------------------
async def submit(action: cl.Action) -> None:
    """The Submit button: say what would be sent and as whom, and ask for confirmation. Nothing is sent here."""
    checked = await _submission_ready()
    if checked is None:
        return
    evaluation, identity, agent_code, answers = checked
    answered = sum(1 for a in answers if a["submitted_answer"])
    token = secrets.token_urlsafe(12)  # one confirmation per Submit click: an old or forged Confirm does nothing
    cl.user_session.set("submit_confirmation", token)
    await _withdraw_confirmation()
    actions = [cl.Action(name=CONFIRM_ACTION, payload={"token": token}, label=f"Confirm: send as {identity.username}"),
               cl.Action(name=CANCEL_ACTION, payload={}, label="Cancel")]
    cl.user_session.set("submit_confirmation_actions", actions)
    await cl.Message(
        content=f"**Send {len(answers)} answers ({answered} non-empty) as {md_escape(identity.username)}** to "
                f"{md_escape(evaluation.settings.scoring_api_url)}?\n\nagent_code: {agent_code}\n\n"
                "The scoring server keeps the last submission per user. Nothing is sent until you confirm.",
        actions=actions,
        metadata={"submit_confirmation": True},
    ).send()


async def _withdraw_confirmation() -> None:
    """Take the buttons of the last confirmation off the page: the page matches a click to the first action of
    that name, so an older Confirm left in place would answer for a newer one; and an answered one is done."""
    for old in cl.user_session.get("submit_confirmation_actions") or []:
        try:
            await old.remove()
        except Exception as exc:  # the page may be gone; nothing to withdraw then
            logger.debug("could not remove a confirmation button: {}", exc)
    cl.user_session.set("submit_confirmation_actions", [])


@cl.action_callback(CANCEL_ACTION)
async def cancel_submit(action: cl.Action) -> None:
    cl.user_session.set("submit_confirmation", None)
    await _withdraw_confirmation()
    await cl.Message(content="Not submitted: cancelled.").send()


@cl.action_callback(CONFIRM_ACTION)
async def confirm_submit(action: cl.Action) -> None:
    expected = cl.user_session.get("submit_confirmation")
    if not expected or not secrets.compare_digest(str(action.payload.get("token") or ""), str(expected)):
        await cl.Message(content="This confirmation is no longer valid; click Submit again.").send()
        return
    cl.user_session.set("submit_confirmation", None)
    await _withdraw_confirmation()
    await send_submission()


async def _submission_ready() -> tuple[Evaluation, Identity, str, list[dict[str, str]]] | None:
    """What Submit would send, or None after saying why it cannot."""
    evaluation = cl.user_session.get("evaluation")
    if not isinstance(evaluation, Evaluation):
        await cl.Message(content="Run the course evaluation first; Submit sends its answers.").send()
        return None
    if _running():
        await cl.Message(content="The evaluation is still running; submit when its table appears.").send()
        return None
    settings = evaluation.settings
    try:
        identity = await submit_identity(settings)
        agent_code = agent_code_url(settings.space_id)
    except IdentityError as exc:
        await cl.Message(content=f"⚠️ Not submitted: {exc}").send()
        return None
    except AgentCodeError:
        await cl.Message(content=f"⚠️ Not submitted: {NO_SPACE_ID}.").send()
        return None
    if evaluation.batch is None:
        await cl.Message(content="Run the course evaluation first; Submit sends its answers.").send()
        return None
    return evaluation, identity, agent_code, evaluation.batch.answers_payload()


async def send_submission() -> None:
    checked = await _submission_ready()
    if checked is None:
        return
    evaluation, identity, agent_code, answers = checked
    settings = evaluation.settings
    answered = sum(1 for a in answers if a["submitted_answer"])
    note = cl.Message(content=f"Submitting {len(answers)} answers ({answered} non-empty) as **{identity.username}** …")
    await note.send()
    try:
        result = await submit_answers(ScoringAPI(settings.scoring_api_url), identity, agent_code, answers)
    except ScoringAPIError as exc:
        note.content = f"⚠️ The submission failed: {exc}"
        await note.update()
        return
    note.content = (
        f"### Submitted as {md_escape(result.username)}\n\n"
        f"**Score: {result.score:g}%** ({result.correct_count}/{result.total_attempted} correct)\n\n"
        f"Server: {md_escape(result.message or '(no message)')}\n\nagent_code: {agent_code}"
    )
    await note.update()
