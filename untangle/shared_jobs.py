"""A list of jobs done by this process and forked copies of it together, each process taking the
next job no one has taken yet.

Nothing idles while there is work left: not this process (a pool that is sent batches leaves its
parent waiting), and not a helper that got the light batches. The jobs are taken from a pipe
filled before forking with one byte per job (a one-byte read is atomic, so no two processes take
the same job, and no lock is needed); the helpers inherit the jobs and the work by `fork`, so
nothing is sent to them. Each helper sends back what it did, pickled, once, when no job is left.

A job a helper took but did not answer for (it crashed, or its result could not be pickled) is
done again in this process: the caller always gets every result, in the order of the jobs.
Where `fork` does not exist, this process does them all.
"""

from __future__ import annotations

import contextlib
import os
import pickle
import sys
from collections.abc import Callable, Sequence
from typing import Generic, TypeVar

_Job = TypeVar("_Job")
_Result = TypeVar("_Result")

MAX_JOBS = 255  # one byte each in the pipe


class SharedJobs(Generic[_Job, _Result]):
    """`start` forks the helpers, which begin at once; `finish` joins them until no job is left
    and returns the results. Between the two, this process is free to do something else."""

    def __init__(
        self,
        jobs: Sequence[_Job],
        work: Callable[[_Job], _Result],
        helpers: int,
        sendable: Callable[[_Result], _Result] = lambda result: result,
    ) -> None:
        if len(jobs) > MAX_JOBS:
            raise ValueError(f"at most {MAX_JOBS} jobs")
        self.jobs, self.work, self.sendable = jobs, work, sendable
        self.results: dict[int, _Result] = {}
        self.helpers: list[tuple[int, int]] = []  # (pid, read end of its pipe)
        self.queue: int | None = None
        if helpers > 0 and len(jobs) > 1 and hasattr(os, "fork"):
            self._start(min(helpers, len(jobs) - 1))

    def _start(self, helpers: int) -> None:
        try:
            taken, offered = os.pipe()
        except OSError:
            return
        # every job is in the pipe before the first helper starts (255 bytes never block)
        os.write(offered, bytes(range(len(self.jobs))))
        os.close(offered)
        self.queue = taken
        for stream in (sys.stdout, sys.stderr):  # else a helper would write its copy again
            with contextlib.suppress(Exception):
                stream.flush()
        for _ in range(helpers):
            try:
                answer, answering = os.pipe()
                pid = os.fork()
            except OSError:
                break  # fewer helpers (or none): this process does the rest
            if pid == 0:  # pragma: no cover - the helper's coverage is not collected
                os.close(answer)
                self._help(answering)
            os.close(answering)
            self.helpers.append((pid, answer))

    def _help(self, answering: int) -> None:  # pragma: no cover - runs in the helper
        """The helper's life: jobs until none is left, one answer, and out without the
        interpreter's shutdown (nothing of it is needed: the parent owns every resource)."""
        status = 0
        try:
            for _, answer in self.helpers:  # the earlier helpers' pipes are not ours
                os.close(answer)
            done: dict[int, bytes] = {}
            assert self.queue is not None
            for index in _Taker(self.queue):
                try:
                    result = self.work(self.jobs[index])
                    done[index] = pickle.dumps(
                        self.sendable(result), protocol=pickle.HIGHEST_PROTOCOL
                    )
                except Exception:  # (a result too deep to pickle): done again by the parent
                    continue
            with os.fdopen(answering, "wb") as handle:
                handle.write(pickle.dumps(done, protocol=pickle.HIGHEST_PROTOCOL))
        except BaseException:
            status = 1
        finally:
            os._exit(status)

    def finish(self, on_job: Callable[[int], None] | None = None) -> list[_Result]:
        """Take jobs here too until none is left, then collect the helpers' answers. `on_job` is
        told how many jobs have been taken, by this process or another, each time it takes one."""
        try:
            if self.queue is not None:
                for index in _Taker(self.queue):
                    if on_job is not None:
                        on_job(index + 1)
                    self.results[index] = self.work(self.jobs[index])
        finally:
            if self.queue is not None:
                os.close(self.queue)
                self.queue = None
            for pid, answer in self.helpers:
                self._collect(pid, answer)
            self.helpers = []
        for index, job in enumerate(self.jobs):
            if index not in self.results:
                self.results[index] = self.work(job)
        return [self.results[index] for index in range(len(self.jobs))]

    def _collect(self, pid: int, answer: int) -> None:
        try:
            with os.fdopen(answer, "rb") as handle:
                done = pickle.loads(handle.read())
            for index, result in done.items():
                self.results[index] = pickle.loads(result)
        except Exception:  # a helper that died half-way: its jobs are done here
            pass
        finally:
            with contextlib.suppress(ChildProcessError):
                os.waitpid(pid, 0)


class _Taker:
    """The indices of the jobs this process takes from the shared pipe, until it is empty."""

    def __init__(self, queue: int) -> None:
        self.queue = queue

    def __iter__(self) -> _Taker:
        return self

    def __next__(self) -> int:
        byte = os.read(self.queue, 1)
        if not byte:
            raise StopIteration
        return byte[0]
