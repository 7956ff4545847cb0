"""`try: body = json.loads(raw) except ValueError: return bad_request()` around local code.

The machine computes local code in its own states (a Pass, a JSONata expression), which no
Catch can catch, so the except block would never run. The `try` runs as the original Python in
a new function instead, which answers which except block caught the error (its index) and the
error's message; a Choice then runs that block, with its name holding the message (`str(exc)`
is the message). Only except blocks that end the handler's path (`return`, `raise`) and read
nothing the `try` body sets: the names the body set before the error are the new function's."""

from __future__ import annotations

import ast
import copy
from typing import TYPE_CHECKING

from untangle.workflow.build.ast_helpers import located
from untangle.workflow.build.caught_raise import exception_uses, message_body
from untangle.workflow.build.region_extract import NoRegion, extract_region
from untangle.workflow.build.region_names import loaded_names, written_names
from untangle.workflow.build.scope import Fragment, Scope, Unsupported
from untangle.workflow.build.work import has_work_in

if TYPE_CHECKING:
    from untangle.workflow.build.builder import WorkflowBuilder

CAUGHT = "untangle_caught"
MESSAGE = "untangle_message"
ERROR = "untangle_error"


def guarded_local_code(builder: WorkflowBuilder, node: ast.Try, scope: Scope) -> Fragment | None:
    """The `try` as a new function and a Choice on what it caught (for a `try` whose except
    blocks only local code can fail into); None when it is not local code guarded so."""
    if node.orelse or node.finalbody or has_work_in(builder, node.body, scope):
        return None
    written = set(written_names(node.body))
    for handler in node.handlers:
        if not handler.body or not isinstance(handler.body[-1], (ast.Return, ast.Raise)):
            return None  # it goes on after the try, with what the body set before the error
        if any(
            isinstance(sub, ast.Raise) and sub.exc is None
            for stmt in handler.body
            for sub in ast.walk(stmt)
        ):
            return None  # a re-raise: the error itself, which no state holds
        read = set(loaded_names(handler.body)) - ({handler.name} if handler.name else set())
        if read & written:
            return None
        used, exact = exception_uses(handler)
        if used and not exact:
            return None
    if CAUGHT in scope.env or MESSAGE in scope.env:
        return None
    caught_try = copy.deepcopy(node)
    for index, handler in enumerate(caught_try.handlers):
        name = handler.name or ERROR
        handler.name = name
        answer = ast.Return(
            ast.Dict(
                [ast.Constant(CAUGHT), ast.Constant(MESSAGE)],
                [
                    ast.Constant(index),
                    ast.Call(ast.Name("str", ast.Load()), [ast.Name(name, ast.Load())], []),
                ],
            )
        )
        handler.body = [located(answer, handler)]
    end = located(ast.Assign([ast.Name(CAUGHT, ast.Store())], ast.Constant(None)), node)
    message = located(ast.Assign([ast.Name(MESSAGE, ast.Store())], ast.Constant("")), node)
    for stmt in (end, message):
        stmt.lineno = stmt.end_lineno = node.end_lineno or node.lineno
    try:
        extracted = extract_region(builder, [caught_try, end, message], scope, (CAUGHT, MESSAGE))
    except (NoRegion, Unsupported):
        return None
    branches: ast.If | None = None
    for index in reversed(range(len(node.handlers))):
        handler = node.handlers[index]
        body = message_body(handler)
        if handler.name:
            bind = ast.Assign([ast.Name(handler.name, ast.Store())], ast.Name(MESSAGE, ast.Load()))
            body = [located(bind, handler), *body]
        test = ast.Compare(ast.Name(CAUGHT, ast.Load()), [ast.Eq()], [ast.Constant(index)])
        branches = located(
            ast.If(located(test, handler), body, [branches] if branches else []), handler
        )
    assert branches is not None
    return builder.sequence(extracted, builder.stmt(branches, scope))
