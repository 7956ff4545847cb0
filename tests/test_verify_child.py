"""The process split of `untangle verify`: the parent prepares the workflows while the child
starts moto, the child runs every event of the app and ends once its answer is out; and what
makes the child start fast (moto's Batch and EC2 backends imported only when used)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from dataclasses import asdict
from pathlib import Path
from typing import Any

import pytest

from untangle.engine.deferred import defer_package
from untangle.engine.original import TemplateFunction
from untangle.verify import (
    PreparedWorkflow,
    VerifyFailed,
    VerifyResult,
    _Request,
    load_events,
    prepare,
    verify_in_subprocess,
)

ROOT = Path(__file__).resolve().parent.parent
ORDER_CHAIN = str(ROOT / "fixtures" / "article" / "order_chain" / "helper_module")


def _compared(result: VerifyResult) -> dict[str, Any]:
    """What a verdict is made of (the seconds waited are compared, the run's own ids are not
    in a result)."""
    document = result.to_json()
    assert document["verdict"] is None and document["skipped"] is None
    return document


@pytest.mark.parametrize("language", ["jsonata", "jsonpath"])
def test_many_events_in_one_child_answer_as_each_event_alone(language: str) -> None:
    # a failure, a success and the same event twice: one engine (one parse of the machine,
    # one Lambda client) answers each of them as a child of its own does
    events = load_events(ORDER_CHAIN)
    events.append(("again/valid.json", dict(events[-1][1])))
    together = verify_in_subprocess(ORDER_CHAIN, events, language)
    alone = [verify_in_subprocess(ORDER_CHAIN, [event], language)[0] for event in events]
    assert [_compared(r) for r in together] == [_compared(r) for r in alone]
    outcomes = [(r.event, r.equivalent, r.original["status"], r.machine["error"]) for r in together]
    assert outcomes == [
        ("events/invalid-payment.json", True, "FAILED", "PaymentValidationError"),
        ("events/out-of-stock.json", True, "FAILED", "OutOfStockError"),
        ("events/valid.json", True, "SUCCEEDED", None),
        ("again/valid.json", True, "SUCCEEDED", None),
    ]


def test_a_preparation_that_fails_in_the_parent_leaves_no_child_or_copy(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    scratch = tmp_path / "tmp"
    scratch.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(scratch))
    events = load_events(ORDER_CHAIN)
    with pytest.raises(VerifyFailed, match=r"^ValueError: git archive no-such-revision: "):
        verify_in_subprocess(ORDER_CHAIN, events, original="no-such-revision")
    assert os.listdir(scratch) == []


def test_prepared_workflow_round_trip_keeps_one_function_per_resource() -> None:
    [workflow] = prepare(ORDER_CHAIN)
    again = PreparedWorkflow.from_json(json.loads(json.dumps(workflow.to_json())))
    assert (again.name, again.definition, again.substitutions, again.skipped) == (
        workflow.name,
        workflow.definition,
        workflow.substitutions,
        workflow.skipped,
    )
    assert again.unchecked == workflow.unchecked
    assert sorted(again.functions) == sorted(workflow.functions)
    for name, function in workflow.functions.items():
        assert again.functions[name].to_json() == function.to_json()
    # a function known by several names (logical id, ARN placeholder …) is one object, so
    # it is imported once; the orchestrator is the template's function of that name
    assert again.functions["validate-payment"] is again.functions["ValidatePaymentFunction"]
    assert again.functions["validate-payment"] is not again.functions["check-inventory"]
    assert isinstance(again.orchestrator, TemplateFunction)
    assert again.orchestrator is again.functions[again.orchestrator.logical_id]


# a worker that leaves a thread running (not a daemon: the interpreter would wait for it at
# exit) and prints without flushing
LEAVES_A_THREAD = """\
import threading

waiting = threading.Event()


def lambda_handler(event, context):
    threading.Thread(target=waiting.wait).start()
    print("printed by the worker")
    return {"orderId": event["orderId"], "valid": True}
"""


def test_the_child_ends_with_its_answer_when_the_app_left_threads_running(
    tmp_path: Path,
) -> None:
    app = tmp_path / "app"
    subprocess.run(["cp", "-r", ORDER_CHAIN, str(app)], check=True)
    (app / "functions" / "validate_payment" / "app.py").write_text(LEAVES_A_THREAD)
    [workflow] = prepare(str(app))
    request = _Request(load_events(str(app))[-1:], [workflow.to_json()])
    request_file = tmp_path / "request.json"
    request_file.write_text(json.dumps(asdict(request)))
    answers_read, answers_write = os.pipe()
    request_read, request_write = os.pipe()
    # FD REQUEST_FD TIMEOUT MEMORY_BYTES (0: no limit)
    arguments = [str(answers_write), str(request_read), "60", "0"]
    with open(tmp_path / "printed", "wb") as printed:
        child = subprocess.Popen(
            [sys.executable, "-m", "untangle.verify", *arguments],
            stdin=subprocess.DEVNULL,
            stdout=printed,
            stderr=printed,
            pass_fds=(answers_write, request_read),
            env=dict(os.environ, PYTHONDONTWRITEBYTECODE="1"),
        )
    os.close(answers_write)
    os.close(request_read)
    os.write(request_write, os.fsencode(str(request_file)))
    os.close(request_write)
    try:
        with os.fdopen(answers_read, "rb") as answers:
            messages = [json.loads(line) for line in answers]
        # it exits by itself (before os._exit, it waited for the thread forever); the bound
        # only keeps a failing test from hanging
        assert child.wait(timeout=300) == 0
    finally:
        child.kill()
        child.wait()
    assert [m["kind"] for m in messages] == ["load", "start", "result", "done"]
    assert messages[2]["result"]["equivalent"] is True
    # what the app printed was flushed before the child ended
    assert (tmp_path / "printed").read_text().count("printed by the worker") == 2


@pytest.fixture
def lazy_package(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """A package whose __init__ says when it ran, with a light submodule."""
    name = f"lazy_{os.getpid()}_{tmp_path.name}".replace("-", "_")
    package = tmp_path / name
    package.mkdir()
    (package / "__init__.py").write_text(
        "import os\nos.environ['UNTANGLE_TEST_INIT_RAN'] = __name__\nfrom .heavy import VALUE\n"
    )
    (package / "heavy.py").write_text("VALUE = 42\n")
    (package / "light.py").write_text("ENUM = 'light'\n")
    (tmp_path / f"{name}_module.py").write_text("X = 1\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.delenv("UNTANGLE_TEST_INIT_RAN", raising=False)
    yield name
    for module in [m for m in sys.modules if m.startswith(name)]:
        del sys.modules[module]


def test_a_deferred_package_runs_its_init_on_first_use(lazy_package: str) -> None:
    import importlib

    module = defer_package(lazy_package)
    assert module is not None and sys.modules[lazy_package] is module
    light = importlib.import_module(f"{lazy_package}.light")
    assert light.ENUM == "light"
    assert "UNTANGLE_TEST_INIT_RAN" not in os.environ  # a submodule does not run __init__
    assert module.VALUE == 42  # the first attribute does
    assert os.environ["UNTANGLE_TEST_INIT_RAN"] == lazy_package
    assert importlib.import_module(lazy_package) is module
    with pytest.raises(AttributeError, match="no attribute 'missing'"):
        _ = module.missing


@pytest.mark.parametrize(
    "which",
    [
        pytest.param("imported", id="already-imported"),
        pytest.param("module", id="a-module-not-a-package"),
        pytest.param("missing", id="not-installed"),
    ],
)
def test_what_is_not_deferred(lazy_package: str, which: str) -> None:
    import importlib

    if which == "imported":
        importlib.import_module(lazy_package)
        assert defer_package(lazy_package) is None
        assert os.environ["UNTANGLE_TEST_INIT_RAN"] == lazy_package
    elif which == "module":
        assert defer_package(f"{lazy_package}_module") is None
        assert f"{lazy_package}_module" not in sys.modules
    else:
        assert defer_package(f"{lazy_package}_nowhere") is None


# a fresh interpreter: the engine starts without moto's EC2 backend, and an app calling Batch
# under it still gets moto's Batch backend
ENGINE_WITHOUT_EC2 = """\
import sys
import boto3
from untangle.engine.machine import Engine

with Engine():
    print("moto.ec2" in sys.modules, "moto.batch" in sys.modules)
    queues = boto3.client("batch", region_name="us-east-1").describe_job_queues()
    print(queues["jobQueues"], "moto.ec2" in sys.modules)
"""


def test_the_engine_starts_without_ec2_and_batch_still_answers() -> None:
    done = subprocess.run(
        [sys.executable, "-c", ENGINE_WITHOUT_EC2],
        capture_output=True,
        text=True,
        check=False,
        env=dict(os.environ, PYTHONDONTWRITEBYTECODE="1"),
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines() == ["False True", "[] True"]


# a fresh interpreter, where nothing imported aiobotocore: the handler imports it during the
# run, and its Lambda invoke is still answered by the table; afterwards aiobotocore is itself
# again and the import hook is gone
AIO_IMPORTED_DURING_THE_RUN = """\
import json, sys
from untangle.engine.original import load_handler, run_original

assert "aiobotocore.client" not in sys.modules
handler = load_handler(sys.argv[1], "app.handler")
hooks = len(sys.meta_path)
run = run_original(handler, {"double": lambda event, context: {"n": event["n"] * 2}}, {"n": 4})
from aiobotocore.client import AioBaseClient
print(json.dumps([run.status, run.output, run.calls, len(sys.meta_path) == hooks,
                  AioBaseClient._make_api_call.__module__]))
"""
AIO_APP = """\
import asyncio, json


async def _run(event):
    from aiobotocore.session import get_session  # imported by the run, not before it

    async with get_session().create_client("lambda", region_name="us-east-1") as client:
        answer = await client.invoke(FunctionName="double", Payload=json.dumps(event))
        return json.loads(await answer["Payload"].read())


def handler(event, context):
    return asyncio.run(_run(event))
"""


def test_aiobotocore_imported_during_a_run_is_answered_too(tmp_path: Path) -> None:
    pytest.importorskip("aiobotocore")
    (tmp_path / "app.py").write_text(AIO_APP)
    done = subprocess.run(
        [sys.executable, "-c", AIO_IMPORTED_DURING_THE_RUN, str(tmp_path)],
        capture_output=True,
        text=True,
        check=False,
        env=dict(os.environ, PYTHONDONTWRITEBYTECODE="1"),
    )
    assert done.returncode == 0, done.stderr
    status, output, calls, hook_removed, owner = json.loads(done.stdout)
    assert (status, output, calls) == ("SUCCEEDED", {"n": 8}, [["double", {"n": 4}]])
    assert hook_removed and owner == "aiobotocore.client"
