"""if/elif/else → Choice; a FunctionError check → a Catch of States.TaskFailed."""

from __future__ import annotations

import ast
from dataclasses import replace
from typing import TYPE_CHECKING

from untangle.workflow.build.ast_helpers import (
    choice_name,
    dotted_name,
    located,
    snake,
    source_text,
    span_of,
)
from untangle.workflow.build.constant_fold import constant_truth, truthy
from untangle.workflow.build.extraction import (
    extract_task,
    extractable,
    has_effects,
    only_builtin_failures,
)
from untangle.workflow.build.locals import merge_envs
from untangle.workflow.build.scope import (
    NOT_DATA,
    Exit,
    Fragment,
    NeedsData,
    Response,
    Scope,
    Stream,
    Unsupported,
    Value,
    describe,
    to_expr,
)
from untangle.workflow.build.work import has_work
from untangle.workflow.ir import (
    Assign,
    CatchRule,
    Choice,
    Expr,
    Reason,
    Task,
    Var,
    pascal,
)

if TYPE_CHECKING:
    from untangle.workflow.build.builder import WorkflowBuilder


def transform_if(builder: WorkflowBuilder, node: ast.If, scope: Scope) -> Fragment:
    if has_work(builder, node.test, scope):
        before, test = builder.hoist(node.test, scope)
        rest = transform_if(
            builder,
            ast.If(
                test,
                node.body,
                node.orelse,
                lineno=node.lineno,
                col_offset=node.col_offset,
                end_lineno=node.end_lineno,
                end_col_offset=node.end_col_offset,
            ),
            scope,
        )
        return builder.sequence(before, rest)
    function_error = function_error_check(builder, node.test, scope)
    if function_error is not None:
        return function_error_branch(builder, node, function_error, scope)
    if computed_by_python(builder, node.test, scope):
        # `if isinstance(body, dict) and body.get("ok"):` ASL has no form for: the test runs
        # as a new function where Python evaluated it, and the Choice tests its answer
        before, test = test_in_a_new_function(builder, node.test, scope)
        rest = transform_if(builder, replace_test(node, test), scope)
        return builder.sequence(before, rest)
    decoded = decoded_error_check(builder, node.test, scope)
    if decoded is not None:
        # the branch runs for a failed function (its Task's Catch) and for a function that
        # answered with an error of its own (the Choice below)
        catch_function_failure(builder, node, decoded, scope)
    condition = builder.value(node.test, scope)
    if isinstance(condition, NOT_DATA):
        raise Unsupported(node.lineno, f"a condition on {describe(condition)}")
    constant = constant_truth(condition)
    if constant is not None:
        builder.notes.append(
            Reason(
                scope.path,
                node.lineno,
                f"condition `{source_text(node.test, scope)}` is always {constant} "
                + call_site(scope),
            )
        )
        return builder.block(node.body if constant else node.orelse, scope)
    rules: list[tuple[Expr, ast.If]] = []
    branch: ast.If = node
    orelse: list[ast.stmt] = []
    while True:
        if branch is not node and has_work(builder, branch.test, scope):
            raise Unsupported(branch.lineno, "an invoke inside an elif condition")
        if branch is not node and computed_by_python(builder, branch.test, scope):
            # Python tests this elif only when the tests before it failed: it is the else
            # branch's own if, whose new function runs there
            orelse = [branch]
            break
        tested = builder.value(branch.test, scope)
        if isinstance(tested, NOT_DATA):
            raise Unsupported(branch.lineno, f"a condition on {describe(tested)}")
        rules.append((truthy(tested), branch))
        if len(branch.orelse) == 1 and isinstance(branch.orelse[0], ast.If):
            branch = branch.orelse[0]
            continue
        orelse = branch.orelse
        break
    name = builder.unique(choice_name(node.test))
    choice = Choice(name, tuple((c, "") for c, _ in rules), None, span_of(node))
    builder.add(choice)
    exits: list[Exit] = []
    envs: list[dict[str, Value]] = []
    fragments: list[tuple[Fragment, object]] = []
    for index, (_, branch_node) in enumerate(rules):
        branch_scope = replace(scope, env=dict(scope.env))
        fragment = builder.block(branch_node.body, branch_scope)
        fragments.append((fragment, ("rule", index)))
        envs.append(branch_scope.env)
    else_scope = replace(scope, env=dict(scope.env))
    fragment = builder.block(orelse, else_scope)
    fragments.append((fragment, "default"))
    envs.append(else_scope.env)
    live = [
        env
        for (fragment, _), env in zip(fragments, envs)
        if fragment.start is None or fragment.exits
    ]
    # locals the branches set to different data: each branch stores its value in a variable
    differing = sorted(
        key
        for key in set().union(*live)
        if live
        for values in [[env.get(key) for env in live]]
        if any(v != values[0] for v in values)
        and all(v is not None and not isinstance(v, NOT_DATA) for v in values)
    )
    for (fragment, slot), env in zip(fragments, envs):
        branch_exits: list[Exit] = [(name, slot)] if fragment.start is None else []
        if fragment.start is not None:
            builder.connect([(name, slot)], fragment.start)
            branch_exits = list(fragment.exits)
        if differing and branch_exits:
            values = tuple((scope.var(k), to_expr(env[k], node.lineno)) for k in differing)
            setter = builder.add(
                Assign(builder.unique(f"Set{pascal(differing[0])}"), values, None, span_of(node))
            )
            builder.connect(branch_exits, setter)
            branch_exits = [(setter, "next")]
        exits += branch_exits
    merged = merge_envs(live, node.lineno)
    for key in differing:
        merged[key] = Var(scope.var(key))
    scope.env.update(merged)
    return Fragment(name, exits)


def call_site(scope: Scope) -> str:
    """Where a constant condition's value comes from: the call an inlined helper was compiled
    for (its arguments), else the data under Step Functions."""
    if scope.caller is None or not scope.call_line:
        return "under Step Functions"
    caller = scope.caller.path
    where = "" if caller == scope.path else f"{caller.rsplit('/', 1)[-1]}:"
    return f"for the call at {where or 'line '}{scope.call_line}"


def function_error_check(builder: WorkflowBuilder, test: ast.expr, scope: Scope) -> Response | None:
    """`"FunctionError" in response` / `response.get("FunctionError")`, also compared with
    `"Unhandled"` or `is not None` (the Python runtime reports every error as "Unhandled")."""
    if (
        isinstance(test, ast.Compare)
        and len(test.ops) == 1
        and isinstance(test.left, ast.Call)
        and (
            (isinstance(test.ops[0], ast.Eq) and _is_constant(test.comparators[0], "Unhandled"))
            or (isinstance(test.ops[0], ast.IsNot) and _is_constant(test.comparators[0], None))
        )
    ):
        test = test.left
    if (
        isinstance(test, ast.Compare)
        and len(test.ops) == 1
        and isinstance(test.ops[0], ast.In)
        and isinstance(test.left, ast.Constant)
        and test.left.value == "FunctionError"
    ):
        value = builder.value(test.comparators[0], scope)
        if isinstance(value, Response):
            return value
    if (
        isinstance(test, ast.Call)
        and isinstance(test.func, ast.Attribute)
        and test.func.attr == "get"
        and test.args
        and isinstance(test.args[0], ast.Constant)
        and test.args[0].value == "FunctionError"
    ):
        value = builder.value(test.func.value, scope)
        if isinstance(value, Response):
            return value
    return None


def _is_constant(node: ast.expr, value: object) -> bool:
    return (
        isinstance(node, ast.Constant) and node.value == value and type(node.value) is type(value)
    )


# what a Lambda function's error payload holds: a test for one on the decoded result of an
# invoke is the handler checking for a failed function
ERROR_PAYLOAD_KEYS = ("errorMessage", "errorType")


def decoded_error_check(builder: WorkflowBuilder, test: ast.expr, scope: Scope) -> Response | None:
    """`"errorMessage" in result` / `result.get("errorMessage")` on a decoded invoke result."""
    subject: ast.expr | None = None
    if (
        isinstance(test, ast.Compare)
        and len(test.ops) == 1
        and isinstance(test.ops[0], ast.In)
        and isinstance(test.left, ast.Constant)
        and test.left.value in ERROR_PAYLOAD_KEYS
    ):
        subject = test.comparators[0]
    elif (
        isinstance(test, ast.Call)
        and isinstance(test.func, ast.Attribute)
        and test.func.attr == "get"
        and test.args
        and isinstance(test.args[0], ast.Constant)
        and test.args[0].value in ERROR_PAYLOAD_KEYS
    ):
        subject = test.func.value
    if subject is None:
        return None
    value = builder.value(subject, scope)
    if not (isinstance(value, Var) and not value.path):
        return None
    response = Response(value)
    name = task_assigning(builder, response)
    task = builder.states.get(name) if name else None
    return response if isinstance(task, Task) and task.unchecked else None


def catch_function_failure(
    builder: WorkflowBuilder, node: ast.If, response: Response, scope: Scope
) -> None:
    """The branch as the Catch of `States.TaskFailed` on the task that produced `response`,
    when it ends (returns or raises); else the task stays unchecked (it fails, noted)."""
    saved = dict(builder.states)
    start = _failure_branch(builder, node, response, scope)
    if start is None:
        builder.states = saved  # it goes on after the check: nothing a Catch can jump to
        return
    _catch_into(builder, response, start)
    builder.notes.append(
        Reason(
            scope.path,
            node.lineno,
            "the check for an error payload also became a Catch of States.TaskFailed: the "
            "branch runs when the function fails, as before",
        )
    )


def function_error_branch(
    builder: WorkflowBuilder, node: ast.If, response: Response, scope: Scope
) -> Fragment:
    """Step Functions fails the Task itself when the function raises: the branch becomes a
    Catch of `States.TaskFailed` on the task that produced `response`."""
    task_name = task_assigning(builder, response)
    if task_name is None:
        raise Unsupported(node.lineno, "a FunctionError check far from its invoke")
    for stmt in node.body:
        if isinstance(stmt, ast.Raise) and stmt.exc is not None:
            error = dotted_name(stmt.exc.func if isinstance(stmt.exc, ast.Call) else stmt.exc)
            builder._function_errors.add(error.rsplit(".", 1)[-1])
    start = _failure_branch(builder, node, response, scope)
    if start is None:
        raise Unsupported(node.lineno, "a FunctionError check that does not raise")
    task = builder.states[task_name]
    assert isinstance(task, Task)
    if any(c.errors == ("States.TaskFailed",) for c in task.catch):
        return builder.block(node.orelse, scope)
    _catch_into(builder, response, start)
    builder.notes.append(
        Reason(
            scope.path, node.lineno, "the FunctionError check became a Catch of States.TaskFailed"
        )
    )
    return builder.block(node.orelse, scope)


def _failure_var(response: Response) -> str:
    assert isinstance(response.payload, Var)
    return f"{response.payload.name}_failure"


def _failure_branch(
    builder: WorkflowBuilder, node: ast.If, response: Response, scope: Scope
) -> str | None:
    """The branch compiled as the target of a Catch: where it starts, or None when control goes
    on after it (a Catch has nowhere to go back to). In it the decoded payload is the function's
    error payload (the Catch parses it out of the error's Cause into its own variable)."""
    # the try blocks around the check are around its branch too: a `raise` there that one of
    # them catches is refused (`transform_raise`), not turned into a Fail
    handler_scope = replace(scope, env=dict(scope.env))
    failure = Var(_failure_var(response))
    for key, known in list(handler_scope.env.items()):
        if known == response.payload:
            handler_scope.env[key] = failure
        elif known in (response, Stream(response.payload)):
            # decoded inside the branch (`err = json.loads(resp["Payload"].read())`): the
            # error payload, not what the variable held before the task failed
            handler_scope.env[key] = Response(failure) if known == response else Stream(failure)
    fragment = builder.block(node.body, handler_scope)
    if fragment.start is None or fragment.exits:
        return None
    return fragment.start


def _catch_into(builder: WorkflowBuilder, response: Response, start: str) -> None:
    """The task that produced `response` catches `States.TaskFailed` into `start`."""
    task_name = task_assigning(builder, response)
    assert task_name is not None
    task = builder.states[task_name]
    assert isinstance(task, Task)
    builder.states[task_name] = replace(
        task,
        catch=(
            *task.catch,
            CatchRule(("States.TaskFailed",), start, _failure_var(response), result=True),
        ),
        unchecked=False,
    )


def task_assigning(builder: WorkflowBuilder, response: Response) -> str | None:
    if not isinstance(response.payload, Var):
        return None
    for name in reversed(list(builder.states)):
        state = builder.states[name]
        if isinstance(state, Task) and state.assign == response.payload.name:
            return name
    return None


def computed_by_python(builder: WorkflowBuilder, test: ast.expr, scope: Scope) -> bool:
    """`test` is a condition ASL has no form for (`isinstance(x, dict)`) that a new function
    can compute: it reads plain data only and does nothing but compute."""
    try:
        to_expr(builder.value(test, scope), test.lineno)
    except NeedsData as refusal:
        return (
            not refusal.secondary
            and not has_effects(test)
            and extractable(builder, test, scope) is not None
        )
    except Unsupported:
        return False
    return False


def test_in_a_new_function(
    builder: WorkflowBuilder, test: ast.expr, scope: Scope
) -> tuple[Fragment, ast.expr]:
    """A Task computing `bool(test)` into a new variable, and the name to test instead."""
    call = located(ast.Call(ast.Name("bool", ast.Load()), [test], []), test)
    # named after what it tests (`check_body`), the same in every inlining of a helper, so
    # they share one new function
    called = {id(n.func) for n in ast.walk(test) if isinstance(n, ast.Call)}
    subjects = [n.id for n in ast.walk(test) if isinstance(n, ast.Name) and id(n) not in called]
    base = "check_" + snake(subjects[0]) if subjects else snake(choice_name(test))
    target, counter = base, 2
    while target in scope.env:
        target, counter = f"{base}_{counter}", counter + 1
    params = extractable(builder, call, scope) or []
    task = extract_task(builder, call, target, params, scope)
    only_builtin_failures(task, call, scope)
    scope.env[target] = Var(scope.var(target))
    return Fragment(task, [(task, "next")]), located(ast.Name(target, ast.Load()), test)


def replace_test(node: ast.If, test: ast.expr) -> ast.If:
    return ast.If(
        test,
        node.body,
        node.orelse,
        lineno=node.lineno,
        col_offset=node.col_offset,
        end_lineno=node.end_lineno,
        end_col_offset=node.end_col_offset,
    )
