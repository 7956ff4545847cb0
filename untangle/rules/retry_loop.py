from __future__ import annotations

from collections.abc import Iterator

from untangle.analysis.patterns import retry_decorator, retry_loops
from untangle.analysis.program import Program
from untangle.rules.base import RawFinding, Rule, seconds_text


class RetryLoop(Rule):
    """
    A hand-rolled retry or polling loop around a Lambda invoke: `for attempt in range(n)` or
    `while …` with the invoke (directly or through a helper) and a sleep or a try/except; or a
    tenacity / backoff / retrying decorator on a function that invokes.

    The caller pays for every attempt and every pause, the policy differs from one function to
    the next, and a timeout in the middle loses the work.

    Fix: a `Retry` field on the Task state (`ErrorEquals`, `IntervalSeconds`, `MaxAttempts`,
    `BackoffRate`, `MaxDelaySeconds`, `JitterStrategy`), or a Wait + Choice loop for polling.
    """

    id = "UNT004"
    name = "retry-loop"
    summary = "hand-rolled retry or polling loop around an invoke"
    VALID = [
        # a loop over data without sleep or retry: reported as UNT005 (fan-out) instead
        """
import boto3
lam = boto3.client("lambda")
def handler(event, context):
    for record in event["Records"]:
        lam.invoke(FunctionName="worker", Payload=record["body"])
""",
        # a retry loop around something that is not a Lambda invoke
        """
import time, urllib.request
def handler(event, context):
    for attempt in range(3):
        try:
            return urllib.request.urlopen("http://example.com").read()
        except OSError:
            time.sleep(2 ** attempt)
""",
    ]
    INVALID = [
        """
import time
import boto3
lam = boto3.client("lambda")
def handler(event, context):
    for attempt in range(5):
        try:
            return lam.invoke(FunctionName="send-email", Payload=b"{}")
        except Exception:
            time.sleep(10 * 2 ** attempt)
""",
        """
import boto3
from tenacity import retry, stop_after_attempt
lam = boto3.client("lambda")
@retry(stop=stop_after_attempt(5))
def send(payload):
    return lam.invoke(FunctionName="send-email", Payload=payload)
def handler(event, context):
    return send(b"{}")
""",
        """
import time
import boto3
lam = boto3.client("lambda")
def handler(event, context):
    done = False
    while not done:
        status = lam.invoke(FunctionName="check-job", Payload=b"{}")
        done = status["StatusCode"] == 200
        time.sleep(5)
""",
    ]

    def check(self, program: Program) -> Iterator[RawFinding]:
        for retry in retry_loops(program).values():
            pauses = sorted(
                {s for site in retry.sleeps for s in _sleep_seconds(program, retry.function, site)}
            )
            if retry.guarded:
                pause = f", sleeping {', '.join(pauses)} between attempts" if pauses else ""
                message = (
                    f"hand-rolled retry loop around a Lambda invoke{pause}: "
                    "use a Retry field on the Task state"
                )
            else:
                pause = f", sleeping {', '.join(pauses)} between polls" if pauses else ""
                message = (
                    f"hand-rolled polling loop around a Lambda invoke{pause}: "
                    "use a Wait state and a Choice that loops back to the Task"
                )
            yield RawFinding(self.id, retry.function, retry.loop.span, message)
        for qualname in program.invoking:
            found = retry_decorator(program, qualname)
            if found is None:
                continue
            index, name = found
            decorator = program.functions[qualname].decorators[index]
            yield RawFinding(
                self.id,
                qualname,
                decorator.span,
                f"`{name}` retries a function that invokes Lambda: "
                "use a Retry field on the Task state instead",
            )


def _sleep_seconds(program: Program, function: str, site: object) -> list[str]:
    return [
        seconds_text(s.seconds)
        for s in program.sleeps
        if s.function == function and s.site is site and s.seconds is not None
    ]
