"""The builder: the state of compiling one handler (states made so far, reasons, notes,
names in use) and the entry points the construct modules call back into."""

from __future__ import annotations

import ast
from collections.abc import Callable, Iterator
from dataclasses import replace

from untangle.analysis.program import InvokeSite, Program, SleepSite
from untangle.facts.model import FunctionFacts
from untangle.workflow.build import effect, helpers, region, visitor
from untangle.workflow.build.ast_helpers import (
    bound_names,
    head_of,
    source_text,
    span_of,
    workflow_name,
)
from untangle.workflow.build.scope import REFUSED, Exit, Fragment, Opaque, Scope, Unsupported, Value
from untangle.workflow.build.sources import ParsedSources
from untangle.workflow.ir import (
    Assign,
    Choice,
    Extraction,
    FunctionRef,
    Graph,
    Input,
    Lit,
    Reason,
    State,
    Succeed,
    Task,
    Workflow,
    state_name,
    with_next,
)

FunctionNamer = Callable[[str], FunctionRef]


class WorkflowBuilder:
    """Compiles one handler; the construct modules (`statement`, `conditional`, `for_loop`, …)
    do the work and call back into `block`, `stmt`, `value`, `effect`, `hoist` and `inline`."""

    def __init__(
        self,
        program: Program,
        handler: str,
        sources: ParsedSources,
        name_function: FunctionNamer,
    ) -> None:
        self.program = program
        self.handler = handler
        self.sources = sources
        self.name_function = name_function
        self.states: dict[str, State] = {}
        self.reasons: list[Reason] = []
        self.notes: list[Reason] = []
        self.functions: dict[str, FunctionRef] = {}
        # the tree's invokes and sleeps by where they are: the same for every workflow built
        # on this program (read only)
        self.invokes, self.sleeps = _sites_by_place(program)
        self._inline_depth = 0
        self._temps: set[str] = set()
        self._used_names: set[str] = set()
        self._prefixes: set[str] = set()
        self.extracted: list[Extraction] = []
        # `os.environ.get(NAME, default)`: the value to substitute when no template sets NAME
        self.env_defaults: dict[str, str] = {}
        # exception classes the code raises when an invoked function failed
        self._function_errors: set[str] = set()
        # a statement's bodies are being compiled only to find their reasons (see `stmt`)
        self._checking = False
        # a local statement is being compiled to see whether ASL expresses it: no regions
        # inside it (the whole statement is one, if any)
        self._regions_off = False

    def build(self) -> Workflow:
        facts = self.program.functions[self.handler]
        module = self.program.module_of(self.handler)
        name = workflow_name(self.handler)
        try:
            node, lines = self.function_node(module.path, facts.name, facts.span.line)
            scope = Scope({}, module.path, lines)
            params = [a.arg for a in node.args.args]
            if params:
                scope.env[params[0]] = Input(())
            if len(params) > 1:
                scope.env[params[1]] = Opaque(node.lineno, "the Lambda context object")
            fragment = self.block(node.body, scope)
            graph = None
            if not self.reasons:
                end = self.add(Succeed(self.unique("Done"), Lit(None), span_of(node)))
                self.connect(fragment.exits, end)
                graph = self.graph(fragment.start or end)
        except Unsupported as exc:
            self.refuse(exc, module.path)
            graph = None
        except (RecursionError, SyntaxError, OSError, ValueError) as exc:
            self.reasons.append(
                Reason(module.path, facts.span.line, f"cannot analyse this handler: {exc}")
            )
            graph = None
        except Exception as exc:  # a planner bug on odd input refuses this handler, not the run
            self.reasons.append(
                Reason(
                    module.path,
                    facts.span.line,
                    f"cannot analyse this handler: internal error ({type(exc).__name__}: {exc}); "
                    "please report it",
                )
            )
            graph = None
        status = "converted" if graph is not None and not self.reasons else "not_converted"
        if status != "converted":  # no machine: nothing it would do differently, no functions
            self.notes, self.extracted = [], []
        return Workflow(
            name,
            self.handler,
            module.path,
            graph if status == "converted" else None,
            status,
            _in_reading_order(self.reasons),
            tuple(dict.fromkeys(self.notes)),
            tuple(self.functions.values()),
            tuple(self.extracted),
            tuple(sorted(self.env_defaults.items())),
        )

    def unique(self, base: str) -> str:
        # state names are unique in the whole machine, nested Map and Parallel states included,
        # and never an ASL field name (`Next` → `NextStep`)
        base = state_name(base[:80] or "State")
        name = base[:80]
        counter = 2
        while name in self._used_names:
            name = f"{base[:76]}{counter}"
            counter += 1
        self._used_names.add(name)
        return name

    def add(self, state: State) -> str:
        self.states[state.name] = state
        return state.name

    def connect(self, exits: list[Exit], target: str) -> None:
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

    def graph(self, start: str) -> Graph:
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

    def sequence(self, first: Fragment, second: Fragment) -> Fragment:
        """`first` then `second`."""
        if first.start is None:
            return Fragment(second.start, second.exits) if second.start else first
        if second.start is None:
            return first
        self.connect(first.exits, second.start)
        return Fragment(first.start, second.exits)

    def function_node(
        self, path: str, name: str, line: int
    ) -> tuple[ast.FunctionDef | ast.AsyncFunctionDef, list[str]]:
        parsed = self.sources(path)
        tree, lines = parsed.tree, parsed.lines
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

    # --- entry points of the construct modules ---------------------------------------------

    def block(self, body: list[ast.stmt], scope: Scope) -> Fragment:
        """The statements in order; a run of local code that ASL cannot express becomes one
        new function (`region`)."""
        return region.compile_block(self, body, scope)

    def stmt(self, node: ast.stmt, scope: Scope) -> Fragment:
        """Compile one statement. A statement that cannot be converted is recorded (`refuse`)
        and compilation goes on with the next, so a refused handler lists every reason; the
        names it binds hold a value whose use is no new reason, and the bodies of a compound
        statement refused at its head are still compiled for their own reasons."""
        before = len(self.reasons)
        try:
            return visitor.transform_stmt(self, node, scope)
        except Unsupported as exc:
            if not self._reads_refused(head_of(node), scope):
                self.refuse(exc, scope.path)
            if exc.compile_bodies and len(self.reasons) == before + 1:
                self._check_bodies(node, scope)
        except Exception:
            if not self.reasons:
                raise  # a bug of the builder, not the aftermath of a refusal
        for name in bound_names(node):
            scope.env[name] = Opaque(node.lineno, f"`{name}`, {REFUSED} (line {node.lineno})")
        # a state in its place, so what surrounds it sees a step (an except block that
        # "swallows the error" because its only statement was refused is no reason); control
        # does not go on after a refused return, raise, break or continue: nor do the reasons
        marker = self.add(Assign(self.unique("Refused"), (), None, span_of(node)))
        if isinstance(node, (ast.Return, ast.Raise, ast.Break, ast.Continue)):
            return Fragment(marker, [])
        return Fragment(marker, [(marker, "next")])

    def refuse(self, exc: Unsupported, path: str) -> None:
        if not exc.secondary:
            self.reasons.append(Reason(exc.path or path, exc.line, exc.message, exc.hint))

    @staticmethod
    def _reads_refused(nodes: list[ast.AST], scope: Scope) -> bool:
        """Reads a name bound by a statement that was refused (its failure is no new reason)."""
        return any(
            isinstance(sub, ast.Name)
            and isinstance(sub.ctx, ast.Load)
            and isinstance(known := scope.env.get(sub.id), Opaque)
            and REFUSED in known.message
            for node in nodes
            for sub in ast.walk(node)
        )

    def _check_bodies(self, node: ast.stmt, scope: Scope) -> None:
        if self._checking:
            return
        bodies = [getattr(node, field, None) for field in ("body", "orelse", "finalbody")]
        # a bare `raise` in an except block is fine there: not a reason
        bodies += [
            [s for s in h.body if not (isinstance(s, ast.Raise) and s.exc is None)]
            for h in getattr(node, "handlers", ())
        ]
        bodies += [c.body for c in getattr(node, "cases", ())]
        inner = replace(scope, env=dict(scope.env), breaks=[])
        for name in bound_names(node):  # loop targets, `as` names: unknown, not globals
            inner.env[name] = Opaque(node.lineno, f"`{name}`, {REFUSED} (line {node.lineno})")
        self._checking = True
        try:
            for body in bodies:
                if isinstance(body, list) and body and isinstance(body[0], ast.stmt):
                    self.block(body, inner)
        except Exception:
            pass  # only their reasons were wanted; `stmt` recorded them
        finally:
            self._checking = False

    def value(self, node: ast.expr, scope: Scope) -> Value:
        try:
            found = visitor.transform_expr(self, node, scope)
        except RecursionError:
            raise Unsupported(node.lineno, "an expression too deep to translate") from None
        if isinstance(found, Opaque) and REFUSED not in found.message:
            if self._reads_refused([node], scope):
                found = Opaque(node.lineno, f"`{source_text(node, scope)}`, {REFUSED}")
            if not found.path:
                found = replace(found, path=scope.path)  # where its line is, wherever used
        return found

    def effect(self, value: ast.expr, target: str | None, scope: Scope) -> Fragment:
        """`target = value` (or just `value`): a Task, a Wait or an inlined helper when the
        expression does work, else a data expression bound to `target`."""
        return effect.transform_effect(self, value, target, scope)

    def hoist(self, node: ast.expr, scope: Scope) -> tuple[Fragment, ast.expr]:
        """The work inside `node` emitted first, each result into a variable; `node` with those
        calls replaced by the variables."""
        return effect.hoist(self, node, scope)

    def inline(
        self, info: tuple[str, ast.Call], value: ast.expr, target: str | None, scope: Scope
    ) -> Fragment:
        """The helper `info` called in `value`, compiled in place."""
        return helpers.inline(self, info, value, target, scope)

    # --- what the tree holds ----------------------------------------------------------------

    def function_at(self, path: str, line: int) -> str | None:
        best: str | None = None
        best_line = -1
        for qualname, facts in _functions_by_path(self.program).get(path, ()):
            if facts.span.line <= line <= facts.span.end_line and facts.span.line > best_line:
                best, best_line = qualname, facts.span.line
        return best

    def remember(self, ref: FunctionRef) -> FunctionRef:
        if ref.placeholder:
            self.functions.setdefault(ref.placeholder, ref)
        return ref

    def module_assignment(self, path: str, name: str) -> ast.expr | None:
        """The value of the one top-level `name = …` of a module, if there is exactly one."""
        tree = self.sources(path).tree
        values = [
            stmt.value
            for stmt in tree.body
            if isinstance(stmt, ast.Assign)
            and len(stmt.targets) == 1
            and isinstance(stmt.targets[0], ast.Name)
            and stmt.targets[0].id == name
        ]
        return values[0] if len(values) == 1 else None


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


def _in_reading_order(reasons: list[Reason]) -> tuple[Reason, ...]:
    """Each file's reasons by line, the files in the order they were met (the handler's first)."""
    files = list(dict.fromkeys(r.path for r in reasons))
    unique = dict.fromkeys(reasons)
    return tuple(sorted(unique, key=lambda r: (files.index(r.path), r.line)))


def _functions_by_path(program: Program) -> dict[str, list[tuple[str, FunctionFacts]]]:
    """The program's functions by their module's path, in the program's order: built once per
    program (again when it has loaded more modules), not searched once per question (a tree
    of N orchestrators asks about N times per workflow)."""
    known = program.cache.get("functions by path")
    if isinstance(known, tuple) and known[0] == len(program.functions):
        return known[1]  # type: ignore[no-any-return]
    found: dict[str, list[tuple[str, FunctionFacts]]] = {}
    for qualname, facts in program.functions.items():
        found.setdefault(program.module_of(qualname).path, []).append((qualname, facts))
    program.cache["functions by path"] = (len(program.functions), found)
    return found


Place = tuple[str, int, int]  # a call's module path, line and column


def _sites_by_place(program: Program) -> tuple[dict[Place, InvokeSite], dict[Place, SleepSite]]:
    """The program's invoke and sleep sites by (path, line, column): built once per program."""
    known = program.cache.get("sites by place")
    if isinstance(known, tuple) and known[0] is program.invokes and known[1] is program.sleeps:
        return known[2], known[3]
    invokes = {
        (program.module_of(s.function).path, s.site.span.line, s.site.span.column): s
        for s in program.invokes
    }
    sleeps = {
        (program.module_of(s.function).path, s.site.span.line, s.site.span.column): s
        for s in program.sleeps
    }
    program.cache["sites by place"] = (program.invokes, program.sleeps, invokes, sleeps)
    return invokes, sleeps
