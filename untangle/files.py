"""The two ways untangle reads a file of the user's project (only the CLI and verify call them)."""

from __future__ import annotations


def read_source(path: str) -> str:
    """Python source, as the interpreter would decode it (a UTF-8 BOM dropped)."""
    with open(path, "rb") as handle:
        return handle.read().decode("utf-8-sig")


def read_text(path: str) -> str | None:
    """A text file exactly as it is (line endings kept), or None when it does not exist."""
    try:
        with open(path, encoding="utf-8", newline="") as handle:
            return handle.read()
    except FileNotFoundError:
        return None
