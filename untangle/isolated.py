"""Run one call in a forked child, so that a native parser crashing on hostile input (LibCST's
parser overflows its stack on a 100,000-term `a or a or …` and takes the process down with
SIGSEGV) costs that one file, not the run.

Only the call's value (or its exception, as a type name and a message) comes back; the child
shares nothing else with the parent. Where `fork` does not exist, the call runs in-process.
"""

from __future__ import annotations

import contextlib
import multiprocessing
import os
import signal
import sys
from collections.abc import Callable
from multiprocessing.connection import Connection
from typing import Any, TypeVar

_T = TypeVar("_T")

# a rewrite of one handler takes well under a second: a minute means the input is hostile
DEFAULT_TIMEOUT = 60.0


class IsolatedFailure(Exception):
    """The call raised (`kind` is its exception's type name), crashed or ran out of time."""

    def __init__(self, kind: str, message: str) -> None:
        super().__init__(message)
        self.kind = kind
        self.message = message


def _child(connection: Connection, function: Callable[..., Any], args: tuple[Any, ...]) -> None:
    # LibCST's native parser prints its own errors to fd 2; the parent reports them once
    with contextlib.suppress(OSError):
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, 2)
    try:
        outcome: tuple[str, Any, str] = ("ok", function(*args), "")
    except BaseException as exc:  # everything goes back to the parent, as text
        outcome = ("error", type(exc).__name__, str(exc))
    try:
        connection.send(outcome)
    except Exception as exc:  # an unpicklable or too deep result
        connection.send(("error", type(exc).__name__, f"cannot return the result: {exc}"))
    connection.close()


def run_isolated(function: Callable[..., _T], *args: Any, timeout: float = DEFAULT_TIMEOUT) -> _T:
    """`function(*args)` in a forked child; an `IsolatedFailure` when it raises, is killed by a
    signal, or runs longer than `timeout` seconds."""
    if "fork" not in multiprocessing.get_all_start_methods():
        try:
            return function(*args)
        except RecursionError as exc:
            raise IsolatedFailure("RecursionError", str(exc)) from exc
    for stream in (sys.stdout, sys.stderr):  # else the child would write its copy again
        with contextlib.suppress(Exception):
            stream.flush()
    context = multiprocessing.get_context("fork")
    receiver, sender = context.Pipe(duplex=False)
    process = context.Process(target=_child, args=(sender, function, args), daemon=True)
    process.start()
    sender.close()
    try:
        if not receiver.poll(timeout):
            raise IsolatedFailure("Timeout", f"gave up after {timeout:g} s")
        try:
            status, value, message = receiver.recv()
        except (EOFError, OSError):
            process.join(5)
            raise IsolatedFailure("Crash", _death(process.exitcode)) from None
    finally:
        receiver.close()
        if process.is_alive():
            process.kill()
        process.join()
    if status == "ok":
        return value  # type: ignore[no-any-return]
    raise IsolatedFailure(str(value), message)


def _death(exitcode: int | None) -> str:
    if exitcode is not None and exitcode < 0:
        try:
            name = signal.Signals(-exitcode).name
        except ValueError:
            name = f"signal {-exitcode}"
        return f"the parser crashed ({name}), most likely on input nested too deeply"
    return f"the parser process ended without an answer (exit status {exitcode})"
