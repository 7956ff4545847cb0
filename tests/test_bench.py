"""bench/: the generated projects convert, and `run.py migrate` / `run.py verify` run end to end.

No timing is asserted: speed belongs in the benchmark's own output. What is checked is that the
benchmark measures what it says (every generated orchestrator converted, migrated, verified)
and fails loudly when a generated orchestrator is refused.
"""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from tests.conftest import ROOT
from untangle.cli import main

BENCH = ROOT / "bench"


@pytest.fixture(scope="module")
def bench_modules() -> Iterator[Any]:
    """bench/ is scripts, not a package: its modules import each other by bare name."""
    sys.path.insert(0, str(BENCH))
    try:
        import _projects
        import _workflows

        yield _projects, _workflows
    finally:
        sys.path.remove(str(BENCH))


def plan(path: Path) -> tuple[int, list[dict[str, Any]]]:
    result = CliRunner().invoke(
        main, ["plan", "--no-cache", str(path), "--format", "json"], catch_exceptions=False
    )
    return result.exit_code, json.loads(result.stdout)["workflows"]


@pytest.mark.parametrize(
    "layout",
    [pytest.param("one-template", id="one-template"), pytest.param("separate-apps", id="apps")],
)
def test_plan_converts_every_generated_orchestrator(
    bench_modules: Any, tmp_path: Path, layout: str
) -> None:
    projects, _ = bench_modules
    logical_ids = projects.make_project(tmp_path, 2, layout=layout)
    code, workflows = plan(tmp_path)
    assert code == 0
    assert sorted((w["name"], w["status"]) for w in workflows) == [
        ("Checkout000Workflow", "converted"),
        ("Shipment001Workflow", "converted"),
    ]
    assert logical_ids == ["Checkout000Function", "Shipment001Function"]
    templates = sorted(p.relative_to(tmp_path).as_posix() for p in tmp_path.rglob("*.yaml"))
    expected = (
        ["template.yaml"]
        if layout == "one-template"
        else ["app_000/template.yaml", "app_001/template.yaml"]
    )
    assert templates == expected


def test_layouts_hold_the_same_code(bench_modules: Any, tmp_path: Path) -> None:
    projects, _ = bench_modules
    projects.make_project(tmp_path / "one", 3, layout="one-template")
    projects.make_project(tmp_path / "apps", 3, layout="separate-apps")

    def code(root: Path) -> dict[str, str]:
        return {
            p.relative_to(root).as_posix(): p.read_text(encoding="utf-8")
            for p in root.rglob("*.py")
        }

    assert code(tmp_path / "one") == code(tmp_path / "apps")


@pytest.mark.parametrize(
    ("n", "layout"),
    [
        pytest.param(0, "one-template", id="no-workflow"),
        pytest.param(2, "monorepo", id="unknown-layout"),
    ],
)
def test_generator_rejects_bad_arguments(
    bench_modules: Any, tmp_path: Path, n: int, layout: str
) -> None:
    projects, _ = bench_modules
    with pytest.raises(ValueError):
        projects.make_project(tmp_path, n, layout=layout)


@pytest.mark.parametrize(
    ("layout", "broken"),
    [
        pytest.param("one-template", None, id="converted"),
        pytest.param("one-template", "app_001/orchestrator/app.py", id="refused-one-template"),
        pytest.param("separate-apps", "app_000/orchestrator/app.py", id="refused-app"),
    ],
)
def test_check_plan_fails_loudly_on_a_refused_orchestrator(
    bench_modules: Any, tmp_path: Path, layout: str, broken: str | None
) -> None:
    _, workflows = bench_modules
    expected = workflows.generate(tmp_path, 2, layout)
    if broken is not None:
        # A sleep of a random length has no Wait state: plan refuses the handler.
        path = tmp_path / broken
        text = path.read_text(encoding="utf-8")
        text = text.replace("import json\n", "import json\nimport random\nimport time\n", 1)
        text = text.replace(
            "def lambda_handler(event, context):\n",
            "def lambda_handler(event, context):\n    time.sleep(random.random())\n",
            1,
        )
        path.write_text(text, encoding="utf-8")
        with pytest.raises(workflows.ProjectRefused, match=r"converted 1 of 2"):
            workflows.check_plan(tmp_path, expected, timeout=120)
    else:
        workflows.check_plan(tmp_path, expected, timeout=120)


def run_bench(*args: str) -> dict[str, Any]:
    result = subprocess.run(
        [sys.executable, str(BENCH / "run.py"), *args, "--repeat", "1", "--json"],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=600,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    data: dict[str, Any] = json.loads(result.stdout)
    return data


def test_run_migrate_mode(bench_modules: Any) -> None:
    import run

    data = run_bench("migrate", "--sizes", "1", "--layout", "one-template")
    assert data["mode"] == "migrate" and data["sizes"] == [1]
    rows = [(r["step"], r["layout"], r["workflows"], r["status"]) for r in data["rows"]]
    assert rows == [
        ("untangle migrate (dry run)", "one-template", 1, "ok"),
        ("untangle migrate --write", "one-template", 1, "ok"),
    ]
    for row in data["rows"]:
        assert row["notes"].startswith("1 of 1 migrated"), row["notes"]
        assert len(row["wall_s_runs"]) == 1 and row["peak_mib"] > 0 and row["cpu_s"] > 0
    # checkout: orchestrator, definition, template
    assert "3 files written" in data["rows"][1]["notes"]
    # --markdown: the README's table, one line a row
    table = run.render_readme_table(data).splitlines()
    assert table[2:4] == ["| step | wall s | CPU s | peak MiB |", "|---|---:|---:|---:|"]
    assert [line.split(" | ")[0] for line in table[4:]] == [
        "| untangle migrate (dry run), one-template, 1 workflow",
        "| untangle migrate --write, one-template, 1 workflow",
    ]


def test_run_verify_mode() -> None:
    data = run_bench("verify", "--sizes", "1", "--layout", "separate-apps", "--many-events", "5")
    rows = [
        (r["step"], r["layout"], r["workflows"], r["events"], r["status"]) for r in data["rows"]
    ]
    assert rows == [
        ("untangle verify", "separate-apps", 1, 3, "ok"),
        ("untangle verify", None, 1, 3, "ok"),
        ("untangle verify", None, 1, 5, "ok"),
    ]
    assert data["rows"][0]["notes"].startswith("3 of 3 (workflow, event) runs equivalent")
    assert data["rows"][2]["notes"].startswith("5 of 5 (workflow, event) runs equivalent")
    assert "per_event_s" in data["rows"][2] and "per_event_cpu_s" in data["rows"][2]


@pytest.mark.parametrize(
    "args",
    [
        pytest.param(["scan", "--sizes", "10"], id="sizes-with-scan"),
        pytest.param(["migrate", "--corpus", "."], id="corpus-with-migrate"),
        pytest.param(["verify", "--sizes", "0"], id="size-zero"),
        pytest.param(["verify", "--json", "--markdown"], id="two-formats"),
        pytest.param(["verify", "--many-events", "3"], id="many-events-not-more"),
    ],
)
def test_run_rejects_options_of_another_mode(args: list[str]) -> None:
    result = subprocess.run(
        [sys.executable, str(BENCH / "run.py"), *args],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=60,
    )
    assert result.returncode == 2 and "error:" in result.stderr


FAKE_SEMGREP = """\
#!/bin/sh
# Answers like semgrep, but only when its version check is off (the real one, without network,
# retries it for a minute).
[ "$SEMGREP_ENABLE_VERSION_CHECK" = "0" ] || { echo "version check is on" >&2; exit 7; }
case "$1" in --version) echo 1.0.0; exit 0;; esac
echo '{"results": [], "errors": [], "paths": {"scanned": []}}'
"""


@pytest.mark.parametrize(
    ("environment", "status"),
    [
        pytest.param({}, "ok", id="version-check-off"),
        pytest.param({"SEMGREP_ENABLE_VERSION_CHECK": "1"}, "ok", id="overrides-the-caller"),
    ],
)
def test_semgrep_row_runs_without_version_check(
    bench_modules: Any,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    environment: dict[str, str],
    status: str,
) -> None:
    import run

    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    fake = bin_dir / "semgrep"
    fake.write_text(FAKE_SEMGREP, encoding="utf-8")
    fake.chmod(0o755)
    monkeypatch.setenv("PATH", f"{bin_dir}:{Path(sys.executable).parent}:/usr/bin:/bin")
    for name, value in environment.items():
        monkeypatch.setenv(name, value)
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    row = run.step_semgrep(corpus, 0, 0, repeat=1, timeout=60)
    assert row.status == status, row.notes
    assert "semgrep 1.0.0" in "; ".join(row.notes)
