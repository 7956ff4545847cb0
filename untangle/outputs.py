"""Files written into a folder the user names (`plan --out`, `--diagram-out`): one per workflow,
named after it, and never anywhere else, whatever a template's logical id or a handler's name
holds (`../../x`, an absolute path, a NUL, a thousand characters)."""

from __future__ import annotations

import hashlib
import os
import re

from untangle.journal import replace_atomically

_UNSAFE = re.compile(r"[^0-9A-Za-z_.-]")
_LONGEST = 120  # characters of the name kept; file systems allow 255 bytes for the whole


def artifact_name(name: str, suffix: str) -> str:
    """`name.suffix` when `name` is a plain file name; otherwise its safe characters, `_` for
    the others, and a hash of the original name so that two hostile names stay two files."""
    safe = _UNSAFE.sub("_", name)
    if safe.startswith("."):
        safe = "_" + safe[1:]
    if safe != name or len(safe) > _LONGEST or not safe:
        digest = hashlib.sha256(name.encode("utf-8", "surrogatepass")).hexdigest()[:10]
        safe = f"{safe[:_LONGEST]}-{digest}"
    return f"{safe}.{suffix}"


def write_artifact(folder: str, file_name: str, text: str) -> str:
    """`text` in `folder/file_name` (the folder made when missing), by a rename: a symlink or a
    file planted at that name is replaced, not written through. The path written."""
    os.makedirs(folder, exist_ok=True)
    target = os.path.join(folder, file_name)
    if os.path.dirname(os.path.normpath(target)) != os.path.normpath(folder):
        raise ValueError(f"{file_name!r} is not a file name")
    real_folder = os.path.realpath(folder)
    replace_atomically(os.path.join(real_folder, file_name), text.encode("utf-8"), real_folder)
    return target
