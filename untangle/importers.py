"""Which names of a module the other modules of the project import: migrate keeps those,
even when the rewritten handler no longer uses them."""

from __future__ import annotations

import ast
import os
from collections.abc import Callable, Iterable

ReadSource = Callable[[str], str]


def importers_of(
    sources: Iterable[str], read: ReadSource
) -> Callable[[str], frozenset[str] | None]:
    """A function from a module's path to the names the other `sources` import from it (None
    when one of them imports all of it with `*`). A module imported whole (`import app`,
    `from pkg import app`) may be used through any attribute: every attribute name of the
    importing file counts."""
    paths = [os.path.abspath(path) for path in sources]
    texts: dict[str, str | None] = {}
    parsed: dict[str, ast.Module | None] = {}

    def tree(path: str, stem: str) -> ast.Module | None:
        """The parsed file, when its text mentions `stem` at all (most files are never parsed)."""
        if path not in texts:
            try:
                texts[path] = read(path)
            except (OSError, ValueError):
                texts[path] = None
        text = texts[path]
        if text is None or stem not in text:
            return None
        if path not in parsed:
            try:
                parsed[path] = ast.parse(text)
            except (SyntaxError, ValueError):
                parsed[path] = None
        return parsed[path]

    def names(module_path: str) -> frozenset[str] | None:
        module_path = os.path.abspath(module_path)
        stem = os.path.splitext(os.path.basename(module_path))[0]
        if stem == "__init__":
            stem = os.path.basename(os.path.dirname(module_path))
        found: set[str] = set()
        for path in paths:
            if path == module_path:
                continue
            module = tree(path, stem)
            if module is None:
                continue
            imported = _imported_from(module, stem)
            if imported is None:
                return None
            found |= imported
        return frozenset(found)

    return names


def _imported_from(module: ast.Module, stem: str) -> set[str] | None:
    names: set[str] = set()
    whole = False
    for node in ast.walk(module):
        if isinstance(node, ast.ImportFrom):
            source = (node.module or "").split(".")
            aliases = [alias.name for alias in node.names]
            if source[-1] == stem:
                if "*" in aliases:
                    return None
                names |= set(aliases)
            elif stem in aliases:
                whole = True
        elif isinstance(node, ast.Import) and any(
            alias.name.split(".")[-1] == stem for alias in node.names
        ):
            whole = True
    if whole:
        names |= {n.attr for n in ast.walk(module) if isinstance(n, ast.Attribute)}
        names |= {n.id for n in ast.walk(module) if isinstance(n, ast.Name)}
    return names
