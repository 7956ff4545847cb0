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
    if isinstance(expr, Op) and expr.op == Operator.IF:
        # `a or b` / `a and b` as values (`if(truthy(a), a, b)`): the condition again
        test, then, otherwise = expr.args
        if test in (truthy(then), truthy(Op(Operator.DEFAULT, (then, Lit(None))))):
            return _either(Operator.OR, test, truthy(otherwise))
        if test == truthy(otherwise):
            return _either(Operator.AND, test, truthy(then))
    if isinstance(expr, Op) and expr.op == Operator.FLATTEN and isinstance(expr.args[0], Arr):
        kept = [_nonempty_when(part) for part in expr.args[0].items]
        if all(k is not None for k in kept):  # `[x for x in FIXED if c(x)]`: some c holds
            return _either_all([k for k in kept if k is not None])
    if isinstance(expr, Var) and expr.kind in ("list", "dict"):
        return Op(Operator.GT, (count(expr), Lit(0)))
    return chosen_test(Operator.TRUTHY, expr) or Op(Operator.TRUTHY, (expr,))


def _nonempty_when(part: Expr) -> Expr | None:
    """When `part`, a list, is not empty: a condition, or None when not known that way."""
    if isinstance(part, Arr):
        return Lit(bool(part.items))
    if isinstance(part, Op) and part.op == Operator.IF:
        test, then, otherwise = part.args
        if isinstance(then, Arr) and then.items and otherwise == Arr(()):
            return test
    return None


def _either_all(tests: list[Expr]) -> Expr:
    if Lit(True) in tests:
        return Lit(True)
    tests = [t for t in tests if t != Lit(False)]
    if not tests:
        return Lit(False)
    return tests[0] if len(tests) == 1 else Op(Operator.OR, tuple(tests))


def _either(op: Operator, first: Expr, second: Expr) -> Expr:
    absorbing = Lit(op == Operator.OR)
    if first == absorbing or second == absorbing:
        return absorbing
    parts = [p for p in (first, second) if p != Lit(op != Operator.OR)]
    if len(parts) == 1:
        return parts[0]
    return Op(op, (*_flat(op, first), *_flat(op, second)))


def _leaf_test(test: Operator, leaf: Expr) -> bool | None:
    if isinstance(leaf, Lit):
        return leaf.value is None if test == Operator.IS_NULL else bool(leaf.value)
    if is_static(leaf) and test == Operator.IS_NULL:
        return False  # an environment variable is a string
    return None


def chosen_test(test: Operator, expr: Expr) -> Expr | None:
    """`is_null` / `truthy` of a choice among constants (`"a" if c else None`, a table lookup)
    as a condition on what chooses: `is_null(if(c1, "a", if(c2, "b", null)))` is
    `not c1 and not c2`. None when a branch is not a constant or a nested choice."""
    if not (isinstance(expr, Op) and expr.op == Operator.IF):
        return None
    condition, then, otherwise = expr.args
    first = _leaf_test(test, then)
    if first is None:
        return None
    rest: Expr | None = Lit(result) if (result := _leaf_test(test, otherwise)) is not None else None
    if rest is None:
        rest = chosen_test(test, otherwise)
    if rest is None:
        return None
    if isinstance(rest, Lit):
        if rest.value == first:
            return Lit(first)
        return condition if first else Op(Operator.NOT, (condition,))
    if first:
        return Op(Operator.OR, (condition, *_flat(Operator.OR, rest)))
    return Op(Operator.AND, (Op(Operator.NOT, (condition,)), *_flat(Operator.AND, rest)))


def _flat(op: Operator, expr: Expr) -> tuple[Expr, ...]:
    return expr.args if isinstance(expr, Op) and expr.op == op else (expr,)


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
