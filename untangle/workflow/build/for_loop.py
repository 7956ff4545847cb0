"""for loops → a Map state (or data, for a loop that only collects values)."""

from __future__ import annotations

import ast
import copy
from dataclasses import replace
from typing import TYPE_CHECKING

from untangle.workflow.build import collectors as lists
from untangle.workflow.build import map_counters
from untangle.workflow.build.ast_helpers import attr_name, located, span_of, target_text
from untangle.workflow.build.batching import batch_loop
from untangle.workflow.build.constant_fold import is_static, truthy
from untangle.workflow.build.local_items import items_in_a_new_function
from untangle.workflow.build.locals import forget_loop_locals
from untangle.workflow.build.retry import retry_for
from untangle.workflow.build.scope import (
    DEFAULT_CONCURRENCY,
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
from untangle.workflow.build.unroll import (
    MAX_UNROLLED,
    is_sequential,
    unroll_parallel,
    unroll_sequential,
)
from untangle.workflow.build.work import has_work, has_work_in
from untangle.workflow.ir import (
    Arr,
    Expr,
    Lit,
    Map,
    Op,
    Operator,
    Reason,
    Succeed,
    Var,
    pascal,
)

if TYPE_CHECKING:
    from untangle.workflow.build.builder import WorkflowBuilder


def checking_loop(
    builder: WorkflowBuilder, node: ast.For | ast.AsyncFor, scope: Scope
) -> Fragment | None:
    """A loop over a few fixed values that returns or raises from inside (`for field in
    REQUIRED: if field not in body: return 400`): a new function cannot leave the handler, so
    the checks are unrolled, one after another, each with the value in place."""
    exits = any(isinstance(n, (ast.Return, ast.Raise)) for n in ast.walk(node))
    if not exits or node.orelse or not isinstance(node.target, ast.Name):
        return None
    items = builder.value(node.iter, scope)
    if not (isinstance(items, Arr) and 0 < len(items.items) <= MAX_UNROLLED):
        return None
    if not all(is_static(i) for i in items.items):
        return None
    return unroll_sequential(builder, node, items, scope)


def transform_for(builder: WorkflowBuilder, node: ast.For | ast.AsyncFor, scope: Scope) -> Fragment:
    retry = retry_for(builder, node, scope)
    if retry is not None:
        return retry
    chunked = batch_loop(builder, node, scope)
    if chunked is not None:
        return transform_for(builder, chunked, scope)
    nested = nested_append(node, scope)
    if nested is not None:
        # each outer iteration collects its inner loop's list; the lists are joined after
        rewritten, joined = nested
        loops = transform_for(builder, rewritten, scope)
        parts = scope.env.get(joined)
        if parts is not None and not isinstance(parts, NOT_DATA):
            scope.env[joined] = Op(Operator.FLATTEN, (to_expr(parts, node.lineno),))
        return loops
    if not has_work_in(builder, node.body, scope):
        collected = collecting_loop(builder, node, scope)
        if collected is not None:
            return collected
        checks = checking_loop(builder, node, scope)
        if checks is not None:
            return checks
        raise Unsupported(node.lineno, "a loop of local computation would need its own function")
    if node.orelse:
        raise Unsupported(
            node.lineno,
            "an `else` block after a `for` loop",
            "test after the loop whether it found what it looked for",
            compile_bodies=True,
        )
    unpacked = unpacked_names(node.target)
    if not isinstance(node.target, ast.Name) and unpacked is None:
        raise Unsupported(
            node.lineno,
            f"unpacking `{target_text(node.target)}` in a loop target",
            'loop over the items and read their parts, `item[0]` or `item["key"]`',
            compile_bodies=True,
        )
    computed = items_in_a_new_function(builder, node, scope)
    if computed is not None:
        before, iterable = computed
        loop = copy.copy(node)
        loop.iter = iterable
        return builder.sequence(before, transform_for(builder, loop, scope))
    items = pairs(builder, node.iter, scope) if unpacked else builder.value(node.iter, scope)
    if isinstance(items, NOT_DATA):
        raise Unsupported(node.lineno, f"a loop over {describe(items)}")
    if (
        isinstance(items, Arr)
        and all(is_static(i) for i in items.items)
        and items.items
        and isinstance(node.target, ast.Name)
    ):
        if len(items.items) <= MAX_UNROLLED and is_sequential(node, scope):
            return unroll_sequential(builder, node, items, scope)
        unrolled = unroll_parallel(builder, node, items, scope)
        if unrolled is not None:
            return unrolled
    body = list(node.body)
    # counters the rounds increment (`processed += 1`): lists of ones, counted after the Map
    counted_names = map_counters.counters(body, scope)
    starts = {name: scope.env[name] for name in counted_names}
    if counted_names:
        body = map_counters.counting_body(body, counted_names)
        for name in counted_names:
            scope.env[name] = Arr(())
    collect: ast.expr | None = None
    collector: str | None = None
    last = body[-1] if body else None
    # lists the body appends to elsewhere than in its last statement, or several lists
    collectors = lists.loop_collectors(body, node.target, scope)
    if any(name not in collectors for name in counted_names):
        # (never: a counter is read nowhere else) as it was, refused with its own reason
        body = list(node.body)
        scope.env.update(starts)
        counted_names, starts = [], {}
        collectors = lists.loop_collectors(body, node.target, scope)
    single = lists.appended_list(last) if isinstance(last, ast.stmt) else None
    if single is not None and collectors == [single[0]] and appends(body, single[0]) == 1:
        collectors = []
    if collectors:
        pass
    elif single is not None and last is not None:
        collector, collect = single
        if isinstance(scope.env.get(collector), Opaque):
            raise Unsupported(
                last.lineno,
                f"`{collector}` is filled inside nested loops: each inner loop's results "
                "would not reach it",
            )
        if scope.env.get(collector) != Arr(()):
            raise Unsupported(last.lineno, f"`{collector}` is not a fresh list before the loop")
        body = body[:-1]
    item = "_".join(unpacked) if unpacked else target_text(node.target)
    saved = dict(builder.states)
    continues: list[tuple[Exit, dict[str, Value]]] = []
    processor_scope = replace(
        scope,
        env=dict(scope.env),
        catches=[],
        returns=None,
        breaks=None,
        continues=continues,
        collectors=frozenset(collectors),
    )
    for key, known in scope.env.items():
        if known == Arr(()) and key not in collectors:
            # a list from before the loop changes across its iterations: not a fresh [] here
            processor_scope.env[key] = Opaque(
                node.lineno, f"`{key}`, a list that changes across the loop's iterations"
            )
    processor_scope.env[item] = Var(item)
    for index, name in enumerate(unpacked or ()):
        processor_scope.env[name] = Var(item, (index,))  # `for k, v in …`: the pair's parts
    initial = dict(processor_scope.env)
    fragment = builder.block(body, processor_scope)
    if fragment.start is not None and not fragment.exits and not continues:
        raise Unsupported(node.lineno, "a loop that returns or raises from inside")
    forget_loop_locals(scope, initial, processor_scope.env, node.lineno)
    for _, env in continues:  # what a round that ends at `continue` bound is as lost
        forget_loop_locals(scope, initial, env, node.lineno)
    output: Expr = Lit(None)
    if collect is not None:
        if has_work(builder, collect, processor_scope):
            before, collect = builder.hoist(collect, processor_scope)
            fragment = builder.sequence(fragment, before)
        output = to_expr(builder.value(collect, processor_scope), node.lineno)
    # a loop that collects and skips some items (`continue`): each item gives a list, of its
    # value or of nothing, joined after the Map (a Map gives one result per item)
    skipping = bool(continues) and collect is not None
    if skipping:
        output = Arr((output,))
    if collectors:
        output = lists.collected(collectors, processor_scope.env, node.lineno)
    done = builder.add(Succeed(builder.unique(f"{pascal(item)}Done"), output, span_of(node)))
    builder.connect(fragment.exits, done)
    skipped = done
    if skipping:
        skipped = builder.add(
            Succeed(builder.unique(f"{pascal(item)}Skipped"), Arr(()), span_of(node))
        )
    for exit_, env in continues:  # the round ends there
        if collectors:
            skipped = builder.add(
                Succeed(
                    builder.unique(f"{pascal(item)}Skipped"),
                    lists.collected(collectors, env, node.lineno),
                    span_of(node),
                )
            )
        builder.connect([exit_], skipped)
    processor = builder.graph(fragment.start or done)
    for state in processor.states:
        if saved.get(state.name) is None:
            del builder.states[state.name]
    name = builder.unique(f"ProcessEach{pascal(item)}")
    map_state = Map(
        name,
        to_expr(items, node.lineno),
        item,
        processor,
        output if collect is not None or collectors else None,
        scope.var(f"{item}_results") if collectors else collector,
        DEFAULT_CONCURRENCY,
        None,
        span_of(node),
    )
    builder.add(map_state)
    builder.notes.append(
        Reason(
            scope.path,
            node.lineno,
            f"the loop ran one item at a time; the Map runs up to {DEFAULT_CONCURRENCY} "
            "at once (set MaxConcurrency to 1 to keep the order of side effects)",
        )
    )
    after = Fragment(name, [(name, "next")])
    for listed in collectors:
        parts = lists.joined(scope.var(f"{item}_results"), listed, item)
        scope.env[listed] = parts
        after = _counted(builder, listed, starts, parts, node, after, scope)
    if collector is not None:
        results: Expr = Var(scope.var(collector))
        scope.env[collector] = Op(Operator.FLATTEN, (results,)) if skipping else results
        # a counter incremented last: one step per round that got there
        steps = to_expr(scope.env[collector], node.lineno)
        after = _counted(builder, collector, starts, steps, node, after, scope)
    return after


def _counted(
    builder: WorkflowBuilder,
    name: str,
    starts: dict[str, Value],
    steps: Expr,
    node: ast.For | ast.AsyncFor,
    after: Fragment,
    scope: Scope,
) -> Fragment:
    """`name` after the Map when it is a counter the rounds incremented (`starts`)."""
    start = starts.get(name)
    if start is None:
        return after
    if map_counters.counts_ones(node.body, name):
        scope.env[name] = map_counters.counted(start, steps)
        return after
    return builder.sequence(after, map_counters.summed(builder, name, start, steps, node, scope))


def unpacked_names(target: ast.expr) -> list[str] | None:
    """`k, v` of `for k, v in …`: two or more plain names."""
    if (
        isinstance(target, ast.Tuple)
        and len(target.elts) >= 2
        and all(isinstance(e, ast.Name) for e in target.elts)
    ):
        names = [e.id for e in target.elts if isinstance(e, ast.Name)]
        return names if len(set(names)) == len(names) else None
    return None


def pairs(builder: WorkflowBuilder, node: ast.expr, scope: Scope) -> Value:
    """What a loop that unpacks iterates over, as lists: `d.items()`, `enumerate(a)`,
    `zip(a, b)`, or data that already holds lists (`[[1, "a"], …]`)."""
    if isinstance(node, ast.Call) and not node.keywords:
        method = attr_name(node.func)
        function = node.func.id if isinstance(node.func, ast.Name) else ""
        arguments = [builder.value(a, scope) for a in node.args]
        if any(isinstance(a, NOT_DATA) for a in arguments):
            return Opaque(node.lineno, f"`{target_text(node)}`")
        data = [to_expr(a, node.lineno) for a in arguments]
        if method == "items" and not node.args and isinstance(node.func, ast.Attribute):
            receiver = builder.value(node.func.value, scope)
            if not isinstance(receiver, NOT_DATA):
                return Op(Operator.ITEMS, (to_expr(receiver, node.lineno),))
        if function == "enumerate" and len(data) == 1:
            return Op(Operator.ENUMERATE, (data[0],))
        if function == "zip" and len(data) == 2:
            return Op(Operator.ZIP, (data[0], data[1]))
    return builder.value(node, scope)


def collecting_loop(
    builder: WorkflowBuilder, node: ast.For | ast.AsyncFor, scope: Scope
) -> Fragment | None:
    """`for x in xs: out.append(f(x))` (or under one `if`) into a fresh list, no work: the
    comprehension `[f(x) for x in xs if …]`, as data."""
    if node.orelse or not isinstance(node.target, ast.Name) or len(node.body) != 1:
        return None
    stmt, condition = node.body[0], None
    if isinstance(stmt, ast.If) and len(stmt.body) == 1 and not stmt.orelse:
        condition, stmt = stmt.test, stmt.body[0]
    if not (
        isinstance(stmt, ast.Expr)
        and isinstance(stmt.value, ast.Call)
        and attr_name(stmt.value.func) == "append"
        and isinstance(stmt.value.func, ast.Attribute)
        and isinstance(stmt.value.func.value, ast.Name)
        and len(stmt.value.args) == 1
        and scope.env.get(stmt.value.func.value.id) == Arr(())
    ):
        return None
    items = builder.value(node.iter, scope)
    if isinstance(items, NOT_DATA):
        return None
    variable = node.target.id
    inner = replace(scope, env={**scope.env, variable: Var(variable)})
    element = builder.value(stmt.value.args[0], inner)
    test: Value = Lit(True) if condition is None else builder.value(condition, inner)
    if isinstance(element, NOT_DATA) or isinstance(test, NOT_DATA):
        return None
    collector = stmt.value.func.value.id
    if condition is None and element == Var(variable):
        scope.env[collector] = items  # `for f in futures: out.append(f.result())`
    else:
        scope.env[collector] = Op(
            Operator.COMPREHENSION,
            (to_expr(items, node.lineno), Lit(variable), element, truthy(test)),
        )
    return Fragment(None, [])


def nested_append(node: ast.For | ast.AsyncFor, scope: Scope) -> tuple[ast.For, str] | None:
    """`for a in xs: …; for b in ys: …; out.append(v)` with `out` a fresh list from before both
    loops: the same loops with the inner one filling a list of its own, which the outer one
    appends (then `out` is those lists joined)."""
    if not node.body or not isinstance(node.body[-1], ast.For) or node.orelse:
        return None
    inner = node.body[-1]
    last = inner.body[-1] if inner.body else None
    if not (
        isinstance(last, ast.Expr)
        and isinstance(last.value, ast.Call)
        and attr_name(last.value.func) == "append"
        and isinstance(last.value.func, ast.Attribute)
        and isinstance(last.value.func.value, ast.Name)
        and len(last.value.args) == 1
        and not inner.orelse
    ):
        return None
    collector = last.value.func.value.id
    if scope.env.get(collector) != Arr(()):
        return None
    uses = [
        n
        for stmt in node.body
        for n in ast.walk(stmt)
        if isinstance(n, ast.Name) and n.id == collector
    ]
    if len(uses) != 1:  # only the inner append reads or writes it
        return None
    part = f"{collector}_part"
    fresh = ast.Assign(targets=[ast.Name(part, ast.Store())], value=ast.List([], ast.Load()))
    new_inner = ast.For(
        target=inner.target,
        iter=inner.iter,
        body=[*inner.body[:-1], append_stmt(part, last.value.args[0], last)],
        orelse=[],
    )
    rewritten = ast.For(
        target=node.target,
        iter=node.iter,
        body=[
            *node.body[:-1],
            located(fresh, inner),
            located(new_inner, inner),
            append_stmt(collector, ast.Name(part, ast.Load()), inner),
        ],
        orelse=[],
    )
    return located(rewritten, node), collector


def append_stmt(collector: str, value: ast.expr, where: ast.AST) -> ast.stmt:
    """`collector.append(value)`, placed at `where`."""
    method = ast.Attribute(ast.Name(collector, ast.Load()), "append", ast.Load())
    return located(ast.Expr(ast.Call(method, [value], [])), where)


def appends(body: list[ast.stmt], name: str) -> int:
    """How many `name.append(…)` statements `body` holds, at any depth."""
    return sum(
        1
        for stmt in body
        for sub in ast.walk(stmt)
        if isinstance(sub, ast.stmt) and (found := lists.appended_list(sub)) and found[0] == name
    )
