"""Conversation history: Chainlit's SQLAlchemy data layer on SQLite (default) or PostgreSQL (`DATABASE_URL`).

- **Whether to store** (`ROUNDTABLE_HISTORY`): "auto" stores on a local run and not on a Space (`SPACE_ID` set),
  as the public-Space PRD asks; "on"/"off" force it. History also needs to know who is asking: Chainlit lists
  threads per authenticated user. With Hugging Face login (ui/auth.py) each user sees their own threads. A local
  run without login gets one local user through Chainlit's header auth (every browser that reaches the app is
  that user: the local app is single-user). On a Space without login nothing is stored even when asked to:
  everyone would see everyone's conversations.
- **Where**: SQLite in `history.sqlite3` (in the cache dir, or the persistent dir of ui/persistence.py), through
  aiosqlite; or PostgreSQL through asyncpg when `DATABASE_URL` is set. Chainlit creates no tables: `ensure_schema`
  creates them (idempotent, both dialects) before the first query.
- **Files**: an element (an uploaded attachment, a chart) is kept by ui/file_store.py in `history-files/` beside
  `history.sqlite3`'s place (the persistent dir in disk mode, else the cache dir; so also with PostgreSQL) and
  served through signed, expiring URLs (not pushed in hub mode: see ui/persistence.py); Chainlit's
  `delete_thread` deletes a thread's files with it (one `delete_file` per stored element).
- **Resume**: Chainlit sends the stored steps to the browser itself; `resume` restores the session's choices from
  the thread's saved chat settings and sends the settings panel, so a new question in a resumed thread runs.

With history off the `cl.data_layer` hook returns None, which also keeps Chainlit from opening its own data layer
just because `DATABASE_URL` happens to be set.
"""

from __future__ import annotations

import asyncio
import os
import secrets
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, cast

from chainlit.data.sql_alchemy import SQLAlchemyDataLayer
from chainlit.data.storage_clients.base import BaseStorageClient
from chainlit.step import StepDict
from chainlit.user import User
from loguru import logger
from sqlalchemy import text
from sqlalchemy.engine import make_url

from config.settings import Settings
from ui import auth, file_store, persistence

LOCAL_USER = "local"
LOCAL_PROVIDER = "local"
AUTH_SECRET_FILENAME = "chainlit-auth-secret"
FILES_DIRNAME = "history-files"

STORED_NOTE = ("🗂️ **Conversations are stored** ({where}): reopen any of them from the list of past chats, "
               "also after a restart.")
NOT_STORED_NOTE = "🔒 **Conversations are not stored**: a reload or a restart loses this chat."


@dataclass(frozen=True)
class Decision:
    store: bool
    reason: str
    local_login: bool = False  # the single local user through header auth (no OAuth, not a Space)


def decide(settings: Settings, env: Mapping[str, str] | None = None) -> Decision:
    """Whether this app stores conversations, and how users are identified for it."""
    oauth = auth.oauth_configured(env)
    on_space = bool(settings.space_id)
    if settings.history == "off":
        return Decision(False, "ROUNDTABLE_HISTORY=off")
    if settings.history == "auto" and on_space:
        return Decision(False, "a public Space stores no conversations unless ROUNDTABLE_HISTORY=on")
    if oauth:
        return Decision(True, "users log in with Hugging Face")
    if on_space:
        return Decision(False, "ROUNDTABLE_HISTORY=on needs Hugging Face login on a Space (hf_oauth: true): "
                               "without it every visitor would see every conversation")
    return Decision(True, "a local run: one local user", local_login=True)


# --- the database -------------------------------------------------------------------------------------------
def database_url(settings: Settings, sqlite_file: Path) -> str:
    """The SQLAlchemy async URL: DATABASE_URL with the asyncpg/aiosqlite driver, else the SQLite file."""
    if settings.database_url is None:
        return f"sqlite+aiosqlite:///{sqlite_file}"
    raw = settings.database_url.get_secret_value()
    url = make_url(raw.replace("postgres://", "postgresql://", 1) if raw.startswith("postgres://") else raw)
    backend = url.get_backend_name()
    if backend == "postgresql":
        url = url.set(drivername="postgresql+asyncpg")
    elif backend == "sqlite":
        url = url.set(drivername="sqlite+aiosqlite")
    else:
        raise ValueError(f"DATABASE_URL must be a postgresql:// or sqlite:// URL, not {backend}://")
    return url.render_as_string(hide_password=False)


def describe_url(url: str) -> str:
    """Where the history is, for the UI and the log: never the password."""
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        return f"SQLite, {parsed.database}"
    return f"PostgreSQL, {parsed.host or 'localhost'}:{parsed.port or 5432}/{parsed.database}"


# Chainlit 2.12's columns (data/sql_alchemy.py writes every key of a step/element dict: the docs' schema lacks
# several, and an INSERT with an unknown column fails silently). JSON is JSONB on PostgreSQL, text on SQLite.
def schema(dialect: str) -> list[str]:
    pg = dialect == "postgresql"
    uuid = "UUID" if pg else "TEXT"
    json = "JSONB" if pg else "TEXT"
    tags = "TEXT[]" if pg else "TEXT"
    return [
        f'''CREATE TABLE IF NOT EXISTS users ("id" {uuid} PRIMARY KEY, "identifier" TEXT NOT NULL UNIQUE,
            "metadata" {json} NOT NULL, "createdAt" TEXT)''',
        f'''CREATE TABLE IF NOT EXISTS threads ("id" {uuid} PRIMARY KEY, "createdAt" TEXT, "name" TEXT,
            "userId" {uuid}, "userIdentifier" TEXT, "tags" {tags}, "metadata" {json},
            FOREIGN KEY ("userId") REFERENCES users("id") ON DELETE CASCADE)''',
        f'''CREATE TABLE IF NOT EXISTS steps ("id" {uuid} PRIMARY KEY, "name" TEXT NOT NULL, "type" TEXT NOT NULL,
            "threadId" {uuid} NOT NULL, "parentId" {uuid}, "streaming" BOOLEAN NOT NULL, "waitForAnswer" BOOLEAN,
            "isError" BOOLEAN, "metadata" {json}, "tags" {tags}, "input" TEXT, "output" TEXT, "createdAt" TEXT,
            "command" TEXT, "modes" {json}, "start" TEXT, "end" TEXT, "generation" {json}, "showInput" TEXT,
            "language" TEXT, "indent" INT, "defaultOpen" BOOLEAN, "autoCollapse" BOOLEAN,
            FOREIGN KEY ("threadId") REFERENCES threads("id") ON DELETE CASCADE)''',
        f'''CREATE TABLE IF NOT EXISTS elements ("id" {uuid} PRIMARY KEY, "threadId" {uuid}, "type" TEXT,
            "url" TEXT, "chainlitKey" TEXT, "name" TEXT NOT NULL, "display" TEXT, "objectKey" TEXT, "size" TEXT,
            "page" INT, "language" TEXT, "forId" {uuid}, "mime" TEXT, "props" {json}, "autoPlay" BOOLEAN,
            "playerConfig" {json}, FOREIGN KEY ("threadId") REFERENCES threads("id") ON DELETE CASCADE)''',
        f'''CREATE TABLE IF NOT EXISTS feedbacks ("id" {uuid} PRIMARY KEY, "forId" {uuid} NOT NULL,
            "threadId" {uuid} NOT NULL, "value" INT NOT NULL, "comment" TEXT,
            FOREIGN KEY ("threadId") REFERENCES threads("id") ON DELETE CASCADE)''',
        'CREATE INDEX IF NOT EXISTS steps_thread ON steps ("threadId")',
        'CREATE INDEX IF NOT EXISTS threads_user ON threads ("userId")',
    ]


class HistoryDataLayer(SQLAlchemyDataLayer):
    """Chainlit's SQLAlchemy data layer that creates its tables before its first query; with a storage
    provider it also keeps the threads' files."""

    def __init__(self, url: str, storage_provider: BaseStorageClient | None = None) -> None:
        dialect = make_url(url).get_backend_name()
        connect_args: dict[str, Any] = {"timeout": 30} if dialect == "sqlite" else {}
        if dialect == "sqlite":
            database = make_url(url).database
            if database and database != ":memory:":
                Path(database).parent.mkdir(parents=True, exist_ok=True)
        super().__init__(conninfo=url, connect_args=connect_args, storage_provider=storage_provider)
        self.dialect = dialect
        self._schema_ready = False
        self._schema_lock: asyncio.Lock | None = None
        self._write_lock: asyncio.Lock | None = None

    def _writes(self) -> asyncio.Lock:
        if self._write_lock is None:
            self._write_lock = asyncio.Lock()
        return self._write_lock

    async def ensure_schema(self) -> None:
        if self._schema_ready:
            return
        if self._schema_lock is None:
            self._schema_lock = asyncio.Lock()
        async with self._schema_lock:
            if self._schema_ready:
                return
            async with self.engine.begin() as conn:
                if self.dialect == "sqlite":
                    await conn.execute(text("PRAGMA journal_mode=WAL"))
                elif self.dialect == "postgresql":
                    # two app processes starting at once must not both create the tables
                    await conn.execute(text("SELECT pg_advisory_xact_lock(7305150)"))
                for statement in schema(self.dialect):
                    await conn.execute(text(statement))
            self._schema_ready = True

    async def execute_sql(self, query: str, parameters: dict[str, Any]) -> list[dict[str, Any]] | int | None:
        await self.ensure_schema()
        return await super().execute_sql(query, parameters)

    async def create_step(self, step_dict: StepDict) -> None:
        """One step write at a time, in the order Chainlit asked for them. Chainlit persists each send and
        update of a step in its own fire-and-forget task; run concurrently, an older write of a step (a turn
        before its verdict badge) could land after a newer one and the stored debate would lose the newer text.
        The lock is FIFO and each task takes it at its first await, so writes land in creation order."""
        async with self._writes():
            await super().create_step(step_dict)

    async def flush(self) -> None:
        """Wait for the step writes already queued."""
        await asyncio.sleep(0)  # let tasks created just now reach the lock
        async with self._writes():
            pass

    async def get_all_user_threads(self, user_id: str | None = None, thread_id: str | None = None) -> list[Any] | None:
        """Chainlit's read, plus the display columns it stores but does not read back (defaultOpen,
        autoCollapse, indent): without them a resumed debate would show its turns folded away; and
        showInput as the boolean it was."""
        threads = await super().get_all_user_threads(user_id=user_id, thread_id=thread_id)
        if not threads:
            return threads
        ids = [str(t["id"]) for t in threads]
        params = {f"t{i}": v for i, v in enumerate(ids)}
        placeholders = ", ".join(f":t{i}" for i in range(len(ids)))
        rows = await self.execute_sql(
            f'SELECT "id", "defaultOpen", "autoCollapse", "indent" FROM steps WHERE "threadId" IN ({placeholders})', params)
        extra = {str(r["id"]): r for r in rows} if isinstance(rows, list) else {}
        for thread in threads:
            for step in cast(list[dict[str, Any]], thread["steps"]):
                # Chainlit stores show_input=True as the text "true", which the page then shows as a language name
                if step.get("showInput") in ("true", "false"):
                    step["showInput"] = step["showInput"] == "true"
                row = extra.get(str(step["id"]))
                if row is None:
                    continue
                for key in ("defaultOpen", "autoCollapse", "indent"):
                    if row.get(key) is not None:
                        step[key] = bool(row[key]) if key != "indent" else row[key]
        return threads

    async def get_element(self, thread_id: str, element_id: str) -> Any:
        """Chainlit returns the URL stored at upload, long expired by the time an element's page is opened."""
        element = await super().get_element(thread_id, element_id)
        if element and self.storage_provider is not None and element.get("objectKey"):
            element["url"] = await self.storage_provider.get_read_url(str(element["objectKey"]))
        return element

    async def close(self) -> None:
        await self.flush()  # Chainlit closes the data layer at shutdown: the last writes first
        await self.engine.dispose()


# --- wiring into the app ------------------------------------------------------------------------------------
@dataclass
class History:
    decision: Decision
    url: str | None = None
    where: str = ""  # for the UI: the kind of database, never a path or a host
    files: BaseStorageClient | None = None  # where the threads' files are kept (ui/file_store.py)

    @property
    def stored(self) -> bool:
        return self.decision.store and self.url is not None

    def note(self) -> str:
        """The sentence the welcome message shows."""
        return STORED_NOTE.format(where=self.where) if self.stored else NOT_STORED_NOTE

    def data_layer(self) -> HistoryDataLayer | None:
        return HistoryDataLayer(self.url, storage_provider=self.files) if self.stored and self.url else None


_current: History | None = None


def current() -> History | None:
    return _current


def storage_note() -> str:
    """For the welcome message (ui/chat.py): whether this chat is stored."""
    return _current.note() if _current is not None else NOT_STORED_NOTE


def local_auth_secret(cache_dir: Path) -> str:
    """A local run's CHAINLIT_AUTH_SECRET, kept in the cache dir so the local login survives a restart."""
    path = cache_dir / AUTH_SECRET_FILENAME
    try:
        value = path.read_text(encoding="utf-8").strip()
        if len(value) >= 32:
            return value
    except OSError:
        pass
    value = secrets.token_urlsafe(48)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as f:
        f.write(value)
    return value


async def local_login(headers: Any) -> User | None:
    """Chainlit's header auth for a local run: everyone who reaches the app is the one local user."""
    return User(identifier=LOCAL_USER, display_name="you", metadata={"provider": LOCAL_PROVIDER})


def install(settings: Settings) -> History:
    """Decide, set persistence up, register the data layer and (locally) the login. Call once at app start."""
    import chainlit as cl

    global _current
    decision = decide(settings)
    persist = persistence.install(settings, store_history=decision.store)
    history = History(decision)
    if decision.store:
        history.url = database_url(settings, persist.history_db)
        history.where = "SQLite" if history.url.startswith("sqlite") else "PostgreSQL"
        if decision.local_login:
            if not os.environ.get("CHAINLIT_AUTH_SECRET"):
                os.environ["CHAINLIT_AUTH_SECRET"] = local_auth_secret(settings.cache_dir)
            cl.header_auth_callback(local_login)
        # beside the SQLite file's place (a persistent dir keeps both), whichever database holds the rows
        history.files = file_store.install(persist.history_db.parent / FILES_DIRNAME)
        cl.on_chat_resume(resume)
        logger.info("history: conversations are stored in {} ({})", describe_url(history.url), decision.reason)
    else:
        logger.info("history: conversations are not stored ({})", decision.reason)
    cl.data_layer(cast(Any, history.data_layer))  # None when off: Chainlit then opens no data layer of its own either
    _current = history
    return history


async def resume(thread: Any) -> None:
    """`@cl.on_chat_resume`: Chainlit shows the stored steps; restore the session so the next question runs."""
    import chainlit as cl

    from ui import chat, options  # here, not at the top: ui/chat.py imports this module

    settings = chat.base_settings()
    default = options.default_choices(settings)
    values = cl.user_session.get("chat_settings") or {}
    try:
        choices = options.parse(values, settings, default) if isinstance(values, dict) and values else default
    except options.ChoiceError:
        choices = default
    cl.user_session.set("choices", choices)
    await cl.ChatSettings(options.widgets(choices, settings)).send()
