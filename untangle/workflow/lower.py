"""IR → IR lowering for JSONPath, which cannot compute `x if present else default` inside a
path: each such value is chosen by a Choice and stored in a variable just before the state that
needs it."""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import replace

from untangle.workflow.ir import (
    Arr,
    Assign,
    Choice,
    Expr,
    Fail,
    Graph,
    Map,
    Obj,
    Op,
    Parallel,
    State,
    Succeed,
    Task,
    Var,
    Wait,
    successors,
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


def _state_exprs(state: State, rewrite: Callable[[Expr], Expr]) -> State:
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
        state = _state_exprs(state, functools.partial(_collect, found=found, counter=counter))
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
                choice_name, ((Op("exists", (present,)), use_name),), fallback_name, state.span
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
    if isinstance(expr, Op) and expr.op == "default":
        counter[0] += 1
        variable = f"default_{counter[0]}"
        found.append((variable, expr.args[0], expr.args[1]))
        return Var(variable)
    return expr


def _is_lowering_of(name: str) -> bool:
    """The Choose/Use/Default states in front of a state keep pointing at it."""
    return name.startswith(("ChooseDefault", "UseDefault", "DefaultDefault"))


def _fresh(base: str, taken: set[str]) -> str:
    name, counter = base, 2
    while name in taken:
        name = f"{base}{counter}"
        counter += 1
    taken.add(name)
    return name
