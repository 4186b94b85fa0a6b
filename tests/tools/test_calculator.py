"""The calculator: exact answers, and hostile expressions that end in an `Error:` line within a second without
stopping the event loop (other sessions keep streaming). Every call goes through the registry and
SafeTool.run_json, as AutoGen makes it."""

from __future__ import annotations

import asyncio
import itertools
import sys
import time
from collections.abc import Callable

import pytest

from agents.tools.registry import ToolContext
from tests.tools.conftest import call

BOUND = "the calculator stops at 10,000 digits"

HOSTILE = {
    # the example: each step's exponent is small, the result is not
    "power of powers": ("((2**10000)**10000)**10000 % 7", "about 3.0e+07 digits; " + BOUND),
    "power tower": ("9**9**9", "about 3.7e+08 digits; " + BOUND),
    "huge exponent": ("2**(2**64)", "about 5.6e+18 digits; " + BOUND),
    "exponent too long for a float": ("2**(10**5000)", "about 10^4,999 digits; " + BOUND),
    "products": ("(10**5000)*(10**5000)*(10**5000)*(10**5000)", "about 10,001 digits; " + BOUND),
    "power before a modulo": ("(10**4000)**3 % 7", "about 12,001 digits; " + BOUND),
    "fraction power": ("1.5**100000", "about 47,713 digits; " + BOUND),
    "factorial": ("factorial(10**6)", "factorial(1000000) would have about 5.6e+06 digits; " + BOUND),
    "nested factorial": ("factorial(factorial(10))", "factorial(3628800) would have about 2.2e+07 digits"),
    "shift": ("1<<10**9", "unsupported operator LShift"),
    "round to many places": ("round(1.5, 10**9)", "round() to 1,000,000,000 places: the calculator stops at 10,000 places"),
    "round to many negative places": ("round(7, -10**9)", "the calculator stops at 10,000 places"),
    "float power overflow": ("pi**1000", "beyond floating point's range"),
    "float function overflow": ("exp(1000)", "beyond floating point's range"),
    "float product overflow": ("exp(700)*exp(700)", "beyond floating point's range"),
    "huge number into a float function": ("sqrt(10**5000)", "beyond floating point's range"),
    "deep nesting": ("(" * 240 + "1" + ")" * 240, "too many nested parentheses"),
    "long expression": ("1+" * 4999 + "11", "expression too long (10,000 characters; the calculator stops at 500)"),
}


@pytest.fixture
def ctx(make_ctx: Callable[..., ToolContext]) -> ToolContext:
    return make_ctx()


async def calc(ctx: ToolContext, expression: str) -> str:
    return await call(ctx, "calculator", expression=expression)


@pytest.mark.parametrize("expression, expected", list(HOSTILE.values()), ids=list(HOSTILE))
async def test_a_hostile_expression_ends_in_an_error_naming_the_bound_within_a_second(
    ctx: ToolContext, expression: str, expected: str
) -> None:
    started = time.monotonic()
    out = await calc(ctx, expression)
    assert time.monotonic() - started < 1.0, f"{expression[:40]!r} took too long"
    assert out.startswith("Error: ") and "\n" not in out, out
    assert expected in out, out


@pytest.mark.parametrize(
    "expression, expected",
    [
        ("1/3*3", "1"),
        ("0.1+0.2", "0.3"),
        ("7/2", "3.5"),
        ("10/4", "2.5"),
        ("1/49*49", "1"),  # 0.9999999999999999 in floating point
        ("1/10 + 2/10", "0.3"),  # 0.30000000000000004 in floating point
        ("1/3", "0." + "3" * 28),  # 28 significant digits, not a float's 16
        ("10**20/3", "33333333333333333333.33333333"),
        ("3**-40", "0.00000000000000000008225263339969959081282058401"),  # a float keeps 16 digits
        ("(1/3 - 0.3333333333333333)*10**17", "3.333333333333333333333333333"),
        ("2**-2", "0.25"),
        ("(17 * 3.5) / 2", "29.75"),
        ("1200 + 3400", "4600"),
        ("2^10", "1024"),
        ("7 // 2 + 7 % 2", "4"),
        ("round(2/3, 4)", "0.6667"),
        ("floor(-7/2)", "-4"),
        ("factorial(5.0)", "120"),
    ],
)
async def test_rational_arithmetic_is_exact(ctx: ToolContext, expression: str, expected: str) -> None:
    assert await calc(ctx, expression) == expected


@pytest.mark.parametrize(
    "expression, expected",
    [
        ("sqrt(16)", "4"),
        ("round(sqrt(2), 4)", "1.4142"),
        ("8**(1/3)", "2"),
        ("log10(2**30000)", "9030.899869919436"),  # a whole number of any size goes to log exactly
        ("0.99**10000", "2.2487748498162805e-44"),  # too long to keep exactly, still answered in floating point
    ],
)
async def test_floating_point_functions_answer_within_their_range(ctx: ToolContext, expression: str, expected: str) -> None:
    assert await calc(ctx, expression) == expected


async def test_numbers_up_to_the_bound_are_exact_and_printed_in_full(ctx: ToolContext) -> None:
    # past Python's 4,300-digit int-to-text limit, which would otherwise turn a right answer into an error
    assert await calc(ctx, "10**9999") == "1" + "0" * 9999
    assert await calc(ctx, "10.0**400") == "1" + "0" * 400  # a float literal stays exact: no overflow
    limit = sys.get_int_max_str_digits()
    sys.set_int_max_str_digits(0)
    try:
        expected = str(3**20959)
    finally:
        sys.set_int_max_str_digits(limit)
    assert len(expected) == 10_000 and await calc(ctx, "3**20959") == expected
    assert (await calc(ctx, "3**20960")).startswith("Error: the result would have about 10,001 digits")
    assert await calc(ctx, "factorial(3248) // factorial(3247)") == "3248"
    assert (await calc(ctx, "10**10000")).startswith("Error: the result would have about 10,001 digits")


async def test_a_huge_quotient_shows_its_significant_digits_and_magnitude(ctx: ToolContext) -> None:
    out = await calc(ctx, "10**4000 / 3**8000")
    leading = str(10 ** (4000 + 200) // 3**8000)  # integer arithmetic, independent of the calculator
    mantissa, exponent = out.split("e+")
    assert mantissa.replace(".", "")[:27] == leading[:27] and int(exponent) == len(leading) - 201


@pytest.mark.parametrize(
    "expression, expected",
    [
        ("1/0", "Error: division by zero"),
        ("5 % 0", "Error: division by zero"),
        ("0**-1", "Error: division by zero (0 to a negative power)"),
        ("(-8)**(1/3)", "Error: the result is not a real number"),
        ("sqrt(-1)", "Error: math domain error"),
        ("x + 1", "Error: unknown name 'x'"),
        ("round(1.5, ndigits=1)", "Error: round() takes its arguments by position, not by name"),
        ("factorial(2.5)", "Error: factorial() needs a whole number"),
        ("3 & 1", "Error: unsupported operator BitAnd (use + - * / // % **)"),
        ("__import__('os')", "Error: unknown name '__import__'"),
    ],
)
async def test_bad_input_gets_a_clear_error(ctx: ToolContext, expression: str, expected: str) -> None:
    assert await calc(ctx, expression) == expected


# The heaviest expressions that are within the bounds (every step on numbers of ~10,000 digits), and the
# issue's hostile-looking ones that have an exact answer.
HEAVY = [
    "10**4000 / 3**8000",
    "10.0**400",
    "3**20959",
    "+".join(f"7**{11830 - i}/3**{20958 - i}" for i in range(26)),
    "+".join(["round(7**11830/3**20958, 9999)"] * 16),
    "*".join(["(7**5900/3**10470)"] * 2 + ["(3**10470/7**5900)"] * 2) + "+" + "+".join(["7**11830/3**20958"] * 14),
]


async def test_the_event_loop_keeps_ticking_while_the_calculator_works(ctx: ToolContext) -> None:
    """Big-integer arithmetic holds the GIL: an unbounded step in AutoGen's worker thread would stop every
    session's stream. Here a coroutine ticks every 10 ms while each hostile and heavy expression runs."""
    ticks: list[float] = []
    stop = asyncio.Event()

    async def ticker() -> None:
        while not stop.is_set():
            ticks.append(time.monotonic())
            await asyncio.sleep(0.01)

    expressions = [e for e, _ in HOSTILE.values()] + HEAVY
    assert all(len(e) <= 500 for e in HEAVY)
    task = asyncio.create_task(ticker())
    await asyncio.sleep(0.05)
    try:
        outputs = [await calc(ctx, expression) for expression in expressions]
    finally:
        stop.set()
        await task
    gaps = [b - a for a, b in itertools.pairwise(ticks)]
    assert max(gaps) < 0.2, f"the event loop stalled for {max(gaps) * 1000:.0f} ms"
    assert not [out for out in outputs if "time limit" in out]  # each finished on its own, well within 5 s
