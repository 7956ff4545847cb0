"""New single-purpose functions keep one name each: two workflows of one module (or of one
template) that extract a computation under the same name get a Python function and a logical id
of their own, and each machine runs its own workflow's code (before: the module defined
`compute_parcel` twice, the last definition won, and the template declared one logical id twice)."""

from __future__ import annotations

import ast
import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from untangle.cli import main
from untangle.sam import cfn_load

HANDLER = """\
def {name}(event, context):
    parcel = {{"orderId": event["orderId"], "weight": event["total"] // {divisor} + 1}}
    resp = lambda_client.invoke(FunctionName=os.environ["QUOTE_FN"], Payload=json.dumps(parcel))
    return json.loads(resp["Payload"].read())
"""
PRELUDE = 'import json\nimport os\n\nimport boto3\n\nlambda_client = boto3.client("lambda")\n'
QUOTE = 'def lambda_handler(event, context):\n    return {"weight": event["weight"]}\n'
FUNCTION = """\
  {logical}:
    Type: AWS::Serverless::Function
    Properties:
      CodeUri: src/
      Handler: {handler}
      Runtime: python3.12
      Environment:
        Variables:
          QUOTE_FN: !Ref QuoteFunction
"""
TEMPLATE = """\
AWSTemplateFormatVersion: "2010-09-09"
Transform: AWS::Serverless-2016-10-31
Resources:
  QuoteFunction:
    Type: AWS::Serverless::Function
    Properties:
      CodeUri: src/
      Handler: quote.lambda_handler
      Runtime: python3.12
"""


def make_app(root: Path, modules: dict[str, list[tuple[str, int]]], extra: str = "") -> None:
    """`modules`: module name → its handlers (name, divisor of the parcel's weight)."""
    (root / "src").mkdir(parents=True)
    (root / "src" / "quote.py").write_text(QUOTE)
    template = TEMPLATE
    for module, handlers in modules.items():
        body = (
            PRELUDE
            + extra
            + "".join("\n\n" + HANDLER.format(name=n, divisor=d) for n, d in handlers)
        )
        (root / "src" / f"{module}.py").write_text(body)
        for name, _ in handlers:
            logical = "".join(part.title() for part in name.split("_")) + "Function"
            template += FUNCTION.format(logical=logical, handler=f"{module}.{name}")
    (root / "template.yaml").write_text(template)
    (root / "event.json").write_text(json.dumps({"orderId": "o-1", "total": 900}))


def migrate_write(root: Path) -> None:
    result = CliRunner().invoke(main, ["migrate", str(root), "--write"])
    assert result.exit_code == 0, result.output


def defined_functions(path: Path) -> list[str]:
    tree = ast.parse(path.read_text())
    return [node.name for node in tree.body if isinstance(node, ast.FunctionDef)]


def new_functions(root: Path) -> dict[str, str]:
    """Logical id → Handler of every function the migration added to the template."""
    resources = cfn_load((root / "template.yaml").read_text())["Resources"]
    return {
        logical: props["Properties"]["Handler"]
        for logical, props in resources.items()
        if "compute_parcel" in str(props.get("Properties", {}).get("Handler", ""))
    }


@pytest.mark.parametrize(
    ("modules", "expected"),
    [
        pytest.param(
            {"app": [("ship_small", 100)]},
            {"ComputeParcelFunction": "app.compute_parcel"},
            id="one-workflow-keeps-the-plain-name",
        ),
        pytest.param(
            {"app": [("ship_small", 100), ("ship_large", 10)]},
            {
                "ComputeParcelFunction": "app.compute_parcel",
                "ComputeParcelShipSmallFunction": "app.compute_parcel_ship_small",
            },
            id="two-workflows-of-one-module",
        ),
        pytest.param(
            {"small": [("ship_small", 100)], "large": [("ship_large", 10)]},
            {
                "ComputeParcelFunction": "large.compute_parcel",
                "ShipSmallWorkflowComputeParcelFunction": "small.compute_parcel",
            },
            id="two-modules-of-one-template",
        ),
    ],
)
def test_each_new_function_has_a_name_of_its_own(
    tmp_path: Path, modules: dict[str, list[tuple[str, int]]], expected: dict[str, str]
) -> None:
    make_app(tmp_path, modules)
    migrate_write(tmp_path)
    assert new_functions(tmp_path) == expected
    for module in modules:
        names = defined_functions(tmp_path / "src" / f"{module}.py")
        assert len(names) == len(set(names)), names


def test_a_name_the_module_already_binds_is_not_redefined(tmp_path: Path) -> None:
    helper = "\n\ndef compute_parcel(order):\n    return order\n\n\nprint(compute_parcel)\n"
    make_app(tmp_path, {"app": [("ship_small", 100)]}, extra=helper)
    migrate_write(tmp_path)
    names = defined_functions(tmp_path / "src" / "app.py")
    assert names.count("compute_parcel") == 1
    assert "compute_parcel_ship_small" in names
    assert new_functions(tmp_path) == {
        "ComputeParcelShipSmallFunction": "app.compute_parcel_ship_small"
    }


def test_each_machine_runs_its_own_workflows_code(tmp_path: Path) -> None:
    # weights 10 and 91: the machines answer alike only if both ran one computation
    make_app(tmp_path, {"app": [("ship_small", 100), ("ship_large", 10)]})
    result = CliRunner().invoke(
        main, ["verify", str(tmp_path), "--event", str(tmp_path / "event.json")]
    )
    assert result.exit_code == 0, result.output
    assert result.output.count(": equivalent") == 2, result.output
