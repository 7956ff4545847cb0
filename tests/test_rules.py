"""Every rule's VALID / INVALID examples are its tests (and its `untangle explain` text)."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.conftest import scan_sources
from untangle.rules import ALL_RULES, resolve_rule

CASES = [
    pytest.param(rule, kind, example, id=f"{rule.id}-{rule.name}-{kind}-{index}")
    for rule in ALL_RULES
    for kind, examples in (("valid", rule.VALID), ("invalid", rule.INVALID))
    for index, example in enumerate(examples)
]


@pytest.mark.parametrize(("rule", "kind", "example"), CASES)
def test_rule_examples(tmp_path: Path, rule: type, kind: str, example: str) -> None:
    result = scan_sources(tmp_path, {"app.py": example})
    assert not result.errors
    reported = [f for f in result.findings if f.rule == rule.id]  # type: ignore[attr-defined]
    if kind == "invalid":
        assert reported, f"{rule.id} should report this example"  # type: ignore[attr-defined]
    else:
        assert not reported, [f.message for f in reported]


@pytest.mark.parametrize("rule", ALL_RULES, ids=lambda r: r.id)
def test_every_rule_is_documented(rule: type) -> None:
    assert rule.VALID and rule.INVALID  # type: ignore[attr-defined]
    assert len(rule.explanation().splitlines()) >= 3  # type: ignore[attr-defined]
    assert resolve_rule(rule.id.lower()) is rule  # type: ignore[attr-defined]
    assert resolve_rule(rule.name) is rule  # type: ignore[attr-defined]


def test_rule_ids_are_unique_and_stable() -> None:
    assert [r.id for r in ALL_RULES] == [
        "UNT001",
        "UNT002",
        "UNT003",
        "UNT004",
        "UNT005",
        "UNT006",
        "UNT007",
    ]
    assert len({r.name for r in ALL_RULES}) == len(ALL_RULES)
