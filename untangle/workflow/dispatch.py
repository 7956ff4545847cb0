"""Branches that only choose which function to call next: one Task per function.

The builder gives an invoke whose function is chosen at run time one Task with a dynamic
FunctionName: either a variable the branches set (`if kind == "refund": fn = REFUND_FN else:
fn = CHARGE_FN; invoke(fn, …)`) or a choice among names (`A if c else B`, `ROUTES.get(action)`).
A Step Functions engineer writes a Task per function behind the Choice instead, so the diagram
names each function. This pass does that:

1. a Task whose FunctionName is a choice among names becomes a Choice on the same conditions,
   with a copy of the Task per function (a None name: a Fail, as boto3 refuses it before calling);
2. a Task whose FunctionName is a variable every way into it sets just before (`set $fn = …`)
   gets a copy per function, each setter going straight to its copy;
3. a guard that the choice is one of the names (`if fn is None: return 400`, folded to `not c1
   and not c2`) followed by that choice becomes one Choice: `c1` → the first function, `c2` → the
   second, otherwise the guard's branch.

Everything else about the Task (payload, result, retries, catches, next) is copied as it is.
"""

from __future__ import annotations

from dataclasses import replace

from untangle.workflow.ir import (
    Assign,
    Choice,
    Expr,
    Fail,
    FunctionRef,
    Graph,
    Lit,
    Map,
    Op,
    Operator,
    Parallel,
    State,
    Task,
    Var,
    Workflow,
    all_states,
    pascal,
    state_name,
    successors,
)

# boto3 validates FunctionName before calling: None raises this (botocore.exceptions)
NO_FUNCTION_ERROR = "ParamValidationError"
NO_FUNCTION_CAUSE = (
    "Parameter validation failed:\nInvalid type for parameter FunctionName, value: None, "
    "type: <class 'NoneType'>, valid types: <class 'str'>"
)


class _Names:
    def __init__(self, graph: Graph) -> None:
        self.used = {s.name for s in all_states(graph)}

    def unique(self, base: str) -> str:
        base = state_name(base[:80] or "State")
        name, counter = base, 2
        while name in self.used:
            name = f"{base[:76]}{counter}"
            counter += 1
        self.used.add(name)
        return name


def task_per_function(workflow: Workflow) -> Workflow:
    if workflow.graph is None:
        return workflow
    functions = {f.placeholder: f for f in workflow.functions}
    names = _Names(workflow.graph)
    return replace(workflow, graph=_graph(workflow.graph, functions, names))


def _graph(graph: Graph, functions: dict[str, FunctionRef], names: _Names) -> Graph:
    states: dict[str, State] = {}
    for state in graph.states:
        if isinstance(state, Map):
            state = replace(state, processor=_graph(state.processor, functions, names))
        elif isinstance(state, Parallel):
            branches = tuple(_graph(b, functions, names) for b in state.branches)
            state = replace(state, branches=branches)
        states[state.name] = state
    created: set[str] = set()  # the None-name Fail states made here
    for state in list(states.values()):
        if _chosen(state, functions) is not None:
            assert isinstance(state, Task) and state.function.dynamic is not None
            del states[state.name]
            _expand(state, state.name, state.function.dynamic, functions, names, states, created)
    for state in list(states.values()):
        if isinstance(state, Task) and isinstance(state.function.dynamic, Var):
            _split(state, graph.start, functions, names, states)
    for state in list(states.values()):
        if isinstance(state, Choice) and state.name in states:
            _merge_guard(state, states, created)
    return _reachable(Graph(graph.start, tuple(states.values())))


def _chosen(state: State, functions: dict[str, FunctionRef]) -> Expr | None:
    if not isinstance(state, Task) or not isinstance(state.function.dynamic, Op):
        return None
    return state.function.dynamic if _names_only(state.function.dynamic, functions) else None


def _names_only(expr: Expr, functions: dict[str, FunctionRef]) -> bool:
    if isinstance(expr, Op) and expr.op == Operator.IF:
        return all(_names_only(branch, functions) for branch in expr.args[1:])
    return isinstance(expr, Lit) and (expr.value is None or expr.value in functions)


def _expand(
    task: Task,
    name: str,
    chosen: Expr,
    functions: dict[str, FunctionRef],
    names: _Names,
    states: dict[str, State],
    created: set[str],
) -> None:
    """The state `name`: a Choice on `chosen`'s conditions, a Task per function it names."""
    if isinstance(chosen, Lit):
        if chosen.value is None:
            states[name] = Fail(name, NO_FUNCTION_ERROR, Lit(NO_FUNCTION_CAUSE), task.span)
            created.add(name)
        else:
            function = functions[str(chosen.value)]
            states[name] = replace(task, name=name, function=function)
        return
    rules: list[tuple[Expr, str]] = []
    while isinstance(chosen, Op) and chosen.op == Operator.IF:
        condition, then, chosen = chosen.args
        target = names.unique(_base(then, functions))
        _expand(task, target, then, functions, names, states, created)
        rules.append((condition, target))
    default = names.unique(_base(chosen, functions))
    _expand(task, default, chosen, functions, names, states, created)
    states[name] = Choice(name, tuple(rules), default, task.span)


def _base(chosen: Expr, functions: dict[str, FunctionRef]) -> str:
    if isinstance(chosen, Lit) and chosen.value is None:
        return "NoFunction"
    if isinstance(chosen, Lit):
        return pascal(functions[str(chosen.value)].display)
    return "ChooseFunction"


def _split(
    task: Task,
    start: str,
    functions: dict[str, FunctionRef],
    names: _Names,
    states: dict[str, State],
) -> None:
    """A Task on `$fn` that every setter of `$fn` goes straight into: a copy per setter."""
    assert isinstance(task.function.dynamic, Var)
    variable = task.function.dynamic
    if variable.path or task.name == start:
        return
    into = [s for s in states.values() if task.name in successors(s)]
    setters: list[tuple[Assign, FunctionRef]] = []
    for state in into:
        if not isinstance(state, Assign) or state.next != task.name:
            return
        chosen = dict(state.values).get(variable.name)
        if not isinstance(chosen, Lit) or chosen.value not in functions:
            return
        setters.append((state, functions[str(chosen.value)]))
    if not setters:
        return
    copies: dict[str, str] = {}
    for setter, function in setters:
        if function.placeholder not in copies:
            copy = names.unique(pascal(function.display))
            states[copy] = replace(task, name=copy, function=function)
            copies[function.placeholder] = copy
        states[setter.name] = replace(setter, next=copies[function.placeholder])
    del states[task.name]


def _merge_guard(guard: Choice, states: dict[str, State], created: set[str]) -> None:
    """`not c1 and … and not cn` → X, else → Choice(c1 → …, cn → …, else → None-name Fail):
    one Choice, c1 → …, cn → …, else → X."""
    if len(guard.rules) != 1 or guard.default is None:
        return
    test, otherwise = guard.rules[0]
    dispatch = states.get(guard.default)
    if not isinstance(dispatch, Choice) or dispatch.default not in created:
        return
    negated = test.args if isinstance(test, Op) and test.op == Operator.AND else (test,)
    conditions = []
    for part in negated:
        if not (isinstance(part, Op) and part.op == Operator.NOT):
            return
        conditions.append(part.args[0])
    if sorted(map(repr, conditions)) != sorted(repr(c) for c, _ in dispatch.rules):
        return
    if any(dispatch.name in successors(s) for s in states.values() if s is not guard):
        return
    states[guard.name] = replace(guard, rules=dispatch.rules, default=otherwise)
    del states[dispatch.name]


def _reachable(graph: Graph) -> Graph:
    by_name = {s.name: s for s in graph.states}
    seen: set[str] = set()
    todo = [graph.start]
    while todo:
        name = todo.pop()
        if name in seen or name not in by_name:
            continue
        seen.add(name)
        todo += successors(by_name[name])
    return Graph(graph.start, tuple(s for s in graph.states if s.name in seen))
