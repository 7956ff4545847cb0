"""Per-construct planner cases, in the style of mypyc's `test-data/irbuild-*.test` files.

Each `tests/cases/plan-<construct>.test` holds cases:

    [case ifOnInvokeResult]
    <the handler module, written as app.py>
    [file helpers.py]
    <optional extra modules, written next to it>
    [out]
    <what `to_text` prints for the planned workflows (JSONata), tmp paths made relative>

Lines starting with `--` before the first case are comments. `pytest --update-golden` rewrites
the `[out]` sections in place from the current planner; everything else stays byte-identical.
"""

from __future__ import annotations

import difflib
import re
from dataclasses import dataclass
from itertools import pairwise
from pathlib import Path

import pytest

from untangle.plan import PlanOptions, plan
from untangle.scan import ScanOptions, load_tree
from untangle.workflow.ir import to_text

CASES = Path(__file__).resolve().parent / "cases"
MAIN = "app.py"
NO_WORKFLOW = "(no orchestrating handler)\n"
_HEADER = re.compile(r"\[([a-z]+)(?: ([^\]]*))?\]")
_CASE_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


class CaseFileError(Exception):
    """A malformed case file: the message names the file and line."""


@dataclass(frozen=True)
class Case:
    name: str
    files: dict[str, str]  # path relative to the case dir → text (app.py first)
    out: str  # the expected output ("" when the [out] section is empty)
    out_lines: tuple[int, int]  # [start, end) 0-based line range of the [out] body in the file


def _text(lines: list[str]) -> str:
    while lines and not lines[-1].strip():
        lines = lines[:-1]
    return "".join(line + "\n" for line in lines)


def parse(path: Path) -> list[Case]:
    """The cases of one file, in order; CaseFileError on anything malformed."""
    lines = path.read_text(encoding="utf-8").splitlines()

    def fail(index: int, message: str) -> CaseFileError:
        return CaseFileError(f"{path.name}:{index + 1}: {message}")

    # (line index, kind, argument) of every section header
    headers = [
        (index, found.group(1), (found.group(2) or "").strip())
        for index, line in enumerate(lines)
        if (found := _HEADER.fullmatch(line))
    ]
    for index, line in enumerate(lines[: headers[0][0] if headers else len(lines)]):
        if line.strip() and not line.startswith("--"):
            raise fail(index, "text before the first [case …] (comments start with --)")
    if not headers:
        raise CaseFileError(f"{path.name}: no cases")
    if headers[0][1] != "case":
        raise fail(headers[0][0], f"[{headers[0][1]}] outside a case")
    starts = [n for n, (_, kind, _) in enumerate(headers) if kind == "case"]
    cases: list[Case] = []
    for first, following in pairwise([*starts, len(headers)]):
        (case_line, _, name), *sections = headers[first:following]
        end = headers[following][0] if following < len(headers) else len(lines)
        if not _CASE_NAME.fullmatch(name):
            raise fail(case_line, f"bad case name {name!r} (letters, digits, _)")
        if any(c.name == name for c in cases):
            raise fail(case_line, f"duplicate case name {name!r}")
        files = {MAIN: ""}
        body_start = case_line + 1
        for index, kind, argument in sections:
            if kind not in ("file", "out"):
                raise fail(index, f"unknown section [{kind}] (case, file, out)")
            if index != sections[-1][0] and kind == "out":
                raise fail(sections[-1][0], f"[{sections[-1][1]}] after [out] in case {name!r}")
            # the section before this header ends here
            files[list(files)[-1]] = _text(lines[body_start:index])
            if kind == "file":
                if not argument or argument in files or argument.startswith(("/", "..")):
                    raise fail(index, f"bad or repeated file name {argument!r}")
                files[argument] = ""
            body_start = index + 1
        if not sections or sections[-1][1] != "out":
            raise fail(case_line, f"case {name!r} has no [out] section (it must come last)")
        if not files[MAIN].strip():
            raise fail(case_line, f"case {name!r} has no handler source")
        out_end = end
        while out_end > body_start and not lines[out_end - 1].strip():
            out_end -= 1
        out = "".join(line + "\n" for line in lines[body_start:out_end])
        cases.append(Case(name, files, out, (body_start, out_end)))
    return cases


def _params() -> list[object]:
    return [
        pytest.param(path, case.name, id=f"{path.stem}::{case.name}")
        for path in sorted(CASES.glob("plan-*.test"))
        for case in parse(path)
    ]


def planned_text(root: Path, files: dict[str, str]) -> str:
    """Write `files` under `root`, plan the tree, print every workflow (paths relative)."""
    for name, text in files.items():
        target = root / name
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(text, encoding="utf-8")
    tree = load_tree([str(root)], ScanOptions(cache_dir=None))
    workflows = plan(
        tree.program, tree.templates, lambda p: Path(p).read_text(encoding="utf-8"), PlanOptions()
    )
    text = "".join(to_text(w.workflow) for w in workflows) or NO_WORKFLOW
    for prefix in {str(root), str(root.resolve())}:
        text = text.replace(prefix + "/", "")
    return text


def _rewrite(path: Path, name: str, out: str) -> None:
    """Replace the [out] body of case `name` in `path` (read afresh: earlier cases may have
    been rewritten already); every other byte stays."""
    [case] = [c for c in parse(path) if c.name == name]
    text = path.read_text(encoding="utf-8")
    lines = text.splitlines(keepends=True)
    start, end = case.out_lines
    head, tail = "".join(lines[:start]), "".join(lines[end:])
    if not tail and not text.endswith("\n"):  # the file ends in this [out] with no newline
        head = head if head.endswith("\n") else head + "\n"
        out = out.removesuffix("\n")
    path.write_text(head + out + tail, encoding="utf-8")


@pytest.mark.parametrize(("path", "name"), _params())
def test_plan_case(path: Path, name: str, tmp_path: Path, update_golden: bool) -> None:
    [case] = [c for c in parse(path) if c.name == name]
    actual = planned_text(tmp_path, case.files)
    if update_golden:
        if actual != case.out:
            _rewrite(path, name, actual)
        return
    if actual != case.out:
        diff = difflib.unified_diff(
            case.out.splitlines(keepends=True),
            actual.splitlines(keepends=True),
            f"{path.name}::{name} [out]",
            "planned",
        )
        pytest.fail(
            "planned output differs (pytest --update-golden rewrites it):\n" + "".join(diff),
            pytrace=False,
        )


# --- the parser itself ------------------------------------------------------------------------


def _parse_text(tmp_path: Path, text: str) -> list[Case]:
    path = tmp_path / "plan-x.test"
    path.write_text(text, encoding="utf-8")
    return parse(path)


def test_parse_sections_and_bounds(tmp_path: Path) -> None:
    text = "-- header\n[case a]\nx = 1\n\n[file h.py]\ny = 2\n[out]\nA\n\n[case b]\nz\n[out]\n"
    a, b = _parse_text(tmp_path, text)
    assert a.files == {MAIN: "x = 1\n", "h.py": "y = 2\n"}
    assert (a.out, a.out_lines) == ("A\n", (7, 8))
    assert (b.files, b.out, b.out_lines) == ({MAIN: "z\n"}, "", (12, 12))


def test_rewrite_keeps_the_rest_byte_identical(tmp_path: Path) -> None:
    path = tmp_path / "plan-x.test"
    path.write_text("[case a]\nx\n[out]\nold\n\n\n[case b]\ny\n[out]\nB", encoding="utf-8")
    _rewrite(path, "a", "new\nlines\n")
    _rewrite(path, "b", "C\n")
    assert path.read_text() == "[case a]\nx\n[out]\nnew\nlines\n\n\n[case b]\ny\n[out]\nC"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("[case a]\nx\n[out]\n[case a]\ny\n[out]\n", "duplicate case name 'a'"),
        ("[case a]\nx\n", "has no [out] section"),
        ("[case a]\nx\n[out]\n[file h.py]\n", "[file] after [out]"),
        ("[case a]\nx\n[outt]\n", "unknown section [outt]"),
        ("[case a]\nx\n[file app.py]\n[out]\n", "bad or repeated file name 'app.py'"),
        ("x\n[case a]\nx\n[out]\n", "text before the first [case"),
        ("[case a b]\nx\n[out]\n", "bad case name"),
        ("[case a]\n[out]\n", "no handler source"),
        ("-- nothing\n", "no cases"),
    ],
)
def test_parse_rejects_malformed_files(tmp_path: Path, text: str, message: str) -> None:
    with pytest.raises(CaseFileError, match=re.escape(message)):
        _parse_text(tmp_path, text)
