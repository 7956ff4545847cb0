"""Futures a new function receives as their results.

The builder models a future of `pool.submit(fn, x)` by its result (the Map gives the results),
so a region that reads futures after the Map (`for f in as_completed(futures): r =
f.result()`) is passed the results themselves, which are JSON data: `as_completed` and
`.result()` on them would fail in the new function where the original ran. In the printed
region they are what the builder made of them: `as_completed(futures)` is `futures` and
`f.result()` is `f`, for the region's inputs and the names its loops bind from them only
(futures the region makes itself keep their Python)."""

from __future__ import annotations

import ast
import copy

from untangle.workflow.build.ast_helpers import dotted_name


def results_for_futures(
    stmts: list[ast.stmt], params: list[str]
) -> tuple[list[ast.stmt], int | None]:
    """`stmts` with the futures among `params` read as results, and the line of the first
    `as_completed` so replaced (None when there is none: the order of the items is kept)."""
    futures = set(params)
    for node in (sub for stmt in stmts for sub in ast.walk(stmt)):
        if isinstance(node, (ast.For, ast.AsyncFor, ast.comprehension)) and isinstance(
            node.target, ast.Name
        ):
            source = _unwrapped(node.iter)
            if isinstance(source, ast.Name) and source.id in futures:
                futures.add(node.target.id)
    rewriter = _Results(futures)
    rewritten = [rewriter.visit(copy.deepcopy(stmt)) for stmt in stmts]
    if not rewriter.changed:
        return stmts, None
    return [ast.fix_missing_locations(stmt) for stmt in rewritten], rewriter.reordered


def _unwrapped(node: ast.expr) -> ast.expr:
    if _is_as_completed(node):
        assert isinstance(node, ast.Call)
        return node.args[0]
    return node


def _is_as_completed(node: ast.expr) -> bool:
    return (
        isinstance(node, ast.Call)
        and dotted_name(node.func).rsplit(".", 1)[-1] == "as_completed"
        and len(node.args) == 1
        and not node.keywords
    )


class _Results(ast.NodeTransformer):
    def __init__(self, futures: set[str]) -> None:
        self.futures = futures
        self.changed = False
        self.reordered: int | None = None

    def visit_Call(self, node: ast.Call) -> ast.expr:
        self.generic_visit(node)
        if _is_as_completed(node):
            inner = node.args[0]
            if isinstance(inner, ast.Name) and inner.id in self.futures:
                self.changed = True
                if self.reordered is None:
                    self.reordered = node.lineno
                return inner
        if (
            isinstance(node.func, ast.Attribute)
            and node.func.attr == "result"
            and not node.args
            and not node.keywords
            and isinstance(node.func.value, ast.Name)
            and node.func.value.id in self.futures
        ):
            self.changed = True
            return node.func.value
        return node
