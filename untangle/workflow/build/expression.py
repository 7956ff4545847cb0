"""Python expressions → data expressions of the workflow (or `Opaque` values)."""

from __future__ import annotations

import ast
from dataclasses import replace
from typing import TYPE_CHECKING

from untangle.analysis.values import Func
from untangle.facts.model import Attr as AttrSym
from untangle.facts.model import Ref, Sym
from untangle.workflow.build.ast_helpers import dotted_name, is_module_ref, source_text
from untangle.workflow.build.constant_fold import (
    constant_of,
    constant_truth,
    fold,
    truthy,
    typed_binary,
)
from untangle.workflow.build.scope import (
    NOT_DATA,
    ObjectRef,
    Opaque,
    Pool,
    Response,
    Scope,
    SelfRef,
    Stream,
    Unsupported,
    Value,
    describe,
    function_of,
    to_expr,
)
from untangle.workflow.ir import (
    Arr,
    Expr,
    Lit,
    Obj,
    Op,
    Operator,
    Var,
    with_path,
)

if TYPE_CHECKING:
    from untangle.workflow.build.builder import WorkflowBuilder


def transform_constant(builder: WorkflowBuilder, node: ast.Constant, scope: Scope) -> Value:
    if isinstance(node.value, (str, int, float, bool)) or node.value is None:
        return Lit(node.value)
    return Opaque(node.lineno, "a bytes constant")


def transform_name(builder: WorkflowBuilder, node: ast.Name, scope: Scope) -> Value:
    if node.id in scope.env:
        return scope.env[node.id]
    return global_value(builder, node, scope)


def transform_attribute(builder: WorkflowBuilder, node: ast.Attribute, scope: Scope) -> Value:
    return global_value(builder, node, scope)


def transform_await(builder: WorkflowBuilder, node: ast.Await, scope: Scope) -> Value:
    return builder.value(node.value, scope)


def transform_subscript(builder: WorkflowBuilder, node: ast.Subscript, scope: Scope) -> Value:
    if dotted_name(node.value) == "os.environ":
        key = builder.value(node.slice, scope)
        if isinstance(key, Lit) and isinstance(key.value, str):
            return Op(Operator.ENV, (key,))
    base = builder.value(node.value, scope)
    key = builder.value(node.slice, scope)
    if isinstance(base, Response):
        if key == Lit("Payload"):
            return Stream(base.payload)
        if key == Lit("StatusCode"):
            return Lit(200)
        return Opaque(node.lineno, "a field of the raw invoke response")
    if isinstance(base, (Stream, Opaque, SelfRef, Pool, ObjectRef)):
        return Opaque(node.lineno, describe(base))
    if (
        isinstance(key, Lit)
        and isinstance(key.value, (str, int))
        and not isinstance(key.value, bool)
    ):
        found = with_path(base, key.value)
        if found is not None:
            return found
    return Opaque(node.lineno, f"`{source_text(node, scope)}`")


def transform_dict(builder: WorkflowBuilder, node: ast.Dict, scope: Scope) -> Value:
    items: list[tuple[str, Expr]] = []
    for k, v in zip(node.keys, node.values):
        if not (isinstance(k, ast.Constant) and isinstance(k.value, str)):
            return Opaque(node.lineno, "a dict with computed keys")
        items.append((k.value, to_expr(builder.value(v, scope), getattr(v, "lineno", node.lineno))))
    return Obj(tuple(items))


def transform_sequence(builder: WorkflowBuilder, node: ast.List | ast.Tuple, scope: Scope) -> Value:
    return Arr(
        tuple(
            to_expr(builder.value(e, scope), getattr(e, "lineno", node.lineno)) for e in node.elts
        )
    )


def transform_bool_op(builder: WorkflowBuilder, node: ast.BoolOp, scope: Scope) -> Value:
    op = Operator.AND if isinstance(node.op, ast.And) else Operator.OR
    values = [
        to_expr(builder.value(v, scope), getattr(v, "lineno", node.lineno)) for v in node.values
    ]
    if not all(truthy(v) == v for v in values):
        # `name = a or b` is a or b, not a boolean: `a if a else b` (`b if a else a` for
        # `and`), evaluated in turn; a condition is its truth again (`truthy` of this `if`)
        result = values[-1]
        for value in reversed(values[:-1]):
            test = truthy(value)
            decided = constant_truth(test)
            if decided is not None:  # a constant decides: `FORCE or event["changed"]`
                result = value if decided == (op == Operator.OR) else result
                continue
            if op == Operator.OR:
                result = Op(Operator.IF, (test, _when_true(value), result))
            else:
                result = Op(Operator.IF, (test, result, value))
        return result
    operands = values
    # constants decide or drop out (a StatusCode check that is always true, say)
    absorbing, neutral = (Lit(False), Lit(True)) if op == Operator.AND else (Lit(True), Lit(False))
    if absorbing in operands:
        return absorbing
    operands = [o for o in operands if o != neutral]
    if not operands:
        return neutral
    return operands[0] if len(operands) == 1 else Op(op, tuple(operands))


def _when_true(value: Expr) -> Expr:
    """`value` where it is true: `d.get("k")` (a falsy default) is `d["k"]` there."""
    if isinstance(value, Op) and value.op == Operator.DEFAULT:
        found, default = value.args
        if isinstance(default, Lit) and not default.value:
            return found
    return value


def transform_unary_op(builder: WorkflowBuilder, node: ast.UnaryOp, scope: Scope) -> Value:
    operand = to_expr(builder.value(node.operand, scope), node.lineno)
    if isinstance(node.op, ast.Not):
        return Op(Operator.NOT, (truthy(operand),))
    if (
        isinstance(node.op, ast.USub)
        and isinstance(operand, Lit)
        and isinstance(operand.value, (int, float))
    ):
        return Lit(-operand.value)
    return Opaque(node.lineno, f"`{source_text(node, scope)}`")


def transform_f_string(builder: WorkflowBuilder, node: ast.JoinedStr, scope: Scope) -> Value:
    parts: list[Expr] = []
    for part in node.values:
        if isinstance(part, ast.Constant):
            parts.append(Lit(str(part.value)))
        elif (
            isinstance(part, ast.FormattedValue)
            and part.format_spec is None
            and part.conversion in (-1, 115)
        ):
            parts.append(to_expr(builder.value(part.value, scope), node.lineno))
        else:
            return Opaque(node.lineno, "a formatted string with a format spec")
    return Op(Operator.CONCAT, tuple(parts))


def transform_if_exp(builder: WorkflowBuilder, node: ast.IfExp, scope: Scope) -> Value:
    test = builder.value(node.test, scope)
    decided = None if isinstance(test, NOT_DATA) else constant_truth(to_expr(test, node.lineno))
    if decided is not None:  # a helper's flag argument, say
        return builder.value(node.body if decided else node.orelse, scope)
    body = builder.value(node.body, scope)
    orelse = builder.value(node.orelse, scope)
    if any(isinstance(v, NOT_DATA) for v in (test, body, orelse)):
        return Opaque(node.lineno, "a conditional expression on values the workflow lacks")
    return Op(
        Operator.IF,
        (
            truthy(to_expr(test, node.lineno)),
            to_expr(body, node.lineno),
            to_expr(orelse, node.lineno),
        ),
    )


def transform_other(builder: WorkflowBuilder, node: ast.expr, scope: Scope) -> Value:
    """An expression the workflow cannot compute: an error only if something uses it."""
    return Opaque(node.lineno, f"`{source_text(node, scope)}`")


def transform_listcomp(builder: WorkflowBuilder, node: ast.ListComp, scope: Scope) -> Value:
    """`[f(x) for x in xs if c(x)]` with no work inside: a data transformation."""
    generator = node.generators[0]
    if len(node.generators) != 1 or not isinstance(generator.target, ast.Name):
        return Opaque(node.lineno, "a comprehension with several loops or an unpacking target")
    items = builder.value(generator.iter, scope)
    if isinstance(items, NOT_DATA):
        return Opaque(node.lineno, f"a comprehension over {describe(items)}")
    variable = generator.target.id
    inner = replace(scope, env={**scope.env, variable: Var(variable)})
    element = to_expr(builder.value(node.elt, inner), node.lineno)
    conditions = [truthy(to_expr(builder.value(c, inner), c.lineno)) for c in generator.ifs]
    condition: Expr = (
        Lit(True)
        if not conditions
        else conditions[0]
        if len(conditions) == 1
        else Op(Operator.AND, tuple(conditions))
    )
    return Op(Operator.COMPREHENSION, (items, Lit(variable), element, condition))


def global_value(builder: WorkflowBuilder, node: ast.Name | ast.Attribute, scope: Scope) -> Value:
    """A module-level constant, a class attribute, an environment variable."""
    if isinstance(node, ast.Attribute) and not is_module_ref(node.value, scope):
        base = builder.value(node.value, scope)
        if isinstance(base, ObjectRef):
            for name, stored in base.attrs:
                if name == node.attr:
                    return stored  # type: ignore[return-value]
            base = SelfRef(base.cls)
        if isinstance(base, SelfRef):
            return constant_of(builder.program.attribute_values(base.cls, node.attr), node, scope)
        if isinstance(base, Response):
            return Opaque(node.lineno, "an attribute of the raw invoke response")
        if isinstance(base, Opaque):
            return base
        return Opaque(node.lineno, f"`{source_text(node, scope)}`")
    qualname = builder.function_at(scope.path, node.lineno) or ""
    module = builder.program.function_module.get(qualname)
    dotted = dotted_name(node)
    if module is None or not dotted:
        return Opaque(node.lineno, f"`{source_text(node, scope)}`")
    head, _, rest = dotted.partition(".")
    sym: Sym = Ref(f"{module}.{head}")
    for part in rest.split(".") if rest else []:
        sym = AttrSym(sym, part)
    values = builder.program.values(sym)
    if len(values) == 1:
        (only,) = values
        if isinstance(only, Func) and only.qualname in builder.program.functions:
            # the function itself: a helper given it calls it (`post(event, deposit)`)
            return function_of(only.qualname, node.lineno, source_text(node, scope))
    found = constant_of(values, node, scope)
    if isinstance(found, Opaque) and not rest:
        assigned = builder.module_assignment(builder.program.modules[module].path, head)
        if assigned is not None:
            return builder.value(assigned, Scope({}, scope.path, scope.source_lines))
    return found


def transform_compare(builder: WorkflowBuilder, node: ast.Compare, scope: Scope) -> Value:
    left = to_expr(builder.value(node.left, scope), node.lineno)
    results: list[Expr] = []
    for op, comparator in zip(node.ops, node.comparators):
        right = to_expr(builder.value(comparator, scope), node.lineno)
        if isinstance(op, (ast.In, ast.NotIn)):
            if isinstance(left, Lit) and isinstance(left.value, str):
                found = with_path(right, left.value)
                if found is None:
                    raise Unsupported(node.lineno, f"`in` on {source_text(comparator, scope)}")
                test: Expr = Op(Operator.EXISTS, (found,))
                results.append(test if isinstance(op, ast.In) else Op(Operator.NOT, (test,)))
            else:
                raise Unsupported(node.lineno, "`in` on a list")
        elif isinstance(op, (ast.Is, ast.IsNot)):
            if right != Lit(None):
                raise Unsupported(node.lineno, "`is` with something other than None")
            test = Op(Operator.IS_NULL, (left,))
            results.append(test if isinstance(op, ast.Is) else Op(Operator.NOT, (test,)))
        else:
            symbol = {
                ast.Eq: Operator.EQ,
                ast.NotEq: Operator.NE,
                ast.Lt: Operator.LT,
                ast.LtE: Operator.LE,
                ast.Gt: Operator.GT,
                ast.GtE: Operator.GE,
            }[type(op)]
            results.append(fold(Op(symbol, (left, right))))
        left = right
    return results[0] if len(results) == 1 else Op(Operator.AND, tuple(results))


def transform_binop(builder: WorkflowBuilder, node: ast.BinOp, scope: Scope) -> Value:
    left = to_expr(builder.value(node.left, scope), node.lineno)
    right = to_expr(builder.value(node.right, scope), node.lineno)
    symbol = {
        ast.Add: Operator.ADD,
        ast.Sub: Operator.SUB,
        ast.Mult: Operator.MUL,
        ast.Div: Operator.DIV,
        ast.Pow: Operator.POW,
    }.get(type(node.op))
    if symbol is None:
        return Opaque(node.lineno, f"`{source_text(node, scope)}`")
    folded = fold(Op(symbol, (left, right)))
    if not isinstance(folded, Op):
        return folded
    if symbol == Operator.POW:
        return Opaque(node.lineno, "a power of a value known only at run time")
    typed = typed_binary(symbol, left, right)
    if typed is None:
        return Opaque(
            node.lineno,
            f"`{source_text(node, scope)}`, whose meaning depends on its operands' types "
            "(numbers, text or lists)",
        )
    return typed
