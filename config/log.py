"""Loguru set-up: one INFO line per agent turn and tool call, payloads at DEBUG, secrets masked everywhere.

Masking happens in a patcher, so it covers every sink (stderr, JSON, files) and the std-logging records of
AutoGen, httpx and Chainlit that are routed here. A logged exception is rendered and masked by the patcher too
(its traceback, the exceptions chained to it, its notes), since loguru would print those after masking.

Two kinds of masking: the exact values of the secrets this process knows (`register_secrets`; settings keys,
a cached Hugging Face token, `*_API_KEY`/`*_TOKEN`/`*_SECRET` variables), which catches a key of any shape,
and key shapes (`sk-...`, `hf_...`, `Bearer ...`) for keys we never saw. Values shorter than
`MIN_SECRET_CHARS` are not masked: no provider issues keys that short, and masking "abc" in every line would
garble the logs while pointing at the secret; `setup_logging` warns when one is configured.
"""

from __future__ import annotations

import dataclasses
import logging
import os
import re
import sys
import traceback
from collections.abc import Iterable
from typing import Any

from loguru import logger
from pydantic import SecretStr

from config.settings import Settings

# Shapes of keys that may appear in errors even when we never saw the value (e.g. echoed by a provider).
_KEY_PATTERNS = re.compile(
    r"(sk-[A-Za-z0-9_\-]{8,}|sk-ant-[A-Za-z0-9_\-]{8,}|hf_[A-Za-z0-9]{8,}|(?<=Bearer )[A-Za-z0-9_\-\.=]{8,})"
)
MASK = "***"
MIN_SECRET_CHARS = 6
# Environment variables whose values are secrets wherever they come from (Chainlit's and OAuth's included).
_SECRET_VARIABLE = re.compile(r"(_API_KEY|_TOKEN|_SECRET|_PASSWORD)$")

_secrets: list[str] = []


def register_secrets(values: Iterable[str]) -> None:
    """Add raw secret values that must never be printed (longest first, so prefixes don't leak the rest)."""
    for v in values:
        if v and len(v) >= MIN_SECRET_CHARS and v not in _secrets:
            _secrets.append(v)
    _secrets.sort(key=len, reverse=True)


def mask(text: str) -> str:
    for secret in _secrets:
        if secret in text:
            text = text.replace(secret, MASK)
    return _KEY_PATTERNS.sub(MASK, text)


def mask_data(value: Any) -> Any:
    """A copy of `value` with every string in it masked: str, list, tuple, dict and dataclass values."""
    if isinstance(value, str):
        return mask(value)
    if isinstance(value, (list, tuple)):
        return type(value)(mask_data(v) for v in value)
    if isinstance(value, dict):
        return {mask_data(k) if isinstance(k, str) else k: mask_data(v) for k, v in value.items()}
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        changes = {f.name: mask_data(getattr(value, f.name)) for f in dataclasses.fields(value) if f.init}
        return dataclasses.replace(value, **changes)
    return value


class StreamMasker:
    """Masks text that arrives in pieces (a model's streamed tokens): a key split over two pieces is masked
    too. Keys hold no whitespace, so each piece is let out up to its last whitespace (never between "Bearer"
    and its token) and the rest waits for the next piece or `flush()`."""

    HOLD_MAX = 4096  # a longer run without whitespace is let out but for its tail, never through a key
    TAIL = 512  # longer than any key

    def __init__(self) -> None:
        self._pending = ""

    def feed(self, piece: str) -> str:
        self._pending += piece
        cut = _safe_cut(self._pending)
        if cut == 0 and len(self._pending) > self.HOLD_MAX:
            cut = _cut_outside_keys(self._pending, len(self._pending) - self.TAIL)
            if cut == 0 and len(self._pending) > 16 * self.HOLD_MAX:
                cut = len(self._pending)  # one endless key-shaped run: masked whole
        out, self._pending = self._pending[:cut], self._pending[cut:]
        return mask(out)

    def flush(self) -> str:
        out, self._pending = self._pending, ""
        return mask(out)


_WHITESPACE = re.compile(r"\s+")


def _safe_cut(text: str) -> int:
    for m in reversed(list(_WHITESPACE.finditer(text))):
        if not text[: m.start()].endswith("Bearer"):  # the shape pattern needs "Bearer " and its token together
            return m.end()
    return 0


def _cut_outside_keys(text: str, cut: int) -> int:
    """`cut`, moved back to the start of a secret or key shape that would straddle it."""
    spans = [m.span() for m in _KEY_PATTERNS.finditer(text)]
    for secret in _secrets:
        start = text.find(secret)
        while start != -1:
            spans.append((start, start + len(secret)))
            start = text.find(secret, start + 1)
    for start, end in sorted(spans, reverse=True):
        if start < cut < end:
            cut = start
    return cut


def _exception_text(exc: Any) -> str:
    """The traceback loguru would print (with chained exceptions and notes), as text we can mask."""
    return "".join(traceback.format_exception(exc.type, exc.value, exc.traceback)).rstrip("\n")


def _patch(record: dict) -> None:
    record["message"] = mask(record["message"])
    if record["exception"] is not None:
        # Loguru renders the exception after the patcher, from the live object: render it here, masked, and
        # drop the object (a provider's error may quote the key in its text, its cause or its notes).
        record["message"] += "\n" + mask(_exception_text(record["exception"]))
        record["exception"] = None
    for key, value in list(record["extra"].items()):
        record["extra"][key] = mask_data(value)


def _register_settings_secrets(settings: Settings) -> None:
    register_secrets(settings.secret_values())
    register_secrets(v for name, v in os.environ.items() if _SECRET_VARIABLE.search(name))
    for name, field in type(settings).model_fields.items():
        value = getattr(settings, name, None)
        if isinstance(value, SecretStr) and 0 < len(value.get_secret_value()) < MIN_SECRET_CHARS:
            variable = getattr(field.validation_alias, "choices", [name.upper()])[0]
            logger.warning(
                "{} is shorter than {} characters, too short to be a real key and too short to mask: it may "
                "appear in logs", variable, MIN_SECRET_CHARS,
            )


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


def setup_logging(settings: Settings, *, sink: Any = sys.stderr) -> None:
    logger.remove()
    logger.configure(patcher=_patch, extra={"run_id": "-", "question_id": "-"})  # type: ignore[arg-type]
    level = settings.log_level.upper()
    if settings.log_format == "json":
        logger.add(sink, level=level, serialize=True, backtrace=False, diagnose=False)
    else:
        logger.add(sink, level=level, format=TEXT_FORMAT, backtrace=False, diagnose=False, colorize=None)
    _register_settings_secrets(settings)  # after the sink exists, so a too-short key's warning is seen
    logging.basicConfig(handlers=[_InterceptHandler()], level=logging.WARNING, force=True)
    # AutoGen logs every event at INFO on these; our own turn/tool lines replace them.
    for name in ("autogen_core", "autogen_core.events", "autogen_agentchat", "httpx", "openai", "anthropic"):
        logging.getLogger(name).setLevel(logging.WARNING)
