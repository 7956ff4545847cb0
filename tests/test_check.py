"""`untangle.check.check_contents`: every validator on what a migration writes, the definitions
cfn-linted in batches and the templates checked over a pool of processes, each problem reported
against its own file, in the same order whatever the number of workers."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from untangle.check import _executor, _Job, check_contents
from untangle.validate import ValidatorUnavailable, find_asl_validator

ROOT = "/project"

_HEAD = (
    'AWSTemplateFormatVersion: "2010-09-09"\nTransform: AWS::Serverless-2016-10-31\nResources:\n'
)
_BROKEN_TOPIC = "  Topic:\n    Type: AWS::SNS::Topic\n    Properties:\n      NoSuch: 1\n"


def _definition(step: int, broken: bool) -> str:
    state = {"Type": "Pass"} if broken else {"Type": "Pass", "End": True}
    return json.dumps({"StartAt": f"Step{step}", "States": {f"Step{step}": state}}, indent=2)


def _machines(steps: range) -> str:
    return "".join(
        f"  Machine{step}:\n"
        "    Type: AWS::Serverless::StateMachine\n"
        "    Properties:\n"
        f"      DefinitionUri: statemachine/step{step}.asl.json\n"
        for step in steps
    )


def _contents(broken: set[int], broken_template: bool = False) -> dict[str, str]:
    """Two apps of five state machines each (steps 0-4 and 5-9), as a migration writes them:
    definition files in the order of the steps, then the templates."""
    contents = {
        f"{ROOT}/{'app1' if step < 5 else 'app2'}/statemachine/step{step}.asl.json": _definition(
            step, step in broken
        )
        for step in range(10)
    }
    contents[f"{ROOT}/app1/template.yaml"] = _HEAD + _machines(range(5))
    contents[f"{ROOT}/app2/template.yaml"] = (
        _HEAD + _machines(range(5, 10)) + (_BROKEN_TOPIC if broken_template else "")
    )
    return contents


def _path(step: int) -> str:
    return f"{'app1' if step < 5 else 'app2'}/statemachine/step{step}.asl.json"


def _cfn_lint_says(step: int) -> list[str]:
    return [
        f"{_path(step)}: E3601 Only one of ['Next', 'End'] is a required property "
        f"at /States/Step{step}"
    ]


def _asl_validator_says(step: int) -> list[str]:
    return [
        f"{_path(step)}: MISSING_TERMINAL_STATE: State machine fsm1 is missing a terminal state",
        f'{_path(step)}: TERMINAL_STATE_WITH_NEXT: State "Step{step}" MUST contain exactly one '
        'of "End", "Next"',
    ]


def _asl_installed() -> bool:
    try:
        find_asl_validator()
    except ValidatorUnavailable:
        return False
    return True


@pytest.mark.parametrize(
    ("broken", "broken_template", "workers"),
    [
        # with two workers the definitions go in two batches (0-4, 5-9): the 7th is the second
        # batch's 2nd
        pytest.param({6}, False, 2, id="7th-of-10"),
        pytest.param({6}, False, 1, id="7th-of-10-in-process"),
        pytest.param({0}, False, 2, id="1st-of-10"),
        pytest.param({9}, False, 2, id="10th-of-10"),
        pytest.param({2, 6}, True, 2, id="3rd-7th-and-a-template"),
        pytest.param({2, 6}, True, 1, id="3rd-7th-and-a-template-in-process"),
        pytest.param(set(), False, 2, id="none"),
    ],
)
def test_each_problem_is_reported_against_its_file(
    broken: set[int], broken_template: bool, workers: int
) -> None:
    validation = check_contents(_contents(broken, broken_template), ROOT, workers)
    asl = _asl_installed()
    template = (
        ["app2/template.yaml: cfn-lint E3002: Additional properties are not allowed "
         "('NoSuch' was unexpected) (line 27)"]
        if broken_template
        else []
    )  # fmt: skip
    assert validation.problems == [
        *(problem for step in sorted(broken) for problem in _cfn_lint_says(step)),
        *(problem for step in sorted(broken) if asl for problem in _asl_validator_says(step)),
        *template,
    ]
    assert [s.split(" ")[0] for s in validation.skipped] == ([] if asl else ["asl-validator"])


# A folder first on sys.path whose packages stand for validators that are not installed.
_NOT_INSTALLED = "raise ImportError('not installed here')\n"

_RUN_CHECK = """\
import gc, json, sys
sys.path.insert(0, sys.argv[1])
from untangle.check import _executor, _Job, check_contents
validation = check_contents(json.loads(sys.argv[2]), sys.argv[3], int(sys.argv[4]))
print(json.dumps({"problems": validation.problems, "skipped": validation.skipped}))
gc.collect()  # what the validators left behind is collected here, not at some later point
"""


@pytest.mark.parametrize(
    ("hidden", "workers"),
    [
        pytest.param(("cfnlint",), 2, id="without-cfn-lint"),
        pytest.param(("samtranslator",), 2, id="without-the-SAM-translator"),
        pytest.param(("cfnlint", "samtranslator"), 2, id="without-either"),
        pytest.param((), 2, id="all-installed"),
        pytest.param((), 1, id="all-installed-in-process"),
    ],
)
def test_a_validator_not_installed_is_skipped_and_named(
    tmp_path: Path, hidden: tuple[str, ...], workers: int
) -> None:
    """In a process of its own (it imports the validators, or fails to): the others still run
    and report, and nothing is printed on stderr (the SAM translator warned "There are
    unpublished metrics" on stderr when a transform it ran was collected)."""
    for package in hidden:
        (tmp_path / package).mkdir()
        (tmp_path / package / "__init__.py").write_text(_NOT_INSTALLED)
    contents = _contents({6}, broken_template=True)
    done = subprocess.run(
        [sys.executable, "-c", _RUN_CHECK, str(tmp_path), json.dumps(contents), ROOT, str(workers)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert done.stderr == ""
    validation = json.loads(done.stdout)
    skipped = []
    if "cfnlint" in hidden:
        skipped.append("cfn-lint (pip install cfn-lint)")
    if "samtranslator" in hidden:
        skipped.append("the SAM transform (pip install aws-sam-translator)")
    assert [s for s in validation["skipped"] if not s.startswith("asl-validator")] == skipped
    problems = validation["problems"]
    linted = [p for p in problems if "E3601" in p]
    assert linted == ([] if "cfnlint" in hidden else _cfn_lint_says(6))
    template = [p for p in problems if p.startswith("app2/template.yaml")]
    assert bool(template) is ("cfnlint" not in hidden)
    if _asl_installed():
        assert any("TERMINAL_STATE_WITH_NEXT" in p for p in problems)


def _exit_unless_in(pid: int) -> str:
    if os.getpid() != pid:
        os._exit(1)  # a worker killed, as by the kernel out of memory
    return "ran in the parent"


def test_a_job_whose_worker_died_runs_in_the_parent() -> None:
    with _executor(2) as executor:
        died = _Job(executor, _exit_unless_in, os.getpid())
        assert died.result() == "ran in the parent"
        after = _Job(executor, os.getpid)  # the pool is broken: this one too runs here
        assert after.result() == os.getpid()
    with _executor(2) as executor:  # the near miss: a pool that works runs it elsewhere
        assert _Job(executor, os.getpid).result() != os.getpid()


_COUNT_RULE_LOADS = """\
import json, os, sys
from untangle.validate import require_cfn_lint
require_cfn_lint()
from cfnlint.rules import Rules
load = Rules.create_from_directory.__func__

def counted(cls, rulesdir):
    with open(sys.argv[1], "a") as log:
        log.write(f"{os.getpid()}\\n")
    return load(cls, rulesdir)

Rules.create_from_directory = classmethod(counted)
from untangle.check import check_contents
validation = check_contents(json.loads(sys.argv[2]), sys.argv[3], int(sys.argv[4]))
print(json.dumps({"pid": os.getpid(), "problems": validation.problems}))
"""


@pytest.mark.parametrize(
    "workers",
    [pytest.param(2, id="pool-of-two"), pytest.param(1, id="in-process")],
)
def test_cfn_lint_rules_are_loaded_once_for_every_template(tmp_path: Path, workers: int) -> None:
    """Loading cfn-lint's rules was most of the cost of a small template: the process loads
    them once, before its pool forks, and every worker lints every template it is given with
    them; what each template holds is still reported (the broken one of six)."""
    contents = {
        **_contents({6}, broken_template=True),
        **{
            f"{ROOT}/app{app}/template.yaml": _HEAD + "  Topic:\n    Type: AWS::SNS::Topic\n"
            for app in range(3, 7)
        },
    }
    log = tmp_path / "loads"
    done = subprocess.run(
        [
            sys.executable,
            "-c",
            _COUNT_RULE_LOADS,
            str(log),
            json.dumps(contents),
            ROOT,
            str(workers),
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    answer = json.loads(done.stdout)
    assert log.read_text().split() == [str(answer["pid"])]
    assert [p for p in answer["problems"] if "template.yaml" in p] == [
        "app2/template.yaml: cfn-lint E3002: Additional properties are not allowed "
        "('NoSuch' was unexpected) (line 27)"
    ]
