"""`for i in range(0, len(items), N): chunk = items[i:i + N]; …`: a loop over the chunks of
`items` (the last one the short rest), `i` read elsewhere as the chunk's index times N."""

from __future__ import annotations

import ast
import copy
from typing import TYPE_CHECKING

from untangle.workflow.build.ast_helpers import Replace, dotted_name, located
from untangle.workflow.build.locals import rebound_names
from untangle.workflow.build.scope import NOT_DATA, Scope, Unsupported, to_expr
from untangle.workflow.ir import Lit, Op, Operator

if TYPE_CHECKING:
    from untangle.workflow.build.builder import WorkflowBuilder

HINT = (
    "slice the list in chunks of a constant size, `for i in range(0, len(items), N)` with "
    "`items[i:i + N]`"
)


def batch_loop(
    builder: WorkflowBuilder, node: ast.For | ast.AsyncFor, scope: Scope
) -> ast.For | None:
    """The loop over the chunks a batching loop slices, or None (not `range(0, len(…), …)`).
    Its items are a variable of `scope.env` bound to the chunks."""
    call = node.iter
    if not (
        isinstance(call, ast.Call)
        and dotted_name(call.func) == "range"
        and len(call.args) == 3
        and not call.keywords
        and isinstance(call.args[1], ast.Call)
        and dotted_name(call.args[1].func) == "len"
        and len(call.args[1].args) == 1
    ):
        return None
    if not isinstance(node.target, ast.Name) or node.orelse:
        raise Unsupported(node.lineno, "a batching loop with this target or an `else`", HINT)
    index = node.target.id
    listed = call.args[1].args[0]
    start = builder.value(call.args[0], scope)
    size = builder.value(call.args[2], scope)
    if start != Lit(0) or not (
        isinstance(size, Lit)
        and isinstance(size.value, int)
        and not isinstance(size.value, bool)
        and size.value > 0
    ):
        raise Unsupported(
            node.lineno, "a batching loop that does not start at 0 or has no constant step", HINT
        )
    step = size.value
    slices = [
        sub
        for stmt in node.body
        for sub in ast.walk(stmt)
        if isinstance(sub, ast.Subscript)
        and is_chunk(sub, listed, index, call.args[2], step, builder, scope)
    ]
    if not slices:
        raise Unsupported(
            node.lineno, f"a loop over `range` that does not slice `{ast.unparse(listed)}`", HINT
        )
    read = {n.id for n in ast.walk(listed) if isinstance(n, ast.Name)}
    if read & rebound_names(node.body):
        raise Unsupported(
            node.lineno, f"a batching loop whose body rebinds `{ast.unparse(listed)}`", HINT
        )
    items = builder.value(listed, scope)
    if isinstance(items, NOT_DATA):
        return None  # refused as a loop over a range
    first = node.body[0]
    body = list(node.body)
    chunk = "chunk"
    if (
        isinstance(first, ast.Assign)
        and len(first.targets) == 1
        and isinstance(first.targets[0], ast.Name)
        and first.value in slices
    ):
        chunk = first.targets[0].id  # `chunk = items[i:i + N]` first: the loop's target
        body = body[1:]
    body = [rewrite(copy.deepcopy(stmt), slices, chunk) for stmt in body]
    # the offset read elsewhere: the items are `[offset, chunk]` pairs
    offsets = any(
        isinstance(sub, ast.Name) and sub.id == index for stmt in body for sub in ast.walk(stmt)
    )
    marker = f"__chunks_{node.lineno}"
    data = to_expr(items, node.lineno)
    scope.env[marker] = Op(Operator.CHUNKS, (data, size, Lit(True)) if offsets else (data, size))
    target: ast.expr = ast.Name(chunk, ast.Store())
    if offsets:
        target = ast.Tuple([ast.Name(index, ast.Store()), target], ast.Store())
    iterable = ast.Name(marker, ast.Load())
    loop = ast.For(target=target, iter=iterable, body=body, orelse=[])
    return located(loop, node)


def is_chunk(
    sub: ast.Subscript,
    listed: ast.expr,
    index: str,
    size_node: ast.expr,
    step: int,
    builder: WorkflowBuilder,
    scope: Scope,
) -> bool:
    """`items[i:i + N]` (or `items[i:N + i]`), N the loop's step."""
    window = sub.slice
    if not (
        isinstance(window, ast.Slice)
        and window.step is None
        and ast.dump(sub.value) == ast.dump(listed)
        and isinstance(window.lower, ast.Name)
        and window.lower.id == index
        and isinstance(window.upper, ast.BinOp)
        and isinstance(window.upper.op, ast.Add)
    ):
        return False
    left, right = window.upper.left, window.upper.right
    if isinstance(right, ast.Name) and right.id == index:
        left, right = right, left
    if not (isinstance(left, ast.Name) and left.id == index):
        return False
    return builder.value(right, scope) == Lit(step)


def rewrite(stmt: ast.stmt, slices: list[ast.Subscript], chunk: str) -> ast.stmt:
    for found in slices:
        stmt = Replace(found, ast.Name(chunk, ast.Load())).visit(stmt)
    return stmt
