"""Precision on whole repositories: one finding per place, for the people who own it, and quiet
where nothing is Lambda chaining. Each table: the case, then its near misses."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.conftest import scan_sources

INVOKER = (
    "import boto3\nlam = boto3.client('lambda')\n"
    "def call(name):\n    return lam.invoke(FunctionName=name, Payload=b'{}')\n"
)
RETRYING_SCRIPT = (
    "import time\nimport boto3\nlam = boto3.client('lambda')\n"
    "def smoke():\n"
    "    for attempt in range(3):\n"
    "        try:\n"
    "            return lam.invoke(FunctionName='worker')\n"
    "        except Exception:\n"
    "            time.sleep(1)\n"
)

# (file, source, rules reported): invokes in tests and scripts are UNT007, and nothing else
OUTSIDE_LAMBDA = [
    pytest.param("tests/test_flow.py", INVOKER, ["UNT007"], id="test-module"),
    pytest.param("tests/integration/helpers.py", INVOKER, ["UNT007"], id="under-tests"),
    pytest.param("conftest.py", INVOKER, ["UNT007"], id="conftest"),
    pytest.param("service/flow_test.py", INVOKER, ["UNT007"], id="name_test"),
    pytest.param("scripts/replay.py", INVOKER, ["UNT007"], id="under-scripts"),
    pytest.param("bin/invoke-all.py", INVOKER, ["UNT007"], id="under-bin"),
    pytest.param(
        "tools/smoke.py",
        INVOKER + "if __name__ == '__main__':\n    call('worker')\n",
        ["UNT007"],
        id="main-guard-script",
    ),
    pytest.param(
        "scripts/retry_smoke.py", RETRYING_SCRIPT, ["UNT007"], id="no-retry-loop-finding-either"
    ),
    # near misses: Lambda code, or code that only looks like a test or a script
    pytest.param("layer/python/invoker.py", INVOKER, ["UNT001"], id="layer-helper-stays-unt001"),
    pytest.param("service/testing.py", INVOKER, ["UNT001"], id="testing-is-not-a-test"),
    pytest.param("service/contest.py", INVOKER, ["UNT001"], id="contest-is-not-conftest"),
    pytest.param("binary/invoker.py", INVOKER, ["UNT001"], id="binary-is-not-bin"),
    pytest.param(
        "tests/handler_app.py",
        INVOKER + "def lambda_handler(event, context):\n    return call('worker')\n",
        ["UNT001"],
        id="a-handler-under-tests-is-lambda-code",
    ),
    pytest.param(
        "app.py",
        INVOKER
        + "def lambda_handler(event, context):\n    return call('worker')\n"
        + "if __name__ == '__main__':\n    lambda_handler({}, None)\n",
        ["UNT001"],
        id="handler-with-a-main-guard",
    ),
]


@pytest.mark.parametrize(("name", "source", "rules"), OUTSIDE_LAMBDA)
def test_invokes_outside_lambda_code(
    tmp_path: Path, name: str, source: str, rules: list[str]
) -> None:
    result = scan_sources(tmp_path, {name: source})
    assert not result.errors
    assert sorted({f.rule for f in result.findings}) == rules
    if rules == ["UNT007"]:
        [finding] = result.findings
        assert "outside Lambda code" in finding.message and finding.handler is None


def test_outside_lambda_code_is_ignored_with_one_line(tmp_path: Path) -> None:
    files = {"tests/test_flow.py": INVOKER, "scripts/retry_smoke.py": RETRYING_SCRIPT}
    assert scan_sources(tmp_path, files, ignore=("UNT007",)).findings == []


# the handler's source; whether its invoke is reported
UNREACHABLE = [
    pytest.param("    return {}\n    lam.invoke(FunctionName='w')\n", False, id="after-return"),
    pytest.param(
        "    raise ValueError('off')\n    lam.invoke(FunctionName='w')\n", False, id="after-raise"
    ),
    pytest.param("    if False:\n        lam.invoke(FunctionName='w')\n", False, id="if-False"),
    pytest.param("    if 0:\n        lam.invoke(FunctionName='w')\n", False, id="if-0"),
    pytest.param(
        "    if True:\n        return {}\n    else:\n        lam.invoke(FunctionName='w')\n",
        False,
        id="else-of-if-True",
    ),
    pytest.param(
        "    for r in event['Records']:\n        continue\n        lam.invoke(FunctionName='w')\n",
        False,
        id="after-continue",
    ),
    # near misses: code that may run
    pytest.param(
        "    if event.get('skip'):\n        return {}\n    lam.invoke(FunctionName='w')\n",
        True,
        id="after-a-conditional-return",
    ),
    pytest.param("    if True:\n        lam.invoke(FunctionName='w')\n", True, id="if-True"),
    pytest.param(
        "    while True:\n        lam.invoke(FunctionName='w')\n        break\n",
        True,
        id="before-break",
    ),
    pytest.param(
        "    try:\n        return {}\n    finally:\n        lam.invoke(FunctionName='w')\n",
        True,
        id="finally-after-return",
    ),
    pytest.param(
        "    DEBUG = False\n    if DEBUG:\n        lam.invoke(FunctionName='w')\n",
        True,
        id="a-false-variable-is-not-constant",
    ),
]


@pytest.mark.parametrize(("body", "reported"), UNREACHABLE)
def test_unreachable_code_is_not_reported(tmp_path: Path, body: str, reported: bool) -> None:
    source = "import boto3\nlam = boto3.client('lambda')\ndef handler(event, context):\n" + body
    result = scan_sources(tmp_path, {"app.py": source})
    assert not result.errors
    assert bool(result.findings) is reported, result.findings


TEMPLATE = """\
Transform: AWS::Serverless-2016-10-31
Resources:
  Orders:
    Type: AWS::Serverless::Function
    Properties:
      FunctionName: orders-orchestrator
      CodeUri: orders/
      Handler: app.lambda_handler
      Runtime: python3.12
"""
ORDERS = (
    "from invoker import call\ndef lambda_handler(event, context):\n    return call('{name}')\n"
)


def test_the_template_names_the_handler_inside_its_code_folder(tmp_path: Path) -> None:
    files = {
        "template.yaml": TEMPLATE,
        "orders/invoker.py": INVOKER,
        "orders/app.py": ORDERS.format(name="charge"),
        # a second module of the same folder that happens to define lambda_handler
        "orders/legacy.py": ORDERS.format(name="charge"),
    }
    [finding] = scan_sources(tmp_path, files).findings
    assert finding.handlers == ("orders.app.lambda_handler",)


def test_outside_template_folders_signatures_still_make_handlers(tmp_path: Path) -> None:
    files = {
        "template.yaml": TEMPLATE,
        "orders/invoker.py": INVOKER,
        "orders/app.py": ORDERS.format(name="charge"),
        "other/invoker.py": INVOKER,
        "other/app.py": ORDERS.format(name="charge"),
    }
    handlers = sorted(h for f in scan_sources(tmp_path, files).findings for h in f.handlers)
    assert handlers == ["orders.app.lambda_handler", "other.app.lambda_handler"]


@pytest.mark.parametrize(
    ("name", "rule"),
    [
        pytest.param("orders-orchestrator", "UNT006", id="its-own-literal-name"),
        pytest.param(
            "arn:aws:lambda:eu-west-1:123456789012:function:orders-orchestrator:live",
            "UNT006",
            id="its-own-arn",
        ),
        pytest.param("orders-orchestrator-v2", "UNT001", id="a-longer-name-is-another"),
        pytest.param("charge", "UNT001", id="another-function"),
    ],
)
def test_a_handler_invoking_its_template_name_is_a_self_invoke(
    tmp_path: Path, name: str, rule: str
) -> None:
    files = {
        "template.yaml": TEMPLATE,
        "orders/invoker.py": INVOKER,
        "orders/app.py": ORDERS.format(name=name),
    }
    [finding] = scan_sources(tmp_path, files).findings
    assert finding.rule == rule


@pytest.mark.parametrize(
    ("loop", "kind"),
    [
        pytest.param(
            "    for attempt in range(3):\n        try:\n"
            "            return lam.invoke(FunctionName='w')\n"
            "        except Exception:\n            time.sleep(2)\n",
            "retry loop",
            id="for-try-sleep",
        ),
        pytest.param(
            "    n = 0\n    while n < 3:\n        try:\n"
            "            return lam.invoke(FunctionName='w')\n"
            "        except Exception:\n            n += 1\n            time.sleep(2)\n",
            "retry loop",
            id="while-try-sleep",
        ),
        pytest.param(
            "    while True:\n        status = lam.invoke(FunctionName='w')\n"
            "        if status['StatusCode'] == 200:\n            return status\n"
            "        time.sleep(5)\n",
            "polling loop",
            id="while-on-the-answer",
        ),
        pytest.param(
            "    for _ in range(10):\n        status = lam.invoke(FunctionName='w')\n"
            "        if status['StatusCode'] == 200:\n            break\n        time.sleep(5)\n",
            "polling loop",
            id="bounded-polling",
        ),
    ],
)
def test_retry_loops_and_polling_loops_are_named_for_what_they_are(
    tmp_path: Path, loop: str, kind: str
) -> None:
    source = (
        "import time\nimport boto3\nlam = boto3.client('lambda')\n"
        "def handler(event, context):\n" + loop
    )
    [finding] = [
        f for f in scan_sources(tmp_path, {"app.py": source}).findings if f.rule == "UNT004"
    ]
    assert f"hand-rolled {kind}" in finding.message
    other = "polling loop" if kind == "retry loop" else "retry loop"
    assert other not in finding.message
