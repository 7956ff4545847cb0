"""The command line: a thin layer over `untangle.scan`. Artifacts go to stdout, messages to
stderr.

Exit codes (scan): 0 no findings; 1 findings (new ones, with --baseline) or files that could not
be scanned; 2 usage or configuration error.
"""

from __future__ import annotations

import gc
import os
import sys
from collections.abc import Callable
from dataclasses import replace
from typing import TYPE_CHECKING, Any, NoReturn

import click

from untangle import __version__

# imported where they are used: `untangle verify` starts its child process before it reads
# anything, and every module imported first delays that start
if TYPE_CHECKING:
    from untangle.config import Config
    from untangle.scan import ScanOptions

EXIT_CLEAN, EXIT_FINDINGS, EXIT_USAGE = 0, 1, 2
# the keys of untangle.report.FORMATS (tests/test_cli.py checks them)
REPORT_FORMATS = ("github", "json", "sarif", "text")

_KEEP_UNCHECKED = click.option(
    "--keep-unchecked-errors",
    is_flag=True,
    help="A function failure the handler never checked (FunctionError ignored): carry on with "
    "the error payload, as the handler did, instead of failing the Task (the default, as Step "
    "Functions does).",
)


def _split(values: tuple[str, ...]) -> tuple[str, ...]:
    return tuple(part.strip() for value in values for part in value.split(",") if part.strip())


class _Cli(click.Group):
    """Usage errors (an unknown option, a bad value) as one line on stderr, exit 2, the same in
    every command as the errors the commands find themselves."""

    def main(self, *args: Any, **kwargs: Any) -> Any:
        kwargs["standalone_mode"] = False
        kwargs["prog_name"] = "untangle"
        try:
            returned = super().main(*args, **kwargs)
        except click.UsageError as exc:
            command = exc.ctx.command_path if exc.ctx is not None else "untangle"
            click.echo(
                f"untangle: error: {exc.format_message()} (see `{command} --help`)", err=True
            )
            sys.exit(EXIT_USAGE)
        except click.ClickException as exc:
            exc.show()
            sys.exit(exc.exit_code)
        except click.Abort:
            click.echo("aborted", err=True)
            sys.exit(EXIT_FINDINGS)
        sys.exit(returned if isinstance(returned, int) else EXIT_CLEAN)


@click.group(cls=_Cli, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="untangle")
def main() -> None:
    """Find AWS Lambda functions that orchestrate other Lambdas by hand.

    \b
    Exit codes (every command): 0 clean; 1 findings, refusals, mismatches or changes
    (--check); 2 usage or configuration error, one line on stderr.
    """


_COLOR = click.option(
    "--color/--no-color", default=None, help="Colour text output (default: on a TTY)."
)


def _use_color(color: bool | None) -> bool:
    if color is not None:
        return color
    return sys.stdout.isatty() and not os.environ.get("NO_COLOR")


def _require_paths(paths: tuple[str, ...]) -> None:
    """Every path exists, and a directory holds some Python: otherwise a usage error."""
    from untangle.discover import SKIP_DIRS
    from untangle.files import has_undecodable_name, shown

    for path in paths:
        if has_undecodable_name(os.path.abspath(path)):
            # every path untangle prints, hashes and writes is text: refused whole, not half-read
            _fail(f"path name is not valid UTF-8: {shown(os.path.abspath(path))}")
        if not os.path.exists(path):
            _fail(f"no such file or directory: {path}")
        if os.path.isdir(path) and not any(
            name.endswith(".py")
            for folder, dirs, files in _walk_pruned(path, SKIP_DIRS)
            for name in files
        ):
            _fail(f"no Python file under {path}")


def _walk_pruned(path: str, skip: frozenset[str]) -> Any:
    for folder, dirs, files in os.walk(path):
        dirs[:] = [d for d in dirs if d not in skip]
        yield folder, dirs, files
        if any(name.endswith(".py") for name in files):
            return


def _require_handlers(program: Any, handlers: tuple[str, ...], where: str) -> None:
    from untangle.plan import orchestrators, unknown_handlers

    unknown = unknown_handlers(program, handlers)
    if unknown:
        found = ", ".join(orchestrators(program)) or "none"
        _fail(
            f"no handler named {unknown[0]!r} invokes a Lambda function under {where} "
            f"(the handlers that do: {found})"
        )


@main.command()
@click.argument("paths", nargs=-1, type=str)
@click.option(
    "--format",
    "output_format",
    type=click.Choice(REPORT_FORMATS),
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
    "--jobs",
    "-j",
    type=click.IntRange(0),
    default=0,
    help="Processes that read and parse the files, this one included (0: one per core).",
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
    """Report Lambda-to-Lambda invokes, sleeps, retry loops and fan-out under PATHS.

    \b
    Exit codes: 0 no findings; 1 findings (new ones, with --baseline) or files that could not
    be scanned; 2 usage or configuration error.
    \b
    Examples:
      untangle scan src/ --format sarif > untangle.sarif
      untangle scan . --baseline untangle-baseline.json   # fail only on new findings
    """
    from untangle.baseline import BaselineError, dumps, loads, new_findings
    from untangle.report import FORMATS
    from untangle.rules import resolve_rule
    from untangle.scan import scan as run_scan

    paths = paths or (".",)
    _require_paths(paths)
    _recover_interrupted_writes(paths)
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
    # A scan frees nothing that refers to itself, and this process ends with it: the cycle
    # collector would only walk the facts again and again (scans were superlinear in the size
    # of the tree), and once more when the interpreter exits, unless they are frozen.
    gc.disable()
    result = run_scan(paths, options, progress=_progress_bar())
    gc.freeze()
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
    use_color = _use_color(color)
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
    type=click.Choice(["text", "json", "markdown"]),
    default="text",
    show_default=True,
    help="markdown: a report for a pull request (summary table, a Mermaid diagram, the notes "
    "and the cost of each workflow).",
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
    "--diagram-out",
    type=click.Path(file_okay=False),
    help="Also write each workflow's diagram to DIR/<name>.mmd, .dot or .txt (by --diagram; "
    "mermaid when --diagram is none).",
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
    "--retries",
    multiple=True,
    metavar="STATE=N",
    help="Retries a Task is expected to make per execution (repeatable; default 0): each is "
    "one more transition and call.",
)
@click.option(
    "--rounds",
    multiple=True,
    metavar="STATE=N",
    help="Times a loop starting at STATE runs around per execution (repeatable; default 1).",
)
@click.option(
    "--config", "config_path", type=click.Path(dir_okay=False), help="pyproject.toml to use."
)
@click.option("--no-cache", is_flag=True, help="Do not read or write the facts cache.")
@click.option(
    "--detail",
    "details",
    multiple=True,
    metavar="PART",
    help="What follows the summary for each workflow (text format; repeatable or "
    "comma-separated): notes, diagram, cost, asl, all, none. Default: notes,diagram,cost.",
)
@_COLOR
@_KEEP_UNCHECKED
def plan(
    paths: tuple[str, ...],
    output_format: str,
    query_language: str,
    diagram: str,
    handlers: tuple[str, ...],
    out: str | None,
    diagram_out: str | None,
    executions: int,
    duration: tuple[str, ...],
    memory: tuple[str, ...],
    items: int,
    retries: tuple[str, ...],
    rounds: tuple[str, ...],
    config_path: str | None,
    no_cache: bool,
    details: tuple[str, ...],
    color: bool | None,
    keep_unchecked_errors: bool,
) -> None:
    """Infer the Step Functions workflow of every orchestrating handler under PATHS.

    \b
    Exit codes: 0 every workflow converted; 1 some handler was not (fully) converted;
    2 usage or configuration error (a missing path, an unknown --handler).
    \b
    Examples:
      untangle plan fixtures/article/order_chain/module_client
      untangle plan app/ --query-language jsonpath --format json --out statemachine/
    """
    import json
    from dataclasses import replace

    from untangle.files import read_source, read_text
    from untangle.migrate import event_decision, event_notes, keeps_starter
    from untangle.plan import PlanOptions
    from untangle.plan import plan as run_plan
    from untangle.render.cost import CostInputs, estimate, format_estimate
    from untangle.render.cost_inputs import inputs_for
    from untangle.scan import load_tree

    paths = paths or (".",)
    _require_paths(paths)
    _recover_interrupted_writes(paths)
    shown = _plan_details(details, diagram)
    config = _config(paths, config_path)
    durations = {k: float(v) for k, v in _named_numbers("--duration", duration).items()}
    memories = {k: int(v) for k, v in _named_numbers("--memory", memory).items()}
    retry_counts = {k: int(v) for k, v in _named_numbers("--retries", retries, whole=True).items()}
    loop_rounds = {k: int(v) for k, v in _named_numbers("--rounds", rounds, whole=True).items()}
    tree = load_tree(paths, _scan_options(config, no_cache), progress=_progress_bar())
    _require_handlers(tree.program, handlers, " ".join(paths))
    planned = run_plan(
        tree.program,
        tree.templates,
        read_source,
        PlanOptions(query_language, handlers, keep_unchecked_errors),
    )
    planned = _refuse_invalid(planned, tree.program)
    known = _cost_keys(planned)
    aliases = _function_aliases(planned)
    by_function: list[dict[str, Any]] = [durations, memories]
    for table in by_function:
        for name in sorted(table):
            if name in aliases:  # `validate-payment`, as the template names it
                table[aliases[name]] = table.pop(name)
            elif name not in known:
                _fail(
                    f"--duration/--memory: no workflow here calls a function or has a state "
                    f"named {name!r} (known: {', '.join(sorted({*known, *aliases})) or 'none'})"
                )
    states = _state_names(planned)
    for option, table in (("--retries", retry_counts), ("--rounds", loop_rounds)):
        for name in sorted(table):
            if name not in states:
                _fail(
                    f"{option}: no workflow here has a state named {name!r} "
                    f"(known: {', '.join(sorted(states)) or 'none'})"
                )
    base = CostInputs(
        executions_per_month=executions,
        items_per_map=items,
        retries=retry_counts,
        loop_rounds=loop_rounds,
    )
    documents = []
    templates_read: dict[str, Any] = {}  # each template parsed once for every workflow's notes
    for planned_item in planned:
        cost = None
        if planned_item.asl is not None:
            inputs = inputs_for(planned_item.workflow, tree.templates, base, durations, memories)
            if not keeps_starter(planned_item, tree.templates, read_text, templates_read):
                inputs = replace(inputs, starter=False)
            cost = estimate(planned_item.asl, inputs)
            decision = event_decision(
                planned_item,
                tree.templates,
                read_text,
                cost.recommendation,
                cost.express_blockers,
                cost.latency_after_ms,
                templates_read,
            )
            if decision is not None and decision.mode == "wait":
                # a caller reads the answer of a Standard machine: the starter waits for it
                # (a Standard machine stays one: the decision holds for this estimate too)
                cost = estimate(planned_item.asl, replace(inputs, starter_waits=True))
            if decision is not None:
                # what migrate will do with the orchestrator's event sources
                notes = event_notes(
                    planned_item, tree.templates, read_text, decision, templates_read
                )
                workflow = planned_item.workflow
                planned_item = replace(
                    planned_item, workflow=replace(workflow, notes=(*workflow.notes, *notes))
                )
        documents.append((planned_item, cost))
    if out is not None:
        _write_definitions(out, documents)
    if diagram_out is not None:
        _write_diagrams(diagram_out, documents, diagram)
    if output_format == "json":
        click.echo(
            json.dumps({"workflows": [_workflow_json(i, c) for i, c in documents]}, indent=2)
        )
    elif output_format == "markdown":
        click.echo(_plan_markdown(documents, format_estimate), nl=False)
    else:
        use_color = _use_color(color)
        if documents:
            click.echo(_plan_summary(documents, use_color), color=use_color)
        for planned_item, cost in documents:
            if shown:
                click.echo(
                    _workflow_text(planned_item, cost, diagram, format_estimate, use_color, shown),
                    color=use_color,
                )
        estimates = [cost for _, cost in documents if cost is not None]
        if "cost" in shown and estimates:
            click.echo("pricing assumptions (of every estimate above):")
            click.echo("".join(f"  - {line}\n" for line in estimates[0].assumptions))
    _report_errors(tree.errors)
    if not planned:
        click.echo("no handler under these paths invokes another Lambda function", err=True)
    converted = sum(1 for p in planned if p.status == "converted")
    click.echo(f"{converted} of {len(planned)} workflow(s) converted", err=True)
    sys.exit(EXIT_CLEAN if converted == len(planned) and not tree.errors else EXIT_FINDINGS)


def _report_errors(errors: list[Any]) -> None:
    """Each file that could not be read or parsed, once, on stderr (as scan lists them)."""
    from untangle.files import shown

    for error in sorted(set(errors), key=lambda e: (e.path, e.line or 0, e.message)):
        where = f"{error.path}:{error.line}" if error.line else error.path
        click.echo(shown(f"{where}: error: {error.message}"), err=True)


def _refuse_invalid(planned: list[Any], program: Any) -> list[Any]:
    """asl-validator on every converted definition (one node process for all); where it cannot
    run, plan says that this check was skipped and goes on."""
    from untangle.plan import refuse_invalid
    from untangle.validate import ValidatorUnavailable, asl_errors

    try:
        return refuse_invalid(planned, program, asl_errors)
    except (ValidatorUnavailable, RuntimeError) as exc:
        click.echo(f"untangle: definitions not checked with asl-validator: {exc}", err=True)
        return planned


def _workflow_json(item: Any, cost: Any) -> dict[str, Any]:
    from untangle.render.cost import transitions_counted

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
            "transitions_counted": transitions_counted(cost),
            "notes": cost.notes,
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


PLAN_DETAILS = ("notes", "diagram", "cost", "asl")


def _plan_details(details: tuple[str, ...], diagram: str) -> frozenset[str]:
    chosen = set(_split(details)) or {"notes", "diagram", "cost"}
    unknown = chosen - {*PLAN_DETAILS, "all", "none"}
    if unknown:
        _fail(
            f"--detail: unknown part {sorted(unknown)[0]!r} "
            f"(choose from {', '.join(PLAN_DETAILS)}, all, none)"
        )
    if "all" in chosen:
        chosen |= set(PLAN_DETAILS)
    if "none" in chosen:
        chosen = set()
    if diagram == "none":
        chosen.discard("diagram")
    return frozenset(chosen & set(PLAN_DETAILS))


def choice_conditions(workflow: Any) -> dict[str, tuple[str, ...]]:
    """Each Choice state's rules as the Python conditions they came from: the diagram labels."""
    from untangle.workflow.ir import Choice, all_states, expr_text

    if workflow.graph is None:
        return {}
    return {
        state.name: tuple(_unwrapped(expr_text(condition)) for condition, _ in state.rules)
        for state in all_states(workflow.graph)
        if isinstance(state, Choice)
    }


def _unwrapped(text: str) -> str:
    """`(total > 1000)` → `total > 1000`, when the outer parentheses wrap the whole."""
    if not (text.startswith("(") and text.endswith(")")):
        return text
    depth = 0
    for index, char in enumerate(text):
        depth += char == "("
        depth -= char == ")"
        if depth == 0 and index < len(text) - 1:
            return text
    return text[1:-1]


def _plan_markdown(documents: list[tuple[Any, Any]], format_estimate: Any) -> str:
    """A pull-request report: the summary table, then per workflow its Mermaid diagram (which
    GitHub renders), its reasons or notes and its cost; the pricing assumptions once."""
    from untangle.render import diagram as diagrams
    from untangle.render.cost import usd

    def cell(text: str) -> str:
        return text.replace("|", "\\|").replace("\n", " ")

    converted = sum(1 for item, _ in documents if item.workflow.status == "converted")
    lines = [
        "## untangle plan",
        "",
        f"{converted} of {len(documents)} workflow(s) converted.",
        "",
        "| workflow | status | states | reasons / notes | type | cost per month (before → after) |",
        "|---|---|---|---|---|---|",
    ]
    for item, cost in documents:
        workflow = item.workflow
        states = str(_count_states(item.asl.get("States", {}))) if item.asl else ""
        said = (
            f"{len(workflow.reasons)} reason(s)"
            if workflow.reasons
            else f"{len(workflow.notes)} note(s)"
        )
        kind = cost.recommendation if cost is not None else ""
        money = (
            f"{usd(cost.before_monthly_usd)} → {usd(cost.after_monthly_usd)}"
            if cost is not None
            else ""
        )
        lines.append(
            f"| `{workflow.name}` | {workflow.status.replace('_', ' ')} | {states} | {said} "
            f"| {kind} | {money} |"
        )
    for item, cost in documents:
        workflow = item.workflow
        lines += ["", f"### `{workflow.name}`", "", f"`{workflow.handler}` in `{workflow.path}`"]
        if workflow.reasons:
            lines += ["", "Not converted:", ""]
            lines += [f"- `{r.path}:{r.line}`: {cell(r.text())}" for r in workflow.reasons]
        if item.asl is not None:
            picture = diagrams.mermaid(item.asl, choice_conditions(workflow))
            lines += ["", "```mermaid", picture.rstrip("\n"), "```"]
        if workflow.notes or workflow.extracted:
            lines += ["", "Notes:", ""]
            lines += [f"- `{n.path}:{n.line}`: {cell(n.message)}" for n in workflow.notes]
            lines += [
                f"- new function `{e.function}` computes `{cell(e.expression)}` "
                f"(`{e.path}:{e.line}`)"
                for e in workflow.extracted
            ]
        if cost is not None:
            lines += ["", "```text", format_estimate(cost, assumptions=False).rstrip("\n"), "```"]
    estimates = [cost for _, cost in documents if cost is not None]
    if estimates:
        lines += ["", "<details><summary>Pricing assumptions</summary>", ""]
        lines += [f"- {a}" for a in estimates[0].assumptions]
        lines += ["", "</details>"]
    return "\n".join(lines) + "\n"


def _count_states(states: dict[str, Any]) -> int:
    total = 0
    for state in states.values():
        total += 1
        for branch in state.get("Branches", ()):
            total += _count_states(branch.get("States", {}))
        for key in ("ItemProcessor", "Iterator"):
            if isinstance(state.get(key), dict):
                total += _count_states(state[key].get("States", {}))
    return total


def _function_aliases(planned: list[Any]) -> dict[str, str]:
    """A called function's own name (`validate-payment`) -> how its Task names it in the ASL
    (`ValidatePayment`, from `${ValidatePaymentFunctionArn}`): what the estimate is keyed by."""
    from untangle.render import _asl

    aliases: dict[str, str] = {}
    for item in planned:
        for ref in item.workflow.functions:
            task = {
                "Type": "Task",
                "Resource": "arn:aws:states:::lambda:invoke",
                "Arguments": {"FunctionName": ref.placeholder},
            }
            shown = _asl.lambda_function(task)
            if shown and ref.display and ref.display != shown:
                aliases[ref.display] = shown
    return aliases


def _artifact_stems(documents: list[tuple[Any, Any]]) -> list[tuple[Any, str]]:
    """Each converted workflow with the file name it gets in one output folder: workflows of
    different templates may share a name (each template is its own stack), their files may not
    (the second `OrderWorkflow` is written as `OrderWorkflow-2`)."""
    seen: dict[str, int] = {}
    stems = []
    for item, _ in documents:
        if item.asl is None:
            continue
        name = item.workflow.name
        seen[name] = seen.get(name, 0) + 1
        stems.append((item, name if seen[name] == 1 else f"{name}-{seen[name]}"))
    return stems


def _write_diagrams(folder: str, documents: list[tuple[Any, Any]], kind: str) -> None:
    from untangle.outputs import artifact_name, write_artifact
    from untangle.render import diagram as diagrams

    kind = "mermaid" if kind == "none" else kind
    render = {"text": diagrams.text, "mermaid": diagrams.mermaid, "dot": diagrams.dot}[kind]
    suffix = {"text": "txt", "mermaid": "mmd", "dot": "dot"}[kind]
    try:
        for item, stem in _artifact_stems(documents):
            text = render(item.asl, choice_conditions(item.workflow))
            name = artifact_name(stem, suffix)
            click.echo(f"wrote {write_artifact(folder, name, text)}", err=True)
    except OSError as exc:
        _fail(f"--diagram-out {folder}: {exc.strerror or exc}")


def _named_numbers(option: str, values: tuple[str, ...], whole: bool = False) -> dict[str, str]:
    """`NAME=NUMBER` options by name (a later one wins); anything else exits 2."""
    found: dict[str, str] = {}
    for item in values:
        name, _, number = item.partition("=")
        digits = number if whole else number.replace(".", "", 1)
        if not name or not digits.isdigit():
            shape = "STATE=N (a whole number)" if whole else "FUNCTION=NUMBER"
            _fail(f"{option} expects {shape}, got {item!r}")
        found[name] = number
    return found


def _state_names(planned: list[Any]) -> set[str]:
    """Every state name of the planned machines, inside Parallel branches and Maps too."""
    from untangle.render import _asl

    found: set[str] = set()
    for item in planned:
        if item.asl is not None:
            found.update(name for name, _ in _asl.walk(item.asl))
    return found


def _write_definitions(folder: str, documents: list[tuple[Any, Any]]) -> None:
    """plan --out: each definition in FOLDER, named after its workflow (made safe: a name
    never leads out of FOLDER)."""
    import json

    from untangle.outputs import artifact_name, write_artifact

    try:
        for item, stem in _artifact_stems(documents):
            text = json.dumps(item.asl, indent=2) + "\n"
            name = artifact_name(stem, "asl.json")
            click.echo(f"wrote {write_artifact(folder, name, text)}", err=True)
    except OSError as exc:
        _fail(f"--out {folder}: {exc.strerror or exc}")


def _cost_keys(planned: list[Any]) -> set[str]:
    """The names `--duration` / `--memory` may use: the functions the Tasks call, state names."""
    from untangle.render import _asl

    found: set[str] = set()

    def walk(scope: Any) -> None:
        for name, state in _asl.states(scope).items():
            found.add(name)
            if _asl.kind(state) == "Task":
                found.add(_asl.task_target(state))
            for branch in _asl.branches(state):
                walk(branch)
            processor = _asl.processor(state)
            if processor is not None:
                walk(processor)

    for item in planned:
        if item.asl is not None:
            walk(item.asl)
    return found


def _plan_summary(documents: list[tuple[Any, Any]], color: bool) -> str:
    """One line per workflow: what a reviewer reads first."""
    from collections import Counter

    from untangle.render.cost import usd

    rows = []
    repeated = Counter(item.workflow.name for item, _ in documents)
    for item, cost in documents:
        workflow = item.workflow
        status = workflow.status.replace("_", " ")
        # workflows of different templates may share a name: their files tell them apart
        name = workflow.name
        if repeated[name] > 1:
            name += f" ({os.path.relpath(workflow.path)})"
        if item.asl is not None:
            states = f"{_count_states(item.asl.get('States', {}))} states"
        else:
            states = ""
        reasons = len(workflow.reasons)
        said = (
            f"{reasons} reason{'s' * (reasons != 1)}"
            if reasons
            else f"{len(workflow.notes)} note{'s' * (len(workflow.notes) != 1)}"
        )
        if cost is not None:
            kind = cost.recommendation
            money = f"{usd(cost.before_monthly_usd)} → {usd(cost.after_monthly_usd)}/month"
        else:
            kind, money = "", ""
        rows.append((status, name, said, states, kind, money))
    widths = [max(len(row[i]) for row in rows) for i in range(5)]
    lines = []
    for row in rows:
        cells = [row[i].ljust(widths[i]) for i in range(5)]
        if color:
            cells[0] = click.style(
                cells[0], fg="green" if row[0] == "converted" else "red", bold=True
            )
        lines.append("  ".join([*cells, row[5]]).rstrip())
    return "\n".join(lines) + "\n"


def _workflow_text(
    item: Any,
    cost: Any,
    diagram: str,
    format_estimate: Any,
    color: bool = False,
    shown: frozenset[str] = frozenset(PLAN_DETAILS),
) -> str:
    import json

    from untangle.render import diagram as diagrams

    workflow = item.workflow
    status = workflow.status
    if color:
        status = click.style(status, fg="green" if status == "converted" else "red", bold=True)
    lines = [f"== {workflow.name}: {status} ({workflow.path}, {workflow.handler})"]
    for reason in workflow.reasons:
        lines.append(f"  not converted: {reason.path}:{reason.line}: {reason.text()}")
    if "notes" in shown:
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
        if "diagram" in shown and diagram != "none":
            render = {"text": diagrams.text, "mermaid": diagrams.mermaid, "dot": diagrams.dot}[
                diagram
            ]
            lines.append("")
            lines.append(render(item.asl, choice_conditions(workflow)).rstrip("\n"))
        if "cost" in shown and cost is not None:
            lines.append("")
            lines.append(format_estimate(cost, assumptions=False).rstrip("\n"))
        if "asl" in shown:
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
@click.option(
    "--strict-validation",
    is_flag=True,
    help="With --write: fail when a validator is not installed (for CI), instead of naming it "
    "and going on with the others.",
)
@_COLOR
@_KEEP_UNCHECKED
def migrate(
    paths: tuple[str, ...],
    write: bool,
    check: bool,
    handlers: tuple[str, ...],
    query_language: str,
    config_path: str | None,
    no_cache: bool,
    strict_validation: bool,
    color: bool | None,
    keep_unchecked_errors: bool,
) -> None:
    """Rewrite orchestrating handlers under PATHS into state machines plus a SAM template.

    Prints a unified diff (nothing is written) unless --write. The project root is the common
    directory of PATHS; nothing is ever written outside it.
    Handlers that cannot be converted are listed with their reasons and left untouched.

    \b
    Exit codes: 0 done (or nothing to do); 1 with --check when there are changes, or when a
    handler was not migrated; 2 usage, configuration or validation error (then nothing is
    written).
    \b
    Examples:
      untangle migrate app/                  # the diff, nothing written
      untangle migrate app/ --write          # validate, then write it all or nothing
    """
    from dataclasses import replace

    from untangle.files import read_source, read_text
    from untangle.importers import importers_of
    from untangle.migrate import (
        MigrationError,
        apply_migration,
        compute_migration,
        keeps_starter,
        unified_diff,
    )
    from untangle.plan import PlanOptions
    from untangle.plan import plan as run_plan
    from untangle.render.cost import CostInputs, estimate
    from untangle.render.cost_inputs import inputs_for
    from untangle.scan import load_tree

    paths = paths or (".",)
    _require_paths(paths)
    _recover_interrupted_writes(paths)
    config = _config(paths, config_path)
    roots = [os.path.abspath(p if os.path.isdir(p) else os.path.dirname(p) or ".") for p in paths]
    root = os.path.commonpath(roots)
    tree = load_tree(paths, _scan_options(config, no_cache), progress=_progress_bar())
    _require_handlers(tree.program, handlers, " ".join(paths))
    planned = run_plan(
        tree.program,
        tree.templates,
        read_source,
        PlanOptions(query_language, handlers, keep_unchecked_errors),
    )
    # the same estimate as plan's (the template's memory sizes, the starter billed only where
    # migrate keeps one), so the same Express/Standard
    templates_read: dict[str, Any] = {}
    inputs = {
        id(item.asl): replace(
            inputs_for(item.workflow, tree.templates, CostInputs()),
            starter=keeps_starter(item, tree.templates, read_text, templates_read),
        )
        for item in planned
        if item.asl is not None
    }
    try:
        migration = compute_migration(
            planned,
            tree.templates,
            read_text,
            root,
            lambda asl: estimate(asl, inputs.get(id(asl))).recommendation,
            lambda asl: estimate(asl, inputs.get(id(asl))).express_blockers,
            lambda asl: estimate(asl, inputs.get(id(asl))).latency_after_ms,
            importers_of(tree.sources, read_source),
        )
    except MigrationError as exc:
        _fail(str(exc))
    for _, how in migration.migrated:
        click.echo(f"migrated {how}", err=True)
    for workflow, reasons in migration.skipped:
        click.echo(f"not migrated: {workflow.name} ({workflow.handler}):", err=True)
        for reason in reasons:
            click.echo(f"  {reason.path}:{reason.line}: {reason.text()}", err=True)
    _report_errors(tree.errors)
    # a handler left as it was (refused), or a file that could not be read (it may hold one),
    # is a finding, as in scan, plan and verify
    done = EXIT_FINDINGS if migration.skipped or tree.errors else EXIT_CLEAN
    if not migration.changes:
        if migration.skipped:
            refused = len(migration.skipped)
            noun = "handler" if refused == 1 else "handlers"
            click.echo(f"nothing migrated: {refused} {noun} refused (reasons above)", err=True)
        else:
            click.echo("nothing to migrate", err=True)
        sys.exit(done)
    if write:
        from untangle.check import check_contents

        validation = check_contents(migration.contents(), migration.root)
        for validator in validation.skipped:
            click.echo(f"untangle: not validated with {validator}: not installed", err=True)
        problems = validation.problems
        if strict_validation:
            problems = problems + [f"{v} is not installed" for v in validation.skipped]
        if problems:
            for problem in problems:
                click.echo(f"untangle: validation failed: {problem}", err=True)
            click.echo("nothing was written", err=True)
            sys.exit(EXIT_USAGE)
        try:
            apply_migration(migration)
        except (MigrationError, OSError, ValueError) as exc:
            _fail(f"{exc} (nothing was written)")
        click.echo(f"wrote {len(migration.changes)} file(s)", err=True)
        sys.exit(done)
    use_color = _use_color(color)
    diff = unified_diff(migration)
    if use_color:
        diff = "".join(_colored_diff_line(line) for line in diff.splitlines(keepends=True))
    click.echo(diff, nl=False, color=use_color)
    click.echo(
        f"{len(migration.changes)} file(s) would change (dry run; --write applies)", err=True
    )
    sys.exit(EXIT_FINDINGS if check else done)


def _colored_diff_line(line: str) -> str:
    if line.startswith(("+++", "---")):
        return click.style(line, bold=True)
    if line.startswith("+"):
        return click.style(line, fg="green")
    if line.startswith("-"):
        return click.style(line, fg="red")
    if line.startswith("@@"):
        return click.style(line, fg="cyan")
    return line


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
@click.option(
    "--handler", "handlers", multiple=True, help="Only this handler (name or qualified name)."
)
@click.option(
    "--timeout",
    "timeout_seconds",
    type=click.FloatRange(min=0, min_open=True),
    default=60.0,
    show_default=True,
    metavar="SECONDS",
    help="Each event's run (the original and the machine) and each orchestrator's import; "
    "longer is a timeout verdict for that event.",
)
@click.option(
    "--memory-limit",
    "memory_limit_mib",
    type=click.IntRange(min=0),
    default=2048,
    show_default=True,
    metavar="MIB",
    help="Address space of the process running the app's code (0: no limit); over it is an "
    "out-of-memory verdict.",
)
@_COLOR
def verify(
    app: str,
    event_files: tuple[str, ...],
    output_format: str,
    history: bool,
    query_language: str,
    original: str | None,
    keep_unchecked_errors: bool,
    strict: bool,
    handlers: tuple[str, ...],
    timeout_seconds: float,
    memory_limit_mib: int,
    color: bool | None,
) -> None:
    """Run the original orchestrators of APP and the state machines `untangle migrate` would
    write on the same events (in a child process, with moto), and compare them.

    Runs the app's code. Needs the verify extra: pip install 'untangle-lambda[verify]'.

    \b
    Exit codes: 0 every workflow equivalent on every event (or different only where documented,
    without --strict); 1 a mismatch, a workflow that could not be verified, or an event whose
    run timed out, ran out of memory, exited, crashed or tried the network; 2 usage error
    (no events, APP missing, an unknown --handler, the extra not installed).
    \b
    Examples:
      untangle verify fixtures/article/order_chain/module_client
      untangle verify app/ --event events/big-order.json --history
    """
    from untangle.verify import VerifySession

    # the child that runs the app starts first: moto's start is the longest step of a short
    # verify, and everything below happens while it lasts (a usage error ends it at once)
    with VerifySession(timeout_seconds, memory_limit_mib) as session:
        results, unreadable = _verify_app(
            session, app, event_files, query_language, original, keep_unchecked_errors, handlers
        )
    _print_verified(results, unreadable, output_format, history, color, strict)


def _verify_app(
    session: Any,
    app: str,
    event_files: tuple[str, ...],
    query_language: str,
    original: str | None,
    keep_unchecked_errors: bool,
    handlers: tuple[str, ...],
) -> tuple[list[Any], list[Any]]:
    """What `verify` finds: the results, and the files that could not be read."""
    from untangle.engine.machine import EngineUnavailable
    from untangle.verify import UnknownHandler, VerifyFailed, load_events

    if not os.path.exists(app):
        _fail(f"no such file or directory: {app}")
    if not os.path.isdir(app):
        _fail(f"not a directory: {app} (verify takes the app's folder)")
    _require_paths((app,))
    _recover_interrupted_writes((app,))
    try:
        events = load_events(app, event_files)
    except (OSError, ValueError) as exc:
        _fail(str(exc))
    if not events:
        _fail(f"no events: pass --event FILE or add {os.path.join(app, 'events', '*.json')}")
    options = _scan_options(_config((app,), None), no_cache=True)
    unreadable: list[Any] = []

    def find_unreadable() -> None:
        # the files the child cannot read either, named as every command names them (found
        # while the child runs the app: this process has nothing else to do then)
        from untangle.scan import load_tree

        unreadable.extend(load_tree((app,), options).errors)

    try:
        results = session.verify(
            app,
            events,
            query_language,
            original,
            keep_unchecked_errors,
            handlers,
            meanwhile=find_unreadable,
        )
    except UnknownHandler as exc:
        _fail(str(exc))
    except (ImportError, EngineUnavailable) as exc:  # the child lacks moto / jsonata-python
        _fail(f"{exc} (the verify extra: pip install 'untangle-lambda[verify]')")
    except VerifyFailed as exc:
        _fail(f"verify failed: {exc}")
    return results, unreadable


def _print_verified(
    results: list[Any],
    unreadable: list[Any],
    output_format: str,
    history: bool,
    color: bool | None,
    strict: bool,
) -> NoReturn:
    """The results on stdout, the unreadable files on stderr, and the exit code."""
    import json

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
                **({"verdict": r.verdict, "reason": r.reason} if r.verdict else {}),
            }
            for r in results
        ]
        click.echo(json.dumps({"results": documents}, indent=2, default=str))
    else:
        use_color = _use_color(color)
        for result in results:
            click.echo(_verify_text(result, history, use_color), color=use_color)
    _report_errors(unreadable)
    if not results:
        click.echo("no workflow to verify under this app", err=True)
    passed = all(r.equivalent or (r.documented and not strict) for r in results)
    # the interpreter's exit would walk every object the plan and the migration left (a
    # tenth of a short verify): frozen, the collector skips them
    gc.freeze()
    sys.exit(EXIT_CLEAN if passed and not unreadable else EXIT_FINDINGS)


def _abbreviate(value: Any, width: int = 100) -> str:
    import json

    text = json.dumps(value, default=str)
    return text if len(text) <= width else text[: width - 3] + "..."


def _verify_text(result: Any, history: bool, color: bool = False) -> str:
    def verdict(text: str, colour: str) -> str:
        return click.style(text, fg=colour, bold=True) if color else text

    head = f"{result.workflow} {result.event}: "
    if result.skipped:
        return head + str(result.skipped)
    if result.verdict and result.original["status"] is None:  # nothing came back to compare
        return head + verdict(result.verdict.upper(), "red") + f": {result.reason}"
    if result.verdict:
        lines = [head + verdict(result.verdict.upper(), "red") + f": {result.reason}"]
        lines.extend(f"  note: {note}" for note in result.notes)
        return "\n".join(lines)
    waited = result.machine_waited_seconds
    if result.equivalent:
        lines = [
            head
            + verdict("equivalent", "green")
            + f" ({result.machine['status']}, waited {waited:g} s fast-forwarded)"
        ]
    elif result.documented:
        lines = [head + verdict("documented difference", "yellow") + f": {result.documented}"]
    else:
        lines = [head + verdict("MISMATCH", "red")]
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
    from untangle.rules import ALL_RULES

    for rule in ALL_RULES:
        click.echo(f"{rule.id}  {rule.name:<18} {rule.summary}")


@main.command()
@click.argument("rule_name")
def explain(rule_name: str) -> None:
    """Explain one rule, with examples that it reports and that it does not."""
    from untangle.rules import resolve_rule

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
    from untangle.config import ConfigError, find_config, load_config

    try:
        return load_config(config_path or find_config(paths[0]))
    except ConfigError as exc:
        _fail(str(exc))


def _scan_options(config: Config, no_cache: bool, cache_dir: str | None = None) -> ScanOptions:
    from untangle.cache import default_cache_dir
    from untangle.scan import ScanOptions

    return ScanOptions(
        include=config.include,
        exclude=config.exclude,
        handler_patterns=config.handler_patterns,
        extra_paths=config.extra_paths,
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


def _recover_interrupted_writes(paths: tuple[str, ...]) -> None:
    """Before any command reads the tree: roll back a `migrate --write` that was killed half
    way (its journal in PATHS' directories or above), and say so."""
    from untangle.journal import WriteRefused, journal_roots, recover

    for root in journal_roots(paths):
        try:
            recovery = recover(root)
        except (WriteRefused, OSError) as exc:
            _fail(f"cannot recover the interrupted write in {root}: {exc}")
        if recovery is None:
            continue
        if recovery.conflicts:
            _fail(
                f"an interrupted `migrate --write` in {root} cannot be rolled back: "
                f"{', '.join(recovery.conflicts)} changed since; their old contents are in "
                f"{os.path.join(root, '.untangle-journal')} (delete it when resolved)"
            )
        if recovery.rolled_back:
            click.echo(
                f"untangle: rolled back an interrupted `migrate --write` in {root}: "
                f"{len(recovery.restored)} file(s) restored, {len(recovery.removed)} new "
                "file(s) removed",
                err=True,
            )
        else:
            click.echo(
                f"untangle: removed the journal of an interrupted `migrate --write` in {root} "
                "(no file had been replaced, or all had)",
                err=True,
            )


def _fail(message: str) -> NoReturn:
    from untangle.files import shown

    click.echo(f"untangle: error: {shown(message)}", err=True)
    sys.exit(EXIT_USAGE)
