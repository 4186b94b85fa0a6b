"""Pulling the final answer out of a message and normalising it conservatively for exact-match grading.

Normalising only removes wrapping that is never part of a GAIA answer (labels, quotes, markdown, a
trailing period, thousands separators in a lone number, uneven list spacing). It never re-cases, sorts,
rounds or rewrites words: a wrong answer must stay visibly wrong rather than be "fixed" by guesswork.
"""

from __future__ import annotations

import re

DEFAULT_MARKER = "FINAL ANSWER:"

_LABEL = re.compile(r"^\s*(?:\*\*|__)?\s*(?:final\s+answer|answer)\s*(?:\*\*|__)?\s*[:：\-–]\s*", re.IGNORECASE)
_FENCE = re.compile(r"^```[a-zA-Z0-9_-]*\s*\n?(.*?)\n?```$", re.DOTALL)
_BOXED = re.compile(r"^\\boxed\{(.*)\}$", re.DOTALL)
_LONE_NUMBER_WITH_SEPARATORS = re.compile(r"^[-+]?\d{1,3}(?:,\d{3})+(?:\.\d+)?$")
_INITIALISM_END = re.compile(r"(?:\b[A-Za-z]\.){2,}$")
_QUOTES = [('"', '"'), ("'", "'"), ("“", "”"), ("‘", "’"), ("«", "»"), ("`", "`")]


def find_answers(text: str, marker: str = DEFAULT_MARKER) -> list[str]:
    """Every answer stated after `marker` in `text` (case-insensitive), in order."""
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
    if _LONE_NUMBER_WITH_SEPARATORS.match(s):
        return s.replace(",", "")
    if "," in s and all(part.strip() for part in s.split(",")):
        s = ", ".join(part.strip() for part in s.split(","))
    return s
