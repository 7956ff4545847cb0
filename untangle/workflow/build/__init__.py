"""An orchestrating handler (Python `ast` + the linked scan `Program`) → a `Workflow`.

The handler body is compiled statement by statement into states; Python locals become data
expressions over the execution input and workflow variables. Helpers that invoke are inlined
along the call graph. Anything that cannot be expressed faithfully is recorded as a `Reason`
with its `path:line`, and the handler is refused or partly converted: never a silently wrong
machine.

Layout (after mypyc's `irbuild`): `builder` holds the state of one compilation, `visitor` only
dispatches, and each construct has its module: `statement`, `conditional` (→ Choice),
`exceptions` (→ Catch, Fail), `for_loop` (→ Map), `unroll` (fixed loops → steps, Parallel),
`while_loop` (→ polling Choice), `retry` (→ Retry), `concurrency` (→ Map, Parallel), `invoke`
(→ Task, Wait), `helpers` (inlining), `extraction` (→ new functions), `expression`,
`specialize` (known callables), `constant_fold`, `locals`, `work`, `ast_helpers`; `effect`
is the step every statement that does work shares.
"""

from untangle.workflow.build.builder import WorkflowBuilder

__all__ = ["WorkflowBuilder"]
