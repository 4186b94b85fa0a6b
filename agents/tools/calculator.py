"""`calculator`: exact arithmetic from an expression, evaluated over a whitelisted AST (never `eval`)."""

from __future__ import annotations

import ast
import math
import operator
from decimal import Decimal, InvalidOperation
from fractions import Fraction
from typing import Any

from agents.tools.registry import SafeTool, ToolContext, register

_BINARY = {
    ast.Add: operator.add,
    ast.Sub: operator.sub,
    ast.Mult: operator.mul,
    ast.Div: operator.truediv,
    ast.FloorDiv: operator.floordiv,
    ast.Mod: operator.mod,
    ast.Pow: operator.pow,
}
_UNARY = {ast.UAdd: operator.pos, ast.USub: operator.neg}
_FUNCTIONS: dict[str, Any] = {
    "abs": abs,
    "round": round,
    "min": min,
    "max": max,
    "sqrt": math.sqrt,
    "log": math.log,
    "log10": math.log10,
    "exp": math.exp,
    "sin": math.sin,
    "cos": math.cos,
    "tan": math.tan,
    "floor": math.floor,
    "ceil": math.ceil,
    "factorial": math.factorial,
}
_CONSTANTS = {"pi": math.pi, "e": math.e}
_MAX_POWER = 10_000  # 9**9**9 would hang the process; no sane question needs more
_MAX_FACTORIAL = 5_000


class CalculatorError(ValueError):
    pass


def _eval(node: ast.AST) -> Any:
    if isinstance(node, ast.Expression):
        return _eval(node.body)
    if isinstance(node, ast.Constant) and isinstance(node.value, (int, float)) and not isinstance(node.value, bool):
        # Fractions keep 0.1 + 0.2 == 0.3 exact; floats only where a function needs them.
        return Fraction(Decimal(str(node.value))) if isinstance(node.value, float) else node.value
    if isinstance(node, ast.BinOp) and type(node.op) in _BINARY:
        left, right = _eval(node.left), _eval(node.right)
        if isinstance(node.op, ast.Pow) and abs(right) > _MAX_POWER:
            raise CalculatorError(f"exponent {right} is too large")
        if isinstance(node.op, ast.Div):
            if right == 0:
                raise CalculatorError("division by zero")
            if isinstance(left, (int, Fraction)) and isinstance(right, (int, Fraction)):
                return Fraction(left) / Fraction(right)
        return _BINARY[type(node.op)](left, right)
    if isinstance(node, ast.UnaryOp) and type(node.op) in _UNARY:
        return _UNARY[type(node.op)](_eval(node.operand))
    if isinstance(node, ast.Name) and node.id in _CONSTANTS:
        return _CONSTANTS[node.id]
    if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id in _FUNCTIONS and not node.keywords:
        args = [_eval(a) for a in node.args]
        if node.func.id == "factorial" and args and abs(args[0]) > _MAX_FACTORIAL:
            raise CalculatorError(f"factorial of {args[0]} is too large")
        if node.func.id not in ("abs", "round", "min", "max", "floor", "ceil", "factorial"):
            args = [float(a) for a in args]
        return _FUNCTIONS[node.func.id](*args)
    raise CalculatorError(f"unsupported expression element: {ast.dump(node)[:60]}")


def _format(value: Any) -> str:
    if isinstance(value, Fraction):
        if value.denominator == 1:
            return str(value.numerator)
        try:
            return format(Decimal(value.numerator) / Decimal(value.denominator), "f").rstrip("0").rstrip(".")
        except InvalidOperation:
            return str(float(value))
    if isinstance(value, float):
        return repr(value) if not value.is_integer() else str(int(value))
    return str(value)


def calculate(expression: str) -> str:
    expression = expression.strip().replace("^", "**").replace("×", "*").replace("÷", "/")
    if len(expression) > 500:
        raise CalculatorError("expression too long (max 500 characters)")
    try:
        tree = ast.parse(expression, mode="eval")
    except SyntaxError as exc:
        raise CalculatorError(f"cannot parse {expression!r}: {exc.msg}") from None
    return _format(_eval(tree))


@register("calculator", "Exact arithmetic on an expression (+ - * / // % **, sqrt, log, round, ...)")
def make_calculator(ctx: ToolContext) -> SafeTool:
    def calculator(expression: str) -> str:
        """Evaluate an arithmetic expression exactly, e.g. '(17 * 3.5) / 2' or 'round(sqrt(2), 4)'."""
        try:
            return calculate(expression)
        except (CalculatorError, ArithmeticError, ValueError, TypeError) as exc:
            return f"Error: {exc}"

    return SafeTool(calculator, name="calculator", description=calculator.__doc__ or "")
