"""IR → IR rewrites: drop empty pass-through states, and run consecutive independent tasks in a
`Parallel` state (reported, with the expected latency gain)."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace

from untangle.workflow.ir import (
    Assign,
    Choice,
    Fail,
    Graph,
    Map,
    Parallel,
    Reason,
    Result,
    State,
    Task,
    Wait,
    Workflow,
    next_of,
    output_of,
    successors,
    variables,
    with_next,
)


def optimize(workflow: Workflow) -> tuple[Workflow, tuple[Reason, ...]]:
    if workflow.graph is None:
        return workflow, ()
    graph = _drop_empty(_drop_dead_stores(workflow.graph))
    # a new function runs the handler's own code, which may write where a called function
    # reads (an S3 object, a table row): it keeps its place in the order, never run beside
    # another step
    ordered = frozenset(e.function for e in workflow.extracted)
    graph, found = _parallelize(graph, workflow.path, ordered)
    return replace(workflow, graph=graph), tuple(found)


def redirect(state: State, old: str, new: str | None) -> State:
    if isinstance(state, Choice):
        rules = tuple((c, new if n == old and new else n) for c, n in state.rules)
        default = new if state.default == old else state.default
        return replace(state, rules=rules, default=default)
    if isinstance(state, Task):
        catch = tuple(replace(c, next=new) if c.next == old and new else c for c in state.catch)
        state = replace(state, catch=catch)
    if next_of(state) == old:
        return with_next(state, new)
    return state


def _drop_empty(graph: Graph) -> Graph:
    states = {s.name: _recurse(s, _drop_empty) for s in graph.states}
    start = graph.start
    changed = True
    while changed:
        changed = False
        for name, state in list(states.items()):
            if isinstance(state, Assign) and not state.values and state.next:
                target = state.next
                del states[name]
                states = {k: redirect(v, name, target) for k, v in states.items()}
                if start == name:
                    start = target
                changed = True
                break
    return Graph(start, tuple(states.values()))


def _drop_dead_stores(graph: Graph) -> Graph:
    """Pass states setting variables nothing reads (the values a loop leaves, say) set fewer."""
    read = set(_reads(graph))

    def rewrite(graph: Graph) -> Graph:
        states = []
        for state in graph.states:
            state = _recurse(state, rewrite)
            if isinstance(state, Assign):
                state = replace(state, values=tuple(v for v in state.values if v[0] in read))
            states.append(state)
        return Graph(graph.start, tuple(states))

    return rewrite(graph)


def _reads(graph: Graph) -> Iterator[str]:
    yield "error"  # a Fail without an error name reads $error
    for state in graph.states:
        output = output_of(state)
        if output is not None:
            yield from variables(output)
        if isinstance(state, Task):
            yield from variables(state.payload)
            if state.function.dynamic is not None:
                yield from variables(state.function.dynamic)
        elif isinstance(state, Choice):
            for condition, _ in state.rules:
                yield from variables(condition)
        elif isinstance(state, Wait):
            for expr in (state.seconds, state.timestamp):
                if expr is not None:
                    yield from variables(expr)
        elif isinstance(state, Assign):
            for _, value in state.values:
                yield from variables(value)
        elif isinstance(state, Fail):
            if state.cause is not None:
                yield from variables(state.cause)
        elif isinstance(state, Map):
            yield from variables(state.items)
            if state.collect is not None:
                yield from variables(state.collect)
            yield from _reads(state.processor)
        elif isinstance(state, Parallel):
            for branch in state.branches:
                yield from _reads(branch)


def _recurse(state: State, rewrite: object) -> State:
    if isinstance(state, Map):
        return replace(state, processor=rewrite(state.processor))  # type: ignore[operator]
    if isinstance(state, Parallel):
        return replace(state, branches=tuple(rewrite(b) for b in state.branches))  # type: ignore[operator]
    return state


def _predecessors(graph: Graph) -> dict[str, int]:
    counts: dict[str, int] = {}
    for state in graph.states:
        for target in successors(state):
            counts[target] = counts.get(target, 0) + 1
    return counts


def _parallelize(
    graph: Graph, path: str, ordered: frozenset[str] = frozenset()
) -> tuple[Graph, list[Reason]]:
    """A run of two or more tasks, each the only way into the next, none reading what an earlier
    one of the run produced and none with a Catch, becomes one Parallel state."""
    reasons: list[Reason] = []
    states = {s.name: s for s in graph.states}
    incoming = _predecessors(graph)
    start = graph.start
    for first in list(states):
        if first not in states:
            continue
        run = _independent_run(states, incoming, first, ordered)
        if len(run) < 2:
            continue
        tasks = [states[n] for n in run]
        assert all(isinstance(t, Task) for t in tasks)
        last = tasks[-1]
        name = "Run" + "And".join(t.name for t in tasks[:3]) + ("AndMore" if len(tasks) > 3 else "")
        name = name[:80]
        # each branch's result is its task's: the branch ends with it (no variable to store)
        branches = tuple(
            Graph(t.name, (_ends_with_result(t),)) for t in tasks if isinstance(t, Task)
        )
        parallel = Parallel(
            name,
            branches,
            tuple(t.assign for t in tasks if isinstance(t, Task)),
            next_of(last),
            tasks[0].span,
            reason="independent steps",
        )
        for n in run:
            del states[n]
        states = {k: redirect(v, run[0], name) for k, v in states.items()}
        states[name] = parallel
        if start == run[0]:
            start = name
        incoming = _predecessors(Graph(start, tuple(states.values())))
        names = ", ".join(t.name for t in tasks)
        reasons.append(
            Reason(
                path,
                tasks[0].span.line,
                f"{names} do not depend on each other: they run in parallel "
                f"(latency: the slowest of {len(tasks)} instead of their sum). The original ran "
                "them one after another, and stopped at the first failure",
            )
        )
    return Graph(start, tuple(states.values())), reasons


def _ends_with_result(task: Task) -> Task:
    if task.assign is None:
        return replace(task, next=None)
    return replace(task, next=None, assign=None, output=Result())


def _independent_run(
    states: dict[str, State], incoming: dict[str, int], first: str, ordered: frozenset[str]
) -> list[str]:
    run: list[str] = []
    produced: set[str] = set()
    current: str | None = first
    while current is not None and current in states:
        state = states[current]
        if not isinstance(state, Task) or state.catch or state.function.display in ordered:
            break
        if run and incoming.get(current, 0) != 1:
            break
        if set(variables(state.payload)) & produced:
            break
        if state.assign and state.assign in produced:
            break
        run.append(current)
        if state.assign:
            produced.add(state.assign)
        current = state.next
    return run
