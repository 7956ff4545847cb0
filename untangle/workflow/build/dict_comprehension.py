"""`results = {key: work(x) for x in xs}`: a Map whose items are `[key, value]` pairs, then a
new function making the dict of them (`dict(pairs)`: ASL has no exact form for a dict whose
keys the data decides, and Python's rules for repeated keys are Python's)."""

from __future__ import annotations

import ast
from typing import TYPE_CHECKING

from untangle.workflow.build.ast_helpers import located
from untangle.workflow.build.scope import Fragment, Scope
from untangle.workflow.build.work import direct_work

if TYPE_CHECKING:
    from untangle.workflow.build.builder import WorkflowBuilder


def fans_out(builder: WorkflowBuilder, node: ast.expr, scope: Scope) -> bool:
    """`node` is a dict comprehension whose value does work (an invoke, a helper that does)."""
    return isinstance(node, ast.DictComp) and any(
        isinstance(sub, ast.Call) and direct_work(builder, sub, scope)
        for sub in ast.walk(node.value)
    )


def transform_dict_comprehension(
    builder: WorkflowBuilder, node: ast.DictComp, target: str, scope: Scope
) -> Fragment:
    pairs = _pairs_name(builder, target, scope)
    as_list = located(
        ast.ListComp(
            elt=located(ast.List([node.key, node.value], ast.Load()), node),
            generators=node.generators,
        ),
        node,
    )
    made = located(ast.Call(ast.Name("dict", ast.Load()), [ast.Name(pairs, ast.Load())], []), node)
    mapped = builder.effect(as_list, pairs, scope)
    return builder.sequence(mapped, builder.effect(made, target, scope))


def _pairs_name(builder: WorkflowBuilder, target: str, scope: Scope) -> str:
    base = f"{target}_pairs"
    name, counter = base, 2
    while name in scope.env or name in builder._temps:
        name, counter = f"{base}_{counter}", counter + 1
    builder._temps.add(name)
    return name
