"""Dispatch only: which transform compiles each kind of statement and expression.

The transforms live in one module per construct (`statement`, `conditional`, `exceptions`,
`for_loop`, `while_loop`, `expression`, …); the builder calls `transform_stmt` and
`transform_expr` for every node it meets.
"""

from __future__ import annotations

import ast
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from untangle.workflow.build import (
    conditional,
    exceptions,
    expression,
    for_loop,
    specialize,
    while_loop,
)
from untangle.workflow.build import statement as simple
from untangle.workflow.build.scope import Fragment, Scope, Value

if TYPE_CHECKING:
    from untangle.workflow.build.builder import WorkflowBuilder

StatementTransform = Callable[[Any, Any, Scope], Fragment]
ExpressionTransform = Callable[[Any, Any, Scope], Value]

STATEMENTS: dict[type[ast.stmt], StatementTransform] = {
    ast.Expr: simple.transform_expr_stmt,
    ast.Assign: simple.transform_assign,
    ast.AnnAssign: simple.transform_assign,
    ast.AugAssign: simple.transform_aug_assign,
    ast.Return: simple.transform_return,
    ast.With: simple.transform_with,
    ast.AsyncWith: simple.transform_with,
    ast.Break: simple.transform_break,
    ast.Continue: simple.transform_continue,
    ast.Pass: simple.transform_no_op,
    ast.Import: simple.transform_no_op,
    ast.ImportFrom: simple.transform_no_op,
    ast.Global: simple.transform_no_op,
    ast.Nonlocal: simple.transform_no_op,
    ast.FunctionDef: simple.transform_definition,
    ast.AsyncFunctionDef: simple.transform_definition,
    ast.ClassDef: simple.transform_definition,
    ast.Raise: exceptions.transform_raise,
    ast.Try: exceptions.transform_try,
    ast.If: conditional.transform_if,
    ast.For: for_loop.transform_for,
    ast.AsyncFor: for_loop.transform_for,
    ast.While: while_loop.transform_while,
}


def transform_stmt(builder: WorkflowBuilder, node: ast.stmt, scope: Scope) -> Fragment:
    transform = STATEMENTS.get(type(node), simple.transform_unsupported)
    return transform(builder, node, scope)


EXPRESSIONS: dict[type[ast.expr], ExpressionTransform] = {
    ast.Constant: expression.transform_constant,
    ast.Name: expression.transform_name,
    ast.Attribute: expression.transform_attribute,
    ast.Await: expression.transform_await,
    ast.Subscript: expression.transform_subscript,
    ast.Dict: expression.transform_dict,
    ast.List: expression.transform_sequence,
    ast.Tuple: expression.transform_sequence,
    ast.Compare: expression.transform_compare,
    ast.BoolOp: expression.transform_bool_op,
    ast.UnaryOp: expression.transform_unary_op,
    ast.BinOp: expression.transform_binop,
    ast.JoinedStr: expression.transform_f_string,
    ast.IfExp: expression.transform_if_exp,
    ast.ListComp: expression.transform_listcomp,
    ast.Call: specialize.transform_call,
}


def transform_expr(builder: WorkflowBuilder, node: ast.expr, scope: Scope) -> Value:
    transform = EXPRESSIONS.get(type(node), expression.transform_other)
    return transform(builder, node, scope)
