"""The parsed sources the builder reads: each file decoded (by `facts.source.decode`, as scan
decodes it) and parsed once for every handler planned from it."""

from __future__ import annotations

import ast
from collections.abc import Callable
from dataclasses import dataclass

from untangle.facts.newer_syntax import parse_python


@dataclass(frozen=True)
class ParsedSource:
    tree: ast.Module
    lines: list[str]


class ParsedSources:
    """`sources(path)`: the file's tree and lines, read by `read_source` the first time."""

    def __init__(self, read_source: Callable[[str], str]) -> None:
        self._read_source = read_source
        self._parsed: dict[str, ParsedSource] = {}

    def __call__(self, path: str) -> ParsedSource:
        found = self._parsed.get(path)
        if found is None:
            text = self._read_source(path)
            tree = parse_python(text, path)  # scan parsed it already: it parses
            found = self._parsed[path] = ParsedSource(tree, text.splitlines())
        return found
