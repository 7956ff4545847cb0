"""Small helpers over Python `ast` nodes: names, positions, source text, rewriting."""

from __future__ import annotations

import ast
import re
from typing import TYPE_CHECKING, TypeVar

from untangle.facts.model import Span
from untangle.workflow.build.scope import Scope
from untangle.workflow.ir import (
    pascal,
)

if TYPE_CHECKING:
    pass

# the names logging goes through: a call on one of them is dropped with a note
LOGGERS = ("logger", "log", "logging", "LOGGER", "LOG", "print")

_Node = TypeVar("_Node", bound=ast.AST)


def target_text(node: ast.expr) -> str:
    """An assignment target as written: `a, b`, not `(a, b)`."""
    if isinstance(node, ast.Tuple) and node.elts:
        return ", ".join(ast.unparse(e) for e in node.elts)
    try:
        return ast.unparse(node)
    except Exception:  # an odd node: a placeholder is enough for a message
        return "…"


def head_of(node: ast.stmt) -> list[ast.AST]:
    """What a statement evaluates itself, its bodies apart: `if` its test, `for` its iterable."""
    if isinstance(node, (ast.If, ast.While)):
        return [node.test]
    if isinstance(node, (ast.For, ast.AsyncFor)):
        return [node.iter]
    if isinstance(node, (ast.With, ast.AsyncWith)):
        return [item.context_expr for item in node.items]
    if isinstance(node, ast.Try):
        return []
    return [node]


def bound_names(node: ast.stmt) -> list[str]:
    """The names a statement binds, in its bodies too (not inside nested definitions)."""
    found: list[str] = []
    stack: list[ast.AST] = [node]
    while stack:
        current = stack.pop()
        if isinstance(current, ast.Name) and isinstance(current.ctx, ast.Store):
            found.append(current.id)
        elif isinstance(current, ast.ExceptHandler) and current.name:
            found.append(current.name)
        elif isinstance(current, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            found.append(current.name)
            if current is not node:
                continue
        if isinstance(current, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            continue
        stack.extend(ast.iter_child_nodes(current))
    return list(dict.fromkeys(found))


def target_names(target: ast.expr) -> list[str]:
    return [n.id for n in ast.walk(target) if isinstance(n, ast.Name)]


def dotted_name(node: ast.expr) -> str:
    if isinstance(node, ast.Name):
        return node.id
    if isinstance(node, ast.Attribute):
        inner = dotted_name(node.value)
        return f"{inner}.{node.attr}" if inner else ""
    return ""


def attr_name(node: ast.expr) -> str:
    return node.attr if isinstance(node, ast.Attribute) else ""


def is_module_ref(node: ast.expr, scope: Scope) -> bool:
    return isinstance(node, ast.Name) and node.id not in scope.env


def column_of(node: ast.expr, scope: Scope) -> int:
    line = scope.source_lines[node.lineno - 1] if 0 < node.lineno <= len(scope.source_lines) else ""
    if line.isascii():
        return node.col_offset + 1
    return len(line.encode("utf-8")[: node.col_offset].decode("utf-8", "replace")) + 1


def find_call(node: ast.expr, line: int) -> ast.Call | None:
    for sub in ast.walk(node):
        if (
            isinstance(sub, ast.Call)
            and sub.lineno == line
            and attr_name(sub.func)
            in (
                "invoke",
                "invoke_async",
                "sleep",
            )
        ):
            return sub
    for sub in ast.walk(node):
        if isinstance(sub, ast.Call) and sub.lineno == line:
            return sub
    return None


def span_of(node: ast.AST) -> Span:
    line = getattr(node, "lineno", 1)
    return Span(
        line,
        getattr(node, "col_offset", 0) + 1,
        getattr(node, "end_lineno", line) or line,
        (getattr(node, "end_col_offset", 0) or 0) + 1,
    )


def source_text(node: ast.AST, scope: Scope) -> str:
    try:
        text = ast.unparse(node)
    except Exception:  # unparse of odd nodes: a placeholder is enough for a message
        return "…"
    return text if len(text) <= 60 else text[:57] + "..."


def snake(text: str) -> str:
    last = text.rsplit(".", 1)[-1] or "step"
    return re.sub(r"(?<!^)(?=[A-Z])", "_", last).lower()


def full_source(node: ast.AST) -> str:
    try:
        return ast.unparse(node)
    except Exception:  # an odd node: the line number still locates it
        return ""


def choice_name(test: ast.expr) -> str:
    names = [n.id for n in ast.walk(test) if isinstance(n, ast.Name)]
    keys = [
        n.slice.value
        for n in ast.walk(test)
        if isinstance(n, ast.Subscript)
        and isinstance(n.slice, ast.Constant)
        and isinstance(n.slice.value, str)
    ]
    subject = keys[0] if keys else (names[0] if names else "Condition")
    return "Check" + pascal(subject)


def workflow_name(handler: str) -> str:
    parts = [
        p
        for p in handler.split(".")
        if p not in ("app", "lambda_function", "handler", "lambda_handler", "main", "index")
    ]
    return pascal(parts[-1] if parts else handler) or "Workflow"


class Replace(ast.NodeTransformer):
    def __init__(self, old: ast.AST, new: ast.expr) -> None:
        self.old = old
        self.new = new

    def generic_visit(self, node: ast.AST) -> ast.AST:
        if same(node, self.old):
            return self.new
        return super().generic_visit(node)


def same(a: ast.AST, b: ast.AST) -> bool:
    return (
        type(a) is type(b)
        and getattr(a, "lineno", None) == getattr(b, "lineno", None)
        and getattr(a, "col_offset", None) == getattr(b, "col_offset", None)
        and getattr(a, "end_col_offset", None) == getattr(b, "end_col_offset", None)
    )


def copy_node(node: ast.expr) -> ast.expr:
    import copy

    return copy.deepcopy(node)


def located(new: _Node, where: ast.AST) -> _Node:
    """`new` (and its parts without a position) placed at `where`."""
    return ast.fix_missing_locations(ast.copy_location(new, where))
