"""The README shows real output: each block marked `<!-- output checked by tests/test_readme.py
-->` is a command (`$ untangle …`) and what it prints (stdout, then stderr), run here."""

from __future__ import annotations

import re
import shlex

import pytest
from click.testing import CliRunner

from tests.conftest import ROOT
from untangle.cli import main

MARKER = "<!-- output checked by tests/test_readme.py -->"
BLOCK = re.compile(
    re.escape(MARKER) + r"\n```text\n\$ (?P<command>[^\n]+)\n(?P<output>.*?)```", re.S
)


def _blocks() -> list[tuple[str, str]]:
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    found = [(m["command"], m["output"]) for m in BLOCK.finditer(text)]
    assert len(found) == text.count(MARKER), "a marked block is not `$ command` then its output"
    return found


@pytest.mark.parametrize(("command", "output"), _blocks(), ids=lambda v: str(v)[:50])
def test_readme_output_is_real(command: str, output: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(ROOT)
    program, *args = shlex.split(command)
    assert program == "untangle"
    result = CliRunner().invoke(main, [*args[:1], "--no-cache", *args[1:]])
    assert result.stdout + result.stderr == output
