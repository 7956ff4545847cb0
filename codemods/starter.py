"""Replace an orchestrating handler's body with a thin starter of its state machine.

The handler keeps its name, signature, decorators and docstring position, so its event sources
and callers keep working; the chaining it did by hand now happens in the state machine. Module
clients for Lambda that nothing uses any more are removed (then unused imports, by libcst's
`RemoveUnusedImportsCommand`, chained by untangle).

Usable on its own:
    python -m libcst.tool codemod starter.ReplaceHandlerWithStarter app.py \
        --handler lambda_handler --env-var ORDER_STATE_MACHINE_ARN --mode sync
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Sequence

import libcst as cst
import libcst.matchers as m
from libcst.codemod import CodemodContext, VisitorBasedCodemodCommand
from libcst.codemod.visitors import AddImportsVisitor
from libcst.metadata import GlobalScope, QualifiedNameProvider, ScopeProvider

STARTER_HELPER = "_untangle_start"
CLIENT = "_untangle_sfn"

_SYNC = '''
def {helper}(event):
    """Run the state machine and answer as the handler did (Express, synchronous)."""
    response = {client}.start_sync_execution(
        stateMachineArn=os.environ[{env}], input=json.dumps(event)
    )
    if response["status"] != "SUCCEEDED":
        raise RuntimeError(f"{{response.get('error')}}: {{response.get('cause')}}")
    return json.loads(response["output"])
'''

_ASYNC = '''
def {helper}(event):
    """Start the state machine (Standard: it may wait longer than a Lambda can run)."""
    response = {client}.start_execution(
        stateMachineArn=os.environ[{env}], input=json.dumps(event)
    )
    return {{"executionArn": response["executionArn"]}}
'''

# Standard, for a caller that needs the answer or the failure (an API, a queue, a stream): start,
# then wait for the end, as the handler did while it ran the steps itself
_WAIT = '''
def {helper}(event):
    """Run the state machine to its end and answer as the handler did (Standard, waited for)."""
    execution_arn = {client}.start_execution(
        stateMachineArn=os.environ[{env}], input=json.dumps(event)
    )["executionArn"]
    delay = 1
    while True:
        response = {client}.describe_execution(executionArn=execution_arn)
        if response["status"] == "SUCCEEDED":
            return json.loads(response["output"])
        if response["status"] != "RUNNING":
            raise RuntimeError(f"{{response.get('error')}}: {{response.get('cause')}}")
        time.sleep(delay)
        delay = min(delay * 2, 10)
'''


def _starter_template(mode: str) -> str:
    """The starter helper's source for `mode` (sync, async or wait)."""
    return {"sync": _SYNC, "async": _ASYNC, "wait": _WAIT}[mode]


class ReplaceHandlerWithStarter(VisitorBasedCodemodCommand):
    DESCRIPTION = "Replace an orchestrating Lambda handler's body with a state machine starter."
    METADATA_DEPENDENCIES = (ScopeProvider, QualifiedNameProvider)

    def __init__(
        self,
        context: CodemodContext,
        handler: str,
        env_var: str,
        mode: str = "sync",
        workflow: str = "",
        extra_functions: str = "",
    ) -> None:
        super().__init__(context)
        self.handler = handler
        self.env_var = env_var
        self.mode = mode
        self.workflow = workflow
        # source of new single-purpose functions to append (extracted computations)
        self.extra_functions = extra_functions
        self.replaced = False
        self.helper = STARTER_HELPER
        self.has_client = False

    @staticmethod
    def add_args(arg_parser: argparse.ArgumentParser) -> None:
        arg_parser.add_argument("--handler", required=True, help="handler function name")
        arg_parser.add_argument("--env-var", required=True, help="env var with the machine ARN")
        arg_parser.add_argument("--mode", choices=("sync", "async", "wait"), default="sync")
        arg_parser.add_argument("--workflow", default="", help="state machine name, for docs")

    def visit_Module(self, node: cst.Module) -> bool:
        # a module another handler was migrated in already has the client and a helper, which
        # starts that handler's machine: this handler gets its own helper
        self.replaced = False
        defined = {s.name.value for s in node.body if isinstance(s, cst.FunctionDef)}
        self.helper = (
            STARTER_HELPER if STARTER_HELPER not in defined else f"{STARTER_HELPER}_{self.handler}"
        )
        self.has_client = any(m.matches(s, _CLIENT_ASSIGNMENT) for s in node.body)
        return True

    def leave_FunctionDef(
        self, original_node: cst.FunctionDef, updated_node: cst.FunctionDef
    ) -> cst.FunctionDef:
        if (
            original_node.name.value != self.handler
            or self.replaced
            # a method or a nested function of that name is not the handler
            or not isinstance(self.get_metadata(ScopeProvider, original_node), GlobalScope)
            # already a starter: a second run changes nothing
            or m.matches(original_node.body, _STARTER_BODY)
        ):
            return updated_node
        params = [
            p.name.value
            for p in (*original_node.params.posonly_params, *original_node.params.params)
        ]
        event = params[0] if params else "event"
        subject = f"the {self.workflow}" if self.workflow else "this"
        docstring = cst.SimpleStatementLine(
            [
                cst.Expr(
                    cst.SimpleString(
                        f'"""Start {subject} state machine.\n\n'
                        "    The steps this handler ran by hand are its states now "
                        '(migrated by untangle)."""'
                    )
                )
            ]
        )
        body = cst.parse_statement(f"return {self.helper}({event})\n")
        self.replaced = True
        AddImportsVisitor.add_needed_import(self.context, "json")
        AddImportsVisitor.add_needed_import(self.context, "os")
        AddImportsVisitor.add_needed_import(self.context, "boto3")
        if self.mode == "wait":
            AddImportsVisitor.add_needed_import(self.context, "time")
        return updated_node.with_changes(body=cst.IndentedBlock([docstring, body]))

    def leave_Module(self, original_node: cst.Module, updated_node: cst.Module) -> cst.Module:
        if not self.replaced:
            return updated_node
        template = _starter_template(self.mode)
        helper = [
            _spaced(statement)
            for statement in cst.parse_module(
                template.format(helper=self.helper, client=CLIENT, env=json.dumps(self.env_var))
            ).body
        ]
        client = (
            []
            if self.has_client
            else [cst.parse_statement(f'{CLIENT} = boto3.client("stepfunctions")\n')]
        )
        body = list(updated_node.body)
        insert_at = _after_imports(body)
        extra = (
            [_spaced(s) for s in cst.parse_module(self.extra_functions).body]
            if self.extra_functions
            else []
        )
        new_body = [*body[:insert_at], *client, *body[insert_at:], *helper, *extra]
        return updated_node.with_changes(body=_without_unused_lambda_clients(new_body))


_CLIENT_ASSIGNMENT = m.SimpleStatementLine([m.Assign([m.AssignTarget(m.Name(CLIENT))])])
# what leave_FunctionDef writes: a docstring, then `return _untangle_start…(event)`
_STARTER_BODY = m.IndentedBlock(
    [
        m.ZeroOrOne(m.SimpleStatementLine([m.Expr(m.SimpleString())])),
        m.SimpleStatementLine(
            [m.Return(m.Call(m.Name(m.MatchIfTrue(lambda n: n.startswith(STARTER_HELPER)))))]
        ),
    ]
)


def _spaced(statement: cst.BaseStatement) -> cst.BaseStatement:
    """Two blank lines before a top-level definition, as PEP 8 has it."""
    if isinstance(statement, (cst.FunctionDef, cst.ClassDef)):
        return statement.with_changes(leading_lines=[cst.EmptyLine(), cst.EmptyLine()])
    return statement


def _after_imports(body: Sequence[cst.BaseStatement]) -> int:
    index = 0
    for position, statement in enumerate(body):
        if isinstance(statement, cst.SimpleStatementLine) and any(
            isinstance(s, (cst.Import, cst.ImportFrom)) for s in statement.body
        ):
            index = position + 1
        elif (
            position == 0
            and isinstance(statement, cst.SimpleStatementLine)
            and isinstance(statement.body[0], cst.Expr)
            and isinstance(statement.body[0].value, cst.SimpleString)
        ):
            index = 1
    return index


def _without_unused_lambda_clients(
    body: Sequence[cst.BaseStatement],
) -> list[cst.BaseStatement]:
    """Drop `x = boto3.client("lambda")` (and Session().client) at module level when no other
    statement mentions `x`."""
    result: list[cst.BaseStatement] = []
    for statement in body:
        name = _lambda_client_target(statement)
        if name is not None:
            others = [s for s in body if s is not statement]
            used = any(
                isinstance(n, cst.Name) and n.value == name for s in others for n in _walk(s)
            )
            if not used:
                continue
        result.append(statement)
    return result


def _lambda_client_target(statement: cst.BaseStatement) -> str | None:
    if not isinstance(statement, cst.SimpleStatementLine) or len(statement.body) != 1:
        return None
    assign = statement.body[0]
    if not isinstance(assign, cst.Assign) or len(assign.targets) != 1:
        return None
    target = assign.targets[0].target
    if not isinstance(target, cst.Name) or not isinstance(assign.value, cst.Call):
        return None
    call = assign.value
    func = call.func
    if not (isinstance(func, cst.Attribute) and func.attr.value == "client") and not (
        isinstance(func, cst.Name) and func.value == "client"
    ):
        return None
    if (
        call.args
        and isinstance(call.args[0].value, cst.SimpleString)
        and call.args[0].value.evaluated_value == "lambda"
    ):
        return target.value
    return None


def _walk(node: cst.CSTNode) -> list[cst.CSTNode]:
    found: list[cst.CSTNode] = []

    class Collector(cst.CSTVisitor):
        def on_visit(self, node: cst.CSTNode) -> bool:
            found.append(node)
            return True

    node.visit(Collector())
    return found
