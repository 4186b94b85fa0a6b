"""Pulling the final answer out of a message and normalising it conservatively for exact-match grading.

Normalising only removes wrapping that is never part of a GAIA answer (labels, quotes, markdown, a
trailing period, thousands separators in a lone number, uneven list spacing). It never re-cases, sorts,
rounds or rewrites words: a wrong answer must stay visibly wrong rather than be "fixed" by guesswork.

Commas. A number written with thousands separators (`1,234`, `1,000,000.5`: one to three digits, then
groups of exactly three) is one piece, never split as a list. Its separators are removed when it stands
alone, as the whole answer or as one item of a list, optionally signed, after a currency sign or before a
`%` (`$1,234` -> `$1234`, GAIA's scorer compares numbers without `$ % ,`). Inside words it is kept as
written (`1,234 coins`). Every other comma separates list items, respaced to `a, b` (`1,2,3` ->
`1, 2, 3`, `New York,NY` -> `New York, NY`); `12,34` is not a separated number, so it is a list.

Reasoning. What a model writes inside `<think>...</think>` or `<thinking>...</thinking>` is never read as an
answer (nor, in `teams/termination.py` and `teams/selection.py`, as a verdict or a handoff): `visible_text`
drops each such block, an opening tag never closed (the rest of the message is reasoning), and everything
before a closing tag with no opening one (templates that open the block in the prompt).
"""

from __future__ import annotations

import re

DEFAULT_MARKER = "FINAL ANSWER:"

_LABEL = re.compile(r"^\s*(?:\*\*|__)?\s*(?:final\s+answer|answer)\s*(?:\*\*|__)?\s*[:：\-–]\s*", re.IGNORECASE)
_FENCE = re.compile(r"^```[a-zA-Z0-9_-]*\s*\n?(.*?)\n?```$", re.DOTALL)
_BOXED = re.compile(r"^\\boxed\{(.*)\}$", re.DOTALL)
_SEPARATED_NUMBER = re.compile(r"(?<![\d.])\d{1,3}(?:,\d{3})+(?:\.\d+)?(?!\d)")
_LONE_NUMBER_WITH_SEPARATORS = re.compile(r"^[-+]?[$€£¥]?[-+]?\d{1,3}(?:,\d{3})+(?:\.\d+)?%?$")
_INITIALISM_END = re.compile(r"(?:\b[A-Za-z]\.){2,}$")
_THINK_BLOCK = re.compile(r"<(?:think|thinking)\b[^>]*>.*?(?:</(?:think|thinking)\s*>|\Z)", re.IGNORECASE | re.DOTALL)
_THINK_CLOSE = re.compile(r"</(?:think|thinking)\s*>", re.IGNORECASE)
_QUOTES = [('"', '"'), ("'", "'"), ("“", "”"), ("‘", "’"), ("«", "»"), ("`", "`")]


def visible_text(text: str) -> str:
    """`text` without the model's reasoning blocks (module docstring: which)."""
    text = _THINK_BLOCK.sub("", text)
    closes = list(_THINK_CLOSE.finditer(text))  # left after the blocks: closing tags without an opening one
    return text[closes[-1].end() :] if closes else text


def find_answers(text: str, marker: str = DEFAULT_MARKER) -> list[str]:
    """Every answer stated after `marker` in `text` (case-insensitive), in order; reasoning blocks are not read."""
    text = visible_text(text)
    found = []
    words = r"\s+".join(re.escape(w) for w in marker.rstrip(":").split())
    pattern = re.compile(r"(?:\*\*|__)?" + words + r"(?:\*\*|__)?\s*:?\s*(?:\*\*|__)?", re.IGNORECASE)
    for match in pattern.finditer(text):
        rest = text[match.end() :]
        lines = rest.split("\n")
        answer = lines[0].strip()
        if not answer:  # "FINAL ANSWER:\n42"
            answer = next((ln.strip() for ln in lines[1:] if ln.strip()), "")
        answer = re.sub(r"\s*(?:TERMINATE|APPROVED)\s*$", "", answer).strip()
        if answer:
            found.append(answer)
    return found


def extract_answer(text: str, marker: str = DEFAULT_MARKER) -> str | None:
    answers = find_answers(text, marker)
    return answers[-1] if answers else None


def _unwrap_once(s: str) -> str:
    s = s.strip()
    if m := _FENCE.match(s):
        return m.group(1).strip()
    if m := _BOXED.match(s):
        return m.group(1).strip()
    for wrapper in ("**", "__", "*", "_"):
        if len(s) > 2 * len(wrapper) and s.startswith(wrapper) and s.endswith(wrapper):
            return s[len(wrapper) : -len(wrapper)].strip()
    for left, right in _QUOTES:
        inner = s[len(left) : -len(right)]
        if len(s) >= 2 and s.startswith(left) and s.endswith(right) and left not in inner and right not in inner:
            return inner.strip()
    if m := _LABEL.match(s):
        return s[m.end() :].strip()
    return s


def normalise_answer(raw: str) -> str:
    s = " ".join(raw.split())  # one line, single spaces
    for _ in range(6):  # wrappers can nest: **"Paris"**.
        before = s
        s = _unwrap_once(s)
        if s.endswith(".") and not _INITIALISM_END.search(s):
            s = s[:-1].rstrip()
        if s == before:
            break
    if "," not in s:
        return s
    items = split_list(s)
    if len(items) > 1 and not all(items):
        return s  # an empty item (`a,,b`, `a,`): not a list we can respace safely
    return ", ".join(_lone_number(item) for item in items)


def split_list(s: str) -> list[str]:
    """`s` split at its list commas: a comma inside a thousands-separated number is not one."""
    protected = [(m.start(), m.end()) for m in _SEPARATED_NUMBER.finditer(s)]
    items, start = [], 0
    for i, char in enumerate(s):
        if char == "," and not any(a <= i < b for a, b in protected):
            items.append(s[start:i].strip())
            start = i + 1
    items.append(s[start:].strip())
    return items


def _lone_number(item: str) -> str:
    return item.replace(",", "") if _LONE_NUMBER_WITH_SEPARATORS.match(item) else item
