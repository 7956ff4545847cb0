"""`codemods/starter.py` on its own, before/after in LibCST's `CodemodTest` style: a table of
rewrites, one of near misses that keep something, one of files left as they were; every
rewritten file is rewritten again to show a second run changes nothing. Then two handlers of one
module, the unused-import removal untangle chains after it, and the libcst.tool options."""

from __future__ import annotations

import argparse

import pytest
from libcst.codemod import CodemodContext, CodemodTest
from libcst.testing.utils import data_provider

from codemods.starter import ReplaceHandlerWithStarter
from untangle.migrate import rewrite_handler

ENV = "ORDER_STATE_MACHINE_ARN"


def starter_doc(workflow: str = "") -> str:
    """The docstring the starter gets, indented for a top-level handler."""
    subject = f"the {workflow}" if workflow else "this"
    return (
        f'    """Start {subject} state machine.\n\n'
        "    The steps this handler ran by hand are its states now "
        '(migrated by untangle)."""'
    )


SYNC_HELPER = '''
def _untangle_start(event):
    """Run the state machine and answer as the handler did (Express, synchronous)."""
    response = _untangle_sfn.start_sync_execution(
        stateMachineArn=os.environ["ORDER_STATE_MACHINE_ARN"], input=json.dumps(event)
    )
    if response["status"] != "SUCCEEDED":
        raise RuntimeError(f"{response.get('error')}: {response.get('cause')}")
    return json.loads(response["output"])
'''

ASYNC_HELPER = '''
def _untangle_start(event):
    """Start the state machine (Standard: it may wait longer than a Lambda can run)."""
    response = _untangle_sfn.start_execution(
        stateMachineArn=os.environ["ORDER_STATE_MACHINE_ARN"], input=json.dumps(event)
    )
    return {"executionArn": response["executionArn"]}
'''

ORCHESTRATOR = """
import json

import boto3

lam = boto3.client("lambda")


def handler(event, context):
    response = lam.invoke(FunctionName="charge", Payload=json.dumps(event))
    return json.loads(response["Payload"].read())
"""

STARTER = f"""
import json
import os

import boto3

_untangle_sfn = boto3.client("stepfunctions")


def handler(event, context):
{starter_doc()}
    return _untangle_start(event)

"""

EXTRACTED = '''

def add_tax(event, context):
    """One step of the Orders state machine (extracted by untangle from line 9)."""
    total = event['total']
    return total * 1.2
'''

EXTRACTED_WITH_QUOTES = '''

def label(event, context):
    """One step of the Orders state machine (extracted by untangle from line 9)."""
    names = event['names']
    return {'ok': 'it\\'s', 'label': f'{names["first"]}!'}
'''


def case(
    before: str,
    after: str,
    handler: str = "handler",
    mode: str = "sync",
    workflow: str = "",
    extra_functions: str = "",
) -> dict[str, str]:
    return {
        "before": before,
        "after": after,
        "handler": handler,
        "mode": mode,
        "workflow": workflow,
        "extra_functions": extra_functions,
    }


# the handler becomes a starter; the Lambda clients only it used go
REWRITES = {
    "sync": case(ORCHESTRATOR, STARTER + SYNC_HELPER),
    "async_with_workflow_name": case(
        ORCHESTRATOR,
        STARTER.replace(starter_doc(), starter_doc("Orders")) + ASYNC_HELPER,
        mode="async",
        workflow="Orders",
    ),
    "keeps_decorators_annotations_and_event_name": case(
        '''
"""Orders."""
from __future__ import annotations

import json
from typing import Any

import boto3
from aws_lambda_powertools import Logger

logger = Logger()
lam = boto3.client("lambda")


@logger.inject_lambda_context(log_event=True)
@retry
def lambda_handler(order: dict[str, Any], context: Any) -> dict[str, Any]:
    """Charge, then ship."""
    charged = lam.invoke(FunctionName="charge", Payload=json.dumps(order))
    return json.loads(charged["Payload"].read())
''',
        f'''
"""Orders."""
from __future__ import annotations

import json
import os
from typing import Any

import boto3
from aws_lambda_powertools import Logger

_untangle_sfn = boto3.client("stepfunctions")

logger = Logger()


@logger.inject_lambda_context(log_event=True)
@retry
def lambda_handler(order: dict[str, Any], context: Any) -> dict[str, Any]:
    """Charge, then ship."""
    # Starts the Orders state machine. The steps this handler ran by hand are its states
    # now (migrated by untangle).
    return _untangle_start(order)

{SYNC_HELPER}''',
        handler="lambda_handler",
        workflow="Orders",
    ),
    "positional_only_event_name": case(
        """
import boto3

lam = boto3.client("lambda")


def handler(evt, ctx, /):
    return lam.invoke(FunctionName="charge")
""",
        f"""
import json
import os

import boto3

_untangle_sfn = boto3.client("stepfunctions")


def handler(evt, ctx, /):
{starter_doc()}
    return _untangle_start(evt)

{SYNC_HELPER}""",
    ),
    "no_imports_yet": case(
        """
def handler(event, context):
    return {"ok": True}
""",
        # the imports in their sections, the client after them, two blank lines before the def
        f"""
import json
import os

import boto3

_untangle_sfn = boto3.client("stepfunctions")


def handler(event, context):
{starter_doc()}
    return _untangle_start(event)

{SYNC_HELPER}""",
    ),
    "session_and_configured_clients_removed": case(
        """
from boto3 import client
from boto3.session import Session
from botocore.config import Config

lam = client("lambda", config=Config(retries={"max_attempts": 2}))
regional = Session(region_name="eu-west-1").client("lambda")


def handler(event, context):
    lam.invoke(FunctionName="a")
    return regional.invoke(FunctionName="b")
""",
        # the imports only the clients used go with them
        STARTER + SYNC_HELPER,
    ),
    # `ast.unparse` prints '…': the new code is written in double quotes, as Black writes it
    "extra_functions_appended": case(
        ORCHESTRATOR,
        STARTER + SYNC_HELPER + EXTRACTED.replace("event['total']", 'event["total"]'),
        extra_functions=EXTRACTED,
    ),
    # near misses: a literal holding a quote, and an f-string holding a string, stay as printed
    "extra_functions_quotes_that_stay": case(
        ORCHESTRATOR,
        STARTER
        + SYNC_HELPER
        + EXTRACTED_WITH_QUOTES.replace("['names']", '["names"]')
        .replace("{'ok'", '{"ok"')
        .replace("'label'", '"label"'),
        extra_functions=EXTRACTED_WITH_QUOTES,
    ),
}

# near misses: the handler is replaced, something next to it is not
KEEPS = {
    "lambda_client_another_function_uses": case(
        ORCHESTRATOR
        + """

def warm(event, context):
    lam.invoke(FunctionName="charge", InvocationType="Event")
""",
        f"""
import json
import os

import boto3

_untangle_sfn = boto3.client("stepfunctions")

lam = boto3.client("lambda")


def handler(event, context):
{starter_doc()}
    return _untangle_start(event)


def warm(event, context):
    lam.invoke(FunctionName="charge", InvocationType="Event")

{SYNC_HELPER}""",
    ),
    "client_of_another_service": case(
        ORCHESTRATOR.replace(
            'lam = boto3.client("lambda")\n',
            'lam = boto3.client("lambda")\ns3 = boto3.client("s3")\n',
        ),
        f"""
import json
import os

import boto3

_untangle_sfn = boto3.client("stepfunctions")

s3 = boto3.client("s3")


def handler(event, context):
{starter_doc()}
    return _untangle_start(event)

{SYNC_HELPER}""",
    ),
    "aliased_boto3_import": case(
        ORCHESTRATOR.replace("import boto3", "import boto3 as b3").replace(
            "boto3.client", "b3.client"
        ),
        # `import boto3 as b3` binds no `boto3`; only the removed client used it
        f"""
import json
import os

import boto3

_untangle_sfn = boto3.client("stepfunctions")


def handler(event, context):
{starter_doc()}
    return _untangle_start(event)

{SYNC_HELPER}""",
    ),
    "method_with_the_handlers_name": case(
        """
class Orders:
    def handler(self, event):
        return event


def handler(event, context):
    return Orders().handler(event)


def other(event, context):
    return Orders().handler(event)
""",
        f"""
import json
import os

import boto3

_untangle_sfn = boto3.client("stepfunctions")


class Orders:
    def handler(self, event):
        return event


def handler(event, context):
{starter_doc()}
    return _untangle_start(event)


def other(event, context):
    return Orders().handler(event)

{SYNC_HELPER}""",
    ),
}

REPLACED = {**REWRITES, **KEEPS}

# near misses: no top-level function of that name, so the file is left exactly as it was
UNCHANGED = {
    "another_name": (ORCHESTRATOR.replace("def handler", "def lambda_handler"), "handler"),
    "only_a_method_with_the_name": (
        """
import boto3

lam = boto3.client("lambda")


class Orders:
    def handler(self, event):
        return lam.invoke(FunctionName="charge")
""",
        "handler",
    ),
    "only_a_nested_function_with_the_name": (
        """
import boto3

lam = boto3.client("lambda")


def main(event, context):
    def handler(item):
        return lam.invoke(FunctionName="charge")

    return [handler(item) for item in event]
""",
        "handler",
    ),
    "no_functions": ('import boto3\n\nlam = boto3.client("lambda")\n', "handler"),
}


class ReplaceHandlerWithStarterTest(CodemodTest):
    TRANSFORM = ReplaceHandlerWithStarter
    maxDiff = None

    @data_provider(REPLACED)
    def test_rewrite(
        self,
        before: str,
        after: str,
        handler: str,
        mode: str,
        workflow: str,
        extra_functions: str,
    ) -> None:
        self.assertCodemod(
            before,
            after,
            handler=handler,
            env_var=ENV,
            mode=mode,
            workflow=workflow,
            extra_functions=extra_functions,
        )

    @data_provider(REPLACED)
    def test_second_run_changes_nothing(
        self,
        before: str,
        after: str,
        handler: str,
        mode: str,
        workflow: str,
        extra_functions: str,
    ) -> None:
        self.assertCodemod(
            after,
            after,
            handler=handler,
            env_var=ENV,
            mode=mode,
            workflow=workflow,
            extra_functions=extra_functions,
        )

    @data_provider(UNCHANGED)
    def test_unchanged(self, before: str, handler: str) -> None:
        # a success that changes nothing, not a skip (assertCodemod fails on a SkipFile)
        self.assertCodemod(before, before, handler=handler, env_var=ENV, mode="sync")

    def test_two_handlers_of_one_module_start_their_own_machines(self) -> None:
        before = """
import json

import boto3

lam = boto3.client("lambda")


def first(event, context):
    return lam.invoke(FunctionName="a", Payload=json.dumps(event))


def second(event, context):
    return lam.invoke(FunctionName="b", Payload=json.dumps(event))
"""
        first_helper = SYNC_HELPER.replace(ENV, "FIRST_ARN")
        second_helper = SYNC_HELPER.replace(ENV, "SECOND_ARN").replace(
            "def _untangle_start(", "def _untangle_start_second("
        )
        after_first = f"""
import json
import os

import boto3

_untangle_sfn = boto3.client("stepfunctions")

lam = boto3.client("lambda")


def first(event, context):
{starter_doc()}
    return _untangle_start(event)


def second(event, context):
    return lam.invoke(FunctionName="b", Payload=json.dumps(event))

{first_helper}"""
        after_both = f"""
import json
import os

import boto3

_untangle_sfn = boto3.client("stepfunctions")


def first(event, context):
{starter_doc()}
    return _untangle_start(event)


def second(event, context):
{starter_doc()}
    return _untangle_start_second(event)

{first_helper}
{second_helper}"""
        self.assertCodemod(before, after_first, handler="first", env_var="FIRST_ARN")
        self.assertCodemod(after_first, after_both, handler="second", env_var="SECOND_ARN")
        self.assertCodemod(after_both, after_both, handler="first", env_var="FIRST_ARN")

    def test_rewrite_handler_is_the_codemod_in_the_files_line_ending(self) -> None:
        """untangle's rewrite_handler runs the same codemod, keeping CRLF."""
        before = REWRITES["session_and_configured_clients_removed"]["before"]
        code = rewrite_handler(
            self.make_fixture_data(before).replace("\n", "\r\n"), "handler", ENV, "sync", "", ""
        )
        self.assertEqual(code, self.make_fixture_data(STARTER + SYNC_HELPER).replace("\n", "\r\n"))


# `python -m libcst.tool codemod starter.ReplaceHandlerWithStarter PATH …` parses these options
# with `add_args` and passes them to the constructor by name (test_migrate runs the tool itself)
CLI = {
    "every_option": (
        "--handler lambda_handler --env-var ORDER_STATE_MACHINE_ARN --mode async --workflow Orders"
        " --line-length 79",
        {
            "handler": "lambda_handler",
            "env_var": ENV,
            "mode": "async",
            "workflow": "Orders",
            "line_length": 79,
        },
    ),
    "defaults": (
        "--handler handler --env-var ORDER_STATE_MACHINE_ARN",
        {"handler": "handler", "env_var": ENV, "mode": "sync", "workflow": "", "line_length": 88},
    ),
}
CLI_ERRORS = {
    "no_handler": "--env-var ORDER_STATE_MACHINE_ARN",
    "no_env_var": "--handler handler",
    "unknown_mode": "--handler handler --env-var ORDER_STATE_MACHINE_ARN --mode later",
}


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser()
    ReplaceHandlerWithStarter.add_args(parser)
    return parser


@pytest.mark.parametrize(("argv", "kwargs"), CLI.values(), ids=CLI.keys())
def test_cli_options_are_the_constructor_arguments(argv: str, kwargs: dict[str, str]) -> None:
    parsed = vars(_parser().parse_args(argv.split()))
    assert parsed == kwargs
    command = ReplaceHandlerWithStarter(CodemodContext(), **parsed)
    assert {name: getattr(command, name) for name in kwargs} == kwargs


@pytest.mark.parametrize("argv", CLI_ERRORS.values(), ids=CLI_ERRORS.keys())
def test_cli_rejects(argv: str, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_:
        _parser().parse_args(argv.split())
    assert exit_.value.code == 2 and "error:" in capsys.readouterr().err
