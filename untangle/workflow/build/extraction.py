"""Local computation the workflow needs but ASL cannot express: a new single-purpose
function runs it (a Task), placed where the original computed it."""

from __future__ import annotations

import ast
import re
from dataclasses import replace
from typing import TYPE_CHECKING

from untangle.analysis.values import (
    Bound,
    Instance,
    LambdaClient,
    OtherClient,
    Session,
)
from untangle.facts.model import Local as LocalSym
from untangle.workflow.build.ast_helpers import LOGGERS, dotted_name, full_source, snake, span_of
from untangle.workflow.build.scope import NOT_DATA, Fragment, Opaque, Scope, to_expr
from untangle.workflow.ir import (
    Assign,
    Expr,
    Extraction,
    FunctionRef,
    Obj,
    Task,
    Var,
    next_of,
    pascal,
)

if TYPE_CHECKING:
    from untangle.workflow.build.builder import WorkflowBuilder


def infrastructure(builder: WorkflowBuilder, target: str, node: ast.expr, scope: Scope) -> bool:
    """`target` holds a client, a session or an object of the tree (never data to pass)."""
    qualname = builder.function_at(scope.path, node.lineno)
    if qualname is None:
        return False
    values = builder.program.values(LocalSym(qualname, target))
    return any(isinstance(v, (LambdaClient, OtherClient, Session, Instance, Bound)) for v in values)


def extractable(builder: WorkflowBuilder, node: ast.expr, scope: Scope) -> list[str] | None:
    """The locals a new function computing `node` needs, when they are all plain data."""
    params: list[str] = []
    for sub in ast.walk(node):
        if isinstance(sub, (ast.Lambda, ast.Await, ast.Yield, ast.YieldFrom)):
            return None
        if isinstance(sub, ast.Name) and isinstance(sub.ctx, ast.Load) and sub.id in scope.env:
            known = scope.env[sub.id]
            if isinstance(known, Opaque) and known.extract is not None:
                known.extract()  # computed by an earlier extracted function
                known = scope.env[sub.id]
            if isinstance(known, NOT_DATA):
                return None
            if sub.id not in params:
                params.append(sub.id)
    bound = {
        n.id for n in ast.walk(node) if isinstance(n, ast.Name) and isinstance(n.ctx, ast.Store)
    }
    return [p for p in params if p not in bound]


def extract_later(
    builder: WorkflowBuilder,
    node: ast.expr,
    target: str,
    params: list[str],
    computed: Opaque,
    scope: Scope,
) -> Fragment:
    """Reserve the place of a computation the workflow may need; it becomes a Task the first
    time something uses its value (an unused one disappears)."""
    placeholder = builder.add(
        Assign(builder.unique(f"Compute{pascal(target)}"), (), None, span_of(node))
    )
    snapshot = replace(scope, env=dict(scope.env))
    done: list[Expr] = []

    def extract() -> Expr:
        if not done:
            extract_task(builder, node, target, params, snapshot, placeholder)
            variable = Var(scope.var(target))
            scope.env[target] = variable
            done.append(variable)
        return done[0]

    scope.env[target] = Opaque(computed.line, computed.message, extract)
    return Fragment(placeholder, [(placeholder, "next")])


def extract_task(
    builder: WorkflowBuilder,
    node: ast.expr,
    target: str | None,
    params: list[str],
    scope: Scope,
    placeholder: str | None = None,
) -> str:
    base = (
        f"compute_{target}"
        if target
        else snake(dotted_name(node.func) if isinstance(node, ast.Call) else "step")
    )
    function_name = re.sub(r"_+", "_", base).strip("_")
    ref = FunctionRef(f"${{{pascal(function_name)}FunctionArn}}", function_name)
    payload = Obj(tuple((p, to_expr(scope.env[p], node.lineno)) for p in params))
    name = placeholder or builder.unique(pascal(function_name))
    following = next_of(builder.states[placeholder]) if placeholder else None
    task = Task(
        name,
        ref,
        payload,
        scope.var(target) if target else None,
        following,
        span_of(node),
        False,
        scope.retry,
    )
    builder.states[name] = task
    builder._used_names.add(name)
    for catch in scope.catches:
        catch.tasks.append(name)
    builder.extracted.append(
        Extraction(function_name, tuple(params), full_source(node), scope.path, node.lineno, target)
    )
    builder.remember(ref)
    return name


def droppable(builder: WorkflowBuilder, value: ast.expr, scope: Scope) -> bool:
    if not isinstance(value, ast.Call):
        return False
    dotted = dotted_name(value.func)
    return dotted == "print" or dotted.split(".")[0] in LOGGERS
