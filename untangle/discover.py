"""Which files a scan reads, and the module name each one has inside the scanned tree."""

from __future__ import annotations

import fnmatch
import operator
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
_ENTRY_NAME = operator.attrgetter("name")


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
    on_source: Callable[[SourceFile], None] | None = None,
) -> Discovered:
    """Walk `paths`; `exclude` globs are matched against paths relative to `base`. `on_source`
    is told each source as soon as the walk finds it (in the order of `sources`), so that
    reading can begin while the walk goes on."""
    include, exclude, paths = tuple(include), tuple(exclude), tuple(paths)
    errors: list[SourceError] = []
    templates: list[str] = []
    seen_dirs: set[tuple[int, int]] = set()
    extra = tuple(p for p in include if p != "*.py")
    # the root the module names are relative to is known before the walk: it depends on the
    # paths only (the folders named, and the folders of the files named)
    named: list[os.stat_result | OSError] = []
    roots: list[str] = []
    for path in paths:
        try:
            named.append(info := os.stat(path))
        except OSError as exc:
            named.append(exc)
            continue
        if has_undecodable_name(path):
            continue
        if stat.S_ISDIR(info.st_mode):
            roots.append(os.path.abspath(path))
        elif stat.S_ISREG(info.st_mode):
            roots.append(os.path.dirname(os.path.abspath(path)))
    root = os.path.commonpath(roots) if roots else os.path.abspath(".")
    sources = _Sources(root, on_source)

    def walked(top: str, path: str, name: str) -> None:
        if name.endswith(".py") or (extra and _matches(name, extra)):
            sources.add_walked(top, path, name)
        else:
            templates.append(path)  # (the walk tells no other file)

    for path, stated in zip(paths, named):
        if isinstance(stated, OSError):
            errors.append(SourceError(path, None, _os_message(stated)))
            continue
        info = stated
        if has_undecodable_name(path):
            errors.append(SourceError(shown(path), None, _UNDECODABLE))
            continue
        if stat.S_ISDIR(info.st_mode):
            _walk(path, base, exclude, seen_dirs, errors, on_stat, walked, extra)
        elif not stat.S_ISREG(info.st_mode):
            errors.append(
                SourceError(path, None, f"skipped: {not_regular(path, info.st_mode).strerror}")
            )
        else:
            if on_stat is not None:
                on_stat(path, info)
            if path.endswith(TEMPLATE_SUFFIXES):
                templates.append(path)
            else:
                sources.add(path)
    return Discovered(tuple(sources.found), tuple(templates), tuple(errors), root)


class _Sources:
    """The sources of a walk, each file once (by its absolute path), with its module name."""

    def __init__(self, root: str, on_source: Callable[[SourceFile], None] | None) -> None:
        self.prefix = root.rstrip(os.sep) + os.sep
        self.root, self.on_source = root, on_source
        self.cwd = os.getcwd() if os.name == "posix" else None
        self.seen: set[str] = set()
        self.found: list[SourceFile] = []
        # the folder being walked: its absolute path (ending with a separator) and the package
        # its modules are in, or None where `module_name` must decide
        self.folder: tuple[str, str, str | None] = ("", "", None)

    def add(self, path: str) -> None:
        """A file named on the command line (or one of a folder `add_walked` cannot tell)."""
        if self.cwd is None:
            real = os.path.abspath(path)
        else:
            real = os.path.normpath(os.path.join(self.cwd, path))
        self._add(path, real, module_name(real, self.root))

    def add_walked(self, top: str, path: str, name: str) -> None:
        """`path`, found as `name` in folder `top`: named as `add` names it, computing the
        folder's part once, not once per file."""
        if self.folder[0] != top:
            self.folder = (top, *self._folder(top))
        _, absolute, package = self.folder
        stem = name[:-3] if name.endswith(".py") else name
        if package is None or not stem:
            self.add(path)
            return
        if stem == "__init__":
            module = package or "__init__"
        else:
            module = f"{package}.{stem}" if package else stem
        self._add(path, absolute + name, module)

    def _folder(self, top: str) -> tuple[str, str | None]:
        if self.cwd is None:
            return "", None
        absolute = os.path.normpath(os.path.join(self.cwd, top))
        if absolute.endswith(os.sep):  # the file system's root: left to `add`
            return "", None
        absolute += os.sep
        relative = absolute[len(self.prefix) : -1]
        if not absolute.startswith(self.prefix) or relative.startswith(".."):
            return absolute, None  # (`module_name` has its own way with these)
        return absolute, ".".join(relative.split(os.sep))

    def _add(self, path: str, real: str, module: str) -> None:
        if real in self.seen:
            return
        self.seen.add(real)
        source = SourceFile(path, module)
        self.found.append(source)
        if self.on_source is not None:
            self.on_source(source)


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
    walked: Callable[[str, str, str], None],
    extra: tuple[str, ...],
    ancestors: tuple[tuple[int, int], ...] = (),
) -> None:
    """Tells `walked` (folder, path, name) the Python files, templates and files that `extra`
    globs match under `top`, depth first, in name order."""
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
            entries = sorted(listing, key=_ENTRY_NAME)
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
            _walk(path, base, exclude, seen, errors, on_stat, walked, extra, ancestors)
            continue
        wanted = name.endswith(".py") or looks_like_template(name)  # `wanted_file`, inlined
        if not wanted and not (extra and _matches(name, extra)):
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
            walked(top, path, name)
        elif wanted:
            # a FIFO, a socket, a device, or a symlink to one or to nothing: never opened (a
            # FIFO would block the read forever)
            try:
                mode = os.stat(path).st_mode
            except OSError as exc:
                errors.append(SourceError(path, None, _os_message(exc)))
                continue
            errors.append(SourceError(path, None, f"skipped: {not_regular(path, mode).strerror}"))


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
