"""Invokes and sleeps: a Lambda invoke → a Task, `time.sleep` → a Wait."""

from __future__ import annotations

import ast
import json
from dataclasses import replace
from typing import TYPE_CHECKING

from untangle.analysis.patterns import function_name_from_arn, invocation
from untangle.analysis.program import InvokeSite, SleepSite
from untangle.analysis.values import (
    ConstV,
    Env,
    OwnName,
)
from untangle.workflow.build.ast_helpers import Replace, copy_node, find_call, located, span_of
from untangle.workflow.build.scope import (
    NOT_DATA,
    Fragment,
    Opaque,
    Response,
    Scope,
    Stream,
    Unsupported,
    Value,
    to_expr,
)
from untangle.workflow.build.specialize import parsed_again
from untangle.workflow.ir import (
    Assign,
    Choice,
    Expr,
    FunctionRef,
    Lit,
    Op,
    Operator,
    Reason,
    Task,
    Var,
    Wait,
    pascal,
)

if TYPE_CHECKING:
    from untangle.workflow.build.builder import WorkflowBuilder


def transform_invoke(
    builder: WorkflowBuilder, site: InvokeSite, value: ast.expr, target: str | None, scope: Scope
) -> Fragment:
    call = find_call(value, site.site.span.line)
    if call is None:
        raise Unsupported(site.site.span.line, "an invoke this planner cannot locate")
    kwargs = {k.arg: k.value for k in call.keywords if k.arg}
    if any(k.arg is None for k in call.keywords):
        raise Unsupported(call.lineno, "invoke arguments passed through **kwargs")
    for argument in kwargs:
        if argument not in PASSED_ARGUMENTS and argument not in DROPPED_ARGUMENTS:
            raise Unsupported(
                call.lineno,
                f"the invoke argument `{argument}`: Step Functions' Lambda integration "
                "cannot pass it",
            )
    if "LogType" in kwargs:
        builder.notes.append(
            Reason(scope.path, call.lineno, DROPPED_ARGUMENTS["LogType"]),
        )
    if site.method == "invoke_async":
        payload_node = kwargs.get("InvokeArgs")
        asynchronous = True
    else:
        payload_node = kwargs.get("Payload")
        kind = kwargs.get("InvocationType")
        asynchronous = False
        if kind is not None:
            mode = builder.value(kind, scope)
            known = invocation(site)
            if mode not in (Lit("Event"), Lit("RequestResponse")) and known.detail in (
                "InvocationType=Event",
                "InvocationType=RequestResponse",
            ):
                # resolved by the analysis (an Enum member's value, a constant elsewhere)
                mode = Lit(known.detail.split("=", 1)[1])
            if mode == Lit("Event"):
                asynchronous = True
            elif mode == Lit("DryRun"):
                raise Unsupported(
                    call.lineno,
                    "a `DryRun` invoke (it checks permissions and calls nothing)",
                    "remove it: the machine's role is checked when it is deployed",
                )
            elif isinstance(mode, Op) and mode.op == Operator.IF and _modes(mode) is not None:
                return _either_mode(builder, site, value, kind, mode, target, scope)
            elif mode != Lit("RequestResponse"):
                raise Unsupported(call.lineno, "InvocationType is not a constant")
    function = function_ref(builder, site, kwargs.get("FunctionName"), scope, call.lineno)
    payload: Expr = Lit({})
    if payload_node is not None:
        payload = payload_of(builder, payload_node, scope)
    qualifier = _qualifier(builder, kwargs, scope, call.lineno)
    context = kwargs.get("ClientContext")
    client_context = to_expr(builder.value(context, scope), call.lineno) if context else None
    label = function.display
    if function.dynamic is not None and isinstance(function.dynamic, Var):
        label = f"invoke_{function.dynamic.name.removeprefix('invoke_lambda_')}"
    elif function.dynamic is not None:
        label = "choose_function"  # a Choice then, a Task per function (dispatch.py)
    name = builder.unique(pascal(label))
    task = Task(
        name,
        function,
        payload,
        None,
        None,
        span_of(call),
        asynchronous,
        scope.retry,
        # a synchronous invoke whose FunctionError nothing checks (yet: see conditional.py)
        unchecked=not asynchronous,
        path=scope.path,
        qualifier=qualifier,
        client_context=client_context,
    )
    builder.add(task)
    for catch in scope.catches:
        # `client.invoke` raises botocore's errors only: no other except sees this Task fail
        if any(e.startswith(("States.", "Lambda.")) for e in catch.errors):
            catch.tasks.append(name)
    if target is not None:
        variable = scope.var(target)
        builder.states[name] = replace(task, assign=variable)
        scope.env[target] = bind_result(builder, value, call, Var(variable), scope)
    return Fragment(name, [(name, "next")])


def _modes(mode: Op) -> bool | None:
    """`"Event" if c else "RequestResponse"`: True when c makes it asynchronous, False when
    the other way round, None for anything else."""
    _, then, otherwise = mode.args
    if (then, otherwise) == (Lit("Event"), Lit("RequestResponse")):
        return True
    if (then, otherwise) == (Lit("RequestResponse"), Lit("Event")):
        return False
    return None


def _either_mode(
    builder: WorkflowBuilder,
    site: InvokeSite,
    value: ast.expr,
    kind: ast.expr,
    mode: Op,
    target: str | None,
    scope: Scope,
) -> Fragment:
    """An InvocationType chosen at run time: a Choice between the synchronous Task and the
    asynchronous one (which has no result: an Event invoke's payload is empty)."""

    def variant(literal: str, into: str | None) -> Fragment:
        constant = located(ast.Constant(literal), kind)
        return transform_invoke(
            builder, site, Replace(kind, constant).visit(copy_node(value)), into, scope
        )

    synchronous = variant("RequestResponse", target)
    asynchronous = variant("Event", None)
    assert synchronous.start is not None and asynchronous.start is not None
    test = mode.args[0] if _modes(mode) else Op(Operator.NOT, (mode.args[0],))
    name = builder.add(
        Choice(
            builder.unique("ChooseInvocationType"),
            ((test, asynchronous.start),),
            synchronous.start,
            span_of(kind),
        )
    )
    if target is not None:
        builder.notes.append(
            Reason(
                scope.path,
                kind.lineno,
                "InvocationType is chosen at run time: after the asynchronous invoke the "
                f"result `{target}` is not set (the original's payload was empty)",
            )
        )
    return Fragment(name, [*synchronous.exits, *asynchronous.exits])


def bind_result(
    builder: WorkflowBuilder, value: ast.expr, call: ast.Call, result: Var, scope: Scope
) -> Value:
    """What `value` is when the invoke `call` inside it answers into variable `result`."""
    marker = "__untangle_response__"
    scope.env[marker] = Response(result)
    try:
        rewritten = Replace(call, ast.Name(marker, ast.Load())).visit(copy_node(value))
        return builder.value(rewritten, scope)
    finally:
        del scope.env[marker]


def payload_of(builder: WorkflowBuilder, node: ast.expr, scope: Scope) -> Expr:
    value = builder.value(node, scope)
    parsed_again(builder, node, scope)  # the callee gets the data, not the text
    if isinstance(value, Op) and value.op == Operator.JSON_STRING:
        return value.args[0]
    if isinstance(value, Lit) and isinstance(value.value, (str, bytes)):
        # `Payload='{"a": 1}'`, `json.dumps({"a": 1})` (folded): the event the callee gets
        try:
            return Lit(json.loads(value.value))
        except ValueError:
            raise Unsupported(node.lineno, "a payload that is not JSON text") from None
    if isinstance(value, (Response, Stream)):
        return value.payload
    if isinstance(value, Opaque):
        raise Unsupported(node.lineno, f"payload depends on {value.message}")
    return to_expr(value, node.lineno)


# what boto3's `invoke` takes that the `lambda:invoke` integration passes on (FunctionName,
# Payload and InvocationType are the Task itself)
PASSED_ARGUMENTS = (
    "FunctionName",
    "Payload",
    "InvokeArgs",
    "InvocationType",
    "Qualifier",
    "ClientContext",
)
# what it takes and changes nothing the machine keeps, with why
DROPPED_ARGUMENTS = {
    "LogType": "LogType dropped: the machine keeps no log tail (the function's logs are in "
    "CloudWatch, its result in the execution history)",
}


def _qualifier(
    builder: WorkflowBuilder, kwargs: dict[str, ast.expr], scope: Scope, line: int
) -> Expr | None:
    """`Qualifier=` as given, else the alias or version a literal FunctionName ends with
    (`billing-sync:PROD`, `arn:…:function:billing-sync:7`): the Task invokes the same one."""
    if "Qualifier" in kwargs:
        return to_expr(builder.value(kwargs["Qualifier"], scope), line)
    name = kwargs.get("FunctionName")
    value = builder.value(name, scope) if name is not None else None
    if isinstance(value, Lit) and isinstance(value.value, str):
        parts = value.value.split(":")
        alias = parts[7] if value.value.startswith("arn:") and len(parts) > 7 else None
        if not value.value.startswith("arn:") and len(parts) == 2:
            alias = parts[1]
        if alias:
            return Lit(alias)
    return None


def function_ref(
    builder: WorkflowBuilder, site: InvokeSite, node: ast.expr | None, scope: Scope, line: int
) -> FunctionRef:
    if node is not None:
        value = builder.value(node, scope)
        if isinstance(value, Lit) and isinstance(value.value, str):
            refuse_own_name(builder, value.value, line)
            return builder.remember(builder.name_function(function_name_from_arn(value.value)))
        if isinstance(value, Op) and value.op == Operator.ENV and isinstance(value.args[0], Lit):
            return builder.remember(builder.name_function(f"${value.args[0].value}"))
        if isinstance(value, Op) and value.op == Operator.IF:
            chosen = choice_of_names(builder, value, {})
            if chosen is not None:
                return FunctionRef("", display_of(builder, value), chosen)
    names = site.kwargs.get("FunctionName", frozenset())
    if (
        node is not None
        and isinstance(value, Var)
        and not any(isinstance(v, OwnName) for v in names)
    ):
        return dynamic_function(builder, value, names, line)
    if any(isinstance(v, OwnName) for v in names):
        raise Unsupported(line, "the handler invokes itself: loop in the state machine instead")
    known = [v for v in names if isinstance(v, (ConstV, Env))]
    if len(known) == 1 and len(names) == 1:
        only = known[0]
        if isinstance(only, ConstV) and isinstance(only.value, str):
            refuse_own_name(builder, only.value, line)
            return builder.remember(builder.name_function(function_name_from_arn(only.value)))
        if isinstance(only, Env):
            return builder.remember(builder.name_function(f"${only.name}"))
    raise Unsupported(
        line, "the invoked function's name is not known statically (dynamic dispatch)"
    )


def refuse_own_name(builder: WorkflowBuilder, name: str, line: int) -> None:
    """A literal name that is the handler's own `FunctionName` in its template is a
    self-invocation (after the migration that function is the machine's entry, not a step)."""
    own = builder.program.template_function_name(builder.handler)
    if own is not None and function_name_from_arn(name) == own:
        raise Unsupported(
            line,
            f"the handler invokes itself by its own name (`{own}`, its template's FunctionName)",
            hint="loop in the state machine (a Choice back to the first state) instead",
        )


def dynamic_function(
    builder: WorkflowBuilder, value: Var, names: frozenset[object], line: int
) -> FunctionRef:
    """A function chosen at run time from a known set (a variable the branches set): the
    Assign states that set it get the functions' placeholders."""
    candidates: dict[str, FunctionRef] = {}
    for state_name, state in list(builder.states.items()):
        if not isinstance(state, Assign):
            continue
        values = []
        for key, expr in state.values:
            if key == value.name and not value.path:
                chosen = choice_of_names(builder, expr, candidates)
                if chosen is None:
                    raise Unsupported(line, "the invoked function is chosen from data")
                expr = chosen
            values.append((key, expr))
        builder.states[state_name] = replace(state, values=tuple(values))
    if not candidates:
        raise Unsupported(
            line, "the invoked function's name is not known statically (dynamic dispatch)"
        )
    display = " | ".join(sorted(r.display for r in candidates.values()))
    return FunctionRef("", display, value)


def choice_of_names(
    builder: WorkflowBuilder, expr: Expr, candidates: dict[str, FunctionRef]
) -> Expr | None:
    """A function name, or a choice among names (`A if c else B`, a table lookup, None where
    the original would pass None): the same with each name's placeholder, the functions added
    to `candidates`; None when anything else chooses it."""
    if isinstance(expr, Op) and expr.op == Operator.IF:
        condition, then, otherwise = expr.args
        first = choice_of_names(builder, then, candidates)
        second = choice_of_names(builder, otherwise, candidates)
        if first is None or second is None:
            return None
        return Op(Operator.IF, (condition, first, second))
    if expr == Lit(None):
        return expr
    ref = name_of(builder, expr)
    if ref is None:
        return None
    candidates[ref.placeholder] = builder.remember(ref)
    return Lit(ref.placeholder)


def display_of(builder: WorkflowBuilder, expr: Expr) -> str:
    found: dict[str, FunctionRef] = {}
    choice_of_names(builder, expr, found)
    return " | ".join(sorted(r.display for r in found.values()))


def name_of(builder: WorkflowBuilder, expr: Expr) -> FunctionRef | None:
    if isinstance(expr, Lit) and isinstance(expr.value, str):
        return builder.name_function(function_name_from_arn(expr.value))
    if isinstance(expr, Op) and expr.op == Operator.ENV and isinstance(expr.args[0], Lit):
        return builder.name_function(f"${expr.args[0].value}")
    return None


def transform_sleep(
    builder: WorkflowBuilder, site: SleepSite, value: ast.expr, scope: Scope, target: str | None
) -> Fragment:
    call = find_call(value, site.site.span.line)
    if call is None or not call.args:
        raise Unsupported(site.site.span.line, "a sleep without a duration")
    seconds = builder.value(call.args[0], scope)
    if isinstance(seconds, NOT_DATA):
        raise Unsupported(call.lineno, "a sleep whose duration the workflow cannot compute")
    if isinstance(seconds, Lit) and isinstance(seconds.value, (int, float)):
        if seconds.value != int(seconds.value) or seconds.value < 0:
            raise Unsupported(call.lineno, "a sleep of a fraction of a second")
        seconds = Lit(int(seconds.value))
    following = next_invoke_name(builder, call, scope.path)
    name = builder.unique(f"WaitFor{following}" if following else "Wait")
    builder.add(Wait(name, seconds, None, None, span_of(call)))
    return Fragment(name, [(name, "next")])


def next_invoke_name(builder: WorkflowBuilder, call: ast.Call, path: str) -> str | None:
    after = sorted(
        (
            (key, site)
            for key, site in builder.invokes.items()
            if key[0] == path and key[1] > call.lineno
        ),
        key=lambda pair: pair[0],
    )
    if not after:
        return None
    target = static_target(after[0][1])
    return pascal(target) if target else None


def static_target(site: InvokeSite) -> str | None:
    """The invoked function's name for naming things after it, when the site has one: a helper
    invoking whatever its callers pass has several (the union over them), and none is this
    call's, so none is used."""
    names: set[str] = set()
    for v in site.kwargs.get("FunctionName", frozenset()):
        if isinstance(v, ConstV) and isinstance(v.value, str):
            names.add(function_name_from_arn(v.value))
        elif isinstance(v, Env):
            names.add(v.name.lower().removesuffix("_function").removesuffix("_fn"))
    return names.pop() if len(names) == 1 else None
