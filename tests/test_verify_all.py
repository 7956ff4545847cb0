"""Every article fixture app, in both query languages, on every one of its events: the original
orchestrator and the migrated state machine must answer the same (`untangle verify`).

Each (app, language) is prepared once (planned and migrated in memory) and every run shares one
moto session (:class:`untangle.engine.machine.Engine`). Known differences are strict xfails whose
reason names the event, both answers and the state involved.
"""

from __future__ import annotations

import copy
import dataclasses
import json
import os
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from untangle.engine.machine import Engine
from untangle.verify import PreparedWorkflow, compare, load_events, prepare

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
ARTICLE = os.path.join(ROOT, "fixtures", "article")
LANGUAGES = ("jsonata", "jsonpath")
APPS = sorted(
    f"{workflow}/{idiom}"
    for workflow in os.listdir(ARTICLE)
    if os.path.isdir(os.path.join(ARTICLE, workflow))
    for idiom in os.listdir(os.path.join(ARTICLE, workflow))
    if os.path.isfile(os.path.join(ARTICLE, workflow, idiom, "template.yaml"))
)

# tests/test_verify.py::test_usage_errors needs order_chain/module_client without events/: it is
# verified on its sibling's events
BORROWED_EVENTS = {"order_chain/module_client": "order_chain/helper_module"}


def _events(app: str) -> list[tuple[str, Any]]:
    return load_events(os.path.join(ARTICLE, BORROWED_EVENTS.get(app, app)))


# (app, language, event) -> why the machine answers differently from the original (none today:
# add one as a strict xfail naming the event, both answers and the state involved)
KNOWN_MISMATCHES: dict[tuple[str, str, str], str] = {}


def _cases() -> Iterator[Any]:
    for app in APPS:
        events = [name for name, _event in _events(app)]
        for language in LANGUAGES:
            for event in events:
                reason = KNOWN_MISMATCHES.get((app, language, event))
                marks = [pytest.mark.xfail(strict=True, reason=reason)] if reason else []
                yield pytest.param(
                    app, language, event, marks=marks, id=f"{app}-{language}-{event}"
                )


CASES = list(_cases())


def test_every_app_has_events_and_every_known_mismatch_is_a_case() -> None:
    assert len(APPS) == 31
    for app in APPS:
        # reminder/module_client keeps its single pre-existing event (test_verify reads it)
        assert 1 <= len(_events(app)) <= 4, app
    ids = {tuple(case.values) for case in CASES}
    assert set(KNOWN_MISMATCHES) <= ids


@pytest.fixture(scope="module")
def engine() -> Iterator[Engine]:
    with Engine() as running:
        yield running


@pytest.fixture(scope="module")
def prepared() -> Callable[..., list[PreparedWorkflow]]:
    cache: dict[tuple[str, str, bool], list[PreparedWorkflow]] = {}

    def get(app: str, language: str, keep: bool = False) -> list[PreparedWorkflow]:
        if (app, language, keep) not in cache:
            cache[app, language, keep] = prepare(os.path.join(ARTICLE, app), language, keep)
        return cache[app, language, keep]

    return get


@pytest.mark.parametrize(("app", "language", "event_name"), CASES)
def test_original_and_machine_are_equivalent(
    app: str,
    language: str,
    event_name: str,
    prepared: Callable[..., list[PreparedWorkflow]],
    engine: Engine,
) -> None:
    workflows = prepared(app, language)
    assert workflows, f"{app}: no workflow found"
    event = dict(_events(app))[event_name]
    for workflow in workflows:
        if workflow.skipped is not None:  # every article app migrates in both languages
            pytest.fail(f"{workflow.name} ({language}): {workflow.skipped}")
        result = compare(workflow, event_name, event, engine)
        # a missing dependency of an app (aioboto3, tenacity...) fails: the test extra has them
        if result.skipped is not None:
            pytest.fail(f"{workflow.name} ({language}): {result.skipped}")
        if result.documented:
            # the machine fails where the original carried on with an unchecked function
            # failure, as plan noted; with --keep-unchecked-errors it answers as the original
            [literal] = [w for w in prepared(app, language, True) if w.name == workflow.name]
            result = compare(literal, event_name, event, engine)
        assert result.equivalent, (
            f"{workflow.name} {event_name}: original {result.original} != machine "
            f"{result.machine}; history {result.history}"
        )
        # the same sleeps and back-off (a retry that succeeds on a later attempt included)
        assert result.original_waited_seconds == result.machine_waited_seconds, result.notes


def test_a_removed_catch_is_caught(
    prepared: Callable[..., list[PreparedWorkflow]], engine: Engine
) -> None:
    """send-email raising (FunctionError "Unhandled") goes through SendEmail's Catch to a
    LambdaInvokeError Fail; without that Catch the machine fails with another error."""
    [workflow] = prepared("order_chain/helper_module", "jsonata")
    assert workflow.definition is not None
    bounce = {
        "orderId": "o-4",
        "items": [{"sku": "sku-pear", "qty": 1, "price": 2.25}],
        "email": "bob@bounce.test",
    }
    [(_name, valid)] = [
        item
        for item in load_events(os.path.join(ARTICLE, "order_chain", "helper_module"))
        if item[0] == "events/valid.json"
    ]
    good = compare(workflow, "bounce", bounce, engine)
    assert good.equivalent, good
    assert good.original["status"] == "FAILED"
    assert good.original["error"] == "LambdaInvokeError"

    definition = copy.deepcopy(workflow.definition)
    send_email = definition["States"]["SendEmail"]
    assert send_email["Type"] == "Task" and send_email["Catch"]
    del send_email["Catch"]
    broken = dataclasses.replace(workflow, definition=definition)

    caught = compare(broken, "bounce", bounce, engine)
    assert caught.equivalent is False
    assert caught.original == good.original
    assert caught.machine["status"] == "FAILED"
    assert caught.machine["error"] != "LambdaInvokeError"
    # the path that never reaches the Catch is unaffected
    assert compare(broken, "events/valid.json", valid, engine).equivalent is True


def test_json_text_formatted_differently_is_equivalent_with_a_note(
    prepared: Callable[..., list[PreparedWorkflow]], engine: Engine
) -> None:
    """order_chain/module_client answers `body: json.dumps(order)`: Python writes the total as
    3.0, Step Functions' JSON (one number type) as 3. Parsed, the bodies are the same value."""
    [workflow] = prepared("order_chain/module_client", "jsonata")
    event = dict(_events("order_chain/module_client"))["events/valid.json"]
    result = compare(workflow, "events/valid.json", event, engine)
    assert result.equivalent, result
    assert result.original["output"] != result.machine["output"]
    [note] = result.notes
    assert note.startswith("output.body: the same JSON value written differently")
    assert '"total": 3.0' in note and '"total": 3,' in note

    # a body that differs in value is still a mismatch
    definition = copy.deepcopy(workflow.definition)
    assert definition is not None
    text = json.dumps(definition)
    assert text.count("Order processed!") == 1
    broken = dataclasses.replace(
        workflow, definition=json.loads(text.replace("Order processed!", "Order processed."))
    )
    assert compare(broken, "events/valid.json", event, engine).equivalent is False
