"""The walk names each file's module once per folder (not once per file): the names, the order
and the files it tells as it goes are the ones `module_name` gives file by file."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from untangle.discover import SourceFile, discover, module_name

FILES = [
    "app.py",
    "__init__.py",
    "pkg/__init__.py",
    "pkg/handler.py",
    "pkg/sub/deep.py",
    "pkg/sub/__init__.py",
    "a.b/c.py",  # a folder with a dot in its name
    "..odd/x.py",  # a folder whose name starts with "..": module_name keeps the file's name only
    "..top.py",
    "pkg/.py",  # a file named ".py": no stem
    "notes/readme.txt",
    "notes/template.yaml",
    "x/y/z/w.py",
]


def build(root: Path) -> None:
    for name in FILES:
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text("VALUE = 1\n")


def expected(found: tuple[SourceFile, ...], root: str) -> list[SourceFile]:
    cwd = os.getcwd()
    return [
        SourceFile(s.path, module_name(os.path.normpath(os.path.join(cwd, s.path)), root))
        for s in found
    ]


@pytest.mark.parametrize(
    ("paths", "include"),
    [
        pytest.param(["."], ("*.py",), id="the-tree-from-inside"),
        pytest.param(["tree"], ("*.py",), id="the-tree-by-name"),
        pytest.param(["tree/"], ("*.py",), id="a-trailing-separator"),
        pytest.param(["tree/pkg", "tree/x"], ("*.py",), id="two-folders"),
        pytest.param(["tree/pkg/sub", "tree/pkg"], ("*.py",), id="a-folder-inside-another"),
        pytest.param(["tree/app.py", "tree/pkg"], ("*.py",), id="a-file-and-a-folder"),
        pytest.param(["tree"], ("*.py", "*.txt"), id="an-extra-include-pattern"),
        pytest.param(["tree/x/y"], ("*.py",), id="one-folder-deep-down"),
    ],
)
def test_module_names_of_a_walk_are_module_names_file_by_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, paths: list[str], include: tuple[str, ...]
) -> None:
    build(tmp_path / "tree")
    monkeypatch.chdir(tmp_path / "tree" if paths == ["."] else tmp_path)
    told: list[SourceFile] = []
    found = discover(paths, include, on_source=told.append)
    assert told == list(found.sources)
    assert list(found.sources) == expected(found.sources, found.root)
    assert len({s.path for s in found.sources}) == len(found.sources)


def test_a_file_reached_twice_is_told_once(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    build(tmp_path / "tree")
    monkeypatch.chdir(tmp_path)
    told: list[SourceFile] = []
    found = discover(["tree/pkg", "tree/pkg/handler.py"], on_source=told.append)
    assert [s.path for s in told].count("tree/pkg/handler.py") == 1
    assert told == list(found.sources)


def test_templates_and_other_files_are_not_sources(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    build(tmp_path / "tree")
    monkeypatch.chdir(tmp_path)
    found = discover(["tree"])
    assert found.templates == ("tree/notes/template.yaml",)
    assert not any(s.path.endswith((".txt", ".yaml")) for s in found.sources)
