"""Python locals across branches and loops: merging, storing in workflow variables,
forgetting what a Map or Parallel iteration bound."""

from __future__ import annotations

import ast
from typing import TYPE_CHECKING

from untangle.workflow.build.ast_helpers import span_of
from untangle.workflow.build.scope import REFUSED, Exit, Opaque, Scope, Value, to_expr
from untangle.workflow.ir import (
    Assign,
    Var,
)

if TYPE_CHECKING:
    from untangle.workflow.build.builder import WorkflowBuilder


def store_locals(
    builder: WorkflowBuilder,
    ends: list[tuple[list[Exit], dict[str, Value]]],
    names: list[str],
    scope: Scope,
    node: ast.stmt,
    label: str,
) -> list[Exit]:
    """The exits of `ends`, each through a Pass storing the locals `names` it holds in
    other values than their variables (nothing to store: the exits as they are)."""
    exits: list[Exit] = []
    for end_exits, env in ends:
        values = tuple(
            (scope.var(n), to_expr(env[n], node.lineno))
            for n in names
            if env.get(n) != Var(scope.var(n))
        )
        if values and end_exits:
            setter = builder.add(Assign(builder.unique(label), values, None, span_of(node)))
            builder.connect(end_exits, setter)
            end_exits = [(setter, "next")]
        exits += end_exits
    return exits


def merge_envs(envs: list[dict[str, Value]], line: int) -> dict[str, Value]:
    if not envs:
        return {}
    merged: dict[str, Value] = {}
    keys = dict.fromkeys(key for env in envs for key in env)  # in a fixed order
    for key in keys:
        values = [env.get(key) for env in envs]
        first = values[0]
        refused = [v for v in values if isinstance(v, Opaque) and REFUSED in v.message]
        if refused:
            merged[key] = refused[0]
        elif all(v == first for v in values) and first is not None:
            merged[key] = first
        else:
            merged[key] = Opaque(line, f"`{key}`, which the branches set differently")
    return merged


def forget_loop_locals(
    scope: Scope, initial: dict[str, Value], after: dict[str, Value], line: int
) -> None:
    """Locals a loop body bound are, after a Map or Parallel, not what Python leaves in them (the
    last iteration's): iterations share no variables. Reading them later is refused."""
    for key, value in after.items():
        if initial.get(key) != value:
            scope.env[key] = Opaque(
                line, f"`{key}`, set inside the loop at line {line} (its iterations run apart)"
            )


def rebound_names(body: list[ast.stmt]) -> set[str]:
    """Names a loop body assigns (not inside nested functions)."""
    found: set[str] = set()
    for stmt in body:
        for sub in ast.walk(stmt):
            if isinstance(sub, ast.Name) and isinstance(sub.ctx, ast.Store):
                found.add(sub.id)
    return found
