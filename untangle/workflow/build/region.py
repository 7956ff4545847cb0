"""Regions of statements (issue 10, section 2): the maximal run of local code between
orchestration points that ASL cannot express runs as the original Python in ONE new function.

A body is compiled statement by statement, as before. A statement is *local* when it does no
work (no invoke, sleep or helper that does), and cannot leave the body (no return, raise,
break or continue out of it). Each local statement is compiled as usual; when that fails (a
loop of local computation, a list changed in place, an SDK call, `in` on a list, …) the
compilation is undone back to where the region starts, and the statements from there become one
new function (`region_extract`). A later local statement of the same run that fails too joins
the region: one function, never one per statement. What the region starts with may be pulled
in before it: the statements that only bind what the region goes on changing (`errors = []`)
or what the workflow can only carry as a new function of its own.
"""

from __future__ import annotations

import ast
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from untangle.workflow.build import visitor
from untangle.workflow.build.ast_helpers import bound_names, head_of, span_of
from untangle.workflow.build.extraction import droppable
from untangle.workflow.build.region_extract import NoRegion, extract_region
from untangle.workflow.build.region_json import binds_not_json
from untangle.workflow.build.region_names import loaded_names, written_names
from untangle.workflow.build.scope import NOT_DATA, REFUSED, Fragment, Opaque, Scope, Unsupported
from untangle.workflow.build.work import has_work_in
from untangle.workflow.ir import Assign, FunctionRef, State, Task, next_of, with_next

if TYPE_CHECKING:
    from untangle.workflow.build.builder import WorkflowBuilder


# what a local statement may leave in a name that is no data of its own (a client, a context
# manager, a function); any other value the workflow cannot carry (a string changed with `+=`,
# a dict changed in place, a value the branches set differently) a new function can compute
NOT_LOCAL_DATA = (
    "a client or service object",
    "a context manager",
    "a nested definition",
    "(a function, not data)",
    "the Lambda context object",
    REFUSED,
)


@dataclass
class Snapshot:
    """The builder and the scope before a statement, to undo its compilation."""

    fragment: Fragment
    states: dict[str, State]
    env: dict[str, object]
    reasons: int
    notes: int
    extracted: int
    functions: dict[str, FunctionRef]
    used: set[str]
    temps: set[str]
    env_defaults: dict[str, str]
    errors: set[str]
    catches: list[list[str]] = field(default_factory=list)

    @staticmethod
    def take(builder: WorkflowBuilder, scope: Scope, fragment: Fragment) -> Snapshot:
        return Snapshot(
            Fragment(fragment.start, list(fragment.exits)),
            dict(builder.states),
            dict(scope.env),
            len(builder.reasons),
            len(builder.notes),
            len(builder.extracted),
            dict(builder.functions),
            set(builder._used_names),
            set(builder._temps),
            dict(builder.env_defaults),
            set(builder._function_errors),
            [list(c.tasks) for c in scope.catches],
        )

    def restore(self, builder: WorkflowBuilder, scope: Scope) -> Fragment:
        """Undo what was compiled since; an earlier computation that was extracted meanwhile
        (its placeholder became a Task the first time something read its value) stays: the
        value it computes is read from its variable from now on."""
        kept: dict[str, State] = {}
        for name, state in self.states.items():
            current = builder.states.get(name, state)
            if isinstance(current, Task) and not isinstance(state, Task):
                current = with_next(current, next_of(state))
            else:
                current = state
            kept[name] = current
        builder.states = kept
        made = {s.function.display for s in kept.values() if isinstance(s, Task)}
        builder.extracted = [
            e for i, e in enumerate(builder.extracted) if i < self.extracted or e.function in made
        ]
        functions = dict(self.functions)
        for key, ref in builder.functions.items():
            if ref.display in made:
                functions.setdefault(key, ref)
        builder.functions = functions
        del builder.reasons[self.reasons :]
        del builder.notes[self.notes :]
        builder._used_names = self.used | set(kept)
        builder._temps = set(self.temps)
        builder.env_defaults = dict(self.env_defaults)
        builder._function_errors = set(self.errors)
        scope.env.clear()
        scope.env.update(self.env)  # type: ignore[arg-type]
        for catch, tasks in zip(scope.catches, self.catches):
            catch.tasks[:] = [t for t in catch.tasks if t in tasks or t in kept]
        return Fragment(self.fragment.start, list(self.fragment.exits))


def compile_block(builder: WorkflowBuilder, body: list[ast.stmt], scope: Scope) -> Fragment:
    fragment = Fragment(None, [])
    snapshots: dict[int, Snapshot] = {}  # the current run of local statements
    region: int | None = None  # where the last region of this run starts
    no_region: set[int] = set()
    extracted_at: set[int] = set()  # statements that became a new function of their own
    index = 0
    while index < len(body):
        node = body[index]
        if fragment.start is not None and not fragment.exits:
            break  # everything after a return/raise is unreachable
        if builder._regions_off or index in no_region or not local(builder, node, scope):
            snapshots.clear()
            region = None
            fragment = builder.sequence(fragment, builder.stmt(node, scope))
            index += 1
            continue
        snapshots[index] = Snapshot.take(builder, scope, fragment)
        compiled, regional = trial(builder, node, scope)
        if compiled is not None and new_function(builder, snapshots[index], node, scope):
            extracted_at.add(index)
            if region is not None:
                compiled = None  # the region before it and this new function become one
        if compiled is not None:
            fragment = builder.sequence(fragment, compiled)
            index += 1
            continue
        if not regional:
            fragment = snapshots[index].restore(builder, scope)
            no_region.add(index)
            continue
        start = (
            region
            if region is not None
            else pulled_in(builder, body, snapshots, index, scope, extracted_at)
        )
        end = index
        while True:
            fragment = snapshots[start].restore(builder, scope)
            try:
                extracted = extract_region(builder, body[start : end + 1], scope)
                break
            except NoRegion:
                extracted = None
                break
            except Unsupported as exc:
                following = body[end + 1] if end + 1 < len(body) else None
                if (
                    following is not None
                    and end + 1 not in no_region
                    and local(builder, following, scope)
                ):
                    end += 1  # what the next statement does with the value may make it data
                    continue
                fragment = snapshots[start].restore(builder, scope)
                builder.refuse(exc, scope.path)
                for name in (n for s in body[start : end + 1] for n in bound_names(s)):
                    scope.env[name] = Opaque(exc.line, f"`{name}`, {REFUSED} (line {exc.line})")
                marker = builder.add(
                    Assign(builder.unique("Refused"), (), None, span_of(body[start]))
                )
                extracted = Fragment(marker, [(marker, "next")])
                snapshots.clear()
                break
        if extracted is None:
            # compiled as before, this statement refused with its own reason
            fragment = snapshots[start].restore(builder, scope)
            no_region.add(index)
            region = None
            index = start
            continue
        index = end
        fragment = builder.sequence(fragment, extracted)
        region = start if snapshots else None
        index += 1
    return fragment


def trial(builder: WorkflowBuilder, node: ast.stmt, scope: Scope) -> tuple[Fragment | None, bool]:
    """`node` compiled as usual; else None, and whether a region may run it (not when it
    fails because it reads what an earlier refusal bound: that is no reason of its own)."""
    before = len(builder.reasons)
    off = builder._regions_off
    builder._regions_off = True  # a local loop or if is one region, not a Choice around some
    try:
        fragment = visitor.transform_stmt(builder, node, scope)
    except Unsupported:
        return None, not builder._reads_refused(head_of(node), scope)
    except Exception:
        if not builder.reasons:
            raise  # a bug of the builder, not the aftermath of a refusal
        return None, False
    finally:
        builder._regions_off = off
    if len(builder.reasons) > before:
        return None, not any(REFUSED in r.message for r in builder.reasons[before:])
    if isinstance(node, ast.Expr) and droppable(builder, node.value, scope):
        return fragment, True  # logging, dropped: it changes none of the values it logs
    if leaves_local_data(node, scope) or binds_not_json(builder, node, scope):
        return None, True
    return fragment, True


def new_function(builder: WorkflowBuilder, before: Snapshot, node: ast.stmt, scope: Scope) -> bool:
    """Compiling `node` made a new function of its own, run where the statement is."""
    end = node.end_lineno or node.lineno
    return any(
        node.lineno <= e.line <= end and e.path == scope.path
        for e in builder.extracted[before.extracted :]
    )


def leaves_local_data(node: ast.stmt, scope: Scope) -> bool:
    """`node` changed data in a way the workflow cannot follow (`text += line` on a string,
    `order["total"] = …`): the name now holds no value a later state could read."""
    for name in written_names([node]):
        known = scope.env.get(name)
        if (
            isinstance(known, Opaque)
            and known.extract is None
            and not any(marker in known.message for marker in NOT_LOCAL_DATA)
        ):
            return True
    return False


def pulled_in(
    builder: WorkflowBuilder,
    body: list[ast.stmt],
    snapshots: dict[int, Snapshot],
    index: int,
    scope: Scope,
    extracted_at: set[int],
) -> int:
    """Where a region ending with `body[index]` starts: the statements of the run just before
    it that only bind names it goes on changing (`errors = []`), or names holding what the
    workflow cannot carry but a new function can compute, run in it too."""
    start = index
    while start - 1 in snapshots:
        candidate = body[start - 1]
        inner = {
            n.id
            for c in ast.walk(candidate)
            if isinstance(c, ast.comprehension)
            for n in ast.walk(c.target)
            if isinstance(n, ast.Name)
        }
        names = [n for n in bound_names(candidate) if n not in inner]
        region = body[start : index + 1]
        written = set(written_names(region))
        read = set(loaded_names(region))
        if start - 1 not in extracted_at and (
            not names
            or not all(
                n in written or (n in read and isinstance(scope.env.get(n), NOT_DATA))
                for n in names
            )
        ):
            break
        start -= 1
    return start


def local(builder: WorkflowBuilder, node: ast.stmt, scope: Scope) -> bool:
    """`node` does no work and cannot leave the body it is in."""
    if isinstance(
        node,
        (
            ast.Return,
            ast.Raise,
            ast.Assert,
            ast.Break,
            ast.Continue,
            ast.Global,
            ast.Nonlocal,
            ast.FunctionDef,
            ast.AsyncFunctionDef,
            ast.ClassDef,
            ast.Import,
            ast.ImportFrom,
            ast.Pass,
            ast.Match,  # a branch: `if`/`elif` becomes a Choice (its refusal says so)
        ),
    ):
        return False
    if isinstance(node, ast.Expr) and isinstance(node.value, ast.Constant):
        return False  # a docstring
    if not stays(node, in_loop=False):
        return False
    try:
        return not has_work_in(builder, [node], scope)
    except Unsupported:
        return False


def stays(node: ast.AST, in_loop: bool) -> bool:
    """Nothing under `node` leaves it: no return, raise, yield or await, no break or continue
    out of a loop that is not inside it."""
    for child in ast.iter_child_nodes(node):
        if isinstance(
            child,
            (
                ast.Return,
                ast.Raise,
                ast.Assert,
                ast.Yield,
                ast.YieldFrom,
                ast.Await,
                ast.Global,
                ast.Nonlocal,
                ast.FunctionDef,
                ast.AsyncFunctionDef,
                ast.ClassDef,
                ast.AsyncFor,
                ast.AsyncWith,
            ),
        ):
            return False
        if isinstance(child, (ast.Break, ast.Continue)) and not in_loop:
            return False
        inside = in_loop
        if isinstance(node, (ast.For, ast.While)) and any(child is s for s in node.body):
            inside = True
        if not stays(child, inside):
            return False
    return True
