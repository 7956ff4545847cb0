"""`untangle plan` through its command line: formats, diagrams, estimates, --out, exit codes."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from tests.conftest import FIXTURES, ROOT
from untangle.cli import main

ORDER = str((FIXTURES / "article" / "order_chain" / "module_client").relative_to(ROOT))
REMINDER = str((FIXTURES / "article" / "reminder" / "module_client").relative_to(ROOT))
UNBOUNDED = str((FIXTURES / "realworld" / "retry_throttling_while_true.py").relative_to(ROOT))


def run(*args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(main, ["plan", "--no-cache", *args], catch_exceptions=False)
    return result.exit_code, result.stdout, result.stderr


def test_json_document(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(ROOT)
    code, out, _ = run(ORDER, "--format", "json")
    assert code == 0
    [workflow] = json.loads(out)["workflows"]
    assert set(workflow) >= {
        "name",
        "handler",
        "path",
        "status",
        "reasons",
        "asl",
        "recommendation",
    }
    assert workflow["status"] == "converted" and workflow["reasons"] == []
    assert workflow["asl"]["QueryLanguage"] == "JSONata"
    recommendation = workflow["recommendation"]
    assert recommendation["type"] in ("Standard", "Express")
    assert recommendation["assumptions"]


def test_text_shows_diagram_estimate_and_asl(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(ROOT)
    code, out, _ = run(ORDER, "--detail", "all")
    assert code == 0
    assert "ValidatePayment" in out and "→" in out
    assert "cost at 100,000 executions/month" in out
    assert '"StartAt": "ValidatePayment"' in out


def test_text_starts_with_one_line_per_workflow(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(ROOT)
    code, out, _ = run("fixtures/article/order_chain", "fixtures/realworld/sleep_in_helper")
    lines = out.splitlines()
    summary = lines[: lines.index("")]
    assert len(summary) == 4  # three idioms of order_chain, one refused
    converted = [line for line in summary if line.startswith("converted ")]
    refused = [line for line in summary if line.startswith("not converted ")]
    assert len(converted) == 3 and len(refused) == 1
    assert all(" states " in line and "/month" in line and " → " in line for line in converted)
    assert "1 reason" in refused[0]
    # the pricing assumptions once, after every workflow, not per workflow
    assert out.count("prices are assumptions") == 1
    assert out.index("pricing assumptions") > out.rindex("== ")
    # the ASL only on request
    assert '"StartAt"' not in out
    assert code == 1


@pytest.mark.parametrize(
    ("detail", "present", "absent"),
    [
        pytest.param("asl", ['"StartAt"'], ["cost at", "note:", "prices are"], id="asl"),
        pytest.param("cost", ["cost at", "prices are"], ['"StartAt"', "note:"], id="cost"),
        pytest.param("notes", ["note:"], ['"StartAt"', "cost at"], id="notes"),
        pytest.param("none", ["converted "], ['"StartAt"', "cost at", "note:", "== "], id="none"),
        pytest.param("notes,asl", ["note:", '"StartAt"'], ["cost at"], id="comma-separated"),
    ],
)
def test_detail_selects_what_follows_the_summary(
    monkeypatch: pytest.MonkeyPatch, detail: str, present: list[str], absent: list[str]
) -> None:
    monkeypatch.chdir(ROOT)
    code, out, _ = run(ORDER, "--detail", detail)
    assert code == 0
    assert all(p in out for p in present), out
    assert not any(a in out for a in absent), out


def test_unknown_detail_is_a_usage_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(ROOT)
    code, out, err = run(ORDER, "--detail", "everything")
    assert (code, out) == (2, "")
    assert err.startswith("untangle: error: --detail: unknown part 'everything'")


@pytest.mark.parametrize(
    ("flag", "marker"),
    [
        pytest.param("mermaid", "flowchart", id="mermaid"),
        pytest.param("dot", "digraph", id="dot"),
        pytest.param("text", "start", id="text"),
    ],
)
def test_diagram_kinds(monkeypatch: pytest.MonkeyPatch, flag: str, marker: str) -> None:
    monkeypatch.chdir(ROOT)
    code, out, _ = run(ORDER, "--diagram", flag)
    assert code == 0 and marker in out


def test_out_writes_definitions(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.chdir(ROOT)
    code, out, _ = run(ORDER, "--format", "json", "--out", str(tmp_path))
    assert code == 0
    [workflow] = json.loads(out)["workflows"]
    written = tmp_path / f"{workflow['name']}.asl.json"
    assert json.loads(written.read_text()) == workflow["asl"]


def test_jsonpath(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(ROOT)
    code, out, _ = run(REMINDER, "--format", "json", "--query-language", "jsonpath")
    assert code == 0
    [workflow] = json.loads(out)["workflows"]
    assert "QueryLanguage" not in workflow["asl"]
    waits = [s for s in workflow["asl"]["States"].values() if s["Type"] == "Wait"]
    assert waits == [{"Type": "Wait", "Seconds": 86400, "Next": "SendReminder"}]


def test_long_wait_recommends_standard(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(ROOT)
    _, out, _ = run(REMINDER, "--format", "json")
    [workflow] = json.loads(out)["workflows"]
    assert workflow["recommendation"]["type"] == "Standard"
    assert workflow["recommendation"]["before_possible"] is False


def test_estimate_inputs_change_the_estimate(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(ROOT)
    _, cheap, _ = run(ORDER, "--format", "json")
    _, dear, _ = run(
        ORDER, "--format", "json", "--executions", "5000000", "--duration", "validate-payment=900"
    )
    before = json.loads(cheap)["workflows"][0]["recommendation"]
    after = json.loads(dear)["workflows"][0]["recommendation"]
    assert after["after_standard_monthly_usd"] > before["after_standard_monthly_usd"]


def test_unconvertible_handler_is_refused_with_reasons(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(ROOT)
    code, out, _ = run(UNBOUNDED, "--format", "json")
    assert code == 1
    [workflow] = json.loads(out)["workflows"]
    assert workflow["status"] == "not_converted" and workflow["asl"] is None
    [reason] = workflow["reasons"]
    assert reason["path"].endswith("retry_throttling_while_true.py") and reason["line"] > 0
    assert "a sleep whose duration the workflow cannot compute" in reason["message"]


def test_handler_selection(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(ROOT)
    _, out, _ = run(
        str(FIXTURES.relative_to(ROOT) / "article" / "reminder"),
        "--format",
        "json",
        "--handler",
        "run",
    )
    handlers = [w["handler"] for w in json.loads(out)["workflows"]]
    assert handlers and all(h.endswith(".run") for h in handlers)


def test_bad_estimate_input_is_a_usage_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(ROOT)
    code, _, err = run(ORDER, "--duration", "validate-payment")
    assert code == 2 and "FUNCTION=NUMBER" in err


def test_markdown_report_for_a_pull_request(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(ROOT)
    code, out, _ = run(ORDER, "fixtures/realworld/sleep_in_helper", "--format", "markdown")
    assert code == 1
    table = [line for line in out.splitlines() if line.startswith("| `")]
    assert len(table) == 2 and all(line.count("|") == 7 for line in table)
    assert out.count("```mermaid\nflowchart TD\n") == 1  # the converted one only
    assert "Not converted:" in out and "`fixtures/realworld/sleep_in_helper/" in out
    assert out.count("cost at 100,000 executions/month") == 1
    assert out.count("<summary>Pricing assumptions</summary>") == 1
    # every fenced block is closed
    assert out.count("```") % 2 == 0


def test_a_duration_for_a_function_no_workflow_calls_is_a_usage_error(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.chdir(ROOT)
    code, out, err = run(ORDER, "--duration", "no-such-function=900")
    assert (code, out) == (2, "")
    assert "no workflow here calls a function or has a state named 'no-such-function'" in err
    assert "validate-payment" in err or "ValidatePayment" in err


@pytest.mark.parametrize(
    ("kind", "suffix", "marker"),
    [("dot", "dot", "digraph"), ("mermaid", "mmd", "flowchart TD"), ("text", "txt", "start")],
)
def test_diagram_out_writes_one_file_per_workflow(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, kind: str, suffix: str, marker: str
) -> None:
    monkeypatch.chdir(ROOT)
    code, _, err = run(
        "fixtures/article/order_chain", "--diagram", kind, "--diagram-out", str(tmp_path)
    )
    assert code == 0
    written = sorted(tmp_path.glob(f"*.{suffix}"))
    assert len(written) == 3 and all(p.read_text().startswith(marker) for p in written)
    assert err.count("wrote ") == 3


# A handler whose payload holds PAYLOAD's entries as constants (and the event's id).
_PAYLOAD_HANDLER = """\
import json
import boto3

lam = boto3.client("lambda")


def lambda_handler(event, context):
    payload = {PAYLOAD, "id": event["id"]}
    answer = lam.invoke(FunctionName="validate", Payload=json.dumps(payload))
    return json.loads(answer["Payload"].read())
"""


@pytest.mark.parametrize(
    ("entry", "language", "refusal"),
    [
        # in JSONPath a key ending in `.$` takes a path: a constant there is no valid definition
        pytest.param(
            '"total.$": "not a path"',
            "jsonpath",
            "asl-validator rejects the generated definition (a bug of untangle's: please report "
            "it with this handler): SCHEMA_VALIDATION_FAILED at "
            "/States/Validate/Parameters/Payload/total.$",
            id="asl-validator-rejects",
        ),
        pytest.param('"total.$": "not a path"', "jsonata", None, id="dollar-key-in-jsonata"),
        pytest.param('"total": "not a path"', "jsonpath", None, id="plain-key-in-jsonpath"),
        pytest.param(
            f'"blob": "{"x" * 1_100_000}"',
            "jsonata",
            "the definition is 1,100,803 bytes as deployed, over Step Functions' limit of "
            "1,048,576 bytes (1 MiB)",
            id="definition-over-1-mib",
        ),
        pytest.param(f'"blob": "{"x" * 1_040_000}"', "jsonata", None, id="definition-under-1-mib"),
    ],
)
def test_a_definition_step_functions_would_refuse_is_not_converted(
    tmp_path: Path, entry: str, language: str, refusal: str | None
) -> None:
    (tmp_path / "app.py").write_text(_PAYLOAD_HANDLER.replace("PAYLOAD", entry))
    code, out, err = run(str(tmp_path), "--format", "json", "--query-language", language)
    [workflow] = json.loads(out)["workflows"]
    if refusal is None:
        assert (code, workflow["status"]) == (0, "converted"), workflow["reasons"]
        return
    assert (code, workflow["status"], workflow["asl"]) == (1, "not_converted", None)
    [reason] = workflow["reasons"]
    assert reason["message"].startswith(refusal), reason
    assert reason["line"] == 7  # the handler's def
    assert "0 of 1 workflow(s) converted" in err


def test_plan_says_when_asl_validator_could_not_check(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Without asl-validator, plan converts what it can and names the check it skipped."""
    monkeypatch.setenv("UNTANGLE_ASL_VALIDATOR_DIR", str(tmp_path / "no-node-modules"))
    (tmp_path / "app.py").write_text(_PAYLOAD_HANDLER.replace("PAYLOAD", '"total.$": "x"'))
    code, out, err = run(str(tmp_path), "--format", "json", "--query-language", "jsonpath")
    assert code == 0 and json.loads(out)["workflows"][0]["status"] == "converted"
    assert err.startswith(
        "untangle: definitions not checked with asl-validator: UNTANGLE_ASL_VALIDATOR_DIR="
    )
    # with it, the same handler is refused (the near miss)
    monkeypatch.delenv("UNTANGLE_ASL_VALIDATOR_DIR")
    code, out, err = run(str(tmp_path), "--format", "json", "--query-language", "jsonpath")
    assert code == 1 and "not checked" not in err


# --- MemorySize and Timeout from the template ------------------------------------------------

_TEMPLATE = """\
AWSTemplateFormatVersion: "2010-09-09"
Transform: AWS::Serverless-2016-10-31
{globals}
Resources:
  Fn:
    Type: {kind}
    Properties:
      Handler: app.handler
      Runtime: python3.12
{own}
"""


@pytest.mark.parametrize(
    ("kind", "globals_", "own", "expected"),
    [
        pytest.param("AWS::Serverless::Function", "", "", (None, None), id="none-given"),
        pytest.param(
            "AWS::Serverless::Function",
            "",
            "      MemorySize: 512\n      Timeout: 30",
            (512, 30.0),
            id="its-own",
        ),
        pytest.param(
            "AWS::Serverless::Function",
            "Globals:\n  Function:\n    MemorySize: 256\n    Timeout: 20",
            "",
            (256, 20.0),
            id="from-globals",
        ),
        pytest.param(
            "AWS::Serverless::Function",
            "Globals:\n  Function:\n    MemorySize: 256\n    Timeout: 20",
            "      MemorySize: 1024",
            (1024, 20.0),
            id="its-own-over-globals",
        ),
        pytest.param(
            "AWS::Lambda::Function",
            "Globals:\n  Function:\n    MemorySize: 256\n    Timeout: 20",
            "",
            (None, None),
            id="near-miss-globals-are-sam-only",
        ),
        pytest.param(
            "AWS::Serverless::Function",
            "",
            "      MemorySize: !Ref Memory\n      Timeout: '45'",
            (None, 45.0),
            id="near-miss-a-parameter-is-not-known",
        ),
    ],
)
def test_template_memory_and_timeout(
    tmp_path: Path, kind: str, globals_: str, own: str, expected: tuple[Any, Any]
) -> None:
    from untangle.templates import read_template

    path = tmp_path / "template.yaml"
    path.write_text(_TEMPLATE.format(kind=kind, globals=globals_, own=own))
    result = read_template(str(path))
    assert isinstance(result, list)
    [declared] = result
    assert (declared.memory_mb, declared.timeout_s) == expected


def _order_copy(tmp_path: Path, old: str, new: str) -> Path:
    import shutil

    app = tmp_path / "app"
    shutil.copytree(ROOT / ORDER, app)
    template = app / "template.yaml"
    text = template.read_text()
    assert old in text
    template.write_text(text.replace(old, new, 1))
    return app


def test_plan_bills_the_memory_the_template_gives(tmp_path: Path) -> None:
    plain = _order_copy(tmp_path / "a", "MemorySize: 128", "MemorySize: 128")
    larger = _order_copy(tmp_path / "b", "MemorySize: 128", "MemorySize: 1024")
    _, out_plain, _ = run(str(plain), "--format", "json")
    _, out_larger, _ = run(str(larger), "--format", "json")
    small = json.loads(out_plain)["workflows"][0]["recommendation"]
    large = json.loads(out_larger)["workflows"][0]["recommendation"]
    # every function is 8 times larger: the duration part of each bill 8 times
    assert large["before_monthly_usd"] > 4 * small["before_monthly_usd"]
    # near miss: --memory for one function wins over the template
    _, out_given, _ = run(str(larger), "--format", "json", "--memory", "validate-payment=128")
    given = json.loads(out_given)["workflows"][0]["recommendation"]
    assert small["before_monthly_usd"] < given["before_monthly_usd"] < large["before_monthly_usd"]


def test_a_duration_beyond_the_functions_timeout_is_noted(tmp_path: Path) -> None:
    app = _order_copy(tmp_path, "MemorySize: 128", "MemorySize: 128")
    _, out, _ = run(str(app), "--detail", "cost", "--duration", "validate-payment=20000")
    assert "ValidatePayment is assumed to take 20 s, more than its Timeout of 10 s" in out
    _, out, _ = run(str(app), "--detail", "cost", "--duration", "validate-payment=9000")
    assert "more than its Timeout" not in out


def test_the_handlers_timeout_bounds_the_orchestrator(tmp_path: Path) -> None:
    app = _order_copy(tmp_path, "Timeout: 60", "Timeout: 1")
    _, out, _ = run(str(app), "--detail", "cost")
    assert "could not even run" not in out  # 1 s of calls: just within
    _, out, _ = run(str(app), "--detail", "cost", "--duration", "validate-payment=900")
    assert "could not even run: it would run 1.7 s, and its Timeout is 1 s" in out
    assert "the starter waits 1.55 s for the execution, more than the handler's Timeout" in out


@pytest.mark.parametrize(
    ("option", "value", "message"),
    [
        pytest.param("--retries", "Nope=1", "no workflow here has a state named 'Nope'", id="r"),
        pytest.param("--rounds", "Nope=1", "no workflow here has a state named 'Nope'", id="l"),
        pytest.param("--retries", "ValidatePayment=x", "STATE=N", id="retries-not-a-number"),
        pytest.param("--rounds", "CheckValid=1.5", "STATE=N", id="rounds-not-whole"),
    ],
)
def test_retries_and_rounds_name_states(option: str, value: str, message: str) -> None:
    code, out, err = run(str(ROOT / ORDER), option, value)
    assert (code, out) == (2, "") and message in err


def test_retries_add_transitions(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(ROOT)
    _, plain, _ = run(ORDER, "--format", "json")
    _, retried, _ = run(ORDER, "--format", "json", "--retries", "ValidatePayment=2")
    count = json.loads(plain)["workflows"][0]["recommendation"]["transitions_per_execution"]
    again = json.loads(retried)["workflows"][0]["recommendation"]
    assert again["transitions_per_execution"] == count + 2
    assert again["transitions_counted"].startswith(f"{count + 2} = ")
    assert "(ValidatePayment: 2 retries)" in again["transitions_counted"]


# --- names that do not depend on what else is planned ----------------------------------------


@pytest.mark.parametrize(
    "paths",
    [
        pytest.param((ORDER,), id="the-app-alone"),
        pytest.param((str(Path(ORDER).parent),), id="beside-two-apps-of-the-same-name"),
        pytest.param((str(Path(ORDER).parent), REMINDER), id="beside-other-apps"),
    ],
)
def test_a_workflows_name_is_the_same_whatever_else_is_planned(
    monkeypatch: pytest.MonkeyPatch, paths: tuple[str, ...]
) -> None:
    monkeypatch.chdir(ROOT)
    _, out, _ = run(*paths, "--format", "json")
    names = {w["path"]: w["name"] for w in json.loads(out)["workflows"]}
    assert names[f"{ORDER}/orchestrator/app.py"] == "OrderProcessorWorkflow"


def test_workflows_sharing_a_name_get_files_and_summary_lines_of_their_own(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.chdir(ROOT)
    code, out, _ = run(str(Path(ORDER).parent), "--out", str(tmp_path), "--detail", "none")
    assert code == 0
    written = sorted(p.name for p in tmp_path.iterdir())
    assert written == [
        "OrderProcessorWorkflow-2.asl.json",
        "OrderProcessorWorkflow-3.asl.json",
        "OrderProcessorWorkflow.asl.json",
    ]
    summary = [line for line in out.splitlines() if line.startswith("converted")]
    assert len(summary) == 3
    assert f"OrderProcessorWorkflow ({ORDER}/orchestrator/app.py)" in out
    # near miss: a name no other workflow has stays as it is
    _, alone, _ = run(ORDER, "--detail", "none")
    assert alone.startswith("converted  OrderProcessorWorkflow  ")
