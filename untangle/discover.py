"""Which files a scan reads, and the module name each one has inside the scanned tree."""

from __future__ import annotations

import fnmatch
import os
import stat
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from untangle.facts.model import SourceError
from untangle.files import has_undecodable_name, not_regular, shown
from untangle.templates import looks_like_template

SKIP_DIRS = frozenset(
    {
        ".git",
        ".hg",
        ".svn",
        ".venv",
        "venv",
        "__pycache__",
        ".mypy_cache",
        ".ruff_cache",
        ".pytest_cache",
        ".tox",
        ".nox",
        "node_modules",
        ".aws-sam",
        "site-packages",
        ".untangle_cache",
    }
)
TEMPLATE_SUFFIXES = (".yaml", ".yml", ".json", ".template")
_UNDECODABLE = "skipped: its name is not valid UTF-8"


@dataclass(frozen=True)
class SourceFile:
    path: str  # as shown to the user
    module: str  # dotted name relative to the scan root


@dataclass(frozen=True)
class Discovered:
    sources: tuple[SourceFile, ...]
    templates: tuple[str, ...]
    errors: tuple[SourceError, ...]
    root: str


def _matches(path: str, patterns: Iterable[str]) -> bool:
    posix = path.replace(os.sep, "/")
    for pattern in patterns:
        if fnmatch.fnmatch(posix, pattern) or fnmatch.fnmatch(posix, pattern.rstrip("/") + "/*"):
            return True
        if "/" not in pattern and any(fnmatch.fnmatch(part, pattern) for part in posix.split("/")):
            return True
    return False


# told the path and `os.stat` of every folder walked and file named (a later scan may skip
# the walk when none of them changed)
OnStat = Callable[[str, os.stat_result], None]


def discover(
    paths: Iterable[str],
    include: Iterable[str] = ("*.py",),
    exclude: Iterable[str] = (),
    base: str = ".",
    on_stat: OnStat | None = None,
) -> Discovered:
    """Walk `paths`; `exclude` globs are matched against paths relative to `base`."""
    include, exclude = tuple(include), tuple(exclude)
    errors: list[SourceError] = []
    found: list[str] = []
    templates: list[str] = []
    roots: list[str] = []
    seen_dirs: set[tuple[int, int]] = set()
    extra = tuple(p for p in include if p != "*.py")

    def kept(name: str) -> bool:
        return (
            name.endswith(".py")
            or looks_like_template(name)
            or bool(extra and _matches(name, extra))
        )

    for path in paths:
        try:
            info = os.stat(path)
        except OSError as exc:
            errors.append(SourceError(path, None, _os_message(exc)))
            continue
        if has_undecodable_name(path):
            errors.append(SourceError(shown(path), None, _UNDECODABLE))
            continue
        if stat.S_ISDIR(info.st_mode):
            roots.append(os.path.abspath(path))
            walked: list[str] = []
            _walk(path, base, exclude, seen_dirs, errors, on_stat, walked, kept)
            for item in walked:
                if item.endswith(".py") or (extra and _matches(os.path.basename(item), extra)):
                    found.append(item)
                elif looks_like_template(os.path.basename(item)):
                    templates.append(item)
        elif not stat.S_ISREG(info.st_mode):
            errors.append(
                SourceError(path, None, f"skipped: {not_regular(path, info.st_mode).strerror}")
            )
        else:
            if on_stat is not None:
                on_stat(path, info)
            roots.append(os.path.dirname(os.path.abspath(path)))
            if path.endswith(TEMPLATE_SUFFIXES):
                templates.append(path)
            else:
                found.append(path)
    root = os.path.commonpath(roots) if roots else os.path.abspath(".")
    unique: dict[str, SourceFile] = {}
    for path, real in zip(found, absolute_paths(found)):
        if real not in unique:
            unique[real] = SourceFile(path, module_name(real, root))
    return Discovered(tuple(unique.values()), tuple(templates), tuple(errors), root)


def absolute_paths(paths: Iterable[str]) -> list[str]:
    """`os.path.abspath` of each path, asking for the working directory once (not per path)."""
    if os.name != "posix":
        return [os.path.abspath(path) for path in paths]
    cwd = os.getcwd()
    return [os.path.normpath(os.path.join(cwd, path)) for path in paths]


def module_name(path: str, root: str) -> str:
    prefix = root.rstrip(os.sep) + os.sep
    relative = path[len(prefix) :] if path.startswith(prefix) else os.path.relpath(path, root)
    if relative.startswith(".."):
        relative = os.path.basename(path)
    without_suffix = relative[:-3] if relative.endswith(".py") else relative
    parts = [p for p in without_suffix.split(os.sep) if p not in ("", ".")]
    if parts and parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts) or "__init__"


def _walk(
    top: str,
    base: str,
    exclude: tuple[str, ...],
    seen: set[tuple[int, int]],
    errors: list[SourceError],
    on_stat: OnStat | None,
    walked: list[str],
    kept: Callable[[str], bool],
    ancestors: tuple[tuple[int, int], ...] = (),
) -> None:
    """Appends the files under `top` that `kept` wants (by name) to `walked`, depth first, in
    name order."""
    try:
        info = os.stat(top)
    except OSError as exc:
        errors.append(SourceError(top, None, _os_message(exc)))
        return
    if on_stat is not None:
        on_stat(top, info)
    key = (info.st_dev, info.st_ino)
    if key in ancestors:
        errors.append(SourceError(top, None, "symlink loop: this directory was already scanned"))
        return
    if key in seen:
        # a second way into a directory (`tests/shared -> ../shared`): scanned once, no error
        return
    seen.add(key)
    ancestors = (*ancestors, key)
    try:
        with os.scandir(top) as listing:
            entries = sorted(listing, key=_entry_name)
    except OSError as exc:
        errors.append(SourceError(top, None, _os_message(exc)))
        return
    for entry in entries:
        path = entry.path
        if exclude and _matches(os.path.relpath(path, base), exclude):
            continue
        name = entry.name
        try:
            is_dir = entry.is_dir()
        except OSError as exc:
            errors.append(SourceError(path, None, _os_message(exc)))
            continue
        if is_dir:
            if name in SKIP_DIRS or name.endswith(".egg-info"):
                continue
            if has_undecodable_name(name):
                # no module or template can name it, and its name cannot be printed as it is
                errors.append(SourceError(shown(path), None, _UNDECODABLE))
                continue
            _walk(path, base, exclude, seen, errors, on_stat, walked, kept, ancestors)
            continue
        wanted = wanted_file(name)
        if not wanted and not kept(name):
            continue  # (is_file is not asked: it may cost a stat, and the file is not read)
        try:
            is_file = entry.is_file()
        except OSError as exc:
            errors.append(SourceError(path, None, _os_message(exc)))
            continue
        if wanted and has_undecodable_name(name):
            errors.append(SourceError(shown(path), None, _UNDECODABLE))
            continue
        if is_file:
            walked.append(path)
        elif wanted:
            # a FIFO, a socket, a device, or a symlink to one or to nothing: never opened (a
            # FIFO would block the read forever)
            try:
                mode = os.stat(path).st_mode
            except OSError as exc:
                errors.append(SourceError(path, None, _os_message(exc)))
                continue
            errors.append(SourceError(path, None, f"skipped: {not_regular(path, mode).strerror}"))


def _entry_name(entry: os.DirEntry[str]) -> str:
    return entry.name


def wanted_file(name: str) -> bool:
    """A name a walk would read: Python, or a template."""
    return name.endswith(".py") or looks_like_template(name)


def _os_message(exc: OSError) -> str:
    import errno

    if exc.errno == errno.ENOENT:
        return "no such file or directory"
    if exc.errno == errno.ELOOP:
        return "symlink loop: too many levels of symbolic links"
    if exc.errno == errno.EACCES:
        return "permission denied"
    return exc.strerror or str(exc)
