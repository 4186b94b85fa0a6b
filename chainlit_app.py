"""The Roundtable web UI: `chainlit run chainlit_app.py` (start it with `env -u CI`; see the Makefile).

Only Chainlit's hooks live here; the work is in `ui/`. Login with Hugging Face is switched on when the
Space's OAuth variables (OAUTH_CLIENT_ID, OAUTH_CLIENT_SECRET, OPENID_PROVIDER_URL) are set; without them
the app runs without login, or, when it stores conversations (a local run), with one local user.
"""

from __future__ import annotations

from typing import Any

import chainlit as cl

from config.log import setup_logging
from config.settings import get_settings
from sandbox.undumpable import make_undumpable
from ui import auth, chat, evaluation, files_dir, frontend, health, history

# Model-written code may run as this user (the subprocess fallback): keep our environment (keys) unreadable.
make_undumpable()
setup_logging(get_settings())
health.install()
frontend.install()  # the message-length guard, the socket limit, uploads of any type
files_dir.install()  # uploads of this instance only: another instance's shutdown must not delete them

if auth.install():
    cl.oauth_callback(auth.accept_login)
# After login: who is asking decides whether conversations are stored (ui/history.py); also sets up
# persistence of run dirs and history on a Space (ui/persistence.py). Registers on_chat_resume when storing.
history.install(get_settings())


@cl.on_chat_start
async def on_chat_start() -> None:
    await chat.start()


@cl.on_settings_update
async def on_settings_update(values: dict[str, Any]) -> None:
    await chat.settings_changed(values)


@cl.on_message
async def on_message(message: cl.Message) -> None:
    await chat.answer(message)


@cl.on_stop
async def on_stop() -> None:
    await chat.stop()


@cl.on_chat_end
async def on_chat_end() -> None:
    await chat.end()


@cl.action_callback(chat.EVALUATION_ACTION)
async def on_run_evaluation(action: cl.Action) -> None:
    await evaluation.start(action)


@cl.action_callback(evaluation.SUBMIT_ACTION)
async def on_submit(action: cl.Action) -> None:
    await evaluation.submit(action)
