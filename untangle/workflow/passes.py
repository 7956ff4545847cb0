"""The IR passes, run from one recipe in order: the builder's workflow in, the workflow the ASL
emitter renders out (the emitter only emits).

1. unchecked FunctionErrors: a synchronous invoke whose FunctionError the original never
   checked went on with the error payload as its result. By default the Task fails instead, as
   Step Functions tasks do and as the article's machines do (`fail_unchecked`, noted on each);
   with `keep_unchecked_errors` its Task gets a Catch carrying on the same way (`carry_on`).
2. `optimize`: drop empty pass-through states and dead stores; independent tasks in Parallel.
3. `lower_for_jsonpath` (JSONPath only): what JSONPath cannot compute is made before its state.
"""

from __future__ import annotations

from dataclasses import replace

from untangle.workflow.ir import (
    Assign,
    CatchRule,
    Graph,
    Map,
    Parallel,
    Reason,
    State,
    Task,
    Workflow,
    all_states,
)
from untangle.workflow.lower import lower_for_jsonpath
from untangle.workflow.optimize import optimize


def run_passes(
    workflow: Workflow, query_language: str, keep_unchecked_errors: bool = False
) -> tuple[Workflow, tuple[Reason, ...]]:
    """Every pass in order; returns the workflow to emit and the optimizations made."""
    if workflow.graph is None:
        return workflow, ()
    workflow = carry_on(workflow) if keep_unchecked_errors else fail_unchecked(workflow)
    workflow, optimizations = optimize(workflow)
    if query_language == "jsonpath":
        workflow = lower_for_jsonpath(workflow)
    return workflow, optimizations


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
