"""Abstract values: what a symbolic expression can be at run time, as far as untangle cares."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Union


@dataclass(frozen=True)
class LambdaClient:
    """A boto3 / botocore / aiobotocore client for the `lambda` service."""

    # recognised by its shape (`anything.client("lambda")`), not by tracing it to boto3
    by_shape: bool = False


@dataclass(frozen=True)
class OtherClient:
    service: str | None


@dataclass(frozen=True)
class Session:
    flavour: str  # "boto3" | "botocore" | "aio"


@dataclass(frozen=True)
class Func:
    qualname: str


@dataclass(frozen=True)
class Class:
    qualname: str


@dataclass(frozen=True)
class Instance:
    qualname: str


@dataclass(frozen=True)
class Method:
    """A function of the scanned tree bound to an instance (`self.client.call`)."""

    cls: str
    func: str


@dataclass(frozen=True)
class Module:
    name: str


@dataclass(frozen=True)
class Extern:
    """A name from outside the scanned tree: `boto3.client`, `time.sleep`, `os.environ`."""

    qualname: str


@dataclass(frozen=True)
class Bound:
    """An attribute of a client or session: `lambda_client.invoke`, `session.client`."""

    receiver: Value
    name: str


@dataclass(frozen=True)
class ConstV:
    value: str | int | float | bool | None


@dataclass(frozen=True)
class Env:
    """The value of an environment variable."""

    name: str


@dataclass(frozen=True)
class LambdaContext:
    """The `context` argument a handler receives."""


@dataclass(frozen=True)
class LambdaEvent:
    """The `event` argument a handler receives."""


@dataclass(frozen=True)
class OwnName:
    """The running function's own name or ARN (`context.function_name`)."""


@dataclass(frozen=True)
class DictV:
    items: tuple[tuple[str, frozenset[Value]], ...]


Value = Union[
    LambdaClient,
    OtherClient,
    Session,
    Func,
    Class,
    Instance,
    Method,
    Module,
    Extern,
    Bound,
    ConstV,
    Env,
    LambdaContext,
    LambdaEvent,
    OwnName,
    DictV,
]

Values = frozenset[Value]
NOTHING: Values = frozenset()


def sort_key(value: Value) -> str:
    """A text that orders values the same way in every run (a frozenset's iteration order
    depends on the hash seed): for picking among values, or keeping a bounded few."""
    if isinstance(value, DictV):
        items = (
            f"{key!r}: {{{', '.join(sorted(sort_key(v) for v in values))}}}"
            for key, values in value.items
        )
        return f"DictV({', '.join(items)})"
    if isinstance(value, Bound):
        return f"Bound({sort_key(value.receiver)}, {value.name!r})"
    return repr(value)


def ordered(values: Iterable[Value]) -> list[Value]:
    """`values` in an order that does not depend on the hash seed."""
    return sorted(values, key=sort_key)
