"""Handlers named by SAM / CloudFormation templates (`Handler: app.lambda_handler`)."""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from typing import Any

from untangle.facts.model import SourceError

_FUNCTION_TYPES = ("AWS::Serverless::Function", "AWS::Lambda::Function")
_LAYER_TYPES = {
    "AWS::Serverless::LayerVersion": "ContentUri",
    "AWS::Lambda::LayerVersion": "Content",
}
_MAX_TEMPLATE_BYTES = 5 * 1024 * 1024


def looks_like_template(name: str) -> bool:
    """SAM and CloudFormation templates by file name: any YAML file, and JSON files named like a
    template (`template.json`, `*.template.json`, `*.template`). Other JSON (API models, data)
    is never read."""
    lower = name.lower()
    if lower.endswith((".yaml", ".yml", ".template")):
        return True
    return lower.endswith(".json") and "template" in lower


@dataclass(frozen=True)
class TemplateHandler:
    template: str
    logical_id: str
    file: str  # absolute path of the handler's .py file
    function: str
    function_name: str | None
    # environment variables that name another resource: (VAR, logical id)
    environment: tuple[tuple[str, str], ...] = ()
    python: bool = True
    # the function's code folder (CodeUri), absolute
    code_dir: str = ""
    # folders its layers put on the import path (a layer's `python/`), absolute
    layers: tuple[str, ...] = ()
    # `MemorySize` (MB) and `Timeout` (s), its own or `Globals: Function:`; None when the
    # template gives none (Lambda then uses 128 MB and 3 s) or an expression (`!Ref Param`)
    memory_mb: int | None = None
    timeout_s: float | None = None


def _load_yaml(text: str) -> Any:
    import yaml

    # libyaml's loader when PyYAML was built with it: templates can be large
    base: Any = getattr(yaml, "CSafeLoader", yaml.SafeLoader)

    class Loader(base):  # type: ignore[misc]
        pass

    def unknown_tag(loader: Any, suffix: str, node: yaml.Node) -> Any:
        if isinstance(node, yaml.ScalarNode):
            return {suffix: loader.construct_scalar(node)}
        if isinstance(node, yaml.SequenceNode):
            return {suffix: loader.construct_sequence(node)}
        return {suffix: loader.construct_mapping(node)}

    Loader.add_multi_constructor("!", unknown_tag)
    return yaml.load(text, Loader=Loader)  # a SafeLoader subclass


def read_template(path: str) -> list[TemplateHandler] | SourceError:
    from untangle.files import read_bytes

    try:
        data = read_bytes(path, _MAX_TEMPLATE_BYTES)
    except OSError as exc:
        return SourceError(path, None, f"cannot read template: {exc.strerror or exc}")
    if len(data) > _MAX_TEMPLATE_BYTES:
        return []
    if b"Handler" not in data or not any(kind.encode() in data for kind in _FUNCTION_TYPES):
        return []
    try:
        text = data.decode("utf-8-sig")
        document = json.loads(text) if path.endswith(".json") else _load_yaml(text)
    except Exception as exc:  # yaml raises many types; every one is "not a template we can read"
        mark = getattr(getattr(exc, "problem_mark", None), "line", None)
        line = mark + 1 if mark is not None else getattr(exc, "lineno", None)  # YAML, JSON
        return SourceError(path, line, f"cannot read template: {one_line(exc)}")
    return list(_handlers(path, document))


def one_line(exc: Exception) -> str:
    """A YAML or JSON error as one line: what was being read, then what went wrong (the line
    number goes with the path)."""
    problem = getattr(exc, "problem", None)
    if problem is None:
        return str(exc).splitlines()[0] if str(exc) else type(exc).__name__
    context = getattr(exc, "context", None)
    return f"{context}: {problem}" if context else str(problem)


def _handlers(path: str, document: Any) -> Any:
    if not isinstance(document, dict):
        return
    resources = document.get("Resources")
    if not isinstance(resources, dict):
        return
    globals_ = document.get("Globals", {})
    global_function = globals_.get("Function", {}) if isinstance(globals_, dict) else {}
    if not isinstance(global_function, dict):
        global_function = {}
    directory = os.path.dirname(os.path.abspath(path))
    for logical_id, resource in resources.items():
        if not isinstance(resource, dict) or resource.get("Type") not in _FUNCTION_TYPES:
            continue
        props = resource.get("Properties") or {}
        if not isinstance(props, dict):
            continue
        handler = props.get("Handler", global_function.get("Handler"))
        runtime = props.get("Runtime", global_function.get("Runtime", "python"))
        if not isinstance(handler, str) or "." not in handler:
            handler = "unknown.unknown"
        python = not (isinstance(runtime, str) and not runtime.startswith("python"))
        code = props.get("CodeUri", global_function.get("CodeUri", "."))
        if resource.get("Type") == "AWS::Lambda::Function":
            code = "."
        if not isinstance(code, str) or code.startswith("s3://"):
            code = "."
        module, function = handler.rsplit(".", 1)
        file = os.path.normpath(os.path.join(directory, code, *module.split("."))) + ".py"
        name = props.get("FunctionName")
        # SAM's Globals apply to AWS::Serverless::Function only
        serverless_globals = global_function if resource.get("Type") == _FUNCTION_TYPES[0] else {}
        yield TemplateHandler(
            path,
            str(logical_id),
            file,
            function,
            name if isinstance(name, str) else None,
            tuple(_environment(props, global_function)),
            python,
            os.path.normpath(os.path.join(directory, code)),
            tuple(_layer_folders(props, global_function, resources, directory)),
            _setting(props, serverless_globals, "MemorySize"),
            _setting(props, serverless_globals, "Timeout"),
        )


def _setting(props: dict[str, Any], global_function: dict[str, Any], key: str) -> Any:
    """A positive number the function sets, else the `Globals` one; a parameter or an
    intrinsic (`!Ref MemoryParam`) is not known here: None."""
    value = props.get(key, global_function.get(key))
    if isinstance(value, str) and value.strip().isdigit():
        value = int(value)
    if isinstance(value, bool) or not isinstance(value, (int, float)) or value <= 0:
        return None
    return int(value) if key == "MemorySize" else float(value)


def _layer_folders(
    props: dict[str, Any],
    global_function: dict[str, Any],
    resources: dict[str, Any],
    directory: str,
) -> Any:
    """The import roots the function's `Layers:` give it: Lambda puts a layer's `python/`
    folder on `sys.path` (SAM's `BuildMethod: python3.x` builds the `ContentUri` into it)."""
    layers = props.get("Layers", global_function.get("Layers"))
    for layer in layers if isinstance(layers, list) else ():
        logical_id = _referenced(layer)
        resource = resources.get(logical_id) if logical_id else None
        if not isinstance(resource, dict) or resource.get("Type") not in _LAYER_TYPES:
            continue
        layer_props = resource.get("Properties") or {}
        content = (
            layer_props.get(_LAYER_TYPES[resource["Type"]])
            if isinstance(layer_props, dict)
            else None
        )
        if not isinstance(content, str) or content.startswith("s3://"):
            continue
        folder = os.path.normpath(os.path.join(directory, content))
        python = os.path.join(folder, "python")
        yield python if os.path.isdir(python) else folder


def _environment(props: dict[str, Any], global_function: dict[str, Any]) -> Any:
    for source in (global_function, props):
        env = source.get("Environment")
        variables = env.get("Variables") if isinstance(env, dict) else None
        if not isinstance(variables, dict):
            continue
        for key, value in variables.items():
            target = _referenced(value)
            if target:
                yield str(key), target


def _referenced(value: Any) -> str | None:
    """`!Ref X`, `!GetAtt X.Arn`, `{"Ref": X}`, `{"Fn::GetAtt": [X, "Arn"]}` → X."""
    if isinstance(value, dict) and len(value) == 1:
        ((key, inner),) = value.items()
        if key in ("Ref",) and isinstance(inner, str):
            return inner
        if key in ("GetAtt", "Fn::GetAtt"):
            if isinstance(inner, str):
                return inner.split(".", 1)[0]
            if isinstance(inner, list) and inner and isinstance(inner[0], str):
                return inner[0]
    return None
