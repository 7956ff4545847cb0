"""try/except → Catch, raise → Fail."""

from __future__ import annotations

import ast
from dataclasses import replace
from typing import TYPE_CHECKING

from untangle.workflow.build.ast_helpers import dotted_name, span_of
from untangle.workflow.build.caught_raise import (
    catching,
    exception_uses,
    message_body,
    refused,
    transform_caught_raise,
)
from untangle.workflow.build.local_try import guarded_local_code
from untangle.workflow.build.retry import error_names
from untangle.workflow.build.scope import (
    NOT_DATA,
    Fragment,
    Opaque,
    PendingCatch,
    Scope,
    Unsupported,
)
from untangle.workflow.ir import (
    CatchRule,
    Expr,
    Fail,
    Reason,
    Task,
    Var,
)

if TYPE_CHECKING:
    from untangle.workflow.build.builder import WorkflowBuilder


def transform_raise(builder: WorkflowBuilder, node: ast.Raise, scope: Scope) -> Fragment:
    if node.exc is None:
        raise Unsupported(
            node.lineno, "a bare `raise` outside an except block this planner understands"
        )
    exc = node.exc
    error = (
        dotted_name(exc.func if isinstance(exc, ast.Call) else exc).rsplit(".", 1)[-1] or "Error"
    )
    target = catching(builder, error, node.lineno, scope)
    if target is not None:
        return transform_caught_raise(builder, node, error, target, scope)
    cause: Expr | None = None
    if isinstance(exc, ast.Call) and exc.args:
        value = builder.value(exc.args[0], scope)
        cause = value if not isinstance(value, NOT_DATA) else None
    name = builder.add(Fail(builder.unique(error), error, cause, span_of(node)))
    return Fragment(name, [])


class LocalCatch(Unsupported):
    """An except block only local code (which the machine computes itself) can fail into."""


def transform_try(builder: WorkflowBuilder, node: ast.Try, scope: Scope) -> Fragment:
    from untangle.workflow.build.region import Snapshot

    before = Snapshot.take(builder, scope, Fragment(None, []))
    try:
        return _transform_try(builder, node, scope)
    except LocalCatch:
        # the try runs as a new function telling which except block caught the error
        before.restore(builder, scope)
        guarded = guarded_local_code(builder, node, scope)
        if guarded is not None:
            return guarded
        # refused as before, with the reasons of the statements inside it too
        before.restore(builder, scope)
        return _transform_try(builder, node, scope)


def _transform_try(builder: WorkflowBuilder, node: ast.Try, scope: Scope) -> Fragment:
    if node.finalbody:
        raise Unsupported(
            node.lineno,
            "a `finally` block",
            "move its statements after the `try`, where they run when it succeeds, and into "
            "the `except` blocks that go on",
            compile_bodies=True,
        )
    if node.orelse:
        raise Unsupported(
            node.lineno,
            "an `else` block after `try`",
            "move its statements to the end of the `try` block",
            compile_bodies=True,
        )
    handlers = []
    for handler in node.handlers:
        if transparent(handler):
            builder.notes.append(
                Reason(
                    scope.path,
                    handler.lineno,
                    "an except block that only logs and re-raises: the error propagates as before",
                )
            )
            continue
        errors = (
            error_names(builder, handler.type, scope)
            if handler.type is not None
            else ("States.ALL",)
        )
        var = scope.var(handler.name) if handler.name else ""
        handlers.append(PendingCatch(errors, handler, node=node, var=var))
    if not handlers:
        return builder.block(node.body, scope)
    inner = replace(scope, catches=[*scope.catches, *handlers])
    deferred_before = {id(v) for v in scope.env.values() if _deferred(v)}
    body = builder.block(node.body, inner)
    # a computation of the body that becomes a new function only when its value is read
    # (`total = result["score"] * 2`, read after the try) runs in Python inside this try: it
    # may raise into these except blocks, so its Task is made now, where their Catch reaches it
    # (only when the body's local code can raise what they catch: else they stay dropped)
    catchable = any(local_raiser(node.body, catch.errors) is not None for catch in handlers)
    for value in list(inner.env.values()):
        if catchable and isinstance(value, Opaque) and id(value) not in deferred_before:
            make = value.extract
            if make is not None:
                make()
    exits = list(body.exits)
    for catch in handlers:
        # a task that already catches every error its Lambda call raises never gets here
        catch.tasks = [t for t in catch.tasks if not shadowed(builder, t, catch.errors)]
        raises = [(n, slot) for n, slot in catch.raises if n in builder.states]
        if not catch.tasks and not raises:
            # no state can fail into this handler: dropping it is faithful only when the
            # local code it guards (which the machine evaluates itself) cannot raise its errors
            risky = local_raiser(node.body, catch.errors)
            if risky is not None:
                raise LocalCatch(
                    catch.handler.lineno,
                    f"`{except_text(catch.handler)}` catches an error that "
                    f"`{ast.unparse(risky)}` (line {risky.lineno}) may raise; the machine "
                    "computes that in its own states, which cannot catch it, so it would fail "
                    "where the handler ran the except block",
                    "test the data with an `if` before using it instead of catching the error",
                )
            continue
        handler_scope = replace(scope, env=dict(scope.env))
        body_stmts = [s for s in catch.handler.body if not is_reraise(s)]
        live = [env for (n, _), env in zip(catch.raises, catch.envs) if n in builder.states]
        if raises:
            # the locals where the raise left the try body, the same at every raise (and for
            # a failed task, the locals at the end of the body, which the handler sees then)
            read = read_names(catch.handler)
            envs = [{k: v for k, v in env.items() if k in read} for env in live]
            after = {k: v for k, v in scope.env.items() if k in read}
            if any(env != envs[0] for env in envs) or (catch.tasks and envs[0] != after):
                line, error = catch.raised[0]
                raise refused(line, error, catch.handler)
            handler_scope = replace(scope, env=dict(scope.env if catch.tasks else live[0]))
        if catch.handler.name and raises:
            if catch.tasks and exception_uses(catch.handler)[0]:
                line, error = catch.raised[0]
                failing = ", ".join(f"`{task}`" for task in catch.tasks[:3])
                raise Unsupported(
                    line,
                    f"`{except_text(catch.handler)} as {catch.handler.name}` catches both "
                    f"`raise {error}` and a failure of the state(s) {failing}, and reads "
                    f"`{catch.handler.name}`: a failed state has no `str({catch.handler.name})` "
                    "the machine could give it",
                    f"catch the raised class alone (`except {error} as {catch.handler.name}`)"
                    if error not in ("Exception", "BaseException")
                    else "raise a class of your own (`class ChargeFailed(Exception)`) and catch "
                    "that alone",
                )
            handler_scope.env[catch.handler.name] = Var(catch.var)
            body_stmts = message_body(catch.handler)
        elif catch.handler.name:
            handler_scope.env[catch.handler.name] = Var("error")
            if catch.tasks and exception_uses(catch.handler)[0]:
                bound = catch.handler.name
                builder.notes.append(
                    Reason(
                        scope.path,
                        catch.handler.lineno,
                        f"`{bound}` of `{except_text(catch.handler)} as {bound}` is the failed "
                        'state\'s error output (`{"Error": …, "Cause": …}`), not a Python '
                        f"exception: its text (`str({bound})`) differs from the handler's",
                    )
                )
        handler_fragment = builder.block(body_stmts, handler_scope)
        if raises and (handler_fragment.start is None or handler_fragment.exits):
            # it goes on after the try: with the locals the rest of the function reads
            name = catch.handler.name  # Python unbinds it at the end of the except block
            ends = [handler_scope.env] if handler_fragment.start is not None else live
            if any({k: v for k, v in env.items() if k != name} != scope.env for env in ends):
                line, error = catch.raised[0]
                raise refused(line, error, catch.handler)
        if raises and handler_fragment.start is None:
            exits += raises  # `except X: pass`: the raise goes on after the try
        elif raises and handler_fragment.start is not None:
            builder.connect(raises, handler_fragment.start)
        if not catch.tasks:
            if handler_fragment.start is not None:
                exits += handler_fragment.exits
            continue
        reraise = any(is_reraise(s) for s in catch.handler.body)
        start = handler_fragment.start
        if reraise:
            fail = builder.add(
                Fail(builder.unique("Failed"), "", Var("error", ("Cause",)), span_of(catch.handler))
            )
            if start is None:
                start = fail
            else:
                builder.connect(handler_fragment.exits, fail)
        else:
            exits += handler_fragment.exits
        if start is None:
            raise Unsupported(catch.handler.lineno, "an except block that swallows the error")
        for task_name in catch.tasks:
            task = builder.states[task_name]
            assert isinstance(task, Task)
            builder.states[task_name] = replace(
                task, catch=(*task.catch, CatchRule(catch.errors, start, "error"))
            )
    return Fragment(body.start, exits)


# the errors of Python's own operations, by the classes an `except` names for them (names as
# `error_names` gives them): what evaluating data in a Pass or Choice state stands for
LOCAL_ERRORS: dict[str, tuple[type[ast.AST], ...]] = {
    "States.ALL": (ast.Subscript, ast.Call, ast.BinOp, ast.Attribute, ast.Compare),
    "KeyError": (ast.Subscript,),
    "IndexError": (ast.Subscript,),
    "LookupError": (ast.Subscript,),
    "TypeError": (ast.Subscript, ast.Call, ast.BinOp, ast.Compare),
    "ValueError": (ast.Call,),
    "JSONDecodeError": (ast.Call,),
    "UnicodeDecodeError": (ast.Call,),
    "AttributeError": (ast.Attribute,),
    "ZeroDivisionError": (ast.BinOp,),
    "ArithmeticError": (ast.BinOp,),
}


def _deferred(value: object) -> bool:
    """A value a new function will compute the first time it is read."""
    return isinstance(value, Opaque) and value.extract is not None


def local_raiser(body: list[ast.stmt], errors: tuple[str, ...]) -> ast.expr | None:
    """The first expression of `body` whose evaluation may raise one of `errors` (a subscript
    for `KeyError`, a call for `ValueError`, a division for `ZeroDivisionError`, …), or None."""
    kinds = tuple(kind for error in errors for kind in LOCAL_ERRORS.get(error, ()))
    any_operator = bool({"States.ALL", "TypeError"} & set(errors))
    for stmt in body:
        for sub in ast.walk(stmt):
            if not (isinstance(sub, kinds) and isinstance(sub, ast.expr)):
                continue
            if isinstance(sub, ast.Subscript) and not isinstance(sub.ctx, ast.Load):
                continue  # `d[k] = v` stores
            if isinstance(sub, ast.BinOp) and not (
                any_operator or isinstance(sub.op, (ast.Div, ast.FloorDiv, ast.Mod))
            ):
                continue
            return sub
    return None


def except_text(handler: ast.ExceptHandler) -> str:
    return f"except {ast.unparse(handler.type)}" if handler.type is not None else "except"


def shadowed(builder: WorkflowBuilder, task_name: str, errors: tuple[str, ...]) -> bool:
    """The task already has a Catch that takes every one of `errors`."""
    task = builder.states[task_name]
    assert isinstance(task, Task)
    for rule in task.catch:
        if "States.ALL" in rule.errors:
            return True
        if "States.TaskFailed" in rule.errors and not {"States.ALL", "States.Timeout"} & set(
            errors
        ):
            return True
    return False


def read_names(handler: ast.ExceptHandler) -> set[str]:
    return {
        n.id
        for s in handler.body
        for n in ast.walk(s)
        if isinstance(n, ast.Name) and isinstance(n.ctx, ast.Load)
    }


def transparent(handler: ast.ExceptHandler) -> bool:
    """`except Exception: log(...); raise`: the error propagates unchanged."""
    if not handler.body or not is_reraise(handler.body[-1]):
        return False
    for stmt in handler.body[:-1]:
        if not (isinstance(stmt, ast.Expr) and isinstance(stmt.value, ast.Call)):
            return False
        head = dotted_name(stmt.value.func).split(".")[0]
        if head not in ("logger", "log", "logging", "LOGGER", "LOG", "print"):
            return False
    return True


def is_reraise(stmt: ast.stmt) -> bool:
    return isinstance(stmt, ast.Raise) and stmt.exc is None
