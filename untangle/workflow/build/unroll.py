"""for loops over a few fixed values: unrolled into sequential steps or a Parallel."""

from __future__ import annotations

import ast
from dataclasses import replace
from typing import TYPE_CHECKING

from untangle.workflow.build.ast_helpers import span_of
from untangle.workflow.build.constant_fold import is_static
from untangle.workflow.build.locals import forget_loop_locals, rebound_names, store_locals
from untangle.workflow.build.scope import (
    NOT_DATA,
    Exit,
    Fragment,
    Opaque,
    Scope,
    Unsupported,
    Value,
    to_expr,
)
from untangle.workflow.ir import (
    Arr,
    Expr,
    Graph,
    Lit,
    Obj,
    Parallel,
    Reason,
    Succeed,
    Var,
    pascal,
)

if TYPE_CHECKING:
    from untangle.workflow.build.builder import WorkflowBuilder

# a loop over more fixed values than this becomes a Map, not unrolled steps
MAX_UNROLLED = 10


def unroll_sequential(
    builder: WorkflowBuilder, node: ast.For | ast.AsyncFor, items: Arr, scope: Scope
) -> Fragment:
    """A loop over a few fixed values whose steps depend on each other (a value carried from
    one step to the next, a `break`): the steps one after another, a `break` going on
    after the last."""
    assert isinstance(node.target, ast.Name)
    breaks: list[tuple[Exit, dict[str, Value]]] = []
    inner = replace(scope, breaks=breaks)  # the same locals: the steps run in order
    fragment = Fragment(None, [])
    for element in items.items:
        scope.env[node.target.id] = element
        fragment = builder.sequence(fragment, builder.block(node.body, inner))
        if fragment.start is not None and not fragment.exits:
            break  # every path returned, raised or broke out
    if fragment.start is None:
        return Fragment(None, [])
    # the locals the loop leaves with different values depending on where it stopped: each
    # way out stores its value in a variable (data), or they cannot be read (anything else)
    ends = [(list(fragment.exits), dict(scope.env))] if fragment.exits else []
    ends += [([exit_], env) for exit_, env in breaks]
    keys = {key for _, env in ends for key in env}
    differing = sorted(
        key for key in keys if any(env.get(key) != ends[0][1].get(key) for _, env in ends)
    )
    stored = [
        key
        for key in differing
        if all(env.get(key) is not None and not isinstance(env[key], NOT_DATA) for _, env in ends)
    ]
    exits = store_locals(
        builder, ends, stored, scope, node, f"Set{pascal(stored[0])}" if stored else ""
    )
    for key in differing:
        scope.env[key] = (
            Var(scope.var(key))
            if key in stored
            else Opaque(node.lineno, f"`{key}`, which depends on where the loop stopped")
        )
    builder.notes.append(
        Reason(
            scope.path,
            node.lineno,
            f"the loop over {len(items.items)} fixed values was unrolled: its steps run one "
            "after another, as before",
        )
    )
    return Fragment(fragment.start, exits)


def unroll_parallel(
    builder: WorkflowBuilder, node: ast.For | ast.AsyncFor, items: Arr, scope: Scope
) -> Fragment | None:
    """A loop over a fixed list of values (function names, say) whose results go into a
    fresh dict, `results[x] = work(x)`: one Parallel branch per value."""
    assert isinstance(node.target, ast.Name)
    body = list(node.body)
    last = body[-1] if body else None
    if not (
        isinstance(last, ast.Assign)
        and len(last.targets) == 1
        and isinstance(last.targets[0], ast.Subscript)
        and isinstance(last.targets[0].value, ast.Name)
        and scope.env.get(last.targets[0].value.id) == Obj(())
    ):
        return None
    collector = last.targets[0].value.id
    key_node = last.targets[0].slice
    branches: list[Graph] = []
    keys: list[Expr] = []
    variables: list[str] = []
    for index, element in enumerate(items.items):
        saved = set(builder.states)
        inner = replace(scope, env=dict(scope.env), catches=[], returns=None)
        inner.env[node.target.id] = element
        initial = dict(inner.env)
        fragment = builder.block(body[:-1], inner)
        forget_loop_locals(scope, initial, inner.env, node.lineno)
        step = builder.effect(last.value, "result", inner)
        fragment = builder.sequence(fragment, step)
        if fragment.start is not None and not fragment.exits:
            raise Unsupported(node.lineno, "a loop that returns or raises from inside")
        key = to_expr(builder.value(key_node, inner), node.lineno)
        if not is_static(key):
            return None
        keys.append(key)
        output = to_expr(inner.env.get("result", Lit(None)), node.lineno)
        done = builder.add(Succeed(builder.unique("BranchDone"), output, span_of(node)))
        builder.connect(fragment.exits, done)
        graph = builder.graph(fragment.start or done)
        for state in graph.states:
            if state.name not in saved:
                del builder.states[state.name]
        branches.append(graph)
        variables.append(scope.var(f"{collector}_{index}"))
    name = builder.unique(f"Each{pascal(node.target.id)}InParallel")
    builder.add(
        Parallel(name, tuple(branches), tuple(variables), None, span_of(node), "unrolled loop")
    )
    entries: list[tuple[str, Expr]] = []
    for key, variable in zip(keys, variables):
        text = key.value if isinstance(key, Lit) else f"${{{key.args[0].value}}}"  # type: ignore[union-attr]
        entries.append((str(text), Var(variable)))
    scope.env[collector] = Obj(tuple(entries))
    builder.notes.append(
        Reason(
            scope.path,
            node.lineno,
            f"the loop over {len(items.items)} fixed values became a Parallel state: "
            "its steps run at the same time instead of one after another",
        )
    )
    return Fragment(name, [(name, "next")])


def is_sequential(node: ast.For | ast.AsyncFor, scope: Scope) -> bool:
    """The loop's steps depend on each other: it breaks, or it reads and rebinds a local from
    before the loop (`state = step(state)`)."""
    inner_loops = {
        id(sub)
        for stmt in node.body
        for sub in ast.walk(stmt)
        if isinstance(sub, (ast.For, ast.AsyncFor, ast.While))
    }
    nested = {
        id(inner)
        for stmt in node.body
        for loop in ast.walk(stmt)
        if id(loop) in inner_loops
        for inner in ast.walk(loop)
    }
    walked = [sub for stmt in node.body for sub in ast.walk(stmt)]
    if any(isinstance(sub, ast.Break) and id(sub) not in nested for sub in walked):
        return True
    assigned = rebound_names(node.body)
    read = {sub.id for sub in walked if isinstance(sub, ast.Name) and isinstance(sub.ctx, ast.Load)}
    return bool(assigned & read & set(scope.env))
