"""The step every statement that does work shares, `target = <work>`: a Task, a Wait, an
inlined helper or a new function where the original computed something, else data bound to
`target`; and hoisting the work out of an expression."""

from __future__ import annotations

import ast
import re
from typing import TYPE_CHECKING

from untangle.analysis.program import InvokeSite, SleepSite
from untangle.workflow.build.argument_hoist import hoist_arguments
from untangle.workflow.build.ast_helpers import (
    Replace,
    attr_name,
    copy_node,
    dotted_name,
    find_call,
    source_text,
    span_of,
)
from untangle.workflow.build.collectors import appended_list, extended_list, transform_append
from untangle.workflow.build.concurrency import transform_map
from untangle.workflow.build.dict_comprehension import fans_out, transform_dict_comprehension
from untangle.workflow.build.extraction import (
    droppable,
    extract_later,
    extract_task,
    extractable,
    has_effects,
    infrastructure,
    sdk_response,
)
from untangle.workflow.build.helpers import construct
from untangle.workflow.build.invoke import static_target, transform_invoke, transform_sleep
from untangle.workflow.build.scope import (
    Fragment,
    NeedsData,
    Opaque,
    Scope,
    Unsupported,
    Value,
)
from untangle.workflow.build.work import work_call
from untangle.workflow.ir import (
    Arr,
    Assign,
    Lit,
    Obj,
    Op,
    Operator,
    Reason,
    Var,
    pascal,
)

if TYPE_CHECKING:
    from untangle.workflow.build.builder import WorkflowBuilder


# expressions a new function can compute when the workflow cannot (not bare names: a value
# the workflow lacks under a name stays what it is)
COMPUTATIONS = (
    ast.Call,
    ast.GeneratorExp,
    ast.ListComp,
    ast.SetComp,
    ast.DictComp,
    ast.BinOp,
    ast.UnaryOp,
    ast.BoolOp,
    ast.Compare,
    ast.IfExp,
    ast.Subscript,
    ast.JoinedStr,
    ast.Dict,
    ast.List,
    ast.Tuple,
)


def value_or_opaque(builder: WorkflowBuilder, value: ast.expr, scope: Scope) -> Value:
    """The value of `value`; Opaque when a part of it is something ASL cannot compute but the
    whole can run as a new function (its inputs all plain data)."""
    try:
        return builder.value(value, scope)
    except NeedsData as refusal:
        if (
            refusal.secondary
            or not isinstance(value, COMPUTATIONS)
            or extractable(builder, value, scope) is None
        ):
            raise
        return Opaque(refusal.line, refusal.message.removeprefix("the workflow would need "))


def transform_effect(
    builder: WorkflowBuilder, value: ast.expr, target: str | None, scope: Scope
) -> Fragment:
    """`target = value` (or just `value`): emits a Task, a Wait or an inlined helper when the
    expression does work, else binds a data expression."""
    if (
        target is None
        and isinstance(value, ast.Call)
        and (appended_list(ast.Expr(value)) or extended_list(ast.Expr(value)))
    ):
        appended = transform_append(builder, value, scope)
        if appended is not None:
            return appended
    if target is not None and isinstance(value, ast.DictComp) and fans_out(builder, value, scope):
        return transform_dict_comprehension(builder, value, target, scope)
    call = work_call(builder, value, scope)
    if call is None:
        if target is None:
            if droppable(builder, value, scope):
                builder.notes.append(
                    Reason(
                        scope.path,
                        value.lineno,
                        "logging dropped: the execution history shows each step",
                    )
                )
                return Fragment(None, [])
            if isinstance(value, ast.Call) and attr_name(value.func) in (
                "append",
                "extend",
                "update",
            ):
                raise Unsupported(value.lineno, "a collection mutated across steps")
            params = extractable(builder, value, scope)
            if params is None:
                raise Unsupported(
                    value.lineno,
                    f"local computation `{source_text(value, scope)}` on values the workflow lacks",
                )
            name = extract_task(builder, value, None, params, scope)
            return Fragment(name, [(name, "next")])
        constructed = construct(builder, value, scope) if isinstance(value, ast.Call) else None
        if constructed is not None:
            scope.env[target] = constructed
            return Fragment(None, [])
        computed = builder.value(value, scope)
        if isinstance(computed, Opaque) and infrastructure(builder, target, value, scope):
            scope.env[target] = Opaque(value.lineno, f"`{target}`, a client or service object")
            return Fragment(None, [])
        if isinstance(computed, Opaque) and isinstance(value, COMPUTATIONS):
            params = extractable(builder, value, scope)
            if params is not None and sdk_response(builder, value, scope):
                raise Unsupported(
                    value.lineno,
                    f"the response of `{source_text(value, scope)}` kept for a later step: an "
                    "AWS SDK response is not JSON data (datetimes, streams)",
                    "take what the handler needs from it in the same statement "
                    '(`size = s3.head_object(…)["ContentLength"]`)',
                )
            if params is not None and has_effects(value):
                # it runs where the original ran it, whether or not its value is used
                name = extract_task(builder, value, target, params, scope)
                scope.env[target] = Var(scope.var(target))
                return Fragment(name, [(name, "next")])
            if params is not None:
                return extract_later(builder, value, target, params, computed, scope)
        if isinstance(computed, Opaque) and has_effects(value):
            raise Unsupported(
                value.lineno,
                f"`{source_text(value, scope)}` on values the workflow lacks: it may do more "
                "than compute a value, so it cannot be left out",
            )
        if isinstance(computed, Op) and (
            computed.op is Operator.JSON_PARSE
            or (computed.op is Operator.DEFAULT and isinstance(computed.args[1], (Obj, Arr)))
            or _chosen_container(computed)
        ):
            # `body = json.loads(event["body"])` (an API Gateway event), `customer =
            # event.get("customer", {})`: computed once, into a variable its fields are read from
            variable = scope.var(target)
            name = builder.add(
                Assign(
                    builder.unique(f"{'Parse' if _parses(computed) else 'Set'}{pascal(target)}"),
                    ((variable, computed),),
                    None,
                    span_of(value),
                )
            )
            scope.env[target] = Var(variable)
            return Fragment(name, [(name, "next")])
        scope.env[target] = computed
        return Fragment(None, [])
    kind, info = call
    if kind == "map":
        assert isinstance(info, (ast.ListComp, ast.Call))
        return transform_map(builder, info, value, target, scope)
    if kind == "gather":
        raise Unsupported(value.lineno, "asyncio.gather whose results are not unpacked into names")
    if kind == "sleep":
        assert isinstance(info, SleepSite)
        return transform_sleep(builder, info, value, scope, target)
    if kind == "invoke":
        assert isinstance(info, InvokeSite)
        invoke = find_call(value, info.site.span.line)
        if invoke is None:
            return transform_invoke(builder, info, value, target, scope)
        # (never the FunctionName: a name computed by a new function is no Task's function)
        before, rewritten = hoist_arguments(builder, invoke, scope, ("Payload", "InvokeArgs"))
        if rewritten is not invoke:
            value = Replace(invoke, rewritten).visit(copy_node(value))
        return builder.sequence(before, transform_invoke(builder, info, value, target, scope))
    assert isinstance(info, tuple)
    callee, helper_call = info
    before, rewritten = hoist_arguments(builder, helper_call, scope, None)
    if rewritten is not helper_call:
        value = Replace(helper_call, rewritten).visit(copy_node(value))
        info = (callee, rewritten)
    return builder.sequence(before, builder.inline(info, value, target, scope))


def hoist(builder: WorkflowBuilder, node: ast.expr, scope: Scope) -> tuple[Fragment, ast.expr]:
    """Emit the work inside `node` (invokes, sleeps, helpers) first, each into a variable,
    and return `node` with those calls replaced by the variables."""
    fragment = Fragment(None, [])
    for _ in range(50):
        found = work_call(builder, node, scope)
        if found is None:
            return fragment, node
        kind, info = found
        call: ast.expr | None
        if kind == "call":
            call = info[1]  # type: ignore[index]
        elif kind in ("map", "gather"):
            call = info  # type: ignore[assignment]  # the comprehension or call itself
            for sub in ast.walk(node):  # `list(pool.map(fn, xs))`: the Map's results
                if (
                    isinstance(sub, ast.Call)
                    and dotted_name(sub.func) == "list"
                    and len(sub.args) == 1
                    and sub.args[0] is info
                ):
                    call = sub
        else:
            call = find_call(node, info.site.span.line)  # type: ignore[attr-defined]
        if call is None:
            break
        temp = temp_name(builder, kind, info)
        step = builder.effect(call, temp, scope)
        fragment = builder.sequence(fragment, step)
        node = Replace(call, ast.Name(temp, ast.Load())).visit(copy_node(node))
    raise Unsupported(getattr(node, "lineno", 0), "too much work in one expression")


def temp_name(builder: WorkflowBuilder, kind: str, info: object) -> str:
    if kind == "invoke" and isinstance(info, InvokeSite):
        base = static_target(info) or "result"
    elif kind == "call" and isinstance(info, tuple):
        base = str(info[0]).rsplit(".", 1)[-1].lstrip("_") + "_result"
    else:
        base = "result"
    base = re.sub(r"[^0-9A-Za-z]+", "_", base).strip("_").lower() or "result"
    if base[0].isdigit():
        base = "r_" + base
    name, counter = base, 2
    while name in builder._temps:
        name = f"{base}_{counter}"
        counter += 1
    builder._temps.add(name)
    return name


def _chosen_container(computed: Op) -> bool:
    """`params = event.get("queryStringParameters") or {}`, `json.loads(body or "{}")`: a
    dict or list chosen at run time, its fields read later."""
    if computed.op is not Operator.IF:
        return False
    return any(
        isinstance(branch, (Obj, Arr))
        or (isinstance(branch, Lit) and isinstance(branch.value, (dict, list)))
        or (isinstance(branch, Op) and branch.op is Operator.JSON_PARSE)
        for branch in computed.args[1:]
    )


def _parses(computed: Op) -> bool:
    if computed.op is Operator.IF:
        return any(isinstance(b, Op) and _parses(b) for b in computed.args[1:])
    return computed.op is Operator.JSON_PARSE
