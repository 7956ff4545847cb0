"""One region of statements → one new single-purpose function and the Task that runs it.

Its inputs are the locals it reads before writing them (plain data, passed in the Task's
payload); its outputs the names it writes that the code after it may read, the one value
itself or, for several, an object the names are read from. A value that is not JSON (an SDK
response, an open file, a generator, an object of a class) never crosses a state boundary: an
output holding one refuses the handler with that reason."""

from __future__ import annotations

import ast
import re
from collections.abc import Iterator
from typing import TYPE_CHECKING

from untangle.analysis.values import Instance
from untangle.facts.model import Local as LocalSym
from untangle.workflow.build.ast_helpers import dotted_name, snake, source_text, span_of
from untangle.workflow.build.extraction import (
    HANDLE_MAKERS,
    MUTATING_METHODS,
    PURE_FUNCTIONS,
    PURE_METHODS,
    has_effects,
    sdk_response,
)
from untangle.workflow.build.scope import (
    NOT_DATA,
    REFUSED,
    Fragment,
    FunctionOf,
    Opaque,
    Scope,
    Unsupported,
    to_expr,
)
from untangle.workflow.build.work import does_work
from untangle.workflow.ir import Arr, Extraction, FunctionRef, Obj, Task, Var, pascal

if TYPE_CHECKING:
    from untangle.workflow.build.builder import WorkflowBuilder


class NoRegion(Exception):
    """The statements cannot run as a new function (an input that is not data, code of
    another module): compiled as before, refused with their own reasons."""


def extract_region(builder: WorkflowBuilder, stmts: list[ast.stmt], scope: Scope) -> Fragment:
    if builder.program.module_of(builder.handler).path != scope.path:
        raise NoRegion  # the new functions live in the handler's module, not the helper's
    params: list[str] = []
    for name in inputs(stmts):
        known = scope.env.get(name)
        if known is None:
            continue  # a module-level name: the new function lives in the same module
        if isinstance(known, Opaque) and known.extract is not None:
            known.extract()  # computed by an earlier new function
            known = scope.env[name]
        if (
            isinstance(known, Opaque)
            and not isinstance(known, FunctionOf)
            and REFUSED not in known.message
        ):
            first, last = stmts[0].lineno, stmts[-1].end_lineno or stmts[-1].lineno
            raise Unsupported(
                first,
                f"lines {first}-{last} would run as a new function, but they read {known.message}"
                ", which is no JSON data to pass it",
                f"compute what they need from `{name}` before, or create it inside that code",
            )
        if isinstance(known, (FunctionOf, *NOT_DATA)):
            raise NoRegion
        params.append(name)
    written = written_names(stmts)
    live = live_after(builder, stmts, scope)
    outputs = [n for n in written if n in live]
    if not outputs and not any(
        has_effects(sub) for stmt in stmts for sub in ast.walk(stmt) if isinstance(sub, ast.expr)
    ):
        for written_name in written:  # nothing after it reads what it computes: no step
            scope.env[written_name] = Opaque(
                stmts[0].lineno, f"`{written_name}`, computed by code nothing reads"
            )
        return Fragment(None, [])
    for name in outputs:
        response = sdk_binding(builder, stmts, name, scope)
        if response is not None:
            raise Unsupported(
                response.lineno,
                f"the response of `{source_text(response, scope)}` kept for a later step: an "
                "AWS SDK response is not JSON data (datetimes, streams)",
                "take what the handler needs from it in the same statement "
                '(`size = s3.head_object(…)["ContentLength"]`)',
            )
        what = not_json(builder, stmts, name, scope)
        if what is not None:
            first, last = stmts[0].lineno, stmts[-1].end_lineno or stmts[-1].lineno
            raise Unsupported(
                first,
                f"`{name}` ({what}) is read after lines {first}-{last}, which run as a new "
                "function: it is not JSON data, so it cannot go from one state to the next",
                f"use `{name}` within the same code, before the next invoke, or keep only the "
                "data it holds",
            )
    function = function_name(builder, stmts, outputs, params, scope)
    ref = FunctionRef(f"${{{pascal(function)}FunctionArn}}", function)
    if len(outputs) == 1:
        result: str | None = scope.var(outputs[0])
    elif outputs:
        result = scope.var(re.sub(r"^compute_", "", function))
    else:
        result = None
    payload = Obj(tuple((p, to_expr(scope.env[p], stmts[0].lineno)) for p in params))
    name = builder.unique(pascal(function))
    task = Task(name, ref, payload, result, None, span_of(stmts[0]), False, scope.retry)
    builder.add(task)
    for catch in scope.catches:
        catch.tasks.append(name)
    body = "\n".join(ast.unparse(s) for s in stmts)
    if function not in {e.function for e in builder.extracted}:
        builder.extracted.append(
            Extraction(
                function,
                tuple(params),
                body,
                scope.path,
                stmts[0].lineno,
                outputs[0] if len(outputs) == 1 else None,
                body,
                tuple(outputs),
                stmts[-1].end_lineno or stmts[-1].lineno,
            )
        )
    builder.remember(ref)
    lists = {n for n in outputs if holds_list(stmts, n, scope)}
    for written_name in written:
        if written_name in outputs:
            scope.env[written_name] = (
                Var(scope.var(written_name), (), "list" if written_name in lists else "")
                if len(outputs) == 1
                else Var(result or "", (written_name,))
            )
        else:
            scope.env[written_name] = Opaque(
                stmts[0].lineno, f"`{written_name}`, local to the new function {function}"
            )
    return Fragment(name, [(name, "next")])


def function_name(
    builder: WorkflowBuilder,
    stmts: list[ast.stmt],
    outputs: list[str],
    params: list[str],
    scope: Scope,
) -> str:
    if outputs:
        base = "compute_" + "_and_".join(outputs[:3])
    else:
        calls = [
            snake(dotted_name(c.func))
            for s in stmts
            for c in ast.walk(s)
            if isinstance(c, ast.Call)
            and dotted_name(c.func) not in ("", "open", "print")
            and has_effects(c)
        ]
        base = calls[0] if calls else "run_step"
    stem = re.sub(r"_+", "_", base).strip("_")
    body = "\n".join(ast.unparse(s) for s in stmts)
    made = {e.function: (e.expression, e.params, e.path) for e in builder.extracted}
    name, counter = stem, 2
    while name in made and made[name] != (body, tuple(params), scope.path):
        name, counter = f"{stem}_{counter}", counter + 1
    return name


# --- names ------------------------------------------------------------------------------


def _events(node: ast.AST) -> Iterator[tuple[str, bool]]:
    """(name, is a store) in the order Python evaluates them: a value before its targets, a
    loop's iterable before its target and body."""
    if isinstance(node, ast.Name):
        yield node.id, isinstance(node.ctx, ast.Store)
        return
    if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef, ast.Lambda)):
        return
    if isinstance(node, ast.Assign):
        yield from _events(node.value)
        for target in node.targets:
            yield from _events(target)
        return
    if isinstance(node, ast.AugAssign):
        if isinstance(node.target, ast.Name):
            yield node.target.id, False
        yield from _events(node.value)
        yield from _events(node.target)
        return
    if isinstance(node, ast.AnnAssign):
        if node.value is not None:
            yield from _events(node.value)
        yield from _events(node.target)
        return
    if isinstance(node, (ast.For, ast.AsyncFor)):
        yield from _events(node.iter)
        yield from _events(node.target)
        for stmt in (*node.body, *node.orelse):
            yield from _events(stmt)
        return
    if isinstance(node, (ast.ListComp, ast.SetComp, ast.GeneratorExp, ast.DictComp)):
        bound = {
            n.id for g in node.generators for n in ast.walk(g.target) if isinstance(n, ast.Name)
        }
        for sub in ast.walk(node):
            if isinstance(sub, ast.Name) and isinstance(sub.ctx, ast.Load) and sub.id not in bound:
                yield sub.id, False
        return
    for child in ast.iter_child_nodes(node):
        yield from _events(child)


def inputs(stmts: list[ast.stmt]) -> list[str]:
    """The names the statements read before they bind them."""
    seen: dict[str, bool] = {}
    for stmt in stmts:
        for name, store in _events(stmt):
            seen.setdefault(name, store)
    return [name for name, store in seen.items() if not store]


def loaded_names(stmts: list[ast.stmt]) -> list[str]:
    return list(dict.fromkeys(name for s in stmts for name, store in _events(s) if not store))


def written_names(stmts: list[ast.stmt]) -> list[str]:
    """The names the statements bind or may change in place: `x[k] = …`, `x.append(…)`, an
    argument of a call that may do more than compute a value."""
    found: list[str] = []
    for stmt in stmts:
        for sub in ast.walk(stmt):
            if isinstance(sub, ast.Name) and isinstance(sub.ctx, ast.Store):
                found.append(sub.id)
            elif isinstance(sub, ast.ExceptHandler) and sub.name:
                found.append(sub.name)
            elif isinstance(sub, (ast.Subscript, ast.Attribute)) and isinstance(
                sub.ctx, (ast.Store, ast.Del)
            ):
                found += _base(sub)
            elif isinstance(sub, ast.Call):
                method = sub.func.attr if isinstance(sub.func, ast.Attribute) else ""
                if method in MUTATING_METHODS and isinstance(sub.func, ast.Attribute):
                    found += _base(sub.func.value)
                elif not _pure(sub):
                    found += [
                        a.id
                        for a in (*sub.args, *(k.value for k in sub.keywords))
                        if isinstance(a, ast.Name)
                    ]
    return list(dict.fromkeys(found))


def _base(node: ast.expr) -> list[str]:
    while isinstance(node, (ast.Subscript, ast.Attribute)):
        node = node.value
    return [node.id] if isinstance(node, ast.Name) else []


def _pure(call: ast.Call) -> bool:
    method = call.func.attr if isinstance(call.func, ast.Attribute) else ""
    return (
        dotted_name(call.func) in PURE_FUNCTIONS
        or method in PURE_METHODS
        or method in HANDLE_MAKERS
        or (isinstance(call.func, ast.Name) and call.func.id in HANDLE_MAKERS)
    )


def live_after(builder: WorkflowBuilder, stmts: list[ast.stmt], scope: Scope) -> set[str]:
    """The names the code after `stmts` may read before binding them again (the whole loop
    around them: its next round reads what this one wrote)."""
    first, last = stmts[0], stmts[-1]
    end = last.end_lineno or last.lineno
    tree = builder.sources(scope.path).tree
    chain = None
    for function in ast.walk(tree):
        if isinstance(function, (ast.FunctionDef, ast.AsyncFunctionDef)):
            chain = _chain(function.body, first) or chain
    if chain is None:  # a rewritten statement: whatever the module reads outside them
        return {
            n.id
            for n in ast.walk(tree)
            if isinstance(n, ast.Name)
            and isinstance(n.ctx, ast.Load)
            and not first.lineno <= n.lineno <= end
        }
    live: set[str] = set()
    killed: set[str] = set()
    for block, position, parent in chain:
        following = [s for s in block[position:] if s.lineno > end]
        for stmt in following:
            live |= {name for name, store in _events(stmt) if not store} - killed
            if isinstance(stmt, ast.Assign):
                killed |= {t.id for t in stmt.targets if isinstance(t, ast.Name)}
        if isinstance(parent, (ast.For, ast.While, ast.AsyncFor)):
            live |= {n.id for n in ast.walk(parent) if isinstance(n, ast.Name)}
        if isinstance(parent, ast.Try):
            for part in (*parent.handlers, *parent.orelse, *parent.finalbody):
                live |= {n.id for n in ast.walk(part) if isinstance(n, ast.Name)}
    return live


def _chain(
    body: list[ast.stmt], first: ast.stmt, parent: ast.stmt | None = None
) -> list[tuple[list[ast.stmt], int, ast.stmt | None]] | None:
    """The blocks from the one holding `first` out to the function's body: (block, index of
    the statement there, the statement whose block it is)."""
    for index, stmt in enumerate(body):
        if stmt.lineno == first.lineno and stmt.col_offset == first.col_offset:
            return [(body, index, parent)]
        for field in ("body", "orelse", "finalbody", "handlers"):
            inner = getattr(stmt, field, None)
            if not isinstance(inner, list):
                continue
            blocks = [h.body for h in inner] if field == "handlers" else [inner]
            for block in blocks:
                found = _chain(block, first, stmt)
                if found is not None:
                    return [*found, (body, index + 1, parent)]
    return None


LIST_MAKERS = ("list", "sorted")


def holds_list(stmts: list[ast.stmt], name: str, scope: Scope) -> bool:
    """Every value the statements bind to `name` is a list (or they only change in place the
    list it held before)."""
    values = [
        sub.value
        for stmt in stmts
        for sub in ast.walk(stmt)
        if isinstance(sub, (ast.Assign, ast.AnnAssign))
        and any(
            isinstance(t, ast.Name) and t.id == name
            for t in (sub.targets if isinstance(sub, ast.Assign) else [sub.target])
        )
    ]
    if not values:
        return _stores(stmts, name) == 0 and isinstance(scope.env.get(name), Arr)
    return _stores(stmts, name) == len(values) and all(
        isinstance(v, (ast.List, ast.ListComp))
        or (isinstance(v, ast.Call) and dotted_name(v.func) in LIST_MAKERS)
        for v in values
    )


def _stores(stmts: list[ast.stmt], name: str) -> int:
    return sum(
        1
        for stmt in stmts
        for sub in ast.walk(stmt)
        if isinstance(sub, ast.Name) and sub.id == name and isinstance(sub.ctx, ast.Store)
    )


def binds_not_json(builder: WorkflowBuilder, node: ast.stmt, scope: Scope) -> bool:
    """`node` binds a name to a value that is not JSON data and no object the workflow works
    through (a client, an object whose methods invoke): an open file, a generator, a set, an
    object of a class that only computes."""
    if not isinstance(node, ast.Assign):
        return False
    for target in node.targets:
        if not isinstance(target, ast.Name):
            continue
        what = _not_json_value(builder, node.value, target.id, scope)
        if what is None or "client" in what:
            continue
        called = dotted_name(node.value.func) if isinstance(node.value, ast.Call) else ""
        if "object of" in what and any(
            qualname.rsplit(".", 2)[-2:-1] == [called.rsplit(".", 1)[-1]]
            and does_work(builder, qualname)
            for qualname in builder.program.functions
        ):
            continue  # a wrapper whose methods invoke: the workflow goes through it
        return True
    return False


def sdk_binding(
    builder: WorkflowBuilder, stmts: list[ast.stmt], name: str, scope: Scope
) -> ast.Call | None:
    """The AWS SDK call whose whole response the statements bind to `name`."""
    for stmt in stmts:
        for sub in ast.walk(stmt):
            if (
                isinstance(sub, ast.Assign)
                and any(isinstance(t, ast.Name) and t.id == name for t in sub.targets)
                and isinstance(sub.value, ast.Call)
                and sdk_response(builder, sub.value, scope)
            ):
                return sub.value
    return None


def not_json(
    builder: WorkflowBuilder, stmts: list[ast.stmt], name: str, scope: Scope
) -> str | None:
    """What `name` holds when the statements bind it to something that is not JSON data."""
    for stmt in stmts:
        for sub in ast.walk(stmt):
            if (
                isinstance(sub, ast.withitem)
                and isinstance(sub.optional_vars, ast.Name)
                and sub.optional_vars.id == name
            ):
                return f"`{source_text(sub.context_expr, scope)}`, a context manager"
            if not isinstance(sub, ast.Assign) or not any(
                isinstance(t, ast.Name) and t.id == name for t in sub.targets
            ):
                continue
            value = sub.value
            what = _not_json_value(builder, value, name, scope)
            if what is not None:
                return what
    return None


def _not_json_value(
    builder: WorkflowBuilder, value: ast.expr, name: str, scope: Scope
) -> str | None:
    text = source_text(value, scope)
    if isinstance(value, (ast.Set, ast.SetComp)) or (
        isinstance(value, ast.Call) and dotted_name(value.func) in ("set", "frozenset")
    ):
        return f"`{text}`, a set"
    if isinstance(value, ast.ListComp):
        inner = _not_json_value(builder, value.elt, name, scope)
        return f"`{text}`, a list of {inner.split(', ', 1)[-1]}s" if inner else None
    if isinstance(value, ast.List):
        for item in value.elts:
            inner = _not_json_value(builder, item, name, scope)
            if inner is not None:
                return f"`{text}`, a list holding {inner.split(', ', 1)[-1]}"
        return None
    if isinstance(value, (ast.GeneratorExp, ast.Lambda)):
        return f"`{text}`, a generator" if isinstance(value, ast.GeneratorExp) else "a lambda"
    base = value
    while isinstance(base, ast.Subscript):
        base = base.value
    if sdk_response(builder, base, scope):
        return f"the response of `{source_text(base, scope)}`, with datetimes and streams"
    if not isinstance(value, ast.Call):
        return None
    called = dotted_name(value.func)
    if called == "open":
        return f"`{text}`, an open file"
    if isinstance(value.func, ast.Attribute) and value.func.attr == "read" and not value.args:
        return f"`{text}`, bytes read from a stream"
    if called.rsplit(".", 1)[-1] in HANDLE_MAKERS or called in ("boto3.client", "boto3.resource"):
        return f"`{text}`, a client or service object"
    qualname = builder.function_at(scope.path, value.lineno)
    if qualname is not None and any(
        isinstance(v, Instance) for v in builder.program.values(LocalSym(qualname, name))
    ):
        return f"`{text}`, an object of a class"
    tree = builder.sources(scope.path).tree
    classes = {n.name for n in ast.walk(tree) if isinstance(n, ast.ClassDef)}
    if called in classes:
        return f"`{text}`, an object of the class `{called}`"
    return None
