from __future__ import annotations

from collections.abc import Iterator

from untangle.analysis.patterns import invocation, outside_lambda_code
from untangle.analysis.program import Program
from untangle.rules.base import RawFinding, Rule, describe_target, target_of


class InvokeOutsideHandler(Rule):
    """
    A Lambda invoke in a test or a script, which no handler of the scanned tree reaches.

    Code that runs on a laptop or in CI (test harnesses, `if __name__ == "__main__":` scripts,
    files under `tests/`, `scripts/` or `bin/`) pays nothing while a function runs, so it is not
    Lambda chaining; it is reported under its own id so that a team can keep it (it shows who
    calls which function) or drop it with one line: `ignore = ["UNT007"]`. Every other rule is
    silent on such code.

    Fix: nothing to migrate. If this code is in fact deployed as a Lambda function, make sure a
    template names its handler (or add it to `handler-patterns`).
    """

    id = "UNT007"
    name = "invoke-outside-handler"
    summary = "a Lambda invoke in a test or script: not Lambda chaining, reported apart"
    VALID = [
        # Lambda code: UNT001
        """
import boto3
lam = boto3.client("lambda")
def handler(event, context):
    return lam.invoke(FunctionName="worker")
""",
        # a helper no handler reaches, in Lambda-looking code (a layer): still UNT001
        """
import boto3
lam = boto3.client("lambda")
def call(name):
    return lam.invoke(FunctionName=name)
""",
        # a main guard that does not invoke in a module whose handler does
        """
import boto3
lam = boto3.client("lambda")
def handler(event, context):
    return lam.invoke(FunctionName="worker")
if __name__ == "__main__":
    print(handler({}, None))
""",
    ]
    INVALID = [
        """
import boto3
lam = boto3.client("lambda")
def smoke(name):
    return lam.invoke(FunctionName=name, Payload=b"{}")
if __name__ == "__main__":
    smoke("worker")
""",
        """
import boto3
if "__main__" == __name__:
    boto3.client("lambda").invoke(FunctionName="worker", InvocationType="Event")
""",
    ]

    def check(self, program: Program) -> Iterator[RawFinding]:
        for site in program.invokes:
            where = outside_lambda_code(program, site.function)
            if where is None:
                continue
            kind = {"sync": "synchronous", "async": "asynchronous"}.get(invocation(site).kind)
            yield RawFinding(
                self.id,
                site.function,
                site.site.span,
                f"{kind or 'dry-run'} invoke of {describe_target(site)} in {where}, "
                "outside Lambda code: "
                "nobody is billed for waiting here; not part of a workflow",
                target_of(site),
                site,
            )
