"""while loops → a Choice that loops back (polling)."""

from __future__ import annotations

import ast
from dataclasses import replace
from typing import TYPE_CHECKING

from untangle.workflow.build.ast_helpers import choice_name, span_of
from untangle.workflow.build.constant_fold import constant_truth, truthy
from untangle.workflow.build.locals import rebound_names, store_locals
from untangle.workflow.build.retry import retry_while
from untangle.workflow.build.scope import (
    NOT_DATA,
    Exit,
    Fragment,
    Opaque,
    Scope,
    Unsupported,
    Value,
    describe,
    to_expr,
)
from untangle.workflow.build.work import has_work, has_work_in
from untangle.workflow.ir import (
    Assign,
    Choice,
    Reason,
    Var,
)

if TYPE_CHECKING:
    from untangle.workflow.build.builder import WorkflowBuilder


def transform_while(builder: WorkflowBuilder, node: ast.While, scope: Scope) -> Fragment:
    """`while cond: …` → a Choice on `cond` whose rule runs the body and comes back to it (a
    polling loop: Wait, Task, Choice). Locals the body rebinds live in workflow variables,
    set before the loop and at the end of each round."""
    retry = retry_while(builder, node, scope)
    if retry is not None:
        return retry
    if node.orelse:
        raise Unsupported(
            node.lineno,
            "an `else` block after a `while` loop",
            "test after the loop whether it ended by its condition",
            compile_bodies=True,
        )
    if not has_work_in(builder, node.body, scope):
        raise Unsupported(node.lineno, "a loop of local computation would need its own function")
    if has_work(builder, node.test, scope):
        raise Unsupported(node.lineno, "an invoke in a while condition")
    rebound = rebound_names(node.body)
    carried = sorted(name for name in rebound if name in scope.env)
    for name in carried:
        if isinstance(scope.env[name], NOT_DATA):
            raise Unsupported(
                node.lineno,
                f"`{name}` changes from one round of the loop to the next and is not data",
            )
    before: Fragment = Fragment(None, [])
    initial = tuple(
        (scope.var(n), to_expr(scope.env[n], node.lineno))
        for n in carried
        if scope.env[n] != Var(scope.var(n))
    )
    loop_name = choice_name(node.test).replace("Check", "While", 1)
    if initial:
        name = builder.unique(f"Before{loop_name}")
        builder.add(Assign(name, initial, None, span_of(node)))
        before = Fragment(name, [(name, "next")])
    for name in carried:
        scope.env[name] = Var(scope.var(name))
    condition = builder.value(node.test, scope)
    if isinstance(condition, NOT_DATA):
        raise Unsupported(node.lineno, f"a loop condition on {describe(condition)}")
    constant = constant_truth(condition)
    if constant is False:
        return before
    head: str | None = None
    if constant is None:
        head = builder.unique(loop_name)
        builder.add(Choice(head, ((truthy(condition), ""),), None, span_of(node)))
    breaks: list[tuple[Exit, dict[str, Value]]] = []
    continues: list[tuple[Exit, dict[str, Value]]] = []
    body = builder.block(node.body, replace(scope, breaks=breaks, continues=continues))
    assert body.start is not None
    # the end of a round stores what the next one reads, then goes back to the test
    for n in carried:
        if isinstance(scope.env.get(n), NOT_DATA):
            raise Unsupported(node.lineno, f"`{n}` becomes {describe(scope.env[n])} in the loop")
    for _, env in continues:
        for n in carried:
            if isinstance(env.get(n), NOT_DATA):
                raise Unsupported(node.lineno, f"`{n}` is {describe(env[n])} where it continues")
    exits = store_locals(
        builder,
        [(list(body.exits), scope.env), *[([exit_], env) for exit_, env in continues]],
        carried,
        scope,
        node,
        f"Repeat{loop_name}",
    )
    builder.connect(exits, head or body.start)
    if head is not None:
        builder.connect([(head, ("rule", 0))], body.start)
    for name in rebound:
        scope.env[name] = (
            Var(scope.var(name))
            if name in carried
            else Opaque(node.lineno, f"`{name}`, set inside the while loop at line {node.lineno}")
        )
    for _, env in breaks:
        for n in carried:
            if isinstance(env.get(n), NOT_DATA):
                raise Unsupported(node.lineno, f"`{n}` is {describe(env[n])} where the loop breaks")
    leaving: list[Exit] = [(head, "default")] if head is not None else []
    leaving += store_locals(
        builder,
        [([exit_], env) for exit_, env in breaks],
        carried,
        scope,
        node,
        f"Leave{loop_name}",
    )
    builder.notes.append(
        Reason(
            scope.path,
            node.lineno,
            (
                "the while loop became a Choice that loops back"
                if head
                else "the `while True` loop became states that loop back"
            )
            + " (each round is state transitions: Standard bills each)",
        )
    )
    loop = Fragment(head or body.start, leaving)
    return builder.sequence(before, loop)
