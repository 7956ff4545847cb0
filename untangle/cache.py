"""Facts cached by content: a warm re-run parses nothing that did not change."""

from __future__ import annotations

import hashlib
import os
import pickle
import sys
import tempfile

from untangle import __version__
from untangle.facts.model import ModuleFacts, SourceError

_SALT = f"{__version__}:{sys.version_info[:2]}:facts-v1".encode()


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

    @staticmethod
    def key(data: bytes, module: str, path: str) -> str:
        digest = hashlib.blake2b(_SALT, digest_size=20)
        digest.update(module.encode())
        digest.update(b"\0")
        digest.update(path.encode())
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
