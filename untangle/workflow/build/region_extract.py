"""One region of statements → one new single-purpose function and the Task that runs it.

Its inputs are the locals it reads before writing them (plain data, passed in the Task's
payload); its outputs the names it writes that the code after it may read, the one value
itself or, for several, an object the names are read from. A value that is not JSON (an SDK
response, an open file, a generator, an object of a class) never crosses a state boundary: an
output holding one refuses the handler with that reason."""

from __future__ import annotations

import ast
import re
from typing import TYPE_CHECKING

from untangle.workflow.build.ast_helpers import dotted_name, snake, source_text, span_of
from untangle.workflow.build.extraction import has_effects
from untangle.workflow.build.region_futures import results_for_futures
from untangle.workflow.build.region_json import kind_of, not_json, not_json_types, sdk_binding
from untangle.workflow.build.region_names import inputs, live_after, written_names
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
from untangle.workflow.ir import Extraction, FunctionRef, Obj, Reason, Task, Var, pascal

if TYPE_CHECKING:
    from untangle.workflow.build.builder import WorkflowBuilder


class NoRegion(Exception):
    """The statements cannot run as a new function (an input that is not data, code of
    another module): compiled as before, refused with their own reasons."""


def extract_region(
    builder: WorkflowBuilder,
    stmts: list[ast.stmt],
    scope: Scope,
    returned: tuple[str, ...] = (),
) -> Fragment:
    """The new function running `stmts`; `returned`: names it returns whatever reads them
    after (what the planner itself reads, not the handler's code)."""
    if builder.program.module_of(builder.handler).path != scope.path:
        raise NoRegion  # the new functions live in the handler's module, not the helper's
    params: list[str] = []
    for name in inputs(stmts):
        known = scope.env.get(name)
        if known is None:
            continue  # a module-level name: the new function lives in the same module
        if isinstance(known, Opaque) and known.extract is not None:
            # computed by an earlier new function; its variable, also when that function
            # was reserved in another scope than this one (whose env it then did not update)
            known = scope.env[name] = known.extract()
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
    outputs = [n for n in written if n in live or n in returned]
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
        what = not_json(builder, stmts, name, scope) or not_json_types(stmts).get(name)
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
    printed, reordered = results_for_futures(stmts, params)
    if reordered is not None:
        builder.notes.append(
            Reason(
                scope.path,
                reordered,
                "as_completed: the Map gives the results in the order of the items, "
                "not the order they finished in",
            )
        )
    body = "\n".join(ast.unparse(s) for s in printed)
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
    kinds = {n: kind_of(stmts, n, scope) for n in outputs}
    for written_name in written:
        if written_name in outputs:
            scope.env[written_name] = (
                Var(scope.var(written_name), (), kinds[written_name])
                if len(outputs) == 1
                else Var(result or "", (written_name,), kinds[written_name])
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
    # (the planner's own outputs, `untangle_caught`, do not name it)
    named = [name for name in outputs if not name.startswith("untangle_")]
    if named:
        base = "compute_" + "_and_".join(named[:3])
    elif outputs:
        base = "compute_" + outputs[0].removeprefix("untangle_")
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
