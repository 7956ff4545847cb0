"""Input a scan must survive: every bad file is one clear error entry, never a traceback, and the
good file next to it is still reported. A scan reads code, it never runs it."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner, Result

from untangle.cli import main

GOOD = """\
import boto3


def handler(event, context):
    return boto3.client("lambda").invoke(FunctionName="x")
"""
GOOD_LINE, GOOD_COLUMN = 5, 12  # `boto3.client(...)...`

# Every bad file below mentions `.invoke`, so the scan cannot skip it as irrelevant.
INVOKE = b'import boto3\nboto3.client("lambda").invoke(FunctionName="x")\n'


def _runner() -> CliRunner:
    try:  # click < 8.2 mixes stderr into stdout unless told otherwise
        return CliRunner(mix_stderr=False)  # type: ignore[call-arg]
    except TypeError:  # click >= 8.2: result.stdout and result.stderr are always apart
        return CliRunner()


def run_cli(*args: str) -> Result:
    return _runner().invoke(main, ["scan", "--no-cache", *args])


def assert_no_traceback(stdout: str, stderr: str) -> None:
    assert "Traceback" not in stdout + stderr, stdout + stderr


def scan_json(*args: str) -> tuple[int, dict[str, Any]]:
    result = run_cli("--format", "json", *args)
    assert result.exception is None or isinstance(result.exception, SystemExit), result.exception
    assert_no_traceback(result.stdout, result.stderr)
    return result.exit_code, json.loads(result.stdout)


def norm(path: str) -> str:
    return os.path.normpath(path)


def assert_good_reported(document: dict[str, Any]) -> None:
    good = [f for f in document["findings"] if norm(f["path"]) == "good.py"]
    assert [(f["rule"], f["line"], f["column"]) for f in good] == [
        ("UNT001", GOOD_LINE, GOOD_COLUMN)
    ]


@pytest.fixture
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """tmp_path as the working directory, with a good file in it."""
    monkeypatch.chdir(tmp_path)
    (tmp_path / "good.py").write_text(GOOD)
    return tmp_path


# --- one bad file: exactly one error entry, naming the file and the line ----------------------


def nested_ifs(depth: int) -> bytes:
    lines = [b"# client.invoke(FunctionName='x')"]
    lines += [b"    " * i + b"if x:" for i in range(depth)]
    lines.append(b"    " * depth + b"pass")
    return b"\n".join(lines) + b"\n"


def write(name: str, data: bytes) -> Callable[[Path], None]:
    def setup(root: Path) -> None:
        (root / name).write_bytes(data)

    return setup


def symlink(name: str, target: str, directory: bool = False) -> Callable[[Path], None]:
    def setup(root: Path) -> None:
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).symlink_to(target, target_is_directory=directory)

    return setup


def huge(root: Path) -> None:
    line = b"# .invoke() padding " + b"x" * 80 + b"\n"
    (root / "huge.py").write_bytes(INVOKE + line * (12 * 1024 * 1024 // len(line)))


BAD_FILES = [
    pytest.param(
        write(
            "bad.py",
            b"import boto3\n\n\ndef handler(event, context):\n"
            b'    boto3.client("lambda").invoke(FunctionName="x"\n',
        ),
        "bad.py",
        5,
        "syntax error: '(' was never closed",
        id="syntax-error",
    ),
    pytest.param(
        write("bad.py", b'print "calling x"\n' + INVOKE),
        "bad.py",
        1,
        "Python 2",
        id="python2-print",
    ),
    pytest.param(
        write("bad.py", INVOKE + b'name = "caf\xe9"\n'),
        "bad.py",
        3,
        "not valid utf-8 (byte 0xe9)",
        id="latin1-without-coding-line",
    ),
    pytest.param(
        # PEP 263: a coding line is only honoured on line 2 if line 1 is blank or a comment
        write("bad.py", b'x = 1\n# -*- coding: latin-1 -*-\nname = "caf\xe9"\n' + INVOKE),
        "bad.py",
        3,
        "not valid utf-8",
        id="coding-line-after-code",
    ),
    pytest.param(
        write("bad.py", INVOKE.replace(b"\n", b"\r\n") + b'name = "caf\xe9"\r\n'),
        "bad.py",
        3,
        "not valid utf-8 (byte 0xe9)",
        id="crlf-latin1-without-coding-line",
    ),
    pytest.param(
        write("bad.py", b"# coding: ascii\n" + INVOKE + b'name = "caf\xe9"\n'),
        "bad.py",
        4,
        "not valid ascii (byte 0xe9), the encoding its coding declaration names",
        id="byte-outside-declared-encoding",
    ),
    pytest.param(
        write("bad.py", b"# -*- coding: klingon -*-\n" + INVOKE),
        "bad.py",
        1,
        "unknown source encoding 'klingon'",
        id="unknown-encoding",
    ),
    pytest.param(
        write("bad.py", INVOKE + b'x = "a\x00b"\n'),
        "bad.py",
        3,
        "NUL byte",
        id="nul-byte",
    ),
    pytest.param(
        write("bad.py", INVOKE + b"x = " + b"(" * 10_000 + b")" * 10_000 + b"\n"),
        "bad.py",
        3,
        "too many nested parentheses",
        id="10000-nested-parentheses",
    ),
    pytest.param(
        write("bad.py", INVOKE + b"x = " + b"+".join([b"a"] * 20_000) + b"\n"),
        "bad.py",
        None,
        "too deeply nested",
        id="20000-term-sum",
    ),
    pytest.param(
        write("bad.py", nested_ifs(100)),
        "bad.py",
        102,  # CPython allows 100 indentation levels; `pass` is the 101st
        "too many levels of indentation",
        id="100-nested-ifs",
    ),
    pytest.param(huge, "huge.py", None, "max-file-size", id="12mb-file"),
    pytest.param(
        symlink("sub/loop", "..", directory=True),
        "sub/loop",
        None,
        "symlink loop",
        id="directory-symlink-to-parent",
    ),
    pytest.param(
        symlink("self.py", "self.py"), "self.py", None, "symlink loop", id="file-symlink-to-itself"
    ),
    pytest.param(
        symlink("dangling.py", "missing.py"),
        "dangling.py",
        None,
        "no such file or directory",
        id="dangling-symlink",
    ),
]


@pytest.mark.parametrize(("setup", "bad_path", "line", "message"), BAD_FILES)
def test_bad_file_is_one_error_entry(
    project: Path,
    setup: Callable[[Path], None],
    bad_path: str,
    line: int | None,
    message: str,
) -> None:
    setup(project)
    code, document = scan_json(".")
    assert set(document) == {"findings", "errors", "files_scanned"}
    assert [(norm(e["path"]), e["line"]) for e in document["errors"]] == [(bad_path, line)]
    assert message in document["errors"][0]["message"]
    assert_good_reported(document)
    assert code == 1


def test_bad_file_in_text_format_names_file_and_line(project: Path) -> None:
    (project / "bad.py").write_bytes(b'print "x"\n' + INVOKE)
    result = run_cli(".")
    assert_no_traceback(result.stdout, result.stderr)
    assert f"{os.path.join('.', 'bad.py')}:1: error: syntax error:" in result.stdout
    assert f"{os.path.join('.', 'good.py')}:{GOOD_LINE}:{GOOD_COLUMN}: UNT001" in result.stdout
    assert result.exit_code == 1


def test_path_that_does_not_exist(project: Path) -> None:
    """A path argument that does not exist is a usage error (exit 2, one line), as in every
    command; a bad file found inside the tree is an `errors` entry and the scan goes on."""
    result = run_cli("--format", "json", "missing.py", "good.py")
    assert result.exit_code == 2 and result.stdout == ""
    assert result.stderr == "untangle: error: no such file or directory: missing.py\n"


@pytest.mark.parametrize(
    "data",
    [
        pytest.param(b"", id="empty"),
        pytest.param(b"\n\n", id="blank-lines"),
        pytest.param(b"# client.invoke(FunctionName='x')\n", id="only-a-comment"),
    ],
)
def test_empty_files_are_scanned_without_error(project: Path, data: bytes) -> None:
    (project / "empty.py").write_bytes(data)
    code, document = scan_json(".")
    assert document["errors"] == []
    assert document["files_scanned"] == 2
    assert_good_reported(document)
    assert code == 1


# --- files that are odd but fine: reported, at the right place ---------------------------------


def handler_with(line: str, newline: str = "\n") -> str:
    return newline.join(["import boto3", "", "", "def handler(event, context):", "    " + line, ""])


def expected_column(line: str) -> int:
    """1-based, in characters (SARIF `unicodeCodePoints`)."""
    return len("    ") + line.index("boto3.client") + 1


ODD_BUT_FINE = [
    pytest.param(
        b"# -*- coding: latin-1 -*-\n"
        + handler_with('s = "caf\xe9"; boto3.client("lambda").invoke(FunctionName="t")').encode(
            "latin-1"
        ),
        6,
        expected_column('s = "caf\xe9"; boto3.client'),
        id="latin1-with-coding-line",
    ),
    pytest.param(
        b"#!/usr/bin/env python\n# vim: set fileencoding=cp1252 :\n"
        + handler_with('s = "\u20ac"; boto3.client("lambda").invoke(FunctionName="t")').encode(
            "cp1252"
        ),
        7,
        expected_column('s = "\u20ac"; boto3.client'),
        id="cp1252-coding-on-line-2",
    ),
    pytest.param(
        b"\xef\xbb\xbf" + handler_with('boto3.client("lambda").invoke(FunctionName="t")').encode(),
        5,
        5,
        id="utf8-bom",
    ),
    pytest.param(
        b"\xef\xbb\xbf"
        + handler_with('s = "é"; boto3.client("lambda").invoke(FunctionName="t")').encode(),
        5,
        expected_column('s = "é"; boto3.client'),
        id="utf8-bom-non-ascii",
    ),
    pytest.param(
        handler_with('boto3.client("lambda").invoke(FunctionName="t")', "\r\n").encode(),
        5,
        5,
        id="crlf",
    ),
    pytest.param(
        handler_with(
            'x = "\u00e9\u00e9"; boto3.client("lambda").invoke(FunctionName="t")', "\r\n"
        ).encode(),
        5,
        expected_column('x = "\u00e9\u00e9"; boto3.client'),
        id="crlf-non-ascii",
    ),
    pytest.param(
        handler_with('boto3.client("lambda").invoke(FunctionName="t")', "\r").encode(),
        5,
        5,
        id="lone-cr",
    ),
    pytest.param(
        handler_with('s = "é"; boto3.client("lambda").invoke(FunctionName="t")').encode(),
        5,
        expected_column('s = "é"; boto3.client'),
        id="two-byte-chars-before",
    ),
    pytest.param(
        handler_with('s = "日本語"; boto3.client("lambda").invoke(FunctionName="t")').encode(),
        5,
        expected_column('s = "日本語"; boto3.client'),
        id="three-byte-chars-before",
    ),
    pytest.param(
        handler_with('s = "😀"; boto3.client("lambda").invoke(FunctionName="t")').encode(),
        5,
        expected_column('s = "😀"; boto3.client'),
        id="astral-char-before",
    ),
]


@pytest.mark.parametrize(("data", "line", "column"), ODD_BUT_FINE)
def test_odd_file_is_scanned_at_the_right_place(
    project: Path, data: bytes, line: int, column: int
) -> None:
    (project / "odd.py").write_bytes(data)
    code, document = scan_json(".")
    assert document["errors"] == []
    odd = [f for f in document["findings"] if norm(f["path"]) == "odd.py"]
    assert [(f["rule"], f["target"], f["line"], f["column"]) for f in odd] == [
        ("UNT001", "t", line, column)
    ]
    assert_good_reported(document)
    assert code == 1


def test_non_ascii_end_column_counts_characters(project: Path) -> None:
    line = 'boto3.client("lambda").invoke(FunctionName="ünïcödé")'
    (project / "odd.py").write_text(handler_with(line), encoding="utf-8")
    _, document = scan_json("odd.py")
    [finding] = document["findings"]
    assert (finding["column"], finding["end_column"]) == (5, 5 + len(line))


def test_file_under_the_size_limit_is_scanned(project: Path) -> None:
    padding = b"# filler .invoke( " + b"y" * 80 + b"\n"
    data = GOOD.encode() + padding * (3 * 1024 * 1024 // len(padding))
    assert 3 * 1024 * 1024 - len(padding) < len(data) < 10 * 1024 * 1024
    (project / "big.py").write_bytes(data)
    code, document = scan_json(".")
    assert document["errors"] == []
    assert code == 1
    big = [f for f in document["findings"] if norm(f["path"]) == "big.py"]
    assert [(f["line"], f["column"]) for f in big] == [(GOOD_LINE, GOOD_COLUMN)]
    assert_good_reported(document)


def test_max_file_size_from_config(project: Path) -> None:
    (project / "pyproject.toml").write_text("[tool.untangle]\nmax-file-size = 100\n")
    (project / "small.py").write_bytes(INVOKE)
    code, document = scan_json(".")
    errors = [(norm(e["path"]), e["message"]) for e in document["errors"]]
    assert [path for path, _ in errors] == ["good.py"]  # GOOD is longer than 100 bytes
    assert "max-file-size" in errors[0][1]
    assert [norm(f["path"]) for f in document["findings"]] == ["small.py"]
    assert code == 1


def test_small_max_file_size_message_states_the_limit(project: Path) -> None:
    (project / "pyproject.toml").write_text("[tool.untangle]\nmax-file-size = 100\n")
    _, document = scan_json("good.py")
    [error] = document["errors"]
    assert "0 MB" not in error["message"]


def deep_sum_handler(terms: int) -> str:
    return handler_with(
        "x = " + "+".join(["a"] * terms) + '; boto3.client("lambda").invoke(FunctionName="t")'
    )


@pytest.mark.parametrize(
    "text",
    [
        pytest.param(
            "import boto3\n\n\ndef handler(event, context):\n"
            + "".join("    " * (i + 1) + "if event:\n" for i in range(90))
            + "    " * 91
            + 'boto3.client("lambda").invoke(FunctionName="t")\n',
            id="90-nested-ifs",
        ),
        pytest.param(deep_sum_handler(500), id="500-term-sum"),
        pytest.param(
            handler_with("x = " + "[" * 180 + "]" * 180 + '; boto3.client("lambda").invoke()'),
            id="180-nested-lists",
        ),
    ],
)
def test_deep_but_valid_code_is_analysed(project: Path, text: str) -> None:
    (project / "deep.py").write_text(text)
    code, document = scan_json("-j", "1", ".")
    assert document["errors"] == []
    assert code == 1
    assert [norm(f["path"]) for f in document["findings"]].count("deep.py") == 1
    assert_good_reported(document)


def test_deep_but_valid_code_with_the_cache(
    project: Path, tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("UNTANGLE_CACHE_DIR", str(tmp_path_factory.mktemp("cache")))
    (project / "deep.py").write_text(deep_sum_handler(500))
    result = _runner().invoke(main, ["scan", "--format", "json", "-j", "1", "."])
    assert_no_traceback(result.stdout, result.stderr)
    assert isinstance(result.exception, SystemExit), repr(result.exception)
    assert len(json.loads(result.stdout)["findings"]) == 2


def test_deep_but_valid_code_in_worker_processes(project: Path) -> None:
    (project / "deep.py").write_text(deep_sum_handler(500))
    for index in range(250):  # enough files to be read by forked processes too
        (project / f"filler_{index}.py").write_text(f"x = {index}  # .invoke(\n")
    result = run_cli("--format", "json", "-j", "2", ".")
    assert_no_traceback(result.stdout, result.stderr)
    assert isinstance(result.exception, SystemExit), repr(result.exception)
    assert len(json.loads(result.stdout)["findings"]) == 2


@pytest.mark.skipif(sys.version_info < (3, 11), reason="except* needs Python 3.11")
def test_except_star_is_analysed(project: Path) -> None:
    (project / "group.py").write_text(
        handler_with(
            "try:\n"
            '        boto3.client("lambda").invoke(FunctionName="t")\n'
            "    except* ValueError:\n"
            "        pass"
        )
    )
    _, document = scan_json(".")
    assert document["errors"] == []
    assert {norm(f["path"]) for f in document["findings"]} == {"good.py", "group.py"}


# --- unreadable files: as an unprivileged user, in a subprocess --------------------------------

_AS_NOBODY = """
import os, sys
import click._textwrap, untangle.cli, untangle.report, untangle.scan  # before losing /root
# what the scan command imports where it uses it
import untangle.baseline, untangle.cache, untangle.config, untangle.files, untangle.rules
if os.geteuid() == 0:
    os.setgid(65534)
    os.setuid(65534)
sys.argv = ["untangle", *sys.argv[1:]]
untangle.cli.main()
"""


def run_unprivileged(cwd: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """Run the CLI where chmod 000 means unreadable: as uid 65534 when the tests run as root.

    The interpreter may live under a directory (/root/.pyenv) that uid 65534 cannot enter, so the
    child imports everything first and drops privileges just before scanning."""
    if not hasattr(os, "geteuid"):
        pytest.skip("needs POSIX permissions")
    if os.geteuid() == 0:
        cwd.chmod(0o755)  # the child chdirs as root, then reads relative paths as nobody
    result = subprocess.run(
        [sys.executable, "-c", _AS_NOBODY, "scan", "--no-cache", *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=60,
    )
    if "PermissionError" in result.stderr and "setuid" in result.stderr:
        pytest.skip("cannot drop privileges here")
    return result


@pytest.fixture
def unreadable(project: Path) -> Path:
    (project / "unread.py").write_bytes(INVOKE)
    (project / "unread.py").chmod(0)
    if os.geteuid() != 0 and os.access(project / "unread.py", os.R_OK):
        pytest.skip("chmod 000 does not make files unreadable here")
    return project


def test_unreadable_file_in_a_directory(unreadable: Path) -> None:
    result = run_unprivileged(unreadable, "--format", "json", ".")
    assert_no_traceback(result.stdout, result.stderr)
    document = json.loads(result.stdout)
    assert [(norm(e["path"]), e["line"]) for e in document["errors"]] == [("unread.py", None)]
    assert "Permission denied" in document["errors"][0]["message"]
    assert_good_reported(document)
    assert result.returncode == 1


def test_unreadable_file_named_on_the_command_line(unreadable: Path) -> None:
    result = run_unprivileged(unreadable, "--format", "json", "unread.py", "good.py")
    assert_no_traceback(result.stdout, result.stderr)
    assert result.returncode == 1, result.stderr
    document = json.loads(result.stdout)
    assert [norm(e["path"]) for e in document["errors"]] == ["unread.py"]
    assert_good_reported(document)


# --- everything at once, through a real process ------------------------------------------------


def test_many_bad_files_in_a_subprocess(project: Path) -> None:
    for index, param in enumerate(BAD_FILES):
        setup = param.values[0]
        if param.id in ("12mb-file",):
            continue
        sub = project / f"case{index}"
        sub.mkdir()
        setup(sub)  # type: ignore[operator]
    result = subprocess.run(
        [sys.executable, "-m", "untangle", "scan", "--no-cache", "--format", "json", "."],
        cwd=project,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert_no_traceback(result.stdout, result.stderr)
    document = json.loads(result.stdout)
    assert len(document["errors"]) == len(BAD_FILES) - 1
    assert all(e["message"] for e in document["errors"])
    assert_good_reported(document)
    assert result.returncode == 1


# --- a scan never runs the code it reads -------------------------------------------------------


@pytest.mark.parametrize(
    "top_level",
    [
        pytest.param("open({marker!r}, 'w').write('ran')", id="writes-a-file"),
        pytest.param("raise SystemExit(3)", id="raise-systemexit"),
        pytest.param("import os; os._exit(7)", id="os-exit"),
        pytest.param("import sys; sys.modules.clear()", id="clears-sys-modules"),
        pytest.param("while True: pass", id="infinite-loop"),
    ],
)
def test_scan_never_executes_code(project: Path, top_level: str) -> None:
    marker = project / "MARKER"
    (project / "evil.py").write_text(
        "import boto3\n"
        + top_level.format(marker=str(marker))
        + "\n\n\ndef handler(event, context):\n"
        + '    boto3.client("lambda").invoke(FunctionName="e")\n'
    )
    code, document = scan_json(".")
    assert not marker.exists()
    assert document["errors"] == []
    assert sorted(norm(f["path"]) for f in document["findings"]) == ["evil.py", "good.py"]
    assert code == 1
