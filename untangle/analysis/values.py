"""Abstract values: what a symbolic expression can be at run time, as far as untangle cares."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Union


@dataclass(frozen=True)
class LambdaClient:
    """A boto3 / botocore / aiobotocore client for the `lambda` service."""


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
