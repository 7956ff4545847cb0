"""How `untangle verify` hands its child the workflows in two steps: the planned ones as soon as
their machines exist (the child runs them while this process rewrites the handlers), then the
migrated ones. What the child answers reads as a verify of the migrated workflows alone would:
a workflow whose handler the rewrite refuses is "not migrated", whatever its early run said,
and a workflow that extracts functions runs once the rewritten module holds them."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from untangle.verify import (
    PreparedWorkflow,
    VerifyResult,
    _settled,
    load_events,
    prepare,
    verify_app,
    verify_in_subprocess,
)

FUNCTION = """\
  {logical}Function:
    Type: AWS::Serverless::Function
    Properties:
      FunctionName: {name}
      CodeUri: {code}/
      Handler: app.lambda_handler
      Runtime: python3.12
"""


def _template(*names: str) -> str:
    """A SAM template declaring the functions ``names`` (code in ``NAME/``, or
    ``functions/NAME/`` for the callee ``double``)."""
    head = 'AWSTemplateFormatVersion: "2010-09-09"\nTransform: AWS::Serverless-2016-10-31\n'
    return (
        head
        + "Resources:\n"
        + "".join(
            FUNCTION.format(
                logical=name.capitalize(),
                name=name,
                code=f"functions/{name}" if name == "double" else name,
            )
            for name in names
        )
    )


# {flags}: a module-level `or` chain, which the rewriter refuses beyond 150 operands
ORCHESTRATOR = """\
import json

import boto3

lam = boto3.client("lambda")
ENABLED = {flags}


def lambda_handler(event, context):
    response = lam.invoke(FunctionName="double", Payload=json.dumps(event))
    answer = json.loads(response["Payload"].read())
    return {{"{name}": answer["n"], "enabled": ENABLED}}
"""

DOUBLE = """\
def lambda_handler(event, context):
    return {"n": event["n"] * 2}
"""


def _two_orchestrators(root: Path, bravo_flags: int) -> str:
    """An app with two orchestrators, alpha and bravo (bravo's module holds an `or` chain of
    ``bravo_flags`` operands), calling one function."""
    files = {
        "template.yaml": _template("alpha", "bravo", "double"),
        "alpha/app.py": ORCHESTRATOR.format(name="alpha", flags="0 or 1"),
        "bravo/app.py": ORCHESTRATOR.format(
            name="bravo", flags=" or ".join(["0"] * (bravo_flags - 1) + ["1"])
        ),
        "functions/double/app.py": DOUBLE,
        "events/two.json": '{"n": 2}\n',
    }
    for name, text in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    return str(root)


def _said(results: list[VerifyResult]) -> list[tuple[str, bool, str | None]]:
    return [(r.workflow.split("Workflow")[0], r.equivalent, r.skipped) for r in results]


@pytest.mark.parametrize(
    ("flags", "expected"),
    [
        pytest.param(
            160,
            [("Bravo", False, "not migrated"), ("Alpha", True, None)],
            id="refused-rewrite-reads-not-migrated-and-comes-first",
        ),
        pytest.param(
            140,
            [("Alpha", True, None), ("Bravo", True, None)],
            id="near-miss-a-chain-the-rewriter-takes",
        ),
    ],
)
def test_the_child_answers_as_the_migration_decided(
    tmp_path: Path, flags: int, expected: list[tuple[str, bool, str | None]]
) -> None:
    app = _two_orchestrators(tmp_path / "app", flags)
    events = load_events(app)
    in_child = verify_in_subprocess(app, events)
    said = [(name, ok, skipped and skipped.split(":")[0]) for name, ok, skipped in _said(in_child)]
    assert said == expected
    # the same results, in the same order, as a verify that migrates before it runs anything
    assert [r.to_json() for r in in_child] == [r.to_json() for r in verify_app(app, events)]
    if flags > 150:
        assert in_child[0].skipped is not None
        assert "cannot rewrite the handler: its module nests" in in_child[0].skipped


EXTRACTING = """\
import json

import boto3

lam = boto3.client("lambda")


def lambda_handler(event, context):
    total = round(sum(x["price"] * x["qty"] for x in event["lines"]), 2)
    response = lam.invoke(FunctionName="double", Payload=json.dumps({"n": total}))
    answer = json.loads(response["Payload"].read())
    return {"doubled": answer["n"], "seen": answer.get("seen")}
"""

# a callee that says what the child process holds once the app runs: none of the parent's
# rewriting and rendering libraries (LibCST, Jinja2) nor its command line (Click); moto is
# there (the probe sees)
PROBING_DOUBLE = """\
import sys


def lambda_handler(event, context):
    wanted = ("libcst", "jinja2", "click", "moto")
    seen = sorted({name.split(".")[0] for name in sys.modules} & set(wanted))
    return {"n": event["n"] * 2, "seen": seen}
"""


def _extracting(root: Path, double: str = DOUBLE) -> str:
    files = {
        "template.yaml": _template("alpha", "double"),
        "alpha/app.py": EXTRACTING,
        "functions/double/app.py": double,
        "events/lines.json": '{"lines": [{"price": 1.25, "qty": 2}, {"price": 2, "qty": 1}]}\n',
    }
    for name, text in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    return str(root)


def test_a_workflow_that_extracts_functions_runs_with_the_rewritten_module(
    tmp_path: Path,
) -> None:
    app = _extracting(tmp_path / "app")
    [result] = verify_in_subprocess(app, load_events(app))
    assert result.equivalent and result.skipped is None, result
    assert result.machine["output"] == {"doubled": 9.0, "seen": None}
    [workflow] = prepare(app)  # the sum is a new function of the rewritten module
    assert [name for name in workflow.functions if name.startswith("Compute")], workflow.functions


def test_the_child_holds_none_of_the_parents_libraries(tmp_path: Path) -> None:
    app = _extracting(tmp_path / "app", PROBING_DOUBLE)
    [result] = verify_in_subprocess(app, load_events(app))
    assert result.equivalent, result
    assert result.original["output"]["seen"] == ["moto"], result.original


def _workflow(name: str, skipped: str | None = None) -> PreparedWorkflow:
    return PreparedWorkflow(
        name, definition=None if skipped else {"StartAt": name}, skipped=skipped
    )


def _result(name: str) -> VerifyResult:
    empty = {"status": None, "output": None, "error": None}
    return VerifyResult(name, "events/e.json", True, dict(empty), dict(empty))


@pytest.mark.parametrize(
    ("early", "migrated", "ran_early", "expected"),
    [
        pytest.param("A", "A", True, "kept", id="early-run-of-the-same-workflow-stands"),
        pytest.param("A", "B", False, "kept", id="a-run-with-the-migrated-workflow-stands"),
        pytest.param("A", "B", True, "run-again", id="early-run-of-another-workflow-is-redone"),
        pytest.param(
            "A", None, True, "skipped", id="early-run-of-a-refused-workflow-reads-skipped"
        ),
    ],
)
def test_which_answers_stand(
    early: str, migrated: str | None, ran_early: bool, expected: str
) -> None:
    planned = _workflow(early)
    settled = _workflow("A", "not migrated: refused") if migrated is None else _workflow(migrated)
    answered = {(0, 0): _result("A")}
    found = _settled(
        answered, {(0, 0)} if ran_early else set(), [planned.to_json()], [settled], [("e", {})]
    )
    if expected == "kept":
        assert found == answered
    elif expected == "run-again":
        assert found == {}
    else:
        assert json.loads(json.dumps(found[(0, 0)].to_json()))["skipped"] == "not migrated: refused"
        assert found[(0, 0)].equivalent is False


def test_prepared_workflows_say_whether_they_await_the_migration() -> None:
    workflow = PreparedWorkflow("W", awaits_migration=True)
    again: Any = PreparedWorkflow.from_json(json.loads(json.dumps(workflow.to_json())))
    assert again.awaits_migration is True
    assert PreparedWorkflow.from_json(PreparedWorkflow("V").to_json()).awaits_migration is False


@pytest.mark.parametrize(
    ("warm_up", "run", "machines"),
    [
        pytest.param(True, False, 0, id="the-warm-up-leaves-no-machine"),
        pytest.param(False, True, 1, id="near-miss-a-run-leaves-its-machine"),
        pytest.param(True, True, 1, id="after-a-warm-up-only-the-runs-machine"),
    ],
)
def test_what_the_app_sees_of_moto_after_a_warm_up(warm_up: bool, run: bool, machines: int) -> None:
    import boto3

    from untangle.engine.machine import Engine

    with Engine() as engine:
        if warm_up:
            engine.warm_up()
        if run:
            engine.run({"StartAt": "P", "States": {"P": {"Type": "Pass", "End": True}}}, {}, {})
        listed = boto3.client("stepfunctions", region_name="us-east-1").list_state_machines()
        assert len(listed["stateMachines"]) == machines
