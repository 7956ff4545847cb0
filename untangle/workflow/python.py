"""IR expression → Python expression: the body of a new single-purpose function that computes
what the target query language cannot (a `join`, a comprehension, `float()` in JSONPath).

The IR was read from Python, so each operation has a Python spelling with the same meaning;
`printed` names the free values (variables, the execution input, environment values) after the
parameters the function receives them in.
"""

from __future__ import annotations

from collections.abc import Iterator

from untangle.workflow.ir import COMPARISONS, Arr, Expr, Input, Lit, Obj, Op, PathPart, Var

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
        if expr.op == "env":
            yield _env_param(expr), expr
        elif expr.op == "comprehension":
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
    return _operation(expr)


def _operation(expr: Op) -> str:
    op, args = expr.op, expr.args
    text = [printed(a) for a in args] if op not in ("env", "comprehension") else []
    if op in COMPARISONS or op in ("+", "-", "*", "/"):
        return "(" + f" {op} ".join(text) + ")"
    if op in ("and", "or"):
        # the IR's and/or are conditions: Python's would return an operand
        return "bool(" + f" {op} ".join(text) + ")"
    simple = {
        "not": "(not {0})",
        "truthy": "bool({0})",
        "is_null": "({0} is None)",
        "count": "len({0})",
        "number": "float({0})",
        "int": "int({0})",
        "ceil": "int(-(-({0}) // 1))",
        "flatten": "[item for part in {0} for item in part]",
        "json_string": "json.dumps({0})",
        "json_parse": "json.loads({0})",
        "upper": "{0}.upper()",
        "lower": "{0}.lower()",
        "trim": "{0}.strip()",
        "join": "{1}.join({0})",
        "if": "({1} if {0} else {2})",
    }
    if op in simple:
        return simple[op].format(*text)
    if op == "concat":
        return (
            "(" + " + ".join(a if _is_text(e) else f"str({a})" for a, e in zip(text, args)) + ")"
            if args
            else "''"
        )
    if op == "env":
        return _env_param(expr)
    if op in ("default", "exists", "missing"):
        base, last = _split(args[0])
        if op == "default":
            if base is None:
                return text[0]
            return f"{base}.get({last!r}, {text[1]})"
        if base is None:
            return "True" if op == "exists" else "False"
        return f"({last!r} {'in' if op == 'exists' else 'not in'} {base})"
    if op == "comprehension":
        variable = _comprehension_var(expr)
        items, mapped, condition = (printed(args[0]), printed(args[2]), printed(args[3]))
        keep = "" if args[3] == Lit(True) else f" if {condition}"
        return f"[{mapped} for {variable} in {items}{keep}]"
    raise NotPrintable(f"operation {op}")


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
