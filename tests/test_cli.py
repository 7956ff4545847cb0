"""The command line: exit codes, output formats, rule selection, configuration, cache, TTY
behaviour."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner, Result

from untangle import __version__
from untangle.cli import main
from untangle.facts.model import SourceError
from untangle.findings import Finding
from untangle.report.formats import github
from untangle.rules import ALL_RULES, resolve_rule

INVOKE_AND_SLEEP = """\
import time

import boto3


def handler(event, context):
    boto3.client("lambda").invoke(FunctionName="worker")
    time.sleep(30)
"""
CLEAN = """\
def handler(event, context):
    return {"statusCode": 200}
"""
ANSI = "\x1b["


def _runner() -> CliRunner:
    try:  # click < 8.2 mixes stderr into stdout unless told otherwise
        return CliRunner(mix_stderr=False)  # type: ignore[call-arg]
    except TypeError:  # click >= 8.2: result.stdout and result.stderr are always apart
        return CliRunner()


def cli(*args: str, color: bool = False) -> Result:
    result = _runner().invoke(main, list(args), color=color)
    assert result.exception is None or isinstance(result.exception, SystemExit), repr(
        result.exception
    )
    assert "Traceback" not in result.stdout + result.stderr
    return result


def scan(*args: str, color: bool = False) -> Result:
    return cli("scan", "--no-cache", *args, color=color)


def scan_json(*args: str) -> dict[str, Any]:
    result = scan("--format", "json", *args)
    document: dict[str, Any] = json.loads(result.stdout)
    return document


def rules_reported(document: dict[str, Any]) -> list[str]:
    return sorted(f["rule"] for f in document["findings"])


def untangle_process(
    *args: str, cwd: Path, env: dict[str, str] | None = None, **kwargs: Any
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "untangle", *args],
        cwd=cwd,
        env={**os.environ, **(env or {})},
        capture_output=True,
        text=True,
        timeout=60,
        **kwargs,
    )


@pytest.fixture
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """tmp_path as the working directory, with one handler that invokes and sleeps."""
    monkeypatch.chdir(tmp_path)
    (tmp_path / "app.py").write_text(INVOKE_AND_SLEEP)
    return tmp_path


# --- exit codes ---------------------------------------------------------------------------------


def test_exit_0_when_clean(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "app.py").write_text(CLEAN)
    result = scan(".")
    assert result.exit_code == 0
    assert result.stdout == "0 findings in 1 files\n"


def test_exit_1_with_findings(project: Path) -> None:
    assert scan(".").exit_code == 1


def test_exit_zero_flag(project: Path) -> None:
    result = scan("--exit-zero", ".")
    assert result.exit_code == 0
    assert "UNT001" in result.stdout


BROKEN = [
    pytest.param(["--select", "UNT999"], None, "unknown rule 'UNT999'", id="unknown-rule-select"),
    pytest.param(
        ["--ignore", "no-such-rule"], None, "unknown rule 'no-such-rule'", id="unknown-ignore"
    ),
    pytest.param(["--format", "xml"], None, "Invalid value for '--format'", id="bad-format"),
    pytest.param([], "[tool.untangle\nselect = []\n", "invalid TOML", id="bad-toml"),
    pytest.param(
        [],
        "[tool.untangle]\ncolour = true\n",
        "unknown key(s) in [tool.untangle]: colour",
        id="unknown-key",
    ),
    pytest.param(
        [],
        '[tool.untangle]\nselect = "UNT001"\n',
        "select must be a list of strings",
        id="string-instead-of-list",
    ),
    pytest.param(
        [],
        "[tool.untangle]\nexclude = [1, 2]\n",
        "exclude must be a list of strings",
        id="list-of-ints",
    ),
    pytest.param(
        [],
        '[tool.untangle]\nmax-file-size = "10MB"\n',
        "max-file-size must be a positive",
        id="size-as-string",
    ),
    pytest.param(
        [],
        "[tool.untangle]\nmax-file-size = true\n",
        "max-file-size must be a positive",
        id="size-as-bool",
    ),
    pytest.param(
        [],
        "[tool.untangle]\nmax-file-size = 0\n",
        "max-file-size must be a positive",
        id="size-zero",
    ),
    pytest.param([], "[tool]\nuntangle = 3\n", "[tool.untangle] must be a table", id="not-a-table"),
    pytest.param(
        [],
        '[tool.untangle]\nselect = ["UNT042"]\n',
        "unknown rule 'UNT042'",
        id="unknown-rule-in-config",
    ),
    pytest.param(["--config", "nope.toml"], None, "nope.toml: cannot read", id="missing-config"),
    pytest.param(["--baseline", "nope.json"], None, "cannot read baseline", id="missing-baseline"),
    pytest.param(["--baseline", "."], None, "is a directory", id="baseline-is-a-directory"),
]


@pytest.mark.parametrize(("args", "pyproject", "message"), BROKEN)
def test_exit_2_for_usage_and_config_errors(
    project: Path, args: list[str], pyproject: str | None, message: str
) -> None:
    if pyproject is not None:
        (project / "pyproject.toml").write_text(pyproject)
    result = scan(*args, ".")
    assert result.exit_code == 2
    assert message in result.stderr
    assert result.stdout == ""


@pytest.mark.parametrize(
    ("content", "message"),
    [
        pytest.param(b"not json", "not a baseline file", id="not-json"),
        pytest.param(b'{"version": 99, "findings": []}', "not an untangle baseline", id="version"),
        pytest.param(b"[]", "not an untangle baseline", id="a-list"),
        pytest.param(b'{"version": 1, "findings": {}}', "`findings` must be a list", id="findings"),
        pytest.param(
            b"\xff\xfe{}",
            "",
            id="not-utf8",
        ),
    ],
)
def test_exit_2_for_a_bad_baseline(project: Path, content: bytes, message: str) -> None:
    (project / "baseline.json").write_bytes(content)
    result = scan("--baseline", "baseline.json", ".")
    assert result.exit_code == 2, result.stderr
    assert result.stderr.startswith("untangle: error: baseline.json")
    assert message in result.stderr


# --- output formats ------------------------------------------------------------------------------

FINDING_KEYS = {
    "rule",
    "path",
    "line",
    "column",
    "end_line",
    "end_column",
    "handler",
    "handlers",
    "target",
    "targets",
    "message",
    "fingerprint",
}


def test_json_shape(project: Path) -> None:
    (project / "broken.py").write_text("client.invoke(\n")
    document = scan_json(".")
    assert set(document) == {"findings", "errors", "files_scanned"}
    assert document["files_scanned"] == 2
    assert [set(f) for f in document["findings"]] == [FINDING_KEYS, FINDING_KEYS]
    first, second = document["findings"]
    assert first == {
        "rule": "UNT001",
        "path": os.path.join(".", "app.py"),
        "line": 7,
        "column": 5,
        "end_line": 7,
        "end_column": 5 + len('boto3.client("lambda").invoke(FunctionName="worker")'),
        "handler": "app.handler",
        "handlers": ["app.handler"],
        "target": "worker",
        "targets": {},
        "message": first["message"],
        "fingerprint": first["fingerprint"],
    }
    assert "worker" in first["message"]
    assert re.fullmatch(r"[0-9a-f]{16,64}", first["fingerprint"])
    assert (second["rule"], second["line"], second["column"]) == ("UNT003", 8, 5)
    assert second["target"] is None
    assert document["errors"] == [
        {
            "path": os.path.join(".", "broken.py"),
            "line": 1,
            "message": "syntax error: '(' was never closed",
        }
    ]


def test_json_is_sorted_by_path_then_line(project: Path) -> None:
    (project / "a_first.py").write_text(INVOKE_AND_SLEEP)
    document = scan_json(".")
    keys = [(f["path"], f["line"], f["column"]) for f in document["findings"]]
    assert keys == sorted(keys)
    assert len(keys) == 4


TEXT_LINE = re.compile(
    r"(?P<path>[^:\n]+):(?P<line>\d+):(?P<column>\d+): (?P<rule>UNT00[1-6]) (?P<message>.+)"
)


def test_text_format(project: Path) -> None:
    (project / "broken.py").write_text("client.invoke(\n")
    result = scan(".")
    lines = result.stdout.splitlines()
    matches = [TEXT_LINE.fullmatch(line) for line in lines[:2]]
    assert all(matches), lines
    assert [(m["path"], m["line"], m["column"], m["rule"]) for m in matches if m] == [
        (os.path.join(".", "app.py"), "7", "5", "UNT001"),
        (os.path.join(".", "app.py"), "8", "5", "UNT003"),
    ]
    assert matches[0] and matches[0]["message"].endswith("[handler app.handler]")
    assert (
        lines[2] == f"{os.path.join('.', 'broken.py')}:1: error: syntax error: '(' was never closed"
    )
    assert lines[3] == "2 findings in 2 files, 1 file(s) could not be scanned"
    assert len(lines) == 4
    assert ANSI not in result.stdout


def test_text_singular_summary(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "app.py").write_text(INVOKE_AND_SLEEP)
    assert scan("--select", "UNT001", ".").stdout.splitlines()[-1] == "1 finding in 1 files"


def test_json_summary_goes_to_stderr(project: Path) -> None:
    result = scan("--format", "json", ".")
    json.loads(result.stdout)  # nothing but the document on stdout
    assert result.stderr == "2 finding(s), 0 error(s) in 1 files\n"


def test_no_colour_when_not_a_tty(project: Path) -> None:
    assert ANSI not in scan(".").stdout
    assert ANSI not in scan("--no-color", ".", color=True).stdout


def test_colour_with_color_flag(project: Path) -> None:
    stdout = scan("--color", ".", color=True).stdout
    assert ANSI in stdout
    assert re.sub(r"\x1b\[[0-9;]*m", "", stdout) == scan(".").stdout


def test_color_flag_when_piped(project: Path) -> None:
    result = untangle_process("scan", "--no-cache", "--color", ".", cwd=project)
    assert ANSI in result.stdout


# --- on a terminal: colour and progress (a pseudo-terminal, in a real process) ---------------


def run_on_pty(args: list[str], cwd: Path, stream: str, no_color: bool = False) -> tuple[str, str]:
    """Run the CLI with `stream` ("stdout" or "stderr") on a pseudo-terminal and the other on a
    pipe; return (terminal text, piped text)."""
    pty = pytest.importorskip("pty")
    env = {k: v for k, v in os.environ.items() if k != "NO_COLOR"}
    if no_color:
        env["NO_COLOR"] = "1"
    primary, secondary = pty.openpty()
    other = {"stdout": "stderr", "stderr": "stdout"}[stream]
    process = subprocess.Popen(
        [sys.executable, "-m", "untangle", *args],
        cwd=cwd,
        env=env,
        **{stream: secondary, other: subprocess.PIPE},  # type: ignore[arg-type]
    )
    os.close(secondary)
    chunks = []
    while True:
        try:
            chunk = os.read(primary, 65536)
        except OSError:  # EIO: the child closed the terminal
            break
        if not chunk:
            break
        chunks.append(chunk)
    os.close(primary)
    piped = getattr(process, other).read()
    getattr(process, other).close()
    assert process.wait(timeout=60) in (0, 1)
    return b"".join(chunks).decode(), piped.decode()


@pytest.mark.parametrize(
    ("args", "no_color", "coloured"),
    [
        pytest.param([], False, True, id="default"),
        pytest.param([], True, False, id="NO_COLOR"),
        pytest.param(["--no-color"], False, False, id="no-color-flag"),
        pytest.param(["--color"], True, True, id="color-flag-beats-NO_COLOR"),
    ],
)
def test_colour_on_a_terminal(
    project: Path, args: list[str], no_color: bool, coloured: bool
) -> None:
    terminal, _ = run_on_pty(["scan", "--no-cache", *args, "."], project, "stdout", no_color)
    assert (ANSI in terminal) == coloured
    assert "UNT001" in terminal


def test_progress_only_on_a_terminal(project: Path) -> None:
    terminal, _ = run_on_pty(["scan", "--no-cache", "."], project, "stderr")
    assert "1/1 files" in terminal
    piped = untangle_process("scan", "--no-cache", ".", cwd=project)
    assert piped.returncode == 1
    assert piped.stderr == ""
    assert "UNT001" in piped.stdout


# --- GitHub workflow commands ------------------------------------------------------------------


def test_github_format(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    weird = tmp_path / "we,ird:dir%"
    weird.mkdir()
    (weird / "app.py").write_text(INVOKE_AND_SLEEP.replace('"worker"', '"50%_done"'))
    (tmp_path / "broken.py").write_text("client.invoke(\n")
    lines = scan("--format", "github", ".").stdout.splitlines()
    assert len(lines) == 3
    assert lines[0].startswith(
        "::warning file=./we%2Cird%3Adir%25/app.py,line=7,col=5,endLine=7,endColumn=59,"
        "title=UNT001 sync-invoke::"
    )
    assert "`50%25_done`" in lines[0]
    assert lines[1].startswith(
        "::warning file=./we%2Cird%3Adir%25/app.py,line=8,col=5,endLine=8,endColumn=19,"
        "title=UNT003 sleep-in-handler::"
    )
    assert lines[2] == "::error file=./broken.py,line=1::syntax error: '(' was never closed"


def test_github_escaping() -> None:
    finding = Finding(
        "UNT001", "a,b:c%d\ne.py", 3, 4, 3, 9, "h", "t", "50% done\r\nnext: a, b", "f"
    )
    error = SourceError("x:y,z.py", None, "bad\nbyte: 100%")
    assert github([finding], [error], 1).splitlines() == [
        "::warning file=a%2Cb%3Ac%25d%0Ae.py,line=3,col=4,endLine=3,endColumn=9,"
        "title=UNT001 sync-invoke::50%25 done%0D%0Anext: a, b",
        "::error file=x%3Ay%2Cz.py::bad%0Abyte: 100%25",
    ]
    assert github([], [], 0) == ""


# --- rules and explain -------------------------------------------------------------------------


def test_rules_lists_seven_ids() -> None:
    result = cli("rules")
    assert result.exit_code == 0
    lines = result.stdout.splitlines()
    assert [line.split()[0] for line in lines] == [f"UNT00{i}" for i in range(1, 8)]
    for line, rule in zip(lines, ALL_RULES):
        assert line.split()[1] == rule.name
        assert line.endswith(rule.summary)


@pytest.mark.parametrize(
    ("name", "rule_id"),
    [
        pytest.param("UNT003", "UNT003", id="by-id"),
        pytest.param("unt003", "UNT003", id="by-lowercase-id"),
        pytest.param("sync-invoke", "UNT001", id="by-name"),
        pytest.param("fan-out", "UNT005", id="fan-out-by-name"),
    ],
)
def test_explain_prints_the_examples(name: str, rule_id: str) -> None:
    rule = resolve_rule(rule_id)
    assert rule is not None
    result = cli("explain", name)
    assert result.exit_code == 0
    assert result.stdout.startswith(f"{rule.id} {rule.name}: {rule.summary}\n")
    assert result.stdout.count("\nReported:\n") == len(rule.INVALID) > 0
    assert result.stdout.count("\nNot reported:\n") == len(rule.VALID) > 0
    for example in (*rule.INVALID, *rule.VALID):
        for line in example.strip().splitlines():
            assert f"    {line}\n" in result.stdout


def test_explain_sleep_example_text() -> None:
    stdout = cli("explain", "UNT003").stdout
    assert "Reported:\n\n    import time\n    def handler(event, context):\n" in stdout
    assert "time.sleep(" in stdout


def test_explain_text_is_not_indented_like_code() -> None:
    stdout = cli("explain", "UNT003").stdout
    explanation = stdout.split("\nReported:\n")[0].splitlines()[1:]
    assert explanation and not any(line.startswith("    ") for line in explanation)


def test_explain_unknown_rule() -> None:
    result = cli("explain", "UNT999")
    assert result.exit_code == 2
    assert "unknown rule 'UNT999'" in result.stderr


# --- --select / --ignore -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        pytest.param([], ["UNT001", "UNT003"], id="all"),
        pytest.param(["--select", "UNT003"], ["UNT003"], id="select-id"),
        pytest.param(["--select", "unt003"], ["UNT003"], id="select-lowercase-id"),
        pytest.param(["--select", "sleep-in-handler"], ["UNT003"], id="select-name"),
        pytest.param(["--select", "UNT001,sleep-in-handler"], ["UNT001", "UNT003"], id="comma"),
        pytest.param(
            ["--select", "UNT001", "--select", "UNT003"], ["UNT001", "UNT003"], id="twice"
        ),
        pytest.param(["--select", "UNT002"], [], id="select-other"),
        pytest.param(["--ignore", "UNT001"], ["UNT003"], id="ignore-id"),
        pytest.param(["--ignore", "sync-invoke"], ["UNT003"], id="ignore-name"),
        pytest.param(["--ignore", "sync-invoke, UNT003"], [], id="ignore-both"),
        pytest.param(["--select", "UNT001", "--ignore", "sync-invoke"], [], id="select-and-ignore"),
    ],
)
def test_select_and_ignore(project: Path, args: list[str], expected: list[str]) -> None:
    result = scan("--format", "json", *args, ".")
    assert rules_reported(json.loads(result.stdout)) == expected
    assert result.exit_code == (1 if expected else 0)


# --- [tool.untangle] ---------------------------------------------------------------------------

JOB = """\
import time

import boto3


def process_job(job, ctx_obj):
    time.sleep(5)
    boto3.client("lambda").invoke(FunctionName="next")
"""


def write_project(root: Path, pyproject: str | None) -> Path:
    """root/proj: src/app.py (handler), src/jobs.py (not a handler by name), src/worker.pyw,
    legacy/old.py."""
    proj = root / "proj"
    (proj / "src").mkdir(parents=True)
    (proj / "legacy").mkdir()
    (proj / "src" / "app.py").write_text(INVOKE_AND_SLEEP)
    (proj / "src" / "jobs.py").write_text(JOB)
    (proj / "src" / "worker.pyw").write_text(INVOKE_AND_SLEEP)
    (proj / "legacy" / "old.py").write_text(INVOKE_AND_SLEEP)
    if pyproject is not None:
        (proj / "pyproject.toml").write_text("[tool.untangle]\n" + pyproject)
    return proj


def reported(document: dict[str, Any]) -> list[tuple[str, str, str | None]]:
    return sorted(
        (f["path"].replace(os.sep, "/"), f["rule"], f["handler"]) for f in document["findings"]
    )


WITHOUT_CONFIG = [
    ("proj/legacy/old.py", "UNT001", "legacy.old.handler"),
    ("proj/legacy/old.py", "UNT003", "legacy.old.handler"),
    ("proj/src/app.py", "UNT001", "src.app.handler"),
    ("proj/src/app.py", "UNT003", "src.app.handler"),
    ("proj/src/jobs.py", "UNT001", None),
]


@pytest.mark.parametrize(
    ("pyproject", "expected"),
    [
        pytest.param(None, WITHOUT_CONFIG, id="no-config"),
        pytest.param("", WITHOUT_CONFIG, id="empty-table"),
        pytest.param(
            'exclude = ["legacy"]\n',
            [f for f in WITHOUT_CONFIG if "legacy" not in f[0]],
            id="exclude-dir",
        ),
        pytest.param(
            'exclude = ["legacy/**", "src/app.py"]\n', [WITHOUT_CONFIG[-1]], id="exclude-globs"
        ),
        pytest.param(
            'extend-exclude = ["old.py"]\n',
            [f for f in WITHOUT_CONFIG if "legacy" not in f[0]],
            id="extend-exclude-basename",
        ),
        pytest.param(
            'select = ["UNT003"]\n', [f for f in WITHOUT_CONFIG if f[1] == "UNT003"], id="select"
        ),
        pytest.param(
            'ignore = ["sync-invoke"]\n',
            [f for f in WITHOUT_CONFIG if f[1] != "UNT001"],
            id="ignore",
        ),
        pytest.param(
            'include = ["*.pyw"]\n',
            sorted(
                [
                    *WITHOUT_CONFIG,
                    ("proj/src/worker.pyw", "UNT001", "src.worker.pyw.handler"),
                    ("proj/src/worker.pyw", "UNT003", "src.worker.pyw.handler"),
                ]
            ),
            id="include",
        ),
        pytest.param(
            'handler-patterns = ["*.process_job"]\n',
            sorted(
                [
                    *WITHOUT_CONFIG[:-1],
                    ("proj/src/jobs.py", "UNT001", "src.jobs.process_job"),
                    ("proj/src/jobs.py", "UNT003", "src.jobs.process_job"),
                ]
            ),
            id="handler-patterns",
        ),
    ],
)
def test_pyproject_settings(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, pyproject: str | None, expected: list[Any]
) -> None:
    write_project(tmp_path, pyproject)
    monkeypatch.chdir(tmp_path)  # above the project: the config is found from the scanned path
    assert reported(scan_json("proj")) == expected


def test_handler_pattern_alone_makes_a_handler(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "pyproject.toml").write_text(
        '[tool.untangle]\nhandler-patterns = ["*.process_job"]\n'
    )
    (tmp_path / "jobs.py").write_text(
        "import time\n\n\ndef process_job(job, ctx_obj):\n    time.sleep(5)\n"
    )
    assert [(f["rule"], f["line"]) for f in scan_json(".")["findings"]] == [("UNT003", 5)]


def test_config_found_from_a_file_argument(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    write_project(tmp_path, 'ignore = ["UNT001"]\n')
    monkeypatch.chdir(tmp_path)
    document = scan_json(os.path.join("proj", "src", "app.py"))
    assert rules_reported(document) == ["UNT003"]


def test_nearest_pyproject_without_a_table_is_skipped(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    proj = write_project(tmp_path, 'ignore = ["UNT001"]\n')
    (proj / "src" / "pyproject.toml").write_text('[project]\nname = "src"\n')
    monkeypatch.chdir(proj / "src")
    assert rules_reported(scan_json("app.py")) == ["UNT003"]


@pytest.mark.parametrize(
    ("pyproject", "found"),
    [
        pytest.param('[tool.untangle]\nignore = ["UNT001"]\n', True, id="table"),
        pytest.param('[tool]\nuntangle = { ignore = ["UNT001"] }\n', True, id="inline-table"),
        pytest.param('[tool]\nuntangle.ignore = ["UNT001"]\n', True, id="dotted-under-tool"),
        pytest.param('tool.untangle.ignore = ["UNT001"]\n', True, id="dotted-top-level"),
        pytest.param('[tool.untangle-other]\nignore = ["UNT001"]\n', False, id="other-tool"),
        pytest.param('[project]\nname = "untangle-demo"\n', False, id="mentions-untangle"),
    ],
)
def test_config_discovery_reads_toml(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, pyproject: str, found: bool
) -> None:
    outer = write_project(tmp_path, 'ignore = ["UNT003"]\n')
    (outer / "src" / "pyproject.toml").write_text(pyproject)
    monkeypatch.chdir(tmp_path)
    rules = rules_reported(scan_json(os.path.join("proj", "src", "app.py")))
    assert rules == (["UNT003"] if found else ["UNT001"])


def test_exclude_is_relative_to_the_config_not_the_cwd(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    proj = write_project(tmp_path, 'exclude = ["src/*.py"]\n')
    for cwd, path in ((tmp_path, "proj"), (proj, "."), (proj / "legacy", "..")):
        monkeypatch.chdir(cwd)
        paths = {f["path"] for f in scan_json(path)["findings"]}
        assert {os.path.basename(p) for p in paths} == {"old.py"}, cwd


def test_explicit_config_option(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    write_project(tmp_path, 'select = ["UNT001"]\n')
    (tmp_path / "other.toml").write_text('[tool.untangle]\nselect = ["UNT003"]\n')
    monkeypatch.chdir(tmp_path)
    rules = {f["rule"] for f in scan_json("--config", "other.toml", "proj")["findings"]}
    assert rules == {"UNT003"}


def test_command_line_select_overrides_config(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    write_project(tmp_path, 'select = ["UNT003"]\n')
    monkeypatch.chdir(tmp_path)
    rules = {f["rule"] for f in scan_json("--select", "UNT001", "proj")["findings"]}
    assert rules == {"UNT001"}


# --- a real process ------------------------------------------------------------------------------


def test_python_dash_m_version(tmp_path: Path) -> None:
    result = untangle_process("--version", cwd=tmp_path)
    assert result.returncode == 0
    assert result.stdout == f"untangle, version {__version__}\n"


def test_python_dash_m_scan(project: Path) -> None:
    result = untangle_process("scan", "--no-cache", "--format", "json", ".", cwd=project)
    assert result.returncode == 1
    assert rules_reported(json.loads(result.stdout)) == ["UNT001", "UNT003"]
    assert "Traceback" not in result.stderr


# --- the facts cache -----------------------------------------------------------------------------


def cache_files(directory: Path) -> list[Path]:
    return [p for p in directory.rglob("*") if p.is_file()] if directory.exists() else []


def test_warm_cache_gives_the_same_json(
    project: Path, tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    cache = tmp_path_factory.mktemp("facts")
    monkeypatch.setenv("UNTANGLE_CACHE_DIR", str(cache))
    (project / "broken.py").write_text("client.invoke(\n")
    (project / "helper.py").write_text("def helper():\n    return client.invoke()\n")
    cold = cli("scan", "--format", "json", ".")
    assert cache_files(cache), "the cold run wrote nothing to UNTANGLE_CACHE_DIR"
    warm = cli("scan", "--format", "json", ".")
    assert warm.stdout == cold.stdout
    assert (warm.exit_code, warm.stderr) == (cold.exit_code, cold.stderr)
    uncached = cli("scan", "--no-cache", "--format", "json", ".")
    assert uncached.stdout == cold.stdout


def test_warm_cache_sees_edits(
    project: Path, tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("UNTANGLE_CACHE_DIR", str(tmp_path_factory.mktemp("facts")))
    assert rules_reported(json.loads(cli("scan", "--format", "json", ".").stdout)) == [
        "UNT001",
        "UNT003",
    ]
    (project / "app.py").write_text(INVOKE_AND_SLEEP.replace("    time.sleep(30)\n", ""))
    assert rules_reported(json.loads(cli("scan", "--format", "json", ".").stdout)) == ["UNT001"]


def test_cache_dir_option_and_no_cache(
    project: Path, tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    from_env = tmp_path_factory.mktemp("env-cache")
    monkeypatch.setenv("UNTANGLE_CACHE_DIR", str(from_env))
    cli("scan", "--no-cache", ".")
    assert cache_files(from_env) == []
    option = tmp_path_factory.mktemp("option-cache")
    cli("scan", "--cache-dir", str(option), ".")
    assert cache_files(option)
    assert cache_files(from_env) == []


def test_extra_paths_in_pyproject_add_an_import_root(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "layer" / "python").mkdir(parents=True)
    (tmp_path / "layer" / "python" / "invoker.py").write_text(
        "import boto3\nlam = boto3.client('lambda')\n"
        "def call(name):\n    return lam.invoke(FunctionName=name)\n"
    )
    (tmp_path / "app.py").write_text(
        "from invoker import call\ndef handler(event, context):\n    return call('worker')\n"
    )
    assert [f["handler"] for f in scan_json(".")["findings"]] == [None]
    (tmp_path / "pyproject.toml").write_text('[tool.untangle]\nextra-paths = ["layer/python"]\n')
    assert [f["handler"] for f in scan_json(".")["findings"]] == ["app.handler"]


def test_scan_offers_every_report_format() -> None:
    # the CLI names the formats without importing the reporters (verify starts faster)
    from untangle.cli import REPORT_FORMATS
    from untangle.report import FORMATS

    assert sorted(REPORT_FORMATS) == sorted(FORMATS)
