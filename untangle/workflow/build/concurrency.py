"""Concurrency: comprehensions and pool.map over invokes → Map, asyncio.gather → Parallel."""

from __future__ import annotations

import ast
from dataclasses import replace
from typing import TYPE_CHECKING

from untangle.workflow.build.ast_helpers import (
    Replace,
    copy_node,
    dotted_name,
    span_of,
    target_text,
)
from untangle.workflow.build.scope import (
    DEFAULT_CONCURRENCY,
    Fragment,
    Pool,
    Scope,
    Unsupported,
    Value,
    to_expr,
)
from untangle.workflow.build.work import handed
from untangle.workflow.ir import (
    Graph,
    Lit,
    Map,
    Parallel,
    Succeed,
    Var,
    pascal,
)

if TYPE_CHECKING:
    from untangle.workflow.build.builder import WorkflowBuilder


def transform_map(
    builder: WorkflowBuilder,
    node: ast.ListComp | ast.Call,
    value: ast.expr,
    target: str | None,
    scope: Scope,
) -> Fragment:
    """`[work(x) for x in xs]` or `pool.map(work, xs)` → a Map state."""
    concurrency = DEFAULT_CONCURRENCY
    if isinstance(node, ast.ListComp):
        if len(node.generators) != 1 or node.generators[0].ifs:
            raise Unsupported(
                node.lineno, "a comprehension with several loops or a filter around an invoke"
            )
        generator = node.generators[0]
        if not isinstance(generator.target, ast.Name):
            raise Unsupported(
                node.lineno,
                f"unpacking `{target_text(generator.target)}` in a comprehension over invokes",
                'take one name and read its parts, `item[0]` or `item["key"]`',
            )
        item = generator.target.id
        items_node = generator.iter
        element: ast.expr = node.elt
        if (
            isinstance(element, ast.Call)
            and isinstance(element.func, ast.Attribute)
            and element.func.attr == "submit"
        ):
            pool = builder.value(element.func.value, scope)
            if isinstance(pool, Pool):  # `[pool.submit(fn, x) for x in xs]`: its max_workers
                concurrency = pool.workers
    else:
        assert isinstance(node.func, ast.Attribute)
        receiver = builder.value(node.func.value, scope)
        if isinstance(receiver, Pool):
            concurrency = receiver.workers
        callee = handed(builder, node, scope)
        assert callee is not None
        item = "item"
        items_node = node.args[1]
        element = ast.Call(
            func=node.args[0],
            args=[ast.Name(item, ast.Load())],
            keywords=[],
            lineno=node.lineno,
            col_offset=node.col_offset,
            end_lineno=node.end_lineno,
            end_col_offset=node.end_col_offset,
        )
    items = to_expr(builder.value(items_node, scope), node.lineno)
    saved = set(builder.states)
    inner = replace(scope, env=dict(scope.env), catches=[], returns=None)
    inner.env[item] = Var(item)
    if isinstance(node, ast.Call):
        assert callee is not None
        assert isinstance(element, ast.Call)
        fragment = builder.inline((callee, element), element, "result", inner)
    else:
        fragment = builder.effect(element, "result", inner)
    output = to_expr(inner.env.get("result", Lit(None)), node.lineno)
    done = builder.add(Succeed(builder.unique(f"{pascal(item)}Done"), output, span_of(node)))
    builder.connect(fragment.exits, done)
    processor = builder.graph(fragment.start or done)
    for state in processor.states:
        if state.name not in saved:
            del builder.states[state.name]
    name = builder.unique(f"ProcessEach{pascal(item)}")
    collector = scope.var(target) if target else None
    builder.add(
        Map(name, items, item, processor, output, collector, concurrency, None, span_of(node))
    )
    if target is not None:
        assert collector is not None
        if value is node or (isinstance(value, ast.Call) and dotted_name(value.func) == "list"):
            scope.env[target] = Var(collector)
        else:
            scope.env[target] = bind_map(builder, value, node, collector, scope)
    return Fragment(name, [(name, "next")])


def bind_map(
    builder: WorkflowBuilder, value: ast.expr, node: ast.expr, target: str, scope: Scope
) -> Value:
    marker = "__untangle_map__"
    scope.env[marker] = Var(target)
    try:
        rewritten = Replace(node, ast.Name(marker, ast.Load())).visit(copy_node(value))
        if isinstance(rewritten, ast.Call) and dotted_name(rewritten.func) == "list":
            return Var(target)
        return builder.value(rewritten, scope)
    finally:
        del scope.env[marker]


def transform_gather(
    builder: WorkflowBuilder, node: ast.Call, names: list[str], scope: Scope
) -> Fragment:
    """`a, b = await asyncio.gather(f(), g())` → a Parallel state, one branch per call."""
    if len(names) != len(node.args):
        raise Unsupported(node.lineno, "asyncio.gather unpacked into a different number of names")
    branches: list[Graph] = []
    for call in node.args:
        saved = set(builder.states)
        inner = replace(scope, env=dict(scope.env), catches=[], returns=None)
        fragment = builder.effect(call, "result", inner)
        output = to_expr(inner.env.get("result", Lit(None)), call.lineno)
        done = builder.add(Succeed(builder.unique("BranchDone"), output, span_of(call)))
        builder.connect(fragment.exits, done)
        graph = builder.graph(fragment.start or done)
        for state in graph.states:
            if state.name not in saved:
                del builder.states[state.name]
        branches.append(graph)
    name = builder.unique("RunInParallel")
    builder.add(
        Parallel(name, tuple(branches), tuple(names), None, span_of(node), "asyncio.gather")
    )
    for variable in names:
        scope.env[variable] = Var(variable)
    return Fragment(name, [(name, "next")])


def pool_size(node: ast.expr, builder: WorkflowBuilder, scope: Scope) -> int | None:
    if not isinstance(node, ast.Call):
        return None
    if dotted_name(node.func).rsplit(".", 1)[-1] not in (
        "ThreadPoolExecutor",
        "ThreadPool",
        "Pool",
    ):
        return None
    workers = next((k.value for k in node.keywords if k.arg in ("max_workers", "processes")), None)
    if workers is None and node.args:
        workers = node.args[0]
    if workers is None:
        return DEFAULT_CONCURRENCY
    value = builder.value(workers, scope)
    if isinstance(value, Lit) and isinstance(value.value, int):
        return value.value
    return DEFAULT_CONCURRENCY
