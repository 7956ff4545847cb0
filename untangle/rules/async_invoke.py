from __future__ import annotations

from collections.abc import Iterator

from untangle.analysis.patterns import invocation, is_self_invoke, self_invokers
from untangle.analysis.program import Program
from untangle.rules.base import RawFinding, Rule, describe_target, shape_note, target_of


class AsyncInvoke(Rule):
    """
    A Lambda function fires another Lambda function asynchronously (`InvocationType="Event"`,
    or the legacy `invoke_async`).

    Fire-and-forget chains lose the thread: nobody sees whether the next step ran, failures go
    to the callee's retry policy and dead-letter queue (if any), and the workflow exists only as
    scattered calls. The caller does not wait, so this costs less than a synchronous invoke,
    but the control flow is still hidden.

    Fix: make the chain a state machine (a Task with `InvocationType: Event` for a step whose
    answer really is not needed), so every step is visible and retried in one place.
    """

    id = "UNT002"
    name = "async-invoke"
    summary = "asynchronous (fire-and-forget) Lambda-to-Lambda invoke"
    VALID = [
        """
import boto3
sns = boto3.client("sns")
def handler(event, context):
    sns.publish(TopicArn="arn:aws:sns:us-east-1:1:t", Message="next")
""",
        """
import boto3
lam = boto3.client("lambda")
def handler(event, context):
    return lam.get_function(FunctionName="worker")
""",
    ]
    INVALID = [
        """
import boto3
lam = boto3.client("lambda")
def handler(event, context):
    lam.invoke(FunctionName="worker", InvocationType="Event", Payload=b"{}")
""",
        """
import boto3
def handler(event, context):
    boto3.client("lambda").invoke_async(FunctionName="worker", InvokeArgs="{}")
""",
    ]

    def check(self, program: Program) -> Iterator[RawFinding]:
        for site in program.invokes:
            how = invocation(site)
            if how.kind != "async" or is_self_invoke(site):
                continue
            selves = self_invokers(site, program)
            if selves is not None and not selves.others:
                continue  # every handler here invokes itself: UNT006
            yield RawFinding(
                self.id,
                site.function,
                site.site.span,
                f"asynchronous invoke of {describe_target(site)} ({how.detail}{shape_note(site)}): "
                "a fire-and-forget chain nobody can follow; make it a state machine",
                target_of(site),
                site,
                selves.others if selves is not None else None,
            )
