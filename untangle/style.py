"""The project's code style, as its formatter and import sorter are configured: the line length
(`[tool.ruff] line-length`, `[tool.black] line-length`, ruff.toml) and the modules isort counts
as first party. Read from the nearest configuration at or above the handler, as ruff does."""

from __future__ import annotations

import os
import tomllib
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from codemods.layout import DEFAULT_LINE_LENGTH

ReadText = Callable[[str], str | None]

# in each folder, the files ruff reads, in the order it prefers them
_CONFIG_FILES = (".ruff.toml", "ruff.toml", "pyproject.toml")


@dataclass(frozen=True)
class CodeStyle:
    line_length: int = DEFAULT_LINE_LENGTH
    first_party: tuple[str, ...] = ()
    source: str | None = None  # the file the line length comes from


DEFAULT_STYLE = CodeStyle()


def code_style(path: str, read: ReadText) -> CodeStyle:
    """The style of the project `path` (a file) is in; the defaults (88) when nothing says."""
    folder = os.path.dirname(os.path.abspath(path))
    while True:
        for name in _CONFIG_FILES:
            config = os.path.join(folder, name)
            style = _style_of(config, read)
            if style is not None:
                return style
        parent = os.path.dirname(folder)
        if parent == folder:
            return CodeStyle()
        folder = parent


def _style_of(path: str, read: ReadText) -> CodeStyle | None:
    """The style a configuration file sets; None when it sets none (ruff reads a pyproject.toml
    only when it has a [tool.ruff] table, so a folder further up may still have one)."""
    try:
        text = read(path)
    except (OSError, ValueError):
        return None
    if text is None:
        return None
    try:
        document = tomllib.loads(text)
    except tomllib.TOMLDecodeError:
        return None
    if os.path.basename(path) == "pyproject.toml":
        tool = _table(document, "tool")
        ruff, black, isort = _table(tool, "ruff"), _table(tool, "black"), _table(tool, "isort")
        if not (ruff or black or isort):
            return None
    else:
        ruff, black, isort = document, {}, {}
    length = ruff.get("line-length", black.get("line-length", isort.get("line_length")))
    sorting = _table(_table(ruff, "lint"), "isort") or _table(ruff, "isort")
    first_party = sorting.get("known-first-party", isort.get("known_first_party", []))
    return CodeStyle(
        line_length=length if isinstance(length, int) and length > 0 else DEFAULT_LINE_LENGTH,
        first_party=tuple(str(name) for name in first_party if isinstance(name, str)),
        source=path,
    )


def _table(document: dict[str, Any], key: str) -> dict[str, Any]:
    value = document.get(key)
    return value if isinstance(value, dict) else {}
