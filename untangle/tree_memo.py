"""What the last scan of the same paths with the same options saw, so that an unchanged tree is
neither walked nor read again, and its findings are not computed again.

A folder or file is known by its stamp: modification and change times, size, inode and device.
Any write, rename, `touch` or `chmod` changes the change time, which no tool can set back, so an
equal stamp means equal content. A stamp taken less than `_SETTLE_NS` after the thing last
changed is not trusted (file system clocks are coarse: a second write in the same tick would
leave the stamp as it was); such a file is read again next time. Nothing recorded here is used
unless every folder and file it depends on still has its stamp.
"""

from __future__ import annotations

import hashlib
import os
import pickle
import sys
import tempfile
import time
from dataclasses import dataclass, field
from typing import Any, NamedTuple

from untangle import __version__
from untangle.discover import Discovered, SourceFile
from untangle.facts.model import SourceError

Stamp = tuple[int, int, int, int, int]
_SETTLE_NS = 2_000_000_000
_FORMAT = "tree-memo-v1"


def stamp_of(info: os.stat_result) -> Stamp:
    return (info.st_mtime_ns, info.st_ctime_ns, info.st_size, info.st_ino, info.st_dev)


def current_stamp(path: str) -> Stamp | None:
    try:
        return stamp_of(os.stat(path))
    except OSError:
        return None


class FileNote(NamedTuple):
    """What a source file's bytes told the scan before any parsing (a plain tuple on disk: a
    warm scan loads thousands of them)."""

    stamp: Stamp | None  # None: not recorded (no cache directory)
    key: str | None  # its facts-cache key (content, module name, path), if it was prefiltered
    prefiltered: bool  # `.invoke` or a handler-shaped `def` in its bytes
    pattern_handler: bool  # a `def` that `handler-patterns` names
    too_large: bool = False  # over max-file-size: not scanned
    error: SourceError | None = None  # what is reported about it whenever it is scanned


@dataclass
class TreeMemo:
    """The previous scan's record (`old_*`, read at start) and this scan's (`new_*`, saved at
    the end). Without a cache directory it records nothing and knows nothing."""

    path: str | None
    started_ns: int = field(default_factory=time.time_ns)
    old_folders: dict[str, Stamp] | None = None
    old_discovered: Any = None
    old_files: dict[str, tuple[Any, ...]] = field(default_factory=dict)
    old_templates: dict[str, tuple[Stamp, Any]] = field(default_factory=dict)
    old_result: Any = None
    # filled while scanning; None: some folder could not be stamped, discovery not reusable
    new_folders: dict[str, Stamp] | None = field(default_factory=dict)
    new_discovered: Any = None
    new_files: dict[str, tuple[Any, ...]] = field(default_factory=dict)
    new_templates: dict[str, tuple[Stamp, Any]] = field(default_factory=dict)
    complete: bool = True  # every source and template was stamped
    _walk_changed: bool = False

    @classmethod
    def load(cls, cache_dir: str | None, identity: tuple[Any, ...]) -> TreeMemo:
        if cache_dir is None:
            return cls(None)
        digest = hashlib.blake2b(
            repr((_FORMAT, _code_fingerprint(), identity)).encode(), digest_size=20
        )
        memo = cls(os.path.join(cache_dir, "trees", digest.hexdigest()))
        try:
            with open(memo.path, "rb") as handle:  # type: ignore[arg-type]
                saved = pickle.load(handle)
            folders, discovered, files, templates, result = saved
        except Exception:  # missing, truncated or from another version: scanned afresh
            return memo
        memo.old_folders, memo.old_discovered = folders, discovered
        memo.old_files, memo.old_templates, memo.old_result = files, templates, result
        return memo

    @property
    def enabled(self) -> bool:
        return self.path is not None

    def settled(self, stamp: Stamp) -> bool:
        return max(stamp[0], stamp[1]) < self.started_ns - _SETTLE_NS

    # --- reading the old record ---------------------------------------------------------------

    def unchanged_walk(self) -> bool:
        """Whether no folder the previous walk went through has changed since."""
        if self.new_discovered is not None or self._walk_changed:
            return self.new_discovered is not None
        if self.old_folders is None or self.old_discovered is None:
            return False
        for folder, stamp in self.old_folders.items():
            if current_stamp(folder) != stamp:
                self._walk_changed = True
                return False
        self.new_folders = dict(self.old_folders)
        self.new_discovered = self.old_discovered
        return True

    def unchanged_discovery(self) -> Discovered | None:
        """The previous walk's result, if no folder it went through has changed since."""
        if not self.unchanged_walk():
            return None
        sources, templates, root = self.new_discovered
        return Discovered(
            tuple(SourceFile(path, module) for path, module in sources), templates, (), root
        )

    def file_note(self, path: str) -> FileNote | None:
        """The previous note of an unchanged file (and it is kept for the next scan)."""
        note = self.old_files.get(path)
        if note is None or current_stamp(path) != note[0]:
            return None
        self.new_files[path] = note
        return FileNote._make(note)

    def template(self, path: str) -> tuple[bool, Any]:
        """(True, what reading it gave) for an unchanged template."""
        known = self.old_templates.get(path)
        if known is None or current_stamp(path) != known[0]:
            return False, None
        self.new_templates[path] = known
        return True, known[1]

    def unchanged_result(self) -> Any:
        """The previous result, when no folder or file it came from has changed. A result is
        only recorded when every file of the walk was, so the files recorded are the walk's."""
        if self.old_result is None or not self.unchanged_walk():
            return None
        for known in (self.old_files, self.old_templates):
            for path, note in known.items():
                if current_stamp(path) != note[0]:
                    return None
        return self.old_result

    # --- recording this scan ------------------------------------------------------------------

    def record_folder(self, path: str, info: os.stat_result) -> None:
        """A folder walked (or a file named on the command line)."""
        if self.new_folders is None:
            return
        stamp = stamp_of(info)
        if self.settled(stamp):
            self.new_folders[path] = stamp
        else:
            self.new_folders = None

    def record_discovery(self, found: Discovered) -> None:
        if found.errors:  # a dangling link or an unreadable folder: walked again every time
            self.new_folders = None
        else:
            sources = tuple((source.path, source.module) for source in found.sources)
            self.new_discovered = (sources, found.templates, found.root)

    def record_file(self, path: str, note: FileNote | None) -> None:
        if not self.enabled:
            return
        if note is not None and note.stamp is not None and self.settled(note.stamp):
            self.new_files[path] = tuple(note)
        else:
            self.complete = False

    def record_template(self, path: str, stamp: Stamp | None, read: Any) -> None:
        if stamp is not None and self.settled(stamp):
            self.new_templates[path] = (stamp, read)
        else:
            self.complete = False

    def save(self, result: Any) -> None:
        if self.path is None:
            return
        discovery_reusable = self.new_folders is not None and self.new_discovered is not None
        saved = (
            self.new_folders if discovery_reusable else None,
            self.new_discovered if discovery_reusable else None,
            self.new_files,
            self.new_templates,
            result if (discovery_reusable and self.complete) else None,
        )
        folder = os.path.dirname(self.path)
        try:
            os.makedirs(folder, exist_ok=True)
            fd, temp = tempfile.mkstemp(dir=folder, prefix=".tmp-")
            with os.fdopen(fd, "wb") as handle:
                pickle.dump(saved, handle, protocol=pickle.HIGHEST_PROTOCOL)
            os.replace(temp, self.path)
        except (OSError, RecursionError, pickle.PicklingError):
            pass  # a read-only or full cache directory only means scanning afresh next time


_fingerprint: str | None = None


def _code_fingerprint() -> str:
    """untangle's version and the stamps of its own modules: results recorded by other code
    (an upgrade, an edited checkout) are never reused."""
    global _fingerprint
    if _fingerprint is None:
        package = os.path.dirname(os.path.abspath(__file__))
        digest = hashlib.blake2b(f"{__version__}:{sys.version}".encode(), digest_size=20)
        for folder, dirs, files in os.walk(package):
            dirs.sort()
            for name in sorted(files):
                if name.endswith(".py"):
                    info = os.stat(os.path.join(folder, name))
                    digest.update(f"{folder}/{name}:{info.st_mtime_ns}:{info.st_size}\0".encode())
        _fingerprint = digest.hexdigest()
    return _fingerprint
