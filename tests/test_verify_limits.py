"""`untangle verify` under hostile handlers: each event's run is limited (time, memory, network)
and talks to untangle over a pipe of its own, so a handler that loops, blocks, exits, crashes,
allocates without end, connects somewhere or prints on fd 1 gets a verdict for its event, and
the other events are still verified. One verify run covers them all (verify is slow)."""

from __future__ import annotations

import json
import os
import socket
import tempfile
import time
from typing import Any

import pytest
from click.testing import CliRunner

from untangle.cli import _verify_text, main
from untangle.verify import VerifyResult

TEMPLATE = (
    'AWSTemplateFormatVersion: "2010-09-09"\n'
    "Transform: AWS::Serverless-2016-10-31\n"
    "Resources:\n"
    "  CheckoutFunction:\n"
    "    Type: AWS::Serverless::Function\n"
    "    Properties:\n      FunctionName: checkout\n      CodeUri: orchestrator/\n"
    "      Handler: app.lambda_handler\n      Runtime: python3.12\n"
    "  WorkerFunction:\n"
    "    Type: AWS::Serverless::Function\n"
    "    Properties:\n      FunctionName: worker\n      CodeUri: functions/worker/\n"
    "      Handler: app.lambda_handler\n      Runtime: python3.12\n"
    "  StuckFunction:\n"
    "    Type: AWS::Serverless::Function\n"
    "    Properties:\n      FunctionName: stuck\n      CodeUri: stuck/\n"
    "      Handler: app.lambda_handler\n      Runtime: python3.12\n"
)

# an orchestrator whose module blocks on import: every event of its workflow gets the verdict
# of that one import
STUCK = (
    "import json\nimport threading\nimport boto3\n\nlam = boto3.client('lambda')\n"
    "threading.Event().wait()\n\n\n"
    "def lambda_handler(event, context):\n"
    "    return json.loads(lam.invoke(FunctionName='worker', "
    "Payload=json.dumps(event))['Payload'].read())\n"
)

# the orchestrator's total is a computation ASL cannot express: verify runs it from a copy of
# the migrated module (a temporary copy that must not outlive the run)
ORCHESTRATOR = (
    "import json\nimport boto3\n\nlam = boto3.client('lambda')\n\n\n"
    "def lambda_handler(event, context):\n"
    "    answer = json.loads(lam.invoke(FunctionName='worker', "
    "Payload=json.dumps(event))['Payload'].read())\n"
    "    total = round(sum(x['price'] * x['qty'] for x in answer['lines']), 2)\n"
    "    return {'total': total}\n"
)

# what each event makes the worker do; `behaviour` is a module of its own, imported by the
# worker (an import that would leave a __pycache__ folder in the app)
WORKER = (
    "from behaviour import act\n\n\ndef lambda_handler(event, context):\n    return act(event)\n"
)
BEHAVIOUR = """\
import os
import signal
import socket
import subprocess
import sys


def act(event):
    do = event.get("do")
    if do == "loop":
        while True:
            pass
    if do == "exit":
        os._exit(3)
    if do == "crash":
        os.kill(os.getpid(), signal.SIGSEGV)
    if do == "memory":
        bytearray(8 << 30)
    if do == "network":
        with socket.create_connection(("127.0.0.1", event["port"]), timeout=5) as connection:
            connection.sendall(b"hello")
    if do == "print":
        print('{"results": []}')
        os.write(1, b"not JSON on fd 1\\n")
        sys.stdout.flush()
        # a program left running that holds stdout and stderr after the run
        left = subprocess.Popen(["sleep", "600"])
        with open(event["pid_file"], "w") as handle:
            handle.write(str(left.pid))
    return {"lines": [{"price": 1.25, "qty": 2}]}
"""


ACTIONS = ["crash", "exit", "loop", "memory", "network", "ok", "print"]


@pytest.fixture
def listener() -> Any:
    """A TCP server on the loopback interface: nothing from verify may reach it."""
    server = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    server.bind(("127.0.0.1", 0))
    server.listen(8)
    server.setblocking(False)
    yield server
    server.close()


def _hostile_app(root: Any, port: int) -> None:
    files = {
        "template.yaml": TEMPLATE,
        "orchestrator/app.py": ORCHESTRATOR,
        "functions/worker/app.py": WORKER,
        "functions/worker/behaviour.py": BEHAVIOUR,
        "stuck/app.py": STUCK,
    }
    for action in ACTIONS:
        files[f"events/{action}.json"] = json.dumps(
            {"do": action, "port": port, "pid_file": str(root / "left-running.pid")}
        )
    for name, text in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)


def test_each_hostile_run_gets_its_own_verdict(
    tmp_path: Any, listener: Any, monkeypatch: Any
) -> None:
    app = tmp_path / "app"
    _hostile_app(app, listener.getsockname()[1])
    scratch = tmp_path / "tmp"
    scratch.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(scratch))  # where verify's copies go
    started = time.monotonic()
    result = CliRunner().invoke(
        main, ["verify", str(app), "--timeout", "4", "--format", "json"], catch_exceptions=False
    )
    elapsed = time.monotonic() - started
    assert result.exit_code == 1, result.output
    results = json.loads(result.output)["results"]
    stuck = {
        (d["event"], d.get("verdict"), d.get("reason"))
        for d in results
        if d["workflow"] == "StuckWorkflow"
    }
    import_timeout = (
        "importing the orchestrator: no answer within 4 s (--timeout); its process group was killed"
    )
    assert stuck == {(f"events/{a}.json", "timeout", import_timeout) for a in ACTIONS}
    documents = {d["event"]: d for d in results if d["workflow"] == "CheckoutWorkflow"}
    verdicts = {
        event: (d["equivalent"], d.get("verdict"), d.get("reason"))
        for event, d in documents.items()
    }
    assert verdicts == {
        "events/crash.json": (False, "crashed", "the process was killed by SIGSEGV"),
        "events/exit.json": (
            False,
            "exited",
            "the process exited with code 3 (os._exit or sys.exit in the app's code?)",
        ),
        "events/loop.json": (
            False,
            "timeout",
            "no answer within 4 s (--timeout); its process group was killed",
        ),
        "events/memory.json": (
            False,
            "out-of-memory",
            "a handler ran out of memory (MemoryError under --memory-limit)",
        ),
        "events/network.json": (
            False,
            "network",
            f"blocked network access (look up 127.0.0.1:{listener.getsockname()[1]}): verify "
            "runs no network, moto answers the AWS calls in the process",
        ),
        # the others are still verified, whatever the app printed or left running
        "events/ok.json": (True, None, None),
        "events/print.json": (True, None, None),
    }
    assert documents["events/print.json"]["machine"]["output"] == {"total": 2.5}
    with pytest.raises(BlockingIOError):
        listener.accept()  # no connection ever reached the server
    # the program left holding stdout neither kept verify waiting nor outlived it
    assert elapsed < 300
    left_running = int((app / "left-running.pid").read_text())
    with pytest.raises(ProcessLookupError):
        os.kill(left_running, 0)
    assert not [p for p, _, _ in os.walk(app) if p.endswith("__pycache__")]
    assert os.listdir(scratch) == []  # the copies and the request are gone


@pytest.mark.parametrize(
    ("verdict", "reason", "expected"),
    [
        pytest.param(
            "timeout",
            "no answer within 3 s (--timeout); its process group was killed",
            "W events/e.json: TIMEOUT: no answer within 3 s (--timeout); its process group was "
            "killed",
            id="timeout",
        ),
        pytest.param(
            "crashed",
            "the process was killed by SIGSEGV",
            "W events/e.json: CRASHED: the process was killed by SIGSEGV",
            id="crashed",
        ),
    ],
)
def test_verdicts_in_text(verdict: str, reason: str, expected: str) -> None:
    empty = {"status": None, "output": None, "error": None}
    result = VerifyResult("W", "events/e.json", False, empty, empty, verdict=verdict, reason=reason)
    assert _verify_text(result, history=False) == expected
    # a near miss: an equivalent result has no verdict line
    equivalent = VerifyResult(
        "W",
        "events/e.json",
        True,
        {**empty, "status": "SUCCEEDED"},
        {**empty, "status": "SUCCEEDED"},
    )
    assert "TIMEOUT" not in _verify_text(equivalent, history=False)
