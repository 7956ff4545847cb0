"""Benchmark untangle: `scan` on a corpus of real Python, `migrate` and `verify` on generated apps.

    python bench/run.py                 scan: build bench/.corpus once, then measure every step
    python bench/run.py --quick         scan on a small subset (aws-sam-translator + boto3)
    python bench/run.py migrate         migrate (dry run, --write) on 10, 50, 200 workflows
    python bench/run.py verify          verify on 10, 50, 200 workflows, and few / many events
    python bench/run.py verify --quick  N=10 only (also for migrate)
    python bench/run.py --json          the same results as JSON on stdout
    python bench/run.py --markdown      only the short table the README carries
    python bench/run.py --corpus DIR    scan an existing directory instead

Every measurement is a whole fresh subprocess started through bench/_peak.py, which reports
that command's wall time and peak RSS. Progress goes to stderr; the table (or JSON) to stdout.
See bench/README.md. Standard library only."""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import platform
import re
import shutil
import subprocess
import sys
import tarfile
import tempfile
import time
import zipfile
from pathlib import Path
from typing import Any

import _tasks
import _workflows
from _measure import (
    BENCH,
    Row,
    RunResult,
    display_path,
    failure_line,
    log,
    measure,
    untangle_cmd,
)

CORPUS = BENCH / ".corpus"
SDISTS = CORPUS / "sdists"
TASKS = BENCH / "_tasks.py"
MANIFEST = CORPUS / "manifest.json"
MARKER = ".untangle-bench-sdist"

# (name on PyPI, version): the corpus of shared/notes/performance-facts.md.
PACKAGES: list[tuple[str, str]] = [
    ("aws-sam-translator", "1.115.0"),
    ("boto3", "1.44.8"),
    ("botocore", "1.44.8"),
    ("cfn-lint", "1.58.0"),
    ("django", "5.2.19"),
    ("moto", "5.2.5"),
]
QUICK = ("aws-sam-translator", "boto3")
MODES = ("scan", "migrate", "verify")
# Directories dropped from an unpacked sdist, relative to its top.
DROP = {"django": ["tests"]}

SEMGREP_RULE = """\
rules:
  - id: lambda-invoke
    pattern: $X.invoke(FunctionName=$F, ...)
    message: Lambda invoke
    languages: [python]
    severity: INFO
"""
# Shadows the repository's [tool.untangle] (which excludes bench/**) for a scanner that looks
# for pyproject.toml upwards from what it scans.
CORPUS_PYPROJECT = """\
# Written by bench/run.py: the corpus is scanned whole, nothing excluded.
[tool.untangle]
exclude = []
"""


def norm(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


# --- corpus ---------------------------------------------------------------------------------


def _release(version: str) -> tuple[int, ...] | None:
    if not re.fullmatch(r"\d+(\.\d+)*", version):
        return None  # pre-releases, dev and local versions are never a fallback
    return tuple(int(part) for part in version.split("."))


def closest_version(wanted: str, available: list[str]) -> str | None:
    """The release nearest to `wanted`: the latest not newer, unless a newer one shares more
    leading components with it (so 1.44.9 beats 1.43.99 for 1.44.8)."""
    target = _release(wanted)
    releases = sorted((r, v) for v in available if (r := _release(v)) is not None)
    if target is None or not releases:
        return None

    def shared(r: tuple[int, ...]) -> int:
        n = 0
        for a, b in zip(r, target, strict=False):
            if a != b:
                break
            n += 1
        return n

    older = [rv for rv in releases if rv[0] <= target]
    newer = [rv for rv in releases if rv[0] > target]
    below = older[-1] if older else None
    above = newer[0] if newer else None
    if below is None:
        return above[1] if above else None
    if above is not None and shared(above[0]) > shared(below[0]):
        return above[1]
    return below[1]


def find_sdist(name: str, version: str) -> Path | None:
    if not SDISTS.is_dir():
        return None
    for path in sorted(SDISTS.iterdir()):
        base = path.name
        for ext in (".tar.gz", ".tar.bz2", ".tgz", ".zip"):
            if base.endswith(ext):
                stem = base[: -len(ext)]
                dist, _, ver = stem.rpartition("-")
                if norm(dist) == norm(name) and ver == version:
                    return path
    return None


def pip_download(name: str, version: str) -> subprocess.CompletedProcess[str]:
    cmd = [
        sys.executable,
        "-m",
        "pip",
        "download",
        "--no-deps",
        "--no-binary",
        ":all:",
        f"{name}=={version}",
        "-d",
        str(SDISTS),
    ]
    return subprocess.run(cmd, capture_output=True, text=True, stdin=subprocess.DEVNULL)


def fetch_sdist(name: str, wanted: str, manifest: dict[str, Any]) -> tuple[Path, str]:
    """Download (or reuse) the sdist of name==wanted, or of the closest version PyPI serves."""
    known = manifest.get("sdists", {}).get(name)
    if known and known.get("requested") == wanted:
        path = find_sdist(name, known["version"])
        if path is not None:
            return path, known["version"]
    path = find_sdist(name, wanted)
    version = wanted
    if path is None:
        SDISTS.mkdir(parents=True, exist_ok=True)
        log(f"  downloading {name}=={wanted} (sdist)")
        result = pip_download(name, wanted)
        if result.returncode != 0:
            match = re.search(r"\(from versions: ([^)]*)\)", result.stderr)
            available = [v.strip() for v in match.group(1).split(",")] if match else []
            fallback = closest_version(wanted, available)
            if fallback is None:
                tail = result.stderr.strip().splitlines()[-1:] or ["no output"]
                raise RuntimeError(f"pip download {name}=={wanted} failed: {tail[0]}")
            log(f"  NOTE: {name} {wanted} is not served as an sdist; using closest: {fallback}")
            version = fallback
            result = pip_download(name, version)
            if result.returncode != 0:
                tail = result.stderr.strip().splitlines()[-1:] or ["no output"]
                raise RuntimeError(f"pip download {name}=={version} failed: {tail[0]}")
        path = find_sdist(name, version)
        if path is None:
            raise RuntimeError(f"pip download {name}=={version} saved no sdist in {SDISTS}")
    manifest.setdefault("sdists", {})[name] = {
        "requested": wanted,
        "version": version,
        "file": path.name,
    }
    return path, version


def _extract(archive: Path, into: Path) -> None:
    if archive.name.endswith(".zip"):
        with zipfile.ZipFile(archive) as zf:
            zf.extractall(into)
        return
    with tarfile.open(archive) as tf:
        if hasattr(tarfile, "data_filter"):
            tf.extractall(into, filter="data")
        else:  # Python 3.10 before 3.10.12
            tf.extractall(into)


def unpack(archive: Path, dest: Path, drop: list[str]) -> bool:
    """Unpack archive's top directory as dest (reused when its marker names archive)."""
    marker = dest / MARKER
    if marker.is_file() and marker.read_text(encoding="utf-8").strip() == archive.name:
        return False
    log(f"  unpacking {archive.name} -> {dest.relative_to(CORPUS)}")
    tmp = dest.parent / f".unpack-{dest.name}"
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    _extract(archive, tmp)
    entries = list(tmp.iterdir())
    top = entries[0] if len(entries) == 1 and entries[0].is_dir() else tmp
    for rel in drop:
        shutil.rmtree(top / rel, ignore_errors=True)
    (top / MARKER).write_text(archive.name + "\n", encoding="utf-8")
    if dest.exists():
        shutil.rmtree(dest)
    top.rename(dest)
    shutil.rmtree(tmp, ignore_errors=True)
    return True


def _link_or_copy(src: str, dst: str) -> None:
    try:
        os.link(src, dst)
    except OSError:
        shutil.copy2(src, dst)


def prepare_root(root: Path, names: list[str], src: Path) -> None:
    """root holds exactly the unpacked trees `names` (hard links into src when root != src)."""
    root.mkdir(parents=True, exist_ok=True)
    if root != src:
        for name in names:
            dest, origin = root / name, src / name
            same = (dest / MARKER).is_file() and (dest / MARKER).read_text(encoding="utf-8") == (
                origin / MARKER
            ).read_text(encoding="utf-8")
            if not same:
                shutil.rmtree(dest, ignore_errors=True)
                shutil.copytree(origin, dest, symlinks=True, copy_function=_link_or_copy)
    extra = sorted(
        p.name
        for p in root.iterdir()
        if p.is_dir() and p.name not in names and not p.name.startswith(".")
    )
    if extra:
        log(f"  WARNING: {root} also holds {', '.join(extra)}: they are measured too")
    write_if_changed(root / "pyproject.toml", CORPUS_PYPROJECT)
    write_if_changed(root / ".semgrepignore", "")


def write_if_changed(path: Path, text: str) -> None:
    """Leaves an identical file alone, so a concurrent run never sees it half-written."""
    try:
        if path.read_text(encoding="utf-8") == text:
            return
    except (OSError, ValueError):
        pass
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(text, encoding="utf-8")
    tmp.replace(path)


def build_corpus(quick: bool) -> tuple[Path, list[dict[str, str]], float, bool]:
    """Returns (root, composition, seconds spent, whether anything was downloaded/unpacked)."""
    start = time.perf_counter()
    manifest: dict[str, Any] = {}
    if MANIFEST.is_file():
        try:
            manifest = json.loads(MANIFEST.read_text(encoding="utf-8"))
        except ValueError:
            manifest = {}
    wanted = [(n, v) for n, v in PACKAGES if not quick or n in QUICK]
    src = CORPUS / "src"
    src.mkdir(parents=True, exist_ok=True)
    composition = []
    changed = False
    for name, version in wanted:
        had = find_sdist(name, manifest.get("sdists", {}).get(name, {}).get("version", version))
        archive, got = fetch_sdist(name, version, manifest)
        changed |= had is None
        changed |= unpack(archive, src / name, DROP.get(name, []))
        entry = {"name": name, "requested": version, "version": got}
        if DROP.get(name):
            entry["dropped"] = ", ".join(f"{d}/" for d in DROP[name])
        composition.append(entry)
    write_if_changed(MANIFEST, json.dumps(manifest, indent=2) + "\n")
    root = CORPUS / "quick" if quick else src
    names = [n for n, _ in wanted]
    if quick:
        prepare_root(root, names, src)
    else:
        # The full root is src itself; a quick run may have left only part of it, never extra.
        prepare_root(root, [n for n, _ in PACKAGES], src)
    return root, composition, time.perf_counter() - start, changed


def describe_composition(composition: list[dict[str, str]]) -> str:
    parts = []
    for entry in composition:
        text = f"{entry['name']} {entry['version']}"
        if entry["version"] != entry["requested"]:
            text += f" (asked {entry['requested']})"
        if entry.get("dropped"):
            text += f" without {entry['dropped']}"
        parts.append(text)
    return ", ".join(parts)


# --- steps --------------------------------------------------------------------------------


def step_read(root: Path, repeat: int, timeout: float) -> Row:
    row = Row("read bytes")
    for _ in range(repeat):
        run = measure([sys.executable, str(TASKS), "read", str(root)], timeout=timeout)
        if run.rc != 0:
            row.fail(failure_line(run, timeout))
            return row
        data = json.loads(run.stdout)
        row.files, row.lines = data["files"], data["lines"]
        row.add(run)
    row.notes.append("Python os.walk + read every .py")
    return row


def step_ast(root: Path, repeat: int, timeout: float) -> Row:
    row = Row("ast.parse, 2 processes")
    data: dict[str, Any] = {}
    for _ in range(repeat):
        run = measure([sys.executable, str(TASKS), "ast", str(root), "2"], timeout=timeout)
        if run.rc != 0:
            row.fail(failure_line(run, timeout))
            return row
        data = json.loads(run.stdout)
        row.files, row.lines = data["files"], data["lines"]
        row.add(run)
    failures = data.get("failures", {})
    detail = ", ".join(f"{k} {v}" for k, v in sorted(failures.items()))
    row.notes.append(
        f"{data.get('failed', 0)} failed to parse" + (f" ({detail})" if detail else "")
    )
    row.notes.append(f"Python {platform.python_version()} grammar")
    row.extra["parse_failures"] = failures
    return row


def _parse_untangle(run: RunResult, timeout: float) -> tuple[dict[str, Any] | None, str | None]:
    if run.timed_out or run.rc not in (0, 1):
        prefix = "" if run.timed_out or run.error else f"exit {run.rc}: "
        return None, prefix + failure_line(run, timeout)
    try:
        data = json.loads(run.stdout)
    except ValueError:
        # `python -m untangle` without a __main__ exits 1 too: say what stderr said.
        if run.stderr.strip():
            return None, f"exit {run.rc}, no JSON: {failure_line(run, timeout)}"
        first = run.stdout.strip().splitlines()[:1] or ["(empty)"]
        return None, f"exit {run.rc} but stdout is not JSON: {first[0][:100]}"
    if not isinstance(data, dict) or "findings" not in data:
        return None, f"exit {run.rc} but the JSON has no 'findings'"
    return data, None


def _dir_mib(path: Path) -> float:
    total = 0
    for dirpath, _, filenames in os.walk(path):
        for name in filenames:
            with contextlib.suppress(OSError):
                total += os.lstat(os.path.join(dirpath, name)).st_size
    return total / 2**20


def step_untangle(
    root: Path, corpus_files: int, corpus_lines: int, repeat: int, timeout: float, warm: bool
) -> Row:
    row = Row(f"untangle scan ({'warm' if warm else 'cold'})")
    cmd = [*untangle_cmd(), "scan", display_path(root), "--format", "json"]
    row.extra["command"] = " ".join(cmd)
    counts: set[tuple[int, int, int]] = set()
    warm_dir = Path(tempfile.mkdtemp(prefix="untangle-bench-warm-")) if warm else None
    try:
        if warm_dir is not None:
            prime = measure(
                cmd, env={**os.environ, "UNTANGLE_CACHE_DIR": str(warm_dir)}, timeout=timeout
            )
            _, problem = _parse_untangle(prime, timeout)
            if problem:
                row.fail(f"{problem} (priming run)")
                return row
            row.notes.append(f"cache {_dir_mib(warm_dir):.1f} MiB")
        for _ in range(repeat):
            cache = warm_dir or Path(tempfile.mkdtemp(prefix="untangle-bench-cold-"))
            try:
                run = measure(
                    cmd, env={**os.environ, "UNTANGLE_CACHE_DIR": str(cache)}, timeout=timeout
                )
            finally:
                if warm_dir is None:
                    shutil.rmtree(cache, ignore_errors=True)
            data, problem = _parse_untangle(run, timeout)
            if data is None:
                row.fail(problem or "unknown failure")
                return row
            findings, errors = data.get("findings") or [], data.get("errors") or []
            scanned = int(data.get("files_scanned", -1))
            counts.add((len(findings), len(errors), scanned))
            if (run.rc == 1) != bool(findings):
                row.notes.append(f"exit {run.rc} with {len(findings)} findings")
            row.add(run)
    finally:
        if warm_dir is not None:
            shutil.rmtree(warm_dir, ignore_errors=True)
    findings_n, errors_n, scanned = sorted(counts)[-1]
    row.files, row.lines = (scanned if scanned >= 0 else None), corpus_lines
    row.notes.insert(0, f"{findings_n} findings, {errors_n} errors")
    if len(counts) > 1:
        row.notes.append(f"runs disagree: {sorted(counts)} (findings, errors, files)")
    if scanned != corpus_files:
        row.notes.append(f"files_scanned {scanned} != {corpus_files} .py files in corpus")
    row.extra.update(findings=findings_n, errors=errors_n, files_scanned=scanned)
    return row


def semgrep_version(exe: str) -> str:
    try:
        out = subprocess.run(
            [exe, "--version"], capture_output=True, text=True, timeout=120, env=_semgrep_env()
        )
    except (OSError, subprocess.TimeoutExpired):
        return "?"
    return (out.stdout.strip().splitlines() or ["?"])[-1]


def _semgrep_env() -> dict[str, str]:
    return {**os.environ, "SEMGREP_ENABLE_VERSION_CHECK": "0", "SEMGREP_SEND_METRICS": "off"}


def step_semgrep(
    root: Path, corpus_files: int, corpus_lines: int, repeat: int, timeout: float
) -> Row:
    row = Row("semgrep")
    exe = shutil.which("semgrep")
    if exe is None:
        row.status = "skipped"
        row.notes.append("not installed (semgrep not on PATH)")
        return row
    ignore = root / ".semgrepignore"
    if not ignore.exists():
        ignore.write_text("", encoding="utf-8")
        log(f"  wrote an empty {ignore} so that semgrep scans tests/ too")
    elif ignore.stat().st_size:
        row.notes.append(f"{ignore} is not empty")
    with tempfile.TemporaryDirectory(prefix="untangle-bench-semgrep-") as tmp:
        rule = Path(tmp) / "rule.yaml"
        rule.write_text(SEMGREP_RULE, encoding="utf-8")
        cmd = [
            exe,
            "--config",
            str(rule),
            "--metrics",
            "off",
            "-j",
            "2",
            "--quiet",
            "--json",
            # The corpus lies in a git work tree that ignores it: without these two, semgrep
            # scans nothing there, or reads the work tree's .semgrepignore and skips tests/.
            "--no-git-ignore",
            "--project-root",
            str(root),
            str(root),
        ]
        row.extra["command"] = " ".join(cmd)
        data: dict[str, Any] = {}
        for _ in range(repeat):
            run = measure(cmd, env=_semgrep_env(), timeout=timeout)
            try:
                data = json.loads(run.stdout) if run.stdout.strip() else {}
            except ValueError:
                data = {}
            if run.rc != 0 or not data:
                message = failure_line(run, timeout)
                if data.get("errors"):
                    message = str(data["errors"][0].get("message", message)).splitlines()[0]
                row.fail(f"exit {run.rc}: {message}")
                return row
            row.add(run)
    results = len(data.get("results", []))
    paths = data.get("paths", {}).get("scanned", [])
    scanned = sum(1 for p in paths if p.endswith(".py"))
    in_tests = sum(1 for p in paths if "/tests/" in p or "/test/" in p)
    row.files, row.lines = scanned, corpus_lines
    row.notes.append(f"{results} results, {len(data.get('errors', []))} errors")
    row.notes.append(f"{in_tests} files under tests/ scanned")
    if scanned != corpus_files:
        row.notes.append(f"scanned {scanned} of {corpus_files} .py files")
    if len(paths) != scanned:
        row.notes.append(f"+{len(paths) - scanned} non-.py targets")
    row.notes.append(f"semgrep {semgrep_version(exe)}, -j 2, skips files over 1 MB")
    row.extra.update(results=results, files_scanned=scanned)
    return row


# --- output ---------------------------------------------------------------------------------


def fmt_int(value: int | None) -> str:
    return "—" if value is None else f"{value:,}"


def render_markdown(result: dict[str, Any]) -> str:
    if "mode" in result:
        return render_workflows_markdown(result)
    m, c = result["machine"], result["corpus"]
    out = [
        f"CPUs: {m['cpus']} | Python {m['python']} ({m['implementation']}) | {m['platform']}"
        f" | load average {m['load_avg_1m']} at start | untangle: `{m['untangle_command']}`",
        "",
        f"Corpus `{c['root']}`: {c['description']} — {c['files']:,} .py files, "
        f"{c['lines']:,} lines, {c['bytes'] / 1e6:.1f} MB",
    ]
    if c.get("build_s") is not None:
        how = "built" if c.get("built") else "checked (reused)"
        out.append(f"Corpus {how} in {c['build_s']:.1f} s. Repeats per step: {result['repeat']}.")
    out += [
        "",
        "| step | files | lines | wall s (median) | peak MiB | notes |",
        "|---|---:|---:|---:|---:|---|",
    ]
    for row in result["rows"]:
        ok = row["status"] == "ok"
        wall = f"{row['wall_s']:.2f}" if ok and row["wall_s"] is not None else "—"
        peak = f"{row['peak_mib']:.0f}" if ok and row["peak_mib"] is not None else "—"
        notes = row["notes"].replace("|", "\\|")
        files = fmt_int(row["files"]) if ok else "—"
        lines = fmt_int(row["lines"]) if ok else "—"
        out.append(f"| {row['step']} | {files} | {lines} | {wall} | {peak} | {notes} |")
    return "\n".join(out)


def render_workflows_markdown(result: dict[str, Any]) -> str:
    m = result["machine"]
    out = [
        f"CPUs: {m['cpus']} | Python {m['python']} ({m['implementation']}) | {m['platform']}"
        f" | load average {m['load_avg_1m']} at start | untangle: `{m['untangle_command']}`",
        "",
        f"`run.py {result['mode']}`: generated projects of {', '.join(map(str, result['sizes']))}"
        f" workflows (bench/_projects.py). Repeats per step: {result['repeat']}; "
        f"{result['elapsed_s']:.0f} s in all.",
        "",
        "| step | layout | workflows | events | wall s (median) | CPU s (median) | peak MiB "
        "| notes |",
        "|---|---|---:|---:|---:|---:|---:|---|",
    ]
    for row in result["rows"]:
        ok = row["status"] == "ok"
        wall = f"{row['wall_s']:.2f}" if ok and row["wall_s"] is not None else "—"
        peak = f"{row['peak_mib']:.0f}" if ok and row["peak_mib"] is not None else "—"
        cpu = f"{row['cpu_s']:.2f}" if ok and row.get("cpu_s") is not None else "—"
        layout = row.get("layout") or "one app"
        events = fmt_int(row.get("events"))
        notes = row["notes"].replace("|", "\\|")
        out.append(
            f"| {row['step']} | {layout} | {row['workflows']} | {events} | {wall} | {cpu}"
            f" | {peak} | {notes} |"
        )
    return "\n".join(out)


def render_readme_table(result: dict[str, Any]) -> str:
    """The short table the README and bench/README.md carry, with the caption to paste above it.

    migrate and verify add the CPU seconds: on a busy machine they move far less than the wall."""
    m = result["machine"]
    with_cpu = "mode" in result
    caption = (
        f"On {m['cpus']} cores, Python {m['python']}, load average {m['load_avg_1m']} at start, "
        f"medians of {result['repeat']} runs, {time.strftime('%Y-%m-%d')}:"
    )
    if with_cpu:
        out = [caption, "", "| step | wall s | CPU s | peak MiB |", "|---|---:|---:|---:|"]
    else:
        out = [caption, "", "| step | wall s | peak MiB |", "|---|---:|---:|"]
    for row in result["rows"]:
        ok = row["status"] == "ok" and row["wall_s"] is not None
        wall = f"{row['wall_s']:.2f}" if ok else "failed"
        peak = f"{row['peak_mib']:.0f}" if ok and row["peak_mib"] is not None else "—"
        if with_cpu:
            cpu = f"{row['cpu_s']:.2f}" if ok and row.get("cpu_s") is not None else "—"
            out.append(f"| {workflow_step_name(row)} | {wall} | {cpu} | {peak} |")
        else:
            out.append(f"| {row['step']} | {wall} | {peak} |")
    return "\n".join(out)


def workflow_step_name(row: dict[str, Any]) -> str:
    where = row.get("layout") or "one app"
    n = row["workflows"]
    events = f", {row['events']} events" if row.get("events") is not None else ""
    return f"{row['step']}, {where}, {n} workflow{'' if n == 1 else 's'}{events}"


def apply_baseline(rows: list[Row], path: Path) -> None:
    try:
        base = {r["step"]: r for r in json.loads(path.read_text(encoding="utf-8"))["rows"]}
    except (OSError, ValueError, KeyError, TypeError) as exc:
        log(f"WARNING: cannot read baseline {path}: {exc}")
        return
    for row in rows:
        old = base.get(row.step)
        if row.status != "ok" or not old or old.get("status") != "ok":
            continue
        if old.get("wall_s") and row.wall_s is not None:
            ratio = row.wall_s / old["wall_s"]
            row.notes.append(f"vs baseline wall {old['wall_s']:.2f} s (x{ratio:.2f})")
        if old.get("peak_mib") and row.peak_mib is not None:
            ratio = row.peak_mib / old["peak_mib"]
            row.notes.append(f"peak {old['peak_mib']:.0f} MiB (x{ratio:.2f})")


def machine_info() -> dict[str, Any]:
    cpus = os.cpu_count() or 0
    usable = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else cpus
    return {
        "cpus": cpus if usable == cpus else f"{usable} usable of {cpus}",
        "python": platform.python_version(),
        "implementation": platform.python_implementation(),
        "platform": platform.platform(terse=True),
        "untangle_command": " ".join(untangle_cmd()),
        "load_avg_1m": round(os.getloadavg()[0], 2) if hasattr(os, "getloadavg") else None,
    }


def parse_sizes(text: str) -> list[int]:
    try:
        sizes = [int(part) for part in text.split(",") if part.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a list of numbers: {text!r}") from None
    if not sizes or min(sizes) < 1:
        raise argparse.ArgumentTypeError(f"sizes must be positive numbers: {text!r}")
    return sizes


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0], formatter_class=argparse.RawTextHelpFormatter
    )
    parser.add_argument(
        "mode",
        nargs="?",
        default="scan",
        choices=MODES,
        help="scan (default): the corpus; migrate / verify: generated projects of N workflows",
    )
    parser.add_argument("--repeat", type=int, default=3, help="runs per step (median wall)")
    parser.add_argument("--json", action="store_true", help="print JSON instead of Markdown")
    parser.add_argument(
        "--markdown",
        action="store_true",
        help="print only the short table of the README (step, wall, peak) and its caption",
    )
    parser.add_argument(
        "--quick",
        action="store_true",
        help="scan: small corpus (aws-sam-translator + boto3); migrate / verify: N=10 only",
    )
    parser.add_argument(
        "--sizes",
        type=parse_sizes,
        help="migrate / verify: workflows per project, comma-separated (default 10,50,200)",
    )
    parser.add_argument(
        "--layout",
        choices=_workflows.LAYOUTS,
        help="migrate / verify: only this layout (default: both)",
    )
    parser.add_argument(
        "--many-events",
        type=int,
        default=_workflows.MANY_EVENTS,
        help=f"verify: events of the many-events row (default {_workflows.MANY_EVENTS}; "
        f"the few-events row has {_workflows.FEW_EVENTS})",
    )
    parser.add_argument("--corpus", type=Path, help="measure this directory; build nothing")
    parser.add_argument(
        "--timeout", type=float, default=1800, help="seconds per run (default 1800)"
    )
    parser.add_argument("--baseline", type=Path, help="a previous --json output to compare with")
    args = parser.parse_args(argv)
    if args.repeat < 1:
        parser.error("--repeat must be at least 1")
    if args.json and args.markdown:
        parser.error("--json and --markdown: choose one")
    if args.many_events <= _workflows.FEW_EVENTS:
        parser.error(f"--many-events must be more than {_workflows.FEW_EVENTS}")
    if args.mode != "scan":
        if args.corpus is not None:
            parser.error(f"--corpus is for scan, not {args.mode}")
        return main_workflows(args)
    if args.sizes is not None or args.layout is not None:
        parser.error("--sizes and --layout are for migrate and verify, not scan")
    return main_scan(args)


def main_scan(args: argparse.Namespace) -> int:
    build_s: float | None = None
    built = False
    if args.corpus is not None:
        root = args.corpus.resolve()
        if not root.is_dir():
            log(f"ERROR: --corpus {args.corpus}: not a directory")
            return 2
        description = f"custom directory {root}"
        composition: list[dict[str, str]] = []
    else:
        which = "quick subset" if args.quick else "full corpus"
        log(f"corpus: preparing {which} in {display_path(CORPUS)}")
        try:
            root, composition, build_s, built = build_corpus(args.quick)
        except (RuntimeError, OSError, tarfile.TarError, zipfile.BadZipFile) as exc:
            log(f"ERROR: cannot build the corpus: {exc}")
            return 2
        log(f"corpus: ready in {build_s:.1f} s")
        description = describe_composition(composition)

    log("counting .py files and lines")
    stats = _tasks.read_stats(str(root))  # also warms the page cache for every step
    if stats["files"] == 0:
        log(f"ERROR: no .py files under {root}")
        return 2

    machine = machine_info()
    rows: list[Row] = []
    steps = [
        ("read bytes", lambda: step_read(root, args.repeat, args.timeout)),
        (
            "untangle scan (cold)",
            lambda: step_untangle(
                root, stats["files"], stats["lines"], args.repeat, args.timeout, False
            ),
        ),
        (
            "untangle scan (warm)",
            lambda: step_untangle(
                root, stats["files"], stats["lines"], args.repeat, args.timeout, True
            ),
        ),
        ("ast.parse, 2 processes", lambda: step_ast(root, args.repeat, args.timeout)),
        (
            "semgrep",
            lambda: step_semgrep(root, stats["files"], stats["lines"], args.repeat, args.timeout),
        ),
    ]
    for name, run_step in steps:
        log(f"measuring: {name}")
        row = run_step()
        if row.status != "ok":
            log(f"  {'; '.join(row.notes)}")
        rows.append(row)
    if args.baseline:
        apply_baseline(rows, args.baseline)

    result = {
        "machine": machine,
        "repeat": args.repeat,
        "corpus": {
            "root": display_path(root),
            "quick": bool(args.quick and args.corpus is None),
            "description": description,
            "packages": composition,
            **stats,
            "build_s": None if build_s is None else round(build_s, 2),
            "built": built,
        },
        "rows": [row.as_dict() for row in rows],
    }
    print_result(result, args)
    return 0


def print_result(result: dict[str, Any], args: argparse.Namespace) -> None:
    if args.json:
        print(json.dumps(result, indent=2))
    elif args.markdown:
        print(render_readme_table(result))
    else:
        print(render_markdown(result))


def main_workflows(args: argparse.Namespace) -> int:
    """`run.py migrate` / `run.py verify`: generated projects, no corpus."""
    sizes = args.sizes or list(_workflows.QUICK_SIZES if args.quick else _workflows.SIZES)
    machine = machine_info()
    start = time.perf_counter()
    try:
        layouts = (args.layout,) if args.layout else _workflows.LAYOUTS
        rows = _workflows.run_mode(
            args.mode, sizes, args.repeat, args.timeout, layouts, args.many_events
        )
    except _workflows.ProjectRefused as exc:
        log(f"ERROR: a generated orchestrator was not converted, so nothing is measured: {exc}")
        return 2
    if args.baseline:
        apply_baseline(rows, args.baseline)
    result = {
        "machine": machine,
        "mode": args.mode,
        "repeat": args.repeat,
        "sizes": sizes,
        "elapsed_s": round(time.perf_counter() - start, 1),
        "rows": [row.as_dict() for row in rows],
    }
    print_result(result, args)
    return 0 if all(row.status == "ok" for row in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
