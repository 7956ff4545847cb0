"""Time `untangle verify` on one app with 1, 10, 50 … events: its fixed cost and its cost per event.

    python bench/verify_fixture.py                          the article's order chain, N = 1 10 50
    python bench/verify_fixture.py --app DIR --event FILE --events 1 10 50 --repeat 5 --json

Each measurement is a whole fresh `untangle verify APP --event E1 … --event EN` (the parent CLI
and its child that runs the app), N copies of one event file, timed by wall clock and by the CPU
of the process tree (user + system of every process waited for). The fixed cost is the N = 1
figure; the cost per extra event the slope between the smallest and largest N. Medians of
``--repeat`` runs. untangle's modules are compiled to bytecode first (as an installed package
is): where ``PYTHONDONTWRITEBYTECODE`` is set, every run would otherwise compile them again, a
third of the CLI's start. Standard library only; `bench/run.py` uses :func:`verify_command`
and :func:`measure`.
"""

from __future__ import annotations

import argparse
import compileall
import importlib.util
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
DEFAULT_APP = REPO / "fixtures" / "article" / "order_chain" / "helper_module"
DEFAULT_EVENT = DEFAULT_APP / "events" / "valid.json"


def untangle_executable() -> list[str]:
    """`untangle` beside this interpreter (a venv), else `python -m untangle`."""
    beside = Path(sys.executable).parent / "untangle"
    return [str(beside)] if beside.exists() else [sys.executable, "-m", "untangle"]


def verify_command(app: str, event_file: str, count: int, folder: str) -> list[str]:
    """The command verifying ``app`` on ``count`` copies of ``event_file`` (written to
    ``folder``, each under its own name, as a user's events would be)."""
    arguments = [*untangle_executable(), "verify", app]
    for index in range(count):
        copy = os.path.join(folder, f"event-{index:03d}.json")
        shutil.copyfile(event_file, copy)
        arguments += ["--event", copy]
    return arguments


def compile_untangle() -> None:
    """Write the bytecode of the untangle and codemods packages the runs import (nothing
    when it is there already)."""
    for name in ("untangle", "codemods"):
        spec = importlib.util.find_spec(name)
        for folder in (spec.submodule_search_locations or []) if spec else []:
            compileall.compile_dir(folder, quiet=1)


def _run_once(command: list[str]) -> dict[str, float]:
    """Wall and CPU seconds of one run of ``command`` (in a fresh helper process, so that
    RUSAGE_CHILDREN holds this run only)."""
    script = (
        "import json, resource, subprocess, sys, time\n"
        "start = time.perf_counter()\n"
        "code = subprocess.run(sys.argv[1:], stdout=subprocess.DEVNULL).returncode\n"
        "wall = time.perf_counter() - start\n"
        "used = resource.getrusage(resource.RUSAGE_CHILDREN)\n"
        "print(json.dumps({'wall_s': wall, 'cpu_s': used.ru_utime + used.ru_stime, "
        "'rc': code}))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", script, *command], capture_output=True, text=True, check=True
    )
    return dict(json.loads(done.stdout))


def measure(
    app: str, event_file: str, counts: list[int], repeat: int = 3
) -> list[dict[str, float]]:
    """For each N of ``counts``: the median wall and CPU seconds of ``repeat`` runs, and the
    exit code (0: every event equivalent). Runs of different N alternate, so that a busy
    moment of the machine spreads over all of them."""
    compile_untangle()
    samples: dict[int, list[dict[str, float]]] = {n: [] for n in counts}
    with tempfile.TemporaryDirectory(prefix="untangle-bench-verify-") as folder:
        commands = {}
        for n in counts:
            os.makedirs(os.path.join(folder, str(n)))
            commands[n] = verify_command(app, event_file, n, os.path.join(folder, str(n)))
        for _ in range(repeat):
            for n in counts:
                samples[n].append(_run_once(commands[n]))
    return [
        {
            "events": n,
            "wall_s": statistics.median(s["wall_s"] for s in samples[n]),
            "cpu_s": statistics.median(s["cpu_s"] for s in samples[n]),
            "rc": max(s["rc"] for s in samples[n]),
        }
        for n in counts
    ]


def per_extra_event(rows: list[dict[str, float]], key: str) -> float:
    """Seconds per event beyond the first: the slope between the smallest and largest N."""
    first, last = rows[0], rows[-1]
    if last["events"] == first["events"]:
        return 0.0
    return (last[key] - first[key]) / (last["events"] - first["events"])


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--app", default=str(DEFAULT_APP))
    parser.add_argument("--event", default=str(DEFAULT_EVENT))
    parser.add_argument("--events", type=int, nargs="+", default=[1, 10, 50])
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--json", action="store_true")
    options = parser.parse_args(argv)
    started = time.perf_counter()
    rows = measure(options.app, options.event, sorted(options.events), options.repeat)
    summary = {
        "app": os.path.relpath(options.app, REPO),
        "rows": rows,
        "per_extra_event_wall_s": per_extra_event(rows, "wall_s"),
        "per_extra_event_cpu_s": per_extra_event(rows, "cpu_s"),
        "load_average": os.getloadavg()[0],
        "seconds": time.perf_counter() - started,
    }
    if options.json:
        print(json.dumps(summary, indent=2))
        return 0
    print(f"untangle verify {summary['app']} (medians of {options.repeat})")
    print("| events | wall s | CPU s | exit |")
    print("|---|---|---|---|")
    for row in rows:
        print(f"| {row['events']} | {row['wall_s']:.2f} | {row['cpu_s']:.2f} | {row['rc']} |")
    print(
        f"per extra event: {1000 * summary['per_extra_event_wall_s']:.0f} ms wall, "
        f"{1000 * summary['per_extra_event_cpu_s']:.0f} ms CPU "
        f"(load average {summary['load_average']:.1f})"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
