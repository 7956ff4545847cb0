"""The whole scanned tree at once: resolves the symbolic facts of every module into values, a
call graph, the handlers, and the invoke and sleep sites the rules read.

Resolution is semantic and demand-driven: a name is a Lambda client because of what it was
assigned (through imports, globals, class attributes, factories and call arguments), never
because of how it is spelled. Modules outside the first candidates are loaded (parsed) only when
a resolution needs them.
"""

from __future__ import annotations

import fnmatch
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass

from untangle.analysis.values import (
    NOTHING,
    Bound,
    Class,
    ConstV,
    DictV,
    Env,
    Extern,
    Func,
    Instance,
    LambdaClient,
    LambdaContext,
    LambdaEvent,
    Method,
    Module,
    OtherClient,
    OwnName,
    Session,
    Value,
    Values,
    ordered,
)
from untangle.facts.model import (
    INVOKE_METHODS,
    Attr,
    BinOp,
    Call,
    CallSite,
    ClassFacts,
    Const,
    DictLit,
    FuncRef,
    FunctionFacts,
    Item,
    Local,
    ModuleFacts,
    OneOf,
    Param,
    Ref,
    SelfOf,
    Sym,
    Unknown,
    looks_like_handler,
    may_invoke,
)

CLIENT_FACTORIES = frozenset(
    {
        "boto3.client",
        "boto3.session.Session.client",
        "botocore.session.Session.create_client",
    }
)
SESSION_CLASSES = {
    "boto3.Session": "boto3",
    "boto3.session.Session": "boto3",
    "botocore.session.get_session": "botocore",
    "botocore.session.Session": "botocore",
    "aiobotocore.session.get_session": "aio",
    "aiobotocore.session.AioSession": "aio",
    "aiobotocore.get_session": "aio",
    "aioboto3.Session": "aio",
    "aioboto3.session.Session": "aio",
}
SLEEPS = frozenset({"time.sleep", "asyncio.sleep"})
ENV_GETTERS = frozenset({"os.getenv", "os.environ.get"})
OWN_NAME_ENV = frozenset({"AWS_LAMBDA_FUNCTION_NAME"})
# never looked up in the scanned tree, even when it vendors a copy (botocore's sdist has boto3…)
EXTERNAL_ROOTS = frozenset(
    {
        "boto3",
        "botocore",
        "aiobotocore",
        "aioboto3",
        "os",
        "time",
        "asyncio",
        "functools",
        "threading",
        "concurrent",
        "tenacity",
        "backoff",
        "json",
        "builtins",
    }
)
_MAX_VALUES = 24
# the keywords that make `x.invoke(…)` a Lambda invoke whatever `x` is
SHAPE_KEYWORDS = {
    "invoke": frozenset({"FunctionName"}),
    "invoke_async": frozenset({"FunctionName", "InvokeArgs"}),
}
# a receiver built from these is a test double, or an AWS SDK object the analysis knows is not a
# Lambda client: never a Lambda client recognised by shape
MOCK_MODULES = (
    "unittest.mock.",
    "mock.",
    "pytest_mock.",
    "asynctest.",
    "boto3.",
    "botocore.",
    "aioboto3.",
    "aiobotocore.",
)
_MAX_CALL_DEPTH = 6
_MAX_PATHS = 32

Env_ = tuple[tuple[tuple[str, str], tuple[Sym, "Env_"]], ...]
NO_ENV: Env_ = ()


@dataclass(frozen=True)
class Edge:
    caller: str
    callee: str
    site: CallSite
    # the callee is handed to something that calls it: pool.submit(f), Thread(target=f)
    handed: bool
    offset: int  # 1 when the call binds `self`


@dataclass(frozen=True)
class InvokeSite:
    function: str
    site: CallSite
    method: str
    kwargs: dict[str, Values]
    # the client was recognised by the call's shape, not traced to boto3 (a factory outside
    # the scanned tree, a constructor parameter, a framework object)
    by_shape: bool = False


@dataclass(frozen=True)
class SleepSite:
    function: str
    site: CallSite
    seconds: float | None


ModuleLoader = Callable[[str], ModuleFacts | None]


class Program:
    """Every loaded module, resolved. Build with `Program.link(...)`."""

    def __init__(
        self,
        modules: Iterable[ModuleFacts],
        loader: ModuleLoader | None = None,
        module_names: Iterable[str] = (),
        template_handlers: Iterable[tuple[str, str]] = (),
        handler_patterns: Iterable[str] = (),
        import_roots: Iterable[tuple[str, str]] = (),
        template_packages: Iterable[str] = (),
        template_names: Iterable[tuple[str, str, str]] = (),
    ) -> None:
        self.modules: dict[str, ModuleFacts] = {}
        self.functions: dict[str, FunctionFacts] = {}
        self.function_module: dict[str, str] = {}
        self.classes: dict[str, ClassFacts] = {}
        self._globals: dict[str, dict[str, tuple[Sym, ...]]] = {}
        self._locals: dict[str, dict[str, tuple[Sym, ...]]] = {}
        self._defaults: dict[str, dict[str, Sym]] = {}
        self._loader = loader
        self._known_modules = set(module_names)
        self._package_prefixes = _prefixes(self._known_modules)
        self._failed_loads: set[str] = set()
        self._template_handlers = set(template_handlers)
        self._handler_patterns = tuple(handler_patterns)
        self._memo_load: dict[Sym, Values] = {}
        self._memo_no_load: dict[Sym, Values] = {}
        self._memo = self._memo_load
        self._allow_load = True
        self._active: set[tuple[Sym, Env_]] = set()
        self._shallow = True
        self._callers: dict[str, list[tuple[str, CallSite, int]]] = {}
        self.cache: dict[str, object] = {}
        self._import_cache: dict[tuple[str, str], str] = {}
        # (importer package, root): modules under the first import from the second as from the
        # top (a Lambda layer's `python/` folder, an `extra-paths` entry); "" is every module
        self._import_roots = tuple(import_roots)
        # the code folders (CodeUri) of the template functions, as module prefixes: inside one,
        # the template says which function is the handler
        self._template_packages = tuple(template_packages)
        # (module, handler function) -> the FunctionName its template gives it
        self._template_names = {(m, f): name for m, f, name in template_names}
        for module in modules:
            self._add_module(module)

    # --- loading ------------------------------------------------------------------------------

    def _add_module(self, module: ModuleFacts) -> None:
        self.modules[module.module] = module
        self._known_modules.add(module.module)
        self._globals[module.module] = dict(module.globals)
        for function in module.functions:
            self.functions[function.qualname] = function
            self.function_module[function.qualname] = module.module
            self._locals[function.qualname] = dict(function.locals)
            self._defaults[function.qualname] = dict(function.defaults)
        for cls in module.classes:
            self.classes[cls.qualname] = cls

    def _module(self, name: str) -> ModuleFacts | None:
        found = self.modules.get(name)
        if (
            found is not None
            or self._loader is None
            or not self._allow_load
            or name in self._failed_loads
        ):
            return found
        if name not in self._known_modules:
            return None
        loaded = self._loader(name)
        if loaded is None:
            self._failed_loads.add(name)
            return None
        self._add_module(loaded)
        return loaded

    def link(self) -> Program:
        """Explore from the handlers (loading the modules they reach) and from every function of
        the first candidates (without loading more), then resolve sites and reachability."""
        initial = list(self.functions)
        self.handlers = sorted(q for q in initial if self.is_handler(q))
        edges: dict[str, list[Edge]] = {}
        reachable = self._explore(self.handlers, edges)
        self._allow_load = False
        self._memo = self._memo_no_load
        for qualname in initial:
            if qualname not in edges:
                edges[qualname] = list(self._callees(qualname))
        self._allow_load = True
        self._memo = self._memo_load
        self._index_callers(edges)
        # parameters now resolve through their call sites: resolve the handlers' paths again
        self._shallow = False
        self._memo.clear()
        self._memo_no_load.clear()
        for qualname in reachable:
            del edges[qualname]
        reachable = self._explore(self.handlers, edges)
        self.edges = [edge for group in edges.values() for edge in group]
        self.invokes = [s for q in edges for s in self._invoke_sites(q)]
        self.sleeps = [s for q in reachable for s in self._sleep_sites(q)]
        self._reach()
        return self

    def _explore(self, roots: Iterable[str], edges: dict[str, list[Edge]]) -> list[str]:
        seen = set(roots)
        queue = deque(roots)
        order = []
        while queue:
            current = queue.popleft()
            order.append(current)
            if current not in edges:
                edges[current] = list(self._callees(current))
            for edge in edges[current]:
                callee = edge.callee
                if callee not in seen and self._ensure_function(callee):
                    seen.add(callee)
                    queue.append(callee)
        return order

    def _ensure_function(self, qualname: str) -> bool:
        if qualname in self.functions:
            return True
        parts = qualname.split(".")
        for i in range(len(parts) - 1, 0, -1):
            module = ".".join(parts[:i])
            if module in self._known_modules:
                self._module(module)
                break
        return qualname in self.functions

    # --- handlers -----------------------------------------------------------------------------

    def template_function_name(self, qualname: str) -> str | None:
        """The `FunctionName` a template gives the handler `qualname`, if one does."""
        function = self.functions.get(qualname)
        if function is None:
            return None
        return self._template_names.get((self.function_module[qualname], function.name))

    def is_handler(self, qualname: str) -> bool:
        function = self.functions.get(qualname)
        if function is None or function.is_method:
            return False
        module = self.function_module[qualname]
        if (module, function.name) in self._template_handlers:
            return True
        if any(fnmatch.fnmatchcase(qualname, p) for p in self._handler_patterns):
            return True
        if any(
            not package or module == package or module.startswith(package + ".")
            for package in self._template_packages
        ):
            return False  # a template names this folder's handler, and it is another one
        return looks_like_handler(function)

    # --- evaluation ---------------------------------------------------------------------------

    def values(self, sym: Sym, env: Env_ = NO_ENV, depth: int = 0) -> Values:
        if not env:
            cached = self._memo.get(sym)
            if cached is not None:
                return cached
        if depth > _MAX_CALL_DEPTH * 4:
            return NOTHING
        key = (sym, env)
        active = self._active
        before = len(active)
        active.add(key)  # (hashing the key once, not once more to ask whether it is there)
        if len(active) == before:
            return NOTHING  # being evaluated already: a cycle
        try:
            result = self._eval(sym, env, depth)
        finally:
            self._active.discard(key)
        if len(result) > _MAX_VALUES:
            # the same few in every run, whatever the hash seed
            result = frozenset(ordered(result)[:_MAX_VALUES])
        if not env:
            self._memo[sym] = result
        return result

    def _eval(self, sym: Sym, env: Env_, depth: int) -> Values:
        if isinstance(sym, Const):
            return frozenset({ConstV(sym.value)})
        if isinstance(sym, Ref):
            if sym.importer:
                return self._ref(self._resolve_import(sym.qualname, sym.importer))
            return self._ref(sym.qualname)
        if isinstance(sym, FuncRef):
            return frozenset({Func(sym.qualname)})
        if isinstance(sym, SelfOf):
            return frozenset({Instance(sym.cls)})
        if isinstance(sym, Local):
            syms = self._locals.get(sym.scope, {}).get(sym.name, ())
            return _union(self.values(s, env, depth + 1) for s in syms)
        if isinstance(sym, Param):
            return self._param(sym, env, depth)
        if isinstance(sym, Attr):
            return _union(
                self._attr(base, sym.name, depth) for base in self.values(sym.base, env, depth + 1)
            )
        if isinstance(sym, Call):
            return self._call(sym, env, depth)
        if isinstance(sym, Item):
            return self._item(sym, env, depth)
        if isinstance(sym, OneOf):
            return _union(self.values(o, env, depth + 1) for o in sym.options)
        if isinstance(sym, BinOp):
            return self._binop(sym, env, depth)
        if isinstance(sym, DictLit):
            return frozenset(
                {DictV(tuple((k, self.values(v, env, depth + 1)) for k, v in sym.items))}
            )
        assert isinstance(sym, Unknown)
        return NOTHING

    def _resolve_import(self, qualname: str, importer: str) -> str:
        """`import shared.lambdas` from `app.orchestrator.handler` → `app.shared.lambdas` when the
        tree has it: Lambda code imports relative to its package root, wherever that is."""
        key = (qualname, importer)
        found = self._import_cache.get(key)
        if found is not None:
            return found
        head = qualname.split(".", 1)[0]
        resolved = qualname
        if head not in EXTERNAL_ROOTS:
            package = importer.split(".")[:-1]
            for i in range(len(package), -1, -1):
                base = ".".join((*package[:i], head))
                if base in self._known_modules or base in self._package_prefixes:
                    resolved = ".".join((*package[:i], qualname))
                    break
            else:
                for importing, root in self._import_roots:
                    if (
                        importing
                        and importer != importing
                        and not importer.startswith(importing + ".")
                    ):
                        continue
                    base = f"{root}.{head}" if root else head
                    if base in self._known_modules or base in self._package_prefixes:
                        resolved = f"{root}.{qualname}" if root else qualname
                        break
        self._import_cache[key] = resolved
        return resolved

    def _ref(self, qualname: str) -> Values:
        if qualname in self._package_prefixes or (
            qualname in self._known_modules and self._module(qualname) is not None
        ):
            return frozenset({Module(qualname)})
        parts = qualname.split(".")
        for i in range(len(parts) - 1, 0, -1):
            head = ".".join(parts[:i])
            if head in self._known_modules:
                values = self._member(head, parts[i])
                for name in parts[i + 1 :]:
                    values = _union(self._attr(v, name, 0) for v in values)
                return values
        return frozenset({Extern(qualname)})

    def _member(self, module: str, name: str) -> Values:
        facts = self._module(module)
        qualname = f"{module}.{name}"
        if facts is None:
            if not self._allow_load:
                return frozenset({Func(qualname)})  # a guess, good enough for a call edge
            return frozenset({Extern(qualname)})
        if qualname in self.functions:
            return frozenset({Func(qualname)})
        if qualname in self.classes:
            return frozenset({Class(qualname)})
        syms = self._globals[module].get(name)
        if syms is not None:
            return _union(self.values(s) for s in syms)
        if f"{module}.{name}" in self._known_modules:
            return self._ref(qualname)
        return NOTHING

    def _param(self, sym: Param, env: Env_, depth: int) -> Values:
        for (func, name), (bound_sym, bound_env) in env:
            if func == sym.func and name == sym.name:
                return self.values(bound_sym, bound_env, depth + 1)
        result: set[Value] = set()
        if sym.index == 1 and self.is_handler(sym.func):
            result.add(LambdaContext())
        if sym.index == 0 and self.is_handler(sym.func):
            result.add(LambdaEvent())
        default = self._defaults.get(sym.func, {}).get(sym.name)
        if default is not None:
            result |= self.values(default, NO_ENV, depth + 1)
        if not self._shallow:
            for _caller, site, offset in self._callers.get(sym.func, ()):
                arg = _argument(site, sym.index - offset, sym.name)
                if arg is not None:
                    result |= self.values(arg, NO_ENV, depth + 1)
        return frozenset(result)

    def _attr(self, base: Value, name: str, depth: int) -> Values:
        if isinstance(base, Module):
            return self._ref(f"{base.name}.{name}")
        if isinstance(base, Extern):
            if base.qualname in SESSION_CLASSES or base.qualname.endswith("()"):
                return NOTHING
            return frozenset({Extern(f"{base.qualname}.{name}")})
        if isinstance(base, (Instance, Class)):
            found = self._class_member(base.qualname, name, isinstance(base, Instance), depth)
            if found is not None:
                return found
            return NOTHING
        if isinstance(base, (LambdaClient, OtherClient, Session)):
            return frozenset({Bound(base, name)})
        if isinstance(base, LambdaContext):
            if name in ("function_name", "invoked_function_arn"):
                return frozenset({OwnName()})
            return frozenset({Bound(base, name)})
        if isinstance(base, ConstV) and name == "value":  # an Enum member ("name" is not its value)
            return frozenset({base})
        return NOTHING

    def _class_member(
        self, cls: str, name: str, on_instance: bool, depth: int, seen: frozenset[str] = frozenset()
    ) -> Values | None:
        if cls in seen:
            return None
        facts = self.classes.get(cls)
        if facts is None:
            module = cls.rsplit(".", 1)[0]
            self._module(module)
            facts = self.classes.get(cls)
            if facts is None:
                return None
        method = f"{cls}.{name}"
        if name in facts.methods and method in self.functions:
            function = self.functions[method]
            if any(_is_property(d.sym) for d in function.decorators):
                env: Env_ = (((method, function.params[0]), (SelfOf(cls), NO_ENV)),)
                if function.params:
                    return _union(self.values(r, env, depth + 1) for r in function.returns)
            return frozenset({Method(cls, method) if on_instance else Func(method)})
        for attr, syms in facts.attrs:
            if attr == name:
                return _union(self.values(s, NO_ENV, depth + 1) for s in syms)
        for base_sym in facts.bases:
            for base in self.values(base_sym, NO_ENV, depth + 1):
                if isinstance(base, Class):
                    found = self._class_member(
                        base.qualname, name, on_instance, depth, seen | {cls}
                    )
                    if found is not None:
                        return found
        return None

    def attribute_values(self, cls: str, name: str) -> Values:
        """What `instance.name` can be for an instance of class `cls` (qualified name)."""
        return self._class_member(cls, name, True, 0) or NOTHING

    def _call(self, sym: Call, env: Env_, depth: int) -> Values:
        result: set[Value] = set()
        for func in self.values(sym.func, env, depth + 1):
            result |= self._apply(func, sym, env, depth)
        if not result and self._untraced_method(sym.func, ("client", "create_client"), env, depth):
            # `session.client("lambda")` on a session nobody traced (passed in, made elsewhere)
            return frozenset(
                LambdaClient(by_shape=True) if isinstance(v, LambdaClient) else v
                for v in self._client(sym, env, depth)
                if not (isinstance(v, OtherClient) and v.service is None)
            )
        return frozenset(result)

    def _untraced_method(
        self, func: Sym, names: tuple[str, ...], env: Env_ = NO_ENV, depth: int = 0
    ) -> bool:
        """`func` is `receiver.name` (one of `names`) on a receiver that resolves to nothing
        known: not a class of the tree, a module, a value, nor a mock object."""
        if not isinstance(func, Attr) or func.name not in names:
            return False
        receivers = self.values(func.base, env, depth + 1)
        if any(not isinstance(v, Extern) and v != OtherClient(None) for v in receivers):
            return False
        return not self._mock_rooted(func.base, 0)

    def _mock_rooted(self, sym: Sym, depth: int) -> bool:
        """`sym` is built from a mock library (`MagicMock()`, `mock.Mock(spec=…)`), or from the
        AWS SDK without being a Lambda client (`boto3.resource("dynamodb")`)."""
        if depth > 8:
            return False
        if isinstance(sym, Local):
            syms = self._locals.get(sym.scope, {}).get(sym.name, ())
            return any(self._mock_rooted(s, depth + 1) for s in syms)
        if isinstance(sym, Ref):
            module, _, name = sym.qualname.rpartition(".")
            syms = self._globals.get(module, {}).get(name, ())
            if any(self._mock_rooted(s, depth + 1) for s in syms):
                return True
        if isinstance(sym, (Attr, Call)):
            inner = sym.base if isinstance(sym, Attr) else sym.func
            if self._mock_rooted(inner, depth + 1):
                return True
        return any(
            isinstance(v, Extern) and v.qualname.startswith(MOCK_MODULES) for v in self.values(sym)
        )

    def _apply(self, func: Value, sym: Call, env: Env_, depth: int) -> Values:
        if isinstance(func, Extern):
            name = func.qualname
            if name in CLIENT_FACTORIES:
                return self._client(sym, env, depth)
            if name in SESSION_CLASSES:
                return frozenset({Session(SESSION_CLASSES[name])})
            if name in ENV_GETTERS and sym.args:
                return frozenset(
                    Env(v.value)
                    for v in self.values(sym.args[0], env, depth + 1)
                    if isinstance(v, ConstV) and isinstance(v.value, str)
                )
            if name == "functools.partial" and sym.args:
                return self.values(sym.args[0], env, depth + 1)
            return NOTHING
        if isinstance(func, Bound):
            receiver = func.receiver
            if isinstance(receiver, Session) and func.name in ("client", "create_client"):
                return self._client(sym, env, depth)
            if func.name in ("enter_context", "enter_async_context") and sym.args:
                return self.values(sym.args[0], env, depth + 1)
            return NOTHING
        if isinstance(func, Class):
            return frozenset({Instance(func.qualname)})
        if isinstance(func, (Func, Method)) and depth < _MAX_CALL_DEPTH * 4:
            qualname = func.func if isinstance(func, Method) else func.qualname
            function = self.functions.get(qualname)
            if function is None:
                return NOTHING
            bindings: list[tuple[tuple[str, str], tuple[Sym, Env_]]] = []
            params = list(function.params)
            if isinstance(func, Method) and params:
                bindings.append(((qualname, params[0]), (SelfOf(func.cls), NO_ENV)))
                params = params[1:]
            for index, param in enumerate(params):
                arg = _argument(sym, index, param)
                if arg is not None:
                    bindings.append(((qualname, param), (arg, env)))
            return _union(self.values(r, tuple(bindings), depth + 4) for r in function.returns)
        return NOTHING

    def _client(self, sym: Call, env: Env_, depth: int) -> Values:
        service = _argument(sym, 0, "service_name")
        if service is None:
            return frozenset({OtherClient(None)})
        result: set[Value] = set()
        for value in self.values(service, env, depth + 1):
            if isinstance(value, ConstV) and value.value == "lambda":
                result.add(LambdaClient())
            elif isinstance(value, ConstV) and isinstance(value.value, str):
                result.add(OtherClient(value.value))
        return frozenset(result)

    def _item(self, sym: Item, env: Env_, depth: int) -> Values:
        bases = self.values(sym.base, env, depth + 1)
        result: set[Value] = set()
        keys = None
        for base in bases:
            if isinstance(base, Extern) and base.qualname == "os.environ":
                keys = keys if keys is not None else self.values(sym.key, env, depth + 1)
                result |= {
                    Env(k.value) for k in keys if isinstance(k, ConstV) and isinstance(k.value, str)
                }
            elif isinstance(base, DictV):
                keys = keys if keys is not None else self.values(sym.key, env, depth + 1)
                for key, values in base.items:
                    if ConstV(key) in keys:
                        result |= values
        return frozenset(result)

    def _binop(self, sym: BinOp, env: Env_, depth: int) -> Values:
        result: set[Value] = set()
        lefts = self.values(sym.left, env, depth + 1)
        rights = self.values(sym.right, env, depth + 1)
        for left in lefts:
            for right in rights:
                if isinstance(left, ConstV) and isinstance(right, ConstV):
                    folded = _fold(sym.op, left.value, right.value)
                    if folded is not None:
                        result.add(ConstV(folded))
        return frozenset(result)

    # --- call graph ---------------------------------------------------------------------------

    def _callees(self, qualname: str) -> Iterator[Edge]:
        """The call edges of `qualname`, site by site; a site's callees in a fixed order (the
        values are a set: their order would depend on the hash seed)."""
        function = self.functions[qualname]
        for site in function.calls:
            for value in ordered(self.values(site.func)):
                callee = _callee_of(value)
                if callee is not None:
                    yield Edge(qualname, callee, site, False, int(isinstance(value, Method)))
                elif isinstance(value, Class):
                    init = f"{value.qualname}.__init__"
                    self._class_member(value.qualname, "__init__", True, 0)
                    if init in self.functions:
                        yield Edge(qualname, init, site, False, 1)
            for arg in (*site.args, *(v for _, v in site.kwargs)):
                if isinstance(arg, Call):
                    continue
                for value in ordered(self.values(arg)):
                    callee = _callee_of(value)
                    if callee is not None:
                        yield Edge(qualname, callee, site, True, 0)

    def _index_callers(self, edges: dict[str, list[Edge]]) -> None:
        self._callers = {}
        for group in edges.values():
            for edge in group:
                if not edge.handed:
                    self._callers.setdefault(edge.callee, []).append(
                        (edge.caller, edge.site, edge.offset)
                    )

    def _reach(self) -> None:
        callees: dict[str, set[str]] = {}
        callers: dict[str, set[str]] = {}
        for edge in self.edges:
            callees.setdefault(edge.caller, set()).add(edge.callee)
            callers.setdefault(edge.callee, set()).add(edge.caller)
        self._edge_map = callees
        invoking = {site.function for site in self.invokes}
        queue = deque(invoking)
        while queue:
            current = queue.popleft()
            for caller in callers.get(current, ()):
                if caller not in invoking:
                    invoking.add(caller)
                    queue.append(caller)
        self.invoking = frozenset(invoking)
        self._invokes_by_function: dict[str, list[InvokeSite]] = {}
        for site in self.invokes:
            self._invokes_by_function.setdefault(site.function, []).append(site)
        self._edges_by_caller: dict[str, list[Edge]] = {}
        self._edges_by_callee: dict[str, list[Edge]] = {}
        for edge in self.edges:
            self._edges_by_caller.setdefault(edge.caller, []).append(edge)
            if not edge.handed:
                self._edges_by_callee.setdefault(edge.callee, []).append(edge)
        reached: dict[str, set[str]] = {}
        for handler in self.handlers:
            queue = deque([handler])
            seen = {handler}
            while queue:
                current = queue.popleft()
                reached.setdefault(current, set()).add(handler)
                for callee in callees.get(current, ()):
                    if callee not in seen:
                        seen.add(callee)
                        queue.append(callee)
        self._reached = {k: tuple(sorted(v)) for k, v in reached.items()}

    def values_from(self, handler: str, function: str, sym: Sym) -> Values:
        """What `sym` (in `function`) can be when `handler` is what runs: its parameters bound
        along each call path from the handler, not to every caller's arguments (a helper
        `post(name)` called as `post("a")` by one handler and `post("b")` by another)."""
        envs = self._envs_from(handler, function)
        if envs is None:
            return self.values(sym)
        return _union(self.values(sym, env) for env in envs)

    def _envs_from(self, handler: str, function: str) -> list[Env_] | None:
        """The parameter bindings of `function` on each call path from `handler` (at most a
        few short paths; None when there are more, or the function is only handed on)."""
        if handler == function:
            return [NO_ENV]
        found: list[Env_] = []
        stack: list[tuple[str, Env_, frozenset[str]]] = [(handler, NO_ENV, frozenset({handler}))]
        while stack:
            current, env, seen = stack.pop()
            for edge in self.edges_from(current):
                if edge.callee in seen or edge.handed:
                    continue
                callee = self.functions.get(edge.callee)
                if callee is None:
                    continue
                bindings = list(env)
                for index, param in enumerate(callee.params):
                    if index < edge.offset:
                        continue
                    arg = _argument(edge.site, index - edge.offset, param)
                    if arg is not None:
                        bindings.append(((edge.callee, param), (arg, env)))
                bound: Env_ = tuple(bindings)
                if edge.callee == function:
                    found.append(bound)
                elif len(seen) < _MAX_CALL_DEPTH and edge.callee in self.invoking:
                    stack.append((edge.callee, bound, seen | {edge.callee}))
                if len(found) > _MAX_PATHS:
                    return None
        return found or None

    def call_path(self, handler: str, function: str) -> list[Edge]:
        """The shortest chain of calls from `handler` to `function` (empty when they are one)."""
        previous: dict[str, Edge] = {}
        queue = deque([handler])
        while queue:
            current = queue.popleft()
            if current == function:
                path: list[Edge] = []
                while current != handler:
                    edge = previous[current]
                    path.append(edge)
                    current = edge.caller
                return path[::-1]
            for edge in self.edges_from(current):
                if edge.callee != handler and edge.callee not in previous:
                    previous[edge.callee] = edge
                    queue.append(edge.callee)
        return []

    def handlers_reaching(self, qualname: str) -> tuple[str, ...]:
        return self._reached.get(qualname, ())

    def reaches_invoke(self, qualname: str) -> bool:
        return qualname in self.invoking

    def call_reaches_invoke(self, qualname: str, site: CallSite) -> bool:
        """The call at `site` is an invoke, or reaches a function that invokes."""
        if any(s.site is site for s in self._invokes_by_function.get(qualname, ())):
            return True
        return any(
            edge.site is site and edge.callee in self.invoking for edge in self.edges_from(qualname)
        )

    def edges_from(self, qualname: str) -> list[Edge]:
        return self._edges_by_caller.get(qualname, [])

    def calls_to(self, qualname: str) -> list[Edge]:
        """The sites that call `qualname` (not those that hand it to something that calls it)."""
        return self._edges_by_callee.get(qualname, [])

    # --- sites --------------------------------------------------------------------------------

    def _invoke_sites(self, qualname: str) -> Iterator[InvokeSite]:
        function = self.functions.get(qualname)
        for site in function.calls if function else ():
            if not may_invoke(site):
                continue
            methods = {
                v.name
                for v in self.values(site.func)
                if isinstance(v, Bound)
                and isinstance(v.receiver, LambdaClient)
                and v.name in INVOKE_METHODS
            }
            handed = False
            if not methods:
                # pool.submit(client.invoke, FunctionName=...), partial(client.invoke, ...)
                for arg in site.args:
                    for v in self.values(arg):
                        if (
                            isinstance(v, Bound)
                            and isinstance(v.receiver, LambdaClient)
                            and v.name in INVOKE_METHODS
                        ):
                            methods.add(v.name)
                            handed = True
            for method in sorted(methods):
                yield InvokeSite(
                    qualname,
                    site,
                    method,
                    self._kwargs(site, handed),
                    by_shape=self._client_by_shape(site.func if not handed else None),
                )
            if not methods and self._invoke_by_shape(site):
                assert isinstance(site.func, Attr)
                yield InvokeSite(
                    qualname, site, site.func.name, self._kwargs(site, False), by_shape=True
                )

    def _client_by_shape(self, func: Sym | None) -> bool:
        if not isinstance(func, Attr):
            return False
        clients = [v for v in self.values(func.base) if isinstance(v, LambdaClient)]
        return bool(clients) and all(c.by_shape for c in clients)

    def _invoke_by_shape(self, site: CallSite) -> bool:
        """`x.invoke(FunctionName=…, …)` / `x.invoke_async(FunctionName=…, InvokeArgs=…)` on a
        receiver nothing traced: no other AWS API has those keywords."""
        keywords = {name for name, _ in site.kwargs if name is not None}
        required = SHAPE_KEYWORDS.get(site.func.name if isinstance(site.func, Attr) else "")
        if required is None or not required <= keywords:
            return False
        return self._untraced_method(site.func, tuple(SHAPE_KEYWORDS))

    def _kwargs(self, site: CallSite, handed: bool) -> dict[str, Values]:
        kwargs: dict[str, Values] = {}
        for name, sym in site.kwargs:
            if name is None:
                for value in self.values(sym):
                    if isinstance(value, DictV):
                        for key, values in value.items:
                            kwargs[key] = kwargs.get(key, NOTHING) | values
                    else:
                        kwargs.setdefault("**", NOTHING)
                if not self.values(sym):
                    kwargs["**"] = NOTHING
            else:
                kwargs[name] = self.values(sym)
        return kwargs

    def _sleep_sites(self, qualname: str) -> Iterator[SleepSite]:
        for site in self.functions[qualname].calls:
            if _last_name(site.func) != "sleep":
                continue
            if any(isinstance(v, Extern) and v.qualname in SLEEPS for v in self.values(site.func)):
                seconds = None
                arg = _argument(site, 0, "seconds") or _argument(site, 0, "delay")
                if arg is not None:
                    numbers = {
                        v.value
                        for v in self.values(arg)
                        if isinstance(v, ConstV) and isinstance(v.value, (int, float))
                    }
                    if len(numbers) == 1:
                        seconds = float(numbers.pop())
                yield SleepSite(qualname, site, seconds)

    def module_of(self, qualname: str) -> ModuleFacts:
        return self.modules[self.function_module[qualname]]


def _prefixes(names: Iterable[str]) -> set[str]:
    """Every part of a dotted name before one of its dots (`a`, `a.b` of `a.b.c`). A prefix
    already known has had its own prefixes added: the names of one package stop there."""
    prefixes: set[str] = set()
    for name in names:
        end = name.rfind(".")
        while end >= 0:
            prefix = name[:end]
            if prefix in prefixes:
                break
            prefixes.add(prefix)
            end = name.rfind(".", 0, end)
    return prefixes


def _last_name(sym: Sym) -> str | None:
    if isinstance(sym, Attr):
        return sym.name
    if isinstance(sym, Ref):
        return sym.qualname.rsplit(".", 1)[-1]
    return None


def _callee_of(value: Value) -> str | None:
    if isinstance(value, Func):
        return value.qualname
    if isinstance(value, Method):
        return value.func
    return None


def _is_property(sym: Sym) -> bool:
    return isinstance(sym, Ref) and sym.qualname in (
        "builtins.property",
        "functools.cached_property",
    )


def _argument(call: CallSite | Call, index: int, name: str) -> Sym | None:
    """The argument bound to parameter `name` at position `index`, if the call passes one."""
    for key, value in call.kwargs:
        if key == name:
            return value
    if 0 <= index < len(call.args):
        return call.args[index]
    return None


def _union(groups: Iterable[Values]) -> Values:
    result: set[Value] = set()
    for group in groups:
        result |= group
    return frozenset(result)


def _fold(op: str, left: object, right: object) -> str | int | float | None:
    numbers = (int, float)
    if isinstance(left, bool) or isinstance(right, bool):
        return None
    if isinstance(left, numbers) and isinstance(right, numbers):
        try:
            if op == "+":
                return left + right
            if op == "-":
                return left - right
            if op == "*":
                return left * right
            if op == "/":
                return left / right
            if op == "//":
                return left // right
        except (ZeroDivisionError, OverflowError):
            return None
    if isinstance(left, str) and isinstance(right, str) and op == "+":
        return left + right
    return None
