"""Which values a region of statements makes are no JSON data (an SDK response, an open file,
a generator, an object of a class, a Decimal, a datetime, bytes, a set): they cannot go from
one state to the next. And which are lists or dicts, whose truth and length a state tests."""

from __future__ import annotations

import ast
from typing import TYPE_CHECKING

from untangle.analysis.values import Instance
from untangle.facts.model import Local as LocalSym
from untangle.workflow.build.ast_helpers import dotted_name, source_text
from untangle.workflow.build.extraction import HANDLE_MAKERS, sdk_response
from untangle.workflow.build.scope import Scope
from untangle.workflow.build.work import does_work
from untangle.workflow.ir import Arr, Obj

if TYPE_CHECKING:
    from untangle.workflow.build.builder import WorkflowBuilder


MAKERS = {"list": ("list", "sorted"), "dict": ("dict",)}
LITERALS: dict[str, tuple[type[ast.expr], ...]] = {
    "list": (ast.List, ast.ListComp),
    "dict": (ast.Dict, ast.DictComp),
}


def kind_of(stmts: list[ast.stmt], name: str, scope: Scope) -> str:
    """ "list" or "dict" when every value the statements bind to `name` is one (or they only
    change in place the one it held before); else ""."""
    values = [
        sub.value
        for stmt in stmts
        for sub in ast.walk(stmt)
        if isinstance(sub, (ast.Assign, ast.AnnAssign))
        and sub.value is not None
        and any(
            isinstance(t, ast.Name) and t.id == name
            for t in (sub.targets if isinstance(sub, ast.Assign) else [sub.target])
        )
    ]
    for kind, literals in LITERALS.items():
        if not values:
            before = scope.env.get(name)
            if _stores(stmts, name) == 0 and isinstance(before, Arr if kind == "list" else Obj):
                return kind
            continue
        if _stores(stmts, name) == len(values) and all(
            isinstance(v, literals)
            or (isinstance(v, ast.Call) and dotted_name(v.func) in MAKERS[kind])
            for v in values
        ):
            return kind
    return ""


def _stores(stmts: list[ast.stmt], name: str) -> int:
    return sum(
        1
        for stmt in stmts
        for sub in ast.walk(stmt)
        if isinstance(sub, ast.Name) and sub.id == name and isinstance(sub.ctx, ast.Store)
    )


def binds_not_json(builder: WorkflowBuilder, node: ast.stmt, scope: Scope) -> bool:
    """`node` binds a name to a value that is not JSON data and no object the workflow works
    through (a client, an object whose methods invoke): an open file, a generator, a set, an
    object of a class that only computes."""
    if not isinstance(node, ast.Assign):
        return False
    for target in node.targets:
        if not isinstance(target, ast.Name):
            continue
        what = _not_json_value(builder, node.value, target.id, scope) or (
            not_json_types([node]).get(target.id)
        )
        if what is None or "client" in what:
            continue
        called = dotted_name(node.value.func) if isinstance(node.value, ast.Call) else ""
        if "object of" in what and any(
            qualname.rsplit(".", 2)[-2:-1] == [called.rsplit(".", 1)[-1]]
            and does_work(builder, qualname)
            for qualname in builder.program.functions
        ):
            continue  # a wrapper whose methods invoke: the workflow goes through it
        return True
    return False


def sdk_binding(
    builder: WorkflowBuilder, stmts: list[ast.stmt], name: str, scope: Scope
) -> ast.Call | None:
    """The AWS SDK call whose whole response the statements bind to `name`."""
    for stmt in stmts:
        for sub in ast.walk(stmt):
            if (
                isinstance(sub, ast.Assign)
                and any(isinstance(t, ast.Name) and t.id == name for t in sub.targets)
                and isinstance(sub.value, ast.Call)
                and sdk_response(builder, sub.value, scope)
            ):
                return sub.value
    return None


def not_json(
    builder: WorkflowBuilder, stmts: list[ast.stmt], name: str, scope: Scope
) -> str | None:
    """What `name` holds when the statements bind it to something that is not JSON data."""
    for stmt in stmts:
        for sub in ast.walk(stmt):
            if (
                isinstance(sub, ast.withitem)
                and isinstance(sub.optional_vars, ast.Name)
                and sub.optional_vars.id == name
            ):
                return f"`{source_text(sub.context_expr, scope)}`, a context manager"
            if not isinstance(sub, ast.Assign) or not any(
                isinstance(t, ast.Name) and t.id == name for t in sub.targets
            ):
                continue
            value = sub.value
            what = _not_json_value(builder, value, name, scope)
            if what is not None:
                return what
    return None


def _not_json_value(
    builder: WorkflowBuilder, value: ast.expr, name: str, scope: Scope
) -> str | None:
    text = source_text(value, scope)
    if isinstance(value, (ast.Set, ast.SetComp)) or (
        isinstance(value, ast.Call) and dotted_name(value.func) in ("set", "frozenset")
    ):
        return f"`{text}`, a set"
    if isinstance(value, ast.ListComp):
        inner = _not_json_value(builder, value.elt, name, scope)
        return f"`{text}`, a list of {inner.split(', ', 1)[-1]}s" if inner else None
    if isinstance(value, ast.List):
        for item in value.elts:
            inner = _not_json_value(builder, item, name, scope)
            if inner is not None:
                return f"`{text}`, a list holding {inner.split(', ', 1)[-1]}"
        return None
    if isinstance(value, (ast.GeneratorExp, ast.Lambda)):
        return f"`{text}`, a generator" if isinstance(value, ast.GeneratorExp) else "a lambda"
    base = value
    while isinstance(base, ast.Subscript):
        base = base.value
    if sdk_response(builder, base, scope):
        return f"the response of `{source_text(base, scope)}`, with datetimes and streams"
    if not isinstance(value, ast.Call):
        return None
    called = dotted_name(value.func)
    if called == "open":
        return f"`{text}`, an open file"
    if isinstance(value.func, ast.Attribute) and value.func.attr == "read" and not value.args:
        return f"`{text}`, bytes read from a stream"
    if called.rsplit(".", 1)[-1] in HANDLE_MAKERS or called in ("boto3.client", "boto3.resource"):
        return f"`{text}`, a client or service object"
    qualname = builder.function_at(scope.path, value.lineno)
    if qualname is not None and any(
        isinstance(v, Instance) for v in builder.program.values(LocalSym(qualname, name))
    ):
        return f"`{text}`, an object of a class"
    tree = builder.sources(scope.path).tree
    classes = {n.name for n in ast.walk(tree) if isinstance(n, ast.ClassDef)}
    if called in classes:
        return f"`{text}`, an object of the class `{called}`"
    return None


# values of these types are no JSON: a Lambda cannot return them (Runtime.MarshalError)
NOT_JSON_MAKERS = {
    "Decimal": "a Decimal",
    "decimal.Decimal": "a Decimal",
    "datetime": "a datetime",
    "datetime.datetime": "a datetime",
    "datetime.date": "a date",
    "date": "a date",
    "datetime.now": "a datetime",
    "datetime.datetime.now": "a datetime",
    "datetime.datetime.utcnow": "a datetime",
    "datetime.utcnow": "a datetime",
    "datetime.fromisoformat": "a datetime",
    "datetime.datetime.fromisoformat": "a datetime",
    "date.today": "a date",
    "datetime.date.today": "a date",
    "timedelta": "a timedelta",
    "datetime.timedelta": "a timedelta",
    "bytes": "bytes",
    "bytearray": "bytes",
}
NOT_JSON_METHODS = {"quantize": "a Decimal", "encode": "bytes", "to_integral_value": "a Decimal"}
JSON_MAKERS = frozenset(("str", "int", "float", "bool", "len", "json.dumps", "repr", "format"))


def not_json_types(stmts: list[ast.stmt]) -> dict[str, str]:
    """The names the statements bind to a Decimal, a datetime, bytes (what their values are
    made of says so), in order: `tax = (subtotal * RATE).quantize(CENT)` after `subtotal =
    sum(…, Decimal("0"))`."""
    found: dict[str, str] = {}

    def kind(node: ast.expr | None) -> str | None:
        if node is None:
            return None
        if isinstance(node, ast.Name):
            return found.get(node.id)
        if isinstance(node, ast.BinOp):
            return kind(node.left) or kind(node.right)
        if isinstance(node, ast.UnaryOp):
            return kind(node.operand)
        if isinstance(node, ast.IfExp):
            return kind(node.body) or kind(node.orelse)
        if isinstance(node, (ast.List, ast.Tuple)):
            inner = next((k for k in map(kind, node.elts) if k), None)
            return f"a list holding {inner}" if inner else None
        if isinstance(node, ast.ListComp):
            inner = kind(node.elt)
            return f"a list of {inner.removeprefix('a ')}s" if inner else None
        if isinstance(node, ast.Dict):
            inner = next((k for k in map(kind, node.values) if k), None)
            return f"a dict holding {inner}" if inner else None
        if not isinstance(node, ast.Call):
            return None
        called = dotted_name(node.func)
        if called in JSON_MAKERS:
            return None
        if called in NOT_JSON_MAKERS:
            return NOT_JSON_MAKERS[called]
        if isinstance(node.func, ast.Attribute):
            if node.func.attr in NOT_JSON_METHODS:
                return NOT_JSON_METHODS[node.func.attr]
            if node.func.attr in ("copy", "__add__"):
                return kind(node.func.value)
        if called in ("sum", "max", "min", "abs", "round") and node.args:
            if called == "round" and len(node.args) == 1:
                return None  # an int
            return next((k for k in map(kind, node.args) if k), None) or (
                kind(node.args[0].elt)
                if isinstance(node.args[0], (ast.GeneratorExp, ast.ListComp))
                else None
            )
        return None

    for stmt in stmts:
        for sub in ast.walk(stmt):
            if isinstance(sub, ast.Assign):
                what = kind(sub.value)
                for target in sub.targets:
                    if isinstance(target, ast.Name):
                        if what:
                            found[target.id] = what
                        else:
                            found.pop(target.id, None)
            elif isinstance(sub, ast.AugAssign) and isinstance(sub.target, ast.Name):
                what = kind(sub.value)
                if what:
                    found[sub.target.id] = what
    return found
