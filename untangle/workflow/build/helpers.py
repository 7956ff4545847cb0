"""Helper inlining: a function or method of the tree that invokes is compiled in place;
a pure one is substituted as an expression; objects made in the handler are tracked."""

from __future__ import annotations

import ast
import re
from typing import TYPE_CHECKING

from untangle.workflow.build.ast_helpers import Replace, attr_name, copy_node, span_of
from untangle.workflow.build.retry import (
    PENDING_RETRY,
    has_retry_decorator,
    retry_decorator,
    settle_pending_retry,
)
from untangle.workflow.build.scope import (
    Fragment,
    FunctionOf,
    ObjectRef,
    Opaque,
    Scope,
    SelfRef,
    Unsupported,
    Value,
    to_expr,
)
from untangle.workflow.build.thunks import substitute, thunks_of
from untangle.workflow.build.work import (
    handed,
    has_work,
    named_function,
    site_edges,
    through_parameter,
    unique,
)
from untangle.workflow.ir import (
    Assign,
    Lit,
    Var,
    pascal,
)

if TYPE_CHECKING:
    from untangle.workflow.build.builder import WorkflowBuilder


def construct(builder: WorkflowBuilder, call: ast.Call, scope: Scope) -> ObjectRef | None:
    """`Cls(args)` for a class of the tree whose `__init__` only stores values on builder."""
    caller = builder.function_at(scope.path, call.lineno)
    inits = unique(
        edge.callee
        for edge in (site_edges(builder, caller, call, scope) if caller else ())
        if not edge.handed and edge.callee.endswith(".__init__")
    )
    if len(inits) != 1:
        return None  # no class of the tree, or one chosen at run time
    init = inits[0]
    facts = builder.program.functions[init]
    module = builder.program.module_of(init)
    node, lines = builder.function_node(module.path, facts.name, facts.span.line)
    params = [a.arg for a in (*node.args.posonlyargs, *node.args.args)]
    if not params:
        return None
    inner = Scope({}, module.path, lines)
    defaults = node.args.defaults
    for param, default in zip(params[len(params) - len(defaults) :], defaults):
        inner.env[param] = builder.value(default, inner)
    for param, arg in zip(params[1:], call.args):
        inner.env[param] = builder.value(arg, scope)
    for keyword in call.keywords:
        if keyword.arg is None:
            return None
        inner.env[keyword.arg] = builder.value(keyword.value, scope)
    attrs: dict[str, object] = {}
    for stmt in node.body:
        if (
            isinstance(stmt, ast.Assign)
            and len(stmt.targets) == 1
            and isinstance(stmt.targets[0], ast.Attribute)
            and isinstance(stmt.targets[0].value, ast.Name)
            and stmt.targets[0].value.id == params[0]
        ):
            if has_work(builder, stmt.value, inner):
                return None
            attrs[stmt.targets[0].attr] = builder.value(stmt.value, inner)
        elif not (isinstance(stmt, ast.Expr) and isinstance(stmt.value, ast.Constant)):
            return None
    return ObjectRef(init.rsplit(".", 1)[0], tuple(attrs.items()))


def inline(
    builder: WorkflowBuilder,
    info: tuple[str, ast.Call],
    value: ast.expr,
    target: str | None,
    scope: Scope,
) -> Fragment:
    callee, call = info
    if builder._inline_depth > 8:
        raise Unsupported(call.lineno, "helpers nested too deeply (recursion?)")
    if attr_name(call.func) == "submit" and call.args and handed(builder, call, scope):
        # pool.submit(fn, x): the future is modelled by its result, fn(x)
        call = ast.Call(
            func=call.args[0],
            args=call.args[1:],
            keywords=call.keywords,
            lineno=call.lineno,
            col_offset=call.col_offset,
            end_lineno=call.end_lineno,
            end_col_offset=call.end_col_offset,
        )
    facts = builder.program.functions[callee]
    module = builder.program.module_of(callee)
    node, lines = builder.function_node(module.path, facts.name, facts.span.line)
    params = [a.arg for a in (*node.args.posonlyargs, *node.args.args)]
    inner = Scope(
        {},
        module.path,
        lines,
        returns=[],
        catches=scope.catches,
        retry=scope.retry,
        prefix=prefix(builder, target or facts.name),
        caller=scope,
        call_line=call.lineno,
    )
    if facts.is_method and params:
        inner.env[params[0]] = receiver_of(builder, call, callee, scope)
        params = params[1:]
    defaults = node.args.defaults
    for param, default in zip(params[len(params) - len(defaults) :], defaults):
        inner.env[param] = builder.value(default, inner)
    thunks = thunks_of(builder, call, params, scope, module.path)
    for param, arg in zip(params, call.args):
        if param not in thunks:
            inner.env[param] = builder.value(arg, scope)
    for keyword in call.keywords:
        if keyword.arg is None:
            raise Unsupported(call.lineno, "helper arguments passed through **kwargs")
        if keyword.arg not in thunks:
            inner.env[keyword.arg] = builder.value(keyword.value, scope)
    closed_over(scope, inner, callee, node, params)
    statements = node.body
    if thunks:
        for param in thunks:
            inner.env.pop(param, None)
        statements = substitute(node.body, thunks, scope, inner, call.lineno)
    decorated = has_retry_decorator(node)
    if decorated:
        # the rule's error names depend on the body (its FunctionError checks): the tasks
        # get a placeholder, replaced once the body is built
        inner.retry = (PENDING_RETRY,)
    builder._inline_depth += 1
    try:
        body = builder.block(statements, inner)
    finally:
        builder._inline_depth -= 1
    if decorated:
        settle_pending_retry(builder, retry_decorator(builder, node, inner))
    assert inner.returns is not None
    exits = list(body.exits)
    values = [v for _, v in inner.returns]
    for returned_exits, _ in inner.returns:
        exits += returned_exits
    result: Value = Lit(None)
    if (
        values
        and all(v == values[0] for v in values)
        and len(inner.returns) >= 1
        and not body.exits
    ):
        result = values[0]
    elif values:
        if target is None:
            result = Lit(None)
        else:
            # several returns with different values: each path sets the variable
            exits = list(body.exits)
            for returned_exits, returned in inner.returns:
                setter = builder.add(
                    Assign(
                        builder.unique(f"Set{pascal(target)}"),
                        ((scope.var(target), to_expr(returned, call.lineno)),),
                        None,
                        span_of(call),
                    )
                )
                builder.connect(returned_exits, setter)
                exits.append((setter, "next"))
            result = Var(scope.var(target))
    start = body.start
    if start is None:
        # the helper did no work after all: just bind its value
        if target is not None:
            scope.env[target] = result
        return Fragment(None, [])
    if target is not None:
        outer_value = bind_inline(builder, value, call, result, scope)
        scope.env[target] = outer_value
    return Fragment(start, exits)


def receiver_of(builder: WorkflowBuilder, call: ast.Call, method: str, scope: Scope) -> Value:
    """What `builder` is in `method` when called as `call`: the object made in the handler when
    there is one, else the class."""
    if isinstance(call.func, ast.Attribute):
        if isinstance(call.func.value, ast.Call):
            # `Pipeline(STEPS).run(payload)`: an object made for the call
            made = construct(builder, call.func.value, scope)
            if made is not None:
                return made
        receiver = builder.value(call.func.value, scope)
        if isinstance(receiver, (ObjectRef, SelfRef)):
            return receiver
    return SelfRef(method.rsplit(".", 1)[0])


def prefix(builder: WorkflowBuilder, base: str) -> str:
    stem = re.sub(r"[^0-9A-Za-z]+", "_", base).strip("_") or "helper"
    prefix, counter = f"{stem}_", 2
    while prefix in builder._prefixes:
        prefix = f"{stem}{counter}_"
        counter += 1
    builder._prefixes.add(prefix)
    return prefix


def bind_inline(
    builder: WorkflowBuilder, value: ast.expr, call: ast.Call, result: Value, scope: Scope
) -> Value:
    marker = "__untangle_inline__"
    scope.env[marker] = result
    try:
        rewritten = Replace(call, ast.Name(marker, ast.Load())).visit(copy_node(value))
        return builder.value(rewritten, scope)
    finally:
        del scope.env[marker]


def pure_inline(builder: WorkflowBuilder, node: ast.Call, scope: Scope) -> Value | None:
    """A call to a small function of the tree that does no work (`_payload(resp)`): its
    `return` expression with the arguments substituted."""
    caller = builder.function_at(scope.path, node.lineno)
    if caller is None or builder._inline_depth > 8:
        return None
    callee = pure_callee(builder, caller, node, scope)
    if callee is None:
        return None
    facts = builder.program.functions[callee]
    module = builder.program.module_of(callee)
    try:
        definition, lines = builder.function_node(module.path, facts.name, facts.span.line)
    except Unsupported:
        return None
    body = [
        s
        for s in definition.body
        if not (isinstance(s, ast.Expr) and isinstance(s.value, ast.Constant))
    ]
    if definition.decorator_list or not body or not isinstance(body[-1], ast.Return):
        return None
    if not all(
        isinstance(s, ast.Assign) and len(s.targets) == 1 and isinstance(s.targets[0], ast.Name)
        for s in body[:-1]
    ):
        return None
    params = [a.arg for a in (*definition.args.posonlyargs, *definition.args.args)]
    inner = Scope({}, module.path, lines)
    if facts.is_method and params:
        inner.env[params[0]] = receiver_of(builder, node, callee, scope)
        params = params[1:]
    if len(node.args) > len(params) or any(k.arg is None for k in node.keywords):
        return None
    for param, arg in zip(params, node.args):
        inner.env[param] = builder.value(arg, scope)
    for keyword in node.keywords:
        assert keyword.arg is not None
        inner.env[keyword.arg] = builder.value(keyword.value, scope)
    builder._inline_depth += 1
    try:
        for stmt in body[:-1]:
            assert isinstance(stmt, ast.Assign) and isinstance(stmt.targets[0], ast.Name)
            inner.env[stmt.targets[0].id] = builder.value(stmt.value, inner)
        returned = body[-1]
        assert isinstance(returned, ast.Return)
        if returned.value is None:
            return Lit(None)
        found = builder.value(returned.value, inner)
        return None if isinstance(found, Opaque) else found
    except Unsupported:
        return None  # not data: the call itself may still be computed by a new function
    finally:
        builder._inline_depth -= 1


def pure_callee(builder: WorkflowBuilder, caller: str, call: ast.Call, scope: Scope) -> str | None:
    """The one function of the tree `call` calls, decided at this call site (see `callee_of`);
    None when the program's edges give several, or only what other call sites pass."""
    named = named_function(call.func, scope)
    if named is not None:
        return named
    called = unique(
        edge.callee
        for edge in site_edges(builder, caller, call, scope)
        if not edge.handed and edge.callee in builder.program.functions
    )
    if len(called) != 1 or through_parameter(builder, caller, call, scope):
        return None
    return called[0]


def closed_over(
    scope: Scope,
    inner: Scope,
    callee: str,
    node: ast.FunctionDef | ast.AsyncFunctionDef,
    params: list[str],
) -> None:
    """A function defined in the one being compiled (`def check(x): … parcel …` in the
    handler) reads the handler's locals it does not bind itself, as they are when it is called
    (a closure). Only where its `def` bound it: the caller's own name for it is this function."""
    defined = scope.env.get(node.name)
    if not (isinstance(defined, FunctionOf) and defined.qualname == callee):
        return
    bound = set(params) | {
        a.arg for a in (*node.args.kwonlyargs, node.args.vararg, node.args.kwarg) if a
    }
    read: list[str] = []
    for sub in ast.walk(node):
        if isinstance(sub, ast.Name):
            if isinstance(sub.ctx, ast.Load):
                read.append(sub.id)
            else:
                bound.add(sub.id)
    for name in dict.fromkeys(read):
        if name not in bound and name not in inner.env and name in scope.env:
            inner.env[name] = scope.env[name]
