"""Facts cached by content: a warm re-run parses nothing that did not change."""

from __future__ import annotations

import hashlib
import os
import pickle
import sys
import tempfile

from untangle import __version__
from untangle.facts.model import ModuleFacts, SourceError

_SALT = f"{__version__}:{sys.version_info[:2]}:facts-v3".encode()


def default_cache_dir() -> str:
    configured = os.environ.get("UNTANGLE_CACHE_DIR")
    if configured:
        return configured
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return os.path.join(base, "untangle")


class FactsCache:
    """One small pickle per (content, module name); unreadable or stale entries are misses."""

    def __init__(self, directory: str | None) -> None:
        self.directory = directory
        self._writable = directory is not None
        self._relevance: dict[str, bool] | None = None
        self._relevance_changed = False

    @property
    def keeps(self) -> bool:
        """Whether entries are written (a cache directory that has not failed)."""
        return self._writable

    def prepare(self) -> None:
        """Read what `relevance` answers from now (before forking: every reader knows it)."""
        self.relevance("")

    # Whether a file's facts matter from the start (`ModuleFacts.relevant`), so that a warm run
    # does not even unpickle the facts of the many files that only mention "invoke".
    def relevance(self, key: str) -> bool | None:
        if self._relevance is None:
            self._relevance = {}
            if self.directory is not None:
                try:
                    with open(os.path.join(self.directory, "relevance.pickle"), "rb") as handle:
                        loaded = pickle.load(handle)
                    if isinstance(loaded, dict):
                        self._relevance = loaded
                except Exception:  # missing or corrupt: recomputed
                    pass
        return self._relevance.get(key)

    def set_relevance(self, key: str, relevant: bool) -> None:
        if self.relevance(key) != relevant:
            assert self._relevance is not None
            self._relevance[key] = relevant
            self._relevance_changed = True

    def save(self) -> None:
        if not self._relevance_changed or not self._writable or self.directory is None:
            return
        try:
            os.makedirs(self.directory, exist_ok=True)
            fd, temp = tempfile.mkstemp(dir=self.directory, prefix=".tmp-")
            with os.fdopen(fd, "wb") as handle:
                pickle.dump(self._relevance, handle, protocol=pickle.HIGHEST_PROTOCOL)
            os.replace(temp, os.path.join(self.directory, "relevance.pickle"))
        except OSError:
            self._writable = False

    @staticmethod
    def key(data: bytes, module: str, path: str) -> str:
        digest = hashlib.blake2b(_SALT, digest_size=20)
        digest.update(module.encode("utf-8", "surrogateescape"))
        digest.update(b"\0")
        digest.update(path.encode("utf-8", "surrogateescape"))
        digest.update(b"\0")
        digest.update(data)
        return digest.hexdigest()

    def get(self, key: str) -> ModuleFacts | SourceError | None:
        blob = self.get_pickled(key)
        return None if blob is None else self.unpickle(blob)

    def get_pickled(self, key: str) -> bytes | None:
        """An entry as it is stored (read by one process, unpickled by another)."""
        if self.directory is None:
            return None
        try:
            with open(os.path.join(self.directory, key[:2], key), "rb") as handle:
                return handle.read()
        except OSError:
            return None

    @staticmethod
    def unpickle(blob: bytes) -> ModuleFacts | SourceError | None:
        try:
            value = pickle.loads(blob)
        except Exception:  # a truncated or foreign entry is a miss
            return None
        return value if isinstance(value, (ModuleFacts, SourceError)) else None

    @staticmethod
    def pickled(value: ModuleFacts | SourceError) -> bytes | None:
        """The entry stored for `value`; None for facts too deep to pickle (never cached)."""
        try:
            return pickle.dumps(value, protocol=pickle.HIGHEST_PROTOCOL)
        except RecursionError:
            return None

    def put(self, key: str, value: ModuleFacts | SourceError) -> None:
        if not self._writable or self.directory is None:
            return
        blob = self.pickled(value)
        if blob is not None:
            self.put_pickled(key, blob)

    def put_pickled(self, key: str, blob: bytes) -> None:
        if not self._writable or self.directory is None:
            return
        folder = os.path.join(self.directory, key[:2])
        try:
            os.makedirs(folder, exist_ok=True)
            fd, temp = tempfile.mkstemp(dir=folder, prefix=".tmp-")
            with os.fdopen(fd, "wb") as handle:
                handle.write(blob)
            os.replace(temp, os.path.join(folder, key))
        except OSError:
            self._writable = False  # a read-only cache dir just means no caching
