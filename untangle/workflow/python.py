"""IR expression → Python expression: the body of a new single-purpose function that computes
what the target query language cannot (a `join`, a comprehension, `float()` in JSONPath).

The IR was read from Python, so each operation has a Python spelling with the same meaning;
`printed` names the free values (variables, the execution input, environment values) after the
parameters the function receives them in.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import assert_never

from untangle.workflow.ir import Arr, Expr, Input, Lit, Obj, Op, Operator, PathPart, Result, Var

EXECUTION_INPUT = "execution_input"


class NotPrintable(ValueError):
    """An IR operation with no Python spelling here."""


def free_values(expr: Expr, bound: frozenset[str] = frozenset()) -> Iterator[tuple[str, Expr]]:
    """(parameter name, expression to pass) for every value `expr` reads from the workflow:
    whole variables, the whole execution input, environment values."""
    if isinstance(expr, Var):
        if expr.name not in bound:
            yield expr.name, Var(expr.name)
    elif isinstance(expr, Input):
        yield EXECUTION_INPUT, Input(())
    elif isinstance(expr, Obj):
        for _, value in expr.items:
            yield from free_values(value, bound)
    elif isinstance(expr, Arr):
        for item in expr.items:
            yield from free_values(item, bound)
    elif isinstance(expr, Op):
        if expr.op == Operator.ENV:
            yield _env_param(expr), expr
        elif expr.op == Operator.COMPREHENSION:
            inner = bound | {_comprehension_var(expr)}
            yield from free_values(expr.args[0], bound)
            yield from free_values(expr.args[2], inner)
            yield from free_values(expr.args[3], inner)
        else:
            for arg in expr.args:
                yield from free_values(arg, bound)


def printed(expr: Expr) -> str:
    """`expr` in Python, reading free values from the parameters `free_values` names."""
    if isinstance(expr, Var):
        return expr.name + _subscripts(expr.path)
    if isinstance(expr, Input):
        return EXECUTION_INPUT + _subscripts(expr.path)
    if isinstance(expr, Lit):
        return repr(expr.value)
    if isinstance(expr, Obj):
        return "{" + ", ".join(f"{key!r}: {printed(value)}" for key, value in expr.items) + "}"
    if isinstance(expr, Arr):
        return "[" + ", ".join(printed(item) for item in expr.items) + "]"
    if isinstance(expr, Result):
        # only in a state's output, which no function computes
        raise NotPrintable("a state's result")
    return _operation(expr)


def _operation(expr: Op) -> str:
    op, args = expr.op, expr.args
    text = [printed(a) for a in args] if op not in (Operator.ENV, Operator.COMPREHENSION) else []
    match op:
        case (
            Operator.EQ
            | Operator.NE
            | Operator.LT
            | Operator.LE
            | Operator.GT
            | Operator.GE
            | Operator.ADD
            | Operator.SUB
            | Operator.MUL
            | Operator.DIV
        ):
            return "(" + f" {op} ".join(text) + ")"
        case Operator.AND | Operator.OR:
            # the IR's and/or are conditions: Python's would return an operand
            return "bool(" + f" {op} ".join(text) + ")"
        case Operator.NOT:
            return f"(not {text[0]})"
        case Operator.TRUTHY:
            return f"bool({text[0]})"
        case Operator.IS_NULL:
            return f"({text[0]} is None)"
        case Operator.COUNT:
            return f"len({text[0]})"
        case Operator.NUMBER:
            return f"float({text[0]})"
        case Operator.CEIL:
            return f"int(-(-({text[0]}) // 1))"
        case Operator.FLATTEN:
            return f"[item for part in {text[0]} for item in part]"
        case Operator.MIN | Operator.MAX:
            return f"{op}({', '.join(text)})"
        case Operator.ENDSWITH | Operator.STARTSWITH:
            return f"{text[0]}.{op}({text[1]})"
        case Operator.ITEMS:
            return f"[[key, value] for key, value in {text[0]}.items()]"
        case Operator.ENUMERATE:
            return f"[[index, value] for index, value in enumerate({text[0]})]"
        case Operator.CHUNKS:
            chunk = f"{text[0]}[i : i + {text[1]}]"
            if len(text) > 2:
                chunk = f"[i, {chunk}]"
            return f"[{chunk} for i in range(0, len({text[0]}), {text[1]})]"
        case Operator.ZIP:
            return f"[list(pair) for pair in zip({', '.join(text)})]"
        case Operator.JSON_STRING:
            return f"json.dumps({text[0]})"
        case Operator.JSON_PARSE:
            return f"json.loads({text[0]})"
        case Operator.UPPER:
            return f"{text[0]}.upper()"
        case Operator.LOWER:
            return f"{text[0]}.lower()"
        case Operator.TRIM:
            return f"{text[0]}.strip()"
        case Operator.JOIN:
            return f"{text[1]}.join({text[0]})"
        case Operator.IF:
            return f"({text[1]} if {text[0]} else {text[2]})"
        case Operator.CONCAT:
            return (
                "("
                + " + ".join(a if _is_text(e) else f"str({a})" for a, e in zip(text, args))
                + ")"
                if args
                else "''"
            )
        case Operator.ENV:
            return _env_param(expr)
        case Operator.DEFAULT | Operator.EXISTS:
            base, last = _split(args[0])
            if op is Operator.DEFAULT:
                if base is None:
                    return text[0]
                return f"{base}.get({last!r}, {text[1]})"
            if base is None:
                return "True"
            return f"({last!r} in {base})"
        case Operator.COMPREHENSION:
            variable = _comprehension_var(expr)
            items, mapped, condition = (printed(args[0]), printed(args[2]), printed(args[3]))
            keep = "" if args[3] == Lit(True) else f" if {condition}"
            return f"[{mapped} for {variable} in {items}{keep}]"
        case Operator.POW:
            # folded or refused by the builder: never in a workflow
            raise NotPrintable(f"operation {op}")
        case _:
            assert_never(op)


def _is_text(expr: Expr) -> bool:
    return isinstance(expr, Lit) and isinstance(expr.value, str)


def _subscripts(path: tuple[PathPart, ...]) -> str:
    return "".join(f"[{part!r}]" for part in path)


def _split(expr: Expr) -> tuple[str | None, PathPart | None]:
    """`a["b"]["c"]` → ('a["b"]', "c"); (None, None) for a value with no path."""
    if isinstance(expr, (Var, Input)) and expr.path:
        parent = Var(expr.name, expr.path[:-1]) if isinstance(expr, Var) else Input(expr.path[:-1])
        return printed(parent), expr.path[-1]
    return None, None


def _env_param(expr: Op) -> str:
    name = expr.args[0].value if expr.args and isinstance(expr.args[0], Lit) else "env"
    return "env_" + "".join(c if c.isalnum() else "_" for c in str(name)).lower()


def _comprehension_var(expr: Op) -> str:
    variable = expr.args[1]
    return str(variable.value) if isinstance(variable, Lit) else "item"
