"""Every validator on what a migration would write, side by side.

Python compiles; each definition passes cfn-lint's E3601 and asl-validator; each template passes
the SAM transform (and stays within CloudFormation's 500 resources once transformed) and
cfn-lint. The definitions are linted in batches, one synthetic template per batch
(`untangle.validate.cfn_lint_errors`), and the batches and templates go to a pool of one process
per core (the largest templates first), while asl-validator checks every definition in one node
process of its own. cfn-lint's rules are loaded here, before the pool forks, so that every
worker lints every template it is given with the same rules.

Measured in CPU time (2 cores, loaded), 50 generated workflows in one template: cfn-lint of the
definitions took 27.5 s one by one (0.55 s each), 2.6 s in two batches of 25; all the validators
31 s in one process before, 10.6 s in all now, the longest job the template's cfn-lint (3.6 s).
Each worker loaded cfn-lint's rules again for every template (0.5-0.9 s of the 0.7-1.2 s a small
template took); loaded once, a small app's template costs about 0.09 s (cfn-lint 0.06 s, the SAM
transform 0.025 s) and its definition's E3601 0.026 s: the validators of 200 separate apps took
25.7 s of CPU in all, and `migrate --write` of 50 apps 14.4 s where it took 40.5 s.
"""

from __future__ import annotations

import contextlib
import importlib
import json
import logging
import math
import multiprocessing
import os
from collections.abc import Callable
from concurrent.futures import Executor, Future, ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass
from typing import Any

from untangle import sam
from untangle.validate import (
    MAX_DEFINITIONS_PER_TEMPLATE,
    Definition,
    ValidatorUnavailable,
    asl_errors,
    cfn_lint_errors,
    load_cfn_lint,
)

CFN_LINT_MISSING = "cfn-lint (pip install cfn-lint)"


@dataclass(frozen=True)
class Validation:
    """What the validators said about a migration, and which of them could not run here."""

    problems: list[str]
    skipped: list[str]


def check_contents(contents: dict[str, str], root: str, workers: int | None = None) -> Validation:
    """Every validator on `contents` (path → text of each file a migration writes; paths are
    reported relative to `root`). A validator that is not installed (Node.js, asl-validator,
    cfn-lint, the SAM translator) is skipped and named. `workers`: processes for cfn-lint and
    the SAM transform (default one per core; 1 runs them all in this process)."""
    skipped: set[str] = set()
    relative = {path: os.path.relpath(path, root) for path in contents}
    definitions = [
        (path, json.loads(text)) for path, text in contents.items() if path.endswith(".asl.json")
    ]
    templates = sorted(
        (path for path in contents if os.path.basename(path) in ("template.yaml", "template.yml")),
        key=lambda path: -len(contents[path]),  # the longest first: they take the longest
    )
    workers = max(1, workers or os.cpu_count() or 1)
    lint = bool(definitions)
    if definitions or templates:
        try:
            load_cfn_lint()  # before the pool forks: its workers start with cfn-lint's rules
        except ValidatorUnavailable:
            skipped.add(CFN_LINT_MISSING)
            lint = False
    _prepare_sam_translator()
    batches = _batches([d for _, d in definitions], workers) if lint else []
    with _executor(min(workers, len(templates) + len(batches))) as executor:
        template_jobs = [
            _Job(
                executor,
                _validate_template,
                contents[path],
                os.path.dirname(path),
                _named_in(contents[path], contents),
            )
            for path in templates
        ]
        lint_jobs = [_Job(executor, cfn_lint_errors, batch) for batch in batches]
        # node runs on a core of its own meanwhile
        try:
            asl = asl_errors([d for _, d in definitions])
        except ValidatorUnavailable as exc:
            skipped.add(f"asl-validator ({exc})")
            asl = [[] for _ in definitions]
        cfn = [errors for job in lint_jobs for errors in job.result()]
        template_problems = {}
        for path, job in zip(templates, template_jobs):
            template_problems[path], template_skipped = job.result()
            skipped.update(template_skipped)
    cfn_of = dict(zip((path for path, _ in definitions), cfn))
    problems: list[str] = []
    for path, text in contents.items():
        if path.endswith(".py"):
            try:
                compile(text, path, "exec")
            except SyntaxError as exc:
                problems.append(
                    f"{relative[path]}:{exc.lineno}: rewritten code does not compile: {exc.msg}"
                )
        problems += [f"{relative[path]}: {e}" for e in cfn_of.get(path, [])]
    for (path, _), errors in zip(definitions, asl):
        problems += [f"{relative[path]}: {e}" for e in errors]
    for path in contents:  # in the order of the files, whichever finished first
        problems += [f"{relative[path]}: {e}" for e in template_problems.get(path, [])]
    return Validation(problems, sorted(skipped))


def _validate_template(
    text: str, directory: str, pending: dict[str, str]
) -> tuple[list[str], set[str]]:
    skipped: set[str] = set()
    return sam.validate(text, directory, pending, skipped), skipped


def _batches(definitions: list[Definition], workers: int) -> list[list[Definition]]:
    """One batch a worker, at most `MAX_DEFINITIONS_PER_TEMPLATE` in each: with the rules
    loaded, a template of one small definition still costs about 0.024 s, twenty in one 0.18 s."""
    size = min(MAX_DEFINITIONS_PER_TEMPLATE, math.ceil(len(definitions) / workers) or 1)
    return [definitions[start : start + size] for start in range(0, len(definitions), size)]


def _named_in(text: str, contents: dict[str, str]) -> dict[str, str]:
    """The files of `contents` a template may point at (by a `DefinitionUri`): those whose name
    it holds. Sent to a worker instead of every file of a migration of hundreds of apps."""
    return {
        path: other
        for path, other in contents.items()
        if path.endswith(".json") and os.path.basename(path) in text
    }


def _prepare_sam_translator() -> None:
    """Imported before the pool forks, once for all its workers (where it is installed)."""
    # The SAM translator logs "There are unpublished metrics" (a warning, which Python prints
    # on stderr when nothing configured logging) whenever a translator it made is collected, so
    # at random points of a run: its metrics of a local validation concern no one.
    logging.getLogger("samtranslator.metrics.metrics").setLevel(logging.ERROR)
    with contextlib.suppress(ImportError):  # sam.validate names it as skipped
        importlib.import_module("samtranslator.translator.transform")


class _Job:
    """`function(*args)` sent to `executor`; run here instead when the pool broke (a worker
    killed, say by the kernel out of memory)."""

    def __init__(self, executor: Executor, function: Callable[..., Any], *args: Any) -> None:
        self.function = function
        self.args = args
        self.future: Future[Any] | None = None
        with contextlib.suppress(BrokenProcessPool):
            self.future = executor.submit(function, *args)

    def result(self) -> Any:
        try:
            if self.future is not None:
                return self.future.result()
        except BrokenProcessPool:
            pass
        return self.function(*self.args)


class _InProcess(Executor):
    """Runs each job when it is submitted: a pool of one."""

    def submit(self, fn: Callable[..., Any], /, *args: Any, **kwargs: Any) -> Future[Any]:
        future: Future[Any] = Future()
        try:
            future.set_result(fn(*args, **kwargs))
        except Exception as exc:
            future.set_exception(exc)
        return future


def _executor(workers: int) -> Executor:
    if workers <= 1:
        return _InProcess()
    # forked where fork exists: the workers start with cfn-lint and the SAM translator imported
    methods = multiprocessing.get_all_start_methods()
    context = multiprocessing.get_context("fork" if "fork" in methods else None)
    try:
        return ProcessPoolExecutor(max_workers=workers, mp_context=context)
    except (OSError, ValueError):  # no semaphores here (some sandboxes): one process
        return _InProcess()
