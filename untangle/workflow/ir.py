"""The workflow IR: what an orchestrating handler does, as a graph of states over data
expressions. Frozen data between the stages: built from Python by `build`, rewritten by
`optimize`, printed by `to_text` (golden tests, `plan --format text`) and lowered to ASL by `asl`.
"""

from __future__ import annotations

import json
import re
from abc import ABC, abstractmethod
from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from enum import StrEnum
from typing import Generic, TypeVar, Union, assert_never

from untangle.facts.model import Span

# --- data expressions -------------------------------------------------------------------------

PathPart = Union[str, int]


@dataclass(frozen=True)
class Input:
    """The execution input (the handler's `event`) at `path`."""

    path: tuple[PathPart, ...] = ()


@dataclass(frozen=True)
class Var:
    """A workflow variable (a task's result, a loop item…) at `path`."""

    name: str
    path: tuple[PathPart, ...] = ()
    # "list": the whole variable holds a list (a new function's output), so its truth is its
    # length (a JSONPath Choice cannot tell an empty list from a full one)
    kind: str = field(default="", compare=False, hash=False, repr=False)


@dataclass(frozen=True)
class Result:
    """The result of the state whose `output` this is, at `path`: a Task's decoded payload, a
    Map's list of the items' results, a Parallel's list of the branches' results. Only in the
    `output` of the state that ends a branch (the `end_branches` pass makes it)."""

    path: tuple[PathPart, ...] = ()


@dataclass(frozen=True)
class Lit:
    """A JSON value."""

    value: object


@dataclass(frozen=True)
class Obj:
    items: tuple[tuple[str, Expr], ...]


@dataclass(frozen=True)
class Arr:
    items: tuple[Expr, ...]


class Operator(StrEnum):
    """The operations of `Op`. A value is the name printed IR shows for it (`expr_text`). Every
    backend dispatches on these with `match` and a final `assert_never`, so one that forgets a
    member fails mypy. Below, `a`, `b`: the arguments in order."""

    # comparisons, (a op b), each of two values: Python's meaning (== on JSON values)
    EQ = "=="
    NE = "!="
    LT = "<"
    LE = "<="
    GT = ">"
    GE = ">="
    # conditions: booleans of conditions (`and`/`or`: two or more; `not`: one)
    AND = "and"
    OR = "or"
    NOT = "not"
    # truthy(a): Python's bool(a), a condition
    TRUTHY = "truthy"
    # exists(a): the path a is present (`"k" in d`, `.get` tests)
    EXISTS = "exists"
    # is_null(a): a is None
    IS_NULL = "is_null"
    # arithmetic, (a op b)
    ADD = "+"
    SUB = "-"
    MUL = "*"
    DIV = "/"
    # a ** b: only while the builder folds constants (one left over is refused)
    POW = "**"
    # concat(a, …): str() of each argument, joined (f-strings, str(a))
    CONCAT = "concat"
    # json_string(a): json.dumps(a), Python's separators
    JSON_STRING = "json_string"
    # json_parse(a): json.loads(a)
    JSON_PARSE = "json_parse"
    # default(a, b): the path a if present, else b (`d.get(k, b)`)
    DEFAULT = "default"
    # count(a): len(a)
    COUNT = "count"
    # number(a): float(a) / int(a) of a string or number
    NUMBER = "number"
    # ceil(a): the whole number of seconds at or above a (JSONPath lowering of a Wait)
    CEIL = "ceil"
    # if(c, a, b): `a if c else b`, c a condition
    IF = "if"
    # comprehension(items, Lit(name), element, condition): `[element for name in items if
    # condition]`, element and condition reading the item as Var(name)
    COMPREHENSION = "comprehension"
    # flatten(a): a list of lists joined into one list
    FLATTEN = "flatten"
    # items(d) / enumerate(a) / zip(a, b): the pairs a loop unpacks, as two-item lists
    # (`[[k, v] for k, v in d.items()]`, `[[i, x] for i, x in enumerate(a)]`, `zip(a, b)`)
    ITEMS = "items"
    ENUMERATE = "enumerate"
    ZIP = "zip"
    # chunks(a, Lit(n)): `[a[i:i + n] for i in range(0, len(a), n)]`, n a positive int (the
    # last chunk the short rest); chunks(a, Lit(n), Lit(True)): `[[i, a[i:i + n]] for i …]`
    CHUNKS = "chunks"
    # min(a, b, …) / max(a, b, …) of numbers
    MIN = "min"
    MAX = "max"
    # endswith(text, Lit(suffix)) / startswith(text, Lit(prefix)): str.endswith / startswith
    ENDSWITH = "endswith"
    STARTSWITH = "startswith"
    # join(a, Lit(sep)): sep.join(a)
    JOIN = "join"
    # upper(a) / lower(a) / trim(a): str.upper(), str.lower(), str.strip()
    UPPER = "upper"
    LOWER = "lower"
    TRIM = "trim"
    # env(Lit(name)): the environment variable `name` (a deploy-time substitution)
    ENV = "env"


@dataclass(frozen=True)
class Op:
    """An operation on values: see `Operator` for each one's arguments."""

    op: Operator
    args: tuple[Expr, ...]

    def __post_init__(self) -> None:
        # Op("==", …) from code mypy does not check (tests): the member, or a ValueError
        object.__setattr__(self, "op", Operator(self.op))


Expr = Union[Input, Var, Result, Lit, Obj, Arr, Op]

COMPARISONS = (Operator.EQ, Operator.NE, Operator.LT, Operator.LE, Operator.GT, Operator.GE)
# operations whose value is always a boolean (a Choice rule can test them as they are)
BOOLEAN_OPERATORS = (
    *COMPARISONS,
    Operator.AND,
    Operator.OR,
    Operator.NOT,
    Operator.EXISTS,
    Operator.IS_NULL,
    Operator.TRUTHY,
)


def _comparisons() -> set[str]:
    ops = ("Equals", "LessThan", "GreaterThan", "LessThanEquals", "GreaterThanEquals")
    names = {f"{kind}{op}" for kind in ("String", "Numeric", "Timestamp") for op in ops}
    names |= {"BooleanEquals"}
    return names | {f"{name}Path" for name in names} | {"StringMatches"}


# Every field name of the Amazon States Language (machine, states, Choice rules, Map and Parallel,
# Retry and Catch, JSONata): no state is named like one (`state_name`). asl-validator finds
# fields by searching the whole definition (`$..Next`), so a state named Next, Default, StartAt,
# States, Branches or Iterator makes it reject (or crash on) a valid machine; the others would read
# as fields. tests/test_idioms.py checks this holds every property of asl-validator's schemas.
ASL_FIELDS = frozenset(
    {
        *("Comment", "StartAt", "States", "Version", "TimeoutSeconds", "QueryLanguage"),
        *("Type", "Next", "End", "InputPath", "OutputPath", "Parameters", "ResultPath"),
        *("ResultSelector", "Arguments", "Output", "Assign"),
        *("Resource", "TimeoutSecondsPath", "HeartbeatSeconds", "HeartbeatSecondsPath"),
        *("Retry", "Catch", "Credentials", "Result"),
        *("Seconds", "SecondsPath", "Timestamp", "TimestampPath"),
        *("Error", "ErrorPath", "Cause", "CausePath"),
        *("Choices", "Default", "Variable", "Condition", "And", "Or", "Not"),
        *("IsNull", "IsPresent", "IsNumeric", "IsString", "IsBoolean", "IsTimestamp"),
        *_comparisons(),
        "Branches",
        *("Items", "ItemsPath", "ItemProcessor", "ProcessorConfig", "Mode", "ExecutionType"),
        *("Iterator", "ItemSelector", "ItemReader", "ReaderConfig", "ItemBatcher", "BatchInput"),
        *("MaxItemsPerBatch", "MaxItemsPerBatchPath", "MaxInputBytesPerBatch"),
        *("MaxInputBytesPerBatchPath", "MaxItems", "MaxItemsPath", "ResultWriter"),
        *("MaxConcurrency", "MaxConcurrencyPath", "ToleratedFailurePercentage"),
        *("ToleratedFailurePercentagePath", "ToleratedFailureCount", "ToleratedFailureCountPath"),
        "Label",
        *("ErrorEquals", "IntervalSeconds", "MaxAttempts", "BackoffRate", "MaxDelaySeconds"),
        "JitterStrategy",
    }
)


def state_name(base: str) -> str:
    """A state name from `base`: an ASL field name gets a suffix (`Next` → `NextStep`), the
    rest stay as they are. Every maker of state names goes through it (the builder's `unique`,
    the passes')."""
    return f"{base}Step" if base in ASL_FIELDS else base


def pascal(text: str) -> str:
    """`send_email` → `SendEmail`: state names and `${…FunctionArn}` placeholders."""
    words = re.split(r"[^0-9A-Za-z]+", text)
    result = "".join(w[:1].upper() + w[1:] for w in words if w)
    if not result or result[0].isdigit():
        result = "Step" + result
    return result


def with_path(expr: Expr, part: PathPart) -> Expr | None:
    """`expr[part]`, when expr is a path; None otherwise."""
    if isinstance(expr, Input):
        return Input((*expr.path, part))
    if isinstance(expr, Var):
        return Var(expr.name, (*expr.path, part))
    if isinstance(expr, Result):
        return Result((*expr.path, part))
    if isinstance(expr, Obj) and isinstance(part, str):
        for key, value in expr.items:
            if key == part:
                return value
    if (
        isinstance(expr, Arr)
        and isinstance(part, int)
        and -len(expr.items) <= part < len(expr.items)
    ):
        return expr.items[part]
    return None


def variables(expr: Expr) -> Iterator[str]:
    """Names of the workflow variables an expression reads."""
    if isinstance(expr, Var):
        yield expr.name
    elif isinstance(expr, Obj):
        for _, value in expr.items:
            yield from variables(value)
    elif isinstance(expr, Arr):
        for item in expr.items:
            yield from variables(item)
    elif isinstance(expr, Op):
        for arg in expr.args:
            yield from variables(arg)


# --- states -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class FunctionRef:
    """An invoked function: how ASL names it (`${ValidatePaymentFunctionArn}`) and how a person
    does (`validate-payment`)."""

    placeholder: str
    display: str
    # chosen at run time: the expression that names it (its candidates are in the workflow)
    dynamic: Expr | None = None


@dataclass(frozen=True)
class RetryRule:
    errors: tuple[str, ...]
    interval: float
    max_attempts: int
    backoff: float
    max_delay: float | None = None
    jitter: bool = False


@dataclass(frozen=True)
class CatchRule:
    errors: tuple[str, ...]
    next: str
    # the error output ({"Error", "Cause"}) is stored in this variable, when the handler uses it
    assign: str | None = None
    # the original ignored the function's failure: carry on with its error payload as the result
    result: bool = False


@dataclass(frozen=True)
class Task:
    name: str
    function: FunctionRef
    payload: Expr
    assign: str | None  # variable that receives the function's (decoded) result
    next: str | None
    span: Span
    asynchronous: bool = False
    retry: tuple[RetryRule, ...] = ()
    catch: tuple[CatchRule, ...] = ()
    # synchronous, and the original never checked its FunctionError: it carried on with the
    # error payload as the result (the `carry_on` pass decides what the machine does)
    unchecked: bool = False
    path: str = ""  # the file of the invoke (a helper's, when inlined)
    # the version or alias invoked, and the ClientContext passed (the integration takes both)
    qualifier: Expr | None = None
    client_context: Expr | None = None
    # the state ends its branch (next is None) with this as the branch's result, in place of a
    # Succeed after it (the `end_branches` pass). It reads the variables as they were before the
    # state, and `Result` for what the state produced; a state with an output stores nothing
    # (no `assign`, no `values`): the branch ends there
    output: Expr | None = None


@dataclass(frozen=True)
class Choice:
    name: str
    rules: tuple[tuple[Expr, str], ...]
    default: str | None
    span: Span


@dataclass(frozen=True)
class Wait:
    name: str
    seconds: Expr | None
    timestamp: Expr | None
    next: str | None
    span: Span
    output: Expr | None = None  # as Task.output (a Wait has no Result)


@dataclass(frozen=True)
class Assign:
    """A Pass state that sets variables from expressions (simple shaping between steps)."""

    name: str
    values: tuple[tuple[str, Expr], ...]
    next: str | None
    span: Span
    output: Expr | None = None  # as Task.output (a Pass has no Result)


@dataclass(frozen=True)
class Succeed:
    name: str
    output: Expr
    span: Span


@dataclass(frozen=True)
class Fail:
    name: str
    error: str
    cause: Expr | None
    span: Span


@dataclass(frozen=True)
class Graph:
    start: str
    states: tuple[State, ...]

    def get(self, name: str) -> State:
        for state in self.states:
            if state.name == name:
                return state
        raise KeyError(name)


@dataclass(frozen=True)
class Map:
    name: str
    items: Expr
    item_var: str
    processor: Graph
    # per item, what the loop collected (None: nothing) and where the list goes
    collect: Expr | None
    assign: str | None
    max_concurrency: int
    next: str | None
    span: Span
    output: Expr | None = None  # as Task.output


@dataclass(frozen=True)
class Parallel:
    name: str
    branches: tuple[Graph, ...]
    # the variables each branch's result is stored in (None: not used)
    assign: tuple[str | None, ...]
    next: str | None
    span: Span
    reason: str = ""
    output: Expr | None = None  # as Task.output


State = Union[Task, Choice, Wait, Assign, Succeed, Fail, Map, Parallel]

T = TypeVar("T")


class StateVisitor(ABC, Generic[T]):
    """One method per kind of state: a backend that lacks one cannot be instantiated (mypy:
    "Cannot instantiate abstract class"). `visit` dispatches."""

    def visit(self, state: State) -> T:
        return visit_state(state, self)

    @abstractmethod
    def visit_task(self, state: Task) -> T: ...

    @abstractmethod
    def visit_choice(self, state: Choice) -> T: ...

    @abstractmethod
    def visit_wait(self, state: Wait) -> T: ...

    @abstractmethod
    def visit_assign(self, state: Assign) -> T: ...

    @abstractmethod
    def visit_succeed(self, state: Succeed) -> T: ...

    @abstractmethod
    def visit_fail(self, state: Fail) -> T: ...

    @abstractmethod
    def visit_map(self, state: Map) -> T: ...

    @abstractmethod
    def visit_parallel(self, state: Parallel) -> T: ...


def visit_state(state: State, visitor: StateVisitor[T]) -> T:
    """`visitor`'s method for the kind of `state` (exhaustive over `State`)."""
    match state:
        case Task():
            return visitor.visit_task(state)
        case Choice():
            return visitor.visit_choice(state)
        case Wait():
            return visitor.visit_wait(state)
        case Assign():
            return visitor.visit_assign(state)
        case Succeed():
            return visitor.visit_succeed(state)
        case Fail():
            return visitor.visit_fail(state)
        case Map():
            return visitor.visit_map(state)
        case Parallel():
            return visitor.visit_parallel(state)
        case _:
            assert_never(state)


@dataclass(frozen=True)
class Reason:
    """Why (part of) a handler was not converted, or a note on what changed."""

    path: str
    line: int
    message: str
    hint: str = ""  # what would make it convert, where something would

    def text(self) -> str:
        return f"{self.message}; to convert: {self.hint}" if self.hint else self.message


@dataclass(frozen=True)
class JsonTextNote(Reason):
    """`json.dumps(value)` of a value only the running machine knows: the state machine writes
    that text, not Python. `message` is the call as written; how the text differs from Python's
    depends on the query language, so `passes.word_json_texts` words the note once it is known."""


@dataclass(frozen=True)
class Extraction:
    """Local computation that becomes a new single-purpose function: `function(params) ->
    expression`, taken from `path:line` (assigned to `target` there, or run for its effect).

    A region of statements (`body`, lines `line`-`end_line`) returns its `outputs`: the one
    value itself, several as an object keyed by name, none: nothing."""

    function: str
    params: tuple[str, ...]
    expression: str
    path: str
    line: int
    target: str | None
    body: str = ""
    outputs: tuple[str, ...] = ()
    end_line: int = 0


@dataclass(frozen=True)
class Workflow:
    name: str
    handler: str
    path: str
    graph: Graph | None
    status: str  # "converted" | "partial" | "not_converted"
    reasons: tuple[Reason, ...] = ()
    notes: tuple[Reason, ...] = ()
    functions: tuple[FunctionRef, ...] = field(default=())
    extracted: tuple[Extraction, ...] = ()
    env_defaults: tuple[tuple[str, str], ...] = ()


# --- the text printer -------------------------------------------------------------------------


def expr_text(expr: Expr) -> str:
    if isinstance(expr, Input):
        return "event" + "".join(f"[{json.dumps(p)}]" for p in expr.path)
    if isinstance(expr, Var):
        return "$" + expr.name + "".join(f"[{json.dumps(p)}]" for p in expr.path)
    if isinstance(expr, Result):
        return "result" + "".join(f"[{json.dumps(p)}]" for p in expr.path)
    if isinstance(expr, Lit):
        return json.dumps(expr.value)
    if isinstance(expr, Obj):
        return "{" + ", ".join(f"{json.dumps(k)}: {expr_text(v)}" for k, v in expr.items) + "}"
    if isinstance(expr, Arr):
        return "[" + ", ".join(expr_text(i) for i in expr.items) + "]"
    match expr.op:
        case (
            Operator.EQ
            | Operator.NE
            | Operator.LT
            | Operator.LE
            | Operator.GT
            | Operator.GE
            | Operator.AND
            | Operator.OR
            | Operator.ADD
            | Operator.SUB
            | Operator.MUL
            | Operator.DIV
        ):
            return "(" + f" {expr.op} ".join(expr_text(a) for a in expr.args) + ")"
        case (
            Operator.POW
            | Operator.NOT
            | Operator.TRUTHY
            | Operator.EXISTS
            | Operator.IS_NULL
            | Operator.CONCAT
            | Operator.JSON_STRING
            | Operator.JSON_PARSE
            | Operator.DEFAULT
            | Operator.COUNT
            | Operator.NUMBER
            | Operator.CEIL
            | Operator.IF
            | Operator.COMPREHENSION
            | Operator.FLATTEN
            | Operator.ITEMS
            | Operator.ENUMERATE
            | Operator.ZIP
            | Operator.CHUNKS
            | Operator.MIN
            | Operator.MAX
            | Operator.ENDSWITH
            | Operator.STARTSWITH
            | Operator.JOIN
            | Operator.UPPER
            | Operator.LOWER
            | Operator.TRIM
            | Operator.ENV
        ):
            return f"{expr.op}(" + ", ".join(expr_text(a) for a in expr.args) + ")"
        case _:
            assert_never(expr.op)


def next_of(state: State) -> str | None:
    if isinstance(state, (Choice, Succeed, Fail)):
        return None
    return state.next


def output_of(state: State) -> Expr | None:
    """The output a state ends its branch with (`Task.output`; a Succeed's own)."""
    if isinstance(state, (Choice, Fail)):
        return None
    return state.output


def with_next(state: State, target: str | None) -> State:
    """The same state, continuing to `target` (None: the end)."""
    if isinstance(state, (Choice, Succeed, Fail)):
        return state
    return replace(state, next=target)


def successors(state: State) -> list[str]:
    if isinstance(state, Choice):
        found = [n for _, n in state.rules]
        return found + ([state.default] if state.default else [])
    if isinstance(state, (Succeed, Fail)):
        return []
    result = [state.next] if state.next else []
    if isinstance(state, Task):
        result += [c.next for c in state.catch]
    return result


def to_text(workflow: Workflow) -> str:
    """A canonical, line-oriented rendering: states in depth-first order from the start."""
    lines = [f"workflow {workflow.name} ({workflow.status})", f"  handler {workflow.handler}"]
    for reason in workflow.reasons:
        lines.append(f"  not converted: {reason.path}:{reason.line}: {reason.text()}")
    for note in workflow.notes:
        lines.append(f"  note: {note.path}:{note.line}: {note.message}")
    for item in workflow.extracted:
        if item.body:
            lines.append(
                f"  new function {item.function}({', '.join(item.params)}) -> "
                f"({', '.join(item.outputs)})  from {item.path}:{item.line}-{item.end_line}"
            )
            lines += [f"    | {line}" for line in item.body.splitlines()]
            continue
        lines.append(
            f"  new function {item.function}({', '.join(item.params)}) = {item.expression}"
            f"  from {item.path}:{item.line}"
        )
    if workflow.graph is not None:
        lines += _graph_text(workflow.graph, "  ")
    return "\n".join(lines) + "\n"


def all_states(graph: Graph) -> list[State]:
    """Every state of the graph, those inside Map and Parallel states included."""
    found: list[State] = []
    for state in graph.states:
        found.append(state)
        if isinstance(state, Map):
            found += all_states(state.processor)
        elif isinstance(state, Parallel):
            for branch in state.branches:
                found += all_states(branch)
    return found


def ordered(graph: Graph) -> list[State]:
    seen: set[str] = set()
    order: list[State] = []
    stack = [graph.start]
    while stack:
        name = stack.pop()
        if name in seen:
            continue
        seen.add(name)
        state = graph.get(name)
        order.append(state)
        stack.extend(reversed(successors(state)))
    return order


def _graph_text(graph: Graph, indent: str) -> list[str]:
    lines = [f"{indent}start {graph.start}"]
    printer = _StateText(indent)
    for state in ordered(graph):
        lines += printer.visit(state)
    return lines


class _StateText(StateVisitor[list[str]]):
    """The lines of one state (a Map's or Parallel's nested graphs included)."""

    def __init__(self, indent: str) -> None:
        self.indent = indent

    @staticmethod
    def _where(state: State) -> str:
        return f"  @{state.span.line}"

    @staticmethod
    def _end(state: State) -> str:
        target = next_of(state)
        if target:
            return f" -> {target}"
        output = output_of(state)
        return f" -> return {expr_text(output)}" if output is not None else " -> end"

    def visit_task(self, state: Task) -> list[str]:
        indent = self.indent
        mode = " async" if state.asynchronous else ""
        into = f" => ${state.assign}" if state.assign else ""
        alias = f":{expr_text(state.qualifier)}" if state.qualifier is not None else ""
        context = (
            f" context {expr_text(state.client_context)}"
            if state.client_context is not None
            else ""
        )
        lines = [
            f"{indent}{state.name}: task{mode} {state.function.display}{alias}"
            f"({expr_text(state.payload)}){context}{into}{self._end(state)}{self._where(state)}"
        ]
        for r in state.retry:
            lines.append(
                f"{indent}  retry {list(r.errors)} every {r.interval:g}s x{r.max_attempts}"
                f" backoff {r.backoff:g}"
                + (f" max {r.max_delay:g}s" if r.max_delay else "")
                + (" jitter" if r.jitter else "")
            )
        for c in state.catch:
            into = f" => ${c.assign}" if c.assign else ""
            lines.append(f"{indent}  catch {list(c.errors)}{into} -> {c.next}")
        return lines

    def visit_choice(self, state: Choice) -> list[str]:
        indent = self.indent
        lines = [f"{indent}{state.name}: choice{self._where(state)}"]
        for condition, target in state.rules:
            lines.append(f"{indent}  if {expr_text(condition)} -> {target}")
        lines.append(f"{indent}  else -> {state.default or 'end'}")
        return lines

    def visit_wait(self, state: Wait) -> list[str]:
        how = (
            f"seconds {expr_text(state.seconds)}"
            if state.seconds is not None
            else f"until {expr_text(state.timestamp) if state.timestamp else '?'}"
        )
        return [f"{self.indent}{state.name}: wait {how}{self._end(state)}{self._where(state)}"]

    def visit_assign(self, state: Assign) -> list[str]:
        sets = ", ".join(f"${k} = {expr_text(v)}" for k, v in state.values)
        return [f"{self.indent}{state.name}: set {sets}{self._end(state)}{self._where(state)}"]

    def visit_succeed(self, state: Succeed) -> list[str]:
        return [f"{self.indent}{state.name}: return {expr_text(state.output)}{self._where(state)}"]

    def visit_fail(self, state: Fail) -> list[str]:
        cause = f" {expr_text(state.cause)}" if state.cause is not None else ""
        return [f"{self.indent}{state.name}: fail {state.error}{cause}{self._where(state)}"]

    def visit_map(self, state: Map) -> list[str]:
        indent = self.indent
        collect = f" collect {expr_text(state.collect)}" if state.collect is not None else ""
        into = f" => ${state.assign}" if state.assign else ""
        lines = [
            f"{indent}{state.name}: map ${state.item_var} in {expr_text(state.items)}"
            f" max {state.max_concurrency}{collect}{into}{self._end(state)}{self._where(state)}"
        ]
        return lines + _graph_text(state.processor, indent + "    ")

    def visit_parallel(self, state: Parallel) -> list[str]:
        indent = self.indent
        lines = [f"{indent}{state.name}: parallel{self._end(state)}{self._where(state)}"]
        for index, branch in enumerate(state.branches):
            into = f" => ${state.assign[index]}" if state.assign[index] else ""
            lines.append(f"{indent}  branch {index + 1}{into}")
            lines += _graph_text(branch, indent + "    ")
        return lines
