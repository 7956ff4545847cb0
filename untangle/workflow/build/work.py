"""Which calls do work: an invoke, a sleep, or a helper of the tree that invokes or sleeps."""

from __future__ import annotations

import ast
from collections.abc import Iterable
from typing import TYPE_CHECKING

from untangle.analysis.program import Edge
from untangle.facts.model import Ref
from untangle.workflow.build.ast_helpers import attr_name, column_of, dotted_name, source_text
from untangle.workflow.build.scope import FunctionOf, Scope, Unsupported
from untangle.workflow.build.thunks import lambda_with_work

if TYPE_CHECKING:
    from untangle.workflow.build.builder import WorkflowBuilder


def has_work(builder: WorkflowBuilder, node: ast.expr, scope: Scope) -> bool:
    return work_call(builder, node, scope) is not None


def work_call(builder: WorkflowBuilder, node: ast.expr, scope: Scope) -> tuple[str, object] | None:
    """The call inside `node` that is an invoke, a sleep, or a call to a helper that invokes
    or sleeps (outermost first)."""
    for sub in ast.walk(node):
        if isinstance(sub, ast.ListComp) and any(
            isinstance(inner, ast.Call) and direct_work(builder, inner, scope)
            for inner in ast.walk(sub)
        ):
            return "map", sub
        if not isinstance(sub, ast.Call):
            continue
        if attr_name(sub.func) == "map" and len(sub.args) == 2 and handed(builder, sub, scope):
            return "map", sub
        if dotted_name(sub.func) in ("asyncio.gather", "gather") and any(
            isinstance(a, ast.Call) and direct_work(builder, a, scope) for a in sub.args
        ):
            return "gather", sub
        key = (scope.path, sub.lineno, column_of(sub, scope))
        if key in builder.invokes:
            return "invoke", builder.invokes[key]
        if key in builder.sleeps:
            return "sleep", builder.sleeps[key]
        callee = callee_of(builder, sub, scope)
        if callee is None and lambda_with_work(builder, sub, scope):
            # `retry(lambda: invoke(...))`: the helper runs the work it is handed
            caller = builder.function_at(scope.path, sub.lineno)
            named = named_function(sub.func, scope)
            called = [named] if named else []
            if not called and caller is not None:
                called = unique(
                    e.callee
                    for e in site_edges(builder, caller, sub, scope)
                    if not e.handed and e.callee in builder.program.functions
                )
            if not called and caller is not None and isinstance(sub.func, ast.Name):
                # a function of the caller's module (no call edge: it does no work itself)
                module = builder.program.module_of(caller)
                own = f"{module.module}.{sub.func.id}"
                if sub.func.id not in scope.env and own in builder.program.functions:
                    called = [own]
                imported = [
                    sym.qualname
                    for name, syms in module.globals
                    if name == sub.func.id
                    for sym in syms
                    if isinstance(sym, Ref) and sym.qualname in builder.program.functions
                ]
                if not called and imported:
                    raise Unsupported(
                        sub.lineno,
                        f"a lambda that invokes handed to `{sub.func.id}`, a helper of another "
                        "module: the machine cannot place the lambda's calls in it",
                        "define the helper in the handler's module, or call it with a named "
                        "function",
                    )
            callee = one_of(called, sub, sub.func, scope)
        if callee is not None:
            return "call", (callee, sub)
    return None


def direct_work(builder: WorkflowBuilder, call: ast.Call, scope: Scope) -> bool:
    key = (scope.path, call.lineno, column_of(call, scope))
    return (
        key in builder.invokes
        or key in builder.sleeps
        or callee_of(builder, call, scope) is not None
    )


def handed(builder: WorkflowBuilder, call: ast.Call, scope: Scope) -> str | None:
    """The function handed to `pool.map(fn, items)` when it invokes: the one `fn` names at this
    call site when it names one, else the one the program's call edges give."""
    named = named_function(call.args[0], scope) if call.args else None
    if named is not None:
        return named if builder.program.reaches_invoke(named) else None
    caller = builder.function_at(scope.path, call.lineno)
    if caller is None:
        return None
    candidates = unique(
        edge.callee
        for edge in site_edges(builder, caller, call, scope)
        if edge.handed and builder.program.reaches_invoke(edge.callee)
    )
    return one_of(candidates, call, call.args[0] if call.args else call.func, scope)


def callee_of(builder: WorkflowBuilder, call: ast.Call, scope: Scope) -> str | None:
    """The function of the tree that `call` runs, when it does work (invokes or sleeps).

    Resolved per call site: a name holding a function of the tree (a helper's parameter bound
    to `deposit` where the helper was called, `op = deposit`) reaches that function, whatever
    the helper's other call sites pass. Otherwise the program's call edges at the site decide,
    which for a parameter are the union over every call site of its function: several functions
    there, or one that the call site of this inlining did not name, is refused (never one
    picked)."""
    named = named_function(call.func, scope)
    if named is not None:
        return named if does_work(builder, named) else None
    caller = builder.function_at(scope.path, call.lineno)
    if caller is None:
        return None
    edges = [
        edge for edge in site_edges(builder, caller, call, scope) if does_work(builder, edge.callee)
    ]
    called = unique(edge.callee for edge in edges if not edge.handed)
    if called:
        if through_parameter(builder, caller, call, scope):
            raise refuse_through_parameter(call, caller, scope)
        return one_of(called, call, call.func, scope)
    # a function handed to something that calls it (`pool.submit(fn, x)`)
    passed = [*call.args, *(k.value for k in call.keywords)]
    through = call.args[0] if call.args else call
    named_here = unique(
        name
        for arg in passed
        if (name := named_function(arg, scope)) is not None and does_work(builder, name)
    )
    if named_here:
        return one_of(named_here, call, through, scope)
    return one_of(unique(edge.callee for edge in edges if edge.handed), call, through, scope)


def named_function(node: ast.expr, scope: Scope) -> str | None:
    """The function of the tree a local name holds here (bound where a helper was called)."""
    if isinstance(node, ast.Name):
        known = scope.env.get(node.id)
        if isinstance(known, FunctionOf):
            return known.qualname
    return None


def site_edges(builder: WorkflowBuilder, caller: str, call: ast.Call, scope: Scope) -> list[Edge]:
    column = column_of(call, scope)
    return [
        edge
        for edge in builder.program.edges_from(caller)
        if edge.site.span.line == call.lineno and edge.site.span.column == column
    ]


def unique(names: Iterable[str]) -> list[str]:
    return sorted(set(names))


def one_of(candidates: list[str], call: ast.Call, through: ast.expr, scope: Scope) -> str | None:
    """The only candidate; several are refused: which one runs is decided at run time."""
    if len(candidates) <= 1:
        return candidates[0] if candidates else None
    short = [c.rsplit(".", 1)[-1] for c in candidates]
    names = short if len(set(short)) == len(short) else candidates
    listed = ", ".join(f"`{n}`" for n in names[:-1]) + f" or `{names[-1]}`"
    raise Unsupported(
        call.lineno,
        f"`{source_text(through, scope)}` is {listed}, chosen at run time: the machine cannot "
        "tell which function this call runs",
        f"call each function in its own branch (`if …: {names[0]}(…) else: {names[1]}(…)`), "
        "which becomes a Choice",
    )


def through_parameter(builder: WorkflowBuilder, caller: str, call: ast.Call, scope: Scope) -> bool:
    """`operation(entry)` in a helper called from several places, where this inlining bound the
    parameter `operation` to something that is not a function of the tree: the program's edges
    there are what the helper's call sites pass together, not what this one does."""
    func = call.func
    if not isinstance(func, ast.Name) or func.id not in scope.env or caller == builder.handler:
        return False
    if func.id not in builder.program.functions[caller].params:
        return False
    sites = {(edge.caller, edge.site.span) for edge in builder.program.calls_to(caller)}
    return len(sites) > 1


def refuse_through_parameter(call: ast.Call, caller: str, scope: Scope) -> Unsupported:
    helper = caller.rsplit(".", 1)[-1]
    return Unsupported(
        call.lineno,
        f"`{source_text(call.func, scope)}` is a parameter of `{helper}`, and this call of "
        f"`{helper}` gives it no function of the tree by name: the machine cannot tell which "
        "function it runs",
        f"pass the function itself where `{helper}` is called (`{helper}(…, my_function)`)",
    )


def does_work(builder: WorkflowBuilder, qualname: str) -> bool:
    return qualname in builder.program.invoking or sleeps_in(builder, qualname)


def sleeps_in(builder: WorkflowBuilder, qualname: str) -> bool:
    return any(s.function == qualname for s in builder.program.sleeps)


def has_work_in(builder: WorkflowBuilder, body: list[ast.stmt], scope: Scope) -> bool:
    return any(
        isinstance(sub, ast.expr) and has_work(builder, sub, scope)
        for stmt in body
        for sub in ast.walk(stmt)
        if isinstance(sub, ast.Call)
    )
