"""`untangle plan` on every bundled fixture app: golden IR text, ASL in both query languages
and the text diagram; every produced definition passes asl-validator and cfn-lint E3601."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import FIXTURES, ROOT
from untangle.plan import PlannedWorkflow, PlanOptions, plan
from untangle.render import diagram
from untangle.scan import ScanOptions, load_tree
from untangle.validate import asl_errors, cfn_lint_errors
from untangle.workflow.ir import to_text

GOLDEN = ROOT / "tests" / "golden" / "plan"
APPS = [
    *sorted(p.parent for p in FIXTURES.glob("article/*/*/template.yaml")),
    FIXTURES / "realworld",
]
LANGUAGES = ("jsonata", "jsonpath")


def _read(path: str) -> str:
    return Path(path).read_text(encoding="utf-8-sig")


def _app_id(app: Path) -> str:
    return str(app.relative_to(FIXTURES)).replace("/", "--")


@pytest.fixture(scope="session")
def planned() -> dict[tuple[str, str], list[PlannedWorkflow]]:
    results = {}
    for app in APPS:
        tree = load_tree([str(app.relative_to(ROOT))], ScanOptions(cache_dir=None))
        for language in LANGUAGES:
            results[(_app_id(app), language)] = plan(
                tree.program, tree.templates, _read, PlanOptions(query_language=language)
            )
    return results


def _golden(path: Path, text: str, update: bool) -> None:
    if update:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
        return
    assert path.exists(), f"missing golden {path.relative_to(ROOT)}: run pytest --update-golden"
    assert text == path.read_text(encoding="utf-8"), f"{path.relative_to(ROOT)} changed"


@pytest.mark.parametrize("app", APPS, ids=_app_id)
def test_plan_golden(
    app: Path, planned: dict[tuple[str, str], list[PlannedWorkflow]], update_golden: bool
) -> None:
    app_id = _app_id(app)
    workflows = planned[(app_id, "jsonata")]
    assert workflows, "every fixture app has an orchestrating handler"
    folder = GOLDEN / app_id
    _golden(folder / "ir.txt", "".join(to_text(w.workflow) for w in workflows), update_golden)
    for language in LANGUAGES:
        definitions = [w.asl for w in planned[(app_id, language)]]
        _golden(
            folder / f"{language}.asl.json", json.dumps(definitions, indent=2) + "\n", update_golden
        )
    pictures = [diagram.text(w.asl) for w in workflows if w.asl is not None]
    _golden(folder / "diagram.txt", "\n".join(pictures), update_golden)


def _all_definitions(
    planned: dict[tuple[str, str], list[PlannedWorkflow]],
) -> list[tuple[str, dict[str, Any]]]:
    return [
        (f"{app_id}/{language}/{w.workflow.name}", w.asl)
        for (app_id, language), workflows in sorted(planned.items())
        for w in workflows
        if w.asl is not None
    ]


def test_every_definition_passes_asl_validator(
    planned: dict[tuple[str, str], list[PlannedWorkflow]],
) -> None:
    definitions = _all_definitions(planned)
    assert definitions
    errors = asl_errors([d for _, d in definitions])
    failing = {name: e for (name, _), e in zip(definitions, errors) if e}
    assert failing == {}


def test_every_definition_passes_cfn_lint(
    planned: dict[tuple[str, str], list[PlannedWorkflow]],
) -> None:
    definitions = _all_definitions(planned)
    assert definitions
    errors = cfn_lint_errors([d for _, d in definitions])  # in templates of 100
    assert len(errors) == len(definitions)
    failing = {name: e for (name, _), e in zip(definitions, errors) if e}
    assert failing == {}


def test_unconverted_handlers_say_why(
    planned: dict[tuple[str, str], list[PlannedWorkflow]],
) -> None:
    for workflows in planned.values():
        for w in workflows:
            if w.status != "converted":
                assert w.asl is None
                assert w.workflow.reasons, w.workflow.handler
                for reason in w.workflow.reasons:
                    assert reason.line > 0 and Path(reason.path).exists()
