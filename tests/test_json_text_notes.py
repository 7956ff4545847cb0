"""`json.dumps` of a value only the machine knows: the machine writes that text (JSONata, or
`States.JsonToString`), which differs from Python's; plan says so on the line, in the query
language's terms, and only where a text is written (not where it is parsed back as data)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from untangle.plan import PlanOptions, plan
from untangle.scan import ScanOptions, load_tree

HANDLER = """\
import json
import boto3

client = boto3.client("lambda")


def lambda_handler(event, context):
    response = client.invoke(FunctionName="quote", Payload=json.dumps(event))
    quote = json.loads(response["Payload"].read())
    return {{"statusCode": 200, "body": {body}}}
"""
RETURN_LINE = 10


def _notes(tmp_path: Path, body: str, language: str) -> tuple[list[str], dict[str, object]]:
    (tmp_path / "app.py").write_text(HANDLER.format(body=body))
    tree = load_tree([str(tmp_path)], ScanOptions(cache_dir=None))
    [planned] = plan(
        tree.program, tree.templates, lambda p: Path(p).read_text(), PlanOptions(language)
    )
    assert planned.asl is not None
    notes = [n.message for n in planned.workflow.notes if n.line == RETURN_LINE]
    return notes, planned.asl


@pytest.mark.parametrize(
    ("language", "body", "said"),
    [
        pytest.param("jsonata", "json.dumps(quote)", "outside ASCII unescaped", id="jsonata"),
        pytest.param(
            "jsonpath", "json.dumps(quote)", "JsonToString writes this text compact", id="jsonpath"
        ),
        # near misses: Python's own text (folded now), data and no text at all
        pytest.param("jsonata", 'json.dumps({"ok": True})', None, id="literal-folded-jsonata"),
        pytest.param("jsonpath", 'json.dumps({"ok": True})', None, id="literal-folded-jsonpath"),
        pytest.param("jsonata", "json.loads(json.dumps(quote))", None, id="parsed-back"),
        pytest.param("jsonata", "quote", None, id="no-text"),
    ],
)
def test_json_text_noted_on_its_line(
    tmp_path: Path, language: str, body: str, said: str | None
) -> None:
    notes, asl = _notes(tmp_path, body, language)
    json_notes = [n for n in notes if "json.dumps" in n]
    if said is None:
        assert json_notes == []
    else:
        assert len(json_notes) == 1 and said in json_notes[0]
        assert json_notes[0].startswith(f"`{body}`")
        definition = json.dumps(asl)
        assert ("States.JsonToString" in definition) == (language == "jsonpath")
