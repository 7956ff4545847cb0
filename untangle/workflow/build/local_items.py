"""`for batch in chunks(keys, 10):` over a helper of the tree that only computes (a generator
slicing a list, a filter): the items are computed first, by a new function running
`list(chunks(keys, 10))` where the loop starts, and the Map goes over them.

Python runs a generator's body between the loop's rounds; a helper that only computes from
its arguments gives the same items either way. A helper that may do something else (an S3
listing, a log line, a change to a module global) is left to the loop's refusal: its
interleaving with the rounds could matter."""

from __future__ import annotations

import ast
from typing import TYPE_CHECKING

from untangle.facts.model import Ref
from untangle.workflow.build.ast_helpers import located
from untangle.workflow.build.extraction import extract_task, extractable, has_effects
from untangle.workflow.build.scope import Fragment, NeedsData, Opaque, Scope, Unsupported
from untangle.workflow.build.work import has_work
from untangle.workflow.ir import Var

if TYPE_CHECKING:
    from untangle.workflow.build.builder import WorkflowBuilder


def items_in_a_new_function(
    builder: WorkflowBuilder, node: ast.For | ast.AsyncFor, scope: Scope
) -> tuple[Fragment, ast.expr] | None:
    """The Task computing the loop's items as a list, and the name the loop reads them from;
    None when the items are data already or cannot be computed so."""
    iterable = node.iter
    if not isinstance(iterable, ast.Call) or has_work(builder, iterable, scope):
        return None
    try:
        value = builder.value(iterable, scope)
    except NeedsData:
        value = None
    except Unsupported:
        return None
    if value is not None and not (isinstance(value, Opaque) and value.extract is None):
        return None
    if not _computes_only(builder, iterable, scope):
        return None
    call = located(ast.Call(ast.Name("list", ast.Load()), [iterable], []), iterable)
    params = extractable(builder, call, scope)
    if params is None:
        return None
    base = f"{_target(node)}_items"
    target, counter = base, 2
    while target in scope.env:
        target, counter = f"{base}_{counter}", counter + 1
    task = extract_task(builder, call, target, params, scope)
    scope.env[target] = Var(scope.var(target), (), "list")
    return Fragment(task, [(task, "next")]), located(ast.Name(target, ast.Load()), iterable)


def _target(node: ast.For | ast.AsyncFor) -> str:
    return node.target.id if isinstance(node.target, ast.Name) else "loop"


def _computes_only(builder: WorkflowBuilder, call: ast.Call, scope: Scope) -> bool:
    """`call` runs a function of the tree whose body calls only pure built-ins, on arguments
    that call nothing else (one level: a helper calling another helper is not followed).
    Built-ins themselves are read as they are (`enumerate`, `zip`: pairs; `range(n)`: the
    count of a retry loop, refused as such when it is not one)."""
    if any(
        isinstance(sub, ast.Call) and sub is not call and has_effects(sub) for sub in ast.walk(call)
    ):
        return False
    definition = _definition(builder, call, scope)
    if definition is None:
        return False
    return not any(
        isinstance(sub, ast.Call) and has_effects(sub)
        for stmt in definition.body
        for sub in ast.walk(stmt)
    )


def _definition(
    builder: WorkflowBuilder, call: ast.Call, scope: Scope
) -> ast.FunctionDef | ast.AsyncFunctionDef | None:
    if not isinstance(call.func, ast.Name) or call.func.id in scope.env:
        return None
    caller = builder.function_at(scope.path, call.lineno)
    if caller is None:
        return None
    module = builder.program.module_of(caller)
    candidates = [f"{module.module}.{call.func.id}"]
    candidates += [
        sym.qualname
        for name, syms in module.globals
        if name == call.func.id
        for sym in syms
        if isinstance(sym, Ref)
    ]
    for qualname in candidates:
        facts = builder.program.functions.get(qualname)
        if facts is None or facts.is_method:
            continue
        path = builder.program.module_of(qualname).path
        try:
            definition, _ = builder.function_node(path, facts.name, facts.span.line)
        except Unsupported:
            return None
        return definition
    return None
