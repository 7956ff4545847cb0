"""What a region of statements reads, writes, and what the code after it may still read."""

from __future__ import annotations

import ast
from collections.abc import Iterator
from typing import TYPE_CHECKING

from untangle.workflow.build.ast_helpers import dotted_name
from untangle.workflow.build.extraction import (
    HANDLE_MAKERS,
    MUTATING_METHODS,
    PURE_FUNCTIONS,
    PURE_METHODS,
)
from untangle.workflow.build.scope import Scope

if TYPE_CHECKING:
    from untangle.workflow.build.builder import WorkflowBuilder


def _events(node: ast.AST) -> Iterator[tuple[str, bool]]:
    """(name, is a store) in the order Python evaluates them: a value before its targets, a
    loop's iterable before its target and body."""
    if isinstance(node, ast.Name):
        yield node.id, isinstance(node.ctx, ast.Store)
        return
    if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef, ast.Lambda)):
        return
    if isinstance(node, ast.ExceptHandler) and node.name:
        if node.type is not None:
            yield from _events(node.type)
        yield node.name, True  # bound by the handler before its body runs
        for stmt in node.body:
            yield from _events(stmt)
        return
    if isinstance(node, ast.Assign):
        yield from _events(node.value)
        for target in node.targets:
            yield from _events(target)
        return
    if isinstance(node, ast.AugAssign):
        if isinstance(node.target, ast.Name):
            yield node.target.id, False
        yield from _events(node.value)
        yield from _events(node.target)
        return
    if isinstance(node, ast.AnnAssign):
        if node.value is not None:
            yield from _events(node.value)
        yield from _events(node.target)
        return
    if isinstance(node, (ast.For, ast.AsyncFor)):
        yield from _events(node.iter)
        yield from _events(node.target)
        for stmt in (*node.body, *node.orelse):
            yield from _events(stmt)
        return
    if isinstance(node, (ast.ListComp, ast.SetComp, ast.GeneratorExp, ast.DictComp)):
        bound = {
            n.id for g in node.generators for n in ast.walk(g.target) if isinstance(n, ast.Name)
        }
        for sub in ast.walk(node):
            if isinstance(sub, ast.Name) and isinstance(sub.ctx, ast.Load) and sub.id not in bound:
                yield sub.id, False
        return
    for child in ast.iter_child_nodes(node):
        yield from _events(child)


def inputs(stmts: list[ast.stmt]) -> list[str]:
    """The names the statements read before they bind them."""
    seen: dict[str, bool] = {}
    for stmt in stmts:
        for name, store in _events(stmt):
            seen.setdefault(name, store)
    return [name for name, store in seen.items() if not store]


def loaded_names(stmts: list[ast.stmt]) -> list[str]:
    return list(dict.fromkeys(name for s in stmts for name, store in _events(s) if not store))


def written_names(stmts: list[ast.stmt]) -> list[str]:
    """The names the statements bind or may change in place: `x[k] = …`, `x.append(…)`, an
    argument of a call that may do more than compute a value."""
    found: list[str] = []
    for stmt in stmts:
        for sub in ast.walk(stmt):
            if isinstance(sub, ast.Name) and isinstance(sub.ctx, ast.Store):
                found.append(sub.id)
            elif isinstance(sub, ast.ExceptHandler) and sub.name:
                found.append(sub.name)
            elif isinstance(sub, (ast.Subscript, ast.Attribute)) and isinstance(
                sub.ctx, (ast.Store, ast.Del)
            ):
                found += _base(sub)
            elif isinstance(sub, ast.Call):
                method = sub.func.attr if isinstance(sub.func, ast.Attribute) else ""
                if method in MUTATING_METHODS and isinstance(sub.func, ast.Attribute):
                    found += _base(sub.func.value)
                elif not _pure(sub):
                    found += [
                        a.id
                        for a in (*sub.args, *(k.value for k in sub.keywords))
                        if isinstance(a, ast.Name)
                    ]
    return list(dict.fromkeys(found))


def _base(node: ast.expr) -> list[str]:
    while isinstance(node, (ast.Subscript, ast.Attribute)):
        node = node.value
    return [node.id] if isinstance(node, ast.Name) else []


def _pure(call: ast.Call) -> bool:
    method = call.func.attr if isinstance(call.func, ast.Attribute) else ""
    return (
        dotted_name(call.func) in PURE_FUNCTIONS
        or method in PURE_METHODS
        or method in HANDLE_MAKERS
        or (isinstance(call.func, ast.Name) and call.func.id in HANDLE_MAKERS)
    )


def live_after(builder: WorkflowBuilder, stmts: list[ast.stmt], scope: Scope) -> set[str]:
    """The names the code after `stmts` may read before binding them again (the whole loop
    around them: its next round reads what this one wrote)."""
    first, last = stmts[0], stmts[-1]
    end = last.end_lineno or last.lineno
    tree = builder.sources(scope.path).tree
    chain = None
    for function in ast.walk(tree):
        if isinstance(function, (ast.FunctionDef, ast.AsyncFunctionDef)):
            chain = _chain(function.body, first) or chain
    if chain is None:  # a rewritten statement: whatever the module reads outside them
        return {
            n.id
            for n in ast.walk(tree)
            if isinstance(n, ast.Name)
            and isinstance(n.ctx, ast.Load)
            and not first.lineno <= n.lineno <= end
        }
    live: set[str] = set()
    killed: set[str] = set()
    for block, position, parent in chain:
        following = [s for s in block[position:] if s.lineno > end]
        for stmt in following:
            live |= _loads(stmt) - killed
            if isinstance(stmt, ast.Assign):
                killed |= {t.id for t in stmt.targets if isinstance(t, ast.Name)}
        if isinstance(parent, (ast.For, ast.While, ast.AsyncFor)):
            # the next round reads what this one wrote: what the loop reads elsewhere, and
            # what the statements themselves read before they write it
            live |= {
                n.id
                for n in ast.walk(parent)
                if isinstance(n, ast.Name) and not first.lineno <= n.lineno <= end
            } | set(inputs(stmts))
        if isinstance(parent, ast.Try):
            for part in (*parent.handlers, *parent.orelse, *parent.finalbody):
                live |= {n.id for n in ast.walk(part) if isinstance(n, ast.Name)}
    return live


def _loads(node: ast.AST) -> set[str]:
    """The names `node` reads, but for an except block's own name there."""
    if isinstance(node, ast.ExceptHandler) and node.name:
        inner = set().union(*(_loads(stmt) for stmt in node.body)) if node.body else set()
        return (inner - {node.name}) | (_loads(node.type) if node.type else set())
    if isinstance(node, ast.Name):
        return {node.id} if isinstance(node.ctx, ast.Load) else set()
    found: set[str] = set()
    for child in ast.iter_child_nodes(node):
        found |= _loads(child)
    return found


def _chain(
    body: list[ast.stmt], first: ast.stmt, parent: ast.stmt | None = None
) -> list[tuple[list[ast.stmt], int, ast.stmt | None]] | None:
    """The blocks from the one holding `first` out to the function's body: (block, index of
    the statement there, the statement whose block it is)."""
    for index, stmt in enumerate(body):
        if stmt.lineno == first.lineno and stmt.col_offset == first.col_offset:
            return [(body, index, parent)]
        for field in ("body", "orelse", "finalbody", "handlers"):
            inner = getattr(stmt, field, None)
            if not isinstance(inner, list):
                continue
            blocks = [h.body for h in inner] if field == "handlers" else [inner]
            for block in blocks:
                found = _chain(block, first, stmt)
                if found is not None:
                    return [*found, (body, index + 1, parent)]
    return None
