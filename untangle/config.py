"""`[tool.untangle]` in pyproject.toml."""

from __future__ import annotations

import os
import tomllib
from dataclasses import dataclass, field
from typing import Any

from untangle.files import read_bytes


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
# a pyproject.toml is a few KB; `--config /dev/zero` or a planted giant file is refused
_MAX_CONFIG_BYTES = 4 * 1024 * 1024


def find_config(start: str = ".") -> str | None:
    """The nearest pyproject.toml at or above `start` that has a `[tool.untangle]` table."""
    current = os.path.abspath(start)
    if os.path.isfile(current):
        current = os.path.dirname(current)
    while True:
        candidate = os.path.join(current, "pyproject.toml")
        if os.path.isfile(candidate):
            try:
                data = read_bytes(candidate, _MAX_CONFIG_BYTES)
            except OSError:
                data = b""
            if len(data) <= _MAX_CONFIG_BYTES and _has_untangle_table(data):
                return candidate
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
    except (UnicodeDecodeError, tomllib.TOMLDecodeError, RecursionError):
        return b"[tool.untangle" in data
    tool = document.get("tool")
    return isinstance(tool, dict) and "untangle" in tool


def load_config(path: str | None) -> Config:
    if path is None:
        return Config()

    try:
        data = read_bytes(path, _MAX_CONFIG_BYTES)
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read: {exc.strerror or exc}") from exc
    if len(data) > _MAX_CONFIG_BYTES:
        raise ConfigError(
            f"{path}: larger than {_MAX_CONFIG_BYTES // 1024 // 1024} MB: not a config"
        )
    try:
        document = tomllib.loads(data.decode("utf-8"))
    except UnicodeDecodeError as exc:
        raise ConfigError(f"{path}: not UTF-8 text (byte at offset {exc.start})") from exc
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: invalid TOML: {exc}") from exc
    except RecursionError as exc:
        raise ConfigError(f"{path}: invalid TOML: nested too deeply") from exc
    tool: Any = document.get("tool", {})
    table: Any = tool.get("untangle", {}) if isinstance(tool, dict) else {}
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
