"""Keeping tool outputs bounded and errors on one line."""

from __future__ import annotations

DEFAULT_MAX_CHARS = 12_000


def bound(text: str, limit: int = DEFAULT_MAX_CHARS) -> str:
    """Cut `text` to about `limit` characters, saying how much was cut so the agent can ask for less."""
    if len(text) <= limit:
        return text
    cut = len(text) - limit
    return text[:limit] + f"\n[... truncated: {cut} more characters not shown; ask for a narrower query or section ...]"


def one_line(text: str, limit: int = 300) -> str:
    flat = " ".join(str(text).split())
    return flat if len(flat) <= limit else flat[: limit - 1] + "…"
