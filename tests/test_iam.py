"""The state machine's invoke permission names exact ARNs (issue 13, IAM): SAM's
`LambdaInvokePolicy: FunctionName: X` grants `function:X*`, every function for `*` or an empty
name, and `my-func-admin` beside `my-func`."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from click.testing import CliRunner

from untangle.cli import main
from untangle.iam import Callee, UnsafeFunctionName, invoke_resources, invoke_statement
from untangle.sam import cfn_load

ARN = "arn:${AWS::Partition}:lambda:${AWS::Region}:${AWS::AccountId}:function:"

GRANTED = [
    pytest.param(Callee("my-func", None), [f'!Sub "{ARN}my-func"'], id="dash-name-exact"),
    pytest.param(Callee("send_email", None), [f'!Sub "{ARN}send_email"'], id="underscore-name"),
    pytest.param(Callee("A" * 64, None), [f'!Sub "{ARN}{"A" * 64}"'], id="64-characters"),
    pytest.param(
        Callee("my-func", None, qualified=True),
        [f'!Sub "{ARN}my-func"', f'!Sub "{ARN}my-func:*"'],
        id="qualified-name-adds-versions",
    ),
    pytest.param(
        Callee("validate-payment", "ValidatePaymentFunction"),
        ["!GetAtt ValidatePaymentFunction.Arn"],
        id="template-callee-getatt",
    ),
    pytest.param(
        Callee("validate-payment", "ValidatePaymentFunction", qualified=True),
        ["!GetAtt ValidatePaymentFunction.Arn", '!Sub "${ValidatePaymentFunction.Arn}:*"'],
        id="template-callee-qualified",
    ),
    # a template callee is named by its resource, whatever the code called it
    pytest.param(Callee("", "IndexFunction"), ["!GetAtt IndexFunction.Arn"], id="ref-callee"),
]


@pytest.mark.parametrize(("callee", "resources"), GRANTED)
def test_exact_resources(callee: Callee, resources: list[str]) -> None:
    assert invoke_resources([callee]) == sorted(resources)


REFUSED = [
    pytest.param("", "empty", id="empty"),
    pytest.param("*", "wildcard", id="star"),
    pytest.param("my-func*", "wildcard", id="prefix-star"),
    pytest.param("my-fun?", "wildcard", id="question-mark"),
    pytest.param("my func", "not a Lambda function name", id="space"),
    pytest.param("${Stage}-worker", "not a Lambda function name", id="sub-variable"),
    pytest.param("A" * 65, "not a Lambda function name", id="65-characters"),
    pytest.param("arn:aws:lambda", "not a Lambda function name", id="truncated-arn"),
]


@pytest.mark.parametrize(("name", "why"), REFUSED)
def test_names_that_would_grant_more_are_refused(name: str, why: str) -> None:
    with pytest.raises(UnsafeFunctionName, match=why):
        invoke_resources([Callee(name, None)])


def test_one_statement_without_duplicates() -> None:
    callees = [Callee("b-func", None), Callee("a-func", None), Callee("b-func", None)]
    assert invoke_statement(invoke_resources(callees)) == [
        "- Statement:",
        "    - Effect: Allow",
        "      Action: lambda:InvokeFunction",
        "      Resource:",
        f'        - !Sub "{ARN}a-func"',
        f'        - !Sub "{ARN}b-func"',
    ]
    assert invoke_statement([]) == []


def _migrate(folder: Path, *args: str) -> tuple[int, str, str]:
    import os

    cwd = os.getcwd()
    os.chdir(folder)
    try:
        result = CliRunner().invoke(main, ["migrate", ".", "--no-cache", *args])
    finally:
        os.chdir(cwd)
    return result.exit_code, result.stdout, result.stderr


HANDLER = """\
import json

import boto3

lambda_client = boto3.client("lambda")


def lambda_handler(event, context):
    first = lambda_client.invoke(FunctionName={first!r}, Payload=json.dumps(event))
    second = lambda_client.invoke(
        FunctionName="audit-order", Qualifier="live", Payload=first["Payload"].read()
    )
    return json.loads(second["Payload"].read())
"""


@pytest.mark.parametrize(
    ("first", "granted"),
    [
        pytest.param("my-func", f"{ARN}my-func", id="plain-name"),
        pytest.param(
            "arn:aws:lambda:eu-west-1:123456789012:function:my-func",
            f"{ARN}my-func",
            id="arn-literal",
        ),
    ],
)
def test_migrate_writes_the_exact_statement(tmp_path: Path, first: str, granted: str) -> None:
    (tmp_path / "app.py").write_text(HANDLER.format(first=first))
    code, _, err = _migrate(tmp_path, "--write")  # the SAM transform and cfn-lint accept it
    assert code == 0, err
    template = cfn_load((tmp_path / "template.yaml").read_text())
    [machine] = [r for r in template["Resources"].values() if r["Type"].endswith("StateMachine")]
    [policy] = machine["Properties"]["Policies"]
    assert policy == {
        "Statement": [
            {
                "Effect": "Allow",
                "Action": "lambda:InvokeFunction",
                "Resource": [
                    {"Fn::Sub": f"{ARN}audit-order"},
                    {"Fn::Sub": f"{ARN}audit-order:*"},
                    {"Fn::Sub": granted},
                ],
            }
        ]
    }


@pytest.mark.parametrize("name", ["*", "", "orders-*"])
def test_migrate_refuses_a_wildcard_callee(tmp_path: Path, name: str) -> None:
    (tmp_path / "app.py").write_text(HANDLER.format(first=name))
    code, out, err = _migrate(tmp_path)
    assert code == 1 and out == ""
    assert "refusing to grant lambda:InvokeFunction on" in err
    assert not (tmp_path / "template.yaml").exists()


def test_template_callees_are_granted_by_their_arn(tmp_path: Path) -> None:
    app = Path(__file__).parent.parent / "fixtures" / "corpus" / "api_order_endpoint"
    shutil.copytree(app, tmp_path / "app")
    code, diff, err = _migrate(tmp_path / "app")
    assert code == 0, err
    assert "LambdaInvokePolicy" not in "".join(
        line for line in diff.splitlines() if line.startswith("+")
    )
    assert "+                - !GetAtt PriceQuoteFunction.Arn\n" in diff
    assert "+                - !GetAtt ReserveStockFunction.Arn\n" in diff
