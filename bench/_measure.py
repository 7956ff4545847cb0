"""Measuring one command: a fresh process through bench/_peak.py, its wall time and peak RSS.

Shared by the scan benchmark (bench/run.py) and the migrate and verify ones (bench/_workflows.py).
Standard library only.
"""

from __future__ import annotations

import json
import os
import signal
import statistics
import subprocess
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

BENCH = Path(__file__).resolve().parent
REPO = BENCH.parent
PEAK = BENCH / "_peak.py"


def log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


@dataclass
class RunResult:
    rc: int
    wall_s: float
    peak_mib: float
    stdout: str
    stderr: str
    timed_out: bool = False
    error: str | None = None
    cpu_s: float | None = None


def measure(
    cmd: list[str], *, env: dict[str, str] | None = None, cwd: Path = REPO, timeout: float
) -> RunResult:
    fd, report_path = tempfile.mkstemp(prefix="untangle-bench-", suffix=".json")
    os.close(fd)
    try:
        proc = subprocess.Popen(
            [sys.executable, str(PEAK), report_path, "--", *cmd],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            cwd=cwd,
            env=env,
            text=True,
            errors="replace",
            start_new_session=True,
        )
        timed_out = False
        try:
            out, err = proc.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            timed_out = True
            os.killpg(proc.pid, signal.SIGKILL)
            out, err = proc.communicate()
        try:
            with open(report_path, encoding="utf-8") as fh:
                report = json.load(fh)
        except (OSError, ValueError):
            report = {}
    finally:
        os.unlink(report_path)
    return RunResult(
        rc=int(report.get("rc", proc.returncode if proc.returncode is not None else -1)),
        wall_s=float(report.get("wall_s", float("nan"))),
        peak_mib=float(report.get("peak_kib", 0)) / 1024,
        stdout=out,
        stderr=err,
        timed_out=timed_out,
        error=report.get("error"),
        cpu_s=float(report["cpu_s"]) if "cpu_s" in report else None,
    )


def failure_line(run: RunResult, timeout: float) -> str:
    if run.timed_out:
        return f"timed out after {timeout:.0f} s"
    if run.error:
        return run.error
    lines = [line.strip() for line in run.stderr.splitlines() if line.strip()]
    if not lines:
        lines = [line.strip() for line in run.stdout.splitlines() if line.strip()]
    if not lines:
        return "no output"
    # A traceback's first line says nothing; its last line says what went wrong.
    line = lines[-1] if lines[0].startswith("Traceback") else lines[0]
    return line if len(line) <= 160 else line[:157] + "..."


@dataclass
class Row:
    step: str
    files: int | None = None
    lines: int | None = None
    wall_s: float | None = None
    peak_mib: float | None = None
    notes: list[str] = field(default_factory=list)
    status: str = "ok"  # ok | failed | skipped
    walls: list[float] = field(default_factory=list)
    peaks: list[float] = field(default_factory=list)
    cpus: list[float] = field(default_factory=list)
    extra: dict[str, Any] = field(default_factory=dict)

    def add(self, run: RunResult) -> None:
        self.walls.append(round(run.wall_s, 4))
        self.peaks.append(round(run.peak_mib, 1))
        self.wall_s = statistics.median(self.walls)
        self.peak_mib = max(self.peaks)
        if run.cpu_s is not None:
            self.cpus.append(round(run.cpu_s, 3))

    def fail(self, message: str) -> None:
        self.status = "failed"
        self.notes.insert(0, f"failed: {message}")

    def as_dict(self) -> dict[str, Any]:
        return {
            "step": self.step,
            "status": self.status,
            "files": self.files,
            "lines": self.lines,
            "wall_s": self.wall_s,
            "peak_mib": self.peak_mib,
            "wall_s_runs": self.walls,
            "peak_mib_runs": self.peaks,
            "cpu_s": statistics.median(self.cpus) if self.cpus else None,
            "cpu_s_runs": self.cpus,
            "notes": "; ".join(self.notes),
            **self.extra,
        }


def untangle_cmd() -> list[str]:
    exe = Path(sys.executable).parent / "untangle"
    if exe.is_file() and os.access(exe, os.X_OK):
        return [str(exe)]
    return [sys.executable, "-m", "untangle"]


def display_path(path: Path) -> str:
    try:
        return str(path.resolve().relative_to(REPO))
    except ValueError:
        return str(path.resolve())
