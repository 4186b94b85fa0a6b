"""The chat: the welcome message, the settings panel, one question -> one team run, and the stop button.

The run's events are rendered by a separate task that `on_message` awaits through `asyncio.shield`.
Chainlit's stop button cancels the `on_message` task; shielding keeps the renderer alive so the run,
told to stop with `Run.cancel()` (its own abort token: model calls, tools and the sandbox stop at once),
still ends with its final message, the best answer so far and the stop reason. Only then does
`on_message` return, so Chainlit's stop button disappears when the run has really ended.
"""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any

import chainlit as cl
from loguru import logger

from config.log import mask
from config.settings import Settings, get_settings
from models.usage import format_cost, total_cost
from observability import metrics
from teams import AnyRun, Question, Run, StrategyRun, TeamConfigError, load_team, start_run
from teams import events as ev
from teams.schema import TeamConfig
from ui import auth, compare, frontend, history, options, preflight, replay
from ui.limits import LimitReached, Limits, Ticket, hf_user_key, limiter
from ui.limits import describe as describe_limits
from ui.render import RunView, md_escape
from ui.uploads import Staged, discard, stage_uploads

EVALUATION_ACTION = "run_evaluation"
EVALUATION_LABEL = "Run the course evaluation"
STOP_WAIT_S = 30.0  # a stopped run unwinds in a few seconds; never hang the chat on one that does not
PENDING_FILES = "pending_files"  # files sent without a question: they go with the next one


def base_settings() -> Settings:
    return get_settings()


def current_choices() -> options.Choices:
    choices = cl.user_session.get("choices")
    if isinstance(choices, options.Choices):
        return choices
    choices = options.default_choices(base_settings())
    cl.user_session.set("choices", choices)
    return choices


def session_settings() -> Settings:
    return options.run_settings(base_settings(), current_choices())


def evaluation_action() -> cl.Action:
    return cl.Action(name=EVALUATION_ACTION, payload={}, label=EVALUATION_LABEL, tooltip="Answer the Agents Course questions")


def load_chosen_team(choices: options.Choices) -> TeamConfig:
    return load_team(options.team_path(choices, base_settings()))


def team_error_text(exc: TeamConfigError) -> str:
    return f"⚠️ **The team config is broken**, so it cannot run:\n\n```text\n{exc}\n```\n\nPick another team in the settings or fix the file."


def describe_team(cfg: TeamConfig, settings: Settings) -> str:
    plan = preflight.plan_models(cfg, settings)
    if cfg.strategy.kind == "single":
        members = ", ".join(cfg.agent_names)
    else:  # a vote or an escalation: its attempts, as the run will name them
        from teams.strategies.attempts import plan_attempts

        members = f"{cfg.strategy.kind}: " + "; ".join(
            f"{p.number}. {p.label}" + (" (if needed)" if p.stage == "escalated" else "") for p in plan_attempts(cfg, settings))
    lines = [f"**Team:** {cfg.name} ({members})" + (f" — {cfg.description}" if cfg.description else "")]
    if plan.models:
        lines.append(f"**Models:** {plan.summary()}")
    for problem in plan.problems:
        lines.append(f"⚠️ **No model configured:** {problem}")
    lines += [f"ℹ️ {hint}" for hint in plan.hints]
    return "\n\n".join(lines)


def login_text() -> str:
    user = cl.user_session.get("user")
    if username := auth.hf_username(user):
        return f"Logged in with Hugging Face as **{username}**."
    return ""


async def start() -> None:
    metrics.session_opened(cl.user_session.get("id"))
    settings = base_settings()
    choices = current_choices()
    await cl.ChatSettings(options.widgets(choices, settings)).send()
    parts = ["# Roundtable", "A planner, a researcher, a coder and a critic debate your question until one answer stands. "
             "Ask anything (attach files with the paperclip); each agent's turn, tool call and code run appears as it happens."]
    if who := login_text():
        parts.append(who)
    parts.append(history.storage_note())
    try:
        cfg = load_chosen_team(choices)
        parts.append(describe_team(cfg, options.run_settings(settings, choices)))
    except TeamConfigError as exc:
        parts.append(team_error_text(exc))
    if limits_line := describe_limits(Limits.from_settings(settings)):
        parts.append(limits_line)
    await cl.Message(content="\n\n".join(parts), actions=[evaluation_action(), replay.runs_action(), compare.compare_action()],
                     metadata={"welcome": True}).send()


async def settings_changed(values: dict[str, Any]) -> None:
    settings = base_settings()
    old = current_choices()
    try:
        choices = options.parse(values, settings, old)
    except options.ChoiceError as exc:
        await cl.Message(content=f"⚠️ Settings not applied: {exc}").send()
        return
    cl.user_session.set("choices", choices)
    changes = []
    if choices.team != old.team:
        changes.append(f"team **{choices.team}**")
    if (choices.provider, choices.model) != (old.provider, old.model):
        changes.append(f"provider **{choices.provider}**" + (f", model **{choices.model}**" if choices.model else ""))
    if choices.show_code != old.show_code:
        changes.append("code runs " + ("shown" if choices.show_code else "hidden"))
    try:
        cfg = load_chosen_team(choices)
        detail = describe_team(cfg, options.run_settings(settings, choices))
    except TeamConfigError as exc:
        detail = team_error_text(exc)
    head = f"Settings updated: {', '.join(changes)}." if changes else "Settings unchanged."
    await cl.Message(content=f"{head}\n\n{detail}").send()


# --- who may run what ---------------------------------------------------------------------------------------
def user_key() -> str:
    """Whom the limits count against: the Hugging Face login, else this Chainlit session (no login here)."""
    user = cl.user_session.get("user")
    if username := auth.hf_username(user):
        return hf_user_key(username)
    if user is not None and getattr(user, "identifier", None):
        return f"user:{user.identifier}"
    return f"session:{cl.user_session.get('id')}"


def login_refusal(what: str) -> str | None:
    """With the Hugging Face login on, nothing that spends the app's keys runs for a session without it."""
    if auth.oauth_configured() and not auth.hf_username(cl.user_session.get("user")):
        return f"🔒 **Log in with Hugging Face** to {what}: this app runs questions for logged-in users only."
    return None


def limit_text(exc: LimitReached) -> str:
    return f"⏳ **Limit reached:** {exc}"


def admit() -> Ticket:
    """Count a run against this user's limits; raises LimitReached (its text says which and when it resets)."""
    return limiter().admit(user_key(), Limits.from_settings(base_settings()))


def known_cost(run: AnyRun) -> float:
    """What the run has cost so far; calls to a model without a known price count $0."""
    return total_cost(run.ledger.records, unknown_as_zero=True)


def budget_note(ticket: Ticket) -> str | None:
    if (reached := ticket.over_budget()) is None:
        return None
    return (f"ℹ️ **The budget is used up** (this run: {format_cost(ticket.charged)}). {reached} "
            "A run going when the budget runs out is finished; the next one is refused until the reset.")


async def _render(run: AnyRun, view: RunView, ticket: Ticket) -> None:
    try:
        async for event in run.events():
            await view.handle(event)
            if isinstance(event, ev.TurnEnded | ev.RunFinished):
                ticket.charge(known_cost(run))  # as it accrues: the user's other runs see it at once
    except Exception as exc:  # a rendering bug must not kill the run silently; say what happened
        logger.exception("rendering the run failed")
        run.cancel("the UI failed")
        await cl.ErrorMessage(content=mask(f"The run could not be shown: {exc}")).send()
    finally:
        ticket.charge(known_cost(run))
        ticket.release()


def _question_text(message: cl.Message, staged: Staged) -> str:
    text = (message.content or "").strip()
    if not text and staged.paths:
        text = "Describe the attached file." if len(staged.paths) == 1 else "Describe the attached files."
    if text and (renamed := staged.renamed()):
        # The user's question may name a file by the name they gave it; the folder has the safe name.
        pairs = "; ".join(f"{given!r} is {name!r}" for given, name in renamed.items())
        text += f"\n\n(Uploaded files renamed in the question's folder: {pairs}.)"
    return text


def _names(elements: list[Any]) -> str:
    return ", ".join(md_escape(str(getattr(e, "name", "") or "a file")) for e in elements)


async def _hold_files(message: cl.Message) -> None:
    """Files sent without a question: nothing runs (what would the team be asked?). The files are kept for
    the next question, and the reply says so; the user's bubble shows the file names instead of nothing."""
    held = list(cl.user_session.get(PENDING_FILES) or []) + list(message.elements or [])
    cl.user_session.set(PENDING_FILES, held)
    message.content = "📎 " + _names(list(message.elements or []))  # as given, never markup
    with contextlib.suppress(Exception):
        await message.update()
    await cl.Message(
        content=f"📎 **Got {_names(held)}.** What should the team do with {'it' if len(held) == 1 else 'them'}? "
        "Type your question: it is asked with " + ("this file" if len(held) == 1 else "these files") + " attached.",
        metadata={"files_held": len(held)},
    ).send()


async def answer(message: cl.Message) -> None:
    await _wait_previous_run()
    if refusal := login_refusal("ask a question"):
        await cl.Message(content=refusal).send()
        return
    limit = base_settings().max_question_chars
    if (length := len(message.content or "")) > limit:
        await cl.Message(content=f"⚠️ **Not run.** {frontend.too_long_text(length, limit)}").send()
        return
    choices = current_choices()
    try:
        cfg = load_chosen_team(choices)
    except TeamConfigError as exc:
        await cl.Message(content=team_error_text(exc)).send()
        return
    if not (message.content or "").strip() and message.elements:
        await _hold_files(message)
        return
    held = list(cl.user_session.get(PENDING_FILES) or [])
    cl.user_session.set(PENDING_FILES, [])
    elements = held + list(message.elements or [])
    staged = await asyncio.to_thread(stage_uploads, elements)  # uploads may be large
    if staged.unreadable:
        discard(staged.folder)
        names = ", ".join(md_escape(n) for n in staged.unreadable)
        await cl.Message(
            content=f"⚠️ **Not run:** the attached file(s) {names} could not be read on the server (the upload may "
            "have expired). Attach them again and send the question again."
        ).send()
        return
    text = _question_text(message, staged)
    if not text:
        discard(staged.folder)
        await cl.Message(content="Type a question first.").send()
        return
    if not (message.content or "").strip() and isinstance(message, cl.Message):
        # Files without text: the user's bubble shows the question that is run, not an empty box.
        message.content = text.split("\n\n")[0]
        await message.update()
    run = start_run(Question(text, attachments=staged.paths), cfg, settings=options.run_settings(base_settings(), choices))
    view = RunView(cfg.name, show_code=choices.show_code, file_names=staged.given,
                   roles={a.name: a.role for a in cfg.agents})
    try:
        ticket = admit()  # last, so nothing between it and the task that releases it can fail
    except LimitReached as exc:
        discard(staged.folder)
        await cl.Message(content=limit_text(exc)).send()
        return
    task = asyncio.create_task(_render(run, view, ticket))
    cl.user_session.set("run", run)
    cl.user_session.set("run_task", task)
    try:
        await asyncio.shield(task)
    except asyncio.CancelledError:
        # The stop button: on_stop has cancelled the run (or will in a moment); let it finish rendering.
        run.cancel()
        await asyncio.wait({task}, timeout=STOP_WAIT_S)
    finally:
        discard(staged.folder)
        if cl.user_session.get("run") is run:
            cl.user_session.set("run", None)
    if task.done() and (note := budget_note(ticket)):
        await cl.Message(content=note).send()


async def _wait_previous_run() -> None:
    task = cl.user_session.get("run_task")
    if isinstance(task, asyncio.Task) and not task.done():
        run = cl.user_session.get("run")
        if isinstance(run, Run | StrategyRun):
            run.cancel("a new question was asked")
        with contextlib.suppress(Exception):
            await asyncio.wait({task}, timeout=STOP_WAIT_S)


async def end() -> None:
    """The tab closed or a new chat began: nobody watches this run any more, so stop paying for it. An
    evaluation keeps going (its answers land in the run dir; a later click shows them)."""
    metrics.session_closed(cl.user_session.get("id"))
    run = cl.user_session.get("run")
    if isinstance(run, Run | StrategyRun):
        run.cancel("the chat was closed")


async def stop() -> None:
    run = cl.user_session.get("run")
    if isinstance(run, Run | StrategyRun):
        run.cancel()
    batch = cl.user_session.get("batch")
    if batch is not None:
        batch.cancel()

