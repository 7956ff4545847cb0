"""The output is what a Step Functions engineer writes by hand.

- A Map iteration or a Parallel branch ends on its last state (`End`, the branch's result as that
  state's output), not on a Succeed after it (`untangle.workflow.passes.end_branches`).
- Every Lambda Task retries Lambda's transient errors, throttling included, as boto3 did.
- No state is named like an ASL field (`Next` → `NextStep`): asl-validator rejects some.

Each table holds the cases that change and the near misses that must not, with readable ids.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from untangle.engine.machine import Engine
from untangle.facts.model import Span
from untangle.plan import PlanOptions, plan
from untangle.scan import ScanOptions, load_tree
from untangle.validate import asl_errors, find_asl_validator
from untangle.workflow.asl import to_asl
from untangle.workflow.ir import (
    ASL_FIELDS,
    Assign,
    CatchRule,
    Choice,
    Expr,
    Fail,
    FunctionRef,
    Graph,
    Input,
    Lit,
    Map,
    Obj,
    Op,
    Operator,
    Parallel,
    Result,
    RetryRule,
    State,
    Succeed,
    Task,
    Var,
    Wait,
    Workflow,
    expr_text,
    output_of,
    state_name,
)
from untangle.workflow.lower import lower_for_jsonpath
from untangle.workflow.passes import end_branches, run_passes

SPAN = Span(3, 5, 3, 40)
LANGUAGES = ("jsonata", "jsonpath")


def _task(name: str, assign: str | None, following: str | None, **extra: Any) -> Task:
    function = FunctionRef(f"${{{name}FunctionArn}}", name.lower())
    return Task(name, function, Var("item"), assign, following, SPAN, **extra)


def _done(output: Expr) -> Succeed:
    return Succeed("ItemDone", output, SPAN)


def _in_a_map(*processor: State) -> Workflow:
    """A Map over event["items"] (each item `$item`) with this processor, its list stored in
    `$results` and returned."""
    each = Map(
        "ProcessEachItem",
        Input(("items",)),
        "item",
        Graph(processor[0].name, processor),
        None,
        "results",
        10,
        "Done",
        SPAN,
    )
    done = Succeed("Done", Obj((("results", Var("results")),)), SPAN)
    return Workflow("W", "app.handler", "app.py", Graph(each.name, (each, done)), "converted")


def _processor(workflow: Workflow) -> Graph:
    assert workflow.graph is not None
    each = workflow.graph.get("ProcessEachItem")
    assert isinstance(each, Map)
    return each.processor


PRICE = _task("Price", "priced", "ItemDone")
INNER = Map(
    "ProcessEachPart",
    Var("item", ("parts",)),
    "part",
    Graph("Part", (_task("Part", None, None),)),
    None,
    "inner",
    5,
    "ItemDone",
    SPAN,
)
BOTH = Parallel(
    "RunBoth",
    (Graph("Left", (_task("Left", None, None),)), Graph("Right", (_task("Right", None, None),))),
    ("left", "right"),
    "ItemDone",
    SPAN,
)
# the original carried on with the error payload as the result (the carry_on pass)
CARRY_ON = CatchRule(("States.TaskFailed",), "ItemDone", "priced", result=True)
TEXT = Op(Operator.CONCAT, (Lit("item "), Var("item", ("id",))))

# (processor, {language: (the state that now ends the iteration, its output) or None when the
# Succeed stays the end}, whether the Succeed is still in the processor)
END_BRANCHES = [
    pytest.param(
        (PRICE, _done(Var("priced"))),
        {"jsonata": ("Price", "result"), "jsonpath": ("Price", "result")},
        False,
        id="task-result",
    ),
    pytest.param(
        (PRICE, _done(Var("priced", ("total",)))),
        {"jsonata": ("Price", 'result["total"]'), "jsonpath": ("Price", 'result["total"]')},
        False,
        id="task-part-of-result",
    ),
    pytest.param(
        (PRICE, _done(Obj((("total", Var("priced", ("total",))), ("kind", Lit("priced")))))),
        {
            "jsonata": ("Price", '{"total": result["total"], "kind": "priced"}'),
            "jsonpath": ("Price", '{"total": result["total"], "kind": "priced"}'),
        },
        False,
        id="task-result-built-into-an-object",
    ),
    pytest.param(
        (PRICE, _done(Var("item", ("id",)))),
        {"jsonata": ("Price", '$item["id"]'), "jsonpath": ("Price", '$item["id"]')},
        False,
        id="task-then-another-path",
    ),
    pytest.param(
        (PRICE, _done(Obj((("item", Var("item")), ("total", Var("priced", ("total",))))))),
        {"jsonata": ("Price", '{"item": $item, "total": result["total"]}'), "jsonpath": None},
        False,
        id="near-miss-jsonpath-result-and-state-data",
    ),
    pytest.param(
        (
            _task("Price", "priced", "ItemDone", catch=(CARRY_ON,)),
            _done(Var("priced")),
        ),
        {"jsonata": ("Price", "result"), "jsonpath": ("Price", "result")},
        True,
        id="task-whose-catch-still-goes-to-the-succeed",
    ),
    pytest.param(
        (Assign("Label", (("label", TEXT),), "ItemDone", SPAN), _done(Var("label"))),
        {
            "jsonata": ("Label", 'concat("item ", $item["id"])'),
            "jsonpath": ("Label", 'concat("item ", $item["id"])'),
        },
        False,
        id="pass-value",
    ),
    pytest.param(
        (Assign("Label", (("label", TEXT),), "ItemDone", SPAN), _done(Var("label", ("k",)))),
        {"jsonata": None, "jsonpath": None},
        True,
        id="near-miss-part-of-a-computed-value",
    ),
    pytest.param(
        (Wait("Pause", Lit(5), None, "ItemDone", SPAN), _done(Var("item"))),
        {"jsonata": ("Pause", "$item"), "jsonpath": ("Pause", "$item")},
        False,
        id="wait-then-a-path",
    ),
    pytest.param(
        (Wait("Pause", Lit(5), None, "ItemDone", SPAN), _done(Obj((("item", Var("item")),)))),
        {"jsonata": ("Pause", '{"item": $item}'), "jsonpath": None},
        False,
        id="near-miss-jsonpath-wait-then-an-object",
    ),
    pytest.param(
        (INNER, _done(Var("inner"))),
        {"jsonata": ("ProcessEachPart", "result"), "jsonpath": ("ProcessEachPart", "result")},
        False,
        id="nested-map",
    ),
    pytest.param(
        (BOTH, _done(Obj((("l", Var("left")), ("r", Var("right", ("x",))))))),
        {
            "jsonata": ("RunBoth", '{"l": result[0], "r": result[1]["x"]}'),
            "jsonpath": ("RunBoth", '{"l": result[0], "r": result[1]["x"]}'),
        },
        False,
        id="parallel-results",
    ),
    pytest.param(
        (
            _task("Price", "priced", "ItemDone"),
            _done(
                Op(
                    Operator.COMPREHENSION,
                    (Var("priced"), Lit("priced"), Var("priced", ("v",)), Lit(True)),
                )
            ),
        ),
        {
            # the comprehension's own `priced` (its item) is not the task's
            "jsonata": ("Price", 'comprehension(result, "priced", $priced["v"], true)'),
            "jsonpath": None,
        },
        False,
        id="comprehension-item-named-as-the-variable",
    ),
    pytest.param(
        (
            Choice("Check", ((Op(Operator.TRUTHY, (Var("item"),)), "ItemDone"),), "Bad", SPAN),
            _done(Var("item")),
            Fail("Bad", "Bad", None, SPAN),
        ),
        {"jsonata": None, "jsonpath": None},
        True,
        id="near-miss-choice-before-the-succeed",
    ),
    pytest.param(
        (_done(Var("item")),),
        {"jsonata": None, "jsonpath": None},
        True,
        id="near-miss-the-succeed-is-the-whole-iteration",
    ),
]


def _ended(graph: Graph) -> tuple[str, str] | None:
    found = [
        (s.name, expr_text(output))
        for s in graph.states
        if not isinstance(s, Succeed) and (output := output_of(s)) is not None
    ]
    assert len(found) <= 1, found
    return found[0] if found else None


@pytest.mark.parametrize("language", LANGUAGES)
@pytest.mark.parametrize(("processor", "expected", "succeed_stays"), END_BRANCHES)
def test_end_branches(
    processor: tuple[State, ...],
    expected: dict[str, tuple[str, str] | None],
    succeed_stays: bool,
    language: str,
) -> None:
    before = _in_a_map(*processor)
    after = end_branches(before, language)
    graph = _processor(after)
    assert _ended(graph) == expected[language]
    if expected[language] is None:
        assert after == before
        return
    assert ("ItemDone" in {s.name for s in graph.states}) == succeed_stays
    name, _ = expected[language]
    ends = graph.get(name)
    # it ends the iteration and stores nothing more
    assert output_of(ends) is not None
    assert not getattr(ends, "next", None)
    assert getattr(ends, "assign", None) in (None, (None, None))
    assert getattr(ends, "values", ()) == ()
    # the top level still ends on its Succeed
    assert after.graph is not None and isinstance(after.graph.get("Done"), Succeed)


def test_end_branches_definitions_are_valid() -> None:
    """Every case, in both languages, renders to a definition asl-validator accepts, with a
    Succeed in the iteration only where one stays."""
    definitions = []
    for case in END_BRANCHES:
        processor, expected, succeed_stays = case.values
        for language in LANGUAGES:
            workflow = _in_a_map(*processor)
            if language == "jsonpath":  # as the passes run
                workflow = lower_for_jsonpath(workflow)
            definition = to_asl(end_branches(workflow, language), language)
            states = definition["States"]["ProcessEachItem"]["ItemProcessor"]["States"]
            if expected[language] is not None and not succeed_stays:
                # JSONPath renders a Succeed as a Pass
                assert "ItemDone" not in states, (case.id, language, states)
                assert "Succeed" not in {state["Type"] for state in states.values()}
            definitions.append(((case.id, language), definition))
    errors = asl_errors([d for _, d in definitions])
    assert {name: e for (name, _), e in zip(definitions, errors) if e} == {}


@pytest.mark.parametrize(
    ("language", "ends"),
    [
        pytest.param("jsonata", {"Output": "{% $states.result.Payload %}"}, id="jsonata"),
        pytest.param("jsonpath", {"OutputPath": "$.Payload"}, id="jsonpath"),
    ],
)
def test_independent_tasks_run_in_parallel_branches_that_end_on_them(
    language: str, ends: dict[str, str]
) -> None:
    """The optimizer's Parallel: each branch is one Task whose result is the branch's."""
    first = Task("Price", FunctionRef("${PriceFunctionArn}", "price"), Input(), "a", "Tax", SPAN)
    second = Task("Tax", FunctionRef("${TaxFunctionArn}", "tax"), Input(), "b", "Done", SPAN)
    done = Succeed("Done", Obj((("a", Var("a")), ("b", Var("b")))), SPAN)
    graph = Graph("Price", (first, second, done))
    workflow = Workflow("W", "app.handler", "app.py", graph, "converted")
    planned, optimizations = run_passes(workflow, language)
    assert optimizations
    assert planned.graph is not None
    [parallel] = [s for s in planned.graph.states if isinstance(s, Parallel)]
    assert parallel.assign == ("a", "b")
    for branch in parallel.branches:
        [task] = branch.states
        assert isinstance(task, Task)
        assert (task.assign, task.next, task.output) == (None, None, Result())
    definition = to_asl(planned, language)
    [rendered] = [s for s in definition["States"].values() if s["Type"] == "Parallel"]
    for branch in rendered["Branches"]:
        [task] = branch["States"].values()
        assert {k: task[k] for k in ends} == ends
        assert task["End"] is True
        assert not {"Assign", "ResultPath", "ResultSelector"} & set(task)
    assert asl_errors([definition]) == [[]]
    functions = {
        "PriceFunctionArn": lambda event, context: {"price": event["x"]},
        "TaxFunctionArn": lambda event, context: {"tax": event["x"] * 2},
    }
    with Engine() as engine:
        run = engine.run(definition, functions, {"x": 3})
    assert (run.status, run.output) == ("SUCCEEDED", {"a": {"price": 3}, "b": {"tax": 6}})


def test_outside_branches_the_succeed_stays() -> None:
    task = Task(
        "Price", FunctionRef("${PriceFunctionArn}", "price"), Input(), "priced", "Done", SPAN
    )
    done = Succeed("Done", Var("priced"), SPAN)
    workflow = Workflow("W", "app.handler", "app.py", Graph("Price", (task, done)), "converted")
    assert end_branches(workflow, "jsonata") == workflow


# --- the default retrier --------------------------------------------------------------------------

# AWS's best practice for lambda:invoke ("Handle Lambda service exceptions": these four, every 2 s,
# 6 attempts, backoff 2) and throttling, which Workflow Studio's default retrier adds
LAMBDA_TRANSIENT = [
    "Lambda.ServiceException",
    "Lambda.AWSLambdaException",
    "Lambda.SdkClientException",
    "Lambda.ClientExecutionTimeoutException",
    "Lambda.TooManyRequestsException",
]
BOTO_ERRORS = LAMBDA_TRANSIENT[:3] + LAMBDA_TRANSIENT[4:]  # `except ClientError`

# the handler's own retry rules → the ErrorEquals of the Task's retriers, in order: the
# handler's own first (the first retrier naming an error decides), then the Lambda service
# retrier for the transient errors they leave, then catch-alls
OTHER_TRANSIENT = [e for e in LAMBDA_TRANSIENT if e != "Lambda.TooManyRequestsException"]
RETRIES = [
    pytest.param((), [LAMBDA_TRANSIENT], id="no-rule-of-its-own"),
    pytest.param(
        (RetryRule(("Lambda.TooManyRequestsException",), 1, 4, 2.0, jitter=True),),
        [["Lambda.TooManyRequestsException"], OTHER_TRANSIENT],
        id="a-throttling-rule-keeps-its-own-timing",
    ),
    pytest.param(
        (RetryRule((*BOTO_ERRORS, "States.TaskFailed"), 10, 4, 2.0),),
        [[*BOTO_ERRORS, "States.TaskFailed"], ["Lambda.ClientExecutionTimeoutException"]],
        id="client-error-and-function-error",
    ),
    pytest.param(
        (RetryRule(("OutOfStock",), 1, 3, 1.0),),
        [["OutOfStock"], LAMBDA_TRANSIENT],
        id="near-miss-an-error-of-the-function",
    ),
    pytest.param(
        (RetryRule(("States.ALL",), 1, 3, 1.0), RetryRule(("Timeout",), 5, 2, 1.0)),
        [["Timeout"], LAMBDA_TRANSIENT, ["States.ALL"]],
        id="near-miss-catch-all-stays-last",
    ),
]


@pytest.mark.parametrize("language", LANGUAGES)
@pytest.mark.parametrize(("rules", "expected"), RETRIES)
def test_every_lambda_task_retries_lambdas_transient_errors(
    rules: tuple[RetryRule, ...], expected: list[list[str]], language: str
) -> None:
    task = Task(
        "Price", FunctionRef("${PriceFunctionArn}", "price"), Input(), None, None, SPAN, retry=rules
    )
    workflow = Workflow("W", "app.handler", "app.py", Graph("Price", (task,)), "converted")
    definition = to_asl(workflow, language)
    [state] = [s for s in definition["States"].values() if s["Type"] == "Task"]
    assert [r["ErrorEquals"] for r in state["Retry"]] == expected
    retried = {
        e for r in state["Retry"] if "States.ALL" not in r["ErrorEquals"] for e in r["ErrorEquals"]
    }
    assert set(LAMBDA_TRANSIENT) <= retried  # every transient Lambda error is retried
    assert asl_errors([definition]) == [[]]


def test_every_lambda_task_of_the_goldens_retries_every_transient_error() -> None:
    goldens = Path(__file__).resolve().parent / "golden" / "plan"
    tasks = []

    def walk(machine: dict[str, Any]) -> None:
        for state in machine["States"].values():
            if state.get("Resource") == "arn:aws:states:::lambda:invoke":
                tasks.append(state)
            for branch in state.get("Branches", []):
                walk(branch)
            if "ItemProcessor" in state:
                walk(state["ItemProcessor"])

    for path in sorted(goldens.glob("*/*.asl.json")):
        for machine in json.loads(path.read_text(encoding="utf-8")):
            if machine:
                walk(machine)
    assert len(tasks) > 100
    for task in tasks:
        retried = {e for retrier in task["Retry"] for e in retrier["ErrorEquals"]}
        assert set(LAMBDA_TRANSIENT) <= retried, task["Retry"]


# --- state names are never ASL field names -------------------------------------------------------

STATE_NAMES = [
    *(
        pytest.param(field, f"{field}Step", id=field)
        for field in (
            *("Next", "End", "Type", "States", "StartAt", "Default", "Choices", "Catch"),
            *("Retry", "Parameters", "Arguments", "Output", "Assign", "Comment", "Branches"),
            *("Iterator", "Resource", "Result", "Items", "Error", "Cause", "Seconds"),
        )
    ),
    # near misses: a field's name within a longer one, another case, a state type's name
    pytest.param("NextOrder", "NextOrder", id="near-miss-longer"),
    pytest.param("Ends", "Ends", id="near-miss-plural"),
    pytest.param("next", "next", id="near-miss-lower-case"),
    pytest.param("NEXT", "NEXT", id="near-miss-upper-case"),
    pytest.param("Map", "Map", id="near-miss-state-type"),
    pytest.param("Done", "Done", id="near-miss-done"),
]


@pytest.mark.parametrize(("base", "expected"), STATE_NAMES)
def test_state_name(base: str, expected: str) -> None:
    assert state_name(base) == expected


def test_asl_fields_hold_every_field_asl_validator_knows() -> None:
    """Every property name of asl-validator's schemas (but `Ref`, a CloudFormation extension
    inside Resource) is one no state is named."""
    schemas = find_asl_validator() / "src" / "schemas"
    found: set[str] = set()

    def walk(node: Any) -> None:
        if isinstance(node, dict):
            if isinstance(node.get("properties"), dict):
                found.update(node["properties"])
            for value in node.values():
                walk(value)
        elif isinstance(node, list):
            for value in node:
                walk(value)

    for path in schemas.glob("*.json"):
        walk(json.loads(path.read_text(encoding="utf-8")))
    assert len(found) > 100
    assert found - {"Ref"} <= ASL_FIELDS


def _plan_app(root: Path, source: str, language: str) -> list[Any]:
    (root / "app.py").write_text(source, encoding="utf-8")
    tree = load_tree([str(root)], ScanOptions(cache_dir=None))
    return plan(
        tree.program,
        tree.templates,
        lambda p: Path(p).read_text(encoding="utf-8"),
        PlanOptions(query_language=language),
    )


FIELD_NAMED_FUNCTIONS = """\
import json
import boto3

lam = boto3.client("lambda")


def call(name, payload):
    response = lam.invoke(FunctionName=name, Payload=json.dumps(payload))
    return json.loads(response["Payload"].read())


def lambda_handler(event, context):
    step = call("next", event)
    end = call("end", step)
    kind = call("type", end)
    options = call("choices", kind)
    if options["go"]:
        call("next-step", options)
    for item in event["items"]:
        call("states", item)
    return options
"""


def _state_names(machine: dict[str, Any]) -> list[str]:
    names: list[str] = []
    for name, state in machine["States"].items():
        names.append(name)
        for branch in state.get("Branches", []):
            names += _state_names(branch)
        if "ItemProcessor" in state:
            names += _state_names(state["ItemProcessor"])
    return names


def test_functions_named_like_asl_fields_give_valid_machines(tmp_path: Path) -> None:
    definitions = []
    for language in LANGUAGES:
        root = tmp_path / language
        root.mkdir()
        [planned] = _plan_app(root, FIELD_NAMED_FUNCTIONS, language)
        assert planned.asl is not None, planned.workflow.reasons
        names = _state_names(planned.asl)
        assert not set(names) & ASL_FIELDS, names
        # `next` → NextStep, and the function `next-step` then NextStep2
        assert {"NextStep", "EndStep", "TypeStep", "ChoicesStep", "StatesStep"} <= set(names)
        assert "NextStep2" in names
        definitions.append(planned.asl)
    assert asl_errors(definitions) == [[], []]
