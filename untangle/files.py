"""How untangle reads a file of the user's project, and how it shows a path (only the CLI, scan
and verify call the readers)."""

from __future__ import annotations

import errno
import os
import stat

from untangle.facts.model import SourceError
from untangle.facts.source import declared_encoding, decode

# a file untangle reads whole (a handler it rewrites, a template, a config) is never bigger than
# this: a larger one, or /dev/zero, is refused instead of filling the memory
MAX_TEXT_BYTES = 64 * 1024 * 1024

_KINDS = (
    (stat.S_ISDIR, "a directory"),
    (stat.S_ISFIFO, "a FIFO"),
    (stat.S_ISSOCK, "a socket"),
    (stat.S_ISCHR, "a character device"),
    (stat.S_ISBLK, "a block device"),
)


class NotRegularFile(OSError):
    """A path that names a FIFO, a device, a socket or a directory where a file was expected:
    reading it could block forever or never end."""


def kind_of(mode: int) -> str:
    """`a FIFO`, `a character device` …: what a path that is not a regular file is."""
    for test, name in _KINDS:
        if test(mode):
            return name
    return "not a regular file"


def not_regular(path: str, mode: int) -> NotRegularFile:
    return NotRegularFile(errno.EINVAL, f"not a regular file ({kind_of(mode)})", path)


def read_bytes(path: str, limit: int = MAX_TEXT_BYTES) -> bytes:
    """At most `limit + 1` bytes of a regular file (the caller tells "too big" by the length).

    The file is opened without blocking, so a FIFO planted at the path cannot hang the run, and
    anything but a regular file is refused with a `NotRegularFile` (an OSError whose strerror
    says what the path is)."""
    return read_bytes_and_stat(path, limit)[0]


def read_bytes_and_stat(path: str, limit: int = MAX_TEXT_BYTES) -> tuple[bytes, os.stat_result]:
    """`read_bytes`, and the `os.stat` of the file it read (from the same open file)."""
    flags = os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_CLOEXEC", 0)
    fd = os.open(path, flags)
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            raise not_regular(path, info.st_mode)
        chunks: list[bytes] = []
        remaining = limit + 1  # (any size: `max-file-size` may be larger than memory)
        size = 0
        while remaining > 0:
            asked = min(remaining, 1 << 20)
            chunk = os.read(fd, asked)
            if not chunk:
                break
            chunks.append(chunk)
            remaining -= len(chunk)
            size += len(chunk)
            if len(chunk) < asked and size == info.st_size:
                break  # the whole file as it was stat'ed: no read more to see its end
        return b"".join(chunks), info
    finally:
        os.close(fd)


def read_source(path: str) -> str:
    """Python source, decoded as scan decodes it and as the interpreter would (a BOM, a PEP 263
    coding line, else UTF-8); a ValueError naming the line when it cannot be."""
    try:
        data = read_bytes(path)
    except OSError as exc:
        raise ValueError(f"cannot read: {exc.strerror or exc}") from exc
    text = decode(data, path)
    if isinstance(text, SourceError):
        where = f"line {text.line}: " if text.line else ""
        raise ValueError(f"{where}{text.message}")
    return text


def read_text(path: str) -> str | None:
    """A text file exactly as it is (line endings and a BOM kept), or None when it does not
    exist. A Python file is decoded in the encoding its PEP 263 coding line declares (as
    migrate writes it back); every other file is UTF-8. A ValueError when it cannot be read."""
    try:
        data = read_bytes(path)
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise ValueError(f"{shown(path)}: cannot read: {exc.strerror or exc}") from exc
    if len(data) > MAX_TEXT_BYTES:
        raise ValueError(f"{shown(path)}: larger than {MAX_TEXT_BYTES // (1024 * 1024)} MB")
    encoding = declared_encoding(data) if path.endswith(".py") else "utf-8"
    try:
        return data.decode(encoding)
    except (LookupError, UnicodeDecodeError) as exc:
        raise ValueError(f"{shown(path)}: not valid {encoding} text ({exc})") from exc


def shown(path: str) -> str:
    """A path as text that can always be printed: the bytes of a name that is not UTF-8 (which
    Python holds as lone surrogates) as backslash escapes, `caf\\xe9.py`."""
    return os.fsencode(path).decode("utf-8", "backslashreplace")


def has_undecodable_name(path: str) -> bool:
    """The path holds a byte that is not UTF-8 (held as a lone surrogate)."""
    try:
        path.encode("utf-8")
    except UnicodeEncodeError:
        return True
    return False
