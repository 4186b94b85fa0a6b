"""Grouping the attempts' answers the way GAIA's scorer compares them, and finding a majority.

Two answers are the same vote when GAIA's scorer would count one correct against the other as the truth
(evaluation/scoring.py): numbers compared as numbers once `$ % ,` are dropped (`4,600`, `4600` and `$4600`),
lists element by element in order, other text without spaces, case and punctuation. Each answer gets one key
for that, so grouping is an equivalence (the scorer itself is not symmetric for mixed types).
"""

from __future__ import annotations

import re
import string
from collections import Counter

from evaluation.scoring import is_float
from teams.answer import normalise_answer
from teams.result import Attempt, VoteGroup

Key = tuple[object, ...]


def _number(text: str) -> float | None:
    bare = text.strip().replace("$", "").replace("%", "").replace(",", "")
    return float(bare) if is_float(bare) else None


def _element_key(text: str) -> object:
    number = _number(text)
    return number if number is not None else re.sub(r"\s", "", text).lower()


def answer_key(answer: str) -> Key:
    """Equal for two answers GAIA's scorer treats as the same answer."""
    text = normalise_answer(answer)
    if (number := _number(text)) is not None:
        return ("number", number)
    if "," in text or ";" in text:
        return ("list", *(_element_key(part) for part in re.split(r"[,;]", text)))
    return ("text", re.sub(r"\s", "", text).lower().translate(str.maketrans("", "", string.punctuation)))


def group_answers(attempts: list[Attempt]) -> list[VoteGroup]:
    """The answered attempts grouped by `answer_key`: largest group first, then the most approved, then the
    group of the earliest attempt."""
    keyed: dict[Key, list[Attempt]] = {}
    for attempt in attempts:
        if attempt.answer:
            keyed.setdefault(answer_key(attempt.answer), []).append(attempt)
    groups = []
    for members in keyed.values():
        forms = Counter(a.answer for a in members)
        approved_forms = [a.answer for a in members if a.approved]
        # the approved spelling first (a reviewer checked its form), else the most written one
        shown = approved_forms[0] if approved_forms else forms.most_common(1)[0][0]
        groups.append(VoteGroup(shown, [a.number for a in members], sum(a.approved for a in members)))
    groups.sort(key=lambda g: (-len(g.attempts), -g.approved, min(g.attempts)))
    return groups


def majority(groups: list[VoteGroup], attempts: int, min_agreement: float) -> VoteGroup | None:
    """The largest group if it is alone at the top and holds more than `min_agreement` of all `attempts`
    (those that failed to answer count: they are votes nobody won)."""
    if not groups or attempts <= 0:
        return None
    top = groups[0]
    if len(groups) > 1 and len(groups[1].attempts) == len(top.attempts):
        return None
    return top if len(top.attempts) / attempts > min_agreement else None
