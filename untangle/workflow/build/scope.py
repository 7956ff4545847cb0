"""What the builder works with while compiling one body: the values Python locals hold
(data expressions or things that are not data), fragments of the state graph, the scope of a
body, and the error a construct with no faithful translation raises."""

from __future__ import annotations

import ast
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from untangle.workflow.ir import (
    Expr,
    RetryRule,
)

if TYPE_CHECKING:
    pass


# a Map's MaxConcurrency when the code does not say (a pool's max_workers does)
DEFAULT_CONCURRENCY = 10


# what a value bound by a statement that could not be converted says: using it is no new reason
REFUSED = "which could not be converted"


class Unsupported(Exception):
    """A construct with no faithful translation: where it is, in the user's words, and what would
    make it convert (`hint`) where something would. `path` is set when the construct is in
    another file than the statement being compiled (a value made in the caller, say)."""

    def __init__(
        self,
        line: int,
        message: str,
        hint: str = "",
        path: str = "",
        *,
        compile_bodies: bool = False,
    ) -> None:
        super().__init__(message)
        self.line = line
        self.message = message
        self.hint = hint
        self.path = path
        # refused at its head, whatever its bodies hold: they are compiled for their own reasons
        self.compile_bodies = compile_bodies

    @property
    def secondary(self) -> bool:
        """Caused by an earlier refusal (a name that statement bound): not a reason of its own."""
        return REFUSED in self.message


@dataclass(frozen=True)
class Response:
    """An invoke's raw response; `["Payload"].read()` and `json.loads` lead to `payload`."""

    payload: Expr


@dataclass(frozen=True)
class Stream:
    payload: Expr


@dataclass(frozen=True)
class SelfRef:
    """`self` inside an inlined method of class `cls`."""

    cls: str


@dataclass(frozen=True)
class ObjectRef:
    """An object of a class of the tree made in the handler (`p = Pipeline(event["bucket"])`):
    what its `__init__` stored on `self`."""

    cls: str
    attrs: tuple[tuple[str, object], ...]


@dataclass(frozen=True)
class Pool:
    """A thread pool (`ThreadPoolExecutor(max_workers=n)`)."""

    workers: int


@dataclass(frozen=True)
class Opaque:
    """A value the workflow cannot carry; an error only if something uses it, unless it can be
    computed by a new single-purpose function (`extract`)."""

    line: int
    message: str
    extract: Callable[[], Expr] | None = field(default=None, compare=False, hash=False)
    # the file of `line`, stamped by the first `builder.value` that sees it
    path: str = field(default="", compare=False, hash=False)


@dataclass(frozen=True)
class FunctionOf(Opaque):
    """A function of the tree named as a value (`post(event, deposit)`, `op = deposit`): no data
    for the workflow, but a call through the name that holds it (`operation(entry)` inside the
    inlined helper) reaches this function, whatever other call sites of the helper pass."""

    qualname: str = ""


def function_of(qualname: str, line: int, text: str) -> FunctionOf:
    return FunctionOf(line, f"`{text}` (a function, not data)", qualname=qualname)


Value = Expr | Response | Stream | Opaque | SelfRef | Pool | ObjectRef
NOT_DATA = (Response, Stream, Opaque, SelfRef, Pool, ObjectRef)


# --- fragments --------------------------------------------------------------------------------

# an unconnected transition: (state name, slot) where slot is "next", "default", ("rule", i)
Exit = tuple[str, object]


@dataclass
class Fragment:
    start: str | None  # None: nothing was emitted; control falls through
    exits: list[Exit]


@dataclass
class PendingCatch:
    errors: tuple[str, ...]
    handler: ast.ExceptHandler
    tasks: list[str] = field(default_factory=list)
    # the `try` it belongs to, and the `raise` statements it catches (`caught_raise.py`): where
    # each goes on from, and the variable that holds the exception's message
    node: ast.Try | None = None
    raises: list[Exit] = field(default_factory=list)
    var: str = ""
    raised: list[tuple[int, str]] = field(default_factory=list)  # (line, class) of each raise
    envs: list[dict[str, Value]] = field(default_factory=list)  # the try's locals at each


@dataclass
class Scope:
    """What a compiled body is inside of: the function being compiled (inlined helpers get
    their own scope) and the try blocks around it."""

    env: dict[str, Value]
    path: str
    source_lines: list[str]
    returns: list[tuple[list[Exit], Value]] | None = None  # inlined helper: where returns go
    catches: list[PendingCatch] = field(default_factory=list)
    retry: tuple[RetryRule, ...] = ()
    # workflow variables of an inlined helper are prefixed, so two inlinings never share one
    prefix: str = ""
    # inside an unrolled loop: where each `break` goes on from, with the locals at that point
    breaks: list[tuple[Exit, dict[str, Value]]] | None = None
    # inside a loop body that can end a round early: where each `continue` goes on from
    continues: list[tuple[Exit, dict[str, Value]]] | None = None
    # inside a loop body: the lists from before the loop it collects into (`collectors.py`),
    # each a local of the iteration
    collectors: frozenset[str] = frozenset()
    # an inlined helper: the scope of the call (where a `raise` caught up there comes from)
    caller: Scope | None = field(default=None, compare=False, repr=False)
    # an inlined helper: the line of the call it was inlined for (what its arguments were)
    call_line: int = field(default=0, compare=False)

    def var(self, name: str) -> str:
        return f"{self.prefix}{name}"


class NeedsData(Unsupported):
    """A part ASL cannot compute inside an expression that needs it as data: the whole
    expression may still run as a new function (`json.dumps({**order, "ok": True})`)."""


def to_expr(value: Value, line: int) -> Expr:
    if isinstance(value, Opaque) and value.extract is not None:
        return value.extract()
    if isinstance(value, (SelfRef, Pool, ObjectRef)):
        raise Unsupported(line, "the workflow would need an object, not data")
    if isinstance(value, Opaque):
        raise NeedsData(value.line, f"the workflow would need {value.message}", path=value.path)
    if isinstance(value, (Response, Stream)):
        return value.payload
    return value


def describe(value: Value) -> str:
    if isinstance(value, Opaque):
        return value.message
    return "the raw invoke response"


def raw_response_field(line: int, key: object) -> Opaque:
    """A field of an invoke's raw response other than Payload and StatusCode: no state holds it
    (a Task's result is the payload; a failed function is a Catch)."""
    hint = (
        ': `"FunctionError" in response`, `response.get("FunctionError")` or its '
        '`== "Unhandled"` becomes a Catch of the failed function'
        if key == "FunctionError"
        else ": only its Payload and StatusCode have a state to hold them"
    )
    shown = f"the `{key}`" if isinstance(key, str) else "a"
    return Opaque(line, f"{shown} field of the raw invoke response{hint}")
