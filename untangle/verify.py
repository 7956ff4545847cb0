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
the child starts moto; the child then runs every event of the app.

Not verified (reported with ``skipped`` set, never as equivalent): workflows that are not
migrated, workflows whose orchestrator no template declares (the callees come from the
template), and orchestrators whose module cannot be imported (a dependency of the app missing).
The new single-purpose functions a migration extracts are run from the rewritten handler module.
"""

from __future__ import annotations

import contextlib
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
from dataclasses import asdict, dataclass, field
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
    from untangle import sam
    from untangle.engine.original import functions_from_template
    from untangle.files import read_source, read_text
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
            names = migration.new_functions[(workflow.path, workflow.handler)]
            item.functions.update(
                _extracted_functions(
                    workflow, handler_path, contents, scratch, names, orchestrator.environment
                )
            )
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
        return VerifyResult(
            workflow.name, event_name, False, empty, empty, skipped=workflow.skipped
        )
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
    prepared = prepare(old_app, query_language, keep_unchecked_errors, handlers, scratch)
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


def _prepared(
    app_dir: str,
    original: str | None,
    query_language: str,
    keep_unchecked_errors: bool,
    handlers: tuple[str, ...],
    scratch: str,
) -> list[PreparedWorkflow]:
    args = (query_language, keep_unchecked_errors, handlers)
    if original:
        return prepare_written(app_dir, original, *args, scratch=scratch)
    return prepare(app_dir, *args, scratch=scratch)


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
        prepared = _prepared(
            app_dir, original, query_language, keep_unchecked_errors, tuple(handlers), scratch
        )
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
    for (the child is restarted after a timeout or a crash)."""

    events: list[tuple[str, Any]]
    workflows: list[dict[str, Any]] = field(default_factory=list)
    timeout_seconds: float = DEFAULT_TIMEOUT_SECONDS
    memory_limit_bytes: int = DEFAULT_MEMORY_LIMIT_MIB << 20
    done: list[tuple[int, int]] = field(default_factory=list)


def _serve(
    prepared: Sequence[PreparedWorkflow],
    events: Sequence[tuple[str, Any]],
    done: set[tuple[int, int]],
    send: Callable[[dict[str, Any]], None],
    answer: Callable[[VerifyResult], None],
    engine: Engine,
) -> None:
    """Verify ``prepared`` on ``events`` but the (workflow, event) pairs ``done``: ``send``
    gets each step before it runs the app's code (``load``, an orchestrator's import;
    ``start``, an event), ``answer`` each :class:`VerifyResult`."""
    for w, workflow in enumerate(prepared):
        todo = [e for e in range(len(events)) if (w, e) not in done]
        if todo and workflow.skipped is None and workflow.orchestrator is not None:
            send({"kind": "load", "workflow": w, "name": workflow.name})
            with contextlib.suppress(Exception):  # compare() reports a failed import
                workflow.orchestrator.load()
        for e in todo:
            name, event = events[e]
            send({"kind": "start", "workflow": w, "event": e, "name": workflow.name})
            result = compare(workflow, name, event, engine)
            send({"kind": "result", "workflow": w, "event": e, "result": result.to_json()})
            answer(result)


def verify_in_subprocess(
    app_dir: str,
    events: list[tuple[str, Any]],
    query_language: str = "jsonata",
    original: str | None = None,
    keep_unchecked_errors: bool = False,
    handlers: tuple[str, ...] = (),
    timeout_seconds: float = DEFAULT_TIMEOUT_SECONDS,
    memory_limit_mib: int = DEFAULT_MEMORY_LIMIT_MIB,
) -> list[VerifyResult]:
    """:func:`verify_app` in a child process (``python -m untangle.verify``), with limits.

    This process plans and migrates the app (untangle's own code) while the child starts moto
    (most of a child's start-up), then hands it the prepared workflows; the child runs only the
    app's code and the machines. Each event's run (and each orchestrator's import) gets
    ``timeout_seconds``; the child's address space is capped at ``memory_limit_mib`` (0: no
    cap); it cannot open a connection (:mod:`untangle.engine.guard`). The child answers over a
    pipe of its own, so the app may print anything. An event that times out (the child's whole
    process group is killed), makes the child exit or crash gets a verdict, and a new child
    goes on with the events left. Temporary copies live in one folder, removed at the end; no
    bytecode is written.

    Raises :class:`untangle.engine.machine.EngineUnavailable` when the child lacks the verify
    extra, :class:`UnknownHandler` for a ``--handler`` that selects nothing,
    :class:`VerifyFailed` when the app cannot be prepared or the child fails outside the run
    of an event."""
    request = _Request(events, [], timeout_seconds, max(0, memory_limit_mib) << 20)
    results: dict[tuple[int, int], VerifyResult] = {}
    scratch = tempfile.mkdtemp(prefix="untangle-verify-")
    try:
        child = _ChildRun(request, scratch)  # starts moto while this process prepares
        try:
            prepared = _prepared(
                app_dir, original, query_language, keep_unchecked_errors, tuple(handlers), scratch
            )
        except BaseException as exc:  # an interrupt too: the child goes
            child.abandon()
            if isinstance(exc, Exception) and not isinstance(exc, UnknownHandler):
                raise VerifyFailed(f"{type(exc).__name__}: {exc}") from exc
            raise
        request.workflows = [workflow.to_json() for workflow in prepared]
        while True:
            request.done = sorted(results)
            answered, finished = child.run()
            if finished:
                results.update(answered)
                break
            if not set(answered) - set(results):  # pragma: no cover - a child always progresses
                raise VerifyFailed("the verify child made no progress")
            results.update(answered)
            child = _ChildRun(request, scratch)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    return [results[key] for key in sorted(results)]


class _ChildRun:
    """One child process, started at once (it imports and starts moto until :meth:`run` hands
    it the request): its messages read as they come, its deadline kept."""

    def __init__(self, request: _Request, scratch: str) -> None:
        self.request = request
        self.scratch = scratch
        self.answered: dict[tuple[int, int], VerifyResult] = {}
        self.current: dict[str, Any] | None = None  # the load or start message being run
        self.failure: dict[str, Any] | None = None
        self.finished = False
        self.timed_out = False
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
        """No request after all: the child and its group go."""
        _kill_group(self._process)
        self._close()

    def run(self) -> tuple[dict[tuple[int, int], VerifyResult], bool]:
        request_path = os.path.join(self.scratch, "request.json")
        try:
            with open(request_path, "w", encoding="utf-8") as handle:
                json.dump(asdict(self.request), handle, default=str)
            with contextlib.suppress(BrokenPipeError):  # the child ended: its status says how
                os.write(self._request_write, os.fsencode(request_path))
            descriptor, self._request_write = self._request_write, -1
            os.close(descriptor)  # the end of the path, for the child
            try:
                status = self._read(self._process, self._read_end)
            finally:
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

    with Engine(timeout_seconds=_engine_timeout(timeout_seconds)) as engine:
        # what the first run would do, while the parent prepares
        original.warm_up()
        engine.warm_up()
        with os.fdopen(request_descriptor, "rb") as reader:
            request_path = os.fsdecode(reader.read())
        if not request_path:
            return False
        with open(request_path, encoding="utf-8") as handle:
            request = _Request(**json.load(handle))
        prepared = [PreparedWorkflow.from_json(item) for item in request.workflows]
        events = [(name, event) for name, event in request.events]
        done = {(w, e) for w, e in request.done}
        _serve(prepared, events, done, send, lambda result: None, engine)
    return True


if __name__ == "__main__":
    sys.exit(_main(sys.argv[1:]))
