"""Add `import x` statements where isort and `ruff check --select I` would put them: in the
import block at the top of the module (after its docstring and `from __future__`), in the
section of the module (standard library, third party, first party), in order within it.
"""

from __future__ import annotations

import sys
from collections.abc import Iterable, Sequence

import libcst as cst

FUTURE, STDLIB, THIRD_PARTY, FIRST_PARTY = range(4)


def section(module: str, first_party: Iterable[str] = ()) -> int:
    top = module.lstrip(".").split(".")[0]
    if module.startswith("."):
        return FIRST_PARTY
    if top == "__future__":
        return FUTURE
    if top in first_party:
        return FIRST_PARTY
    if top in sys.stdlib_module_names:
        return STDLIB
    return THIRD_PARTY


def bound_names(statement: cst.CSTNode) -> set[str]:
    """What an import statement binds at module level (`import a.b` binds `a`)."""
    if not isinstance(statement, cst.SimpleStatementLine):
        return set()
    names: set[str] = set()
    for small in statement.body:
        if isinstance(small, (cst.Import, cst.ImportFrom)) and not isinstance(
            small.names, cst.ImportStar
        ):
            for alias in small.names:
                if alias.asname is not None:
                    names.add(cst.ensure_type(alias.asname.name, cst.Name).value)
                else:
                    names.add(_dotted(alias.name).split(".")[0])
    return names


def header_end(body: Sequence[cst.BaseStatement]) -> int:
    """The index after the module's leading docstring and import block (imports, and `if`/`try`
    blocks of imports only, as `if TYPE_CHECKING:` and `try: import ujson` are)."""
    index = 0
    if body and _is_docstring(body[0]):
        index = 1
    while index < len(body) and (_import_of(body[index]) is not None or _imports_only(body[index])):
        index += 1
    return index


def add_imports(
    body: Sequence[cst.BaseStatement], modules: Iterable[str], first_party: Iterable[str] = ()
) -> list[cst.BaseStatement]:
    """`body` with `import m` for each of `modules` that it does not bind yet, each in its
    section and place."""
    result = list(body)
    first_party = frozenset(first_party)
    for module in sorted(modules):
        if any(module in _bound_in_header(s) for s in result[: header_end(result)]):
            continue
        result = _insert(result, module, first_party)
    return result


def _insert(
    body: list[cst.BaseStatement], module: str, first_party: frozenset[str]
) -> list[cst.BaseStatement]:
    wanted = section(module, first_party)
    end = header_end(body)
    start = 1 if body and _is_docstring(body[0]) else 0
    imports = [
        (index, imported)
        for index in range(start, end)
        if (imported := _import_of(body[index])) is not None
    ]
    new = cst.parse_statement(f"import {module}\n")
    assert isinstance(new, cst.SimpleStatementLine)
    same = [(i, m, straight) for i, (m, straight) in imports if section(m, first_party) == wanted]
    if same:
        # isort's order within a section: every `import x` before any `from x import y`,
        # each kind by module name, case-insensitively
        for index, name, straight in same:
            if not straight or name.lower() > module.lower():
                return _place(body, index, new, take_leading=True)
        return _place(body, same[-1][0] + 1, new, take_leading=False)
    later = [i for i, (m, _) in imports if section(m, first_party) > wanted]
    if later:
        index = later[0]
        moved = cst.ensure_type(body[index], cst.SimpleStatementLine)
        if any(i < index and section(m, first_party) < wanted for i, (m, _) in imports):
            # between two sections: a blank line on each side; the later group keeps its
            # leading comments (they introduce it), with a blank line above them
            lines = list(moved.leading_lines)
            if not lines or lines[0].comment is not None:
                lines.insert(0, cst.EmptyLine())
            new = new.with_changes(leading_lines=[cst.EmptyLine()])
            spaced = moved.with_changes(leading_lines=lines)
        else:  # the first import of the module: it takes the block's leading lines
            spaced = moved.with_changes(leading_lines=[cst.EmptyLine()])
            new = new.with_changes(leading_lines=moved.leading_lines)
        return [*body[:index], new, spaced, *body[index + 1 :]]
    earlier = [i for i, (m, _) in imports if section(m, first_party) < wanted]
    if earlier:
        index = earlier[-1] + 1
        return [*body[:index], new.with_changes(leading_lines=[cst.EmptyLine()]), *body[index:]]
    # no import yet: right after the docstring, if any
    leading = [cst.EmptyLine()] if start else []
    following = body[start:]
    if following and not following[0].leading_lines:  # type: ignore[attr-defined]
        following = [following[0].with_changes(leading_lines=[cst.EmptyLine()]), *following[1:]]
    return [*body[:start], new.with_changes(leading_lines=leading), *following]


def _place(
    body: list[cst.BaseStatement],
    index: int,
    new: cst.SimpleStatementLine,
    take_leading: bool,
) -> list[cst.BaseStatement]:
    """`new` at `index`; before a statement, it takes over that statement's leading comments
    and blank lines (they introduce the group)."""
    if take_leading:
        moved = body[index]
        new = new.with_changes(leading_lines=moved.leading_lines)  # type: ignore[attr-defined]
        return [*body[:index], new, moved.with_changes(leading_lines=[]), *body[index + 1 :]]
    return [*body[:index], new, *body[index:]]


def _import_of(statement: cst.CSTNode) -> tuple[str, bool] | None:
    """(module, is `import x`) of a one-import statement line; None for anything else."""
    if not isinstance(statement, cst.SimpleStatementLine) or len(statement.body) != 1:
        return None
    small = statement.body[0]
    if isinstance(small, cst.Import):
        return _dotted(small.names[0].name), True
    if isinstance(small, cst.ImportFrom):
        dots = "." * len(small.relative)
        module = _dotted(small.module) if small.module is not None else ""
        return dots + module, False
    return None


def _bound_in_header(statement: cst.CSTNode) -> set[str]:
    """What a header statement binds: an import's names, or those of the imports in an `if` or
    `try` block of imports (`try: import ujson as json` binds `json`)."""
    if not _imports_only(statement):
        return bound_names(statement)
    names: set[str] = set()
    for inner in _walk_statements(statement):
        names |= bound_names(inner)
    return names


def _walk_statements(statement: cst.CSTNode) -> list[cst.CSTNode]:
    found: list[cst.CSTNode] = []

    class Collector(cst.CSTVisitor):
        def visit_SimpleStatementLine(self, node: cst.SimpleStatementLine) -> bool:
            found.append(node)
            return False

    statement.visit(Collector())
    return found


def _imports_only(statement: cst.CSTNode) -> bool:
    if isinstance(statement, cst.If):
        blocks: list[cst.BaseSuite] = [statement.body]
        if statement.orelse is not None:
            blocks.append(statement.orelse.body)
    elif isinstance(statement, cst.Try):
        blocks = [statement.body, *(h.body for h in statement.handlers)]
    else:
        return False
    for block in blocks:
        if not isinstance(block, cst.IndentedBlock):
            return False
        for inner in block.body:
            if not isinstance(inner, cst.SimpleStatementLine) or not all(
                isinstance(s, (cst.Import, cst.ImportFrom, cst.Pass)) for s in inner.body
            ):
                return False
    return True


def _is_docstring(statement: cst.CSTNode) -> bool:
    return (
        isinstance(statement, cst.SimpleStatementLine)
        and isinstance(statement.body[0], cst.Expr)
        and isinstance(statement.body[0].value, (cst.SimpleString, cst.ConcatenatedString))
    )


def _dotted(node: cst.BaseExpression) -> str:
    if isinstance(node, cst.Name):
        return node.value
    if isinstance(node, cst.Attribute):
        return f"{_dotted(node.value)}.{node.attr.value}"
    return ""
