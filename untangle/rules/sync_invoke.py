from __future__ import annotations

from collections.abc import Iterator

from untangle.analysis.patterns import invocation, is_self_invoke, self_invokers
from untangle.analysis.program import Program
from untangle.rules.base import RawFinding, Rule, describe_target, shape_note, target_of


class SyncInvoke(Rule):
    """
    A Lambda function calls another Lambda function synchronously and waits for its answer.

    While the callee runs, the caller is billed for doing nothing, and it must outlive the callee:
    timeouts stack up, a failure in the callee surfaces as a payload the caller has to parse,
    and the control flow between the two functions is invisible. `InvocationType` defaults to
    `RequestResponse` when omitted; a value that is not known statically (a conditional, a
    `**params` dict built elsewhere) is treated as synchronous.

    Fix: let a Step Functions Task state call the function (`arn:aws:states:::lambda:invoke`),
    so the state machine waits, retries and catches — for free — instead of the caller.
    `untangle plan` infers that state machine.
    """

    id = "UNT001"
    name = "sync-invoke"
    summary = "synchronous Lambda-to-Lambda invoke: the caller pays while it waits"
    VALID = [
        # asynchronous: reported as UNT002 instead
        """
import boto3
lam = boto3.client("lambda")
def handler(event, context):
    lam.invoke(FunctionName="audit", InvocationType="Event", Payload=b"{}")
""",
        # not a Lambda client: SageMaker endpoints are not Lambda chaining
        """
import boto3
rt = boto3.client("sagemaker-runtime")
def handler(event, context):
    return rt.invoke_endpoint(EndpointName="model", Body=b"{}")
""",
        # an object with an invoke method that is not a boto3 client
        """
class Fake:
    def invoke(self, **kwargs):
        return kwargs
def handler(event, context):
    return Fake().invoke(FunctionName="x")
""",
        # durable functions: context.invoke is already a managed workflow
        """
def handler(event, context):
    return context.invoke("charge", event)
""",
    ]
    INVALID = [
        """
import boto3
lam = boto3.client("lambda")
def handler(event, context):
    return lam.invoke(FunctionName="validate-payment", Payload=b"{}")
""",
        """
from boto3 import client
def handler(event, context):
    return client("lambda").invoke(FunctionName="x", InvocationType="RequestResponse")
""",
        """
import boto3
def get_client():
    return boto3.session.Session().client("lambda")
def handler(event, context):
    mode = "Event" if event.get("async") else "RequestResponse"
    return get_client().invoke(FunctionName="x", InvocationType=mode)
""",
    ]

    def check(self, program: Program) -> Iterator[RawFinding]:
        for site in program.invokes:
            how = invocation(site)
            if how.kind != "sync" or is_self_invoke(site):
                continue
            selves = self_invokers(site, program)
            if selves is not None and not selves.others:
                continue  # every handler here invokes itself: UNT006
            yield RawFinding(
                self.id,
                site.function,
                site.site.span,
                f"synchronous invoke of {describe_target(site)} ({how.detail}{shape_note(site)}): "
                "the caller pays while it waits; let a Step Functions Task call it",
                target_of(site),
                site,
                selves.others if selves is not None else None,
            )
