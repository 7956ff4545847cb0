"""The verify engine: state machines on moto's interpreter, original handlers in-process.

(a) hand-written JSONata and JSONPath definitions exercising Task/Choice/Retry/Catch/Map/Parallel/
Wait with Python handlers; (b) for fixture apps, the ORIGINAL orchestrator (run_original, callees
from template.yaml) against the JSONata definition `untangle.plan` generates for it (run_machine),
on the same events. Mismatches there are planner bugs: they are marked xfail(strict=True) with
the event, what the original does, what the state machine does and the ASL state involved.
"""

from __future__ import annotations

import json
import os
import re
import sys
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import pytest

# no importorskip: the test extra installs moto and jsonata-python, and a missing or moved
# dependency must fail here rather than skip
from untangle.engine import machine
from untangle.engine.machine import (
    Engine,
    EngineUnavailable,
    MachineRun,
    check_hooks,
    function_name_of,
    run_machine,
    substitute_placeholders,
)
from untangle.engine.original import (
    OriginalRun,
    environment,
    functions_from_template,
    load_handler,
    run_original,
)

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
ARTICLE = os.path.join(ROOT, "fixtures", "article")


@pytest.fixture(scope="module")
def engine() -> Iterator[Engine]:
    with Engine() as running:
        yield running


# ---------------------------------------------------------------- the hook points


def test_moto_hook_points_are_where_the_engine_patches_them() -> None:
    # fails loudly when a moto upgrade moves one of the private hooks (pin: the verify extra)
    check_hooks()


def test_check_hooks_names_a_moved_hook(monkeypatch: pytest.MonkeyPatch) -> None:
    import moto.stepfunctions.parser.asl.jsonata.jsonata as jsonata_module

    monkeypatch.setattr(machine, "_PATCHED", [])  # as if no engine were running
    monkeypatch.delattr(jsonata_module, "_eval_jsonata")
    with pytest.raises(EngineUnavailable, match="_eval_jsonata"):
        check_hooks()


def test_helpers() -> None:
    assert function_name_of("arn:aws:lambda:us-east-1:1:function:send-email:prod") == "send-email"
    assert function_name_of("send-email:7") == "send-email"
    assert function_name_of("send-email") == "send-email"
    assert substitute_placeholders({"a": ["${XArn}", 1]}) == {
        "a": ["arn:aws:lambda:us-east-1:123456789012:function:XArn", 1]
    }


# ---------------------------------------------------------------- (a) hand-written definitions


def _task(function: str, **extra: Any) -> dict[str, Any]:
    return {
        "Type": "Task",
        "Resource": "arn:aws:states:::lambda:invoke",
        "Arguments": {"FunctionName": "${" + function + "}", "Payload": "{% $states.input %}"},
        "Output": "{% $states.result.Payload %}",
        **extra,
    }


JSONATA_DEFINITION: dict[str, Any] = {
    "QueryLanguage": "JSONata",
    "StartAt": "Remember",
    "States": {
        "Remember": {
            "Type": "Pass",
            "Assign": {"orderId": "{% $states.input.orderId %}"},
            "Next": "Validate",
        },
        "Validate": _task(
            "ValidateFunctionArn",
            Output="{% $merge([$states.input, $states.result.Payload]) %}",
            Catch=[
                {
                    "ErrorEquals": ["ValueError"],
                    "Output": "{% {'rejected': $orderId, 'error': $states.errorOutput.Error,"
                    " 'message': $parse($states.errorOutput.Cause).errorMessage} %}",
                    "Next": "Rejected",
                }
            ],
            Next="Route",
        ),
        "Rejected": {"Type": "Pass", "End": True},
        "Route": {
            "Type": "Choice",
            "Choices": [
                {"Condition": "{% $states.input.total < 0 %}", "Next": "Negative"},
                {"Condition": "{% $states.input.total > 100 %}", "Next": "Fanout"},
            ],
            "Default": "Pause",
        },
        "Negative": {
            "Type": "Fail",
            "Error": "NegativeTotal",
            "Cause": "{% 'total ' & $string($states.input.total) %}",
        },
        "Pause": {"Type": "Wait", "Seconds": 3600, "Next": "Fanout"},
        "Fanout": {
            "Type": "Parallel",
            "Branches": [
                {
                    "StartAt": "PerItem",
                    "States": {
                        "PerItem": {
                            "Type": "Map",
                            "Items": "{% $states.input.items %}",
                            "MaxConcurrency": 2,
                            "ItemProcessor": {
                                "ProcessorConfig": {"Mode": "INLINE"},
                                "StartAt": "Price",
                                "States": {"Price": _task("PriceFunctionArn", End=True)},
                            },
                            "End": True,
                        }
                    },
                },
                {
                    "StartAt": "Flaky",
                    "States": {
                        "Flaky": {
                            **_task("FlakyFunctionArn"),
                            "Arguments": {
                                "FunctionName": "${FlakyFunctionArn}",
                                "Payload": "{% {'orderId': $orderId} %}",
                            },
                            "Retry": [
                                {
                                    "ErrorEquals": ["ConnectionError"],
                                    "IntervalSeconds": 5,
                                    "MaxAttempts": 3,
                                    "BackoffRate": 2,
                                }
                            ],
                            "End": True,
                        }
                    },
                },
            ],
            "Output": "{% {'orderId': $orderId, 'prices': $states.result[0],"
            " 'flaky': $states.result[1]} %}",
            "End": True,
        },
    },
}

JSONPATH_DEFINITION: dict[str, Any] = {
    "StartAt": "Validate",
    "States": {
        "Validate": {
            # the plain Lambda ARN form: the result is the payload itself
            "Type": "Task",
            "Resource": "${ValidateFunctionArn}",
            "ResultPath": "$.validated",
            "Catch": [{"ErrorEquals": ["ValueError"], "ResultPath": "$.error", "Next": "Rejected"}],
            "Next": "Route",
        },
        "Rejected": {
            "Type": "Pass",
            "Parameters": {"rejected.$": "$.orderId", "error.$": "$.error.Error"},
            "End": True,
        },
        "Route": {
            "Type": "Choice",
            "Choices": [
                {"Variable": "$.total", "NumericLessThan": 0, "Next": "Negative"},
                {
                    "And": [
                        {"Variable": "$.total", "IsPresent": True},
                        {"Variable": "$.total", "NumericGreaterThan": 100},
                    ],
                    "Next": "Fanout",
                },
            ],
            "Default": "Pause",
        },
        "Negative": {"Type": "Fail", "Error": "NegativeTotal", "Cause": "negative total"},
        "Pause": {"Type": "Wait", "SecondsPath": "$.pause", "Next": "Fanout"},
        "Fanout": {
            "Type": "Parallel",
            "Branches": [
                {
                    "StartAt": "PerItem",
                    "States": {
                        "PerItem": {
                            "Type": "Map",
                            "ItemsPath": "$.items",
                            "MaxConcurrency": 2,
                            "Iterator": {
                                "StartAt": "Price",
                                "States": {
                                    "Price": {
                                        "Type": "Task",
                                        "Resource": "arn:aws:states:::lambda:invoke",
                                        "Parameters": {
                                            "FunctionName": "${PriceFunctionArn}",
                                            "Payload.$": "$",
                                        },
                                        "ResultSelector": {"price.$": "$.Payload.price"},
                                        "OutputPath": "$.price",
                                        "End": True,
                                    }
                                },
                            },
                            "End": True,
                        }
                    },
                },
                {
                    "StartAt": "Flaky",
                    "States": {
                        "Flaky": {
                            "Type": "Task",
                            "Resource": "arn:aws:states:::lambda:invoke",
                            "Parameters": {
                                "FunctionName": "${FlakyFunctionArn}",
                                "Payload": {"orderId.$": "$.orderId"},
                            },
                            "OutputPath": "$.Payload",
                            "Retry": [
                                {
                                    "ErrorEquals": ["ConnectionError"],
                                    "IntervalSeconds": 5,
                                    "MaxAttempts": 3,
                                    "BackoffRate": 2,
                                }
                            ],
                            "End": True,
                        }
                    },
                },
            ],
            "ResultPath": "$.fanout",
            "OutputPath": "$.fanout",
            "End": True,
        },
    },
}


class Handlers:
    """validate (raises ValueError for declined orders), price, and a flaky function failing
    with ConnectionError on its first two attempts per order."""

    def __init__(self) -> None:
        self.attempts: dict[str, int] = {}
        self.lock = threading.Lock()

    def table(self) -> dict[str, Callable[[Any, Any], Any]]:
        return {
            "ValidateFunctionArn": self.validate,
            "PriceFunctionArn": self.price,
            "FlakyFunctionArn": self.flaky,
        }

    @staticmethod
    def validate(event: Any, context: Any) -> Any:
        assert context.function_name == "ValidateFunctionArn"
        assert context.get_remaining_time_in_millis() > 0
        if str(event["orderId"]).startswith("declined"):
            raise ValueError(f"declined: {event['orderId']}")
        return {"valid": True}

    @staticmethod
    def price(event: Any, context: Any) -> Any:
        return {"sku": event["sku"], "price": event["qty"] * 2}

    def flaky(self, event: Any, context: Any) -> Any:
        with self.lock:
            attempt = self.attempts[event["orderId"]] = self.attempts.get(event["orderId"], 0) + 1
        if attempt < 3:
            raise ConnectionError(f"attempt {attempt}")
        return {"attempt": attempt}


ITEMS = [{"sku": "a", "qty": 1}, {"sku": "b", "qty": 2}, {"sku": "c", "qty": 3}]


def test_jsonata_definition_runs_every_state_kind(engine: Engine) -> None:
    handlers = Handlers()
    started = time.monotonic()
    run = engine.run(
        JSONATA_DEFINITION, handlers.table(), {"orderId": "o1", "total": 50, "items": ITEMS}
    )
    assert run.status == "SUCCEEDED", run
    prices = [{"sku": "a", "price": 2}, {"sku": "b", "price": 4}, {"sku": "c", "price": 6}]
    assert run.output == {"orderId": "o1", "prices": prices, "flaky": {"attempt": 3}}
    # Wait 3600 s and the Retry back-off 5 s + 10 s are skipped, and recorded
    assert run.waited_seconds == 3600 + 5 + 10
    assert time.monotonic() - started < 10
    assert [name for name, _ in run.calls].count("FlakyFunctionArn") == 3
    assert sorted(p["sku"] for name, p in run.calls if name == "PriceFunctionArn") == [
        "a",
        "b",
        "c",
    ]
    assert run.entered()[:4] == ["Remember", "Validate", "Route", "Pause"]
    assert run.history[0] == {
        "type": "PassStateEntered",
        "state": "Remember",
        "input": {"orderId": "o1", "total": 50, "items": ITEMS},
        "output": None,
    }

    big = engine.run(
        JSONATA_DEFINITION, handlers.table(), {"orderId": "o2", "total": 500, "items": []}
    )
    assert big.status == "SUCCEEDED"
    assert big.output == {"orderId": "o2", "prices": [], "flaky": {"attempt": 3}}
    assert "Pause" not in big.entered()
    assert big.waited_seconds == 15


def test_jsonata_catch_on_the_exception_class_name(engine: Engine) -> None:
    run = engine.run(
        JSONATA_DEFINITION, Handlers().table(), {"orderId": "declined-7", "total": 5, "items": []}
    )
    assert run.status == "SUCCEEDED"
    assert run.output == {
        "rejected": "declined-7",
        "error": "ValueError",
        "message": "declined: declined-7",
    }
    assert run.entered() == ["Remember", "Validate", "Rejected"]


def test_jsonata_fail_and_uncaught_errors(engine: Engine) -> None:
    failed = engine.run(
        JSONATA_DEFINITION, Handlers().table(), {"orderId": "o3", "total": -1, "items": []}
    )
    assert (failed.status, failed.error, failed.cause) == ("FAILED", "NegativeTotal", "total -1")
    assert failed.output is None

    def broken(event: Any, context: Any) -> Any:
        raise KeyError("sku")

    table = {**Handlers().table(), "PriceFunctionArn": broken}
    run = engine.run(JSONATA_DEFINITION, table, {"orderId": "o4", "total": 500, "items": ITEMS[:1]})
    assert (run.status, run.error) == ("FAILED", "KeyError")
    assert json.loads(run.cause or "")["errorType"] == "KeyError"

    # Retry gives up after MaxAttempts: the error is the handler's class name
    def always(event: Any, context: Any) -> Any:
        raise ConnectionError("down")

    run = engine.run(
        JSONATA_DEFINITION,
        {**Handlers().table(), "FlakyFunctionArn": always},
        {"orderId": "o5", "total": 500, "items": []},
    )
    assert (run.status, run.error) == ("FAILED", "ConnectionError")
    assert [name for name, _ in run.calls].count("FlakyFunctionArn") == 4
    assert run.waited_seconds == 5 + 10 + 20


def test_jsonpath_definition_runs_every_state_kind(engine: Engine) -> None:
    handlers = Handlers()
    run = engine.run(
        JSONPATH_DEFINITION,
        handlers.table(),
        {"orderId": "o1", "total": 50, "pause": 90, "items": ITEMS},
    )
    assert run.status == "SUCCEEDED", run
    assert run.output == [[2, 4, 6], {"attempt": 3}]
    assert run.waited_seconds == 90 + 5 + 10

    declined = engine.run(
        JSONPATH_DEFINITION, handlers.table(), {"orderId": "declined-1", "total": 500, "items": []}
    )
    assert declined.status == "SUCCEEDED"
    assert declined.output == {"rejected": "declined-1", "error": "ValueError"}

    negative = engine.run(
        JSONPATH_DEFINITION, handlers.table(), {"orderId": "o2", "total": -5, "items": []}
    )
    assert (negative.status, negative.error, negative.cause) == (
        "FAILED",
        "NegativeTotal",
        "negative total",
    )


def test_run_machine_one_shot_and_unknown_function() -> None:
    definition = {
        "QueryLanguage": "JSONata",
        "StartAt": "Hello",
        "States": {"Hello": {**_task("HelloFunctionArn"), "End": True}},
    }
    hello = {"HelloFunctionArn": lambda event, context: {"hello": event["name"]}}
    run = run_machine(definition, hello, {"name": "Ada"})
    assert isinstance(run, MachineRun)
    assert (run.status, run.output, run.calls) == (
        "SUCCEEDED",
        {"hello": "Ada"},
        [("HelloFunctionArn", {"name": "Ada"})],
    )

    missing = run_machine(definition, {}, {"name": "Ada"})
    assert (missing.status, missing.error) == ("FAILED", "ResourceNotFoundException")


# ---------------------------------------------------------------- run_original on its own


def test_run_original_serves_invokes_and_skips_sleeps(tmp_path: Any) -> None:
    (tmp_path / "app.py").write_text(
        "import asyncio, json, os, time\n"
        "import boto3\n"
        "client = boto3.client('lambda')\n"
        "def handler(event, context):\n"
        "    time.sleep(30)\n"
        "    asyncio.run(asyncio.sleep(12))\n"
        "    target = os.environ['TARGET'] + ':live'\n"
        "    ok = client.invoke(FunctionName=target, Payload=json.dumps(event))\n"
        "    bad = client.invoke(FunctionName='fails', Payload=b'{}')\n"
        "    fire = client.invoke(\n"
        "        FunctionName='double', InvocationType='Event', Payload='{\"n\": 1}'\n"
        "    )\n"
        "    error = json.loads(bad['Payload'].read())['errorType']\n"
        "    return {'ok': json.loads(ok['Payload'].read()), 'status': ok['StatusCode'],\n"
        "            'bad': bad.get('FunctionError'), 'badType': error,\n"
        "            'fire': fire['StatusCode']}\n"
    )
    handler = load_handler(str(tmp_path), "app.handler")

    def fails(event: Any, context: Any) -> Any:
        raise ZeroDivisionError("nope")

    functions = {"double": lambda event, context: {"n": event["n"] * 2}, "fails": fails}
    target = "arn:aws:lambda:us-east-1:123456789012:function:double"
    run = run_original(handler, functions, {"n": 21}, env={"TARGET": target})
    assert isinstance(run, OriginalRun)
    assert run.status == "SUCCEEDED", run
    assert run.output == {
        "ok": {"n": 42},
        "status": 200,
        "bad": "Unhandled",
        "badType": "ZeroDivisionError",
        "fire": 202,
    }
    assert run.calls == [("double", {"n": 21}), ("fails", {}), ("double", {"n": 1})]
    assert run.async_calls == ["double"]
    assert run.waited_seconds == 42
    assert "TARGET" not in os.environ

    missing = run_original(handler, {"fails": fails}, {"n": 1}, env={"TARGET": "double"})
    assert (missing.status, missing.error) == ("FAILED", "ResourceNotFoundException")


def test_run_original_serves_aio_invokes_and_sends_other_aio_calls_to_moto(tmp_path: Any) -> None:
    (tmp_path / "app.py").write_text(
        "import asyncio, json\n"
        "import aioboto3\n"
        "from aiobotocore.session import get_session\n"
        "async def _run(event):\n"
        "    async with aioboto3.Session().client('s3', region_name='eu-west-1') as s3:\n"
        "        await s3.create_bucket(Bucket='orders',\n"
        "            CreateBucketConfiguration={'LocationConstraint': 'eu-west-1'})\n"
        "        await s3.put_object(Bucket='orders', Key='k', Body=b'hello')\n"
        "        got = await s3.get_object(Bucket='orders', Key='k')\n"
        "        async with got['Body'] as body:\n"
        "            text = (await body.read()).decode()\n"
        "        try:\n"
        "            await s3.get_object(Bucket='orders', Key='gone')\n"
        "        except s3.exceptions.NoSuchKey:\n"
        "            text += ' (gone)'\n"
        "    async with get_session().create_client('lambda') as client:\n"
        "        ok = await client.invoke(FunctionName='double', Payload=json.dumps(event))\n"
        "        await asyncio.sleep(7)\n"
        "        bad = await client.invoke(FunctionName='fails', Payload=b'{}')\n"
        "        try:\n"
        "            await client.invoke(FunctionName='nowhere', Payload=b'{}')\n"
        "        except client.exceptions.ResourceNotFoundException as exc:\n"
        "            missing = exc.response['Error']['Code']\n"
        "        return {'s3': text, 'ok': json.loads(await ok['Payload'].read()),\n"
        "                'bad': bad.get('FunctionError'), 'missing': missing}\n"
        "def handler(event, context):\n"
        "    return asyncio.run(_run(event))\n"
    )
    handler = load_handler(str(tmp_path), "app.handler")

    def fails(event: Any, context: Any) -> Any:
        raise ZeroDivisionError("nope")

    functions = {"double": lambda event, context: {"n": event["n"] * 2}, "fails": fails}
    run = run_original(handler, functions, {"n": 4})
    assert run.status == "SUCCEEDED", run
    assert run.output == {
        "s3": "hello (gone)",
        "ok": {"n": 8},
        "bad": "Unhandled",
        "missing": "ResourceNotFoundException",
    }
    assert run.calls == [("double", {"n": 4}), ("fails", {})]
    assert run.waited_seconds == 7


def test_functions_from_template_keys_environment_and_layers() -> None:
    template = os.path.join(ARTICLE, "order_chain", "helper_module", "template.yaml")
    functions = functions_from_template(template)
    refund = functions["refund-payment"]
    # the logical id and ${<LogicalId>Arn} (here also ${<Pascal(name)>FunctionArn} and
    # ${<Pascal(REFUND_PAYMENT_FUNCTION)>Arn}, the other placeholder spellings of untangle.plan)
    assert functions["RefundPaymentFunction"] is refund
    assert functions["RefundPaymentFunctionArn"] is refund
    orchestrator = functions["order-processor"]
    assert orchestrator.environment["REFUND_PAYMENT_FUNCTION"] == (
        "arn:aws:lambda:us-east-1:123456789012:function:refund-payment"
    )
    assert orchestrator.environment["VALIDATE_PAYMENT_FUNCTION"] == "validate-payment"
    # the layer `shared/` (a package folder, built into python/shared/) is importable
    assert orchestrator.layer_paths == (os.path.join(ARTICLE, "order_chain", "helper_module"),)
    assert callable(orchestrator.load())
    assert "shared" not in sys.modules and "app" not in sys.modules


def test_load_handler_gives_each_app_its_own_modules(tmp_path: Any) -> None:
    for name in ("one", "two"):
        (tmp_path / name).mkdir()
        (tmp_path / name / "helper.py").write_text(f"WHO = {name!r}\n")
        (tmp_path / name / "app.py").write_text(
            "from helper import WHO\ndef handler(event, context):\n    return WHO\n"
        )
    one = load_handler(str(tmp_path / "one"), "app.handler")
    two = load_handler(str(tmp_path / "two"), "app.handler")
    assert (one({}, None), two({}, None)) == ("one", "two")
    assert "app" not in sys.modules and "helper" not in sys.modules


def test_environment_blocks_nest_and_overlap() -> None:
    assert "UNTANGLE_T" not in os.environ
    with environment({"UNTANGLE_T": "outer"}):
        with environment({"UNTANGLE_T": "inner"}):
            assert os.environ["UNTANGLE_T"] == "inner"
        assert os.environ["UNTANGLE_T"] == "outer"
    assert "UNTANGLE_T" not in os.environ
    # overlapping blocks from two threads: the value before them comes back
    entered, leave = threading.Barrier(2), threading.Event()

    def block(value: str) -> None:
        with environment({"UNTANGLE_T": value}):
            entered.wait()
            leave.wait()

    threads = [threading.Thread(target=block, args=(v,)) for v in ("a", "b")]
    for thread in threads:
        thread.start()
    leave.set()
    for thread in threads:
        thread.join()
    assert "UNTANGLE_T" not in os.environ


# ---------------------------------------------------------------- (b) original vs generated

MODULE, HELPER, CLASS = "module_client", "helper_module", "client_class"


@dataclass(frozen=True)
class Case:
    id: str
    event: Any
    # "exact": same status, output, error name, calls and waited seconds. "failed": the original
    # fails with a Python error the state machine cannot name the same (KeyError, TypeError):
    # both must fail (or, where the idiom tolerates the input, both behave the same).
    mode: str = "exact"
    cause: bool = False  # compare the cause too
    xfail: tuple[tuple[str, str], ...] = ()  # (variant, precise reason): planner bugs


def _xfail(reason: str, *variants: str) -> tuple[tuple[str, str], ...]:
    return tuple((variant, reason) for variant in variants)


ORDER = {
    "orderId": "o-1",
    "items": [{"sku": "sku-apple", "qty": 2, "price": 1.5}],
    "email": "ann@example.com",
}

# app -> (orchestrator FunctionName, variants, cases)
APPS: dict[str, tuple[str, tuple[str, ...], list[Case]]] = {
    "hello_world": (
        "hello-caller",
        (MODULE, HELPER),
        [
            Case("name", {"name": "Bob"}),
            Case("default-name", {}),
            Case("null-name", {"name": None}),
        ],
    ),
    "order_chain": (
        "order-processor",
        (MODULE, HELPER, CLASS),
        [
            Case(
                "valid-in-stock",
                ORDER,
                xfail=_xfail(
                    "order_chain/module_client: the only difference left is how a float with no "
                    "fraction prints inside json.dumps: create-order answers total 3.0, which the "
                    "original writes as \"3.0\" while Step Functions' JSON (and so the machine's "
                    "JSON string) has 3",
                    MODULE,
                ),
            ),
            Case("invalid-payment", {**ORDER, "orderId": "declined-1"}, cause=True),
            Case("out-of-stock", {**ORDER, "items": [{"sku": "sku-plum", "qty": 1}]}, cause=True),
            Case(
                "email-bounces",
                {**ORDER, "email": "x@bounce.test"},
                xfail=_xfail(
                    "order_chain/module_client: the only difference left is how a float with no "
                    "fraction prints inside json.dumps: create-order answers total 3.0, which the "
                    "original writes as \"3.0\" while Step Functions' JSON (and so the machine's "
                    "JSON string) has 3",
                    MODULE,
                ),
            ),
            Case(
                "missing-items",
                {"orderId": "o-2", "email": "ann@example.com"},
                mode="failed",
            ),
        ],
    ),
    "order_size_choice": (
        "order-router",
        (MODULE, HELPER, CLASS),
        [
            Case("large", {"total": 5000}),
            Case("medium", {"total": 500}),
            Case("small", {"total": 50}),
            Case("boundary-1000", {"total": 1000}),
            Case("boundary-100", {"total": 100}),
            Case("missing-total", {}, mode="failed"),
            Case("string-total", {"total": "500"}, mode="failed"),
        ],
    ),
    "reminder": (
        "order-reminder",
        (MODULE, HELPER),
        [
            Case("sent", {"orderId": "o-1", "email": "ann@example.com"}),
            Case("email-bounces", {"orderId": "o-2", "email": "x@bounce.test"}),
        ],
    ),
    "batch_map": (
        "batch-processor",
        (MODULE, HELPER, CLASS),
        [
            Case("items", {"items": [{"id": 1, "v": "a"}, {"id": 2}, {"x": 3}]}),
            Case("no-items", {"items": []}),
            Case("missing-items", {}, mode="failed"),
        ],
    ),
    "retrying_email": (
        "email-dispatcher",
        (MODULE, HELPER, CLASS),
        [
            Case("sent", {"orderId": "o-1", "email": "ann@example.com"}),
            Case("bounces", {"orderId": "o-2", "email": "x@bounce.test"}),
            Case(
                "bounces-cause",
                {"orderId": "o-3", "email": "x@bounce.test"},
                cause=True,
            ),
            Case(
                "missing-email",
                {"orderId": "o-4"},
                mode="failed",
            ),
        ],
    ),
}


@dataclass
class App:
    functions: dict[str, Any]
    orchestrator: Any
    asl: dict[str, Any]
    substitutions: dict[str, str]


_APPS: dict[str, App] = {}


def _read(path: str) -> str:
    with open(path, encoding="utf-8") as handle:
        return handle.read()


def _placeholders(definition: Any) -> set[str]:
    return set(re.findall(r"\$\{([^}]+)\}", json.dumps(definition)))


def _app(app: str, orchestrator: str) -> App:
    if app not in _APPS:
        from untangle.plan import PlanOptions, plan
        from untangle.scan import ScanOptions, load_tree

        app_dir = os.path.join(ARTICLE, app)
        tree = load_tree([app_dir], ScanOptions(cache_dir=None))
        # the literal behaviour, an unchecked function failure included (by default the machine
        # fails there instead, a documented difference: tests/test_verify_all.py)
        options = PlanOptions(keep_unchecked_errors=True)
        [workflow] = plan(tree.program, tree.templates, _read, options)
        assert workflow.asl is not None, workflow.workflow.reasons
        functions = dict(functions_from_template(os.path.join(app_dir, "template.yaml")))
        handler = functions[orchestrator]
        try:
            handler.load()
        except ModuleNotFoundError as exc:  # a fixture's third-party dependency
            pytest.skip(f"{app}: {exc}")
        # placeholders named after a variable the template sets (DefinitionSubstitutions)
        # (and, as migrate does, the code's default for a variable the template leaves unset)
        defaults = dict(workflow.workflow.env_defaults)
        substitutions = {
            name: handler.environment.get(name, defaults.get(name, ""))
            for name in _placeholders(workflow.asl)
            if name in handler.environment or name in defaults
        }
        _APPS[app] = App(functions, handler, workflow.asl, substitutions)
    return _APPS[app]


CASES = [
    pytest.param(
        f"{app}/{variant}",
        orchestrator,
        case,
        id=f"{app}-{variant}-{case.id}",
        marks=[
            pytest.mark.xfail(strict=True, reason=reason)
            for v, reason in case.xfail
            if v == variant
        ],
    )
    for app, (orchestrator, variants, cases) in APPS.items()
    for variant in variants
    for case in cases
]


@pytest.mark.parametrize(("app", "orchestrator", "case"), CASES)
def test_generated_machine_behaves_like_the_original(
    engine: Engine, app: str, orchestrator: str, case: Case
) -> None:
    loaded = _app(app, orchestrator)
    unknown = {p for p in _placeholders(loaded.asl) if p.endswith("Arn")} - set(loaded.functions)
    assert not unknown, f"function placeholders without a template function: {unknown}"

    original = run_original(loaded.orchestrator, loaded.functions, case.event)
    machine = engine.run(
        loaded.asl, loaded.functions, case.event, substitutions=loaded.substitutions
    )
    report = _describe(case, original, machine)

    if case.mode == "failed" and original.status == "FAILED":
        assert machine.status == "FAILED", report
        return
    assert machine.status == original.status, report
    assert machine.output == original.output, report
    assert machine.error == original.error, report
    if case.cause:
        assert machine.cause == original.cause, report

    # the same callees with the same payloads (in any order: Parallel and Map run concurrently;
    # 3.0 and 3 are the same JSON number, as JSONata prints it)
    def calls(run: OriginalRun | MachineRun) -> list[str]:
        return sorted(
            f"{loaded.functions[name].logical_id} {json.dumps(_numbers(payload), sort_keys=True)}"
            for name, payload in run.calls
        )

    assert calls(machine) == calls(original), report
    assert machine.waited_seconds == original.waited_seconds, report


def _numbers(value: Any) -> Any:
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, dict):
        return {k: _numbers(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_numbers(v) for v in value]
    return value


def _describe(case: Case, original: OriginalRun, machine: MachineRun) -> str:
    return (
        f"event {json.dumps(case.event)}\n"
        f"  original: {original.status} error={original.error} cause={original.cause!r}"
        f" output={json.dumps(original.output)} calls={[c[0] for c in original.calls]}"
        f" waited={original.waited_seconds}\n"
        f"  machine:  {machine.status} error={machine.error} cause={machine.cause!r}"
        f" output={json.dumps(machine.output)} states={machine.entered()}"
        f" waited={machine.waited_seconds}"
    )


def _unjson(value: Any) -> Any:
    """Parse strings holding JSON objects (a `body` built by json.dumps vs $string)."""
    if isinstance(value, dict):
        return {k: _unjson(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_unjson(v) for v in value]
    if isinstance(value, str) and value.startswith("{"):
        try:
            return _unjson(json.loads(value))
        except json.JSONDecodeError:
            return value
    return value


def test_order_chain_body_is_equal_once_parsed(engine: Engine) -> None:
    # the happy path's only difference is the formatting of the JSON string in `body`
    loaded = _app("order_chain/module_client", "order-processor")
    original = run_original(loaded.orchestrator, loaded.functions, ORDER)
    machine = engine.run(loaded.asl, loaded.functions, ORDER)
    assert (original.status, machine.status) == ("SUCCEEDED", "SUCCEEDED")
    assert _unjson(machine.output) == _unjson(original.output)
    assert machine.output != original.output


@pytest.mark.parametrize(
    "value",
    [True, False, None, "plain", 2.5, 7, ["a", 'b"c'], {"errorMessage": "it's", "n": [1, None]}],
    ids=["true", "false", "none", "str", "float", "int", "list", "dict"],
)
def test_f_strings_spell_values_as_python_does(value: Any) -> None:
    """f"{x}" is str(x): True, None, repr() inside lists and dicts (JSONata alone writes JSON)."""
    from jsonata import Jsonata

    from untangle.workflow.asl import _JSONata
    from untangle.workflow.ir import Lit, Op, Var

    text = _JSONata().expr(Op("concat", (Lit("got: "), Var("x"))))
    # as moto hands variables to JSONata: their JSON in front of the expression
    assert Jsonata(f"($x := {json.dumps(value)}; {text})").evaluate(None) == f"got: {value}"
