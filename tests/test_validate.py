"""The validation harness: asl-validator (npm) and cfn-lint on good and broken definitions.

Which validator catches which defect is the measured table of
shared/notes/validators-and-engine.md. Without the node package the asl-validator tests skip
locally and fail in CI (CI=true), where .ci/run installs it.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NoReturn

import pytest

import untangle.validate as validate
from untangle.validate import (
    ASL_VALIDATOR_VERSION,
    INSTALL_HINT,
    ValidatorUnavailable,
    asl_errors,
    cfn_lint_errors,
    cloudformation_template,
    find_asl_validator,
    placeholders,
)

Definition = dict[str, Any]


def _in_ci() -> bool:
    return os.environ.get("CI", "").strip().lower() not in ("", "0", "false", "no")


def _unavailable(exc: ValidatorUnavailable) -> NoReturn:
    if _in_ci():
        pytest.fail(f"validator missing in CI: {exc}")
    pytest.skip(f"validator not installed locally: {exc}")


# --- definitions -------------------------------------------------------------------------------

GOOD_JSONPATH: Definition = {
    "Comment": "Order pipeline, JSONPath",
    "StartAt": "Validate",
    "States": {
        "Validate": {
            "Type": "Task",
            "Resource": "arn:aws:states:::lambda:invoke",
            "Parameters": {"FunctionName": "${ValidateOrderFunction}", "Payload.$": "$"},
            "ResultSelector": {"order.$": "$.Payload"},
            "ResultPath": "$.validated",
            "OutputPath": "$",
            "Retry": [
                {
                    "ErrorEquals": ["Lambda.ServiceException", "Lambda.TooManyRequestsException"],
                    "IntervalSeconds": 1,
                    "MaxAttempts": 3,
                    "BackoffRate": 2.0,
                }
            ],
            "Catch": [{"ErrorEquals": ["OutOfStock"], "ResultPath": "$.error", "Next": "Rejected"}],
            "Next": "IsExpress",
        },
        "IsExpress": {
            "Type": "Choice",
            "Choices": [
                {
                    "And": [
                        {"Variable": "$.validated.order.express", "IsPresent": True},
                        {"Variable": "$.validated.order.express", "BooleanEquals": True},
                    ],
                    "Next": "ShipAll",
                }
            ],
            "Default": "Charge",
        },
        "Charge": {
            "Type": "Task",
            "Resource": "${ChargeCardFunction}",
            "InputPath": "$.validated.order",
            "ResultPath": "$.charge",
            "TimeoutSeconds": 30,
            "Next": "ShipAll",
        },
        "ShipAll": {
            "Type": "Map",
            "ItemsPath": "$.validated.order.items",
            "MaxConcurrency": 4,
            "ItemSelector": {"item.$": "$$.Map.Item.Value", "orderId.$": "$.validated.order.id"},
            "ItemProcessor": {
                "ProcessorConfig": {"Mode": "INLINE"},
                "StartAt": "Ship",
                "States": {
                    "Ship": {
                        "Type": "Task",
                        "Resource": "arn:aws:states:::lambda:invoke",
                        "Parameters": {"FunctionName": "${ShipItemFunction}", "Payload.$": "$"},
                        "OutputPath": "$.Payload",
                        "End": True,
                    }
                },
            },
            "ResultPath": "$.shipments",
            "Next": "Done",
        },
        "Rejected": {"Type": "Fail", "Error": "OrderRejected", "Cause": "out of stock"},
        "Done": {"Type": "Succeed"},
    },
}

GOOD_JSONATA: Definition = {
    "Comment": "Order pipeline, JSONata",
    "QueryLanguage": "JSONata",
    "StartAt": "Validate",
    "States": {
        "Validate": {
            "Type": "Task",
            "Resource": "arn:aws:states:::lambda:invoke",
            "Arguments": {
                "FunctionName": "${ValidateOrderFunction}",
                "Payload": "{% $states.input %}",
            },
            "Assign": {"order": "{% $states.result.Payload %}"},
            "Output": "{% $states.result.Payload %}",
            "Catch": [
                {
                    "ErrorEquals": ["OutOfStock"],
                    "Assign": {"reason": "{% $states.errorOutput.Cause %}"},
                    "Next": "Rejected",
                }
            ],
            "Next": "IsExpress",
        },
        "IsExpress": {
            "Type": "Choice",
            "Choices": [{"Condition": "{% $order.express = true %}", "Next": "ShipAll"}],
            "Default": "Charge",
        },
        "Charge": {
            "Type": "Task",
            "Resource": "${ChargeCardFunction}",
            "Arguments": "{% $order %}",
            "Output": "{% $merge([$states.input, {'charge': $states.result}]) %}",
            "TimeoutSeconds": 30,
            "Next": "ShipAll",
        },
        "ShipAll": {
            "Type": "Map",
            "Items": "{% $order.items %}",
            "MaxConcurrency": 4,
            "ItemSelector": {
                "item": "{% $states.context.Map.Item.Value %}",
                "orderId": "{% $order.id %}",
            },
            "ItemProcessor": {
                "ProcessorConfig": {"Mode": "INLINE"},
                "StartAt": "Ship",
                "States": {
                    "Ship": {
                        "Type": "Task",
                        "Resource": "arn:aws:states:::lambda:invoke",
                        "Arguments": {
                            "FunctionName": "${ShipItemFunction}",
                            "Payload": "{% $states.input %}",
                        },
                        "Output": "{% $states.result.Payload %}",
                        "End": True,
                    }
                },
            },
            "Output": {"order": "{% $order %}", "shipments": "{% $states.result %}"},
            "Next": "Done",
        },
        "Rejected": {"Type": "Fail", "Error": "OrderRejected", "Cause": "{% $reason %}"},
        "Done": {"Type": "Succeed"},
    },
}


def _task(resource: str = "${WorkFunction}", **fields: Any) -> Definition:
    return {"Type": "Task", "Resource": resource, **fields}


@dataclass(frozen=True)
class Defect:
    id: str
    definition: Definition
    asl: str  # a substring of one asl-validator error
    cfn: str | None  # a substring of one cfn-lint error; None: cfn-lint misses it (measured)


DEFECTS = [
    Defect(
        "no-StartAt",
        {"States": {"A": _task(End=True)}},
        asl="required property 'StartAt'",
        cfn="E3601 'StartAt' is a required property",
    ),
    Defect(
        "StartAt-names-missing-state",
        {"StartAt": "Nope", "States": {"A": _task(End=True)}},
        asl="MISSING_TRANSITION_TARGET: Missing 'StartAt'|'Next'|'Default' target: Nope",
        cfn="E3601 Missing 'Next' target 'Nope' at /StartAt",
    ),
    Defect(
        "Next-names-missing-state",
        {"StartAt": "A", "States": {"A": _task(Next="Nope")}},
        asl="MISSING_TRANSITION_TARGET: Missing 'StartAt'|'Next'|'Default' target: Nope",
        cfn=None,
    ),
    Defect(
        "neither-Next-nor-End",
        {"StartAt": "A", "States": {"A": _task()}},
        asl='TERMINAL_STATE_WITH_NEXT: State "A" MUST contain exactly one of "End", "Next"',
        cfn="E3601 Only one of ['Next', 'End'] is a required property at /States/A",
    ),
    Defect(
        "unreachable-state",
        {"StartAt": "A", "States": {"A": _task(End=True), "Orphan": _task(End=True)}},
        asl="MISSING_TRANSITION_TARGET: State Orphan is not reachable",
        cfn=None,
    ),
    Defect(
        "malformed-OutputPath",
        {"StartAt": "A", "States": {"A": _task(OutputPath="Payload", End=True)}},
        asl='SCHEMA_VALIDATION_FAILED at /States/A/OutputPath: must match format "asl_path"',
        cfn="E3601 'Payload' does not match '^\\\\$' at /States/A/OutputPath",
    ),
    Defect(
        "JSONPath-field-in-JSONata-state",
        {
            "QueryLanguage": "JSONata",
            "StartAt": "A",
            "States": {"A": _task(Arguments="{% $states.input %}", ResultPath="$.x", End=True)},
        },
        asl="(JSONPath-only ResultPath in a JSONata state)",
        cfn="E3601 Additional properties are not allowed ('ResultPath' was unexpected)",
    ),
    # Beyond the notes' table, measured the same way:
    Defect(
        "JSONata-field-in-JSONPath-state",
        {"StartAt": "A", "States": {"A": _task(Arguments={"a": "{% 1 %}"}, End=True)}},
        asl="(JSONata-only Arguments in a JSONPath state)",
        cfn="E3601 Additional properties are not allowed ('Arguments' was unexpected)",
    ),
    Defect(
        "malformed-JSONata-expression",
        {
            "QueryLanguage": "JSONata",
            "StartAt": "A",
            "States": {"A": {"Type": "Pass", "Output": "{% $states.input.( %}", "End": True}},
        },
        asl="SCHEMA_VALIDATION_FAILED at /States/A/Output",
        cfn=None,
    ),
    Defect(
        "Choice-names-missing-state",
        {
            "StartAt": "A",
            "States": {
                "A": {
                    "Type": "Choice",
                    "Choices": [{"Variable": "$.x", "NumericEquals": 1, "Next": "Nope"}],
                    "Default": "B",
                },
                "B": {"Type": "Succeed"},
            },
        },
        asl="MISSING_TRANSITION_TARGET: Missing 'StartAt'|'Next'|'Default' target: Nope",
        cfn=None,
    ),
    Defect(
        "Catch-names-missing-state",
        {
            "StartAt": "A",
            "States": {
                "A": _task(Catch=[{"ErrorEquals": ["States.ALL"], "Next": "Nope"}], End=True)
            },
        },
        asl="MISSING_TRANSITION_TARGET: Missing 'StartAt'|'Next'|'Default' target: Nope",
        cfn=None,
    ),
]

GOOD = {"good-JSONPath": GOOD_JSONPATH, "good-JSONata": GOOD_JSONATA}


# --- asl-validator -----------------------------------------------------------------------------


@pytest.fixture(scope="module")
def asl_results() -> dict[str, list[str]]:
    """asl-validator's errors for every definition of this module, from one node process."""
    named = {**GOOD, **{d.id: d.definition for d in DEFECTS}}
    try:
        errors = asl_errors(list(named.values()))
    except ValidatorUnavailable as exc:
        _unavailable(exc)
    return dict(zip(named, errors))


def test_installed_asl_validator_is_the_pinned_version() -> None:
    try:
        package = find_asl_validator()
    except ValidatorUnavailable as exc:
        _unavailable(exc)
    version = json.loads((package / "package.json").read_text())["version"]
    assert version == ASL_VALIDATOR_VERSION


@pytest.mark.parametrize("name", list(GOOD))
def test_asl_validator_accepts_good_definition(
    asl_results: dict[str, list[str]], name: str
) -> None:
    assert asl_results[name] == []


@pytest.mark.parametrize("defect", DEFECTS, ids=[d.id for d in DEFECTS])
def test_asl_validator_catches(asl_results: dict[str, list[str]], defect: Defect) -> None:
    errors = asl_results[defect.id]
    assert any(defect.asl in e for e in errors), errors


def test_asl_errors_keeps_order_and_handles_empty_batch() -> None:
    assert asl_errors([]) == []
    broken = {"StartAt": "A", "States": {"A": _task()}}
    try:
        results = asl_errors([GOOD_JSONATA, broken, GOOD_JSONPATH, broken])
    except ValidatorUnavailable as exc:
        _unavailable(exc)
    assert [bool(r) for r in results] == [False, True, False, True]


def test_asl_errors_does_not_change_the_definitions() -> None:
    before = json.dumps(GOOD_JSONATA, sort_keys=True)
    try:
        asl_errors([GOOD_JSONATA])
    except ValidatorUnavailable as exc:
        _unavailable(exc)
    assert json.dumps(GOOD_JSONATA, sort_keys=True) == before


@pytest.mark.parametrize(
    ("resource", "valid"),
    [
        ("${WorkFunction}", True),
        ("arn:aws:lambda:us-east-1:123456789012:function:work", True),
        ("work-${WorkFunction}", False),
        ("not an arn", False),
    ],
    ids=["whole-placeholder", "literal-arn", "placeholder-inside-text", "not-an-arn"],
)
def test_asl_validator_resource_placeholders(resource: str, valid: bool) -> None:
    definition = {"StartAt": "A", "States": {"A": _task(resource, End=True)}}
    try:
        [errors] = asl_errors([definition])
    except ValidatorUnavailable as exc:
        _unavailable(exc)
    assert (errors == []) is valid, errors


def test_missing_package_raises_with_install_hint(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("UNTANGLE_ASL_VALIDATOR_DIR", raising=False)
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(validate, "_checkout_root", lambda: tmp_path)
    with pytest.raises(ValidatorUnavailable, match=r"npm install --prefix \.untangle-node"):
        asl_errors([GOOD_JSONPATH])
    assert "asl-validator@4.0.0" in INSTALL_HINT


def test_env_dir_without_package_raises(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("UNTANGLE_ASL_VALIDATOR_DIR", str(tmp_path))
    with pytest.raises(ValidatorUnavailable, match="UNTANGLE_ASL_VALIDATOR_DIR"):
        find_asl_validator()


def test_env_dir_is_used(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    try:
        package = find_asl_validator()
    except ValidatorUnavailable as exc:
        _unavailable(exc)
    node_dir = package.parent.parent
    monkeypatch.setenv("UNTANGLE_ASL_VALIDATOR_DIR", str(node_dir))
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(validate, "_checkout_root", lambda: tmp_path)
    assert find_asl_validator() == package


# --- cfn-lint ----------------------------------------------------------------------------------


def _cfn_lint(definition: Definition) -> list[str]:
    try:
        [errors] = cfn_lint_errors([definition])
    except ValidatorUnavailable as exc:
        _unavailable(exc)
    return errors


@pytest.fixture(scope="module")
def cfn_results() -> dict[str, list[str]]:
    """cfn-lint's errors for every definition of this module, from one template: each is worded
    as when its definition is linted alone (the DEFECTS table was measured that way)."""
    named = {**GOOD, **{d.id: d.definition for d in DEFECTS}}
    try:
        errors = cfn_lint_errors(list(named.values()))
    except ValidatorUnavailable as exc:
        _unavailable(exc)
    return dict(zip(named, errors))


@pytest.mark.parametrize("name", list(GOOD))
def test_cfn_lint_accepts_good_definition(cfn_results: dict[str, list[str]], name: str) -> None:
    assert cfn_results[name] == []


CAUGHT_BY_CFN = [d for d in DEFECTS if d.cfn is not None]
MISSED_BY_CFN = [d for d in DEFECTS if d.cfn is None]


@pytest.mark.parametrize("defect", CAUGHT_BY_CFN, ids=[d.id for d in CAUGHT_BY_CFN])
def test_cfn_lint_catches(cfn_results: dict[str, list[str]], defect: Defect) -> None:
    errors = cfn_results[defect.id]
    assert defect.cfn is not None
    assert any(defect.cfn in e for e in errors), errors


@pytest.mark.parametrize("defect", MISSED_BY_CFN, ids=[d.id for d in MISSED_BY_CFN])
def test_cfn_lint_known_gap(cfn_results: dict[str, list[str]], defect: Defect) -> None:
    """cfn-lint is silent here: the reason asl-validator is required. If this fails, cfn-lint
    learnt to catch the defect: move its expected message into the DEFECTS table."""
    assert cfn_results[defect.id] == []


def _numbered(count: int, broken: dict[int, Definition]) -> list[Definition]:
    """`count` valid definitions told apart by their state's name, `broken[i]` at index i."""
    return [
        broken.get(i, {"StartAt": f"Step{i}", "States": {f"Step{i}": _task(End=True)}})
        for i in range(count)
    ]


_NO_END = {"StartAt": "Seventh", "States": {"Seventh": _task()}}
_BAD_TIMEOUT = {"StartAt": "Third", "States": {"Third": _task(TimeoutSeconds="soon", End=True)}}


@pytest.mark.parametrize(
    ("count", "broken", "per_template"),
    [
        pytest.param(10, {6: _NO_END}, None, id="7th-of-10"),
        pytest.param(10, {0: _NO_END}, None, id="1st-of-10"),
        pytest.param(10, {9: _NO_END}, None, id="10th-of-10"),
        pytest.param(10, {2: _BAD_TIMEOUT, 6: _NO_END}, None, id="3rd-and-7th-of-10"),
        pytest.param(10, {}, None, id="none-of-10"),
        # three templates (4, 4, 2): the 7th is the 2nd template's 3rd, the 10th its last
        pytest.param(10, {6: _NO_END}, 4, id="7th-of-10-in-templates-of-4"),
        pytest.param(10, {2: _BAD_TIMEOUT, 9: _NO_END}, 4, id="3rd-and-10th-in-templates-of-4"),
    ],
)
def test_cfn_lint_reports_each_error_against_its_definition(
    monkeypatch: pytest.MonkeyPatch,
    count: int,
    broken: dict[int, Definition],
    per_template: int | None,
) -> None:
    if per_template is not None:
        monkeypatch.setattr(validate, "MAX_DEFINITIONS_PER_TEMPLATE", per_template)
    try:
        errors = cfn_lint_errors(_numbered(count, broken))
    except ValidatorUnavailable as exc:
        _unavailable(exc)
    assert len(errors) == count
    assert {i for i, e in enumerate(errors) if e} == set(broken)
    for index, definition in broken.items():
        state = definition["StartAt"]
        assert all(f"at /States/{state}" in e for e in errors[index]), errors[index]
    if _NO_END in broken.values():
        index = next(i for i, d in broken.items() if d is _NO_END)
        assert errors[index] == [
            "E3601 Only one of ['Next', 'End'] is a required property at /States/Seventh"
        ]


def test_template_substitutes_every_placeholder() -> None:
    assert placeholders(GOOD_JSONPATH) == [
        "ChargeCardFunction",
        "ShipItemFunction",
        "ValidateOrderFunction",
    ]
    resources = cloudformation_template([GOOD_JSONATA, GOOD_JSONPATH])["Resources"]
    assert list(resources) == ["StateMachine1", "StateMachine2"]
    for name, definition in [("StateMachine1", GOOD_JSONATA), ("StateMachine2", GOOD_JSONPATH)]:
        properties = resources[name]["Properties"]
        assert properties["Definition"] is definition
        substitutions = properties["DefinitionSubstitutions"]
        assert sorted(substitutions) == placeholders(definition)
        assert all(v.startswith("arn:aws:lambda:us-east-1:") for v in substitutions.values())


def test_template_without_placeholders_has_no_substitutions() -> None:
    definition = {"StartAt": "A", "States": {"A": {"Type": "Pass", "End": True}}}
    resources = cloudformation_template([GOOD_JSONATA, definition])["Resources"]
    assert "DefinitionSubstitutions" in resources["StateMachine1"]["Properties"]  # near miss
    assert "DefinitionSubstitutions" not in resources["StateMachine2"]["Properties"]
    assert _cfn_lint(definition) == []


# A cfn-lint rule as a project could ship one: importing it writes MARKER next to it.
_PLANTED_RULE = """\
import pathlib

pathlib.Path(__file__).with_name("MARKER").write_text("project code ran")

from cfnlint.rules import CloudFormationLintRule


class Planted(CloudFormationLintRule):
    id = "E9999"
    shortdesc = "planted"
    description = "planted"
    source_url = ""
    tags = []
"""

_SAM_TEMPLATE = """\
AWSTemplateFormatVersion: "2010-09-09"
Transform: AWS::Serverless-2016-10-31
Resources:
  Machine:
    Type: AWS::Serverless::StateMachine
    Properties:
      Definition: {"StartAt": "A", "States": {"A": {"Type": "Pass", "End": true}}}
  Broken:
    Type: AWS::SNS::Topic
    Properties:
      NoSuchProperty: 1
"""


_LINT_IN_A_NEW_PROCESS = """\
import json, sys
from untangle import sam
from untangle.validate import cfn_lint_errors
definitions = json.loads(sys.argv[1])
print(json.dumps({
    "definitions": cfn_lint_errors(definitions),
    "template": sam.validate(sys.argv[2], ".", {}, set()),
}))
"""


@pytest.mark.parametrize(
    "where",
    [
        pytest.param("project", id="cfnlintrc-in-the-working-directory"),
        pytest.param("home", id="cfnlintrc-in-home"),
    ],
)
def test_validators_never_load_rules_from_a_cfnlintrc(tmp_path: Path, where: str) -> None:
    """cfn-lint's `.cfnlintrc` can `append_rules` (Python it imports): the validators run with
    an explicit configuration, and still report what cfn-lint's own rules find. In a process of
    its own, which loads cfn-lint's rules there and then (a process loads them once)."""
    import subprocess
    import sys

    folder = tmp_path / where
    (folder / "rules").mkdir(parents=True)
    (folder / "rules" / "planted.py").write_text(_PLANTED_RULE)
    (folder / ".cfnlintrc").write_text(f"append_rules:\n  - {folder / 'rules'}\n")
    broken = next(d for d in CAUGHT_BY_CFN)
    assert broken.cfn is not None
    done = subprocess.run(
        [
            sys.executable,
            "-c",
            _LINT_IN_A_NEW_PROCESS,
            json.dumps([broken.definition, GOOD_JSONATA]),
            _SAM_TEMPLATE,
        ],
        capture_output=True,
        text=True,
        cwd=tmp_path / "project" if where == "project" else tmp_path,
        env={**os.environ, "HOME": str(tmp_path / "home" if where == "home" else tmp_path)},
        check=False,
    )
    assert done.returncode == 0, done.stderr
    answer = json.loads(done.stdout)
    assert any(broken.cfn in e for e in answer["definitions"][0])  # the near miss
    assert answer["definitions"][1] == []
    problems = answer["template"]
    assert any("E3002" in p and "NoSuchProperty" in p for p in problems), problems
    assert not (folder / "rules" / "MARKER").exists()


@pytest.mark.parametrize(
    "environment",
    [
        pytest.param({"XDG_CACHE_HOME": "/tmp/" + "c" * 300}, id="cache-folder-unusable"),
        pytest.param({"HOME": None, "XDG_CACHE_HOME": None}, id="home-unset"),
        pytest.param({"HOME": "/nonexistent/home", "XDG_CACHE_HOME": None}, id="home-missing"),
    ],
)
def test_validators_run_whatever_the_cache_folder(environment: dict[str, str | None]) -> None:
    """cfn-lint reads its schema cache under ~/.cache (or $XDG_CACHE_HOME) on import, and
    crashed where that folder cannot be read; the validators run on its bundled schemas."""
    import subprocess
    import sys

    env = dict(os.environ)
    for key, value in environment.items():
        if value is None:
            env.pop(key, None)
        else:
            env[key] = value
    broken = next(d for d in CAUGHT_BY_CFN)
    script = (
        "import json, sys\n"
        "from untangle.validate import cfn_lint_errors\n"
        "print(json.dumps(cfn_lint_errors([json.loads(sys.argv[1])])[0]))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", script, json.dumps(broken.definition)],
        capture_output=True,
        text=True,
        env=env,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert broken.cfn is not None
    assert any(broken.cfn in e for e in json.loads(done.stdout)), done.stdout


# --- a template's own cfn-lint settings, with the rules shared by every template ---------------

_SETTINGS_TEMPLATE = """\
AWSTemplateFormatVersion: "2010-09-09"
Transform: AWS::Serverless-2016-10-31
{metadata}Resources:
  Queue:
    Type: AWS::SQS::Queue
    Properties:
      DelaySeconds: "5"
  Broken:
    Type: AWS::SNS::Topic
    Properties:
      NoSuchProperty: 1
"""

# what cfn-lint reports on each: a string for an integer is an error only in strict mode (E3012),
# the unknown property (E3002) unless the template ignores that rule
_SETTINGS = {
    "plain": ("", ["E3002"]),
    "ignores-E3002": (
        "Metadata:\n  cfn-lint:\n    config:\n      ignore_checks:\n        - E3002\n",
        [],
    ),
    "strict-E3012": (
        "Metadata:\n  cfn-lint:\n    config:\n      configure_rules:\n"
        "        E3012:\n          strict: true\n",
        ["E3012", "E3002"],
    ),
}


@pytest.mark.parametrize(
    "order",
    [
        pytest.param(("ignores-E3002", "plain"), id="plain-after-one-that-ignores-E3002"),
        pytest.param(("plain", "ignores-E3002"), id="one-that-ignores-E3002-after-plain"),
        pytest.param(("strict-E3012", "plain"), id="plain-after-a-strict-one"),
        pytest.param(("plain", "strict-E3012", "ignores-E3002", "plain"), id="all-in-turn"),
    ],
)
def test_a_templates_cfn_lint_settings_stay_with_it(order: tuple[str, ...]) -> None:
    """cfn-lint's rules are loaded once a process and shared by every template linted there;
    what a template's `Metadata: cfn-lint: config:` turns off or on is its own: the template
    after it is refused for what it holds (the near miss of one that ignores the rule)."""
    from untangle import sam

    for kind in order:
        metadata, expected = _SETTINGS[kind]
        problems = sam.validate(_SETTINGS_TEMPLATE.format(metadata=metadata), "/app", {}, set())
        assert [p.split(" ")[1].rstrip(":") for p in problems] == expected, (kind, problems)


def _scheduled_jobs(functions: int, events: int, topics: int) -> str:
    """Functions with `events` Schedule events each: the SAM transform makes each one a
    function, its role, and a rule and a permission an event."""
    lines = [
        'AWSTemplateFormatVersion: "2010-09-09"',
        "Transform: AWS::Serverless-2016-10-31",
        "Resources:",
    ]
    for function in range(functions):
        lines += [
            f"  Job{function}:",
            "    Type: AWS::Serverless::Function",
            "    Properties:",
            "      CodeUri: job/",
            "      Handler: app.handler",
            "      Runtime: python3.12",
            "      Events:",
        ]
        for event in range(events):
            lines += [
                f"        Every{event}:",
                "          Type: Schedule",
                "          Properties:",
                f"            Schedule: rate({event + 1} minutes)",
            ]
    lines += [
        line
        for topic in range(topics)
        for line in (f"  Topic{topic}:", "    Type: AWS::SNS::Topic")
    ]
    return "\n".join(lines) + "\n"


@pytest.mark.parametrize(
    ("topics", "refused"),
    [
        pytest.param(0, False, id="500-resources-deployed"),
        pytest.param(1, True, id="501-resources-deployed"),
    ],
)
def test_a_template_beyond_500_resources_after_the_sam_transform_is_refused(
    topics: int, refused: bool
) -> None:
    """10 or 11 resources as written (cfn-lint's E3010 counts those), 500 or 501 once
    transformed, which CloudFormation counts."""
    from untangle import sam

    problems = sam.validate(_scheduled_jobs(10, 24, topics), "/app", {}, set())
    expected = [
        "SAM transform: the template becomes 501 resources, more than the 500 CloudFormation "
        "allows in a stack"
    ]
    assert problems == (expected if refused else [])
