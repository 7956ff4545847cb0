"""Run the original orchestrating handler in-process, its Lambda invokes served by Python.

:func:`run_original` patches ``botocore.client.BaseClient._make_api_call`` for the Lambda
``Invoke`` / ``InvokeAsync`` operations of every boto3 client (also module-global clients created
before the run): the call is answered by the callee handler from the ``functions`` table, keyed by
function name (a ``FunctionName`` given as an ARN, a partial ARN or with a ``:qualifier`` is
reduced to the name). The response is shaped as botocore returns it (``StatusCode``, a
``StreamingBody`` ``Payload``, ``FunctionError: "Unhandled"`` and the runtime's error payload when
the callee raises; ``InvocationType="Event"`` runs the callee and answers 202). ``time.sleep`` and
``asyncio.sleep`` return at once; the seconds are recorded. Every other AWS call goes to moto's
in-memory backends (``moto.mock_aws``) under fake credentials, so nothing reaches AWS.

aiobotocore / aioboto3 clients (``AioBaseClient._make_api_call``, a coroutine) are patched the
same way when aiobotocore is installed: Lambda invokes are served by the table with a payload whose
``read()`` is awaited, and every other call is answered by a synchronous botocore client of the
same service and region, that is by moto, its streaming bodies wrapped for ``await``.

:func:`load_handler` imports ``module.function`` from a code directory the way the Lambda runtime
does; :func:`functions_from_template` builds the ``functions`` table from a SAM template, usable by
both :func:`run_original` and :func:`untangle.engine.machine.run_machine`.

This runs user code, by design: keep it off the ``untangle scan`` / ``untangle plan`` path.
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib
import importlib.abc
import io
import json
import os
import re
import sys
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, SupportsIndex

from untangle.engine.guard import note_memory_error
from untangle.engine.machine import (
    MOTO_CONFIG,
    LambdaContext,
    fake_aws_environment,
    fake_function_arn,
    function_name_of,
    lambda_error_payload,
    quiet_loggers,
)

_IMPORT_LOCK = threading.RLock()
_RUN_LOCK = threading.RLock()
_FUNCTION_TYPES = ("AWS::Serverless::Function", "AWS::Lambda::Function")
_LAYER_TYPES = ("AWS::Serverless::LayerVersion", "AWS::Lambda::LayerVersion")


@dataclass(frozen=True)
class OriginalRun:
    """The outcome of one run of the original handler.

    ``status`` is ``"SUCCEEDED"`` or ``"FAILED"``; ``output`` is the handler's result round-tripped
    through JSON (what a synchronous caller would get); ``error`` is the exception's class name and
    ``cause`` ``str(exc)``; ``calls`` lists ``(function name, payload)`` of every Lambda invoke, in
    order, async ones included; ``waited_seconds`` adds up the skipped sleeps.
    """

    status: str
    output: Any
    error: str | None
    cause: str | None
    waited_seconds: float
    calls: list[tuple[str, Any]]
    async_calls: list[str] = field(default_factory=list)


# ---------------------------------------------------------------- loading code


def _top_level_names(code_dir: str) -> set[str]:
    names: set[str] = set()
    try:
        entries = os.listdir(code_dir)
    except OSError:
        return names
    for entry in entries:
        if entry.endswith(".py"):
            names.add(entry[:-3])
        elif os.path.isfile(os.path.join(code_dir, entry, "__init__.py")):
            names.add(entry)
    return names


def _purge(names: set[str]) -> None:
    for module in list(sys.modules):
        if module.split(".", 1)[0] in names:
            del sys.modules[module]


def load_handler(
    code_dir: str, handler: str, layer_paths: Sequence[str] = ()
) -> Callable[..., Any]:
    """Import ``module.function`` (``Handler: app.lambda_handler``, also ``pkg/mod.fn``) from
    ``code_dir`` in a fresh module namespace, as the Lambda runtime does.

    ``code_dir`` goes first on ``sys.path`` for the import only (then ``layer_paths``, the
    runtime's ``/opt/python``), and the modules they hold are purged from ``sys.modules`` before
    and after: every app of a repository can have its own ``app.py`` and ``shared`` layer. The
    import runs under fake AWS credentials and region, so module-global ``boto3.client("lambda")``
    works and cannot reach AWS.
    """
    if "." not in handler:
        raise ValueError(f"handler {handler!r} is not module.function")
    module_name, function_name = handler.rsplit(".", 1)
    module_name = module_name.replace("/", ".")
    paths = [os.path.abspath(code_dir), *(os.path.abspath(p) for p in layer_paths)]
    names = {module_name.split(".", 1)[0]}
    for path in paths:
        names |= _top_level_names(path)
    with _IMPORT_LOCK, fake_aws_environment(), _moto_loaded():
        _purge(names)
        sys.path[0:0] = paths
        importlib.invalidate_caches()
        # verify reads the app, it must not leave __pycache__ folders in it
        writes_bytecode, sys.dont_write_bytecode = sys.dont_write_bytecode, True
        try:
            module = importlib.import_module(module_name)
        finally:
            sys.dont_write_bytecode = writes_bytecode
            for path in paths:
                with contextlib.suppress(ValueError):
                    sys.path.remove(path)
            _purge(names)
    function = getattr(module, function_name, None)
    if not callable(function):
        raise AttributeError(f"{handler}: {module_name} has no function {function_name!r}")
    return function  # type: ignore[no-any-return]


@contextlib.contextmanager
def _moto_loaded() -> Iterator[None]:
    # moto registers its botocore stubber on import: clients created afterwards (a module-global
    # client of the handler) are intercepted by mock_aws. Optional: without moto, only Lambda
    # invokes are served and other calls fail on the fake credentials.
    with contextlib.suppress(ImportError):
        importlib.import_module("moto.core.models")
    yield


# ---------------------------------------------------------------- templates


def _load_template(path: str) -> Any:
    from untangle.templates import _load_yaml

    with open(path, encoding="utf-8") as handle:
        text = handle.read()
    stripped = text.lstrip()
    if stripped.startswith("{"):
        with contextlib.suppress(json.JSONDecodeError):
            return json.loads(text)
    return _load_yaml(text)


def _pascal(text: str) -> str:
    # the same rule as untangle.plan._pascal (placeholders ${<Pascal>FunctionArn})
    words = re.split(r"[^0-9A-Za-z]+", text)
    result = "".join(
        w[:1].upper() + w[1:].lower() if w.isupper() else w[:1].upper() + w[1:] for w in words if w
    )
    return result if result and not result[0].isdigit() else "F" + result


class TemplateFunction:
    """One function of a template: loads its handler on first call, and runs it with the
    template's environment variables set in ``os.environ``."""

    def __init__(
        self,
        logical_id: str,
        function_name: str,
        code_dir: str,
        handler: str,
        environment: Mapping[str, str],
        timeout_seconds: int = 3,
        layer_paths: Sequence[str] = (),
    ) -> None:
        self.logical_id = logical_id
        self.function_name = function_name
        self.code_dir = code_dir
        self.handler = handler
        self.environment = dict(environment)
        self.timeout_seconds = timeout_seconds
        self.layer_paths = tuple(layer_paths)
        self._loaded: Callable[..., Any] | None = None

    def __repr__(self) -> str:
        return f"TemplateFunction({self.function_name!r}, {self.code_dir!r}, {self.handler!r})"

    def to_json(self) -> dict[str, Any]:
        """What the function is (not whether it was loaded), as JSON."""
        return {
            "logical_id": self.logical_id,
            "function_name": self.function_name,
            "code_dir": self.code_dir,
            "handler": self.handler,
            "environment": self.environment,
            "timeout_seconds": self.timeout_seconds,
            "layer_paths": list(self.layer_paths),
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> TemplateFunction:
        return cls(**data)

    def load(self) -> Callable[..., Any]:
        with _IMPORT_LOCK:
            if self._loaded is None:
                with environment(self.environment):
                    self._loaded = load_handler(self.code_dir, self.handler, self.layer_paths)
            return self._loaded

    def __call__(self, event: Any, context: Any = None) -> Any:
        function = self.load()
        if context is None:
            context = LambdaContext.for_function(self.function_name, self.timeout_seconds)
        with environment(self.environment):
            return function(event, context)


_ENV_LOCK = threading.Lock()
_ENV_LAYERS: list[tuple[object, Mapping[str, str]]] = []  # active environment() blocks, in order
_ENV_BASE: dict[str, str | None] = {}  # values before the first active block set each key


@contextlib.contextmanager
def environment(variables: Mapping[str, str]) -> Iterator[None]:
    """Set ``variables`` in ``os.environ`` for the block, restored afterwards.

    Re-entrant and thread-safe: a callee invoked by the orchestrator sees its own variables, then
    the orchestrator its own again; blocks running at once in several threads (Map iterations,
    Parallel branches) overlap (the latest wins for a shared key: one process has one
    environment) and the values before the first of them come back once all have ended.
    """
    if not variables:
        yield
        return
    token = object()
    with _ENV_LOCK:
        for key in variables:
            if key not in _ENV_BASE:
                _ENV_BASE[key] = os.environ.get(key)
        _ENV_LAYERS.append((token, dict(variables)))
        os.environ.update(variables)
    try:
        yield
    finally:
        with _ENV_LOCK:
            _ENV_LAYERS[:] = [layer for layer in _ENV_LAYERS if layer[0] is not token]
            for key in variables:
                values = [layer[key] for _, layer in _ENV_LAYERS if key in layer]
                value = values[-1] if values else _ENV_BASE.pop(key)
                if value is None:
                    os.environ.pop(key, None)
                else:
                    os.environ[key] = value


def functions_from_template(template_path: str) -> dict[str, TemplateFunction]:
    """The template's ``AWS::Serverless::Function`` (and ``AWS::Lambda::Function`` with local
    code) resources as handlers, keyed by every name a runner may look them up by:

    - the ``FunctionName`` (the logical id when there is none): what ``run_original`` sees in
      ``lambda_client.invoke(FunctionName=...)``;
    - ``<LogicalId>``, ``<LogicalId>Arn`` and ``<Pascal(FunctionName)>FunctionArn``, and
      ``<Pascal(VAR)>Arn`` for every environment variable ``VAR: !GetAtt/!Ref <LogicalId>``:
      the ``${Placeholder}`` names ``untangle plan`` writes, which ``run_machine`` turns into
      fake ARNs ending in the placeholder.

    Environment variables (``Globals`` and the function's own) are resolved: ``!Ref X`` -> the
    function name of X (a parameter's default, else X), ``!GetAtt X.Arn`` -> a fake ARN of it,
    ``!Sub`` with ``${X}`` / ``${X.Arn}`` / ``${AWS::Region}`` likewise.
    """
    document = _load_template(template_path)
    if not isinstance(document, dict):
        raise ValueError(f"{template_path}: not a template")
    resources = document.get("Resources") or {}
    parameters = document.get("Parameters") or {}
    globals_ = document.get("Globals") or {}
    global_function = (globals_.get("Function") or {}) if isinstance(globals_, dict) else {}
    directory = os.path.dirname(os.path.abspath(template_path))

    names: dict[str, str] = {}
    for logical_id, resource in resources.items():
        if isinstance(resource, dict) and resource.get("Type") in _FUNCTION_TYPES:
            props = resource.get("Properties") or {}
            name = props.get("FunctionName")
            names[str(logical_id)] = name if isinstance(name, str) else str(logical_id)

    def resolve(value: Any) -> str:
        if isinstance(value, str | int | float | bool):
            return str(value).lower() if isinstance(value, bool) else str(value)
        if isinstance(value, dict) and len(value) == 1:
            ((key, inner),) = value.items()
            if key == "Ref" and isinstance(inner, str):
                return ref(inner)
            if key in ("GetAtt", "Fn::GetAtt"):
                parts = inner.split(".", 1) if isinstance(inner, str) else list(inner)
                return get_att(str(parts[0]), str(parts[1]) if len(parts) > 1 else "Arn")
            if key in ("Sub", "Fn::Sub"):
                text = inner if isinstance(inner, str) else inner[0]
                return re.sub(r"\$\{([^}!]+)\}", lambda m: sub(m.group(1)), str(text))
        return json.dumps(value)

    def ref(target: str) -> str:
        if target in names:
            return names[target]
        if target == "AWS::Region":
            return "us-east-1"
        if target == "AWS::AccountId":
            return "123456789012"
        parameter = parameters.get(target)
        if isinstance(parameter, dict) and "Default" in parameter:
            return str(parameter["Default"])
        return target

    def get_att(target: str, attribute: str) -> str:
        if target in names and attribute == "Arn":
            return fake_function_arn(names[target])
        return f"{target}.{attribute}"

    def sub(expression: str) -> str:
        if "." in expression:
            target, attribute = expression.split(".", 1)
            return get_att(target, attribute)
        return ref(expression)

    table: dict[str, TemplateFunction] = {}
    by_logical: dict[str, TemplateFunction] = {}
    aliases: list[tuple[str, str]] = []  # (key, logical id), added after the primary keys
    for logical_id, resource in resources.items():
        if not isinstance(resource, dict) or resource.get("Type") not in _FUNCTION_TYPES:
            continue
        props = resource.get("Properties") or {}
        handler = props.get("Handler", global_function.get("Handler"))
        code = props.get("CodeUri", global_function.get("CodeUri", "."))
        if not isinstance(handler, str) or "." not in handler:
            continue
        if not isinstance(code, str) or code.startswith("s3://"):
            code = "."
        variables: dict[str, str] = {}
        for source in (global_function, props):
            env = source.get("Environment") if isinstance(source, dict) else None
            declared = env.get("Variables") if isinstance(env, dict) else None
            if isinstance(declared, dict):
                for key, value in declared.items():
                    variables[str(key)] = resolve(value)
                    target = _target(value)
                    if target in names:
                        aliases.append((f"{_pascal(str(key))}Arn", target))
        timeout = props.get("Timeout", global_function.get("Timeout", 3))
        layers = props.get("Layers", global_function.get("Layers")) or []
        layer_paths = [
            path
            for layer in (layers if isinstance(layers, list) else [])
            for path in _layer_paths(resources, _target(layer), directory)
        ]
        function = TemplateFunction(
            str(logical_id),
            names[str(logical_id)],
            os.path.normpath(os.path.join(directory, code)),
            handler,
            variables,
            int(timeout) if isinstance(timeout, int | float) else 3,
            layer_paths,
        )
        by_logical[function.logical_id] = function
        table[function.function_name] = function
        aliases.append((function.logical_id, function.logical_id))
        aliases.append((f"{function.logical_id}Arn", function.logical_id))
        aliases.append((f"{_pascal(function.function_name)}FunctionArn", function.logical_id))
    for key, logical_id in aliases:
        if logical_id in by_logical:
            table.setdefault(key, by_logical[logical_id])
    return table


def _layer_paths(resources: Mapping[str, Any], logical_id: str | None, directory: str) -> list[str]:
    """Where the runtime would find a local layer's modules (``/opt/python``): its ``python/``
    folder when it has one; for a package folder (``shared/__init__.py``, built into
    ``python/shared/`` by a Makefile) the folder above it; else the folder itself."""
    resource = resources.get(logical_id or "")
    if not isinstance(resource, dict) or resource.get("Type") not in _LAYER_TYPES:
        return []
    props = resource.get("Properties") or {}
    content = props.get("ContentUri", props.get("Content"))
    if not isinstance(content, str) or content.startswith("s3://"):
        return []
    root = os.path.normpath(os.path.join(directory, content))
    if os.path.isdir(os.path.join(root, "python")):
        return [os.path.join(root, "python")]
    if os.path.isfile(os.path.join(root, "__init__.py")):
        return [os.path.dirname(root)]
    return [root]


def _target(value: Any) -> str | None:
    if isinstance(value, dict) and len(value) == 1:
        ((key, inner),) = value.items()
        if key == "Ref" and isinstance(inner, str):
            return inner
        if key in ("GetAtt", "Fn::GetAtt"):
            if isinstance(inner, str):
                return inner.split(".", 1)[0]
            if isinstance(inner, list) and inner and isinstance(inner[0], str):
                return inner[0]
    return None


# ---------------------------------------------------------------- running


class _StreamingPayload(io.BytesIO):
    """What ``response["Payload"]`` is: botocore's ``StreamingBody`` when botocore is there."""


def _streaming_body(data: bytes) -> Any:
    try:
        streaming_body = importlib.import_module("botocore.response").StreamingBody
    except ImportError:  # pragma: no cover - botocore comes with boto3
        return _StreamingPayload(data)
    return streaming_body(io.BytesIO(data), len(data))


def _payload_bytes(payload: Any) -> bytes:
    if payload is None:
        return b""
    if isinstance(payload, bytes | bytearray):
        return bytes(payload)
    if isinstance(payload, str):
        return payload.encode("utf-8")
    if hasattr(payload, "read"):
        return _payload_bytes(payload.read())
    return bytes(payload)


class _Session:
    def __init__(self, functions: Mapping[str, Callable[..., Any]]) -> None:
        self.functions = functions
        self.calls: list[tuple[str, Any]] = []
        self.async_calls: list[str] = []
        self.waited = 0.0
        self.lock = threading.Lock()

    def wait(self, seconds: Any) -> None:
        with self.lock, contextlib.suppress(TypeError, ValueError):
            self.waited += max(0.0, float(seconds))

    def _not_found(self, client: Any, operation: str, reference: str) -> Exception:
        # the modeled exception class, as botocore raises it: client.exceptions.X(ClientError)
        code = "ResourceNotFoundException"
        error_class: type[Exception] = client.exceptions.from_code(code)
        message = f"Function not found: {fake_function_arn(function_name_of(reference))}"
        return error_class(
            {
                "Error": {"Code": code, "Message": message},
                "ResponseMetadata": {"HTTPStatusCode": 404},
                "Type": "User",
                "Message": message,
            },
            operation,
        )

    def _call(self, name: str, raw: bytes) -> tuple[bytes, str | None]:
        text = raw.decode("utf-8") if raw else ""
        try:
            event = json.loads(text) if text else {}
        except json.JSONDecodeError:
            event = text
        with self.lock:
            self.calls.append((name, event))
        handler = self.functions[name]
        timeout = getattr(handler, "timeout_seconds", 900)
        context = LambdaContext.for_function(name, int(timeout))
        try:
            result = handler(event, context)
        except Exception as exc:
            return json.dumps(lambda_error_payload(exc)).encode(), "Unhandled"
        try:
            return json.dumps(result).encode(), None
        except (TypeError, ValueError) as exc:
            error = {
                "errorType": "Runtime.MarshalError",
                "errorMessage": f"Unable to marshal response: {exc}",
            }
            return json.dumps(error).encode(), "Unhandled"

    def invoke(self, client: Any, operation: str, params: Mapping[str, Any]) -> dict[str, Any]:
        reference = str(params.get("FunctionName", ""))
        name = function_name_of(reference)
        if name not in self.functions:
            raise self._not_found(client, operation, reference)
        meta = {
            "HTTPStatusCode": 200,
            "RequestId": "untangle",
            "HTTPHeaders": {},
            "RetryAttempts": 0,
        }
        if operation == "InvokeAsync":
            with self.lock:
                self.async_calls.append(name)
            self._call(name, _payload_bytes(params.get("InvokeArgs")))
            return {"Status": 202, "ResponseMetadata": {**meta, "HTTPStatusCode": 202}}
        invocation_type = params.get("InvocationType", "RequestResponse")
        if invocation_type == "DryRun":
            return {"StatusCode": 204, "Payload": _streaming_body(b""), "ResponseMetadata": meta}
        if invocation_type == "Event":
            with self.lock:
                self.async_calls.append(name)
            # Lambda answers 202 and runs the callee later; its errors never reach the caller
            self._call(name, _payload_bytes(params.get("Payload")))
            return {
                "StatusCode": 202,
                "Payload": _streaming_body(b""),
                "ResponseMetadata": {**meta, "HTTPStatusCode": 202},
            }
        data, function_error = self._call(name, _payload_bytes(params.get("Payload")))
        response: dict[str, Any] = {
            "StatusCode": 200,
            "ExecutedVersion": "$LATEST",
            "Payload": _streaming_body(data),
            "ResponseMetadata": meta,
        }
        if function_error:
            response["FunctionError"] = function_error
        return response


class _AsyncStreamingBody:
    """What an aiobotocore response's ``Payload`` is to the handler: ``await body.read()``,
    ``async with body as stream``, ``async for chunk in body.iter_chunks()``."""

    def __init__(self, data: bytes) -> None:
        self._stream = io.BytesIO(data)

    async def read(self, amt: int | None = None) -> bytes:
        return self._stream.read() if amt is None else self._stream.read(amt)

    async def iter_chunks(self, chunk_size: int = 1024) -> Any:
        while chunk := self._stream.read(chunk_size):
            yield chunk

    def close(self) -> None:
        self._stream.close()

    async def __aenter__(self) -> _AsyncStreamingBody:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        self.close()


def _async_bodies(value: Any) -> Any:
    if isinstance(value, dict):
        return {key: _async_bodies(item) for key, item in value.items()}
    if hasattr(value, "read") and not isinstance(value, str | bytes):
        return _AsyncStreamingBody(_payload_bytes(value))
    return value


def warm_up() -> None:
    """Import what the first run imports (moto's stubber), so that a process can do it before
    it has anything to run."""
    with contextlib.suppress(ImportError):
        importlib.import_module("moto.core.models")


_AIO_CLIENT_MODULE = "aiobotocore.client"


class _PatchOnImport(importlib.abc.MetaPathFinder):
    """Calls ``patch(module)`` once the module ``name`` is imported (a finder first in
    ``sys.meta_path``, wrapping the loader the other finders find)."""

    def __init__(self, name: str, patch: Callable[[Any], None]) -> None:
        self.name = name
        self.patch = patch

    def find_spec(self, fullname: str, path: Any, target: Any = None) -> Any:
        if fullname != self.name:
            return None
        for finder in sys.meta_path:
            if finder is self or not hasattr(finder, "find_spec"):
                continue
            spec = finder.find_spec(fullname, path, target)
            if spec is not None:
                break
        else:
            return None
        loader: Any = spec.loader
        patch = self.patch
        if loader is None or not hasattr(loader, "exec_module"):
            return spec

        class _Loader(importlib.abc.Loader):
            def create_module(self, spec: Any) -> Any:
                return loader.create_module(spec)

            def exec_module(self, module: Any) -> None:
                loader.exec_module(module)
                patch(module)

            def __getattr__(self, name: str) -> Any:  # get_source, is_package …
                return getattr(loader, name)

        spec.loader = _Loader()
        return spec


@contextlib.contextmanager
def _patched_aio(session: _Session) -> Iterator[None]:
    """aiobotocore's clients answered like botocore's for the block: at once when aiobotocore
    is imported, else when the app imports it (importing it for every app would cost each
    verify a fifth of its start-up)."""
    patched: list[tuple[Any, Any]] = []  # (AioBaseClient, its own _make_api_call)
    sync_clients: dict[tuple[str, str | None], Any] = {}

    def sync_client(client: Any) -> Any:
        # created inside the run, so moto's stubber (registered on import) answers it
        key = (client.meta.service_model.service_name, client.meta.region_name)
        if key not in sync_clients:
            botocore_session = importlib.import_module("botocore.session").Session()
            sync_clients[key] = botocore_session.create_client(key[0], region_name=key[1])
        return sync_clients[key]

    async def aio_make_api_call(client: Any, operation_name: str, api_params: Any) -> Any:
        service = client.meta.service_model.service_name
        if service == "lambda" and operation_name in ("Invoke", "InvokeAsync"):
            return _async_bodies(session.invoke(client, operation_name, api_params))
        client_error = importlib.import_module("botocore.exceptions").ClientError
        try:
            response = sync_client(client)._make_api_call(operation_name, api_params)
        except client_error as exc:
            # the aio client's own modeled class, so `except client.exceptions.X` matches
            code = str(exc.response.get("Error", {}).get("Code", ""))
            raise client.exceptions.from_code(code)(exc.response, operation_name) from None
        return _async_bodies(response)

    def patch(module: Any) -> None:
        aio_client = getattr(module, "AioBaseClient", None)
        if aio_client is not None:
            patched.append((aio_client, aio_client._make_api_call))
            aio_client._make_api_call = aio_make_api_call

    hook = None
    if _AIO_CLIENT_MODULE in sys.modules:
        patch(sys.modules[_AIO_CLIENT_MODULE])
    else:
        hook = _PatchOnImport(_AIO_CLIENT_MODULE, patch)
        sys.meta_path.insert(0, hook)
    try:
        yield
    finally:
        if hook is not None:
            with contextlib.suppress(ValueError):
                sys.meta_path.remove(hook)
        for aio_client, original in reversed(patched):
            aio_client._make_api_call = original


@contextlib.contextmanager
def _patched(session: _Session, handler: Callable[..., Any]) -> Iterator[None]:
    base_client: Any = importlib.import_module("botocore.client").BaseClient
    original_api_call = base_client._make_api_call
    original_sleep = time.sleep
    original_async_sleep = asyncio.sleep

    def make_api_call(client: Any, operation_name: str, api_params: Any) -> Any:
        service = client.meta.service_model.service_name
        if service == "lambda" and operation_name in ("Invoke", "InvokeAsync"):
            return session.invoke(client, operation_name, api_params)
        return original_api_call(client, operation_name, api_params)

    def sleep(seconds: float | SupportsIndex) -> None:
        session.wait(seconds)

    async def async_sleep(delay: float, result: Any = None) -> Any:
        session.wait(delay)
        await original_async_sleep(0)
        return result

    # `from time import sleep` in the handler's module binds the original: patch those too
    module_globals: dict[str, Any] = getattr(handler, "__globals__", None) or {}
    rebound = {
        key: value
        for key, value in module_globals.items()
        if value is original_sleep or value is original_async_sleep
    }
    base_client._make_api_call = make_api_call
    time.sleep = sleep
    asyncio.sleep = async_sleep
    for key, value in rebound.items():
        module_globals[key] = sleep if value is original_sleep else async_sleep
    try:
        yield
    finally:
        base_client._make_api_call = original_api_call
        time.sleep = original_sleep
        asyncio.sleep = original_async_sleep
        module_globals.update(rebound)


@contextlib.contextmanager
def _mock_aws() -> Iterator[None]:
    try:
        moto = importlib.import_module("moto")
    except ImportError:
        yield  # fake credentials only: non-Lambda calls fail instead of reaching AWS
        return
    with moto.mock_aws(config=MOTO_CONFIG):
        yield


class MarshalError(Exception):
    """The handler returned something JSON cannot encode (the runtime's Runtime.MarshalError)."""


def _marshal(result: Any) -> Any:
    try:
        return json.loads(json.dumps(result))
    except (TypeError, ValueError) as exc:
        raise MarshalError(f"Unable to marshal response: {exc}") from exc


def _unwrap(handler: Callable[..., Any]) -> Callable[..., Any]:
    if isinstance(handler, TemplateFunction):
        return handler.load()
    return handler


def run_original(
    handler: Callable[..., Any],
    functions: Mapping[str, Callable[..., Any]],
    event: Any,
    *,
    env: Mapping[str, str] | None = None,
    context: Any = None,
) -> OriginalRun:
    """Run ``handler(event, context)`` with its Lambda invokes served by ``functions``.

    ``functions`` is keyed by function name (``"validate-payment"``); a
    :class:`TemplateFunction` (from :func:`functions_from_template`) as ``handler`` runs with its
    template's environment variables, and ``env`` adds more.
    """
    session = _Session(functions)
    name = getattr(handler, "function_name", getattr(handler, "__name__", "handler"))
    if context is None:
        context = LambdaContext.for_function(str(name))
    with _RUN_LOCK, quiet_loggers(), fake_aws_environment(), environment(env or {}):
        target = _unwrap(handler)
        with _mock_aws(), _patched(session, target), _patched_aio(session):
            try:
                result = handler(event, context)
                if asyncio.iscoroutine(result):
                    result = asyncio.run(result)
                output = _marshal(result)
            except Exception as exc:
                note_memory_error(exc)
                return OriginalRun(
                    status="FAILED",
                    output=None,
                    error="Runtime.MarshalError"
                    if isinstance(exc, MarshalError)
                    else type(exc).__name__,
                    cause=str(exc),
                    waited_seconds=session.waited,
                    calls=list(session.calls),
                    async_calls=list(session.async_calls),
                )
    return OriginalRun(
        status="SUCCEEDED",
        output=output,
        error=None,
        cause=None,
        waited_seconds=session.waited,
        calls=list(session.calls),
        async_calls=list(session.async_calls),
    )
