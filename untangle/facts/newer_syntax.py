"""Parse Python newer than the running interpreter's `ast` knows.

Lambda code targets the runtime it deploys to (python3.12, python3.13), and untangle may run on
3.11, whose `ast` rejects PEP 701 f-strings (`f"{r["StatusCode"]}"`) and PEP 695 type parameters
(`def f[T](x: T)`, `type Alias = …`). LibCST parses both. Where `ast` fails, the file is parsed
by LibCST, rewritten into the equivalent 3.11 spelling of what the analysis reads (quotes inside
replacement fields swapped, type parameters dropped, `type X = …` as `X = …`), on the same lines,
and parsed by `ast` again. Nothing is written: only the analysis sees the rewritten text.
"""

from __future__ import annotations

import ast
import re
import warnings
from typing import Any

_NEWEST = "3.12"  # the newest grammar LibCST's parser accepts for these files
_TYPE_PARAMETERS = re.compile(r"\s*(?:type\s+\w+.*=|(?:async\s+)?def\s+\w+\s*\[|class\s+\w+\s*\[)")


def parse_python(text: str, path: str) -> ast.Module:
    """`ast.parse(text)`, or the tree of its 3.11 spelling; the original `SyntaxError` when
    neither parses."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # invalid escapes are the file's business, not ours
        try:
            return ast.parse(text, filename=path)
        except SyntaxError as error:
            if not _may_be_newer_syntax(error, text):
                raise
            older = older_spelling(text)
            if isinstance(older, SyntaxError):
                # the real mistake is further on, past the syntax the running `ast` lacks
                if (older.lineno or 0) > (error.lineno or 0):
                    raise older from None
                raise
            if older is None:
                raise
            try:
                return ast.parse(older, filename=path)
            except SyntaxError:
                raise error from None


def _may_be_newer_syntax(error: SyntaxError, text: str) -> bool:
    """Only these errors can be 3.12 syntax: LibCST is not asked about other broken files
    (its native parser is no place for hostile input)."""
    if (error.msg or "").startswith("f-string"):
        return True
    lines = text.splitlines()
    line = lines[error.lineno - 1] if error.lineno and error.lineno <= len(lines) else ""
    return bool(_TYPE_PARAMETERS.match(line))


def older_spelling(text: str) -> str | SyntaxError | None:
    """`text` in syntax the running `ast` parses, lines kept; LibCST's `SyntaxError` when it
    cannot parse it either; None when nothing needed rewriting. LibCST runs in a child process:
    its native parser can crash the process on input nested deeply enough, and that must cost
    this file only (a RecursionError, which the caller reports as too deeply nested)."""
    import libcst  # noqa: F401  # once, here: the child starts with it

    from untangle.isolated import IsolatedFailure, run_isolated

    try:
        return run_isolated(_older_spelling_in_process, text)
    except IsolatedFailure as exc:
        if exc.kind in ("Crash", "Timeout", "RecursionError", "MemoryError"):
            raise RecursionError(exc.message) from None
        return None  # a LibCST bug: the file is reported with the error `ast` gave


def _older_spelling_in_process(text: str) -> str | SyntaxError | None:
    import libcst as cst  # only for files the running `ast` rejects: it is slow to import

    try:
        module = cst.parse_module(text, config=cst.PartialParserConfig(python_version=_NEWEST))
    except cst.ParserSyntaxError as exc:
        return SyntaxError(exc.message, (None, exc.raw_line, exc.raw_column + 1, None))
    except (RecursionError, ValueError):
        return None
    rewritten = module.visit(_to_older_syntax())
    code = rewritten.code
    return None if code == text else code


def _to_older_syntax() -> Any:
    """The LibCST transformer, its class made on first use (LibCST is imported lazily)."""
    import libcst as cst

    class _ToOlderSyntax(cst.CSTTransformer):
        def __init__(self) -> None:
            super().__init__()
            # the quote character of each f-string we are inside, innermost last
            self._quotes: list[str] = []

        def visit_FormattedString(self, node: cst.FormattedString) -> None:
            self._quotes.append(node.quote)

        def leave_FormattedString(
            self, original_node: cst.FormattedString, updated_node: cst.FormattedString
        ) -> cst.BaseExpression:
            self._quotes.pop()
            return self._requoted(updated_node)

        def leave_SimpleString(
            self, original_node: cst.SimpleString, updated_node: cst.SimpleString
        ) -> cst.BaseExpression:
            return self._requoted(updated_node)

        def _requoted(self, node: cst.SimpleString | cst.FormattedString) -> cst.BaseExpression:
            """A string inside a replacement field that reuses an enclosing f-string's quote
            (allowed since 3.12) gets the other quote, when its text lets it."""
            if not self._quotes or len(node.quote) == 3:
                return node
            enclosing = {q for q in self._quotes if len(q) == 1}
            if node.quote not in enclosing:
                return node
            other = "'" if node.quote == '"' else '"'
            if other in enclosing:
                return node
            if isinstance(node, cst.SimpleString):
                prefix_length = len(node.prefix)
                body = node.value[prefix_length + 1 : -1]
                if other in body or "\\" in body:
                    return node
                return node.with_changes(value=f"{node.value[:prefix_length]}{other}{body}{other}")
            texts = "".join(
                part.value for part in node.parts if isinstance(part, cst.FormattedStringText)
            )
            if other in texts or "\\" in texts:
                return node
            return node.with_changes(start=node.start[:-1] + other, end=other)

        def leave_FunctionDef(
            self, original_node: cst.FunctionDef, updated_node: cst.FunctionDef
        ) -> cst.FunctionDef:
            return updated_node.with_changes(type_parameters=None)

        def leave_ClassDef(
            self, original_node: cst.ClassDef, updated_node: cst.ClassDef
        ) -> cst.ClassDef:
            return updated_node.with_changes(type_parameters=None)

        def leave_TypeAlias(
            self, original_node: cst.TypeAlias, updated_node: cst.TypeAlias
        ) -> cst.Assign:
            return cst.Assign(
                targets=[cst.AssignTarget(updated_node.name)], value=updated_node.value
            )

    return _ToOlderSyntax()
