"""The migrate recipe: planned workflows → the file changes that make them real.

`compute_migration` is pure (it is given file contents, returns new contents);
`untangle.check.check_contents` runs the validators on them; `apply_migration` is the only part
that writes, all or nothing.
"""

from __future__ import annotations

import ast
import difflib
import json
import os
import re
from collections.abc import Callable, Iterable
from collections.abc import Set as AbstractSet
from dataclasses import dataclass, field, replace
from typing import Any

import yaml

from codemods.layout import DEFAULT_LINE_LENGTH, docstring
from untangle import event_sources as es
from untangle import iam, sam
from untangle.facts.source import text_encoding
from untangle.plan import PlannedWorkflow
from untangle.style import DEFAULT_STYLE, CodeStyle, code_style
from untangle.template_edit import TemplateEditor
from untangle.templates import TemplateHandler, one_line
from untangle.workflow.asl import placeholders
from untangle.workflow.build.ast_helpers import bound_names
from untangle.workflow.ir import Extraction, Reason, Task, Workflow, all_states

ReadText = Callable[[str], str | None]  # absolute path → text, None when the file does not exist
# a module's path → the names other modules of the project import from it (None: all of them,
# `from app import *`)
ImportedNames = Callable[[str], frozenset[str] | None]


class MigrationError(Exception):
    """A migration that must not be written (validation failed, a path escapes the root …);
    `line`, when known, is where in the handler's file the reason is."""

    def __init__(self, message: str, line: int | None = None) -> None:
        super().__init__(message)
        self.line = line


class TemplateProblem(MigrationError):
    """The template a workflow would be added to cannot be read or edited: reported at the
    template's line, not the handler's."""

    def __init__(self, path: str, line: int, message: str) -> None:
        super().__init__(message, line)
        self.path = path
        self.template_line = line


def _template_problem(
    path: str, text: str | None, logical: str | None, exc: Exception
) -> TemplateProblem:
    """`exc` (a YAML error, a template untangle cannot edit) at the line it names: the YAML
    error's mark, else the orchestrator's resource, else line 1."""
    mark = getattr(exc, "problem_mark", None) or getattr(exc, "context_mark", None)
    if isinstance(exc, yaml.YAMLError):
        message = f"cannot read the template: {one_line(exc)}"
    else:
        message = str(exc)
    line = mark.line + 1 if mark is not None else None
    if line is None and text and logical:
        found = re.search(rf"^[ \t]*{re.escape(logical)}[ \t]*:", text, re.MULTILINE)
        line = text.count("\n", 0, found.start()) + 1 if found else None
    return TemplateProblem(os.path.relpath(path), line or 1, message)


@dataclass(frozen=True)
class FileChange:
    path: str  # absolute
    old: str | None  # None: a new file
    new: str
    # what the file is written in: a handler keeps the encoding its PEP 263 line declares
    encoding: str = "utf-8"


@dataclass
class Migration:
    root: str
    changes: list[FileChange] = field(default_factory=list)
    migrated: list[tuple[Workflow, str]] = field(default_factory=list)  # (workflow, how)
    skipped: list[tuple[Workflow, tuple[Reason, ...]]] = field(default_factory=list)
    # (handler path, handler) of a migrated workflow → what its new functions are called
    new_functions: dict[tuple[str, str], dict[str, NewFunction]] = field(default_factory=dict)

    def contents(self) -> dict[str, str]:
        return {c.path: c.new for c in self.changes}


_UNREAD = object()  # a path the edits have not read yet


@dataclass
class _Edits:
    """Files as they will be, while several workflows edit them in turn: each workflow's edits
    are kept (`commit`) or undone (`rollback`) together. A template is held by an editor that
    parses it once, whatever the number of workflows that edit it."""

    read: ReadText
    current: dict[str, str | None] = field(default_factory=dict)
    original: dict[str, str | None] = field(default_factory=dict)
    editors: dict[str, TemplateEditor] = field(default_factory=dict)
    # what this workflow changed: each path's text (or _UNREAD) and editor before it
    _before: dict[str, tuple[object, TemplateEditor | None]] = field(default_factory=dict)

    def get(self, path: str) -> str | None:
        if path in self.editors:
            return self.editors[path].text()
        if path not in self.current:
            text = self.read(path)
            self.current[path] = text
            self.original[path] = text
        return self.current[path]

    def set(self, path: str, text: str) -> None:
        self.get(path)
        self._remember(path)
        self.editors.pop(path, None)
        self.current[path] = text

    def template(self, path: str) -> TemplateEditor | None:
        """The editor of the template at `path`; None when there is no such file."""
        if path not in self.editors:
            text = self.get(path)
            if text is None:
                return None
            self._remember(path)
            self.editors[path] = TemplateEditor(text)
        self._remember(path)
        return self.editors[path]

    def _remember(self, path: str) -> None:
        if path not in self._before:
            self._before[path] = (self.current.get(path, _UNREAD), self.editors.get(path))

    def commit(self) -> None:
        for path in self._before:
            if path in self.editors:
                self.editors[path].commit()
        self._before.clear()

    def rollback(self) -> None:
        for path, (text, editor) in self._before.items():
            if text is _UNREAD:
                self.current.pop(path, None)
            else:
                self.current[path] = text  # type: ignore[assignment]
            if editor is None:
                self.editors.pop(path, None)
            else:
                editor.rollback()
                self.editors[path] = editor
        self._before.clear()

    def changes(self) -> list[FileChange]:
        found = []
        for path in sorted(set(self.current) | set(self.editors)):
            text = self.editors[path].text() if path in self.editors else self.current[path]
            if text is not None and text != self.original[path]:
                found.append(FileChange(path, self.original[path], text, _encoding_of(path, text)))
        return found


def _encoding_of(path: str, text: str) -> str:
    """A Python file is written in the encoding its coding line declares, as Python reads it;
    every other file in UTF-8."""
    return text_encoding(text) if path.endswith(".py") else "utf-8"


def compute_migration(
    planned: Iterable[PlannedWorkflow],
    templates: list[TemplateHandler],
    read: ReadText,
    root: str,
    recommendation: Callable[[dict[str, Any]], str] = lambda _: "Express",
    express_blockers: Callable[[dict[str, Any]], list[str]] = lambda _: [],
    execution_ms: Callable[[dict[str, Any]], float | None] = lambda _: None,
    imported: ImportedNames = lambda _: frozenset(),
) -> Migration:
    root = os.path.abspath(root)
    migration = Migration(root)
    edits = _Edits(read)
    for item in planned:
        workflow = item.workflow
        if item.asl is None or workflow.graph is None:
            migration.skipped.append((workflow, workflow.reasons))
            continue
        try:
            how = _migrate_one(
                migration,
                item,
                templates,
                edits,
                root,
                recommendation(item.asl),
                express_blockers(item.asl),
                execution_ms(item.asl),
                imported,
            )
        except TemplateProblem as exc:
            edits.rollback()  # a workflow is migrated whole or not at all
            migration.new_functions.pop((workflow.path, workflow.handler), None)
            reason = Reason(exc.path, exc.template_line, str(exc))
            migration.skipped.append((workflow, (reason,)))
            continue
        except (MigrationError, ValueError, yaml.YAMLError) as exc:
            edits.rollback()
            migration.new_functions.pop((workflow.path, workflow.handler), None)
            line = workflow.graph.states[0].span.line if workflow.graph.states else 1
            if isinstance(exc, MigrationError) and exc.line is not None:
                line = exc.line
            migration.skipped.append((workflow, (Reason(workflow.path, line, str(exc)),)))
            continue
        edits.commit()
        migration.migrated.append((workflow, how))
    migration.changes = edits.changes()
    for change in migration.changes:
        inside(change.path, root)
    return migration


def inside(path: str, root: str) -> str:
    """`path`, resolved, when it lies under `root`; a MigrationError otherwise."""
    from untangle.journal import WriteRefused
    from untangle.journal import inside as resolved_inside

    try:
        return resolved_inside(path, root)
    except WriteRefused as exc:
        raise MigrationError(str(exc)) from None


def _env_name(workflow: Workflow) -> str:
    snake = re.sub(r"(?<!^)(?=[A-Z])", "_", re.sub(r"[^0-9A-Za-z]", "", workflow.name))
    return f"{snake.upper()}_STATE_MACHINE_ARN"


def _migrate_one(
    migration: Migration,
    item: PlannedWorkflow,
    templates: list[TemplateHandler],
    edits: _Edits,
    root: str,
    machine_type: str,
    blockers: list[str],
    execution_ms: float | None = None,
    imported: ImportedNames = lambda _: frozenset(),
) -> str:
    workflow = item.workflow
    assert item.asl is not None
    handler_path = os.path.abspath(workflow.path)
    handler_name = workflow.handler.rsplit(".", 1)[-1]
    declared = [t for t in templates if t.file == handler_path and t.function == handler_name]
    template_path = (
        os.path.abspath(declared[0].template) if declared else os.path.join(root, "template.yaml")
    )
    app_root = os.path.dirname(template_path)
    inside(app_root, root)
    machine = sam.logical_id(workflow.name, "StateMachine")
    definition_path = os.path.join(
        app_root, "statemachine", f"{sam.logical_id(workflow.name)}.asl.json"
    )
    inside(definition_path, root)
    edits.set(definition_path, json.dumps(item.asl, indent=2) + "\n")

    # the template, and what becomes of the orchestrator's event sources
    editor = edits.template(template_path)
    orchestrator = declared[0].logical_id if declared else None
    readable = editor is not None and not editor.is_empty()
    if editor is not None and readable:
        try:
            editor.check()
        except (ValueError, yaml.YAMLError) as exc:  # the template cannot be read
            raise _template_problem(template_path, editor.text(), orchestrator, exc) from exc
    existing = editor.resource_names() if editor is not None and readable else frozenset()
    template = (
        editor.template_for(orchestrator)
        if editor is not None and readable and orchestrator is not None
        else None
    )
    decision = (
        _decide_events(
            item,
            editor.document(),
            editor.references,
            orchestrator,
            machine_type,
            blockers,
            execution_ms,
        )
        if editor is not None and orchestrator is not None
        else None
    )
    if decision is not None:
        machine_type = decision.machine_type
    mode = decision.mode if decision is not None else _mode(machine_type)

    # the orchestrator becomes a thin starter; extracted computations become its neighbours
    source = edits.get(handler_path)
    if source is None:
        raise MigrationError(f"cannot read {workflow.path}")
    _require_module_level(workflow, handler_path)
    style = code_style(handler_path, edits.read)
    style = replace(
        style,
        first_party=(
            *style.first_party,
            *_local_modules(source, [os.path.dirname(handler_path), app_root, root], edits.read),
        ),
    )
    functions = new_function_names(workflow, module_level_names(source), existing)
    migration.new_functions[(workflow.path, workflow.handler)] = functions
    extra = _extracted_source(workflow, style.line_length, functions)
    env_var = _env_name(workflow)
    others = imported(handler_path)
    if others is None:
        raise MigrationError(
            f"another module of the project imports everything from {workflow.path} "
            "(`import *`): untangle cannot tell which names it may remove"
        )
    # other Lambda functions of the template whose handler is in this module stay
    handlers = {t.function for t in templates if t.file == handler_path}
    rewritten = rewrite(
        source, handler_name, env_var, mode, workflow.name, extra, style, others | handlers
    )
    encoding = _encoding_of(handler_path, rewritten.code)
    try:
        rewritten.code.encode(encoding)
    except (LookupError, UnicodeEncodeError) as exc:
        raise MigrationError(
            f"the rewritten handler cannot be written in {encoding}, the encoding its coding "
            f"line declares ({exc})"
        ) from exc
    edits.set(handler_path, rewritten.code)

    substitutions = _substitutions(item, template, orchestrator, existing, workflow, functions)
    machine_events = ""
    if decision is not None and editor is not None and orchestrator is not None:
        unmoved = editor.savepoint()
        try:
            machine_events = _move_events(editor, orchestrator, decision)
        except (ValueError, yaml.YAMLError) as exc:  # the template cannot be edited
            editor.rollback(unmoved)
            raise _template_problem(template_path, editor.text(), orchestrator, exc) from exc
    resources = sam.render_state_machine(
        name=machine,
        machine_type="EXPRESS" if machine_type == "Express" else "STANDARD",
        definition_uri=os.path.relpath(definition_path, app_root).replace(os.sep, "/"),
        substitutions=substitutions,
        policies=_invoke_policies(workflow, existing, functions),
        events=machine_events,
    )
    code_dir = os.path.dirname(handler_path)
    module = os.path.splitext(os.path.basename(handler_path))[0]
    inherited = (
        sam.inherited_properties(template, orchestrator)
        if template is not None and orchestrator is not None
        else {}
    )
    handler_module = _handler_module(template, orchestrator) or module
    for extracted in workflow.extracted:
        resources += "\n" + sam.render_function(
            name=functions[extracted.function].logical,
            code_uri=os.path.relpath(code_dir, app_root).replace(os.sep, "/") + "/",
            handler=f"{handler_module}.{functions[extracted.function].python}",
            runtime="python3.12",
            inherited=inherited,
        )
    if machine in existing:
        raise _template_problem(
            template_path,
            editor.text() if editor is not None else None,
            machine,
            MigrationError(f"{template_path} already declares {machine}"),
        )
    if editor is None:
        edits.set(template_path, sam.new_template(resources))
        return (
            f"{workflow.name}: new template.yaml with the state machine; declare the "
            f"orchestrator there and give it {env_var} = the machine's ARN"
        ) + _rewrite_says(rewritten)
    moved = editor.savepoint()
    try:
        editor.add_resources(resources)
        if orchestrator is not None and decision is not None and not decision.keep_starter:
            editor.remove_resource(orchestrator)
        elif orchestrator is not None:
            editor.add_environment(orchestrator, env_var, f"!Ref {machine}")
            editor.add_policy(orchestrator, _starter_policy(machine, mode))
    except (ValueError, yaml.YAMLError) as exc:  # the template cannot be edited
        editor.rollback(moved)
        raise _template_problem(template_path, editor.text(), orchestrator, exc) from exc
    how = f"{workflow.name}: {machine_type} state machine; " + _starter_says(
        orchestrator or handler_name, mode, decision
    )
    how += _rewrite_says(rewritten)
    if decision is not None:
        how += "".join(f"\n  event sources: {line}" for line in decision.lines())
    return how


def _rewrite_says(rewritten: Rewrite) -> str:
    """What the handler's rewrite removed, and what it kept though nothing uses it now."""
    said = ""
    if rewritten.removed:
        said += "; removed what only the old handler used: " + ", ".join(rewritten.removed)
    if rewritten.kept:
        said += (
            "; kept, though only the old handler used them (removing them may change what "
            "the module does when it loads, or what another Lambda runs): "
            + ", ".join(rewritten.kept)
        )
    return said


def _mode(machine_type: str) -> str:
    return "sync" if machine_type == "Express" else "async"


def _starter_says(orchestrator: str, mode: str, decision: es.Decision | None) -> str:
    if decision is not None and not decision.keep_starter:
        return (
            f"the orchestrator ({orchestrator}) leaves the template: its events start the machine"
        )
    return (
        f"the orchestrator ({orchestrator}) keeps its name and now "
        + {
            "sync": "runs the machine with StartSyncExecution, so synchronous callers still get "
            "the answer",
            "async": "starts the machine with StartExecution (Standard: it may wait longer than "
            "a Lambda can run) and answers with the execution ARN",
            "wait": "starts the machine with StartExecution and waits for its end (Standard), so "
            "its callers still get the answer or the failure",
        }[mode]
    )


def _starter_policy(machine: str, mode: str) -> list[str]:
    lines = [
        "- Statement:",
        "    - Effect: Allow",
        "      Action:",
        "        - states:StartExecution",
        "        - states:StartSyncExecution",
        f"      Resource: !Ref {machine}",
    ]
    if mode == "wait":
        # DescribeExecution is granted on the machine's executions, not on the machine
        lines += [
            "    - Effect: Allow",
            "      Action: states:DescribeExecution",
            '      Resource: !Sub "arn:${AWS::Partition}:states:${AWS::Region}:'
            f'${{AWS::AccountId}}:execution:${{{machine}.Name}}:*"',
        ]
    return lines


def _decide_events(
    item: PlannedWorkflow,
    document: Any,
    references: Callable[[str], list[es.Invoker]],
    orchestrator: str,
    machine_type: str,
    blockers: list[str],
    execution_ms: float | None = None,
) -> es.Decision:
    """What becomes of the orchestrator's events (and of the orchestrator), on the template as
    `cfn_load` reads it: plan notes it, migrate does it. `references` finds what in the template
    names a resource."""
    events = es.events_of(document, orchestrator)
    unmovable = {}
    for event in events:
        if event.kind != "S3":
            continue
        rule = es.s3_rule(event)
        if isinstance(rule, es.S3Rule):
            why = _bucket_refusal(document, rule.bucket)
            if why is not None:
                unmovable[event.name] = why
    return es.decide(
        events,
        machine_type,
        blockers,
        reads_event=_reads_event(item),
        invokers=[*item.invokers, *references(orchestrator)],
        function_url=es.has_function_url(document, orchestrator),
        unmovable=unmovable,
        execution_ms=execution_ms,
    )


def event_notes(
    item: PlannedWorkflow,
    templates: list[TemplateHandler],
    read: ReadText,
    decision: es.Decision,
    parsed: dict[str, tuple[Any, sam.Template]] | None = None,
) -> tuple[Reason, ...]:
    """plan's notes on the orchestrator's event sources: what migrate will do with each
    (`decision`, from `event_decision`), on the line of the orchestrator in its template.
    `parsed` keeps each template as read (by path) between the workflows of one plan, so a
    template of N orchestrators is parsed once, not N times."""
    found = _orchestrator_template(item, templates, read, parsed)
    if found is None:
        return ()
    declared, _, template = found
    try:
        node = template.get(template.resources(), declared.logical_id)
    except (ValueError, yaml.YAMLError):
        return ()
    line = node.start_mark.line if node is not None else 1
    return tuple(
        Reason(declared.template, line, f"event sources: {said}") for said in decision.lines()
    )


def keeps_starter(
    item: PlannedWorkflow,
    templates: list[TemplateHandler],
    read: ReadText,
    parsed: dict[str, tuple[Any, sam.Template]] | None = None,
) -> bool:
    """Whether migrate leaves a starter Lambda in the orchestrator's place (the cost estimate
    bills it): not when every event the orchestrator had moves to the state machine and nothing
    else invokes it. The machine type does not enter into it, so any will do here."""
    decision = event_decision(item, templates, read, "Standard", [], None, parsed)
    return decision is None or decision.keep_starter


def event_decision(
    item: PlannedWorkflow,
    templates: list[TemplateHandler],
    read: ReadText,
    machine_type: str,
    blockers: list[str],
    execution_ms: float | None = None,
    parsed: dict[str, tuple[Any, sam.Template]] | None = None,
) -> es.Decision | None:
    """What migrate will do with the orchestrator's events, and how its starter (if any) runs
    the machine; None when no readable template declares the orchestrator."""
    found = _orchestrator_template(item, templates, read, parsed)
    if found is None:
        return None
    declared, document, _ = found
    try:
        return _decide_events(
            item,
            document,
            lambda name: es.references(document, name),
            declared.logical_id,
            machine_type,
            blockers,
            execution_ms,
        )
    except (ValueError, yaml.YAMLError):
        return None


def _orchestrator_template(
    item: PlannedWorkflow,
    templates: list[TemplateHandler],
    read: ReadText,
    parsed: dict[str, tuple[Any, sam.Template]] | None,
) -> tuple[TemplateHandler, Any, sam.Template] | None:
    """The template entry declaring the workflow's handler, with its template as loaded and
    as parsed (from `parsed` when read before); None when no template declares it."""
    workflow = item.workflow
    handler_path = os.path.abspath(workflow.path)
    handler_name = workflow.handler.rsplit(".", 1)[-1]
    declared = [t for t in templates if t.file == handler_path and t.function == handler_name]
    if not declared or item.asl is None:
        return None
    path = os.path.abspath(declared[0].template)
    cache = parsed if parsed is not None else {}
    try:
        if path not in cache:
            text = read(path)
            if text is None:
                return None
            cache[path] = (sam.cfn_load(text), sam.Template.parse(text))
    except (ValueError, yaml.YAMLError):
        return None
    document, template = cache[path]
    return declared[0], document, template


def _bucket_refusal(document: Any, bucket: str) -> str | None:
    resource = document.get("Resources", {}).get(bucket)
    if not isinstance(resource, dict) or resource.get("Type") != "AWS::S3::Bucket":
        return f"{bucket} is not an AWS::S3::Bucket of the template"
    props = resource.get("Properties") or {}
    if isinstance(props, dict) and "NotificationConfiguration" in props:
        return f"{bucket} has a NotificationConfiguration already: add EventBridge by hand"
    return None


def _reads_event(item: PlannedWorkflow) -> bool:
    """The machine reads its input (the event the orchestrator got), in a state or in a
    computation moved to a new function: an S3 event that reaches it through EventBridge
    would have another shape."""
    definition = json.dumps(item.asl)
    return (
        "$states.context.Execution.Input" in definition
        or "$.input" in definition
        or "$$.Execution.Input" in definition
        or any("event" in e.params for e in item.workflow.extracted)
    )


def _move_events(editor: TemplateEditor, orchestrator: str, decision: es.Decision) -> str:
    """Take the moving events out of the orchestrator (in the template `editor` holds): the
    machine's `Events` entries (8 spaces in)."""
    blocks = []
    for event in decision.moved:
        blocks.append(editor.take_event(orchestrator, event.name, 8))
    buckets: list[str] = []
    for event in decision.s3_moved:
        editor.take_event(orchestrator, event.name, 8)
        rule = es.s3_rule(event)
        assert isinstance(rule, es.S3Rule)
        if rule.bucket not in buckets:
            buckets.append(rule.bucket)
            editor.enable_bucket_eventbridge(rule.bucket)
        blocks.append(
            sam.render_s3_rule(
                name=event.name,
                bucket=rule.bucket,
                detail_types=rule.detail_types,
                key=rule.key,
            )
        )
    return "".join(blocks)


def _require_module_level(workflow: Workflow, handler_path: str) -> None:
    """The workflow's handler is a module-level function of its file (a Lambda handler is
    `module.function`): never a method or a nested function that shares its name."""
    parts = workflow.handler.split(".")
    module = os.path.splitext(os.path.basename(handler_path))[0]
    if module == "__init__":
        module = os.path.basename(os.path.dirname(handler_path))
    if len(parts) < 2 or parts[-2] != module:
        raise MigrationError(
            f"{workflow.handler} is not a module-level function of {workflow.path}: "
            "untangle rewrites module-level handlers only"
        )


def _exists(path: str, read: ReadText) -> bool:
    try:
        return read(path) is not None
    except (OSError, ValueError):
        return False


def _local_modules(source: str, folders: list[str], read: ReadText) -> list[str]:
    """The top-level modules `source` imports that are files or packages of the project (in
    one of `folders`): first party, for sorting imports."""
    import ast

    try:
        tree = ast.parse(source)
    except SyntaxError:
        return []
    names: set[str] = set()
    for node in tree.body:
        if isinstance(node, ast.Import):
            names |= {alias.name.split(".")[0] for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            names.add(node.module.split(".")[0])
    return sorted(
        name
        for name in names
        if any(
            _exists(os.path.join(folder, name + ".py"), read)
            or _exists(os.path.join(folder, name, "__init__.py"), read)
            for folder in dict.fromkeys(folders)
        )
    )


def _handler_module(template: sam.Template | None, orchestrator: str | None) -> str | None:
    """The orchestrator's module as its `Handler` names it (`pkg.app` of `pkg.app.handler`):
    the new functions live in that module, from the same CodeUri."""
    if template is None or orchestrator is None:
        return None
    props = template.properties(orchestrator)
    handler = template.get(props, "Handler") if props is not None else None
    value = getattr(handler, "value", None)
    if isinstance(value, str) and "." in value and template.get(props, "CodeUri") is not None:  # type: ignore[arg-type]
        return value.rsplit(".", 1)[0]
    return None


@dataclass(frozen=True)
class NewFunction:
    """What a new single-purpose function of a workflow is called once migrated: its Python
    name in the handler's module and its logical id in the template."""

    python: str
    logical: str


def module_level_names(source: str) -> set[str]:
    """The names a module binds at its top level (functions, classes, assignments, imports)."""
    try:
        tree = ast.parse(source)
    except (SyntaxError, ValueError):
        return set()
    names: set[str] = set()
    for node in tree.body:
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            names.update((a.asname or a.name).split(".")[0] for a in node.names)
        else:
            names.update(bound_names(node))
    return names


def new_function_names(
    workflow: Workflow, module_names: AbstractSet[str], existing: AbstractSet[str]
) -> dict[str, NewFunction]:
    """The Python name and logical id of each new function of `workflow`: `compute_result` and
    `ComputeResultFunction`, unless the module already binds that name (another workflow of the
    same module added its own `compute_result`, or the module's own code) or the template
    already has that resource: then the handler's name is added to the Python name
    (`compute_result_ship_large`), the workflow's name in front of the logical id, and a number
    after either if that is taken too. Two functions of one name would leave only the last one
    defined, and the other workflow's machine running it."""
    handler = workflow.handler.rsplit(".", 1)[-1]
    python_taken, logical_taken = set(module_names), set(existing)
    result: dict[str, NewFunction] = {}
    for extracted in workflow.extracted:
        python = extracted.function
        if python in python_taken:
            python = f"{extracted.function}_{handler}"
        number = 2
        while python in python_taken:
            python = f"{extracted.function}_{handler}_{number}"
            number += 1
        plain = sam.logical_id(python, "Function")
        logical = plain
        if logical in logical_taken:
            logical = sam.logical_id(workflow.name) + plain
        number = 2
        while logical in logical_taken:
            logical = f"{sam.logical_id(workflow.name)}{plain}{number}"
            number += 1
        python_taken.add(python)
        logical_taken.add(logical)
        result[extracted.function] = NewFunction(python, logical)
    return result


def _substitutions(
    item: PlannedWorkflow,
    template: sam.Template | None,
    orchestrator: str | None,
    existing: AbstractSet[str],
    workflow: Workflow,
    functions: dict[str, NewFunction],
) -> list[tuple[str, str]]:
    assert item.asl is not None
    displays = {f.placeholder.strip("${}"): f.display for f in workflow.functions}
    # a new function's placeholder keeps the name the plan gave it; its value is the
    # resource this migration declares, whatever logical id that got
    extracted = {
        sam.logical_id(e.function, "FunctionArn"): functions[e.function].logical
        for e in workflow.extracted
    }
    environment: dict[str, str] = {}
    if template is not None and orchestrator is not None:
        props = template.properties(orchestrator)
        env = template.get(props, "Environment") if props is not None else None
        variables = template.get(env, "Variables") if env is not None else None
        if variables is not None:
            for key, value in getattr(variables, "value", []):
                environment[key.value] = template.source(value).strip()
    result = []
    for name in placeholders(item.asl):
        if name in extracted:
            result.append((name, f"!GetAtt {extracted[name]}.Arn"))
        elif name.endswith("Arn") and name[:-3] in existing:
            result.append((name, f"!GetAtt {name[:-3]}.Arn"))
        elif name in environment:
            result.append((name, environment[name]))
        elif name in dict(workflow.env_defaults):
            result.append((name, sam.yaml_scalar(dict(workflow.env_defaults)[name])))
        elif name in displays:
            function = displays[name].replace("${", "${!")
            result.append(
                (
                    name,
                    "!Sub "
                    + sam.yaml_scalar(
                        "arn:${AWS::Partition}:lambda:${AWS::Region}:${AWS::AccountId}:function:"
                        + function
                    ),
                )
            )
        else:
            raise MigrationError(
                f"no value for the placeholder ${{{name}}}: set the environment variable or "
                "declare the function in template.yaml"
            )
    return [
        (sam.logical_id(k) if not re.fullmatch(r"[A-Za-z0-9_]+", k) else k, v) for k, v in result
    ]


def _invoke_policies(
    workflow: Workflow, existing: AbstractSet[str], functions: dict[str, NewFunction]
) -> list[str]:
    """The machine's permission to invoke what its Tasks call: an explicit statement on exact
    ARNs (SAM's `LambdaInvokePolicy` grants `function:NAME*`, every function for `*`)."""
    made = {extracted.function for extracted in workflow.extracted}
    qualified = _qualified_placeholders(workflow)
    callees = []
    for function in workflow.functions:
        if function.display in made:
            continue  # a new function: granted by its logical id below
        logical = function.placeholder.strip("${}").removesuffix("Arn")
        callees.append(
            iam.Callee(
                function.display,
                logical if logical in existing else None,
                qualified is None or function.placeholder in qualified,
            )
        )
    for extracted in workflow.extracted:
        callees.append(
            iam.Callee(functions[extracted.function].python, functions[extracted.function].logical)
        )
    try:
        return iam.invoke_statement(iam.invoke_resources(callees))
    except iam.UnsafeFunctionName as exc:
        raise MigrationError(str(exc)) from None


def _qualified_placeholders(workflow: Workflow) -> set[str] | None:
    """The functions a Task invokes with a version or alias (`Qualifier=`, `name:alias`); None
    when a Task choosing its function at run time does (then any of them may be)."""
    found: set[str] = set()
    if workflow.graph is None:
        return found
    for state in all_states(workflow.graph):
        if isinstance(state, Task) and state.qualifier is not None:
            if state.function.dynamic is not None:
                return None
            found.add(state.function.placeholder)
    return found


def _lines_of(extracted: Extraction) -> str:
    if extracted.end_line > extracted.line:
        return f"lines {extracted.line}-{extracted.end_line}"
    return f"line {extracted.line}"


def _extracted_source(
    workflow: Workflow,
    line_length: int = DEFAULT_LINE_LENGTH,
    functions: dict[str, NewFunction] | None = None,
) -> str:
    parts = []
    for extracted in workflow.extracted:
        python = functions[extracted.function].python if functions else extracted.function
        doc = docstring(
            [
                f"One step of the {workflow.name} state machine (extracted by untangle from "
                f"{_lines_of(extracted)})."
            ],
            "    ",
            line_length,
        )
        lines = [f"def {python}(event, context):", f"    {doc}"]
        # the handler's own `event` is read last: reading it into `event` earlier would hide
        # the payload the other parameters come from (`total = event["total"]` would then read
        # the execution input's `total`)
        for param in sorted(extracted.params, key=lambda name: name == "event"):
            lines.append(f"    {param} = event[{param!r}]")
        if extracted.body:
            lines += [f"    {line}" if line else "" for line in extracted.body.splitlines()]
            if len(extracted.outputs) == 1:
                lines.append(f"    return {extracted.outputs[0]}")
            elif extracted.outputs:
                fields = ", ".join(f"{name!r}: {name}" for name in extracted.outputs)
                lines.append(f"    return {{{fields}}}")
            parts.append("\n\n" + "\n".join(lines) + "\n")
            continue
        lines.append(
            f"    return {extracted.expression}"
            if extracted.target
            else f"    {extracted.expression}"
        )
        parts.append("\n\n" + "\n".join(lines) + "\n")
    return "".join(parts)


@dataclass(frozen=True)
class Rewrite:
    """A rewritten handler module, with the module-level names the rewrite removed (only the
    old handler body used them) and those it kept though nothing uses them now (their value
    may do something when the module loads)."""

    code: str
    removed: tuple[str, ...] = ()
    kept: tuple[str, ...] = ()


# the deepest syntax tree the rewriter is given; real handlers stay under 40
MAX_REWRITE_DEPTH = 150


def nesting_depth(source: str) -> int | None:
    """How deep the module's syntax tree is (None when `ast` cannot even parse it)."""
    import ast
    import warnings

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            tree = ast.parse(source)
    except (SyntaxError, RecursionError, MemoryError, ValueError):
        return None
    deepest = 0
    stack: list[tuple[ast.AST, int]] = [(tree, 0)]
    while stack:
        node, depth = stack.pop()
        deepest = max(deepest, depth)
        # `a or b or c` is one node to `ast`, a chain nested once per operand to LibCST
        step = len(node.values) if isinstance(node, ast.BoolOp) else 1
        stack.extend((child, depth + step) for child in ast.iter_child_nodes(node))
    return deepest


def rewrite_handler(
    source: str,
    handler: str,
    env_var: str,
    mode: str,
    workflow: str,
    extra: str,
    style: CodeStyle = DEFAULT_STYLE,
    keep: Iterable[str] = (),
) -> str:
    """The handler module with the handler as a starter of its state machine."""
    return rewrite(source, handler, env_var, mode, workflow, extra, style, keep).code


def rewrite(
    source: str,
    handler: str,
    env_var: str,
    mode: str,
    workflow: str,
    extra: str,
    style: CodeStyle = DEFAULT_STYLE,
    keep: Iterable[str] = (),
) -> Rewrite:
    """Run the starter codemod on `source` in a child process: LibCST's native parser can crash
    the process on a file nested deeply enough (a 100,000-term boolean chain), and that must
    cost one workflow, not the run. A MigrationError (with the line where known) when the
    handler cannot be rewritten."""
    from untangle.isolated import IsolatedFailure, run_isolated

    depth = nesting_depth(source)
    if depth is None or depth > MAX_REWRITE_DEPTH:
        # LibCST recurses once or more per level: deeper modules crash it or take minutes
        raise MigrationError(
            "cannot rewrite the handler: its module nests expressions or statements "
            f"{'too' if depth is None else f'{depth} levels'} deep (the rewriter handles "
            f"{MAX_REWRITE_DEPTH})"
        )
    # imported here, once: each child then starts with them (an import in the child would cost
    # every workflow the import, and could wait forever on a lock another thread held at fork)
    import codemods.starter  # noqa: F401

    try:
        outcome = run_isolated(
            _rewrite_in_child, source, handler, env_var, mode, workflow, extra, style, tuple(keep)
        )
    except IsolatedFailure as exc:
        if exc.kind == "RecursionError":
            raise MigrationError(
                "cannot rewrite the handler: its module is nested too deeply for the rewriter"
            ) from None
        if exc.kind == "SyntaxError":
            raise MigrationError(
                f"cannot rewrite the handler: the rewritten module does not compile ({exc})"
            ) from None
        raise MigrationError(f"cannot rewrite the handler: {exc}") from None
    if isinstance(outcome, Rewrite):
        return outcome
    message, line = outcome
    raise MigrationError(message, line)


def _rewrite_in_child(
    source: str,
    handler: str,
    env_var: str,
    mode: str,
    workflow: str,
    extra: str,
    style: CodeStyle,
    keep: tuple[str, ...],
) -> Rewrite | tuple[str, int | None]:
    """The starter codemod on `source`; a refusal as data, (message, line), since an exception
    crosses from the child as text only. The file keeps its line ending (the one most of its
    lines have, when they differ)."""
    from libcst.codemod import CodemodContext, transform_module
    from libcst.codemod import TransformFailure as Failure

    from codemods.starter import ReplaceHandlerWithStarter

    newline = dominant_newline(source)
    command = ReplaceHandlerWithStarter(
        CodemodContext(),
        handler,
        env_var,
        mode,
        workflow,
        extra,
        line_length=style.line_length,
        first_party=style.first_party,
        keep=tuple(keep),
    )
    result = transform_module(command, re.sub(r"\r\n?", "\n", source))
    if isinstance(result, Failure):
        return (f"cannot rewrite the handler: {result.error}".splitlines()[0], None)
    if command.problem is not None:
        return (str(command.problem).splitlines()[0], command.problem.line)
    code = str(getattr(result, "code", source))
    compile(code, "<rewritten handler>", "exec")
    orphans = command.orphans
    return Rewrite(
        code.replace("\n", newline),
        tuple(orphans.removed) if orphans else (),
        tuple(orphans.kept) if orphans else (),
    )


def dominant_newline(text: str) -> str:
    """The line ending most lines of `text` end with (`\\n` for a text without any)."""
    crlf = text.count("\r\n")
    counts = {"\n": text.count("\n") - crlf, "\r\n": crlf, "\r": text.count("\r") - crlf}
    best = max(counts.values())
    return "\n" if best == 0 else next(k for k, v in counts.items() if v == best)


def unified_diff(migration: Migration) -> str:
    """One `git diff`-like patch for every changed and new file, paths relative to the root."""
    chunks: list[str] = []
    for change in migration.changes:
        relative = os.path.relpath(change.path, migration.root).replace(os.sep, "/")
        old = change.old.splitlines(keepends=True) if change.old is not None else []
        new = change.new.splitlines(keepends=True)
        chunks.extend(
            difflib.unified_diff(
                old,
                new,
                fromfile="/dev/null" if change.old is None else f"a/{relative}",
                tofile=f"b/{relative}",
            )
        )
    return "".join(
        line if line.endswith("\n") else line + "\n\\ No newline at end of file\n"
        for line in chunks
    )


def apply_migration(migration: Migration) -> None:
    """Write every change or none, as one transaction that survives a kill at any point (a
    journal in the project root, rolled back by the next command: see `untangle.journal`)."""
    from untangle.journal import Replacement, WriteRefused, write_files

    replacements = [
        Replacement(
            change.path,
            None if change.old is None else change.old.encode(change.encoding),
            change.new.encode(change.encoding),
        )
        for change in migration.changes
    ]
    try:
        write_files(migration.root, replacements)
    except WriteRefused as exc:
        raise MigrationError(str(exc)) from None
