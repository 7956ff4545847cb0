"""Reading an Amazon States Language definition (a JSON-loaded dict): shared by the renderers.

Nothing here validates a definition; every accessor tolerates missing or mistyped fields so that
a diagram or an estimate can still be produced for a half-written state machine.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any, TypeGuard

Json = Mapping[str, Any]

# Lambda's and Express workflows' hard limits, used by both renderers' annotations.
LAMBDA_MAX_SECONDS = 15 * 60
EXPRESS_MAX_SECONDS = 5 * 60
INLINE_MAP_MAX_CONCURRENCY = 40
DISTRIBUTED_MAP_MAX_CONCURRENCY = 10_000


def obj(value: Any) -> Json:
    """`value` if it is a JSON object, else an empty one."""
    return value if isinstance(value, Mapping) else {}


def states(scope: Json) -> dict[str, Json]:
    """The `States` of a state machine, a Parallel branch or a Map processor."""
    raw = obj(scope.get("States"))
    return {str(name): obj(state) for name, state in raw.items()}


def start_at(scope: Json) -> str | None:
    value = scope.get("StartAt")
    return value if isinstance(value, str) else None


def kind(state: Json) -> str:
    value = state.get("Type")
    return value if isinstance(value, str) else "?"


def is_expression(value: Any) -> bool:
    """A JSONata expression string, `{% ... %}`."""
    return isinstance(value, str) and value.startswith("{%") and value.endswith("%}")


def expression(value: str) -> str:
    """The text of a JSONata expression without its `{% %}` delimiters."""
    return value[2:-2].strip() if is_expression(value) else value


def show(value: Any) -> str:
    """A field value as a short human-readable string (expressions without delimiters)."""
    if isinstance(value, str):
        return expression(value)
    if is_number(value):
        return number(value)
    return json.dumps(value, ensure_ascii=False, sort_keys=True)


def number(value: float) -> str:
    """2.0 -> "2", 1.5 -> "1.5"."""
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def is_number(value: Any) -> TypeGuard[int | float]:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


def duration(seconds: float) -> str:
    """86400 -> "24 h", 90 -> "90 s", 300 -> "5 min", 259200 -> "3 d"."""
    if seconds >= 2 * 86400 and seconds % 86400 == 0:
        return f"{number(seconds / 86400)} d"
    if seconds >= 3600 and seconds % 3600 == 0:
        return f"{number(seconds / 3600)} h"
    if seconds >= 120 and seconds % 60 == 0:
        return f"{number(seconds / 60)} min"
    return f"{number(seconds)} s"


# --- Task targets ---------------------------------------------------------------------------

_SUBSTITUTION = re.compile(r"^\$\{([^}]*)\}$")
_FUNCTION_ARN = re.compile(r"(?:^|:)function:([^:]+)")


def _function_display(value: Any) -> str | None:
    """`${ValidatePaymentFunctionArn}` -> `ValidatePayment`; an ARN -> the function's name."""
    if not isinstance(value, str) or not value:
        return None
    if is_expression(value):
        return expression(value)
    sub = _SUBSTITUTION.match(value)
    if sub:
        inner = sub.group(1).split(".")[0]  # ${Fn.Arn} style
        for suffix in ("Arn", "Function"):
            if inner.endswith(suffix) and len(inner) > len(suffix):
                inner = inner[: -len(suffix)]
        return inner or value
    arn = _FUNCTION_ARN.search(value)
    if arn:
        return arn.group(1)
    return value.split(":")[0] if ":" in value and not value.startswith("$") else value


def lambda_function(state: Json) -> str | None:
    """The Lambda function a Task invokes, as shown in diagrams and keyed in cost inputs.

    `arn:aws:states:::lambda:invoke` takes it from `Arguments.FunctionName` (JSONata) or
    `Parameters.FunctionName` / `Parameters["FunctionName.$"]` (JSONPath); a Lambda ARN (or a
    `${...}` substitution) in `Resource` names it directly.
    """
    if kind(state) != "Task":
        return None
    resource = state.get("Resource")
    if not isinstance(resource, str):
        return None
    if ":states:::lambda:invoke" in resource:
        for field in ("Arguments", "Parameters"):
            args = obj(state.get(field))
            for key in ("FunctionName", "FunctionName.$"):
                shown = _function_display(args.get(key))
                if shown:
                    return shown
        return "lambda"
    if _FUNCTION_ARN.search(resource) or _SUBSTITUTION.match(resource):
        return _function_display(resource)
    return None


def is_async_invoke(state: Json) -> bool:
    """A Lambda Task with `InvocationType: Event`: it returns once the function is queued."""
    for field in ("Arguments", "Parameters"):
        if obj(state.get(field)).get("InvocationType") == "Event":
            return True
    return False


def task_target(state: Json) -> str:
    """What a Task calls: a Lambda function's name, `sns:publish`, `aws-sdk:s3:getObject`, ..."""
    function = lambda_function(state)
    if function is not None:
        return function
    resource = state.get("Resource")
    if not isinstance(resource, str):
        return "?"
    if is_expression(resource):
        return expression(resource)
    marker = ":states:::"
    if marker in resource:
        return resource.split(marker, 1)[1]
    if ":activity:" in resource:
        return "activity " + resource.rsplit(":activity:", 1)[1]
    return resource


def integration_pattern(state: Json) -> str | None:
    """`sync` or `waitForTaskToken` for Tasks that wait beyond the call, else None."""
    resource = state.get("Resource")
    if kind(state) != "Task" or not isinstance(resource, str):
        return None
    if resource.endswith(".waitForTaskToken"):
        return "waitForTaskToken"
    if ".sync" in resource.rsplit(":", 1)[-1]:
        return "sync"
    return None


# --- Transitions ----------------------------------------------------------------------------


@dataclass(frozen=True)
class Transition:
    """One way out of a state. `target` is None for `End: true`."""

    kind: str  # "next" | "end" | "choice" | "default" | "catch"
    target: str | None
    label: str = ""


def catchers(state: Json) -> list[Json]:
    raw = state.get("Catch")
    return [obj(c) for c in raw] if isinstance(raw, list) else []


def retriers(state: Json) -> list[Json]:
    raw = state.get("Retry")
    return [obj(r) for r in raw] if isinstance(raw, list) else []


def choice_rules(state: Json) -> list[Json]:
    raw = state.get("Choices")
    return [obj(r) for r in raw] if isinstance(raw, list) else []


def error_list(catcher: Json) -> str:
    errors = catcher.get("ErrorEquals")
    if isinstance(errors, list) and errors:
        return ", ".join(str(e) for e in errors)
    return "?"


def transitions(state: Json) -> list[Transition]:
    """All transitions of a state in definition order: rules, Default, Next/End, then Catch."""
    out: list[Transition] = []
    if kind(state) == "Choice":
        for rule in choice_rules(state):
            target = rule.get("Next")
            if isinstance(target, str):
                out.append(Transition("choice", target, condition(rule)))
        default = state.get("Default")
        if isinstance(default, str):
            out.append(Transition("default", default, "otherwise"))
    nxt = state.get("Next")
    if isinstance(nxt, str) and kind(state) != "Choice":
        out.append(Transition("next", nxt))
    elif state.get("End") is True:
        out.append(Transition("end", None))
    for catcher in catchers(state):
        target = catcher.get("Next")
        if isinstance(target, str):
            out.append(Transition("catch", target, error_list(catcher)))
    return out


# --- Choice conditions ----------------------------------------------------------------------

_COMPARISONS: dict[str, str] = {}
for _prefix in ("String", "Numeric", "Timestamp", "Boolean"):
    for _suffix, _op in (
        ("Equals", "=="),
        ("LessThan", "<"),
        ("GreaterThan", ">"),
        ("LessThanEquals", "<="),
        ("GreaterThanEquals", ">="),
    ):
        if _prefix == "Boolean" and _suffix != "Equals":
            continue
        _COMPARISONS[_prefix + _suffix] = _op
_COMPARISONS["StringMatches"] = "matches"

_TESTS = {
    "IsNull": ("is null", "is not null"),
    "IsPresent": ("is present", "is absent"),
    "IsNumeric": ("is numeric", "is not numeric"),
    "IsString": ("is a string", "is not a string"),
    "IsBoolean": ("is a boolean", "is not a boolean"),
    "IsTimestamp": ("is a timestamp", "is not a timestamp"),
}


def condition(rule: Json) -> str:
    """A Choice rule's condition as an expression: `$.total > 1000`, `a and (b or c)`, ..."""
    if "Condition" in rule:  # JSONata
        return show(rule["Condition"])
    for combinator in ("And", "Or"):
        parts = rule.get(combinator)
        if isinstance(parts, list):
            joined = f" {combinator.lower()} ".join(_operand(obj(p)) for p in parts)
            return joined or "?"
    if "Not" in rule:
        return "not " + _operand(obj(rule["Not"]), strict=True)
    variable = show(rule.get("Variable", "?"))
    for key, value in rule.items():
        if key in _COMPARISONS:
            return f"{variable} {_COMPARISONS[key]} {json.dumps(value, ensure_ascii=False)}"
        if key.endswith("Path") and key[:-4] in _COMPARISONS:
            return f"{variable} {_COMPARISONS[key[:-4]]} {show(value)}"
        if key in _TESTS:
            positive, negative = _TESTS[key]
            return f"{variable} {positive if value is not False else negative}"
    rest = {k: v for k, v in rule.items() if k not in ("Next", "Comment", "Assign", "Output")}
    return show(rest) if rest else "?"


def _operand(rule: Json, strict: bool = False) -> str:
    """A nested condition, parenthesised when it is itself a compound (or for `not`)."""
    text = condition(rule)
    compound = "And" in rule or "Or" in rule or (strict and "Not" in rule)
    return f"({text})" if compound else text


# --- Retry ----------------------------------------------------------------------------------


def retry_summary(retrier: Json, times: str = "\u00d7") -> str:
    """`retry` + `times` + attempts, interval, backoff (+ max delay, jitter, errors if not all)."""
    attempts = retrier.get("MaxAttempts", 3)
    interval = retrier.get("IntervalSeconds", 1)
    backoff = retrier.get("BackoffRate", 2.0)
    rate = number(backoff) if is_number(backoff) else show(backoff)
    if attempts == 0:
        text = "no retry"
    else:
        text = f"retry {times}{show(attempts)}, {show(interval)} s, backoff {rate}"
    if "MaxDelaySeconds" in retrier:
        text += f", max {show(retrier['MaxDelaySeconds'])} s"
    if retrier.get("JitterStrategy") == "FULL":
        text += ", jitter"
    errors = error_list(retrier)
    listed = retrier.get("ErrorEquals")
    if isinstance(listed, list) and len(listed) > 1 and set(listed) <= _LAMBDA_TRANSIENT:
        errors = "Lambda service errors"  # the set AWS recommends retrying for lambda:invoke
    if errors != "States.ALL":
        text += f" on {errors}"
    return text


_LAMBDA_TRANSIENT = {
    "Lambda.ServiceException",
    "Lambda.AWSLambdaException",
    "Lambda.SdkClientException",
    "Lambda.ClientExecutionTimeoutException",
    "Lambda.TooManyRequestsException",
}


# --- Wait, Map, Parallel --------------------------------------------------------------------


def wait_seconds(state: Json) -> float | None:
    """A Wait's duration when it is a literal number of seconds, else None."""
    seconds = state.get("Seconds")
    return float(seconds) if is_number(seconds) else None


def wait_summary(state: Json) -> str:
    """`wait 24 h`, `wait $.waitTime s`, `wait until 2026-12-25T00:00:00Z`."""
    seconds = state.get("Seconds")
    if is_number(seconds):
        return f"wait {duration(float(seconds))}"
    if seconds is not None:
        return f"wait {show(seconds)} s"
    if "SecondsPath" in state:
        return f"wait {show(state['SecondsPath'])} s"
    for key in ("Timestamp", "TimestampPath"):
        if key in state:
            return f"wait until {show(state[key])}"
    return "wait"


def branches(state: Json) -> list[Json]:
    raw = state.get("Branches")
    return [obj(b) for b in raw] if isinstance(raw, list) and kind(state) == "Parallel" else []


def processor(state: Json) -> Json | None:
    """A Map's `ItemProcessor` (or legacy `Iterator`)."""
    if kind(state) != "Map":
        return None
    for key in ("ItemProcessor", "Iterator"):
        if isinstance(state.get(key), Mapping):
            return obj(state[key])
    return None


def is_distributed(state: Json) -> bool:
    config = obj(obj(state.get("ItemProcessor")).get("ProcessorConfig"))
    return config.get("Mode") == "DISTRIBUTED"


def map_execution_type(state: Json) -> str:
    """`STANDARD` or `EXPRESS`: how a Distributed Map runs its child executions."""
    config = obj(obj(processor(state)).get("ProcessorConfig"))
    value = config.get("ExecutionType")
    return value if isinstance(value, str) else "STANDARD"


def map_concurrency(state: Json) -> int | str | None:
    """An int (0 = unbounded), the path/expression it is read from, or None when not given."""
    value = state.get("MaxConcurrency")
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    if isinstance(value, str):
        return show(value)
    if "MaxConcurrencyPath" in state:
        return show(state["MaxConcurrencyPath"])
    return None


def map_items_source(state: Json) -> str | None:
    for key in ("ItemsPath", "Items"):
        if key in state:
            return show(state[key])
    reader = obj(state.get("ItemReader"))
    if isinstance(reader.get("Resource"), str):
        return "items from " + task_target({"Type": "Task", "Resource": reader["Resource"]})
    return None


def map_summary(state: Json) -> str:
    """`map over $.images, max 50 concurrent`."""
    text = "distributed map" if is_distributed(state) else "map"
    source = map_items_source(state)
    if source:
        text += f" over {source}"
    return f"{text}, {concurrency_summary(state)}"


def concurrency_summary(state: Json) -> str:
    """`max 50 concurrent`, `max $.limit concurrent` or `unbounded concurrency`."""
    concurrency = map_concurrency(state)
    if isinstance(concurrency, str) or (isinstance(concurrency, int) and concurrency > 0):
        return f"max {concurrency} concurrent"
    return "unbounded concurrency"


def walk(scope: Json) -> Iterator[tuple[str, Json]]:
    """Every state of a scope and of its nested Parallel branches and Map processors."""
    for name, state in states(scope).items():
        yield name, state
        for branch in branches(state):
            yield from walk(branch)
        inner = processor(state)
        if inner is not None:
            yield from walk(inner)


def order(scope: Json) -> list[str]:
    """A scope's state names, reachable ones first in flow order (Next before side exits)."""
    all_states = states(scope)
    seen: list[str] = []
    pending: list[str] = []
    first = start_at(scope)
    if first is not None and first in all_states:
        pending.append(first)
    while pending:
        name = pending.pop(0)
        while name not in seen and name in all_states:
            seen.append(name)
            outs = transitions(all_states[name])
            following = [t.target for t in outs if t.kind == "next" and t.target]
            pending.extend(t.target for t in outs if t.kind != "next" and t.target)
            if not following:
                break
            name = following[0]
    seen.extend(name for name in all_states if name not in seen)
    return seen
