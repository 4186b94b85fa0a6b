"""The program's checks on an answer (teams/checks.py): form against the question's instructions, list shape,
evidence. Invented questions and answers only."""

from __future__ import annotations

import pytest

from teams.checks import apply_fixes, blocking, evidence_for, facts_for_critic, form_violations, list_problems

# (question, answer, the rule broken or None, the cosmetic fix or None when the violation blocks)
FORM_CASES = [
    # decimal places
    ("What is the ratio of red to blue tiles, to 2 decimal places?", "3.14159", "decimal_places", "3.14"),
    ("What is the ratio of red to blue tiles, to 2 decimal places?", "3.145", "decimal_places", "3.15"),
    ("What is the ratio of red to blue tiles, to 2 decimal places?", "3.1", "decimal_places", "3.10"),
    ("What is the ratio of red to blue tiles, to 2 decimal places?", "3.14", None, None),
    ("Give the mean rainfall rounded to three decimal places.", "0.12345", "decimal_places", "0.123"),
    ("Give the average to the nearest tenth.", "7.25", "decimal_places", "7.3"),
    ("Give the average to the nearest tenth.", "7.3", None, None),
    ("Round the speed to the nearest whole number.", "41.6", "whole_number", "42"),
    ("Round the speed to the nearest whole number.", "42", None, None),
    # comma separated, list spacing
    ("Name the three rivers, comma separated.", "Ouse; Tamar; Wye", "comma_separated", "Ouse, Tamar, Wye"),
    ("Name the three rivers as a comma-separated list.", "Ouse; Tamar / Wye", "comma_separated", "Ouse, Tamar, Wye"),
    ("Name the three rivers as a comma-separated list.", "Ouse, Tamar and Wye", "comma_separated", None),  # advisory
    ("Name the three rivers, comma separated.", "Ouse,Tamar ,Wye", "list_spacing", "Ouse, Tamar, Wye"),
    ("Name the three rivers, comma separated.", "Ouse, Tamar, Wye", None, None),
    # order
    ("List the fruits in alphabetical order.", "pear, Apple, fig", "alphabetical", "Apple, fig, pear"),
    ("List the fruits alphabetically.", "Apple, fig, pear", None, None),
    ("List the fruits alphabetically.", "apple, banana, Fig", None, None),  # case aside
    ("Give the scores in ascending order.", "12, 3, 7", "ascending", "3, 7, 12"),
    ("Give the scores from smallest to largest.", "3, 7, 12", None, None),
    ("Give the scores in descending order.", "3, 12, 7", "descending", "12, 7, 3"),
    ("Give the scores in descending order.", "12, 7, 3", None, None),
    # names
    ("Which inventor built the clock? Give the first name only.", "Oswin Tarrant", "first_name_only", None),
    ("Which inventor built the clock? Give the first name only.", "Oswin", None, None),
    ("What is the surname of the lighthouse keeper?", "Edda Morrow", "surname_only", None),
    ("What is the surname of the lighthouse keeper?", "Morrow", None, None),
    ("What is the surname of the lighthouse keeper?", "van der Berg", None, None),
    ("Give only the last name of the keeper.", "Edda Morrow", "surname_only", None),
    ("Give the first name and last name of the keeper.", "Edda Morrow", None, None),
    ("What is the surname and first name of the keeper?", "Morrow Edda", None, None),
    ("List the keepers sorted by last name.", "Edda Morrow, Piet Aalders", None, None),
    # country code
    ("Which country hosted the fair? Give its three-letter country code.", "Freedonia", "country_code", None),
    ("Which country hosted the fair? Give its three-letter country code.", "frd", "country_code", "FRD"),
    ("Which country hosted the fair? Give its three-letter country code.", "FRD", None, None),
    ("What telephone country code do callers from the fair's host dial?", "+44", None, None),
    # in thousands
    ("How many visitors came, in thousands?", "17 thousand", "in_thousands", "17"),
    ("How many visitors came, in thousands?", "17000", "in_thousands", None),
    ("How many visitors came, in thousands?", "17", None, None),
    # units
    ("How long is the bridge? Answer without units.", "420 m", "no_units", "420"),
    ("How long is the bridge? Answer without units.", "420", None, None),
    # algebraic notation
    ("What move wins for white? Give it in algebraic notation.", "knight to f3", "algebraic_notation", None),
    ("What move wins for white? Give it in algebraic notation.", "Nf3", None, None),
    ("What move wins for white? Give it in algebraic notation.", "exd5+", None, None),
    ("What move wins for white? Give it in algebraic notation.", "O-O-O", None, None),
    # number versus words
    ("How many lanterns hang in the hall?", "twenty-four", "number_not_words", None),
    ("How many lanterns hang in the hall?", "24", None, None),
    ("How many lanterns hang in the hall? Write the number in words.", "24", "words_not_number", None),
    ("How many lanterns hang in the hall? Write the number in words.", "twenty-four", None, None),
    # no instruction, no violation
    ("Which river is the longest?", "Tamar", None, None),
]


@pytest.mark.parametrize(("question", "answer", "rule", "fixed"), FORM_CASES)
def test_form_violations(question: str, answer: str, rule: str | None, fixed: str | None) -> None:
    found = form_violations(question, answer)
    assert [v.rule for v in found] == ([rule] if rule else [])
    if rule is None:
        return
    (violation,) = found
    assert violation.message
    assert violation.cosmetic == (fixed is not None)
    assert violation.fix(answer) == fixed
    if fixed is None:
        assert blocking(question, answer) == ([] if violation.advisory else [violation])
    else:
        assert not blocking(question, answer)
        assert apply_fixes(question, answer) == (fixed, [rule])


def test_fixes_chain_and_record_every_rule() -> None:
    answer, rules = apply_fixes("Name the fruits, comma separated, in alphabetical order.", "pear; apple / fig")
    assert answer == "apple, fig, pear" and rules == ["comma_separated", "alphabetical"]


@pytest.mark.parametrize(("answer", "rules"), [
    ("Ouse, Tamar, ouse", ["duplicates"]),
    ("Ouse, , Wye", ["empty_item"]),
    ("3, Tamar, 7", ["mixed_items"]),
    ("Ouse, Tamar, Wye", []),
    ("1,234", []),  # one number with a thousands separator, not a list
])
def test_list_problems(answer: str, rules: list[str]) -> None:
    assert [v.rule for v in list_problems(answer)] == rules


EVIDENCE = ["calculator: 1,234.0", "The page says the capital of Freedonia is Marlow.\nPopulation 98,100"]


@pytest.mark.parametrize(("answer", "found"), [
    ("1234", True),
    ("1,234", True),
    ("1234.00", True),
    ("98100", True),
    ("marlow", True),
    ("Marlow, 98,100", True),
    ("123", False),  # a part of a number is not the number
    ("1235", False),
    ("Kestrel", False),
    ("Marlow, Kestrel", False),  # every item must be found
])
def test_evidence_for(answer: str, found: bool) -> None:
    assert evidence_for(answer, EVIDENCE) is found


def test_no_evidence_without_tool_results() -> None:
    assert not evidence_for("1234", [])


def test_the_facts_shown_to_a_reviewer() -> None:
    facts = facts_for_critic("How many lanterns? Round to 1 decimal place.", "4.25", ["counted: 4.25"])
    assert "decimal_places" in facts and "corrected to '4.3'" in facts
    assert "appears in a tool result" in facts
    facts = facts_for_critic("How many lanterns hang in the hall?", "four", [])
    assert "number_not_words" in facts and "cannot be approved" in facts and "only in model text" in facts
    assert facts_for_critic("How many lanterns hang in the hall?", "", []) == ""


def test_only_a_likely_violation_is_advisory_and_does_not_block() -> None:
    advisory = [v.rule for v in form_violations("How many visitors came, in thousands?", "17000") if v.advisory]
    assert advisory == ["in_thousands"]
    # an "and" may be part of one item ("Simon and Garfunkel"): pointed out, never corrected or enforced
    duo = form_violations("Name the two acts, comma separated.", "Simon and Garfunkel")
    assert [(v.rule, v.advisory, v.fix("Simon and Garfunkel")) for v in duo] == [("comma_separated", True, None)]
    likely = {"in_thousands"}
    assert not any(v.advisory for q, a, rule, _ in FORM_CASES if rule not in likely and " and " not in a
                   for v in form_violations(q, a))


def test_the_terminal_lists_the_checks_under_the_answer() -> None:
    from rich.console import Console

    from cli.console import ConsoleRenderer
    from teams.result import Result

    console = Console(record=True, width=200)
    result = Result(question="q", answer="3.14", raw_answer="3.14159", approved=True, stop_reason="approved",
                    stop_detail="approved by critic", duration_s=1.0, checks=["corrected: decimal_places"])
    ConsoleRenderer(console).final(result)
    shown = console.export_text()
    assert "FINAL ANSWER: 3.14" in shown and "check: corrected: decimal_places" in shown
