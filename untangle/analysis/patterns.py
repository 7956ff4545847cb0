"""Shapes the rules share: how an invoke is invoked, which loops retry, which calls fan out."""

from __future__ import annotations

from dataclasses import dataclass

from untangle.analysis.program import OWN_NAME_ENV, InvokeSite, Program
from untangle.analysis.values import (
    Bound,
    ConstV,
    Env,
    Extern,
    Func,
    LambdaClient,
    OwnName,
    ordered,
)
from untangle.facts.model import Attr, Call, CallSite, LoopFact, Ref

RETRY_DECORATORS = (
    "tenacity.retry",
    "tenacity.Retrying",
    "backoff.on_exception",
    "backoff.on_predicate",
    "retrying.retry",
    "retry.retry",
    "retry.api.retry",
)
POOL_METHODS = frozenset(
    {
        "submit",
        "map",
        "starmap",
        "imap",
        "imap_unordered",
        "apply_async",
        "map_async",
        "run_in_executor",
        "gather",
        "create_task",
        "ensure_future",
    }
)
POOL_FUNCTIONS = frozenset(
    {
        "asyncio.gather",
        "asyncio.create_task",
        "asyncio.ensure_future",
        "asyncio.wait",
        "threading.Thread",
        "builtins.map",
    }
)


@dataclass(frozen=True)
class Invocation:
    kind: str  # "sync" | "async" | "dry-run"
    detail: str  # why: "InvocationType omitted", …


def invocation(site: InvokeSite) -> Invocation:
    if site.method == "invoke_async":
        return Invocation("async", "legacy invoke_async")
    if site.method == "invoke_with_response_stream":
        return Invocation("sync", "response stream")
    values = site.kwargs.get("InvocationType")
    if values is None:
        if "**" in site.kwargs:
            return Invocation("sync", "InvocationType not statically known")
        return Invocation("sync", "InvocationType omitted, so RequestResponse")
    constants = {v.value for v in values if isinstance(v, ConstV)}
    unknown = not values or any(not isinstance(v, ConstV) for v in values)
    if not unknown and constants == {"Event"}:
        return Invocation("async", "InvocationType=Event")
    if not unknown and constants == {"DryRun"}:
        return Invocation("dry-run", "InvocationType=DryRun")
    if not unknown and constants == {"RequestResponse"}:
        return Invocation("sync", "InvocationType=RequestResponse")
    return Invocation("sync", "InvocationType not statically known")


_OUTSIDE_FOLDERS = frozenset({"tests", "test", "scripts", "bin"})


def outside_lambda_code(program: Program, qualname: str) -> str | None:
    """Why `qualname` is not Lambda code (a test, a script), or None: no handler of the tree
    reaches it, and its file is a test, a `__main__` script, or under tests/ scripts/ bin/."""
    if program.handlers_reaching(qualname):
        return None
    module = program.module_of(qualname)
    parts = module.path.replace("\\", "/").split("/")
    name = parts[-1]
    if name.startswith("test_") or name.endswith("_test.py") or name == "conftest.py":
        return "a test"
    folder = next((p for p in parts[:-1] if p in _OUTSIDE_FOLDERS), None)
    if folder is not None:
        return "a test" if folder.startswith("test") else "a script"
    if module.main_guard:
        return "a script"
    return None


def is_self_invoke(site: InvokeSite) -> bool:
    """The call invokes the function it runs in, whichever handler that is:
    `context.function_name`, `AWS_LAMBDA_FUNCTION_NAME`."""
    for value in site.kwargs.get("FunctionName", frozenset()):
        if isinstance(value, OwnName):
            return True
        if isinstance(value, Env) and value.name in OWN_NAME_ENV:
            return True
    return False


@dataclass(frozen=True)
class SelfInvokers:
    """Which handlers reaching an invoke call their own template `FunctionName` there, and
    which invoke another function there (a handler may do both through one helper)."""

    itself: tuple[str, ...]
    others: tuple[str, ...]


def self_invokers(site: InvokeSite, program: Program) -> SelfInvokers | None:
    """None where no handler invokes itself by its literal name at `site`."""
    handlers = program.handlers_reaching(site.function)
    named = [(h, program.template_function_name(h)) for h in handlers]
    if all(name is None for _, name in named):
        return None
    name_sym = next((sym for key, sym in site.site.kwargs if key == "FunctionName"), None)
    itself: list[str] = []
    others: list[str] = []
    for handler, own in named:
        values = (
            program.values_from(handler, site.function, name_sym)
            if name_sym is not None
            else site.kwargs.get("FunctionName", frozenset())
        )
        names = {
            function_name_from_arn(v.value)
            if isinstance(v, ConstV) and isinstance(v.value, str)
            else None
            for v in values
        }
        if own is not None and own in names:
            itself.append(handler)
        if own is None or names != {own}:
            others.append(handler)
    if not itself:
        return None
    return SelfInvokers(tuple(itself), tuple(others))


def function_name_from_arn(name: str) -> str:
    """`arn:aws:lambda:us-east-1:123:function:foo:PROD` → `foo`; `foo:PROD` → `foo`."""
    if name.startswith("arn:"):
        parts = name.split(":")
        if len(parts) >= 7:
            return parts[6]
        return name
    return name.split(":", 1)[0]


@dataclass(frozen=True)
class RetryLoop:
    function: str
    loop: LoopFact
    sleeps: tuple[CallSite, ...]
    # the invoke is inside a `try` in the loop: it goes round again on an exception (a retry
    # loop); otherwise on what the invoke answered (a polling loop)
    guarded: bool = False


def retry_loops(program: Program) -> dict[tuple[str, int], RetryLoop]:
    cached = program.cache.get("retry_loops")
    if cached is None:
        cached = program.cache["retry_loops"] = _retry_loops(program)
    return cached  # type: ignore[return-value]


def _retry_loops(program: Program) -> dict[tuple[str, int], RetryLoop]:
    sleeping = {s.function for s in program.sleeps}
    sleeps_by_function: dict[str, list[CallSite]] = {}
    for s in program.sleeps:
        sleeps_by_function.setdefault(s.function, []).append(s.site)
    found: dict[tuple[str, int], RetryLoop] = {}
    for qualname in program.invoking:
        function = program.functions[qualname]
        for loop in function.loops:
            if loop.kind == "comprehension":
                continue
            invoking = [
                c
                for c in function.calls
                if loop.id in c.loops and program.call_reaches_invoke(qualname, c)
            ]
            if not invoking:
                continue
            sleeps = [s for s in sleeps_by_function.get(qualname, ()) if loop.id in s.loops]
            sleeps += [
                edge.site
                for edge in program.edges_from(qualname)
                if edge.callee in sleeping
                and edge.callee not in program.invoking
                and loop.id in edge.site.loops
            ]
            guarded = any(
                any(
                    function.trys[t].span.line >= loop.span.line
                    for t in c.trys
                    if t < len(function.trys)
                )
                for c in invoking
            )
            repeating = loop.repeats or loop.kind == "while"
            if (repeating and (sleeps or guarded)) or (sleeps and loop.has_exit):
                found[(qualname, loop.id)] = RetryLoop(qualname, loop, tuple(sleeps), guarded)
    return found


def retry_decorator(program: Program, qualname: str) -> tuple[int, str] | None:
    """Index and name of a tenacity/backoff-style retry decorator on `qualname`."""
    function = program.functions[qualname]
    for index, decorator in enumerate(function.decorators):
        sym = decorator.sym.func if isinstance(decorator.sym, Call) else decorator.sym
        for value in ordered(program.values(sym)):
            if isinstance(value, Extern) and value.qualname.startswith(RETRY_DECORATORS):
                return index, value.qualname
    return None


def is_pool_call(program: Program, site: CallSite) -> bool:
    """`executor.submit(f, …)`, `pool.map(f, …)`, `asyncio.gather(…)`, `Thread(target=f)`."""
    if isinstance(site.func, Attr) and site.func.name in POOL_METHODS:
        return True
    return any(
        isinstance(v, Extern) and v.qualname in POOL_FUNCTIONS for v in program.values(site.func)
    )


def gathered_invokes(program: Program, site: CallSite) -> bool:
    """A pool/gather call whose arguments are calls that invoke (`gather(a(), b())`)."""
    for arg in site.args:
        if not isinstance(arg, Call):
            continue
        for value in program.values(arg.func):
            if isinstance(value, Func) and program.reaches_invoke(value.qualname):
                return True
            if isinstance(value, Bound) and isinstance(value.receiver, LambdaClient):
                return True
    return False


def is_ref(sym: object, qualname: str) -> bool:
    return isinstance(sym, Ref) and sym.qualname == qualname
