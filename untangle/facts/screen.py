"""Whether a parsed module can be relevant (`ModuleFacts.relevant`), without extracting its facts.

Most files the byte prefilter lets through (`.invoke_endpoint(`, a `def handler(event, context)`
nested in a test) turn out not to matter, and extracting facts costs several times the parse. The
screen is a superset of `ModuleFacts.relevant`: it says no only where the facts would say no, so a
module it rejects is simply loaded later, like any helper, if something relevant reaches it.
"""

from __future__ import annotations

import ast
import re
import symtable
import unicodedata

from untangle.facts.model import HANDLER_NAMES, INVOKE_METHODS, handler_shaped

# `x.invoke(…)` and `pool.submit(x.invoke, …)` need the method's name as a whole word
_INVOKE_WORD = re.compile(
    rb"\b(?:" + b"|".join(sorted(m.encode() for m in INVOKE_METHODS)) + rb")\b"
)
# statements whose bodies stay in the module's scope (a def there is still module-level)
_SAME_SCOPE = (
    ast.If,
    ast.For,
    ast.AsyncFor,
    ast.While,
    ast.Try,
    ast.TryStar,
    ast.With,
    ast.AsyncWith,
)


def may_be_relevant(tree: ast.Module, text: str) -> bool:
    """False only when no function of the module can look like a handler or invoke."""
    return _defines_handler_shape(tree.body) or _may_invoke(_as_parsed(text))


def may_invoke_text(text: str) -> bool:
    """Whether an invoke can be in the module, by its text alone."""
    return _may_invoke(_as_parsed(text))


def may_define_handler(table: symtable.SymbolTable) -> bool:
    """Whether a function of the module's own scope (not a method, not nested) may have a
    handler's name and parameters, by the module's symbol table (which is cheaper to build than
    its syntax tree). The table lists keyword-only parameters before `*args`, so this asks only
    for a parameter with "event" and another with "context" or "ctx", in any order."""
    stack = list(table.get_children())
    while stack:
        child = stack.pop()
        kind = child.get_type()
        if isinstance(child, symtable.Function):
            params = [p.lower() for p in child.get_parameters()]
            if child.get_name() in HANDLER_NAMES and len(params) == 2:
                return True
            event = any("event" in p for p in params)
            if len(params) >= 2 and event and any("context" in p or "ctx" in p for p in params):
                return True
        elif kind != "class":
            stack.extend(child.get_children())  # a def's type parameters (3.12) hold the def
    return False


def _as_parsed(text: str) -> bytes:
    # identifiers are NFKC-normalised: a fullwidth `i` in `invoke` is still `invoke` to the parser
    return text.encode("ascii") if text.isascii() else unicodedata.normalize("NFKC", text).encode()


def _may_invoke(data: bytes) -> bool:
    """Whether the name of an invoke method appears outside comments: an `x.invoke` (or a
    class body's own `invoke`) needs it in the code."""
    for match in _INVOKE_WORD.finditer(data):
        line_start = max(data.rfind(b"\n", 0, match.start()), data.rfind(b"\r", 0, match.start()))
        before = data[line_start + 1 : match.start()]
        # a `#` with no quote before it on the line starts a comment, or lies inside a string
        # that goes on past the name: either way the name is not code
        if b"#" in before and b'"' not in before and b"'" not in before:
            continue
        return True
    return False


def _defines_handler_shape(body: list[ast.stmt]) -> bool:
    stack = list(body)
    while stack:
        node = stack.pop()
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            args = node.args
            params = [
                *(a.arg for a in (*args.posonlyargs, *args.args)),
                *([args.vararg.arg] if args.vararg else []),
                *(a.arg for a in args.kwonlyargs),
                *([args.kwarg.arg] if args.kwarg else []),
            ]
            if handler_shaped(node.name, params):
                return True
        elif isinstance(node, _SAME_SCOPE):
            stack.extend(node.body)
            stack.extend(node.orelse if not isinstance(node, (ast.With, ast.AsyncWith)) else ())
            if isinstance(node, (ast.Try, ast.TryStar)):
                stack.extend(node.finalbody)
                for handler in node.handlers:
                    stack.extend(handler.body)
        elif isinstance(node, ast.Match):
            for case in node.cases:
                stack.extend(case.body)
    return False
