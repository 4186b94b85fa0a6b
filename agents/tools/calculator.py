"""`calculator`: exact arithmetic from an expression, evaluated over a whitelisted AST (never `eval`).

Every number the calculator holds is bounded: an integer, and a fraction's numerator and denominator, have at
most MAX_DIGITS decimal digits. The bound protects more than this tool: CPython's big-integer arithmetic holds
the GIL for the whole operation, so one unbounded power (`((2**10000)**10000)**10000`) running in AutoGen's
worker thread would stop the event loop, and with it every chat session and the batch.

- An operation that can grow a number without limit (`**`, `factorial`, `round(x, places)`) is estimated from
  its operands before it runs, and refused with the estimate when it is over the bound.
- The others (+ - * / // %, abs, min, max, floor, ceil) give at most about twice the digits of their bounded
  operands, which costs at most a few milliseconds; they run, and their result is checked.
- Floating point (sqrt, log, exp, sin, cos, tan, pi, e, fractional powers) is bounded by the float type itself;
  a result past its range is an error rather than `inf`.
Shifts and bit operations are not arithmetic a question needs and are not supported.

It runs in AutoGen's worker thread, not in a worker process: within these bounds the slowest single step takes
about 10 ms and a whole 500-character expression at most ~0.2 s, while a process pool would add a ~65 MB
process, 0.6-1.6 s to start and its own lifecycle (bench/calculator.py measures both).
"""

from __future__ import annotations

import ast
import math
import operator
from collections.abc import Callable
from decimal import Context, Decimal
from fractions import Fraction
from typing import Any

from agents.tools.errors import ToolError
from agents.tools.registry import SafeTool, ToolContext, register

Number = int | Fraction | float

MAX_DIGITS = 10_000  # fits one tool answer (12,000 characters); the slowest bounded step is ~10 ms
MAX_EXPRESSION_CHARS = 500
DECIMAL_PLACES = 28  # significant digits shown for a fraction that is not a whole number
TIMEOUT_S = 5.0  # SafeTool's wall-clock limit: bounded expressions finish in well under a second

_LIMIT = 10**MAX_DIGITS  # a number is held only if abs(n) < _LIMIT, i.e. it has at most MAX_DIGITS digits
# log10(log10(n)) above which n surely has more than MAX_DIGITS digits; closer calls are computed and checked
_LOG10_LIMIT = math.log10(MAX_DIGITS + 1)
_DECIMAL = Context(prec=DECIMAL_PLACES)  # explicit: the thread's default context is shared and mutable

_BINARY: dict[type[ast.operator], Callable[[Number, Number], Number]] = {
    ast.Add: operator.add,
    ast.Sub: operator.sub,
    ast.Mult: operator.mul,
    ast.FloorDiv: operator.floordiv,
    ast.Mod: operator.mod,
}
_UNARY: dict[type[ast.unaryop], Callable[[Any], Number]] = {ast.UAdd: operator.pos, ast.USub: operator.neg}
_FLOAT_FUNCTIONS: dict[str, Callable[..., float]] = {
    "sqrt": math.sqrt,
    "log": math.log,
    "log10": math.log10,
    "exp": math.exp,
    "sin": math.sin,
    "cos": math.cos,
    "tan": math.tan,
}
_EXACT_FUNCTIONS: dict[str, Callable[..., Number]] = {
    "abs": abs,
    "min": min,
    "max": max,
    "floor": math.floor,
    "ceil": math.ceil,
}
_CONSTANTS = {"pi": math.pi, "e": math.e}


class CalculatorError(ToolError, ValueError):
    pass


def _too_big(log10_log10: float, what: str = "the result") -> CalculatorError:
    """The error for a number whose log10 has this log10 (logs twice over, so that 2**(10**5000) fits a float)."""
    if log10_log10 <= 15:  # a digit count that a float holds exactly: floor(log10(n)) + 1
        digits = math.floor(10**log10_log10) + 1
        about = f"about {digits:,}" if digits < 10**6 else f"about {digits:.1e}"
    elif log10_log10 < 300:
        about = f"about {10**log10_log10:.1e}"
    else:
        about = f"about 10^{log10_log10:,.0f}"
    return CalculatorError(f"{what} would have {about} digits; the calculator stops at {MAX_DIGITS:,} digits")


def _log10_log10(n: int) -> float:
    return math.log10(math.log10(n))  # math.log10 takes a whole number of any size, without making text


def _held(value: object) -> Number:
    """The value as the calculator holds it, or an error when it is past the bounds."""
    if isinstance(value, Fraction):
        if value.denominator == 1:
            value = value.numerator
        elif abs(value.numerator) >= _LIMIT or value.denominator >= _LIMIT:
            # Too long to keep exactly: a floating-point approximation is still an answer (0.99**10000).
            approx = _approximate(value)
            if approx is None:
                size = max(abs(value.numerator), value.denominator)
                raise _too_big(_log10_log10(size), "the exact fraction's numerator or denominator")
            return approx
        else:
            return value
    if isinstance(value, int):
        if abs(value) >= _LIMIT:
            raise _too_big(_log10_log10(abs(value)))
        return value
    if isinstance(value, float):
        if not math.isfinite(value):
            raise CalculatorError("the result is beyond floating point's range (about 1.8e308)")
        return value
    if isinstance(value, complex):
        raise CalculatorError("the result is not a real number")
    raise CalculatorError(f"unsupported value of type {type(value).__name__}")


def _approximate(value: Fraction) -> float | None:
    try:
        approx = float(value)
    except OverflowError:
        return None
    return approx if approx != 0 and math.isfinite(approx) else None


def _float(value: Number) -> float:
    try:
        return float(value)
    except OverflowError:
        raise CalculatorError("a number is beyond floating point's range (about 1.8e308)") from None


def _power(base: Number, exponent: Number) -> Number:
    if isinstance(exponent, int) and not isinstance(base, float):
        if exponent == 0:
            return 1
        if base in (0, 1, -1):  # any power of these is cheap, even 1**(10**5000)
            if base == 0 and exponent < 0:
                raise CalculatorError("division by zero (0 to a negative power)")
            return base ** abs(exponent)
        top = max(abs(base.numerator), base.denominator) if isinstance(base, Fraction) else abs(base)
        # log10 of the result is |exponent| * log10(top); its own log, so that a huge exponent needs no float
        log10_log10 = math.log10(abs(exponent)) + math.log10(math.log10(top))
        if log10_log10 > _LOG10_LIMIT:
            if isinstance(base, Fraction) and log10_log10 < 300:  # 0.99**10000: a float still answers it
                approx = _float_power(float(base), float(exponent))
                if approx is not None and approx != 0:
                    return _held(approx)
            raise _too_big(log10_log10)
        # Fraction keeps a negative power exact: 2**-2 is 1/4, not the float 0.25.
        return _held(Fraction(base) ** exponent if exponent < 0 else base**exponent)
    # A float base or a fractional exponent: floating point, constant cost.
    result = _float_power(_float(base), _float(exponent))
    if result is None:
        raise CalculatorError("the result is beyond floating point's range (about 1.8e308)")
    return _held(result)


def _float_power(base: float, exponent: float) -> float | complex | None:
    """base**exponent in floating point; None when it overflows."""
    try:
        result = base**exponent
    except OverflowError:
        return None
    except ZeroDivisionError:
        raise CalculatorError("division by zero (0 to a negative power)") from None
    return None if isinstance(result, float) and not math.isfinite(result) else result


def _factorial(args: list[Number]) -> int:
    if len(args) != 1:
        raise CalculatorError(f"factorial() takes one number ({len(args)} given)")
    n = args[0]
    if isinstance(n, float) and n.is_integer():
        n = int(n)
    if not isinstance(n, int):
        raise CalculatorError("factorial() needs a whole number")
    if n < 0:
        raise CalculatorError("factorial() of a negative number is undefined")
    if n > 1:
        if n.bit_length() < 1000:
            log10_log10 = math.log10(math.lgamma(n + 1) / math.log(10))
        else:  # log10(n!) is about n*log10(n)
            log10_log10 = math.log10(n) + math.log10(math.log10(n))
        if log10_log10 > _LOG10_LIMIT:
            what = f"factorial({n})" if n < 10**15 else "the factorial"
            raise _too_big(log10_log10, what)
    return int(_held(math.factorial(n)))


def _round(args: list[Number]) -> Number:
    if len(args) == 1:
        return _held(round(args[0]))
    if len(args) != 2:
        raise CalculatorError(f"round() takes a number and optionally decimal places ({len(args)} given)")
    value, places = args
    if not isinstance(places, int):
        raise CalculatorError("round()'s decimal places must be a whole number")
    if abs(places) > MAX_DIGITS:  # round(x, n) builds 10**n
        raise CalculatorError(f"round() to {places:,} places: the calculator stops at {MAX_DIGITS:,} places")
    return _held(round(value, places))


def _call(name: str, args: list[Number]) -> Number:
    if name == "factorial":
        return _factorial(args)
    if name == "round":
        return _round(args)
    if name in _EXACT_FUNCTIONS:
        return _held(_EXACT_FUNCTIONS[name](*args))
    # math.log and log10 take a whole number of any size exactly; everything else goes through float.
    floats = [a if isinstance(a, int) and name in ("log", "log10") else _float(a) for a in args]
    return _held(_FLOAT_FUNCTIONS[name](*floats))


def _eval(node: ast.AST) -> Number:
    if isinstance(node, ast.Expression):
        return _eval(node.body)
    if isinstance(node, ast.Constant) and isinstance(node.value, (int, float)) and not isinstance(node.value, bool):
        # Fractions keep 0.1 + 0.2 == 0.3 exact; floats only where a function needs them.
        return _held(Fraction(Decimal(str(node.value))) if isinstance(node.value, float) else node.value)
    if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Pow):
        return _power(_eval(node.left), _eval(node.right))
    if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Div):
        left, right = _eval(node.left), _eval(node.right)
        if right == 0:
            raise CalculatorError("division by zero")
        if isinstance(left, (int, Fraction)) and isinstance(right, (int, Fraction)):
            return _held(Fraction(left) / Fraction(right))  # exact: 1/3*3 is 1
        return _held(left / right)
    if isinstance(node, ast.BinOp) and type(node.op) in _BINARY:
        left, right = _eval(node.left), _eval(node.right)
        return _held(_BINARY[type(node.op)](left, right))
    if isinstance(node, ast.UnaryOp) and type(node.op) in _UNARY:
        return _UNARY[type(node.op)](_eval(node.operand))
    if isinstance(node, ast.Name) and node.id in _CONSTANTS:
        return _CONSTANTS[node.id]
    if isinstance(node, ast.Call) and isinstance(node.func, ast.Name):
        name = node.func.id
        if node.keywords:
            raise CalculatorError(f"{name}() takes its arguments by position, not by name")
        if name == "factorial" or name == "round" or name in _EXACT_FUNCTIONS or name in _FLOAT_FUNCTIONS:
            return _call(name, [_eval(a) for a in node.args])
    if isinstance(node, (ast.BinOp, ast.UnaryOp)):
        raise CalculatorError(f"unsupported operator {type(node.op).__name__} (use + - * / // % **)")
    if isinstance(node, ast.Name) or (isinstance(node, ast.Call) and isinstance(node.func, ast.Name)):
        name = node.id if isinstance(node, ast.Name) else node.func.id if isinstance(node.func, ast.Name) else "?"
        raise CalculatorError(f"unknown name {name!r}")
    raise CalculatorError(f"unsupported expression element: {ast.dump(node)[:60]}")


def _int_text(n: int) -> str:
    # Decimal(int) is exact and free of Python's 4,300-digit int-to-str limit (sys.set_int_max_str_digits).
    return format(Decimal(n), "f")


def _format(value: Number) -> str:
    if isinstance(value, int):
        return _int_text(value)
    if isinstance(value, Fraction):
        quotient = _DECIMAL.divide(Decimal(value.numerator), Decimal(value.denominator))
        if -DECIMAL_PLACES < quotient.adjusted() < DECIMAL_PLACES:
            return format(quotient, "f").rstrip("0").rstrip(".")
        return str(quotient).replace("E", "e")  # scientific: 'f' would pad with zeros that look exact
    if value.is_integer() and abs(value) < 2**53:  # sqrt(16) is 4; 1e300 stays 1e+300, not 301 made-up digits
        return str(int(value))
    return repr(value)


def calculate(expression: str) -> str:
    """The value of `expression` as text, or CalculatorError saying what is wrong or past which bound."""
    expression = expression.strip().replace("^", "**").replace("×", "*").replace("÷", "/")
    if len(expression) > MAX_EXPRESSION_CHARS:
        raise CalculatorError(
            f"expression too long ({len(expression):,} characters; the calculator stops at {MAX_EXPRESSION_CHARS})"
        )
    try:
        tree = ast.parse(expression, mode="eval")
    except SyntaxError as exc:
        shown = expression if len(expression) <= 60 else expression[:59] + "…"
        raise CalculatorError(f"cannot parse {shown!r}: {exc.msg}") from None
    try:
        return _format(_eval(tree))
    except CalculatorError:
        raise
    except ZeroDivisionError:
        raise CalculatorError("division by zero") from None
    except OverflowError:
        raise CalculatorError("a number is beyond floating point's range (about 1.8e308)") from None
    except RecursionError:
        raise CalculatorError("the expression nests too deeply") from None
    except (ArithmeticError, ValueError, TypeError) as exc:
        raise CalculatorError(str(exc)) from None


CALCULATOR_DESCRIPTION = (
    "Evaluate an arithmetic expression exactly, e.g. '(17 * 3.5) / 2' or 'round(sqrt(2), 4)'. "
    "+ - * / // % ** (or ^), abs, min, max, round, floor, ceil, factorial, "
    "sqrt, log, log10, exp, sin, cos, tan, pi, e. "
    f"Whole numbers and fractions stay exact up to {MAX_DIGITS:,} digits; a fraction that is not whole is shown "
    f"to {DECIMAL_PLACES} significant digits."
)


@register(
    "calculator", f"Exact arithmetic on an expression (+ - * / // % **, sqrt, log, round, ...), up to {MAX_DIGITS:,} digits"
)
def make_calculator(ctx: ToolContext) -> SafeTool:
    def calculator(expression: str) -> str:
        try:
            return calculate(expression)
        except CalculatorError as exc:
            raise ToolError(f"{exc}") from None

    return SafeTool(calculator, name="calculator", description=CALCULATOR_DESCRIPTION, timeout=TIMEOUT_S)
