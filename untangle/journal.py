"""Crash-safe multi-file writes: a journal in the project root, rolled back after a crash.

`write_files` replaces several files as one transaction:

1. the journal: `ROOT/.untangle-journal/` receives a backup of every file about to be replaced
   (`N.old`, byte for byte), then `manifest.json` naming each target with the SHA-256 of its old
   and new contents and the directories the write will create. Every file and the directory are
   fsynced; the manifest appears by an atomic rename, so it is whole or absent.
2. the swaps: each new content goes to a temporary file created in the target's own directory
   (`O_CREAT|O_EXCL`, a random name: a planted file or symlink is never opened), is fsynced,
   then renamed over the target.
3. the commit: the manifest is removed (from then on the write is final), then the backups.

A process killed anywhere leaves either no manifest (nothing was replaced yet, or everything
was and only the journal's clean-up was left) or a manifest; `recover` then rolls the tree back
to the old contents: a target whose hash is the new one gets its backup back (a created file is
removed), one with the old hash is left alone, and the temporary files and created directories
are removed. Rolling back rather than forward keeps one rule for a crash, Ctrl-C and a failing
disk: the write happened entirely or not at all, and `migrate --write` can simply run again.
A target that holds neither hash (edited by hand since the crash) is not touched: recovery
names it and keeps the journal.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import re
import stat
import tempfile
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

JOURNAL = ".untangle-journal"
MANIFEST = "manifest.json"
FORMAT = "untangle-journal/1"
TEMP_SUFFIX = ".untangle-tmp"


class WriteRefused(Exception):
    """A write that must not happen: a target outside the root, a journal in the way."""


@dataclass(frozen=True)
class Replacement:
    path: str  # absolute
    old: bytes | None  # None: a new file
    new: bytes


@dataclass
class Recovery:
    """What `recover` did to one root."""

    root: str
    rolled_back: bool  # a manifest was found: the tree had (maybe) been changed
    restored: list[str] = field(default_factory=list)  # relative paths given their old contents
    removed: list[str] = field(default_factory=list)  # files the write had created
    conflicts: list[str] = field(default_factory=list)  # changed since the crash: left alone


def inside(path: str, root: str) -> str:
    """`path` with every symlink resolved, when that lies under `root` (also resolved); a
    WriteRefused otherwise. A symlink (of the file or of any directory above it) that leads
    out of the root is refused, never followed."""
    real_root = os.path.realpath(root)
    real = os.path.realpath(path)
    if os.path.commonpath([real, real_root]) != real_root:
        raise WriteRefused(f"refusing to write {path}: outside the project root {root}")
    return real


def write_files(root: str, replacements: list[Replacement]) -> None:
    """Replace every file or none, surviving a kill at any point (see the module docstring).
    The old contents are checked against the disk first; an exception (Ctrl-C included) rolls
    back what was done before it is raised again."""
    root = os.path.realpath(root)
    targets = _checked_targets(root, replacements)
    journal = os.path.join(root, JOURNAL)
    try:
        os.mkdir(journal, 0o700)
    except FileExistsError:
        raise WriteRefused(
            f"{journal} exists: another untangle is writing here, or an interrupted write was "
            "not recovered"
        ) from None
    try:
        _fsync_directory(root)
        entries = []
        for index, (target, replacement) in enumerate(zip(targets, replacements)):
            backup = None
            if replacement.old is not None:
                backup = f"{index}.old"
                _create(os.path.join(journal, backup), replacement.old)
            entries.append(
                {
                    "path": os.path.relpath(target, root),
                    "old_sha256": _sha(replacement.old),
                    "new_sha256": _sha(replacement.new),
                    "backup": backup,
                }
            )
        created = _directories_to_create(root, targets)
        manifest = {"format": FORMAT, "entries": entries, "created_directories": created}
        staged = os.path.join(journal, MANIFEST + TEMP_SUFFIX)
        _create(staged, json.dumps(manifest, indent=2).encode())
        os.replace(staged, os.path.join(journal, MANIFEST))
        _fsync_directory(journal)
    except BaseException:
        _discard(journal)
        raise
    try:
        for relative in created:
            directory = os.path.join(root, relative)
            os.mkdir(directory)
            inside(directory, root)
            _fsync_directory(os.path.dirname(directory))
        for target, replacement in zip(targets, replacements):
            replace_atomically(target, replacement.new, root)
    except BaseException:
        recover(root)
        raise
    _discard(journal)


def recover(root: str) -> Recovery | None:
    """Finish an interrupted `write_files` under `root`: roll the tree back when a manifest
    says it may have changed, remove what the crash left. None when there is no journal."""
    root = os.path.realpath(root)
    journal = os.path.join(root, JOURNAL)
    try:
        mode = os.lstat(journal).st_mode
    except FileNotFoundError:
        return None
    if not stat.S_ISDIR(mode):
        raise WriteRefused(f"{journal} is not a directory untangle made: remove it")
    try:
        with open(os.path.join(journal, MANIFEST), "rb") as handle:
            manifest = json.loads(handle.read())
    except FileNotFoundError:
        _discard(journal)  # stopped before the first swap or after the commit: the tree is whole
        return Recovery(root, rolled_back=False)
    except ValueError:
        raise WriteRefused(f"{journal}/{MANIFEST} is not a journal untangle wrote") from None
    if not _well_formed(manifest):
        raise WriteRefused(f"{journal}/{MANIFEST} is not a journal untangle wrote")
    recovery = Recovery(root, rolled_back=True)
    for entry in reversed(manifest["entries"]):
        _roll_back(root, journal, entry, recovery)
    for entry in manifest["entries"]:
        with contextlib.suppress(WriteRefused):
            _remove_temporaries(inside(os.path.join(root, entry["path"]), root))
    for relative in reversed(manifest["created_directories"]):
        # not empty (something else lives there now) or not under the root: left alone
        with contextlib.suppress(OSError, WriteRefused):
            os.rmdir(inside(os.path.join(root, relative), root))
    if not recovery.conflicts:
        _discard(journal)
    return recovery


def _well_formed(manifest: Any) -> bool:
    """The manifest's shape, checked before it is trusted: paths are relative, backups are the
    journal's own `N.old` files (a planted manifest reads nothing from elsewhere)."""
    if not isinstance(manifest, dict) or manifest.get("format") != FORMAT:
        return False
    entries, created = manifest.get("entries"), manifest.get("created_directories")
    if not isinstance(entries, list) or not isinstance(created, list):
        return False
    relative = [e.get("path") for e in entries if isinstance(e, dict)] + created
    if len(relative) != len(entries) + len(created):
        return False
    if not all(isinstance(p, str) and p and not os.path.isabs(p) for p in relative):
        return False
    for entry in entries:
        backup, hashes = entry.get("backup"), (entry.get("old_sha256"), entry.get("new_sha256"))
        if backup is not None and not (
            isinstance(backup, str) and re.fullmatch(r"\d+\.old", backup)
        ):
            return False
        if not all(h is None or isinstance(h, str) for h in hashes) or hashes[1] is None:
            return False
    return True


def journal_roots(paths: Iterable[str]) -> list[str]:
    """The directories holding a journal that a command on `paths` must recover first: each
    path's directory and every directory above it."""
    found: dict[str, None] = {}
    for path in paths:
        directory = os.path.abspath(path)
        if not os.path.isdir(directory):
            directory = os.path.dirname(directory)
        while True:
            journal = os.path.join(directory, JOURNAL)
            if os.path.isdir(journal) and not os.path.islink(journal):  # never followed
                found[directory] = None
            parent = os.path.dirname(directory)
            if parent == directory:
                break
            directory = parent
    return list(found)


def _checked_targets(root: str, replacements: list[Replacement]) -> list[str]:
    targets = []
    for replacement in replacements:
        target = inside(replacement.path, root)
        if target in targets:
            raise WriteRefused(
                f"refusing to write {replacement.path}: it is {target}, which another change "
                "writes too (a symlink inside the project)"
            )
        if JOURNAL in os.path.relpath(target, root).split(os.sep):
            raise WriteRefused(f"refusing to write {replacement.path}: inside the journal")
        on_disk = _read(target)
        if on_disk != replacement.old:
            raise WriteRefused(f"{replacement.path} changed since the migration was computed")
        targets.append(target)
    return targets


def _directories_to_create(root: str, targets: list[str]) -> list[str]:
    """Missing directories, parents first, relative to the root."""
    created: list[str] = []
    for target in targets:
        missing = []
        directory = os.path.dirname(target)
        while not os.path.isdir(directory):
            missing.append(os.path.relpath(directory, root))
            directory = os.path.dirname(directory)
        created += [d for d in reversed(missing) if d not in created]
    return created


def replace_atomically(target: str, content: bytes, root: str) -> None:
    """`content` at `target` (in a directory inside `root`) by a rename: a reader sees the old
    file or the new one, never half of it; a symlink at `target` is replaced, not followed."""
    directory = os.path.dirname(target)
    inside(directory, root)
    handle, temp = tempfile.mkstemp(
        prefix=f".{os.path.basename(target)}.", suffix=TEMP_SUFFIX, dir=directory
    )
    try:
        with os.fdopen(handle, "wb") as stream:
            stream.write(content)
            stream.flush()
            os.fsync(stream.fileno())
        try:
            mode = os.lstat(target).st_mode
        except FileNotFoundError:
            mode = 0
        if stat.S_ISREG(mode):
            os.chmod(temp, stat.S_IMODE(mode))  # the file keeps its permissions
        else:
            umask = os.umask(0)
            os.umask(umask)
            os.chmod(temp, 0o666 & ~umask)  # as open() would have made it
        os.replace(temp, target)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.remove(temp)
        raise
    _fsync_directory(directory)


def _roll_back(root: str, journal: str, entry: dict[str, Any], recovery: Recovery) -> None:
    relative = entry["path"]
    try:
        target = inside(os.path.join(root, relative), root)
    except WriteRefused:
        recovery.conflicts.append(relative)
        return
    current = _sha(_read(target))
    if current == entry["old_sha256"]:
        return  # not swapped yet
    if current != entry["new_sha256"]:
        recovery.conflicts.append(relative)
        return
    if entry["backup"] is None:
        os.remove(target)
        _fsync_directory(os.path.dirname(target))
        recovery.removed.append(relative)
        return
    with open(os.path.join(journal, entry["backup"]), "rb") as handle:
        old = handle.read()
    if _sha(old) != entry["old_sha256"]:
        recovery.conflicts.append(relative)
        return
    replace_atomically(target, old, root)
    recovery.restored.append(relative)


def _remove_temporaries(target: str) -> None:
    """The temporary files `_swap` leaves when killed before its rename (regular files with
    its name pattern only: a symlink planted there is not ours)."""
    directory = os.path.dirname(target)
    prefix = f".{os.path.basename(target)}."
    try:
        names = os.listdir(directory)
    except OSError:
        return
    for name in names:
        if name.startswith(prefix) and name.endswith(TEMP_SUFFIX):
            path = os.path.join(directory, name)
            with contextlib.suppress(OSError):
                if stat.S_ISREG(os.lstat(path).st_mode):
                    os.remove(path)


def _discard(journal: str) -> None:
    """Remove the journal, the manifest first: once it is gone, the write is final."""
    with contextlib.suppress(FileNotFoundError):
        os.remove(os.path.join(journal, MANIFEST))
        _fsync_directory(journal)
    for name in os.listdir(journal):
        os.remove(os.path.join(journal, name))
    os.rmdir(journal)
    _fsync_directory(os.path.dirname(journal))


def _create(path: str, content: bytes) -> None:
    """A new file, never an existing one nor through a symlink, on disk when this returns."""
    handle = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
    with os.fdopen(handle, "wb") as stream:
        stream.write(content)
        stream.flush()
        os.fsync(stream.fileno())


def _read(path: str) -> bytes | None:
    try:
        with open(path, "rb") as handle:
            return handle.read()
    except FileNotFoundError:
        return None


def _sha(content: bytes | None) -> str | None:
    return None if content is None else hashlib.sha256(content).hexdigest()


def _fsync_directory(path: str) -> None:
    handle = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(handle)
    finally:
        os.close(handle)
