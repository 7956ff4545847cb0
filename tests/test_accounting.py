"""Property tests of the planner on generated handlers (hypothesis): every statement that does
something is accounted for (a state, code inside an extracted function, or a refusal), a local
a helper changes in place is never read stale, and the plan is the same every time.

Handlers are built from what real ones interleave: invokes, plain data, a helper of the tree that
appends to its argument, a subprocess call whose result is overwritten, logging, sleeps, and
if / for / try around them."""

from __future__ import annotations

import ast
from dataclasses import dataclass, field
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from untangle.plan import PlanOptions, plan
from untangle.scan import ScanOptions, load_tree
from untangle.workflow.ir import Workflow, all_states, to_text

MODULE_HEAD = """import json
import logging
import subprocess
import time

import boto3

client = boto3.client("lambda")
logger = logging.getLogger()


def record(items, value):
    items.append(value)


def lambda_handler(event, context):
    audit = []
"""

# simple statements: (kind, template); {n} is a counter unique in the handler
SIMPLE = {
    "invoke": 'client.invoke(FunctionName="fn-{n}", Payload=json.dumps(event))',
    "invoke_result": (
        'r{n} = json.loads(client.invoke(FunctionName="fn-{n}", '
        'Payload=json.dumps(event))["Payload"].read())'
    ),
    "data": 'd{n} = {{"id": event.get("id"), "step": {n}}}',
    "mutating_helper": "record(audit, {n})",
    "overwritten_call": (
        'ret = subprocess.run(["true"], check=False)\n{indent}ret = {{"code": {n}}}'
    ),
    "logging": 'logger.info("step %s", {n})',
    "sleep": "time.sleep({n})",
}
# kinds whose statement must be a state or inside an extracted function when converted
ACCOUNTED = ("invoke", "invoke_result", "mutating_helper", "overwritten_call", "sleep")

Tree = tuple[str, object]


def simple() -> st.SearchStrategy[Tree]:
    return st.sampled_from(sorted(SIMPLE)).map(lambda kind: ("simple", kind))


def compound(inner: st.SearchStrategy[list[Tree]]) -> st.SearchStrategy[Tree]:
    return st.one_of(
        st.tuples(st.just("if"), st.tuples(inner, inner)),
        st.tuples(st.just("for"), inner),
        st.tuples(st.just("try"), inner),
    )


BLOCKS: st.SearchStrategy[list[Tree]] = st.recursive(
    st.lists(simple(), min_size=1, max_size=3),
    lambda inner: st.lists(st.one_of(simple(), compound(inner)), min_size=1, max_size=3),
    max_leaves=8,
)


@dataclass
class Rendered:
    lines: list[str] = field(default_factory=list)
    # line number (1-based, in the module) → kind, for the simple statements
    kinds: dict[int, str] = field(default_factory=dict)
    counter: int = 0

    def add(self, text: str, indent: str, kind: str | None = None) -> None:
        first = len(MODULE_HEAD.splitlines()) + len(self.lines) + 1
        for offset, line in enumerate(text.split("\n")):
            self.lines.append(indent + line if offset == 0 else line)
            if kind is not None and offset == 0:
                self.kinds[first] = kind

    def block(self, trees: list[Tree], indent: str) -> None:
        for tree in trees:
            self.statement(tree, indent)

    def statement(self, tree: Tree, indent: str) -> None:
        shape, body = tree
        if shape == "simple":
            assert isinstance(body, str)
            self.counter += 1
            self.add(SIMPLE[body].format(n=self.counter, indent=indent), indent, body)
        elif shape == "if":
            assert isinstance(body, tuple)
            self.add('if event.get("flag"):', indent)
            self.block(body[0], indent + "    ")
            self.add("else:", indent)
            self.block(body[1], indent + "    ")
        elif shape == "for":
            assert isinstance(body, list)
            self.add('for item in event["items"]:', indent)
            self.block(body, indent + "    ")
        else:
            assert isinstance(body, list)
            self.add("try:", indent)
            self.block(body, indent + "    ")
            self.add("except ValueError:", indent)
            self.add('raise RuntimeError("step failed")', indent + "    ")


def _handler(trees: list[Tree], returns_audit: bool) -> tuple[str, Rendered]:
    rendered = Rendered()
    rendered.block(trees, "    ")
    result = '{"audit": audit}' if returns_audit else '{"ok": True}'
    rendered.add(f"return {result}", "    ")
    return MODULE_HEAD + "\n".join(rendered.lines) + "\n", rendered


def _plan(root: Path, source: str) -> Workflow:
    (root / "app.py").write_text(source)
    tree = load_tree([str(root)], ScanOptions(cache_dir=None))
    planned = plan(tree.program, tree.templates, lambda p: Path(p).read_text(), PlanOptions())
    handlers = [p.workflow for p in planned if p.workflow.handler == "app.lambda_handler"]
    assert len(handlers) <= 1
    return handlers[0] if handlers else Workflow("", "", "", None, "no_workflow")


def _accounted_lines(workflow: Workflow) -> set[int]:
    assert workflow.graph is not None
    lines = {state.span.line for state in all_states(workflow.graph)}
    for item in workflow.extracted:  # a region: every line of it
        lines |= set(range(item.line, max(item.line, item.end_line) + 1))
    return lines


@settings(
    max_examples=60,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(trees=BLOCKS, returns_audit=st.booleans())
def test_every_statement_that_does_something_is_accounted_for(
    tmp_path_factory: object, trees: list[Tree], returns_audit: bool
) -> None:
    root = tmp_path_factory.mktemp("generated")  # type: ignore[attr-defined]
    source, rendered = _handler(trees, returns_audit)
    ast.parse(source)  # the generator writes valid Python
    workflow = _plan(root, source)
    if workflow.status == "no_workflow":
        assert "invoke" not in " ".join(rendered.kinds.values()), source
        return
    # the same plan every time
    assert to_text(_plan(root, source)) == to_text(workflow)
    if workflow.status != "converted":
        assert workflow.reasons, "a refused handler says why"
        return
    accounted = _accounted_lines(workflow)
    for line, kind in sorted(rendered.kinds.items()):
        if kind in ACCOUNTED:
            assert line in accounted, (
                f"line {line} ({kind}) vanished:\n{source}\n{to_text(workflow)}"
            )
    # `record(audit, …)` runs in a new function on a copy: a machine returning `audit` must
    # take it back from that function (a region's output), never answer the list as before
    if returns_audit:
        for item in workflow.extracted:
            if "record(audit" in item.expression:
                assert "audit" in item.outputs, (source, to_text(workflow))


def test_the_overwritten_subprocess_call_is_not_dropped(tmp_path: Path) -> None:
    """Seen in real code: `ret = subprocess.run(...)` then `ret = {...}` made the call vanish."""
    source, rendered = _handler([("simple", "overwritten_call"), ("simple", "invoke")], False)
    workflow = _plan(tmp_path, source)
    assert workflow.status == "converted", workflow.reasons
    [run_line] = [line for line, kind in rendered.kinds.items() if kind == "overwritten_call"]
    assert run_line in _accounted_lines(workflow)
    assert any("subprocess.run" in item.expression for item in workflow.extracted)


def test_a_list_a_helper_appends_to_is_not_read_stale(tmp_path: Path) -> None:
    """The helper changes `audit` in place: the new function running it returns `audit` (a
    region's output), which the machine reads from then on."""
    source, _ = _handler([("simple", "mutating_helper"), ("simple", "invoke")], True)
    workflow = _plan(tmp_path, source)
    assert workflow.status == "converted", workflow.reasons
    [region] = [item for item in workflow.extracted if "record(audit, 1)" in item.expression]
    assert region.outputs == ("audit",)
    assert "=> $audit" in to_text(workflow)
