"""A large tree is read and parsed by this process and forked ones together, each taking the
next share of the files: whoever reads a file, and whatever the cache holds, the report is the
one a single process gives."""

from __future__ import annotations

import json
import os
import pickle
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from untangle.cli import main
from untangle.shared_jobs import SharedJobs

# --- the shared jobs ---------------------------------------------------------------------------

PARENT = os.getpid()


def square(job: int) -> int:
    return job * job


def unpicklable_in_a_helper(job: int) -> Callable[[], int]:
    return lambda: job * job  # a lambda cannot be pickled: a helper cannot send it


def dies_in_a_helper(job: int) -> int:
    if job == 3 and os.getpid() != PARENT:
        os._exit(9)  # the helper that took job 3 dies with every answer it had
    return job * job


@pytest.mark.parametrize("helpers", [0, 1, 3])
# 5,000 records are more than a pipe holds (64 KiB): the rest wait, and are offered as it empties
@pytest.mark.parametrize("count", [0, 1, 2, 40, 255, 256, 5000])
def test_every_job_is_done_once_and_the_results_keep_the_jobs_order(
    helpers: int, count: int
) -> None:
    taken: list[int] = []
    results = SharedJobs(list(range(count)), square, helpers).finish(taken.append)
    assert results == [job * job for job in range(count)]
    assert len(taken) == len(set(taken)) <= count


@pytest.mark.parametrize(
    ("work", "expected"),
    [
        pytest.param(unpicklable_in_a_helper, None, id="result-a-helper-cannot-send"),
        pytest.param(dies_in_a_helper, [job * job for job in range(12)], id="helper-dies"),
        pytest.param(square, [job * job for job in range(12)], id="helpers-that-answer"),
    ],
)
def test_what_a_helper_could_not_answer_is_done_here(
    work: Callable[[int], Any], expected: list[int] | None
) -> None:
    shared = SharedJobs(list(range(12)), work, 2)
    time.sleep(0.3)  # the helpers take most jobs before this process joins them
    results = shared.finish()
    if expected is None:
        assert [result() for result in results] == [job * job for job in range(12)]
    else:
        assert results == expected


def test_without_fork_this_process_does_every_job(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delattr(os, "fork")
    pids = SharedJobs(list(range(10)), lambda job: os.getpid(), 4).finish()
    assert pids == [os.getpid()] * 10


def pid_after(job: float) -> int:
    time.sleep(job)
    return os.getpid()


def unpicklable_job(job: Any) -> int:
    return os.getpid()


@pytest.mark.parametrize("helpers", [0, 1, 2])
@pytest.mark.parametrize("before", [0, 3, 20])
def test_jobs_added_after_the_helpers_started_are_all_done_in_order(
    helpers: int, before: int
) -> None:
    shared = SharedJobs([], square, 0, more=True)
    for job in range(before):
        shared.add(job)
    shared.start(helpers)
    for job in range(before, 40):
        shared.add(job)
    assert shared.finish() == [job * job for job in range(40)]


def test_helpers_take_the_jobs_added_while_this_process_is_busy() -> None:
    shared = SharedJobs([], pid_after, 0, more=True)
    shared.start(2)
    for _ in range(6):
        shared.add(0.05)
    time.sleep(0.5)  # this process "walks the tree": the helpers do every job meanwhile
    shared.close()
    pids = shared.finish()
    assert os.getpid() not in pids
    assert len(set(pids)) in (1, 2)


def test_a_job_that_cannot_be_sent_to_a_helper_is_done_here() -> None:
    shared = SharedJobs([], unpicklable_job, 0, more=True)
    shared.start(1)
    shared.add(lambda: 0)  # a lambda cannot be pickled into the spool
    time.sleep(0.2)
    assert shared.finish() == [os.getpid()]


def test_until_closed_the_helpers_wait_for_more_jobs() -> None:
    shared = SharedJobs([], pid_after, 0, more=True)
    shared.start(1)
    time.sleep(0.3)  # the helper has nothing yet: it waits, it does not leave
    shared.add(0)
    time.sleep(0.3)
    assert shared.finish() != [os.getpid()]


def note_after(job: tuple[str, float]) -> None:
    path, seconds = job
    time.sleep(seconds)
    with open(path, "a") as handle:
        handle.write("done\n")


def test_jobs_no_one_took_are_not_done_once_abandoned(tmp_path: Path) -> None:
    notes = tmp_path / "done.txt"
    shared = SharedJobs([], note_after, 0, more=True)
    shared.start(1)
    for _ in range(20):
        shared.add((str(notes), 0.2))
    shared.abandon()  # the helper ends after the job it took (20 jobs would take 4 s)
    done = notes.read_text().count("done") if notes.exists() else 0
    assert done < 20


def test_abandoned_jobs_end_their_helpers() -> None:
    shared = SharedJobs([], pid_after, 0, more=True)
    shared.start(2)
    shared.add(0.01)
    pids = [pid for pid, _ in shared.helpers]
    shared.abandon()
    for pid in pids:
        with pytest.raises(ChildProcessError):
            os.waitpid(pid, os.WNOHANG)  # already waited for: no such child any more


def test_results_come_back_pickled_once_by_sendable() -> None:
    shared = SharedJobs(list(range(6)), square, 2, sendable=lambda result: -result)
    time.sleep(0.3)
    results = shared.finish()
    # a helper's answers went through `sendable`, this process's own did not
    assert [abs(result) for result in results] == [job * job for job in range(6)]
    assert pickle.loads(pickle.dumps(results)) == results


# --- a scan of a large tree ---------------------------------------------------------------------

HANDLER = """\
from helpers.lam import call


def handler(event, context):
    return call("worker-a")
"""
HELPER = """\
import boto3

client = boto3.client("lambda")


def call(name):
    return client.invoke(FunctionName=name)
"""
# prefiltered (`.invoke`), but the screen drops it (no invoke word, no handler shape): only the
# template makes it a handler, and the template is read while the files are
WORKER = """\
import time


def start(payload):
    # not sagemaker.invoke_endpoint( here
    time.sleep(5)
"""
ORCHESTRATOR = """\
Resources:
  Orchestrator:
    Type: AWS::Serverless::Function
    Properties:
      CodeUri: .
      Handler: app.handler
      Runtime: python3.12
"""
WORKER_FUNCTION = """\
  Worker:
    Type: AWS::Serverless::Function
    Properties:
      CodeUri: .
      Handler: worker.start
      Runtime: python3.12
"""


def write_tree(root: Path, template: str, files: int) -> None:
    (root / "helpers").mkdir(parents=True)
    (root / "helpers" / "__init__.py").write_text("")
    (root / "helpers" / "lam.py").write_text(HELPER)
    (root / "app.py").write_text(HANDLER)
    (root / "worker.py").write_text(WORKER)
    (root / "template.yaml").write_text(template)
    (root / "pyproject.toml").write_text("[tool.untangle]\n")
    (root / "filler").mkdir()
    for index in range(files):
        # every third one a candidate the screen drops
        comment = "  # calls .invoke( elsewhere" if index % 3 == 0 else ""
        (root / "filler" / f"mod_{index}.py").write_text(f"VALUE = {index}{comment}\n")


def scan(root: Path, *args: str) -> list[tuple[str, str, str | None]]:
    try:  # click < 8.2 mixes stderr into stdout unless told otherwise
        runner = CliRunner(mix_stderr=False)  # type: ignore[call-arg]
    except TypeError:
        runner = CliRunner()
    cwd = os.getcwd()
    os.chdir(root)
    try:
        result = runner.invoke(main, ["scan", "--format", "json", *args, "."])
    finally:
        os.chdir(cwd)
    assert isinstance(result.exception, SystemExit), result.stderr
    document = json.loads(result.stdout)
    assert document["errors"] == []
    return [(os.path.normpath(f["path"]), f["rule"], f["handler"]) for f in document["findings"]]


ORCHESTRATOR_FINDINGS = [("helpers/lam.py", "UNT001", "app.handler")]
WORKER_FINDINGS = [("worker.py", "UNT003", "worker.start")]


@pytest.mark.parametrize("jobs", ["1", "2"])
@pytest.mark.parametrize(
    ("files", "template", "expected"),
    [
        pytest.param(
            250,
            ORCHESTRATOR + WORKER_FUNCTION,
            ORCHESTRATOR_FINDINGS + WORKER_FINDINGS,
            id="large-tree-template-names-a-screened-module",
        ),
        pytest.param(250, ORCHESTRATOR, ORCHESTRATOR_FINDINGS, id="large-tree-no-such-function"),
        pytest.param(
            20,
            ORCHESTRATOR + WORKER_FUNCTION,
            ORCHESTRATOR_FINDINGS + WORKER_FINDINGS,
            id="small-tree-read-here",
        ),
    ],
)
def test_the_report_is_the_same_whoever_reads_the_files(
    tmp_path: Path, jobs: str, files: int, template: str, expected: list[Any]
) -> None:
    root = tmp_path / "tree"
    write_tree(root, template, files)
    cache = str(tmp_path / "cache")
    # no cache; then a cache filled by this scan; then its facts read (the other rules asked
    # for, so the last scan's result is not reused) by whichever process reads each file
    assert sorted(scan(root, "--no-cache", "-j", jobs)) == sorted(expected)
    assert sorted(scan(root, "--cache-dir", cache, "-j", jobs)) == sorted(expected)
    every_rule = ",".join(f"UNT00{n}" for n in range(1, 8))
    warm = scan(root, "--cache-dir", cache, "-j", jobs, "--select", every_rule)
    assert sorted(warm) == sorted(expected)
