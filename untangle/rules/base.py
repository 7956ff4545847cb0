"""What every rule is: an id, a slug, a one-line summary, a long explanation, and examples.

A rule reads the linked `Program` and yields `RawFinding`s; the engine attributes them to
handlers, applies suppressions and fingerprints them. `VALID` / `INVALID` examples are the rule's
tests and its documentation (`untangle explain ID`).
"""

from __future__ import annotations

import inspect
from collections.abc import Iterator
from dataclasses import dataclass
from typing import ClassVar

from untangle.analysis.patterns import function_name_from_arn
from untangle.analysis.program import InvokeSite, Program
from untangle.analysis.values import ConstV, Env, OwnName, Values
from untangle.facts.model import Span


@dataclass(frozen=True)
class RawFinding:
    rule: str
    function: str
    span: Span
    message: str
    target: str | None = None
    # the invoke the finding is about: its target is worked out again for each handler
    invoke: InvokeSite | None = None
    # the handlers it concerns, where not every handler that reaches the code
    handlers: tuple[str, ...] | None = None


class Rule:
    id: ClassVar[str]
    name: ClassVar[str]
    summary: ClassVar[str]
    # only reported on a handler's path (otherwise reported wherever found)
    needs_handler: ClassVar[bool] = False
    VALID: ClassVar[list[str]] = []
    INVALID: ClassVar[list[str]] = []

    @classmethod
    def explanation(cls) -> str:
        return inspect.cleandoc(cls.__doc__ or "")

    def check(self, program: Program) -> Iterator[RawFinding]:
        raise NotImplementedError


def target_of(site: InvokeSite, values: Values | None = None) -> str | None:
    """The invoked function's name when it is known: a literal (ARN prefix and qualifier
    stripped), `$VAR` for an environment variable, `(itself)` for self-invocation. `values`:
    what `FunctionName` can be on one handler's paths (default: on all of them)."""
    names: set[str] = set()
    if values is None:
        values = site.kwargs.get("FunctionName", frozenset())
    for value in values:
        if isinstance(value, ConstV) and isinstance(value.value, str):
            names.add(function_name_from_arn(value.value))
        elif isinstance(value, Env):
            names.add(f"${value.name}")
        elif isinstance(value, OwnName):
            names.add("(itself)")
    if not names:
        return None
    return " | ".join(sorted(names))


def shape_note(site: InvokeSite) -> str:
    """Said where the client was recognised by the call's shape, not traced to boto3."""
    return "; the client recognised by its shape" if site.by_shape else ""


def describe_target(site: InvokeSite) -> str:
    target = target_of(site)
    return f"`{target}`" if target else "a Lambda function"


def seconds_text(seconds: float | None) -> str:
    if seconds is None:
        return "an unknown time"
    if seconds >= 3600 and seconds % 3600 == 0:
        return f"{int(seconds // 3600)} h"
    if seconds >= 60 and seconds % 60 == 0:
        return f"{int(seconds // 60)} min"
    if float(seconds).is_integer():
        return f"{int(seconds)} s"
    return f"{seconds:g} s"
