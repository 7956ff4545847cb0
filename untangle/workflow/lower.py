"""IR → IR lowering for JSONPath, which computes far less than JSONata: `x if present else
default` becomes a Choice, and every other value JSONPath cannot compute is made just before the
state that needs it, by a Pass state (intrinsic functions) or by a new single-purpose function
(`lower_for_jsonpath`)."""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Literal, assert_never

from untangle.facts.model import Span
from untangle.workflow.ir import (
    Arr,
    Assign,
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
    Result,
    State,
    Succeed,
    Task,
    Var,
    Wait,
    Workflow,
    pascal,
    state_name,
    successors,
    with_next,
)


def map_expr(expr: Expr, rewrite: Callable[[Expr], Expr]) -> Expr:
    """Rewrite bottom-up."""
    if isinstance(expr, Obj):
        expr = Obj(tuple((k, map_expr(v, rewrite)) for k, v in expr.items))
    elif isinstance(expr, Arr):
        expr = Arr(tuple(map_expr(i, rewrite) for i in expr.items))
    elif isinstance(expr, Op):
        expr = Op(expr.op, tuple(map_expr(a, rewrite) for a in expr.args))
    return rewrite(expr)


def state_exprs(state: State, rewrite: Callable[[Expr], Expr]) -> State:
    if isinstance(state, Task):
        return replace(state, payload=map_expr(state.payload, rewrite))
    if isinstance(state, Choice):
        return replace(state, rules=tuple((map_expr(c, rewrite), n) for c, n in state.rules))
    if isinstance(state, Wait):
        return replace(
            state,
            seconds=map_expr(state.seconds, rewrite) if state.seconds is not None else None,
            timestamp=map_expr(state.timestamp, rewrite) if state.timestamp is not None else None,
        )
    if isinstance(state, Assign):
        return replace(state, values=tuple((k, map_expr(v, rewrite)) for k, v in state.values))
    if isinstance(state, Succeed):
        return replace(state, output=map_expr(state.output, rewrite))
    if isinstance(state, Fail):
        return replace(state, cause=map_expr(state.cause, rewrite) if state.cause else None)
    if isinstance(state, Map):
        collect = map_expr(state.collect, rewrite) if state.collect is not None else None
        return replace(state, items=map_expr(state.items, rewrite), collect=collect)
    return state


def lower_defaults(graph: Graph, counter: list[int] | None = None) -> Graph:
    counter = counter if counter is not None else [0]
    states: dict[str, State] = {}
    start = graph.start
    renames: dict[str, str] = {}
    taken = {s.name for s in graph.states}
    for state in graph.states:
        if isinstance(state, Map):
            state = replace(state, processor=lower_defaults(state.processor, counter))
        elif isinstance(state, Parallel):
            state = replace(
                state, branches=tuple(lower_defaults(b, counter) for b in state.branches)
            )
        found: list[tuple[str, Expr, Expr]] = []
        state = state_exprs(state, functools.partial(_collect, found=found, counter=counter))
        entry = state.name
        following = state.name
        for variable, present, fallback in reversed(found):
            base = f"Choose{variable.title().replace('_', '')}"
            choice_name, use_name, fallback_name = (
                _fresh(base, taken),
                _fresh(f"Use{variable.title().replace('_', '')}", taken),
                _fresh(f"Default{variable.title().replace('_', '')}", taken),
            )
            states[use_name] = Assign(use_name, ((variable, present),), following, state.span)
            states[fallback_name] = Assign(
                fallback_name, ((variable, fallback),), following, state.span
            )
            states[choice_name] = Choice(
                choice_name,
                ((Op(Operator.EXISTS, (present,)), use_name),),
                fallback_name,
                state.span,
            )
            following = choice_name
        if following != entry:
            renames[entry] = following
        states[state.name] = state
    if not renames:
        return Graph(start, tuple(states.values()))
    from untangle.workflow.optimize import redirect

    lowered: dict[str, State] = {}
    for name, state in states.items():
        for old, new in renames.items():
            if old in successors(state) and not _is_lowering_of(name):
                state = redirect(state, old, new)
        lowered[name] = state
    return Graph(renames.get(start, start), tuple(lowered.values()))


def _collect(expr: Expr, found: list[tuple[str, Expr, Expr]], counter: list[int]) -> Expr:
    if isinstance(expr, Op) and expr.op == Operator.DEFAULT:
        counter[0] += 1
        variable = f"default_{counter[0]}"
        found.append((variable, expr.args[0], expr.args[1]))
        return Var(variable)
    return expr


def _is_lowering_of(name: str) -> bool:
    """The Choose/Use/Default states in front of a state keep pointing at it."""
    return name.startswith(("ChooseDefault", "UseDefault", "DefaultDefault"))


def _fresh(base: str, taken: set[str]) -> str:
    base = state_name(base)
    name, counter = base, 2
    while name in taken:
        name = f"{base}{counter}"
        counter += 1
    taken.add(name)
    return name


# --- what JSONPath has for each operation --------------------------------------------------------

RuleOperator = Literal[
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
]
IntrinsicOperator = Literal[
    Operator.JSON_STRING,
    Operator.JSON_PARSE,
    Operator.COUNT,
    Operator.CONCAT,
    Operator.ADD,
    Operator.NUMBER,
    Operator.ENV,
]


@dataclass(frozen=True)
class Rule:
    """A Choice rule tests it: a path compared with a path or a literal, IsPresent, IsNull,
    And / Or / Not (`_JSONPath.condition`; `_Computations.condition` hoists the rest)."""

    op: RuleOperator


@dataclass(frozen=True)
class Intrinsic:
    """An intrinsic function computes it in a Parameters value (States.Format, States.MathAdd…),
    when its arguments are ones the function takes (`_intrinsic_ok`; `_JSONPath.intrinsic`)."""

    op: IntrinsicOperator


@dataclass(frozen=True)
class Lowered:
    """JSONPath has no form for it: `default` becomes Choice states (`lower_defaults`), the others
    a new single-purpose function whose Python is printed from the IR (`_Computations.hoist`)."""

    op: Operator


JSONPathForm = Rule | Intrinsic | Lowered


def jsonpath_form(op: Operator) -> JSONPathForm:
    """How JSONPath gets `op`'s value: every JSONPath renderer and the lowering dispatch through
    this, and through the exhaustive `match` on the `Rule` / `Intrinsic` operators it returns."""
    match op:
        case (
            Operator.EQ
            | Operator.NE
            | Operator.LT
            | Operator.LE
            | Operator.GT
            | Operator.GE
            | Operator.AND
            | Operator.OR
            | Operator.NOT
            | Operator.EXISTS
            | Operator.IS_NULL
            | Operator.TRUTHY
        ):
            return Rule(op)
        case (
            Operator.JSON_STRING
            | Operator.JSON_PARSE
            | Operator.COUNT
            | Operator.CONCAT
            | Operator.ADD
            | Operator.NUMBER
            | Operator.ENV
        ):
            return Intrinsic(op)
        case (
            Operator.DEFAULT
            | Operator.SUB
            | Operator.MUL
            | Operator.DIV
            | Operator.POW
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
        ):
            return Lowered(op)
        case _:
            assert_never(op)


# --- computations JSONPath cannot express -------------------------------------------------------


def _is_path(expr: Expr) -> bool:
    return isinstance(expr, (Input, Var, Result))


def reads_state(expr: Expr) -> bool:
    """`expr` reads the state's data (the input, a variable), not only the state's result."""
    if isinstance(expr, (Input, Var)):
        return True
    if isinstance(expr, Obj):
        return any(reads_state(v) for _, v in expr.items)
    if isinstance(expr, Arr):
        return any(reads_state(i) for i in expr.items)
    if isinstance(expr, Op):
        return any(reads_state(a) for a in expr.args)
    return False


def jsonpath_carries(state: State, output: Expr) -> bool:
    """JSONPath can end `state`'s branch with `output` as its output (see `Task.output`; the
    forms are `_JSONPath.output` and `_JSONPath.shaped`): a Pass computes it as its Parameters;
    a Task, Map or Parallel selects it from its result (OutputPath: its result or a part of it),
    builds it of its result alone (ResultSelector) or selects a path of its data (OutputPath);
    a Wait selects a path of its data."""
    if isinstance(state, Assign):
        return _value_ok(output)
    if isinstance(output, (Input, Var)):
        return isinstance(state, (Task, Map, Parallel, Wait))
    if isinstance(state, (Task, Map, Parallel)):
        return isinstance(output, Result) or (not reads_state(output) and _value_ok(output))
    return False


def _is_scalar(expr: Expr) -> bool:
    return isinstance(expr, Lit) and (
        isinstance(expr.value, str)
        or (isinstance(expr.value, (int, float)) and not isinstance(expr.value, bool))
    )


def _intrinsic_ok(expr: Expr) -> bool:
    """`expr` renders as a path or an intrinsic function call."""
    if _is_path(expr) or _is_scalar(expr):
        return True
    if not isinstance(expr, Op):
        return False
    form = jsonpath_form(expr.op)
    if not isinstance(form, Intrinsic):
        return False
    match form.op:
        case Operator.JSON_STRING | Operator.JSON_PARSE | Operator.COUNT:
            return _is_path(expr.args[0])
        case Operator.CONCAT:
            return all(_intrinsic_ok(a) for a in expr.args)
        case Operator.ADD:
            return _intrinsic_ok(expr.args[0]) and _is_scalar(expr.args[1])
        case Operator.ENV:
            return True
        case Operator.NUMBER:
            return _is_env(expr.args[0])
        case _:
            assert_never(form.op)


def _renders_at_top(expr: Expr) -> bool:
    """JSONPath has a form for `expr` itself (its parts may still need computing)."""
    if not isinstance(expr, Op):
        return True
    form = jsonpath_form(expr.op)
    if not isinstance(form, Intrinsic):
        return False
    match form.op:
        case Operator.ADD:
            return _is_scalar(expr.args[1])
        case Operator.NUMBER:
            return _is_env(expr.args[0])
        case (
            Operator.JSON_STRING
            | Operator.JSON_PARSE
            | Operator.COUNT
            | Operator.CONCAT
            | Operator.ENV
        ):
            return True
        case _:
            assert_never(form.op)


def _is_env(expr: Expr) -> bool:
    return isinstance(expr, Op) and expr.op == Operator.ENV


def _value_ok(expr: Expr) -> bool:
    """`expr` renders as a Parameters value (what a Pass state can compute)."""
    if isinstance(expr, Lit):
        return True
    if isinstance(expr, Obj):
        return all(_value_ok(v) for _, v in expr.items)
    if isinstance(expr, Arr):
        return all(isinstance(i, Lit) for i in expr.items) or all(
            _intrinsic_ok(i) for i in expr.items
        )
    return _intrinsic_ok(expr)


class _Computations:
    """Rewrites each state so that every expression is one JSONPath can render: a value it
    cannot compute is computed just before the state, into a new variable, by a Pass state
    when intrinsic functions suffice, else by a Task calling a new single-purpose function
    whose Python body is printed from the IR."""

    def __init__(self, workflow: Workflow) -> None:
        self.workflow = workflow
        self.extracted: list[Extraction] = []
        self.functions: list[FunctionRef] = []
        self.taken = _all_names(workflow.graph) if workflow.graph else set()
        self.variables = _all_variables(workflow.graph) if workflow.graph else set()
        self.function_names = {e.function for e in workflow.extracted}
        self.before: list[State] = []
        self.cache: dict[Expr, Var] = {}
        self.span: Span | None = None
        self.stem = "value"
        # variables only ever set to a scalar (their truth is a Choice rule's)
        self.scalars = scalar_variables(workflow.graph) if workflow.graph else frozenset()

    def graph(self, graph: Graph) -> Graph:
        states: dict[str, State] = {}
        renames: dict[str, str] = {}
        added: set[str] = set()
        for state in graph.states:
            if isinstance(state, Map):
                state = replace(state, processor=self.graph(state.processor))
            elif isinstance(state, Parallel):
                state = replace(state, branches=tuple(self.graph(b) for b in state.branches))
            self.before, self.cache, self.span = [], {}, state.span
            state = self.state(state)
            chain = [*self.before]
            for index, computed in enumerate(chain):
                following = chain[index + 1].name if index + 1 < len(chain) else state.name
                states[computed.name] = with_next(computed, following)
                added.add(computed.name)
            if chain:
                renames[state.name] = chain[0].name
            states[state.name] = state
        if not renames:
            return Graph(graph.start, tuple(states.values()))
        from untangle.workflow.optimize import redirect

        lowered: dict[str, State] = {}
        for name, state in states.items():
            if name not in added:
                for old, new in renames.items():
                    if old in successors(state):
                        state = redirect(state, old, new)
            lowered[name] = state
        return Graph(renames.get(graph.start, graph.start), tuple(lowered.values()))

    # --- per state ---------------------------------------------------------------------------

    def state(self, state: State) -> State:
        if isinstance(state, Task):
            dynamic = state.function.dynamic
            if dynamic is not None and not _is_path(dynamic) and not _is_scalar(dynamic):
                state = replace(
                    state, function=replace(state.function, dynamic=self.hoist(dynamic))
                )
            return replace(state, payload=self.value(state.payload))
        if isinstance(state, Choice):
            return replace(state, rules=tuple((self.condition(c), n) for c, n in state.rules))
        if isinstance(state, Wait):
            if state.seconds is not None and not (
                _is_path(state.seconds) or isinstance(state.seconds, Lit)
            ):
                return replace(state, seconds=self.hoist(state.seconds, whole_seconds=True))
            if state.timestamp is not None and not _is_path(state.timestamp):
                return replace(state, timestamp=self.hoist(state.timestamp))
            return state
        if isinstance(state, Assign):
            if len(state.values) > 1 and _sequential_ok(state.values):
                # a Pass sets one variable in JSONPath: one Pass per variable, in order
                *first, last = state.values
                for name, value in first:
                    step = Assign(
                        _fresh(f"{state.name}Set", self.taken), ((name, value),), None, state.span
                    )
                    self.before.append(self.state(step))
                state = replace(state, values=(last,))
            if len(state.values) == 1 and not _value_ok(state.values[0][1]):
                name, value = state.values[0]
                if not _renders_at_top(value):
                    # the whole value is one computation: the Pass becomes its Task
                    return self.task(state.name, name, value, state.next)
                return replace(state, values=((name, self.value(value)),))
            return replace(state, values=tuple((k, self.value(v)) for k, v in state.values))
        if isinstance(state, Succeed):
            return replace(state, output=self.value(state.output))
        if isinstance(state, Fail):
            if state.cause is None or _intrinsic_ok(state.cause):
                return state
            if isinstance(state.cause, Op) and state.cause.op == Operator.CONCAT:
                return replace(state, cause=self.intrinsic(state.cause))
            return replace(state, cause=self.hoist(state.cause))
        if isinstance(state, Map) and not _is_path(state.items):
            return replace(state, items=self.hoist(state.items))
        return state

    # --- per position ------------------------------------------------------------------------

    def value(self, expr: Expr) -> Expr:
        """A Parameters value: paths, literals, objects, arrays, intrinsic functions."""
        if isinstance(expr, Obj):
            return Obj(tuple((k, self.value(v)) for k, v in expr.items))
        if isinstance(expr, Arr):
            if all(isinstance(i, Lit) for i in expr.items):
                return expr
            return Arr(tuple(self.intrinsic(i) for i in expr.items))
        if isinstance(expr, Lit):
            return expr
        return self.intrinsic(expr)

    def intrinsic(self, expr: Expr) -> Expr:
        """A path or an intrinsic function call."""
        if _intrinsic_ok(expr):
            return expr
        form = jsonpath_form(expr.op) if isinstance(expr, Op) else None
        if isinstance(expr, Op) and isinstance(form, Intrinsic):
            match form.op:
                case Operator.JSON_STRING | Operator.JSON_PARSE | Operator.COUNT:
                    # these take a path: the argument is computed first
                    return Op(expr.op, (self.hoist(expr.args[0]),))
                case Operator.CONCAT:
                    return Op(
                        Operator.CONCAT,
                        tuple(a if _is_scalar(a) else self.intrinsic(a) for a in expr.args),
                    )
                case Operator.ADD:
                    if _is_scalar(expr.args[1]):
                        return Op(Operator.ADD, (self.intrinsic(expr.args[0]), expr.args[1]))
                case Operator.NUMBER | Operator.ENV:
                    pass  # of anything but an environment value: computed whole
                case _:
                    assert_never(form.op)
        return self.hoist(expr)

    def condition(self, expr: Expr, guarded: bool = False) -> Expr:
        """A Choice rule: comparisons of a path with a path or a literal, presence tests.
        `guarded`: an earlier operand of `and` / `or` decides whether Python reads `expr`."""
        form = jsonpath_form(expr.op) if isinstance(expr, Op) else None
        if isinstance(expr, Op) and isinstance(form, Rule):
            match form.op:
                case Operator.AND | Operator.OR:
                    return Op(
                        expr.op,
                        tuple(self.condition(a, guarded or i > 0) for i, a in enumerate(expr.args)),
                    )
                case Operator.NOT:
                    return Op(expr.op, (self.condition(expr.args[0], guarded),))
                case Operator.EXISTS | Operator.IS_NULL | Operator.TRUTHY:
                    if form.op == Operator.TRUTHY and _is_path(expr.args[0]):
                        return self.truthy(expr.args[0], guarded)
                    if all(_is_path(a) for a in expr.args):
                        return expr
                    if form.op == Operator.TRUTHY:
                        return Op(Operator.TRUTHY, (self.hoist(expr.args[0]),))
                case (
                    Operator.EQ
                    | Operator.NE
                    | Operator.LT
                    | Operator.LE
                    | Operator.GT
                    | Operator.GE
                ):
                    left, right = expr.args
                    if not (_is_path(left) or isinstance(left, Lit)):
                        left = self.hoist(left)
                    if not (_is_path(right) or isinstance(right, Lit)):
                        right = self.hoist(right)
                    return Op(expr.op, (left, right))
                case _:
                    assert_never(form.op)
        if isinstance(expr, Lit):
            return expr
        return Op(Operator.EQ, (self.hoist(Op(Operator.TRUTHY, (expr,))), Lit(True)))

    def truthy(self, path: Expr, guarded: bool) -> Expr:
        """Python's `bool(path)`. Choice rules test null, false, 0 and "" but have no test for an
        empty list or object: unless the value is proven a scalar, its JSON text is made first
        (a Pass state, States.JsonToString) and compared with `[]` and `{}`. The Pass reads the
        path before the Choice: only where Python reads it too (not behind an `and` / `or`),
        or where it is always there (a variable)."""
        from untangle.workflow.asl import NotExpressible
        from untangle.workflow.ir import expr_text

        rule = Op(Operator.TRUTHY, (path,))
        if isinstance(path, Var) and path.name in self.scalars and not path.path:
            return rule
        if guarded and not (isinstance(path, Var) and not path.path):
            raise NotExpressible(
                f"the truth of `{expr_text(path)}` after `and` / `or` in JSONPath "
                "(an empty list or object is false in Python; Choice rules cannot tell)"
            )
        text = self.hoist(Op(Operator.JSON_STRING, (path,)))
        return Op(
            Operator.AND,
            (rule, Op(Operator.NE, (text, Lit("[]"))), Op(Operator.NE, (text, Lit("{}")))),
        )

    # --- computing a value before the state --------------------------------------------------

    def hoist(self, expr: Expr, whole_seconds: bool = False) -> Var:
        if expr in self.cache:
            return self.cache[expr]
        variable = self._fresh_variable(_stem(expr))
        if _value_ok(expr) and not (whole_seconds and not _intrinsic_ok(expr)):
            computed: State = Assign(
                _fresh(f"Compute{pascal(variable)}", self.taken),
                ((variable, expr),),
                None,
                self._span(),
            )
        else:
            computed = self.task(
                _fresh(f"Compute{pascal(variable)}", self.taken),
                variable,
                Op(Operator.CEIL, (expr,)) if whole_seconds else expr,
                None,
            )
        self.before.append(computed)
        self.cache[expr] = Var(variable)
        return Var(variable)

    def task(self, state_name: str, variable: str, expr: Expr, following: str | None) -> Task:
        from untangle.workflow.python import free_values, printed

        function = _fresh(f"compute_{variable}", self.function_names)
        params = dict(free_values(expr))
        span = self._span()
        ref = FunctionRef(f"${{{pascal(function)}FunctionArn}}", function)
        self.functions.append(ref)
        self.extracted.append(
            Extraction(
                function,
                tuple(params),
                printed(expr),
                self.workflow.path,
                span.line,
                variable,
            )
        )
        payload = Obj(tuple(params.items()))
        return Task(state_name, ref, payload, variable, following, span)

    def _fresh_variable(self, stem: str) -> str:
        stem = "".join(c if c.isalnum() else "_" for c in stem).strip("_") or "computed"
        name, counter = stem, 2
        while name in self.variables:
            name = f"{stem}{counter}"
            counter += 1
        self.variables.add(name)
        return name

    def _span(self) -> Span:
        assert self.span is not None
        return self.span


_OP_WORDS = {
    Operator.COMPREHENSION: "list",
    Operator.JOIN: "text",
    Operator.CONCAT: "text",
    Operator.NUMBER: "number",
    Operator.JSON_STRING: "json",
    Operator.JSON_PARSE: "parsed",
    Operator.COUNT: "count",
}


def _sequential_ok(values: tuple[tuple[str, Expr], ...]) -> bool:
    """Setting the variables one after another gives what setting them at once does: no value
    reads a variable set before it."""
    from untangle.workflow.ir import variables

    set_before: set[str] = set()
    for name, value in values:
        if set(variables(value)) & set_before:
            return False
        set_before.add(name)
    return True


def _stem(expr: Expr) -> str:
    """A readable base for a new variable: what it is computed from, and how."""
    if isinstance(expr, Var):
        return expr.name
    if isinstance(expr, Input):
        return str(expr.path[-1]) if expr.path else "input"
    if isinstance(expr, Op):
        if expr.op == Operator.ENV and expr.args and isinstance(expr.args[0], Lit):
            return str(expr.args[0].value).lower()
        word = _OP_WORDS.get(expr.op, "computed")
        for arg in expr.args:
            if isinstance(arg, (Var, Input, Op)) and not (isinstance(arg, Input) and not arg.path):
                return f"{_stem(arg)}_{word}"
        return word
    if isinstance(expr, Obj):
        return "object"
    return "computed"


def _all_variables(graph: Graph) -> set[str]:
    names: set[str] = set()
    for state in graph.states:
        if isinstance(state, Task):
            names.update(n for n in (state.assign, *(c.assign for c in state.catch)) if n)
        elif isinstance(state, Assign):
            names.update(n for n, _ in state.values)
        elif isinstance(state, Map):
            names.update(n for n in (state.assign, state.item_var) if n)
            names |= _all_variables(state.processor)
        elif isinstance(state, Parallel):
            names.update(n for n in state.assign if n)
            for branch in state.branches:
                names |= _all_variables(branch)
    return names


def assigned_values(graph: Graph) -> dict[str, tuple[Expr, ...]]:
    """Variables only Pass states set (no Task, Map, Parallel or Catch): the values they are
    set to."""
    values: dict[str, list[Expr]] = {}
    others: set[str] = set()

    def collect(graph: Graph) -> None:
        for state in graph.states:
            if isinstance(state, Assign):
                for name, value in state.values:
                    values.setdefault(name, []).append(value)
            elif isinstance(state, Task):
                others.update(n for n in (state.assign, *(c.assign for c in state.catch)) if n)
            elif isinstance(state, Map):
                others.update(n for n in (state.assign, state.item_var) if n)
                collect(state.processor)
            elif isinstance(state, Parallel):
                others.update(n for n in state.assign if n)
                for branch in state.branches:
                    collect(branch)

    collect(graph)
    return {name: tuple(set_to) for name, set_to in values.items() if name not in others}


def scalar_variables(graph: Graph) -> frozenset[str]:
    """Variables every Pass that sets them sets to a number, text, a boolean or null, and no
    Task, Map or Parallel sets."""
    return frozenset(
        name
        for name, set_to in assigned_values(graph).items()
        if all(_is_scalar_value(v) for v in set_to)
    )


def always_present(values: tuple[Expr, ...], path: tuple[str | int, ...]) -> bool:
    """`path` is there in every value a variable is set to: the handler built those dicts
    (`{"amount": …}`) with that key."""
    if not values:
        return False
    for value in values:
        for part in path:
            if isinstance(part, str) and isinstance(value, Obj) and part in dict(value.items):
                value = dict(value.items)[part]
            elif isinstance(part, int) and isinstance(value, Arr) and 0 <= part < len(value.items):
                value = value.items[part]
            else:
                return False
    return True


def _is_scalar_value(expr: Expr) -> bool:
    from untangle.workflow.ir import BOOLEAN_OPERATORS

    if isinstance(expr, Lit):
        return not isinstance(expr.value, (list, dict))
    if isinstance(expr, Op):
        return expr.op in BOOLEAN_OPERATORS or expr.op in (
            Operator.CONCAT,
            Operator.COUNT,
            Operator.NUMBER,
            Operator.JSON_STRING,
            Operator.ENV,
        )
    return False


def _all_names(graph: Graph) -> set[str]:
    names: set[str] = set()
    for state in graph.states:
        names.add(state.name)
        if isinstance(state, Map):
            names |= _all_names(state.processor)
        elif isinstance(state, Parallel):
            for branch in state.branches:
                names |= _all_names(branch)
    return names


def lower_for_jsonpath(workflow: Workflow) -> Workflow:
    """The workflow as JSONPath can run it: defaults chosen by Choice states, then every
    computation JSONPath cannot express made by a Pass state or a new single-purpose function
    (added to `extracted`, with a note)."""
    if workflow.graph is None:
        return workflow
    lowering = _Computations(workflow)
    graph = lowering.graph(lower_defaults(workflow.graph))
    notes = tuple(
        Reason(
            e.path,
            e.line,
            f"JSONPath cannot compute `{e.expression}`: new function {e.function}",
        )
        for e in lowering.extracted
    )
    return replace(
        workflow,
        graph=graph,
        extracted=(*workflow.extracted, *lowering.extracted),
        functions=(*workflow.functions, *lowering.functions),
        notes=(*workflow.notes, *notes),
    )
