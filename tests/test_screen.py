"""The screen that spares extracting facts from prefilter candidates that cannot matter: it may
let through a module that turns out irrelevant, never hold back one that is relevant."""

from __future__ import annotations

import pytest

from untangle.facts.model import ModuleFacts, SourceError
from untangle.facts.source import parse_facts, screened_facts

INVOKE = "import boto3\n\n\ndef go(name):\n    boto3.client('lambda').invoke(FunctionName=name)\n"

# (source, whether the module is relevant): every relevant one must get through the screen
KEPT = [
    pytest.param(INVOKE, True, id="invoke-in-a-function"),
    pytest.param(
        "def go(pool, client):\n    pool.submit(client.invoke, FunctionName='x')\n",
        True,
        id="invoke-passed-to-a-pool",
    ),
    pytest.param("def handler(event, context):\n    return 1\n", True, id="handler"),
    pytest.param("def lambda_handler(e, c):\n    return 1\n", True, id="lambda-handler-name"),
    pytest.param("def process(*, Event, ctx):\n    pass\n", True, id="keyword-only-event"),
    pytest.param(
        "def process(  # the payload\n    evt_event,\n    context,\n):\n    pass\n",
        True,
        id="comment-before-the-first-parameter",
    ),
    pytest.param("def f \\\n(event, context):\n    pass\n", True, id="line-continuation"),
    pytest.param("if True:\n    def handler(event, context):\n        pass\n", True, id="under-if"),
    pytest.param("def go(*event, context):\n    pass\n", True, id="star-event-then-context"),
    pytest.param(
        "try:\n    import x\nexcept ImportError:\n    def handler(event, context):\n        pass\n",
        True,
        id="under-except",
    ),
    pytest.param(
        "# x.invoke() below\rdef go(c):\r    c.invoke(FunctionName='x')\r",
        True,
        id="old-mac-line-endings-after-a-comment",
    ),
    pytest.param(
        "def go(c):\n    c.\uff49nvoke(FunctionName='x')\n", True, id="fullwidth-letter-in-invoke"
    ),
    pytest.param(
        "def go(c):\n    s = '# x'; c.invoke(FunctionName='x')\n", True, id="hash-in-a-string"
    ),
    # let through though irrelevant: the screen reads text, not meaning
    pytest.param("NAME = 'x.invoke'\n", False, id="invoke-in-a-string"),
]

# near misses: none of them can be relevant, and none is extracted
SCREENED_OUT = [
    pytest.param(
        "def go(c):\n    return c.invoke_endpoint(EndpointName='x')\n", id="invoke-endpoint"
    ),
    pytest.param("def go(c):\n    # c.invoke(FunctionName='x')\n    return c\n", id="in-a-comment"),
    pytest.param("def go(c):\n    return c.invoke_model(modelId='x')\n", id="invoke-model"),
    pytest.param(
        "class Test:\n    def handler(self, event, context):\n        pass\n", id="a-method"
    ),
    pytest.param(
        "def test():\n    def handler(event, context):\n        pass\n",
        id="nested-handler-and-no-invoke",
    ),
    pytest.param("def handler(event):\n    pass\n", id="one-parameter"),
    pytest.param("handler = lambda event, context: None\n", id="a-lambda"),
    pytest.param("def go(*context, event):\n    pass\n", id="star-context-then-event"),
    pytest.param("def process(payload, context):\n    pass\n", id="no-event-first"),
    pytest.param("def handle(event, data):\n    pass\n", id="no-context-second"),
]


@pytest.mark.parametrize(("source", "relevant"), KEPT)
def test_relevant_modules_get_through(source: str, relevant: bool) -> None:
    facts = parse_facts(source.encode(), "m.py", "m")
    assert isinstance(facts, ModuleFacts)
    assert facts.relevant is relevant
    assert screened_facts(source.encode(), "m.py", "m") == facts


@pytest.mark.parametrize("source", SCREENED_OUT)
def test_modules_that_cannot_matter_are_not_extracted(source: str) -> None:
    facts = parse_facts(source.encode(), "m.py", "m")
    assert isinstance(facts, ModuleFacts)
    assert not facts.relevant
    assert screened_facts(source.encode(), "m.py", "m") is None


@pytest.mark.parametrize(
    ("source", "message"),
    [
        pytest.param("# x.invoke()\nprint 'x'\n", "Python 2", id="python2"),
        pytest.param("# x.invoke()\ndef f(:\n", "syntax error", id="syntax-error"),
        # accepted by `ast.parse`, refused by the compiler: Python cannot import it
        pytest.param(
            "# x.invoke()\nnonlocal x\n", "nonlocal declaration", id="module-level-nonlocal"
        ),
    ],
)
def test_a_screened_out_module_still_reports_what_parsing_reports(
    source: str, message: str | None
) -> None:
    screened = screened_facts(source.encode(), "m.py", "m")
    parsed = parse_facts(source.encode(), "m.py", "m")
    if message is None:
        assert screened is None
        assert isinstance(parsed, ModuleFacts)
    else:
        assert isinstance(screened, SourceError)
        assert message in screened.message
        assert screened == parsed
