"""The one documented install runs `migrate --write` on a project outside the clone.

A fresh virtual environment gets `pip install '<this repository>[validate]'` (the README's
`pip install 'untangle-lambda[validate]'`, from here instead of PyPI) and asl-validator the way
the README installs it (`npm install -g asl-validator@4.0.0`, into a global prefix of its own
on PATH). Then `untangle migrate --write` runs in a copy of a fixture in a temporary folder.
Marked `install` (about a minute; CI runs it, `-m "not install"` leaves it out locally).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

from tests.conftest import FIXTURES, ROOT

ASL_VALIDATOR = "asl-validator@4.0.0"


def test_the_extras_and_the_name_the_readme_installs_exist() -> None:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    readme = (ROOT / "README.md").read_text()
    assert project["name"] == "untangle-lambda"
    for extra in ("validate", "verify"):
        assert f"pip install 'untangle-lambda[{extra}]'" in readme
        assert project["optional-dependencies"][extra]
    assert {"cfn-lint", "aws-sam-translator"} <= {
        requirement.split("=")[0] for requirement in project["optional-dependencies"]["validate"]
    }
    assert f"npm install -g {ASL_VALIDATOR}" in readme


def _run(
    args: list[str], cwd: Path, env: dict[str, str], timeout: int = 600
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        args, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout, check=False
    )


@pytest.mark.install
def test_a_fresh_venv_with_the_documented_install_migrates_a_copy(tmp_path: Path) -> None:
    venv = tmp_path / "venv"
    made = _run([sys.executable, "-m", "venv", str(venv)], tmp_path, dict(os.environ))
    assert made.returncode == 0, made.stderr
    bin_dir = venv / ("Scripts" if os.name == "nt" else "bin")
    env = {
        k: v
        for k, v in os.environ.items()
        if k not in ("VIRTUAL_ENV", "PYTHONPATH", "UNTANGLE_ASL_VALIDATOR_DIR")
    }
    env["PATH"] = os.pathsep.join([str(bin_dir), env.get("PATH", "")])
    installed = _run(
        [str(bin_dir / "python"), "-m", "pip", "install", "-q", f"{ROOT}[validate]"],
        tmp_path,
        env,
    )
    assert installed.returncode == 0, installed.stderr[-3000:]

    # near miss first: no asl-validator anywhere, --strict-validation refuses to write
    bare = tmp_path / "bare"
    shutil.copytree(FIXTURES / "article" / "order_chain" / "module_client", bare)
    refused = _run(
        [str(bin_dir / "untangle"), "migrate", "--write", "--strict-validation"], bare, env
    )
    assert refused.returncode == 2, refused.stderr
    assert "asl-validator is not installed" in refused.stderr
    assert "nothing was written" in refused.stderr
    assert not (bare / "statemachine").exists()

    npm = shutil.which("npm")
    if npm is not None and shutil.which("node") is not None:
        prefix = tmp_path / "npm-global"
        # the README's `npm install -g`, into a global prefix of this test's own
        got = _run(
            [
                npm,
                "install",
                "-g",
                "--prefix",
                str(prefix),
                "--no-audit",
                "--no-fund",
                "--prefer-offline",
                ASL_VALIDATOR,
            ],
            tmp_path,
            env,
        )
        assert got.returncode == 0, got.stderr[-3000:]
        bin_of_npm = prefix if os.name == "nt" else prefix / "bin"
        env["PATH"] = os.pathsep.join([str(bin_of_npm), env["PATH"]])

    app = tmp_path / "app"
    shutil.copytree(FIXTURES / "article" / "order_chain" / "module_client", app)
    strict = ["--strict-validation"] if npm is not None else []
    migrated = _run([str(bin_dir / "untangle"), "migrate", "--write", *strict], app, env)
    assert migrated.returncode == 0, migrated.stderr
    assert "wrote 3 file(s)" in migrated.stderr
    skipped = [line for line in migrated.stderr.splitlines() if "not validated with" in line]
    if npm is not None:
        assert skipped == []  # cfn-lint, the SAM transform and asl-validator all ran
    else:
        [only] = skipped  # cfn-lint and the SAM transform ran
        assert only.startswith("untangle: not validated with asl-validator (")
    machine = json.loads((app / "statemachine" / "OrderProcessorWorkflow.asl.json").read_text())
    assert machine["StartAt"] and machine["States"]
    assert "AWS::Serverless::StateMachine" in (app / "template.yaml").read_text()
    # the installed untangle ran, not this checkout's
    where = _run(
        [str(bin_dir / "python"), "-c", "import untangle; print(untangle.__file__)"], app, env
    )
    assert str(venv) in where.stdout
    again = _run([str(bin_dir / "untangle"), "migrate", "--check"], app, env)
    assert again.returncode == 0 and "nothing to migrate" in again.stderr
