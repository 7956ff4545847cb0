"""Run one command and record its wall time and peak resident memory.

Usage: python bench/_peak.py REPORT.json -- CMD [ARGS...]

The command inherits stdin, stdout and stderr. This wrapper is started fresh for every
measurement, so RUSAGE_CHILDREN covers exactly that one command (and whichever of its own
descendants it waited for): ru_maxrss is the peak RSS of the largest single process of the
command's tree, never a leftover from an earlier run; cpu_s is the user + system time of that
tree (the processes it waited for). The report is written as JSON to
REPORT.json; the wrapper exits with the command's exit code.
"""

from __future__ import annotations

import json
import resource
import subprocess
import sys
import time


def main(argv: list[str]) -> int:
    if len(argv) < 3 or argv[1] != "--":
        print("usage: _peak.py REPORT.json -- CMD [ARGS...]", file=sys.stderr)
        return 125
    report_path, cmd = argv[0], argv[2:]
    report: dict[str, object] = {"cmd": cmd}
    start = time.perf_counter()
    try:
        proc = subprocess.Popen(cmd)
    except OSError as exc:
        report["error"] = f"cannot start {cmd[0]}: {exc}"
        rc = 127
    else:
        rc = proc.wait()
    report["wall_s"] = time.perf_counter() - start
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    maxrss = usage.ru_maxrss
    # CPU seconds of the command and the descendants it waited for: on a machine busy with other
    # work this moves far less than the wall time does.
    report["cpu_s"] = usage.ru_utime + usage.ru_stime
    # Linux reports KiB, macOS bytes.
    report["peak_kib"] = maxrss // 1024 if sys.platform == "darwin" else maxrss
    report["rc"] = rc
    with open(report_path, "w", encoding="utf-8") as fh:
        json.dump(report, fh)
    return rc if rc >= 0 else 128 - rc


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
