"""Check generated state machine definitions with two real validators.

- `asl_errors`: the npm package asl-validator 4.0.0, run as a library in one node process for a
  whole batch of definitions. It catches every defect we know of (dangling Next, unreachable
  states, missing terminal state, malformed paths, JSONPath fields in JSONata states, ...).
- `cfn_lint_errors`: cfn-lint's E3601 on each definition wrapped in a plain
  `AWS::StepFunctions::StateMachine` resource (cfn-lint 1.x never checks the definition of an
  `AWS::Serverless::StateMachine`), a whole batch in one template. It misses dangling
  Next/Choice/Catch targets, unreachable states and malformed JSONata expressions, but reads the
  definition as CloudFormation will (after `DefinitionSubstitutions`).

Measured on the dev machine (2 cores, node v20.20, asl-validator 4.0.0, cfn-lint 1.58.0), with the
definitions of tests/test_validate.py:
- asl_errors, 20 definitions in one call: 2.3-2.5 s wall (2.7 s for 20 copies of the 7-state
  JSONata example). One definition: 0.45 s, mostly node start and require; each further one costs
  about 0.1 s, since asl-validator builds a new Ajv with all its schemas on every call. Batch them.
  Since the node script shares one Ajv across the batch, the 31 definitions of
  fixtures/article take 2.1-2.7 s in one call where they took 13.8 s (both on a machine loaded
  to 9 on 2 cores): a further definition costs milliseconds.
- cfn_lint_errors: a template cost 0.23-0.53 s however small (median 0.31 s; 20 definitions one
  by one took 7.0 s in all), most of it loading cfn-lint's rules again, a further state machine
  in it about 0.04 s of CPU (50 definitions of a generated project: 2.3 s in one template, 0.45 s
  each alone). The rules are now loaded once a process (`_cfn_lint_rules`, about 1.1 s with the
  import), and 200 definitions in two templates take 5.2 s (0.026 s each).
"""

from __future__ import annotations

import importlib
import json
import os
import re
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

Definition = dict[str, Any]

ASL_VALIDATOR_VERSION = "4.0.0"
NODE_DIR_NAME = ".untangle-node"
INSTALL_HINT = f"npm install --prefix {NODE_DIR_NAME} asl-validator@{ASL_VALIDATOR_VERSION}"

# Placeholders such as `${ProcessOrderFunctionArn}`; CloudFormation fills them from
# DefinitionSubstitutions.
PLACEHOLDER = re.compile(r"\$\{([^}]+)\}")

# Fields that exist in only one query language; used to explain asl-validator's terse
# "QueryLanguage ... must be equal to one of the allowed values".
_JSONPATH_ONLY: tuple[str, ...] = (
    "InputPath",
    "OutputPath",
    "Parameters",
    "ResultPath",
    "ResultSelector",
    "ItemsPath",
)
_JSONATA_ONLY: tuple[str, ...] = ("Arguments", "Output", "Items")

# Reads a JSON list of definitions on stdin, writes a JSON list of {isValid, errors} on stdout.
# argv[1] is the asl-validator package directory. A definition that makes the validator throw
# gets one VALIDATOR_CRASHED error instead of ending the whole batch.
_NODE_SCRIPT = r"""
// asl-validator builds a new Ajv, compiling all its schemas, for every definition (about 0.1 s
// each): the first one is kept and handed out again, with the same schemas and options (its
// own formats are registered again on it, to the same functions; ajv-formats' plugin, which
// refuses to run twice on one Ajv, only once)
const resolve = (name) => require(require.resolve(name, { paths: [process.argv[1]] }));
const ajvModule = resolve("ajv");
const Ajv = ajvModule.default;
let shared = null;
ajvModule.default = function SharedAjv(options) {
  if (shared === null) shared = new Ajv(options);
  return shared;
};
const formatsModule = resolve("ajv-formats");
const addFormats = formatsModule.default;
const withFormats = new WeakSet();
formatsModule.default = function addFormatsOnce(ajv, options) {
  if (!withFormats.has(ajv)) {
    withFormats.add(ajv);
    addFormats(ajv, options);
  }
  return ajv;
};
const validator = require(process.argv[1]);
const chunks = [];
process.stdin.setEncoding("utf8");
process.stdin.on("data", (chunk) => chunks.push(chunk));
process.stdin.on("end", () => {
  const definitions = JSON.parse(chunks.join(""));
  const results = definitions.map((definition) => {
    try {
      const result = validator(definition, { checkPaths: true, checkArn: true });
      return { isValid: result.isValid, errors: result.errors };
    } catch (err) {
      const message = err && err.stack ? err.stack : String(err);
      return { isValid: false, errors: [{ "Error code": "VALIDATOR_CRASHED", Message: message }] };
    }
  });
  process.stdout.write(JSON.stringify(results));
});
"""


class ValidatorUnavailable(Exception):
    """A validator (node + asl-validator, or cfn-lint) is not installed where untangle looks."""


def _checkout_root() -> Path:
    """The directory holding the `untangle` package (the repository in a source checkout)."""
    return Path(__file__).resolve().parent.parent


def find_asl_validator() -> Path:
    """The asl-validator package directory (`.../node_modules/asl-validator`).

    Looks in `$UNTANGLE_ASL_VALIDATOR_DIR` when set (and only there), else in `.untangle-node/`
    of the current directory or one of its parents, else of untangle's own checkout.
    """
    configured = os.environ.get("UNTANGLE_ASL_VALIDATOR_DIR")
    if configured:
        package = Path(configured) / "node_modules" / "asl-validator"
        if (package / "package.json").is_file():
            return package
        raise ValidatorUnavailable(
            f"UNTANGLE_ASL_VALIDATOR_DIR={configured} has no node_modules/asl-validator; "
            f"install it there with: npm install --prefix {configured} "
            f"asl-validator@{ASL_VALIDATOR_VERSION}"
        )
    cwd = Path.cwd().resolve()
    for base in (cwd, *cwd.parents, _checkout_root(), Path(sys.prefix)):
        package = base / NODE_DIR_NAME / "node_modules" / "asl-validator"
        if (package / "package.json").is_file():
            return package
    on_path = _package_of_command(shutil.which("asl-validator"))
    if on_path is not None:
        return on_path
    raise ValidatorUnavailable(
        f"asl-validator is not installed (looked in $UNTANGLE_ASL_VALIDATOR_DIR, then "
        f"{NODE_DIR_NAME}/ of {cwd}, its parents, {_checkout_root()} and {sys.prefix}, then "
        f"for an `asl-validator` command on PATH). Install it with: "
        f"npm install -g asl-validator@{ASL_VALIDATOR_VERSION}, or {INSTALL_HINT} "
        f"(needs node and npm), or point UNTANGLE_ASL_VALIDATOR_DIR at a directory "
        f"containing node_modules/asl-validator."
    )


def _package_of_command(command: str | None) -> Path | None:
    """`npm install -g asl-validator` puts a command on PATH that links into the package:
    the package directory is the first parent of its real path with asl-validator's
    package.json."""
    if command is None:
        return None
    for parent in Path(command).resolve().parents:
        manifest = parent / "package.json"
        if manifest.is_file():
            try:
                name = json.loads(manifest.read_text(encoding="utf-8")).get("name")
            except (OSError, ValueError, AttributeError):
                return None
            return parent if name == "asl-validator" else None
    return None


def asl_errors(definitions: list[Definition]) -> list[list[str]]:
    """asl-validator's errors for each definition (an empty list when it is valid).

    One node process checks the whole batch. Raises `ValidatorUnavailable` when node or the
    package is missing, `RuntimeError` when the node process fails.
    """
    if not definitions:
        return []
    package = find_asl_validator()
    node = shutil.which("node")
    if node is None:
        raise ValidatorUnavailable(
            f"node is not on PATH; asl-validator needs it (install Node.js, then {INSTALL_HINT})"
        )
    try:
        proc = subprocess.run(
            [node, "-e", _NODE_SCRIPT, str(package)],
            input=json.dumps(definitions),
            capture_output=True,
            text=True,
            encoding="utf-8",
            timeout=60 + len(definitions),
            check=False,
        )
    except subprocess.TimeoutExpired as exc:
        raise RuntimeError(f"asl-validator timed out after {exc.timeout} s") from exc
    if proc.returncode != 0:
        raise RuntimeError(f"asl-validator (node) exited {proc.returncode}: {proc.stderr.strip()}")
    try:
        results = json.loads(proc.stdout)
    except json.JSONDecodeError as exc:
        raise RuntimeError(f"asl-validator printed no JSON result: {proc.stdout[:500]!r}") from exc
    if not isinstance(results, list) or len(results) != len(definitions):
        raise RuntimeError(f"asl-validator returned {results!r:.500} for {len(definitions)} inputs")
    return [
        [_describe_asl_error(definition, error) for error in result.get("errors", [])]
        for definition, result in zip(definitions, results)
    ]


def _describe_asl_error(definition: Definition, error: dict[str, Any]) -> str:
    code = str(error.get("Error code", "ERROR"))
    message = str(error.get("Message", ""))
    schema_error = error.get("schemaError")
    if not isinstance(schema_error, dict):
        return f"{code}: {message}"
    pointer = str(schema_error.get("instancePath", ""))
    # asl-validator words these "<pointer> is invalid. <ajv message>".
    detail = message.removeprefix(f"{pointer} is invalid. ")
    return f"{code} at {pointer or '/'}: {detail}{_mixed_language_hint(definition, pointer)}"


def _mixed_language_hint(definition: Definition, pointer: str) -> str:
    """Name the fields of the other query language when a schema error is on a state.

    asl-validator reports a state that mixes JSONPath and JSONata fields tersely, e.g.
    "/States/A/QueryLanguage: must be equal to one of the allowed values" (it stamps every state
    with its effective QueryLanguage, then tries the other language's schema) or
    "/States/A: must match exactly one schema in oneOf".
    """
    state = _resolve_pointer(definition, pointer.removesuffix("/QueryLanguage"))
    if not isinstance(state, dict) or "Type" not in state:
        return ""
    language = state.get("QueryLanguage") or definition.get("QueryLanguage") or "JSONPath"
    if language == "JSONata":
        other, foreign = "JSONPath", _JSONPATH_ONLY
    else:
        other, foreign = "JSONata", _JSONATA_ONLY
    fields = [f for f in foreign if f in state]
    if not fields:
        return ""
    return f" ({other}-only {', '.join(fields)} in a {language} state)"


def _resolve_pointer(document: Any, pointer: str) -> Any:
    node = document
    for raw in pointer.split("/")[1:]:
        token = raw.replace("~1", "/").replace("~0", "~")
        if isinstance(node, dict):
            node = node.get(token)
        elif isinstance(node, list) and token.isdigit() and int(token) < len(node):
            node = node[int(token)]
        else:
            return None
    return node


def placeholders(definition: Definition) -> list[str]:
    """Names of the `${Name}` placeholders in a definition (keys and values), sorted."""
    return sorted({name for text in _strings(definition) for name in PLACEHOLDER.findall(text)})


def _strings(node: Any) -> Iterator[str]:
    if isinstance(node, str):
        yield node
    elif isinstance(node, dict):
        for key, value in node.items():
            yield str(key)
            yield from _strings(value)
    elif isinstance(node, list):
        for item in node:
            yield from _strings(item)


def _placeholder_value(name: str) -> str:
    function = re.sub(r"[^A-Za-z0-9_-]", "-", name)[:64]
    return f"arn:aws:lambda:us-east-1:123456789012:function:{function}"


# cfn-lint refuses a template of more than 500 resources (and CloudFormation's own limits are
# per template); a batch stays well under, and its errors are those of each definition alone
MAX_DEFINITIONS_PER_TEMPLATE = 100
_LOGICAL_ID = "StateMachine"


def _logical_id(index: int) -> str:
    return f"{_LOGICAL_ID}{index + 1}"


def cloudformation_template(definitions: list[Definition]) -> dict[str, Any]:
    """A minimal template with each definition inline in its own plain
    AWS::StepFunctions::StateMachine, `StateMachine1`, `StateMachine2`, ... in order."""
    resources: dict[str, Any] = {}
    for index, definition in enumerate(definitions):
        properties: dict[str, Any] = {
            "RoleArn": "arn:aws:iam::123456789012:role/untangle-state-machine",
            "Definition": definition,
        }
        names = placeholders(definition)
        if names:  # an empty DefinitionSubstitutions is itself an error (E3002)
            properties["DefinitionSubstitutions"] = {
                name: _placeholder_value(name) for name in names
            }
        resources[_logical_id(index)] = {
            "Type": "AWS::StepFunctions::StateMachine",
            "Properties": properties,
        }
    return {"AWSTemplateFormatVersion": "2010-09-09", "Resources": resources}


def cfn_lint_errors(definitions: list[Definition]) -> list[list[str]]:
    """cfn-lint's error-level messages for each definition, as `"<rule id> <message> at
    <path>"` (the path inside the definition, or in its resource for the other properties).

    One cfn-lint run per `MAX_DEFINITIONS_PER_TEMPLATE` definitions, on one template holding
    them all: cfn-lint costs about 0.3 s a template however small, and milliseconds a further
    state machine. Raises `ValidatorUnavailable` when cfn-lint is not installed.
    """
    require_cfn_lint()
    errors: list[list[str]] = []
    for start in range(0, len(definitions), MAX_DEFINITIONS_PER_TEMPLATE):
        errors += _cfn_lint_batch(definitions[start : start + MAX_DEFINITIONS_PER_TEMPLATE])
    return errors


def require_cfn_lint() -> None:
    """Import cfn-lint; `ValidatorUnavailable` when it is not installed."""
    try:
        _import_cfn_lint()
    except ImportError as exc:
        raise ValidatorUnavailable(
            "cfn-lint is not installed; install it with: pip install cfn-lint "
            "(or pip install -e '.[test]')"
        ) from exc


def _cfn_lint_batch(definitions: list[Definition]) -> list[list[str]]:
    if not definitions:
        return []
    text = json.dumps(cloudformation_template(definitions), indent=2)
    index_of = {_logical_id(index): index for index in range(len(definitions))}
    errors: list[list[str]] = [[] for _ in definitions]
    for match in cfn_lint_matches(text):
        if str(match.rule.severity).lower() != "error":
            continue
        path = [str(part) for part in (getattr(match, "path", None) or [])]
        owner = index_of.get(path[1]) if path[:1] == ["Resources"] and len(path) > 1 else None
        if owner is not None:  # worded as when the definition is linted alone
            path[1] = _LOGICAL_ID
        if owner is not None and path[2:4] == ["Properties", "Definition"]:
            where = "/" + "/".join(path[4:])
        else:
            where = "/".join(path) or "template"
        message = f"{match.rule.id} {match.message} at {where}"
        # an error of the template as a whole (none is expected) is every definition's
        for index in range(len(definitions)) if owner is None else (owner,):
            errors[index].append(message)
    return errors


def _import_cfn_lint() -> Any:
    """``cfnlint.runner``, imported with an empty schema cache: on import cfn-lint looks for
    newer resource schemas in ``$XDG_CACHE_HOME`` / ``~/.cache/aws/cfn-lint``, and crashes when
    that folder cannot be read. Its bundled schemas are the ones the tests pin anyway.
    Raises ImportError when cfn-lint is not installed."""
    if "cfnlint.runner" in sys.modules:
        return sys.modules["cfnlint.runner"]
    saved = os.environ.get("XDG_CACHE_HOME")
    # a folder that cannot exist (under a file): no cache to read, nothing created
    os.environ["XDG_CACHE_HOME"] = os.path.join(os.devnull, "untangle-no-cache")
    try:
        # cfn-lint ships no type information: import it as a plain module object.
        return importlib.import_module("cfnlint.runner")
    finally:
        if saved is None:
            del os.environ["XDG_CACHE_HOME"]
        else:
            os.environ["XDG_CACHE_HOME"] = saved


def cfn_lint_matches(text: str) -> list[Any]:
    """cfn-lint's matches for a template, with untangle's configuration and cfn-lint's own rules
    only. ``cfnlint.api.lint`` would also read a ``.cfnlintrc`` in the working directory (the
    project's: its ``append_rules`` and ``custom_rules`` import Python from the project, which
    untangle never runs outside ``verify``) and in the home folder; an explicit empty
    configuration file turns both off. Raises ImportError when cfn-lint is not installed."""
    runner = _import_cfn_lint()
    decode = importlib.import_module("cfnlint.decode.decode")
    template, errors = decode.decode_str(text)
    if errors:
        return list(errors)
    if template is None:
        return []
    # a configuration of its own for each template: cfn-lint stores in it the settings a
    # template's `Metadata: cfn-lint:` gives, which must not carry over to the next template
    return list(runner.run_template_by_data(template, _cfn_lint_settings(), _cfn_lint_rules()))


def _cfn_lint_settings() -> Any:
    config = importlib.import_module("cfnlint.config")
    return config.ConfigMixIn(["--config-file", os.devnull], regions=["us-east-1"])


_RULES: list[Any] = []  # cfn-lint's rules, once loaded in this process


def _cfn_lint_rules() -> Any:
    """cfn-lint's rules, loaded once a process and shared by every template it lints, as
    cfn-lint's own command line shares them between the files it is given: loading them (a
    module and a JSON schema or more for each of its ~700 rules) cost 0.5-0.9 s of the 0.7-1.2 s
    a small template took, and each set left behind is tens of MB in reference cycles that only
    the cycle collector frees, so a process linting many templates (the test suite's) grew. A
    pool worker forked after `load_cfn_lint` starts with them."""
    if not _RULES:
        runner = _import_cfn_lint()
        _RULES.append(runner.Runner(_cfn_lint_settings()).rules)
    return _RULES[0]


def load_cfn_lint() -> None:
    """Import cfn-lint and load its rules (`ValidatorUnavailable` when it is not installed): in
    a process about to fork its pool, so that every worker starts with them."""
    require_cfn_lint()
    _cfn_lint_rules()
