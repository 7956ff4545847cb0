"""Baseline workloads that bench/run.py times, each run as a fresh process.

    python bench/_tasks.py read ROOT        walk ROOT, read every .py file
    python bench/_tasks.py ast ROOT [N]     ast.parse every .py file, N processes (default 2)

Each prints one JSON object on stdout. Files that fail to parse are counted, never fatal.
"""

from __future__ import annotations

import ast
import json
import multiprocessing
import os
import sys
from collections import Counter
from collections.abc import Iterator


def iter_py_files(root: str) -> Iterator[str]:
    """Every `*.py` file under root, in a stable order; directory symlinks are not followed."""
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames.sort()
        for name in sorted(filenames):
            if name.endswith(".py"):
                yield os.path.join(dirpath, name)


def count_lines(data: bytes) -> int:
    lines = data.count(b"\n")
    if data and not data.endswith(b"\n"):
        lines += 1
    return lines


def read_stats(root: str) -> dict[str, int]:
    files = lines = nbytes = 0
    for path in iter_py_files(root):
        with open(path, "rb") as fh:
            data = fh.read()
        files += 1
        lines += count_lines(data)
        nbytes += len(data)
    return {"files": files, "lines": lines, "bytes": nbytes}


def _parse_one(path: str) -> tuple[int, str | None]:
    """(lines, error type or None)."""
    try:
        with open(path, "rb") as fh:
            data = fh.read()
    except OSError as exc:
        return 0, type(exc).__name__
    try:
        ast.parse(data, filename=path)
    except (SyntaxError, ValueError, RecursionError, MemoryError, OverflowError) as exc:
        return count_lines(data), type(exc).__name__
    return count_lines(data), None


def parse_stats(root: str, processes: int) -> dict[str, object]:
    paths = list(iter_py_files(root))
    files = lines = 0
    failures: Counter[str] = Counter()
    with multiprocessing.Pool(processes) as pool:
        for n, err in pool.imap_unordered(_parse_one, paths, chunksize=16):
            files += 1
            lines += n
            if err is not None:
                failures[err] += 1
    return {
        "files": files,
        "lines": lines,
        "failed": sum(failures.values()),
        "failures": dict(failures),
        "processes": processes,
    }


def main(argv: list[str]) -> int:
    if len(argv) >= 2 and argv[0] == "read":
        print(json.dumps(read_stats(argv[1])))
        return 0
    if len(argv) >= 2 and argv[0] == "ast":
        processes = int(argv[2]) if len(argv) > 2 else 2
        print(json.dumps(parse_stats(argv[1], processes)))
        return 0
    print(__doc__, file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
