"""The command line: a thin layer over `untangle.scan`. Artifacts go to stdout, messages to
stderr.

Exit codes (scan): 0 no findings; 1 findings (new ones, with --baseline) or files that could not
be scanned; 2 usage or configuration error.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable
from dataclasses import replace
from typing import TYPE_CHECKING, Any, NoReturn

import click

from untangle import __version__
from untangle.baseline import BaselineError, dumps, loads, new_findings
from untangle.cache import default_cache_dir
from untangle.config import Config, ConfigError, find_config, load_config
from untangle.files import read_source, read_text
from untangle.report import FORMATS
from untangle.rules import ALL_RULES, resolve_rule

if TYPE_CHECKING:
    from untangle.scan import ScanOptions

EXIT_CLEAN, EXIT_FINDINGS, EXIT_USAGE = 0, 1, 2

_KEEP_UNCHECKED = click.option(
    "--keep-unchecked-errors",
    is_flag=True,
    help="A function failure the handler never checked (FunctionError ignored): carry on with "
    "the error payload, as the handler did, instead of failing the Task (the default, as Step "
    "Functions does).",
)


def _split(values: tuple[str, ...]) -> tuple[str, ...]:
    return tuple(part.strip() for value in values for part in value.split(",") if part.strip())


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="untangle")
def main() -> None:
    """Find AWS Lambda functions that orchestrate other Lambdas by hand."""


@main.command()
@click.argument("paths", nargs=-1, type=str)
@click.option(
    "--format",
    "output_format",
    type=click.Choice(sorted(FORMATS)),
    default="text",
    show_default=True,
    help="Output format.",
)
@click.option("--select", multiple=True, help="Only these rules (ids or names, comma-separated).")
@click.option("--ignore", multiple=True, help="Not these rules (ids or names, comma-separated).")
@click.option(
    "--baseline",
    type=click.Path(dir_okay=False),
    help="Fail only on findings that are not in this baseline file.",
)
@click.option(
    "--write-baseline",
    type=click.Path(dir_okay=False),
    help="Record the current findings as the baseline and exit 0.",
)
@click.option(
    "--config", "config_path", type=click.Path(dir_okay=False), help="pyproject.toml to use."
)
@click.option("--no-cache", is_flag=True, help="Do not read or write the facts cache.")
@click.option("--cache-dir", type=click.Path(file_okay=False), help="Facts cache directory.")
@click.option(
    "--jobs", "-j", type=click.IntRange(0), default=0, help="Worker processes (0: one per core)."
)
@click.option("--exit-zero", is_flag=True, help="Exit 0 even when there are findings.")
@click.option("--color/--no-color", default=None, help="Colour text output (default: on a TTY).")
def scan(
    paths: tuple[str, ...],
    output_format: str,
    select: tuple[str, ...],
    ignore: tuple[str, ...],
    baseline: str | None,
    write_baseline: str | None,
    config_path: str | None,
    no_cache: bool,
    cache_dir: str | None,
    jobs: int,
    exit_zero: bool,
    color: bool | None,
) -> None:
    """Report Lambda-to-Lambda invokes, sleeps, retry loops and fan-out under PATHS."""
    from untangle.scan import scan as run_scan

    paths = paths or (".",)
    config = _config(paths, config_path)
    selected = _split(select) or config.select
    ignored = _split(ignore) or config.ignore
    for name in (*selected, *ignored):
        if resolve_rule(name) is None:
            _fail(f"unknown rule {name!r} (see `untangle rules`)")
    baseline_prints = None
    if baseline is not None:
        try:
            with open(baseline, encoding="utf-8") as handle:
                baseline_prints = loads(handle.read(), baseline)
        except OSError as exc:
            _fail(f"{baseline}: cannot read baseline: {exc.strerror or exc}")
        except UnicodeDecodeError:
            _fail(f"{baseline}: not a baseline file (not UTF-8 text)")
        except BaselineError as exc:
            _fail(str(exc))
    options = replace(
        _scan_options(config, no_cache, cache_dir),
        select=selected,
        ignore=ignored,
        jobs=jobs,
    )
    result = run_scan(paths, options, progress=_progress_bar())
    findings = result.findings
    if write_baseline is not None:
        try:
            with open(write_baseline, "w", encoding="utf-8") as handle:
                handle.write(dumps(findings))
        except OSError as exc:
            _fail(f"{write_baseline}: cannot write baseline: {exc.strerror or exc}")
        click.echo(f"wrote {len(findings)} finding(s) to {write_baseline}", err=True)
        sys.exit(EXIT_CLEAN)
    if baseline_prints is not None:
        known = len(findings)
        findings = new_findings(findings, baseline_prints)
        click.echo(f"{known - len(findings)} finding(s) already in the baseline", err=True)
    use_color = sys.stdout.isatty() and not os.environ.get("NO_COLOR") if color is None else color
    click.echo(
        FORMATS[output_format](findings, result.errors, result.files_scanned, color=use_color),
        nl=False,
        color=use_color,
    )
    if output_format not in ("text",) and (findings or result.errors):
        click.echo(
            f"{len(findings)} finding(s), {len(result.errors)} error(s) in "
            f"{result.files_scanned} files",
            err=True,
        )
    if exit_zero:
        sys.exit(EXIT_CLEAN)
    sys.exit(EXIT_FINDINGS if findings or result.errors else EXIT_CLEAN)


@main.command()
@click.argument("paths", nargs=-1, type=str)
@click.option(
    "--format",
    "output_format",
    type=click.Choice(["text", "json"]),
    default="text",
    show_default=True,
)
@click.option(
    "--query-language",
    type=click.Choice(["jsonata", "jsonpath"]),
    default="jsonata",
    show_default=True,
    help="Query language of the generated state machines.",
)
@click.option(
    "--diagram",
    type=click.Choice(["text", "mermaid", "dot", "none"]),
    default="text",
    show_default=True,
    help="Diagram printed with each workflow (text format).",
)
@click.option(
    "--handler", "handlers", multiple=True, help="Only this handler (name or qualified name)."
)
@click.option(
    "--out",
    type=click.Path(file_okay=False),
    help="Also write DIR/<name>.asl.json for each workflow.",
)
@click.option(
    "--executions",
    type=click.IntRange(1),
    default=100_000,
    show_default=True,
    help="Executions per month.",
)
@click.option(
    "--duration",
    multiple=True,
    metavar="FUNCTION=MS",
    help="Duration of a called function in ms (repeatable; default 200).",
)
@click.option(
    "--memory",
    multiple=True,
    metavar="FUNCTION=MB",
    help="Memory of a called function (default 128).",
)
@click.option(
    "--items", type=click.IntRange(1), default=10, show_default=True, help="Items per Map."
)
@click.option(
    "--config", "config_path", type=click.Path(dir_okay=False), help="pyproject.toml to use."
)
@click.option("--no-cache", is_flag=True, help="Do not read or write the facts cache.")
@_KEEP_UNCHECKED
def plan(
    paths: tuple[str, ...],
    output_format: str,
    query_language: str,
    diagram: str,
    handlers: tuple[str, ...],
    out: str | None,
    executions: int,
    duration: tuple[str, ...],
    memory: tuple[str, ...],
    items: int,
    config_path: str | None,
    no_cache: bool,
    keep_unchecked_errors: bool,
) -> None:
    """Infer the Step Functions workflow of every orchestrating handler under PATHS.

    Exit codes: 0 every workflow converted; 1 some handler was not (fully) converted;
    2 usage or configuration error.
    """
    import json

    from untangle.plan import PlanOptions
    from untangle.plan import plan as run_plan
    from untangle.render.cost import CostInputs, FunctionProfile, estimate, format_estimate
    from untangle.scan import load_tree

    paths = paths or (".",)
    config = _config(paths, config_path)
    profiles: dict[str, FunctionProfile] = {}
    for option, values in (("--duration", duration), ("--memory", memory)):
        for item in values:
            name, _, number = item.partition("=")
            if not name or not number.replace(".", "", 1).isdigit():
                _fail(f"{option} expects FUNCTION=NUMBER, got {item!r}")
            current = profiles.get(name, FunctionProfile())
            if option == "--duration":
                profiles[name] = FunctionProfile(float(number), current.memory_mb)
            else:
                profiles[name] = FunctionProfile(current.duration_ms, int(float(number)))
    tree = load_tree(paths, _scan_options(config, no_cache), progress=_progress_bar())
    planned = run_plan(
        tree.program,
        tree.templates,
        read_source,
        PlanOptions(query_language, handlers, keep_unchecked_errors),
    )
    inputs = CostInputs(executions_per_month=executions, functions=profiles, items_per_map=items)
    documents = []
    for planned_item in planned:
        cost = estimate(planned_item.asl, inputs) if planned_item.asl is not None else None
        documents.append((planned_item, cost))
    if out is not None:
        os.makedirs(out, exist_ok=True)
        for planned_item, _ in documents:
            if planned_item.asl is not None:
                target = os.path.join(out, f"{planned_item.workflow.name}.asl.json")
                with open(target, "w", encoding="utf-8") as handle:
                    handle.write(json.dumps(planned_item.asl, indent=2) + "\n")
                click.echo(f"wrote {target}", err=True)
    if output_format == "json":
        click.echo(
            json.dumps({"workflows": [_workflow_json(i, c) for i, c in documents]}, indent=2)
        )
    else:
        for planned_item, cost in documents:
            click.echo(_workflow_text(planned_item, cost, diagram, format_estimate))
    for error in tree.errors:
        where = f"{error.path}:{error.line}" if error.line else error.path
        click.echo(f"{where}: error: {error.message}", err=True)
    if not planned:
        click.echo("no handler under these paths invokes another Lambda function", err=True)
    converted = sum(1 for p in planned if p.status == "converted")
    click.echo(f"{converted} of {len(planned)} workflow(s) converted", err=True)
    sys.exit(EXIT_CLEAN if converted == len(planned) else EXIT_FINDINGS)


def _workflow_json(item: Any, cost: Any) -> dict[str, Any]:
    workflow = item.workflow
    recommendation = None
    if cost is not None:
        recommendation = {
            "type": cost.recommendation,
            "reason": cost.reason,
            "executions_per_month": cost.executions_per_month,
            "before_monthly_usd": round(cost.before_monthly_usd, 4),
            "before_possible": cost.before_possible,
            "after_standard_monthly_usd": round(cost.after_standard_monthly_usd, 4),
            "after_express_monthly_usd": None
            if cost.after_express_monthly_usd is None
            else round(cost.after_express_monthly_usd, 4),
            "latency_before_ms": cost.latency_before_ms,
            "latency_after_ms": cost.latency_after_ms,
            "transitions_per_execution": cost.transitions_per_execution,
            "assumptions": cost.assumptions,
        }
    return {
        "name": workflow.name,
        "handler": workflow.handler,
        "path": workflow.path,
        "status": workflow.status,
        "reasons": [
            {"path": r.path, "line": r.line, "message": r.message, "hint": r.hint}
            for r in workflow.reasons
        ],
        "notes": [{"path": r.path, "line": r.line, "message": r.message} for r in workflow.notes],
        "optimizations": [
            {"path": r.path, "line": r.line, "message": r.message} for r in item.optimizations
        ],
        "extracted": [
            {
                "function": e.function,
                "params": list(e.params),
                "expression": e.expression,
                "path": e.path,
                "line": e.line,
            }
            for e in workflow.extracted
        ],
        "asl": item.asl,
        "recommendation": recommendation,
    }


def _workflow_text(item: Any, cost: Any, diagram: str, format_estimate: Any) -> str:
    import json

    from untangle.render import diagram as diagrams

    workflow = item.workflow
    lines = [f"== {workflow.name}: {workflow.status} ({workflow.path}, {workflow.handler})"]
    for reason in workflow.reasons:
        lines.append(f"  not converted: {reason.path}:{reason.line}: {reason.text()}")
    for note in workflow.notes:
        lines.append(f"  note: {note.path}:{note.line}: {note.message}")
    for found in item.optimizations:
        lines.append(f"  optimization: {found.path}:{found.line}: {found.message}")
    for extracted in workflow.extracted:
        if extracted.body:
            outputs = ", ".join(extracted.outputs) or "nothing"
            lines.append(
                f"  new function: {extracted.function}({', '.join(extracted.params)}) runs "
                f"lines {extracted.line}-{extracted.end_line} and returns {outputs} "
                f"({extracted.path}:{extracted.line})"
            )
            continue
        lines.append(
            f"  new function: {extracted.function}({', '.join(extracted.params)}) computes "
            f"`{extracted.expression}` ({extracted.path}:{extracted.line})"
        )
    if item.asl is not None:
        if diagram != "none":
            render = {"text": diagrams.text, "mermaid": diagrams.mermaid, "dot": diagrams.dot}[
                diagram
            ]
            lines.append("")
            lines.append(render(item.asl).rstrip("\n"))
        if cost is not None:
            lines.append("")
            lines.append(format_estimate(cost).rstrip("\n"))
        lines.append("")
        lines.append(json.dumps(item.asl, indent=2))
    return "\n".join(lines) + "\n"


@main.command()
@click.argument("paths", nargs=-1, type=str)
@click.option(
    "--write", is_flag=True, help="Apply the changes (all or nothing) after validating them."
)
@click.option("--check", is_flag=True, help="Exit 1 when migrating would change anything.")
@click.option(
    "--handler", "handlers", multiple=True, help="Only this handler (name or qualified name)."
)
@click.option(
    "--query-language",
    type=click.Choice(["jsonata", "jsonpath"]),
    default="jsonata",
    show_default=True,
)
@click.option(
    "--config", "config_path", type=click.Path(dir_okay=False), help="pyproject.toml to use."
)
@click.option("--no-cache", is_flag=True, help="Do not read or write the facts cache.")
@_KEEP_UNCHECKED
def migrate(
    paths: tuple[str, ...],
    write: bool,
    check: bool,
    handlers: tuple[str, ...],
    query_language: str,
    config_path: str | None,
    no_cache: bool,
    keep_unchecked_errors: bool,
) -> None:
    """Rewrite orchestrating handlers under PATHS into state machines plus a SAM template.

    Prints a unified diff (nothing is written) unless --write. The project root is the common
    directory of PATHS; nothing is ever written outside it.
    Handlers that cannot be converted are listed with their reasons and left untouched.
    Exit codes: 0 done (or nothing to do); 1 with --check when there are changes; 2 usage,
    configuration or validation error (then nothing is written).
    """
    from untangle.migrate import (
        MigrationError,
        apply_migration,
        check_migration,
        compute_migration,
        unified_diff,
    )
    from untangle.plan import PlanOptions
    from untangle.plan import plan as run_plan
    from untangle.render.cost import estimate
    from untangle.scan import load_tree

    paths = paths or (".",)
    missing = [p for p in paths if not os.path.exists(p)]
    if missing:
        _fail(f"no such file or directory: {', '.join(missing)}")
    config = _config(paths, config_path)
    roots = [os.path.abspath(p if os.path.isdir(p) else os.path.dirname(p) or ".") for p in paths]
    root = os.path.commonpath(roots)
    tree = load_tree(paths, _scan_options(config, no_cache), progress=_progress_bar())
    planned = run_plan(
        tree.program,
        tree.templates,
        read_source,
        PlanOptions(query_language, handlers, keep_unchecked_errors),
    )
    try:
        migration = compute_migration(
            planned, tree.templates, read_text, root, lambda asl: estimate(asl).recommendation
        )
    except MigrationError as exc:
        _fail(str(exc))
    for _, how in migration.migrated:
        click.echo(f"migrated {how}", err=True)
    for workflow, reasons in migration.skipped:
        click.echo(f"not migrated: {workflow.name} ({workflow.handler}):", err=True)
        for reason in reasons:
            click.echo(f"  {reason.path}:{reason.line}: {reason.text()}", err=True)
    if not migration.changes:
        click.echo("nothing to migrate", err=True)
        sys.exit(EXIT_CLEAN)
    if write:
        problems = check_migration(migration)
        if problems:
            for problem in problems:
                click.echo(f"untangle: validation failed: {problem}", err=True)
            click.echo("nothing was written", err=True)
            sys.exit(EXIT_USAGE)
        try:
            apply_migration(migration)
        except (MigrationError, OSError) as exc:
            _fail(f"{exc} (nothing was written)")
        click.echo(f"wrote {len(migration.changes)} file(s)", err=True)
        sys.exit(EXIT_CLEAN)
    click.echo(unified_diff(migration), nl=False)
    click.echo(
        f"{len(migration.changes)} file(s) would change (dry run; --write applies)", err=True
    )
    sys.exit(EXIT_FINDINGS if check else EXIT_CLEAN)


@main.command()
@click.argument("app", type=str)
@click.option(
    "--event",
    "event_files",
    multiple=True,
    metavar="FILE",
    help="A JSON event (repeatable; default: every APP/events/*.json).",
)
@click.option(
    "--format",
    "output_format",
    type=click.Choice(["text", "json"]),
    default="text",
    show_default=True,
)
@click.option(
    "--history", is_flag=True, help="Show the machine's history and the original's calls."
)
@click.option(
    "--query-language",
    type=click.Choice(["jsonata", "jsonpath"]),
    default="jsonata",
    show_default=True,
)
@click.option(
    "--original",
    metavar="REV",
    help="After migrate --write: compare the written machines with the code at this git revision.",
)
@_KEEP_UNCHECKED
@click.option(
    "--strict",
    is_flag=True,
    help="A documented difference (the machine fails where the handler carried on with an "
    "unchecked function failure) is a mismatch too.",
)
def verify(
    app: str,
    event_files: tuple[str, ...],
    output_format: str,
    history: bool,
    query_language: str,
    original: str | None,
    keep_unchecked_errors: bool,
    strict: bool,
) -> None:
    """Run the original orchestrators of APP and the state machines `untangle migrate` would
    write on the same events (in a child process, with moto), and compare them.

    Runs the app's code. Needs the verify extra: pip install 'untangle[verify]'.
    Exit codes: 0 every workflow equivalent on every event (or different only where documented,
    without --strict); 1 a mismatch (or a workflow that could not be verified); 2 usage error
    (no events, APP missing, the extra not installed).
    """
    import json

    from untangle.engine.machine import EngineUnavailable
    from untangle.verify import VerifyFailed, load_events, verify_in_subprocess

    if not os.path.isdir(app):
        _fail(f"no such directory: {app}")
    try:
        events = load_events(app, event_files)
    except (OSError, ValueError) as exc:
        _fail(str(exc))
    if not events:
        _fail(f"no events: pass --event FILE or add {os.path.join(app, 'events', '*.json')}")
    try:
        results = verify_in_subprocess(app, events, query_language, original, keep_unchecked_errors)
    except (ImportError, EngineUnavailable) as exc:  # the child lacks moto / jsonata-python
        _fail(f"{exc} (the verify extra: pip install 'untangle[verify]')")
    except VerifyFailed as exc:
        _fail(f"verify failed: {exc}")
    if output_format == "json":
        documents = [
            {
                "workflow": r.workflow,
                "event": r.event,
                "equivalent": r.equivalent,
                "original": r.original,
                "machine": r.machine,
                "history": r.history,
                "waited_seconds": {
                    "original": r.original_waited_seconds,
                    "machine": r.machine_waited_seconds,
                },
                **({"notes": r.notes} if r.notes else {}),
                **({"documented": r.documented} if r.documented else {}),
                **({"skipped": r.skipped} if r.skipped else {}),
            }
            for r in results
        ]
        click.echo(json.dumps({"results": documents}, indent=2, default=str))
    else:
        for result in results:
            click.echo(_verify_text(result, history))
    if not results:
        click.echo("no workflow to verify under this app", err=True)
    passed = all(r.equivalent or (r.documented and not strict) for r in results)
    sys.exit(EXIT_CLEAN if passed else EXIT_FINDINGS)


def _abbreviate(value: Any, width: int = 100) -> str:
    import json

    text = json.dumps(value, default=str)
    return text if len(text) <= width else text[: width - 3] + "..."


def _verify_text(result: Any, history: bool) -> str:
    head = f"{result.workflow} {result.event}: "
    if result.skipped:
        return head + str(result.skipped)
    waited = result.machine_waited_seconds
    if result.equivalent:
        lines = [
            head + f"equivalent ({result.machine['status']}, waited {waited:g} s fast-forwarded)"
        ]
    elif result.documented:
        lines = [head + f"documented difference: {result.documented}"]
    else:
        lines = [head + "MISMATCH"]
        for side in ("original", "machine"):
            values = getattr(result, side)
            seconds = getattr(result, f"{side}_waited_seconds")
            lines.append(
                f"  {side + ':':<9} {values['status']} error={values['error']}"
                f" output={_abbreviate(values['output'])} waited={seconds:g} s"
            )
    lines.extend(f"  note: {note}" for note in result.notes)
    if history or not result.equivalent:
        lines.append("  machine history:")
        for event in result.history:
            if event["type"].endswith("Entered"):
                lines.append(f"    -> {event['state']} input={_abbreviate(event['input'], 80)}")
            else:
                lines.append(f"    <- {event['state']} output={_abbreviate(event['output'], 80)}")
        lines.append("  original calls:")
        for name, payload in result.calls:
            lines.append(f"    {name} {_abbreviate(payload, 80)}")
    return "\n".join(lines)


@main.command("rules")
def rules_command() -> None:
    """List the rules: id, name, summary."""
    for rule in ALL_RULES:
        click.echo(f"{rule.id}  {rule.name:<18} {rule.summary}")


@main.command()
@click.argument("rule_name")
def explain(rule_name: str) -> None:
    """Explain one rule, with examples that it reports and that it does not."""
    rule = resolve_rule(rule_name)
    if rule is None:
        _fail(f"unknown rule {rule_name!r} (see `untangle rules`)")
    assert rule is not None
    click.echo(f"{rule.id} {rule.name}: {rule.summary}\n")
    click.echo(rule.explanation() + "\n")
    for title, examples in (("Reported", rule.INVALID), ("Not reported", rule.VALID)):
        for example in examples:
            click.echo(f"{title}:\n")
            click.echo("\n".join("    " + line for line in example.strip().splitlines()) + "\n")


def _config(paths: tuple[str, ...], config_path: str | None) -> Config:
    """The `[tool.untangle]` in force for PATHS (or --config); a bad one is a usage error."""
    try:
        return load_config(config_path or find_config(paths[0]))
    except ConfigError as exc:
        _fail(str(exc))


def _scan_options(config: Config, no_cache: bool, cache_dir: str | None = None) -> ScanOptions:
    from untangle.scan import ScanOptions

    return ScanOptions(
        include=config.include,
        exclude=config.exclude,
        handler_patterns=config.handler_patterns,
        cache_dir=None if no_cache else (cache_dir or default_cache_dir()),
        max_file_size=config.max_file_size,
        base=config.base,
    )


def _progress_bar() -> Callable[[int, int], None] | None:
    if not sys.stderr.isatty():
        return None

    def show(done: int, total: int) -> None:
        width = 30
        filled = width * done // max(total, 1)
        end = "\n" if done >= total else ""
        sys.stderr.write(f"\r[{'#' * filled}{'.' * (width - filled)}] {done}/{total} files{end}")
        sys.stderr.flush()

    return show


def _fail(message: str) -> NoReturn:
    click.echo(f"untangle: error: {message}", err=True)
    sys.exit(EXIT_USAGE)
