"""Semantic resolution of Lambda clients and handlers: each idiom, and its near-misses."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.conftest import rule_ids, scan_sources

HANDLER = "\ndef handler(event, context):\n    {call}\n"

CLIENTS = [
    pytest.param('import boto3\nc = boto3.client("lambda")', True, id="boto3.client"),
    pytest.param(
        'import boto3\nc = boto3.client(service_name="lambda")', True, id="service_name-kw"
    ),
    pytest.param('import boto3 as b3\nc = b3.client("lambda")', True, id="import-alias"),
    pytest.param(
        'from boto3 import client\nc = client("lambda")', True, id="from-boto3-import-client"
    ),
    pytest.param('from boto3 import client as mk\nc = mk("lambda")', True, id="from-import-alias"),
    pytest.param(
        'import boto3\nc = boto3.Session(region_name="eu-west-1").client("lambda")',
        True,
        id="Session().client",
    ),
    pytest.param(
        "import boto3\nfrom botocore.config import Config\n"
        'c = boto3.session.Session().client("lambda", config=Config(retries={"max_attempts": 0}))',
        True,
        id="session.Session-with-Config",
    ),
    pytest.param(
        "import boto3\n"
        'def get_lambda_client():\n    return boto3.client("lambda")\n'
        "c = get_lambda_client()",
        True,
        id="factory",
    ),
    pytest.param(
        "import boto3\ndef _get_aws_client(client_type):\n    return boto3.client(client_type)\n"
        'c = _get_aws_client(client_type="lambda")',
        True,
        id="parameterised-factory",
    ),
    pytest.param(
        'import boto3\nLAMBDA = "lambda"\nc = boto3.client(LAMBDA)',
        True,
        id="service-from-constant",
    ),
    # near-misses: same shape, other service or not boto3 at all
    pytest.param('import boto3\nc = boto3.client("sagemaker-runtime")', False, id="other-service"),
    pytest.param('import boto3\nc = boto3.client("stepfunctions")', False, id="stepfunctions"),
    pytest.param('import boto3\nc = boto3.resource("dynamodb")', False, id="resource"),
    pytest.param(
        "import boto3\ndef _get_aws_client(client_type):\n    return boto3.client(client_type)\n"
        'c = _get_aws_client(client_type="sqs")',
        False,
        id="parameterised-factory-other-service",
    ),
    pytest.param("from unittest.mock import MagicMock\nc = MagicMock()", False, id="magicmock"),
    pytest.param(
        "class Fake:\n    def invoke(self, **kw):\n        return kw\nc = Fake()",
        False,
        id="fake-class",
    ),
]


@pytest.mark.parametrize(("setup", "reported"), CLIENTS)
def test_client_construction(tmp_path: Path, setup: str, reported: bool) -> None:
    source = setup + HANDLER.format(call='c.invoke(FunctionName="worker")')
    result = scan_sources(tmp_path, {"app.py": source})
    assert not result.errors
    assert (rule_ids(result) == ["UNT001"]) is reported, result.findings


LOOKALIKES = [
    pytest.param(
        'boto3.client("sagemaker-runtime").invoke_endpoint(EndpointName="m")', id="sagemaker"
    ),
    pytest.param(
        'boto3.client("bedrock-runtime").invoke_model(modelId="m", body="{}")', id="bedrock"
    ),
    pytest.param(
        'boto3.client("stepfunctions").start_execution(stateMachineArn="a")', id="sfn-start"
    ),
    pytest.param('boto3.client("lambda").get_function(FunctionName="f")', id="lambda-management"),
    pytest.param('boto3.client("lambda").list_functions()', id="lambda-list"),
    pytest.param(
        'boto3.client("lambda").send_durable_execution_callback_success(CallbackId="x")',
        id="durable-callback",
    ),
    pytest.param('boto3.client("sns").publish(TopicArn="t", Message="m")', id="sns"),
    pytest.param('boto3.client("sqs").send_message(QueueUrl="q", MessageBody="m")', id="sqs"),
    pytest.param('context.invoke("charge", event)', id="durable-context-invoke"),
    pytest.param('print("lambda_client.invoke(FunctionName=1)")', id="text-in-string"),
]


@pytest.mark.parametrize("call", LOOKALIKES)
def test_lookalikes_are_not_chaining(tmp_path: Path, call: str) -> None:
    result = scan_sources(tmp_path, {"app.py": "import boto3" + HANDLER.format(call=call)})
    assert not result.errors
    assert result.findings == []


def test_class_attribute_client_and_wrapper_method(tmp_path: Path) -> None:
    result = scan_sources(
        tmp_path,
        {
            "lib/caller.py": (
                "import boto3\n"
                "class LambdaCaller:\n"
                "    def __init__(self):\n"
                '        self._client = boto3.client("lambda")\n'
                "    def call(self, name, payload):\n"
                "        return self._client.invoke(FunctionName=name, Payload=payload)\n"
            ),
            "svc/app.py": (
                "from lib.caller import LambdaCaller\n"
                "class Service:\n"
                "    client = LambdaCaller()\n"
                "def handler(event, context):\n"
                '    return Service.client.call("worker", b"{}")\n'
            ),
        },
    )
    [finding] = result.findings
    assert finding.path.endswith("caller.py") and finding.line == 6
    assert finding.handler == "svc.app.handler"


def test_client_passed_as_parameter_across_modules(tmp_path: Path) -> None:
    result = scan_sources(
        tmp_path,
        {
            "helpers.py": "def run(client, name):\n    return client.invoke(FunctionName=name)\n",
            "app.py": (
                "import boto3\nimport helpers\n"
                "def handler(event, context):\n"
                '    return helpers.run(boto3.client("lambda"), "worker")\n'
            ),
            "other.py": (
                "import boto3\nimport helpers\n"
                "def script():\n"
                '    return helpers.run(boto3.client("s3"), "bucket")\n'
            ),
        },
    )
    assert [(f.rule, f.path.rsplit("/", 1)[-1], f.target) for f in result.findings] == [
        ("UNT001", "helpers.py", "worker")
    ]


def test_helper_invoke_attributed_to_every_handler(tmp_path: Path) -> None:
    result = scan_sources(
        tmp_path,
        {
            "shared/lambdas.py": (
                "import json, os\nimport boto3\n_lam = boto3.client('lambda')\n"
                "def invoke_lambda(name, payload):\n"
                "    resp = _lam.invoke(FunctionName=name, Payload=json.dumps(payload))\n"
                "    return json.loads(resp['Payload'].read())\n"
            ),
            "a/app.py": (
                "from shared.lambdas import invoke_lambda\n"
                "def lambda_handler(event, context):\n"
                "    return invoke_lambda('x', event)\n"
            ),
            "b/app.py": (
                "from shared import lambdas\n"
                "def lambda_handler(event, context):\n"
                "    return lambdas.invoke_lambda('y', event)\n"
            ),
        },
    )
    # one finding for the one place, listing both handlers and what each invokes
    [finding] = result.findings
    assert finding.handlers == ("a.app.lambda_handler", "b.app.lambda_handler")
    assert finding.target is None
    assert finding.targets == (("a.app.lambda_handler", "x"), ("b.app.lambda_handler", "y"))
    assert "the function each handler names" in finding.message and "|" not in finding.message


def test_handlers_that_invoke_the_same_function_share_its_target(tmp_path: Path) -> None:
    helper = (
        "import boto3\n_lam = boto3.client('lambda')\n"
        "def invoke_lambda(name):\n    return _lam.invoke(FunctionName=name)\n"
    )
    user = (
        "from shared.lambdas import invoke_lambda\n"
        "def lambda_handler(event, context):\n    return invoke_lambda('x')\n"
    )
    result = scan_sources(
        tmp_path, {"shared/lambdas.py": helper, "a/app.py": user, "b/app.py": user}
    )
    [finding] = result.findings
    assert len(finding.handlers) == 2 and finding.target == "x" and finding.targets == ()


def test_aiobotocore_and_aioboto3(tmp_path: Path) -> None:
    source = (
        "import asyncio\nimport aioboto3\nfrom aiobotocore.session import get_session\n"
        "async def one():\n"
        "    async with get_session().create_client('lambda') as c:\n"
        "        return await c.invoke(FunctionName='a')\n"
        "async def two():\n"
        "    async with aioboto3.Session().client('lambda') as c:\n"
        "        return await c.invoke(FunctionName='b', InvocationType='Event')\n"
        "def handler(event, context):\n"
        "    return asyncio.run(one()), asyncio.run(two())\n"
    )
    result = scan_sources(tmp_path, {"app.py": source})
    assert [(f.rule, f.target) for f in result.findings] == [("UNT001", "a"), ("UNT002", "b")]


INVOCATION_TYPES = [
    pytest.param('InvocationType="Event"', "UNT002", id="event"),
    pytest.param('InvocationType="RequestResponse"', "UNT001", id="request-response"),
    pytest.param("", "UNT001", id="omitted"),
    pytest.param(
        'InvocationType="Event" if event else "RequestResponse"', "UNT001", id="conditional"
    ),
    pytest.param("InvocationType=Mode.EVENT.value", "UNT002", id="enum-value"),
    pytest.param('**{"InvocationType": "Event"}', "UNT002", id="kwargs-dict"),
    pytest.param("**event['params']", "UNT001", id="kwargs-unknown"),
    pytest.param('InvocationType="DryRun"', None, id="dry-run"),
]


@pytest.mark.parametrize(("argument", "rule"), INVOCATION_TYPES)
def test_invocation_type(tmp_path: Path, argument: str, rule: str | None) -> None:
    source = (
        "import enum\nimport boto3\nlam = boto3.client('lambda')\n"
        "class Mode(enum.Enum):\n    EVENT = 'Event'\n"
        "def handler(event, context):\n"
        f"    lam.invoke(FunctionName='w', {argument})\n"
    )
    result = scan_sources(tmp_path, {"app.py": source})
    assert rule_ids(result) == ([rule] if rule else [])


TARGETS = [
    pytest.param("'validate-payment'", "validate-payment", id="literal"),
    pytest.param(
        "'arn:aws:lambda:us-east-1:123456789012:function:pay:PROD'", "pay", id="arn-alias"
    ),
    pytest.param("'pay:PROD'", "pay", id="name-qualifier"),
    pytest.param("os.environ['PAY_FN']", "$PAY_FN", id="environ"),
    pytest.param("os.getenv('PAY_FN')", "$PAY_FN", id="getenv"),
    pytest.param("PAY", "pay", id="constant"),
    pytest.param("event['fn']", None, id="from-event"),
]


@pytest.mark.parametrize(("expression", "target"), TARGETS)
def test_target(tmp_path: Path, expression: str, target: str | None) -> None:
    source = (
        "import os\nimport boto3\nPAY = 'pay'\nlam = boto3.client('lambda')\n"
        "def handler(event, context):\n"
        f"    lam.invoke(FunctionName={expression})\n"
    )
    [finding] = scan_sources(tmp_path, {"app.py": source}).findings
    assert finding.target == target


def test_handler_from_template_only(tmp_path: Path) -> None:
    files = {
        "template.yaml": (
            "Transform: AWS::Serverless-2016-10-31\nResources:\n  Fn:\n"
            "    Type: AWS::Serverless::Function\n    Properties:\n"
            "      CodeUri: src/\n      Handler: jobs.run\n      Runtime: python3.12\n"
            "      Environment:\n        Variables:\n          T: !Ref Other\n"
        ),
        "src/jobs.py": "import time\ndef run(payload, c):\n    time.sleep(30)\n",
        "src/other.py": "import time\ndef run(payload, c):\n    time.sleep(30)\n",
    }
    result = scan_sources(tmp_path, files)
    assert [(f.rule, f.handler) for f in result.findings] == [("UNT003", "src.jobs.run")]


def test_self_invocation_through_helper(tmp_path: Path) -> None:
    source = (
        "import time, boto3\nlam = boto3.client('lambda')\n"
        "def again(ctx, event):\n"
        "    lam.invoke(FunctionName=ctx.function_name, InvocationType='Event', Payload=b'{}')\n"
        "def handler(event, context):\n"
        "    if context.get_remaining_time_in_millis() < 60000:\n"
        "        again(context, event)\n"
    )
    result = scan_sources(tmp_path, {"app.py": source})
    assert rule_ids(result) == ["UNT006"]
