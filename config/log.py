"""Loguru set-up: one INFO line per agent turn and tool call, payloads at DEBUG, secrets masked everywhere.

Masking happens in a patcher, so it covers every sink (stderr, JSON, files) and the std-logging records of
AutoGen, httpx and Chainlit that are routed here.
"""

from __future__ import annotations

import logging
import re
import sys
from collections.abc import Iterable

from loguru import logger

from config.settings import Settings

# Shapes of keys that may appear in errors even when we never saw the value (e.g. echoed by a provider).
_KEY_PATTERNS = re.compile(
    r"(sk-[A-Za-z0-9_\-]{8,}|sk-ant-[A-Za-z0-9_\-]{8,}|hf_[A-Za-z0-9]{8,}|(?<=Bearer )[A-Za-z0-9_\-\.=]{8,})"
)
MASK = "***"

_secrets: list[str] = []


def register_secrets(values: Iterable[str]) -> None:
    """Add raw secret values that must never be printed (longest first, so prefixes don't leak the rest)."""
    for v in values:
        if v and len(v) >= 6 and v not in _secrets:
            _secrets.append(v)
    _secrets.sort(key=len, reverse=True)


def mask(text: str) -> str:
    for secret in _secrets:
        if secret in text:
            text = text.replace(secret, MASK)
    return _KEY_PATTERNS.sub(MASK, text)


def _patch(record: dict) -> None:  # type: ignore[type-arg]
    record["message"] = mask(record["message"])
    if record["exception"] is not None:
        # Tracebacks render exception text separately; mask the value too.
        exc = record["exception"]
        if exc.value is not None and any(s in str(exc.value) for s in _secrets):
            record["message"] += " [exception text masked]"
            record["exception"] = None
    for key, value in list(record["extra"].items()):
        if isinstance(value, str):
            record["extra"][key] = mask(value)


class _InterceptHandler(logging.Handler):
    """Route std-logging records (AutoGen, httpx, chainlit) through loguru and its masking."""

    def emit(self, record: logging.LogRecord) -> None:
        try:
            level: str | int = logger.level(record.levelname).name
        except ValueError:
            level = record.levelno
        try:
            message = record.getMessage()
        except Exception:
            message = str(record.msg)
        logger.opt(depth=6, exception=record.exc_info).log(level, "{}: {}", record.name, message)


TEXT_FORMAT = (
    "<green>{time:HH:mm:ss.SSS}</green> <level>{level: <7}</level> "
    "<cyan>[{extra[run_id]} {extra[question_id]}]</cyan> {message}"
)


def setup_logging(settings: Settings, *, sink=sys.stderr) -> None:  # type: ignore[no-untyped-def]
    register_secrets(settings.secret_values())
    logger.remove()
    logger.configure(patcher=_patch, extra={"run_id": "-", "question_id": "-"})  # type: ignore[arg-type]
    level = settings.log_level.upper()
    if settings.log_format == "json":
        logger.add(sink, level=level, serialize=True, backtrace=False, diagnose=False)
    else:
        logger.add(sink, level=level, format=TEXT_FORMAT, backtrace=False, diagnose=False, colorize=None)
    logging.basicConfig(handlers=[_InterceptHandler()], level=logging.WARNING, force=True)
    # AutoGen logs every event at INFO on these; our own turn/tool lines replace them.
    for name in ("autogen_core", "autogen_core.events", "autogen_agentchat", "httpx", "openai", "anthropic"):
        logging.getLogger(name).setLevel(logging.WARNING)
