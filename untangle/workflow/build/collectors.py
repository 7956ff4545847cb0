"""Lists a loop over invokes fills with `.append` anywhere in its body (in branches, before a
`continue`, several of them): each Map iteration gives what it appended to each, as an object
of lists, and each list is the iterations' parts joined after the Map."""

from __future__ import annotations

import ast
from typing import TYPE_CHECKING

from untangle.workflow.build.ast_helpers import attr_name
from untangle.workflow.build.scope import (
    NOT_DATA,
    Fragment,
    Scope,
    Unsupported,
    Value,
    describe,
    to_expr,
)
from untangle.workflow.build.work import has_work
from untangle.workflow.ir import Arr, Expr, Lit, Obj, Op, Operator, Var

if TYPE_CHECKING:
    from untangle.workflow.build.builder import WorkflowBuilder

# what a loop body must not append to a collector inside: a nested loop (each of its rounds
# appends), a function (runs elsewhere), a `try` body (its except blocks see the locals from
# before the `try`)
_OPAQUE_BLOCKS = (
    ast.For,
    ast.AsyncFor,
    ast.While,
    ast.FunctionDef,
    ast.AsyncFunctionDef,
    ast.Lambda,
    ast.ClassDef,
    ast.ListComp,
    ast.SetComp,
    ast.DictComp,
    ast.GeneratorExp,
)


def appended_list(stmt: ast.stmt) -> tuple[str, ast.expr] | None:
    """`name.append(value)` as a statement: the list's name and the value."""
    return _list_call(stmt, "append")


def extended_list(stmt: ast.stmt) -> tuple[str, ast.expr] | None:
    """`name.extend(values)` as a statement: the list's name and the values."""
    return _list_call(stmt, "extend")


def _list_call(stmt: ast.stmt, method: str) -> tuple[str, ast.expr] | None:
    """`name.<method>(argument)` as a statement: the name and the one argument."""
    if (
        isinstance(stmt, ast.Expr)
        and isinstance(stmt.value, ast.Call)
        and attr_name(stmt.value.func) == method
        and isinstance(stmt.value.func, ast.Attribute)
        and isinstance(stmt.value.func.value, ast.Name)
        and len(stmt.value.args) == 1
        and not stmt.value.keywords
    ):
        return stmt.value.func.value.id, stmt.value.args[0]
    return None


def loop_collectors(body: list[ast.stmt], target: ast.expr, scope: Scope) -> list[str]:
    """The fresh lists (`[]` before the loop) the body only appends to, by `name.append(v)`
    statements outside nested loops, functions and `try` bodies, in order of first append."""
    appends: dict[str, int] = {}
    other: set[str] = set()
    targets = {n.id for n in ast.walk(target) if isinstance(n, ast.Name)}

    def visit(node: ast.AST, hidden: bool) -> None:
        if isinstance(node, ast.stmt):
            found = appended_list(node) or extended_list(node)
            if found is not None:
                name, value = found
                if hidden:
                    other.add(name)
                else:
                    appends[name] = appends.get(name, 0) + 1
                visit(value, hidden)
                return
        if isinstance(node, ast.Name):
            other.add(node.id)
        if isinstance(node, ast.Try):
            for stmt in node.body:
                visit(stmt, True)
            for part in (*node.handlers, *node.orelse, *node.finalbody):
                visit(part, hidden)
            return
        for child in ast.iter_child_nodes(node):
            visit(child, hidden or isinstance(node, _OPAQUE_BLOCKS))

    for stmt in body:
        visit(stmt, False)
    return [
        name
        for name in appends
        if name not in other and name not in targets and scope.env.get(name) == Arr(())
    ]


def transform_append(builder: WorkflowBuilder, stmt: ast.Call, scope: Scope) -> Fragment | None:
    """`name.append(value)` on a list the loop collects into (`Scope.collectors`): the list,
    a local of the iteration, is the value it held with `value` at its end (the work in
    `value` first). None: not such a list."""
    assert isinstance(stmt.func, ast.Attribute) and isinstance(stmt.func.value, ast.Name)
    name = stmt.func.value.id
    if name not in scope.collectors:
        return None
    extending = stmt.func.attr == "extend"
    value = stmt.args[0]
    if extending and isinstance(value, ast.GeneratorExp):
        # `failed.extend(x["key"] for x in batch)`: the generator's values, as a list
        value = ast.copy_location(ast.ListComp(value.elt, value.generators), value)
    fragment = Fragment(None, [])
    if has_work(builder, value, scope):
        fragment, value = builder.hoist(value, scope)
    element = builder.value(value, scope)
    if isinstance(element, NOT_DATA):
        verb = "extending" if extending else "appending"
        raise Unsupported(stmt.lineno, f"{verb} `{name}` with {describe(element)}")
    added = to_expr(element, stmt.lineno)
    current = scope.env.get(name)
    if isinstance(current, Arr) and not extending:
        scope.env[name] = Arr((*current.items, added))
    else:
        assert current is not None and not isinstance(current, NOT_DATA)
        part = added if extending else Arr((added,))
        scope.env[name] = Op(Operator.FLATTEN, (Arr((to_expr(current, stmt.lineno), part)),))
    return fragment


def collected(collectors: list[str], env: dict[str, Value], line: int) -> Obj:
    """What one iteration appended to each list, `{name: [...]}`."""
    return Obj(tuple((name, to_expr(env[name], line)) for name in collectors))


def joined(results: str, name: str, item: str) -> Expr:
    """The list `name` after the loop: each iteration's part, in order, joined."""
    part = f"{item}_part"
    return Op(
        Operator.FLATTEN,
        (
            Op(
                Operator.COMPREHENSION,
                (Var(results), Lit(part), Var(part, (name,)), Lit(True)),
            ),
        ),
    )
