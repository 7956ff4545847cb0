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
child process (``python -m untangle.verify``, a JSON request on stdin, JSON results on stdout),
so the app's imports, module globals and ``sys.path`` changes never touch the CLI's process.

Not verified (reported with ``skipped`` set, never as equivalent): workflows that are not
migrated, workflows whose orchestrator no template declares (the callees come from the
template), and orchestrators whose module cannot be imported (a dependency of the app missing).
The new single-purpose functions a migration extracts are run from the rewritten handler module.
"""

from __future__ import annotations

import io
import json
import os
import re
import subprocess
import sys
import tarfile
import tempfile
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any

from untangle.files import read_source, read_text

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
) -> list[PreparedWorkflow]:
    """Plan and migrate ``app_dir`` in memory; the workflows with what running them needs
    (only those of ``handlers`` when given; :class:`UnknownHandler` for a name that selects
    none)."""
    from untangle import sam
    from untangle.engine.original import functions_from_template
    from untangle.migrate import compute_migration
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
    planned = plan(tree.program, tree.templates, read_source, options)
    migration = compute_migration(planned, tree.templates, read_text, root)
    contents = migration.contents()
    prepared: list[PreparedWorkflow] = []
    for workflow, reasons in migration.skipped:
        why = "; ".join(r.message for r in reasons) or "not converted"
        prepared.append(PreparedWorkflow(workflow.name, skipped=f"not migrated: {why}"))
    for workflow, _how in migration.migrated:
        item = PreparedWorkflow(workflow.name, unchecked=_unchecked_tasks(workflow))
        prepared.append(item)
        handler_path = os.path.abspath(workflow.path)
        handler_name = workflow.handler.rsplit(".", 1)[-1]
        declared = [
            t for t in tree.templates if t.file == handler_path and t.function == handler_name
        ]
        if not declared:
            item.skipped = "not verified: no template declares the orchestrator"
            continue
        template_path = os.path.abspath(declared[0].template)
        definition_path = os.path.join(
            os.path.dirname(template_path),
            "statemachine",
            f"{sam.logical_id(workflow.name)}.asl.json",
        )
        text = contents.get(definition_path)
        if text is None:
            item.skipped = f"not verified: the migration writes no {definition_path}"
            continue
        item.definition = json.loads(text)
        item.functions = dict(functions_from_template(template_path))
        orchestrator = item.functions.get(declared[0].logical_id)
        if orchestrator is None:
            item.skipped = f"not verified: {declared[0].logical_id} has no local code"
            continue
        item.orchestrator = orchestrator
        if workflow.extracted:
            # the new single-purpose functions live in the rewritten handler module: load them
            # from a copy of the code folder holding the migrated module
            item.functions.update(_extracted_functions(workflow, handler_path, contents))
        defaults = dict(workflow.env_defaults)
        environment = dict(getattr(orchestrator, "environment", {}))
        item.substitutions = {
            name: environment.get(name, defaults.get(name, ""))
            for name in set(_PLACEHOLDER.findall(text))
            if name in environment or name in defaults
        }
    return prepared


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
    workflow: Any, handler_path: str, contents: Mapping[str, str]
) -> dict[str, Any]:
    import shutil

    from untangle import sam
    from untangle.engine.original import load_handler

    code_dir = os.path.dirname(handler_path)
    copy = os.path.join(tempfile.mkdtemp(prefix="untangle-extracted-"), "code")
    shutil.copytree(code_dir, copy, ignore=shutil.ignore_patterns("__pycache__"))
    module = os.path.splitext(os.path.basename(handler_path))[0]
    with open(os.path.join(copy, f"{module}.py"), "w", encoding="utf-8") as handle:
        handle.write(contents[handler_path])
    return {
        sam.logical_id(item.function, "FunctionArn"): load_handler(
            copy, f"{module}.{item.function}"
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
        return VerifyResult(
            workflow.name, event_name, False, empty, empty, skipped=workflow.skipped
        )
    try:
        workflow.orchestrator.load()
    except Exception as exc:  # the app's own import fails (a missing dependency ...)
        why = f"not verified: cannot import the orchestrator ({type(exc).__name__}: {exc})"
        return VerifyResult(workflow.name, event_name, False, empty, empty, skipped=why)
    original = run_original(workflow.orchestrator, workflow.functions, event)
    machine = engine.run(
        workflow.definition,
        workflow.functions,
        event,
        name=workflow.name,
        substitutions=workflow.substitutions,
    )
    left, right = _side(original), _side(machine)
    equivalent = _as_json(left) == _as_json(right)
    documented = None if equivalent else _documented(workflow, left, machine)
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
    )


def prepare_written(
    app_dir: str,
    original: str,
    query_language: str = "jsonata",
    keep_unchecked_errors: bool = False,
    handlers: tuple[str, ...] = (),
) -> list[PreparedWorkflow]:
    """After `migrate --write`: the machines written under ``app_dir/statemachine`` against the
    orchestrators as they were at git revision ``original`` (checked out into a temporary
    folder, never over the working tree)."""
    top = _git(app_dir, "rev-parse", "--show-toplevel").strip()
    relative = os.path.relpath(os.path.abspath(app_dir), top)
    checkout = tempfile.mkdtemp(prefix="untangle-original-")
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
    prepared = prepare(old_app, query_language, keep_unchecked_errors, handlers)
    for item in prepared:
        if item.definition is None:
            continue
        written = os.path.join(app_dir, "statemachine", f"{item.name}.asl.json")
        if not os.path.exists(written):
            item.skipped = f"not verified: {written} was not written"
            continue
        with open(written, encoding="utf-8") as handle:
            item.definition = json.load(handle)
    return prepared


def _git(directory: str, *args: str) -> str:
    done = subprocess.run(
        ["git", "-C", directory, *args], capture_output=True, text=True, check=False
    )
    if done.returncode != 0:
        raise ValueError(f"git {' '.join(args)}: {done.stderr.strip()}")
    return done.stdout


def verify_app(
    app_dir: str,
    events: list[tuple[str, Any]],
    query_language: str = "jsonata",
    original: str | None = None,
    keep_unchecked_errors: bool = False,
    handlers: tuple[str, ...] = (),
) -> list[VerifyResult]:
    """Every migrated workflow of ``app_dir`` against every ``(name, event)``, in this process
    (it runs the app's code: see :func:`verify_in_subprocess`). With ``original``, the written
    machines against the code at that git revision."""
    from untangle.engine.machine import Engine

    prepared = (
        prepare_written(app_dir, original, query_language, keep_unchecked_errors, handlers)
        if original
        else prepare(app_dir, query_language, keep_unchecked_errors, handlers)
    )
    results: list[VerifyResult] = []
    with Engine() as engine:
        for workflow in prepared:
            for name, event in events:
                results.append(compare(workflow, name, event, engine))
    return results


class VerifyFailed(RuntimeError):
    """The child process could not verify (its stderr is the message)."""


class UnknownHandler(ValueError):
    """A `--handler` that selects no orchestrating handler of the app (a usage error)."""


def verify_in_subprocess(
    app_dir: str,
    events: list[tuple[str, Any]],
    query_language: str = "jsonata",
    original: str | None = None,
    keep_unchecked_errors: bool = False,
    handlers: tuple[str, ...] = (),
) -> list[VerifyResult]:
    """:func:`verify_app` in a child process (``python -m untangle.verify``).

    Raises :class:`untangle.engine.machine.EngineUnavailable` when the child lacks the verify
    extra, :class:`VerifyFailed` for any other failure."""
    from untangle.engine.machine import EngineUnavailable

    request = {
        "app_dir": app_dir,
        "events": events,
        "query_language": query_language,
        "original": original,
        "keep_unchecked_errors": keep_unchecked_errors,
        "handlers": list(handlers),
    }
    child = subprocess.run(
        [sys.executable, "-m", "untangle.verify"],
        input=json.dumps(request),
        capture_output=True,
        text=True,
        check=False,
    )
    if child.returncode == 3:
        raise EngineUnavailable(child.stderr.strip())
    if child.returncode == 4:
        raise UnknownHandler(child.stderr.strip())
    if child.returncode != 0:
        raise VerifyFailed(child.stderr.strip() or f"exit status {child.returncode}")
    answer = json.loads(child.stdout)
    return [VerifyResult.from_json(r) for r in answer["results"]]


def _main() -> int:
    """The child side: a request on stdin, ``{"results": [...]}`` on stdout; exit 3 when the
    verify extra is missing, 1 on any other error (a message on stderr)."""
    from untangle.engine.machine import EngineUnavailable

    request = json.loads(sys.stdin.read())
    real_stdout = sys.stdout
    sys.stdout = sys.stderr  # whatever the app prints must not corrupt the answer
    try:
        results = verify_app(
            request["app_dir"],
            [(name, event) for name, event in request["events"]],
            request.get("query_language", "jsonata"),
            request.get("original"),
            bool(request.get("keep_unchecked_errors")),
            tuple(request.get("handlers") or ()),
        )
    except EngineUnavailable as exc:
        print(str(exc), file=sys.stderr)
        return 3
    except UnknownHandler as exc:
        print(str(exc), file=sys.stderr)
        return 4
    except Exception as exc:
        print(f"{type(exc).__name__}: {exc}", file=sys.stderr)
        return 1
    finally:
        sys.stdout = real_stdout
    real_stdout.write(json.dumps({"results": [r.to_json() for r in results]}, default=str))
    real_stdout.flush()
    return 0


if __name__ == "__main__":
    sys.exit(_main())
