"""The bundled fixtures: the article's workflows in several idioms, real-world forms and
near-misses. Each line that must be reported carries `# expect: ID[, ID]`; every other line
must stay silent."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from tests.conftest import FIXTURES
from untangle.scan import ScanOptions, scan

EXPECT = re.compile(r"#\s*expect:\s*([A-Z0-9 ,]+)")
GROUPS = ["article", "realworld", "nearmiss", "suppressed", "repos", "event_sources"]


def expected(root: Path) -> set[tuple[str, int, str]]:
    found = set()
    for path in sorted(root.rglob("*.py")):
        if path.resolve() != path.absolute():
            continue  # reached through a symlink: the file is scanned (and expected) once
        for number, line in enumerate(path.read_text().splitlines(), 1):
            match = EXPECT.search(line)
            if match:
                for rule in match.group(1).split(","):
                    if rule.strip():
                        found.add((str(path.relative_to(FIXTURES)), number, rule.strip()))
    return found


def reported(root: Path) -> set[tuple[str, int, str]]:
    result = scan([str(root)], ScanOptions(cache_dir=None))
    assert result.errors == []
    return {
        (str(Path(f.path).resolve().relative_to(FIXTURES)), f.line, f.rule) for f in result.findings
    }


@pytest.mark.parametrize("group", GROUPS)
def test_fixture_annotations(group: str) -> None:
    root = FIXTURES / group
    if not root.exists():
        pytest.skip(f"no fixtures/{group}")
    want, got = expected(root), reported(root)
    assert sorted(got - want) == [], "reported but not expected"
    assert sorted(want - got) == [], "expected but not reported"


def test_nearmisses_report_nothing() -> None:
    root = FIXTURES / "nearmiss"
    assert list(root.rglob("*.py")), "near-miss fixtures are missing"
    assert expected(root) == set()
    assert reported(root) == set()


WORKFLOWS = [
    "step_chain",
    "order_chain",
    "parallel_notifications",
    "order_size_choice",
    "fraud_rule",
    "reminder",
    "batch_map",
    "image_map",
    "retrying_email",
    "hello_world",
]


@pytest.mark.parametrize("workflow", WORKFLOWS)
def test_every_article_workflow_in_several_idioms(workflow: str) -> None:
    idioms = [p for p in (FIXTURES / "article" / workflow).iterdir() if p.is_dir()]
    assert len(idioms) >= 2
    for idiom in idioms:
        assert expected(idiom), f"{idiom} expects no finding"
        assert reported(idiom) == expected(idiom), idiom.name


def test_scanning_the_whole_tree_equals_scanning_each_app() -> None:
    """Attribution and module resolution do not depend on where the scan starts."""
    article = FIXTURES / "article"
    whole = reported(article)
    parts = set()
    for workflow in article.iterdir():
        for idiom in workflow.iterdir():
            if idiom.is_dir():
                parts |= reported(idiom)
    assert whole == parts


def test_recall_and_noise_figures_in_the_readme() -> None:
    """The README's figures for fixtures/repos/ are what scan does today."""
    root = FIXTURES / "repos"
    want, got = expected(root), reported(root)
    repositories = sum(1 for p in root.iterdir() if p.is_dir())
    figures = (
        f"On `fixtures/repos/` ({repositories} repositories), scan reports "
        f"{len(want & got)} of the {len(want)} expected findings and "
        f"{len(got - want)} unexpected"
    )
    readme = " ".join((FIXTURES.parent / "README.md").read_text().split())
    assert figures in readme, figures
