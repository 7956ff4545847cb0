"""`[tool.untangle]` in pyproject.toml."""

from __future__ import annotations

import os
import tomllib
from dataclasses import dataclass, field
from typing import Any


class ConfigError(Exception):
    """A configuration the user must fix: exit code 2."""


@dataclass(frozen=True)
class Config:
    path: str | None = None
    include: tuple[str, ...] = ("*.py",)
    exclude: tuple[str, ...] = ()
    select: tuple[str, ...] = ()
    ignore: tuple[str, ...] = ()
    handler_patterns: tuple[str, ...] = ()
    # import roots for layers built outside a template (Terraform, Makefiles), relative to base
    extra_paths: tuple[str, ...] = ()
    max_file_size: int = 10 * 1024 * 1024
    base: str = field(default=".")


_LIST_KEYS = {
    "include": "include",
    "exclude": "exclude",
    "extend-exclude": "exclude",
    "select": "select",
    "ignore": "ignore",
    "handler-patterns": "handler_patterns",
    "extra-paths": "extra_paths",
}
_KNOWN = set(_LIST_KEYS) | {"max-file-size"}


def find_config(start: str = ".") -> str | None:
    """The nearest pyproject.toml at or above `start` that has a `[tool.untangle]` table."""
    current = os.path.abspath(start)
    if os.path.isfile(current):
        current = os.path.dirname(current)
    while True:
        candidate = os.path.join(current, "pyproject.toml")
        if os.path.isfile(candidate):
            try:
                with open(candidate, "rb") as handle:
                    if _has_untangle_table(handle.read()):
                        return candidate
            except OSError:
                pass
        parent = os.path.dirname(current)
        if parent == current:
            return None
        current = parent


def _has_untangle_table(data: bytes) -> bool:
    """`[tool.untangle]`, but also `[tool]` + `untangle = {…}` or dotted `tool.untangle.x = …`;
    a file that does not parse is ours (to report) when it names the table."""
    if b"untangle" not in data:
        return False
    try:
        document = tomllib.loads(data.decode("utf-8"))
    except (UnicodeDecodeError, tomllib.TOMLDecodeError):
        return b"[tool.untangle" in data
    tool = document.get("tool")
    return isinstance(tool, dict) and "untangle" in tool


def load_config(path: str | None) -> Config:
    if path is None:
        return Config()
    try:
        with open(path, "rb") as handle:
            document = tomllib.load(handle)
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read: {exc.strerror or exc}") from exc
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: invalid TOML: {exc}") from exc
    table: Any = document.get("tool", {}).get("untangle", {})
    if not isinstance(table, dict):
        raise ConfigError(f"{path}: [tool.untangle] must be a table")
    unknown = sorted(set(table) - _KNOWN)
    if unknown:
        raise ConfigError(
            f"{path}: unknown key(s) in [tool.untangle]: {', '.join(unknown)} "
            f"(known: {', '.join(sorted(_KNOWN))})"
        )
    values: dict[str, Any] = {"path": path, "base": os.path.dirname(os.path.abspath(path))}
    for key, attr in _LIST_KEYS.items():
        if key not in table:
            continue
        value = table[key]
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            raise ConfigError(f"{path}: [tool.untangle] {key} must be a list of strings")
        values[attr] = tuple(values.get(attr, ())) + tuple(value)
    if "max-file-size" in table:
        size = table["max-file-size"]
        if not isinstance(size, int) or isinstance(size, bool) or size <= 0:
            raise ConfigError(f"{path}: [tool.untangle] max-file-size must be a positive integer")
        values["max_file_size"] = size
    if "include" in values:
        values["include"] = tuple(values["include"]) or ("*.py",)
    return Config(**values)
