"""`untangle verify`: the original orchestrator and the migrated state machine, on the same
events (fixtures/article/*/*/events/*.json)."""

from __future__ import annotations

import json
import os
from typing import Any

import pytest
from click.testing import CliRunner

from untangle.cli import main
from untangle.engine.machine import Engine
from untangle.verify import VerifyResult, compare, load_events, prepare, verify_app

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
ARTICLE = os.path.join(ROOT, "fixtures", "article")
APPS = ["order_chain/helper_module", "order_size_choice/module_client", "reminder/module_client"]


@pytest.mark.parametrize("app", APPS)
def test_fixture_apps_are_equivalent_on_their_events(app: str) -> None:
    result = CliRunner().invoke(main, ["verify", os.path.join(ARTICLE, app)])
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert lines and all(": equivalent (" in line for line in lines), result.output


def test_text_verdict_and_history() -> None:
    app = os.path.join(ARTICLE, "reminder", "module_client")
    result = CliRunner().invoke(main, ["verify", app, "--history"])
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert lines[0] == (
        "OrderReminderWorkflow events/sent.json: equivalent (SUCCEEDED, waited 86400 s "
        "fast-forwarded)"
    )
    assert "  machine history:" in lines
    assert any(line.startswith("    -> WaitForSendReminder input=") for line in lines)
    assert "  original calls:" in lines
    assert any(line.startswith("    send-reminder ") for line in lines)


def test_json_format_and_explicit_event(tmp_path: Any) -> None:
    event = tmp_path / "medium.json"
    event.write_text(json.dumps({"total": 500}))
    app = os.path.join(ARTICLE, "order_size_choice", "module_client")
    result = CliRunner().invoke(main, ["verify", app, "--event", str(event), "--format", "json"])
    assert result.exit_code == 0, result.output
    [document] = json.loads(result.output)["results"]
    assert set(document) == {
        "workflow",
        "event",
        "equivalent",
        "original",
        "machine",
        "history",
        "waited_seconds",
    }
    assert document["waited_seconds"] == {"original": 0, "machine": 0}
    assert (document["workflow"], document["event"], document["equivalent"]) == (
        "OrderRouterWorkflow",
        str(event),
        True,
    )
    expected = {"route": "standard-processing", "status": "PROCESSING", "total": 500}
    for side in ("original", "machine"):
        assert document[side] == {"status": "SUCCEEDED", "output": expected, "error": None}
    assert document["history"][0]["state"] == "CheckOrderTotal"


def test_json_text_written_differently_is_a_note() -> None:
    # json.dumps writes create-order's total 3.0 inside `body`; the machine's JSON writes 3
    app = os.path.join(ARTICLE, "order_chain", "module_client")
    event = os.path.join(ARTICLE, "order_chain", "helper_module", "events", "valid.json")
    result = CliRunner().invoke(main, ["verify", app, "--event", event])
    assert result.exit_code == 0, result.output
    first, note = result.output.splitlines()[:2]
    assert first.endswith(": equivalent (SUCCEEDED, waited 0 s fast-forwarded)")
    assert note.startswith("  note: output.body: the same JSON value written differently")


def test_usage_errors(tmp_path: Any) -> None:
    runner = CliRunner()
    no_events = runner.invoke(main, ["verify", os.path.join(ARTICLE, "order_chain", "aio")])
    assert no_events.exit_code == 2
    app = os.path.join(ARTICLE, "order_chain", "module_client")
    no_events = runner.invoke(main, ["verify", app])
    assert no_events.exit_code == 2
    assert "no events" in no_events.output
    missing = runner.invoke(main, ["verify", str(tmp_path / "nowhere")])
    assert missing.exit_code == 2
    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    assert runner.invoke(main, ["verify", app, "--event", str(bad)]).exit_code == 2


def test_a_broken_machine_is_caught() -> None:
    app = os.path.join(ARTICLE, "order_size_choice", "module_client")
    events = load_events(app)
    [workflow] = prepare(app)
    assert workflow.skipped is None and workflow.definition is not None
    with Engine() as engine:
        good = [compare(workflow, name, event, engine) for name, event in events]
        assert all(r.equivalent for r in good), good
        # swap the targets of the first two Choice rules
        choice = next(s for s in workflow.definition["States"].values() if s["Type"] == "Choice")
        first, second = choice["Choices"][0], choice["Choices"][1]
        first["Next"], second["Next"] = second["Next"], first["Next"]
        broken = {r.event: r for r in (compare(workflow, n, e, engine) for n, e in events)}
    assert broken["events/large.json"].equivalent is False
    assert broken["events/medium.json"].equivalent is False
    assert broken["events/small.json"].equivalent is True  # the Default is untouched
    large = broken["events/large.json"]
    assert large.original["output"]["route"] == "manager-approval"
    assert large.machine["output"]["route"] == "standard-processing"


def test_verify_app_in_process_and_result_round_trip() -> None:
    app = os.path.join(ARTICLE, "order_chain", "helper_module")
    results = verify_app(app, load_events(app))
    assert [(r.event, r.equivalent, r.original["error"]) for r in results] == [
        ("events/invalid-payment.json", True, "PaymentValidationError"),
        ("events/out-of-stock.json", True, "OutOfStockError"),
        ("events/valid.json", True, None),
    ]
    assert results[0].calls[0] == ["validate-payment", {"orderId": "declined-1"}]
    assert VerifyResult.from_json(json.loads(json.dumps(results[2].to_json()))) == results[2]


def _committed_copy(tmp_path: Any, *fixture: str) -> Any:
    """An article app copied to tmp_path/app and committed in a new git repository there."""
    import shutil
    import subprocess

    app = tmp_path / "app"
    shutil.copytree(os.path.join(ARTICLE, *fixture), app)
    git = ["git", "-C", str(tmp_path), "-c", "user.email=t@example.com", "-c", "user.name=t"]
    subprocess.run(["git", "init", "-q", str(tmp_path)], check=True)
    subprocess.run([*git, "add", "-A"], check=True)
    subprocess.run([*git, "commit", "-qm", "before migration"], check=True)
    return app


def test_original_revision_after_write(tmp_path: Any) -> None:
    """After `migrate --write`, `--original REV` runs the code as it was at REV against the
    machines written to disk; a broken written machine is caught."""
    app = _committed_copy(tmp_path, "order_size_choice", "module_client")
    runner = CliRunner()
    cwd = os.getcwd()
    os.chdir(tmp_path)
    try:
        assert runner.invoke(main, ["migrate", "app", "--write", "--no-cache"]).exit_code == 0
        result = runner.invoke(main, ["verify", "app", "--original", "HEAD"])
        assert result.exit_code == 0, result.output
        assert result.output.count(": equivalent (") == 3
        written = app / "statemachine" / "OrderRouterWorkflow.asl.json"
        definition = json.loads(written.read_text())
        choice = definition["States"]["CheckOrderTotal"]
        first, second = choice["Choices"][0]["Next"], choice["Choices"][1]["Next"]
        choice["Choices"][0]["Next"], choice["Choices"][1]["Next"] = second, first
        written.write_text(json.dumps(definition))
        broken = runner.invoke(main, ["verify", "app", "--original", "HEAD"])
        assert broken.exit_code == 1, broken.output
        lines = broken.output.splitlines()
        assert "OrderRouterWorkflow events/large.json: MISMATCH" in lines
        at = lines.index("OrderRouterWorkflow events/large.json: MISMATCH")
        assert lines[at + 1].startswith("  original: SUCCEEDED error=None output=")
        assert '"route": "manager-approval"' in lines[at + 1]
        assert lines[at + 2].startswith("  machine:  SUCCEEDED error=None output=")
        assert '"route": "standard-processing"' in lines[at + 2]
        assert lines[at + 3] == "  machine history:"
        assert lines[at + 4].startswith("    -> CheckOrderTotal input=")
    finally:
        os.chdir(cwd)


def _write_app(root: Any, files: dict[str, str]) -> None:
    for name, text in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)


EXTRACTING_APP = {
    "template.yaml": (
        'AWSTemplateFormatVersion: "2010-09-09"\n'
        "Transform: AWS::Serverless-2016-10-31\n"
        "Resources:\n"
        "  CheckoutFunction:\n"
        "    Type: AWS::Serverless::Function\n"
        "    Properties:\n      FunctionName: checkout\n      CodeUri: orchestrator/\n"
        "      Handler: app.lambda_handler\n      Runtime: python3.12\n"
        "  PriceFunction:\n"
        "    Type: AWS::Serverless::Function\n"
        "    Properties:\n      FunctionName: price-items\n      CodeUri: functions/price/\n"
        "      Handler: app.lambda_handler\n      Runtime: python3.12\n"
        "  NotifyFunction:\n"
        "    Type: AWS::Serverless::Function\n"
        "    Properties:\n      FunctionName: notify\n      CodeUri: functions/notify/\n"
        "      Handler: app.lambda_handler\n      Runtime: python3.12\n"
    ),
    "orchestrator/app.py": (
        "import json\nimport boto3\n\nlam = boto3.client('lambda')\n\n\n"
        "def lambda_handler(event, context):\n"
        "    priced = json.loads(lam.invoke(FunctionName='price-items', "
        "Payload=json.dumps(event))['Payload'].read())\n"
        "    total = round(sum(x['price'] * x['qty'] for x in priced['lines']), 2)\n"
        "    sent = json.loads(lam.invoke(FunctionName='notify', "
        "Payload=json.dumps({'total': total}))['Payload'].read())\n"
        "    return {'total': total, 'sent': sent}\n"
    ),
    "functions/price/app.py": (
        "def lambda_handler(event, context):\n"
        "    return {'lines': [{'price': 1.25, 'qty': q} for q in event.get('quantities', [])]}\n"
    ),
    "functions/notify/app.py": (
        "def lambda_handler(event, context):\n"
        "    return {'message': f\"total is {event['total']}\"}\n"
    ),
    "events/three.json": '{"quantities": [1, 2, 3]}\n',
}


def test_extracted_functions_run_from_the_migrated_module(tmp_path: Any) -> None:
    """A computation ASL cannot express becomes a new function; verify runs it from the
    rewritten module, as the deployed function would."""
    _write_app(tmp_path, EXTRACTING_APP)
    [workflow] = prepare(str(tmp_path))
    assert workflow.skipped is None and "ComputeTotalFunctionArn" in workflow.functions
    [result] = verify_app(str(tmp_path), load_events(str(tmp_path)))
    assert result.equivalent, result
    assert result.machine["output"] == {"total": 7.5, "sent": {"message": "total is 7.5"}}


NESTED_LOOPS_APP = {
    "template.yaml": (
        'AWSTemplateFormatVersion: "2010-09-09"\n'
        "Transform: AWS::Serverless-2016-10-31\n"
        "Resources:\n"
        "  RefreshAllFunction:\n"
        "    Type: AWS::Serverless::Function\n"
        "    Properties:\n      FunctionName: refresh-all\n      CodeUri: orchestrator/\n"
        "      Handler: app.lambda_handler\n      Runtime: python3.12\n"
        "  RefreshFunction:\n"
        "    Type: AWS::Serverless::Function\n"
        "    Properties:\n      FunctionName: refresh\n      CodeUri: functions/refresh/\n"
        "      Handler: app.lambda_handler\n      Runtime: python3.12\n"
    ),
    "orchestrator/app.py": (
        "import json\nimport boto3\n\nlam = boto3.client('lambda')\n\n\n"
        "def lambda_handler(event, context):\n"
        "    for tenant in event['tenants']:\n"
        "        for region in tenant['regions']:\n"
        "            lam.invoke(FunctionName='refresh', "
        "Payload=json.dumps({'tenant': tenant['id'], 'region': region}))\n"
        "    return {'tenants': len(event['tenants'])}\n"
    ),
    "functions/refresh/app.py": (
        "def lambda_handler(event, context):\n"
        "    if not event['tenant'] or not event['region']:\n"
        "        raise ValueError('no tenant or region')\n"
        "    return {'refreshed': event['tenant'] + '/' + event['region']}\n"
    ),
    "events/two.json": (
        '{"tenants": [{"id": "t1", "regions": ["eu", "us"]}, {"id": "t2", "regions": ["ap"]}]}\n'
    ),
}


@pytest.mark.parametrize("language", ["jsonata", "jsonpath"])
def test_an_inner_loop_reads_the_outer_loops_item(tmp_path: Any, language: str) -> None:
    _write_app(tmp_path, NESTED_LOOPS_APP)
    [result] = verify_app(str(tmp_path), load_events(str(tmp_path)), language)
    assert result.equivalent, result
    assert result.machine["output"] == {"tenants": 2}
    assert sorted(json.dumps(payload) for _name, payload in result.calls) == [
        '{"tenant": "t1", "region": "eu"}',
        '{"tenant": "t1", "region": "us"}',
        '{"tenant": "t2", "region": "ap"}',
    ]


def _template(orchestrator: str, functions: dict[str, str]) -> str:
    text = (
        'AWSTemplateFormatVersion: "2010-09-09"\n'
        "Transform: AWS::Serverless-2016-10-31\n"
        "Resources:\n"
        "  OrchestratorFunction:\n"
        "    Type: AWS::Serverless::Function\n"
        f"    Properties:\n      FunctionName: {orchestrator}\n      CodeUri: orchestrator/\n"
        "      Handler: app.lambda_handler\n      Runtime: python3.12\n"
    )
    for name, folder in functions.items():
        logical = "".join(part.title() for part in name.split("-"))
        text += (
            f"  {logical}Function:\n"
            "    Type: AWS::Serverless::Function\n"
            f"    Properties:\n      FunctionName: {name}\n      CodeUri: functions/{folder}/\n"
            "      Handler: app.lambda_handler\n      Runtime: python3.12\n"
        )
    return text


PIPELINE_APP = {
    "template.yaml": _template(
        "etl-pipeline",
        {"etl-extract": "extract", "etl-transform": "transform", "etl-load": "load"},
    ),
    "orchestrator/app.py": (
        "import json\nimport boto3\n\nlam = boto3.client('lambda')\n"
        "PIPELINE = ('etl-extract', 'etl-transform', 'etl-load')\n\n\n"
        "def lambda_handler(event, context):\n"
        "    state = event\n"
        "    for function_name in PIPELINE:\n"
        "        response = lam.invoke(FunctionName=function_name, Payload=json.dumps(state))\n"
        "        state = json.loads(response['Payload'].read())\n"
        "        if state.get('status') == 'FAILED':\n"
        "            break\n"
        "    return {'result': state, 'last_step': function_name}\n"
    ),
    "functions/extract/app.py": (
        "def lambda_handler(event, context):\n"
        "    return {'rows': event['rows'], 'steps': ['extract']}\n"
    ),
    "functions/transform/app.py": (
        "def lambda_handler(event, context):\n"
        "    if any(r < 0 for r in event['rows']):\n"
        "        return {'status': 'FAILED', 'steps': event['steps'] + ['transform']}\n"
        "    return {'rows': [r * 2 for r in event['rows']], "
        "'steps': event['steps'] + ['transform']}\n"
    ),
    "functions/load/app.py": (
        "def lambda_handler(event, context):\n"
        "    return {'status': 'LOADED', 'loaded': sum(event['rows']), "
        "'steps': event['steps'] + ['load']}\n"
    ),
    "events/good.json": '{"rows": [1, 2, 3]}\n',
    "events/bad-row.json": '{"rows": [1, -2]}\n',
}


@pytest.mark.parametrize("language", ["jsonata", "jsonpath"])
def test_a_loop_over_fixed_steps_that_breaks_runs_them_in_order(
    tmp_path: Any, language: str
) -> None:
    _write_app(tmp_path, PIPELINE_APP)
    results = {r.event: r for r in verify_app(str(tmp_path), load_events(str(tmp_path)), language)}
    assert all(r.equivalent for r in results.values()), results
    assert results["events/good.json"].machine["output"] == {
        "result": {"status": "LOADED", "loaded": 12, "steps": ["extract", "transform", "load"]},
        "last_step": "etl-load",
    }
    assert results["events/bad-row.json"].machine["output"] == {
        "result": {"status": "FAILED", "steps": ["extract", "transform"]},
        "last_step": "etl-transform",
    }
    # the break skipped etl-load
    assert [name for name, _ in results["events/bad-row.json"].calls] == [
        "etl-extract",
        "etl-transform",
    ]


POLLING_APP = {
    "template.yaml": _template("run-report", {"start-job": "start", "job-status": "status"}),
    "orchestrator/app.py": (
        "import json\nimport time\nimport boto3\n\nlam = boto3.client('lambda')\n\n\n"
        "class JobFailed(Exception):\n    pass\n\n\n"
        "def call(name, payload):\n"
        "    response = lam.invoke(FunctionName=name, Payload=json.dumps(payload))\n"
        "    return json.loads(response['Payload'].read())\n\n\n"
        "def lambda_handler(event, context):\n"
        "    job = call('start-job', event)\n"
        "    status = call('job-status', {'jobId': job['jobId']})\n"
        "    polls = 1\n"
        "    while status['state'] == 'RUNNING':\n"
        "        time.sleep(5)\n"
        "        status = call('job-status', {'jobId': job['jobId']})\n"
        "        polls += 1\n"
        "    if status['state'] == 'FAILED':\n"
        "        raise JobFailed(status['reason'])\n"
        "    return {'jobId': job['jobId'], 'rows': status['rows'], 'polls': polls}\n"
    ),
    "functions/start/app.py": (
        "def lambda_handler(event, context):\n"
        "    return {'jobId': f\"{event['report']}-{event['rounds']}\"}\n"
    ),
    # RUNNING for `rounds` polls of a job, then DONE (or FAILED for a report named 'broken');
    # the count starts again after, so the original and the machine see the same answers
    "functions/status/app.py": (
        "import collections\n\n_POLLS = collections.Counter()\n\n\n"
        "def lambda_handler(event, context):\n"
        "    report, rounds = event['jobId'].rsplit('-', 1)\n"
        "    _POLLS[event['jobId']] += 1\n"
        "    if _POLLS[event['jobId']] <= int(rounds):\n"
        "        return {'state': 'RUNNING'}\n"
        "    del _POLLS[event['jobId']]\n"
        "    if report == 'broken':\n"
        "        return {'state': 'FAILED', 'reason': 'no data for ' + report}\n"
        "    return {'state': 'DONE', 'rows': 10 * int(rounds)}\n"
    ),
    "events/ready.json": '{"report": "sales", "rounds": 0}\n',
    "events/slow.json": '{"report": "stock", "rounds": 3}\n',
    "events/broken.json": '{"report": "broken", "rounds": 1}\n',
}


@pytest.mark.parametrize("language", ["jsonata", "jsonpath"])
def test_a_polling_while_loop_becomes_a_wait_choice_loop(tmp_path: Any, language: str) -> None:
    _write_app(tmp_path, POLLING_APP)
    results = {r.event: r for r in verify_app(str(tmp_path), load_events(str(tmp_path)), language)}
    assert all(r.equivalent and not r.skipped for r in results.values()), results
    slow = results["events/slow.json"]
    assert slow.machine["output"] == {"jobId": "stock-3", "rows": 30, "polls": 4}
    assert slow.machine_waited_seconds == slow.original_waited_seconds == 15
    assert results["events/ready.json"].machine["output"]["polls"] == 1
    broken = results["events/broken.json"]
    assert (broken.machine["status"], broken.machine["error"]) == ("FAILED", "JobFailed")
    entered = [e["state"] for e in slow.history if e["type"].endswith("Entered")]
    assert entered.count("Wait") == 3


THREAD_POOL_APP = {
    "template.yaml": _template("reindex-all", {"reindex-shard": "reindex"}),
    "orchestrator/app.py": (
        "import json\nfrom concurrent.futures import ThreadPoolExecutor, as_completed\n"
        "import boto3\n\nlam = boto3.client('lambda')\n\n\n"
        "def reindex(shard):\n"
        "    response = lam.invoke(FunctionName='reindex-shard', "
        "Payload=json.dumps({'shard': shard}))\n"
        "    return json.loads(response['Payload'].read())\n\n\n"
        "def lambda_handler(event, context):\n"
        "    with ThreadPoolExecutor(max_workers=4) as pool:\n"
        "        futures = [pool.submit(reindex, shard) for shard in event['shards']]\n"
        "        done = []\n"
        "        for future in as_completed(futures):\n"
        "            done.append(future.result())\n"
        # as_completed's order varies from run to run: only what does not depend on it
        "    failed = [d['shard'] for d in done if not d['ok']]\n"
        "    return {'failed': len(failed), 'documents': len(done)}\n"
    ),
    "functions/reindex/app.py": (
        "def lambda_handler(event, context):\n"
        "    return {'shard': event['shard'], 'ok': event['shard'] != 'bad'}\n"
    ),
    "events/three.json": '{"shards": ["a", "b", "c"]}\n',
    "events/one-bad.json": '{"shards": ["a", "bad"]}\n',
}


def test_thread_pool_submit_and_as_completed_become_a_map(tmp_path: Any) -> None:
    _write_app(tmp_path, THREAD_POOL_APP)
    [workflow] = prepare(str(tmp_path))
    assert workflow.skipped is None, workflow.skipped
    results = {r.event: r for r in verify_app(str(tmp_path), load_events(str(tmp_path)))}
    assert all(r.equivalent for r in results.values()), results
    assert results["events/one-bad.json"].machine["output"] == {"failed": 1, "documents": 2}
    assert results["events/three.json"].machine["output"] == {"failed": 0, "documents": 3}
    assert any(e["type"] == "MapStateEntered" for e in results["events/three.json"].history)


def _states_named(definition: Any, name: str) -> list[Any]:
    """The states called `name`, inside Parallel branches and Map processors too."""
    found = []
    for key, state in definition.get("States", {}).items():
        if key == name:
            found.append(state)
        for inner in [*state.get("Branches", []), state.get("ItemProcessor", {})]:
            found += _states_named(inner, name)
    return found


DISPATCH_APP = {
    "template.yaml": _template("score", {"audit-trail": "audit", "score-customer": "score"}),
    "orchestrator/app.py": (
        "import json\nimport boto3\n\nlambda_client = boto3.client('lambda')\n\n\n"
        "def dispatch(function_name, payload, fire_and_forget=False):\n"
        "    response = lambda_client.invoke(\n"
        "        FunctionName=function_name,\n"
        "        InvocationType='Event' if fire_and_forget else 'RequestResponse',\n"
        "        Payload=json.dumps(payload),\n"
        "    )\n"
        "    if fire_and_forget:\n"
        "        return None\n"
        "    return json.loads(response['Payload'].read())\n\n\n"
        "def lambda_handler(event, context):\n"
        "    dispatch('audit-trail', event, fire_and_forget=True)\n"
        "    return dispatch('score-customer', event)\n"
    ),
    "functions/audit/app.py": (
        "def lambda_handler(event, context):\n    raise RuntimeError('audit is down')\n"
    ),
    "functions/score/app.py": (
        "def lambda_handler(event, context):\n    return {'score': len(event['name']) * 10}\n"
    ),
    "events/ann.json": '{"name": "ann"}\n',
}


def test_a_helper_flag_decides_the_invocation_type(tmp_path: Any) -> None:
    """dispatch(..., fire_and_forget=True) is an Event invoke: audit-trail failing does not
    stop the original, nor the machine."""
    _write_app(tmp_path, DISPATCH_APP)
    [workflow] = prepare(str(tmp_path))
    assert workflow.definition is not None
    # the two invokes are independent: they run in one Parallel
    [audit] = _states_named(workflow.definition, "AuditTrail")
    assert audit["Arguments"]["InvocationType"] == "Event"
    [result] = verify_app(str(tmp_path), load_events(str(tmp_path)))
    assert result.equivalent, result
    assert result.machine == {"status": "SUCCEEDED", "output": {"score": 30}, "error": None}


def test_nested_loops_filling_one_list_are_joined(tmp_path: Any) -> None:
    app = dict(NESTED_LOOPS_APP)
    app["orchestrator/app.py"] = (
        "import json\nimport boto3\n\nlam = boto3.client('lambda')\n\n\n"
        "def lambda_handler(event, context):\n"
        "    refreshed = []\n"
        "    for tenant in event['tenants']:\n"
        "        for region in tenant['regions']:\n"
        "            response = lam.invoke(FunctionName='refresh', "
        "Payload=json.dumps({'tenant': tenant['id'], 'region': region}))\n"
        "            refreshed.append(json.loads(response['Payload'].read())['refreshed'])\n"
        "    return {'count': len(refreshed), 'refreshed': refreshed}\n"
    )
    _write_app(tmp_path, app)
    for language in ("jsonata", "jsonpath"):
        [result] = verify_app(str(tmp_path), load_events(str(tmp_path)), language)
        assert result.equivalent, (language, result)
        assert result.machine["output"] == {
            "count": 3,
            "refreshed": ["t1/eu", "t1/us", "t2/ap"],
        }


def test_a_while_true_poll_that_returns_is_a_loop_of_states(tmp_path: Any) -> None:
    app = dict(POLLING_APP)
    app["orchestrator/app.py"] = (
        "import json\nimport time\nimport boto3\n\nlam = boto3.client('lambda')\n\n\n"
        "def call(name, payload):\n"
        "    response = lam.invoke(FunctionName=name, Payload=json.dumps(payload))\n"
        "    return json.loads(response['Payload'].read())\n\n\n"
        "def lambda_handler(event, context):\n"
        "    job = call('start-job', event)\n"
        "    while True:\n"
        "        status = call('job-status', {'jobId': job['jobId']})\n"
        "        if status['state'] != 'RUNNING':\n"
        "            return status\n"
        "        time.sleep(7)\n"
    )
    _write_app(tmp_path, app)
    for language in ("jsonata", "jsonpath"):
        results = {
            r.event: r for r in verify_app(str(tmp_path), load_events(str(tmp_path)), language)
        }
        assert all(r.equivalent for r in results.values()), (language, results)
        slow = results["events/slow.json"]
        assert slow.machine["output"] == {"state": "DONE", "rows": 30}
        assert slow.machine_waited_seconds == slow.original_waited_seconds == 21


OPERATORS_APP = {
    "template.yaml": _template("archive", {"archive-object": "archive"}),
    "orchestrator/app.py": (
        "import json\nimport boto3\n\nlam = boto3.client('lambda')\n\n\n"
        "def lambda_handler(event, context):\n"
        "    name = event['name'] + '.out'\n"
        "    copies = event['copies'] + 1\n"
        "    tags = event['tags'] + ['archived']\n"
        "    label = event['prefix'] + event['name']\n"
        "    response = lam.invoke(FunctionName='archive-object', Payload=json.dumps("
        "{'key': name, 'copies': copies, 'tags': tags, 'label': label}))\n"
        "    return json.loads(response['Payload'].read())\n"
    ),
    "functions/archive/app.py": "def lambda_handler(event, context):\n    return event\n",
    "events/report.json": '{"name": "report", "copies": 2, "tags": ["q3"], "prefix": "x-"}\n',
}


@pytest.mark.parametrize("language", ["jsonata", "jsonpath"])
def test_plus_follows_the_types_python_adds(tmp_path: Any, language: str) -> None:
    """`+` on text concatenates, on numbers adds, on lists joins them (it was always a numeric
    `+`, so `name + ".out"` failed at run time); on operands of unknown types (`prefix + name`)
    it is computed by a new function, not guessed."""
    _write_app(tmp_path, OPERATORS_APP)
    [workflow] = prepare(str(tmp_path), language)
    assert workflow.skipped is None, workflow.skipped
    assert "ComputeLabel" in workflow.definition["States"]  # type: ignore[index]
    [result] = verify_app(str(tmp_path), load_events(str(tmp_path)), language)
    assert result.equivalent and not result.skipped, result
    assert result.machine["output"] == {
        "key": "report.out",
        "copies": 3,
        "tags": ["q3", "archived"],
        "label": "x-report",
    }


QUALIFIED_APP = {
    "template.yaml": _template("checkout", {"price-items": "price", "notify": "notify"}),
    "orchestrator/app.py": (
        "import base64\nimport json\nimport boto3\n\nlam = boto3.client('lambda')\n"
        'CONTEXT = base64.b64encode(b\'{"custom": {"tenant": "acme"}}\').decode()\n\n\n'
        "def lambda_handler(event, context):\n"
        "    response = lam.invoke(FunctionName='price-items', Qualifier='live', "
        "Payload=json.dumps(event))\n"
        "    priced = json.loads(response['Payload'].read())\n"
        "    lam.invoke(FunctionName='notify:live', InvocationType='Event', "
        "Payload=json.dumps(priced), LogType='None')\n"
        "    return priced\n"
    ),
    "functions/price/app.py": (
        "def lambda_handler(event, context):\n    return {'total': 2 * event['n']}\n"
    ),
    "functions/notify/app.py": "def lambda_handler(event, context):\n    return None\n",
    "events/two.json": '{"n": 2}\n',
}


@pytest.mark.parametrize("language", ["jsonata", "jsonpath"])
def test_the_qualifier_goes_on_the_task(tmp_path: Any, language: str) -> None:
    """The alias invoked (`Qualifier=`, or `name:alias`) is the Task's `Qualifier`: the machine
    calls the same version the handler did; LogType changes nothing the machine keeps."""
    _write_app(tmp_path, QUALIFIED_APP)
    [workflow] = prepare(str(tmp_path), language)
    assert workflow.skipped is None, workflow.skipped
    states = workflow.definition["States"]  # type: ignore[index]
    field = "Arguments" if language == "jsonata" else "Parameters"
    assert [s[field]["Qualifier"] for s in states.values() if s["Type"] == "Task"] == [
        "live",
        "live",
    ]
    [result] = verify_app(str(tmp_path), load_events(str(tmp_path)), language)
    assert result.equivalent and not result.skipped, result
    assert result.machine["output"] == {"total": 4}


API_GATEWAY_APP = {
    "template.yaml": _template("checkout-api", {"place-order": "order"}),
    "orchestrator/app.py": (
        "import json\nimport boto3\n\nlam = boto3.client('lambda')\n\n\n"
        "def lambda_handler(event, context):\n"
        "    body = json.loads(event['body'])\n"
        "    response = lam.invoke(FunctionName='place-order', "
        "Payload=json.dumps({'sku': body['sku'], 'qty': body.get('qty', 1)}))\n"
        "    order = json.loads(response['Payload'].read())\n"
        "    return {'statusCode': 201, 'body': json.dumps({'orderId': order['id']})}\n"
    ),
    "functions/order/app.py": (
        "def lambda_handler(event, context):\n"
        "    return {'id': f\"{event['sku']}-{event['qty']}\"}\n"
    ),
    "events/post.json": json.dumps(
        {"httpMethod": "POST", "body": json.dumps({"sku": "A1", "qty": 3})}
    )
    + "\n",
    "events/default-qty.json": json.dumps({"httpMethod": "POST", "body": '{"sku": "B2"}'}) + "\n",
}


@pytest.mark.parametrize("language", ["jsonata", "jsonpath"])
def test_an_api_gateway_body_is_parsed_once(tmp_path: Any, language: str) -> None:
    """`body = json.loads(event["body"])` becomes a Pass that parses it into a variable; its
    fields are read from there (they were refused: a path on a computed value)."""
    _write_app(tmp_path, API_GATEWAY_APP)
    [workflow] = prepare(str(tmp_path), language)
    assert workflow.skipped is None, workflow.skipped
    results = verify_app(str(tmp_path), load_events(str(tmp_path)), language)
    assert all(r.equivalent and not r.skipped for r in results), results
    outputs = {r.event: json.loads(r.machine["output"]["body"]) for r in results}
    assert outputs == {
        "events/post.json": {"orderId": "A1-3"},
        "events/default-qty.json": {"orderId": "B2-1"},
    }


CONTINUE_APP = {
    "template.yaml": _template("stream-indexer", {"index-record": "index"}),
    "orchestrator/app.py": (
        "import json\nimport boto3\n\nlam = boto3.client('lambda')\n\n\n"
        "def lambda_handler(event, context):\n"
        "    for record in event['Records']:\n"
        "        if record['eventName'] != 'INSERT':\n"
        "            continue\n"
        "        lam.invoke(FunctionName='index-record', InvocationType='Event', "
        "Payload=json.dumps(record))\n"
        "    return {'records': len(event['Records'])}\n"
    ),
    "functions/index/app.py": "def lambda_handler(event, context):\n    return None\n",
    "events/mixed.json": json.dumps(
        {"Records": [{"eventName": "INSERT"}, {"eventName": "REMOVE"}, {"eventName": "INSERT"}]}
    )
    + "\n",
}


@pytest.mark.parametrize("language", ["jsonata", "jsonpath"])
def test_continue_ends_the_round_of_a_map(tmp_path: Any, language: str) -> None:
    _write_app(tmp_path, CONTINUE_APP)
    [result] = verify_app(str(tmp_path), load_events(str(tmp_path)), language)
    assert result.equivalent and not result.skipped, result
    assert [name for name, _ in result.calls] == ["index-record", "index-record"]
    entered = [e["state"] for e in result.history if e["type"].endswith("Entered")]
    assert entered.count("IndexRecord") == 2


def test_an_unchecked_function_failure_is_a_documented_difference(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """send-email bounces: the original never checked its FunctionError and answered; the
    machine fails the Task, as plan noted. verify says so and passes, fails with --strict, and
    with --keep-unchecked-errors the machine answers as the original did."""
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    monkeypatch.chdir(root)
    app = os.path.join("fixtures", "article", "parallel_notifications", "module_client")
    event = os.path.join(app, "events", "email-bounce.json")

    def run(*flags: str) -> Any:
        return CliRunner().invoke(main, ["verify", app, "--event", event, *flags])

    documented = run()
    assert documented.exit_code == 0, documented.output
    assert "documented difference: the machine failed with RuntimeError in" in documented.output
    assert "SendEmail (send-email)" in documented.output
    assert run("--strict").exit_code == 1
    literal = run("--keep-unchecked-errors")
    assert literal.exit_code == 0 and ": equivalent (SUCCEEDED" in literal.output, literal.output


UNPACKING_APP = {
    "template.yaml": _template("notify-all", {"notify": "notify"}),
    "orchestrator/app.py": (
        "import json\nimport boto3\n\nlam = boto3.client('lambda')\n\n\n"
        "def lambda_handler(event, context):\n"
        "    for channel, address in event['contacts'].items():\n"
        "        lam.invoke(FunctionName='notify', InvocationType='Event', "
        "Payload=json.dumps({'channel': channel, 'to': address}))\n"
        "    for position, name in enumerate(event['queue']):\n"
        "        lam.invoke(FunctionName='notify', InvocationType='Event', "
        "Payload=json.dumps({'position': position, 'to': name}))\n"
        "    for name, score in zip(event['names'], event['scores']):\n"
        "        lam.invoke(FunctionName='notify', InvocationType='Event', "
        "Payload=json.dumps({'to': name, 'score': score}))\n"
        "    return {'done': True}\n"
    ),
    "functions/notify/app.py": "def lambda_handler(event, context):\n    return None\n",
    "events/many.json": json.dumps(
        {
            "contacts": {"email": "a@x.test", "sms": "+100"},
            "queue": ["ann", "bob", "cy"],
            "names": ["ann", "bob", "cy"],
            "scores": [3, 5],
        }
    )
    + "\n",
    "events/one.json": json.dumps(
        {"contacts": {"email": "a@x.test"}, "queue": ["ann"], "names": ["ann"], "scores": [1]}
    )
    + "\n",
    "events/none.json": json.dumps({"contacts": {}, "queue": [], "names": [], "scores": []}) + "\n",
}


@pytest.mark.parametrize("language", ["jsonata", "jsonpath"])
def test_loops_that_unpack_pairs_become_maps(tmp_path: Any, language: str) -> None:
    """`for k, v in d.items()`, `enumerate(xs)`, `zip(a, b)`: a Map over two-item lists whose
    parts the names read; one pair and no pair at all included (JSONata would answer a lone
    pair as the pair itself)."""
    _write_app(tmp_path, UNPACKING_APP)
    results = {r.event: r for r in verify_app(str(tmp_path), load_events(str(tmp_path)), language)}
    assert all(r.equivalent and not r.skipped for r in results.values()), results
    sent = sorted(json.dumps(p, sort_keys=True) for _, p in results["events/many.json"].calls)
    assert len(sent) == 2 + 3 + 2, sent
    assert '{"channel": "sms", "to": "+100"}' in sent and '{"position": 2, "to": "cy"}' in sent
    assert len(results["events/one.json"].calls) == 3
    assert results["events/none.json"].calls == []


ERROR_PAYLOAD_APP = {
    "template.yaml": _template("checkout", {"charge-card": "charge"}),
    "orchestrator/app.py": (
        "import json\nimport boto3\n\nlam = boto3.client('lambda')\n\n\n"
        "def lambda_handler(event, context):\n"
        "    response = lam.invoke(FunctionName='charge-card', Payload=json.dumps(event))\n"
        "    result = json.loads(response['Payload'].read())\n"
        "    if 'errorMessage' in result:\n"
        "        return {'ok': False, 'why': result['errorMessage']}\n"
        "    return {'ok': True, 'charged': result['amount']}\n"
    ),
    "functions/charge/app.py": (
        "def lambda_handler(event, context):\n"
        "    if event['card'] == 'broken':\n"
        "        raise RuntimeError('card service down')\n"
        "    if event['card'] == 'declined':\n"
        "        return {'errorMessage': 'declined'}\n"
        "    return {'amount': event['amount']}\n"
    ),
    "events/ok.json": '{"card": "visa", "amount": 12}\n',
    "events/broken.json": '{"card": "broken", "amount": 12}\n',
    "events/declined.json": '{"card": "declined", "amount": 12}\n',
}


@pytest.mark.parametrize("language", ["jsonata", "jsonpath"])
def test_a_check_for_an_error_payload_catches_a_failed_function(
    tmp_path: Any, language: str
) -> None:
    """`if "errorMessage" in result:` is the handler checking for a failed function: the Task
    gets a Catch into that branch (a failure no longer fails the machine) and the Choice still
    takes it for a function that answers with an error of its own."""
    _write_app(tmp_path, ERROR_PAYLOAD_APP)
    results = {r.event: r for r in verify_app(str(tmp_path), load_events(str(tmp_path)), language)}
    assert all(r.equivalent and not r.documented for r in results.values()), results
    assert results["events/broken.json"].machine["output"] == {
        "ok": False,
        "why": "card service down",
    }
    assert results["events/declined.json"].machine["output"] == {"ok": False, "why": "declined"}


SKIPPING_APP = {
    "template.yaml": _template("queue-consumer", {"process-message": "process"}),
    "orchestrator/app.py": (
        "import json\nimport boto3\n\nlam = boto3.client('lambda')\n\n\n"
        "def lambda_handler(event, context):\n"
        "    processed = []\n"
        "    for record in event['Records']:\n"
        "        body = json.loads(record['body'])\n"
        "        if body.get('type') != 'order':\n"
        "            continue\n"
        "        response = lam.invoke(FunctionName='process-message', "
        "Payload=json.dumps(body))\n"
        "        processed.append(json.loads(response['Payload'].read()))\n"
        "    return {'processed': processed, 'count': len(processed)}\n"
    ),
    "functions/process/app.py": (
        "def lambda_handler(event, context):\n    return {'id': event['id'], 'ok': True}\n"
    ),
    "events/mixed.json": json.dumps(
        {
            "Records": [
                {"body": json.dumps({"type": "order", "id": 1})},
                {"body": json.dumps({"type": "ping"})},
                {"body": json.dumps({"type": "order", "id": 3})},
            ]
        }
    )
    + "\n",
    "events/none-kept.json": json.dumps({"Records": [{"body": json.dumps({"type": "ping"})}]})
    + "\n",
}


@pytest.mark.parametrize("language", ["jsonata", "jsonpath"])
def test_a_collecting_loop_that_skips_items(tmp_path: Any, language: str) -> None:
    """`continue` before `out.append(…)`: each item gives a list of its value or of nothing,
    joined after the Map (a Map gives one result per item)."""
    _write_app(tmp_path, SKIPPING_APP)
    results = {r.event: r for r in verify_app(str(tmp_path), load_events(str(tmp_path)), language)}
    assert all(r.equivalent and not r.skipped for r in results.values()), results
    assert results["events/mixed.json"].machine["output"]["count"] == 2
    assert results["events/none-kept.json"].machine["output"] == {"processed": [], "count": 0}


def test_original_revision_knows_the_documented_differences(tmp_path: Any) -> None:
    """`verify --original REV` plans the code at REV again, so the machine failing where the
    original carried on with an unchecked function failure is documented there too."""
    _committed_copy(tmp_path, "parallel_notifications", "module_client")
    runner = CliRunner()
    cwd = os.getcwd()
    os.chdir(tmp_path)
    try:
        assert runner.invoke(main, ["migrate", "app", "--write", "--no-cache"]).exit_code == 0
        event = os.path.join("app", "events", "email-bounce.json")
        args = ["verify", "app", "--original", "HEAD", "--event", event]
        result = runner.invoke(main, args)
        assert result.exit_code == 0, result.output
        assert "documented difference: the machine failed with RuntimeError" in result.output
        assert runner.invoke(main, [*args, "--strict"]).exit_code == 1
    finally:
        os.chdir(cwd)
