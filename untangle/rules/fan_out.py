from __future__ import annotations

from collections.abc import Iterator

from untangle.analysis.patterns import gathered_invokes, is_pool_call, retry_loops
from untangle.analysis.program import Program
from untangle.facts.model import Span
from untangle.rules.base import RawFinding, Rule


class FanOut(Rule):
    """
    Lambda invokes made in a loop, a comprehension, a thread pool (`executor.submit`,
    `executor.map`, `loop.run_in_executor`) or `asyncio.gather`: the caller fans out work and
    collects the results itself.

    The caller runs (and pays) until the slowest item finishes, concurrency is whatever the code
    happens to do, one failure aborts or silently drops the batch, and the whole batch must fit
    in one invocation's 15 minutes.

    Fix: a `Map` state (with `MaxConcurrency`) over the items, or a `Parallel` state for a fixed
    set of different functions.
    """

    id = "UNT005"
    name = "fan-out"
    summary = "Lambda invokes in a loop, a thread pool or asyncio.gather"
    VALID = [
        # one invoke, no loop
        """
import boto3
lam = boto3.client("lambda")
def handler(event, context):
    return lam.invoke(FunctionName="worker", Payload=b"{}")
""",
        # a loop that publishes to SQS: a different, milder smell
        """
import boto3
sqs = boto3.client("sqs")
def handler(event, context):
    for item in event["items"]:
        sqs.send_message(QueueUrl="q", MessageBody=item)
""",
    ]
    INVALID = [
        """
import boto3
lam = boto3.client("lambda")
def handler(event, context):
    for item in event["items"]:
        lam.invoke(FunctionName="process-item", Payload=item)
""",
        """
import boto3
from concurrent.futures import ThreadPoolExecutor
lam = boto3.client("lambda")
def process(item):
    return lam.invoke(FunctionName="process-item", Payload=item)
def handler(event, context):
    with ThreadPoolExecutor(max_workers=100) as pool:
        return list(pool.map(process, event["items"]))
""",
        """
import asyncio
from aiobotocore.session import get_session
async def call(client, name):
    return await client.invoke(FunctionName=name)
async def main():
    async with get_session().create_client("lambda") as client:
        await asyncio.gather(call(client, "a"), call(client, "b"))
def handler(event, context):
    asyncio.run(main())
""",
    ]

    def check(self, program: Program) -> Iterator[RawFinding]:
        loops = retry_loops(program)
        for qualname in sorted(program.invoking):
            function = program.functions[qualname]
            for site in function.calls:
                if not program.call_reaches_invoke(qualname, site):
                    # the cheaper test first: is_pool_call may load a module to learn a name
                    if gathered_invokes(program, site) and is_pool_call(program, site):
                        yield self._finding(qualname, site.span, "gathered concurrently")
                    continue
                data_loops = [lid for lid in site.loops if (qualname, lid) not in loops]
                if data_loops:
                    yield self._finding(qualname, site.span, "made in a loop")
                elif is_pool_call(program, site):
                    yield self._finding(qualname, site.span, "fanned out to a pool")

    def _finding(self, qualname: str, span: Span, how: str) -> RawFinding:
        return RawFinding(
            self.id,
            qualname,
            span,
            f"Lambda invokes {how}: use a Map state (MaxConcurrency) or a Parallel state",
        )
