"""The migrate recipe: planned workflows → the file changes that make them real.

`compute_migration` is pure (it is given file contents, returns new contents); `check_migration`
runs the validators; `apply_migration` is the only part that writes, all or nothing.
"""

from __future__ import annotations

import contextlib
import difflib
import json
import os
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

import yaml

from untangle import sam
from untangle.facts.source import text_encoding
from untangle.files import read_text
from untangle.plan import PlannedWorkflow
from untangle.templates import TemplateHandler, one_line
from untangle.workflow.asl import placeholders
from untangle.workflow.ir import Extraction, Reason, Workflow

ReadText = Callable[[str], str | None]  # absolute path → text, None when the file does not exist


class MigrationError(Exception):
    """A migration that must not be written (validation failed, a path escapes the root …)."""


class TemplateProblem(MigrationError):
    """The template a workflow would be added to cannot be read or edited: reported at the
    template's line, not the handler's."""

    def __init__(self, path: str, line: int, message: str) -> None:
        super().__init__(message)
        self.path = path
        self.line = line


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

    def contents(self) -> dict[str, str]:
        return {c.path: c.new for c in self.changes}


@dataclass
class _Edits:
    """Files as they will be, while several workflows edit them in turn."""

    read: ReadText
    current: dict[str, str | None] = field(default_factory=dict)
    original: dict[str, str | None] = field(default_factory=dict)

    def get(self, path: str) -> str | None:
        if path not in self.current:
            text = self.read(path)
            self.current[path] = text
            self.original[path] = text
        return self.current[path]

    def set(self, path: str, text: str) -> None:
        self.get(path)
        self.current[path] = text

    def changes(self) -> list[FileChange]:
        return [
            FileChange(path, self.original[path], text, _encoding_of(path, text))
            for path, text in sorted(self.current.items())
            if text is not None and text != self.original[path]
        ]


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
) -> Migration:
    root = os.path.abspath(root)
    migration = Migration(root)
    edits = _Edits(read)
    for item in planned:
        workflow = item.workflow
        if item.asl is None or workflow.graph is None:
            migration.skipped.append((workflow, workflow.reasons))
            continue
        saved = dict(edits.current)
        try:
            how = _migrate_one(item, templates, edits, root, recommendation(item.asl))
        except TemplateProblem as exc:
            edits.current = saved  # a workflow is migrated whole or not at all
            migration.skipped.append((workflow, (Reason(exc.path, exc.line, str(exc)),)))
            continue
        except (MigrationError, ValueError, yaml.YAMLError) as exc:
            edits.current = saved
            line = workflow.graph.states[0].span.line if workflow.graph.states else 1
            migration.skipped.append((workflow, (Reason(workflow.path, line, str(exc)),)))
            continue
        migration.migrated.append((workflow, how))
    migration.changes = edits.changes()
    for change in migration.changes:
        inside(change.path, root)
    return migration


def inside(path: str, root: str) -> str:
    """`path`, resolved, when it lies under `root`; a MigrationError otherwise."""
    real_root = os.path.realpath(root)
    real = os.path.realpath(path)
    if os.path.commonpath([real, real_root]) != real_root:
        raise MigrationError(f"refusing to write {path}: outside the project root {root}")
    return real


def _env_name(workflow: Workflow) -> str:
    snake = re.sub(r"(?<!^)(?=[A-Z])", "_", re.sub(r"[^0-9A-Za-z]", "", workflow.name))
    return f"{snake.upper()}_STATE_MACHINE_ARN"


def _migrate_one(
    item: PlannedWorkflow,
    templates: list[TemplateHandler],
    edits: _Edits,
    root: str,
    machine_type: str,
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

    # the orchestrator becomes a thin starter; extracted computations become its neighbours
    source = edits.get(handler_path)
    if source is None:
        raise MigrationError(f"cannot read {workflow.path}")
    extra = _extracted_source(workflow)
    mode = "sync" if machine_type == "Express" else "async"
    env_var = _env_name(workflow)
    rewritten = rewrite_handler(source, handler_name, env_var, mode, workflow.name, extra)
    encoding = _encoding_of(handler_path, rewritten)
    try:
        rewritten.encode(encoding)
    except (LookupError, UnicodeEncodeError) as exc:
        raise MigrationError(
            f"the rewritten handler cannot be written in {encoding}, the encoding its coding "
            f"line declares ({exc})"
        ) from exc
    edits.set(handler_path, rewritten)

    # the template
    text = edits.get(template_path)
    orchestrator = declared[0].logical_id if declared else None
    try:
        return _add_to_template(
            item,
            edits,
            template_path,
            text,
            orchestrator,
            handler_path,
            machine,
            definition_path,
            machine_type,
            env_var,
            mode,
            handler_name,
        )
    except (ValueError, yaml.YAMLError) as exc:  # the template could not be read or edited
        raise _template_problem(template_path, text, orchestrator, exc) from exc


def _add_to_template(
    item: PlannedWorkflow,
    edits: _Edits,
    template_path: str,
    text: str | None,
    orchestrator: str | None,
    handler_path: str,
    machine: str,
    definition_path: str,
    machine_type: str,
    env_var: str,
    mode: str,
    handler_name: str,
) -> str:
    workflow = item.workflow
    assert item.asl is not None
    app_root = os.path.dirname(template_path)
    template = sam.Template.parse(text) if text else None
    existing = set(template.resource_ids()) if template else set()
    substitutions = _substitutions(item, template, orchestrator, existing, workflow)
    resources = sam.render_state_machine(
        name=machine,
        machine_type="EXPRESS" if machine_type == "Express" else "STANDARD",
        definition_uri=os.path.relpath(definition_path, app_root).replace(os.sep, "/"),
        substitutions=substitutions,
        policies=_invoke_policies(workflow, existing, template),
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
            name=sam.logical_id(extracted.function, "Function"),
            code_uri=os.path.relpath(code_dir, app_root).replace(os.sep, "/") + "/",
            handler=f"{handler_module}.{extracted.function}",
            runtime="python3.12",
            inherited=inherited,
        )
    if machine in existing:
        raise _template_problem(
            template_path,
            text,
            machine,
            MigrationError(f"{template_path} already declares {machine}"),
        )
    if text is None:
        edits.set(template_path, sam.new_template(resources))
        how = (
            f"{workflow.name}: new template.yaml with the state machine; declare the "
            f"orchestrator there and give it {env_var} = the machine's ARN"
        )
    else:
        text = sam.add_resources(text, resources)
        if orchestrator is not None:
            text = sam.add_environment(text, orchestrator, env_var, f"!Ref {machine}")
            text = sam.add_policy(
                text,
                orchestrator,
                [
                    "- Statement:",
                    "    - Effect: Allow",
                    "      Action:",
                    "        - states:StartExecution",
                    "        - states:StartSyncExecution",
                    f"      Resource: !Ref {machine}",
                ],
            )
        edits.set(template_path, text)
        how = (
            f"{workflow.name}: {machine_type} state machine; the orchestrator "
            f"({orchestrator or handler_name}) keeps its name and event sources and now "
            + (
                "runs the machine with StartSyncExecution, so synchronous callers still "
                "get the answer"
                if mode == "sync"
                else "starts the machine with StartExecution (Standard: it may wait longer than "
                "a Lambda can run) and answers with the execution ARN"
            )
        )
    return how


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


def _substitutions(
    item: PlannedWorkflow,
    template: sam.Template | None,
    orchestrator: str | None,
    existing: set[str],
    workflow: Workflow,
) -> list[tuple[str, str]]:
    assert item.asl is not None
    displays = {f.placeholder.strip("${}"): f.display for f in workflow.functions}
    extracted = {sam.logical_id(e.function, "FunctionArn") for e in workflow.extracted}
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
        if (name.endswith("Arn") and name[:-3] in existing) or name in extracted:
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
    workflow: Workflow, existing: set[str], template: sam.Template | None
) -> list[str]:
    policies = []
    made = {extracted.function for extracted in workflow.extracted}
    for function in workflow.functions:
        if function.display in made:
            continue  # a new function: referenced below
        logical = function.placeholder.strip("${}").removesuffix("Arn")
        if logical in existing:
            policies.append(f"!Ref {logical}")
        else:
            policies.append(sam.yaml_scalar(function.display))
    for extracted in workflow.extracted:
        policies.append(f"!Ref {sam.logical_id(extracted.function, 'Function')}")
    return sorted(dict.fromkeys(policies))


def _lines_of(extracted: Extraction) -> str:
    if extracted.end_line > extracted.line:
        return f"lines {extracted.line}-{extracted.end_line}"
    return f"line {extracted.line}"


def _extracted_source(workflow: Workflow) -> str:
    parts = []
    for extracted in workflow.extracted:
        lines = [
            f"def {extracted.function}(event, context):",
            f'    """One step of the {workflow.name} state machine (extracted by untangle from '
            f'{_lines_of(extracted)})."""',
        ]
        for param in extracted.params:
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
    source: str, handler: str, env_var: str, mode: str, workflow: str, extra: str
) -> str:
    """Run the codemods in a child process: LibCST's native parser can crash the process on a
    file nested deeply enough (a 100,000-term boolean chain), and that must cost one workflow,
    not the run. A MigrationError when the handler cannot be rewritten."""
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
    import libcst.codemod.commands.remove_unused_imports  # noqa: F401

    import codemods.starter  # noqa: F401

    try:
        return run_isolated(_rewrite_in_process, source, handler, env_var, mode, workflow, extra)
    except IsolatedFailure as exc:
        if exc.kind == "MigrationError":  # LibCST's syntax errors quote the code below
            raise MigrationError(exc.message.splitlines()[0]) from None
        if exc.kind == "RecursionError":
            raise MigrationError(
                "cannot rewrite the handler: its module is nested too deeply for the rewriter"
            ) from None
        if exc.kind == "SyntaxError":
            raise MigrationError(
                f"cannot rewrite the handler: the rewritten module does not compile ({exc})"
            ) from None
        raise MigrationError(f"cannot rewrite the handler: {exc}") from None


def _rewrite_in_process(
    source: str, handler: str, env_var: str, mode: str, workflow: str, extra: str
) -> str:
    """Run the codemods: the starter, then libcst's unused-import removal."""
    from libcst.codemod import CodemodContext, transform_module
    from libcst.codemod import TransformFailure as Failure
    from libcst.codemod.commands.remove_unused_imports import RemoveUnusedImportsCommand
    from libcst.codemod.visitors import AddImportsVisitor

    from codemods.starter import ReplaceHandlerWithStarter

    context = CodemodContext()
    command = ReplaceHandlerWithStarter(context, handler, env_var, mode, workflow, extra)
    result = transform_module(command, source)
    if isinstance(result, Failure):
        raise MigrationError(f"cannot rewrite the handler: {result.error}")
    code = getattr(result, "code", source)
    del AddImportsVisitor
    cleaned = transform_module(RemoveUnusedImportsCommand(CodemodContext()), code)
    code = getattr(cleaned, "code", code)
    compile(code, "<rewritten handler>", "exec")
    return str(code)


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


@dataclass(frozen=True)
class Validation:
    """What the validators said about a migration, and which of them could not run here."""

    problems: list[str]
    skipped: list[str]


def check_migration(migration: Migration) -> Validation:
    """Every validator on what would be written: Python compiles, templates pass the SAM
    transform and cfn-lint, definitions pass asl-validator and cfn-lint E3601. A validator that
    is not installed (Node.js, asl-validator, cfn-lint, the SAM translator) is skipped and named."""
    from untangle.validate import ValidatorUnavailable, asl_errors, cfn_lint_errors

    skipped: set[str] = set()

    def asl(definitions: list[dict[str, Any]]) -> list[list[str]]:
        try:
            return asl_errors(definitions)
        except ValidatorUnavailable as exc:
            skipped.add(f"asl-validator ({exc})")
            return [[] for _ in definitions]

    def cfn_lint(definition: dict[str, Any]) -> list[str]:
        try:
            return cfn_lint_errors(definition)
        except ValidatorUnavailable:
            skipped.add("cfn-lint (pip install cfn-lint)")
            return []

    problems = _check(migration, asl, cfn_lint, skipped)
    return Validation(problems, sorted(skipped))


def _check(
    migration: Migration, asl_errors: Any, cfn_lint_errors: Any, skipped: set[str]
) -> list[str]:
    problems: list[str] = []
    contents = migration.contents()
    definitions: list[tuple[str, dict[str, Any]]] = []
    for path, text in contents.items():
        relative = os.path.relpath(path, migration.root)
        if path.endswith(".py"):
            try:
                compile(text, path, "exec")
            except SyntaxError as exc:
                problems.append(
                    f"{relative}:{exc.lineno}: rewritten code does not compile: {exc.msg}"
                )
        elif path.endswith(".asl.json"):
            definitions.append((relative, json.loads(text)))
            problems += [f"{relative}: {e}" for e in cfn_lint_errors(json.loads(text))]
    for (relative, _), errors in zip(definitions, asl_errors([d for _, d in definitions])):
        problems += [f"{relative}: {e}" for e in errors]
    for path, text in contents.items():
        if os.path.basename(path) in ("template.yaml", "template.yml"):
            relative = os.path.relpath(path, migration.root)
            problems += [
                f"{relative}: {e}"
                for e in sam.validate(text, os.path.dirname(path), contents, skipped)
            ]
    return problems


def apply_migration(migration: Migration) -> None:
    """Write every change or none: stage each file next to its target, then swap them in; on any
    failure, the files already swapped get their old contents back."""
    staged: list[tuple[str, str, FileChange]] = []
    created_dirs: list[str] = []
    try:
        for change in migration.changes:
            target = inside(change.path, migration.root)
            on_disk = read_text(target)
            if on_disk != change.old:
                raise MigrationError(f"{change.path} changed since the migration was computed")
            directory = os.path.dirname(target)
            missing = []
            probe = directory
            while not os.path.isdir(probe):
                missing.append(probe)
                probe = os.path.dirname(probe)
            os.makedirs(directory, exist_ok=True)
            created_dirs += reversed(missing)
            temp = os.path.join(directory, f".{os.path.basename(target)}.untangle-tmp")
            with open(temp, "w", encoding=change.encoding, newline="") as handle:
                handle.write(change.new)
                handle.flush()
                os.fsync(handle.fileno())
            staged.append((target, temp, change))
    except BaseException:
        for _, temp, _ in staged:
            _remove(temp)
        for directory in reversed(created_dirs):
            _rmdir(directory)
        raise
    done: list[tuple[str, FileChange]] = []
    try:
        for target, temp, change in staged:
            os.replace(temp, target)
            done.append((target, change))
    except BaseException:
        for target, change in reversed(done):
            if change.old is None:
                _remove(target)
            else:
                with open(target, "w", encoding=change.encoding, newline="") as handle:
                    handle.write(change.old)
        for _, temp, _ in staged:
            _remove(temp)
        for directory in reversed(created_dirs):
            _rmdir(directory)
        raise


def _remove(path: str) -> None:
    with contextlib.suppress(FileNotFoundError):
        os.remove(path)


def _rmdir(path: str) -> None:
    with contextlib.suppress(OSError):
        os.rmdir(path)
