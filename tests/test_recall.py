"""Recall on real repositories: every boto3 Lambda invoke is found, however its client was made,
and the look-alikes stay quiet. Each table: the idiom, then its near misses."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.conftest import scan_sources

HANDLER = "\ndef handler(event, context):\n    {call}\n"

# The client comes from something the scanned tree does not hold: found by the call's shape.
BY_SHAPE = [
    pytest.param(
        "from shared.clients import get_lambda_client",
        'get_lambda_client().invoke(FunctionName="worker", Payload=b"{}")',
        "UNT001",
        id="factory-outside-the-tree",
    ),
    pytest.param(
        "import platform_sdk",
        'platform_sdk.lambda_client.invoke(FunctionName="worker", InvocationType="Event")',
        "UNT002",
        id="framework-object-async",
    ),
    pytest.param(
        "from shared.clients import client",
        'client.invoke_async(FunctionName="worker", InvokeArgs="{}")',
        "UNT002",
        id="legacy-invoke_async",
    ),
    pytest.param(
        "from shared.aws import session",
        'session.client("lambda").invoke(FunctionName="worker")',
        "UNT001",
        id="untraced-session.client-lambda",
    ),
    pytest.param(
        "from shared.aws import make_session\nlam = make_session().client('lambda')",
        "lam.invoke(FunctionName='worker')",
        "UNT001",
        id="client-of-an-untraced-session-in-a-global",
    ),
]

# Same shapes, not a Lambda invoke: quiet.
NOT_BY_SHAPE = [
    pytest.param(
        "from shared.clients import runtime",
        'runtime.invoke_endpoint(EndpointName="m", Body=b"{}")',
        id="sagemaker-invoke_endpoint",
    ),
    pytest.param(
        "from shared.clients import bedrock",
        'bedrock.invoke_model(modelId="m", body="{}")',
        id="bedrock-invoke_model",
    ),
    pytest.param(
        "from shared.rpc import channel", 'channel.invoke("worker", b"{}")', id="positional-invoke"
    ),
    pytest.param(
        "from shared.rpc import channel",
        'channel.invoke(name="worker", payload={})',
        id="invoke-with-other-keywords",
    ),
    pytest.param(
        "from shared.clients import client",
        'client.invoke_async(FunctionName="worker")',
        id="invoke_async-without-InvokeArgs",
    ),
    pytest.param("", 'context.invoke("charge", event)', id="durable-context-invoke"),
    pytest.param(
        "", 'context.invoke(FunctionName="charge", Payload="{}")', id="lambda-context-is-known"
    ),
    pytest.param(
        "from unittest.mock import MagicMock\nfake = MagicMock()",
        'fake.invoke(FunctionName="worker")',
        id="magicmock",
    ),
    pytest.param(
        "import boto3\ntable = boto3.resource('dynamodb').Table('t')",
        'table.invoke(FunctionName="worker")',
        id="known-sdk-object-of-another-service",
    ),
    pytest.param(
        "from shared.aws import session",
        'session.client("sqs").invoke(QueueUrl="q")',
        id="untraced-session-other-service",
    ),
    pytest.param(
        "class Fake:\n    def invoke(self, **kw):\n        return kw",
        'Fake().invoke(FunctionName="worker")',
        id="a-class-of-the-tree",
    ),
]


@pytest.mark.parametrize(("setup", "call", "rule"), BY_SHAPE)
def test_invoke_recognised_by_shape(tmp_path: Path, setup: str, call: str, rule: str) -> None:
    result = scan_sources(tmp_path, {"app.py": setup + HANDLER.format(call=call)})
    assert not result.errors
    [finding] = result.findings
    assert finding.rule == rule and finding.handler == "app.handler"
    assert "the client recognised by its shape" in finding.message
    assert finding.target == "worker"


@pytest.mark.parametrize(("setup", "call"), NOT_BY_SHAPE)
def test_lookalike_shapes_stay_quiet(tmp_path: Path, setup: str, call: str) -> None:
    result = scan_sources(tmp_path, {"app.py": setup + HANDLER.format(call=call)})
    assert not result.errors
    assert result.findings == []


def test_a_traced_client_is_not_said_to_be_recognised_by_shape(tmp_path: Path) -> None:
    source = "import boto3\nlam = boto3.client('lambda')" + HANDLER.format(
        call="lam.invoke(FunctionName='worker')"
    )
    [finding] = scan_sources(tmp_path, {"app.py": source}).findings
    assert "shape" not in finding.message


def test_constructor_parameter_client(tmp_path: Path) -> None:
    """`self.client = session.client("lambda")` with `session` handed in by code elsewhere."""
    source = (
        "class Invoker:\n"
        "    def __init__(self, session):\n"
        '        self.client = session.client("lambda")\n'
        "    def run(self, name):\n"
        "        return self.client.invoke(FunctionName=name)\n"
        "def handler(event, context):\n"
        "    return Invoker(event['session']).run('worker')\n"
    )
    [finding] = scan_sources(tmp_path, {"app.py": source}).findings
    assert finding.rule == "UNT001" and finding.line == 5
    assert "recognised by its shape" in finding.message


def test_invokes_no_handler_reaches_are_reported_and_say_so(tmp_path: Path) -> None:
    """A shared layer scanned alone: its invoke helper is still a finding, with no handler."""
    source = (
        "import boto3\n"
        "lam = boto3.client('lambda')\n"
        "def call_function(name, payload):\n"
        "    return lam.invoke(FunctionName=name, Payload=payload)\n"
    )
    [finding] = scan_sources(tmp_path, {"layer/python/invoker.py": source}).findings
    assert finding.rule == "UNT001" and finding.handler is None
    assert finding.message.endswith("no handler in the scanned tree reaches this code")


def test_an_invoke_a_handler_reaches_does_not_say_so(tmp_path: Path) -> None:
    source = "import boto3\nlam = boto3.client('lambda')" + HANDLER.format(
        call="lam.invoke(FunctionName='worker')"
    )
    [finding] = scan_sources(tmp_path, {"app.py": source}).findings
    assert finding.handler == "app.handler" and "no handler" not in finding.message


NEWER_PYTHON = [
    pytest.param(
        'def handler(event, context):\n    r = lam.invoke(FunctionName="worker")\n'
        '    print(f"status {r["StatusCode"]}")\n',
        id="pep701-same-quotes-in-a-replacement-field",
    ),
    pytest.param(
        "type Payload = dict[str, object]\n"
        "def send[T](name: str, body: T) -> T:\n    return lam.invoke(FunctionName=name)\n"
        'def handler(event, context):\n    return send("worker", event)\n',
        id="pep695-type-parameters-and-alias",
    ),
    pytest.param(
        "class Box[T]:\n    def __init__(self, item: T) -> None:\n        self.item = item\n"
        'def handler(event, context):\n    lam.invoke(FunctionName="worker")\n'
        '    return f"{Box(1).item:>{event["width"]}}"\n',
        id="pep695-class-and-nested-format-spec",
    ),
]


@pytest.mark.parametrize("body", NEWER_PYTHON)
def test_newer_python_is_scanned_whatever_python_runs_untangle(tmp_path: Path, body: str) -> None:
    source = "import boto3\nlam = boto3.client('lambda')\n" + body
    result = scan_sources(tmp_path, {"app.py": source})
    assert not result.errors
    [finding] = result.findings
    assert finding.rule == "UNT001" and finding.target == "worker"
    invoke_line = next(i for i, t in enumerate(source.splitlines(), 1) if ".invoke(" in t)
    assert finding.line == invoke_line


def test_a_real_syntax_error_is_still_reported_at_its_line(tmp_path: Path) -> None:
    source = (
        'import boto3\nlam = boto3.client("lambda")\n'
        'def handler(event, context):\n    print(f"{event["a"]}")\n    return (\n'
    )
    result = scan_sources(tmp_path, {"app.py": source})
    [error] = result.errors
    assert error.line is not None and error.line >= 5 and "syntax error" in error.message


def test_a_directory_reached_twice_through_a_symlink_is_scanned_once(tmp_path: Path) -> None:
    files = {
        "shared/invoker.py": (
            "import boto3\nlam = boto3.client('lambda')\n"
            "def call(name):\n    return lam.invoke(FunctionName=name)\n"
        ),
        "app.py": "from shared.invoker import call\ndef handler(event, context):\n"
        "    return call('worker')\n",
    }
    (tmp_path / "tests" / "unit").mkdir(parents=True)
    (tmp_path / "tests" / "unit" / "shared").symlink_to("../../shared", target_is_directory=True)
    result = scan_sources(tmp_path, files)
    assert result.errors == []
    [finding] = result.findings
    assert finding.path.endswith("shared/invoker.py") and finding.handler == "app.handler"


def test_a_symlink_to_an_ancestor_is_still_a_loop(tmp_path: Path) -> None:
    (tmp_path / "pkg").mkdir()
    (tmp_path / "pkg" / "up").symlink_to("..", target_is_directory=True)
    result = scan_sources(tmp_path, {"app.py": "x = 1\n"})
    assert [e.message for e in result.errors] == [
        "symlink loop: this directory was already scanned"
    ]


LAYER_HELPER = (
    "import boto3\nlam = boto3.client('lambda')\n"
    "def call_function(name, payload):\n    return lam.invoke(FunctionName=name, Payload=payload)\n"
)
LAYER_USER = (
    "from invoker import call_function\n"
    "def lambda_handler(event, context):\n    return call_function('worker', b'{}')\n"
)


def _sam(layers_of_orchestrator: str, layer_resource: str) -> str:
    return f"""\
Transform: AWS::Serverless-2016-10-31
Resources:
  SharedLayer:
{layer_resource}
  Orchestrator:
    Type: AWS::Serverless::Function
    Properties:
      CodeUri: orchestrator/
      Handler: app.lambda_handler
      Runtime: python3.12
{layers_of_orchestrator}
  Other:
    Type: AWS::Serverless::Function
    Properties:
      CodeUri: other/
      Handler: app.lambda_handler
      Runtime: python3.12
"""


SERVERLESS_LAYER = """\
    Type: AWS::Serverless::LayerVersion
    Properties:
      ContentUri: layers/shared/
"""
LAYERS = "      Layers:\n        - !Ref SharedLayer\n"


@pytest.mark.parametrize(
    ("layer_resource", "layer_file", "layers", "reached"),
    [
        pytest.param(
            SERVERLESS_LAYER, "layers/shared/python/invoker.py", LAYERS, True, id="sam-python-dir"
        ),
        pytest.param(
            SERVERLESS_LAYER, "layers/shared/invoker.py", LAYERS, True, id="sam-build-method"
        ),
        pytest.param(
            "    Type: AWS::Lambda::LayerVersion\n    Properties:\n      Content: layers/shared/\n",
            "layers/shared/python/invoker.py",
            "      Layers:\n        - Ref: SharedLayer\n",
            True,
            id="cfn-layer-version",
        ),
        pytest.param(
            SERVERLESS_LAYER,
            "layers/shared/python/invoker.py",
            "",
            False,
            id="function-without-the-layer",
        ),
        pytest.param(
            SERVERLESS_LAYER,
            "layers/shared/python/invoker.py",
            "      Layers:\n        - arn:aws:lambda:eu-west-1:123456789012:layer:other:3\n",
            False,
            id="layer-by-arn-is-not-in-the-tree",
        ),
    ],
)
def test_a_layer_is_on_its_functions_import_path(
    tmp_path: Path, layer_resource: str, layer_file: str, layers: str, reached: bool
) -> None:
    files = {
        "template.yaml": _sam(layers, layer_resource),
        layer_file: LAYER_HELPER,
        "orchestrator/app.py": LAYER_USER,
        # the same import in a function the layer is not given: never resolved through it
        "other/app.py": LAYER_USER,
    }
    result = scan_sources(tmp_path, files)
    assert not result.errors
    [finding] = result.findings
    assert finding.path.endswith(layer_file)
    assert finding.handler == ("orchestrator.app.lambda_handler" if reached else None)


def test_extra_paths_add_import_roots_for_layers_built_elsewhere(tmp_path: Path) -> None:
    files = {"build/layer/python/invoker.py": LAYER_HELPER, "src/app.py": LAYER_USER}
    without = scan_sources(tmp_path, files)
    assert [f.handler for f in without.findings] == [None]
    with_roots = scan_sources(
        tmp_path, files, extra_paths=("build/layer/python",), base=str(tmp_path)
    )
    assert [f.handler for f in with_roots.findings] == ["src.app.lambda_handler"]
