"""`raise X(msg)` inside a `try` whose `except` catches X: a transition into that except body,
with the name it binds holding the message (`str(exc)`, `exc.args[0]`)."""

from __future__ import annotations

import ast
import builtins
import copy
from typing import TYPE_CHECKING

from untangle.workflow.build.ast_helpers import LOGGERS, dotted_name, span_of
from untangle.workflow.build.scope import NOT_DATA, Fragment, PendingCatch, Scope, Unsupported
from untangle.workflow.ir import Assign, Expr, Lit

if TYPE_CHECKING:
    from untangle.workflow.build.builder import WorkflowBuilder


def refused(line: int, error: str, catch: ast.ExceptHandler) -> Unsupported:
    return Unsupported(
        line,
        f"`raise {error}` is caught by the `except` at line {catch.lineno}: "
        "control flow through exceptions",
    )


def ancestry(builder: WorkflowBuilder, name: str, paths: list[str]) -> list[str] | None:
    """The class `name` and its bases, by name: classes of the tree (in `paths`) up to a
    built-in exception, then its built-in bases. None when a base is neither."""
    classes: dict[str, list[str]] = {}
    for path in dict.fromkeys(paths):
        for node in ast.walk(builder.sources(path).tree):
            if isinstance(node, ast.ClassDef):
                bases = [dotted_name(b).rsplit(".", 1)[-1] for b in node.bases]
                if node.name in classes and classes[node.name] != bases:
                    return None  # two classes of that name: which one is raised is unclear
                classes[node.name] = bases
    chain: list[str] = []
    pending = [name]
    while pending:
        current = pending.pop(0)
        if current in chain:
            continue
        if current in classes:
            chain.append(current)
            pending += classes[current]
            continue
        builtin = getattr(builtins, current, None)
        if not (isinstance(builtin, type) and issubclass(builtin, BaseException)):
            return None
        chain += [c.__name__ for c in builtin.__mro__ if c is not object]
    return chain


def handler_catches(handler: ast.ExceptHandler, chain: list[str]) -> bool:
    if handler.type is None:
        return True
    items = handler.type.elts if isinstance(handler.type, ast.Tuple) else [handler.type]
    return any(dotted_name(item).rsplit(".", 1)[-1] in chain for item in items)


def catching(builder: WorkflowBuilder, error: str, line: int, scope: Scope) -> PendingCatch | None:
    """The except block a `raise` of class `error` goes to, None when no try around it in the
    compiled function catches it; refused when that cannot be told."""
    tries: list[ast.Try] = []
    for catch in scope.catches:
        if catch.node is not None and catch.node not in tries:
            tries.append(catch.node)
    if not tries:
        return None
    first = scope.catches[-1].handler
    paths = [scope.path, *(m.path for m in builder.program.modules.values())]
    chain = ancestry(builder, error, paths)
    if chain is None:
        raise refused(line, error, first)
    for node in reversed(tries):
        for handler in node.handlers:
            if not handler_catches(handler, chain):
                continue
            pending = next((c for c in scope.catches if c.handler is handler), None)
            if pending is None:
                break  # it only logs and re-raises: the try around this one sees the error
            return pending
    return None


def message_of(
    builder: WorkflowBuilder, exc: ast.expr, error: str, scope: Scope, catch: PendingCatch
) -> Expr | None:
    """What `str(exc)` gives: the one argument (None: no argument, `str(exc)` is "")."""
    if not isinstance(exc, ast.Call):
        return None
    if exc.keywords or len(exc.args) > 1 or any(isinstance(a, ast.Starred) for a in exc.args):
        raise refused(exc.lineno, error, catch.handler)
    if not exc.args:
        return None
    value = builder.value(exc.args[0], scope)
    if isinstance(value, NOT_DATA):
        raise refused(exc.lineno, error, catch.handler)
    return value


def exception_uses(handler: ast.ExceptHandler) -> tuple[bool, bool]:
    """(whether the body uses the name the except binds, whether every use is `str(exc)`,
    `f"{exc}"` or `exc.args[0]`)."""
    name = handler.name
    if not name:
        return False, True
    allowed: set[int] = set()
    used = False
    for stmt in handler.body:
        for node in ast.walk(stmt):
            if (
                isinstance(node, ast.Call)
                and isinstance(node.func, ast.Name)
                and node.func.id == "str"
                and len(node.args) == 1
                and not node.keywords
                and isinstance(node.args[0], ast.Name)
            ):
                allowed.add(id(node.args[0]))
            elif (
                isinstance(node, ast.FormattedValue)
                and node.conversion in (-1, 115)
                and node.format_spec is None
            ):
                allowed.add(id(node.value))
            elif (
                isinstance(node, ast.Subscript)
                and isinstance(node.value, ast.Attribute)
                and node.value.attr == "args"
                and isinstance(node.slice, ast.Constant)
                and node.slice.value == 0
            ):
                allowed.add(id(node.value.value))
    # a logging call is dropped (the execution history shows each step): what it logs is
    # no use of the exception
    logged = {
        id(sub)
        for stmt in handler.body
        for node in ast.walk(stmt)
        if isinstance(node, ast.Expr)
        and isinstance(node.value, ast.Call)
        and dotted_name(node.value.func).split(".")[0] in LOGGERS
        for sub in ast.walk(node)
    }
    exact = True
    for stmt in handler.body:
        for node in ast.walk(stmt):
            if isinstance(node, ast.Name) and node.id == name and id(node) not in logged:
                used = True
                exact = exact and id(node) in allowed and isinstance(node.ctx, ast.Load)
    return used, exact


def transform_caught_raise(
    builder: WorkflowBuilder, node: ast.Raise, error: str, catch: PendingCatch, scope: Scope
) -> Fragment:
    assert node.exc is not None
    handler = catch.handler
    if any(isinstance(s, ast.Raise) for s in ast.walk(ast.Module(handler.body, []))):
        raise refused(node.lineno, error, handler)  # a re-raise: the error's own Cause
    message = message_of(builder, node.exc, error, scope, catch)
    used, exact = exception_uses(handler)
    if used and (not exact or (message is None and _uses_args(handler))):
        raise refused(node.lineno, error, handler)
    values: tuple[tuple[str, Expr], ...] = ()
    if used:
        values = ((catch.var, message if message is not None else Lit("")),)
    name = builder.add(Assign(builder.unique(error), values, None, span_of(node)))
    catch.raises.append((name, "next"))
    catch.raised.append((node.lineno, error))
    level = scope  # the locals of the function the try is in, at the call that raised
    while level.caller is not None and catch in level.caller.catches:
        level = level.caller
    catch.envs.append(dict(level.env))
    return Fragment(name, [])


def _uses_args(handler: ast.ExceptHandler) -> bool:
    return any(
        isinstance(n, ast.Attribute) and n.attr == "args" for s in handler.body for n in ast.walk(s)
    )


class _MessageOf(ast.NodeTransformer):
    """`exc.args[0]` → `exc` once `exc` holds the message."""

    def __init__(self, name: str) -> None:
        self.name = name

    def visit_Subscript(self, node: ast.Subscript) -> ast.AST:
        if (
            isinstance(node.value, ast.Attribute)
            and node.value.attr == "args"
            and isinstance(node.value.value, ast.Name)
            and node.value.value.id == self.name
        ):
            return ast.copy_location(ast.Name(self.name, ast.Load()), node)
        return self.generic_visit(node)


def message_body(handler: ast.ExceptHandler) -> list[ast.stmt]:
    """The except body with `exc.args[0]` read as the message `exc` holds."""
    if not handler.name:
        return handler.body
    body = [copy.deepcopy(s) for s in handler.body]
    return [_MessageOf(handler.name).visit(s) for s in body]
