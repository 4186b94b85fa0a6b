"""The adjudicator: one model call that sees each candidate answer with its evidence and picks one or rejects all.

What it sees per candidate: the attempts that gave it, how many of them their own reviewer approved, the
program's checks on it (teams/checks.py) and excerpts of the tool results and program outputs of those attempts
that contain it. Its reply is read like a critic's review (teams/termination.py): `APPROVED` with
`FINAL ANSWER: <candidate>` picks that candidate (matched by GAIA-scorer equivalence); a rejection rejects all.
A reply that names no candidate, or says neither, decides nothing (the caller falls back to the plurality).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

from autogen_core import CancellationToken
from autogen_core.models import ChatCompletionClient, SystemMessage, UserMessage

from agents.prompts import render_prompt
from common.text import one_line
from teams.answer import find_answers, visible_text
from teams.result import Attempt, VoteGroup
from teams.schema import TeamConfig
from teams.strategies.grouping import answer_key
from teams.termination import review_verdict

EXCERPT_CHARS = 160  # each side of a match
EXCERPTS_PER_CANDIDATE = 3


@dataclass(frozen=True)
class Ruling:
    verdict: Literal["approved", "rejected", "none"]
    group: VoteGroup | None  # the candidate picked (approved only)
    text: str  # what the adjudicator wrote
    reason: str  # in words, for the records


def excerpts(answer: str, texts: Sequence[str], limit: int = EXCERPTS_PER_CANDIDATE) -> list[str]:
    """Up to `limit` windows of `texts` around a mention of `answer` (or of its first list item)."""
    needle = answer.split(",")[0].strip() if "," in answer else answer.strip()
    if not needle:
        return []
    digits = needle.replace(",", "").replace("$", "").replace("%", "")
    if re.fullmatch(r"-?\d+(?:\.\d+)?", digits):
        # a number may be written with thousands separators in the source
        whole, _, frac = digits.lstrip("-").partition(".")
        grouped = r",?".join(whole) if len(whole) > 3 else re.escape(whole)
        pattern = re.compile(r"(?<![\d.])" + grouped + (r"\." + re.escape(frac) if frac else "") + r"(?![\d])")
    else:
        pattern = re.compile(re.escape(needle), re.IGNORECASE)
    found: list[str] = []
    for text in texts:
        for match in pattern.finditer(text):
            start, end = max(0, match.start() - EXCERPT_CHARS), min(len(text), match.end() + EXCERPT_CHARS)
            found.append(("…" if start else "") + " ".join(text[start:end].split()) + ("…" if end < len(text) else ""))
            if len(found) >= limit:
                return found
            break  # one excerpt per text: prefer several sources
    return found


def brief(question: str, groups: Sequence[VoteGroup], attempts: Sequence[Attempt],
          evidence: dict[int, list[str]]) -> str:
    """The adjudicator's task message."""
    by_number = {a.number: a for a in attempts}
    lines = [f"Question:\n{question}", "", f"{len(attempts)} attempts; {len(groups)} distinct answers:"]
    for i, group in enumerate(groups, 1):
        members = [by_number[n] for n in group.attempts]
        lines += ["", f"Candidate {i}: {group.answer}",
                  f"- given by attempt(s) {', '.join(str(n) for n in group.attempts)} "
                  f"({', '.join(one_line(m.label, 60) for m in members)}); approved in its own run by {group.approved}"]
        checks = list(dict.fromkeys(c for m in members for c in m.checks))
        if checks:
            lines.append("- checks: " + "; ".join(checks))
        found = excerpts(group.answer, [t for n in group.attempts for t in evidence.get(n, [])])
        lines += [f"- excerpt: {e}" for e in found] or ["- no tool result or program output of these attempts contains it"]
    failed = [a for a in attempts if not a.answer]
    if failed:
        lines += ["", "No answer from attempt(s) " + ", ".join(f"{a.number} ({a.stop_reason})" for a in failed) + "."]
    return "\n".join(lines)


async def adjudicate(
    cfg: TeamConfig,
    question: str,
    groups: Sequence[VoteGroup],
    attempts: Sequence[Attempt],
    evidence: dict[int, list[str]],
    client: ChatCompletionClient,
    abort: CancellationToken,
) -> Ruling:
    marker = cfg.answer.marker
    approval, rejection = cfg.termination.approval_marker or "APPROVED", cfg.termination.rejection_marker
    adj = cfg.strategy.adjudicator
    system = render_prompt(
        "adjudicator", name="adjudicator", team=cfg.name, roster="", tools=[], marker=marker, handoff="",
        approval=approval, rejection=rejection, instructions=adj.instructions if adj else None,
    )
    reply = await client.create(
        [SystemMessage(content=system), UserMessage(content=brief(question, groups, attempts, evidence), source="user")],
        cancellation_token=abort,
    )
    text = reply.content if isinstance(reply.content, str) else ""
    verdict = review_verdict(text, answer_marker=marker, approval_marker=approval, rejection_marker=rejection)
    if verdict == "rejected":
        return Ruling("rejected", None, text, "the adjudicator rejected every answer" + _why(text, marker, rejection))
    answers = find_answers(text, marker)
    if verdict == "approved" and answers:
        key = answer_key(answers[-1])
        picked = next((g for g in groups if answer_key(g.answer) == key), None)
        if picked is not None:
            return Ruling("approved", picked, text, f"the adjudicator picked {picked.answer!r}" + _why(text, marker, approval))
        return Ruling("none", None, text, f"the adjudicator named {answers[-1]!r}, which no attempt gave")
    return Ruling("none", None, text, "the adjudicator's reply neither picked a candidate nor rejected them all")


def _why(text: str, marker: str, verdict_marker: str) -> str:
    """The reply's reasoning in one line, without its verdict and final-answer lines (kept whole in the record)."""
    lines = [ln for ln in visible_text(text).splitlines()
             if ln.strip() and marker.lower() not in ln.lower() and ln.strip().strip("*_: ").lower() != verdict_marker.lower()]
    reason = one_line(" ".join(lines), 240)
    reason = re.sub(rf"^\W*{re.escape(verdict_marker)}\W*", "", reason, flags=re.IGNORECASE)
    return f": {reason}" if reason else ""
