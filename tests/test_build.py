"""The builder's contract beyond what it plans: how it reads sources and how it refuses."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from untangle.cli import main
from untangle.plan import PlanOptions, plan
from untangle.scan import ScanOptions, load_tree
from untangle.workflow.build.sources import ParsedSources

LATIN1_HANDLER = (
    "# -*- coding: latin-1 -*-\n"
    "import json\n"
    "import boto3\n"
    "\n"
    'client = boto3.client("lambda")\n'
    "\n"
    "\n"
    "def lambda_handler(event, context):\n"
    '    """Encaissement: r\xe9serve puis d\xe9bite."""\n'
    '    response = client.invoke(FunctionName="r\xe9server", Payload=json.dumps(event))\n'
    '    return json.loads(response["Payload"].read())\n'
).encode("latin-1")


def _plan_cli(tmp_path: Path, *args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(
        main, ["plan", "--no-cache", str(tmp_path), *args], catch_exceptions=False
    )
    return result.exit_code, result.stdout, result.stderr


def test_a_latin1_file_scan_reads_is_planned(tmp_path: Path) -> None:
    """plan decodes as scan does (PEP 263), not as UTF-8."""
    (tmp_path / "app.py").write_bytes(LATIN1_HANDLER)
    code, out, err = _plan_cli(tmp_path, "--format", "json")
    assert code == 0, err
    [workflow] = json.loads(out)["workflows"]
    assert workflow["status"] == "converted", workflow["reasons"]
    code, out, err = _plan_cli(tmp_path)
    assert "app.py:10: r\xe9server: the original never checked FunctionError" in out


def test_an_undecodable_file_is_refused_with_its_line(tmp_path: Path) -> None:
    """A file that changed between scan and plan (or lies about its coding) is one reason that
    names the line, never a traceback."""
    (tmp_path / "app.py").write_bytes(LATIN1_HANDLER)
    tree = load_tree([str(tmp_path)], ScanOptions(cache_dir=None))

    def corrupted(path: str) -> str:
        from untangle.files import read_source

        Path(path).write_bytes(LATIN1_HANDLER.replace(b"latin-1", b"utf-8"))
        return read_source(path)

    [planned] = plan(tree.program, tree.templates, corrupted, PlanOptions())
    assert planned.status == "not_converted"
    [reason] = planned.workflow.reasons
    assert reason.line == 8
    assert "line 9: not valid utf-8 (byte 0xe9)" in reason.message


def test_each_file_is_read_and_parsed_once_for_all_its_handlers(tmp_path: Path) -> None:
    helper = (
        "import boto3\n"
        'client = boto3.client("lambda")\n'
        "def call(name, event):\n"
        "    return client.invoke(FunctionName=name, Payload=b'{}')\n"
    )
    (tmp_path / "helpers.py").write_text(helper)
    for name in ("one", "two", "three"):
        (tmp_path / f"{name}.py").write_text(
            "from helpers import call\n"
            "def lambda_handler(event, context):\n"
            f"    call('{name}-function', event)\n"
        )
    tree = load_tree([str(tmp_path)], ScanOptions(cache_dir=None))
    reads: list[str] = []

    def counting(path: str) -> str:
        reads.append(Path(path).name)
        return Path(path).read_text()

    planned = plan(tree.program, tree.templates, counting, PlanOptions())
    assert len(planned) == 3
    assert sorted(reads) == ["helpers.py", "one.py", "three.py", "two.py"]


def test_parsed_sources_cache(tmp_path: Path) -> None:
    path = tmp_path / "m.py"
    path.write_text("x = 1\ny = 2\n")
    calls: list[str] = []
    sources = ParsedSources(lambda p: calls.append(p) or Path(p).read_text())
    first = sources(str(path))
    assert sources(str(path)) is first
    assert first.lines == ["x = 1", "y = 2"] and len(calls) == 1


@pytest.mark.parametrize("bom", [b"", b"\xef\xbb\xbf"], ids=["plain", "bom"])
def test_utf8_with_or_without_bom(tmp_path: Path, bom: bytes) -> None:
    (tmp_path / "app.py").write_bytes(
        bom + LATIN1_HANDLER.decode("latin-1").split("\n", 1)[1].encode()
    )
    code, out, err = _plan_cli(tmp_path, "--format", "json")
    assert code == 0, err
    assert json.loads(out)["workflows"][0]["status"] == "converted"


MANY_PROBLEMS = {
    "app.py": (
        "import json\n"
        "import boto3\n"
        "from helpers import notify\n"
        'client = boto3.client("lambda")\n'
        "def lambda_handler(event, context):\n"
        '    label = "order-"\n'
        "    label += context.aws_request_id\n"
        '    response = client.invoke(FunctionName="reserve", Payload=json.dumps({"l": label}))\n'
        '    del event["scratch"], context\n'
        "    notify(event)\n"
        '    return json.loads(response["Payload"].read())\n'
    ),
    "helpers.py": (
        "import json\n"
        "import boto3\n"
        'client = boto3.client("lambda")\n'
        "def notify(event):\n"
        "    assert event\n"
        '    client.invoke(FunctionName="notify", Payload=json.dumps(event))\n'
    ),
}


def _write(tmp_path: Path, files: dict[str, str]) -> None:
    for name, text in files.items():
        (tmp_path / name).write_text(text)


def test_a_refused_handler_lists_every_reason_where_it_is(tmp_path: Path) -> None:
    """Every refused statement is a reason at its own file and line (the helper's file for a
    helper's); what only follows from an earlier refusal (`response`, bound by the refused
    invoke) is not one."""
    _write(tmp_path, MANY_PROBLEMS)
    tree = load_tree([str(tmp_path)], ScanOptions(cache_dir=None))
    [planned] = plan(tree.program, tree.templates, lambda p: Path(p).read_text(), PlanOptions())
    assert planned.status == "not_converted"
    found = [(Path(r.path).name, r.line, r.message) for r in planned.workflow.reasons]
    context_read = (
        "would run as a new function, but they read the Lambda context object, which is no "
        "JSON data to pass it"
    )
    assert found == [
        ("app.py", 6, f"lines 6-7 {context_read}"),
        ("app.py", 9, f"lines 9-9 {context_read}"),
        ("helpers.py", 5, "an `assert` statement"),
    ]
    assert [r.hint for r in planned.workflow.reasons][1:] == [
        "compute what they need from `context` before, or create it inside that code",
        "`if not …: raise …`, which becomes a Choice and a Fail",
    ]
    assert planned.workflow.notes == () and planned.workflow.extracted == ()


def test_refusal_hints_in_text_and_json(tmp_path: Path) -> None:
    _write(tmp_path, MANY_PROBLEMS)
    code, out, _ = _plan_cli(tmp_path)
    assert code == 1
    assert "helpers.py:5: an `assert` statement; to convert: `if not …: raise …`" in out
    code, out, _ = _plan_cli(tmp_path, "--format", "json")
    reasons = json.loads(out)["workflows"][0]["reasons"]
    assert reasons[0]["hint"].startswith("compute what they need from `context`")
    assert reasons[2]["message"] == "an `assert` statement" and reasons[2]["hint"]


@pytest.mark.parametrize(
    ("header", "reason"),
    [
        pytest.param(
            "    for (index, order), extra in event['orders']:\n",
            "unpacking `(index, order), extra` in a loop target",
            id="unpacking-loop-target",
        ),
        pytest.param(
            "    for order in event['orders']:\n",
            None,
            id="near-miss-plain-loop-target",
        ),
    ],
)
def test_a_statement_refused_at_its_head_still_reports_its_body(
    tmp_path: Path, header: str, reason: str | None
) -> None:
    """The body of a loop refused for its target is still compiled for its own reasons."""
    _write(
        tmp_path,
        {
            "app.py": (
                "import json\nimport boto3\n"
                'client = boto3.client("lambda")\n'
                "def lambda_handler(event, context):\n"
                + header
                + '        client.invoke(FunctionName="ship", Payload=json.dumps(order))\n'
                "        del order, context\n"
            )
        },
    )
    tree = load_tree([str(tmp_path)], ScanOptions(cache_dir=None))
    [planned] = plan(tree.program, tree.templates, lambda p: Path(p).read_text(), PlanOptions())
    messages = [(r.line, r.message) for r in planned.workflow.reasons]
    expected = [(5, reason)] if reason else []
    body = (
        "lines 7-7 would run as a new function, but they read the Lambda context object, which "
        "is no JSON data to pass it"
    )
    # the `del` is refused on its own: a region reading `context`, or (in a body whose loop
    # target was refused) a `del` statement
    assert messages[:-1] == expected
    assert messages[-1] in ((7, body), (7, "a `del` statement"))


UNREACHABLE = {
    "after-a-return": (
        "    return {'ok': True}\n"
        "    client.invoke(FunctionName='legacy-step', Payload=json.dumps(event))\n",
        False,
    ),
    "under-if-false": (
        "    if False:\n"
        "        client.invoke(FunctionName='legacy-step', Payload=json.dumps(event))\n"
        "    return {'ok': True}\n",
        False,
    ),
    "near-miss:a-return-in-a-branch": (
        "    if event.get('skip'):\n"
        "        return {'ok': True}\n"
        "    client.invoke(FunctionName='legacy-step', Payload=json.dumps(event))\n",
        True,
    ),
}


@pytest.mark.parametrize(("body", "planned"), UNREACHABLE.values(), ids=UNREACHABLE.keys())
def test_unreachable_invokes_are_not_a_workflow(tmp_path: Path, body: str, planned: bool) -> None:
    """Nothing to migrate, and migrate never deletes the code."""
    source = (
        "import json\nimport boto3\n\nclient = boto3.client('lambda')\n\n\n"
        "def lambda_handler(event, context):\n" + body
    )
    (tmp_path / "app.py").write_text(source)
    _, out, _ = _plan_cli(tmp_path, "--format", "json")
    assert [w["handler"] for w in json.loads(out)["workflows"]] == (
        ["app.lambda_handler"] if planned else []
    )
    result = CliRunner().invoke(main, ["migrate", "--no-cache", str(tmp_path), "--write"])
    assert (tmp_path / "app.py").read_text() == source or planned, result.output
