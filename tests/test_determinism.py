"""Same input, same bytes: `untangle plan --format json` and `untangle migrate` (the dry run's
diff) print byte-identical output whatever `PYTHONHASHSEED` is, and whatever order the tree's
files were created or named in.

One subprocess per hash seed runs every command in-process (a subprocess per command would cost
a second each), both seeds at once. `plan` runs on every bundled fixture app; `migrate`, whose
rewrite of the handlers (libcst) takes most of the time, on a few of them (one per client
style, a Map, a Parallel, a retry loop) and on the ledger app below. The whole test takes a few
seconds.

The ledger app is written the way real code is: a shared helper `post(event, operation)` calls
`operation(entry)`, and two handlers in separate files pass it their own function
(`post(event, deposit)`, `post(event, refund)`). The program's call edges for `operation(entry)`
are the union over both call sites; the planner must resolve the call per call site, so each
handler's machine invokes its own function.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import FIXTURES, ROOT

SEEDS = ("1", "2")
APPS = [*sorted(p for p in FIXTURES.glob("article/*/*") if p.is_dir()), FIXTURES / "realworld"]
MIGRATED = [
    FIXTURES / "article" / name
    for name in (
        "batch_map/client_class",
        "parallel_notifications/aio",
        "retrying_email/module_client",
        "step_chain/helper_module",
    )
]
PLAN = ("plan", "--format", "json", "--no-cache")
MIGRATE = ("migrate", "--no-cache")

LEDGER = {
    "ledger.py": """\
import boto3

lambda_client = boto3.client("lambda")


def post(event, operation):
    entry = {"account": event["account"], "amount": event["amount"]}
    result = operation(entry)
    return {"account": event["account"], "balance": result["balance"]}
""",
    "deposit_handler.py": """\
import json

from ledger import lambda_client, post


def deposit(entry):
    response = lambda_client.invoke(FunctionName="deposit-fn", Payload=json.dumps(entry))
    return json.loads(response["Payload"].read())


def lambda_handler(event, context):
    return post(event, deposit)
""",
    "refund_handler.py": """\
import json

from ledger import lambda_client, post


def refund(entry):
    response = lambda_client.invoke(FunctionName="refund-fn", Payload=json.dumps(entry))
    return json.loads(response["Payload"].read())


def lambda_handler(event, context):
    return post(event, refund)
""",
}

# run in the subprocess: each job is (label, folder, CLI arguments); prints {label: output}
DRIVER = """
import json, os, sys
from click.testing import CliRunner
from untangle.cli import main

results = {}
for label, folder, args in json.loads(sys.argv[1]):
    os.chdir(folder)
    result = CliRunner().invoke(main, args)
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        raise result.exception
    results[label] = [result.exit_code, result.stdout, result.stderr]
print(json.dumps(results))
"""


def _write_ledger(folder: Path, names: list[str]) -> Path:
    app = folder / "ledger_app"
    app.mkdir(parents=True)
    for name in names:  # created in this order
        (app / name).write_text(LEDGER[name])
    return app


def _jobs(tmp_path: Path) -> list[tuple[str, str, list[str]]]:
    jobs = []
    for app in APPS:
        label = str(app.relative_to(FIXTURES))
        jobs.append((f"{label}: plan", str(app), [*PLAN, "."]))
        if app in MIGRATED:
            jobs.append((f"{label}: migrate", str(app), [*MIGRATE, "."]))
    names = sorted(LEDGER)
    for order, files in (("forward", names), ("backward", names[::-1])):
        app = _write_ledger(tmp_path / order, files)
        for command in (PLAN, MIGRATE):
            jobs.append((f"ledger {order}: {command[0]}", str(app), [*command, "."]))
        # the files named in this order: the modules are loaded in it
        jobs.append((f"ledger {order} files: plan", str(app), [*PLAN, *files]))
    return jobs


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, dict[str, list[Any]]]:
    """Every job's output under each hash seed (the two subprocesses run at once)."""
    tmp = tmp_path_factory.mktemp("determinism")
    jobs = json.dumps(_jobs(tmp))
    processes = {}
    for seed in SEEDS:
        env = {
            **os.environ,
            "PYTHONHASHSEED": seed,
            "UNTANGLE_CACHE_DIR": str(tmp / f"cache-{seed}"),
            "PYTHONPATH": str(ROOT),
        }
        processes[seed] = subprocess.Popen(
            [sys.executable, "-c", DRIVER, jobs],
            cwd=tmp,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
    found = {}
    for seed, process in processes.items():
        out, err = process.communicate(timeout=300)
        assert process.returncode == 0, err
        found[seed] = json.loads(out)
    return found


def _differences(runs: dict[str, dict[str, list[Any]]], prefix: str) -> list[str]:
    first, second = (runs[s] for s in SEEDS)
    assert first.keys() == second.keys()
    return [label for label in first if label.startswith(prefix) and first[label] != second[label]]


def test_the_fixture_apps_plan_and_migrate_the_same_under_two_hash_seeds(
    runs: dict[str, dict[str, list[Any]]],
) -> None:
    assert _differences(runs, "article/") == []
    assert _differences(runs, "realworld") == []
    planned = [label for label in runs[SEEDS[0]] if label.endswith(": plan")]
    assert len(planned) >= len(APPS)


def test_the_ledger_app_is_the_same_under_two_seeds_and_two_file_orders(
    runs: dict[str, dict[str, list[Any]]],
) -> None:
    assert _differences(runs, "ledger") == []
    for seed in SEEDS:
        outputs = runs[seed]
        for command in ("plan", "migrate"):
            assert outputs[f"ledger forward: {command}"] == outputs[f"ledger backward: {command}"]
        assert outputs["ledger forward files: plan"] == outputs["ledger backward files: plan"]


def _invoked(asl: dict[str, Any]) -> set[str]:
    """The FunctionName of every Task of a definition (nested Map and Parallel states too)."""
    found: set[str] = set()

    def visit(node: Any) -> None:
        if isinstance(node, dict):
            if node.get("Type") == "Task":
                arguments = node.get("Arguments", node.get("Parameters", {}))
                found.add(str(arguments.get("FunctionName")))
            for value in node.values():
                visit(value)
        elif isinstance(node, list):
            for value in node:
                visit(value)

    visit(asl)
    return found


@pytest.mark.parametrize("seed", SEEDS)
def test_each_ledger_handler_invokes_the_function_it_passed_to_the_shared_helper(
    runs: dict[str, dict[str, list[Any]]], seed: str
) -> None:
    code, out, err = runs[seed]["ledger forward: plan"]
    assert code == 0, err
    machines = {w["handler"]: w for w in json.loads(out)["workflows"]}
    assert set(machines) == {"deposit_handler.lambda_handler", "refund_handler.lambda_handler"}
    assert all(w["status"] == "converted" for w in machines.values())
    assert _invoked(machines["deposit_handler.lambda_handler"]["asl"]) == {
        "${DepositFnFunctionArn}"
    }
    assert _invoked(machines["refund_handler.lambda_handler"]["asl"]) == {"${RefundFnFunctionArn}"}
    code, diff, err = runs[seed]["ledger forward: migrate"]
    assert code == 0, err
    assert "deposit-fn" in diff and "refund-fn" in diff
