"""Work handed to a helper as a lambda: `retry(lambda: invoke("fetch", p), attempts=3)`.

The helper is inlined with each call of the parameter (`fn()`) replaced by the lambda's body;
the names the body reads from the caller are bound under fresh names, so the helper's own
locals cannot shadow them. Only a helper of the caller's module (the body's invokes are found
by their place in that file)."""

from __future__ import annotations

import ast
import copy
from typing import TYPE_CHECKING

from untangle.workflow.build.scope import Scope, Unsupported

if TYPE_CHECKING:
    from untangle.workflow.build.builder import WorkflowBuilder

OUTER = "__outer_"


def lambda_with_work(builder: WorkflowBuilder, call: ast.Call, scope: Scope) -> bool:
    """`call` hands a helper a lambda that invokes or sleeps."""
    from untangle.workflow.build.work import direct_work

    return any(
        isinstance(arg, ast.Lambda)
        and any(
            isinstance(sub, ast.Call) and direct_work(builder, sub, scope)
            for sub in ast.walk(arg.body)
        )
        for arg in (*call.args, *(k.value for k in call.keywords))
    )


def substitute(
    body: list[ast.stmt], thunks: dict[str, ast.Lambda], outer: Scope, inner: Scope, line: int
) -> list[ast.stmt]:
    """The helper's statements with `param(args)` replaced by the lambda's body."""
    renamed: dict[str, str] = {}

    class Rename(ast.NodeTransformer):
        def __init__(self, params: dict[str, ast.expr]) -> None:
            self.params = params

        def visit_Name(self, node: ast.Name) -> ast.expr:
            if node.id in self.params:
                return copy.deepcopy(self.params[node.id])
            if node.id in outer.env:
                renamed[node.id] = OUTER + node.id
                return ast.copy_location(ast.Name(OUTER + node.id, node.ctx), node)
            return node

    class Calls(ast.NodeTransformer):
        def visit_Call(self, node: ast.Call) -> ast.AST:
            func = node.func
            if not (isinstance(func, ast.Name) and func.id in thunks):
                self.generic_visit(node)
                return node
            node.args = [self.visit(a) for a in node.args]
            thunk = thunks[func.id]
            params = [a.arg for a in thunk.args.args]
            if node.keywords or len(node.args) != len(params) or thunk.args.defaults:
                raise Unsupported(
                    line, f"`{func.id}` (a lambda) called with other arguments than it takes"
                )
            body: ast.expr = Rename(dict(zip(params, node.args))).visit(copy.deepcopy(thunk.body))
            return body

        def visit_Name(self, node: ast.Name) -> ast.AST:
            if node.id in thunks:
                raise Unsupported(
                    line,
                    f"`{node.id}` (a lambda) used other than called: the machine cannot follow it",
                )
            return node

    rewritten = [Calls().visit(copy.deepcopy(stmt)) for stmt in body]
    for name, fresh in renamed.items():
        inner.env[fresh] = outer.env[name]
    return [ast.fix_missing_locations(s) for s in rewritten]


def thunks_of(
    builder: WorkflowBuilder, call: ast.Call, params: list[str], scope: Scope, module_path: str
) -> dict[str, ast.Lambda]:
    """The helper's parameters bound to lambdas at `call`; none unless the helper is in the
    caller's module."""
    bound: dict[str, ast.Lambda] = {}
    for param, arg in zip(params, call.args):
        if isinstance(arg, ast.Lambda):
            bound[param] = arg
    for keyword in call.keywords:
        if keyword.arg is not None and isinstance(keyword.value, ast.Lambda):
            bound[keyword.arg] = keyword.value
    if bound and module_path != scope.path:
        raise Unsupported(
            call.lineno,
            "a lambda handed to a helper of another module: the machine cannot place its calls",
            "define the helper in the handler's module, or pass a named function",
        )
    return bound
