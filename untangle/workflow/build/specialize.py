"""Calls the planner knows (`json.loads`, `len`, `os.environ.get`, …): each translated
by a small function of its own, registered by name."""

from __future__ import annotations

import ast
import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from untangle.workflow.build.ast_helpers import dotted_name, source_text
from untangle.workflow.build.constant_fold import count, kind_of, truthy
from untangle.workflow.build.helpers import pure_inline
from untangle.workflow.build.scope import (
    NOT_DATA,
    Opaque,
    Response,
    Scope,
    Stream,
    Value,
    raw_response_field,
    to_expr,
)
from untangle.workflow.ir import (
    Arr,
    Expr,
    JsonTextNote,
    Lit,
    Obj,
    Op,
    Operator,
    Reason,
    Var,
    with_path,
)

if TYPE_CHECKING:
    from untangle.workflow.build.builder import WorkflowBuilder

Specializer = Callable[["WorkflowBuilder", ast.Call, Scope], "Value | None"]


@dataclass(frozen=True)
class _Registered:
    functions: tuple[str, ...]  # dotted names as written: `json.loads`, `len`
    methods: tuple[str, ...]  # `x.<method>(…)` on any receiver
    suffixes: tuple[str, ...]  # the last part of a dotted name: `as_completed`
    transform: Specializer

    def matches(self, dotted: str, method: str) -> bool:
        return (
            dotted in self.functions
            or method in self.methods
            or (bool(dotted) and dotted.rsplit(".", 1)[-1] in self.suffixes)
        )


# in the order they are tried; a specializer answers None to pass the call on
_REGISTRY: list[_Registered] = []


def specialize(
    *,
    functions: tuple[str, ...] = (),
    methods: tuple[str, ...] = (),
    suffixes: tuple[str, ...] = (),
) -> Callable[[Specializer], Specializer]:
    def register(transform: Specializer) -> Specializer:
        _REGISTRY.append(_Registered(functions, methods, suffixes, transform))
        return transform

    return register


def transform_call(builder: WorkflowBuilder, node: ast.Call, scope: Scope) -> Value:
    dotted = dotted_name(node.func)
    method = node.func.attr if isinstance(node.func, ast.Attribute) else ""
    for registered in _REGISTRY:
        if registered.matches(dotted, method):
            found = registered.transform(builder, node, scope)
            if found is not None:
                return found
    pure = pure_inline(builder, node, scope)
    if pure is not None:
        return pure
    return Opaque(node.lineno, f"`{source_text(node, scope)}` (local computation)")


def _argument(builder: WorkflowBuilder, node: ast.Call, scope: Scope, index: int = 0) -> Expr:
    return to_expr(builder.value(node.args[index], scope), node.lineno)


@specialize(functions=("json.loads", "json.load"))
def json_loads(builder: WorkflowBuilder, node: ast.Call, scope: Scope) -> Value | None:
    if len(node.args) != 1:
        return None
    argument = node.args[0]
    if (
        isinstance(argument, ast.BoolOp)
        and isinstance(argument.op, ast.Or)
        and len(argument.values) == 2
        and isinstance(argument.values[1], ast.Constant)
    ):
        first = builder.value(argument.values[0], scope)
        if isinstance(first, (Stream, Response)):
            return first.payload  # `… or "null"`: an empty payload reads as null
    inner = builder.value(argument, scope)
    parsed_again(builder, argument, scope)
    if isinstance(inner, (Stream, Response)):
        return inner.payload
    if not isinstance(inner, NOT_DATA):
        return _parsed(to_expr(inner, node.lineno))
    return Opaque(node.lineno, f"`{source_text(node, scope)}`")


def parsed_again(builder: WorkflowBuilder, node: ast.expr, scope: Scope) -> None:
    """`node`, a text the caller parses back (`Payload=json.dumps(order).encode()`, the callee
    gets the data; `json.loads(json.dumps(x))`): no JSON text is written there, so the note
    `json_dumps` made on that call goes."""
    while (
        isinstance(node, ast.Call)
        and isinstance(node.func, ast.Attribute)
        and node.func.attr == "encode"
    ):
        node = node.func.value
    if isinstance(node, ast.Call) and dotted_name(node.func) == "json.dumps":
        made = JsonTextNote(scope.path, node.lineno, source_text(node, scope))
        # the call may have been read more than once (an argument hoisted, a branch retried)
        builder.notes[:] = [n for n in builder.notes if n != made]


def _parsed(text: Expr) -> Expr:
    """json.loads(text): a choice of texts parsed in each branch (`body or "{}"`), a constant
    text parsed now."""
    if isinstance(text, Op) and text.op == Operator.JSON_STRING:
        return text.args[0]
    if isinstance(text, Op) and text.op == Operator.IF:
        test, then, otherwise = text.args
        return Op(Operator.IF, (test, _parsed(then), _parsed(otherwise)))
    if isinstance(text, Lit) and isinstance(text.value, str):
        try:
            return Lit(json.loads(text.value))
        except ValueError:
            pass
    return Op(Operator.JSON_PARSE, (text,))


@specialize(functions=("json.dumps",))
def json_dumps(builder: WorkflowBuilder, node: ast.Call, scope: Scope) -> Value | None:
    # `indent=`, `sort_keys=`, `separators=`, `ensure_ascii=`… change the text: the call runs
    # as Python (`default=` is never called on JSON data, the only data a step holds)
    if len(node.args) != 1 or any(k.arg != "default" for k in node.keywords):
        return None
    value = _argument(builder, node, scope)
    literal = _literal(value)
    if literal is not _NOT_LITERAL:
        # the exact text Python writes (`ensure_ascii`, `3.0`), whatever the query language
        return Lit(json.dumps(literal))
    builder.notes.append(JsonTextNote(scope.path, node.lineno, source_text(node, scope)))
    return Op(Operator.JSON_STRING, (value,))


_NOT_LITERAL = object()


def _literal(expr: Expr) -> object:
    """The Python value of an expression made only of literals, else _NOT_LITERAL."""
    if isinstance(expr, Lit):
        return expr.value
    if isinstance(expr, Arr):
        items = [_literal(i) for i in expr.items]
        return _NOT_LITERAL if any(i is _NOT_LITERAL for i in items) else items
    if isinstance(expr, Obj):
        values = {k: _literal(v) for k, v in expr.items}
        return _NOT_LITERAL if any(v is _NOT_LITERAL for v in values.values()) else values
    return _NOT_LITERAL


@specialize(methods=("join",))
def str_join(builder: WorkflowBuilder, node: ast.Call, scope: Scope) -> Value | None:
    """`", ".join(items)`"""
    assert isinstance(node.func, ast.Attribute)
    separator = node.func.value
    if not (
        isinstance(separator, ast.Constant)
        and isinstance(separator.value, str)
        and len(node.args) == 1
    ):
        return None
    return Op(Operator.JOIN, (_argument(builder, node, scope), Lit(separator.value)))


STRING_METHODS = {"upper": Operator.UPPER, "lower": Operator.LOWER, "strip": Operator.TRIM}


@specialize(methods=tuple(STRING_METHODS))
def str_method(builder: WorkflowBuilder, node: ast.Call, scope: Scope) -> Value | None:
    """`text.upper()`, `.lower()`, `.strip()`"""
    assert isinstance(node.func, ast.Attribute)
    if node.args:
        return None
    text = builder.value(node.func.value, scope)
    if isinstance(text, NOT_DATA):
        return None
    return Op(STRING_METHODS[node.func.attr], (text,))


@specialize(methods=("read", "decode", "encode"))
def payload_read(builder: WorkflowBuilder, node: ast.Call, scope: Scope) -> Value | None:
    """`response["Payload"].read().decode()`: the payload itself."""
    assert isinstance(node.func, ast.Attribute)
    receiver = builder.value(node.func.value, scope)
    return receiver if isinstance(receiver, (Stream, Op)) else None


@specialize(methods=("result",))
def future_result(builder: WorkflowBuilder, node: ast.Call, scope: Scope) -> Value | None:
    """A future of pool.submit is modelled by its result: JSON data has no .result()."""
    assert isinstance(node.func, ast.Attribute)
    receiver = builder.value(node.func.value, scope)
    if node.args or isinstance(receiver, NOT_DATA):
        return None
    return receiver


@specialize(methods=("get",))
def dict_get(builder: WorkflowBuilder, node: ast.Call, scope: Scope) -> Value | None:
    """`data.get("key", default)`"""
    assert isinstance(node.func, ast.Attribute)
    receiver = builder.value(node.func.value, scope)
    if isinstance(receiver, Response):
        field = node.args[0] if node.args else None
        return raw_response_field(
            node.lineno, field.value if isinstance(field, ast.Constant) else None
        )
    if isinstance(receiver, NOT_DATA) or not node.args:
        return None
    key = builder.value(node.args[0], scope)
    entries = _constant_table(receiver)
    if entries is not None:
        table = _table_lookup(builder, node, scope, entries, key)
        if table is not None:
            return table
    if not (isinstance(key, Lit) and isinstance(key.value, str)):
        return None
    if isinstance(receiver, (Opaque, Stream)):
        return None
    default = _argument(builder, node, scope, 1) if len(node.args) > 1 else Lit(None)
    return _get(to_expr(receiver, node.lineno), key.value, default)


def _get(receiver: Expr, key: str, default: Expr) -> Expr | None:
    """`receiver.get(key, default)`: through a choice of dicts (`params or {}`) and constants."""
    if isinstance(receiver, Op) and receiver.op == Operator.IF:
        test, then, otherwise = receiver.args
        first, second = _get(then, key, default), _get(otherwise, key, default)
        if first is None or second is None:
            return None
        return first if first == second else Op(Operator.IF, (test, first, second))
    if isinstance(receiver, Lit) and isinstance(receiver.value, dict):
        return Lit(receiver.value[key]) if key in receiver.value else default
    if isinstance(receiver, Obj):
        return next((v for k, v in receiver.items if k == key), default)
    found = with_path(receiver, key)
    if found is None:
        return None
    return Op(Operator.DEFAULT, (found, default))


# a constant table looked up with a key known only at run time is a chain of conditionals
# (`ROUTES.get(action)`: `"orders-create" if action == "create" else … else None`) up to this size
TABLE_SIZE = 8


def _constant_table(receiver: Value) -> dict[str, object] | None:
    """A dict whose values are fixed for a deployment: literals, and environment values (a
    routing table of function names from the template, `os.environ["ON_CREATED_FUNCTION"]`)."""
    if isinstance(receiver, Lit) and isinstance(receiver.value, dict):
        return dict(receiver.value)
    if isinstance(receiver, Obj) and all(
        isinstance(v, Lit) or _environment_value(v) for _, v in receiver.items
    ):
        return {k: v.value if isinstance(v, Lit) else v for k, v in receiver.items}
    return None


def _environment_value(value: Expr) -> bool:
    return (
        isinstance(value, Op)
        and value.op is Operator.ENV
        and len(value.args) == 1
        and isinstance(value.args[0], Lit)
    )


def _table_lookup(
    builder: WorkflowBuilder, node: ast.Call, scope: Scope, table: dict[str, object], key: Value
) -> Value | None:
    """`TABLE.get(key, default)` of a constant dict of string keys and a key the workflow
    computes: each entry tested in order (keys are distinct, so the order does not matter)."""
    if isinstance(key, (*NOT_DATA, Lit)) or not table or len(table) > TABLE_SIZE:
        return None
    if not all(isinstance(k, str) for k in table):
        return None
    default = _argument(builder, node, scope, 1) if len(node.args) > 1 else Lit(None)
    if isinstance(default, NOT_DATA) or len(node.args) > 2:
        return None
    result: Expr = to_expr(default, node.lineno)
    for k, v in reversed(list(table.items())):
        entry = v if isinstance(v, Op) else Lit(v)
        result = Op(
            Operator.IF, (Op(Operator.EQ, (to_expr(key, node.lineno), Lit(k))), entry, result)
        )
    return result


@specialize(functions=("os.getenv", "os.environ.get"))
def environment(builder: WorkflowBuilder, node: ast.Call, scope: Scope) -> Value | None:
    if not node.args:
        return None
    key = builder.value(node.args[0], scope)
    if not isinstance(key, Lit):
        return None
    fallback = builder.value(node.args[1], scope) if len(node.args) > 1 else None
    if isinstance(fallback, Lit) and fallback.value is not None:
        builder.env_defaults.setdefault(str(key.value), str(fallback.value))
    if len(node.args) > 1:
        builder.notes.append(
            Reason(
                scope.path,
                node.lineno,
                f"the default of environment variable {key.value} is dropped: "
                "the template must set it",
            )
        )
    return Op(Operator.ENV, (key,))


@specialize(functions=("str",))
def builtin_str(builder: WorkflowBuilder, node: ast.Call, scope: Scope) -> Value | None:
    if len(node.args) != 1:
        return None
    return Op(Operator.CONCAT, (_argument(builder, node, scope),))


@specialize(functions=("len",))
def builtin_len(builder: WorkflowBuilder, node: ast.Call, scope: Scope) -> Value | None:
    if len(node.args) != 1:
        return None
    argument = _argument(builder, node, scope)
    return count(argument) if isinstance(argument, Var) else Op(Operator.COUNT, (argument,))


@specialize(suffixes=("as_completed",))
def as_completed(builder: WorkflowBuilder, node: ast.Call, scope: Scope) -> Value | None:
    if len(node.args) != 1:
        return None
    futures = builder.value(node.args[0], scope)
    if isinstance(futures, NOT_DATA):
        return None
    builder.notes.append(
        Reason(
            scope.path,
            node.lineno,
            "as_completed: the Map gives the results in the order of the items, "
            "not the order they finished in",
        )
    )
    return futures


@specialize(functions=("asyncio.run", "loop.run_until_complete"))
def run_coroutine(builder: WorkflowBuilder, node: ast.Call, scope: Scope) -> Value | None:
    if len(node.args) != 1:
        return None
    return builder.value(node.args[0], scope)


@specialize(functions=("float", "int"))
def builtin_number(builder: WorkflowBuilder, node: ast.Call, scope: Scope) -> Value | None:
    if len(node.args) != 1:
        return None
    return Op(Operator.NUMBER, (_argument(builder, node, scope),))


@specialize(functions=("bool",))
def builtin_bool(builder: WorkflowBuilder, node: ast.Call, scope: Scope) -> Value | None:
    if len(node.args) != 1:
        return None
    return truthy(_argument(builder, node, scope))


@specialize(functions=("min", "max"))
def builtin_min_max(builder: WorkflowBuilder, node: ast.Call, scope: Scope) -> Value | None:
    """`min(a, b)` of numbers: one of them a number is enough (Python raises on anything
    else). A single iterable, or no number among them, is local computation."""
    if len(node.args) < 2 or node.keywords:
        return None
    values = [_argument(builder, node, scope, index) for index in range(len(node.args))]
    kinds = {kind_of(v) for v in values} - {None}
    if kinds != {"number"}:
        return None
    assert isinstance(node.func, ast.Name)
    return Op(Operator.MIN if node.func.id == "min" else Operator.MAX, tuple(values))


@specialize(methods=("endswith", "startswith"))
def str_ends(builder: WorkflowBuilder, node: ast.Call, scope: Scope) -> Value | None:
    """`key.endswith(".jpg")`, or a tuple of suffixes (any of them)."""
    assert isinstance(node.func, ast.Attribute)
    if len(node.args) != 1 or node.keywords:
        return None
    text = builder.value(node.func.value, scope)
    parts = builder.value(node.args[0], scope)
    if isinstance(text, NOT_DATA):
        return None
    candidates = parts.items if isinstance(parts, Arr) else (parts,)
    options = [o for o in candidates if isinstance(o, Lit) and isinstance(o.value, str)]
    if not options or len(options) != len(candidates):
        return None
    operator = Operator.ENDSWITH if node.func.attr == "endswith" else Operator.STARTSWITH
    tests = tuple(Op(operator, (to_expr(text, node.lineno), option)) for option in options)
    return tests[0] if len(tests) == 1 else Op(Operator.OR, tests)
