"""The verify recipe: run the original orchestrator and the state machine `untangle migrate` would
write on the same events, and compare what they answer.

For an app directory: load the tree, plan it, compute the migration in memory (exactly what the
dry run of `untangle migrate` prints), then for every migrated workflow and every event run

- the original orchestrating handler (:func:`untangle.engine.original.run_original`), its Lambda
  invokes served by the callees of the app's ``template.yaml``;
- the migrated definition (``statemachine/<Name>.asl.json`` from the migration's changes) on
  moto's Step Functions interpreter (:class:`untangle.engine.machine.Engine`) with the same
  callees;

and compare the status, the output and the error name. Outputs are compared as JSON values: a
string holding a JSON document (a ``body`` built with ``json.dumps``) is compared parsed, since the
engine's JSON has one number type (``3.0`` prints as ``3``) and its own spacing; such a difference
is reported in ``notes``, as is a difference in the seconds waited.

This runs user code: :func:`verify_in_subprocess` (what ``untangle verify`` uses) does it in a
child process (``python -m untangle.verify``, a JSON request in a file, its messages on a pipe of
their own), so the app's imports, module globals and ``sys.path`` changes never touch the CLI's
process, and whatever the app prints or however it ends, each event gets an answer: a timeout,
an exit, a crash, a memory error or a blocked connection is that event's verdict. The CLI's
process prepares the workflows (planning and migrating read the app, they do not run it) while
the child starts moto, and hands them over in two steps (:class:`_PlannedApp`): the planned
workflows, which the child runs while the CLI rewrites the handlers, then the migrated ones;
the child runs every event of the app.

Not verified (reported with ``skipped`` set, never as equivalent): workflows that are not
migrated, workflows whose orchestrator no template declares (the callees come from the
template), and orchestrators whose module cannot be imported (a dependency of the app missing).
The new single-purpose functions a migration extracts are run from the rewritten handler module.
"""

from __future__ import annotations

import contextlib
import gc
import io
import json
import os
import re
import select
import shutil
import signal
import subprocess
import sys
import tarfile
import tempfile
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, field, replace
from typing import TYPE_CHECKING, Any

from untangle.engine import guard

if TYPE_CHECKING:
    from untangle.engine.machine import Engine, MachineRun
    from untangle.engine.original import OriginalRun

_PLACEHOLDER = re.compile(r"\$\{([^}]+)\}")


@dataclass(frozen=True)
class VerifyResult:
    """One (workflow, event) comparison. ``original`` and ``machine`` hold ``status``, ``output``
    and ``error``; ``history`` is the machine's (see ``MachineRun.history``), ``calls`` the
    original's ``[function, payload]`` invokes. ``skipped`` says why nothing was run."""

    workflow: str
    event: str
    equivalent: bool
    original: dict[str, Any]
    machine: dict[str, Any]
    history: list[dict[str, Any]] = field(default_factory=list)
    calls: list[list[Any]] = field(default_factory=list)
    original_waited_seconds: float = 0.0
    machine_waited_seconds: float = 0.0
    skipped: str | None = None
    notes: list[str] = field(default_factory=list)
    # not equivalent, in a way plan said it would be (a Task failing where the original carried
    # on with an unchecked function failure): why, else None
    documented: str | None = None
    # the run could not be compared: "timeout", "out-of-memory", "exited", "crashed" or
    # "network" (a blocked connection), with ``reason`` saying what happened
    verdict: str | None = None
    reason: str | None = None

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> VerifyResult:
        return cls(**data)


@dataclass
class PreparedWorkflow:
    """A migrated workflow, ready to run: its definition, callees and substitutions."""

    name: str
    definition: dict[str, Any] | None = None
    orchestrator: Any = None
    functions: dict[str, Any] = field(default_factory=dict)
    substitutions: dict[str, str] = field(default_factory=dict)
    skipped: str | None = None
    # Tasks whose function failure the original never checked (the machine fails there)
    unchecked: dict[str, str] = field(default_factory=dict)  # state name → function
    # the new functions it extracts are not known until the migration rewrote its handler:
    # it runs only once they are (see _PlannedApp)
    awaits_migration: bool = False

    def to_json(self) -> dict[str, Any]:
        """As JSON, for the child process; a function known by several names (its logical id,
        its ARN placeholder …) stays one, imported once."""
        unique: dict[int, int] = {}  # id(function) → its index in "functions"
        functions: list[dict[str, Any]] = []
        for function in [*self.functions.values(), self.orchestrator]:
            if function is not None and id(function) not in unique:
                unique[id(function)] = len(functions)
                functions.append(function.to_json())
        return {
            "name": self.name,
            "definition": self.definition,
            "functions": functions,
            "names": {name: unique[id(function)] for name, function in self.functions.items()},
            "orchestrator": None if self.orchestrator is None else unique[id(self.orchestrator)],
            "substitutions": self.substitutions,
            "skipped": self.skipped,
            "unchecked": self.unchecked,
            "awaits_migration": self.awaits_migration,
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> PreparedWorkflow:
        from untangle.engine.original import TemplateFunction

        functions = [TemplateFunction.from_json(item) for item in data["functions"]]
        index = data["orchestrator"]
        return cls(
            data["name"],
            data["definition"],
            None if index is None else functions[index],
            {name: functions[i] for name, i in data["names"].items()},
            dict(data["substitutions"]),
            data["skipped"],
            dict(data["unchecked"]),
            bool(data.get("awaits_migration", False)),
        )


def load_events(app_dir: str, files: Sequence[str] = ()) -> list[tuple[str, Any]]:
    """``files`` (named as given), or every ``events/*.json`` under ``app_dir`` (named relative
    to it). Raises OSError / ValueError for an unreadable or invalid file."""
    if files:
        paths = [(f, f) for f in files]
    else:
        folder = os.path.join(app_dir, "events")
        names = (
            sorted(n for n in os.listdir(folder) if n.endswith(".json"))
            if os.path.isdir(folder)
            else []
        )
        paths = [(f"events/{n}", os.path.join(folder, n)) for n in names]
    events = []
    for name, path in paths:
        with open(path, encoding="utf-8") as handle:
            try:
                events.append((name, json.load(handle)))
            except json.JSONDecodeError as exc:
                raise ValueError(f"{path}: not JSON ({exc})") from exc
    return events


def prepare(
    app_dir: str,
    query_language: str = "jsonata",
    keep_unchecked_errors: bool = False,
    handlers: tuple[str, ...] = (),
    scratch: str | None = None,
) -> list[PreparedWorkflow]:
    """Plan and migrate ``app_dir`` in memory; the workflows with what running them needs
    (only those of ``handlers`` when given; :class:`UnknownHandler` for a name that selects
    none). Copies of code (the migrated module of a workflow that extracts functions) go
    under ``scratch`` (default: a new temporary folder), which the caller removes."""
    app = _PlannedApp.of(app_dir, query_language, keep_unchecked_errors, handlers)
    return app.in_order(app.migrated(scratch))


@dataclass
class _PlannedApp:
    """An app planned for verify, in two steps: :meth:`early`, the workflows as the plan
    makes them (what a successful migration gives, but the new functions a workflow extracts,
    which live in its rewritten handler), and :meth:`migrated`, the same workflows once
    `migrate` ran (whose rewrite of a handler may refuse a workflow, leaving it not migrated).
    Both lists are in the plan's order; :meth:`in_order` puts them in the order verify reports
    them (the workflows not migrated first, as the migration lists them)."""

    root: str
    tree: Any
    planned: list[Any]
    # after `migrate --write`: the app whose statemachine/ folder holds the machines to run
    # (the plan's definitions are what the migration wrote)
    written_in: str | None = None
    _early: list[PreparedWorkflow] | None = None
    _texts: list[str | None] = field(default_factory=list)  # the definition each early one read
    _order: list[int] | None = None

    @classmethod
    def of(
        cls,
        app_dir: str,
        query_language: str = "jsonata",
        keep_unchecked_errors: bool = False,
        handlers: tuple[str, ...] = (),
    ) -> _PlannedApp:
        from untangle.files import read_source
        from untangle.plan import PlanOptions, orchestrators, plan, unknown_handlers
        from untangle.scan import ScanOptions, load_tree

        root = os.path.abspath(app_dir)
        tree = load_tree([root], ScanOptions(cache_dir=None))
        unknown = unknown_handlers(tree.program, handlers)
        if unknown:
            found = ", ".join(orchestrators(tree.program)) or "none"
            raise UnknownHandler(
                f"no handler named {unknown[0]!r} invokes a Lambda function under {app_dir} "
                f"(the handlers that do: {found})"
            )
        options = PlanOptions(query_language, handlers, keep_unchecked_errors)
        return cls(root, tree, plan(tree.program, tree.templates, read_source, options))

    def early(self) -> list[PreparedWorkflow]:
        """The workflows before the migration: a workflow that extracts functions has
        ``awaits_migration`` set (its functions come with :meth:`migrated`)."""
        return self._written(self._planned_early())

    def _planned_early(self) -> list[PreparedWorkflow]:
        if self._early is None:
            self._early, self._texts = [], []
            for item in self.planned:
                workflow = item.workflow
                if item.asl is None or workflow.graph is None:
                    # what the migration says of a workflow plan did not convert
                    self._early.append(_not_migrated(workflow, workflow.reasons))
                    self._texts.append(None)
                    continue
                text = _definition_text(item.asl)
                self._early.append(self._ready(workflow, text, None))
                self._texts.append(text)
        return self._early

    def migrated(self, scratch: str | None) -> list[PreparedWorkflow]:
        """The workflows as `migrate` leaves them, in the plan's order; a workflow the
        migration agrees with is the early one (a copy, with its new functions)."""
        from untangle.files import read_text
        from untangle.migrate import compute_migration

        early = self._planned_early()
        migration = compute_migration(self.planned, self.tree.templates, read_text, self.root)
        contents = migration.contents()
        index = {id(item.workflow): i for i, item in enumerate(self.planned)}
        settled = list(early)
        self._order = []
        for workflow, reasons in migration.skipped:
            i = index[id(workflow)]
            self._order.append(i)
            settled[i] = _not_migrated(workflow, reasons)
        for workflow, _how in migration.migrated:
            i = index[id(workflow)]
            self._order.append(i)
            text = contents.get(self._definition_path(workflow) or "")
            names = migration.new_functions.get((workflow.path, workflow.handler), {})

            def extracted(
                environment: Mapping[str, str], workflow: Any = workflow, names: Any = names
            ) -> dict[str, Any]:
                handler_path = os.path.abspath(workflow.path)
                return _extracted_functions(
                    workflow, handler_path, contents, scratch, names, environment
                )

            if text is not None and text == self._texts[i]:
                settled[i] = replace(early[i], functions=dict(early[i].functions))
                if early[i].awaits_migration:
                    settled[i].awaits_migration = False
                    orchestrator = early[i].orchestrator
                    assert orchestrator is not None  # set before it awaited the migration
                    settled[i].functions.update(extracted(orchestrator.environment))
            else:
                settled[i] = self._ready(workflow, text, extracted)
        return self._written(settled)

    def _written(self, workflows: list[PreparedWorkflow]) -> list[PreparedWorkflow]:
        """``workflows`` running the machines written under ``written_in``, when set."""
        if self.written_in is None:
            return workflows
        found = []
        for item in workflows:
            if item.definition is not None:
                written = os.path.join(self.written_in, "statemachine", f"{item.name}.asl.json")
                if not os.path.exists(written):
                    item = replace(item, skipped=f"not verified: {written} was not written")
                else:
                    with open(written, encoding="utf-8") as handle:
                        item = replace(item, definition=json.load(handle))
            found.append(item)
        return found

    def in_order(self, workflows: Sequence[PreparedWorkflow]) -> list[PreparedWorkflow]:
        """``workflows`` (one per planned workflow) in the order the migration reports them."""
        assert self._order is not None, "migrated() first"
        return [workflows[i] for i in self._order]

    def position(self) -> dict[int, int]:
        """Each planned workflow's index in :meth:`in_order`."""
        assert self._order is not None, "migrated() first"
        return {i: place for place, i in enumerate(self._order)}

    def _declared(self, workflow: Any) -> Any:
        handler_path = os.path.abspath(workflow.path)
        handler_name = workflow.handler.rsplit(".", 1)[-1]
        declared = [
            t for t in self.tree.templates if t.file == handler_path and t.function == handler_name
        ]
        return declared[0] if declared else None

    def _definition_path(self, workflow: Any) -> str | None:
        from untangle import sam

        declared = self._declared(workflow)
        if declared is None:
            return None
        return os.path.join(
            os.path.dirname(os.path.abspath(declared.template)),
            "statemachine",
            f"{sam.logical_id(workflow.name)}.asl.json",
        )

    def _ready(
        self,
        workflow: Any,
        text: str | None,
        extracted: Callable[[Mapping[str, str]], dict[str, Any]] | None,
    ) -> PreparedWorkflow:
        """A migrated workflow whose definition is ``text`` (None: the migration wrote none),
        with its new functions from ``extracted`` (None: not known yet)."""
        from untangle.engine.original import functions_from_template

        item = PreparedWorkflow(workflow.name, unchecked=_unchecked_tasks(workflow))
        declared = self._declared(workflow)
        definition_path = self._definition_path(workflow)
        if declared is None or definition_path is None:
            item.skipped = "not verified: no template declares the orchestrator"
            return item
        if text is None:
            item.skipped = f"not verified: the migration writes no {definition_path}"
            return item
        item.definition = json.loads(text)
        item.functions = dict(functions_from_template(os.path.abspath(declared.template)))
        orchestrator = item.functions.get(declared.logical_id)
        if orchestrator is None:
            item.skipped = f"not verified: {declared.logical_id} has no local code"
            return item
        item.orchestrator = orchestrator
        if workflow.extracted:
            # the new single-purpose functions live in the rewritten handler module: loaded
            # from a copy of the code folder holding the migrated module
            if extracted is None:
                item.awaits_migration = True
            else:
                item.functions.update(extracted(orchestrator.environment))
        defaults: dict[str, Any] = dict(workflow.env_defaults)
        environment: dict[str, Any] = dict(getattr(orchestrator, "environment", {}))
        item.substitutions = {
            name: environment.get(name, defaults.get(name, ""))
            for name in set(_PLACEHOLDER.findall(text))
            if name in environment or name in defaults
        }
        return item


def _definition_text(asl: Any) -> str:
    # as `untangle migrate` writes statemachine/<Name>.asl.json
    return json.dumps(asl, indent=2) + "\n"


def _not_migrated(workflow: Any, reasons: Sequence[Any]) -> PreparedWorkflow:
    why = "; ".join(r.message for r in reasons) or "not converted"
    return PreparedWorkflow(workflow.name, skipped=f"not migrated: {why}")


def _unchecked_tasks(workflow: Any) -> dict[str, str]:
    from untangle.workflow.ir import Task, all_states

    if workflow.graph is None:
        return {}
    return {
        state.name: state.function.display
        for state in all_states(workflow.graph)
        if isinstance(state, Task) and state.unchecked
    }


def _documented(workflow: PreparedWorkflow, original: dict[str, Any], machine: Any) -> str | None:
    """The machine failed in a Task whose function failure the original never checked, where
    the original went on: the difference plan noted on that invoke. The original may fail
    later on that payload (`payload["name"]`: KeyError), with its own error."""
    if machine.status != "FAILED":
        return None
    if original["status"] == "FAILED" and original.get("error") == machine.error:
        return None
    open_states: list[str] = []
    for event in machine.history:
        if event["type"].endswith("Entered"):
            open_states.append(event["state"])
        elif event["state"] in open_states:
            open_states.remove(event["state"])
    failed = [name for name in open_states if name in workflow.unchecked]
    if not failed:
        return None
    where = " or ".join(f"{name} ({workflow.unchecked[name]})" for name in failed)
    return (
        f"the machine failed with {machine.error} in {where}: the original never checked that "
        "function's FunctionError and carried on with its error payload "
        "(--keep-unchecked-errors keeps that behaviour)"
    )


def _extracted_functions(
    workflow: Any,
    handler_path: str,
    contents: Mapping[str, str],
    scratch: str | None,
    names: Mapping[str, Any],
    environment: Mapping[str, str],
) -> dict[str, Any]:
    """The new functions of `workflow`, keyed by their placeholder in the definition, each
    under the Python name and logical id migrate gave it (`names`), with the orchestrator's
    `environment`: migrate gives each new function the orchestrator's `Environment`, and the
    module they share may read it at import (`BUCKET = os.environ["BUCKET"]`)."""
    import shutil

    from untangle import sam
    from untangle.engine.original import TemplateFunction

    code_dir = os.path.dirname(handler_path)
    copy = os.path.join(tempfile.mkdtemp(prefix="untangle-extracted-", dir=scratch), "code")
    shutil.copytree(code_dir, copy, ignore=shutil.ignore_patterns("__pycache__"))
    module = os.path.splitext(os.path.basename(handler_path))[0]
    with open(os.path.join(copy, f"{module}.py"), "w", encoding="utf-8") as handle:
        handle.write(contents[handler_path])
    # imported on first call, within an event's run (and its limits), like the other functions
    return {
        sam.logical_id(item.function, "FunctionArn"): TemplateFunction(
            names[item.function].logical,
            names[item.function].python,
            copy,
            f"{module}.{names[item.function].python}",
            dict(environment),
        )
        for item in workflow.extracted
    }


def _side(run: OriginalRun | MachineRun) -> dict[str, Any]:
    return {"status": run.status, "output": run.output, "error": run.error}


def _as_json(value: Any) -> Any:
    """``value`` with every string that holds a JSON object or array parsed (recursively)."""
    if isinstance(value, dict):
        return {key: _as_json(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_as_json(item) for item in value]
    if isinstance(value, str) and value[:1] in ("{", "["):
        try:
            return _as_json(json.loads(value))
        except json.JSONDecodeError:
            return value
    return value


def _text_differences(left: Any, right: Any, where: str) -> list[str]:
    """Where two outputs hold different JSON text for the same JSON value."""
    if isinstance(left, dict) and isinstance(right, dict) and left.keys() == right.keys():
        return [
            note
            for key in left
            for note in _text_differences(left[key], right[key], f"{where}.{key}")
        ]
    if isinstance(left, list) and isinstance(right, list) and len(left) == len(right):
        return [
            note
            for index, (a, b) in enumerate(zip(left, right))
            for note in _text_differences(a, b, f"{where}[{index}]")
        ]
    if (
        isinstance(left, str)
        and isinstance(right, str)
        and left != right
        and _as_json(left) == _as_json(right) != left
    ):
        return [
            f"{where}: the same JSON value written differently "
            f"(original {left!r}, machine {right!r})"
        ]
    return []


def compare(
    workflow: PreparedWorkflow, event_name: str, event: Any, engine: Engine
) -> VerifyResult:
    """Run the original and the machine of ``workflow`` on ``event``; compare them."""
    from untangle.engine.original import run_original

    empty = {"status": None, "output": None, "error": None}
    if workflow.skipped is not None or workflow.definition is None:
        return _skipped_result(workflow, event_name)
    try:
        workflow.orchestrator.load()
    except Exception as exc:  # the app's own import fails (a missing dependency ...)
        why = f"not verified: cannot import the orchestrator ({type(exc).__name__}: {exc})"
        return VerifyResult(workflow.name, event_name, False, empty, empty, skipped=why)
    attempts, memory_errors = len(guard.network_attempts()), guard.memory_errors()
    original = run_original(workflow.orchestrator, workflow.functions, event)
    machine = engine.run(
        workflow.definition,
        workflow.functions,
        event,
        name=workflow.name,
        substitutions=workflow.substitutions,
    )
    left, right = _side(original), _side(machine)
    verdict, reason = _guarded(guard.network_attempts()[attempts:], memory_errors)
    equivalent = verdict is None and _as_json(left) == _as_json(right)
    documented = None if equivalent or verdict else _documented(workflow, left, machine)
    notes = _text_differences(left["output"], right["output"], "output")
    if original.waited_seconds != machine.waited_seconds:
        notes.append(
            f"waited {original.waited_seconds:g} s in the original, "
            f"{machine.waited_seconds:g} s in the machine"
        )
    return VerifyResult(
        workflow=workflow.name,
        event=event_name,
        equivalent=equivalent,
        documented=documented,
        notes=notes,
        original=left,
        machine=right,
        history=machine.history,
        calls=[[name, payload] for name, payload in original.calls],
        original_waited_seconds=original.waited_seconds,
        machine_waited_seconds=machine.waited_seconds,
        verdict=verdict,
        reason=reason,
    )


def _guarded(
    network_attempts: list[str], memory_errors_before: int
) -> tuple[str | None, str | None]:
    """What the guards of the run refused, as a verdict: the handlers' answers after a blocked
    connection or an allocation over the limit say nothing about the migration."""
    if guard.memory_errors() > memory_errors_before:
        return "out-of-memory", "a handler ran out of memory (MemoryError under --memory-limit)"
    if network_attempts:
        shown = ", ".join(dict.fromkeys(network_attempts))
        return "network", (
            f"blocked network access ({shown}): verify runs no network, moto answers the AWS "
            "calls in the process"
        )
    return None, None


def prepare_written(
    app_dir: str,
    original: str,
    query_language: str = "jsonata",
    keep_unchecked_errors: bool = False,
    handlers: tuple[str, ...] = (),
    scratch: str | None = None,
) -> list[PreparedWorkflow]:
    """After `migrate --write`: the machines written under ``app_dir/statemachine`` against the
    orchestrators as they were at git revision ``original`` (checked out into a temporary
    folder under ``scratch``, never over the working tree)."""
    app = _written_app(app_dir, original, query_language, keep_unchecked_errors, handlers, scratch)
    return app.in_order(app.migrated(scratch))


def _written_app(
    app_dir: str,
    original: str,
    query_language: str,
    keep_unchecked_errors: bool,
    handlers: tuple[str, ...],
    scratch: str | None,
) -> _PlannedApp:
    top = _git(app_dir, "rev-parse", "--show-toplevel").strip()
    relative = os.path.relpath(os.path.abspath(app_dir), top)
    checkout = tempfile.mkdtemp(prefix="untangle-original-", dir=scratch)
    archive = subprocess.run(
        ["git", "-C", top, "archive", "--format=tar", original, "--", relative],
        capture_output=True,
        check=False,
    )
    if archive.returncode != 0:
        raise ValueError(
            f"git archive {original}: {archive.stderr.decode(errors='replace').strip()}"
        )
    with tarfile.open(fileobj=io.BytesIO(archive.stdout)) as tar:
        tar.extractall(checkout, filter="data")
    old_app = os.path.join(checkout, relative)
    # planned again from the original code: what the written machine runs, and which of its
    # tasks fail where the original carried on (a documented difference)
    app = _PlannedApp.of(old_app, query_language, keep_unchecked_errors, handlers)
    app.written_in = app_dir
    return app


def _git(directory: str, *args: str) -> str:
    done = subprocess.run(
        ["git", "-C", directory, *args], capture_output=True, text=True, check=False
    )
    if done.returncode != 0:
        raise ValueError(f"git {' '.join(args)}: {done.stderr.strip()}")
    return done.stdout


def _planned(
    app_dir: str,
    original: str | None,
    query_language: str,
    keep_unchecked_errors: bool,
    handlers: tuple[str, ...],
    scratch: str,
) -> _PlannedApp:
    args = (query_language, keep_unchecked_errors, handlers)
    if original:
        return _written_app(app_dir, original, *args, scratch=scratch)
    return _PlannedApp.of(app_dir, *args)


def verify_app(
    app_dir: str,
    events: list[tuple[str, Any]],
    query_language: str = "jsonata",
    original: str | None = None,
    keep_unchecked_errors: bool = False,
    handlers: tuple[str, ...] = (),
) -> list[VerifyResult]:
    """Every migrated workflow of ``app_dir`` against every ``(name, event)``, in this process
    (it runs the app's code, with no limits: see :func:`verify_in_subprocess`). With
    ``original``, the written machines against the code at that git revision."""
    from untangle.engine.machine import Engine

    results: list[VerifyResult] = []
    with tempfile.TemporaryDirectory(prefix="untangle-verify-") as scratch:
        app = _planned(
            app_dir, original, query_language, keep_unchecked_errors, tuple(handlers), scratch
        )
        prepared = app.in_order(app.migrated(scratch))
        with Engine(timeout_seconds=_engine_timeout(DEFAULT_TIMEOUT_SECONDS)) as engine:
            _serve(prepared, events, set(), lambda message: None, results.append, engine)
    return results


class VerifyFailed(RuntimeError):
    """The child process could not verify (its stderr is the message)."""


class UnknownHandler(ValueError):
    """A `--handler` that selects no orchestrating handler of the app (a usage error)."""


DEFAULT_TIMEOUT_SECONDS = 60.0
DEFAULT_MEMORY_LIMIT_MIB = 2048
# starting moto and reading the prepared workflows run untangle's code, not the app's: a bound
# for a child that hangs there all the same
_PREPARE_SECONDS = 600.0


def _engine_timeout(timeout_seconds: float) -> float:
    # the machine's own bound stays above the event's: the parent kills a looping child first
    return 2 * timeout_seconds + 5


@dataclass
class _Request:
    """What the child verifies: the prepared workflows (:meth:`PreparedWorkflow.to_json`) on
    the events; ``done`` lists the (workflow, event) indexes an earlier child already answered
    for (the child is restarted after a timeout or a crash). ``final`` is False when the
    workflows are the plan's, before the migration (:meth:`_PlannedApp.early`): the migrated
    ones follow on the request pipe, and the child runs a workflow that ``awaits_migration``
    only with them."""

    events: list[tuple[str, Any]]
    workflows: list[dict[str, Any]] = field(default_factory=list)
    timeout_seconds: float = DEFAULT_TIMEOUT_SECONDS
    memory_limit_bytes: int = DEFAULT_MEMORY_LIMIT_MIB << 20
    done: list[tuple[int, int]] = field(default_factory=list)
    final: bool = True


def _serve(
    prepared: Sequence[PreparedWorkflow],
    events: Sequence[tuple[str, Any]],
    done: set[tuple[int, int]],
    send: Callable[[dict[str, Any]], None],
    answer: Callable[[VerifyResult], None],
    engine: Engine,
    migrated: Callable[[bool], list[PreparedWorkflow] | None] | None = None,
) -> bool:
    """Verify ``prepared`` on ``events`` but the (workflow, event) pairs ``done``: ``send``
    gets each step before it runs the app's code (``load``, an orchestrator's import;
    ``start``, an event), ``answer`` each :class:`VerifyResult`. Each message says whether
    the workflow it ran was ``final``: ``migrated``, when ``prepared`` are not the migrated
    workflows yet, gives them once they came (waiting for them when asked with True), else
    None. False when a workflow awaited them and they never came."""
    final = migrated is None
    for w in range(len(prepared)):
        todo = [e for e in range(len(events)) if (w, e) not in done]
        if not todo:
            continue
        if migrated is not None and not final:
            settled = migrated(prepared[w].awaits_migration)
            if settled is not None:
                prepared, final = settled, True
            elif prepared[w].awaits_migration:
                return False
        workflow = prepared[w]
        if workflow.skipped is None and workflow.orchestrator is not None:
            send({"kind": "load", "workflow": w, "name": workflow.name, "final": final})
            with contextlib.suppress(Exception):  # compare() reports a failed import
                workflow.orchestrator.load()
        for e in todo:
            name, event = events[e]
            send(
                {"kind": "start", "workflow": w, "event": e, "name": workflow.name, "final": final}
            )
            result = compare(workflow, name, event, engine)
            send(
                {
                    "kind": "result",
                    "workflow": w,
                    "event": e,
                    "result": result.to_json(),
                    "final": final,
                }
            )
            answer(result)
    return True


def verify_in_subprocess(
    app_dir: str,
    events: list[tuple[str, Any]],
    query_language: str = "jsonata",
    original: str | None = None,
    keep_unchecked_errors: bool = False,
    handlers: tuple[str, ...] = (),
    timeout_seconds: float = DEFAULT_TIMEOUT_SECONDS,
    memory_limit_mib: int = DEFAULT_MEMORY_LIMIT_MIB,
    meanwhile: Callable[[], object] = lambda: None,
) -> list[VerifyResult]:
    """:func:`verify_app` in a child process (``python -m untangle.verify``), with limits.

    The child starts at once (moto's start is most of a child's); this process plans the app
    (untangle's own code) meanwhile, and hands the child the planned workflows as soon as their
    machines exist, then migrates (the rewrite of each handler, with LibCST) while the child
    runs them, and hands it the migrated workflows: a workflow that extracts functions (which
    the rewritten handler holds) waits for them in the child, and a workflow the migration
    refused reads "not migrated", whatever its early run said. Then ``meanwhile`` runs, while
    the child goes on. The child runs only the app's code and the machines. Each event's run
    (and each orchestrator's import) gets ``timeout_seconds``; the child's address space is
    capped at ``memory_limit_mib`` (0: no cap); it cannot open a connection
    (:mod:`untangle.engine.guard`). The child answers over a pipe of its own, so the app may
    print anything. An event that times out (the child's whole process group is killed), makes
    the child exit or crash gets a verdict, and a new child goes on with the events left.
    Temporary copies live in one folder, removed at the end; no bytecode is written.

    Raises :class:`untangle.engine.machine.EngineUnavailable` when the child lacks the verify
    extra, :class:`UnknownHandler` for a ``--handler`` that selects nothing,
    :class:`VerifyFailed` when the app cannot be prepared or the child fails outside the run
    of an event."""
    with VerifySession(timeout_seconds, memory_limit_mib) as session:
        return session.verify(
            app_dir, events, query_language, original, keep_unchecked_errors, handlers, meanwhile
        )


class VerifySession:
    """The child of :func:`verify_in_subprocess`, started as the session is (its start is the
    longest step of a short verify: whatever the caller checks before :meth:`verify` happens
    meanwhile), and its temporary folder; both go when the session is closed."""

    def __init__(
        self,
        timeout_seconds: float = DEFAULT_TIMEOUT_SECONDS,
        memory_limit_mib: int = DEFAULT_MEMORY_LIMIT_MIB,
    ) -> None:
        self.request = _Request([], [], timeout_seconds, max(0, memory_limit_mib) << 20)
        self.scratch = tempfile.mkdtemp(prefix="untangle-verify-")
        try:
            self.child = _ChildRun(self.request, self.scratch)  # starts moto at once
        except BaseException:
            shutil.rmtree(self.scratch, ignore_errors=True)
            raise

    def __enter__(self) -> VerifySession:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        """The child (if it still runs) and the temporary folder go."""
        self.child.abandon()
        shutil.rmtree(self.scratch, ignore_errors=True)

    def verify(
        self,
        app_dir: str,
        events: list[tuple[str, Any]],
        query_language: str = "jsonata",
        original: str | None = None,
        keep_unchecked_errors: bool = False,
        handlers: tuple[str, ...] = (),
        meanwhile: Callable[[], object] = lambda: None,
    ) -> list[VerifyResult]:
        """What :func:`verify_in_subprocess` says of the app (once per session)."""
        request, scratch = self.request, self.scratch
        request.events = events
        results: dict[tuple[int, int], VerifyResult] = {}
        try:
            app = _planned(
                app_dir, original, query_language, keep_unchecked_errors, tuple(handlers), scratch
            )
            early = [workflow.to_json() for workflow in app.early()]
            request.workflows, request.final = early, False
            self.child.hand(request)
            migrated = app.migrated(scratch)
        except Exception as exc:
            if isinstance(exc, UnknownHandler):
                raise
            raise VerifyFailed(f"{type(exc).__name__}: {exc}") from exc
        request.workflows, request.final = [w.to_json() for w in migrated], True
        self.child.hand_migrated(request.workflows)
        meanwhile()
        while True:
            request.done = sorted(results)
            answered, finished = self.child.run()
            found = _settled(answered, self.child.early, early, migrated, events)
            if finished and set(found) | set(results) >= _every(migrated, events):
                results.update(found)
                break
            if not set(answered) - set(results):  # pragma: no cover - a child always progresses
                raise VerifyFailed("the verify child made no progress")
            results.update(found)
            request.done = sorted(results)
            self.child = _ChildRun(request, scratch)
            self.child.hand(request)
        place = app.position()
        return [results[key] for key in sorted(results, key=lambda k: (place[k[0]], k[1]))]


def _every(
    workflows: Sequence[PreparedWorkflow], events: Sequence[tuple[str, Any]]
) -> set[tuple[int, int]]:
    return {(w, e) for w in range(len(workflows)) for e in range(len(events))}


def _settled(
    answered: Mapping[tuple[int, int], VerifyResult],
    early_keys: set[tuple[int, int]],
    early: Sequence[dict[str, Any]],
    migrated: Sequence[PreparedWorkflow],
    events: Sequence[tuple[str, Any]],
) -> dict[tuple[int, int], VerifyResult]:
    """The child's answers that stand: those run with the migrated workflows, and those run
    before with the same workflow as the migration's. A workflow the migration left unrun
    (refused, or writing no machine) reads as :func:`compare` says of it; the others are run
    again (by a child given the migrated workflows)."""
    found: dict[tuple[int, int], VerifyResult] = {}
    for key, result in answered.items():
        w, e = key
        if key not in early_keys or early[w] == migrated[w].to_json():
            found[key] = result
        elif _not_run(migrated[w]):
            found[key] = _skipped_result(migrated[w], events[e][0])
    return found


def _not_run(workflow: PreparedWorkflow) -> bool:
    # as compare() tells
    return workflow.skipped is not None or workflow.definition is None


def _skipped_result(workflow: PreparedWorkflow, event_name: str) -> VerifyResult:
    empty = {"status": None, "output": None, "error": None}
    return VerifyResult(
        workflow.name, event_name, False, dict(empty), dict(empty), skipped=workflow.skipped
    )


class _ChildRun:
    """One child process, started at once (it imports and starts moto until :meth:`run` hands
    it the request): its messages read as they come, its deadline kept."""

    def __init__(self, request: _Request, scratch: str) -> None:
        self.request = request
        self.scratch = scratch
        self.answered: dict[tuple[int, int], VerifyResult] = {}
        self.early: set[tuple[int, int]] = set()  # answered with a workflow not final
        self.current: dict[str, Any] | None = None  # the load or start message being run
        self.failure: dict[str, Any] | None = None
        self.finished = False
        self.timed_out = False
        self.ended = False  # killed and reaped: its process group id may be reused
        self._read_end, write_end = os.pipe()  # the child's messages
        request_read, self._request_write = os.pipe()  # where the child finds its request
        environment = dict(os.environ, PYTHONDONTWRITEBYTECODE="1", TMPDIR=scratch)
        # closed by _close(), when the run is over
        self._output = tempfile.TemporaryFile(dir=scratch)  # noqa: SIM115
        limits = [str(request.timeout_seconds), str(request.memory_limit_bytes)]
        try:
            self._process = subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "untangle.verify",
                    str(write_end),
                    str(request_read),
                    *limits,
                ],
                stdin=subprocess.DEVNULL,
                stdout=self._output,  # the app prints there, and may leave a child holding it
                stderr=self._output,
                pass_fds=(write_end, request_read),
                start_new_session=True,  # its own process group, killed as a whole
                env=environment,
            )
        except BaseException:
            self._close()
            raise
        finally:
            os.close(write_end)
            os.close(request_read)

    def _close(self) -> None:
        for name in ("_read_end", "_request_write"):
            descriptor = getattr(self, name)
            setattr(self, name, -1)  # closed once: the number may be reused at once
            if descriptor >= 0:
                os.close(descriptor)
        self._output.close()

    def abandon(self) -> None:
        """No request after all: the child and its group go (unless :meth:`run` saw it
        end)."""
        if not self.ended:
            self.ended = True
            _kill_group(self._process)
            self._close()

    def hand(self, request: _Request) -> None:
        """Write ``request`` and give the child its path (the last thing it gets when the
        request is ``final``)."""
        self._give("request.json", asdict(request), last=request.final)

    def hand_migrated(self, workflows: list[dict[str, Any]]) -> None:
        """Give the child the migrated workflows, after an early request."""
        self._give("migrated.json", workflows, last=True)

    def _give(self, name: str, document: Any, last: bool) -> None:
        path = os.path.join(self.scratch, name)
        with open(path, "w", encoding="utf-8") as handle:
            json.dump(document, handle, default=str)
        with contextlib.suppress(BrokenPipeError):  # the child ended: its status says how
            os.write(self._request_write, os.fsencode(path) + b"\n")
        if last:
            descriptor, self._request_write = self._request_write, -1
            os.close(descriptor)  # the end of the paths, for the child

    def run(self) -> tuple[dict[tuple[int, int], VerifyResult], bool]:
        """The child's answers (once it is done, or has ended or missed its deadline), and
        whether it did all it was asked."""
        try:
            if self._request_write >= 0:  # nothing more for it
                descriptor, self._request_write = self._request_write, -1
                os.close(descriptor)
            try:
                status = self._read(self._process, self._read_end)
            finally:
                self.ended = True
                _kill_group(self._process)
            self._output.seek(0)
            printed = self._output.read().decode("utf-8", errors="replace")
        finally:
            self._close()
        if self.finished:
            return self.answered, True
        self._raise_failure(status, printed)
        self._abort_current(status)
        return self.answered, False

    def _read(self, process: subprocess.Popen[bytes], read_end: int) -> int | None:
        """Messages until the child says done, exits, or misses its deadline; the child's
        wait status (None when it is still running)."""
        buffer = b""
        deadline = time.monotonic() + _PREPARE_SECONDS
        while True:
            exited = _exit_status(process)
            # after exiting, read what is left; a child of the app may hold the pipe open
            wait = 0.0 if exited is not None else min(0.25, deadline - time.monotonic())
            ready = select.select([read_end], [], [], max(wait, 0.0))[0]
            chunk = os.read(read_end, 1 << 16) if ready else b""
            buffer += chunk
            *lines, buffer = buffer.split(b"\n")
            for line in lines:
                if self._message(line):
                    deadline = time.monotonic() + (
                        self.request.timeout_seconds if self.current else _PREPARE_SECONDS
                    )
            if self.finished or self.failure is not None:
                return exited
            if exited is not None and not chunk:
                return exited
            if exited is None and not chunk and time.monotonic() >= deadline:
                self.timed_out = True
                return None

    def _message(self, line: bytes) -> bool:
        try:
            message = json.loads(line)
            kind = message["kind"]
        except (ValueError, TypeError, KeyError):
            return False  # not the child's: something the app forked writing to the pipe
        if kind in ("load", "start"):
            self.current = message
        elif kind == "result":
            key = (int(message["workflow"]), int(message["event"]))
            self.answered[key] = VerifyResult.from_json(message["result"])
            if not message.get("final", True):
                self.early.add(key)
            self.current = None
        elif kind == "failed":
            self.failure = message
        elif kind == "done":
            self.finished = True
        return True

    def _raise_failure(self, status: int | None, printed: str) -> None:
        from untangle.engine.machine import EngineUnavailable

        if self.failure is not None:
            text = str(self.failure.get("message", ""))
            if self.failure.get("error") == "engine-unavailable":
                raise EngineUnavailable(text)
            raise VerifyFailed(text)
        if self.current is None:
            tail = printed.strip()[-2000:]
            if self.timed_out:
                raise VerifyFailed(f"no answer within {_PREPARE_SECONDS:g} s\n{tail}".strip())
            raise VerifyFailed(f"{_how_it_ended(status)}\n{tail}".strip())

    def _abort_current(self, status: int | None) -> None:
        """A verdict for the event being run (for every event left of the workflow when its
        orchestrator's import did not come back)."""
        assert self.current is not None
        timeout = self.request.timeout_seconds
        if self.timed_out:
            verdict = "timeout"
            reason = f"no answer within {timeout:g} s (--timeout); its process group was killed"
        elif status is not None and os.WIFSIGNALED(status):
            verdict, reason = "crashed", _how_it_ended(status)
        else:
            verdict, reason = "exited", _how_it_ended(status)
            reason += " (os._exit or sys.exit in the app's code?)"
        w = int(self.current["workflow"])
        if self.current["kind"] == "load":
            reason = f"importing the orchestrator: {reason}"
            done = set(self.request.done) | set(self.answered)
            keys = [(w, e) for e in range(len(self.request.events)) if (w, e) not in done]
        else:
            keys = [(w, int(self.current["event"]))]
        empty = {"status": None, "output": None, "error": None}
        for key in keys:
            if not self.current.get("final", True):
                self.early.add(key)
            name = self.request.events[key[1]][0]
            self.answered[key] = VerifyResult(
                str(self.current["name"]),
                name,
                False,
                dict(empty),
                dict(empty),
                verdict=verdict,
                reason=reason,
            )


def _exit_status(process: subprocess.Popen[bytes]) -> int | None:
    """The child's wait status once it has ended, without reaping it: while it is a zombie its
    process group id cannot be reused, so killing that group never hits another program."""
    if not hasattr(os, "waitid"):  # pragma: no cover - macOS: reaped, as Popen does
        return _wait_status(process.poll())
    try:
        found = os.waitid(os.P_PID, process.pid, os.WEXITED | os.WNOHANG | os.WNOWAIT)
    except ChildProcessError:  # pragma: no cover - reaped already
        return _wait_status(process.returncode)
    if found is None:
        return None
    if found.si_code == os.CLD_EXITED:
        return found.si_status << 8
    return found.si_status  # killed (or dumped core) by this signal


def _wait_status(returncode: int | None) -> int | None:
    """Popen's return code (minus the signal's number when killed) as a wait status."""
    if returncode is None:
        return None
    return -returncode if returncode < 0 else returncode << 8


def _kill_group(process: subprocess.Popen[bytes]) -> None:
    # the app may have left children (holding the output file, looping): all of them go
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(process.pid, signal.SIGKILL)
    process.wait()
    # a killed program the child left is reparented once the child is gone, and leaves the
    # group only when it is reaped: wait (briefly) for that, so nothing verify ran outlives it
    deadline = time.monotonic() + 2.0
    while time.monotonic() < deadline:
        try:
            os.killpg(process.pid, 0)
        except (ProcessLookupError, PermissionError):
            break
        time.sleep(0.01)


def _how_it_ended(status: int | None) -> str:
    if status is None:
        return "the process did not answer"
    if os.WIFSIGNALED(status):
        number = os.WTERMSIG(status)
        try:
            name = signal.Signals(number).name
        except ValueError:
            name = f"signal {number}"
        hint = " (the system's out-of-memory killer?)" if number == signal.SIGKILL else ""
        return f"the process was killed by {name}{hint}"
    return f"the process exited with code {os.WEXITSTATUS(status)}"


def _main(argv: list[str]) -> int:
    """The child side: ``python -m untangle.verify FD REQUEST_FD TIMEOUT MEMORY_BYTES``;
    messages, one JSON document a line, on the pipe FD (stdout and stderr are the app's). It
    starts moto, then reads the path of its request (a :class:`_Request` in JSON) from
    REQUEST_FD, written once the parent has prepared the workflows."""
    descriptor, request_descriptor = int(argv[0]), int(argv[1])
    timeout_seconds, memory_limit_bytes = float(argv[2]), int(argv[3])
    os.set_inheritable(descriptor, False)  # programs the app starts do not get the pipes
    os.set_inheritable(request_descriptor, False)
    channel = os.fdopen(descriptor, "w", encoding="utf-8")
    sys.dont_write_bytecode = True

    def send(message: dict[str, Any]) -> None:
        channel.write(json.dumps(message, default=str) + "\n")
        channel.flush()

    guard.limit_memory(memory_limit_bytes)
    guard.block_network()
    try:
        served = _serve_request(request_descriptor, timeout_seconds, send)
    except Exception as exc:
        from untangle.engine.machine import EngineUnavailable

        if isinstance(exc, EngineUnavailable):
            send({"kind": "failed", "error": "engine-unavailable", "message": str(exc)})
        else:
            message = f"{type(exc).__name__}: {exc}"
            send({"kind": "failed", "error": "error", "message": message})
    else:
        if served:
            send({"kind": "done"})
    channel.close()
    # the answer is out: end here, without the interpreter's shutdown (a fifth of a short run:
    # every module torn down, moto's included) or waiting for threads the app left running
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(Exception):
            stream.flush()
    os._exit(0)


def _serve_request(
    request_descriptor: int, timeout_seconds: float, send: Callable[[dict[str, Any]], None]
) -> bool:
    """Start the engine, wait for the request, serve it; False when none came (the parent
    could not prepare the app, or ended)."""
    from untangle.engine import original
    from untangle.engine.machine import Engine

    paths = _Paths(request_descriptor)
    # moto's modules and what the warm-up builds live as long as this process: the cycle
    # collector would walk them again and again while they load (a sixth of the start-up)
    gc.disable()
    try:
        with Engine(timeout_seconds=_engine_timeout(timeout_seconds)) as engine:
            original.warm_up()
            # what the first run would do first, while the parent prepares (and only then)
            for _ in engine.warm_up_steps():
                if paths.waiting():
                    break
            gc.freeze()
            gc.enable()  # the app's code runs with the collector, as it does anywhere
            request_path = paths.next()
            if not request_path:
                return False
            with open(request_path, encoding="utf-8") as handle:
                request = _Request(**json.load(handle))
            prepared = [PreparedWorkflow.from_json(item) for item in request.workflows]
            events = [(name, event) for name, event in request.events]
            done = {(w, e) for w, e in request.done}

            def migrated(wait: bool) -> list[PreparedWorkflow] | None:
                path = paths.next(wait)
                if not path:
                    return None
                with open(path, encoding="utf-8") as handle:
                    return [PreparedWorkflow.from_json(item) for item in json.load(handle)]

            later = None if request.final else migrated
            return _serve(prepared, events, done, send, lambda result: None, engine, later)
    finally:
        gc.enable()


class _Paths:
    """The paths the parent writes on the request pipe, one a line (the last one may end
    with the pipe instead)."""

    def __init__(self, descriptor: int) -> None:
        self.descriptor = descriptor
        self.buffer = b""
        self.ended = False

    def waiting(self) -> bool:
        """Whether a path (or the pipe's end) is there to read."""
        return b"\n" in self.buffer or self.ended or self._readable()

    def next(self, wait: bool = True) -> str | None:
        """The next path; None at the pipe's end, and, unless ``wait``, when none came yet."""
        while b"\n" not in self.buffer and not self.ended:
            if not wait and not self._readable():
                return None
            chunk = os.read(self.descriptor, 1 << 16)
            self.buffer += chunk
            self.ended = not chunk
        line, newline, self.buffer = self.buffer.partition(b"\n")
        return os.fsdecode(line) if line or newline else None

    def _readable(self) -> bool:
        return bool(select.select([self.descriptor], [], [], 0)[0])


if __name__ == "__main__":
    sys.exit(_main(sys.argv[1:]))
