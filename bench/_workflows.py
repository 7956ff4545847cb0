"""The migrate and verify benchmarks: generated projects of N workflows (bench/_projects.py).

    python bench/run.py migrate     `untangle migrate DIR` (dry run) and `--write` on a fresh copy
    python bench/run.py verify      `untangle verify DIR`, and one app with few / many events

Each size N is generated twice: every workflow in one template.yaml, and one SAM app each under
a common folder. Before anything is timed, `untangle plan` must convert every generated
orchestrator: a refusal stops the benchmark (exit 2), since timing a migrate that skips
workflows would measure the wrong thing. Standard library only.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import statistics
import tempfile
from pathlib import Path
from typing import Any

import _projects
from _measure import Row, RunResult, failure_line, log, measure, untangle_cmd

LAYOUTS = _projects.LAYOUTS
SIZES = (10, 50, 200)
QUICK_SIZES = (10,)
# The per-event rows: one single-workflow app verified on FEW_EVENTS, then on MANY_EVENTS events.
FEW_EVENTS = 3
MANY_EVENTS = 30


class ProjectRefused(RuntimeError):
    """untangle plan did not convert every orchestrator of a generated project."""


def layout_label(layout: str) -> str:
    return "one template" if layout == "one-template" else "separate apps"


def generate(root: Path, n: int, layout: str) -> list[str]:
    """The project of n workflows in root; answers the names plan gives its workflows."""
    logical_ids = _projects.make_project(root, n, layout)
    return [name.removesuffix("Function") + "Workflow" for name in logical_ids]


def check_plan(root: Path, expected: list[str], timeout: float) -> None:
    """Raise ProjectRefused unless `untangle plan root` converts exactly the expected workflows."""
    env = _cold_env()
    try:
        run = measure(
            [*untangle_cmd(), "plan", str(root), "--format", "json", "--detail", "none"],
            env=env,
            timeout=timeout,
        )
    finally:
        _drop_cache(env)
    try:
        workflows = json.loads(run.stdout)["workflows"]
    except (ValueError, KeyError, TypeError):
        raise ProjectRefused(f"untangle plan {root}: {failure_line(run, timeout)}") from None
    refused = [
        f"{w['name']}: "
        + "; ".join(
            f"{r.get('path')}:{r.get('line')}: {r.get('message')}" for r in w.get("reasons", [])
        )
        for w in workflows
        if w.get("status") != "converted"
    ]
    converted = sorted(w["name"] for w in workflows if w.get("status") == "converted")
    if refused or converted != sorted(expected):
        missing = sorted(set(expected) - set(converted))
        detail = refused or [f"not planned: {', '.join(missing[:5])}"]
        raise ProjectRefused(
            f"untangle plan {root} converted {len(converted)} of {len(expected)} generated "
            f"workflows (exit {run.rc}): {detail[0]}"
        )


def _cold_env() -> dict[str, str]:
    """A new empty facts cache, so every run starts cold (as a first run in CI does)."""
    cache = tempfile.mkdtemp(prefix="untangle-bench-cache-")
    return {**os.environ, "UNTANGLE_CACHE_DIR": cache}


def _drop_cache(env: dict[str, str]) -> None:
    shutil.rmtree(env["UNTANGLE_CACHE_DIR"], ignore_errors=True)


def _migrated(run: RunResult) -> list[str]:
    return re.findall(r"^migrated (\S+):", run.stderr, flags=re.MULTILINE)


def _files_changed(run: RunResult) -> int | None:
    match = re.search(r"(\d+) file\(s\) would change|wrote (\d+) file\(s\)", run.stderr)
    return int(match.group(1) or match.group(2)) if match else None


def _migrate_problem(run: RunResult, timeout: float) -> str:
    """The first line of untangle's own complaint, past the `migrated ...` lines."""
    for line in run.stderr.splitlines():
        if line.startswith(("untangle:", "not migrated")):
            return line if len(line) <= 200 else line[:197] + "..."
    return failure_line(run, timeout)


def _new_row(step: str, layout: str | None, n: int, events: int | None = None) -> Row:
    row = Row(step)
    row.extra.update(layout=layout, workflows=n, events=events)
    return row


def step_migrate(
    root: Path, expected: list[str], layout: str, write: bool, repeat: int, timeout: float
) -> Row:
    """`untangle migrate root` (or `--write` on a fresh copy of root each run), cold cache."""
    n = len(expected)
    step = "untangle migrate --write" if write else "untangle migrate (dry run)"
    row = _new_row(step, layout, n)
    files: set[int | None] = set()
    for _ in range(repeat):
        target = root
        if write:
            target = root.parent / f"{root.name}-write"
            shutil.rmtree(target, ignore_errors=True)
            shutil.copytree(root, target)
        env = _cold_env()
        cmd = [*untangle_cmd(), "migrate", str(target), *(["--write"] if write else [])]
        try:
            run = measure(cmd, env=env, timeout=timeout)
        finally:
            _drop_cache(env)
            if write:
                shutil.rmtree(target, ignore_errors=True)
        migrated = _migrated(run)
        if run.rc != 0 or sorted(migrated) != sorted(expected):
            problem = _migrate_problem(run, timeout)
            row.fail(f"exit {run.rc}, {len(migrated)} of {n} migrated: {problem}")
            return row
        files.add(_files_changed(run))
        row.add(run)
    row.notes.append(f"{n} of {n} migrated")
    changed = sorted(f for f in files if f is not None)
    if changed:
        row.notes.append(f"{changed[-1]} files {'written' if write else 'in the diff'}")
    if len(files) > 1:
        row.notes.append(f"runs disagree on the files changed: {sorted(files, key=str)}")
    if row.wall_s is not None and n > 1:
        row.notes.append(f"{row.wall_s / n:.2f} s per workflow")
    row.extra["command"] = f"untangle migrate DIR{' --write' if write else ''}"
    return row


def _verify_outcome(run: RunResult, timeout: float) -> tuple[list[dict[str, Any]], str | None]:
    try:
        results = json.loads(run.stdout)["results"]
    except (ValueError, KeyError, TypeError):
        return [], f"exit {run.rc}, no JSON report: {failure_line(run, timeout)}"
    if run.rc != 0:
        bad = [r for r in results if not r.get("equivalent")]
        first = bad[0] if bad else {}
        where = f"{first.get('workflow')} {first.get('event')}" if first else ""
        return results, f"exit {run.rc}: {len(bad)} not equivalent {where}".rstrip()
    return results, None


def step_verify(
    target: Path,
    events: list[Path],
    n: int,
    layout: str | None,
    repeat: int,
    timeout: float,
) -> Row:
    """`untangle verify target --event ...`: every workflow of target on every event."""
    row = _new_row("untangle verify", layout, n, len(events))
    cmd = [*untangle_cmd(), "verify", str(target), "--format", "json"]
    for event in events:
        cmd += ["--event", str(event)]
    for _ in range(repeat):
        env = _cold_env()
        try:
            run = measure(cmd, env=env, timeout=timeout)
        finally:
            _drop_cache(env)
        results, problem = _verify_outcome(run, timeout)
        if problem:
            row.fail(problem)
            return row
        if len(results) != n * len(events):
            row.fail(f"{len(results)} results, expected {n} workflows x {len(events)} events")
            return row
        row.add(run)
    runs = n * len(events)
    row.notes.append(f"{runs} of {runs} (workflow, event) runs equivalent")
    if row.wall_s is not None and n > 1:
        row.notes.append(f"{row.wall_s / n:.2f} s per workflow")
    row.extra["command"] = "untangle verify DIR --format json" + " --event E" * len(events)
    return row


def per_event_note(few: Row, many: Row) -> None:
    """The cost of one more event, from the few-events and many-events rows of one app."""
    if few.status != "ok" or many.status != "ok" or few.wall_s is None or many.wall_s is None:
        return
    extra = many.extra["events"] - few.extra["events"]
    per_event = (many.wall_s - few.wall_s) / extra
    fixed = few.wall_s - per_event * few.extra["events"]
    many.notes.append(f"{per_event * 1000:.0f} ms per extra event, ~{fixed:.2f} s fixed")
    many.extra.update(per_event_s=round(per_event, 4), fixed_s=round(fixed, 3))
    if few.cpus and many.cpus:
        few_cpu, many_cpu = statistics.median(few.cpus), statistics.median(many.cpus)
        cpu_per_event = (many_cpu - few_cpu) / extra
        cpu_fixed = few_cpu - cpu_per_event * few.extra["events"]
        many.notes.append(
            f"CPU {cpu_per_event * 1000:.0f} ms per extra event, ~{cpu_fixed:.2f} s fixed"
        )
        many.extra.update(per_event_cpu_s=round(cpu_per_event, 4), fixed_cpu_s=round(cpu_fixed, 3))


def _record(rows: list[Row], row: Row) -> None:
    if row.status != "ok":
        log(f"  {'; '.join(row.notes)}")
    elif row.wall_s is not None and row.peak_mib is not None:
        log(f"  {row.wall_s:.2f} s (median of {row.walls}), {row.peak_mib:.0f} MiB")
    rows.append(row)


def run_mode(
    mode: str,
    sizes: list[int],
    repeat: int,
    timeout: float,
    layouts: tuple[str, ...] = LAYOUTS,
    many_events: int = MANY_EVENTS,
    workdir: Path | None = None,
) -> list[Row]:
    """Every row of the migrate or verify benchmark; raises ProjectRefused."""
    base = Path(tempfile.mkdtemp(prefix=f"untangle-bench-{mode}-", dir=workdir))
    rows: list[Row] = []
    try:
        for n in sizes:
            for layout in layouts:
                root = base / f"{layout}-{n}" / "project"
                where = f"{layout_label(layout)}, N={n}"
                log(f"generating {where} in {root}")
                expected = generate(root, n, layout)
                log("  checking that untangle plan converts every generated orchestrator")
                check_plan(root, expected, timeout)
                if mode == "migrate":
                    for write in (False, True):
                        log(f"measuring: migrate{' --write' if write else ''}, {where}")
                        _record(rows, step_migrate(root, expected, layout, write, repeat, timeout))
                else:
                    events = sorted((root / "events").glob("*.json"))
                    log(f"measuring: verify, {where}, {len(events)} events")
                    _record(rows, step_verify(root, events, n, layout, repeat, timeout))
                shutil.rmtree(root.parent, ignore_errors=True)
        if mode == "verify":
            rows += per_event_rows(base, repeat, timeout, many_events)
    finally:
        shutil.rmtree(base, ignore_errors=True)
    return rows


def per_event_rows(base: Path, repeat: int, timeout: float, many_events: int) -> list[Row]:
    """One single-workflow app verified on FEW_EVENTS and on `many_events` events."""
    root = base / "per-event" / "project"
    expected = generate(root, 1, "separate-apps")
    check_plan(root, expected, timeout)
    app = _projects.app_folder(root, 0)
    events = _projects.write_many_events(root.parent / "events", many_events)
    rows: list[Row] = []
    for count in (FEW_EVENTS, many_events):
        log(f"measuring: verify, 1 app, {count} events")
        _record(rows, step_verify(app, events[:count], 1, None, repeat, timeout))
    per_event_note(rows[0], rows[1])
    return rows
