"""An orchestrating handler (Python `ast` + the linked scan `Program`) → a `Workflow`.

The handler body is compiled statement by statement into states; Python locals become data
expressions over the execution input and workflow variables. Helpers that invoke are inlined
along the call graph. Anything that cannot be expressed faithfully is recorded as a `Reason`
with its `path:line`, and the handler is refused or partly converted: never a silently wrong
machine.
"""

from __future__ import annotations

import ast
import operator
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field, replace
from typing import TypeVar

from untangle.analysis.patterns import invocation
from untangle.analysis.program import InvokeSite, Program, SleepSite
from untangle.analysis.values import (
    Bound,
    ConstV,
    Env,
    Extern,
    Func,
    Instance,
    LambdaClient,
    Method,
    OtherClient,
    OwnName,
    Session,
)
from untangle.facts.model import Attr as AttrSym
from untangle.facts.model import Local as LocalSym
from untangle.facts.model import Ref, Span, Sym
from untangle.rules.base import function_name_from_arn
from untangle.workflow.ir import (
    Arr,
    Assign,
    CatchRule,
    Choice,
    Expr,
    Extraction,
    Fail,
    FunctionRef,
    Graph,
    Input,
    Lit,
    Map,
    Obj,
    Op,
    Operator,
    Parallel,
    Reason,
    RetryRule,
    State,
    Succeed,
    Task,
    Var,
    Wait,
    Workflow,
    next_of,
    with_next,
    with_path,
)
from untangle.workflow.ir import pascal as _pascal

SourceReader = Callable[[str], str]
FunctionNamer = Callable[[str], FunctionRef]

_LOGGING_PREFIXES = ("logging.", "builtins.print")
_BOTO_ERRORS = (
    "Lambda.ServiceException",
    "Lambda.AWSLambdaException",
    "Lambda.SdkClientException",
    "Lambda.TooManyRequestsException",
)
_DEFAULT_CONCURRENCY = 10
_MAX_UNROLLED = 10
# what the tasks of a retry-decorated helper carry until its rule is known (never emitted)
_PENDING_RETRY = RetryRule(("untangle.pending",), -1, 0, 1.0)
_STRING_METHODS = {"upper": Operator.UPPER, "lower": Operator.LOWER, "strip": Operator.TRIM}
_ARITHMETIC: dict[str, Callable[[float, float], object]] = {
    "<": operator.lt,
    "<=": operator.le,
    ">": operator.gt,
    ">=": operator.ge,
    "+": operator.add,
    "-": operator.sub,
    "*": operator.mul,
    "/": operator.truediv,
    "**": operator.pow,
}
_LOGGERS = ("logger", "log", "logging", "LOGGER", "LOG", "print")


class Unsupported(Exception):
    """A construct with no faithful translation; carries the line."""

    def __init__(self, line: int, message: str) -> None:
        super().__init__(message)
        self.line = line
        self.message = message


# --- values of Python locals while compiling ---------------------------------------------------


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


Value = Expr | Response | Stream | Opaque | SelfRef | Pool | ObjectRef
_NOT_DATA = (Response, Stream, Opaque, SelfRef, Pool, ObjectRef)


# --- fragments --------------------------------------------------------------------------------

# an unconnected transition: (state name, slot) where slot is "next", "default", ("rule", i)
Exit = tuple[str, object]


@dataclass
class Fragment:
    start: str | None  # None: nothing was emitted; control falls through
    exits: list[Exit]


@dataclass
class _Catch:
    errors: tuple[str, ...]
    handler: ast.ExceptHandler
    tasks: list[str] = field(default_factory=list)


@dataclass
class _Scope:
    """What a compiled body is inside of: the function being compiled (inlined helpers get
    their own scope) and the try blocks around it."""

    env: dict[str, Value]
    path: str
    source_lines: list[str]
    returns: list[tuple[list[Exit], Value]] | None = None  # inlined helper: where returns go
    catches: list[_Catch] = field(default_factory=list)
    retry: tuple[RetryRule, ...] = ()
    # workflow variables of an inlined helper are prefixed, so two inlinings never share one
    prefix: str = ""
    # inside an unrolled loop: where each `break` goes on from, with the locals at that point
    breaks: list[tuple[Exit, dict[str, Value]]] | None = None

    def var(self, name: str) -> str:
        return f"{self.prefix}{name}"


class WorkflowBuilder:
    def __init__(
        self,
        program: Program,
        handler: str,
        read_source: SourceReader,
        name_function: FunctionNamer,
    ) -> None:
        self.program = program
        self.handler = handler
        self.read_source = read_source
        self.name_function = name_function
        self.states: dict[str, State] = {}
        self.reasons: list[Reason] = []
        self.notes: list[Reason] = []
        self.functions: dict[str, FunctionRef] = {}
        self.invokes = {
            (self.program.module_of(s.function).path, s.site.span.line, s.site.span.column): s
            for s in program.invokes
        }
        self.sleeps = {
            (self.program.module_of(s.function).path, s.site.span.line, s.site.span.column): s
            for s in program.sleeps
        }
        self._trees: dict[str, tuple[ast.Module, list[str]]] = {}
        self._inline_depth = 0
        self._temps: set[str] = set()
        self._used_names: set[str] = set()
        self._prefixes: set[str] = set()
        self.extracted: list[Extraction] = []
        # `os.environ.get(NAME, default)`: the value to substitute when no template sets NAME
        self.env_defaults: dict[str, str] = {}
        # synchronous invokes whose FunctionError the code never checks
        self._unchecked: set[str] = set()
        self._task_paths: dict[str, str] = {}
        # exception classes the code raises when an invoked function failed
        self._function_errors: set[str] = set()

    # --- entry ------------------------------------------------------------------------------

    def build(self) -> Workflow:
        facts = self.program.functions[self.handler]
        module = self.program.module_of(self.handler)
        name = _workflow_name(self.handler)
        try:
            node, lines = self._function_node(module.path, facts.name, facts.span.line)
            scope = _Scope({}, module.path, lines)
            params = [a.arg for a in node.args.args]
            if params:
                scope.env[params[0]] = Input(())
            if len(params) > 1:
                scope.env[params[1]] = Opaque(node.lineno, "the Lambda context object")
            fragment = self.block(node.body, scope)
            end = self._add(Succeed(self._unique("Done"), Lit(None), _span(node)))
            self._connect(fragment.exits, end)
            start = fragment.start or end
            graph = self._carry_on(self._graph(start))
        except Unsupported as exc:
            self.reasons.append(Reason(module.path, exc.line, exc.message))
            graph = None
        except (RecursionError, SyntaxError, OSError, UnicodeDecodeError) as exc:
            self.reasons.append(
                Reason(module.path, facts.span.line, f"cannot analyse this handler: {exc}")
            )
            graph = None
        status = "converted" if graph is not None and not self.reasons else "not_converted"
        return Workflow(
            name,
            self.handler,
            module.path,
            graph if status == "converted" else None,
            status,
            tuple(dict.fromkeys(self.reasons)),
            tuple(dict.fromkeys(self.notes)),
            tuple(self.functions.values()),
            tuple(self.extracted),
            tuple(sorted(self.env_defaults.items())),
        )

    def _carry_on(self, graph: Graph) -> Graph:
        """A synchronous invoke does not raise when the function fails: the original went on
        with the error payload as the result. Each such task gets a Catch doing the same."""
        states: list[State] = []
        for state in graph.states:
            if isinstance(state, Map):
                state = replace(state, processor=self._carry_on(state.processor))
            elif isinstance(state, Parallel):
                state = replace(state, branches=tuple(self._carry_on(b) for b in state.branches))
            elif isinstance(state, Task) and state.name in self._unchecked:
                target = state.next
                if target is None:
                    target = self._unique(f"{state.name}Done")
                    states.append(Assign(target, (), None, state.span))
                rule = CatchRule(("States.TaskFailed",), target, state.assign, result=True)
                state = replace(state, catch=(rule, *state.catch))
                self.notes.append(
                    Reason(
                        self._path_of(state),
                        state.span.line,
                        f"{state.function.display}: the original never checked FunctionError, so "
                        "it carried on when the function failed; so does the machine (a Catch of "
                        "States.TaskFailed), with the error payload as the result",
                    )
                )
            states.append(state)
        return Graph(graph.start, tuple(states))

    def _path_of(self, state: Task) -> str:
        return self._task_paths.get(state.name, "")

    # --- state bookkeeping --------------------------------------------------------------------

    def _unique(self, base: str) -> str:
        # state names are unique in the whole machine, nested Map and Parallel states included
        name = base[:80] or "State"
        counter = 2
        while name in self._used_names:
            name = f"{base[:76]}{counter}"
            counter += 1
        self._used_names.add(name)
        return name

    def _add(self, state: State) -> str:
        self.states[state.name] = state
        return state.name

    def _connect(self, exits: list[Exit], target: str) -> None:
        for name, slot in exits:
            state = self.states[name]
            if slot == "next":
                self.states[name] = with_next(state, target)
            elif slot == "default":
                assert isinstance(state, Choice)
                self.states[name] = replace(state, default=target)
            elif isinstance(slot, tuple) and slot[0] == "rule":
                assert isinstance(state, Choice)
                rules = list(state.rules)
                rules[slot[1]] = (rules[slot[1]][0], target)
                self.states[name] = replace(state, rules=tuple(rules))
            elif isinstance(slot, tuple) and slot[0] == "catch":
                assert isinstance(state, Task)
                catches = list(state.catch)
                catches[slot[1]] = replace(catches[slot[1]], next=target)
                self.states[name] = replace(state, catch=tuple(catches))

    def _graph(self, start: str) -> Graph:
        """The states reachable from `start`, taken out of the builder."""
        reachable: list[State] = []
        seen: set[str] = set()
        stack = [start]
        while stack:
            name = stack.pop()
            if name in seen or name == "":
                continue
            seen.add(name)
            state = self.states[name]
            reachable.append(state)
            stack.extend(_targets(state))
        return Graph(start, tuple(reachable))

    @staticmethod
    def _sequence(
        first: Fragment, second: Fragment, connect: Callable[[list[Exit], str], None]
    ) -> Fragment:
        if first.start is None:
            return Fragment(second.start, second.exits) if second.start else first
        if second.start is None:
            return first
        connect(first.exits, second.start)
        return Fragment(first.start, second.exits)

    # --- sources ------------------------------------------------------------------------------

    def _function_node(
        self, path: str, name: str, line: int
    ) -> tuple[ast.FunctionDef | ast.AsyncFunctionDef, list[str]]:
        if path not in self._trees:
            text = self.read_source(path)
            self._trees[path] = (ast.parse(text), text.splitlines())
        tree, lines = self._trees[path]
        for node in ast.walk(tree):
            if (
                isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef))
                and node.name == name
                and (
                    node.lineno == line
                    or any(getattr(d, "lineno", 0) == line for d in node.decorator_list)
                )
            ):
                return node, lines
        raise Unsupported(line, f"cannot find the definition of {name}")

    # --- statements ---------------------------------------------------------------------------

    def block(self, body: list[ast.stmt], scope: _Scope) -> Fragment:
        fragment = Fragment(None, [])
        for stmt in body:
            if fragment.start is not None and not fragment.exits:
                break  # everything after a return/raise is unreachable
            fragment = self._sequence(fragment, self.stmt(stmt, scope), self._connect)
        return fragment

    def stmt(self, node: ast.stmt, scope: _Scope) -> Fragment:
        if isinstance(node, ast.Expr):
            if isinstance(node.value, ast.Constant):
                return Fragment(None, [])  # a docstring
            return self.effect(node.value, None, scope)
        if isinstance(node, (ast.Assign, ast.AnnAssign)):
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            if node.value is None:
                return Fragment(None, [])
            if (
                len(targets) == 1
                and isinstance(targets[0], ast.Tuple)
                and all(isinstance(e, ast.Name) for e in targets[0].elts)
            ):
                gathered = node.value.value if isinstance(node.value, ast.Await) else node.value
                found = self._work_call(gathered, scope)
                if (
                    found is not None
                    and found[0] == "gather"
                    and found[1] is gathered
                    and isinstance(gathered, ast.Call)
                ):
                    names = [e.id for e in targets[0].elts if isinstance(e, ast.Name)]
                    return self.parallel_(gathered, names, scope)
            if len(targets) != 1 or not isinstance(targets[0], ast.Name):
                if self._has_work(node.value, scope) and isinstance(
                    targets[0], (ast.Subscript, ast.Attribute)
                ):
                    raise Unsupported(
                        node.lineno,
                        f"results stored into `{_source(targets[0], scope)}`: a collection "
                        "mutated across steps (collect them with a list comprehension or "
                        "`.append` instead)",
                    )
                if self._has_work(node.value, scope):
                    raise Unsupported(node.lineno, "an invoke result assigned to several targets")
                for target in targets:
                    for name in _names(target):
                        scope.env[name] = Opaque(node.lineno, f"`{name}`, assigned by unpacking")
                return Fragment(None, [])
            return self.effect(node.value, targets[0].id, scope)
        if isinstance(node, ast.AugAssign):
            if self._has_work(node.value, scope):
                raise Unsupported(node.lineno, "an invoke inside an augmented assignment")
            counted = self._counter_step(node, scope)
            if counted is not None:
                scope.env[counted[0]] = counted[1]
                return Fragment(None, [])
            for name in _names(node.target):
                scope.env[name] = Opaque(
                    node.lineno, "updated in place (+=, …): state shared across steps"
                )
            return Fragment(None, [])
        if isinstance(node, ast.Return):
            return self.return_(node, scope)
        if isinstance(node, ast.Raise):
            return self.raise_(node, scope)
        if isinstance(node, ast.If):
            return self.if_(node, scope)
        if isinstance(node, ast.Try):
            return self.try_(node, scope)
        if isinstance(node, (ast.For, ast.AsyncFor)):
            return self.for_(node, scope)
        if isinstance(node, ast.While):
            retry = self._retry_while(node, scope)
            if retry is not None:
                return retry
            return self.while_(node, scope)
        if isinstance(node, (ast.With, ast.AsyncWith)):
            for item in node.items:
                if item.optional_vars is not None:
                    pool = _pool_size(item.context_expr, self, scope)
                    for name in _names(item.optional_vars):
                        scope.env[name] = (
                            Pool(pool)
                            if pool is not None
                            else Opaque(node.lineno, "a context manager")
                        )
            return self.block(node.body, scope)
        if isinstance(node, ast.Pass):
            return Fragment(None, [])
        if isinstance(node, ast.Break) and scope.breaks is not None:
            marker = self._add(Assign(self._unique("Break"), (), None, _span(node)))
            scope.breaks.append(((marker, "next"), dict(scope.env)))
            return Fragment(marker, [])
        if isinstance(node, (ast.Import, ast.ImportFrom, ast.Global, ast.Nonlocal)):
            return Fragment(None, [])
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            scope.env[node.name] = Opaque(node.lineno, "a nested definition")
            return Fragment(None, [])
        raise Unsupported(node.lineno, f"`{type(node).__name__}` statement")

    def effect(self, value: ast.expr, target: str | None, scope: _Scope) -> Fragment:
        """`target = value` (or just `value`): emits a Task, a Wait or an inlined helper when the
        expression does work, else binds a data expression."""
        call = self._work_call(value, scope)
        if call is None:
            if target is None:
                if self._droppable(value, scope):
                    self.notes.append(
                        Reason(
                            scope.path,
                            value.lineno,
                            "logging dropped: the execution history shows each step",
                        )
                    )
                    return Fragment(None, [])
                if isinstance(value, ast.Call) and _attr_name(value.func) in (
                    "append",
                    "extend",
                    "update",
                ):
                    raise Unsupported(value.lineno, "a collection mutated across steps")
                params = self._extractable(value, scope)
                if params is None:
                    raise Unsupported(
                        value.lineno,
                        f"local computation `{_source(value, scope)}` on values the workflow lacks",
                    )
                name = self._extract_task(value, None, params, scope)
                return Fragment(name, [(name, "next")])
            constructed = self._construct(value, scope) if isinstance(value, ast.Call) else None
            if constructed is not None:
                scope.env[target] = constructed
                return Fragment(None, [])
            computed = self.value(value, scope)
            if isinstance(computed, Opaque) and self._infrastructure(target, value, scope):
                scope.env[target] = Opaque(value.lineno, f"`{target}`, a client or service object")
                return Fragment(None, [])
            if isinstance(computed, Opaque) and isinstance(
                value, (ast.Call, ast.GeneratorExp, ast.ListComp, ast.BinOp, ast.Subscript)
            ):
                params = self._extractable(value, scope)
                if params is not None:
                    return self._extract_later(value, target, params, computed, scope)
            scope.env[target] = computed
            return Fragment(None, [])
        kind, info = call
        if kind == "map":
            assert isinstance(info, (ast.ListComp, ast.Call))
            return self.map_(info, value, target, scope)
        if kind == "gather":
            raise Unsupported(
                value.lineno, "asyncio.gather whose results are not unpacked into names"
            )
        if kind == "sleep":
            assert isinstance(info, SleepSite)
            return self.sleep(info, value, scope, target)
        if kind == "invoke":
            assert isinstance(info, InvokeSite)
            return self.invoke(info, value, target, scope)
        assert isinstance(info, tuple)
        return self.inline(info, value, target, scope)

    def hoist(self, node: ast.expr, scope: _Scope) -> tuple[Fragment, ast.expr]:
        """Emit the work inside `node` (invokes, sleeps, helpers) first, each into a variable,
        and return `node` with those calls replaced by the variables."""
        fragment = Fragment(None, [])
        for _ in range(50):
            found = self._work_call(node, scope)
            if found is None:
                return fragment, node
            kind, info = found
            call = info[1] if kind == "call" else _find_call(node, info.site.span.line)  # type: ignore[attr-defined,index]
            if call is None:
                break
            temp = self._temp_name(kind, info)
            step = self.effect(call, temp, scope)
            fragment = self._sequence(fragment, step, self._connect)
            node = _Replace(call, ast.Name(temp, ast.Load())).visit(_copy(node))
        raise Unsupported(getattr(node, "lineno", 0), "too much work in one expression")

    def _temp_name(self, kind: str, info: object) -> str:
        if kind == "invoke" and isinstance(info, InvokeSite):
            base = self._static_target(info) or "result"
        elif kind == "call" and isinstance(info, tuple):
            base = str(info[0]).rsplit(".", 1)[-1].lstrip("_") + "_result"
        else:
            base = "result"
        base = re.sub(r"[^0-9A-Za-z]+", "_", base).strip("_").lower() or "result"
        if base[0].isdigit():
            base = "r_" + base
        name, counter = base, 2
        while name in self._temps:
            name = f"{base}_{counter}"
            counter += 1
        self._temps.add(name)
        return name

    # --- extracted single-purpose functions ----------------------------------------------------

    def _construct(self, call: ast.Call, scope: _Scope) -> ObjectRef | None:
        """`Cls(args)` for a class of the tree whose `__init__` only stores values on self."""
        caller = self._function_at(scope.path, call.lineno)
        init = None
        for edge in self.program.edges_from(caller) if caller else ():
            if (
                edge.site.span.line == call.lineno
                and edge.site.span.column == _column(call, scope)
                and edge.callee.endswith(".__init__")
            ):
                init = edge.callee
        if init is None:
            return None
        facts = self.program.functions[init]
        module = self.program.module_of(init)
        node, lines = self._function_node(module.path, facts.name, facts.span.line)
        params = [a.arg for a in (*node.args.posonlyargs, *node.args.args)]
        if not params:
            return None
        inner = _Scope({}, module.path, lines)
        defaults = node.args.defaults
        for param, default in zip(params[len(params) - len(defaults) :], defaults):
            inner.env[param] = self.value(default, inner)
        for param, arg in zip(params[1:], call.args):
            inner.env[param] = self.value(arg, scope)
        for keyword in call.keywords:
            if keyword.arg is None:
                return None
            inner.env[keyword.arg] = self.value(keyword.value, scope)
        attrs: dict[str, object] = {}
        for stmt in node.body:
            if (
                isinstance(stmt, ast.Assign)
                and len(stmt.targets) == 1
                and isinstance(stmt.targets[0], ast.Attribute)
                and isinstance(stmt.targets[0].value, ast.Name)
                and stmt.targets[0].value.id == params[0]
            ):
                if self._has_work(stmt.value, inner):
                    return None
                attrs[stmt.targets[0].attr] = self.value(stmt.value, inner)
            elif not (isinstance(stmt, ast.Expr) and isinstance(stmt.value, ast.Constant)):
                return None
        return ObjectRef(init.rsplit(".", 1)[0], tuple(attrs.items()))

    def _infrastructure(self, target: str, node: ast.expr, scope: _Scope) -> bool:
        """`target` holds a client, a session or an object of the tree (never data to pass)."""
        qualname = self._function_at(scope.path, node.lineno)
        if qualname is None:
            return False
        values = self.program.values(LocalSym(qualname, target))
        return any(
            isinstance(v, (LambdaClient, OtherClient, Session, Instance, Bound)) for v in values
        )

    def _extractable(self, node: ast.expr, scope: _Scope) -> list[str] | None:
        """The locals a new function computing `node` needs, when they are all plain data."""
        params: list[str] = []
        for sub in ast.walk(node):
            if isinstance(sub, (ast.Lambda, ast.Await, ast.Yield, ast.YieldFrom)):
                return None
            if isinstance(sub, ast.Name) and isinstance(sub.ctx, ast.Load) and sub.id in scope.env:
                known = scope.env[sub.id]
                if isinstance(known, Opaque) and known.extract is not None:
                    known.extract()  # computed by an earlier extracted function
                    known = scope.env[sub.id]
                if isinstance(known, _NOT_DATA):
                    return None
                if sub.id not in params:
                    params.append(sub.id)
        bound = {
            n.id for n in ast.walk(node) if isinstance(n, ast.Name) and isinstance(n.ctx, ast.Store)
        }
        return [p for p in params if p not in bound]

    def _extract_later(
        self, node: ast.expr, target: str, params: list[str], computed: Opaque, scope: _Scope
    ) -> Fragment:
        """Reserve the place of a computation the workflow may need; it becomes a Task the first
        time something uses its value (an unused one disappears)."""
        placeholder = self._add(
            Assign(self._unique(f"Compute{_pascal(target)}"), (), None, _span(node))
        )
        snapshot = replace(scope, env=dict(scope.env))
        done: list[Expr] = []

        def extract() -> Expr:
            if not done:
                self._extract_task(node, target, params, snapshot, placeholder)
                variable = Var(scope.var(target))
                scope.env[target] = variable
                done.append(variable)
            return done[0]

        scope.env[target] = Opaque(computed.line, computed.message, extract)
        return Fragment(placeholder, [(placeholder, "next")])

    def _extract_task(
        self,
        node: ast.expr,
        target: str | None,
        params: list[str],
        scope: _Scope,
        placeholder: str | None = None,
    ) -> str:
        base = (
            f"compute_{target}"
            if target
            else _snake(_dotted(node.func) if isinstance(node, ast.Call) else "step")
        )
        function_name = re.sub(r"_+", "_", base).strip("_")
        ref = FunctionRef(f"${{{_pascal(function_name)}FunctionArn}}", function_name)
        payload = Obj(tuple((p, _expr(scope.env[p], node.lineno)) for p in params))
        name = placeholder or self._unique(_pascal(function_name))
        following = next_of(self.states[placeholder]) if placeholder else None
        task = Task(
            name,
            ref,
            payload,
            scope.var(target) if target else None,
            following,
            _span(node),
            False,
            scope.retry,
        )
        self.states[name] = task
        self._used_names.add(name)
        for catch in scope.catches:
            catch.tasks.append(name)
        self.extracted.append(
            Extraction(
                function_name, tuple(params), _full_source(node), scope.path, node.lineno, target
            )
        )
        self._remember(ref)
        return name

    def _has_work(self, node: ast.expr, scope: _Scope) -> bool:
        return self._work_call(node, scope) is not None

    def _work_call(self, node: ast.expr, scope: _Scope) -> tuple[str, object] | None:
        """The call inside `node` that is an invoke, a sleep, or a call to a helper that invokes
        or sleeps (outermost first)."""
        for sub in ast.walk(node):
            if isinstance(sub, ast.ListComp) and any(
                isinstance(inner, ast.Call) and self._direct_work(inner, scope)
                for inner in ast.walk(sub)
            ):
                return "map", sub
            if not isinstance(sub, ast.Call):
                continue
            if _attr_name(sub.func) == "map" and len(sub.args) == 2 and self._handed(sub, scope):
                return "map", sub
            if _dotted(sub.func) in ("asyncio.gather", "gather") and any(
                isinstance(a, ast.Call) and self._direct_work(a, scope) for a in sub.args
            ):
                return "gather", sub
            key = (scope.path, sub.lineno, _column(sub, scope))
            if key in self.invokes:
                return "invoke", self.invokes[key]
            if key in self.sleeps:
                return "sleep", self.sleeps[key]
            callee = self._callee(sub, scope)
            if callee is not None:
                return "call", (callee, sub)
        return None

    def _direct_work(self, call: ast.Call, scope: _Scope) -> bool:
        key = (scope.path, call.lineno, _column(call, scope))
        return key in self.invokes or key in self.sleeps or self._callee(call, scope) is not None

    def _handed(self, call: ast.Call, scope: _Scope) -> str | None:
        """The function handed to `pool.map(fn, items)` when it invokes."""
        caller = self._function_at(scope.path, call.lineno)
        for edge in self.program.edges_from(caller) if caller else ():
            if (
                edge.handed
                and edge.site.span.line == call.lineno
                and edge.site.span.column == _column(call, scope)
                and edge.callee in self.program.invoking
            ):
                return edge.callee
        return None

    def _callee(self, call: ast.Call, scope: _Scope) -> str | None:
        caller = self._function_at(scope.path, call.lineno)
        if caller is None:
            return None
        for edge in self.program.edges_from(caller):
            if (
                edge.site.span.line == call.lineno
                and edge.site.span.column == _column(call, scope)
                and (edge.callee in self.program.invoking or self._sleeps_in(edge.callee))
            ):
                return edge.callee
        return None

    def _sleeps_in(self, qualname: str) -> bool:
        return any(s.function == qualname for s in self.program.sleeps)

    def _function_at(self, path: str, line: int) -> str | None:
        best: str | None = None
        best_line = -1
        for qualname, facts in self.program.functions.items():
            if self.program.module_of(qualname).path != path:
                continue
            if facts.span.line <= line <= facts.span.end_line and facts.span.line > best_line:
                best, best_line = qualname, facts.span.line
        return best

    def _droppable(self, value: ast.expr, scope: _Scope) -> bool:
        if not isinstance(value, ast.Call):
            return False
        dotted = _dotted(value.func)
        return dotted == "print" or dotted.split(".")[0] in _LOGGERS

    # --- invokes ------------------------------------------------------------------------------

    def invoke(
        self, site: InvokeSite, value: ast.expr, target: str | None, scope: _Scope
    ) -> Fragment:
        call = _find_call(value, site.site.span.line)
        if call is None:
            raise Unsupported(site.site.span.line, "an invoke this planner cannot locate")
        kwargs = {k.arg: k.value for k in call.keywords if k.arg}
        if any(k.arg is None for k in call.keywords):
            raise Unsupported(call.lineno, "invoke arguments passed through **kwargs")
        if site.method == "invoke_async":
            payload_node = kwargs.get("InvokeArgs")
            asynchronous = True
        else:
            payload_node = kwargs.get("Payload")
            kind = kwargs.get("InvocationType")
            asynchronous = False
            if kind is not None:
                mode = self.value(kind, scope)
                known = invocation(site)
                if mode not in (Lit("Event"), Lit("RequestResponse")) and known.detail in (
                    "InvocationType=Event",
                    "InvocationType=RequestResponse",
                ):
                    # resolved by the analysis (an Enum member's value, a constant elsewhere)
                    mode = Lit(known.detail.split("=", 1)[1])
                if mode == Lit("Event"):
                    asynchronous = True
                elif mode != Lit("RequestResponse"):
                    raise Unsupported(call.lineno, "InvocationType is not a constant")
        function = self._function_ref(site, kwargs.get("FunctionName"), scope, call.lineno)
        payload: Expr = Lit({})
        if payload_node is not None:
            payload = self._payload(payload_node, scope)
        label = function.display
        if function.dynamic is not None and isinstance(function.dynamic, Var):
            label = f"invoke_{function.dynamic.name.removeprefix('invoke_lambda_')}"
        name = self._unique(_pascal(label))
        task = Task(name, function, payload, None, None, _span(call), asynchronous, scope.retry)
        self._add(task)
        if not asynchronous:
            self._unchecked.add(name)
        self._task_paths[name] = scope.path
        for catch in scope.catches:
            catch.tasks.append(name)
        if target is not None:
            variable = scope.var(target)
            self.states[name] = replace(task, assign=variable)
            scope.env[target] = self._bind_result(value, call, Var(variable), scope)
        return Fragment(name, [(name, "next")])

    def _bind_result(self, value: ast.expr, call: ast.Call, result: Var, scope: _Scope) -> Value:
        """What `value` is when the invoke `call` inside it answers into variable `result`."""
        marker = "__untangle_response__"
        scope.env[marker] = Response(result)
        try:
            rewritten = _Replace(call, ast.Name(marker, ast.Load())).visit(_copy(value))
            return self.value(rewritten, scope)
        finally:
            del scope.env[marker]

    def _payload(self, node: ast.expr, scope: _Scope) -> Expr:
        value = self.value(node, scope)
        if isinstance(value, Op) and value.op == Operator.JSON_STRING:
            return value.args[0]
        if isinstance(value, (Response, Stream)):
            return value.payload
        if isinstance(value, Opaque):
            raise Unsupported(node.lineno, f"payload depends on {value.message}")
        return _expr(value, node.lineno)

    def _function_ref(
        self, site: InvokeSite, node: ast.expr | None, scope: _Scope, line: int
    ) -> FunctionRef:
        if node is not None:
            value = self.value(node, scope)
            if isinstance(value, Lit) and isinstance(value.value, str):
                return self._remember(self.name_function(function_name_from_arn(value.value)))
            if (
                isinstance(value, Op)
                and value.op == Operator.ENV
                and isinstance(value.args[0], Lit)
            ):
                return self._remember(self.name_function(f"${value.args[0].value}"))
        names = site.kwargs.get("FunctionName", frozenset())
        if (
            node is not None
            and isinstance(value, Var)
            and not any(isinstance(v, OwnName) for v in names)
        ):
            return self._dynamic_function(value, names, line)
        if any(isinstance(v, OwnName) for v in names):
            raise Unsupported(line, "the handler invokes itself: loop in the state machine instead")
        known = [v for v in names if isinstance(v, (ConstV, Env))]
        if len(known) == 1 and len(names) == 1:
            only = known[0]
            if isinstance(only, ConstV) and isinstance(only.value, str):
                return self._remember(self.name_function(function_name_from_arn(only.value)))
            if isinstance(only, Env):
                return self._remember(self.name_function(f"${only.name}"))
        raise Unsupported(
            line, "the invoked function's name is not known statically (dynamic dispatch)"
        )

    def _dynamic_function(self, value: Var, names: frozenset[object], line: int) -> FunctionRef:
        """A function chosen at run time from a known set (a variable the branches set): the
        Assign states that set it get the functions' placeholders."""
        candidates: dict[str, FunctionRef] = {}
        for state_name, state in list(self.states.items()):
            if not isinstance(state, Assign):
                continue
            values = []
            for key, expr in state.values:
                if key == value.name and not value.path:
                    ref = self._name_of(expr)
                    if ref is None:
                        raise Unsupported(line, "the invoked function is chosen from data")
                    candidates[ref.placeholder] = self._remember(ref)
                    expr = Lit(ref.placeholder)
                values.append((key, expr))
            self.states[state_name] = replace(state, values=tuple(values))
        if not candidates:
            raise Unsupported(
                line, "the invoked function's name is not known statically (dynamic dispatch)"
            )
        display = " | ".join(sorted(r.display for r in candidates.values()))
        return FunctionRef("", display, value)

    def _name_of(self, expr: Expr) -> FunctionRef | None:
        if isinstance(expr, Lit) and isinstance(expr.value, str):
            return self.name_function(function_name_from_arn(expr.value))
        if isinstance(expr, Op) and expr.op == Operator.ENV and isinstance(expr.args[0], Lit):
            return self.name_function(f"${expr.args[0].value}")
        return None

    def _remember(self, ref: FunctionRef) -> FunctionRef:
        if ref.placeholder:
            self.functions.setdefault(ref.placeholder, ref)
        return ref

    # --- sleeps -------------------------------------------------------------------------------

    def sleep(
        self, site: SleepSite, value: ast.expr, scope: _Scope, target: str | None
    ) -> Fragment:
        call = _find_call(value, site.site.span.line)
        if call is None or not call.args:
            raise Unsupported(site.site.span.line, "a sleep without a duration")
        seconds = self.value(call.args[0], scope)
        if isinstance(seconds, _NOT_DATA):
            raise Unsupported(call.lineno, "a sleep whose duration the workflow cannot compute")
        if isinstance(seconds, Lit) and isinstance(seconds.value, (int, float)):
            if seconds.value != int(seconds.value) or seconds.value < 0:
                raise Unsupported(call.lineno, "a sleep of a fraction of a second")
            seconds = Lit(int(seconds.value))
        following = self._next_invoke_name(call, scope.path)
        name = self._unique(f"WaitFor{following}" if following else "Wait")
        self._add(Wait(name, seconds, None, None, _span(call)))
        return Fragment(name, [(name, "next")])

    def _next_invoke_name(self, call: ast.Call, path: str) -> str | None:
        after = sorted(
            (
                (key, site)
                for key, site in self.invokes.items()
                if key[0] == path and key[1] > call.lineno
            ),
            key=lambda pair: pair[0],
        )
        if not after:
            return None
        target = self._static_target(after[0][1])
        return _pascal(target) if target else None

    @staticmethod
    def _static_target(site: InvokeSite) -> str | None:
        for v in site.kwargs.get("FunctionName", frozenset()):
            if isinstance(v, ConstV) and isinstance(v.value, str):
                return function_name_from_arn(v.value)
            if isinstance(v, Env):
                return v.name.lower().removesuffix("_function").removesuffix("_fn")
        return None

    # --- inlined helpers ----------------------------------------------------------------------

    def inline(
        self, info: tuple[str, ast.Call], value: ast.expr, target: str | None, scope: _Scope
    ) -> Fragment:
        callee, call = info
        if self._inline_depth > 8:
            raise Unsupported(call.lineno, "helpers nested too deeply (recursion?)")
        if _attr_name(call.func) == "submit" and call.args and self._handed(call, scope):
            # pool.submit(fn, x): the future is modelled by its result, fn(x)
            call = ast.Call(
                func=call.args[0],
                args=call.args[1:],
                keywords=call.keywords,
                lineno=call.lineno,
                col_offset=call.col_offset,
                end_lineno=call.end_lineno,
                end_col_offset=call.end_col_offset,
            )
        facts = self.program.functions[callee]
        module = self.program.module_of(callee)
        node, lines = self._function_node(module.path, facts.name, facts.span.line)
        params = [a.arg for a in (*node.args.posonlyargs, *node.args.args)]
        inner = _Scope(
            {},
            module.path,
            lines,
            returns=[],
            catches=scope.catches,
            retry=scope.retry,
            prefix=self._prefix(target or facts.name),
        )
        if facts.is_method and params:
            inner.env[params[0]] = self._receiver(call, callee, scope)
            params = params[1:]
        defaults = node.args.defaults
        for param, default in zip(params[len(params) - len(defaults) :], defaults):
            inner.env[param] = self.value(default, inner)
        for param, arg in zip(params, call.args):
            inner.env[param] = self.value(arg, scope)
        for keyword in call.keywords:
            if keyword.arg is None:
                raise Unsupported(call.lineno, "helper arguments passed through **kwargs")
            inner.env[keyword.arg] = self.value(keyword.value, scope)
        decorated = self._has_retry_decorator(node)
        if decorated:
            # the rule's error names depend on the body (its FunctionError checks): the tasks
            # get a placeholder, replaced once the body is built
            inner.retry = (_PENDING_RETRY,)
        self._inline_depth += 1
        try:
            body = self.block(node.body, inner)
        finally:
            self._inline_depth -= 1
        if decorated:
            self._settle_pending_retry(self._retry_decorator(node, inner))
        assert inner.returns is not None
        exits = list(body.exits)
        values = [v for _, v in inner.returns]
        for returned_exits, _ in inner.returns:
            exits += returned_exits
        result: Value = Lit(None)
        if (
            values
            and all(v == values[0] for v in values)
            and len(inner.returns) >= 1
            and not body.exits
        ):
            result = values[0]
        elif values:
            if target is None:
                result = Lit(None)
            else:
                # several returns with different values: each path sets the variable
                exits = list(body.exits)
                for returned_exits, returned in inner.returns:
                    setter = self._add(
                        Assign(
                            self._unique(f"Set{_pascal(target)}"),
                            ((scope.var(target), _expr(returned, call.lineno)),),
                            None,
                            _span(call),
                        )
                    )
                    self._connect(returned_exits, setter)
                    exits.append((setter, "next"))
                result = Var(scope.var(target))
        start = body.start
        if start is None:
            # the helper did no work after all: just bind its value
            if target is not None:
                scope.env[target] = result
            return Fragment(None, [])
        if target is not None:
            outer_value = self._bind_inline(value, call, result, scope)
            scope.env[target] = outer_value
        return Fragment(start, exits)

    def _receiver(self, call: ast.Call, method: str, scope: _Scope) -> Value:
        """What `self` is in `method` when called as `call`: the object made in the handler when
        there is one, else the class."""
        if isinstance(call.func, ast.Attribute):
            receiver = self.value(call.func.value, scope)
            if isinstance(receiver, (ObjectRef, SelfRef)):
                return receiver
        return SelfRef(method.rsplit(".", 1)[0])

    def _prefix(self, base: str) -> str:
        stem = re.sub(r"[^0-9A-Za-z]+", "_", base).strip("_") or "helper"
        prefix, counter = f"{stem}_", 2
        while prefix in self._prefixes:
            prefix = f"{stem}{counter}_"
            counter += 1
        self._prefixes.add(prefix)
        return prefix

    def _bind_inline(self, value: ast.expr, call: ast.Call, result: Value, scope: _Scope) -> Value:
        marker = "__untangle_inline__"
        scope.env[marker] = result
        try:
            rewritten = _Replace(call, ast.Name(marker, ast.Load())).visit(_copy(value))
            return self.value(rewritten, scope)
        finally:
            del scope.env[marker]

    @staticmethod
    def _has_retry_decorator(node: ast.FunctionDef | ast.AsyncFunctionDef) -> bool:
        return any(
            _dotted(d.func if isinstance(d, ast.Call) else d).split(".")[-1]
            in ("retry", "on_exception")
            for d in node.decorator_list
        )

    def _settle_pending_retry(self, rules: tuple[RetryRule, ...]) -> None:
        for name, state in list(self.states.items()):
            if isinstance(state, Task) and state.retry == (_PENDING_RETRY,):
                self.states[name] = replace(state, retry=rules)

    def _retry_decorator(
        self, node: ast.FunctionDef | ast.AsyncFunctionDef, scope: _Scope
    ) -> tuple[RetryRule, ...]:
        for decorator in node.decorator_list:
            dotted = _dotted(decorator.func if isinstance(decorator, ast.Call) else decorator)
            if dotted.split(".")[-1] not in ("retry", "on_exception"):
                continue
            if not isinstance(decorator, ast.Call):
                return (RetryRule(("States.ALL",), 1, 3, 1.0),)
            return (self._tenacity(decorator, scope),)
        return ()

    def _tenacity(self, decorator: ast.Call, scope: _Scope) -> RetryRule:
        attempts, interval, backoff, max_delay, jitter = 3, 1.0, 1.0, None, False
        errors: tuple[str, ...] = ("States.ALL",)
        keywords = {k.arg: k.value for k in decorator.keywords if k.arg}
        stop = keywords.get("stop")
        if (
            isinstance(stop, ast.Call)
            and _dotted(stop.func).endswith("stop_after_attempt")
            and stop.args
        ):
            attempts = int(self._number(stop.args[0], scope))
        if "max_tries" in keywords:
            attempts = int(self._number(keywords["max_tries"], scope))
        wait = keywords.get("wait")
        if isinstance(wait, ast.Call):
            kind = _dotted(wait.func).rsplit(".", 1)[-1]
            args = {k.arg: k.value for k in wait.keywords if k.arg}
            if kind == "wait_fixed" and wait.args:
                interval = self._number(wait.args[0], scope)
            elif kind in ("wait_exponential", "wait_random_exponential"):
                multiplier = (
                    self._number(args["multiplier"], scope) if "multiplier" in args else 1.0
                )
                minimum = self._number(args["min"], scope) if "min" in args else 0.0
                interval = max(multiplier, minimum, 1.0)
                backoff = 2.0
                if "max" in args:
                    max_delay = self._number(args["max"], scope)
                jitter = kind == "wait_random_exponential"
        if decorator.args and _dotted(decorator.func).endswith("on_exception"):
            wait_gen = _dotted(decorator.args[0]).rsplit(".", 1)[-1]
            backoff = 2.0 if wait_gen == "expo" else 1.0
            jitter = "jitter" not in keywords or _dotted(keywords["jitter"]) != "None"
            if len(decorator.args) > 1:
                errors = self._error_names(decorator.args[1], scope)
        retry_on = keywords.get("retry")
        if (
            isinstance(retry_on, ast.Call)
            and _dotted(retry_on.func).endswith("retry_if_exception_type")
            and retry_on.args
        ):
            errors = self._error_names(retry_on.args[0], scope)
        return RetryRule(errors, interval, max(attempts - 1, 0), backoff, max_delay, jitter)

    def _number(self, node: ast.expr, scope: _Scope) -> float:
        value = self.value(node, scope)
        if (
            isinstance(value, Lit)
            and isinstance(value.value, (int, float))
            and not isinstance(value.value, bool)
        ):
            return float(value.value)
        raise Unsupported(node.lineno, f"`{_source(node, scope)}` is not a constant number")

    def _error_names(self, node: ast.expr, scope: _Scope) -> tuple[str, ...]:
        nodes = node.elts if isinstance(node, ast.Tuple) else [node]
        names: list[str] = []
        for item in nodes:
            dotted = _dotted(item)
            last = dotted.rsplit(".", 1)[-1]
            if last in ("Exception", "BaseException"):
                return ("States.ALL",)
            if last in ("ClientError", "BotoCoreError", "TooManyRequestsException"):
                names += [e for e in _BOTO_ERRORS if e not in names]
            elif last in self._function_errors:
                names.append("States.TaskFailed")
            elif last:
                names.append(last)
        return tuple(dict.fromkeys(names)) or ("States.ALL",)

    # --- control flow -------------------------------------------------------------------------

    def return_(self, node: ast.Return, scope: _Scope) -> Fragment:
        if node.value is not None and self._has_work(node.value, scope):
            before, rewritten = self.hoist(node.value, scope)
            rest = self._finish_return(node, self.value(rewritten, scope), scope)
            return self._sequence(before, rest, self._connect)
        output: Value = Lit(None)
        if node.value is not None:
            output = self.value(node.value, scope)
        return self._finish_return(node, output, scope)

    def _finish_return(self, node: ast.Return, output: Value, scope: _Scope) -> Fragment:
        if scope.returns is not None:
            # inside an inlined helper: control goes back to the caller with this value (a raw
            # invoke response included: the caller may still read its Payload)
            marker = self._add(Assign(self._unique("Return"), (), None, _span(node)))
            scope.returns.append(([(marker, "next")], output))
            return Fragment(marker, [])
        name = self._add(Succeed(self._unique("Done"), _expr(output, node.lineno), _span(node)))
        return Fragment(name, [])

    def raise_(self, node: ast.Raise, scope: _Scope) -> Fragment:
        if node.exc is None:
            raise Unsupported(
                node.lineno, "a bare `raise` outside an except block this planner understands"
            )
        exc = node.exc
        error = (
            _dotted(exc.func if isinstance(exc, ast.Call) else exc).rsplit(".", 1)[-1] or "Error"
        )
        cause: Expr | None = None
        if isinstance(exc, ast.Call) and exc.args:
            value = self.value(exc.args[0], scope)
            cause = value if not isinstance(value, _NOT_DATA) else None
        for catch in reversed(scope.catches):
            if "States.ALL" in catch.errors or error in catch.errors:
                raise Unsupported(
                    node.lineno,
                    f"`raise {error}` is caught in the same function: "
                    "control flow through exceptions",
                )
        name = self._add(Fail(self._unique(error), error, cause, _span(node)))
        return Fragment(name, [])

    def if_(self, node: ast.If, scope: _Scope) -> Fragment:
        if self._has_work(node.test, scope):
            before, test = self.hoist(node.test, scope)
            rest = self.if_(
                ast.If(
                    test,
                    node.body,
                    node.orelse,
                    lineno=node.lineno,
                    col_offset=node.col_offset,
                    end_lineno=node.end_lineno,
                    end_col_offset=node.end_col_offset,
                ),
                scope,
            )
            return self._sequence(before, rest, self._connect)
        function_error = self._function_error_check(node.test, scope)
        if function_error is not None:
            return self._function_error_branch(node, function_error, scope)
        condition = self.value(node.test, scope)
        if isinstance(condition, _NOT_DATA):
            raise Unsupported(node.lineno, f"a condition on {_describe(condition)}")
        constant = _constant_truth(condition)
        if constant is not None:
            self.notes.append(
                Reason(
                    scope.path,
                    node.lineno,
                    f"condition `{_source(node.test, scope)}` is always {constant} "
                    "under Step Functions",
                )
            )
            return self.block(node.body if constant else node.orelse, scope)
        rules: list[tuple[Expr, ast.If]] = []
        branch: ast.If = node
        orelse: list[ast.stmt] = []
        while True:
            if branch is not node and self._has_work(branch.test, scope):
                raise Unsupported(branch.lineno, "an invoke inside an elif condition")
            tested = self.value(branch.test, scope)
            if isinstance(tested, _NOT_DATA):
                raise Unsupported(branch.lineno, f"a condition on {_describe(tested)}")
            rules.append((_truthy(tested), branch))
            if len(branch.orelse) == 1 and isinstance(branch.orelse[0], ast.If):
                branch = branch.orelse[0]
                continue
            orelse = branch.orelse
            break
        name = self._unique(_choice_name(node.test))
        choice = Choice(name, tuple((c, "") for c, _ in rules), None, _span(node))
        self._add(choice)
        exits: list[Exit] = []
        envs: list[dict[str, Value]] = []
        fragments: list[tuple[Fragment, object]] = []
        for index, (_, branch_node) in enumerate(rules):
            branch_scope = replace(scope, env=dict(scope.env))
            fragment = self.block(branch_node.body, branch_scope)
            fragments.append((fragment, ("rule", index)))
            envs.append(branch_scope.env)
        else_scope = replace(scope, env=dict(scope.env))
        fragment = self.block(orelse, else_scope)
        fragments.append((fragment, "default"))
        envs.append(else_scope.env)
        live = [
            env
            for (fragment, _), env in zip(fragments, envs)
            if fragment.start is None or fragment.exits
        ]
        # locals the branches set to different data: each branch stores its value in a variable
        differing = sorted(
            key
            for key in set().union(*live)
            if live
            for values in [[env.get(key) for env in live]]
            if any(v != values[0] for v in values)
            and all(v is not None and not isinstance(v, _NOT_DATA) for v in values)
        )
        for (fragment, slot), env in zip(fragments, envs):
            branch_exits: list[Exit] = [(name, slot)] if fragment.start is None else []
            if fragment.start is not None:
                self._connect([(name, slot)], fragment.start)
                branch_exits = list(fragment.exits)
            if differing and branch_exits:
                values = tuple((scope.var(k), _expr(env[k], node.lineno)) for k in differing)
                setter = self._add(
                    Assign(self._unique(f"Set{_pascal(differing[0])}"), values, None, _span(node))
                )
                self._connect(branch_exits, setter)
                branch_exits = [(setter, "next")]
            exits += branch_exits
        merged = _merge(live, node.lineno)
        for key in differing:
            merged[key] = Var(scope.var(key))
        scope.env.update(merged)
        return Fragment(name, exits)

    def _function_error_check(self, test: ast.expr, scope: _Scope) -> Response | None:
        """`"FunctionError" in response` / `response.get("FunctionError")`."""
        if (
            isinstance(test, ast.Compare)
            and len(test.ops) == 1
            and isinstance(test.ops[0], ast.In)
            and isinstance(test.left, ast.Constant)
            and test.left.value == "FunctionError"
        ):
            value = self.value(test.comparators[0], scope)
            if isinstance(value, Response):
                return value
        if (
            isinstance(test, ast.Call)
            and isinstance(test.func, ast.Attribute)
            and test.func.attr == "get"
            and test.args
            and isinstance(test.args[0], ast.Constant)
            and test.args[0].value == "FunctionError"
        ):
            value = self.value(test.func.value, scope)
            if isinstance(value, Response):
                return value
        return None

    def _function_error_branch(self, node: ast.If, response: Response, scope: _Scope) -> Fragment:
        """Step Functions fails the Task itself when the function raises: the branch becomes a
        Catch of `States.TaskFailed` on the task that produced `response`."""
        task_name = self._task_assigning(response)
        if task_name is None:
            raise Unsupported(node.lineno, "a FunctionError check far from its invoke")
        for stmt in node.body:
            if isinstance(stmt, ast.Raise) and stmt.exc is not None:
                error = _dotted(stmt.exc.func if isinstance(stmt.exc, ast.Call) else stmt.exc)
                self._function_errors.add(error.rsplit(".", 1)[-1])
        handler_scope = replace(scope, env=dict(scope.env), catches=[])
        assert isinstance(response.payload, Var)
        # in the failure branch the decoded payload is the function's error payload (the Catch
        # parses it out of the error's Cause into its own variable)
        failure_var = f"{response.payload.name}_failure"
        failure = Var(failure_var)
        for key, known in list(handler_scope.env.items()):
            if known == response.payload:
                handler_scope.env[key] = failure
        fragment = self.block(node.body, handler_scope)
        if fragment.start is None or fragment.exits:
            raise Unsupported(node.lineno, "a FunctionError check that does not raise")
        task = self.states[task_name]
        assert isinstance(task, Task)
        if any(c.errors == ("States.TaskFailed",) for c in task.catch):
            return self.block(node.orelse, scope)
        self.states[task_name] = replace(
            task,
            catch=(
                *task.catch,
                CatchRule(("States.TaskFailed",), fragment.start, failure_var, result=True),
            ),
        )
        self._unchecked.discard(task_name)
        self.notes.append(
            Reason(
                scope.path,
                node.lineno,
                "the FunctionError check became a Catch of States.TaskFailed",
            )
        )
        return self.block(node.orelse, scope)

    def _task_assigning(self, response: Response) -> str | None:
        if not isinstance(response.payload, Var):
            return None
        for name in reversed(list(self.states)):
            state = self.states[name]
            if isinstance(state, Task) and state.assign == response.payload.name:
                return name
        return None

    def try_(self, node: ast.Try, scope: _Scope) -> Fragment:
        if node.finalbody:
            raise Unsupported(node.lineno, "try/finally")
        if node.orelse:
            raise Unsupported(node.lineno, "try/else")
        handlers = []
        for handler in node.handlers:
            if _transparent(handler):
                self.notes.append(
                    Reason(
                        scope.path,
                        handler.lineno,
                        "an except block that only logs and re-raises: "
                        "the error propagates as before",
                    )
                )
                continue
            errors = (
                self._error_names(handler.type, scope)
                if handler.type is not None
                else ("States.ALL",)
            )
            handlers.append(_Catch(errors, handler))
        if not handlers:
            return self.block(node.body, scope)
        inner = replace(scope, catches=[*scope.catches, *handlers])
        body = self.block(node.body, inner)
        exits = list(body.exits)
        for catch in handlers:
            if not catch.tasks:
                continue
            handler_scope = replace(scope, env=dict(scope.env))
            if catch.handler.name:
                handler_scope.env[catch.handler.name] = Var("error")
            handler_fragment = self.block(
                [s for s in catch.handler.body if not _is_reraise(s)]
                + [s for s in catch.handler.body if _is_reraise(s)][:0],
                handler_scope,
            )
            reraise = any(_is_reraise(s) for s in catch.handler.body)
            start = handler_fragment.start
            if reraise:
                fail = self._add(
                    Fail(self._unique("Failed"), "", Var("error", ("Cause",)), _span(catch.handler))
                )
                if start is None:
                    start = fail
                else:
                    self._connect(handler_fragment.exits, fail)
            else:
                exits += handler_fragment.exits
            if start is None:
                raise Unsupported(catch.handler.lineno, "an except block that swallows the error")
            for task_name in catch.tasks:
                task = self.states[task_name]
                assert isinstance(task, Task)
                self.states[task_name] = replace(
                    task, catch=(*task.catch, CatchRule(catch.errors, start, "error"))
                )
        return Fragment(body.start, exits)

    def for_(self, node: ast.For | ast.AsyncFor, scope: _Scope) -> Fragment:
        retry = self._retry_loop(node, scope)
        if retry is not None:
            return retry
        nested = _nested_append(node, scope)
        if nested is not None:
            # each outer iteration collects its inner loop's list; the lists are joined after
            rewritten, joined = nested
            loops = self.for_(rewritten, scope)
            parts = scope.env.get(joined)
            if parts is not None and not isinstance(parts, _NOT_DATA):
                scope.env[joined] = Op(Operator.FLATTEN, (_expr(parts, node.lineno),))
            return loops
        if not self._has_work_in(node.body, scope):
            collected = self._collecting_loop(node, scope)
            if collected is not None:
                return collected
            raise Unsupported(
                node.lineno, "a loop of local computation would need its own function"
            )
        if node.orelse:
            raise Unsupported(node.lineno, "for/else")
        if not isinstance(node.target, ast.Name):
            raise Unsupported(node.lineno, "a loop target that unpacks")
        items = self.value(node.iter, scope)
        if isinstance(items, _NOT_DATA):
            raise Unsupported(node.lineno, f"a loop over {_describe(items)}")
        if isinstance(items, Arr) and all(_static(i) for i in items.items) and items.items:
            if len(items.items) <= _MAX_UNROLLED and _sequential(node, scope):
                return self._unroll_sequential(node, items, scope)
            unrolled = self._unroll(node, items, scope)
            if unrolled is not None:
                return unrolled
        body = list(node.body)
        collect: ast.expr | None = None
        collector: str | None = None
        last = body[-1] if body else None
        if (
            isinstance(last, ast.Expr)
            and isinstance(last.value, ast.Call)
            and _attr_name(last.value.func) == "append"
            and isinstance(last.value.func, ast.Attribute)
            and isinstance(last.value.func.value, ast.Name)
            and len(last.value.args) == 1
        ):
            collector = last.value.func.value.id
            if isinstance(scope.env.get(collector), Opaque):
                raise Unsupported(
                    last.lineno,
                    f"`{collector}` is filled inside nested loops: each inner loop's results "
                    "would not reach it",
                )
            if scope.env.get(collector) != Arr(()):
                raise Unsupported(last.lineno, f"`{collector}` is not a fresh list before the loop")
            collect = last.value.args[0]
            body = body[:-1]
        item = node.target.id
        saved = dict(self.states)
        processor_scope = replace(scope, env=dict(scope.env), catches=[], returns=None)
        for key, known in scope.env.items():
            if known == Arr(()):
                # a list from before the loop changes across its iterations: not a fresh [] here
                processor_scope.env[key] = Opaque(
                    node.lineno, f"`{key}`, a list that changes across the loop's iterations"
                )
        processor_scope.env[item] = Var(item)
        initial = dict(processor_scope.env)
        fragment = self.block(body, processor_scope)
        if fragment.start is not None and not fragment.exits:
            raise Unsupported(node.lineno, "a loop that returns or raises from inside")
        _forget_loop_locals(scope, initial, processor_scope.env, node.lineno)
        output: Expr = Lit(None)
        if collect is not None:
            if self._has_work(collect, processor_scope):
                before, collect = self.hoist(collect, processor_scope)
                fragment = self._sequence(fragment, before, self._connect)
            output = _expr(self.value(collect, processor_scope), node.lineno)
        done = self._add(Succeed(self._unique(f"{_pascal(item)}Done"), output, _span(node)))
        self._connect(fragment.exits, done)
        processor = self._graph(fragment.start or done)
        for state in processor.states:
            if saved.get(state.name) is None:
                del self.states[state.name]
        name = self._unique(f"ProcessEach{_pascal(item)}")
        map_state = Map(
            name,
            _expr(items, node.lineno),
            item,
            processor,
            output if collect is not None else None,
            collector,
            _DEFAULT_CONCURRENCY,
            None,
            _span(node),
        )
        self._add(map_state)
        self.notes.append(
            Reason(
                scope.path,
                node.lineno,
                f"the loop ran one item at a time; the Map runs up to {_DEFAULT_CONCURRENCY} "
                "at once (set MaxConcurrency to 1 to keep the order of side effects)",
            )
        )
        if collector is not None:
            scope.env[collector] = Var(scope.var(collector))
        return Fragment(name, [(name, "next")])

    def map_(
        self, node: ast.ListComp | ast.Call, value: ast.expr, target: str | None, scope: _Scope
    ) -> Fragment:
        """`[work(x) for x in xs]` or `pool.map(work, xs)` → a Map state."""
        concurrency = _DEFAULT_CONCURRENCY
        if isinstance(node, ast.ListComp):
            if len(node.generators) != 1 or node.generators[0].ifs:
                raise Unsupported(
                    node.lineno, "a comprehension with several loops or a filter around an invoke"
                )
            generator = node.generators[0]
            if not isinstance(generator.target, ast.Name):
                raise Unsupported(node.lineno, "a comprehension target that unpacks")
            item = generator.target.id
            items_node = generator.iter
            element: ast.expr = node.elt
        else:
            assert isinstance(node.func, ast.Attribute)
            receiver = self.value(node.func.value, scope)
            if isinstance(receiver, Pool):
                concurrency = receiver.workers
            callee = self._handed(node, scope)
            assert callee is not None
            item = "item"
            items_node = node.args[1]
            element = ast.Call(
                func=node.args[0],
                args=[ast.Name(item, ast.Load())],
                keywords=[],
                lineno=node.lineno,
                col_offset=node.col_offset,
                end_lineno=node.end_lineno,
                end_col_offset=node.end_col_offset,
            )
        items = _expr(self.value(items_node, scope), node.lineno)
        saved = set(self.states)
        inner = replace(scope, env=dict(scope.env), catches=[], returns=None)
        inner.env[item] = Var(item)
        if isinstance(node, ast.Call):
            assert callee is not None
            assert isinstance(element, ast.Call)
            fragment = self.inline((callee, element), element, "result", inner)
        else:
            fragment = self.effect(element, "result", inner)
        output = _expr(inner.env.get("result", Lit(None)), node.lineno)
        done = self._add(Succeed(self._unique(f"{_pascal(item)}Done"), output, _span(node)))
        self._connect(fragment.exits, done)
        processor = self._graph(fragment.start or done)
        for state in processor.states:
            if state.name not in saved:
                del self.states[state.name]
        name = self._unique(f"ProcessEach{_pascal(item)}")
        collector = scope.var(target) if target else None
        self._add(
            Map(name, items, item, processor, output, collector, concurrency, None, _span(node))
        )
        if target is not None:
            assert collector is not None
            if value is node or (isinstance(value, ast.Call) and _dotted(value.func) == "list"):
                scope.env[target] = Var(collector)
            else:
                scope.env[target] = self._bind_map(value, node, collector, scope)
        return Fragment(name, [(name, "next")])

    def _bind_map(self, value: ast.expr, node: ast.expr, target: str, scope: _Scope) -> Value:
        marker = "__untangle_map__"
        scope.env[marker] = Var(target)
        try:
            rewritten = _Replace(node, ast.Name(marker, ast.Load())).visit(_copy(value))
            if isinstance(rewritten, ast.Call) and _dotted(rewritten.func) == "list":
                return Var(target)
            return self.value(rewritten, scope)
        finally:
            del scope.env[marker]

    def parallel_(self, node: ast.Call, names: list[str], scope: _Scope) -> Fragment:
        """`a, b = await asyncio.gather(f(), g())` → a Parallel state, one branch per call."""
        if len(names) != len(node.args):
            raise Unsupported(
                node.lineno, "asyncio.gather unpacked into a different number of names"
            )
        branches: list[Graph] = []
        for call in node.args:
            saved = set(self.states)
            inner = replace(scope, env=dict(scope.env), catches=[], returns=None)
            fragment = self.effect(call, "result", inner)
            output = _expr(inner.env.get("result", Lit(None)), call.lineno)
            done = self._add(Succeed(self._unique("BranchDone"), output, _span(call)))
            self._connect(fragment.exits, done)
            graph = self._graph(fragment.start or done)
            for state in graph.states:
                if state.name not in saved:
                    del self.states[state.name]
            branches.append(graph)
        name = self._unique("RunInParallel")
        self._add(
            Parallel(name, tuple(branches), tuple(names), None, _span(node), "asyncio.gather")
        )
        for variable in names:
            scope.env[variable] = Var(variable)
        return Fragment(name, [(name, "next")])

    def _collecting_loop(self, node: ast.For | ast.AsyncFor, scope: _Scope) -> Fragment | None:
        """`for x in xs: out.append(f(x))` (or under one `if`) into a fresh list, no work: the
        comprehension `[f(x) for x in xs if …]`, as data."""
        if node.orelse or not isinstance(node.target, ast.Name) or len(node.body) != 1:
            return None
        stmt, condition = node.body[0], None
        if isinstance(stmt, ast.If) and len(stmt.body) == 1 and not stmt.orelse:
            condition, stmt = stmt.test, stmt.body[0]
        if not (
            isinstance(stmt, ast.Expr)
            and isinstance(stmt.value, ast.Call)
            and _attr_name(stmt.value.func) == "append"
            and isinstance(stmt.value.func, ast.Attribute)
            and isinstance(stmt.value.func.value, ast.Name)
            and len(stmt.value.args) == 1
            and scope.env.get(stmt.value.func.value.id) == Arr(())
        ):
            return None
        items = self.value(node.iter, scope)
        if isinstance(items, _NOT_DATA):
            return None
        variable = node.target.id
        inner = replace(scope, env={**scope.env, variable: Var(variable)})
        element = self.value(stmt.value.args[0], inner)
        test: Value = Lit(True) if condition is None else self.value(condition, inner)
        if isinstance(element, _NOT_DATA) or isinstance(test, _NOT_DATA):
            return None
        collector = stmt.value.func.value.id
        if condition is None and element == Var(variable):
            scope.env[collector] = items  # `for f in futures: out.append(f.result())`
        else:
            scope.env[collector] = Op(
                Operator.COMPREHENSION,
                (_expr(items, node.lineno), Lit(variable), element, _truthy(test)),
            )
        return Fragment(None, [])

    def _counter_step(self, node: ast.AugAssign, scope: _Scope) -> tuple[str, Expr] | None:
        """`n += 1` on a number: the new value as data."""
        ops = {ast.Add: Operator.ADD, ast.Sub: Operator.SUB, ast.Mult: Operator.MUL}
        op = ops.get(type(node.op))
        if op is None or not isinstance(node.target, ast.Name):
            return None
        current = scope.env.get(node.target.id)
        step = self.value(node.value, scope)
        if (
            current is None
            or isinstance(current, (*_NOT_DATA, Obj, Arr))
            or (isinstance(current, Lit) and not _is_number(current.value))
            or not (isinstance(step, Lit) and _is_number(step.value))
        ):
            return None
        return node.target.id, Op(op, (_expr(current, node.lineno), step))

    def while_(self, node: ast.While, scope: _Scope) -> Fragment:
        """`while cond: …` → a Choice on `cond` whose rule runs the body and comes back to it (a
        polling loop: Wait, Task, Choice). Locals the body rebinds live in workflow variables,
        set before the loop and at the end of each round."""
        if node.orelse:
            raise Unsupported(node.lineno, "while/else")
        if not self._has_work_in(node.body, scope):
            raise Unsupported(
                node.lineno, "a loop of local computation would need its own function"
            )
        if self._has_work(node.test, scope):
            raise Unsupported(node.lineno, "an invoke in a while condition")
        rebound = _rebound(node.body)
        carried = sorted(name for name in rebound if name in scope.env)
        for name in carried:
            if isinstance(scope.env[name], _NOT_DATA):
                raise Unsupported(
                    node.lineno,
                    f"`{name}` changes from one round of the loop to the next and is not data",
                )
        before: Fragment = Fragment(None, [])
        initial = tuple(
            (scope.var(n), _expr(scope.env[n], node.lineno))
            for n in carried
            if scope.env[n] != Var(scope.var(n))
        )
        loop_name = _choice_name(node.test).replace("Check", "While", 1)
        if initial:
            name = self._unique(f"Before{loop_name}")
            self._add(Assign(name, initial, None, _span(node)))
            before = Fragment(name, [(name, "next")])
        for name in carried:
            scope.env[name] = Var(scope.var(name))
        condition = self.value(node.test, scope)
        if isinstance(condition, _NOT_DATA):
            raise Unsupported(node.lineno, f"a loop condition on {_describe(condition)}")
        constant = _constant_truth(condition)
        if constant is False:
            return before
        head: str | None = None
        if constant is None:
            head = self._unique(loop_name)
            self._add(Choice(head, ((_truthy(condition), ""),), None, _span(node)))
        breaks: list[tuple[Exit, dict[str, Value]]] = []
        body = self.block(node.body, replace(scope, breaks=breaks))
        assert body.start is not None
        # the end of a round stores what the next one reads, then goes back to the test
        for n in carried:
            if isinstance(scope.env.get(n), _NOT_DATA):
                raise Unsupported(
                    node.lineno, f"`{n}` becomes {_describe(scope.env[n])} in the loop"
                )
        exits = self._store_locals(
            [(list(body.exits), scope.env)], carried, scope, node, f"Repeat{loop_name}"
        )
        self._connect(exits, head or body.start)
        if head is not None:
            self._connect([(head, ("rule", 0))], body.start)
        for name in rebound:
            scope.env[name] = (
                Var(scope.var(name))
                if name in carried
                else Opaque(
                    node.lineno, f"`{name}`, set inside the while loop at line {node.lineno}"
                )
            )
        for _, env in breaks:
            for n in carried:
                if isinstance(env.get(n), _NOT_DATA):
                    raise Unsupported(
                        node.lineno, f"`{n}` is {_describe(env[n])} where the loop breaks"
                    )
        leaving: list[Exit] = [(head, "default")] if head is not None else []
        leaving += self._store_locals(
            [([exit_], env) for exit_, env in breaks], carried, scope, node, f"Leave{loop_name}"
        )
        self.notes.append(
            Reason(
                scope.path,
                node.lineno,
                (
                    "the while loop became a Choice that loops back"
                    if head
                    else "the `while True` loop became states that loop back"
                )
                + " (each round is state transitions: Standard bills each)",
            )
        )
        loop = Fragment(head or body.start, leaving)
        return self._sequence(before, loop, self._connect)

    def _store_locals(
        self,
        ends: list[tuple[list[Exit], dict[str, Value]]],
        names: list[str],
        scope: _Scope,
        node: ast.stmt,
        label: str,
    ) -> list[Exit]:
        """The exits of `ends`, each through a Pass storing the locals `names` it holds in
        other values than their variables (nothing to store: the exits as they are)."""
        exits: list[Exit] = []
        for end_exits, env in ends:
            values = tuple(
                (scope.var(n), _expr(env[n], node.lineno))
                for n in names
                if env.get(n) != Var(scope.var(n))
            )
            if values and end_exits:
                setter = self._add(Assign(self._unique(label), values, None, _span(node)))
                self._connect(end_exits, setter)
                end_exits = [(setter, "next")]
            exits += end_exits
        return exits

    def _unroll_sequential(
        self, node: ast.For | ast.AsyncFor, items: Arr, scope: _Scope
    ) -> Fragment:
        """A loop over a few fixed values whose steps depend on each other (a value carried from
        one step to the next, a `break`): the steps one after another, a `break` going on
        after the last."""
        assert isinstance(node.target, ast.Name)
        breaks: list[tuple[Exit, dict[str, Value]]] = []
        inner = replace(scope, breaks=breaks)  # the same locals: the steps run in order
        fragment = Fragment(None, [])
        for element in items.items:
            scope.env[node.target.id] = element
            fragment = self._sequence(fragment, self.block(node.body, inner), self._connect)
            if fragment.start is not None and not fragment.exits:
                break  # every path returned, raised or broke out
        if fragment.start is None:
            return Fragment(None, [])
        # the locals the loop leaves with different values depending on where it stopped: each
        # way out stores its value in a variable (data), or they cannot be read (anything else)
        ends = [(list(fragment.exits), dict(scope.env))] if fragment.exits else []
        ends += [([exit_], env) for exit_, env in breaks]
        keys = {key for _, env in ends for key in env}
        differing = sorted(
            key for key in keys if any(env.get(key) != ends[0][1].get(key) for _, env in ends)
        )
        stored = [
            key
            for key in differing
            if all(
                env.get(key) is not None and not isinstance(env[key], _NOT_DATA) for _, env in ends
            )
        ]
        exits = self._store_locals(
            ends, stored, scope, node, f"Set{_pascal(stored[0])}" if stored else ""
        )
        for key in differing:
            scope.env[key] = (
                Var(scope.var(key))
                if key in stored
                else Opaque(node.lineno, f"`{key}`, which depends on where the loop stopped")
            )
        self.notes.append(
            Reason(
                scope.path,
                node.lineno,
                f"the loop over {len(items.items)} fixed values was unrolled: its steps run one "
                "after another, as before",
            )
        )
        return Fragment(fragment.start, exits)

    def _unroll(self, node: ast.For | ast.AsyncFor, items: Arr, scope: _Scope) -> Fragment | None:
        """A loop over a fixed list of values (function names, say) whose results go into a
        fresh dict, `results[x] = work(x)`: one Parallel branch per value."""
        assert isinstance(node.target, ast.Name)
        body = list(node.body)
        last = body[-1] if body else None
        if not (
            isinstance(last, ast.Assign)
            and len(last.targets) == 1
            and isinstance(last.targets[0], ast.Subscript)
            and isinstance(last.targets[0].value, ast.Name)
            and scope.env.get(last.targets[0].value.id) == Obj(())
        ):
            return None
        collector = last.targets[0].value.id
        key_node = last.targets[0].slice
        branches: list[Graph] = []
        keys: list[Expr] = []
        variables: list[str] = []
        for index, element in enumerate(items.items):
            saved = set(self.states)
            inner = replace(scope, env=dict(scope.env), catches=[], returns=None)
            inner.env[node.target.id] = element
            initial = dict(inner.env)
            fragment = self.block(body[:-1], inner)
            _forget_loop_locals(scope, initial, inner.env, node.lineno)
            step = self.effect(last.value, "result", inner)
            fragment = self._sequence(fragment, step, self._connect)
            if fragment.start is not None and not fragment.exits:
                raise Unsupported(node.lineno, "a loop that returns or raises from inside")
            key = _expr(self.value(key_node, inner), node.lineno)
            if not _static(key):
                return None
            keys.append(key)
            output = _expr(inner.env.get("result", Lit(None)), node.lineno)
            done = self._add(Succeed(self._unique("BranchDone"), output, _span(node)))
            self._connect(fragment.exits, done)
            graph = self._graph(fragment.start or done)
            for state in graph.states:
                if state.name not in saved:
                    del self.states[state.name]
            branches.append(graph)
            variables.append(scope.var(f"{collector}_{index}"))
        name = self._unique(f"Each{_pascal(node.target.id)}InParallel")
        self._add(
            Parallel(name, tuple(branches), tuple(variables), None, _span(node), "unrolled loop")
        )
        entries: list[tuple[str, Expr]] = []
        for key, variable in zip(keys, variables):
            text = key.value if isinstance(key, Lit) else f"${{{key.args[0].value}}}"  # type: ignore[union-attr]
            entries.append((str(text), Var(variable)))
        scope.env[collector] = Obj(tuple(entries))
        self.notes.append(
            Reason(
                scope.path,
                node.lineno,
                f"the loop over {len(items.items)} fixed values became a Parallel state: "
                "its steps run at the same time instead of one after another",
            )
        )
        return Fragment(name, [(name, "next")])

    def _has_work_in(self, body: list[ast.stmt], scope: _Scope) -> bool:
        return any(
            isinstance(sub, ast.expr) and self._has_work(sub, scope)
            for stmt in body
            for sub in ast.walk(stmt)
            if isinstance(sub, ast.Call)
        )

    def _retry_loop(self, node: ast.For | ast.AsyncFor, scope: _Scope) -> Fragment | None:
        """`for attempt in range(N): try: …invoke…; return/break  except E: …sleep(d)…`."""
        if not (
            isinstance(node.iter, ast.Call)
            and _dotted(node.iter.func) == "range"
            and len(node.iter.args) == 1
            and len(node.body) == 1
            and isinstance(node.body[0], ast.Try)
            and isinstance(node.target, ast.Name)
        ):
            return None
        attempts = int(self._number(node.iter.args[0], scope))
        return self._retry(node, node.target.id, 0, attempts, node.body[0], scope)

    def _retry_while(self, node: ast.While, scope: _Scope) -> Fragment | None:
        """`n = 0; while n < N: try: …invoke…; return  except E: n += 1; …sleep(d(n))…`."""
        test = node.test
        if not (
            isinstance(test, ast.Compare)
            and len(test.ops) == 1
            and isinstance(test.ops[0], (ast.Lt, ast.LtE))
            and isinstance(test.left, ast.Name)
            and len(node.body) == 1
            and isinstance(node.body[0], ast.Try)
            and not node.orelse
        ):
            return None
        counter = test.left.id
        start = scope.env.get(counter)
        if not (isinstance(start, Lit) and isinstance(start.value, int)):
            return None
        limit = int(self._number(test.comparators[0], scope))
        attempts = limit - start.value + (1 if isinstance(test.ops[0], ast.LtE) else 0)
        return self._retry(node, counter, start.value, attempts, node.body[0], scope)

    def _retry(
        self,
        node: ast.stmt,
        attempt: str,
        first: int,
        attempts: int,
        trial: ast.Try,
        scope: _Scope,
    ) -> Fragment | None:
        if len(trial.handlers) != 1 or attempts < 1:
            return None
        handler = trial.handlers[0]
        # the counter value the first pause sees: incremented in the except block before it?
        for stmt in handler.body:
            if (
                isinstance(stmt, ast.AugAssign)
                and isinstance(stmt.target, ast.Name)
                and stmt.target.id == attempt
            ):
                first += 1
                break
            if any(
                isinstance(sub, ast.Call) and _dotted(sub.func).endswith("sleep")
                for sub in ast.walk(stmt)
            ):
                break
        delay: ast.expr | None = None
        for sub in ast.walk(handler):
            if (
                isinstance(sub, ast.Call)
                and (scope.path, sub.lineno, _column(sub, scope)) in self.sleeps
            ):
                delay = sub.args[0] if sub.args else None
        interval, backoff = 1.0, 1.0
        if delay is not None:
            interval, backoff = self._backoff(delay, attempt, handler, scope, first)
        body = [s for s in trial.body if not isinstance(s, ast.Break)]
        retry_scope = replace(scope, retry=(RetryRule(("States.ALL",), 0, 0, 1.0),))
        fragment = self.block(body, retry_scope)
        errors = (
            self._error_names(handler.type, scope) if handler.type is not None else ("States.ALL",)
        )
        rule = RetryRule(errors, interval, attempts - 1, backoff)
        for name, state in list(self.states.items()):
            if (
                isinstance(state, Task)
                and state.retry
                and state.retry[0].max_attempts == 0
                and state.retry[0].interval == 0
            ):
                self.states[name] = replace(state, retry=(rule,))
        self.notes.append(
            Reason(
                scope.path,
                node.lineno,
                f"the retry loop became a Retry: {attempts - 1} retries, {interval:g} s, "
                f"backoff {backoff:g}",
            )
        )
        return fragment

    def _backoff(
        self, delay: ast.expr, attempt: str, handler: ast.ExceptHandler, scope: _Scope, first: int
    ) -> tuple[float, float]:
        # resolve `delay = …` assignments inside the except block
        assigned = {
            s.targets[0].id: s.value
            for s in ast.walk(handler)
            if isinstance(s, ast.Assign)
            and len(s.targets) == 1
            and isinstance(s.targets[0], ast.Name)
        }
        if isinstance(delay, ast.Name) and delay.id in assigned:
            delay = assigned[delay.id]
        values = []
        for n in (first, first + 1):
            env = dict(scope.env)
            env[attempt] = Lit(n)
            value = self.value(delay, replace(scope, env=env))
            if not (isinstance(value, Lit) and isinstance(value.value, (int, float))):
                raise Unsupported(
                    delay.lineno, "a retry delay that is not a function of the attempt number"
                )
            values.append(float(value.value))
        interval = max(values[0], 1.0)
        backoff = values[1] / values[0] if values[0] else 1.0
        return interval, max(backoff, 1.0)

    # --- expressions --------------------------------------------------------------------------

    def value(self, node: ast.expr, scope: _Scope) -> Value:
        try:
            return self._value(node, scope)
        except RecursionError:
            raise Unsupported(node.lineno, "an expression too deep to translate") from None

    def _value(self, node: ast.expr, scope: _Scope) -> Value:
        if isinstance(node, ast.Constant):
            if isinstance(node.value, (str, int, float, bool)) or node.value is None:
                return Lit(node.value)
            return Opaque(node.lineno, "a bytes constant")
        if isinstance(node, ast.Name):
            if node.id in scope.env:
                return scope.env[node.id]
            return self._global(node, scope)
        if isinstance(node, ast.Attribute):
            return self._global(node, scope)
        if isinstance(node, ast.Await):
            return self.value(node.value, scope)
        if isinstance(node, ast.Subscript) and _dotted(node.value) == "os.environ":
            key = self.value(node.slice, scope)
            if isinstance(key, Lit) and isinstance(key.value, str):
                return Op(Operator.ENV, (key,))
        if isinstance(node, ast.Subscript):
            base = self.value(node.value, scope)
            key = self.value(node.slice, scope)
            if isinstance(base, Response):
                if key == Lit("Payload"):
                    return Stream(base.payload)
                if key == Lit("StatusCode"):
                    return Lit(200)
                return Opaque(node.lineno, "a field of the raw invoke response")
            if isinstance(base, (Stream, Opaque, SelfRef, Pool, ObjectRef)):
                return Opaque(node.lineno, _describe(base))
            if (
                isinstance(key, Lit)
                and isinstance(key.value, (str, int))
                and not isinstance(key.value, bool)
            ):
                found = with_path(base, key.value)
                if found is not None:
                    return found
            return Opaque(node.lineno, f"`{_source(node, scope)}`")
        if isinstance(node, ast.Dict):
            items: list[tuple[str, Expr]] = []
            for k, v in zip(node.keys, node.values):
                if not (isinstance(k, ast.Constant) and isinstance(k.value, str)):
                    return Opaque(node.lineno, "a dict with computed keys")
                items.append(
                    (k.value, _expr(self.value(v, scope), getattr(v, "lineno", node.lineno)))
                )
            return Obj(tuple(items))
        if isinstance(node, (ast.List, ast.Tuple)):
            return Arr(
                tuple(
                    _expr(self.value(e, scope), getattr(e, "lineno", node.lineno))
                    for e in node.elts
                )
            )
        if isinstance(node, ast.Compare):
            return self._compare(node, scope)
        if isinstance(node, ast.BoolOp):
            op = Operator.AND if isinstance(node.op, ast.And) else Operator.OR
            operands = [
                _truthy(_expr(self.value(v, scope), getattr(v, "lineno", node.lineno)))
                for v in node.values
            ]
            # constants decide or drop out (a StatusCode check that is always true, say)
            absorbing, neutral = (
                (Lit(False), Lit(True)) if op == Operator.AND else (Lit(True), Lit(False))
            )
            if absorbing in operands:
                return absorbing
            operands = [o for o in operands if o != neutral]
            if not operands:
                return neutral
            return operands[0] if len(operands) == 1 else Op(op, tuple(operands))
        if isinstance(node, ast.UnaryOp):
            operand = _expr(self.value(node.operand, scope), node.lineno)
            if isinstance(node.op, ast.Not):
                return Op(Operator.NOT, (_truthy(operand),))
            if (
                isinstance(node.op, ast.USub)
                and isinstance(operand, Lit)
                and isinstance(operand.value, (int, float))
            ):
                return Lit(-operand.value)
            return Opaque(node.lineno, f"`{_source(node, scope)}`")
        if isinstance(node, ast.BinOp):
            return self._binop(node, scope)
        if isinstance(node, ast.JoinedStr):
            parts: list[Expr] = []
            for part in node.values:
                if isinstance(part, ast.Constant):
                    parts.append(Lit(str(part.value)))
                elif (
                    isinstance(part, ast.FormattedValue)
                    and part.format_spec is None
                    and part.conversion in (-1, 115)
                ):
                    parts.append(_expr(self.value(part.value, scope), node.lineno))
                else:
                    return Opaque(node.lineno, "a formatted string with a format spec")
            return Op(Operator.CONCAT, tuple(parts))
        if isinstance(node, ast.IfExp):
            test = self.value(node.test, scope)
            decided = (
                None if isinstance(test, _NOT_DATA) else _constant_truth(_expr(test, node.lineno))
            )
            if decided is not None:  # a helper's flag argument, say
                return self.value(node.body if decided else node.orelse, scope)
            body = self.value(node.body, scope)
            orelse = self.value(node.orelse, scope)
            if any(isinstance(v, _NOT_DATA) for v in (test, body, orelse)):
                return Opaque(node.lineno, "a conditional expression on values the workflow lacks")
            return Op(
                Operator.IF,
                (
                    _truthy(_expr(test, node.lineno)),
                    _expr(body, node.lineno),
                    _expr(orelse, node.lineno),
                ),
            )
        if isinstance(node, ast.ListComp):
            return self._comprehension(node, scope)
        if isinstance(node, ast.Call):
            return self._call(node, scope)
        return Opaque(node.lineno, f"`{_source(node, scope)}`")

    def _comprehension(self, node: ast.ListComp, scope: _Scope) -> Value:
        """`[f(x) for x in xs if c(x)]` with no work inside: a data transformation."""
        generator = node.generators[0]
        if len(node.generators) != 1 or not isinstance(generator.target, ast.Name):
            return Opaque(node.lineno, "a comprehension with several loops or an unpacking target")
        items = self.value(generator.iter, scope)
        if isinstance(items, _NOT_DATA):
            return Opaque(node.lineno, f"a comprehension over {_describe(items)}")
        variable = generator.target.id
        inner = replace(scope, env={**scope.env, variable: Var(variable)})
        element = _expr(self.value(node.elt, inner), node.lineno)
        conditions = [_truthy(_expr(self.value(c, inner), c.lineno)) for c in generator.ifs]
        condition: Expr = (
            Lit(True)
            if not conditions
            else conditions[0]
            if len(conditions) == 1
            else Op(Operator.AND, tuple(conditions))
        )
        return Op(Operator.COMPREHENSION, (items, Lit(variable), element, condition))

    def _global(self, node: ast.Name | ast.Attribute, scope: _Scope) -> Value:
        """A module-level constant, a class attribute, an environment variable."""
        if isinstance(node, ast.Attribute) and not _is_module_ref(node.value, scope):
            base = self.value(node.value, scope)
            if isinstance(base, ObjectRef):
                for name, stored in base.attrs:
                    if name == node.attr:
                        return stored  # type: ignore[return-value]
                base = SelfRef(base.cls)
            if isinstance(base, SelfRef):
                return _constant(self.program.attribute_values(base.cls, node.attr), node, scope)
            if isinstance(base, Response):
                return Opaque(node.lineno, "an attribute of the raw invoke response")
            if isinstance(base, Opaque):
                return base
            return Opaque(node.lineno, f"`{_source(node, scope)}`")
        qualname = self._function_at(scope.path, node.lineno) or ""
        module = self.program.function_module.get(qualname)
        dotted = _dotted(node)
        if module is None or not dotted:
            return Opaque(node.lineno, f"`{_source(node, scope)}`")
        head, _, rest = dotted.partition(".")
        sym: Sym = Ref(f"{module}.{head}")
        for part in rest.split(".") if rest else []:
            sym = AttrSym(sym, part)
        found = _constant(self.program.values(sym), node, scope)
        if isinstance(found, Opaque) and not rest:
            assigned = self._module_assignment(self.program.modules[module].path, head)
            if assigned is not None:
                return self.value(assigned, _Scope({}, scope.path, scope.source_lines))
        return found

    def _module_assignment(self, path: str, name: str) -> ast.expr | None:
        """The value of the one top-level `name = …` of a module, if there is exactly one."""
        if path not in self._trees:
            text = self.read_source(path)
            self._trees[path] = (ast.parse(text), text.splitlines())
        tree, _ = self._trees[path]
        values = [
            stmt.value
            for stmt in tree.body
            if isinstance(stmt, ast.Assign)
            and len(stmt.targets) == 1
            and isinstance(stmt.targets[0], ast.Name)
            and stmt.targets[0].id == name
        ]
        return values[0] if len(values) == 1 else None

    def _compare(self, node: ast.Compare, scope: _Scope) -> Value:
        left = _expr(self.value(node.left, scope), node.lineno)
        results: list[Expr] = []
        for op, comparator in zip(node.ops, node.comparators):
            right = _expr(self.value(comparator, scope), node.lineno)
            if isinstance(op, (ast.In, ast.NotIn)):
                if isinstance(left, Lit) and isinstance(left.value, str):
                    found = with_path(right, left.value)
                    if found is None:
                        raise Unsupported(node.lineno, f"`in` on {_source(comparator, scope)}")
                    test: Expr = Op(Operator.EXISTS, (found,))
                    results.append(test if isinstance(op, ast.In) else Op(Operator.NOT, (test,)))
                else:
                    raise Unsupported(node.lineno, "`in` on a list")
            elif isinstance(op, (ast.Is, ast.IsNot)):
                if right != Lit(None):
                    raise Unsupported(node.lineno, "`is` with something other than None")
                test = Op(Operator.IS_NULL, (left,))
                results.append(test if isinstance(op, ast.Is) else Op(Operator.NOT, (test,)))
            else:
                symbol = {
                    ast.Eq: Operator.EQ,
                    ast.NotEq: Operator.NE,
                    ast.Lt: Operator.LT,
                    ast.LtE: Operator.LE,
                    ast.Gt: Operator.GT,
                    ast.GtE: Operator.GE,
                }[type(op)]
                results.append(_fold(Op(symbol, (left, right))))
            left = right
        return results[0] if len(results) == 1 else Op(Operator.AND, tuple(results))

    def _binop(self, node: ast.BinOp, scope: _Scope) -> Value:
        left = _expr(self.value(node.left, scope), node.lineno)
        right = _expr(self.value(node.right, scope), node.lineno)
        symbol = {
            ast.Add: Operator.ADD,
            ast.Sub: Operator.SUB,
            ast.Mult: Operator.MUL,
            ast.Div: Operator.DIV,
            ast.Pow: Operator.POW,
        }.get(type(node.op))
        if symbol is None:
            return Opaque(node.lineno, f"`{_source(node, scope)}`")
        folded = _fold(Op(symbol, (left, right)))
        if isinstance(folded, Op) and symbol == Operator.POW:
            return Opaque(node.lineno, "a power of a value known only at run time")
        return folded

    def _call(self, node: ast.Call, scope: _Scope) -> Value:
        dotted = _dotted(node.func)
        name = node.func.attr if isinstance(node.func, ast.Attribute) else dotted
        if name in ("loads", "load") and dotted.startswith("json") and len(node.args) == 1:
            argument = node.args[0]
            if (
                isinstance(argument, ast.BoolOp)
                and isinstance(argument.op, ast.Or)
                and len(argument.values) == 2
                and isinstance(argument.values[1], ast.Constant)
            ):
                argument = argument.values[0]  # `… or "null"`: an empty payload reads as null
            inner = self.value(argument, scope)
            if isinstance(inner, (Stream, Response)):
                return inner.payload
            if isinstance(inner, Op) and inner.op == Operator.JSON_STRING:
                return inner.args[0]
            if not isinstance(inner, _NOT_DATA):
                return Op(Operator.JSON_PARSE, (inner,))
            return Opaque(node.lineno, f"`{_source(node, scope)}`")
        if name == "dumps" and dotted.startswith("json") and node.args:
            inner = _expr(self.value(node.args[0], scope), node.lineno)
            return Op(Operator.JSON_STRING, (inner,))
        if (
            isinstance(node.func, ast.Attribute)
            and node.func.attr == "join"
            and isinstance(node.func.value, ast.Constant)
            and isinstance(node.func.value.value, str)
            and len(node.args) == 1
        ):
            joined = _expr(self.value(node.args[0], scope), node.lineno)
            return Op(Operator.JOIN, (joined, Lit(node.func.value.value)))
        if (
            isinstance(node.func, ast.Attribute)
            and node.func.attr in _STRING_METHODS
            and not node.args
        ):
            text = self.value(node.func.value, scope)
            if not isinstance(text, _NOT_DATA):
                return Op(_STRING_METHODS[node.func.attr], (text,))
        if isinstance(node.func, ast.Attribute):
            receiver = self.value(node.func.value, scope)
            if name in ("read", "decode", "encode") and isinstance(receiver, (Stream, Op)):
                return receiver
            if name == "result" and not node.args and not isinstance(receiver, _NOT_DATA):
                # a future of pool.submit is modelled by its result: JSON data has no .result()
                return receiver
            if name == "get" and not isinstance(receiver, _NOT_DATA) and node.args:
                key = self.value(node.args[0], scope)
                if isinstance(key, Lit) and isinstance(key.value, str):
                    found = with_path(receiver, key.value)
                    if found is not None:
                        default = (
                            _expr(self.value(node.args[1], scope), node.lineno)
                            if len(node.args) > 1
                            else Lit(None)
                        )
                        return Op(Operator.DEFAULT, (found, default))
            if isinstance(receiver, Response) and name == "get":
                return Opaque(node.lineno, "a field of the raw invoke response")
        if dotted in ("os.getenv", "os.environ.get") and node.args:
            key = self.value(node.args[0], scope)
            if isinstance(key, Lit):
                fallback = self.value(node.args[1], scope) if len(node.args) > 1 else None
                if isinstance(fallback, Lit) and fallback.value is not None:
                    self.env_defaults.setdefault(str(key.value), str(fallback.value))
                if len(node.args) > 1:
                    self.notes.append(
                        Reason(
                            scope.path,
                            node.lineno,
                            f"the default of environment variable {key.value} is dropped: "
                            "the template must set it",
                        )
                    )
                return Op(Operator.ENV, (key,))
        if dotted in ("str",) and len(node.args) == 1:
            return Op(Operator.CONCAT, (_expr(self.value(node.args[0], scope), node.lineno),))
        if dotted in ("len",) and len(node.args) == 1:
            return Op(Operator.COUNT, (_expr(self.value(node.args[0], scope), node.lineno),))
        if dotted.rsplit(".", 1)[-1] == "as_completed" and len(node.args) == 1:
            futures = self.value(node.args[0], scope)
            if not isinstance(futures, _NOT_DATA):
                self.notes.append(
                    Reason(
                        scope.path,
                        node.lineno,
                        "as_completed: the Map gives the results in the order of the items, "
                        "not the order they finished in",
                    )
                )
                return futures
        if dotted in ("asyncio.run", "loop.run_until_complete") and len(node.args) == 1:
            return self.value(node.args[0], scope)
        if dotted in ("float", "int") and len(node.args) == 1:
            return Op(Operator.NUMBER, (_expr(self.value(node.args[0], scope), node.lineno),))
        if dotted in ("bool",) and len(node.args) == 1:
            return _truthy(_expr(self.value(node.args[0], scope), node.lineno))
        pure = self._pure_inline(node, scope)
        if pure is not None:
            return pure
        return Opaque(node.lineno, f"`{_source(node, scope)}` (local computation)")

    def _pure_inline(self, node: ast.Call, scope: _Scope) -> Value | None:
        """A call to a small function of the tree that does no work (`_payload(resp)`): its
        `return` expression with the arguments substituted."""
        caller = self._function_at(scope.path, node.lineno)
        if caller is None or self._inline_depth > 8:
            return None
        for edge in self.program.edges_from(caller):
            if edge.site.span.line != node.lineno or edge.site.span.column != _column(node, scope):
                continue
            facts = self.program.functions.get(edge.callee)
            if facts is None:
                continue
            module = self.program.module_of(edge.callee)
            try:
                definition, lines = self._function_node(module.path, facts.name, facts.span.line)
            except Unsupported:
                return None
            body = [
                s
                for s in definition.body
                if not (isinstance(s, ast.Expr) and isinstance(s.value, ast.Constant))
            ]
            if definition.decorator_list or not body or not isinstance(body[-1], ast.Return):
                return None
            if not all(
                isinstance(s, ast.Assign)
                and len(s.targets) == 1
                and isinstance(s.targets[0], ast.Name)
                for s in body[:-1]
            ):
                return None
            params = [a.arg for a in (*definition.args.posonlyargs, *definition.args.args)]
            inner = _Scope({}, module.path, lines)
            if facts.is_method and params:
                inner.env[params[0]] = self._receiver(node, edge.callee, scope)
                params = params[1:]
            if len(node.args) > len(params) or any(k.arg is None for k in node.keywords):
                return None
            for param, arg in zip(params, node.args):
                inner.env[param] = self.value(arg, scope)
            for keyword in node.keywords:
                assert keyword.arg is not None
                inner.env[keyword.arg] = self.value(keyword.value, scope)
            self._inline_depth += 1
            try:
                for stmt in body[:-1]:
                    assert isinstance(stmt, ast.Assign) and isinstance(stmt.targets[0], ast.Name)
                    inner.env[stmt.targets[0].id] = self.value(stmt.value, inner)
                returned = body[-1]
                assert isinstance(returned, ast.Return)
                if returned.value is None:
                    return Lit(None)
                return self.value(returned.value, inner)
            finally:
                self._inline_depth -= 1
        return None


# --- helpers ----------------------------------------------------------------------------------


def _targets(state: State) -> Iterator[str]:
    if isinstance(state, Choice):
        for _, target in state.rules:
            yield target
        if state.default:
            yield state.default
        return
    nxt = getattr(state, "next", None)
    if nxt:
        yield nxt
    if isinstance(state, Task):
        for catch in state.catch:
            yield catch.next


def _constant(values: frozenset[object], node: ast.expr, scope: _Scope) -> Value:
    if len(values) == 1:
        only = next(iter(values))
        if isinstance(only, ConstV):
            return Lit(only.value)
        if isinstance(only, Env):
            return Op(Operator.ENV, (Lit(only.name),))
    return Opaque(node.lineno, f"`{_source(node, scope)}` (not a constant)")


def _expr(value: Value, line: int) -> Expr:
    if isinstance(value, Opaque) and value.extract is not None:
        return value.extract()
    if isinstance(value, (SelfRef, Pool, ObjectRef)):
        raise Unsupported(line, "the workflow would need an object, not data")
    if isinstance(value, Opaque):
        raise Unsupported(value.line, f"the workflow would need {value.message}")
    if isinstance(value, (Response, Stream)):
        return value.payload
    return value


def _static(expr: Expr) -> bool:
    """A literal, or an environment variable (a deploy-time substitution)."""
    if isinstance(expr, Lit):
        return isinstance(expr.value, (str, int, float, bool))
    return isinstance(expr, Op) and expr.op == Operator.ENV and isinstance(expr.args[0], Lit)


def _truthy(expr: Expr) -> Expr:
    if isinstance(expr, Op) and expr.op in (
        Operator.EQ,
        Operator.NE,
        Operator.LT,
        Operator.LE,
        Operator.GT,
        Operator.GE,
        Operator.AND,
        Operator.OR,
        Operator.NOT,
        Operator.EXISTS,
        Operator.IS_NULL,
        Operator.TRUTHY,
    ):
        return expr
    if isinstance(expr, Lit):
        return Lit(bool(expr.value))
    return Op(Operator.TRUTHY, (expr,))


def _constant_truth(expr: Expr) -> bool | None:
    folded = _fold(expr) if isinstance(expr, Op) else expr
    if isinstance(folded, Lit):
        return bool(folded.value)
    return None


def _fold(expr: Expr) -> Expr:
    if not isinstance(expr, Op) or not all(isinstance(a, Lit) for a in expr.args):
        return expr
    values = [a.value for a in expr.args if isinstance(a, Lit)]
    try:
        if expr.op == Operator.EQ:
            return Lit(values[0] == values[1])
        if expr.op == Operator.NE:
            return Lit(values[0] != values[1])
        if expr.op in (
            Operator.LT,
            Operator.LE,
            Operator.GT,
            Operator.GE,
            Operator.ADD,
            Operator.SUB,
            Operator.MUL,
            Operator.DIV,
            Operator.POW,
        ):
            a, b = values
            if isinstance(a, (int, float)) and isinstance(b, (int, float)):
                result = _ARITHMETIC[expr.op](a, b)
                return Lit(result)
            if isinstance(a, str) and isinstance(b, str) and expr.op == Operator.ADD:
                return Lit(a + b)
    except (ZeroDivisionError, OverflowError, TypeError):
        return expr
    return expr


def _merge(envs: list[dict[str, Value]], line: int) -> dict[str, Value]:
    if not envs:
        return {}
    merged: dict[str, Value] = {}
    keys = set().union(*envs)
    for key in keys:
        values = [env.get(key) for env in envs]
        first = values[0]
        if all(v == first for v in values) and first is not None:
            merged[key] = first
        else:
            merged[key] = Opaque(line, f"`{key}`, which the branches set differently")
    return merged


def _transparent(handler: ast.ExceptHandler) -> bool:
    """`except Exception: log(...); raise`: the error propagates unchanged."""
    if not handler.body or not _is_reraise(handler.body[-1]):
        return False
    for stmt in handler.body[:-1]:
        if not (isinstance(stmt, ast.Expr) and isinstance(stmt.value, ast.Call)):
            return False
        head = _dotted(stmt.value.func).split(".")[0]
        if head not in ("logger", "log", "logging", "LOGGER", "LOG", "print"):
            return False
    return True


def _is_reraise(stmt: ast.stmt) -> bool:
    return isinstance(stmt, ast.Raise) and stmt.exc is None


def _pool_size(node: ast.expr, builder: WorkflowBuilder, scope: _Scope) -> int | None:
    if not isinstance(node, ast.Call):
        return None
    if _dotted(node.func).rsplit(".", 1)[-1] not in ("ThreadPoolExecutor", "ThreadPool", "Pool"):
        return None
    workers = next((k.value for k in node.keywords if k.arg in ("max_workers", "processes")), None)
    if workers is None and node.args:
        workers = node.args[0]
    if workers is None:
        return _DEFAULT_CONCURRENCY
    value = builder.value(workers, scope)
    if isinstance(value, Lit) and isinstance(value.value, int):
        return value.value
    return _DEFAULT_CONCURRENCY


def _names(target: ast.expr) -> list[str]:
    return [n.id for n in ast.walk(target) if isinstance(n, ast.Name)]


def _dotted(node: ast.expr) -> str:
    if isinstance(node, ast.Name):
        return node.id
    if isinstance(node, ast.Attribute):
        inner = _dotted(node.value)
        return f"{inner}.{node.attr}" if inner else ""
    return ""


def _attr_name(node: ast.expr) -> str:
    return node.attr if isinstance(node, ast.Attribute) else ""


def _is_module_ref(node: ast.expr, scope: _Scope) -> bool:
    return isinstance(node, ast.Name) and node.id not in scope.env


def _column(node: ast.expr, scope: _Scope) -> int:
    line = scope.source_lines[node.lineno - 1] if 0 < node.lineno <= len(scope.source_lines) else ""
    if line.isascii():
        return node.col_offset + 1
    return len(line.encode("utf-8")[: node.col_offset].decode("utf-8", "replace")) + 1


def _find_call(node: ast.expr, line: int) -> ast.Call | None:
    for sub in ast.walk(node):
        if (
            isinstance(sub, ast.Call)
            and sub.lineno == line
            and _attr_name(sub.func)
            in (
                "invoke",
                "invoke_async",
                "sleep",
            )
        ):
            return sub
    for sub in ast.walk(node):
        if isinstance(sub, ast.Call) and sub.lineno == line:
            return sub
    return None


def _span(node: ast.AST) -> Span:
    line = getattr(node, "lineno", 1)
    return Span(
        line,
        getattr(node, "col_offset", 0) + 1,
        getattr(node, "end_lineno", line) or line,
        (getattr(node, "end_col_offset", 0) or 0) + 1,
    )


def _source(node: ast.AST, scope: _Scope) -> str:
    try:
        text = ast.unparse(node)
    except Exception:  # unparse of odd nodes: a placeholder is enough for a message
        return "…"
    return text if len(text) <= 60 else text[:57] + "..."


def _describe(value: Value) -> str:
    if isinstance(value, Opaque):
        return value.message
    return "the raw invoke response"


def _snake(text: str) -> str:
    last = text.rsplit(".", 1)[-1] or "step"
    return re.sub(r"(?<!^)(?=[A-Z])", "_", last).lower()


def _full_source(node: ast.AST) -> str:
    try:
        return ast.unparse(node)
    except Exception:  # an odd node: the line number still locates it
        return ""


def _choice_name(test: ast.expr) -> str:
    names = [n.id for n in ast.walk(test) if isinstance(n, ast.Name)]
    keys = [
        n.slice.value
        for n in ast.walk(test)
        if isinstance(n, ast.Subscript)
        and isinstance(n.slice, ast.Constant)
        and isinstance(n.slice.value, str)
    ]
    subject = keys[0] if keys else (names[0] if names else "Condition")
    return "Check" + _pascal(subject)


def _workflow_name(handler: str) -> str:
    parts = [
        p
        for p in handler.split(".")
        if p not in ("app", "lambda_function", "handler", "lambda_handler", "main", "index")
    ]
    return _pascal(parts[-1] if parts else handler) or "Workflow"


class _Replace(ast.NodeTransformer):
    def __init__(self, old: ast.AST, new: ast.expr) -> None:
        self.old = old
        self.new = new

    def generic_visit(self, node: ast.AST) -> ast.AST:
        if _same(node, self.old):
            return self.new
        return super().generic_visit(node)


def _same(a: ast.AST, b: ast.AST) -> bool:
    return (
        type(a) is type(b)
        and getattr(a, "lineno", None) == getattr(b, "lineno", None)
        and getattr(a, "col_offset", None) == getattr(b, "col_offset", None)
        and getattr(a, "end_col_offset", None) == getattr(b, "end_col_offset", None)
    )


def _copy(node: ast.expr) -> ast.expr:
    import copy

    return copy.deepcopy(node)


_ = (Extern, Func, Method)


def _sequential(node: ast.For | ast.AsyncFor, scope: _Scope) -> bool:
    """The loop's steps depend on each other: it breaks, or it reads and rebinds a local from
    before the loop (`state = step(state)`)."""
    inner_loops = {
        id(sub)
        for stmt in node.body
        for sub in ast.walk(stmt)
        if isinstance(sub, (ast.For, ast.AsyncFor, ast.While))
    }
    nested = {
        id(inner)
        for stmt in node.body
        for loop in ast.walk(stmt)
        if id(loop) in inner_loops
        for inner in ast.walk(loop)
    }
    walked = [sub for stmt in node.body for sub in ast.walk(stmt)]
    if any(isinstance(sub, ast.Break) and id(sub) not in nested for sub in walked):
        return True
    assigned = _rebound(node.body)
    read = {sub.id for sub in walked if isinstance(sub, ast.Name) and isinstance(sub.ctx, ast.Load)}
    return bool(assigned & read & set(scope.env))


def _forget_loop_locals(
    scope: _Scope, initial: dict[str, Value], after: dict[str, Value], line: int
) -> None:
    """Locals a loop body bound are, after a Map or Parallel, not what Python leaves in them (the
    last iteration's): iterations share no variables. Reading them later is refused."""
    for key, value in after.items():
        if initial.get(key) != value:
            scope.env[key] = Opaque(
                line, f"`{key}`, set inside the loop at line {line} (its iterations run apart)"
            )


def _rebound(body: list[ast.stmt]) -> set[str]:
    """Names a loop body assigns (not inside nested functions)."""
    found: set[str] = set()
    for stmt in body:
        for sub in ast.walk(stmt):
            if isinstance(sub, ast.Name) and isinstance(sub.ctx, ast.Store):
                found.add(sub.id)
    return found


def _is_number(value: object) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


_Node = TypeVar("_Node", bound=ast.AST)


def _nested_append(node: ast.For | ast.AsyncFor, scope: _Scope) -> tuple[ast.For, str] | None:
    """`for a in xs: …; for b in ys: …; out.append(v)` with `out` a fresh list from before both
    loops: the same loops with the inner one filling a list of its own, which the outer one
    appends (then `out` is those lists joined)."""
    if not node.body or not isinstance(node.body[-1], ast.For) or node.orelse:
        return None
    inner = node.body[-1]
    last = inner.body[-1] if inner.body else None
    if not (
        isinstance(last, ast.Expr)
        and isinstance(last.value, ast.Call)
        and _attr_name(last.value.func) == "append"
        and isinstance(last.value.func, ast.Attribute)
        and isinstance(last.value.func.value, ast.Name)
        and len(last.value.args) == 1
        and not inner.orelse
    ):
        return None
    collector = last.value.func.value.id
    if scope.env.get(collector) != Arr(()):
        return None
    uses = [
        n
        for stmt in node.body
        for n in ast.walk(stmt)
        if isinstance(n, ast.Name) and n.id == collector
    ]
    if len(uses) != 1:  # only the inner append reads or writes it
        return None
    part = f"{collector}_part"
    fresh = ast.Assign(targets=[ast.Name(part, ast.Store())], value=ast.List([], ast.Load()))
    new_inner = ast.For(
        target=inner.target,
        iter=inner.iter,
        body=[*inner.body[:-1], _append_stmt(part, last.value.args[0], last)],
        orelse=[],
    )
    rewritten = ast.For(
        target=node.target,
        iter=node.iter,
        body=[
            *node.body[:-1],
            _located(fresh, inner),
            _located(new_inner, inner),
            _append_stmt(collector, ast.Name(part, ast.Load()), inner),
        ],
        orelse=[],
    )
    return _located(rewritten, node), collector


def _append_stmt(collector: str, value: ast.expr, where: ast.AST) -> ast.stmt:
    """`collector.append(value)`, placed at `where`."""
    method = ast.Attribute(ast.Name(collector, ast.Load()), "append", ast.Load())
    return _located(ast.Expr(ast.Call(method, [value], [])), where)


def _located(new: _Node, where: ast.AST) -> _Node:
    """`new` (and its parts without a position) placed at `where`."""
    return ast.fix_missing_locations(ast.copy_location(new, where))
