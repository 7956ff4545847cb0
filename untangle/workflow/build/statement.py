"""Simple statements (assignments, expression statements, return, with, …) and the
common step of every statement that does work: `target = <work>`."""

from __future__ import annotations

import ast
from typing import TYPE_CHECKING

from untangle.workflow.build.ast_helpers import (
    source_text,
    span_of,
    target_names,
    target_text,
)
from untangle.workflow.build.concurrency import pool_size, transform_gather
from untangle.workflow.build.constant_fold import is_number
from untangle.workflow.build.effect import COMPUTATIONS, value_or_opaque
from untangle.workflow.build.extraction import extract_task, extractable, sdk_response
from untangle.workflow.build.scope import (
    NOT_DATA,
    REFUSED,
    Fragment,
    Opaque,
    Pool,
    Scope,
    Unsupported,
    Value,
    function_of,
    to_expr,
)
from untangle.workflow.build.work import has_work, work_call
from untangle.workflow.ir import (
    Arr,
    Assign,
    Expr,
    Lit,
    Obj,
    Op,
    Operator,
    Succeed,
    Var,
)

if TYPE_CHECKING:
    from untangle.workflow.build.builder import WorkflowBuilder


def nothing() -> Fragment:
    """No state: control falls through to the next statement."""
    return Fragment(None, [])


def transform_expr_stmt(builder: WorkflowBuilder, node: ast.Expr, scope: Scope) -> Fragment:
    if isinstance(node.value, ast.Constant):
        return nothing()  # a docstring
    return builder.effect(node.value, None, scope)


def transform_assign(
    builder: WorkflowBuilder, node: ast.Assign | ast.AnnAssign, scope: Scope
) -> Fragment:
    targets = node.targets if isinstance(node, ast.Assign) else [node.target]
    if node.value is None:
        return nothing()
    if (
        len(targets) == 1
        and isinstance(targets[0], ast.Tuple)
        and all(isinstance(e, ast.Name) for e in targets[0].elts)
    ):
        gathered = node.value.value if isinstance(node.value, ast.Await) else node.value
        found = work_call(builder, gathered, scope)
        if (
            found is not None
            and found[0] == "gather"
            and found[1] is gathered
            and isinstance(gathered, ast.Call)
        ):
            names = [e.id for e in targets[0].elts if isinstance(e, ast.Name)]
            return transform_gather(builder, gathered, names, scope)
    if len(targets) != 1 or not isinstance(targets[0], ast.Name):
        if has_work(builder, node.value, scope) and isinstance(
            targets[0], (ast.Subscript, ast.Attribute)
        ):
            raise Unsupported(
                node.lineno,
                f"results stored into `{source_text(targets[0], scope)}`: a collection "
                "mutated across steps (collect them with a list comprehension or "
                "`.append` instead)",
            )
        if has_work(builder, node.value, scope):
            raise Unsupported(
                node.lineno,
                f"unpacking an invoke's result into `{target_text(targets[0])}`",
                "assign the result to one name and read its parts",
            )
        for target in targets:
            if isinstance(target, (ast.Subscript, ast.Attribute)):
                for name in target_names(target)[:1]:
                    scope.env[name] = Opaque(
                        node.lineno,
                        f"`{name}`, changed in place by `{source_text(target, scope)} = …`",
                    )
                continue
            for name in target_names(target):
                scope.env[name] = Opaque(
                    node.lineno,
                    f"`{name}`, assigned by unpacking `{target_text(target)} = …`",
                )
        return nothing()
    return builder.effect(node.value, targets[0].id, scope)


def transform_aug_assign(builder: WorkflowBuilder, node: ast.AugAssign, scope: Scope) -> Fragment:
    if has_work(builder, node.value, scope):
        raise Unsupported(node.lineno, "an invoke inside an augmented assignment")
    counted = counter_step(builder, node, scope)
    if counted is not None:
        scope.env[counted[0]] = counted[1]
        return nothing()
    for name in target_names(node.target):
        scope.env[name] = Opaque(
            node.lineno,
            f"`{name}`, updated in place by `{source_text(node, scope)}` (only numbers are)",
        )
    return nothing()


def transform_with(
    builder: WorkflowBuilder, node: ast.With | ast.AsyncWith, scope: Scope
) -> Fragment:
    for item in node.items:
        if item.optional_vars is not None:
            pool = pool_size(item.context_expr, builder, scope)
            for name in target_names(item.optional_vars):
                scope.env[name] = (
                    Pool(pool) if pool is not None else Opaque(node.lineno, "a context manager")
                )
    return builder.block(node.body, scope)


def transform_break(builder: WorkflowBuilder, node: ast.Break, scope: Scope) -> Fragment:
    if scope.breaks is None:
        return transform_unsupported(builder, node, scope)
    marker = builder.add(Assign(builder.unique("Break"), (), None, span_of(node)))
    scope.breaks.append(((marker, "next"), dict(scope.env)))
    return Fragment(marker, [])


def transform_continue(builder: WorkflowBuilder, node: ast.Continue, scope: Scope) -> Fragment:
    if scope.continues is None:
        return transform_unsupported(builder, node, scope)
    marker = builder.add(Assign(builder.unique("Continue"), (), None, span_of(node)))
    scope.continues.append(((marker, "next"), dict(scope.env)))
    return Fragment(marker, [])


def transform_no_op(builder: WorkflowBuilder, node: ast.stmt, scope: Scope) -> Fragment:
    """`pass`, imports, `global`/`nonlocal`: nothing to run."""
    return nothing()


def transform_definition(
    builder: WorkflowBuilder,
    node: ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef,
    scope: Scope,
) -> Fragment:
    # the innermost function at its line is the nested function itself
    defined = builder.function_at(scope.path, node.lineno)
    if (
        not isinstance(node, ast.ClassDef)
        and defined is not None
        and defined.rsplit(".", 1)[-1] == node.name
    ):
        scope.env[node.name] = function_of(defined, node.lineno, node.name)
    else:
        scope.env[node.name] = Opaque(node.lineno, "a nested definition")
    return nothing()


# statements with no translation, in the user's words, with what would make them convert
UNSUPPORTED_STATEMENTS: dict[type[ast.stmt], tuple[str, str]] = {
    ast.Continue: ("a `continue` statement", "put the rest of the loop body under an `if`"),
    ast.Break: (
        "a `break` in a loop whose iterations run apart (a Map)",
        "filter the items before the loop",
    ),
    ast.Delete: ("a `del` statement", "remove it: workflow variables need no clean-up"),
    ast.Assert: (
        "an `assert` statement",
        "`if not …: raise …`, which becomes a Choice and a Fail",
    ),
    ast.Match: ("a `match` statement", "`if`/`elif`, which becomes a Choice"),
    ast.TryStar: ("`except*` (exception groups)", "plain `except` blocks"),
}


def transform_unsupported(builder: WorkflowBuilder, node: ast.stmt, scope: Scope) -> Fragment:
    words, hint = UNSUPPORTED_STATEMENTS.get(
        type(node), (f"a `{type(node).__name__.lower()}` statement", "")
    )
    raise Unsupported(node.lineno, words, hint, compile_bodies=True)


def transform_return(builder: WorkflowBuilder, node: ast.Return, scope: Scope) -> Fragment:
    if node.value is not None and has_work(builder, node.value, scope):
        before, rewritten = builder.hoist(node.value, scope)
        rest = finish_return(builder, node, builder.value(rewritten, scope), scope)
        return builder.sequence(before, rest)
    output: Value = Lit(None)
    if node.value is not None:
        output = value_or_opaque(builder, node.value, scope)
        if (
            isinstance(output, Opaque)
            and output.extract is None
            and REFUSED not in output.message  # the aftermath of a refusal: no new step
            and isinstance(node.value, COMPUTATIONS)
        ):
            # `return {"status": "shipped", **shipped}`: what ASL cannot build runs as the
            # new function of an assignment would, and its value is returned
            params = extractable(builder, node.value, scope)
            # (an AWS SDK response is no JSON value a function can return: left refused)
            if params is not None and not sdk_response(builder, node.value, scope):
                target = next((n for n in RETURNED_NAMES if n not in scope.env), "returned")
                task = extract_task(builder, node.value, target, params, scope)
                rest = finish_return(builder, node, Var(scope.var(target)), scope)
                return builder.sequence(Fragment(task, [(task, "next")]), rest)
    return finish_return(builder, node, output, scope)


# the value a handler returns, named for a new function that computes it (`compute_response`)
RETURNED_NAMES = ("response", "result", "output", "returned_value")


def finish_return(
    builder: WorkflowBuilder, node: ast.Return, output: Value, scope: Scope
) -> Fragment:
    if scope.returns is not None:
        # inside an inlined helper: control goes back to the caller with this value (a raw
        # invoke response included: the caller may still read its Payload)
        marker = builder.add(Assign(builder.unique("Return"), (), None, span_of(node)))
        scope.returns.append(([(marker, "next")], output))
        return Fragment(marker, [])
    name = builder.add(Succeed(builder.unique("Done"), to_expr(output, node.lineno), span_of(node)))
    return Fragment(name, [])


def counter_step(
    builder: WorkflowBuilder, node: ast.AugAssign, scope: Scope
) -> tuple[str, Expr] | None:
    """`n += 1` on a number: the new value as data."""
    ops = {ast.Add: Operator.ADD, ast.Sub: Operator.SUB, ast.Mult: Operator.MUL}
    op = ops.get(type(node.op))
    if op is None or not isinstance(node.target, ast.Name):
        return None
    current = scope.env.get(node.target.id)
    step = builder.value(node.value, scope)
    if (
        current is None
        or isinstance(current, (*NOT_DATA, Obj, Arr))
        or (isinstance(current, Lit) and not is_number(current.value))
        or not (isinstance(step, Lit) and is_number(step.value))
    ):
        return None
    return node.target.id, Op(op, (to_expr(current, node.lineno), step))
