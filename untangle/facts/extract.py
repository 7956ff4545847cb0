"""Source text of one module → `ModuleFacts`.

scan reads with the standard `ast` module, not libcst: on the benchmark corpus `ast` parses
about ten times faster (see `../shared/notes/performance-facts.md`), and scan runs on every
commit. The later stages, which rewrite code, use libcst on the few handlers that need it.
Nothing here imports or executes the code it reads.
"""

from __future__ import annotations

import ast
import io
import re
import tokenize
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field

from untangle.facts.model import (
    UNKNOWN,
    Attr,
    BinOp,
    Call,
    CallSite,
    ClassFacts,
    Const,
    DecoratorFact,
    DictLit,
    FuncRef,
    FunctionFacts,
    Item,
    Local,
    LoopFact,
    ModuleFacts,
    OneOf,
    Param,
    Ref,
    SelfOf,
    Span,
    Suppression,
    Sym,
    TryFact,
)

MODULE_SCOPE = "<module>"
_LINE_BREAK = re.compile(r"\r\n|\r|\n")
_SUPPRESSION = re.compile(r"#\s*untangle:\s*ignore(-file)?\b(?:\[([^\]]*)\])?")
_BINOPS = {
    ast.Add: "+",
    ast.Sub: "-",
    ast.Mult: "*",
    ast.Div: "/",
    ast.FloorDiv: "//",
    ast.Mod: "%",
    ast.Pow: "**",
}
_REPEATING_ITERATORS = {"range", "count", "repeat", "cycle"}


def extract_module(tree: ast.Module, source: str, module: str, path: str) -> ModuleFacts:
    """Collect the facts of one parsed module; `module` is its dotted name in the scanned tree."""
    builder = _ModuleBuilder(source, module, path)
    builder.run(tree)
    return builder.result()


def find_suppressions(source: str) -> tuple[Suppression, ...]:
    """`# untangle: ignore[ID, …]` comments (a line) and `# untangle: ignore-file[…]` (the file)."""
    if "untangle:" not in source:
        return ()
    found: list[Suppression] = []
    try:
        tokens = list(tokenize.generate_tokens(io.StringIO(source).readline))
    except (tokenize.TokenError, SyntaxError):
        return ()
    for tok in tokens:
        if tok.type != tokenize.COMMENT:
            continue
        match = _SUPPRESSION.search(tok.string)
        if not match:
            continue
        rules = None
        if match.group(2) is not None:
            rules = frozenset(r.strip() for r in match.group(2).split(",") if r.strip())
        found.append(Suppression(0 if match.group(1) else tok.start[0], rules))
    return tuple(found)


_JUMPS = (ast.Return, ast.Raise, ast.Continue, ast.Break)


def _constant_truth(test: ast.expr) -> bool | None:
    """`if False:` / `if 0:` / `if True:`: a branch that never (or always) runs."""
    if isinstance(test, ast.Constant) and isinstance(test.value, (bool, int, type(None))):
        return bool(test.value)
    return None


def _is_main_guard(test: ast.expr) -> bool:
    """`if __name__ == "__main__":`, either way round."""
    if not isinstance(test, ast.Compare) or len(test.ops) != 1:
        return False
    if not isinstance(test.ops[0], ast.Eq):
        return False
    sides = [test.left, test.comparators[0]]
    names = [s for s in sides if isinstance(s, ast.Name) and s.id == "__name__"]
    texts = [s for s in sides if isinstance(s, ast.Constant) and s.value == "__main__"]
    return bool(names and texts)


@dataclass
class _Scope:
    qualname: str
    kind: str  # "module" | "function" | "class"
    parent: _Scope | None
    params: tuple[str, ...] = ()
    bound: set[str] = field(default_factory=set)
    declared_global: set[str] = field(default_factory=set)
    self_name: str | None = None
    self_sym: Sym | None = None
    cls: str | None = None  # enclosing class qualname, for methods


@dataclass
class _FunctionState:
    scope: _Scope
    calls: list[CallSite] = field(default_factory=list)
    loops: list[LoopFact] = field(default_factory=list)
    trys: list[TryFact] = field(default_factory=list)
    returns: list[Sym] = field(default_factory=list)
    locals: dict[str, list[Sym]] = field(default_factory=dict)
    loop_stack: list[int] = field(default_factory=list)
    try_stack: list[int] = field(default_factory=list)


_SCOPES = (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)
_DECLARATIONS = (ast.Global, ast.Nonlocal)
_IMPORTS = (ast.Import, ast.ImportFrom)
# what holds no name: never looked into (every function body is walked once, so the walk is a
# large part of extracting a module's facts); lists of fields also hold strings (`Global.names`,
# `MatchClass.kwd_attrs`) and None (the key of `**rest` in a dict display)
_LEAVES = frozenset(
    cls
    for base in (ast.expr_context, ast.boolop, ast.operator, ast.unaryop, ast.cmpop)
    for cls in base.__subclasses__()
) | {ast.Constant, str, type(None)}


def _bound_names(body: Iterable[ast.stmt]) -> tuple[set[str], set[str]]:
    """Names a function body binds, and names it declares global/nonlocal (not descending into
    nested functions or classes)."""
    bound: set[str] = set()
    declared: set[str] = set()
    stack: list[ast.AST] = list(body)
    leaves, store = _LEAVES, (ast.Store, ast.Del)
    while stack:
        node = stack.pop()
        kind = type(node)
        if kind is ast.Name:
            if isinstance(node.ctx, store):  # type: ignore[attr-defined]
                bound.add(node.id)  # type: ignore[attr-defined]
            continue
        if kind in leaves:
            continue
        if isinstance(node, _SCOPES):
            bound.add(node.name)
            stack.extend(node.decorator_list)
            continue
        if kind is ast.Lambda:
            continue
        if isinstance(node, _DECLARATIONS):
            declared.update(node.names)
            continue
        if isinstance(node, _IMPORTS):
            for alias in node.names:
                bound.add((alias.asname or alias.name).split(".")[0])
        elif kind is ast.ExceptHandler and node.name:  # type: ignore[attr-defined]
            bound.add(node.name)  # type: ignore[attr-defined]
        for name in node._fields:
            value = getattr(node, name, None)
            if type(value) is list:
                stack.extend(value)
            elif isinstance(value, ast.AST):
                stack.append(value)
    return bound - declared, declared


class _ModuleBuilder:
    def __init__(self, source: str, module: str, path: str) -> None:
        self.source = source
        self.module = module
        self.path = path
        self.is_package = path.endswith("__init__.py")
        self.lines = _LINE_BREAK.split(source)
        self.globals: dict[str, list[Sym]] = {}
        self.imports: dict[str, Ref] = {}
        self.functions: list[FunctionFacts] = []
        self.function_qualnames: set[str] = set()
        self.classes: list[ClassFacts] = []
        self.class_attrs: dict[str, dict[str, list[Sym]]] = {}
        self.interesting_lines: set[int] = set()
        self.module_scope = _Scope(module, "module", None)
        self.lambda_count = 0
        self.main_guard = False

    # --- results ------------------------------------------------------------------------------

    def result(self) -> ModuleFacts:
        lines = tuple(
            (n, self.lines[n - 1].strip())
            for n in sorted(self.interesting_lines)
            if 0 < n <= len(self.lines)
        )
        return ModuleFacts(
            module=self.module,
            path=self.path,
            globals=tuple((k, tuple(v)) for k, v in self.globals.items()),
            functions=tuple(self.functions),
            classes=tuple(self.classes),
            suppressions=find_suppressions(self.source),
            lines=lines,
            main_guard=self.main_guard,
        )

    # --- positions ----------------------------------------------------------------------------

    def _column(self, line: int, byte_offset: int) -> int:
        if not 0 < line <= len(self.lines):
            return byte_offset + 1
        text = self.lines[line - 1]
        if text.isascii():
            return byte_offset + 1
        return len(text.encode("utf-8")[:byte_offset].decode("utf-8", "replace")) + 1

    def span(self, node: ast.AST, end: ast.AST | None = None) -> Span:
        last = end or node
        line = getattr(node, "lineno", 1)
        end_line = getattr(last, "end_lineno", None) or line
        return Span(
            line,
            self._column(line, getattr(node, "col_offset", 0)),
            end_line,
            self._column(end_line, getattr(last, "end_col_offset", None) or 0),
        )

    # --- module walk --------------------------------------------------------------------------

    def run(self, tree: ast.Module) -> None:
        bound, _ = _bound_names(tree.body)
        self.module_scope.bound = bound
        state = _FunctionState(self.module_scope)
        self._collect_imports(tree.body)
        self.block(tree.body, state)
        self._finish_function(
            state, MODULE_SCOPE, self.span(tree.body[0]) if tree.body else Span(1, 1, 1, 1)
        )
        for name, values in state.locals.items():
            self.globals.setdefault(name, []).extend(values)
        for name, ref in self.imports.items():
            # re-exports: `from .lambdas import invoke` in a package's __init__
            if name not in self.globals:
                self.globals[name] = [ref]
        for cls in list(self.classes):
            attrs = self.class_attrs.get(cls.qualname, {})
            idx = self.classes.index(cls)
            self.classes[idx] = ClassFacts(
                cls.qualname,
                cls.span,
                cls.bases,
                tuple((k, tuple(v)) for k, v in attrs.items()),
                cls.methods,
            )

    def _collect_imports(self, body: list[ast.stmt]) -> None:
        """Module-level imports, also under `if` / `try` / `with` (not inside functions)."""
        stack: list[ast.stmt] = list(reversed(body))
        while stack:
            node = stack.pop()
            if isinstance(node, (ast.Import, ast.ImportFrom)):
                for name, ref in self._import_bindings(node):
                    self.imports.setdefault(name, ref)
            elif isinstance(node, (ast.If, ast.Try, ast.With, ast.For, ast.While)):
                for field_name in ("body", "orelse", "finalbody"):
                    stack.extend(reversed(getattr(node, field_name, [])))
                for handler in getattr(node, "handlers", []):
                    stack.extend(reversed(handler.body))

    def _resolve_relative(self, level: int, module: str | None) -> str:
        if level == 0:
            return module or ""
        parts = self.module.split(".")
        if not self.is_package:
            parts = parts[:-1]
        if level > 1:
            parts = parts[: len(parts) - (level - 1)]
        base = ".".join(parts)
        if module:
            return f"{base}.{module}" if base else module
        return base

    def _import_bindings(self, node: ast.Import | ast.ImportFrom) -> Iterator[tuple[str, Ref]]:
        if isinstance(node, ast.Import):
            for alias in node.names:
                if alias.asname:
                    yield alias.asname, Ref(alias.name, self.module)
                else:
                    head = alias.name.split(".")[0]
                    yield head, Ref(head, self.module)
            return
        base = self._resolve_relative(node.level, node.module)
        for alias in node.names:
            if alias.name == "*":
                continue
            target = f"{base}.{alias.name}" if base else alias.name
            yield alias.asname or alias.name, Ref(target, "" if node.level else self.module)

    # --- scopes and names ---------------------------------------------------------------------

    def lookup(self, name: str, scope: _Scope, state: _FunctionState) -> Sym:
        current: _Scope | None = scope
        while current is not None:
            if current.kind == "class" and current is not scope:
                current = current.parent
                continue
            if current.kind == "module":
                break
            if name in current.declared_global:
                break
            if (
                current.self_name == name
                and current.self_sym is not None
                and name not in current.bound
            ):
                return current.self_sym
            if name in current.params and name not in current.bound:
                return Param(current.qualname, name, current.params.index(name))
            if current.kind == "class" and name in current.bound:
                return Attr(Ref(current.qualname), name)
            if name in current.bound or name in current.params:
                return Local(current.qualname, name)
            current = current.parent
        if name in self.module_scope.bound:
            if name in self.imports and not self._assigned_at_module(name):
                return self.imports[name]
            return Ref(f"{self.module}.{name}")
        if name in self.imports:
            return self.imports[name]
        return Ref(f"builtins.{name}")

    def _assigned_at_module(self, name: str) -> bool:
        return name in self.globals or f"{self.module}.{name}" in self.function_qualnames

    def bind(self, state: _FunctionState, target: ast.expr, value: Sym) -> None:
        scope = state.scope
        if isinstance(target, ast.Name):
            if scope.kind == "class":
                attrs = self.class_attrs.setdefault(scope.qualname, {})
                attrs.setdefault(target.id, []).append(value)
                return
            owner = self._owner_scope(target.id, scope)
            if owner is self.module_scope:
                self.globals.setdefault(target.id, []).append(value)
            else:
                state.locals.setdefault(target.id, []).append(value)
        elif isinstance(target, ast.Attribute):
            base = target.value
            if (
                isinstance(base, ast.Name)
                and scope.self_name == base.id
                and scope.cls is not None
                and base.id not in scope.bound
            ):
                attrs = self.class_attrs.setdefault(scope.cls, {})
                attrs.setdefault(target.attr, []).append(value)
            else:
                self.expr(target.value, state)
        elif isinstance(target, (ast.Tuple, ast.List)):
            for element in target.elts:
                self.bind(state, element, UNKNOWN)
        elif isinstance(target, ast.Starred):
            self.bind(state, target.value, UNKNOWN)
        elif isinstance(target, ast.Subscript):
            self.expr(target.value, state)
            self.expr(target.slice, state)

    def _owner_scope(self, name: str, scope: _Scope) -> _Scope:
        if scope.kind == "module" or name in scope.declared_global:
            return self.module_scope
        return scope

    # --- statements ---------------------------------------------------------------------------

    def block(self, body: Iterable[ast.stmt], state: _FunctionState) -> None:
        for stmt in body:
            self.stmt(stmt, state)
            if isinstance(stmt, _JUMPS) and state.scope.kind == "function":
                break  # what follows in this block never runs: nothing there is reported

    def stmt(self, node: ast.stmt, state: _FunctionState) -> None:
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            self.function(node, state)
        elif isinstance(node, ast.ClassDef):
            self.class_def(node, state)
        elif isinstance(node, ast.Assign):
            value = self.expr(node.value, state)
            for target in node.targets:
                self.bind(state, target, value)
        elif isinstance(node, ast.AnnAssign):
            if node.value is not None:
                self.bind(state, node.target, self.expr(node.value, state))
        elif isinstance(node, ast.AugAssign):
            value = self.expr(node.value, state)
            if isinstance(node.target, ast.Name):
                current = self.lookup(node.target.id, state.scope, state)
                op = _BINOPS.get(type(node.op), "?")
                self.bind(state, node.target, BinOp(op, current, value))
            else:
                self.bind(state, node.target, UNKNOWN)
        elif isinstance(node, ast.Return):
            if node.value is not None:
                state.returns.append(self.expr(node.value, state))
        elif isinstance(node, (ast.For, ast.AsyncFor)):
            iterator = self.expr(node.iter, state)
            loop_id = self._loop(
                state,
                "for",
                self.span(node, node.iter),
                repeats=_is_repeating(node.iter),
                body=node.body,
            )
            self.bind(state, node.target, Item(iterator, UNKNOWN))
            state.loop_stack.append(loop_id)
            self.block(node.body, state)
            state.loop_stack.pop()
            self.block(node.orelse, state)
        elif isinstance(node, ast.While):
            loop_id = self._loop(
                state, "while", self.span(node, node.test), repeats=True, body=node.body
            )
            state.loop_stack.append(loop_id)
            self.expr(node.test, state)
            self.block(node.body, state)
            state.loop_stack.pop()
            self.block(node.orelse, state)
        elif isinstance(node, (ast.Try, ast.TryStar)):
            catches: list[Sym] = []
            for handler in node.handlers:
                if handler.type is None:
                    catches = []
                    break
                types = handler.type.elts if isinstance(handler.type, ast.Tuple) else [handler.type]
                catches.extend(self.expr(t, state) for t in types)
            try_id = len(state.trys)
            state.trys.append(TryFact(try_id, self.span(node), tuple(catches)))
            state.try_stack.append(try_id)
            self.block(node.body, state)
            state.try_stack.pop()
            for handler in node.handlers:
                if handler.name:
                    self.bind(state, ast.Name(handler.name, ast.Store()), UNKNOWN)
                self.block(handler.body, state)
            self.block(node.orelse, state)
            self.block(node.finalbody, state)
        elif isinstance(node, (ast.With, ast.AsyncWith)):
            for item in node.items:
                value = self.expr(item.context_expr, state)
                if item.optional_vars is not None:
                    self.bind(state, item.optional_vars, value)
            self.block(node.body, state)
        elif isinstance(node, ast.If):
            self.expr(node.test, state)
            constant = _constant_truth(node.test)
            if constant is not False:
                self.block(node.body, state)
            if constant is not True:
                self.block(node.orelse, state)
            if _is_main_guard(node.test) and state.scope.kind == "module":
                self.main_guard = True
        elif isinstance(node, (ast.Import, ast.ImportFrom)):
            if state.scope.kind != "module":
                for name, ref in self._import_bindings(node):
                    self.bind(state, ast.Name(name, ast.Store()), ref)
        elif isinstance(node, ast.Match):
            self.expr(node.subject, state)
            for case in node.cases:
                if case.guard is not None:
                    self.expr(case.guard, state)
                self.block(case.body, state)
        else:
            for child in ast.iter_child_nodes(node):
                if isinstance(child, ast.expr):
                    self.expr(child, state)
                elif isinstance(child, ast.stmt):
                    self.stmt(child, state)

    def _loop(
        self, state: _FunctionState, kind: str, span: Span, repeats: bool, body: list[ast.stmt]
    ) -> int:
        loop_id = len(state.loops)
        parent = state.loop_stack[-1] if state.loop_stack else None
        state.loops.append(LoopFact(loop_id, kind, span, repeats, _has_exit(body), parent))
        self.interesting_lines.add(span.line)
        return loop_id

    def function(self, node: ast.FunctionDef | ast.AsyncFunctionDef, state: _FunctionState) -> None:
        outer = state.scope
        decorators = tuple(
            DecoratorFact(self.expr(d, state), self.span(d)) for d in node.decorator_list
        )
        for d in decorators:
            self.interesting_lines.add(d.span.line)
        qualname = f"{outer.qualname}.{node.name}"
        args = node.args
        positional = [a.arg for a in (*args.posonlyargs, *args.args)]
        params = tuple(
            positional
            + ([args.vararg.arg] if args.vararg else [])
            + [a.arg for a in args.kwonlyargs]
            + ([args.kwarg.arg] if args.kwarg else [])
        )
        defaults: list[tuple[str, Sym]] = []
        for arg, default in zip(positional[len(positional) - len(args.defaults) :], args.defaults):
            defaults.append((arg, self.expr(default, state)))
        for kwonly, kw_default in zip(args.kwonlyargs, args.kw_defaults):
            if kw_default is not None:
                defaults.append((kwonly.arg, self.expr(kw_default, state)))
        bound, declared = _bound_names(node.body)
        scope = _Scope(qualname, "function", outer, params, bound - set(params), declared)
        decorator_names = {_dotted(d) for d in node.decorator_list}
        is_method = outer.kind == "class"
        if is_method and positional and "staticmethod" not in decorator_names:
            scope.self_name = positional[0]
            scope.cls = outer.qualname
            if "classmethod" in decorator_names:
                scope.self_sym = Ref(outer.qualname)
            else:
                scope.self_sym = SelfOf(outer.qualname)
        elif outer.kind == "function":
            scope.self_name, scope.self_sym, scope.cls = outer.self_name, outer.self_sym, outer.cls
            if scope.self_name in scope.params or scope.self_name in scope.bound:
                scope.self_name = None
        inner = _FunctionState(scope)
        for param in params:
            if param in bound:
                inner.locals.setdefault(param, []).append(
                    Param(qualname, param, params.index(param))
                )
        self.block(node.body, inner)
        self._finish_function(
            inner,
            node.name,
            self.span(node),
            params=params,
            is_method=is_method,
            is_async=isinstance(node, ast.AsyncFunctionDef),
            module_level=outer.kind == "module",
            decorators=decorators,
            defaults=tuple(defaults),
        )
        if outer.kind == "class":
            return
        if outer.kind == "module":
            # a module-level def is reached through Ref(module.name); record nothing else
            self.module_scope.bound.add(node.name)
        else:
            self.bind(state, ast.Name(node.name, ast.Store()), FuncRef(qualname))

    def _finish_function(
        self,
        state: _FunctionState,
        name: str,
        span: Span,
        params: tuple[str, ...] = (),
        is_method: bool = False,
        is_async: bool = False,
        module_level: bool = False,
        decorators: tuple[DecoratorFact, ...] = (),
        defaults: tuple[tuple[str, Sym], ...] = (),
    ) -> None:
        qualname = state.scope.qualname if name != MODULE_SCOPE else f"{self.module}.{MODULE_SCOPE}"
        self.function_qualnames.add(qualname)
        self.functions.append(
            FunctionFacts(
                qualname=qualname,
                name=name,
                span=span,
                params=params,
                is_method=is_method,
                is_async=is_async,
                module_level=module_level,
                decorators=decorators,
                calls=tuple(state.calls),
                loops=tuple(state.loops),
                trys=tuple(state.trys),
                returns=tuple(state.returns),
                locals=tuple((k, tuple(v)) for k, v in state.locals.items())
                if name != MODULE_SCOPE
                else (),
                defaults=defaults,
            )
        )

    def class_def(self, node: ast.ClassDef, state: _FunctionState) -> None:
        outer = state.scope
        bases = tuple(self.expr(b, state) for b in node.bases)
        for d in node.decorator_list:
            self.expr(d, state)
        qualname = f"{outer.qualname}.{node.name}"
        bound, declared = _bound_names(node.body)
        scope = _Scope(qualname, "class", outer, (), bound, declared)
        inner = _FunctionState(scope)
        inner.loop_stack, inner.try_stack = state.loop_stack, state.try_stack
        inner.calls, inner.loops, inner.trys = state.calls, state.loops, state.trys
        self.class_attrs.setdefault(qualname, {})
        self.block(node.body, inner)
        methods = tuple(
            stmt.name
            for stmt in node.body
            if isinstance(stmt, (ast.FunctionDef, ast.AsyncFunctionDef))
        )
        self.classes.append(ClassFacts(qualname, self.span(node), bases, (), methods))
        if outer.kind == "function":
            self.bind(state, ast.Name(node.name, ast.Store()), Ref(qualname))

    # --- expressions --------------------------------------------------------------------------

    def expr(self, node: ast.expr | None, state: _FunctionState) -> Sym:
        if node is None:
            return UNKNOWN
        if isinstance(node, ast.Name):
            return self.lookup(node.id, state.scope, state)
        if isinstance(node, ast.Attribute):
            return Attr(self.expr(node.value, state), node.attr)
        if isinstance(node, ast.Call):
            return self.call(node, state)
        if isinstance(node, ast.Constant):
            value = node.value
            if isinstance(value, (str, int, float, bool)) or value is None:
                return Const(value)
            return UNKNOWN
        if isinstance(node, ast.Subscript):
            return Item(self.expr(node.value, state), self.expr(node.slice, state))
        if isinstance(node, ast.Await):
            return self.expr(node.value, state)
        if isinstance(node, ast.IfExp):
            self.expr(node.test, state)
            return OneOf((self.expr(node.body, state), self.expr(node.orelse, state)))
        if isinstance(node, ast.BoolOp):
            values = tuple(self.expr(v, state) for v in node.values)
            return OneOf(values) if isinstance(node.op, ast.Or) else values[-1]
        if isinstance(node, ast.BinOp):
            left, right = self.expr(node.left, state), self.expr(node.right, state)
            return BinOp(_BINOPS.get(type(node.op), "?"), left, right)
        if isinstance(node, ast.Dict):
            items: list[tuple[str, Sym]] = []
            for key, item in zip(node.keys, node.values):
                item_sym = self.expr(item, state)
                if isinstance(key, ast.Constant) and isinstance(key.value, str):
                    items.append((key.value, item_sym))
                elif key is not None:
                    self.expr(key, state)
            return DictLit(tuple(items))
        if isinstance(node, ast.NamedExpr):
            named = self.expr(node.value, state)
            self.bind(state, node.target, named)
            return named
        if isinstance(node, ast.Lambda):
            return self.lambda_(node, state)
        if isinstance(node, (ast.ListComp, ast.SetComp, ast.GeneratorExp, ast.DictComp)):
            return self.comprehension(node, state)
        if isinstance(node, ast.JoinedStr) and all(
            isinstance(v, ast.Constant) for v in node.values
        ):
            return Const("".join(str(v.value) for v in node.values if isinstance(v, ast.Constant)))
        if isinstance(node, ast.Starred):
            return self.expr(node.value, state)
        for child in ast.iter_child_nodes(node):
            if isinstance(child, ast.expr):
                self.expr(child, state)
            elif isinstance(child, ast.comprehension):
                self.expr(child.iter, state)
        return UNKNOWN

    def call(self, node: ast.Call, state: _FunctionState) -> Sym:
        func = self.expr(node.func, state)
        args = tuple(self.expr(a, state) for a in node.args)
        kwargs = tuple((k.arg, self.expr(k.value, state)) for k in node.keywords)
        span = self.span(node)
        self.interesting_lines.add(span.line)
        state.calls.append(
            CallSite(func, args, kwargs, span, tuple(state.loop_stack), tuple(state.try_stack))
        )
        return Call(func, args, kwargs)

    def comprehension(
        self,
        node: ast.ListComp | ast.SetComp | ast.GeneratorExp | ast.DictComp,
        state: _FunctionState,
    ) -> Sym:
        pushed = 0
        for generator in node.generators:
            iterator = self.expr(generator.iter, state)
            loop_id = self._loop(
                state,
                "comprehension",
                self.span(node),
                repeats=_is_repeating(generator.iter),
                body=[],
            )
            self.bind(state, generator.target, Item(iterator, UNKNOWN))
            state.loop_stack.append(loop_id)
            pushed += 1
            for condition in generator.ifs:
                self.expr(condition, state)
        if isinstance(node, ast.DictComp):
            self.expr(node.key, state)
            self.expr(node.value, state)
        else:
            self.expr(node.elt, state)
        del state.loop_stack[len(state.loop_stack) - pushed :]
        return UNKNOWN

    def lambda_(self, node: ast.Lambda, state: _FunctionState) -> Sym:
        self.lambda_count += 1
        outer = state.scope
        qualname = f"{outer.qualname}.<lambda{self.lambda_count}>"
        args = node.args
        params = tuple(a.arg for a in (*args.posonlyargs, *args.args, *args.kwonlyargs))
        scope = _Scope(qualname, "function", outer, params, set(), set())
        scope.self_name, scope.self_sym, scope.cls = outer.self_name, outer.self_sym, outer.cls
        inner = _FunctionState(scope)
        # a lambda runs where it is called, but it was written inside these loops
        inner.loop_stack = list(state.loop_stack)
        inner.loops = state.loops
        inner.returns.append(self.expr(node.body, inner))
        self._finish_function(inner, "<lambda>", self.span(node), params=params)
        return FuncRef(qualname)


def _dotted(node: ast.expr) -> str:
    if isinstance(node, ast.Call):
        return _dotted(node.func)
    if isinstance(node, ast.Name):
        return node.id
    if isinstance(node, ast.Attribute):
        return f"{_dotted(node.value)}.{node.attr}"
    return ""


def _is_repeating(iterator: ast.expr) -> bool:
    if isinstance(iterator, ast.Call):
        name = _dotted(iterator.func).rsplit(".", 1)[-1]
        return name in _REPEATING_ITERATORS
    return False


def _has_exit(body: list[ast.stmt]) -> bool:
    """A `return` in the loop, or a `break` that leaves this loop (not a nested one)."""
    stack: list[tuple[ast.AST, bool]] = [(node, False) for node in body]
    while stack:
        node, nested = stack.pop()
        if isinstance(node, ast.Return) or (isinstance(node, ast.Break) and not nested):
            return True
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef, ast.Lambda)):
            continue
        inner = nested or isinstance(node, (ast.For, ast.AsyncFor, ast.While))
        stack.extend((child, inner) for child in ast.iter_child_nodes(node))
    return False
