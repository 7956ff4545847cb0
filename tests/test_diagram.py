"""Structural tests of the Mermaid, DOT and text diagrams (no golden files).

Expected states and edges are derived from the ASL dicts here, independently of the renderer's
model; only node ids are taken from `diagram.graph()` (they are generated).
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from collections import Counter
from collections.abc import Iterator
from typing import Any

import pytest

from tests.asl_examples import ALL, JSONATA, JSONPATH
from untangle.render import diagram

Path = tuple[str, ...]
ExpectedEdge = tuple[str, str, bool]  # (src id, dst id, dashed)

MERMAID_ID = re.compile(r"^[A-Za-z0-9_]+$")
MERMAID_NODE = re.compile(
    r'^(?P<id>\w+)(?P<open>\(\(|\(\[|\[\[|\{\{|\(|\[|\{|>)"(?P<label>[^"]*)"(?P<close>\)\)|\]\)|\]\]|\}\}|\)|\]|\})$'
)
MERMAID_EDGE = re.compile(
    r'^(?P<src>\w+) (?P<arrow>-->|-\.->)(?:\|"(?P<label>[^"]*)"\|)? (?P<dst>\w+)$'
)
MERMAID_SUBGRAPH = re.compile(r'^subgraph (?P<id>\w+)\["(?P<label>[^"]*)"\]$')
DOT_NODE = re.compile(r'^(?P<id>\w+) \[label="(?P<label>(?:[^"\\]|\\.)*)"(?:, .*)?\];$')
DOT_EDGE = re.compile(r"^(?P<src>\w+) -> (?P<dst>\w+)(?: \[(?P<attrs>.*)\])?;$")
DOT_CLUSTER = re.compile(r"^subgraph (?P<id>cluster_\w+) \{$")


# --- Expectations from the dict -------------------------------------------------------------


def state_paths(scope: dict[str, Any], prefix: Path = ()) -> Iterator[tuple[Path, dict[str, Any]]]:
    """Every state with its documented path: `(Par, "1", Name)` / `(Map, "items", Name)`."""
    for name, state in scope["States"].items():
        path = (*prefix, name)
        yield path, state
        for i, branch in enumerate(state.get("Branches", []), 1):
            yield from state_paths(branch, (*path, str(i)))
        inner = state.get("ItemProcessor") or state.get("Iterator")
        if inner:
            yield from state_paths(inner, (*path, "items"))


def expected_edges(definition: dict[str, Any], g: diagram.Graph) -> list[ExpectedEdge]:
    """Start, Next, Choice rules, Default, End, Catch (and Parallel/Map entries) from the dict."""
    edges: list[ExpectedEdge] = []

    def scope(s: dict[str, Any], prefix: Path, entry: str, exit_id: str) -> None:
        edges.append((entry, g.ids[(*prefix, s["StartAt"])], False))
        for name, state in s["States"].items():
            path = (*prefix, name)
            src = g.exits[path]
            for rule in state.get("Choices", []):
                edges.append((src, g.ids[(*prefix, rule["Next"])], False))
            if "Default" in state:
                edges.append((src, g.ids[(*prefix, state["Default"])], False))
            if "Next" in state:
                edges.append((src, g.ids[(*prefix, state["Next"])], False))
            if state.get("End") is True:
                edges.append((src, exit_id, False))
            for catcher in state.get("Catch", []):
                edges.append((src, g.ids[(*prefix, catcher["Next"])], True))
            for i, branch in enumerate(state.get("Branches", []), 1):
                scope(branch, (*path, str(i)), g.ids[path], g.exits[path])
            inner = state.get("ItemProcessor") or state.get("Iterator")
            if inner:
                scope(inner, (*path, "items"), g.ids[path], g.exits[path])

    scope(definition, (), diagram.START_ID, diagram.END_ID)
    return edges


# --- Parsers of the output ------------------------------------------------------------------


def mermaid_unescape(text: str) -> str:
    entities = {"quot": '"', "lt": "<", "gt": ">", "amp": "&"}

    def one(m: re.Match[str]) -> str:
        code = m.group(1)
        return entities[code] if code in entities else chr(int(code))

    return re.sub(r"#(\w+);", one, text)


def parse_mermaid(
    out: str,
) -> tuple[dict[str, tuple[list[str], list[str]]], list[tuple[str, str, bool, str]]]:
    """Node id -> (label lines, enclosing subgraph ids); edges (src, dst, dashed, label).
    Fails on any line that is not one of the statement forms the renderer may write."""
    lines = out.splitlines()
    assert lines[0] == "flowchart TD"
    nodes: dict[str, tuple[list[str], list[str]]] = {}
    edges: list[tuple[str, str, bool, str]] = []
    stack: list[str] = []
    for raw in lines[1:]:
        line = raw.strip()
        if m := MERMAID_SUBGRAPH.match(line):
            assert MERMAID_ID.match(m["id"])
            stack.append(m["id"])
        elif line == "end":
            stack.pop()
        elif line == "direction TB":
            assert stack
        elif m := MERMAID_NODE.match(line):
            assert m["id"] not in nodes, f"node {m['id']} declared twice"
            label = [mermaid_unescape(part) for part in m["label"].split("<br/>")]
            nodes[m["id"]] = (label, list(stack))
        elif m := MERMAID_EDGE.match(line):
            edges.append(
                (m["src"], m["dst"], m["arrow"] == "-.->", mermaid_unescape(m["label"] or ""))
            )
        elif line.startswith(("classDef ", "class ")):
            pass
        else:
            raise AssertionError(f"unexpected Mermaid line: {raw!r}")
    assert not stack, "unclosed subgraph"
    for src, dst, _, _ in edges:
        assert src in nodes and dst in nodes, (src, dst)
    return nodes, edges


def dot_unescape(text: str) -> list[str]:
    """A DOT quoted string's escString content, split on `\\n`."""
    lines, current, i = [], "", 0
    while i < len(text):
        if text[i] == "\\" and i + 1 < len(text):
            nxt = text[i + 1]
            if nxt == "n":
                lines.append(current)
                current = ""
            else:
                current += nxt
            i += 2
        else:
            current += text[i]
            i += 1
    return [*lines, current]


def parse_dot(
    out: str,
) -> tuple[dict[str, tuple[list[str], list[str]]], list[tuple[str, str, bool, str]]]:
    nodes: dict[str, tuple[list[str], list[str]]] = {}
    edges: list[tuple[str, str, bool, str]] = []
    stack: list[str] = []
    lines = out.splitlines()
    assert lines[0] == "digraph state_machine {" and lines[-1] == "}"
    for raw in lines[1:-1]:
        line = raw.strip()
        if m := DOT_CLUSTER.match(line):
            stack.append(m["id"].removeprefix("cluster_"))
        elif line == "}":
            stack.pop()
        elif m := DOT_EDGE.match(line):
            attrs = m["attrs"] or ""
            label = re.search(r'label="((?:[^"\\]|\\.)*)"', attrs)
            text = "\n".join(dot_unescape(label.group(1))) if label else ""
            edges.append((m["src"], m["dst"], "style=dashed" in attrs, text))
        elif m := DOT_NODE.match(line):
            assert m["id"] not in nodes
            nodes[m["id"]] = (dot_unescape(m["label"]), list(stack))
        elif line.startswith(("rankdir=", "graph [", "node [", "edge [", "label=", "style=")):
            pass
        else:
            raise AssertionError(f"unexpected DOT line: {raw!r}")
    assert not stack
    return nodes, edges


def check_dot_with_graphviz(out: str) -> None:
    if shutil.which("dot") is None:
        return  # parse_dot() above is the check then
    result = subprocess.run(
        ["dot", "-Tsvg"], input=out.encode(), capture_output=True, timeout=60, check=False
    )
    assert result.returncode == 0, result.stderr.decode()
    assert b"<svg" in result.stdout
    assert not result.stderr.strip(), result.stderr.decode()


# --- Every example, both flavours -----------------------------------------------------------

EXAMPLES = sorted(ALL)


@pytest.mark.parametrize("key", EXAMPLES)
def test_every_state_is_a_node_once(key: str) -> None:
    definition = ALL[key]
    g = diagram.graph(definition)
    m_nodes, _ = parse_mermaid(diagram.mermaid(definition))
    d_nodes, _ = parse_dot(diagram.dot(definition))
    paths = [path for path, _ in state_paths(definition)]
    assert sorted(g.ids) == sorted(paths)
    assert len(set(g.ids.values())) == len(paths)
    for path in paths:
        node_id = g.ids[path]
        assert MERMAID_ID.match(node_id)
        assert m_nodes[node_id][0][0] == path[-1]
        assert d_nodes[node_id][0][0] == path[-1]
    text = diagram.text(definition)
    for path in paths:
        assert re.search(rf"(^|\s){re.escape(path[-1])}\s", text, re.M), path


@pytest.mark.parametrize("key", EXAMPLES)
def test_every_edge_once(key: str) -> None:
    definition = ALL[key]
    g = diagram.graph(definition)
    expected = Counter(expected_edges(definition, g))
    _, m_edges = parse_mermaid(diagram.mermaid(definition))
    _, d_edges = parse_dot(diagram.dot(definition))
    assert Counter((s, d, dashed) for s, d, dashed, _ in m_edges) == expected
    assert Counter((s, d, dashed) for s, d, dashed, _ in d_edges) == expected


@pytest.mark.parametrize("key", EXAMPLES)
def test_nested_states_sit_in_their_subgraph(key: str) -> None:
    definition = ALL[key]
    g = diagram.graph(definition)
    m_nodes, _ = parse_mermaid(diagram.mermaid(definition))
    d_nodes, _ = parse_dot(diagram.dot(definition))
    for path, _ in state_paths(definition):
        depth = (len(path) - 1) // 2  # each Parallel branch / Map processor adds two parts
        for nodes in (m_nodes, d_nodes):
            _, enclosing = nodes[g.ids[path]]
            assert len(enclosing) == depth, (path, enclosing)
            if depth:
                owner = g.ids[path[:-2]]
                cluster = next(c for c in g.clusters if c.id == enclosing[-1])
                assert cluster.owner == owner
                assert cluster.label.startswith(path[-3] + ": ")


@pytest.mark.parametrize("key", EXAMPLES)
def test_dot_renders_with_graphviz(key: str) -> None:
    check_dot_with_graphviz(diagram.dot(ALL[key]))


# --- Labels ---------------------------------------------------------------------------------


def edge_labels(definition: dict[str, Any]) -> dict[tuple[str, str], list[str]]:
    g = diagram.graph(definition)
    names = {v: k[-1] for k, v in g.ids.items()}
    names.update({diagram.START_ID: "start", diagram.END_ID: "end"})
    _, edges = parse_mermaid(diagram.mermaid(definition))
    out: dict[tuple[str, str], list[str]] = {}
    for src, dst, _, label in edges:
        out.setdefault((names.get(src, src), names.get(dst, dst)), []).append(label)
    return out


def test_choice_labels_jsonpath_and_jsonata() -> None:
    jp = edge_labels(JSONPATH["order_size"])
    assert jp[("CheckOrderSize", "ManagerApproval")] == ["$.total > 1000"]
    assert jp[("CheckOrderSize", "StandardProcessing")] == ["$.total > 100"]
    assert jp[("CheckOrderSize", "ExpressProcessing")] == ["otherwise"]
    ja = edge_labels(JSONATA["order_size"])
    assert ja[("CheckOrderSize", "ManagerApproval")] == ["$states.input.total > 1000"]
    assert ja[("CheckOrderSize", "ExpressProcessing")] == ["otherwise"]
    fraud = edge_labels(JSONPATH["fraud_rule"])
    assert fraud[("CheckRisk", "BlockOrder")] == ["$.riskScore > 80 and $.orderTotal > 500"]
    fraud_ja = edge_labels(JSONATA["fraud_rule"])
    assert fraud_ja[("CheckRisk", "BlockOrder")] == [
        "$states.input.riskScore > 80 and $states.input.orderTotal > 500"
    ]


def test_nested_and_or_not_conditions() -> None:
    rule = {
        "Or": [
            {"Not": {"Variable": "$.status", "StringEquals": "paid"}},
            {
                "And": [
                    {"Variable": "$.total", "NumericGreaterThanEqualsPath": "$.limit"},
                    {"Variable": "$.vip", "BooleanEquals": True},
                    {
                        "Or": [
                            {"Variable": "$.note", "IsPresent": False},
                            {"Variable": "$.x", "IsNull": True},
                        ]
                    },
                ]
            },
            {
                "Not": {
                    "And": [
                        {"Variable": "$.a", "StringMatches": "log-*"},
                        {"Variable": "$.t", "TimestampLessThan": "2026-01-01T00:00:00Z"},
                    ]
                }
            },
        ],
        "Next": "B",
    }
    definition = {
        "StartAt": "C",
        "States": {
            "C": {"Type": "Choice", "Choices": [rule], "Default": "B"},
            "B": {"Type": "Succeed"},
        },
    }
    labels = edge_labels(definition)[("C", "B")]
    assert labels == [
        'not $.status == "paid" or ($.total >= $.limit and $.vip == true and '
        '($.note is absent or $.x is null)) or not ($.a matches "log-*" and '
        '$.t < "2026-01-01T00:00:00Z")',
        "otherwise",
    ]


def test_catch_edges_are_dashed_and_labelled() -> None:
    _, edges = parse_mermaid(diagram.mermaid(JSONPATH["order"]))
    g = diagram.graph(JSONPATH["order"])
    catch = [(s, d, label) for s, d, dashed, label in edges if dashed]
    assert catch == [
        (g.ids[("ValidatePayment",)], g.ids[("PaymentFailed",)], "catch PaymentError"),
        (g.ids[("CheckInventory",)], g.ids[("RefundPayment",)], "catch OutOfStock"),
    ]
    _, dot_edges = parse_dot(diagram.dot(JSONPATH["order"]))
    assert sorted(label for *_, dashed, label in dot_edges if dashed) == [
        "catch OutOfStock",
        "catch PaymentError",
    ]


@pytest.mark.parametrize("flavour", [JSONPATH, JSONATA])
def test_node_annotations(flavour: dict[str, dict[str, Any]]) -> None:
    def label(key: str, path: Path) -> list[str]:
        nodes, _ = parse_mermaid(diagram.mermaid(flavour[key]))
        return nodes[diagram.graph(flavour[key]).ids[path]][0]

    assert label("order", ("ValidatePayment",)) == [
        "ValidatePayment",
        "task ValidatePayment",
        "retry \u00d73, 2 s, backoff 2 on States.TaskFailed",
    ]
    assert label("order", ("SendEmail",))[2] == "retry \u00d75, 10 s, backoff 2"
    assert label("order", ("PaymentFailed",)) == ["PaymentFailed", "fail PaymentValidationFailed"]
    assert label("reminder", ("WaitForReminder",)) == ["WaitForReminder", "wait 24 h"]
    assert label("parallel_notifications", ("ProcessOrder",))[1] == "task CreateOrder"
    assert label("image_map", ("GetImageList",))[1] == "task ListS3Images"
    assert label("image_map", ("ProcessImages",))[1].endswith("max 50 concurrent")
    assert label("batch_map", ("ProcessBatch",))[1].endswith("max 100 concurrent")
    g = diagram.graph(flavour["image_map"])
    assert [c.label for c in g.clusters] == ["ProcessImages: each item, max 50 concurrent"]
    assert [c.label for c in diagram.graph(flavour["parallel_notifications"]).clusters] == [
        "ParallelTasks: branch 1",
        "ParallelTasks: branch 2",
        "ParallelTasks: branch 3",
    ]


def test_wait_labels() -> None:
    def wait(state: dict[str, Any]) -> str:
        return diagram.details({"Type": "Wait", **state})[0]

    assert wait({"Seconds": 86400}) == "wait 24 h"
    assert wait({"Seconds": 60}) == "wait 60 s"
    assert wait({"Seconds": 300}) == "wait 5 min"
    assert wait({"Seconds": 3 * 86400}) == "wait 3 d"
    assert wait({"SecondsPath": "$.waitTime"}) == "wait $.waitTime s"
    assert wait({"Timestamp": "2026-12-25T00:00:00Z"}) == "wait until 2026-12-25T00:00:00Z"
    assert wait({"TimestampPath": "$.at"}) == "wait until $.at"
    assert wait({"Seconds": "{% $states.input.delay %}"}) == "wait $states.input.delay s"
    assert wait({"Timestamp": "{% $states.input.at %}"}) == "wait until $states.input.at"


def test_retry_annotations() -> None:
    def retry(**retrier: Any) -> str:
        return diagram.details({"Type": "Task", "Resource": "x", "Retry": [retrier]})[1]

    assert retry(ErrorEquals=["States.ALL"]) == "retry \u00d73, 1 s, backoff 2"  # ASL defaults
    assert (
        retry(ErrorEquals=["States.ALL"], MaxAttempts=6, IntervalSeconds=2, BackoffRate=2.0)
        == "retry \u00d76, 2 s, backoff 2"
    )
    assert retry(ErrorEquals=["States.ALL"], MaxAttempts=0) == "no retry"
    assert (
        retry(ErrorEquals=["A", "B"], BackoffRate=1.5, MaxDelaySeconds=60, JitterStrategy="FULL")
        == "retry \u00d73, 1 s, backoff 1.5, max 60 s, jitter on A, B"
    )
    lambda_errors = [
        "Lambda.ServiceException",
        "Lambda.AWSLambdaException",
        "Lambda.SdkClientException",
        "Lambda.ClientExecutionTimeoutException",
    ]
    assert retry(ErrorEquals=lambda_errors, MaxAttempts=6, IntervalSeconds=2) == (
        "retry \u00d76, 2 s, backoff 2 on Lambda service errors"
    )


def test_task_function_names() -> None:
    def target(state: dict[str, Any]) -> str:
        return diagram.details({"Type": "Task", **state})[0]

    invoke = "arn:aws:states:::lambda:invoke"
    assert (
        target(
            {"Resource": invoke, "Parameters": {"FunctionName": "${ValidatePaymentFunctionArn}"}}
        )
        == "task ValidatePayment"
    )
    assert (
        target({"Resource": invoke, "Arguments": {"FunctionName": "${CheckInventoryFunctionArn}"}})
        == "task CheckInventory"
    )
    assert (
        target({"Resource": invoke, "Arguments": {"FunctionName": "${SendEmail.Arn}"}})
        == "task SendEmail"
    )
    assert target({"Resource": invoke, "Parameters": {"FunctionName.$": "$.fn"}}) == "task $.fn"
    assert (
        target({"Resource": invoke, "Arguments": {"FunctionName": "{% $states.input.fn %}"}})
        == "task $states.input.fn"
    )
    assert (
        target(
            {
                "Resource": invoke,
                "Parameters": {
                    "FunctionName": "arn:aws:lambda:us-east-1:123456789012:function:send-email:live"
                },
            }
        )
        == "task send-email"
    )
    assert (
        target({"Resource": "arn:aws:lambda:us-east-1:123456789:function:validate-payment"})
        == "task validate-payment"
    )
    assert target({"Resource": "arn:aws:lambda:...:function:create-order"}) == "task create-order"
    assert target({"Resource": "arn:aws:states:::sns:publish"}) == "task sns:publish"
    assert (
        target(
            {"Resource": invoke + ".waitForTaskToken", "Parameters": {"FunctionName": "approve"}}
        )
        == "task approve (waits for callback)"
    )


def test_missing_targets_and_unknown_types_still_render() -> None:
    definition = {
        "StartAt": "A",
        "States": {
            "A": {"Type": "Pass", "Next": "Nowhere"},
            "B": {"Type": "Mystery", "End": True},  # unreachable, unknown type
        },
    }
    g = diagram.graph(definition)
    kinds = {n.title: n.kind for n in g.nodes}
    assert kinds["Nowhere"] == "missing" and kinds["B"] == "mystery"
    parse_mermaid(diagram.mermaid(definition))
    parse_dot(diagram.dot(definition))
    check_dot_with_graphviz(diagram.dot(definition))
    text = diagram.text(definition)
    assert "Nowhere" in text and "(missing state)" in text and "unknown type Mystery" in text


# --- Weird names ----------------------------------------------------------------------------

WEIRD = [
    "end",
    "graph",
    "subgraph",
    "o",
    "x",
    "has space",
    "a b",
    "a_b",
    "a-b",
    'quote"d',
    "single'quote",
    "\u00fcn\u00efc\u00f6d\u00e9",
    "\u65e5\u672c\u8a9e",
    "\U0001f680 launch",
    "x-->y",
    "semi;colon",
    "back\\slash",
    "trailing\\",
    "new\nline",
    "#35; #quot;",
    "<b>html</b> & co",
    "pipe|name",
    "{% curly %}",
    "[brackets](parens){braces}",
    "`backtick`",
    "%%{init}%%",
    "1 starts with digit",
    "-",
    "x" * 120,
]


def weird_definition() -> dict[str, Any]:
    """A chain through every weird name, plus a Choice, Catch, Parallel and Map using them."""
    states: dict[str, Any] = {}
    for i, name in enumerate(WEIRD):
        nxt = WEIRD[i + 1] if i + 1 < len(WEIRD) else 'choice "?"'
        states[name] = {"Type": "Pass", "Next": nxt}
    states['choice "?"'] = {
        "Type": "Choice",
        "Choices": [
            {
                "Variable": '$["we|rd"]',
                "StringEquals": 'a "quoted" <value> | #x',
                "Next": "par\u00e4llel",
            },
            {"Condition": '{% $states.input.x > 1 and $y != "|" %}', "Next": "end"},
        ],
        "Default": "m\u00e4p",
    }
    states["par\u00e4llel"] = {
        "Type": "Parallel",
        "Branches": [
            {"StartAt": "end", "States": {"end": {"Type": "Pass", "End": True}}},  # same name again
            {"StartAt": 'b "2"', "States": {'b "2"': {"Type": "Wait", "Seconds": 5, "End": True}}},
        ],
        "Catch": [{"ErrorEquals": ['Err"or<1>', "States.ALL"], "Next": "f\u00e4il"}],
        "Next": "m\u00e4p",
    }
    states["m\u00e4p"] = {
        "Type": "Map",
        "MaxConcurrency": 2,
        "ItemProcessor": {
            "StartAt": "has space",
            "States": {
                "has space": {
                    "Type": "Task",
                    "Resource": "arn:aws:states:::lambda:invoke",
                    "Parameters": {"FunctionName": "${We\u00efrdFunctionArn}"},
                    "End": True,
                }
            },
        },
        "Retry": [{"ErrorEquals": ["States.ALL"], "MaxAttempts": 6, "IntervalSeconds": 2}],
        "End": True,
    }
    states["f\u00e4il"] = {"Type": "Fail", "Error": 'E"rr\\', "Cause": "x\ny"}
    return {"StartAt": WEIRD[0], "States": states}


def test_weird_names_give_safe_ids_and_exact_labels() -> None:
    definition = weird_definition()
    g = diagram.graph(definition)
    assert all(MERMAID_ID.match(n.id) for n in g.nodes)
    assert all(MERMAID_ID.match(c.id) for c in g.clusters)
    assert len({n.id for n in g.nodes}) == len(g.nodes)
    mermaid = diagram.mermaid(definition)
    m_nodes, m_edges = parse_mermaid(mermaid)
    d_nodes, d_edges = parse_dot(diagram.dot(definition))
    expected = Counter(expected_edges(definition, g))
    assert Counter((s, d, dashed) for s, d, dashed, _ in m_edges) == expected
    assert Counter((s, d, dashed) for s, d, dashed, _ in d_edges) == expected
    for path, _ in state_paths(definition):
        shown = path[-1].replace("\n", " ")  # one line
        assert m_nodes[g.ids[path]][0][0] == shown
        assert d_nodes[g.ids[path]][0][0] == shown
    condition = '$["we|rd"] == "a \\"quoted\\" <value> | #x"'
    assert condition in [label for *_, label in m_edges]
    assert condition in [label for *_, label in d_edges]
    assert 'catch Err"or<1>, States.ALL' in [label for *_, label in m_edges]
    # labels hold no raw markup: only entities (`#quot;`) and the `<br/>` line breaks
    for line in mermaid.splitlines():
        for label in re.findall(r'"([^"]*)"', line):
            bare = re.sub(r"#\w+;", "", label.replace("<br/>", ""))
            assert not set(bare) & set("<>|`#%&"), label


def test_weird_names_render_with_graphviz() -> None:
    check_dot_with_graphviz(diagram.dot(weird_definition()))


def test_weird_names_in_text() -> None:
    definition = weird_definition()
    out = diagram.text(definition)
    assert "new line" in out  # control characters cannot break a line
    plain = diagram.text(definition, ascii=True)
    assert plain.isascii()
    assert "\\xfcn\\xefc\\xf6d\\xe9" in plain


# --- Text -----------------------------------------------------------------------------------


def test_text_order_workflow_reads_top_down() -> None:
    out = diagram.text(JSONPATH["order"])
    lines = out.splitlines()
    assert lines[0] == "start"
    main = [line.split()[1] for line in lines if line.startswith(" \u2192 ")]
    assert main[:5] == ["ValidatePayment", "CheckInventory", "CreateOrder", "SendEmail", "Success"]
    i = next(i for i, line in enumerate(lines) if "ValidatePayment  task" in line)
    assert "retry \u00d73, 2 s, backoff 2" in lines[i]
    assert lines[i + 1].strip() == "\u2514 on PaymentError \u2192 PaymentFailed"
    assert any(
        line.startswith("PaymentFailed ") and "fail PaymentValidationFailed" in line
        for line in lines
    )
    assert any(line.startswith("RefundPayment ") for line in lines)
    assert " \u2192 OrderFailed" in out
    assert out == diagram.text(JSONATA["order"])  # same flow in both flavours


def test_text_ascii_mode() -> None:
    out = diagram.text(JSONPATH["order"], ascii=True)
    assert out.isascii()
    assert (
        "-> ValidatePayment" in out
        and "retry x3" in out
        and "`- on PaymentError -> PaymentFailed" in out
    )


def test_text_branches_are_indented() -> None:
    out = diagram.text(JSONPATH["parallel_notifications"])
    lines = out.splitlines()
    par = next(i for i, line in enumerate(lines) if "ParallelTasks" in line)
    body = lines[par + 1 : par + 10]
    assert [line.strip() for line in body if "branch" in line] == [
        "\u2502 branch 1 of 3:",
        "\u2502 branch 2 of 3:",
        "\u2502 branch 3 of 3:",
    ]
    for name in ("SendEmail", "UpdateAnalytics", "NotifyWarehouse"):
        line = next(line for line in body if name + "  task" in line)
        assert line.startswith("   \u2502  \u2192 ")
    assert lines[-1] == " \u2192 end"
    image = diagram.text(JSONPATH["image_map"])
    assert "\u2502 each item:" in image and "\u2502  \u2192 UploadThumbnail" in image


def test_text_choice_and_loops() -> None:
    out = diagram.text(JSONPATH["order_size"])
    assert "\u251c if $.total > 1000 \u2192 ManagerApproval" in out
    assert "\u2514 otherwise \u2192 ExpressProcessing" in out
    loop = {
        "StartAt": "Poll",
        "States": {
            "Poll": {
                "Type": "Task",
                "Resource": "arn:aws:states:::lambda:invoke",
                "Parameters": {"FunctionName": "poll"},
                "Next": "Done?",
            },
            "Done?": {
                "Type": "Choice",
                "Choices": [{"Variable": "$.done", "BooleanEquals": True, "Next": "Finish"}],
                "Default": "Pause",
            },
            "Pause": {"Type": "Wait", "Seconds": 30, "Next": "Poll"},
            "Finish": {"Type": "Succeed"},
        },
    }
    text = diagram.text(loop)
    assert "\u2192 Poll  (see above)" in text
    assert len(re.findall(r"Poll +task poll", text)) == 1
    parse_mermaid(diagram.mermaid(loop))
    assert json.loads(json.dumps(loop)) == loop  # the renderers did not mutate the input


# --- Drawings of the article's workflows, rendered by Graphviz --------------------------------


def _article_workflows() -> list[Any]:
    from tests.conftest import FIXTURES
    from untangle.files import read_source
    from untangle.plan import plan
    from untangle.scan import ScanOptions, load_tree

    tree = load_tree([str(FIXTURES / "article")], ScanOptions(cache_dir=None))
    return [w for w in plan(tree.program, tree.templates, read_source) if w.asl is not None]


def _graphviz_json(dot_text: str) -> dict[str, Any]:
    import os

    if shutil.which("dot") is None:
        if os.environ.get("UNTANGLE_REQUIRE_DOT"):
            pytest.fail("Graphviz `dot` is required here (UNTANGLE_REQUIRE_DOT) but missing")
        pytest.skip("Graphviz `dot` is not installed")
    result = subprocess.run(
        ["dot", "-Tjson"], input=dot_text.encode(), capture_output=True, timeout=60, check=False
    )
    assert result.returncode == 0 and not result.stderr.strip(), result.stderr.decode()
    document: dict[str, Any] = json.loads(result.stdout)
    return document


def test_article_drawings_render_with_their_joins_connected() -> None:
    """Graphviz lays out every article workflow; in what it drew, every node but `start` and
    the legend is entered, and every node but the ends and the legend is left: no join or end
    floats apart."""
    from untangle.cli import choice_conditions

    workflows = _article_workflows()
    assert len(workflows) >= 20
    for workflow in workflows:
        drawn = _graphviz_json(diagram.dot(workflow.asl, choice_conditions(workflow.workflow)))
        nodes = {o["_gvid"]: o["name"] for o in drawn.get("objects", []) if "nodes" not in o}
        edges = [(e["tail"], e["head"]) for e in drawn.get("edges", [])]
        entered = {head for _, head in edges}
        left = {tail for tail, _ in edges}
        kinds = {n.id: n.kind for n in diagram.graph(workflow.asl).nodes}
        for gvid, name in nodes.items():
            kind = kinds[name]
            if kind not in ("start", "legend"):
                assert gvid in entered, (workflow.workflow.name, name)
            if kind not in ("end", "succeed", "fail", "legend"):
                assert gvid in left, (workflow.workflow.name, name)


def test_choice_edges_show_the_python_condition() -> None:
    conditions = {"CheckOrderSize": ('event["total"] > 1000', 'event["total"] > 100')}
    labels = [e.label for e in diagram.graph(JSONATA["order_size"], conditions).edges]
    assert 'event["total"] > 1000' in labels and 'event["total"] > 100' in labels
    assert not any("$states" in label for label in labels)
    # near miss: a count that does not match the rules keeps the ASL's own conditions
    wrong = {"CheckOrderSize": ('event["total"] > 1000',)}
    kept = [e.label for e in diagram.graph(JSONATA["order_size"], wrong).edges]
    assert 'event["total"] > 1000' not in kept


def test_the_lambda_service_retrier_is_a_legend_not_a_line_per_task() -> None:
    definition = {
        "StartAt": "A",
        "States": {
            "A": {
                "Type": "Task",
                "Resource": "arn:aws:states:::lambda:invoke",
                "Next": "B",
                "Retry": [_SERVICE_RETRIER],
            },
            "B": {
                "Type": "Task",
                "Resource": "arn:aws:states:::lambda:invoke",
                "End": True,
                "Retry": [_SERVICE_RETRIER, {"ErrorEquals": ["Timeout"], "MaxAttempts": 2}],
            },
        },
    }
    text = diagram.text(definition)
    assert text.count("Lambda service errors") == 1  # the legend
    assert text.count("\u21bb") == 3  # a mark on each Task, and the legend
    assert "retry \u00d72" in text  # a retrier of its own stays on its Task
    mermaid = diagram.mermaid(definition)
    assert mermaid.count("Lambda service errors") == 1 and "n_legend" in mermaid


_SERVICE_RETRIER = {
    "ErrorEquals": [
        "Lambda.ServiceException",
        "Lambda.AWSLambdaException",
        "Lambda.SdkClientException",
        "Lambda.TooManyRequestsException",
    ],
    "IntervalSeconds": 2,
    "MaxAttempts": 6,
    "BackoffRate": 2,
}


# --- Drawings of the article's workflows, parsed by Mermaid's own parser ---------------------

MERMAID_PARSER_INSTALL = (
    "npm install --no-save --prefix .untangle-node asl-validator@4.0.0 mermaid@11.12.2 jsdom@26.1.0"
)


def _mermaid_graphs(texts: list[str]) -> list[dict[str, Any]]:
    """What Mermaid's flowchart parser (in Node, with jsdom for its sanitizer) read from each
    text: its nodes, edges and subgraphs, or the parse error."""
    import os

    from tests.conftest import ROOT

    modules = ROOT / ".untangle-node" / "node_modules"
    node = shutil.which("node")
    if node is None or not (modules / "mermaid").is_dir() or not (modules / "jsdom").is_dir():
        why = "no Node.js" if node is None else "mermaid and jsdom not in .untangle-node"
        if os.environ.get("UNTANGLE_REQUIRE_MERMAID"):
            pytest.fail(f"Mermaid's parser is required here (UNTANGLE_REQUIRE_MERMAID): {why}")
        pytest.skip(f"Mermaid's parser is not available ({why}): {MERMAID_PARSER_INSTALL}")
    script = ROOT / "tests" / "node" / "mermaid_graph.mjs"
    result = subprocess.run(
        [node, str(script), str(modules)],
        input=json.dumps(texts).encode(),
        capture_output=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr.decode()
    parsed: list[dict[str, Any]] = json.loads(result.stdout)
    assert len(parsed) == len(texts)
    return parsed


def _loose_ends(parsed: dict[str, Any], kinds: dict[str, str]) -> list[str]:
    """Nodes Mermaid drew with no way in (all but `start` and the legend) or no way out (all
    but the ends and the legend): a join or an end floating apart."""
    entered = {dst for _, dst, _ in parsed["edges"]}
    left = {src for src, _, _ in parsed["edges"]}
    problems = []
    for node in parsed["nodes"]:
        kind = kinds.get(node, "?")
        if kind not in ("start", "legend") and node not in entered:
            problems.append(f"{node} ({kind}) is never entered")
        if kind not in ("end", "succeed", "fail", "legend") and node not in left:
            problems.append(f"{node} ({kind}) is never left")
    return problems


def test_article_mermaid_parses_with_its_joins_connected() -> None:
    """Mermaid's own parser reads every article workflow's diagram: the nodes and edges it
    understood are the diagram's, and every join and end is connected."""
    from untangle.cli import choice_conditions

    workflows = _article_workflows()
    assert len(workflows) >= 20
    texts = [diagram.mermaid(w.asl, choice_conditions(w.workflow)) for w in workflows]
    broken = texts[0].replace("-->", "--> -->", 1)  # near miss: the parser really checks
    parsed = _mermaid_graphs([*texts, broken])
    assert "error" in parsed[-1] and "Parse error" in parsed[-1]["error"]
    for workflow, text, drawn in zip(workflows, texts, parsed, strict=False):
        name = workflow.workflow.name
        assert "error" not in drawn, (name, drawn.get("error"), text)
        assert drawn["type"] == "flowchart-v2"
        model = diagram.graph(workflow.asl, choice_conditions(workflow.workflow))
        kinds = {n.id: n.kind for n in model.nodes}
        assert sorted(drawn["nodes"]) == sorted(kinds), name
        assert sorted((s, d) for s, d, _ in drawn["edges"]) == sorted(
            (e.src, e.dst) for e in model.edges
        ), name
        assert _loose_ends(drawn, kinds) == [], name


def test_a_loose_join_is_caught_in_what_mermaid_parsed() -> None:
    """Near miss for the check above: the same diagram without the edge out of the Parallel's
    join parses, and the check reports the join."""
    model = diagram.graph(JSONATA["parallel_notifications"])
    join = next(n.id for n in model.nodes if n.kind == "join")
    text = diagram.mermaid(JSONATA["parallel_notifications"])
    cut = "\n".join(line for line in text.splitlines() if not line.startswith(f"  {join} -")) + "\n"
    assert cut != text
    [whole, without] = _mermaid_graphs([text, cut])
    kinds = {n.id: n.kind for n in model.nodes}
    assert _loose_ends(whole, kinds) == []
    assert _loose_ends(without, kinds) == [
        f"{join} (join) is never left",
        "n_end (end) is never entered",
    ]
