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
        if self.directory is None:
            return None
        try:
            with open(os.path.join(self.directory, key[:2], key), "rb") as handle:
                value = pickle.load(handle)
        except Exception:  # a missing, truncated or foreign entry is a miss
            return None
        return value if isinstance(value, (ModuleFacts, SourceError)) else None

    def put(self, key: str, value: ModuleFacts | SourceError) -> None:
        if not self._writable or self.directory is None:
            return
        folder = os.path.join(self.directory, key[:2])
        try:
            os.makedirs(folder, exist_ok=True)
            fd, temp = tempfile.mkstemp(dir=folder, prefix=".tmp-")
            with os.fdopen(fd, "wb") as handle:
                pickle.dump(value, handle, protocol=pickle.HIGHEST_PROTOCOL)
            os.replace(temp, os.path.join(folder, key))
        except OSError:
            self._writable = False  # a read-only cache dir just means no caching
        except RecursionError:
            pass  # facts too deep to pickle: simply not cached
