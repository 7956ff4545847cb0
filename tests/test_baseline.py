"""Baselines (CI fails only on new findings) and suppression comments."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner, Result

from untangle.cli import main

APP = """\
import boto3

client = boto3.client("lambda")


def handler(event, context):
    client.invoke(FunctionName="a")
    client.invoke(FunctionName="b", InvocationType="Event")
"""


def _runner() -> CliRunner:
    try:  # click < 8.2 mixes stderr into stdout unless told otherwise
        return CliRunner(mix_stderr=False)  # type: ignore[call-arg]
    except TypeError:  # click >= 8.2: result.stdout and result.stderr are always apart
        return CliRunner()


def scan(*args: str) -> Result:
    result = _runner().invoke(main, ["scan", "--no-cache", *args])
    assert result.exception is None or isinstance(result.exception, SystemExit), repr(
        result.exception
    )
    assert "Traceback" not in result.stdout + result.stderr
    return result


def findings(result: Result) -> list[tuple[str, int, str | None]]:
    document: dict[str, Any] = json.loads(result.stdout)
    return [(f["rule"], f["line"], f["target"]) for f in document["findings"]]


@pytest.fixture
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "src").mkdir()
    (tmp_path / "src" / "app.py").write_text(APP)
    return tmp_path


def write_baseline(*paths: str) -> Result:
    result = scan("--write-baseline", "baseline.json", *(paths or ("src",)))
    assert result.exit_code == 0, result.stderr
    return result


def check(*paths: str) -> Result:
    return scan("--format", "json", "--baseline", "baseline.json", *(paths or ("src",)))


def edit(project: Path, old: str, new: str) -> None:
    app = project / "src" / "app.py"
    text = app.read_text()
    assert old in text
    app.write_text(text.replace(old, new))


# --- baselines -----------------------------------------------------------------------------------


def test_write_then_check_exits_0(project: Path) -> None:
    assert scan("src").exit_code == 1
    written = write_baseline()
    assert written.stderr == "wrote 2 finding(s) to baseline.json\n"
    assert written.stdout == ""
    document = json.loads((project / "baseline.json").read_text())
    assert document["version"] == 1
    assert [(e["rule"], e["line"]) for e in document["findings"]] == [
        ("UNT001", 7),
        ("UNT002", 8),
    ]
    assert all(isinstance(e["fingerprint"], str) and e["fingerprint"] for e in document["findings"])
    result = check()
    assert result.exit_code == 0
    assert findings(result) == []
    assert "2 finding(s) already in the baseline" in result.stderr


def test_write_baseline_with_no_findings(project: Path) -> None:
    (project / "src" / "app.py").write_text("def handler(event, context):\n    return 1\n")
    assert write_baseline().stderr == "wrote 0 finding(s) to baseline.json\n"
    assert check().exit_code == 0


def test_write_baseline_to_an_unwritable_place(project: Path) -> None:
    result = scan("--write-baseline", os.path.join("no", "such", "dir.json"), "src")
    assert result.exit_code == 2
    assert "cannot write baseline" in result.stderr


def test_new_invoke_is_the_only_one_reported(project: Path) -> None:
    write_baseline()
    edit(
        project,
        '    client.invoke(FunctionName="b", InvocationType="Event")\n',
        '    client.invoke(FunctionName="b", InvocationType="Event")\n'
        '    client.invoke(FunctionName="new")\n',
    )
    result = check()
    assert result.exit_code == 1
    assert findings(result) == [("UNT001", 9, "new")]
    assert "2 finding(s) already in the baseline" in result.stderr


def test_changed_invoke_is_new(project: Path) -> None:
    write_baseline()
    edit(project, 'FunctionName="a"', 'FunctionName="renamed"')
    result = check()
    assert result.exit_code == 1
    assert findings(result) == [("UNT001", 7, "renamed")]


def test_fixed_invoke_is_fine(project: Path) -> None:
    write_baseline()
    edit(project, '    client.invoke(FunctionName="a")\n', "")
    assert check().exit_code == 0


@pytest.mark.parametrize(
    ("where", "insert"),
    [
        pytest.param("top", "# a comment\n" * 10, id="10-comment-lines-at-the-top"),
        pytest.param("top", "import os\nimport sys\n" + "\n" * 8, id="imports-and-blanks"),
        pytest.param(
            "handler",
            "    x = 1\n" * 10,
            id="10-lines-inside-the-handler",
        ),
        pytest.param(
            "top",
            "".join(f"def helper_{i}():\n    return {i}\n\n\n" for i in range(10)),
            id="10-functions-above",
        ),
    ],
)
def test_shifted_lines_keep_the_baseline(project: Path, where: str, insert: str) -> None:
    write_baseline()
    app = project / "src" / "app.py"
    if where == "top":
        app.write_text(insert + APP)
    else:
        edit(project, "def handler(event, context):\n", "def handler(event, context):\n" + insert)
    unfiltered = scan("--format", "json", "src")
    assert [line for _, line, _ in findings(unfiltered)] != [7, 8]  # the lines did move
    result = check()
    assert result.exit_code == 0, result.stdout
    assert findings(result) == []


def test_reindented_line_keeps_the_baseline(project: Path) -> None:
    write_baseline()
    edit(
        project,
        '    client.invoke(FunctionName="a")\n',
        '    if event:\n        client.invoke(FunctionName="a")\n',
    )
    assert check().exit_code == 0


DUPLICATES = """\
import boto3

client = boto3.client("lambda")


def handler(event, context):
{calls}"""
CALL = '    client.invoke(FunctionName="same")\n'


@pytest.mark.parametrize(
    ("before", "after", "new"),
    [
        pytest.param(2, 3, 1, id="2-then-3"),
        pytest.param(1, 3, 2, id="1-then-3"),
        pytest.param(3, 3, 0, id="3-then-3"),
        pytest.param(3, 2, 0, id="3-then-2"),
        pytest.param(0, 2, 2, id="0-then-2"),
    ],
)
def test_identical_invokes_are_counted(project: Path, before: int, after: int, new: int) -> None:
    app = project / "src" / "app.py"
    app.write_text(DUPLICATES.format(calls=CALL * before or "    pass\n"))
    write_baseline()
    app.write_text("# moved down\n" + DUPLICATES.format(calls=CALL * after))
    result = check()
    assert len(findings(result)) == new
    assert result.exit_code == (1 if new else 0)
    assert f"{after - new} finding(s) already in the baseline" in result.stderr


def test_same_line_in_another_file_is_new(project: Path) -> None:
    write_baseline()
    (project / "src" / "copy.py").write_text(APP)
    result = check()
    assert result.exit_code == 1
    assert len(findings(result)) == 2


@pytest.mark.parametrize("spelling", ["./src", "absolute"])
def test_baseline_does_not_depend_on_how_the_path_is_spelled(project: Path, spelling: str) -> None:
    write_baseline("src")
    path = str(project / "src") if spelling == "absolute" else spelling
    result = check(path)
    assert findings(result) == []


# --- suppression comments ------------------------------------------------------------------------

SUPPRESSED = """\
import time

import boto3

client = boto3.client("lambda")


def handler(event, context):
{body}"""


def reported(project: Path, body: str, header: str = "") -> list[tuple[str, int, str | None]]:
    (project / "src" / "app.py").write_text(header + SUPPRESSED.format(body=body))
    return findings(scan("--format", "json", "src"))


@pytest.mark.parametrize(
    "body",
    [
        pytest.param(
            '    client.invoke(FunctionName="x")  # untangle: ignore[UNT001]\n', id="id-on-the-line"
        ),
        pytest.param(
            '    client.invoke(FunctionName="x")  # untangle: ignore[unt001]\n', id="lowercase-id"
        ),
        pytest.param(
            '    client.invoke(FunctionName="x")  # untangle: ignore[sync-invoke]\n', id="by-name"
        ),
        pytest.param('    client.invoke(FunctionName="x")  # untangle: ignore\n', id="bare"),
        pytest.param(
            '    client.invoke(FunctionName="x")  # untangle:ignore[UNT003, UNT001]\n',
            id="list-without-space",
        ),
        pytest.param(
            '    client.invoke(FunctionName="x")  # noqa: E501  # untangle: ignore[UNT001]\n',
            id="after-another-tool",
        ),
        pytest.param(
            "    client.invoke(\n"
            '        FunctionName="x",\n'
            '        Payload="{}",\n'
            "    )  # untangle: ignore[UNT001]\n",
            id="last-line-of-multi-line-call",
        ),
        pytest.param(
            '    client.invoke(  # untangle: ignore[UNT001]\n        FunctionName="x",\n    )\n',
            id="first-line-of-multi-line-call",
        ),
    ],
)
def test_suppression_silences(project: Path, body: str) -> None:
    assert reported(project, body) == []


@pytest.mark.parametrize(
    "body",
    [
        pytest.param(
            '    client.invoke(FunctionName="x")  # untangle: ignore[UNT003]\n',
            id="different-rule-id",
        ),
        pytest.param(
            '    client.invoke(FunctionName="x")  # untangle: ignore[async-invoke]\n',
            id="different-rule-name",
        ),
        pytest.param(
            '    # untangle: ignore[UNT001]\n    client.invoke(FunctionName="x")\n',
            id="comment-on-the-line-above",
        ),
        pytest.param(
            '    client.invoke(FunctionName="x")\n    # untangle: ignore[UNT001]\n',
            id="comment-on-the-line-below",
        ),
        pytest.param(
            '    client.invoke(FunctionName="x", Payload="# untangle: ignore")\n',
            id="inside-a-string-literal",
        ),
        pytest.param(
            '    """# untangle: ignore"""\n    client.invoke(FunctionName="x")\n',
            id="inside-a-docstring",
        ),
        pytest.param(
            '    client.invoke(FunctionName="x")  # untangle: ignored\n', id="ignored-is-not-ignore"
        ),
        pytest.param(
            '    client.invoke(FunctionName="x")  # untangle: ignore-file[UNT003]\n',
            id="file-level-for-another-rule",
        ),
    ],
)
def test_near_miss_does_not_silence(project: Path, body: str) -> None:
    assert [(rule, target) for rule, _, target in reported(project, body)] == [("UNT001", "x")]


BOTH = '    client.invoke(FunctionName="x")\n    time.sleep(5)\n'


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        pytest.param("", ["UNT001", "UNT003"], id="none"),
        pytest.param("# untangle: ignore-file[UNT003]\n", ["UNT001"], id="file-level-id"),
        pytest.param(
            "# untangle: ignore-file[sleep-in-handler]\n", ["UNT001"], id="file-level-name"
        ),
        pytest.param("# untangle: ignore-file[UNT001,UNT003]\n", [], id="file-level-two"),
        pytest.param("# untangle: ignore-file\n", [], id="file-level-bare"),
        pytest.param(
            '"""Module.\n\n# untangle: ignore-file\n"""\n',
            ["UNT001", "UNT003"],
            id="file-level-in-a-docstring",
        ),
    ],
)
def test_file_level_suppression(project: Path, header: str, expected: list[str]) -> None:
    assert sorted(rule for rule, _, _ in reported(project, BOTH, header)) == expected


def test_file_level_suppression_stays_in_its_file(project: Path) -> None:
    (project / "src" / "other.py").write_text("# untangle: ignore-file\n")
    assert [rule for rule, _, _ in reported(project, BOTH)] == ["UNT001", "UNT003"]


def test_suppressed_findings_stay_out_of_the_baseline(project: Path) -> None:
    reported(project, '    client.invoke(FunctionName="x")  # untangle: ignore\n')
    write_baseline()
    assert json.loads((project / "baseline.json").read_text())["findings"] == []
    edit(project, "  # untangle: ignore\n", "\n")
    assert check().exit_code == 1


# --- one finding per place --------------------------------------------------------------------

SHARED = {
    "shared/lambdas.py": (
        "import boto3\n_lam = boto3.client('lambda')\n"
        "def invoke_lambda(name):\n    return _lam.invoke(FunctionName=name)\n"
    ),
    "a/app.py": (
        "from shared.lambdas import invoke_lambda\n"
        "def lambda_handler(event, context):\n    return invoke_lambda('x')\n"
    ),
}
SHARED["b/app.py"] = SHARED["a/app.py"]
# written by the untangle of one finding per handler (commit 4d6e78a) for SHARED, scanned as `.`
LEGACY_FINGERPRINTS = ["609fdcf9c641f9464b9e", "1473e6bded1d4f929bb7"]


@pytest.fixture
def shared_helper(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.chdir(tmp_path)
    for name, text in SHARED.items():
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text(text)
    return tmp_path


def test_a_place_two_handlers_reach_is_one_baseline_entry(shared_helper: Path) -> None:
    assert scan("--write-baseline", "baseline.json", ".").exit_code == 0
    entries = json.loads((shared_helper / "baseline.json").read_text())["findings"]
    assert [(e["line"], e["handlers"]) for e in entries] == [
        (4, ["a.app.lambda_handler", "b.app.lambda_handler"])
    ]
    assert scan("--baseline", "baseline.json", ".").exit_code == 0


def test_a_baseline_of_one_finding_per_handler_still_holds(shared_helper: Path) -> None:
    legacy = {"version": 1, "findings": [{"fingerprint": f} for f in LEGACY_FINGERPRINTS]}
    (shared_helper / "baseline.json").write_text(json.dumps(legacy))
    assert scan("--baseline", "baseline.json", ".").exit_code == 0
    # a new invoke is still new
    (shared_helper / "a" / "app.py").write_text(
        SHARED["a/app.py"] + "def other(event, context):\n    return invoke_lambda('z')\n"
    )
    (shared_helper / "shared" / "lambdas.py").write_text(
        SHARED["shared/lambdas.py"]
        + "def again(name):\n    return _lam.invoke(FunctionName=name, Payload=b'{}')\n"
    )
    (shared_helper / "b" / "app.py").write_text(
        "from shared.lambdas import again\n"
        "def lambda_handler(event, context):\n    return again('y')\n"
    )
    result = scan("--format", "json", "--baseline", "baseline.json", ".")
    assert result.exit_code == 1
    assert [f["line"] for f in json.loads(result.stdout)["findings"]] == [6]
