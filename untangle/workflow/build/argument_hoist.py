"""Arguments of a call that does work, computed by new functions first where ASL cannot.

`invoke("send-sms", {"text": text, "priority": round(total / 100)})`: the payload is data but
for one part ASL has no form for. That part (the smallest one, not the whole payload: the
payload stays an object the Task builds) runs as a new function just before the Task, its
value in a variable the payload reads, as an assignment to a name would. Only pure parts are
moved (a call that may do something else stays where it is and is refused as before), and
never a part evaluated only sometimes (`a if c else b`, `a or b`, a comprehension's element):
the new function would compute it where Python did not."""

from __future__ import annotations

import ast
import re
from typing import TYPE_CHECKING

from untangle.workflow.build.ast_helpers import copy_node, dotted_name, located
from untangle.workflow.build.extraction import (
    extract_task,
    extractable,
    has_effects,
    only_builtin_failures,
)
from untangle.workflow.build.scope import Fragment, NeedsData, Scope, Unsupported, to_expr
from untangle.workflow.build.work import named_function
from untangle.workflow.ir import Var

if TYPE_CHECKING:
    from untangle.workflow.build.builder import WorkflowBuilder


def hoist_arguments(
    builder: WorkflowBuilder, call: ast.Call, scope: Scope, keywords: tuple[str, ...] | None
) -> tuple[Fragment, ast.Call]:
    """The new functions computing the parts of `call`'s arguments ASL cannot (all of them, or
    the `keywords` named), in the order Python evaluates them, and `call` reading their
    results. `call` itself when there is nothing to move."""
    hoister = _Hoister(builder, scope)
    rewritten = copy_node(call)
    assert isinstance(rewritten, ast.Call)
    if keywords is None:
        rewritten.args = [hoister.argument(arg, None) for arg in rewritten.args]
    for keyword in rewritten.keywords:
        if keywords is None or keyword.arg in keywords:
            keyword.value = hoister.argument(keyword.value, keyword.arg)
    if hoister.fragment.start is None:
        return hoister.fragment, call
    return hoister.fragment, rewritten


# the parts a new function may compute: expressions (a bare name holds what it holds)
COMPUTATIONS = (
    ast.Call,
    ast.BinOp,
    ast.UnaryOp,
    ast.BoolOp,
    ast.Compare,
    ast.IfExp,
    ast.Subscript,
    ast.JoinedStr,
    ast.ListComp,
    ast.SetComp,
    ast.DictComp,
    ast.GeneratorExp,
    ast.Dict,
    ast.List,
    ast.Tuple,
)


def _payload(node: ast.expr) -> bool:
    """A dict or list built for a call, also as `json.dumps(…)` of one."""
    if isinstance(node, ast.Call) and dotted_name(node.func) == "json.dumps" and node.args:
        node = node.args[0]
    return isinstance(node, (ast.Dict, ast.List, ast.Tuple))


class _Hoister:
    def __init__(self, builder: WorkflowBuilder, scope: Scope) -> None:
        self.builder = builder
        self.scope = scope
        self.fragment = Fragment(None, [])

    def computable(self, node: ast.expr) -> bool:
        """ASL computes `node`, or cannot for another reason than a part it has no form for
        (that reason is given where the call is compiled)."""
        try:
            to_expr(self.builder.value(node, self.scope), node.lineno)
        except NeedsData as refusal:
            return refusal.secondary
        except Unsupported:
            return True
        return True

    def argument(self, node: ast.expr, label: str | None) -> ast.expr:
        """An argument itself is never moved, only parts of the payload it builds: a whole
        argument may be the function's name (no Task's function is computed by another
        function), a function handed on, or `json.dumps(…)` (whose text would reach the
        function as a string, not the object the Task's payload is)."""
        if not _payload(node) or self.computable(node):
            return node
        return self.inner_parts(node, label)

    def part(self, node: ast.expr, label: str | None) -> ast.expr:
        if not isinstance(node, COMPUTATIONS) or self.computable(node):
            return node
        node = self.inner_parts(node, label)
        if self.computable(node) or has_effects(node) or self.hands_on_code(node):
            return node
        params = extractable(self.builder, node, self.scope)
        if params is None:
            return node
        target = self.temp(label)
        task = extract_task(self.builder, node, target, params, self.scope)
        only_builtin_failures(task, node, self.scope)
        self.fragment = self.builder.sequence(self.fragment, Fragment(task, [(task, "next")]))
        self.scope.env[target] = Var(self.scope.var(target))
        return located(ast.Name(target, ast.Load()), node)

    def inner_parts(self, node: ast.expr, label: str | None) -> ast.expr:
        """`node` with its failing parts moved, where Python always evaluates them all."""
        node = copy_node(node)
        if isinstance(node, ast.Dict):
            node.values = [
                self.part(
                    value,
                    key.value
                    if isinstance(key, ast.Constant) and isinstance(key.value, str)
                    else label,
                )
                for key, value in zip(node.keys, node.values, strict=True)
            ]
        elif isinstance(node, (ast.List, ast.Tuple)):
            node.elts = [self.part(item, label) for item in node.elts]
        elif isinstance(node, ast.Call):
            node.args = [self.part(arg, label) for arg in node.args]
            for keyword in node.keywords:
                keyword.value = self.part(keyword.value, keyword.arg or label)
        elif isinstance(node, ast.BinOp):
            node.left = self.part(node.left, label)
            node.right = self.part(node.right, label)
        elif isinstance(node, ast.JoinedStr):
            for item in node.values:
                if isinstance(item, ast.FormattedValue):
                    item.value = self.part(item.value, label)
        return node

    def hands_on_code(self, node: ast.expr) -> bool:
        """`node` holds a function (`functools.partial(refund)`, a lambda, a function of the
        tree under a local name): code, not data a new function could return."""
        for sub in ast.walk(node):
            if isinstance(sub, ast.Lambda):
                return True
            if isinstance(sub, ast.Name) and named_function(sub, self.scope) is not None:
                return True
            if isinstance(sub, ast.Name) and sub.id not in self.scope.env:
                qualname = self.builder.function_at(self.scope.path, node.lineno)
                module = self.builder.program.module_of(qualname) if qualname else None
                if (
                    module is not None
                    and f"{module.module}.{sub.id}" in self.builder.program.functions
                ):
                    return True
        return False

    def temp(self, label: str | None) -> str:
        base = re.sub(r"[^0-9A-Za-z]+", "_", str(label or "value")).strip("_").lower() or "value"
        if base[0].isdigit():
            base = "v_" + base
        name, counter = base, 2
        while name in self.scope.env or name in self.builder._temps:
            name, counter = f"{base}_{counter}", counter + 1
        self.builder._temps.add(name)
        return name
