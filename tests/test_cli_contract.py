"""One CLI contract: the same bad input gets the same answer in every command — one line on
stderr starting `untangle: error:`, nothing on stdout, exit 2 — and the same options mean the
same everywhere."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from click.testing import CliRunner

from tests.conftest import FIXTURES
from untangle.cli import main

APP = FIXTURES / "article" / "hello_world" / "module_client"
COMMANDS = ("scan", "plan", "migrate", "verify")


@pytest.fixture
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    shutil.copytree(APP, tmp_path / "app", ignore=shutil.ignore_patterns("__pycache__"))
    (tmp_path / "empty").mkdir()
    (tmp_path / "docs").mkdir()
    (tmp_path / "docs" / "notes.md").write_text("no Python here\n")
    monkeypatch.chdir(tmp_path)
    return tmp_path


def _run(*args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(main, list(args))
    if result.exception and not isinstance(result.exception, SystemExit):
        raise result.exception
    return result.exit_code, result.stdout, result.stderr


def _extra(command: str) -> list[str]:
    return ["--no-cache"] if command in ("scan", "plan", "migrate") else []


BAD = [
    pytest.param(["missing"], "no such file or directory: missing", id="missing-path"),
    pytest.param(["empty"], "no Python file under empty", id="empty-directory"),
    pytest.param(["docs"], "no Python file under docs", id="directory-without-python"),
    pytest.param(["app", "--no-such-option"], "No such option '--no-such-option'", id="bad-option"),
    pytest.param(["app", "--query-language", "xml"], "Invalid value for", id="bad-value"),
]


@pytest.mark.parametrize("command", COMMANDS)
@pytest.mark.parametrize(("args", "message"), BAD)
def test_bad_input_is_one_line_and_exit_2(
    project: Path, command: str, args: list[str], message: str
) -> None:
    if command == "scan" and "--query-language" in args:
        args = ["app", "--format", "xml"]
    code, out, err = _run(command, *args, *_extra(command))
    assert code == 2, err
    assert out == ""
    assert len(err.splitlines()) == 1 and err.startswith("untangle: error: "), err
    assert message in err
    if "option" in message or "value" in message:
        assert f"(see `untangle {command} --help`)" in err


@pytest.mark.parametrize("command", ("plan", "migrate", "verify"))
def test_an_unknown_handler_is_a_usage_error(project: Path, command: str) -> None:
    code, out, err = _run(command, "app", "--handler", "no_such_handler", *_extra(command))
    assert (code, out) == (2, "")
    assert err.startswith("untangle: error: no handler named 'no_such_handler'")
    assert "orchestrator.app.lambda_handler" in err and len(err.splitlines()) == 1


@pytest.mark.parametrize("command", ("plan", "migrate", "verify"))
def test_a_known_handler_is_selected(project: Path, command: str) -> None:
    code, out, err = _run(command, "app", "--handler", "lambda_handler", *_extra(command))
    assert code == 0, err
    assert out


@pytest.mark.parametrize("command", COMMANDS)
def test_color_is_an_option_of_every_command(project: Path, command: str) -> None:
    plain = _run(command, "app", "--no-color", *_extra(command))
    colored = _run(command, "app", "--color", *_extra(command))
    assert "\x1b[" not in plain[1]
    assert "\x1b[" in colored[1]
    assert plain[0] == colored[0]


@pytest.mark.parametrize("command", COMMANDS)
def test_help_shows_exit_codes_and_two_examples(command: str) -> None:
    code, out, _ = _run(command, "--help")
    assert code == 0
    assert "Exit codes:" in out
    examples = out.split("Examples:", 1)[1].splitlines()
    assert sum(1 for line in examples if line.strip().startswith(f"untangle {command} ")) >= 2
