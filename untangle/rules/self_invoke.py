from __future__ import annotations

from collections.abc import Iterator

from untangle.analysis.patterns import invocation, is_self_invoke, self_invokers
from untangle.analysis.program import Program
from untangle.rules.base import RawFinding, Rule


class SelfInvoke(Rule):
    """
    A handler invokes itself (`FunctionName=context.function_name`,
    `context.invoked_function_arn` or `os.environ["AWS_LAMBDA_FUNCTION_NAME"]`), usually to
    continue long work past the 15-minute limit, often with a hop counter.

    Recursive chains are hard to stop and to observe; AWS's recursive-loop detection may cut
    them off. Reported instead of UNT001/UNT002 for the same call.

    Fix: a state machine loop (a Choice that goes back to the Task until the work is done), or a
    Map over the chunks of work.
    """

    id = "UNT006"
    name = "self-invoke"
    summary = "a handler re-invokes itself"
    VALID = [
        """
import boto3
lam = boto3.client("lambda")
def handler(event, context):
    lam.invoke(FunctionName="other-function", InvocationType="Event")
""",
    ]
    INVALID = [
        """
import boto3
lam = boto3.client("lambda")
def handler(event, context):
    if event.get("hops", 0) < 10:
        lam.invoke(FunctionName=context.function_name, InvocationType="Event")
""",
        """
import os
import boto3
def handler(event, context):
    boto3.client("lambda").invoke(FunctionName=os.environ["AWS_LAMBDA_FUNCTION_NAME"])
""",
    ]

    def check(self, program: Program) -> Iterator[RawFinding]:
        for site in program.invokes:
            if invocation(site).kind == "dry-run":
                continue
            selves = None if is_self_invoke(site) else self_invokers(site, program)
            if not is_self_invoke(site) and selves is None:
                continue
            yield RawFinding(
                self.id,
                site.function,
                site.site.span,
                "the handler re-invokes itself: a recursive chain; "
                "loop in a state machine (Choice back to the Task) instead",
                "(itself)",
                handlers=selves.itself if selves is not None else None,
            )
