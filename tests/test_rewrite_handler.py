"""The rewritten handler module as a reviewer reads it: new imports where isort puts them, only
what the migration orphaned removed, the handler's docstring and comments kept, lines within the
project's line length, the module-level handler and no other, the file's line ending, and names
pasted into generated text that stay text."""

from __future__ import annotations

import ast
import textwrap
from typing import Any

import pytest

from codemods.layout import docstring, escaped, fit
from untangle.migrate import MigrationError, _extracted_source, rewrite
from untangle.style import CodeStyle
from untangle.workflow.ir import Extraction, Workflow

ENV = "ORDERS_STATE_MACHINE_ARN"
INVOKE = '    return lam.invoke(FunctionName="charge", Payload=json.dumps(event))\n'


def migrated(source: str, **options: object) -> str:
    return rewrite(
        textwrap.dedent(source).lstrip("\n"), "handler", ENV, "sync", "Orders", "", **options
    ).code  # type: ignore[arg-type]


def header(code: str) -> str:
    """The lines before the first blank line after the imports: the import block."""
    return code.split("\n_untangle_sfn")[0]


# --- 1. imports: in their section, in order, after the docstring and __future__ -------------

IMPORTS = [
    pytest.param(
        """
        import logging
        import sys

        import boto3

        lam = boto3.client("lambda")
        logging.info(sys.argv)


        def handler(event, context):
        """
        + INVOKE.replace("json.dumps(event)", "str(event)"),
        "import json\nimport logging\nimport os\nimport sys\n\nimport boto3\n",
        id="stdlib-group-sorted",
    ),
    pytest.param(
        """
        from typing import Any

        import boto3

        lam = boto3.client("lambda")
        X: Any = 1


        def handler(event, context):
        """
        + INVOKE.replace("json.dumps(event)", "str(event)"),
        "import json\nimport os\nfrom typing import Any\n\nimport boto3\n",
        id="straight-imports-before-from-imports",
    ),
    pytest.param(
        '''
        """Orders."""

        from __future__ import annotations

        import requests

        requests.get


        def handler(event, context):
            return event
        ''',
        '"""Orders."""\n\nfrom __future__ import annotations\n\nimport json\nimport os\n\n'
        "import boto3\nimport requests\n",
        id="after-docstring-and-future-new-stdlib-group",
    ),
    pytest.param(
        """
        # Copyright the authors
        from shared import helpers

        helpers.ok()


        def handler(event, context):
            return event
        """,
        "# Copyright the authors\nimport json\nimport os\n\nimport boto3\n\nfrom shared import "
        "helpers\n",
        id="before-the-first-party-group",
    ),
    pytest.param(
        """
        import json
        import os
        from shared import helpers

        helpers.ok(os.sep, json)


        def handler(event, context):
            return event
        """,
        "import json\nimport os\n\nimport boto3\n\nfrom shared import helpers\n",
        id="between-stdlib-and-first-party-with-no-blank-line",
    ),
    pytest.param(
        """
        import json
        import os

        # our helpers
        from shared import helpers

        helpers.ok(os.sep, json)


        def handler(event, context):
            return event
        """,
        "import json\nimport os\n\nimport boto3\n\n# our helpers\nfrom shared import helpers\n",
        id="near-miss-the-first-party-comment-stays-with-its-group",
    ),
    pytest.param(
        """
        import os

        X = os.sep


        def handler(event, context):
            return event
        """,
        "import json\nimport os\n\nimport boto3\n",
        id="near-miss-os-already-imported-once",
    ),
    pytest.param(
        """
        try:
            import ujson as json
        except ImportError:
            import json

        import boto3

        lam = boto3.client("lambda")


        def handler(event, context):
        """
        + INVOKE,
        "try:\n    import ujson as json\nexcept ImportError:\n    import json\n\nimport os\n\n"
        "import boto3\n",
        id="near-miss-json-bound-in-a-try-block",
    ),
    pytest.param(
        """
        import json

        X = 1

        import late  # noqa: E402


        def handler(event, context):
            return late.run(json.dumps(event))
        """,
        "import json\nimport os\n\nimport boto3\n",
        id="near-miss-not-after-a-late-import",
    ),
]


@pytest.mark.parametrize(("source", "imports"), IMPORTS)
def test_new_imports_go_into_their_section(source: str, imports: str) -> None:
    code = migrated(source, style=CodeStyle(first_party=("shared",)))
    assert header(code) == imports
    ast.parse(code)


# --- 4. only what the migration orphaned goes -------------------------------------------------

ORPHANS = [
    pytest.param(
        """
        import json
        import logging

        import boto3

        lam = boto3.client("lambda")


        def handler(event, context):
        """
        + INVOKE,
        {"lam"},
        {"logging"},
        id="unrelated-unused-import-stays",
    ),
    pytest.param(
        """
        from shared.lambdas import invoke_lambda, warm


        def handler(event, context):
            warm()
            return invoke_lambda("charge", event)


        def keep_warm(event, context):
            return warm()
        """,
        {"invoke_lambda"},
        {"warm", "keep_warm"},
        id="one-alias-of-a-from-import",
    ),
    pytest.param(
        """
        import boto3

        lam = boto3.client("lambda")


        class PaymentError(Exception):
            pass


        def _payload(event):
            return _encode(event)


        def _encode(event):
            return str(event)


        def handler(event, context):
            result = lam.invoke(FunctionName="charge", Payload=_payload(event))
            if not result:
                raise PaymentError()
        """,
        {"lam", "PaymentError", "_payload", "_encode"},
        {"boto3"},
        id="dead-helpers-classes-and-clients-chain",
    ),
    pytest.param(
        """
        import boto3

        __all__ = ["shared_helper"]
        lam = boto3.client("lambda")


        def shared_helper(event):
            return event


        @register
        def decorated(event):
            return event


        def handler(event, context):
            return lam.invoke(FunctionName="a", Payload=shared_helper(decorated(event)))
        """,
        {"lam"},
        {"shared_helper", "decorated"},
        id="near-miss-exported-and-decorated-stay",
    ),
    pytest.param(
        """
        import boto3

        lam = boto3.client("lambda")


        def refund(event, context):
            return lam.invoke(FunctionName="refund", Payload=event)


        def handler(event, context):
            return refund(event, context)
        """,
        set(),
        {"refund", "lam", "boto3"},
        id="near-miss-another-entry-point-it-called",
    ),
    pytest.param(
        """
        import boto3

        lam = boto3.client("lambda")


        def used_elsewhere(event):
            return event


        def handler(event, context):
            return lam.invoke(FunctionName="a", Payload=used_elsewhere(event))
        """,
        {"lam"},
        {"used_elsewhere"},
        id="near-miss-imported-by-another-module",
    ),
]


@pytest.mark.parametrize(("source", "removed", "stays"), ORPHANS)
def test_only_what_the_migration_orphaned_is_removed(
    source: str, removed: set[str], stays: set[str]
) -> None:
    result = rewrite(
        textwrap.dedent(source).lstrip("\n"),
        "handler",
        ENV,
        "sync",
        "Orders",
        "",
        keep=("used_elsewhere", "keep_warm"),
    )
    defined = _module_names(result.code)
    assert removed.isdisjoint(defined), removed & defined
    assert stays <= defined, stays - defined
    assert set(result.removed) == removed


def test_a_value_that_may_do_something_is_kept_and_named() -> None:
    result = rewrite(
        "import boto3\n\nlam = boto3.client('lambda')\nsettings = load_settings()\n\n\n"
        "def handler(event, context):\n    return lam.invoke(FunctionName=settings)\n",
        "handler",
        ENV,
        "sync",
        "Orders",
        "",
    )
    assert "settings = load_settings()" in result.code
    assert result.kept == ("settings",) and result.removed == ("lam",)


def _module_names(code: str) -> set[str]:
    names: set[str] = set()
    for node in ast.parse(code).body:
        if isinstance(node, (ast.FunctionDef, ast.ClassDef)):
            names.add(node.name)
        elif isinstance(node, (ast.Import, ast.ImportFrom)):
            names |= {(a.asname or a.name).split(".")[0] for a in node.names}
        elif isinstance(node, ast.Assign):
            names |= {t.id for t in node.targets if isinstance(t, ast.Name)}
    return names


# --- 3. the handler's docstring and comments stay -------------------------------------------

COMMENTS = [
    pytest.param('    """Charge, then ship."""\n', ['"""Charge, then ship."""'], id="docstring"),
    pytest.param("", ['"""Start the Orders state machine.'], id="near-miss-no-docstring"),
]


@pytest.mark.parametrize(("docstring_line", "expected"), COMMENTS)
def test_the_handlers_docstring_and_comments_stay(docstring_line: str, expected: list[str]) -> None:
    source = (
        "import json\nimport boto3\n\nlam = boto3.client('lambda')\n\n\n"
        "# The public entry point.\n"
        "@tracer  # traced\n"
        "def handler(event, context):  # noqa: ARG001\n" + docstring_line + INVOKE + "\n\n"
        "# helpers below\n"
        "def other():\n    return 1\n"
    )
    code = rewrite(source, "handler", ENV, "sync", "Orders", "").code
    for kept in (
        "# The public entry point.\n",
        "@tracer  # traced\n",
        "def handler(event, context):  # noqa: ARG001\n",
        "# helpers below\n",
        *expected,
    ):
        assert kept in code
    assert code.count('"""') == 4  # the handler's (or the starter's) and the helper's


# --- 2. the project's line length ------------------------------------------------------------

LONG_WORKFLOW = "OrderProcessorWithManyStepsAndAVeryLongNameWorkflow"


@pytest.mark.parametrize(
    "width",
    [pytest.param(79, id="79"), pytest.param(88, id="88"), pytest.param(120, id="120")],
)
def test_generated_lines_fit_the_line_length(width: int) -> None:
    extracted = Extraction(
        function="compute_order_total_with_taxes_and_discounts",
        params=("order_lines", "discount_percentage", "regional_tax_rate"),
        expression="round(apply_regional_taxes(order_lines, discount_percentage, "
        "regional_tax_rate), 2)",
        path="app.py",
        line=3,
        target="total",
    )
    workflow = Workflow(
        LONG_WORKFLOW, "app.handler", "app.py", None, "converted", extracted=(extracted,)
    )
    code = rewrite(
        "import json\n\n\ndef handler(event, context):\n    return json.dumps(event)\n",
        "handler",
        "ORDER_PROCESSOR_WITH_MANY_STEPS_WORKFLOW_STATE_MACHINE_ARN",
        "sync",
        LONG_WORKFLOW,
        _extracted_source(workflow, width),
        CodeStyle(line_length=width),
    ).code
    ast.parse(code)
    too_long = [line for line in code.splitlines() if len(line) > width]
    assert too_long == []
    # near miss: a line that fits is not split
    one_line = (
        "    return round(apply_regional_taxes(order_lines, discount_percentage, "
        "regional_tax_rate), 2)\n"
    )
    assert (one_line in code) == (len(one_line) - 1 <= width)


FIT = [
    pytest.param("x = f(a, b)", 80, ["x = f(a, b)"], id="fits"),
    pytest.param(
        "response = client.start(name=os.environ['A_LONG_NAME'], input=json.dumps(event))",
        60,
        [
            "response = client.start(",
            "    name=os.environ['A_LONG_NAME'], input=json.dumps(event)",
            ")",
        ],
        id="body-on-one-line",
    ),
    pytest.param(
        "response = client.start(name=os.environ['A_LONG_NAME'], input=json.dumps(event))",
        40,
        [
            "response = client.start(",
            "    name=os.environ['A_LONG_NAME'],",
            "    input=json.dumps(event),",
            ")",
        ],
        id="one-per-line",
    ),
    pytest.param(
        "response = client.start(name=os.environ['A_LONG_NAME'], input=json.dumps(event))",
        30,
        [
            "response = client.start(",
            "    name=os.environ[",
            "        'A_LONG_NAME'",
            "    ],",
            "    input=json.dumps(event),",
            ")",
        ],
        id="one-per-line-recursively",
    ),
    pytest.param(
        "    return sum(x['amount'] for x in lines) * (1 - discount) * (1 + tax_rate)",
        50,
        [
            "    return (",
            "        sum(x['amount'] for x in lines)",
            "        * (1 - discount)",
            "        * (1 + tax_rate)",
            "    )",
        ],
        id="value-in-parentheses-split-before-operators",
    ),
    pytest.param(
        "    ok = is_valid(order) and is_paid(order) or is_override(order)",
        40,
        [
            "    ok = (",
            "        is_valid(order)",
            "        and is_paid(order)",
            "        or is_override(order)",
            "    )",
        ],
        id="lowest-priority-operator-first",
    ),
    pytest.param(
        "    x = -a_very_long_name_number_one - another_long_name_number_two",
        40,
        [
            "    x = (",
            "        -a_very_long_name_number_one",
            "        - another_long_name_number_two",
            "    )",
        ],
        id="unary-minus-is-no-split-point",
    ),
    pytest.param(
        "    return a if condition_that_is_long else b_with_a_long_name_that_goes_on",
        40,
        [
            "    return (",
            "        a if condition_that_is_long else b_with_a_long_name_that_goes_on",
            "    )",
        ],
        id="near-miss-conditional-expression-not-split-inside",
    ),
    pytest.param(
        "value = x[aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa]", 20, None, id="subscript-no-comma"
    ),
    pytest.param("total = sum(x for x in items_of_the_order)", 20, None, id="generator-argument"),
    pytest.param("s = 'a very long string without brackets at all'", 20, None, id="no-bracket"),
]


@pytest.mark.parametrize(("line", "width", "expected"), FIT)
def test_fit_splits_at_brackets_like_a_formatter(
    line: str, width: int, expected: list[str] | None
) -> None:
    result = fit(line + "\n", width)
    dedent = textwrap.dedent
    assert ast.dump(ast.parse(dedent(result))) == ast.dump(ast.parse(dedent(line)))
    if expected is not None:
        assert result == "\n".join(expected) + "\n"
    assert "x[aaaa" not in result or ",\n" not in result  # never a tuple index


# --- 5. the module-level handler, and no other -------------------------------------------------

SELECTION = [
    pytest.param(
        "if DEBUG:\n    def handler(event, context):\n        return event\n\n\n"
        "def handler(event, context):\n" + INVOKE,
        None,
        id="conditional-def-before-the-module-level-one",
    ),
    pytest.param(
        "class Orders:\n    def handler(self, event):\n        return event\n\n\n"
        "def handler(event, context):\n" + INVOKE,
        None,
        id="method-of-that-name",
    ),
    pytest.param(
        "def main(event, context):\n    def handler(item):\n        return item\n"
        "    return handler(event)\n\n\ndef handler(event, context):\n" + INVOKE,
        None,
        id="nested-def-of-that-name",
    ),
    pytest.param(
        "def handler(event, context):\n" + INVOKE + "\n\nif DEBUG:\n"
        "    def handler(event, context):\n        return event\n",
        "app.py:9: handler() at line 4 is defined again under `if` at line 9",
        id="refused-conditional-def-after-it",
    ),
    pytest.param(
        "def handler(event, context):\n" + INVOKE + "\n\ndef handler(event, context):\n"
        "    return event\n",
        "app.py:8: handler() is defined at module level more than once (lines 4 and 8)",
        id="refused-two-module-level-defs",
    ),
    pytest.param(
        "class Orders:\n    def handler(self, event, context):\n" + "    " + INVOKE,
        "app.py:5: no module-level function handler() to rewrite (line 5: a method of class "
        "Orders)",
        id="refused-only-a-method",
    ),
    pytest.param(
        "if DEBUG:\n    def handler(event, context):\n    " + INVOKE,
        "app.py:5: no module-level function handler() to rewrite (line 5: under `if`)",
        id="refused-only-conditional",
    ),
]


@pytest.mark.parametrize(("body", "refusal"), SELECTION)
def test_only_the_module_level_handler_is_rewritten(body: str, refusal: str | None) -> None:
    source = "import json\nimport boto3\nlam = boto3.client('lambda')\n" + body
    if refusal is None:
        code = rewrite(source, "handler", ENV, "sync", "Orders", "").code
        tree = ast.parse(code)
        [handler] = [n for n in tree.body if isinstance(n, ast.FunctionDef) and n.name == "handler"]
        assert "_untangle_start" in ast.unparse(handler)
        assert code.count("return _untangle_start(event)") == 1
        assert "return event" in code or "return item" in code
        return
    with pytest.raises(MigrationError) as refused:
        rewrite(source, "handler", ENV, "sync", "Orders", "")
    path, line, text = refusal.split(":", 2)
    assert f"{path}:{refused.value.line}:{refused.value}".startswith(f"{path}:{line}:{text[1:]}")


# --- 6. line endings -------------------------------------------------------------------------

ORCHESTRATOR = [
    '"""Orders."""',
    "import json",
    "import boto3",
    "lam = boto3.client('lambda')",
    "",
    "",
    "def handler(event, context):",
    '    return lam.invoke(FunctionName="charge", Payload=json.dumps(event))',
]

ENDINGS = [
    pytest.param(["\n"] * 8, "\n", id="lf"),
    pytest.param(["\r\n"] * 8, "\r\n", id="crlf"),
    pytest.param(["\r"] * 8, "\r", id="cr"),
    pytest.param(["\r\n"] * 5 + ["\n"] * 3, "\r\n", id="mixed-mostly-crlf"),
    pytest.param(["\n"] * 5 + ["\r\n"] * 3, "\n", id="mixed-mostly-lf"),
]


@pytest.mark.parametrize(("endings", "expected"), ENDINGS)
def test_the_file_keeps_its_line_ending(endings: list[str], expected: str) -> None:
    source = "".join(line + end for line, end in zip(ORCHESTRATOR, endings))
    code = rewrite(source, "handler", ENV, "sync", "Orders", "").code
    others = {"\n", "\r\n", "\r"} - {expected}
    lines = code.splitlines(keepends=True)
    assert all(line.endswith(expected) for line in lines)
    assert not any(line[: -len(expected)].endswith(tuple(others)) for line in lines)
    ast.parse(code)


# --- 7. names pasted into generated text --------------------------------------------------------

HOSTILE = [
    pytest.param('Orders"""\nimport os; os.system("x")\n"""', id="triple-quotes-and-newlines"),
    pytest.param("Orders\\", id="trailing-backslash"),
    pytest.param("Orders\\N{", id="broken-escape"),
    pytest.param("Orders'''", id="single-triple-quotes"),
    pytest.param('Orders"', id="trailing-quote"),
    pytest.param("Orders\r\n# comment", id="crlf"),
    pytest.param("Orders\x00\x0b\u2028", id="control-characters"),
    pytest.param("Orders", id="near-miss-plain"),
]


@pytest.mark.parametrize("name", HOSTILE)
@pytest.mark.parametrize("documented", [True, False], ids=["with-docstring", "without"])
def test_hostile_names_stay_text(name: str, documented: bool) -> None:
    extracted = Extraction("add_tax", ("total",), "total * 1.2", "app.py", 9, "total")
    workflow = Workflow(name, "app.handler", "app.py", None, "converted", extracted=(extracted,))
    source = (
        "import json\nimport boto3\nlam = boto3.client('lambda')\n\n\n"
        "def handler(event, context):\n" + ('    """Charge."""\n' if documented else "") + INVOKE
    )
    code = rewrite(source, "handler", ENV, "sync", name, _extracted_source(workflow)).code
    tree = ast.parse(code)
    functions = {n.name: n for n in tree.body if isinstance(n, ast.FunctionDef)}
    assert set(functions) == {"handler", "_untangle_start", "add_tax"}  # nothing injected
    assert [type(n) for n in tree.body].count(ast.Expr) == 0
    assert name in (ast.get_docstring(functions["add_tax"], clean=False) or "")
    if not documented:
        assert name in (ast.get_docstring(functions["handler"], clean=False) or "")


@pytest.mark.parametrize("text", ['a"""b', "a\\", "\n", "'''", "é ✓", "\\N{DASH}"])
def test_escaped_text_evaluates_to_itself(text: str) -> None:
    assert ast.literal_eval(f'"""{escaped(text)}"""') == text
    assert ast.literal_eval(docstring([text], "    ", 40)).replace("\n    ", " ").strip() in (
        text.strip(),
        " ".join(text.split()),
    )


# --- names other modules import --------------------------------------------------------------

IMPORTERS = [
    pytest.param("from app import describe, other\n", {"describe", "other"}, id="from-import"),
    pytest.param("from pkg.app import describe\n", {"describe"}, id="from-package-import"),
    pytest.param("import app\napp.describe({})\n", {"describe"}, id="module-attribute"),
    pytest.param("from . import app\napp.describe({})\n", {"describe"}, id="relative-module"),
    pytest.param("from app import *\n", None, id="star-means-everything"),
    pytest.param("from apparel import describe\n", set(), id="near-miss-another-module"),
    pytest.param("text = 'from app import describe'\n", set(), id="near-miss-in-a-string"),
]


@pytest.mark.parametrize(("other", "expected"), IMPORTERS)
def test_names_other_modules_import(other: str, expected: set[str] | None) -> None:
    from untangle.importers import importers_of

    files = {"/p/app.py": "def describe(e):\n    return e\n", "/p/other.py": other}
    names = importers_of(files, files.__getitem__)("/p/app.py")
    if expected is None:
        assert names is None
    else:
        assert names is not None and expected <= names
        assert "describe" in names or "describe" not in expected
        if not expected:
            assert "describe" not in names


# --- 8. a new function's parameters ------------------------------------------------------------

PARAMETER_ORDERS = [
    pytest.param(("first_name", "event", "total"), id="event-between-others"),
    pytest.param(("event", "total"), id="event-first"),
    pytest.param(("total", "event"), id="near-miss-event-last"),
    pytest.param(("first_name", "total"), id="near-miss-no-event"),
]


@pytest.mark.parametrize("params", PARAMETER_ORDERS)
@pytest.mark.parametrize("region", [True, False], ids=["region", "expression"])
def test_a_parameter_named_event_does_not_hide_the_others(
    params: tuple[str, ...], region: bool
) -> None:
    """The handler's `event` is one of the values a new function receives: reading it into
    `event` must not replace the payload the other parameters are read from."""
    total = "total + len(event['id'])" if "event" in params else "total"
    extracted = Extraction(
        "compute_total",
        params,
        "" if region else total,
        "app.py",
        9,
        "result",
        body=f"result = {total}" if region else "",
        outputs=("result",) if region else (),
    )
    workflow = Workflow("W", "app.handler", "app.py", None, "converted", extracted=(extracted,))
    namespace: dict[str, Any] = {}
    exec(_extracted_source(workflow), namespace)  # the generated code, run as Lambda would
    payload = {"first_name": "Ann", "event": {"id": "abc", "total": 100}, "total": 5}
    expected = 8 if "event" in params else 5
    assert namespace["compute_total"]({k: payload[k] for k in params}, None) == expected
