"""A warm scan reuses what the last scan of the same tree saw (its walk, what each file held,
its findings) only while nothing it came from has changed: an edit to a file, a template or the
configuration between two scans gives the new findings."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from untangle.cli import main

# the scan trusts a file's stamp only once it is this old (coarse file system clocks)
SETTLE_SECONDS = 2.1

HANDLER = """\
from helpers.lam import call


def handler(event, context):
    return call("worker-a")
"""
HELPER = """\
import boto3

client = boto3.client("lambda")


def call(name):
    return client.invoke(FunctionName=name)
"""
TEMPLATE = """\
Resources:
  Orchestrator:
    Type: AWS::Serverless::Function
    Properties:
      CodeUri: .
      Handler: app.handler
      Runtime: python3.12
"""
PYPROJECT = "[tool.untangle]\n"
WORKER = """\
import boto3


def start(payload, extra):
    boto3.client("lambda").invoke(FunctionName="x")
"""


def write_project(root: Path) -> None:
    (root / "helpers").mkdir(parents=True)
    (root / "helpers" / "__init__.py").write_text("")
    (root / "helpers" / "lam.py").write_text(HELPER)
    (root / "app.py").write_text(HANDLER)
    (root / "template.yaml").write_text(TEMPLATE)
    (root / "pyproject.toml").write_text(PYPROJECT)
    (root / "README.md").write_text("not scanned\n")
    (root / "worker.py").write_text(WORKER)


def replace_in(path: Path, old: str, new: str) -> None:
    text = path.read_text()
    assert old in text
    path.write_text(text.replace(old, new))


def edit_helper_away(root: Path) -> None:
    replace_in(root / "helpers" / "lam.py", "client.invoke(FunctionName=name)", "name")


def edit_handler_to_sleep(root: Path) -> None:
    replace_in(root / "app.py", "from helpers", "import time\n\nfrom helpers")
    replace_in(root / "app.py", "    return call", "    time.sleep(30)\n    return call")


def edit_same_size(root: Path) -> None:
    # the same length, in the same second: only the file's stamp, not its size, tells
    replace_in(root / "app.py", '"worker-a"', '"worker-b"')


def add_a_handler(root: Path) -> None:
    (root / "helpers" / "second.py").write_text(
        "import boto3\n\n\ndef lambda_handler(event, context):\n"
        "    boto3.client('lambda').invoke(FunctionName='other')\n"
    )


def delete_the_helper(root: Path) -> None:
    (root / "helpers" / "lam.py").unlink()


def rename_the_helper(root: Path) -> None:
    (root / "helpers" / "lam.py").rename(root / "helpers" / "moved.py")


def template_names_another_handler(root: Path) -> None:
    replace_in(
        root / "template.yaml",
        "      Runtime: python3.12\n",
        "      Runtime: python3.12\n  Worker:\n    Type: AWS::Serverless::Function\n"
        "    Properties:\n      CodeUri: .\n      Handler: worker.start\n"
        "      Runtime: python3.12\n",
    )


def config_ignores_a_rule(root: Path) -> None:
    (root / "pyproject.toml").write_text('[tool.untangle]\nignore = ["UNT001"]\n')


def config_excludes_the_helpers(root: Path) -> None:
    (root / "pyproject.toml").write_text('[tool.untangle]\nexclude = ["helpers/**"]\n')


def nothing(root: Path) -> None:
    pass


EDITS: dict[str, Callable[[Path], None]] = {
    "helper-no-longer-invokes": edit_helper_away,
    "handler-gains-a-sleep": edit_handler_to_sleep,
    "same-size-edit": edit_same_size,
    "new-file": add_a_handler,
    "deleted-file": delete_the_helper,
    "renamed-file": rename_the_helper,
    "template-names-another-handler": template_names_another_handler,
    "config-ignores-a-rule": config_ignores_a_rule,
    "config-excludes-a-folder": config_excludes_the_helpers,
}


@pytest.fixture(scope="module")
def settled_projects(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """One project per case, all written, then left alone long enough to be trusted."""
    base = tmp_path_factory.mktemp("settled")
    projects = {}
    for name in [*EDITS, "unchanged", "strace"]:
        projects[name] = base / name
        write_project(projects[name])
    time.sleep(SETTLE_SECONDS)
    return projects


def scan_json(root: Path, cache: Path | None) -> dict[str, Any]:
    args = ["scan", "--format", "json", "."]
    args += ["--no-cache"] if cache is None else ["--cache-dir", str(cache)]
    cwd = os.getcwd()
    os.chdir(root)
    try:
        result = CliRunner().invoke(main, args)
    finally:
        os.chdir(cwd)
    assert result.exit_code in (0, 1), result.output
    document: dict[str, Any] = json.loads(result.stdout)
    return document


def summary(document: dict[str, Any]) -> list[tuple[str, str, str | None, str | None]]:
    return sorted((f["rule"], f["path"], f["handler"], f["target"]) for f in document["findings"])


@pytest.mark.parametrize("edit", [pytest.param(EDITS[name], id=name) for name in EDITS])
def test_an_edit_between_two_scans_gives_the_new_findings(
    edit: Callable[[Path], None], settled_projects: dict[str, Path], tmp_path: Path
) -> None:
    root = settled_projects[next(name for name, fn in EDITS.items() if fn is edit)]
    cache = tmp_path / "cache"
    before = scan_json(root, cache)
    assert scan_json(root, cache) == before  # the warm scan, from what the first one saw
    edit(root)
    after = scan_json(root, cache)
    assert summary(after) != summary(before)
    assert after == scan_json(root, None)  # what a scan without any cache finds


def test_an_unchanged_tree_gives_the_same_findings_every_time(
    settled_projects: dict[str, Path], tmp_path: Path
) -> None:
    root, cache = settled_projects["unchanged"], tmp_path / "cache"
    cold = scan_json(root, cache)
    assert [(f["path"], f["handler"]) for f in cold["findings"]] == [
        ("./helpers/lam.py", "app.handler"),
        ("./worker.py", None),
    ]
    for _ in range(2):
        assert scan_json(root, cache) == cold
    assert scan_json(root, None) == cold


@pytest.mark.skipif(shutil.which("strace") is None, reason="needs strace")
def test_a_warm_scan_of_an_unchanged_tree_reads_none_of_its_files(
    settled_projects: dict[str, Path], tmp_path: Path
) -> None:
    root, cache = settled_projects["strace"], tmp_path / "cache"

    def files_read(run: str) -> list[str]:
        """The project's sources and templates the scan opened (it runs in the project)."""
        trace = tmp_path / f"{run}.trace"
        subprocess.run(
            [
                *("strace", "-f", "-e", "trace=openat", "-o", str(trace)),
                *(sys.executable, "-m", "untangle", "scan", "--cache-dir", str(cache), "."),
            ],
            cwd=root,
            capture_output=True,
            check=False,
        )
        opened = [line.split('"')[1] for line in trace.read_text().splitlines() if '"' in line]
        return sorted(
            path
            for path in opened
            if path.startswith(("./", f"{root}/")) and path.endswith((".py", ".yaml"))
        )

    assert files_read("cold") == [
        "./app.py",
        "./helpers/__init__.py",
        "./helpers/lam.py",
        "./template.yaml",
        "./worker.py",
    ]
    assert files_read("warm") == []


def test_the_near_miss_a_file_edited_right_after_a_scan_is_read_again(tmp_path: Path) -> None:
    # written and scanned within the same second: its stamp is not trusted, it is read again
    root, cache = tmp_path / "fresh", tmp_path / "cache"
    write_project(root)
    before = scan_json(root, cache)
    edit_same_size(root)
    after = scan_json(root, cache)
    assert [f["target"] for f in before["findings"]] == ["worker-a", "x"]
    assert [f["target"] for f in after["findings"]] == ["worker-b", "x"]
