"""What becomes of the orchestrator's event sources when its steps move into a state machine.

A rule or schedule that invoked the orchestrator asynchronously (nobody reads what it returns)
can start the machine itself; an API, a queue or a stream needs the answer, or the failure, of
each run, so the orchestrator stays as a starter that waits for it. `decide` is pure: it gets
the orchestrator's `Events`, what else invokes or names it, and the machine the plan chose.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

# the properties a state machine's event of the same type accepts (SAM 1.115): an event that
# uses another one (a function Schedule's `RuleName`, a rule's `Enabled`) stays where it is
_MOVABLE: dict[str, frozenset[str]] = {
    "Schedule": frozenset(
        {"DeadLetterConfig", "Description", "Enabled", "Input", "Name", "RetryPolicy"}
        | {"Schedule", "State"}
    ),
    "ScheduleV2": frozenset(
        {"DeadLetterConfig", "Description", "EndDate", "FlexibleTimeWindow", "GroupName"}
        | {"Input", "KmsKeyArn", "Name", "OmitName", "PermissionsBoundary", "RetryPolicy"}
        | {"RoleArn", "ScheduleExpression", "ScheduleExpressionTimezone", "StartDate", "State"}
    ),
    "EventBridgeRule": frozenset(
        {"DeadLetterConfig", "EventBusName", "Input", "InputPath", "InputTransformer"}
        | {"Pattern", "RetryPolicy", "RuleName", "State", "Target"}
    ),
}
_MOVABLE["CloudWatchEvent"] = _MOVABLE["EventBridgeRule"]

LAMBDA_MAX_MS = 15 * 60 * 1000  # the longest a starter can wait for an execution

# callers that wait for the answer: the response of an API, the batch's fate of a poller
_ANSWERED = {"Api": "API Gateway", "HttpApi": "API Gateway (HTTP API)"}
_POLLED = {
    "SQS": "SQS",
    "Kinesis": "Kinesis",
    "DynamoDB": "the DynamoDB stream",
    "MSK": "MSK",
    "MQ": "Amazon MQ",
    "SelfManagedKafka": "Kafka",
    "DocumentDB": "the DocumentDB stream",
}


@dataclass(frozen=True)
class Event:
    """One entry of the orchestrator's `Events:`."""

    name: str
    kind: str  # its `Type`
    properties: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Invoker:
    """Code of the tree, or a resource or output of the template, that reaches the orchestrator
    other than through its events."""

    where: str  # `billing/app.py:14` or `template Outputs.NightlyReportFunctionArn`
    reads_answer: bool  # a synchronous invoke (or unknown); False for `InvocationType="Event"`
    in_template: bool = False  # a resource or output that names the function
    role_only: bool = False  # it names only the function's implicit role (`<Function>Role`)

    def why(self) -> str:
        if self.role_only:
            # nobody calls a function through its role, but the role goes with the function
            return "names its implicit role, which would go with the function"
        if self.in_template:
            return "names the function" + (
                ": whoever calls it may read its answer" if self.reads_answer else ""
            )
        return "invokes it and reads its answer" if self.reads_answer else "invokes it"


@dataclass(frozen=True)
class Choice:
    event: str  # the event's name, or `` for the orchestrator as a whole
    moves: bool  # the event moves to the state machine
    line: str  # what migrate says and plan notes


@dataclass(frozen=True)
class Decision:
    machine_type: str  # "Express" or "Standard": may differ from the plan's when a caller waits
    # how the starter runs the machine: "sync" (StartSyncExecution), "async" (StartExecution,
    # answers with the ARN), "wait" (StartExecution, then waits for the end: Standard with a
    # caller that needs the answer or the failure)
    mode: str
    keep_starter: bool
    choices: tuple[Choice, ...]
    moved: tuple[Event, ...] = ()  # to the machine, as they are
    s3_moved: tuple[Event, ...] = ()  # to the machine, through EventBridge

    def lines(self) -> list[str]:
        return [choice.line for choice in self.choices]


def decide(
    events: Iterable[Event],
    machine_type: str,
    express_blockers: Iterable[str] = (),
    *,
    reads_event: bool = False,
    invokers: Iterable[Invoker] = (),
    function_url: bool = False,
    unmovable: Mapping[str, str] | None = None,
    execution_ms: float | None = None,
) -> Decision:
    """Each event's fate, the machine type and how the starter (if any) runs it."""
    events = list(events)
    invokers = list(invokers)
    blockers = list(express_blockers)
    readers = [i for i in invokers if i.reads_answer]
    choices: list[Choice] = []
    moved: list[Event] = []
    s3_moved: list[Event] = []
    waiting: list[str] = []  # who waits for each run's answer or failure
    stays: list[str] = []  # events left on the starter

    for event in events:
        if event.kind in _MOVABLE or event.kind == "S3":
            why = (unmovable or {}).get(event.name) or _why_not_moved(event, readers, reads_event)
            if why is None:
                (s3_moved if event.kind == "S3" else moved).append(event)
                choices.append(Choice(event.name, True, _moved_line(event)))
                continue
            line = f"{_label(event)} stays on the starter: {why}"
        elif event.kind in _ANSWERED:
            waiting.append(f"{_label(event)} ({_ANSWERED[event.kind]} returns its answer)")
            line = (
                f"{_label(event)} stays on the starter, which returns the execution's output "
                '(the API\'s response, never {"executionArn": …})'
            )
        elif event.kind in _POLLED:
            batch = "ReportBatchItemFailures" in str(event.properties.get("FunctionResponseTypes"))
            waiting.append(f"{_label(event)} ({_POLLED[event.kind]} acts on each batch's result)")
            line = f"{_label(event)} stays on the starter, which " + (
                "returns the machine's output, the batchItemFailures the handler returned "
                "(ReportBatchItemFailures), and raises when the execution fails"
                if batch
                else "raises when the execution fails, so the batch is retried and reaches its "
                "dead-letter queue as before"
            )
        else:
            line = (
                f"{_label(event)} stays on the starter: a SAM state machine has no "
                f"{event.kind} event"
            )
        stays.append(event.name)
        choices.append(Choice(event.name, False, line))
    if function_url:
        waiting.append("its function URL (the HTTP caller gets the answer)")
    # a template reference may or may not call the function: it keeps the starter, but only a
    # caller known to wait makes the machine Express or the starter wait
    waiting += [f"{r.where} ({r.why()})" for r in readers if not r.in_template]

    mode = "sync" if machine_type == "Express" else "async"
    if waiting and machine_type == "Standard":
        if not blockers:
            machine_type, mode = "Express", "sync"
            choices.append(
                Choice(
                    "",
                    False,
                    "Express, not the Standard the estimate prefers: "
                    + "; ".join(waiting)
                    + " waits for each run, which StartSyncExecution answers (a Standard start "
                    'answers only {"executionArn": …})',
                )
            )
        elif execution_ms is not None and execution_ms >= LAMBDA_MAX_MS:
            # nothing can wait that long: say what the callers get instead
            choices.append(
                Choice(
                    "",
                    False,
                    f"Standard ({blockers[0]}): an execution outlasts the 15 minutes a Lambda "
                    'can wait, so the starter answers {"executionArn": …} at once and a '
                    "failed execution no longer fails the invocation: review "
                    + "; ".join(waiting)
                    + " (poll the execution, or let its last state report the result)",
                )
            )
        else:
            mode = "wait"
            choices.append(
                Choice(
                    "",
                    False,
                    f"Standard ({blockers[0]}): the starter starts the machine and waits for its "
                    "end, for " + "; ".join(waiting) + "; the function's Timeout must cover the "
                    "execution (a Lambda runs at most 15 minutes, API Gateway waits 29 seconds)",
                )
            )
    keep = bool(stays or invokers or function_url or not events)
    if not keep:
        choices.append(
            Choice(
                "",
                True,
                "the orchestrator function leaves the template (every event moved, nothing else "
                "invokes it); its code stays, rewritten as a starter that nothing deploys",
            )
        )
    elif invokers or function_url:
        others = [f"{i.where} ({i.why()})" for i in invokers]
        others += ["its function URL"] if function_url else []
        choices.append(
            Choice("", False, "the orchestrator stays as a starter for " + "; ".join(others))
        )
    return Decision(machine_type, mode, keep, tuple(choices), tuple(moved), tuple(s3_moved))


def _label(event: Event) -> str:
    return f"{event.kind} event {event.name}"


def _why_not_moved(event: Event, readers: list[Invoker], reads_event: bool) -> str | None:
    if readers:
        return f"{readers[0].where} {readers[0].why()}"
    if event.kind == "S3":
        if reads_event:
            return (
                "the handler reads its event (an S3 notification, `Records`); through "
                "EventBridge the machine would get an Object Created event instead "
                "(`detail.bucket`, `detail.object`), so the starter starts it with the "
                "notification as it is"
            )
        rule = s3_rule(event)
        return rule if isinstance(rule, str) else None
    unknown = set(event.properties) - _MOVABLE[event.kind]
    if unknown:
        return (
            f"a state machine's {event.kind} event has no {', '.join(sorted(unknown))}: "
            "move it by hand"
        )
    return None


def _moved_line(event: Event) -> str:
    if event.kind == "S3":
        return (
            f"{_label(event)} moves to the state machine: the bucket sends its events to "
            "EventBridge and an EventBridgeRule (source aws.s3, the bucket's name) starts the "
            "machine (the handler read nothing of the notification)"
        )
    return (
        f"{_label(event)} moves to the state machine: it starts an execution with the event "
        "the function got (nobody reads what an asynchronous invoke returns)"
    )


# resources that name a function only to watch it: they never call it
_WATCHERS = ("AWS::Logs::", "AWS::CloudWatch::")


def references(document: Any, logical: str) -> list[Invoker]:
    """The resources and outputs of a template (a `cfn_load`ed dict) that name `logical` or
    its implicit role (`!Ref`, `!GetAtt`, `${X}` / `${X.Arn}` in a `!Sub`, `DependsOn`). An
    output or another resource may call it and read its answer, as far as anyone knows; a log
    group or an alarm does not, nor does what names only the role (it keeps the function, which
    its role goes with, but calls nothing)."""
    if not isinstance(document, dict):
        return []
    names = {logical, f"{logical}Role"}
    found = []
    for section in ("Resources", "Outputs"):
        entries = document.get(section)
        for key, value in entries.items() if isinstance(entries, dict) else ():
            if section == "Resources" and key == logical:
                continue
            if _mentions(value, names):
                kind = value.get("Type", "") if isinstance(value, dict) else ""
                watcher = isinstance(kind, str) and kind.startswith(_WATCHERS)
                role_only = not _mentions(value, {logical})  # `sam init`'s role ARN output
                found.append(
                    Invoker(
                        f"template {section}.{key}",
                        not watcher and not role_only,
                        in_template=True,
                        role_only=role_only,
                    )
                )
    return found


def _mentions(value: Any, names: set[str]) -> bool:
    if isinstance(value, dict):
        for key, inner in value.items():
            # a list (`DependsOn: [A, B]`) or a mapping is no name: compared, it is not hashed
            if key == "Ref" and isinstance(inner, str) and inner in names:
                return True
            if key == "Fn::GetAtt":
                target = inner[0] if isinstance(inner, list) and inner else inner
                if isinstance(target, str) and target.split(".", 1)[0] in names:
                    return True
            if key == "Fn::Sub":
                text = inner[0] if isinstance(inner, list) and inner else inner
                if isinstance(text, str) and any(
                    f"${{{n}}}" in text or f"${{{n}." in text for n in names
                ):
                    return True
            if key == "DependsOn" and (
                (isinstance(inner, str) and inner in names)
                or (
                    isinstance(inner, list) and any(d in names for d in inner if isinstance(d, str))
                )
            ):
                return True
            if _mentions(inner, names):
                return True
        return False
    if isinstance(value, list):
        return any(_mentions(item, names) for item in value)
    return False


def events_of(document: Any, logical: str) -> list[Event]:
    """The `Events:` of resource `logical` in a `cfn_load`ed template."""
    resources = document.get("Resources") if isinstance(document, dict) else None
    resource = resources.get(logical) if isinstance(resources, dict) else None
    props = resource.get("Properties") if isinstance(resource, dict) else None
    events = props.get("Events") if isinstance(props, dict) else None
    if not isinstance(events, dict):
        return []
    found = []
    for name, event in events.items():
        if isinstance(event, dict):
            properties = event.get("Properties")
            found.append(
                Event(
                    str(name),
                    str(event.get("Type", "")),
                    properties if isinstance(properties, dict) else {},
                )
            )
    return found


def has_function_url(document: Any, logical: str) -> bool:
    resources = document.get("Resources") if isinstance(document, dict) else None
    resource = resources.get(logical) if isinstance(resources, dict) else None
    props = resource.get("Properties") if isinstance(resource, dict) else None
    return isinstance(props, dict) and "FunctionUrlConfig" in props


_S3_DETAIL_TYPES = {"s3:ObjectCreated:*": "Object Created", "s3:ObjectRemoved:*": "Object Deleted"}


@dataclass(frozen=True)
class S3Rule:
    """An S3 event's EventBridge pattern: the bucket, the detail types, a key matcher."""

    bucket: str  # the bucket's logical id
    detail_types: tuple[str, ...]
    key: tuple[str, str] | None  # ("prefix" | "suffix" | "wildcard", value)


def s3_rule(event: Event) -> S3Rule | str:
    """The EventBridge form of an S3 event, or why it has none here."""
    props = event.properties
    unknown = set(props) - {"Bucket", "Events", "Filter"}
    if unknown:
        return f"its {', '.join(sorted(unknown))} have no EventBridge form here"
    bucket = props.get("Bucket")
    if not (isinstance(bucket, dict) and isinstance(bucket.get("Ref"), str)):
        return "its Bucket is not a `!Ref` to a bucket of the template"
    kinds = props.get("Events")
    kinds = [kinds] if isinstance(kinds, str) else kinds
    if not isinstance(kinds, list) or not kinds:
        return "it names no S3 event type"
    types = []
    for kind in kinds:
        if kind not in _S3_DETAIL_TYPES:
            return (
                f"{kind} has no EventBridge detail type here "
                "(only s3:ObjectCreated:* and s3:ObjectRemoved:*)"
            )
        types.append(_S3_DETAIL_TYPES[kind])
    key = None
    rules = (
        props.get("Filter", {}).get("S3Key", {}).get("Rules")
        if isinstance(props.get("Filter"), dict)
        else None
    )
    if "Filter" in props and not isinstance(rules, list):
        return "its Filter is not an S3Key rule list"
    if rules:
        named = {}
        for rule in rules:
            if not isinstance(rule, dict) or not isinstance(rule.get("Value"), str):
                return "its Filter rules are not plain prefix / suffix values"
            named[str(rule.get("Name", "")).lower()] = rule["Value"]
        if set(named) - {"prefix", "suffix"} or any("*" in v or "?" in v for v in named.values()):
            return "its Filter rules are not plain prefix / suffix values"
        if len(named) == 2:
            key = ("wildcard", f"{named['prefix']}*{named['suffix']}")
        else:
            ((name, value),) = named.items()
            key = (name, value)
    return S3Rule(bucket["Ref"], tuple(dict.fromkeys(types)), key)
