"""Local computation the workflow needs but ASL cannot express: a new single-purpose
function runs it (a Task), placed where the original computed it."""

from __future__ import annotations

import ast
import builtins
import re
from dataclasses import replace
from typing import TYPE_CHECKING

from untangle.analysis.values import (
    Bound,
    Instance,
    LambdaClient,
    OtherClient,
    Session,
)
from untangle.facts.model import Local as LocalSym
from untangle.facts.model import Ref, Sym
from untangle.workflow.build.ast_helpers import (
    LOGGERS,
    column_of,
    dotted_name,
    full_source,
    snake,
    source_text,
    span_of,
)
from untangle.workflow.build.scope import NOT_DATA, Fragment, Opaque, Scope, Unsupported, to_expr
from untangle.workflow.ir import (
    Assign,
    Expr,
    Extraction,
    FunctionRef,
    Obj,
    Task,
    Var,
    next_of,
    pascal,
)

if TYPE_CHECKING:
    from untangle.workflow.build.builder import WorkflowBuilder


def infrastructure(builder: WorkflowBuilder, target: str, node: ast.expr, scope: Scope) -> bool:
    """`target` holds a client, a session or an object of the tree (never data to pass)."""
    qualname = builder.function_at(scope.path, node.lineno)
    if qualname is None:
        return False
    values = builder.program.values(LocalSym(qualname, target))
    if any(isinstance(v, (LambdaClient, OtherClient, Session, Instance, Bound)) for v in values):
        return True
    return invokes_through(builder, qualname, target, scope)


def invokes_through(builder: WorkflowBuilder, qualname: str, target: str, scope: Scope) -> bool:
    """`target` is the receiver of an invoke of the function `qualname` (`client.invoke(…)`):
    a Lambda client, also one recognised by its shape only (from a factory that caches clients
    in a dict, or from another repository), which is no value a state could pass on."""
    facts = builder.program.functions.get(qualname)
    if facts is None:
        return False
    first, last = facts.span.line, facts.span.end_line
    for node in ast.walk(builder.sources(scope.path).tree):
        if (
            isinstance(node, ast.Call)
            and first <= node.lineno <= last
            and isinstance(node.func, ast.Attribute)
            and isinstance(node.func.value, ast.Name)
            and node.func.value.id == target
            and (scope.path, node.lineno, column_of(node, scope)) in builder.invokes
        ):
            return True
    return False


def sdk_response(builder: WorkflowBuilder, node: ast.expr, scope: Scope) -> bool:
    """`node` is a call of an AWS client's method (`s3.head_object(…)`): its response holds
    values that are not JSON (datetimes, streams), so it cannot go from one state to the next."""
    if not (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)):
        return False
    receiver = node.func.value
    if not isinstance(receiver, ast.Name):
        return False
    qualname = builder.function_at(scope.path, node.lineno)
    module = builder.program.function_module.get(qualname or "")
    symbols: list[Sym] = []
    if qualname is not None:
        symbols.append(LocalSym(qualname, receiver.id))
    if module is not None:
        symbols.append(Ref(f"{module}.{receiver.id}"))
    return any(isinstance(v, OtherClient) for sym in symbols for v in builder.program.values(sym))


# calls that only compute a value from their arguments: dropping one whose value nothing
# reads changes nothing (any other call may write a file, send a request, mutate an argument)
PURE_FUNCTIONS = frozenset(
    (
        "abs",
        "all",
        "any",
        "bool",
        "dict",
        "divmod",
        "enumerate",
        "float",
        "frozenset",
        "int",
        "isinstance",
        "len",
        "list",
        "max",
        "min",
        "range",
        "repr",
        "reversed",
        "round",
        "set",
        "sorted",
        "str",
        "sum",
        "tuple",
        "type",
        "zip",
        "json.dumps",
        "json.loads",
        "math.ceil",
        "math.floor",
        "math.sqrt",
        "os.getenv",
        "os.environ.get",
        "os.path.basename",
        "os.path.join",
        "os.path.splitext",
        "os.path.dirname",
        "datetime.datetime.fromisoformat",
    )
)
PURE_METHODS = frozenset(
    (
        "get",
        "keys",
        "values",
        "items",
        "copy",
        "count",
        "index",
        "startswith",
        "endswith",
        "upper",
        "lower",
        "strip",
        "lstrip",
        "rstrip",
        "split",
        "rsplit",
        "splitlines",
        "join",
        "replace",
        "format",
        "encode",
        "decode",
        "isdigit",
        "isalpha",
        "title",
        "capitalize",
        "zfill",
        "partition",
        "rpartition",
        "find",
    )
)
# handles on AWS resources: making one sends nothing
HANDLE_MAKERS = frozenset(
    (
        "client",
        "resource",
        "Session",
        "Table",
        "Bucket",
        "Object",
        "Queue",
        "Topic",
    )
)


def has_effects(node: ast.expr) -> bool:
    """`node` calls something that may do more than compute its value."""
    for sub in ast.walk(node):
        if not isinstance(sub, ast.Call):
            continue
        name = dotted_name(sub.func)
        method = sub.func.attr if isinstance(sub.func, ast.Attribute) else ""
        if name in PURE_FUNCTIONS or method in PURE_METHODS or method in HANDLE_MAKERS:
            continue
        if isinstance(sub.func, ast.Name) and sub.func.id in HANDLE_MAKERS:
            continue
        return True
    return False


def extractable(builder: WorkflowBuilder, node: ast.expr, scope: Scope) -> list[str] | None:
    """The locals a new function computing `node` needs, when they are all plain data."""
    params: list[str] = []
    for sub in ast.walk(node):
        # (a lambda, `key=lambda q: q["price"]`, is copied with the expression)
        if isinstance(sub, (ast.Await, ast.Yield, ast.YieldFrom)):
            return None
        if isinstance(sub, ast.Name) and isinstance(sub.ctx, ast.Load) and sub.id in scope.env:
            known = scope.env[sub.id]
            if isinstance(known, Opaque) and known.extract is not None:
                # computed by an earlier extracted function (reserved in this scope or
                # another one, whose env it updated: this one gets its variable too)
                known = scope.env[sub.id] = known.extract()
            if isinstance(known, NOT_DATA):
                return None
            if sub.id not in params:
                params.append(sub.id)
    bound = {
        n.id for n in ast.walk(node) if isinstance(n, ast.Name) and isinstance(n.ctx, ast.Store)
    }
    return [p for p in params if p not in bound]


def extract_later(
    builder: WorkflowBuilder,
    node: ast.expr,
    target: str,
    params: list[str],
    computed: Opaque,
    scope: Scope,
) -> Fragment:
    """Reserve the place of a computation the workflow may need; it becomes a Task the first
    time something uses its value (an unused one disappears)."""
    placeholder = builder.add(
        Assign(builder.unique(f"Compute{pascal(target)}"), (), None, span_of(node))
    )
    snapshot = replace(scope, env=dict(scope.env))
    done: list[Expr] = []

    def extract() -> Expr:
        if not done:
            extract_task(builder, node, target, params, snapshot, placeholder)
            listed = isinstance(node, (ast.ListComp, ast.List)) or (
                isinstance(node, ast.Call) and dotted_name(node.func) in ("list", "sorted")
            )
            variable = Var(scope.var(target), (), "list" if listed else "")
            scope.env[target] = variable
            done.append(variable)
        return done[0]

    scope.env[target] = Opaque(computed.line, computed.message, extract)
    return Fragment(placeholder, [(placeholder, "next")])


def extract_task(
    builder: WorkflowBuilder,
    node: ast.expr,
    target: str | None,
    params: list[str],
    scope: Scope,
    placeholder: str | None = None,
) -> str:
    base = (
        f"compute_{target}"
        if target
        else snake(dotted_name(node.func) if isinstance(node, ast.Call) else "step")
    )
    function_name = re.sub(r"_+", "_", base).strip("_")
    # one function per computation: the same one (a helper inlined twice) is reused, another
    # computation under the same name gets its own
    source = full_source(node)
    made = {e.function: (e.expression, e.params, e.path) for e in builder.extracted}
    stem, counter = function_name, 2
    while function_name in made and made[function_name] != (source, tuple(params), scope.path):
        function_name, counter = f"{stem}_{counter}", counter + 1
    reused = function_name in made
    ref = FunctionRef(f"${{{pascal(function_name)}FunctionArn}}", function_name)
    payload = Obj(tuple((p, to_expr(scope.env[p], node.lineno)) for p in params))
    name = placeholder or builder.unique(pascal(function_name))
    following = next_of(builder.states[placeholder]) if placeholder else None
    task = Task(
        name,
        ref,
        payload,
        scope.var(target) if target else None,
        following,
        span_of(node),
        False,
        scope.retry,
    )
    builder.states[name] = task
    builder._used_names.add(name)
    for catch in scope.catches:
        catch.tasks.append(name)
    if not reused:
        builder.extracted.append(
            Extraction(function_name, tuple(params), source, scope.path, node.lineno, target)
        )
    builder.remember(ref)
    forget_mutated(builder, node, scope)
    return name


MUTATING_METHODS = frozenset(
    ("append", "extend", "insert", "update", "pop", "popitem", "remove", "clear", "setdefault")
)


def forget_mutated(builder: WorkflowBuilder, node: ast.expr, scope: Scope) -> None:
    """The new function runs on a copy of its arguments: the locals a function of the tree
    changes in place (`record(audit, x)` appending to `audit`) are no longer known here."""
    caller = builder.function_at(scope.path, node.lineno)
    if caller is None:
        return
    for call in (sub for sub in ast.walk(node) if isinstance(sub, ast.Call)):
        for edge in builder.program.edges_from(caller):
            if (
                edge.site.span.line != call.lineno
                or edge.site.span.column != column_of(call, scope)
                or edge.callee not in builder.program.functions
            ):
                continue
            facts = builder.program.functions[edge.callee]
            module = builder.program.module_of(edge.callee)
            try:
                definition, _ = builder.function_node(module.path, facts.name, facts.span.line)
            except Unsupported:
                continue
            params = [a.arg for a in (*definition.args.posonlyargs, *definition.args.args)]
            if facts.is_method and params:
                params = params[1:]
            changed = _changed_in_place(definition)
            arguments = dict(zip(params, call.args))
            arguments.update({k.arg: k.value for k in call.keywords if k.arg})
            for param, argument in arguments.items():
                if param in changed and isinstance(argument, ast.Name):
                    scope.env[argument.id] = Opaque(
                        call.lineno,
                        f"`{argument.id}`, which `{source_text(call, scope)}` changes in place "
                        "(a new function runs it, on a copy)",
                    )


def _changed_in_place(definition: ast.FunctionDef | ast.AsyncFunctionDef) -> set[str]:
    """The names a function changes in place: `p[k] = …`, `p.x = …`, `p.append(…)`, …"""
    changed: set[str] = set()
    for sub in ast.walk(definition):
        targets: list[ast.expr] = []
        if isinstance(sub, ast.Assign):
            targets = sub.targets
        elif isinstance(sub, (ast.AugAssign, ast.AnnAssign)):
            targets = [sub.target]
        elif isinstance(sub, ast.Delete):
            targets = sub.targets
        for target in targets:
            if isinstance(target, (ast.Subscript, ast.Attribute)):
                base = target.value
                while isinstance(base, (ast.Subscript, ast.Attribute)):
                    base = base.value
                if isinstance(base, ast.Name):
                    changed.add(base.id)
        if (
            isinstance(sub, ast.Call)
            and isinstance(sub.func, ast.Attribute)
            and sub.func.attr in MUTATING_METHODS
        ):
            base = sub.func.value
            while isinstance(base, (ast.Subscript, ast.Attribute)):
                base = base.value
            if isinstance(base, ast.Name):
                changed.add(base.id)
    return changed


def droppable(builder: WorkflowBuilder, value: ast.expr, scope: Scope) -> bool:
    if not isinstance(value, ast.Call):
        return False
    dotted = dotted_name(value.func)
    return dotted == "print" or dotted.split(".")[0] in LOGGERS


def only_builtin_failures(name: str, node: ast.expr, scope: Scope) -> None:
    """The new function of Task `name` computes `node`, which calls nothing but built-in
    computations: it can fail only with a built-in exception, never into an `except` naming
    only the tree's own classes (`except InvocationError`), whose Catch would not match it."""
    if has_effects(node):
        return
    for catch in scope.catches:
        if name in catch.tasks and not any(_builtin_error(e) for e in catch.errors):
            catch.tasks.remove(name)


def _builtin_error(error: str) -> bool:
    if error.startswith("States."):
        return True
    found = getattr(builtins, error, None)
    return error == "JSONDecodeError" or (
        isinstance(found, type) and issubclass(found, BaseException)
    )
