"""The state machine's permission to invoke its functions: exact ARNs, never prefixes.

SAM's `LambdaInvokePolicy: FunctionName: X` grants `function:X*`, so a name `*` (or an empty
one) grants every function of the account and `my-func` grants `my-func-admin` too. migrate
writes an explicit statement instead, one resource per function the machine calls.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass

# what Lambda accepts as a function's own name (the ARN's `function:` segment)
_FUNCTION_NAME = re.compile(r"[A-Za-z0-9_-]{1,64}")
_ARN_PREFIX = "arn:${AWS::Partition}:lambda:${AWS::Region}:${AWS::AccountId}:function:"


class UnsafeFunctionName(ValueError):
    """A name that would grant more than one function (empty, a wildcard, not a Lambda name)."""


@dataclass(frozen=True)
class Callee:
    """A function the machine invokes, as the policy must name it."""

    display: str  # its name as the code gave it (`validate-payment`)
    logical_id: str | None  # the template resource that declares it, when one does
    qualified: bool = False  # invoked with a version or alias (`Qualifier=`, `name:alias`)


def refusal(name: str) -> str | None:
    """Why `name` cannot be granted exactly, or None when it can."""
    if not name:
        return "the name is empty (SAM would grant `function:*`, every function)"
    if "*" in name or "?" in name:
        return "the name has a wildcard (it would grant every function it matches)"
    if not _FUNCTION_NAME.fullmatch(name):
        return "it is not a Lambda function name (letters, digits, `-` and `_`, at most 64)"
    return None


def invoke_resources(callees: Iterable[Callee]) -> list[str]:
    """The YAML of each resource `lambda:InvokeFunction` is granted on, sorted and without
    duplicates: `!GetAtt X.Arn` for a function of the template, the exact ARN of any other
    (`${AWS::Partition}`, region and account of the stack), and `…:*` beside it when the
    machine invokes it with a qualifier."""
    resources: list[str] = []
    for callee in callees:
        if callee.logical_id is not None:
            resources.append(f"!GetAtt {callee.logical_id}.Arn")
            if callee.qualified:
                resources.append(f'!Sub "${{{callee.logical_id}.Arn}}:*"')
            continue
        why = refusal(callee.display)
        if why is not None:
            raise UnsafeFunctionName(
                f"refusing to grant lambda:InvokeFunction on {callee.display!r}: {why}; "
                "name the function exactly (or declare it in template.yaml)"
            )
        resources.append(f'!Sub "{_ARN_PREFIX}{callee.display}"')
        if callee.qualified:
            resources.append(f'!Sub "{_ARN_PREFIX}{callee.display}:*"')
    return sorted(dict.fromkeys(resources))


def invoke_statement(resources: list[str]) -> list[str]:
    """One policy (`- Statement: …` lines, relative indentation) granting the invokes."""
    if not resources:
        return []
    return [
        "- Statement:",
        "    - Effect: Allow",
        "      Action: lambda:InvokeFunction",
        "      Resource:",
        *(f"        - {resource}" for resource in resources),
    ]
