from __future__ import annotations

from collections.abc import Iterator

from untangle.analysis.patterns import retry_loops
from untangle.analysis.program import Program
from untangle.rules.base import RawFinding, Rule, seconds_text


class SleepInHandler(Rule):
    """
    A handler (or a helper it calls) sleeps: `time.sleep(...)` or `await asyncio.sleep(...)`.

    Lambda bills the sleep like work, and a handler cannot sleep past its timeout (15 minutes at
    most): a 24-hour reminder written as a sleep can never run. Sleeps inside a retry or polling
    loop are reported once, as UNT004, not here.

    Fix: a Step Functions `Wait` state (`Seconds`, `SecondsPath`, `Timestamp`) waits for up to a
    year at no cost.
    """

    id = "UNT003"
    name = "sleep-in-handler"
    summary = "a handler sleeps: paying for idle time"
    needs_handler = True
    VALID = [
        # not on any handler's path
        """
import time
def main():
    time.sleep(5)
""",
        # a method named sleep on something else
        """
class Clock:
    def sleep(self, n):
        return n
def handler(event, context):
    Clock().sleep(5)
""",
    ]
    INVALID = [
        """
import time
def handler(event, context):
    time.sleep(24 * 60 * 60)
""",
        """
import asyncio
from time import sleep as pause
def wait_a_bit():
    pause(2)
def handler(event, context):
    wait_a_bit()
""",
        """
import asyncio
async def main():
    await asyncio.sleep(10)
def handler(event, context):
    asyncio.run(main())
""",
    ]

    def check(self, program: Program) -> Iterator[RawFinding]:
        loops = retry_loops(program)
        for sleep in program.sleeps:
            if any((sleep.function, loop) in loops for loop in sleep.site.loops):
                continue
            yield RawFinding(
                self.id,
                sleep.function,
                sleep.site.span,
                f"sleeps for {seconds_text(sleep.seconds)} on a handler's path: "
                "billed idle time; use a Wait state",
            )
