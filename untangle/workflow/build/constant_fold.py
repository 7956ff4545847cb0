"""Constant folding and truth of data expressions (Python semantics on literals)."""

from __future__ import annotations

import ast
import operator
from collections.abc import Callable
from typing import TYPE_CHECKING

from untangle.analysis.values import (
    ConstV,
    Env,
)
from untangle.workflow.build.ast_helpers import source_text
from untangle.workflow.build.scope import Opaque, Scope, Value
from untangle.workflow.ir import (
    BOOLEAN_OPERATORS,
    Arr,
    Expr,
    Lit,
    Op,
    Operator,
    Var,
)

if TYPE_CHECKING:
    pass

ARITHMETIC: dict[Operator, Callable[[float, float], object]] = {
    Operator.LT: operator.lt,
    Operator.LE: operator.le,
    Operator.GT: operator.gt,
    Operator.GE: operator.ge,
    Operator.ADD: operator.add,
    Operator.SUB: operator.sub,
    Operator.MUL: operator.mul,
    Operator.DIV: operator.truediv,
    Operator.POW: operator.pow,
}


def constant_of(values: frozenset[object], node: ast.expr, scope: Scope) -> Value:
    if len(values) == 1:
        only = next(iter(values))
        if isinstance(only, ConstV):
            return Lit(only.value)
        if isinstance(only, Env):
            return Op(Operator.ENV, (Lit(only.name),))
    return Opaque(node.lineno, f"`{source_text(node, scope)}` (not a constant)")


def is_static(expr: Expr) -> bool:
    """A literal, or an environment variable (a deploy-time substitution)."""
    if isinstance(expr, Lit):
        return isinstance(expr.value, (str, int, float, bool))
    return isinstance(expr, Op) and expr.op == Operator.ENV and isinstance(expr.args[0], Lit)


def count(expr: Expr) -> Expr:
    """`len(expr)`: of a dict (a new function's output), its number of keys."""
    if isinstance(expr, Var) and expr.kind == "dict":
        return Op(Operator.COUNT, (Op(Operator.ITEMS, (expr,)),))
    return Op(Operator.COUNT, (expr,))


def truthy(expr: Expr) -> Expr:
    if isinstance(expr, Op) and expr.op in BOOLEAN_OPERATORS:
        return expr
    if isinstance(expr, Lit):
        return Lit(bool(expr.value))
    if isinstance(expr, Var) and expr.kind in ("list", "dict"):
        return Op(Operator.GT, (count(expr), Lit(0)))
    return Op(Operator.TRUTHY, (expr,))


def constant_truth(expr: Expr) -> bool | None:
    folded = fold(expr) if isinstance(expr, Op) else expr
    if isinstance(folded, Lit):
        return bool(folded.value)
    return None


def fold(expr: Expr) -> Expr:
    if not isinstance(expr, Op) or not all(isinstance(a, Lit) for a in expr.args):
        return expr
    values = [a.value for a in expr.args if isinstance(a, Lit)]
    try:
        if expr.op == Operator.EQ:
            return Lit(values[0] == values[1])
        if expr.op == Operator.NE:
            return Lit(values[0] != values[1])
        if expr.op in (
            Operator.LT,
            Operator.LE,
            Operator.GT,
            Operator.GE,
            Operator.ADD,
            Operator.SUB,
            Operator.MUL,
            Operator.DIV,
            Operator.POW,
        ):
            a, b = values
            if isinstance(a, (int, float)) and isinstance(b, (int, float)):
                result = ARITHMETIC[expr.op](a, b)
                return Lit(result)
            if isinstance(a, str) and isinstance(b, str) and expr.op == Operator.ADD:
                return Lit(a + b)
    except (ZeroDivisionError, OverflowError, TypeError):
        return expr
    return expr


# what a data expression is, whatever the execution's data, when that can be proven
TEXT_OPERATORS = (
    Operator.CONCAT,
    Operator.UPPER,
    Operator.LOWER,
    Operator.TRIM,
    Operator.JOIN,
    Operator.JSON_STRING,
    Operator.ENV,  # environment variables are strings
)
NUMBER_OPERATORS = (
    Operator.NUMBER,
    Operator.COUNT,
    Operator.SUB,
    Operator.MUL,
    Operator.DIV,
    Operator.ADD,  # only ever made on numbers: text is concatenated (`typed_binary`)
)


def kind_of(expr: Expr) -> str | None:
    """ "text", "number", "list", or None when the data decides."""
    if isinstance(expr, Lit):
        if isinstance(expr.value, str):
            return "text"
        return "number" if is_number(expr.value) else None
    if isinstance(expr, Arr) or (isinstance(expr, Var) and expr.kind == "list"):
        return "list"
    if isinstance(expr, Op) and expr.op in TEXT_OPERATORS:
        return "text"
    if isinstance(expr, Op) and expr.op in NUMBER_OPERATORS:
        return "number"
    return None


def typed_binary(op: Operator, left: Expr, right: Expr) -> Expr | None:
    """`left op right` with the operator Python would apply, or None when the types the data
    gives could make Python do something else (`+` concatenates text and lists, `*` repeats
    them): then the computation is extracted, not guessed.

    One side's type is enough where Python succeeds only when the other side has the same:
    `name + ".out"` is text (else TypeError), `count + 1` a number."""
    kinds = {kind_of(left), kind_of(right)} - {None}
    if op is Operator.ADD:
        if kinds == {"text"}:
            return Op(Operator.CONCAT, (left, right))
        if kinds == {"number"}:
            return Op(Operator.ADD, (left, right))
        if kinds == {"list"}:  # `seen + [x]`: the two lists joined
            return Op(Operator.FLATTEN, (Arr((left, right)),))
        return None
    if op is Operator.MUL:
        both = kind_of(left) == kind_of(right) == "number"
        return Op(op, (left, right)) if both else None
    if kinds <= {"number"}:  # - / ** on anything but numbers raise in Python
        return Op(op, (left, right))
    return None


def is_number(value: object) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)
