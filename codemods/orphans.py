"""What a migration orphaned: module-level imports, helpers, classes and clients that only the
removed code used. A name goes when the module before the rewrite referred to it and the
module after does not; names the module never used (an unrelated `import logging`), names in
`__all__`, names other modules import, decorated definitions (a decorator may register them)
and assignments that may do something when the module loads are kept.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

import libcst as cst

from codemods.imports import bound_names

# module-level values that are safe to drop when nothing reads them: clients and resources,
# constants, configuration read from the environment
_FACTORIES = frozenset({"client", "resource", "Table", "Session", "Config"})
_SETTINGS = frozenset({"os.environ.get", "os.getenv", "environ.get", "getenv"})


@dataclass
class Orphans:
    """The rewritten module body without what it orphaned, and what was kept though it seems
    unused now (its value may do something when the module loads)."""

    body: list[cst.BaseStatement]
    removed: list[str] = field(default_factory=list)
    kept: list[str] = field(default_factory=list)


def remove_orphans(
    before: Sequence[cst.BaseStatement],
    after: Sequence[cst.BaseStatement],
    keep: Iterable[str] = (),
) -> Orphans:
    keep = frozenset(keep) | _exported(after)
    used_before = _references(before)
    result = Orphans(list(after))
    changed = True
    while changed:
        changed = False
        used_now = _references(result.body)
        orphaned = {n for n in used_before if n not in used_now and n not in keep}
        body: list[cst.BaseStatement] = []
        carried: list[cst.EmptyLine] = []  # the blank lines before a dropped statement
        for statement in result.body:
            names = _defined(statement)
            gone = names & orphaned
            replacement: cst.BaseStatement | None = statement
            if gone and bound_names(statement):
                replacement = _without_aliases(statement, gone)
                result.removed += sorted(gone)
            elif gone and gone == names and _removable(statement):
                replacement = None
                result.removed += sorted(gone)
            elif gone:
                result.kept += sorted(gone - set(result.kept))
            if replacement is None:
                changed = True
                if not body or carried:
                    continue
                carried = _blank_lines_first(statement)
                continue
            if replacement is not statement:
                changed = True
            if carried:
                replacement = _with_blank_lines_first(replacement, carried)
                carried = []
            body.append(replacement)
        result.body = body
    result.kept = [n for n in result.kept if n not in result.removed]
    return result


def _blank_lines_first(statement: cst.BaseStatement) -> list[cst.EmptyLine]:
    blanks = []
    for line in getattr(statement, "leading_lines", ()):
        if line.comment is not None:
            break
        blanks.append(line)
    return blanks


def _with_blank_lines_first(
    statement: cst.BaseStatement, blanks: list[cst.EmptyLine]
) -> cst.BaseStatement:
    """A dropped statement's blank lines go to the one after it when that one has fewer (the
    gap that separated two import groups stays); its comments went with it."""
    own = _blank_lines_first(statement)
    if len(own) >= len(blanks):
        return statement
    leading = list(getattr(statement, "leading_lines", ()))
    extra = blanks[: len(blanks) - len(own)]
    return statement.with_changes(leading_lines=[*extra, *leading])


def _exported(body: Sequence[cst.BaseStatement]) -> frozenset[str]:
    names: set[str] = set()
    for statement in body:
        if isinstance(statement, cst.SimpleStatementLine):
            for small in statement.body:
                if (
                    isinstance(small, (cst.Assign, cst.AugAssign, cst.AnnAssign))
                    and "__all__" in _target_names(small)
                    and small.value is not None
                ):
                    for node in _walk(small.value):
                        if isinstance(node, cst.SimpleString):
                            value = node.evaluated_value
                            if isinstance(value, str):
                                names.add(value)
    return frozenset(names)


def _defined(statement: cst.BaseStatement) -> set[str]:
    """The module-level names a statement binds, when it can be dropped for them."""
    imported = bound_names(statement)
    if imported:
        return imported
    if isinstance(statement, (cst.FunctionDef, cst.ClassDef)):
        return {statement.name.value}
    if isinstance(statement, cst.SimpleStatementLine) and len(statement.body) == 1:
        small = statement.body[0]
        if isinstance(small, (cst.Assign, cst.AnnAssign)):
            return _target_names(small)
    return set()


def _target_names(small: cst.BaseSmallStatement) -> set[str]:
    if isinstance(small, cst.Assign):
        targets = [t.target for t in small.targets]
    elif isinstance(small, (cst.AnnAssign, cst.AugAssign)):
        targets = [small.target]
    else:
        return set()
    names: set[str] = set()
    for target in targets:
        if isinstance(target, cst.Name):
            names.add(target.value)
        elif isinstance(target, (cst.Tuple, cst.List)):
            names |= {e.value.value for e in target.elements if isinstance(e.value, cst.Name)}
    return names


def _removable(statement: cst.BaseStatement) -> bool:
    if isinstance(statement, cst.FunctionDef):
        # another Lambda may run it (deployed outside any template untangle reads)
        return not statement.decorators and not _looks_like_a_handler(statement)
    if isinstance(statement, cst.ClassDef):
        return not statement.decorators
    assert isinstance(statement, cst.SimpleStatementLine)
    small = statement.body[0]
    value = getattr(small, "value", None)
    return value is not None and _inert(value)


def _looks_like_a_handler(function: cst.FunctionDef) -> bool:
    """`def x(event, context)` (`evt, ctx` …): the shape of a Lambda entry point."""
    params = [p.name.value.lower() for p in function.params.params]
    return len(params) == 2 and "ev" in params[0] and ("context" in params[1] or "ctx" in params[1])


def _inert(value: cst.BaseExpression) -> bool:
    """Reading it does nothing but build a value (a client, a constant, a setting)."""
    if isinstance(value, (cst.Name, cst.SimpleString, cst.Integer, cst.Float, cst.Attribute)):
        return True
    if isinstance(value, cst.ConcatenatedString):
        return _inert(value.left) and _inert(value.right)
    if isinstance(value, cst.FormattedString):
        return all(
            _inert(part.expression)
            for part in value.parts
            if isinstance(part, cst.FormattedStringExpression)
        )
    if isinstance(value, cst.Subscript):
        return _inert(value.value)
    if isinstance(value, (cst.Tuple, cst.List, cst.Set)):
        return all(_inert(e.value) for e in value.elements)
    if isinstance(value, cst.Dict):
        return all(
            isinstance(e, cst.DictElement) and _inert(e.key) and _inert(e.value)
            for e in value.elements
        )
    if isinstance(value, cst.Call):
        func = value.func
        name = func.attr.value if isinstance(func, cst.Attribute) else getattr(func, "value", "")
        factory = name in _FACTORIES and (not isinstance(func, cst.Attribute) or _inert(func.value))
        return (factory or _dotted(func) in _SETTINGS) and all(
            _inert(arg.value) for arg in value.args
        )
    return False


def _without_aliases(statement: cst.BaseStatement, gone: set[str]) -> cst.BaseStatement | None:
    """The import statement without the aliases that bind `gone`; None when none is left."""
    assert isinstance(statement, cst.SimpleStatementLine)
    smalls: list[cst.BaseSmallStatement] = []
    for small in statement.body:
        if isinstance(small, (cst.Import, cst.ImportFrom)) and not isinstance(
            small.names, cst.ImportStar
        ):
            aliases = [a for a in small.names if _alias_name(a) not in gone]
            if not aliases:
                continue
            aliases[-1] = aliases[-1].with_changes(comma=cst.MaybeSentinel.DEFAULT)
            small = small.with_changes(names=aliases)
            if isinstance(small, cst.ImportFrom) and len(aliases) == 1 and small.lpar:
                small = small.with_changes(lpar=None, rpar=None)
        smalls.append(small)
    if not smalls:
        return None
    return statement.with_changes(body=smalls)


def _alias_name(alias: cst.ImportAlias) -> str:
    if alias.asname is not None:
        return cst.ensure_type(alias.asname.name, cst.Name).value
    node: cst.BaseExpression = alias.name
    while isinstance(node, cst.Attribute):
        node = node.value
    return cst.ensure_type(node, cst.Name).value


def _references(body: Sequence[cst.BaseStatement]) -> set[str]:
    """Names read anywhere in `body`, outside the statement that defines each of them."""
    names: set[str] = set()
    for statement in body:
        own = _defined(statement)
        names |= _read_names(statement) - own
    return names


def _read_names(node: cst.CSTNode) -> set[str]:
    """Every `Name` that may be a read (not an attribute, a keyword, an import or a def's own
    name), and the words of string annotations (`"Order"`)."""
    skipped: set[int] = set()
    names: set[str] = set()
    for child in _walk(node):
        if isinstance(child, cst.Attribute):
            skipped.add(id(child.attr))
        elif isinstance(child, cst.Arg) and child.keyword is not None:
            skipped.add(id(child.keyword))
        elif isinstance(child, (cst.Import, cst.ImportFrom)):
            skipped |= {id(n) for n in _walk(child)}
        elif isinstance(child, (cst.FunctionDef, cst.ClassDef)):
            skipped.add(id(child.name))
        elif isinstance(child, cst.Annotation):
            for inner in _walk(child):
                if isinstance(inner, cst.SimpleString):
                    value = inner.evaluated_value
                    if isinstance(value, str):
                        names |= set(_words(value))
        if isinstance(child, cst.Name) and id(child) not in skipped:
            names.add(child.value)
    return names


def _dotted(node: cst.BaseExpression) -> str:
    if isinstance(node, cst.Name):
        return node.value
    if isinstance(node, cst.Attribute):
        return f"{_dotted(node.value)}.{node.attr.value}"
    return ""


def _words(text: str) -> list[str]:
    return re.findall(r"[A-Za-z_][A-Za-z0-9_]*", text)


def _walk(node: cst.CSTNode) -> list[cst.CSTNode]:
    found: list[cst.CSTNode] = []

    class Collector(cst.CSTVisitor):
        def on_visit(self, node: cst.CSTNode) -> bool:
            found.append(node)
            return True

    node.visit(Collector())
    return found
