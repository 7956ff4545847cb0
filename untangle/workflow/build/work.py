"""Which calls do work: an invoke, a sleep, or a helper of the tree that invokes or sleeps."""

from __future__ import annotations

import ast
from typing import TYPE_CHECKING

from untangle.workflow.build.ast_helpers import attr_name, column_of, dotted_name
from untangle.workflow.build.scope import Scope

if TYPE_CHECKING:
    from untangle.workflow.build.builder import WorkflowBuilder


def has_work(builder: WorkflowBuilder, node: ast.expr, scope: Scope) -> bool:
    return work_call(builder, node, scope) is not None


def work_call(builder: WorkflowBuilder, node: ast.expr, scope: Scope) -> tuple[str, object] | None:
    """The call inside `node` that is an invoke, a sleep, or a call to a helper that invokes
    or sleeps (outermost first)."""
    for sub in ast.walk(node):
        if isinstance(sub, ast.ListComp) and any(
            isinstance(inner, ast.Call) and direct_work(builder, inner, scope)
            for inner in ast.walk(sub)
        ):
            return "map", sub
        if not isinstance(sub, ast.Call):
            continue
        if attr_name(sub.func) == "map" and len(sub.args) == 2 and handed(builder, sub, scope):
            return "map", sub
        if dotted_name(sub.func) in ("asyncio.gather", "gather") and any(
            isinstance(a, ast.Call) and direct_work(builder, a, scope) for a in sub.args
        ):
            return "gather", sub
        key = (scope.path, sub.lineno, column_of(sub, scope))
        if key in builder.invokes:
            return "invoke", builder.invokes[key]
        if key in builder.sleeps:
            return "sleep", builder.sleeps[key]
        callee = callee_of(builder, sub, scope)
        if callee is not None:
            return "call", (callee, sub)
    return None


def direct_work(builder: WorkflowBuilder, call: ast.Call, scope: Scope) -> bool:
    key = (scope.path, call.lineno, column_of(call, scope))
    return (
        key in builder.invokes
        or key in builder.sleeps
        or callee_of(builder, call, scope) is not None
    )


def handed(builder: WorkflowBuilder, call: ast.Call, scope: Scope) -> str | None:
    """The function handed to `pool.map(fn, items)` when it invokes."""
    caller = builder.function_at(scope.path, call.lineno)
    for edge in builder.program.edges_from(caller) if caller else ():
        if (
            edge.handed
            and edge.site.span.line == call.lineno
            and edge.site.span.column == column_of(call, scope)
            and edge.callee in builder.program.invoking
        ):
            return edge.callee
    return None


def callee_of(builder: WorkflowBuilder, call: ast.Call, scope: Scope) -> str | None:
    caller = builder.function_at(scope.path, call.lineno)
    if caller is None:
        return None
    for edge in builder.program.edges_from(caller):
        if (
            edge.site.span.line == call.lineno
            and edge.site.span.column == column_of(call, scope)
            and (edge.callee in builder.program.invoking or sleeps_in(builder, edge.callee))
        ):
            return edge.callee
    return None


def sleeps_in(builder: WorkflowBuilder, qualname: str) -> bool:
    return any(s.function == qualname for s in builder.program.sleeps)


def has_work_in(builder: WorkflowBuilder, body: list[ast.stmt], scope: Scope) -> bool:
    return any(
        isinstance(sub, ast.expr) and has_work(builder, sub, scope)
        for stmt in body
        for sub in ast.walk(stmt)
        if isinstance(sub, ast.Call)
    )
