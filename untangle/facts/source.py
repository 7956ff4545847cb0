"""Bytes of one file → `ModuleFacts`, or a `SourceError` that names the file and the line."""

from __future__ import annotations

import ast
import codecs
import os
import re
import symtable
import traceback
import warnings

from untangle.facts.extract import extract_module
from untangle.facts.model import ModuleFacts, SourceError
from untangle.facts.newer_syntax import parse_python
from untangle.facts.screen import may_be_relevant, may_define_handler, may_invoke_text

_CODING = re.compile(rb"^[ \t\f]*#.*?coding[:=][ \t]*([-\w.]+)")
# PEP 263: the second line may declare the encoding only when the first is blank or a comment
_BLANK_OR_COMMENT = re.compile(rb"^[ \t\f]*(?:[#\r\n]|$)")
_FIRST_LINES = re.compile(rb"\r\n|\r|\n")


def decode(data: bytes, path: str) -> str | SourceError:
    """Decode as Python does: a BOM, then a PEP 263 coding line, else UTF-8."""
    if b"\0" in data:
        line = len(_FIRST_LINES.findall(data, 0, data.index(b"\0"))) + 1
        return SourceError(path, line, "contains a NUL byte: not Python source")
    if data.startswith(codecs.BOM_UTF8):
        data = data[len(codecs.BOM_UTF8) :]
        encoding, declared = "utf-8", False
    else:
        found = _coding_line(data)
        encoding, declared = found or "utf-8", found is not None
    try:
        return data.decode(encoding)
    except LookupError:
        return SourceError(path, 1, f"unknown source encoding {encoding!r}")
    except UnicodeDecodeError as exc:
        line = len(_FIRST_LINES.findall(data, 0, exc.start)) + 1
        byte = data[exc.start : exc.start + 1].hex()
        why = (
            "the encoding its coding declaration names"
            if declared
            else "and no coding declaration says otherwise"
        )
        return SourceError(path, line, f"not valid {encoding} (byte 0x{byte}), {why}")


def _symbol_table(text: str, path: str) -> symtable.SymbolTable | None:
    """The module's symbol table, built from the same parser's tree as `ast.parse` builds, without
    the syntax tree's objects (half the cost of parsing): if it builds, `ast.parse` accepts the
    text. None where it does not: the file is then parsed for the exact error (the symbol table
    also refuses a few things `ast.parse` accepts, such as a module-level `nonlocal`)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # invalid escapes are the file's business, not ours
        try:
            return symtable.symtable(text, path, "exec")
        except (SyntaxError, ValueError, RecursionError, MemoryError):
            return None


def _coding_line(data: bytes) -> str | None:
    """The encoding a PEP 263 coding line on line 1 or 2 declares, if one does."""
    for head in _FIRST_LINES.split(data, 2)[:2]:
        match = _CODING.match(head)
        if match:
            return match.group(1).decode("ascii", "replace")
        if not _BLANK_OR_COMMENT.match(head):
            break
    return None


def declared_encoding(data: bytes) -> str:
    """The encoding Python reads these bytes in: UTF-8 with a BOM or without a coding line, else
    the one the coding line declares (normalised by `codecs`, `latin-1` → `iso8859-1`)."""
    if data.startswith(codecs.BOM_UTF8):
        return "utf-8"
    found = _coding_line(data)
    if found is None:
        return "utf-8"
    try:
        return codecs.lookup(found).name
    except LookupError:
        return found


def text_encoding(text: str) -> str:
    """`declared_encoding` of source already decoded: its coding line is the same characters."""
    if text.startswith("\ufeff"):
        return "utf-8"
    return declared_encoding(text[:400].encode("ascii", "replace"))


def _compile_error(tree: ast.Module, path: str) -> SourceError | None:
    """What the compiler refuses in a file that parses (`return` or `nonlocal` at module level,
    `await` outside an async function, a duplicate argument): Python could not import it, and
    migrate could not rewrite it, so every command names it as it names a syntax error."""
    try:
        compile(tree, path, "exec", dont_inherit=True)
    except SyntaxError as exc:
        return SourceError(path, exc.lineno, f"syntax error: {exc.msg}")
    except (RecursionError, MemoryError):
        return SourceError(path, None, "too deeply nested to compile")
    except ValueError as exc:
        return SourceError(path, None, f"cannot compile: {exc}")
    return None


def parse_facts(data: bytes, path: str, module: str) -> ModuleFacts | SourceError:
    """Parse and extract; never raises for bad input."""
    facts = _parse_facts(data, path, module, screen=False)
    assert facts is not None  # only a screened parse leaves out the facts
    return facts


def screened_facts(data: bytes, path: str, module: str) -> ModuleFacts | SourceError | None:
    """`parse_facts`, or None where the parse shows the module cannot be relevant
    (`ModuleFacts.relevant`): its facts are then extracted only if something reaches it."""
    return _parse_facts(data, path, module, screen=True)


def _parse_facts(
    data: bytes, path: str, module: str, screen: bool
) -> ModuleFacts | SourceError | None:
    text = decode(data, path)
    if isinstance(text, SourceError):
        return text
    if screen and not may_invoke_text(text):
        table = _symbol_table(text, path)
        if table is not None and not may_define_handler(table):
            return None
    try:
        tree = parse_python(text, path)
    except SyntaxError as exc:
        message = exc.msg
        if "Missing parentheses" in message:
            message += " (Python 2 code?)"
        return SourceError(path, exc.lineno, f"syntax error: {message}")
    except (RecursionError, MemoryError):
        return SourceError(path, None, "too deeply nested to parse")
    except ValueError as exc:
        return SourceError(path, None, f"cannot parse: {exc}")
    refused = _compile_error(tree, path)
    if refused is not None:
        return refused
    if screen and not may_be_relevant(tree, text):
        return None
    try:
        return extract_module(tree, text, module, path)
    except RecursionError:
        return SourceError(path, None, "too deeply nested to analyse")
    except Exception as exc:  # an extractor bug must not abort the whole scan
        where = ""
        frames = traceback.extract_tb(exc.__traceback__)
        if frames:
            where = f" at {os.path.basename(frames[-1].filename)}:{frames[-1].lineno}"
        return SourceError(
            path,
            None,
            f"internal error while analysing this file ({type(exc).__name__}{where}); "
            "please report it",
        )
