"""Run an ASL definition on moto's in-process Step Functions interpreter.

moto 5.x ships the ASL interpreter ported from LocalStack. With
``mock_aws(config={"stepfunctions": {"execute_state_machine": True}, "lambda": {"use_docker":
False}})`` an execution really runs, and every Lambda task ends up in
``moto.awslambda_simple.models.LambdaSimpleBackend.invoke``. This module patches a few private
hook points of that interpreter, for the duration of a run only:

- ``LambdaSimpleBackend.invoke`` calls a Python handler from the ``functions`` table and answers
  the way the AWS Python runtime does, including the ``Unhandled`` error shape (so ``Retry`` and
  ``Catch`` on an exception class name work);
- ``moto.stepfunctions.parser.asl.jsonata.jsonata._eval_jsonata`` (stubbed to ``None`` in moto)
  evaluates JSONata with jsonata-python;
- ``WaitFunction._wait_interval`` and the ``time`` module seen by ``retrier_decl`` skip the
  sleeps of ``Wait`` states and ``Retry`` back-off, recording the seconds instead.

:func:`check_hooks` raises :class:`EngineUnavailable` naming the hook when a moto upgrade moved
one of them. moto and jsonata-python come with the ``verify`` extra
(``pip install 'untangle-lambda[verify]'``); they are imported lazily, so importing this module
is cheap and never fails.

Runs are serialised by a process-wide lock: the hooks are module attributes.

Known differences from AWS (moto's interpreter, and fast-forwarded time):

- time is not simulated, only skipped: a ``Wait`` in one Parallel branch returns at once, so that
  branch goes on while a sibling that AWS would have seen fail first is still running; once an
  execution has ended, its leftover branches and iterations call no handler and record nothing;
- an error raised while evaluating JSONata (``1 > "a"``) ends the execution with
  ``States.Runtime`` and a ``JSONataException(...)`` cause, where AWS reports
  ``States.QueryEvaluationError``; an expression returning nothing is reported as AWS does;
- a Choice with no match and no Default fails with ``States.Runtime`` (AWS:
  ``States.NoChoiceMatched``); ``$uuid()`` / ``$hash()`` are not supported;
  ``ToleratedFailurePercentage`` is rejected;
- handler timeouts and memory are not enforced per function (``untangle verify`` limits each
  event's run as a whole, see :mod:`untangle.engine.guard`); handlers run in the
  interpreter's worker threads, concurrently under Map and Parallel;
- moto's Lambda task drops ``InvocationType``: the engine marks ``Event`` invokes (a qualifier on
  a literal ``FunctionName``) and answers them as Lambda does, errors unseen; an ``Event`` invoke
  whose function name is computed runs as a synchronous one.
"""

from __future__ import annotations

import contextlib
import datetime
import importlib
import inspect
import json
import logging
import os
import re
import threading
import time
import traceback
import uuid
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

from untangle.engine.deferred import DEFERRED_MOTO_PACKAGES, defer_package
from untangle.engine.guard import note_memory_error

ACCOUNT_ID = "123456789012"
REGION = "us-east-1"
FAKE_FUNCTION_ARN_PREFIX = f"arn:aws:lambda:{REGION}:{ACCOUNT_ID}:function:"
_ROLE_ARN = f"arn:aws:iam::{ACCOUNT_ID}:role/untangle-verify"

#: Environment variables set while an engine runs: no call can find real credentials, a profile
#: or a custom endpoint (moto only intercepts the standard AWS endpoints).
FAKE_AWS_ENV: dict[str, str] = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_SECURITY_TOKEN": "testing",
    "AWS_SESSION_TOKEN": "testing",
    "AWS_DEFAULT_REGION": REGION,
    "AWS_REGION": REGION,
    # no profile file can add credentials or an endpoint_url
    "AWS_CONFIG_FILE": os.devnull,
    "AWS_SHARED_CREDENTIALS_FILE": os.devnull,
    "AWS_IGNORE_CONFIGURED_ENDPOINT_URLS": "true",
    "AWS_EC2_METADATA_DISABLED": "true",
}
_REMOVED_AWS_ENV_PREFIXES = ("AWS_PROFILE", "AWS_DEFAULT_PROFILE", "AWS_ENDPOINT_URL")
_REMOVED_AWS_ENV = (
    "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI",
    "AWS_CONTAINER_CREDENTIALS_FULL_URI",
    "AWS_WEB_IDENTITY_TOKEN_FILE",
    "AWS_ROLE_ARN",
)

MOTO_CONFIG: dict[str, Any] = {
    "stepfunctions": {"execute_state_machine": True},
    "lambda": {"use_docker": False},
    "core": {
        "mock_credentials": True,
        "passthrough": {"urls": [], "services": []},
        "reset_boto3_session": True,
        "service_whitelist": None,
    },
}

_PLACEHOLDER = re.compile(r"\$\{([A-Za-z0-9_.:-]+)\}")
_QUIET_LOGGERS = ("moto", "botocore", "boto3", "urllib3")

# The private hook points, as (module, attribute) pairs; check_hooks() verifies each.
_HOOK_LAMBDA = ("moto.awslambda_simple.models", "LambdaSimpleBackend")
_HOOK_JSONATA = ("moto.stepfunctions.parser.asl.jsonata.jsonata", "_eval_jsonata")
_HOOK_WAIT = (
    "moto.stepfunctions.parser.asl.component.state.wait.wait_function.wait_function",
    "WaitFunction",
)
_HOOK_RETRY = ("moto.stepfunctions.parser.asl.component.common.retry.retrier_decl", "time")
_HOOK_BACKENDS = ("moto.stepfunctions.parser.models", "stepfunctions_parser_backends")
_HOOK_CONFIG = ("moto.core.config", "default_user_config")
_HOOK_THREADS = ("moto.stepfunctions.parser.utils", "TMP_THREADS")
_HOOK_PARSER = ("moto.stepfunctions.parser.asl.parse.asl_parser", "AmazonStateLanguageParser")
_HOOK_LAMBDA_CLIENT = (
    "moto.stepfunctions.parser.asl.component.state.exec.state_task.lambda_eval_utils",
    "boto_client_for",
)
_HOOK_WORKER = ("moto.stepfunctions.parser.backend.execution_worker", "ExecutionWorker")

_RUN_LOCK = threading.RLock()
_PATCHED: list[object] = []  # engines whose hooks are in place (nesting)
_ENGINE_DIR = os.path.dirname(os.path.abspath(__file__)) + os.sep


# what a first parse of moto's ASL parser meets in most machines untangle writes, in both query
# languages: parsing these builds the parser's tables (see Engine.warm_up)
_WARM_UP_DEFINITIONS: list[dict[str, Any]] = [
    {
        "QueryLanguage": "JSONata",
        "StartAt": "Call",
        "States": {
            "Call": {
                "Type": "Task",
                "Resource": "arn:aws:states:::lambda:invoke",
                "Arguments": {"FunctionName": "${F}", "Payload": "{% $states.input %}"},
                "Assign": {"x": "{% $states.result.Payload %}"},
                "Output": "{% $states.result.Payload %}",
                "Retry": [
                    {
                        "ErrorEquals": ["States.ALL"],
                        "IntervalSeconds": 1,
                        "MaxAttempts": 2,
                        "BackoffRate": 2,
                    }
                ],
                "Catch": [{"ErrorEquals": ["States.ALL"], "Next": "Failed"}],
                "Next": "Route",
            },
            "Route": {
                "Type": "Choice",
                "Choices": [{"Condition": "{% $x.total > 100 %}", "Next": "Each"}],
                "Default": "Wait",
            },
            "Each": {
                "Type": "Map",
                "Items": "{% $x.items %}",
                "ItemProcessor": {
                    "ProcessorConfig": {"Mode": "INLINE"},
                    "StartAt": "Item",
                    "States": {"Item": {"Type": "Pass", "End": True}},
                },
                "Next": "Both",
            },
            "Both": {
                "Type": "Parallel",
                "Branches": [{"StartAt": "One", "States": {"One": {"Type": "Pass", "End": True}}}],
                "Next": "Done",
            },
            "Wait": {"Type": "Wait", "Seconds": 1, "Next": "Done"},
            "Failed": {"Type": "Fail", "Error": "E", "Cause": "c"},
            "Done": {"Type": "Succeed"},
        },
    },
    {
        "StartAt": "Call",
        "States": {
            "Call": {
                "Type": "Task",
                "Resource": "arn:aws:states:::lambda:invoke",
                "Parameters": {"FunctionName": "${F}", "Payload.$": "$.input"},
                "ResultSelector": {"value.$": "$.Payload"},
                "ResultPath": "$.vars.result",
                "Next": "Route",
            },
            "Route": {
                "Type": "Choice",
                "Choices": [
                    {"Variable": "$.vars.result.value", "NumericGreaterThan": 1, "Next": "Done"}
                ],
                "Default": "Set",
            },
            "Set": {
                "Type": "Pass",
                "Parameters": {"text.$": "States.Format('{}', $.input)"},
                "OutputPath": "$.text",
                "Next": "Done",
            },
            "Done": {"Type": "Succeed"},
        },
    },
]


# what the warm-up machines' function answers, and their input: each state of them runs
_WARM_UP_RUNS: list[tuple[Any, Any]] = [
    ({"total": 101, "items": [1, 2]}, {"orderId": "o-1"}),
    (0, {"input": {"orderId": "o-1"}}),
]


class EngineUnavailable(RuntimeError):
    """moto / jsonata-python are missing, or a private hook point moved in this moto version."""


@dataclass(frozen=True)
class LambdaContext:
    """The parts of the Lambda runtime's context object that handlers commonly use."""

    function_name: str
    aws_request_id: str = field(default_factory=lambda: str(uuid.uuid4()))
    memory_limit_in_mb: int = 128
    timeout_seconds: int = 900
    function_version: str = "$LATEST"
    _deadline: float = field(default=0.0, repr=False)

    @property
    def invoked_function_arn(self) -> str:
        return FAKE_FUNCTION_ARN_PREFIX + self.function_name

    @property
    def log_group_name(self) -> str:
        return f"/aws/lambda/{self.function_name}"

    @property
    def log_stream_name(self) -> str:
        return f"untangle/{self.aws_request_id}"

    def get_remaining_time_in_millis(self) -> int:
        deadline = self._deadline or time.monotonic() + self.timeout_seconds
        return max(0, int((deadline - time.monotonic()) * 1000))

    @classmethod
    def for_function(cls, function_name: str, timeout_seconds: int = 900) -> LambdaContext:
        return cls(
            function_name=function_name,
            timeout_seconds=timeout_seconds,
            _deadline=time.monotonic() + timeout_seconds,
        )


def lambda_error_payload(exc: BaseException) -> dict[str, Any]:
    """The payload the AWS Python runtime returns for an unhandled exception."""
    note_memory_error(exc)
    return {
        "errorMessage": str(exc),
        "errorType": type(exc).__name__,
        "requestId": "",
        "stackTrace": traceback.format_list(
            [
                frame
                for frame in traceback.extract_tb(exc.__traceback__)
                if not os.path.abspath(frame.filename).startswith(_ENGINE_DIR)
            ]
        ),
    }


def function_name_of(reference: str) -> str:
    """``arn:aws:lambda:r:a:function:name:qualifier`` / ``name:qualifier`` / ``name`` -> name."""
    if reference.startswith("arn:"):
        parts = reference.split(":")
        return parts[6] if len(parts) > 6 else reference
    return reference.split(":", 1)[0]


def fake_function_arn(name: str) -> str:
    return FAKE_FUNCTION_ARN_PREFIX + name


def substitute_placeholders(definition: Any, substitutions: Mapping[str, str] | None = None) -> Any:
    """Replace every ``${Placeholder}`` with ``substitutions[Placeholder]`` when given (the
    ``DefinitionSubstitutions`` of a deployment), else with
    ``arn:aws:lambda:...:function:Placeholder``."""
    values = substitutions or {}

    def replace(match: re.Match[str]) -> str:
        name = match.group(1)
        return str(values[name]) if name in values else fake_function_arn(name)

    if isinstance(definition, dict):
        # a deployment substitutes the definition's text, keys included
        return {
            _PLACEHOLDER.sub(replace, key): substitute_placeholders(value, substitutions)
            for key, value in definition.items()
        }
    if isinstance(definition, list):
        return [substitute_placeholders(value, substitutions) for value in definition]
    if isinstance(definition, str):
        return _PLACEHOLDER.sub(replace, definition)
    return definition


@dataclass(frozen=True)
class MachineRun:
    """The outcome of one execution.

    ``history`` holds the state entered/exited events of the execution history, simplified to
    ``{"type": <AWS event type, e.g. "TaskStateEntered">, "state": name, "input": ...,
    "output": ...}`` with the JSON parsed (``input`` only on entered, ``output`` only on exited
    events; the other is ``None``). ``calls`` lists ``(function, payload)`` in call order (calls
    from Map iterations and Parallel branches run concurrently, so their order among themselves
    is the order they happened to run in). ``waited_seconds`` adds up the skipped ``Wait`` and
    ``Retry`` sleeps.
    """

    status: str
    output: Any
    error: str | None
    cause: str | None
    history: list[dict[str, Any]]
    waited_seconds: float
    calls: list[tuple[str, Any]]

    def entered(self) -> list[str]:
        """Names of the states entered, in history order."""
        return [e["state"] for e in self.history if e["type"].endswith("Entered")]


def _import(module: str) -> Any:
    try:
        return importlib.import_module(module)
    except ImportError as exc:
        raise EngineUnavailable(
            f"cannot import {module} ({exc}): install the verify extra, "
            "pip install 'untangle-lambda[verify]'"
        ) from exc


def check_hooks() -> None:
    """Raise :class:`EngineUnavailable` naming the first private hook point that moved."""
    if _PATCHED:
        return  # checked when the running engine patched them; now they are its patches
    for package in DEFERRED_MOTO_PACKAGES:
        defer_package(package)
    _import("jsonata").Jsonata  # noqa: B018 - the attribute is the check

    def hook(spec: tuple[str, str]) -> Any:
        module = _import(spec[0])
        if not hasattr(module, spec[1]):
            raise EngineUnavailable(f"moto hook point moved: {spec[0]}.{spec[1]} is gone")
        return getattr(module, spec[1])

    backend = hook(_HOOK_LAMBDA)
    invoke = getattr(backend, "invoke", None)
    wanted = ["self", "function_name", "qualifier", "body", "headers", "response_headers"]
    if invoke is None or list(inspect.signature(invoke).parameters) != wanted:
        raise EngineUnavailable(
            "moto hook point moved: LambdaSimpleBackend.invoke"
            f"({', '.join(wanted[1:])}) is gone or has another signature"
        )
    jsonata_module = _import(_HOOK_JSONATA[0])
    hook(_HOOK_JSONATA)
    for name in ("JSONataException", "eval_jsonata_expression"):
        if not hasattr(jsonata_module, name):
            raise EngineUnavailable(f"moto hook point moved: {_HOOK_JSONATA[0]}.{name} is gone")
    source = inspect.getsource(jsonata_module.eval_jsonata_expression)
    if "_eval_jsonata(" not in source:
        raise EngineUnavailable(
            "moto hook point moved: eval_jsonata_expression no longer calls _eval_jsonata"
        )
    wait = hook(_HOOK_WAIT)
    if list(inspect.signature(getattr(wait, "_wait_interval", len)).parameters) != [
        "self",
        "env",
        "wait_seconds",
    ]:
        raise EngineUnavailable(
            "moto hook point moved: WaitFunction._wait_interval(env, wait_seconds) is gone"
        )
    retry_time = hook(_HOOK_RETRY)
    retrier = getattr(_import(_HOOK_RETRY[0]), "RetrierDecl", None)
    if (
        retry_time is not time
        or retrier is None
        or "time.sleep(" not in inspect.getsource(retrier._eval_body)
    ):
        raise EngineUnavailable(
            "moto hook point moved: RetrierDecl._eval_body no longer sleeps with time.sleep"
        )
    parser = hook(_HOOK_PARSER)
    worker = hook(_HOOK_WORKER)
    if (
        not isinstance(inspect.getattr_static(parser, "parse", None), staticmethod)
        or list(inspect.signature(parser.parse).parameters) != ["definition"]
        or "AmazonStateLanguageParser.parse(" not in inspect.getsource(worker)
    ):
        raise EngineUnavailable(
            "moto hook point moved: ExecutionWorker no longer parses its definition with "
            "AmazonStateLanguageParser.parse(definition)"
        )
    client_for = hook(_HOOK_LAMBDA_CLIENT)
    if list(inspect.signature(client_for).parameters) != ["region", "service", "state_credentials"]:
        raise EngineUnavailable(
            "moto hook point moved: boto_client_for(region, service, state_credentials) is gone "
            "or has another signature"
        )
    hook(_HOOK_BACKENDS)
    if not isinstance(hook(_HOOK_THREADS), list):
        raise EngineUnavailable(f"moto hook point moved: {'.'.join(_HOOK_THREADS)} is not a list")
    config = hook(_HOOK_CONFIG)
    if "execute_state_machine" not in config.get("stepfunctions", {}):
        raise EngineUnavailable(
            "moto hook point moved: the stepfunctions.execute_state_machine switch is gone"
        )
    _import("moto").mock_aws  # noqa: B018


@contextlib.contextmanager
def fake_aws_environment() -> Iterator[None]:
    """Fake credentials and region in ``os.environ``; profiles and custom endpoints removed."""
    saved = dict(os.environ)
    try:
        for key in list(os.environ):
            if key.startswith(_REMOVED_AWS_ENV_PREFIXES) or key in _REMOVED_AWS_ENV:
                del os.environ[key]
        os.environ.update(FAKE_AWS_ENV)
        yield
    finally:
        os.environ.clear()
        os.environ.update(saved)


@contextlib.contextmanager
def quiet_loggers(names: tuple[str, ...] = _QUIET_LOGGERS) -> Iterator[None]:
    saved: list[tuple[logging.Logger, int]] = []
    for name in names:
        logger = logging.getLogger(name)
        saved.append((logger, logger.level))
        logger.setLevel(logging.CRITICAL + 1)
    try:
        yield
    finally:
        for logger, level in saved:
            logger.setLevel(level)


# moto's Lambda task drops `InvocationType`: an `Event` invoke is marked by this qualifier on its
# function name instead, so the engine can answer it as Lambda would (202, errors never seen)
_EVENT_QUALIFIER = ":untangle-event"


def _mark_event_invokes(definition: Any) -> Any:
    if isinstance(definition, list):
        return [_mark_event_invokes(item) for item in definition]
    if not isinstance(definition, dict):
        return definition
    marked = {key: _mark_event_invokes(value) for key, value in definition.items()}
    if marked.get("Type") == "Task" and "lambda:invoke" in str(marked.get("Resource", "")):
        for key in ("Arguments", "Parameters"):
            arguments = marked.get(key)
            if (
                isinstance(arguments, dict)
                and arguments.get("InvocationType") == "Event"
                and isinstance(arguments.get("FunctionName"), str)
                and not arguments["FunctionName"].startswith("{%")
            ):
                marked[key] = {
                    **arguments,
                    "FunctionName": arguments["FunctionName"] + _EVENT_QUALIFIER,
                }
    return marked


def _integral_floats_to_int(value: Any) -> Any:
    # JSONata numbers are JavaScript doubles: AWS prints 2.0 as 2.
    if isinstance(value, float) and value.is_integer() and abs(value) < 2**53:
        return int(value)
    if isinstance(value, list):
        return [_integral_floats_to_int(v) for v in value]
    if isinstance(value, dict):
        return {k: _integral_floats_to_int(v) for k, v in value.items()}
    return value


class _Recorder:
    """What the patched hooks record during one run; handlers run in worker threads."""

    def __init__(self, functions: Mapping[str, Callable[[Any, Any], Any]]) -> None:
        self.functions = functions
        self.calls: list[tuple[str, Any]] = []
        self.waited = 0.0
        self.lock = threading.Lock()
        # set once the execution has ended: a Parallel branch or Map iteration still running
        # (AWS would have stopped it) neither calls handlers nor waits any more
        self.closed = False

    def wait(self, seconds: float) -> None:
        with self.lock:
            if not self.closed:
                self.waited += max(0.0, float(seconds))

    def invoke(self, function_name: str, body: Any, headers: Any, response_headers: Any) -> bytes:
        name = function_name_of(function_name)
        if isinstance(body, bytes | bytearray):
            body = body.decode("utf-8")
        try:
            payload = json.loads(body) if body else {}
        except json.JSONDecodeError:
            payload = body
        with self.lock:
            closed = self.closed
            if not closed:
                self.calls.append((name, payload))
        if closed:
            response_headers["x-amz-function-error"] = "Unhandled"
            error = {"errorType": "States.Aborted", "errorMessage": "the execution has ended"}
            return json.dumps(error).encode()
        handler = self.functions.get(name)
        if handler is None:
            response_headers["x-amz-function-error"] = "Unhandled"
            error = {
                "errorType": "ResourceNotFoundException",
                "errorMessage": f"Function not found: {fake_function_arn(name)} "
                f"(no handler for {name!r}; known: {sorted(self.functions)})",
            }
            return json.dumps(error).encode()
        if function_name.endswith(_EVENT_QUALIFIER):
            # Lambda answers 202 at once and runs the function later: its errors never reach
            # the state machine
            with contextlib.suppress(Exception):
                handler(payload, LambdaContext.for_function(name))
            return b""
        try:
            result = handler(payload, LambdaContext.for_function(name))
        except Exception as exc:
            response_headers["x-amz-function-error"] = "Unhandled"
            return json.dumps(lambda_error_payload(exc)).encode()
        try:
            return json.dumps(result).encode()
        except (TypeError, ValueError) as exc:
            response_headers["x-amz-function-error"] = "Unhandled"
            error = {
                "errorType": "Runtime.MarshalError",
                "errorMessage": f"Unable to marshal response: {exc}",
            }
            return json.dumps(error).encode()


class Engine:
    """One moto session: create state machines once, run many executions.

    >>> with Engine() as engine:                        # doctest: +SKIP
    ...     run = engine.run(definition, {"Fn": handler}, {"x": 1})
    """

    def __init__(self, *, timeout_seconds: float = 60.0) -> None:
        self.timeout_seconds = timeout_seconds
        self._stack: contextlib.ExitStack | None = None
        self._client: Any = None
        self._machines: dict[str, str] = {}
        self._parsed: dict[str, Any] = {}  # definition text → moto's parse of it
        self._clients: dict[tuple[str, str], Any] = {}  # (region, service) → the tasks' client
        self._recorder: _Recorder | None = None

    def __enter__(self) -> Engine:
        check_hooks()
        stack = contextlib.ExitStack()
        stack.enter_context(_RUN_LOCK)
        try:
            stack.enter_context(quiet_loggers())
            stack.enter_context(fake_aws_environment())
            stack.enter_context(_import("moto").mock_aws(config=MOTO_CONFIG))
            stack.enter_context(self._hooks())
            self._client = _import("boto3").client("stepfunctions", region_name=REGION)
        except BaseException:
            stack.close()
            raise
        self._stack = stack
        return self

    def __exit__(self, *exc: object) -> None:
        stack, self._stack = self._stack, None
        self._machines.clear()
        self._parsed.clear()
        self._clients.clear()
        self._client = None
        if stack is not None:
            stack.close()

    def warm_up(self) -> None:
        """Do what the first execution would do first, so that a process can get it done
        before it has a machine to run (see :meth:`warm_up_steps`)."""
        for _ in self.warm_up_steps():
            pass

    def warm_up_steps(self) -> Iterator[None]:
        """:meth:`warm_up` a step at a time, for a caller that stops once it has a machine to
        run (each step is taken when the caller asks for the next item, none before): the
        parser's first parses (which build its tables), the Lambda tasks' client, then a run
        of each warm-up machine (moto's backends for the account, the execution worker,
        JSONata), deleted afterwards, so that what the app's code sees of moto is as without
        it."""
        if self._stack is None:
            raise RuntimeError("use Engine() as a context manager")
        parser = getattr(_import(_HOOK_PARSER[0]), _HOOK_PARSER[1])
        for definition in _WARM_UP_DEFINITIONS:
            yield
            parser.parse(json.dumps(definition))
        yield
        _import(_HOOK_LAMBDA_CLIENT[0]).boto_client_for(REGION, "lambda", None)
        for definition, (answer, event) in zip(_WARM_UP_DEFINITIONS, _WARM_UP_RUNS, strict=True):
            yield
            with contextlib.suppress(Exception):  # only a warm-up: the real run will tell
                self._warm_up_run(definition, answer, event)

    def _warm_up_run(self, definition: dict[str, Any], answer: Any, event: Any) -> None:
        name = "untangle-warm-up"
        self.run(definition, {"F": lambda _event, _context: answer}, event, name=name)
        for key in [key for key in self._machines if key.startswith(name + "\0")]:
            arn = self._machines.pop(key)
            self._client.delete_state_machine(stateMachineArn=arn)

    @contextlib.contextmanager
    def _hooks(self) -> Iterator[None]:
        backend_cls = getattr(_import(_HOOK_LAMBDA[0]), _HOOK_LAMBDA[1])
        jsonata_module = _import(_HOOK_JSONATA[0])
        wait_cls = getattr(_import(_HOOK_WAIT[0]), _HOOK_WAIT[1])
        retry_module = _import(_HOOK_RETRY[0])
        parser_cls = getattr(_import(_HOOK_PARSER[0]), _HOOK_PARSER[1])
        parse = parser_cls.parse
        lambda_tasks = _import(_HOOK_LAMBDA_CLIENT[0])
        client_for = lambda_tasks.boto_client_for
        jsonata = _import("jsonata")
        engine = self

        def recorder() -> _Recorder:
            if engine._recorder is None:
                raise RuntimeError("no untangle execution is running")
            return engine._recorder

        def invoke(
            _backend: Any,
            function_name: str,
            qualifier: str | None,
            body: Any,
            headers: Any,
            response_headers: Any,
        ) -> bytes:
            return recorder().invoke(function_name, body, headers, response_headers)

        def eval_jsonata(expression: str) -> Any:
            try:
                result = jsonata.Jsonata(expression).evaluate(None)
                return _integral_floats_to_int(json.loads(json.dumps(result)))
            except Exception as exc:
                raise jsonata_module.JSONataException("UNKNOWN", str(exc)) from exc

        def fast_wait(_self: Any, env: Any, wait_seconds: int) -> None:
            recorder().wait(wait_seconds)

        class _FastTime:
            def __getattr__(self, name: str) -> Any:
                return getattr(time, name)

            @staticmethod
            def sleep(seconds: float) -> None:
                recorder().wait(seconds)

        def parse_once(definition: str) -> Any:
            # moto parses the definition again for every execution (its ANTLR parser, in
            # Python: most of an event's run); the parsed program holds no state of a run
            # (Map iterations evaluate one program concurrently), so one parse serves all
            parsed = engine._parsed.get(definition)
            if parsed is None:
                parsed = engine._parsed[definition] = parse(definition)
            return parsed

        def cached_client_for(region: str, service: str, state_credentials: Any = None) -> Any:
            # moto builds a new boto3 client for every Lambda task (a third of an event's
            # run); one per region serves them all (it ignores the task's credentials, and
            # botocore clients may be shared between threads)
            key = (region, service)
            client = engine._clients.get(key)
            if client is None:
                client = engine._clients[key] = client_for(region, service, state_credentials)
            return client

        patches: list[tuple[Any, str, Any]] = [
            (backend_cls, "invoke", invoke),
            (parser_cls, "parse", staticmethod(parse_once)),
            (lambda_tasks, "boto_client_for", cached_client_for),
            (jsonata_module, "_eval_jsonata", eval_jsonata),
            (wait_cls, "_wait_interval", fast_wait),
            (retry_module, "time", _FastTime()),
        ]
        saved = [(target, attr, target.__dict__[attr]) for target, attr, _ in patches]
        try:
            for target, attr, value in patches:
                setattr(target, attr, value)
            _PATCHED.append(self)
            yield
        finally:
            if self in _PATCHED:
                _PATCHED.remove(self)
            for target, attr, value in saved:
                setattr(target, attr, value)

    def _machine_arn(
        self, definition: Mapping[str, Any], name: str, substitutions: Mapping[str, str] | None
    ) -> str:
        text = json.dumps(
            _mark_event_invokes(substitute_placeholders(definition, substitutions)),
            sort_keys=True,
        )
        key = f"{name}\0{text}"
        arn = self._machines.get(key)
        if arn is None:
            # unique: an engine nested in another shares its moto backend
            machine_name = f"{name[:40]}-{uuid.uuid4().hex}"
            arn = str(
                self._client.create_state_machine(
                    name=machine_name, definition=text, roleArn=_ROLE_ARN
                )["stateMachineArn"]
            )
            self._machines[key] = arn
        return arn

    def run(
        self,
        definition: Mapping[str, Any],
        functions: Mapping[str, Callable[[Any, Any], Any]],
        event: Any,
        *,
        name: str = "verify",
        substitutions: Mapping[str, str] | None = None,
    ) -> MachineRun:
        """Run one execution of ``definition`` (created once per engine) on ``event``."""
        if self._stack is None:
            raise RuntimeError("use Engine() as a context manager")
        arn = self._machine_arn(definition, name, substitutions)
        self._recorder = recorder = _Recorder(functions)
        try:
            started = self._client.start_execution(
                stateMachineArn=arn,
                name=f"{name[:40]}-{uuid.uuid4().hex}",
                input=json.dumps(event),
            )
            backends = getattr(_import(_HOOK_BACKENDS[0]), _HOOK_BACKENDS[1])
            backend = backends[ACCOUNT_ID][REGION]
            execution = backend.describe_execution(started["executionArn"])
            deadline = time.monotonic() + self.timeout_seconds
            while _status(execution) == "RUNNING" and time.monotonic() < deadline:
                time.sleep(0.002)
            status = _status(execution)
            with recorder.lock:
                recorder.closed = True
            _drain_threads(deadline=time.monotonic() + 5.0)
            if status == "RUNNING":
                execution.stop(
                    stop_date=datetime.datetime.now(tz=datetime.UTC),
                    error="untangle.EngineTimeout",
                    cause="timed out",
                )
                return MachineRun(
                    status="TIMED_OUT",
                    output=None,
                    error="untangle.EngineTimeout",
                    cause=f"the execution did not end within {self.timeout_seconds} s",
                    history=_history(execution),
                    waited_seconds=recorder.waited,
                    calls=list(recorder.calls),
                )
            return MachineRun(
                status=status,
                output=execution.output if status == "SUCCEEDED" else None,
                error=execution.error,
                cause=execution.cause,
                history=_history(execution),
                waited_seconds=recorder.waited,
                calls=list(recorder.calls),
            )
        finally:
            self._recorder = None


def _drain_threads(deadline: float) -> None:
    """Join the interpreter's worker threads (branches and iterations that outlived a failed
    execution), so that none of them acts during the next run; forget the finished ones."""
    threads = getattr(_import(_HOOK_THREADS[0]), _HOOK_THREADS[1], None)
    if not isinstance(threads, list):
        return
    for thread in list(threads):
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            break
        if isinstance(thread, threading.Thread) and thread is not threading.current_thread():
            thread.join(timeout=remaining)
    threads[:] = [t for t in threads if not isinstance(t, threading.Thread) or t.is_alive()]


def _status(execution: Any) -> str:
    status = execution.exec_status
    return str(getattr(status, "value", status))


def _parse(text: Any) -> Any:
    if not isinstance(text, str):
        return text
    try:
        return json.loads(text)
    except json.JSONDecodeError:
        return text


def _history(execution: Any) -> list[dict[str, Any]]:
    try:
        events = execution.to_history_output()["events"]
    except Exception:  # the worker never got to build its environment
        return []
    simplified: list[dict[str, Any]] = []
    for event in events:
        kind = str(getattr(event.get("type"), "value", event.get("type", "")))
        if kind.endswith("StateEntered"):
            details = event.get("stateEnteredEventDetails", {})
            simplified.append(
                {
                    "type": kind,
                    "state": details.get("name"),
                    "input": _parse(details.get("input")),
                    "output": None,
                }
            )
        elif kind.endswith("StateExited"):
            details = event.get("stateExitedEventDetails", {})
            simplified.append(
                {
                    "type": kind,
                    "state": details.get("name"),
                    "input": None,
                    "output": _parse(details.get("output")),
                }
            )
    return simplified


def run_machine(
    definition: dict[str, Any],
    functions: Mapping[str, Callable[[Any, Any], Any]],
    event: Any,
    *,
    name: str = "verify",
    substitutions: Mapping[str, str] | None = None,
) -> MachineRun:
    """Run ``definition`` once on ``event``.

    Every ``${Placeholder}`` becomes the fake ARN ``arn:aws:lambda:us-east-1:123456789012:
    function:Placeholder`` (unless ``substitutions`` gives its value), and ``functions`` maps the
    placeholder names (or plain function names used in ARNs) to handlers
    ``(event, context) -> result``. For many runs, use :class:`Engine`: it creates each state
    machine once.
    """
    with Engine() as engine:
        return engine.run(definition, functions, event, name=name, substitutions=substitutions)
