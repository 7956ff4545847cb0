"""Facts about one module: what the extractor records, what the linker resolves.

Facts are frozen, picklable and independent of every other module, so they can be computed
in worker processes and cached by content hash. Cross-module meaning (is this name a Lambda
client? which function does this call reach?) is left symbolic here, as `Sym` trees, and is
decided later by `untangle.analysis.program`, which sees every module at once.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, TypeVar, Union

_T = TypeVar("_T")


def _hash_once(cls: type[_T]) -> type[_T]:
    """Symbolic trees are deep and hashed often (memo keys): hash each node once per process.
    The cached value is never pickled: str hashes differ between processes."""
    computed = cls.__hash__

    def __hash__(self: Any) -> int:
        value: int | None = self.__dict__.get("_hash")
        if value is None:
            value = computed(self)
            object.__setattr__(self, "_hash", value)
        return value

    def __getstate__(self: Any) -> dict[str, Any]:
        return {k: v for k, v in self.__dict__.items() if k != "_hash"}

    setattr(cls, "__hash__", __hash__)  # noqa: B010 - mypy forbids assigning methods
    setattr(cls, "__getstate__", __getstate__)  # noqa: B010
    return cls


# --- symbolic values -------------------------------------------------------------------------


@_hash_once
@dataclass(frozen=True)
class Ref:
    """A module-level name, already qualified through the imports: `boto3.client`, `pkg.mod.f`."""

    qualname: str
    # for `import x` / `from x import y`: the importing module, so that `x` can be looked up
    # from that module's directories first (Lambda code imports relative to its CodeUri)
    importer: str = ""


@_hash_once
@dataclass(frozen=True)
class Local:
    """A name bound in a function body; its values are in that function's `locals`."""

    scope: str
    name: str


@_hash_once
@dataclass(frozen=True)
class Param:
    """A parameter of function `func` (qualified name), by name and position."""

    func: str
    name: str
    index: int


@_hash_once
@dataclass(frozen=True)
class SelfOf:
    """`self` inside a method of class `cls` (qualified name)."""

    cls: str


@_hash_once
@dataclass(frozen=True)
class Attr:
    base: Sym
    name: str


@_hash_once
@dataclass(frozen=True)
class Item:
    """`base[key]`."""

    base: Sym
    key: Sym


@_hash_once
@dataclass(frozen=True)
class Call:
    func: Sym
    args: tuple[Sym, ...]
    # (None, sym) is `**sym`
    kwargs: tuple[tuple[str | None, Sym], ...]


@_hash_once
@dataclass(frozen=True)
class Const:
    value: str | int | float | bool | None


@_hash_once
@dataclass(frozen=True)
class DictLit:
    """A dict display whose keys are constant strings (other keys are dropped)."""

    items: tuple[tuple[str, Sym], ...]


@_hash_once
@dataclass(frozen=True)
class BinOp:
    op: str
    left: Sym
    right: Sym


@_hash_once
@dataclass(frozen=True)
class OneOf:
    """Any of several values: a conditional expression, `a or b`."""

    options: tuple[Sym, ...]


@_hash_once
@dataclass(frozen=True)
class FuncRef:
    """A function or lambda defined in this module, by qualified name."""

    qualname: str


@dataclass(frozen=True)
class Unknown:
    pass


UNKNOWN = Unknown()

Sym = Union[
    Ref, Local, Param, SelfOf, Attr, Item, Call, Const, DictLit, BinOp, OneOf, FuncRef, Unknown
]


# --- positions and sites ----------------------------------------------------------------------


@dataclass(frozen=True)
class Span:
    """1-based lines, 1-based character columns; end is exclusive."""

    line: int
    column: int
    end_line: int
    end_column: int


@dataclass(frozen=True)
class LoopFact:
    id: int
    kind: str  # "for" | "while" | "comprehension"
    span: Span
    # `for x in range(...)`, `itertools.count()`, `while ...`: loops that repeat, not iterate data
    repeats: bool
    has_exit: bool  # break / return inside the loop body
    parent: int | None


@dataclass(frozen=True)
class TryFact:
    id: int
    span: Span
    catches: tuple[Sym, ...]  # exception classes named by the handlers; () means bare except


@dataclass(frozen=True)
class CallSite:
    func: Sym
    args: tuple[Sym, ...]
    kwargs: tuple[tuple[str | None, Sym], ...]
    span: Span
    loops: tuple[int, ...]  # enclosing loops of this function, innermost last
    trys: tuple[int, ...]  # enclosing try bodies (not handlers), innermost last


@dataclass(frozen=True)
class DecoratorFact:
    sym: Sym
    span: Span


@dataclass(frozen=True)
class FunctionFacts:
    qualname: str
    name: str
    span: Span
    params: tuple[str, ...]
    is_method: bool
    is_async: bool
    module_level: bool
    decorators: tuple[DecoratorFact, ...]
    calls: tuple[CallSite, ...]
    loops: tuple[LoopFact, ...]
    trys: tuple[TryFact, ...]
    returns: tuple[Sym, ...]
    locals: tuple[tuple[str, tuple[Sym, ...]], ...]
    defaults: tuple[tuple[str, Sym], ...] = ()


@dataclass(frozen=True)
class ClassFacts:
    qualname: str
    span: Span
    bases: tuple[Sym, ...]
    # class-level assignments and `self.x = ...` in methods
    attrs: tuple[tuple[str, tuple[Sym, ...]], ...]
    methods: tuple[str, ...]


@dataclass(frozen=True)
class Suppression:
    line: int  # 0 for file-level
    rules: frozenset[str] | None  # None: every rule


INVOKE_METHODS = frozenset({"invoke", "invoke_async", "invoke_with_response_stream"})
HANDLER_NAMES = frozenset({"lambda_handler", "handler"})


def may_invoke(site: CallSite) -> bool:
    """Cheap syntactic gate before the semantic check: `x.invoke(…)`, `pool.submit(x.invoke, …)`."""
    if isinstance(site.func, Attr) and site.func.name in INVOKE_METHODS:
        return True
    return any(isinstance(arg, Attr) and arg.name in INVOKE_METHODS for arg in site.args)


def looks_like_handler(function: FunctionFacts) -> bool:
    """`def handler(event, context)`, `def lambda_handler(e, c)`, `def process(evt, ctx)`."""
    if not function.module_level or function.is_method:
        return False
    return handler_shaped(function.name, function.params)


def handler_shaped(name: str, params: Sequence[str]) -> bool:
    """The name and parameters of a handler, wherever the function is defined."""
    if len(params) < 2:
        return False
    first, second = params[0].lower(), params[1].lower()
    if "event" in first and ("context" in second or "ctx" in second):
        return True
    return name in HANDLER_NAMES and len(params) == 2


@dataclass(frozen=True)
class ModuleFacts:
    module: str
    path: str
    # module-level names: imports resolve to Ref(qualname), assignments to their values
    globals: tuple[tuple[str, tuple[Sym, ...]], ...]
    functions: tuple[FunctionFacts, ...]
    classes: tuple[ClassFacts, ...]
    suppressions: tuple[Suppression, ...] = ()
    # stripped text of the lines where findings may start: fingerprints survive line shifts
    lines: tuple[tuple[int, str], ...] = ()
    # `if __name__ == "__main__":` at module level: a script, not (only) Lambda code
    main_guard: bool = False

    @property
    def relevant(self) -> bool:
        """Worth linking from the start: it may invoke, or it defines a handler. Other modules
        are linked only when something relevant reaches them."""
        return any(
            looks_like_handler(function) or any(may_invoke(site) for site in function.calls)
            for function in self.functions
        )


@dataclass(frozen=True)
class SourceError:
    """A file that could not be read or parsed."""

    path: str
    line: int | None
    message: str
