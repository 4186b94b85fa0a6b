"""Two scorers side by side: the course's strict exact match, and GAIA's official `question_scorer`.

An answer that passes GAIA's scorer but fails the strict one is a formatting bug worth fixing before
submitting. The GAIA logic follows the leaderboard scorer: numbers compared after dropping `$ % ,`; lists
split on `,`/`;` compared in order and length; strings compared without whitespace, case and punctuation.
"""

from __future__ import annotations

import re
import string


def exact_match(submitted: str, truth: str) -> bool:
    return submitted.strip() == truth.strip()


def _normalize_number_str(s: str) -> float:
    for char in ("$", "%", ","):
        s = s.replace(char, "")
    try:
        return float(s)
    except ValueError:
        return float("inf")  # never equals a finite truth


def is_float(x: str) -> bool:
    """Whether `x` reads as a number to Python's float() (how the scorer tells a numeric truth)."""
    try:
        float(x)
        return True
    except ValueError:
        return False


def _normalize_str(s: str, remove_punct: bool = True) -> str:
    s = re.sub(r"\s", "", s).lower()
    if remove_punct:
        return s.translate(str.maketrans("", "", string.punctuation))
    return s


def _split(s: str) -> list[str]:
    return re.split(r"[,;]", s)


def gaia_match(model_answer: str | None, ground_truth: str) -> bool:
    answer = "" if model_answer is None else str(model_answer)
    if is_float(ground_truth):
        return _normalize_number_str(answer) == float(ground_truth)
    if "," in ground_truth or ";" in ground_truth:
        truths, answers = _split(ground_truth), _split(answer)
        if len(truths) != len(answers):
            return False
        for a, t in zip(answers, truths, strict=True):
            if is_float(t):
                if _normalize_number_str(a) != float(t):
                    return False
            elif _normalize_str(a, remove_punct=False) != _normalize_str(t, remove_punct=False):
                return False
        return True
    return _normalize_str(answer) == _normalize_str(ground_truth)
