"""The IR's operations and states are typed so that a backend that forgets one fails in mypy, not
at run time: a `match` on `Operator` ending in `assert_never` that lacks a member, and a
`StateVisitor` that lacks a method, are mypy errors; the complete versions check clean."""

from __future__ import annotations

import re
import textwrap
from pathlib import Path

import pytest

from untangle.workflow.ir import Operator, StateVisitor

api = pytest.importorskip("mypy.api", reason="mypy is in the dev extra")

REPO = Path(__file__).resolve().parent.parent
KINDS = ("task", "choice", "wait", "assign", "succeed", "fail", "map", "parallel")
LEFT_OUT = Operator.ENV


def _operator_match(members: list[Operator]) -> str:
    cases = " | ".join(f"Operator.{m.name}" for m in members)
    return textwrap.dedent(
        f"""\
        from typing import assert_never

        from untangle.workflow.ir import Operator


        def render(op: Operator) -> str:
            match op:
                case {cases}:
                    return str(op)
                case _:
                    assert_never(op)
        """
    )


def _visitor(kinds: tuple[str, ...]) -> str:
    methods = "".join(
        f"\n    def visit_{kind}(self, state: ir.{kind.title()}) -> str:\n"
        "        return state.name\n"
        for kind in kinds
    )
    return (
        "from untangle.workflow import ir\n\n\n"
        f"class Renderer(ir.StateVisitor[str]):{methods}\n\n"
        "RENDERER = Renderer()\n"
    )


def test_a_forgotten_operator_or_state_kind_fails_mypy(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    every = list(Operator)
    files = {
        "ops_missing.py": _operator_match([m for m in every if m is not LEFT_OUT]),
        "ops_complete.py": _operator_match(every),
        "visitor_missing.py": _visitor(tuple(k for k in KINDS if k != "wait")),
        "visitor_complete.py": _visitor(KINDS),
    }
    for name, text in files.items():
        (tmp_path / name).write_text(text)
    # the visitor's methods are the ones the test writes
    assert sorted(StateVisitor.__abstractmethods__) == sorted(f"visit_{k}" for k in KINDS)

    # this checkout's `untangle`, wherever pytest runs from (mypy cannot follow editable installs)
    monkeypatch.setenv("MYPYPATH", str(REPO))
    stdout, stderr, status = api.run(
        [
            *(str(tmp_path / name) for name in files),
            "--config-file",
            str(REPO / "pyproject.toml"),
            "--strict",
            "--warn-unreachable",
            "--cache-dir",
            str(tmp_path / ".mypy_cache"),
            "--no-error-summary",
            "--show-error-codes",
        ]
    )
    errors = [line for line in stdout.splitlines() if ": error: " in line]
    assert status == 1, stdout + stderr
    by_file = {name: [e for e in errors if re.search(rf"\b{name}:", e)] for name in files}
    assert len(errors) == 2, stdout
    (missing_op,) = by_file["ops_missing.py"]
    assert "assert_never" in missing_op and f"Operator.{LEFT_OUT.name}" in missing_op, missing_op
    (missing_visit,) = by_file["visitor_missing.py"]
    assert "Cannot instantiate abstract class" in missing_visit, missing_visit
    assert '"visit_wait"' in missing_visit, missing_visit
    assert by_file["ops_complete.py"] == [] and by_file["visitor_complete.py"] == []
