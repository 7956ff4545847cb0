"""The in-memory template editor (`untangle.template_edit`) against the sequential edits of the
whole text it replaces (`untangle.sam`'s functions, each re-parsing the template): the same
text, the same refusals and the same reading of the template, workflow after workflow, on
templates with the shapes migrate meets (and their near misses); and a workflow that fails
leaves no trace, in the editor and through `untangle migrate`."""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml
from click.testing import CliRunner

from untangle import event_sources as es
from untangle import sam
from untangle.cli import main
from untangle.template_edit import TemplateEditor

HEAD = (
    'AWSTemplateFormatVersion: "2010-09-09"\nTransform: AWS::Serverless-2016-10-31\n\nResources:\n'
)

ORDERS = """\
  # takes the orders
  OrdersFunction:
    Type: AWS::Serverless::Function
    Properties:
      CodeUri: orders/
      Handler: app.handler
      Environment:
        Variables:
          CHARGE: !Ref ChargeFunction
      Policies:
        - LambdaInvokePolicy:
            FunctionName: !Ref ChargeFunction
      Events:
        # every night
        Nightly:
          Type: Schedule
          Properties:
            Schedule: rate(1 day)
        Submit:
          Type: Api
          Properties:
            Path: /orders
            Method: post
"""

CHARGE = """\
  ChargeFunction:
    Type: AWS::Serverless::Function
    Properties:
      CodeUri: charge/
      Handler: app.handler
"""

BUCKET = """\
  Uploads:
    Type: AWS::S3::Bucket
"""

OUTPUTS = """\

Outputs:
  OrdersArn:
    Value: !GetAtt OrdersFunction.Arn
"""

BASE = HEAD + ORDERS + "\n" + CHARGE + "\n" + BUCKET

TEMPLATES = [
    pytest.param(BASE, id="plain"),
    pytest.param(BASE + OUTPUTS, id="outputs-after-resources"),
    pytest.param(BASE.replace("\n", "\r\n"), id="crlf"),
    pytest.param(
        BASE.replace("\n\n  ChargeFunction", "\n  # the charger\n\n  # really\n  ChargeFunction"),
        id="comments-between-resources",
    ),
    pytest.param(BASE + "  # the end of the resources\n\n" + OUTPUTS, id="comment-after-last"),
    pytest.param(HEAD + CHARGE + "\n" + ORDERS, id="orchestrator-last"),
    pytest.param(
        HEAD
        + CHARGE
        + "\n"
        + ORDERS.replace("      Events:\n", "      # triggers\n      Events:\n"),
        id="orchestrator-last-comment-above-events",
    ),
    pytest.param(
        BASE.replace(
            "      Environment:\n        Variables:\n          CHARGE: !Ref ChargeFunction\n", ""
        ),
        id="no-environment",
    ),
    pytest.param(
        BASE.replace(
            "        Variables:\n          CHARGE: !Ref ChargeFunction\n", "          {}\n"
        ),
        id="environment-without-variables",
    ),
    pytest.param(
        BASE.replace(
            "      Policies:\n", "      Policies: [AWSLambdaBasicExecutionRole]\n      X:\n"
        ),
        id="inline-policies",
    ),
    pytest.param(
        BASE.replace(
            "          CHARGE: !Ref ChargeFunction\n", "          {CHARGE: !Ref ChargeFunction}\n"
        ).replace("        Variables:\n", "        Variables:\n"),
        id="inline-variables",
    ),
    pytest.param(
        BASE.replace(
            "    Properties:\n      CodeUri: charge/\n      Handler: app.handler\n",
            "    Properties: {CodeUri: charge/, Handler: app.handler}\n",
        ),
        id="inline-properties-of-another",
    ),
    pytest.param(
        BASE.replace(
            "    Properties:\n      CodeUri: orders/\n",
            "    Properties: {\n      CodeUri: orders/,\n      Handler: app.handler }\n    X:\n",
        ),
        id="flow-properties-over-lines",
    ),
    pytest.param(
        HEAD.replace("Resources:\n", "Globals:\n  Function:\n    Timeout: 30\n\nResources:\n")
        + ORDERS
        + "\n"
        + CHARGE,
        id="globals",
    ),
    pytest.param(
        HEAD.replace(
            "Resources:\n", "Globals:\n  Function: &defaults\n    Timeout: 30\n\nResources:\n"
        )
        + ORDERS
        + "\n"
        + CHARGE.replace(
            "      Handler: app.handler\n", "      Handler: app.handler\n      Tags: *defaults\n"
        ),
        id="anchor-and-alias",
    ),
    pytest.param(BASE.rstrip("\n"), id="no-final-newline"),
    pytest.param(
        BASE + "  Inline:\n    Type: AWS::Serverless::Function\n    Properties:\n"
        "      Handler: index.handler\n      InlineCode: |\n        def handler(e, c):\n"
        "            return 1\n\n\n",
        id="block-scalar-last",
    ),
    pytest.param(
        BASE + "  Later:\n    Type: AWS::SNS::Topic\n\n\n# outputs follow\n" + OUTPUTS,
        id="blank-lines-and-comment-before-outputs",
    ),
    pytest.param(
        BASE.replace("Resources:\n", "Resources:\n\n  # first\n"), id="comment-above-first"
    ),
    pytest.param(
        BASE.replace(
            "  Uploads:\n",
            "  OrdersFunctionRole:\n    Type: AWS::IAM::Role\n"
            "    DependsOn: [ChargeFunction, OrdersFunction]\n\n  Uploads:\n",
        ),
        id="depends-on-list",
    ),
    pytest.param(
        BASE.replace("Resources:\n", "Resources: # all of them\n"), id="comment-on-resources-line"
    ),
    pytest.param(BASE.replace("rate(1 day)\n", "rate(1 day)\r"), id="bare-cr"),
    pytest.param(HEAD + "  {}\n", id="resources-not-block"),
    pytest.param("", id="empty"),
    pytest.param("Resources: [\n", id="not-yaml"),
]


@dataclass(frozen=True)
class Op:
    """One edit, as `untangle.sam` makes it on a text and as the editor makes it."""

    name: str
    args: tuple[Any, ...]

    def on_text(self, text: str) -> tuple[str, object]:
        if self.name == "read":
            return text, read_whole(text, self.args[0])
        if self.name == "take_event":
            return sam.take_event(text, *self.args)
        edit: Callable[..., str] = getattr(sam, self.name)
        return edit(text, *self.args), None

    def on_editor(self, editor: TemplateEditor) -> object:
        if self.name == "read":
            return read_editor(editor, self.args[0])
        return getattr(editor, self.name)(*self.args)


def _view(template: sam.Template, logical: str) -> object:
    props = template.properties(logical)
    env = template.get(props, "Environment") if props is not None else None
    variables = template.get(env, "Variables") if env is not None else None
    sources = [template.source(v) for _, v in getattr(variables, "value", [])]
    return sources, sam.inherited_properties(template, logical)


def read_whole(text: str, logical: str) -> object:
    """What a workflow reads of the template before editing it (as migrate did)."""
    template = sam.Template.parse(text)
    document = sam.cfn_load(text)
    return (
        sorted(set(template.resource_ids())),
        _view(template, logical),
        es.events_of(document, logical),
        es.references(document, logical),
        es.has_function_url(document, logical),
        document.get("Resources", {}).get("Uploads"),
    )


def read_editor(editor: TemplateEditor, logical: str) -> object:
    editor.check()
    document = editor.document()
    return (
        sorted(editor.resource_names()),
        _view(editor.template_for(logical), logical),
        es.events_of(document, logical),
        editor.references(logical),
        es.has_function_url(document, logical),
        document.get("Resources", {}).get("Uploads"),
    )


def machine(name: str, events: str = "") -> str:
    return sam.render_state_machine(
        name=name,
        machine_type="EXPRESS",
        definition_uri=f"statemachine/{name}.asl.json",
        substitutions=[("ChargeFunctionArn", "!GetAtt ChargeFunction.Arn")],
        policies=["- LambdaInvokePolicy:", "    FunctionName: !Ref ChargeFunction"],
        events=events,
    )


def starter(name: str) -> list[str]:
    return ["- Statement:", "    - Effect: Allow", f"      Resource: !Ref {name}"]


def workflows(text: str) -> list[list[Op]]:
    """Workflows of migrate's shape (read, move events, add resources, then edit the
    orchestrator), on the resources `text` has; the last one edits an orchestrator that left."""
    found = [
        [
            Op("read", ("OrdersFunction",)),
            Op("take_event", ("OrdersFunction", "Nightly", 8)),
            Op("add_resources", (machine("FirstStateMachine"),)),
            Op("add_environment", ("OrdersFunction", "FIRST_ARN", "!Ref FirstStateMachine")),
            Op("add_policy", ("OrdersFunction", starter("FirstStateMachine"))),
        ],
        # fails after its first edits: none of them stays
        [
            Op("read", ("ChargeFunction",)),
            Op("add_resources", (machine("FailedStateMachine"),)),
            Op("add_environment", ("ChargeFunction", "FAILED_ARN", "!Ref FailedStateMachine")),
            Op("take_event", ("OrdersFunction", "NoSuchEvent", 8)),
        ],
        # the same orchestrator again (a starter reused)
        [
            Op("read", ("OrdersFunction",)),
            Op("add_resources", (machine("SecondStateMachine"),)),
            Op("add_environment", ("OrdersFunction", "SECOND_ARN", "!Ref SecondStateMachine")),
            Op("add_policy", ("OrdersFunction", starter("SecondStateMachine"))),
            Op("add_policy", ("OrdersFunction", starter("SecondStateMachine"))),
            Op("add_environment", ("OrdersFunction", "SECOND_ARN", "!Ref SecondStateMachine")),
        ],
        [
            Op("read", ("ChargeFunction",)),
            Op("add_resources", (machine("ThirdStateMachine"),)),
            Op("add_environment", ("ChargeFunction", "THIRD_ARN", "!Ref ThirdStateMachine")),
            Op("add_policy", ("ChargeFunction", starter("ThirdStateMachine"))),
            Op("read", ("ChargeFunction",)),
        ],
    ]
    if "  Uploads:" in text:
        found.append(
            [
                Op("read", ("ChargeFunction",)),
                Op("enable_bucket_eventbridge", ("Uploads",)),
                Op("add_resources", (machine("BucketStateMachine"),)),
                Op("read", ("ChargeFunction",)),
            ]
        )
    if "  Inline:" in text:
        found.append(
            [
                Op("read", ("Inline",)),
                Op("add_resources", (machine("InlineStateMachine"),)),
                Op("add_environment", ("Inline", "INLINE_ARN", "!Ref InlineStateMachine")),
                Op("add_policy", ("Inline", starter("InlineStateMachine"))),
                Op("read", ("Inline",)),
            ]
        )
    if "  Later:" in text:
        found.append(
            [
                Op("read", ("Later",)),
                Op("add_resources", (machine("LaterStateMachine"),)),
                Op("remove_resource", ("Later",)),
                Op("read", ("ChargeFunction",)),
            ]
        )
    found += [
        # the orchestrator leaves the template
        [
            Op("read", ("OrdersFunction",)),
            Op("take_event", ("OrdersFunction", "Submit", 8)),
            Op("add_resources", (machine("LeavingStateMachine"),)),
            Op("remove_resource", ("OrdersFunction",)),
            Op("read", ("ChargeFunction",)),
        ],
        # and is gone for the next one
        [
            Op("read", ("OrdersFunction",)),
            Op("add_resources", (machine("GoneStateMachine"),)),
            Op("add_environment", ("OrdersFunction", "GONE_ARN", "!Ref GoneStateMachine")),
        ],
    ]
    return found


Outcome = tuple[str, object]


def _refusal(exc: Exception) -> Outcome:
    return ("refused", (type(exc).__name__, str(exc)))


def sequential(text: str) -> tuple[str, list[Outcome]]:
    """The workflows as migrate made them: every edit on the whole text, a failed workflow's
    text dropped."""
    outcomes: list[Outcome] = []
    for workflow in workflows(text):
        current, said = text, []
        try:
            for op in workflow:
                current, answer = op.on_text(current)
                said.append(answer)
        except (ValueError, yaml.YAMLError) as exc:
            outcomes.append(_refusal(exc))
            continue
        text = current
        outcomes.append(("done", said))
    return text, outcomes


def in_memory(text: str) -> tuple[str, list[Outcome], list[bool]]:
    """The workflows on the editor; whether it edited blocks at the start of each one."""
    editor = TemplateEditor(text)
    outcomes: list[Outcome] = []
    segmented = []
    for workflow in workflows(text):
        segmented.append(editor.segmented)
        said = []
        try:
            for op in workflow:
                said.append(op.on_editor(editor))
        except (ValueError, yaml.YAMLError) as exc:
            editor.rollback()
            outcomes.append(_refusal(exc))
            continue
        editor.commit()
        outcomes.append(("done", said))
    return editor.text(), outcomes, segmented


SEGMENTED = {
    "plain": True,
    "outputs-after-resources": True,
    "crlf": True,
    "comments-between-resources": True,
    "comment-after-last": True,
    "orchestrator-last": True,
    "orchestrator-last-comment-above-events": True,
    "no-environment": True,
    "environment-without-variables": True,
    "inline-properties-of-another": True,
    "globals": True,
    "block-scalar-last": True,
    "blank-lines-and-comment-before-outputs": True,
    "comment-above-first": True,
    "depends-on-list": True,
    "comment-on-resources-line": True,
    "inline-policies": False,
    # what the blocks cannot be trusted with: the whole text, as before
    "anchor-and-alias": False,
    "no-final-newline": False,
    "inline-variables": False,
    "flow-properties-over-lines": False,
    "bare-cr": False,
    "not-yaml": False,
    "resources-not-block": False,
    "empty": False,
}


@pytest.mark.parametrize("text", TEMPLATES)
def test_the_editor_makes_the_text_the_sequential_edits_make(
    text: str, request: pytest.FixtureRequest
) -> None:
    expected_text, expected = sequential(text)
    got_text, got, segmented = in_memory(text)
    for number, (want, have) in enumerate(zip(expected, got), 1):
        assert have == want, f"workflow {number}"
    assert got_text == expected_text
    # in blocks at the start of every workflow (the last one edits an orchestrator that left:
    # the whole text from there on), or never: the whole text, as before
    cut = SEGMENTED[request.node.callspec.id]
    if request.node.callspec.id == "block-scalar-last":
        # an environment variable after a block scalar that ends the last resource: the scalar
        # takes in the blank line above the resources added after it, and so does the edit
        inline = next(i for i, w in enumerate(workflows(text)) if w[0].args == ("Inline",))
        assert segmented == [True] * (inline + 1) + [False] * (len(segmented) - inline - 1)
    else:
        assert segmented == [cut] * len(segmented)


def test_every_template_says_whether_it_is_cut() -> None:
    assert set(SEGMENTED) == {p.id for p in TEMPLATES}


def test_a_failed_workflow_leaves_no_trace_in_the_editor() -> None:
    editor = TemplateEditor(BASE)
    editor.add_resources(machine("KeptStateMachine"))
    editor.commit()
    kept = editor.text()
    editor.take_event("OrdersFunction", "Nightly", 8)
    editor.enable_bucket_eventbridge("Uploads")
    editor.add_resources(machine("DroppedStateMachine"))
    editor.remove_resource("OrdersFunction")
    assert editor.segmented and "DroppedStateMachine" in editor.text()
    editor.rollback()
    assert editor.text() == kept
    assert "DroppedStateMachine" not in editor.resource_names()
    assert "OrdersFunction" in editor.resource_names()
    assert [e.name for e in es.events_of(editor.document(), "OrdersFunction")] == [
        "Nightly",
        "Submit",
    ]
    assert "NotificationConfiguration" not in str(editor.document()["Resources"]["Uploads"])


def test_rolling_back_to_a_savepoint_keeps_what_came_before() -> None:
    editor = TemplateEditor(BASE)
    editor.take_event("OrdersFunction", "Nightly", 8)
    moved = editor.savepoint()
    after_move = editor.text()
    editor.add_resources(machine("AStateMachine"))
    editor.add_environment("OrdersFunction", "A_ARN", "!Ref AStateMachine")
    editor.rollback(moved)
    assert editor.text() == after_move
    assert sam.take_event(BASE, "OrdersFunction", "Nightly", 8)[0] == after_move


def test_an_edit_the_blocks_cannot_make_goes_on_with_the_whole_text() -> None:
    # the orchestrator left the template: a later edit of it is refused as the whole text
    # refuses it, and the open workflow still rolls back
    editor = TemplateEditor(BASE)
    editor.add_resources(machine("AStateMachine"))
    editor.remove_resource("OrdersFunction")
    editor.commit()
    editor.add_resources(machine("BStateMachine"))
    with pytest.raises(ValueError, match="no Properties for OrdersFunction"):
        editor.add_environment("OrdersFunction", "B_ARN", "!Ref BStateMachine")
    assert not editor.segmented
    editor.rollback()
    assert "BStateMachine" not in editor.text() and "AStateMachine" in editor.text()


def test_a_policy_the_text_holds_elsewhere_is_not_added_twice() -> None:
    policy = starter("AStateMachine")
    text = BASE.replace(
        "      Handler: app.handler\n\n  Uploads",
        "      Handler: app.handler\n      Policies:\n"
        + "".join(f"        {line}\n" for line in policy)
        + "\n  Uploads",
    )
    editor = TemplateEditor(text)
    editor.add_policy("OrdersFunction", policy)
    assert editor.text() == sam.add_policy(text, "OrdersFunction", policy) == text


@pytest.mark.parametrize(
    "text",
    [
        pytest.param(BASE, id="block"),
        pytest.param(BASE.replace("\n", "\r\n"), id="crlf"),
        pytest.param("a: {b: [1, 2], c: 'x\n  y'}\nd: |\n  z\n\ne: &x 1\nf: *x\n", id="flow-alias"),
        pytest.param("a: b\n  c: d\n", id="error"),
        pytest.param("a: [1,\n", id="unclosed"),
        pytest.param("k: 'é ü'\nl: \"\\u00e9\"\n", id="unicode"),
    ],
)
def test_libyaml_composes_the_nodes_pure_python_yaml_composes(text: str) -> None:
    def nodes(root: yaml.Node | None) -> list[object]:
        found: list[object] = []
        stack = [root] if root is not None else []
        while stack:
            node = stack.pop()
            marks = (node.start_mark.line, node.start_mark.column)
            marks += (node.end_mark.line, node.end_mark.column)
            found.append((type(node).__name__, node.tag, marks))
            if isinstance(node, yaml.ScalarNode):
                found.append(node.value)
            elif isinstance(node, yaml.MappingNode):
                stack += [n for pair in node.value for n in pair]
            else:
                stack += node.value
        return found

    try:
        expected: object = nodes(yaml.compose(text, Loader=yaml.SafeLoader))
    except yaml.YAMLError as exc:
        expected = str(exc)
    try:
        got: object = nodes(sam.compose(text))
    except yaml.YAMLError as exc:
        got = str(exc)
    assert got == expected


ORCHESTRATOR = """\
import json
import os

import boto3

lambda_client = boto3.client("lambda")


def handler(event, context):
    checked = lambda_client.invoke(
        FunctionName=os.environ["CHECK_FUNCTION"], Payload=json.dumps(event)
    )
    verdict = json.loads(checked["Payload"].read())
    if verdict["ok"]:
        lambda_client.invoke(FunctionName=os.environ["SHIP_FUNCTION"], Payload=json.dumps(event))
    return verdict
"""


def _project(root: Path, names: list[str], broken: str) -> Path:
    """Orchestrators `names` in one template; `broken`'s Environment has no Variables (migrate
    refuses it after adding its state machine)."""
    resources = []
    for name in names:
        (root / name).mkdir(parents=True)
        (root / name / f"{name}.py").write_text(ORCHESTRATOR)
        environment = (
            "      Environment:\n        Variables:\n"
            "          CHECK_FUNCTION: !Ref CheckFunction\n"
            "          SHIP_FUNCTION: !Ref ShipFunction\n"
            if name != broken
            else "      Environment: {}\n"
        )
        resources.append(
            f"  {name.capitalize()}Function:\n    Type: AWS::Serverless::Function\n"
            f"    Properties:\n      CodeUri: {name}/\n      Handler: {name}.handler\n"
            + environment
        )
    for callee in ("Check", "Ship"):
        resources.append(
            f"  {callee}Function:\n    Type: AWS::Serverless::Function\n    Properties:\n"
            f"      CodeUri: {callee.lower()}/\n      Handler: app.handler\n"
        )
    (root / "template.yaml").write_text(HEAD + "\n".join(resources))
    (root / "pyproject.toml").write_text("[tool.untangle]\n")
    return root


def _migrate(root: Path, *args: str) -> tuple[str, str]:
    cwd = os.getcwd()
    os.chdir(root)
    try:
        result = CliRunner().invoke(main, ["migrate", ".", "--no-cache", *args])
    finally:
        os.chdir(cwd)
    return result.stdout, result.stderr


def test_a_workflow_refused_in_the_middle_leaves_no_trace_in_the_diff(tmp_path: Path) -> None:
    names = ["alpha", "bravo", "charlie"]
    all_three, said = _migrate(_project(tmp_path / "all", names, broken="bravo"))
    assert "not migrated: " in said and "Bravo" in said.split("not migrated: ")[1]
    assert "BravoWorkflowStateMachine" not in all_three and "bravo/bravo.py" not in all_three
    # the same diff as a run that never tried it
    without, _ = _migrate(
        _project(tmp_path / "two", names, broken="bravo"),
        "--handler",
        "alpha.handler",
        "--handler",
        "charlie.handler",
    )
    assert "AlphaWorkflowStateMachine" in all_three and "CharlieWorkflowStateMachine" in all_three
    assert all_three == without
