"""The two ways untangle reads a file of the user's project (only the CLI and verify call them)."""

from __future__ import annotations

from untangle.facts.model import SourceError
from untangle.facts.source import decode


def read_source(path: str) -> str:
    """Python source, decoded as scan decodes it and as the interpreter would (a BOM, a PEP 263
    coding line, else UTF-8); a ValueError naming the line when it cannot be."""
    with open(path, "rb") as handle:
        text = decode(handle.read(), path)
    if isinstance(text, SourceError):
        where = f"line {text.line}: " if text.line else ""
        raise ValueError(f"{where}{text.message}")
    return text


def read_text(path: str) -> str | None:
    """A text file exactly as it is (line endings kept), or None when it does not exist."""
    try:
        with open(path, encoding="utf-8", newline="") as handle:
            return handle.read()
    except FileNotFoundError:
        return None
