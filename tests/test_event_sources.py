"""What migrate does with the orchestrator's event sources (issue 12): a schedule, a rule or an
S3 upload whose invocation nobody answers starts the machine itself; an API, a queue or a
stream keeps a starter that waits for each run's answer or failure."""

from __future__ import annotations

import json
import os
import shutil
import types
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from tests.conftest import FIXTURES
from untangle.cli import main
from untangle.event_sources import Event, Invoker, decide, references
from untangle.sam import cfn_load

APPS = FIXTURES / "event_sources"

SCHEDULE = Event("Nightly", "Schedule", {"Schedule": "cron(0 6 * * ? *)"})
S3 = Event(
    "Uploaded",
    "S3",
    {"Bucket": {"Ref": "Uploads"}, "Events": "s3:ObjectCreated:*"},
)
SQS = Event("Orders", "SQS", {"Queue": {"Fn::GetAtt": ["Queue", "Arn"]}, "BatchSize": 10})
API = Event("Post", "Api", {"Path": "/orders", "Method": "post"})
READER = Invoker("billing/app.py:12", reads_answer=True)
FIRE_AND_FORGET = Invoker("billing/app.py:12", reads_answer=False)
LONG_WAIT = ["Wait waits 1 h"]

# (events, plan's type, express blockers, keyword arguments) →
# (type, starter mode, starter kept, events moved as they are, S3 events moved, words said)
CASES = [
    pytest.param(
        [SCHEDULE],
        "Express",
        [],
        {},
        ("Express", "sync", False, ["Nightly"], [], "leaves the template"),
        id="schedule-moves-starter-removed",
    ),
    pytest.param(
        [Event("Hourly", "ScheduleV2", {"ScheduleExpression": "rate(1 hour)"})],
        "Standard",
        [],
        {},
        ("Standard", "async", False, ["Hourly"], [], "moves to the state machine"),
        id="schedule-v2-moves",
    ),
    pytest.param(
        [Event("Rule", "EventBridgeRule", {"Pattern": {"source": ["billing"]}})],
        "Express",
        [],
        {},
        ("Express", "sync", False, ["Rule"], [], "moves to the state machine"),
        id="eventbridge-rule-moves",
    ),
    pytest.param(
        [Event("Legacy", "CloudWatchEvent", {"Pattern": {"source": ["aws.ec2"]}})],
        "Express",
        [],
        {},
        ("Express", "sync", False, ["Legacy"], [], "moves to the state machine"),
        id="cloudwatch-event-moves",
    ),
    pytest.param(
        [SCHEDULE],
        "Express",
        [],
        {"invokers": [READER]},
        ("Express", "sync", True, [], [], "billing/app.py:12 invokes it and reads its answer"),
        id="near-miss-schedule-answer-read-elsewhere",
    ),
    pytest.param(
        [SCHEDULE],
        "Express",
        [],
        {"invokers": [FIRE_AND_FORGET]},
        ("Express", "sync", True, ["Nightly"], [], "stays as a starter for billing/app.py:12"),
        id="near-miss-schedule-also-invoked-async",
    ),
    pytest.param(
        [Event("Nightly", "Schedule", {"Schedule": "rate(1 day)", "RuleName": "nightly"})],
        "Express",
        [],
        {},
        ("Express", "sync", True, [], [], "has no RuleName"),
        id="near-miss-schedule-rule-name",
    ),
    pytest.param(
        [Event("Rule", "EventBridgeRule", {"Pattern": {}, "Enabled": False})],
        "Express",
        [],
        {},
        ("Express", "sync", True, [], [], "has no Enabled"),
        id="near-miss-rule-enabled",
    ),
    pytest.param(
        [SCHEDULE],
        "Express",
        [],
        {"function_url": True},
        ("Express", "sync", True, ["Nightly"], [], "its function URL"),
        id="near-miss-schedule-and-function-url",
    ),
    pytest.param(
        [API],
        "Express",
        [],
        {},
        ("Express", "sync", True, [], [], 'never {"executionArn": …}'),
        id="api-express-sync",
    ),
    pytest.param(
        [Event("Get", "HttpApi", {"Path": "/q", "Method": "get"})],
        "Express",
        [],
        {},
        ("Express", "sync", True, [], [], "returns the execution's output"),
        id="http-api-express-sync",
    ),
    pytest.param(
        [API],
        "Standard",
        [],
        {},
        ("Express", "sync", True, [], [], "Express, not the Standard"),
        id="api-standard-by-cost-becomes-express",
    ),
    pytest.param(
        [API],
        "Standard",
        LONG_WAIT,
        {},
        ("Standard", "wait", True, [], [], "waits for its end"),
        id="api-standard-too-long-waits",
    ),
    pytest.param(
        [SQS],
        "Express",
        [],
        {},
        ("Express", "sync", True, [], [], "raises when the execution fails"),
        id="sqs-express-sync",
    ),
    pytest.param(
        [SQS],
        "Standard",
        LONG_WAIT,
        {"execution_ms": 3_600_000},
        ("Standard", "async", True, [], [], "outlasts the 15 minutes a Lambda can wait"),
        id="near-miss-sqs-standard-longer-than-a-lambda",
    ),
    pytest.param(
        [SCHEDULE],
        "Standard",
        LONG_WAIT,
        {"invokers": [Invoker("template Outputs.FnArn", True, in_template=True)]},
        ("Standard", "async", True, [], [], "names the function"),
        id="near-miss-output-keeps-starter-without-waiting",
    ),
    pytest.param(
        [SQS],
        "Standard",
        LONG_WAIT,
        {"execution_ms": 400_000},
        ("Standard", "wait", True, [], [], "dead-letter queue"),
        id="sqs-standard-waits",
    ),
    pytest.param(
        [Event("Orders", "SQS", {"FunctionResponseTypes": ["ReportBatchItemFailures"]})],
        "Express",
        [],
        {},
        ("Express", "sync", True, [], [], "batchItemFailures"),
        id="near-miss-sqs-report-batch-item-failures",
    ),
    pytest.param(
        [Event("Clicks", "Kinesis", {"StartingPosition": "LATEST"})],
        "Standard",
        [],
        {},
        ("Express", "sync", True, [], [], "Kinesis acts on each batch's result"),
        id="kinesis-like-sqs",
    ),
    pytest.param(
        [Event("Changes", "DynamoDB", {"StartingPosition": "LATEST"})],
        "Express",
        [],
        {},
        ("Express", "sync", True, [], [], "raises when the execution fails"),
        id="dynamodb-stream-like-sqs",
    ),
    pytest.param(
        [S3],
        "Express",
        [],
        {"reads_event": True},
        ("Express", "sync", True, [], [], "reads its event (an S3 notification"),
        id="s3-event-read-keeps-starter",
    ),
    pytest.param(
        [S3],
        "Express",
        [],
        {},
        ("Express", "sync", False, [], ["Uploaded"], "sends its events to EventBridge"),
        id="s3-event-unread-moves",
    ),
    pytest.param(
        [Event("Up", "S3", {"Bucket": "my-bucket", "Events": "s3:ObjectCreated:*"})],
        "Express",
        [],
        {},
        ("Express", "sync", True, [], [], "not a `!Ref`"),
        id="near-miss-s3-bucket-by-name",
    ),
    pytest.param(
        [Event("Up", "S3", {"Bucket": {"Ref": "B"}, "Events": "s3:ObjectCreated:Put"})],
        "Express",
        [],
        {},
        ("Express", "sync", True, [], [], "no EventBridge detail type"),
        id="near-miss-s3-put-only",
    ),
    pytest.param(
        [Event("Topic", "SNS", {"Topic": {"Ref": "T"}})],
        "Express",
        [],
        {},
        ("Express", "sync", True, [], [], "no SNS event"),
        id="sns-stays",
    ),
    pytest.param(
        [SCHEDULE, API],
        "Express",
        [],
        {},
        ("Express", "sync", True, ["Nightly"], [], "moves to the state machine"),
        id="schedule-moves-api-keeps-starter",
    ),
    pytest.param(
        [],
        "Standard",
        [],
        {},
        ("Standard", "async", True, [], [], None),
        id="no-events-unchanged",
    ),
]


@pytest.mark.parametrize(("events", "machine", "blockers", "options", "expected"), CASES)
def test_each_event_kind(
    events: list[Event],
    machine: str,
    blockers: list[str],
    options: dict[str, Any],
    expected: tuple[str, str, bool, list[str], list[str], str | None],
) -> None:
    decision = decide(events, machine, blockers, **options)
    machine_type, mode, keep, moved, s3_moved, said = expected
    assert (decision.machine_type, decision.mode, decision.keep_starter) == (
        machine_type,
        mode,
        keep,
    )
    assert [e.name for e in decision.moved] == moved
    assert [e.name for e in decision.s3_moved] == s3_moved
    if said is None:
        assert decision.lines() == []
    else:
        assert any(said in line for line in decision.lines()), decision.lines()
        # every event has its own line
        assert all(any(f" {e.name} " in line for line in decision.lines()) for e in events)


def test_template_references() -> None:
    document = {
        "Resources": {
            "Fn": {"Type": "AWS::Serverless::Function"},
            "Logs": {
                "Type": "AWS::Logs::LogGroup",
                "Properties": {"LogGroupName": {"Fn::Sub": "/aws/lambda/${Fn}"}},
            },
            "Perm": {
                "Type": "AWS::Lambda::Permission",
                "Properties": {"FunctionName": {"Ref": "Fn"}},
            },
            "Other": {"Type": "AWS::Serverless::Function", "Properties": {"Role": {"Ref": "FnX"}}},
        },
        "Outputs": {
            # `sam init`'s outputs: the function's ARN (a caller may use it), its role's (no one
            # calls a function through its role, but the role goes with the function)
            "Arn": {"Value": {"Fn::GetAtt": ["Fn", "Arn"]}},
            "Role": {"Value": {"Fn::GetAtt": ["FnRole", "Arn"]}},
            "Both": {"Value": {"Fn::Sub": "${Fn} runs as ${FnRole.Arn}"}},
        },
    }
    found = {i.where: (i.reads_answer, i.why()) for i in references(document, "Fn")}
    reader = "names the function: whoever calls it may read its answer"
    assert found == {
        "template Resources.Logs": (False, "names the function"),
        "template Resources.Perm": (True, reader),
        "template Outputs.Arn": (True, reader),
        "template Outputs.Role": (
            False,
            "names its implicit role, which would go with the function",
        ),
        "template Outputs.Both": (True, reader),
    }


@pytest.mark.parametrize(
    ("depends_on", "names_it"),
    [
        pytest.param(["Db", "Fn"], True, id="list-naming-it"),
        pytest.param(["Db", "FnX"], False, id="list-not-naming-it"),
        pytest.param("Fn", True, id="one-name"),
        pytest.param(["Db", ["Fn"]], False, id="nested-list"),
        pytest.param({"Ref": ["Fn"]}, False, id="ref-to-a-list"),
    ],
)
def test_a_depends_on_list_is_read_not_hashed(depends_on: Any, names_it: bool) -> None:
    document = {
        "Resources": {
            "Fn": {"Type": "AWS::Serverless::Function"},
            "Db": {"Type": "AWS::DynamoDB::Table"},
            "Job": {"Type": "AWS::Events::Rule", "DependsOn": depends_on},
        }
    }
    found = [i.where for i in references(document, "Fn")]
    assert found == (["template Resources.Job"] if names_it else [])


# --- migrate on the fixtures ----------------------------------------------------------------


def _migrate(folder: Path, *args: str) -> tuple[int, str, str]:
    cwd = os.getcwd()
    os.chdir(folder)
    try:
        result = CliRunner().invoke(main, ["migrate", ".", "--no-cache", *args])
    finally:
        os.chdir(cwd)
    if result.exception and not isinstance(result.exception, SystemExit):
        raise result.exception
    return result.exit_code, result.stdout, result.stderr


def _copy(app: str, tmp_path: Path) -> Path:
    copy = tmp_path / app
    shutil.copytree(APPS / app, copy, ignore=shutil.ignore_patterns("__pycache__"))
    return copy


def _resources(folder: Path) -> dict[str, Any]:
    return cfn_load((folder / "template.yaml").read_text())["Resources"]  # type: ignore[no-any-return]


def _machine(resources: dict[str, Any]) -> dict[str, Any]:
    [machine] = [r for r in resources.values() if r["Type"] == "AWS::Serverless::StateMachine"]
    return machine["Properties"]  # type: ignore[no-any-return]


class _FakeStepFunctions:
    """Step Functions' answers, as boto3 gives them: what the starter does with them is what is
    under test."""

    def __init__(self, statuses: list[str], output: Any) -> None:
        self.statuses = statuses
        self.output = output
        self.calls: list[str] = []

    def _answer(self) -> dict[str, Any]:
        status = self.statuses.pop(0)
        answer: dict[str, Any] = {"status": status, "executionArn": "arn:execution"}
        if status == "SUCCEEDED":
            answer["output"] = json.dumps(self.output)
        else:
            answer.update(error="States.TaskFailed", cause="boom")
        return answer

    def start_sync_execution(self, **kwargs: Any) -> dict[str, Any]:
        self.calls.append("start_sync_execution")
        return self._answer()

    def start_execution(self, **kwargs: Any) -> dict[str, Any]:
        self.calls.append("start_execution")
        return {"executionArn": "arn:execution"}

    def describe_execution(self, **kwargs: Any) -> dict[str, Any]:
        self.calls.append("describe_execution")
        return self._answer()


def _starter(
    path: Path, fake: _FakeStepFunctions, monkeypatch: pytest.MonkeyPatch
) -> types.ModuleType:
    """The rewritten handler module, loaded with `boto3.client` answering with `fake`."""
    import boto3

    monkeypatch.setattr(boto3, "client", lambda *args, **kwargs: fake)
    monkeypatch.setattr("time.sleep", lambda seconds: None)
    for key in [k for k in os.environ if k.endswith("_STATE_MACHINE_ARN")]:
        monkeypatch.delenv(key)
    source = path.read_text()
    variable = source.split('os.environ["', 1)[1].split('"', 1)[0]
    monkeypatch.setenv(variable, "arn:aws:states:us-east-1:123456789012:stateMachine:M")
    module = types.ModuleType("rewritten_handler")
    exec(compile(source, str(path), "exec"), module.__dict__)
    return module


def test_scheduled_orchestrator_leaves_the_template(tmp_path: Path) -> None:
    app = _copy("scheduled_cleanup", tmp_path)
    code, _, err = _migrate(app, "--write")  # the SAM transform and cfn-lint accept it
    assert code == 0, err
    assert "Schedule event NightlyCleanup moves to the state machine" in err
    assert "the orchestrator function leaves the template" in err
    resources = _resources(app)
    assert "SessionCleanupFunction" not in resources
    events = _machine(resources)["Events"]
    assert events == {
        "NightlyCleanup": {
            "Type": "Schedule",
            "Properties": {
                "Schedule": "cron(15 3 * * ? *)",
                "Description": "Purge expired sessions",
                "Input": '{"olderThanDays": 30}',
            },
        }
    }
    text = (app / "template.yaml").read_text()
    assert "        # 03:15 UTC, after the nightly backup\n        NightlyCleanup:\n" in text
    # the code stays (a starter nothing deploys), so a second run has nothing to do
    assert "_untangle_start(event)" in (app / "orchestrator" / "app.py").read_text()
    assert _migrate(app, "--check")[0] == 0


def _plan_estimate(app: Path) -> dict[str, Any]:
    handler = "orchestrator.app.lambda_handler"
    result = CliRunner().invoke(
        main, ["plan", str(app), "--no-cache", "--format", "json", "--handler", handler]
    )
    assert result.exit_code == 0, result.output
    [workflow] = json.loads(result.stdout)["workflows"]
    estimate: dict[str, Any] = workflow["recommendation"]
    return estimate


def test_plan_bills_no_starter_when_the_orchestrator_leaves_the_template(
    tmp_path: Path,
) -> None:
    removed = _plan_estimate(_copy("scheduled_cleanup", tmp_path / "removed"))
    # near miss: another handler still invokes it, so the starter stays, and is billed
    app = _copy("scheduled_cleanup", tmp_path / "kept")
    (app / "admin").mkdir()
    (app / "admin" / "app.py").write_text(
        "import boto3\n\nclient = boto3.client('lambda')\n\n\n"
        "def lambda_handler(event, context):\n"
        "    client.invoke(FunctionName='session-cleanup', InvocationType='Event')\n"
    )
    kept = _plan_estimate(app)
    assert any("no starter Lambda" in n for n in removed["notes"])
    assert not any("no starter Lambda" in n for n in kept["notes"])
    # 100,000 starts of the 256 MB starter, 50 ms of its own (+ the 400 ms run it waits for,
    # as Express): what the kept one costs more
    standard_starter = 100_000 * (0.2e-6 + 0.05 * 0.25 * 0.0000166667)
    express_starter = 100_000 * (0.2e-6 + 0.45 * 0.25 * 0.0000166667)
    difference = kept["after_standard_monthly_usd"] - removed["after_standard_monthly_usd"]
    assert difference == pytest.approx(standard_starter, abs=1e-4)
    difference = kept["after_express_monthly_usd"] - removed["after_express_monthly_usd"]
    assert difference == pytest.approx(express_starter, abs=1e-4)


@pytest.mark.parametrize(
    ("output", "moves"),
    [
        pytest.param("SessionCleanupFunctionRole.Arn", True, id="role-output"),
        pytest.param("SessionCleanupFunction.Arn", False, id="near-miss-function-output"),
    ],
)
def test_schedule_moves_past_an_output_of_the_role_only(
    tmp_path: Path, output: str, moves: bool
) -> None:
    app = _copy("scheduled_cleanup", tmp_path)
    template = app / "template.yaml"
    template.write_text(
        template.read_text() + f"\nOutputs:\n  Shown:\n    Value: !GetAtt {output}\n"
    )
    code, _, err = _migrate(app)
    assert code == 0, err
    moved = "Schedule event NightlyCleanup moves to the state machine" in err
    assert moved == moves, err
    # either way the function stays, so the output still resolves
    assert "the orchestrator stays as a starter for template Outputs.Shown" in err


INLINE_EVENTS = {
    "one-event": (
        "      Events: {NightlyCleanup: {Type: Schedule, "
        'Properties: {Schedule: "cron(15 3 * * ? *)"}}}  # nightly\n'
    ),
    "two-events-over-lines": (
        "      Events: {  # both triggers\n"
        '        NightlyCleanup: {Type: Schedule, Properties: {Schedule: "cron(15 3 * * ? *)"}},\n'
        "        Retries: {Type: SQS, Properties: {Queue: !GetAtt RetryQueue.Arn, BatchSize: 5}}\n"
        "      }\n"
    ),
}


@pytest.mark.parametrize("events", [pytest.param(k, id=k) for k in INLINE_EVENTS])
def test_inline_events_are_moved_one_by_one(tmp_path: Path, events: str) -> None:
    """`Events: {…}` written inline: plan said the schedule moves, and migrate does it (it
    refused the workflow before): the events are written as a block first."""
    app = _copy("scheduled_cleanup", tmp_path)
    template = app / "template.yaml"
    text = template.read_text()
    start = text.index("      Events:\n")
    end = text.index("\n\n  ListExpiredSessionsFunction")
    text = text[:start] + INLINE_EVENTS[events] + text[end + 1 :]
    text = text.replace(
        "\nResources:\n", "\nResources:\n  RetryQueue:\n    Type: AWS::SQS::Queue\n\n"
    )
    template.write_text(text)
    code, _, err = _migrate(app, "--write")  # the SAM transform and cfn-lint accept it
    assert code == 0, err
    assert "Schedule event NightlyCleanup moves to the state machine" in err
    resources = _resources(app)
    machine_events = _machine(resources)["Events"]
    assert machine_events["NightlyCleanup"]["Properties"] == {"Schedule": "cron(15 3 * * ? *)"}
    if events == "one-event":
        assert "SessionCleanupFunction" not in resources
    else:  # the queue's event stays on the starter, in the block the inline events became
        kept = resources["SessionCleanupFunction"]["Properties"]["Events"]
        assert kept == {
            "Retries": {
                "Type": "SQS",
                "Properties": {"Queue": {"Fn::GetAtt": ["RetryQueue", "Arn"]}, "BatchSize": 5},
            }
        }
        assert "      # both triggers\n      Events:\n        Retries:\n" in template.read_text()
    assert _migrate(app, "--check")[0] == 0


def test_near_miss_schedule_whose_answer_another_handler_reads(tmp_path: Path) -> None:
    app = _copy("scheduled_cleanup", tmp_path)
    (app / "admin").mkdir()
    (app / "admin" / "app.py").write_text(
        "import json\n\nimport boto3\n\nclient = boto3.client('lambda')\n\n\n"
        "def lambda_handler(event, context):\n"
        "    response = client.invoke(FunctionName='session-cleanup', Payload=b'{}')\n"
        "    return json.loads(response['Payload'].read())\n"
    )
    code, _, err = _migrate(app, "--handler", "orchestrator.app.lambda_handler")
    assert code == 0, err
    assert "Schedule event NightlyCleanup stays on the starter: admin/app.py:9 invokes it" in err
    assert "-      Events:" not in _migrate(app, "--handler", "orchestrator.app.lambda_handler")[1]


def test_near_miss_schedule_also_invoked_fire_and_forget(tmp_path: Path) -> None:
    app = _copy("scheduled_cleanup", tmp_path)
    (app / "admin").mkdir()
    (app / "admin" / "app.py").write_text(
        "import boto3\n\nclient = boto3.client('lambda')\n\n\n"
        "def lambda_handler(event, context):\n"
        "    client.invoke(FunctionName='session-cleanup', InvocationType='Event')\n"
    )
    code, _, err = _migrate(app, "--write", "--handler", "orchestrator.app.lambda_handler")
    assert code == 0, err
    assert "Schedule event NightlyCleanup moves to the state machine" in err
    assert "the orchestrator stays as a starter for admin/app.py:7 (invokes it)" in err
    resources = _resources(app)
    assert "Events" not in resources["SessionCleanupFunction"]["Properties"]
    assert "NightlyCleanup" in _machine(resources)["Events"]


def test_api_orchestrator_answers_with_the_output(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    app = _copy("api_quote", tmp_path)
    code, _, err = _migrate(app, "--write")
    assert code == 0, err
    assert "HttpApi event CreateQuote stays on the starter" in err
    resources = _resources(app)
    assert resources["QuoteApiFunction"]["Properties"]["Events"]["CreateQuote"]["Type"] == "HttpApi"
    assert _machine(resources)["Type"] == "EXPRESS"
    response = {"statusCode": 200, "body": '{"subtotal": 500, "tax": 95}'}
    fake = _FakeStepFunctions(["SUCCEEDED"], response)
    starter = _starter(app / "orchestrator" / "app.py", fake, monkeypatch)
    assert starter.lambda_handler({"body": "{}"}, None) == response
    assert fake.calls == ["start_sync_execution"]


def test_sqs_orchestrator_raises_when_the_execution_fails(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    app = _copy("sqs_fulfilment", tmp_path)
    code, _, err = _migrate(app, "--write")
    assert code == 0, err
    assert "SQS event OrderMessages stays on the starter, which raises" in err
    assert "OrderMessages" in _resources(app)["FulfilmentFunction"]["Properties"]["Events"]
    fake = _FakeStepFunctions(["FAILED"], None)
    starter = _starter(app / "orchestrator" / "app.py", fake, monkeypatch)
    with pytest.raises(RuntimeError, match=r"States\.TaskFailed"):
        starter.lambda_handler({"Records": []}, None)


def test_s3_orchestrator_reading_records_keeps_its_starter(tmp_path: Path) -> None:
    app = _copy("s3_ingest", tmp_path)
    code, _, err = _migrate(app, "--write")
    assert code == 0, err
    assert "S3 event InvoiceUploaded stays on the starter: the handler reads its event" in err
    resources = _resources(app)
    assert resources["IngestFunction"]["Properties"]["Events"]["InvoiceUploaded"]["Type"] == "S3"
    assert "Events" not in _machine(resources)


S3_INDEXER = """\
import json

import boto3

lambda_client = boto3.client("lambda")


def lambda_handler(event, context):
    # any new report rebuilds the whole index: which file arrived does not matter
    built = lambda_client.invoke(
        FunctionName="rebuild-index", Payload=json.dumps({"scope": "daily"})
    )
    lambda_client.invoke(FunctionName="publish-index", Payload=built["Payload"].read())
"""


S3_FORWARDER = S3_INDEXER.replace('json.dumps({"scope": "daily"})', "json.dumps(event)")

S3_TEMPLATE = """\
AWSTemplateFormatVersion: "2010-09-09"
Transform: AWS::Serverless-2016-10-31
Resources:
  Uploads:
    Type: AWS::S3::Bucket
  Forwarder:
    Type: AWS::Serverless::Function
    Properties:
      FunctionName: upload-forwarder
      CodeUri: src/
      Handler: app.lambda_handler
      Runtime: python3.12
      Events:
        Uploaded:
          Type: S3
          Properties:
            Bucket: !Ref Uploads
            Events: s3:ObjectCreated:*
            Filter:
              S3Key:
                Rules:
                  - Name: prefix
                    Value: raw/
                  - Name: suffix
                    Value: .csv
"""


def test_s3_orchestrator_that_reads_no_event_moves_through_eventbridge(tmp_path: Path) -> None:
    (tmp_path / "src").mkdir()
    (tmp_path / "src" / "app.py").write_text(S3_INDEXER)
    (tmp_path / "template.yaml").write_text(S3_TEMPLATE)
    code, _, err = _migrate(tmp_path, "--write")  # the SAM transform and cfn-lint accept it
    assert code == 0, err
    assert "S3 event Uploaded moves to the state machine" in err
    resources = _resources(tmp_path)
    assert "Forwarder" not in resources
    assert resources["Uploads"]["Properties"] == {
        "NotificationConfiguration": {"EventBridgeConfiguration": {"EventBridgeEnabled": True}}
    }
    assert _machine(resources)["Events"] == {
        "Uploaded": {
            "Type": "EventBridgeRule",
            "Properties": {
                "Pattern": {
                    "source": ["aws.s3"],
                    "detail-type": ["Object Created"],
                    "detail": {
                        "bucket": {"name": [{"Ref": "Uploads"}]},
                        "object": {"key": [{"wildcard": "raw/*.csv"}]},
                    },
                }
            },
        }
    }


def test_near_miss_s3_orchestrator_forwarding_its_event_keeps_the_starter(tmp_path: Path) -> None:
    (tmp_path / "src").mkdir()
    (tmp_path / "src" / "app.py").write_text(S3_FORWARDER)
    (tmp_path / "template.yaml").write_text(S3_TEMPLATE)
    code, _, err = _migrate(tmp_path, "--write")
    assert code == 0, err
    assert "S3 event Uploaded stays on the starter: the handler reads its event" in err
    resources = _resources(tmp_path)
    assert resources["Forwarder"]["Properties"]["Events"]["Uploaded"]["Type"] == "S3"
    assert "Properties" not in resources["Uploads"]


LONG_API_HANDLER = """\
import json
import time

import boto3

lambda_client = boto3.client("lambda")


def lambda_handler(event, context):
    lambda_client.invoke(FunctionName="start-export", Payload=json.dumps(event))
    time.sleep(600)
    done = lambda_client.invoke(FunctionName="finish-export", Payload=json.dumps(event))
    return json.loads(done["Payload"].read())
"""

LONG_API_TEMPLATE = """\
AWSTemplateFormatVersion: "2010-09-09"
Transform: AWS::Serverless-2016-10-31
Resources:
  ExportFunction:
    Type: AWS::Serverless::Function
    Properties:
      CodeUri: src/
      Handler: app.lambda_handler
      Runtime: python3.12
      Timeout: 900
      Events:
        Export:
          Type: Api
          Properties:
            Path: /exports
            Method: post
"""


def test_api_on_a_standard_machine_waits_for_the_end(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "src").mkdir()
    (tmp_path / "src" / "app.py").write_text(LONG_API_HANDLER)
    (tmp_path / "template.yaml").write_text(LONG_API_TEMPLATE)
    code, _, err = _migrate(tmp_path, "--write")
    assert code == 0, err
    assert "the starter starts the machine and waits for its end" in err
    resources = _resources(tmp_path)
    assert _machine(resources)["Type"] == "STANDARD"
    statements = resources["ExportFunction"]["Properties"]["Policies"][0]["Statement"]
    assert any(s["Action"] == "states:DescribeExecution" for s in statements)
    fake = _FakeStepFunctions(["RUNNING", "RUNNING", "SUCCEEDED"], {"exportId": "e-1"})
    starter = _starter(tmp_path / "src" / "app.py", fake, monkeypatch)
    assert starter.lambda_handler({}, None) == {"exportId": "e-1"}
    assert fake.calls == ["start_execution", *["describe_execution"] * 3]
    failing = _FakeStepFunctions(["RUNNING", "FAILED"], None)
    starter = _starter(tmp_path / "src" / "app.py", failing, monkeypatch)
    with pytest.raises(RuntimeError, match="boom"):
        starter.lambda_handler({}, None)


def test_plan_bills_a_starter_that_waits_for_a_standard_machine(tmp_path: Path) -> None:
    """An API waits for the answer of a 10-minute workflow: Standard, and the starter waits for
    each execution, billed for all of it. Near miss: a schedule reads no answer, the starter
    returns at once."""
    costs = {}
    for event in ("Api", "Schedule"):
        app = tmp_path / event
        (app / "src").mkdir(parents=True)
        (app / "src" / "app.py").write_text(LONG_API_HANDLER)
        template = LONG_API_TEMPLATE
        if event == "Schedule":
            template = template.split("        Export:")[0] + (
                "        Nightly:\n          Type: Schedule\n"
                "          Properties:\n            Schedule: rate(1 day)\n"
            )
        (app / "template.yaml").write_text(template)
        result = CliRunner().invoke(main, ["plan", str(app), "--no-cache", "--format", "json"])
        assert result.exit_code == 0, result.output
        [workflow] = json.loads(result.stdout)["workflows"]
        costs[event] = workflow["recommendation"]
    assert costs["Api"]["type"] == costs["Schedule"]["type"] == "Standard"
    assert any("the starter waits" in n for n in costs["Api"]["notes"])
    assert not any("the starter waits" in n for n in costs["Schedule"]["notes"])
    # the schedule moves to the machine, so no starter at all; the API's starter is 100,000
    # requests of 50 ms of its own plus the 600.4 s run (the sleep, two 200 ms calls), 128 MB
    waited = 100_000 * (0.2e-6 + 600.45 * 0.125 * 0.0000166667)
    difference = (
        costs["Api"]["after_standard_monthly_usd"] - costs["Schedule"]["after_standard_monthly_usd"]
    )
    assert difference == pytest.approx(waited, abs=0.01)


def test_plan_notes_each_choice() -> None:
    result = CliRunner().invoke(
        main, ["plan", str(APPS), "--no-cache", "--detail", "notes", "--format", "json"]
    )
    notes = {
        workflow["name"]: [
            n["message"] for n in workflow["notes"] if "event sources" in n["message"]
        ]
        for workflow in json.loads(result.stdout)["workflows"]
    }
    assert any(
        "HttpApi event CreateQuote stays on the starter" in n for n in notes["QuoteApiWorkflow"]
    )
    assert any("S3 event InvoiceUploaded stays" in n for n in notes["IngestWorkflow"])
    assert any("NightlyCleanup moves" in n for n in notes["SessionCleanupWorkflow"])
    assert any("SQS event OrderMessages stays" in n for n in notes["FulfilmentWorkflow"])


def test_a_schedule_beside_an_api_event_moves_alone(tmp_path: Path) -> None:
    app = _copy("api_quote", tmp_path)
    template = app / "template.yaml"
    template.write_text(
        template.read_text().replace(
            "            Method: post\n",
            "            Method: post\n"
            "        RefreshRates:\n"
            "          Type: Schedule\n"
            "          Properties:\n"
            "            Schedule: rate(1 hour)\n",
        )
    )
    code, _, err = _migrate(app, "--write")
    assert code == 0, err
    assert "Schedule event RefreshRates moves to the state machine" in err
    assert "HttpApi event CreateQuote stays on the starter" in err
    resources = _resources(app)
    assert list(resources["QuoteApiFunction"]["Properties"]["Events"]) == ["CreateQuote"]
    assert list(_machine(resources)["Events"]) == ["RefreshRates"]
