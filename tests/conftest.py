from __future__ import annotations

import os
from collections.abc import Iterable
from pathlib import Path

import pytest

from untangle.scan import ScanOptions, ScanResult, scan

ROOT = Path(__file__).resolve().parent.parent
FIXTURES = ROOT / "fixtures"


@pytest.fixture(autouse=True)
def _no_user_cache(
    tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Never write to the user's cache from a test."""
    monkeypatch.setenv("UNTANGLE_CACHE_DIR", str(tmp_path_factory.mktemp("cache")))


def scan_sources(tmp_path: Path, files: dict[str, str], **options: object) -> ScanResult:
    """Write `files` under tmp_path and scan that tree (no cache)."""
    for name, text in files.items():
        path = tmp_path / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    return scan([str(tmp_path)], ScanOptions(cache_dir=None, **options))  # type: ignore[arg-type]


def rule_ids(result: ScanResult) -> list[str]:
    return sorted({f.rule for f in result.findings})


def relative(paths: Iterable[str], root: Path) -> list[str]:
    return [os.path.relpath(p, root) for p in paths]


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--update-golden",
        action="store_true",
        help="Rewrite the golden files under tests/golden and the [out] sections of tests/cases "
        "from the current output (then review the diff).",
    )


@pytest.fixture(scope="session")
def update_golden(request: pytest.FixtureRequest) -> bool:
    return bool(request.config.getoption("--update-golden"))
