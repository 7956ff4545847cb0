"""The plan recipe: linked tree → orchestrating handlers → workflow IR → optimized IR → ASL.

Pure functions over the loaded tree; the CLI reads the files and prints.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field, replace
from typing import Any

from untangle.analysis.patterns import function_name_from_arn
from untangle.analysis.program import Program
from untangle.analysis.values import ConstV, Env
from untangle.event_sources import Invoker
from untangle.templates import TemplateHandler
from untangle.workflow.asl import NotExpressible, to_asl
from untangle.workflow.build import WorkflowBuilder
from untangle.workflow.build.sources import ParsedSources
from untangle.workflow.ir import FunctionRef, Reason, Task, Workflow, all_states
from untangle.workflow.passes import run_passes


@dataclass(frozen=True)
class PlanOptions:
    query_language: str = "jsonata"
    handlers: tuple[str, ...] = ()  # only these (qualified names or function names)
    # a failed function the original never checked: carry on with its error payload (as the
    # original did) instead of failing the Task (as Step Functions does)
    keep_unchecked_errors: bool = False


@dataclass(frozen=True)
class PlannedWorkflow:
    workflow: Workflow
    asl: dict[str, Any] | None
    optimizations: tuple[Reason, ...] = field(default=())
    # code of the tree that invokes this orchestrator (its event sources are decided by it)
    invokers: tuple[Invoker, ...] = field(default=())

    @property
    def status(self) -> str:
        return self.workflow.status


def orchestrators(program: Program) -> list[str]:
    """Handlers that reach at least one Lambda invoke."""
    found: set[str] = set()
    for site in program.invokes:
        found.update(program.handlers_reaching(site.function))
    return sorted(found)


def plan(
    program: Program,
    templates: Iterable[TemplateHandler],
    read_source: Callable[[str], str],
    options: PlanOptions = PlanOptions(),
) -> list[PlannedWorkflow]:
    templates = list(templates)
    sources = ParsedSources(read_source)
    names: dict[tuple[str, str], int] = {}
    planned = []
    namers: dict[str, FunctionNamer] = {}  # by module path
    index: InvokeIndex | None = None
    for handler in orchestrators(program):
        if options.handlers and not _selected(handler, options.handlers):
            continue
        module_path = program.module_of(handler).path
        if module_path not in namers:
            namers[module_path] = FunctionNamer(templates, module_path)
        namer = namers[module_path]
        workflow = WorkflowBuilder(program, handler, sources, namer).build()
        if not _invokes_anything(workflow):
            continue  # its invokes are unreachable (after a return, under `if False:`)
        name = _workflow_name(handler, program, templates)
        # numbered only against the workflows that go into the same template: a workflow's
        # name (its logical ids, its definition file) must not change with what else is planned
        scope = (_template_of(handler, program, templates), name)
        count = names.get(scope, 0)
        names[scope] = count + 1
        if count:
            name = f"{name}{count + 1}"
        workflow = replace(workflow, name=name)
        workflow, optimizations = run_passes(
            workflow, options.query_language, options.keep_unchecked_errors
        )
        asl = None
        line = program.functions[handler].span.line
        if workflow.graph is not None:
            try:
                asl = to_asl(workflow, options.query_language)
            except NotExpressible as exc:
                workflow = _refused(workflow, Reason(workflow.path, line, str(exc)))
        if asl is not None and deployed_size(asl) > MAX_DEFINITION_BYTES:
            size = deployed_size(asl)
            reason = Reason(
                workflow.path,
                line,
                f"the definition is {size:,} bytes as deployed, over Step Functions' limit of "
                f"{MAX_DEFINITION_BYTES:,} bytes (1 MiB)",
                "keep large constants out of the handler's payloads (a file in S3, a parameter "
                "the function reads), or split the workflow",
            )
            workflow, asl = _refused(workflow, reason), None
        index = index or InvokeIndex(program, templates, namers)
        invokers = invokers_of(program, templates, handler, index)
        planned.append(PlannedWorkflow(workflow, asl, optimizations, invokers))
    return planned


# Step Functions refuses a state machine definition over 1 MiB (its JSON, in UTF-8)
MAX_DEFINITION_BYTES = 1_048_576
_PLACEHOLDER = re.compile(r"\$\{([^}]+)\}")


def deployed_size(asl: dict[str, Any]) -> int:
    """The bytes of ``asl`` as Step Functions receives it: compact JSON, each ``${Name}``
    placeholder substituted by a function ARN (``DefinitionSubstitutions``)."""
    text = json.dumps(asl, separators=(",", ":"), ensure_ascii=False)
    arn = "arn:aws:lambda:us-east-1:123456789012:function:"
    return len(_PLACEHOLDER.sub(lambda m: arn + m.group(1), text).encode("utf-8"))


def _refused(workflow: Workflow, reason: Reason) -> Workflow:
    return replace(
        workflow, status="not_converted", graph=None, reasons=(*workflow.reasons, reason)
    )


def refuse_invalid(
    planned: list[PlannedWorkflow],
    program: Program,
    asl_errors: Callable[[list[dict[str, Any]]], list[list[str]]],
) -> list[PlannedWorkflow]:
    """``planned`` with every converted definition that ``asl_errors`` (asl-validator, one call
    for all of them) rejects refused, its errors as the reason. The validator's own failures
    (not installed, node failing) are the caller's to report."""
    checked = [(id(item), item.asl) for item in planned if item.asl is not None]
    verdicts = dict(zip((key for key, _ in checked), asl_errors([asl for _, asl in checked])))
    result = []
    for item in planned:
        errors = verdicts.get(id(item))
        if errors:
            workflow = item.workflow
            reason = Reason(
                workflow.path,
                program.functions[workflow.handler].span.line,
                "asl-validator rejects the generated definition (a bug of untangle's: please "
                "report it with this handler): " + "; ".join(errors),
            )
            item = replace(item, workflow=_refused(workflow, reason), asl=None)
        result.append(item)
    return result


def invokers_of(
    program: Program,
    templates: list[TemplateHandler],
    handler: str,
    index: InvokeIndex | None = None,
) -> tuple[Invoker, ...]:
    """The invokes of the tree that name the function a template declares `handler` as (by its
    `FunctionName`, or an environment variable set to `!Ref` it): a synchronous one may read
    its answer; `InvocationType="Event"` and `invoke_async` do not. `index`: the tree's
    invokes, named once for every handler of a plan."""
    path = os.path.abspath(program.module_of(handler).path)
    name = program.functions[handler].name
    declared = [t for t in templates if t.file == path and t.function == name]
    if not declared:
        return ()
    own = declared[0]
    index = index or InvokeIndex(program, templates)
    found = set(index.by_placeholder.get(f"${{{own.logical_id}Arn}}", ()))
    if own.function_name is not None:
        found |= index.by_display.get(own.function_name, set())
    return tuple(index.invokers[i] for i in sorted(found))


class InvokeIndex:
    """Every invoke of the tree, the functions its `FunctionName` may name, and what it would
    be to the function it calls: named once, not once per orchestrator (a tree of N
    orchestrators has N times their invokes)."""

    def __init__(
        self,
        program: Program,
        templates: list[TemplateHandler],
        namers: dict[str, FunctionNamer] | None = None,
    ) -> None:
        namers = {} if namers is None else namers
        self.invokers: list[Invoker] = []
        self.by_placeholder: dict[str, set[int]] = {}
        self.by_display: dict[str, set[int]] = {}
        for number, site in enumerate(program.invokes):
            module_path = program.module_of(site.function).path
            if module_path not in namers:
                namers[module_path] = FunctionNamer(templates, module_path)
            namer = namers[module_path]
            for value in site.kwargs.get("FunctionName", ()):
                if isinstance(value, ConstV) and isinstance(value.value, str):
                    ref = namer(function_name_from_arn(value.value))
                elif isinstance(value, Env):
                    ref = namer(f"${value.name}")
                else:
                    continue
                self.by_placeholder.setdefault(ref.placeholder, set()).add(number)
                self.by_display.setdefault(ref.display, set()).add(number)
            kinds = site.kwargs.get("InvocationType", frozenset())
            fire_and_forget = site.method == "invoke_async" or (
                bool(kinds) and all(v == ConstV("Event") for v in kinds)
            )
            where = f"{os.path.normpath(module_path)}:{site.site.span.line}"
            self.invokers.append(Invoker(where, not fire_and_forget))


def _invokes_anything(workflow: Workflow) -> bool:
    """A converted workflow has a Task calling a function of the project (not only new
    functions computing values); a refused one may, as far as anyone knows."""
    if workflow.graph is None:
        return True
    made = {item.function for item in workflow.extracted}
    return any(
        isinstance(state, Task) and state.function.display not in made
        for state in all_states(workflow.graph)
    )


def unknown_handlers(program: Program, wanted: tuple[str, ...]) -> list[str]:
    """The `--handler` names that select no orchestrating handler of the tree."""
    found = orchestrators(program)
    return [name for name in wanted if not any(_selected(h, (name,)) for h in found)]


def _selected(handler: str, wanted: tuple[str, ...]) -> bool:
    short = handler.rsplit(".", 1)[-1]
    return any(w in (handler, short) or handler.endswith("." + w) for w in wanted)


class FunctionNamer:
    """Function names and environment variables → `${XxxArn}` placeholders, matched to the
    functions of the templates in the tree when one declares them."""

    def __init__(self, templates: list[TemplateHandler], handler_path: str) -> None:
        self.templates = templates
        self.handler_path = os.path.abspath(handler_path)
        self.own = [t for t in templates if t.file == self.handler_path]
        self._named: dict[str, TemplateHandler] | None = None

    def _nearest_named(self, name: str) -> TemplateHandler | None:
        """The template function named `name` nearest to the handler (sorted once, and by
        template folder: a monorepo has many functions in few templates)."""
        if self._named is None:
            shared: dict[str, int] = {}
            for template in self.templates:
                folder = os.path.dirname(os.path.abspath(template.template))
                if folder not in shared:
                    shared[folder] = len(os.path.commonpath([folder, self.handler_path]))
            nearest = sorted(
                self.templates,
                key=lambda t: -shared[os.path.dirname(os.path.abspath(t.template))],
            )
            self._named = {}
            for template in nearest:
                if template.function_name is not None:
                    self._named.setdefault(template.function_name, template)
        return self._named.get(name)

    def __call__(self, name: str) -> FunctionRef:
        if name.startswith("$"):
            variable = name[1:]
            for template in self.own:
                for key, logical in template.environment:
                    if key == variable:
                        declared = self._by_logical(logical, template.template)
                        display = (declared.function_name if declared else None) or logical
                        return FunctionRef(f"${{{logical}Arn}}", display)
            return FunctionRef(f"${{{_pascal(variable)}Arn}}", variable)
        nearest = self._nearest_named(name)
        if nearest is not None:
            return FunctionRef(f"${{{nearest.logical_id}Arn}}", name)
        return FunctionRef(f"${{{_pascal(name)}FunctionArn}}", name)

    def _by_logical(self, logical: str, template: str) -> TemplateHandler | None:
        for candidate in self.templates:
            if candidate.logical_id == logical and candidate.template == template:
                return candidate
        return None


def _template_of(handler: str, program: Program, templates: list[TemplateHandler]) -> str:
    """The template that declares `handler` ("" when none does: migrate writes a new one)."""
    path = os.path.abspath(program.module_of(handler).path)
    function = program.functions[handler].name
    for template in templates:
        if template.file == path and template.function == function:
            return os.path.abspath(template.template)
    return ""


def _workflow_name(handler: str, program: Program, templates: list[TemplateHandler]) -> str:
    path = os.path.abspath(program.module_of(handler).path)
    function = program.functions[handler].name
    for template in templates:
        if template.file == path and template.function == function:
            base = re.sub(r"Function$", "", template.logical_id) or template.logical_id
            return base + "Workflow"
    parts = [
        p
        for p in handler.split(".")
        if p not in ("app", "lambda_function", "handler", "lambda_handler", "main", "index")
    ]
    return _pascal(parts[-1] if parts else handler) + "Workflow"


def _pascal(text: str) -> str:
    words = re.split(r"[^0-9A-Za-z]+", text)
    result = "".join(
        w[:1].upper() + w[1:].lower() if w.isupper() else w[:1].upper() + w[1:] for w in words if w
    )
    return result if result and not result[0].isdigit() else "F" + result
