"""The IR passes, run from one recipe in order: the builder's workflow in, the workflow the ASL
emitter renders out (the emitter only emits).

1. unchecked FunctionErrors: a synchronous invoke whose FunctionError the original never
   checked went on with the error payload as its result. By default the Task fails instead, as
   Step Functions tasks do and as the article's machines do (`fail_unchecked`, noted on each);
   with `keep_unchecked_errors` its Task gets a Catch carrying on the same way (`carry_on`).
2. `task_per_function`: an invoke whose function branches choose becomes a Task per function
   behind the Choice (dispatch.py).
3. `optimize`: drop empty pass-through states and dead stores; independent tasks in Parallel.
4. `lower_for_jsonpath` (JSONPath only): what JSONPath cannot compute is made before its state.
5. `end_branches`: a Map iteration or a Parallel branch ends on its last state (`End`, the
   branch's result as that state's output) rather than on a Succeed state after it.
6. `word_json_texts`: each `json.dumps` the machine computes is noted on its line with how its
   text differs from Python's in the query language (the data is the same).
"""

from __future__ import annotations

from dataclasses import replace

from untangle.workflow.dispatch import task_per_function
from untangle.workflow.ir import (
    Arr,
    Assign,
    CatchRule,
    Choice,
    Expr,
    Fail,
    Graph,
    JsonTextNote,
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
    all_states,
    next_of,
    state_name,
    successors,
    with_path,
)
from untangle.workflow.lower import jsonpath_carries, lower_for_jsonpath, state_exprs
from untangle.workflow.optimize import optimize


def run_passes(
    workflow: Workflow, query_language: str, keep_unchecked_errors: bool = False
) -> tuple[Workflow, tuple[Reason, ...]]:
    """Every pass in order; returns the workflow to emit and the optimizations made."""
    if workflow.graph is None:
        return workflow, ()
    workflow = carry_on(workflow) if keep_unchecked_errors else fail_unchecked(workflow)
    workflow = task_per_function(workflow)
    workflow, optimizations = optimize(workflow)
    if query_language == "jsonpath":
        workflow = lower_for_jsonpath(workflow)
    workflow = end_branches(workflow, query_language)
    workflow = word_json_texts(workflow, query_language)
    return workflow, optimizations


def word_json_texts(workflow: Workflow, query_language: str) -> Workflow:
    """The builder marked each `json.dumps` of a value only the machine knows
    (`JsonTextNote`); the machine writes that text with JSONata or `States.JsonToString`, whose
    text differs from Python's: said on each line, in the query language's terms. None is said
    when no JSON text is left for the machine to write (each ran in a new Python function)."""
    marked = [n for n in workflow.notes if isinstance(n, JsonTextNote)]
    if not marked:
        return workflow
    writes_json = workflow.graph is not None and _computes(workflow.graph, Operator.JSON_STRING)
    notes: list[Reason] = []
    for note in workflow.notes:
        if not isinstance(note, JsonTextNote):
            notes.append(note)
        elif writes_json:
            notes.append(Reason(note.path, note.line, _json_text(note.message, query_language)))
    return replace(workflow, notes=tuple(dict.fromkeys(notes)))


def _json_text(call: str, query_language: str) -> str:
    if query_language == "jsonpath":
        return (
            f'`{call}`: States.JsonToString writes this text compact (`{{"a":1}}`, Python '
            '`{"a": 1}`) and leaves characters outside ASCII unescaped (`é`, Python `\\u00e9`): '
            "the same data in another text"
        )
    return (
        f"`{call}`: the machine writes this text as Python does, except that it leaves "
        "characters outside ASCII unescaped (`é`, Python `\\u00e9`) and writes a float with no "
        "fraction as `3` (Python `3.0`; Step Functions keeps no 3.0)"
    )


def _computes(graph: Graph, op: Operator) -> bool:
    """Some expression of a state of `graph` (nested states included) applies `op`."""
    found = False

    def look(expr: Expr) -> Expr:
        nonlocal found
        found = found or (isinstance(expr, Op) and expr.op == op)
        return expr

    for state in all_states(graph):
        state_exprs(state, look)
    return found


def fail_unchecked(workflow: Workflow) -> Workflow:
    """A Task whose FunctionError the original never checked fails when the function does (the
    original carried on with the error payload): said on the line of each such invoke. The
    tasks keep `unchecked`, so verify can tell this documented difference from a mismatch."""
    if workflow.graph is None:
        return workflow
    notes = [
        Reason(
            state.path,
            state.span.line,
            f"{state.function.display}: the original never checked FunctionError and carried on "
            "with the error payload when the function failed; the machine fails instead, as a "
            "Step Functions Task does (--keep-unchecked-errors keeps the original behaviour)",
        )
        for state in all_states(workflow.graph)
        if isinstance(state, Task) and state.unchecked
    ]
    return replace(workflow, notes=tuple(dict.fromkeys((*workflow.notes, *notes))))


def carry_on(workflow: Workflow) -> Workflow:
    """A synchronous invoke does not raise when the function fails: the original went on with
    the error payload as the result. Each such task gets a Catch doing the same."""
    if workflow.graph is None:
        return workflow
    used = {state.name for state in all_states(workflow.graph)}
    notes: list[Reason] = []

    def unique(base: str) -> str:
        base = state_name(base)
        name, counter = base[:80], 2
        while name in used:
            name = f"{base[:76]}{counter}"
            counter += 1
        used.add(name)
        return name

    def rewrite(graph: Graph) -> Graph:
        states: list[State] = []
        for state in graph.states:
            if isinstance(state, Map):
                state = replace(state, processor=rewrite(state.processor))
            elif isinstance(state, Parallel):
                state = replace(state, branches=tuple(rewrite(b) for b in state.branches))
            elif isinstance(state, Task) and state.unchecked:
                target = state.next
                if target is None:
                    target = unique(f"{state.name}Done")
                    states.append(Assign(target, (), None, state.span))
                rule = CatchRule(("States.TaskFailed",), target, state.assign, result=True)
                state = replace(state, catch=(rule, *state.catch), unchecked=False)
                notes.append(
                    Reason(
                        state.path,
                        state.span.line,
                        f"{state.function.display}: the original never checked FunctionError, so "
                        "it carried on when the function failed; so does the machine (a Catch of "
                        "States.TaskFailed), with the error payload as the result",
                    )
                )
            states.append(state)
        return Graph(graph.start, tuple(states))

    graph = rewrite(workflow.graph)
    return replace(workflow, graph=graph, notes=tuple(dict.fromkeys((*workflow.notes, *notes))))


def end_branches(workflow: Workflow, query_language: str) -> Workflow:
    """In each Map iteration and Parallel branch, a state whose next is a Succeed ends the
    branch itself when it can carry the Succeed's output (`carried`): one state transition less
    for each item and branch (each is billed in a Standard workflow). The Succeed stays only
    while something else still goes to it (a Choice, a Catch) or it is all the branch does."""
    if workflow.graph is None:
        return workflow

    def rewrite(graph: Graph, nested: bool) -> Graph:
        states: list[State] = []
        for state in graph.states:
            if isinstance(state, Map):
                state = replace(state, processor=rewrite(state.processor, True))
            elif isinstance(state, Parallel):
                state = replace(
                    state, branches=tuple(rewrite(branch, True) for branch in state.branches)
                )
            states.append(state)
        if not nested:
            return Graph(graph.start, tuple(states))
        succeeds = {s.name: s for s in states if isinstance(s, Succeed)}
        ended: list[State] = []
        for state in states:
            target = next_of(state)
            if target in succeeds:
                state = carried(state, succeeds[target].output, query_language) or state
            ended.append(state)
        used = {graph.start} | {name for s in ended for name in successors(s)}
        return Graph(
            graph.start,
            tuple(s for s in ended if not (isinstance(s, Succeed) and s.name not in used)),
        )

    return replace(workflow, graph=rewrite(workflow.graph, False))


def carried(state: State, output: Expr, query_language: str) -> State | None:
    """`state` ending its branch with `output` (read after it) as its output, or None when it
    cannot: what the state stores becomes part of its output (a Task's variable reads its
    `Result`, a Pass's its value), and it stores nothing more, since nothing runs after it."""
    ends: State
    match state:
        case Task() | Map():
            table: dict[str, Expr] = {state.assign: Result()} if state.assign else {}
            found = _substituted(output, table)
            if found is None:
                return None
            ends = replace(state, assign=None, next=None, output=found)
        case Parallel():
            table = {name: Result((index,)) for index, name in enumerate(state.assign) if name}
            found = _substituted(output, table)
            if found is None:
                return None
            ends = replace(state, assign=(None,) * len(state.assign), next=None, output=found)
        case Assign():
            found = _substituted(output, dict(state.values))
            if found is None:
                return None
            ends = replace(state, values=(), next=None, output=found)
        case Wait():
            ends = replace(state, next=None, output=output)
        case Choice() | Succeed() | Fail():
            return None
    assert ends.output is not None
    if query_language == "jsonpath" and not jsonpath_carries(ends, ends.output):
        return None
    return ends


def _substituted(
    expr: Expr, table: dict[str, Expr], bound: frozenset[str] = frozenset()
) -> Expr | None:
    """`expr` with each variable of `table` replaced by its value (None: a part of a value that
    has no path, `$x["k"]` of a computed `$x`)."""
    if isinstance(expr, Var) and expr.name in table and expr.name not in bound:
        value: Expr | None = table[expr.name]
        for part in expr.path:
            value = with_path(value, part) if value is not None else None
        return value
    if isinstance(expr, Obj):
        items = [(key, _substituted(value, table, bound)) for key, value in expr.items]
        if any(value is None for _, value in items):
            return None
        return Obj(tuple((key, value) for key, value in items if value is not None))
    if isinstance(expr, Arr):
        elements = [_substituted(item, table, bound) for item in expr.items]
        if any(item is None for item in elements):
            return None
        return Arr(tuple(item for item in elements if item is not None))
    if isinstance(expr, Op):
        inner = bound
        if expr.op == Operator.COMPREHENSION and isinstance(expr.args[1], Lit):
            # the element and the condition read the item under its own name
            inner = bound | {str(expr.args[1].value)}
        args = [
            _substituted(arg, table, inner if index >= 2 else bound)
            for index, arg in enumerate(expr.args)
        ]
        if any(arg is None for arg in args):
            return None
        return Op(expr.op, tuple(arg for arg in args if arg is not None))
    return expr
