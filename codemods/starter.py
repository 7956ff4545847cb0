"""Replace an orchestrating handler's body with a thin starter of its state machine.

The handler keeps its name, signature, decorators, comments and docstring, so its event
sources and callers keep working; the chaining it did by hand now happens in the state machine.
What only the removed code used (imports, helpers, Lambda clients) goes with it; nothing else
does. New imports go where isort would put them, and new code fits the line length.

Usable on its own:
    python -m libcst.tool codemod starter.ReplaceHandlerWithStarter app.py \
        --handler lambda_handler --env-var ORDER_STATE_MACHINE_ARN --mode sync --line-length 79

It leaves the file as it was when the module has no single module-level `def` of the handler's
name (`problem` says why, with the line); untangle's migrate refuses the workflow then.
"""

from __future__ import annotations

import argparse
import json
import textwrap
from collections.abc import Sequence
from itertools import dropwhile

import libcst as cst
import libcst.matchers as m
from libcst.codemod import CodemodContext, VisitorBasedCodemodCommand
from libcst.metadata import PositionProvider

from codemods.imports import add_imports, header_end
from codemods.layout import DEFAULT_LINE_LENGTH, comment_text, docstring, double_quoted, fit
from codemods.orphans import Orphans, remove_orphans

STARTER_HELPER = "_untangle_start"
CLIENT = "_untangle_sfn"

# one line per statement: `fit` splits what is longer than the project's line length
_SYNC = """
def {helper}(event):
    {doc}
    response = {client}.start_sync_execution({arguments})
    if response["status"] != "SUCCEEDED":
        raise RuntimeError(f"{{response.get('error')}}: {{response.get('cause')}}")
    return json.loads(response["output"])
"""
_SYNC_DOC = "Run the state machine and answer as the handler did (Express, synchronous)."

_ASYNC = """
def {helper}(event):
    {doc}
    response = {client}.start_execution({arguments})
    return {{"executionArn": response["executionArn"]}}
"""
_ASYNC_DOC = "Start the state machine (Standard: it may wait longer than a Lambda can run)."

# Standard, for a caller that needs the answer or the failure (an API, a queue, a stream): start,
# then wait for the end, as the handler did while it ran the steps itself
_WAIT = """
def {helper}(event):
    {doc}
    execution_arn = {client}.start_execution({arguments})["executionArn"]
    delay = 1
    while True:
        response = {client}.describe_execution(executionArn=execution_arn)
        if response["status"] == "SUCCEEDED":
            return json.loads(response["output"])
        if response["status"] != "RUNNING":
            raise RuntimeError(f"{{response.get('error')}}: {{response.get('cause')}}")
        time.sleep(delay)
        delay = min(delay * 2, 10)
"""
_WAIT_DOC = "Run the state machine to its end and answer as the handler did (Standard, waited for)."

# mode → the starter helper's source and docstring
_STARTERS = {
    "sync": (_SYNC, _SYNC_DOC),
    "async": (_ASYNC, _ASYNC_DOC),
    "wait": (_WAIT, _WAIT_DOC),
}


class HandlerNotFound(Exception):
    """No single module-level function of the handler's name to rewrite (it is missing, only a
    method, nested or conditional one has the name, or two could be the handler)."""

    def __init__(self, message: str, line: int) -> None:
        super().__init__(message)
        self.line = line


class ReplaceHandlerWithStarter(VisitorBasedCodemodCommand):
    DESCRIPTION = "Replace an orchestrating Lambda handler's body with a state machine starter."
    METADATA_DEPENDENCIES = (PositionProvider,)

    def __init__(
        self,
        context: CodemodContext,
        handler: str,
        env_var: str,
        mode: str = "sync",
        workflow: str = "",
        extra_functions: str = "",
        line_length: int = DEFAULT_LINE_LENGTH,
        first_party: Sequence[str] = (),
        keep: Sequence[str] = (),
    ) -> None:
        super().__init__(context)
        self.handler = handler
        self.env_var = env_var
        self.mode = mode
        self.workflow = workflow
        # source of new single-purpose functions to append (extracted computations)
        self.extra_functions = extra_functions
        self.line_length = int(line_length)
        self.first_party = tuple(first_party)
        # module-level names to keep even when the migration orphaned them (other modules
        # import them, a template names them as a handler)
        self.keep = tuple(keep)
        self.problem: HandlerNotFound | None = None
        self.orphans: Orphans | None = None

    @staticmethod
    def add_args(arg_parser: argparse.ArgumentParser) -> None:
        arg_parser.add_argument("--handler", required=True, help="handler function name")
        arg_parser.add_argument("--env-var", required=True, help="env var with the machine ARN")
        arg_parser.add_argument("--mode", choices=tuple(_STARTERS), default="sync")
        arg_parser.add_argument("--workflow", default="", help="state machine name, for docs")
        arg_parser.add_argument(
            "--line-length", type=int, default=DEFAULT_LINE_LENGTH, help="wrap generated code"
        )

    def leave_Module(self, original_node: cst.Module, updated_node: cst.Module) -> cst.Module:
        self.problem = None
        try:
            index = self._handler_index(original_node)
        except HandlerNotFound as problem:
            self.problem = problem
            return updated_node
        if index is None:
            return updated_node  # already a starter: a second run changes nothing
        body: list[cst.BaseStatement] = list(updated_node.body)
        defined = {s.name.value for s in body if isinstance(s, cst.FunctionDef)}
        helper = (
            STARTER_HELPER if STARTER_HELPER not in defined else f"{STARTER_HELPER}_{self.handler}"
        )
        handler = cst.ensure_type(body[index], cst.FunctionDef)
        body[index] = handler.with_changes(body=self._starter_body(handler, helper))
        if not any(m.matches(s, _CLIENT_ASSIGNMENT) for s in body):
            at = header_end(body)
            client = cst.parse_statement(f'{CLIENT} = boto3.client("stepfunctions")\n')
            following = body[at:]
            if following:
                following[0] = _spaced_after(following[0])
            body = [*body[:at], client.with_changes(leading_lines=[cst.EmptyLine()]), *following]
        template, doc = _STARTERS[self.mode]
        code = template.format(
            helper=helper,
            doc=docstring([doc], "    ", self.line_length),
            client=CLIENT,
            arguments=f"stateMachineArn=os.environ[{json.dumps(self.env_var)}], "
            "input=json.dumps(event)",
        )
        body += [_spaced(s) for s in cst.parse_module(fit(code, self.line_length)).body]
        if self.extra_functions:
            extra = fit(double_quoted(self.extra_functions), self.line_length)
            body += [_spaced(s) for s in cst.parse_module(extra).body]
        # what only the old body used goes first, so that the new imports are sorted among
        # the imports that stay
        self.orphans = remove_orphans(original_node.body, body, self.keep)
        needed = ("boto3", "json", "os", *(("time",) if self.mode == "wait" else ()))
        body = add_imports(self.orphans.body, needed, self.first_party)
        return updated_node.with_changes(body=body)

    def _handler_index(self, module: cst.Module) -> int | None:
        """The index of the one module-level `def` of the handler's name in the module body;
        None when it is a starter already."""
        found = [
            (index, statement)
            for index, statement in enumerate(module.body)
            if isinstance(statement, cst.FunctionDef) and statement.name.value == self.handler
        ]
        elsewhere = _defs_elsewhere(module, self.handler)
        name = f"{self.handler}()"
        if not found:
            if elsewhere:
                where = "; ".join(f"line {self._line(node)}: {place}" for node, place in elsewhere)
                line = self._line(elsewhere[0][0])
                raise HandlerNotFound(f"no module-level function {name} to rewrite ({where})", line)
            raise HandlerNotFound(f"no module-level function {name} to rewrite", 1)
        if len(found) > 1:
            lines = " and ".join(str(self._line(node)) for _, node in found)
            raise HandlerNotFound(
                f"{name} is defined at module level more than once (lines {lines}): "
                "untangle does not guess which one the template means",
                self._line(found[-1][1]),
            )
        index, handler = found[0]
        for node, place in elsewhere:
            if place.startswith("under") and self._line(node) > self._line(handler):
                raise HandlerNotFound(
                    f"{name} at line {self._line(handler)} is defined again {place} at line "
                    f"{self._line(node)}: which one runs depends on the condition",
                    self._line(node),
                )
        if m.matches(handler.body, _STARTER_BODY):
            return None
        return index

    def _line(self, node: cst.CSTNode) -> int:
        return int(self.get_metadata(PositionProvider, node).start.line)

    def _starter_body(self, handler: cst.FunctionDef, helper: str) -> cst.IndentedBlock:
        """The handler's own docstring (or one saying what it does now), then the start."""
        params = [p.name.value for p in (*handler.params.posonly_params, *handler.params.params)]
        event = params[0] if params else "event"
        subject = f"the {self.workflow}" if self.workflow else "this"
        note = "The steps this handler ran by hand are its states now (migrated by untangle)."
        start = cst.parse_statement(f"return {helper}({event})\n")
        old = cst.ensure_type(handler.body, cst.IndentedBlock)
        first = old.body[0] if old.body else None
        if first is not None and _is_docstring(first):
            # the user's docstring stays; what changed is said in a comment
            said = f"Starts {subject} state machine. {note}"
            comments = textwrap.wrap(
                comment_text(said),
                width=max(self.line_length - 6, 20),
                break_long_words=False,
                break_on_hyphens=False,
            )
            start = start.with_changes(
                leading_lines=[cst.EmptyLine(comment=cst.Comment(f"# {c}")) for c in comments]
            )
            return old.with_changes(body=[first, start], footer=())
        text = docstring([f"Start {subject} state machine.", note], "    ", self.line_length)
        doc = cst.SimpleStatementLine([cst.Expr(cst.SimpleString(text))])
        return old.with_changes(body=[doc, start], footer=())


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


def _spaced_after(statement: cst.BaseStatement) -> cst.BaseStatement:
    """The statement after the new client: a blank line (two before a definition)."""
    wanted = 2 if isinstance(statement, (cst.FunctionDef, cst.ClassDef)) else 1
    leading = list(getattr(statement, "leading_lines", ()))
    blanks = len(leading) - len(list(dropwhile(lambda line: line.comment is None, leading)))
    if blanks >= wanted:
        return statement
    extra = [cst.EmptyLine() for _ in range(wanted - blanks)]
    return statement.with_changes(leading_lines=[*extra, *leading])


def _is_docstring(statement: cst.BaseStatement) -> bool:
    return (
        isinstance(statement, cst.SimpleStatementLine)
        and isinstance(statement.body[0], cst.Expr)
        and isinstance(statement.body[0].value, (cst.SimpleString, cst.ConcatenatedString))
    )


def _defs_elsewhere(module: cst.Module, name: str) -> list[tuple[cst.FunctionDef, str]]:
    """Functions of that name that are not module-level statements, with where they are."""
    found: list[tuple[cst.FunctionDef, str]] = []

    class Finder(cst.CSTVisitor):
        def __init__(self) -> None:
            self.places: list[str] = []

        def _enter(self, place: str) -> bool:
            self.places.append(place)
            return True

        def visit_ClassDef(self, node: cst.ClassDef) -> bool:
            return self._enter(f"a method of class {node.name.value}")

        def leave_ClassDef(self, original_node: cst.ClassDef) -> None:
            self.places.pop()

        def visit_FunctionDef(self, node: cst.FunctionDef) -> bool:
            if node.name.value == name and self.places:
                found.append((node, self.places[-1]))
            return self._enter(f"nested in {node.name.value}()")

        def leave_FunctionDef(self, original_node: cst.FunctionDef) -> None:
            self.places.pop()

    finder = Finder()
    for statement in module.body:
        if isinstance(statement, (cst.FunctionDef, cst.ClassDef)):
            statement.visit(finder)
            continue
        keyword = _COMPOUND.get(type(statement))
        if keyword is None:
            continue
        finder.places.append(f"under `{keyword}`")
        statement.visit(finder)
        finder.places.pop()
    return found


_COMPOUND: dict[type[cst.CSTNode], str] = {
    cst.If: "if",
    cst.Try: "try",
    cst.TryStar: "try",
    cst.With: "with",
    cst.For: "for",
    cst.While: "while",
    cst.Match: "match",
}
