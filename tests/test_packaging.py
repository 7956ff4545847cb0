"""The package's entry points and the pre-commit hook definition."""

from __future__ import annotations

import subprocess
import sys

from tests.conftest import ROOT
from untangle import __version__


def test_python_dash_m_runs_the_cli() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "untangle", "--version"], capture_output=True, text=True, check=True
    )
    assert __version__ in result.stdout


def test_pre_commit_hook_manifest_is_valid() -> None:
    from pre_commit.clientlib import load_manifest

    [hook] = load_manifest(str(ROOT / ".pre-commit-hooks.yaml"))
    assert hook["id"] == "untangle"
    assert hook["entry"].split() == ["untangle", "scan"]
    assert hook["pass_filenames"] is False
