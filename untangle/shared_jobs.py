"""A list of jobs done by this process and forked copies of it together, each process taking the
next job no one has taken yet.

Nothing idles while there is work left: not this process (a pool that is sent batches leaves its
parent waiting), and not a helper that got the light batches. The jobs are taken from a pipe
holding one fixed-size record per job (a write or read of a few bytes is atomic, so no two
processes take the same job, and no lock is needed). The helpers inherit the work and the jobs
known when they are forked; jobs added later (while this process is still finding them, and the
helpers already work) reach them through a temporary file the record points into. Each helper
sends back what it did, pickled, once, when no job is left.

A job a helper took but did not answer for (it crashed, or its result could not be pickled) is
done again in this process: the caller always gets every result, in the order of the jobs.
Where `fork` does not exist, this process does them all.
"""

from __future__ import annotations

import contextlib
import os
import pickle
import struct
import sys
import tempfile
from collections.abc import Callable, Sequence
from typing import Generic, TypeVar

_Job = TypeVar("_Job")
_Result = TypeVar("_Result")

# a job's record in the pipe: its index, and where its pickle is in the spool file (length 0:
# a job the helpers inherited)
_RECORD = struct.Struct("<IQI")


class SharedJobs(Generic[_Job, _Result]):
    """`SharedJobs(jobs, work, helpers)` forks the helpers, which begin at once; `finish` joins
    them until no job is left and returns the results. Between the two, this process is free to
    do something else. With `more=True`, jobs are also added after that (`add`), until `close`;
    `start` forks the helpers when the caller knows there is enough work for them."""

    def __init__(
        self,
        jobs: Sequence[_Job],
        work: Callable[[_Job], _Result],
        helpers: int,
        sendable: Callable[[_Result], _Result] = lambda result: result,
        more: bool = False,
    ) -> None:
        self.jobs, self.work, self.sendable = list(jobs), work, sendable
        self.results: dict[int, _Result] = {}
        self.helpers: list[tuple[int, int]] = []  # (pid, read end of its pipe)
        self.queue: int | None = None  # the read end of the jobs' pipe
        self.offer: int | None = None  # its write end, while jobs may be added
        self.spool: int | None = None  # jobs added after the fork, pickled
        self.spooled = 0
        self.inherited = 0  # jobs the helpers have in memory
        self.waiting: list[bytes] = []  # records a full pipe refused, offered again later
        self.here: list[int] = []  # jobs no helper can be sent: done by this process
        self.more = more
        self.start(helpers)

    def start(self, helpers: int) -> None:
        """Fork up to `helpers` helpers (once), which take the jobs offered so far at once."""
        if self.queue is not None or helpers <= 0 or not hasattr(os, "fork"):
            return
        if not self.more:
            helpers = min(helpers, len(self.jobs) - 1)  # a lone job is done here
            if helpers <= 0:
                return
        try:
            spool = _spool() if self.more else None
        except OSError:
            return
        try:
            taken, offered = os.pipe()
            os.set_blocking(offered, False)
        except OSError:
            if spool is not None:
                os.close(spool)
            return
        self.spool = spool
        self.queue, self.offer, self.inherited = taken, offered, len(self.jobs)
        for index in range(len(self.jobs)):
            self._offer(index)
        if not self.more:
            self.close()
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

    def add(self, job: _Job) -> None:
        self.jobs.append(job)
        if self.offer is not None:
            self._offer(len(self.jobs) - 1)

    def close(self) -> None:
        """No job will be added: the helpers stop once every job is taken."""
        self.more = False
        if self.offer is not None:
            self._send()
            os.close(self.offer)
            self.offer = None
        for record in self.waiting:  # never offered: done here
            self.here.append(_RECORD.unpack(record)[0])
        self.waiting = []

    def _offer(self, index: int) -> None:
        assert self.offer is not None
        offset = length = 0
        if index >= self.inherited:
            assert self.spool is not None
            try:
                blob = pickle.dumps(self.jobs[index], protocol=pickle.HIGHEST_PROTOCOL)
                os.pwrite(self.spool, blob, self.spooled)
            except Exception:  # (a job that cannot be pickled, a full disk): done here
                self.here.append(index)
                return
            offset, length = self.spooled, len(blob)
            self.spooled += length
        self.waiting.append(_RECORD.pack(index, offset, length))
        self._send()

    def _send(self) -> None:
        """Offer the waiting records, in order, until the pipe is full. (It does not block: a
        full pipe, the helpers busy with long jobs, never stops this process, which is then
        likely still finding jobs.)"""
        assert self.offer is not None
        sent = 0
        for record in self.waiting:
            try:
                os.write(self.offer, record)
            except OSError:
                break
            sent += 1
        del self.waiting[:sent]

    def _help(self, answering: int) -> None:  # pragma: no cover - runs in the helper
        """The helper's life: jobs until none is left, one answer, and out without the
        interpreter's shutdown (nothing of it is needed: the parent owns every resource)."""
        status = 0
        try:
            if self.offer is not None:  # else the pipe would never end
                os.close(self.offer)
            for _, answer in self.helpers:  # the earlier helpers' pipes are not ours
                os.close(answer)
            done: dict[int, bytes] = {}
            assert self.queue is not None
            for index, offset, length in _Taker(self.queue):
                try:
                    if length:
                        assert self.spool is not None
                        job = pickle.loads(os.pread(self.spool, length, offset))
                    else:
                        job = self.jobs[index]
                    result = self.work(job)
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
        told how many jobs have been taken, by this process or another, each time it takes one.
        Closes the jobs first, if the caller has not."""
        self.close()
        try:
            if self.queue is not None:
                for index, _, _ in _Taker(self.queue):
                    if on_job is not None:
                        on_job(index + 1)
                    self.results[index] = self.work(self.jobs[index])
            for index in self.here:  # while the helpers finish theirs
                self.results[index] = self.work(self.jobs[index])
        finally:
            self._end()
        for index, job in enumerate(self.jobs):
            if index not in self.results:
                self.results[index] = self.work(job)
        return [self.results[index] for index in range(len(self.jobs))]

    def abandon(self) -> None:
        """Stop without the results (the caller failed): the jobs no one has taken yet are
        taken away, so that the helpers end after the one they are doing, and are waited for."""
        self.close()
        if self.queue is not None:
            with contextlib.suppress(OSError):
                for _ in _Taker(self.queue):
                    pass
        self._end()

    def _end(self) -> None:
        for fd in (self.queue, self.spool):
            if fd is not None:
                os.close(fd)
        self.queue = self.spool = None
        for pid, answer in self.helpers:
            self._collect(pid, answer)
        self.helpers = []

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


def _spool() -> int:
    """An unnamed temporary file (gone when its last descriptor closes)."""
    with tempfile.TemporaryFile() as handle:
        return os.dup(handle.fileno())


class _Taker:
    """The jobs this process takes from the shared pipe, until it is empty and closed: (index,
    offset, length) of each. A record is far smaller than the pipe's atomic size, and every one
    is written whole, so a read of one record's size returns exactly one record."""

    def __init__(self, queue: int) -> None:
        self.queue = queue

    def __iter__(self) -> _Taker:
        return self

    def __next__(self) -> tuple[int, int, int]:
        record = os.read(self.queue, _RECORD.size)
        if len(record) < _RECORD.size:  # empty: the pipe is closed and every job taken
            raise StopIteration
        index, offset, length = _RECORD.unpack(record)
        return index, offset, length
