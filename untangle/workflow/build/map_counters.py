"""`n += 1` / `total += x` in a loop that becomes a Map: each round gives its steps as a part.

A Map's rounds share no variable, so a counter the rounds increment (`processed += 1` before
a `continue`, in one branch) cannot be kept across them. Each round appends its step to a list
of its own instead (the loop's collectors: `lists.collected`), and after the Map the counter
is its value before the loop plus the steps, in the order of the items, as Python added them:
for steps of 1 the number of those ones (`count`), for other steps `sum(steps, start)` in a new
function (ASL has no exact sum of numbers Python adds). Only a number the loop starts from,
incremented at statement level and read nowhere else in the body (a read in a round would see
the other rounds' increments in Python)."""

from __future__ import annotations

import ast
import copy
from typing import TYPE_CHECKING

from untangle.workflow.build.ast_helpers import located
from untangle.workflow.build.collectors import _OPAQUE_BLOCKS
from untangle.workflow.build.constant_fold import count
from untangle.workflow.build.extraction import extract_task
from untangle.workflow.build.scope import Fragment, Scope, Value
from untangle.workflow.ir import Expr, Lit, Op, Operator, Var

if TYPE_CHECKING:
    from untangle.workflow.build.builder import WorkflowBuilder


def counters(body: list[ast.stmt], scope: Scope) -> list[str]:
    """The names the body only increments, `n += step` statements outside nested loops,
    functions and `try` bodies, each a number before the loop."""
    incremented: dict[str, int] = {}
    other: set[str] = set()

    def visit(node: ast.AST, hidden: bool) -> None:
        name = _increment(node)
        if name is not None and not hidden:
            incremented[name] = incremented.get(name, 0) + 1
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
    return [name for name in incremented if name not in other and _number(scope.env.get(name))]


def counting_body(body: list[ast.stmt], names: list[str]) -> list[ast.stmt]:
    """`body` with each `n += step` of `names` as `n.append(step)`."""
    rewriter = _Appends(set(names))
    return [rewriter.visit(copy.deepcopy(stmt)) for stmt in body]


def counted(start: Value, parts: Expr) -> Expr:
    """The counter after the loop: its start (a number) plus the rounds' ones."""
    rounds = count(parts)
    if start == Lit(0):
        return rounds
    assert isinstance(start, Lit)
    return Op(Operator.ADD, (start, rounds))


def counts_ones(body: list[ast.stmt], name: str) -> bool:
    """Every step of `name` in `body` is the constant 1."""
    return all(
        _one(sub.value)
        for stmt in body
        for sub in ast.walk(stmt)
        if _increment(sub) == name and isinstance(sub, ast.AugAssign)
    )


def _one(node: ast.expr) -> bool:
    return isinstance(node, ast.Constant) and type(node.value) is int and node.value == 1


def _increment(node: ast.AST) -> str | None:
    if (
        isinstance(node, ast.AugAssign)
        and isinstance(node.op, ast.Add)
        and isinstance(node.target, ast.Name)
    ):
        return node.target.id
    return None


def _number(value: Value | None) -> bool:
    return isinstance(value, Lit) and type(value.value) in (int, float)


class _Appends(ast.NodeTransformer):
    def __init__(self, names: set[str]) -> None:
        self.names = names

    def visit_AugAssign(self, node: ast.AugAssign) -> ast.AST:
        name = _increment(node)
        if name is None or name not in self.names:
            return node
        call = ast.Call(
            ast.Attribute(ast.Name(name, ast.Load()), "append", ast.Load()), [node.value], []
        )
        return ast.fix_missing_locations(ast.copy_location(ast.Expr(call), node))


def summed(
    builder: WorkflowBuilder, name: str, start: Value, parts: Expr, where: ast.AST, scope: Scope
) -> Fragment:
    """A new function adding the rounds' steps to the counter's start, `sum(steps, start)`,
    into the counter's variable."""
    assert isinstance(start, Lit) and isinstance(start.value, (int, float))
    steps = f"{name}_steps"
    scope.env[steps] = parts
    node = located(
        ast.Call(
            ast.Name("sum", ast.Load()),
            [ast.Name(steps, ast.Load()), ast.Constant(start.value)],
            [],
        ),
        where,
    )
    task = extract_task(builder, node, name, [steps], scope)
    del scope.env[steps]
    scope.env[name] = Var(scope.var(name))
    return Fragment(task, [(task, "next")])
