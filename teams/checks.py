"""Checks a program can make on an answer: its form against the question's explicit instructions, its list
shape, and whether it appears in the run's evidence. Pure functions, no AutoGen.

`form_violations(question, answer)` reads instruction phrases from the question with the small regexes below
and returns what the answer breaks. A violation is **cosmetic** when a program can correct it without
guessing (`fix(answer)` returns the corrected answer); otherwise the answer must be rewritten by the team
(`blocking`), unless the violation is only **advisory** (likely, not certain: shown and recorded, not enforced).

| rule | the question says (regex, case-insensitive) | violation | cosmetic fix |
|---|---|---|---|
| `decimal_places` | `N decimal place(s)`, `nearest tenth/hundredth/thousandth` | a number with another count of decimals | round half up / pad with zeros |
| `whole_number` | `nearest integer/whole number`, `rounded to a whole number` | a number with decimals | round half up |
| `comma_separated` | `comma separated`, `comma-delimited` | items separated by `;`, `/` or newlines (` and `/`&`: advisory, it may be part of an item) | join with `, ` |
| `list_spacing` | (as above) | `a,b` or `a ,b` | `a, b` |
| `alphabetical` | `alphabetical(ly)`, `alphabetize` | a list not in A-Z order (case aside) | sort |
| `ascending` / `descending` | `ascending/descending order`, `smallest to largest`, `largest to smallest` | a list of numbers out of order | sort |
| `first_name_only` | `first name only`, `only (the/their) first name`, `just the first name` | more than one word | none |
| `surname_only` | `surname only`, `only the last name`, `what is her surname`, `give the family name` (not with `first`/`full name`) | more than one word (particles such as `van der` aside) | none |
| `country_code` | `country code` (not a dialling code) | not 2-3 letters | upper-case when only the case is wrong |
| `in_thousands` | `in thousands` | `17 thousand`/`17k` (cosmetic) or a full figure ending in 000 (advisory) | drop the word |
| `no_units` | `without (the) units`, `no units`, `do not include (the) units` | a number followed by a unit | keep the number |
| `algebraic_notation` | `algebraic notation` | not a chess move in SAN (`Nf3`, `exd5`, `O-O`, `e8=Q+`) | none |
| `number_not_words` | `how many`, `what number`, `as a number`, `numeric(al) value` | the number written in words (`four`) | none |
| `words_not_number` | `in words`, `spelled out`, `spell out`, `write out the number` | digits | none |

`list_problems(answer)`: duplicate items, empty items, a list mixing numbers and words. Advisory: a list may
legitimately repeat an item, so these are recorded, not enforced.

`evidence_for(answer, evidence_texts)`: the answer (spacing and case aside), or every item of a list, appears in
one of the texts; a number matches whatever way it is written (`1,234` == `1234` == `1234.0`).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation

from teams.answer import split_list


@dataclass(frozen=True)
class Violation:
    rule: str
    message: str  # for the critic: what the question asks and what the answer does
    cosmetic: bool = False
    advisory: bool = False  # likely but not certain: shown and recorded, never blocks an approval
    fixer: Callable[[str], str | None] | None = None

    def fix(self, answer: str) -> str | None:
        """The corrected answer for a cosmetic violation, else None."""
        if not self.cosmetic or self.fixer is None:
            return None
        return self.fixer(answer)


# --- numbers --------------------------------------------------------------------------------------------
_NUMBER = re.compile(r"^[-+]?(?:\d{1,3}(?:,\d{3})+|\d+)?(?:\.\d+)?$")
_NUMBER_IN_TEXT = re.compile(r"(?<![\w.])[-+]?(?:\d{1,3}(?:,\d{3})+|\d+)(?:\.\d+)?(?![\d])")
_NUMBER_WORDS = frozenset(
    "zero one two three four five six seven eight nine ten eleven twelve thirteen fourteen fifteen sixteen "
    "seventeen eighteen nineteen twenty thirty forty fifty sixty seventy eighty ninety hundred thousand million "
    "billion and a".split()
)


def as_number(text: str) -> Decimal | None:
    """`text` as a number when it is one (`1,234.50`, `-3`, `.5`), else None."""
    s = text.strip()
    if not s or not _NUMBER.match(s) or not any(c.isdigit() for c in s):
        return None
    try:
        return Decimal(s.replace(",", ""))
    except InvalidOperation:  # pragma: no cover - the regex admits only valid numbers
        return None


def _decimals(text: str) -> int:
    s = text.strip()
    return len(s.split(".", 1)[1]) if "." in s else 0


def _round(text: str, places: int) -> str | None:
    value = as_number(text)
    if value is None:
        return None
    quantum = Decimal(1).scaleb(-places)
    rounded = value.quantize(quantum, rounding=ROUND_HALF_UP)
    return f"{rounded:f}"


def _is_number_words(text: str) -> bool:
    words = re.findall(r"[a-z]+", text.lower().replace("-", " "))
    return bool(words) and not any(c.isdigit() for c in text) and all(w in _NUMBER_WORDS for w in words) and (
        any(w not in {"and", "a"} for w in words)
    )


# --- the instruction phrases ----------------------------------------------------------------------------
_PLACES_WORDS = {"one": 1, "two": 2, "three": 3, "four": 4, "five": 5, "a single": 1, "1": 1}
_DECIMAL_PLACES = re.compile(r"\b(\d+|one|two|three|four|five|a single)\s+decimal\s+(?:places?|digits?)\b", re.I)
_NEAREST_FRACTION = re.compile(r"\bnearest\s+(tenth|hundredth|thousandth)s?\b", re.I)
_WHOLE = re.compile(r"\b(?:nearest|to\s+an?|to\s+the)\s+(?:whole\s+number|integer)\b|\bnearest\s+(?:whole|unit)\b", re.I)
_COMMA = re.compile(r"\bcomma[-\s]*(?:separated|delimited)\b", re.I)
_ALPHA = re.compile(r"\balphabeti(?:cal(?:ly)?|[sz]e[ds]?)\b", re.I)
_ASC = re.compile(r"\bascending\b|\b(?:smallest|lowest|least)\s+to\s+(?:the\s+)?(?:largest|highest|greatest)\b", re.I)
_DESC = re.compile(r"\bdescending\b|\b(?:largest|highest|greatest)\s+to\s+(?:the\s+)?(?:smallest|lowest|least)\b", re.I)
_FIRST_NAME = re.compile(
    r"\bfirst\s+name\s+only\b|\bonly\s+(?:the\s+|their\s+|his\s+|her\s+)?first\s+name\b|\bjust\s+(?:the\s+)?first\s+name\b"
    r"|\bgiven\s+name\s+only\b", re.I)
_LAST = r"(?:surname|last\s+name|family\s+name)s?"
_POSSESSIVE = r"(?:the\s+|their\s+|his\s+|her\s+|its\s+)"
_SURNAME = re.compile(  # asked for alone: "surname only", "only the last name", "what is her surname", "give the surname"
    rf"\b{_LAST}\s+only\b|\b(?:only|just)\s+{_POSSESSIVE}?{_LAST}\b|\b(?:what|which)\s+(?:is|was|are|were)\s+"
    rf"{_POSSESSIVE}?{_LAST}\b|\b(?:give|provide|write|answer\s+with)\s+(?:only\s+|just\s+)?{_POSSESSIVE}{_LAST}\b", re.I)
_NAME_AND_SURNAME = re.compile(r"\b(?:first|full|given)\s+(?:and\s+(?:last|family)\s+)?names?\b", re.I)
_PHONE = re.compile(r"\b(?:dial(?:l?ing)?|calling|tele?phone|phone)\b", re.I)
_COUNTRY_CODE = re.compile(r"\bcountry\s+codes?\b", re.I)
_THOUSANDS = re.compile(r"\bin\s+thousands\b", re.I)
_NO_UNITS = re.compile(r"\b(?:without|no|omit(?:ting)?|exclude|excluding)\s+(?:the\s+|any\s+)?units?\b"
                       r"|\bdo\s+not\s+include\s+(?:the\s+|any\s+)?units?\b", re.I)
_ALGEBRAIC = re.compile(r"\balgebraic\s+notation\b", re.I)
_AS_NUMBER = re.compile(r"\bhow\s+many\b|\bwhat\s+number\b|\bas\s+an?\s+(?:number|integer|numeral)\b"
                        r"|\bnumeric(?:al)?\s+(?:value|answer|form)\b|\bin\s+digits\b", re.I)
_IN_WORDS = re.compile(r"\b(?:in|as)\s+words\b|\bspelled\s+out\b|\bspell\s+(?:it\s+)?out\b|\bwrite\s+out\s+the\s+number\b", re.I)

_PARTICLES = frozenset("van von der den de del della di da du dos das le la ter ten bin al el".split())  # van der Berg
_SAN = re.compile(r"^(?:[KQRBN][a-h]?[1-8]?x?[a-h][1-8]|[a-h](?:x[a-h])?[1-8](?:=?[QRBN])?|O-O(?:-O)?)[+#]?$")
_OTHER_SEPARATOR = re.compile(r"\s*(?:;|\n|\s/\s)\s*")
# "and" / "&" may be inside one item ("Simon and Garfunkel"): a program cannot tell, so it is only pointed out.
_AND_SEPARATOR = re.compile(r"\s+(?:and|&)\s+", re.I)
_UNIT_AFTER_NUMBER = re.compile(r"^([-+]?[\d,]*\.?\d+)\s*([A-Za-z°%µ/²³][A-Za-z°%µ/²³. ]*)$")
_THOUSAND_WORD = re.compile(r"^([-+]?[\d,]*\.?\d+)\s*(?:thousand|k)\b\.?$", re.I)


def _items(answer: str) -> list[str]:
    return split_list(answer) if "," in answer else [answer.strip()]


def _join(items: Iterable[str]) -> str:
    return ", ".join(items)


def _decimal_places(question: str) -> int | None:
    if m := _DECIMAL_PLACES.search(question):
        word = m.group(1).lower()
        return int(word) if word.isdigit() else _PLACES_WORDS[word]
    if m := _NEAREST_FRACTION.search(question):
        return {"tenth": 1, "hundredth": 2, "thousandth": 3}[m.group(1).lower()]
    return None


def form_violations(question: str, answer: str) -> list[Violation]:
    """What `answer` breaks of the explicit form instructions in `question` (the module docstring's table)."""
    answer = answer.strip()
    if not answer:
        return []
    out: list[Violation] = []
    items = _items(answer)
    numbers = [as_number(i) for i in items]

    places = _decimal_places(question)
    if places is not None:
        wrong = [i for i, n in zip(items, numbers, strict=True) if n is not None and _decimals(i) != places]
        if wrong:
            out.append(Violation(
                "decimal_places", f"the question asks for {places} decimal place(s); the answer has {_join(wrong)}",
                cosmetic=True,
                fixer=lambda a, p=places: _join(_round(i, p) or i for i in _items(a)),  # type: ignore[misc]
            ))
    elif _WHOLE.search(question):
        wrong = [i for i, n in zip(items, numbers, strict=True) if n is not None and _decimals(i) > 0]
        if wrong:
            out.append(Violation(
                "whole_number", f"the question asks for a whole number; the answer has {_join(wrong)}",
                cosmetic=True, fixer=lambda a: _join(_round(i, 0) or i for i in _items(a)),
            ))

    if _COMMA.search(question):
        if _OTHER_SEPARATOR.search(answer):
            out.append(Violation(
                "comma_separated", "the question asks for a comma-separated list; the answer uses other separators",
                cosmetic=True,
                fixer=lambda a: _join(p.strip() for p in re.split(r",|" + _OTHER_SEPARATOR.pattern, a) if p.strip()),
            ))
        elif _AND_SEPARATOR.search(answer):
            out.append(Violation(
                "comma_separated", "the question asks for a comma-separated list; the answer joins items with 'and'"
                " (fine if the 'and' is part of one item's name)", advisory=True,
            ))
        elif len(items) > 1 and _join(items) != answer:
            out.append(Violation(
                "list_spacing", "the list's items should be separated by a comma and one space",
                cosmetic=True, fixer=lambda a: _join(_items(a)),
            ))

    if _ALPHA.search(question) and len(items) > 1:
        if items != sorted(items, key=str.casefold):
            out.append(Violation(
                "alphabetical", "the question asks for alphabetical order; the answer's list is not in that order",
                cosmetic=True, fixer=lambda a: _join(sorted(_items(a), key=str.casefold)),
            ))

    if len(items) > 1 and all(n is not None for n in numbers):
        values = [n for n in numbers if n is not None]
        for rule, pattern, reverse in (("ascending", _ASC, False), ("descending", _DESC, True)):
            if pattern.search(question) and values != sorted(values, reverse=reverse):
                out.append(Violation(
                    rule, f"the question asks for {rule} order; the answer's numbers are not in that order",
                    cosmetic=True,
                    fixer=lambda a, r=reverse: _join(  # type: ignore[misc]
                        sorted(_items(a), key=lambda i: as_number(i) or Decimal(0), reverse=r)),
                ))

    if _FIRST_NAME.search(question) and any(len(i.split()) > 1 for i in items):
        out.append(Violation("first_name_only", "the question asks for the first name only; the answer has more words"))
    elif _SURNAME.search(question) and not _NAME_AND_SURNAME.search(question) and any(
            len([w for w in i.split() if w.casefold() not in _PARTICLES]) > 1 for i in items):
        out.append(Violation("surname_only", "the question asks for a surname; the answer has more than one word"))

    if _COUNTRY_CODE.search(question) and not _PHONE.search(question):
        codes = [i for i in items if not re.fullmatch(r"[A-Z]{2,3}", i)]
        if codes:
            case_only = all(re.fullmatch(r"[A-Za-z]{2,3}", i) for i in codes)
            out.append(Violation(
                "country_code", f"the question asks for a country code (2-3 capital letters); the answer has {_join(codes)}",
                cosmetic=case_only, fixer=(lambda a: _join(i.upper() for i in _items(a))) if case_only else None,
            ))

    if _THOUSANDS.search(question):
        if all(_THOUSAND_WORD.match(i) for i in items):
            out.append(Violation(
                "in_thousands", "the question asks for the figure in thousands; write the number without 'thousand'",
                cosmetic=True, fixer=lambda a: _join(_THOUSAND_WORD.sub(r"\1", i) for i in _items(a)),
            ))
        elif any(n is not None and n == n.to_integral_value() and abs(n) >= 1000 and n % 1000 == 0
                 for n in numbers):
            out.append(Violation(
                "in_thousands", "the question asks for the figure in thousands; the answer looks like the full figure"
                " (divide by 1000 if so)", advisory=True,
            ))

    if _NO_UNITS.search(question) and all(_UNIT_AFTER_NUMBER.match(i) for i in items):
        out.append(Violation(
            "no_units", "the question asks for the number without units",
            cosmetic=True, fixer=lambda a: _join(_UNIT_AFTER_NUMBER.sub(r"\1", i) for i in _items(a)),
        ))

    if _ALGEBRAIC.search(question) and not all(_SAN.match(i) for i in items):
        out.append(Violation(
            "algebraic_notation", "the question asks for a move in algebraic notation (e.g. Nf3, exd5, O-O)"
        ))

    if _IN_WORDS.search(question):
        if any(as_number(i) is not None for i in items):
            out.append(Violation("words_not_number", "the question asks for the number in words; the answer has digits"))
    elif _AS_NUMBER.search(question) and all(_is_number_words(i) for i in items):
        out.append(Violation("number_not_words", "the question asks for a number; the answer writes it in words"))
    return out


def list_problems(answer: str) -> list[Violation]:
    """Advisory problems of a comma-separated answer: duplicates, empty items, numbers mixed with words."""
    if "," not in answer:
        return []
    items = split_list(answer.strip())
    out: list[Violation] = []
    if any(not i for i in items):
        out.append(Violation("empty_item", "the list has an empty item"))
    seen: set[str] = set()
    repeated = []
    for item in (i for i in items if i):
        key = " ".join(item.split()).casefold()
        if key in seen and item not in repeated:
            repeated.append(item)
        seen.add(key)
    if repeated:
        out.append(Violation("duplicates", f"the list repeats {_join(repeated)}"))
    kinds = {as_number(i) is not None for i in items if i}
    if len(kinds) > 1:
        out.append(Violation("mixed_items", "the list mixes numbers and words"))
    return out


def apply_fixes(question: str, answer: str) -> tuple[str, list[str]]:
    """`answer` with every cosmetic violation corrected, and the rules corrected (in order)."""
    fixed: list[str] = []
    for _ in range(4):  # one fix can reveal another (spacing, then order)
        for v in form_violations(question, answer):
            corrected = v.fix(answer)
            if corrected is not None and corrected != answer:
                answer = corrected
                fixed.append(v.rule)
                break
        else:
            break
    return answer, fixed


def blocking(question: str, answer: str) -> list[Violation]:
    """The violations that cannot be corrected by a program: an approval of `answer` must not stand."""
    return [v for v in form_violations(question, answer) if not v.cosmetic and not v.advisory]


def facts_for_critic(question: str, answer: str, evidence_texts: Iterable[str]) -> str:
    """The checks on `answer` as one block of facts for the reviewer's prompt ("" when there is no answer)."""
    if not answer.strip():
        return ""
    lines = [f"Program checks on the answer {answer!r}:"]
    for v in form_violations(question, answer):
        fix = v.fix(answer)
        how = f" (will be corrected to {fix!r})" if fix is not None else " (cannot be approved as it is)"
        lines.append(f"- form, {v.rule}: {v.message}{how}")
    lines += [f"- list, {v.rule}: {v.message}" for v in list_problems(answer)]
    found = evidence_for(answer, evidence_texts)
    lines.append("- evidence: " + ("it appears in a tool result or program output of this run" if found
                                   else "it appears in no tool result or program output, only in model text"))
    return "\n".join(lines)


def _norm_text(text: str) -> str:
    return " ".join(text.split()).casefold()


def _numbers_in(text: str) -> set[Decimal]:
    found = set()
    for m in _NUMBER_IN_TEXT.finditer(text):
        if (n := as_number(m.group(0))) is not None:
            found.add(n.normalize())
    return found


def evidence_for(answer: str, evidence_texts: Iterable[str]) -> bool:
    """The answer, or each item of its list, appears in one of `evidence_texts` (tool results, program output)."""
    texts = [t for t in evidence_texts if t]
    if not answer.strip() or not texts:
        return False
    joined = _norm_text("\n".join(texts))
    numbers: set[Decimal] | None = None
    for item in _items(answer.strip()):
        value = as_number(item)
        if value is not None:
            if numbers is None:
                numbers = set().union(*(_numbers_in(t) for t in texts))
            if value.normalize() not in numbers:
                return False
        elif _norm_text(item) not in joined:
            return False
    return True
