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
    chosen_test,
    constant_of,
    constant_truth,
    fold,
    is_static,
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
    raw_response_field,
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
    if isinstance(base, Opaque) and base.extract is not None:
        base = base.extract()  # a value a new function computes, read in part
    key = builder.value(node.slice, scope)
    if isinstance(base, Response):
        if key == Lit("Payload"):
            return Stream(base.payload)
        if key == Lit("StatusCode"):
            return Lit(200)
        return raw_response_field(node.lineno, key.value if isinstance(key, Lit) else None)
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
        # a value, not only a condition: `a or b` is a when a is truthy, else b (`and`: the
        # other way); truthy() of it is the condition again
        return _bool_value(op, values)
    operands = [truthy(v) for v in values]
    # constants decide or drop out (a StatusCode check that is always true, say)
    absorbing, neutral = (Lit(False), Lit(True)) if op == Operator.AND else (Lit(True), Lit(False))
    if absorbing in operands:
        return absorbing
    operands = [o for o in operands if o != neutral]
    if not operands:
        return neutral
    return operands[0] if len(operands) == 1 else Op(op, tuple(operands))


def _get_or_none(value: Expr) -> bool:
    return isinstance(value, Op) and value.op == Operator.DEFAULT and value.args[1] == Lit(None)


def _bool_value(op: Operator, values: list[Expr]) -> Expr:
    result = values[-1]
    for value in reversed(values[:-1]):
        test = truthy(value)
        if isinstance(test, Lit):  # a constant decides
            result = (
                (value if test.value else result)
                if op == Operator.OR
                else (result if test.value else value)
            )
        elif op == Operator.OR:
            # where `d.get(k)` is truthy it is there: the path itself
            present = value.args[0] if isinstance(value, Op) and _get_or_none(value) else value
            result = Op(Operator.IF, (test, present, result))
        else:
            result = Op(Operator.IF, (test, result, value))
    return result


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


def _unrolled_listcomp(
    builder: WorkflowBuilder, node: ast.ListComp, items: Arr, scope: Scope
) -> Value:
    """`[f(x) for x in ("a", "b") if c(x)]` over a few fixed values: each element with its
    value in place (`"a" in body` is then a path test), those whose condition holds kept."""
    generator = node.generators[0]
    assert isinstance(generator.target, ast.Name)
    parts: list[Expr] = []
    for item in items.items:
        inner = replace(scope, env={**scope.env, generator.target.id: item})
        element = builder.value(node.elt, inner)
        tests = [builder.value(c, inner) for c in generator.ifs]
        if any(isinstance(v, NOT_DATA) for v in (element, *tests)):
            return Opaque(node.lineno, "a comprehension on values the workflow lacks")
        checks = [truthy(to_expr(t, node.lineno)) for t in tests]
        condition = checks[0] if len(checks) == 1 else Op(Operator.AND, tuple(checks))
        condition = Lit(True) if not checks else condition
        kept = Arr((to_expr(element, node.lineno),))
        parts.append(
            kept if condition == Lit(True) else Op(Operator.IF, (condition, kept, Arr(())))
        )
    parts = [p for p in parts if not (isinstance(p, Op) and p.args[0] == Lit(False))]
    if all(isinstance(p, Arr) for p in parts):
        return Arr(tuple(e for p in parts if isinstance(p, Arr) for e in p.items))
    return Op(Operator.FLATTEN, (Arr(tuple(parts)),))


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
    if isinstance(items, Arr) and items.items and all(is_static(i) for i in items.items):
        return _unrolled_listcomp(builder, node, items, scope)
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
        if isinstance(base, Lit) and node.attr == "value" and isinstance(base.value, (str, int)):
            # an Enum member (`Fn.BILLING.value`, a member passed along): the analysis knows a
            # member by its value, and neither str nor int has a `.value`
            return base
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
            if isinstance(right, Arr) and all(is_static(i) for i in right.items):
                # in a few fixed values (`kind in ("pro", "team")`): equal to one of them
                member = _either_of([fold(Op(Operator.EQ, (left, i))) for i in right.items])
                results.append(member if isinstance(op, ast.In) else _negate(member))
            elif isinstance(left, Lit) and isinstance(left.value, str):
                found = with_path(right, left.value)
                if found is None:
                    raise Unsupported(node.lineno, f"`in` on {source_text(comparator, scope)}")
                test: Expr = Op(Operator.EXISTS, (found,))
                results.append(test if isinstance(op, ast.In) else Op(Operator.NOT, (test,)))
            elif isinstance(right, Arr):
                raise Unsupported(node.lineno, "`in` on a list")
            else:
                raise Unsupported(
                    node.lineno,
                    f"`in` on {source_text(comparator, scope)} with a value known only at run time",
                )
        elif isinstance(op, (ast.Is, ast.IsNot)) and _is_bool_literal(right):
            # `x is True`: only the boolean itself, which is what `=` of JSONata and
            # BooleanEquals of JSONPath test (`1 is True` is false, as `1 = true` is)
            assert isinstance(right, Lit)
            if isinstance(left, Lit):
                same: Expr = Lit(left.value is right.value)
            else:
                same = Op(Operator.EQ, (left, right))
            results.append(same if isinstance(op, ast.Is) else _negate(same))
        elif isinstance(op, (ast.Is, ast.IsNot)):
            if right != Lit(None):
                raise Unsupported(node.lineno, "`is` with something other than None, True or False")
            test = chosen_test(Operator.IS_NULL, left) or Op(Operator.IS_NULL, (left,))
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


def _is_bool_literal(expr: Expr) -> bool:
    return isinstance(expr, Lit) and isinstance(expr.value, bool)


def _either_of(tests: list[Expr]) -> Expr:
    if Lit(True) in tests:
        return Lit(True)
    tests = [t for t in tests if t != Lit(False)]
    if not tests:
        return Lit(False)
    return tests[0] if len(tests) == 1 else Op(Operator.OR, tuple(tests))


def _negate(test: Expr) -> Expr:
    return Lit(not test.value) if isinstance(test, Lit) else Op(Operator.NOT, (test,))


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
