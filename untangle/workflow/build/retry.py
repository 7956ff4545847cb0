"""Retries: hand-rolled retry loops and tenacity/backoff decorators → a Task's Retry."""

from __future__ import annotations

import ast
from dataclasses import replace
from typing import TYPE_CHECKING

from untangle.workflow.build.ast_helpers import column_of, dotted_name, source_text
from untangle.workflow.build.scope import Fragment, Scope, Unsupported
from untangle.workflow.ir import (
    Lit,
    Reason,
    RetryRule,
    Task,
)

if TYPE_CHECKING:
    from untangle.workflow.build.builder import WorkflowBuilder

# what a boto3 client raises: `except ClientError` catches these Task errors
BOTO_ERRORS = (
    "Lambda.ServiceException",
    "Lambda.AWSLambdaException",
    "Lambda.SdkClientException",
    "Lambda.TooManyRequestsException",
)
# what the tasks of a retry-decorated helper carry until its rule is known (never emitted)
PENDING_RETRY = RetryRule(("untangle.pending",), -1, 0, 1.0)


def has_retry_decorator(node: ast.FunctionDef | ast.AsyncFunctionDef) -> bool:
    return any(
        dotted_name(d.func if isinstance(d, ast.Call) else d).split(".")[-1]
        in ("retry", "on_exception")
        for d in node.decorator_list
    )


def settle_pending_retry(builder: WorkflowBuilder, rules: tuple[RetryRule, ...]) -> None:
    for name, state in list(builder.states.items()):
        if isinstance(state, Task) and state.retry == (PENDING_RETRY,):
            builder.states[name] = replace(state, retry=rules)


def retry_decorator(
    builder: WorkflowBuilder, node: ast.FunctionDef | ast.AsyncFunctionDef, scope: Scope
) -> tuple[RetryRule, ...]:
    for decorator in node.decorator_list:
        dotted = dotted_name(decorator.func if isinstance(decorator, ast.Call) else decorator)
        if dotted.split(".")[-1] not in ("retry", "on_exception"):
            continue
        if not isinstance(decorator, ast.Call):
            return (RetryRule(("States.ALL",), 1, 3, 1.0),)
        return (tenacity(builder, decorator, scope),)
    return ()


def tenacity(builder: WorkflowBuilder, decorator: ast.Call, scope: Scope) -> RetryRule:
    attempts, interval, backoff, max_delay, jitter = 3, 1.0, 1.0, None, False
    errors: tuple[str, ...] = ("States.ALL",)
    keywords = {k.arg: k.value for k in decorator.keywords if k.arg}
    stop = keywords.get("stop")
    if (
        isinstance(stop, ast.Call)
        and dotted_name(stop.func).endswith("stop_after_attempt")
        and stop.args
    ):
        attempts = int(number(builder, stop.args[0], scope))
    if "max_tries" in keywords:
        attempts = int(number(builder, keywords["max_tries"], scope))
    wait = keywords.get("wait")
    if isinstance(wait, ast.Call):
        kind = dotted_name(wait.func).rsplit(".", 1)[-1]
        args = {k.arg: k.value for k in wait.keywords if k.arg}
        if kind == "wait_fixed" and wait.args:
            interval = number(builder, wait.args[0], scope)
        elif kind in ("wait_exponential", "wait_random_exponential"):
            multiplier = number(builder, args["multiplier"], scope) if "multiplier" in args else 1.0
            minimum = number(builder, args["min"], scope) if "min" in args else 0.0
            interval = max(multiplier, minimum, 1.0)
            backoff = 2.0
            if "max" in args:
                max_delay = number(builder, args["max"], scope)
            jitter = kind == "wait_random_exponential"
    if decorator.args and dotted_name(decorator.func).endswith("on_exception"):
        wait_gen = dotted_name(decorator.args[0]).rsplit(".", 1)[-1]
        backoff = 2.0 if wait_gen == "expo" else 1.0
        jitter = "jitter" not in keywords or dotted_name(keywords["jitter"]) != "None"
        if len(decorator.args) > 1:
            errors = error_names(builder, decorator.args[1], scope)
    retry_on = keywords.get("retry")
    if (
        isinstance(retry_on, ast.Call)
        and dotted_name(retry_on.func).endswith("retry_if_exception_type")
        and retry_on.args
    ):
        errors = error_names(builder, retry_on.args[0], scope)
    return RetryRule(errors, interval, max(attempts - 1, 0), backoff, max_delay, jitter)


def number(builder: WorkflowBuilder, node: ast.expr, scope: Scope) -> float:
    value = builder.value(node, scope)
    if (
        isinstance(value, Lit)
        and isinstance(value.value, (int, float))
        and not isinstance(value.value, bool)
    ):
        return float(value.value)
    raise Unsupported(node.lineno, f"`{source_text(node, scope)}` is not a constant number")


def error_names(builder: WorkflowBuilder, node: ast.expr, scope: Scope) -> tuple[str, ...]:
    nodes = node.elts if isinstance(node, ast.Tuple) else [node]
    names: list[str] = []
    for item in nodes:
        dotted = dotted_name(item)
        last = dotted.rsplit(".", 1)[-1]
        if last in ("Exception", "BaseException"):
            return ("States.ALL",)
        if last in ("ClientError", "BotoCoreError"):
            names += [e for e in BOTO_ERRORS if e not in names]
        elif last.endswith("Exception") and (
            ".exceptions." in dotted or f"Lambda.{last}" in BOTO_ERRORS
        ):
            # `lambda_client.exceptions.TooManyRequestsException`: that error only
            names.append(f"Lambda.{last}")
        elif last in builder._function_errors:
            names.append("States.TaskFailed")
        elif last:
            # a new function that raises a subclass fails its Task with the subclass's name
            # (`json.loads` raises JSONDecodeError): `except ValueError` catches that too
            names += [last, *BUILTIN_SUBCLASSES.get(last, ())]
    return tuple(dict.fromkeys(names)) or ("States.ALL",)


# the standard library's subclasses of the exceptions an `except` names for bad data, as the
# Lambda runtime names an error (the class's own name); a Catch or Retry matches names exactly
BUILTIN_SUBCLASSES: dict[str, tuple[str, ...]] = {
    "ValueError": (
        "JSONDecodeError",
        "UnicodeError",
        "UnicodeDecodeError",
        "UnicodeEncodeError",
        "UnicodeTranslateError",
    ),
    "UnicodeError": ("UnicodeDecodeError", "UnicodeEncodeError", "UnicodeTranslateError"),
    "LookupError": ("KeyError", "IndexError"),
    "ArithmeticError": ("ZeroDivisionError", "OverflowError", "FloatingPointError"),
}


def retry_for(
    builder: WorkflowBuilder, node: ast.For | ast.AsyncFor, scope: Scope
) -> Fragment | None:
    """`for attempt in range(N): try: …invoke…; return/break  except E: …sleep(d)…`."""
    if not (
        isinstance(node.iter, ast.Call)
        and dotted_name(node.iter.func) == "range"
        and len(node.iter.args) == 1
        and len(node.body) == 1
        and isinstance(node.body[0], ast.Try)
        and isinstance(node.target, ast.Name)
        and not node.orelse  # `for/else`: what happens when the retries run out is no Retry
    ):
        return None
    attempts = int(number(builder, node.iter.args[0], scope))
    return build_retry(builder, node, node.target.id, 0, attempts, node.body[0], scope)


def retry_while(builder: WorkflowBuilder, node: ast.While, scope: Scope) -> Fragment | None:
    """`n = 0; while n < N: try: …invoke…; return  except E: n += 1; …sleep(d(n))…`."""
    test = node.test
    if not (
        isinstance(test, ast.Compare)
        and len(test.ops) == 1
        and isinstance(test.ops[0], (ast.Lt, ast.LtE))
        and isinstance(test.left, ast.Name)
        and len(node.body) == 1
        and isinstance(node.body[0], ast.Try)
        and not node.orelse
    ):
        return None
    counter = test.left.id
    start = scope.env.get(counter)
    if not (isinstance(start, Lit) and isinstance(start.value, int)):
        return None
    limit = int(number(builder, test.comparators[0], scope))
    attempts = limit - start.value + (1 if isinstance(test.ops[0], ast.LtE) else 0)
    return build_retry(builder, node, counter, start.value, attempts, node.body[0], scope)


def retried_codes(
    builder: WorkflowBuilder, handler: ast.ExceptHandler, scope: Scope
) -> tuple[str, ...] | None:
    """The error codes an `except ClientError as err:` block retries, when it re-raises every
    other: `if err.response["Error"]["Code"] not in CODES: raise` (or `… in CODES:` with the
    raise in `else`). None when the block does not say."""
    if handler.name is None:
        return None
    for stmt in handler.body:
        if not isinstance(stmt, ast.If):
            continue
        tests = stmt.test.values if isinstance(stmt.test, ast.BoolOp) else [stmt.test]
        for test in tests:
            if not (
                isinstance(test, ast.Compare)
                and len(test.ops) == 1
                and isinstance(test.ops[0], (ast.In, ast.NotIn))
                and _is_error_code(test.left, handler.name)
            ):
                continue
            raising = stmt.body if isinstance(test.ops[0], ast.NotIn) else stmt.orelse
            if not any(isinstance(s, ast.Raise) and s.exc is None for s in raising):
                continue
            if isinstance(stmt.test, ast.BoolOp) and not (
                isinstance(stmt.test.op, ast.Or) and isinstance(test.ops[0], ast.NotIn)
            ):
                continue  # `… and …`: the codes alone do not decide
            codes = _constant_strings(builder, test.comparators[0], scope)
            if codes:
                return tuple(sorted(codes))
    return None


def _is_error_code(node: ast.expr, name: str) -> bool:
    """`name.response["Error"]["Code"]`"""
    keys: list[object] = []
    while isinstance(node, ast.Subscript) and isinstance(node.slice, ast.Constant):
        keys.insert(0, node.slice.value)
        node = node.value
    return (
        keys == ["Error", "Code"]
        and isinstance(node, ast.Attribute)
        and node.attr == "response"
        and isinstance(node.value, ast.Name)
        and node.value.id == name
    )


def _constant_strings(builder: WorkflowBuilder, node: ast.expr, scope: Scope) -> set[str]:
    """The strings of a set, list or tuple written here or as a module constant."""
    if isinstance(node, ast.Name) and node.id not in scope.env:
        found = builder.module_assignment(scope.path, node.id)
        if found is not None:
            node = found
    if not isinstance(node, (ast.Set, ast.List, ast.Tuple)):
        return set()
    values = {e.value for e in node.elts if isinstance(e, ast.Constant)}
    if len(values) != len(node.elts) or not all(isinstance(v, str) for v in values):
        return set()
    return {str(v) for v in values}


def build_retry(
    builder: WorkflowBuilder,
    node: ast.stmt,
    attempt: str,
    first: int,
    attempts: int,
    trial: ast.Try,
    scope: Scope,
) -> Fragment | None:
    if len(trial.handlers) != 1 or attempts < 1:
        return None
    handler = trial.handlers[0]
    # the counter value the first pause sees: incremented in the except block before it?
    for stmt in handler.body:
        if (
            isinstance(stmt, ast.AugAssign)
            and isinstance(stmt.target, ast.Name)
            and stmt.target.id == attempt
        ):
            first += 1
            break
        if any(
            isinstance(sub, ast.Call) and dotted_name(sub.func).endswith("sleep")
            for sub in ast.walk(stmt)
        ):
            break
    delay: ast.expr | None = None
    for sub in ast.walk(handler):
        if (
            isinstance(sub, ast.Call)
            and (scope.path, sub.lineno, column_of(sub, scope)) in builder.sleeps
        ):
            delay = sub.args[0] if sub.args else None
    interval, backoff = 1.0, 1.0
    if delay is not None:
        interval, backoff = backoff_of(builder, delay, attempt, handler, scope, first)
    body = [s for s in trial.body if not isinstance(s, ast.Break)]
    retry_scope = replace(scope, retry=(RetryRule(("States.ALL",), 0, 0, 1.0),))
    fragment = builder.block(body, retry_scope)
    errors = (
        error_names(builder, handler.type, scope) if handler.type is not None else ("States.ALL",)
    )
    codes = retried_codes(builder, handler, scope)
    if codes is not None:
        # `if err.response["Error"]["Code"] not in RETRYABLE: raise`: only those are retried
        errors = tuple(f"Lambda.{code}" for code in codes)
    rule = RetryRule(errors, interval, attempts - 1, backoff)
    for name, state in list(builder.states.items()):
        if (
            isinstance(state, Task)
            and state.retry
            and state.retry[0].max_attempts == 0
            and state.retry[0].interval == 0
        ):
            builder.states[name] = replace(state, retry=(rule,))
    builder.notes.append(
        Reason(
            scope.path,
            node.lineno,
            f"the retry loop became a Retry: {attempts - 1} retries, {interval:g} s, "
            f"backoff {backoff:g}",
        )
    )
    return fragment


def backoff_of(
    builder: WorkflowBuilder,
    delay: ast.expr,
    attempt: str,
    handler: ast.ExceptHandler,
    scope: Scope,
    first: int,
) -> tuple[float, float]:
    # resolve `delay = …` assignments inside the except block
    assigned = {
        s.targets[0].id: s.value
        for s in ast.walk(handler)
        if isinstance(s, ast.Assign) and len(s.targets) == 1 and isinstance(s.targets[0], ast.Name)
    }
    if isinstance(delay, ast.Name) and delay.id in assigned:
        delay = assigned[delay.id]
    values = []
    for n in (first, first + 1):
        env = dict(scope.env)
        env[attempt] = Lit(n)
        value = builder.value(delay, replace(scope, env=env))
        if not (isinstance(value, Lit) and isinstance(value.value, (int, float))):
            raise Unsupported(
                delay.lineno, "a retry delay that is not a function of the attempt number"
            )
        values.append(float(value.value))
    interval = max(values[0], 1.0)
    backoff = values[1] / values[0] if values[0] else 1.0
    return interval, max(backoff, 1.0)
