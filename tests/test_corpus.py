"""The corpus (fixtures/corpus/<app>/): handlers written the way real repositories write them,
each a small SAM app with its callees and events. Every app must plan in both query languages,
verify equivalent on every event (or differ only by a documented unchecked function failure), and
migrate with --write (every validator clean) leaving nothing for a second run.

An app that does not do so yet is a KNOWN_GAP: its cases are strict xfails whose reason is the
refusal or mismatch as plan / verify prints it. When the planner learns the construct, the xfail
passes, the test fails, and the entry goes.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from untangle.cli import main
from untangle.engine.machine import Engine
from untangle.verify import PreparedWorkflow, compare, load_events, prepare

ROOT = Path(__file__).resolve().parent.parent
CORPUS = ROOT / "fixtures" / "corpus"
LANGUAGES = ("jsonata", "jsonpath")
APPS = sorted(p.parent.name for p in CORPUS.glob("*/template.yaml"))

# app -> why it does not convert yet: plan's refusal lines (the same in both query languages)
KNOWN_GAPS: dict[str, str] = {
    # in a Map round, a FunctionError check raising into an `except Exception` that records
    # the record as failed (a collector appended in the except block)
    "sqs_type_router_env_table": (
        "router/app.py:34: `raise RuntimeError` is caught by the `except` at line 36: control "
        "flow through exceptions\n"
        "router/app.py:36: an except block that swallows the error"
    ),
    # `str(exc)` of `except Exception as exc` around a helper raising Exception(errorMessage)
    # on FunctionError, which also catches the Task's own failures
    "seat_booking_release": (
        "booking/app.py:17: `except Exception as exc` catches both `raise Exception` and a "
        "failure of the state(s) `ChargeCardFunction`, and reads `exc`: a failed state has no "
        "`str(exc)` the machine could give it; to convert: raise a class of your own (`class "
        "ChargeFailed(Exception)`) and catch that alone"
    ),
}


# (app, language, event or "*") -> why the machine answers differently though the app converts
# (a strict xfail)
KNOWN_MISMATCHES: dict[tuple[str, str, str], str] = {
    # JSONata has one number type: the invoice's `250.0` reaches the new function formatting
    # the text as `250`, and Python writes "of 250 EUR" where the handler wrote "of 250.0 EUR"
    ("invoice_sms_text", "jsonata", "events/float-total.json"): (
        "a float with no fraction passed through JSONata is an int to the new function"
    ),
}


def _marks(app: str) -> list[Any]:
    reason = KNOWN_GAPS.get(app)
    return [pytest.mark.xfail(strict=True, reason=reason)] if reason else []


def _events(app: str) -> list[tuple[str, Any]]:
    return load_events(str(CORPUS / app))


def _cli(folder: Path, *args: str) -> tuple[int, str, str]:
    cwd = os.getcwd()
    os.chdir(folder)
    try:
        result = CliRunner().invoke(main, [*args, "--no-cache"])
    finally:
        os.chdir(cwd)
    if result.exception and not isinstance(result.exception, SystemExit):
        raise result.exception
    return result.exit_code, result.stdout, result.stderr


def test_the_corpus_and_its_known_gaps() -> None:
    assert len(APPS) >= 12
    assert set(KNOWN_GAPS) <= set(APPS)
    for app in APPS:
        assert 2 <= len(_events(app)) <= 4, app
        # the orchestrator's code where its template puts it (`orchestrator/`, `src/`, …)
        assert any(
            "functions" not in p.relative_to(CORPUS / app).parts
            for p in (CORPUS / app).rglob("*.py")
        ), app
        assert list((CORPUS / app / "functions").glob("*/app.py")), app


@pytest.mark.parametrize(
    ("app", "language"),
    [pytest.param(a, lang, marks=_marks(a), id=f"{a}-{lang}") for a in APPS for lang in LANGUAGES],
)
def test_plan_converts(app: str, language: str) -> None:
    code, out, err = _cli(
        CORPUS / app, "plan", ".", "--query-language", language, "--diagram", "none"
    )
    refusals = [line.strip() for line in out.splitlines() if "not converted:" in line]
    assert code == 0, "\n".join(refusals) or err


def test_known_gaps_are_what_plan_prints() -> None:
    """Each KNOWN_GAPS entry is plan's refusal, word for word (keep the reasons true)."""
    for app, reasons in sorted(KNOWN_GAPS.items()):
        code, out, _ = _cli(CORPUS / app, "plan", ".", "--diagram", "none")
        printed = [
            line.split("not converted: ", 1)[1].removeprefix("./")
            for line in out.splitlines()
            if "not converted: " in line
        ]
        assert code == 1 and printed == reasons.split("\n"), (app, printed)


def _verify_cases() -> Iterator[Any]:
    for app in APPS:
        for language in LANGUAGES:
            for event, _ in _events(app):
                mismatch = KNOWN_MISMATCHES.get(
                    (app, language, event), KNOWN_MISMATCHES.get((app, language, "*"))
                )
                marks = (
                    [pytest.mark.xfail(strict=True, reason=mismatch)] if mismatch else _marks(app)
                )
                yield pytest.param(
                    app, language, event, marks=marks, id=f"{app}-{language}-{event}"
                )


@pytest.fixture(scope="module")
def engine() -> Iterator[Engine]:
    with Engine() as running:
        yield running


@pytest.fixture(scope="module")
def prepared() -> Callable[[str, str], list[PreparedWorkflow]]:
    cache: dict[tuple[str, str], list[PreparedWorkflow]] = {}

    def get(app: str, language: str) -> list[PreparedWorkflow]:
        if (app, language) not in cache:
            cache[app, language] = prepare(str(CORPUS / app), language)
        return cache[app, language]

    return get


@pytest.mark.parametrize(("app", "language", "event_name"), list(_verify_cases()))
def test_verify_equivalent(
    app: str,
    language: str,
    event_name: str,
    prepared: Callable[[str, str], list[PreparedWorkflow]],
    engine: Engine,
) -> None:
    workflows = prepared(app, language)
    assert workflows, f"{app}: no workflow found"
    event = dict(_events(app))[event_name]
    for workflow in workflows:
        assert workflow.skipped is None, f"{workflow.name} ({language}): {workflow.skipped}"
        result = compare(workflow, event_name, event, engine)
        assert result.skipped is None, f"{workflow.name} ({language}): {result.skipped}"
        # an unchecked function failure the machine turns into a failed Task is documented
        # (plan notes it; verify accepts it unless --strict)
        assert result.equivalent or result.documented, (
            f"{workflow.name} {event_name}: original {result.original} != machine "
            f"{result.machine}; history {result.history}"
        )


@pytest.mark.parametrize(
    ("app", "language"),
    [pytest.param(a, lang, marks=_marks(a), id=f"{a}-{lang}") for a in APPS for lang in LANGUAGES],
)
def test_migrate_writes_and_leaves_nothing(app: str, language: str, tmp_path: Path) -> None:
    copy = tmp_path / "app"
    shutil.copytree(CORPUS / app, copy, ignore=shutil.ignore_patterns("__pycache__"))
    code, _, err = _cli(copy, "migrate", ".", "--write", "--query-language", language)
    assert code == 0, err  # --write runs every validator first
    assert "wrote" in err and "not migrated" not in err, err
    code, _, err = _cli(copy, "migrate", ".", "--check", "--query-language", language)
    assert code == 0 and "nothing to migrate" in err, err
