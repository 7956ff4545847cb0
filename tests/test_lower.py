"""JSONPath lowering of computations (`untangle.workflow.lower.lower_for_jsonpath`) and the IR →
Python printer its new functions are written with (`untangle.workflow.python`).

Printer: every IR expression, printed, is run by Python on sample values and must give what the
original Python gave. Lowering: a value JSONPath renders stays where it is (the near misses);
one it cannot is computed before its state by a Pass (intrinsic functions) or by a new function.
"""

from __future__ import annotations

import json
from typing import Any

import pytest

from untangle.facts.model import Span
from untangle.workflow.asl import to_asl
from untangle.workflow.ir import (
    Arr,
    Assign,
    Choice,
    Expr,
    Fail,
    FunctionRef,
    Graph,
    Input,
    Lit,
    Obj,
    Op,
    Succeed,
    Task,
    Var,
    Wait,
    Workflow,
)
from untangle.workflow.lower import lower_for_jsonpath
from untangle.workflow.python import free_values, printed

ORDER = {"items": [{"sku": "a", "qty": 2}, {"sku": "b", "qty": 0}], "total": "12.5", "tag": " X "}
INVENTORY = {"missing": ["a", "b"], "available": False}

PRINTED = [
    pytest.param(
        Op("join", (Var("inventory", ("missing",)), Lit(", "))),
        "', '.join(inventory['missing'])",
        "a, b",
        id="join",
    ),
    pytest.param(
        Op(
            "comprehension",
            (
                Input(("items",)),
                Lit("i"),
                Var("i", ("sku",)),
                Op(">", (Var("i", ("qty",)), Lit(0))),
            ),
        ),
        "[i['sku'] for i in execution_input['items'] if (i['qty'] > 0)]",
        ["a"],
        id="filtering-comprehension",
    ),
    pytest.param(
        Op("comprehension", (Input(("items",)), Lit("i"), Var("i", ("qty",)), Lit(True))),
        "[i['qty'] for i in execution_input['items']]",
        [2, 0],
        id="mapping-comprehension",
    ),
    pytest.param(
        Op("number", (Input(("total",)),)), "float(execution_input['total'])", 12.5, id="float"
    ),
    pytest.param(
        Op("concat", (Lit("Out of stock: "), Op("count", (Var("inventory", ("missing",)),)))),
        "('Out of stock: ' + str(len(inventory['missing'])))",
        "Out of stock: 2",
        id="f-string",
    ),
    pytest.param(
        Op("json_string", (Obj((("ok", Lit(True)), ("n", Op("count", (Input(("items",)),))))),)),
        "json.dumps({'ok': True, 'n': len(execution_input['items'])})",
        '{"ok": true, "n": 2}',
        id="json-dumps-object",
    ),
    pytest.param(
        Op("default", (Input(("coupon",)), Lit("none"))),
        "execution_input.get('coupon', 'none')",
        "none",
        id="get-with-default",
    ),
    pytest.param(
        Op(
            "and",
            (Op("exists", (Input(("total",)),)), Op("not", (Var("inventory", ("available",)),))),
        ),
        "bool(('total' in execution_input) and (not inventory['available']))",
        True,
        id="and-of-conditions",
    ),
    pytest.param(Op("trim", (Input(("tag",)),)), "execution_input['tag'].strip()", "X", id="strip"),
    pytest.param(
        Op("if", (Var("inventory", ("available",)), Lit("ship"), Lit("refund"))),
        "('ship' if inventory['available'] else 'refund')",
        "refund",
        id="conditional",
    ),
    pytest.param(
        Op("concat", (Op("env", (Lit("STAGE"),)), Lit("-"), Arr((Lit(1),)))),
        "(str(env_stage) + '-' + str([1]))",
        "prod-[1]",
        id="environment-value",
    ),
]


@pytest.mark.parametrize(("expr", "python", "expected"), PRINTED)
def test_printed_python_computes_what_the_original_did(
    expr: Expr, python: str, expected: Any
) -> None:
    assert printed(expr) == python
    values = {"execution_input": ORDER, "inventory": INVENTORY, "env_stage": "prod", "json": json}
    params = dict(free_values(expr))
    assert set(params) <= set(values) - {"json"}
    assert eval(python, {}, values) == expected


def test_comprehension_variable_is_not_a_parameter() -> None:
    expr = Op("comprehension", (Input(("items",)), Lit("i"), Var("i"), Lit(True)))
    assert dict(free_values(expr)) == {"execution_input": Input(())}


SPAN = Span(7, 4, 7, 40)
SEND = FunctionRef("${SendFunctionArn}", "send")


def _workflow(*states: Any) -> Workflow:
    return Workflow("W", "app.handler", "app.py", Graph(states[0].name, states), "converted")


def _lowered(*states: Any) -> tuple[Workflow, dict[str, Any]]:
    workflow = lower_for_jsonpath(_workflow(*states))
    return workflow, to_asl(workflow, "jsonpath")["States"]


STAYS = [
    pytest.param(Input(("orderId",)), id="path"),
    pytest.param(Obj((("id", Input(("orderId",))), ("n", Lit(1)))), id="object-of-paths"),
    pytest.param(Op("count", (Input(("items",)),)), id="len-of-a-path"),
    pytest.param(Op("concat", (Lit("order "), Input(("orderId",)))), id="f-string-of-a-path"),
    pytest.param(Op("json_string", (Var("created"),)), id="json-dumps-of-a-variable"),
    pytest.param(Op("number", (Op("env", (Lit("DELAY"),)),)), id="int-of-an-environment-value"),
]


@pytest.mark.parametrize("payload", STAYS)
def test_what_jsonpath_renders_stays_in_place(payload: Expr) -> None:
    task = Task("Send", SEND, Obj((("value", payload),)), None, "Done", SPAN)
    workflow, states = _lowered(task, Succeed("Done", Lit(None), SPAN))
    assert workflow.extracted == ()
    assert set(states) == {"Initialize", "Send", "Done"}


def test_an_object_inside_json_dumps_is_built_by_a_pass_first() -> None:
    body = Op("json_string", (Obj((("message", Lit("ok")), ("order", Var("created")))),))
    workflow, states = _lowered(
        Task("Send", SEND, Obj((("body", body),)), None, "Done", SPAN),
        Succeed("Done", Lit(None), SPAN),
    )
    assert workflow.extracted == ()
    assert states["Initialize"]["Next"] == "ComputeObject"
    compute = states["ComputeObject"]
    assert compute["Type"] == "Pass" and compute["Next"] == "Send"
    assert compute["Parameters"] == {"value": {"message": "ok", "order.$": "$.vars.created.value"}}
    payload = states["Send"]["Parameters"]["Payload"]
    assert payload == {"body.$": "States.JsonToString($.vars.object.value)"}


def test_a_join_becomes_a_new_function_before_the_state_that_needs_it() -> None:
    cause = Op(
        "concat", (Lit("Out of stock: "), Op("join", (Var("inventory", ("missing",)), Lit(", "))))
    )
    workflow, states = _lowered(
        Assign("Start", (("inventory", Input(("inventory",))),), "Failed", SPAN),
        Fail("Failed", "OutOfStockError", cause, SPAN),
    )
    [extracted] = workflow.extracted
    assert (extracted.function, extracted.params, extracted.target) == (
        "compute_inventory_text",
        ("inventory",),
        "inventory_text",
    )
    assert extracted.expression == "', '.join(inventory['missing'])"
    assert "JSONPath cannot compute" in workflow.notes[-1].message
    assert [f.display for f in workflow.functions] == ["compute_inventory_text"]
    compute = states["ComputeInventoryText"]
    assert compute["Parameters"] == {
        "FunctionName": "${ComputeInventoryTextFunctionArn}",
        "Payload": {"inventory.$": "$.vars.inventory.value"},
    }
    assert states["Start"]["Next"] == "ComputeInventoryText"
    assert compute["Next"] == "Failed"
    assert states["Failed"]["CausePath"] == (
        "States.Format('Out of stock: {}', $.vars.inventory_text.value)"
    )


def test_a_choice_on_a_computed_value_compares_a_variable_computed_once() -> None:
    total = Op("number", (Input(("total",)),))
    workflow, states = _lowered(
        Choice(
            "Check",
            ((Op(">", (total, Lit(1000))), "Big"), (Op(">", (total, Lit(100))), "Medium")),
            "Small",
            SPAN,
        ),
        Succeed("Big", Lit("big"), SPAN),
        Succeed("Medium", Lit("medium"), SPAN),
        Succeed("Small", Lit("small"), SPAN),
    )
    [extracted] = workflow.extracted
    assert extracted.expression == "float(execution_input['total'])"
    assert states["Initialize"]["Next"] == "ComputeTotalNumber"
    rules = states["Check"]["Choices"]
    assert [r["Variable"] for r in rules] == ["$.vars.total_number.value"] * 2


def test_a_whole_assignment_jsonpath_cannot_compute_becomes_the_task() -> None:
    failed = Op(
        "comprehension",
        (Var("results"), Lit("r"), Var("r"), Op("!=", (Var("r", ("status",)), Lit("OK")))),
    )
    workflow, states = _lowered(
        Assign("Results", (("results", Input(("results",))),), "SetFailed", SPAN),
        Assign("SetFailed", (("failed", failed),), "Done", SPAN),
        Succeed("Done", Obj((("failed", Op("count", (Var("failed"),))),)), SPAN),
    )
    [extracted] = workflow.extracted
    assert extracted.target == "failed"
    assert states["SetFailed"]["Type"] == "Task"
    assert states["SetFailed"]["ResultPath"] == "$.vars.failed"
    assert states["Done"]["Parameters"] == {"failed.$": "States.ArrayLength($.vars.failed.value)"}


def test_a_computed_wait_is_whole_seconds() -> None:
    seconds = Op("*", (Input(("days",)), Lit(86400)))
    workflow, states = _lowered(
        Wait("Sleep", seconds, None, "Done", SPAN), Succeed("Done", Lit(None), SPAN)
    )
    [extracted] = workflow.extracted
    # Wait takes whole seconds: a fraction waits the next one, as in JSONata ($ceil)
    assert extracted.expression == "int(-(-((execution_input['days'] * 86400)) // 1))"
    assert states["Sleep"]["SecondsPath"] == "$.vars.days_computed.value"


def test_a_name_in_use_is_not_reused() -> None:
    workflow = lower_for_jsonpath(
        _workflow(
            Assign("A", (("inventory_text", Lit("taken")),), "B", SPAN),
            Assign(
                "B",
                (
                    (
                        "x",
                        Op("join", (Var("inventory"), Lit(","))),
                    ),
                ),
                "C",
                SPAN,
            ),
            Succeed("C", Var("inventory_text"), SPAN),
        )
    )
    [extracted] = workflow.extracted
    assert extracted.target == "x"
    assert to_asl(workflow, "jsonpath")["States"]["C"]["Parameters"] == {
        "value.$": "$.vars.inventory_text.value"
    }


# --- the truth of a value: Python's bool(), exactly --------------------------------------------

FETCH = FunctionRef("${FetchFunctionArn}", "fetch")


def _truth_machine(condition: Expr) -> tuple[Workflow, dict[str, Any]]:
    workflow = lower_for_jsonpath(
        _workflow(
            Task("Fetch", FETCH, Input(()), "got", "Check", SPAN),
            Choice("Check", ((condition, "Yes"),), "No", SPAN),
            Succeed("Yes", Lit("yes"), SPAN),
            Succeed("No", Lit("no"), SPAN),
        )
    )
    return workflow, to_asl(workflow, "jsonpath")


TRUTH_VALUES = [[], {}, [0], [[]], {"a": 0}, 0, 0.0, 1, "", "x", None, False, True]


@pytest.mark.parametrize("value", TRUTH_VALUES, ids=json.dumps)
def test_the_truth_of_a_function_result_is_pythons_on_the_engine(value: Any) -> None:
    from untangle.engine.machine import run_machine

    _, definition = _truth_machine(Op("truthy", (Var("got"),)))
    run = run_machine(definition, {"FetchFunctionArn": lambda event, context: value}, {})
    assert run.status == "SUCCEEDED", run
    assert run.output == ("yes" if value else "no")


def test_an_empty_list_or_object_is_tested_by_its_json_text() -> None:
    _, definition = _truth_machine(Op("truthy", (Var("got"),)))
    states = definition["States"]
    assert states["Fetch"]["Next"] == "ComputeGotJson"
    assert states["ComputeGotJson"]["Parameters"] == {
        "value.$": "States.JsonToString($.vars.got.value)"
    }


def test_a_variable_only_ever_a_scalar_needs_no_json_text() -> None:
    # near miss: `done = False` … `done = True`: a Choice rule tests it as it is
    workflow = lower_for_jsonpath(
        _workflow(
            Assign("Start", (("done", Lit(False)),), "Check", SPAN),
            Choice("Check", ((Op("truthy", (Var("done"),)), "Yes"),), "No", SPAN),
            Succeed("Yes", Lit("yes"), SPAN),
            Succeed("No", Lit("no"), SPAN),
        )
    )
    states = to_asl(workflow, "jsonpath")["States"]
    assert set(states) == {"Initialize", "Start", "Check", "Yes", "No"}


def test_the_truth_of_a_path_behind_and_is_refused_not_guessed() -> None:
    # `"items" in got and got["items"]`: the JSON text would be read before the `in` test
    from untangle.workflow.asl import NotExpressible

    condition = Op(
        "and", (Op("exists", (Var("got", ("items",)),)), Op("truthy", (Var("got", ("items",)),)))
    )
    with pytest.raises(NotExpressible, match="after `and` / `or`"):
        _truth_machine(condition)
    # a whole variable is always there: its text is made before the Choice
    _truth_machine(Op("and", (Op("exists", (Input(("x",)),)), Op("truthy", (Var("got"),)))))


@pytest.mark.parametrize("value", TRUTH_VALUES, ids=json.dumps)
def test_the_truth_of_a_value_is_pythons_in_jsonata_too(value: Any) -> None:
    # $boolean([0]) is false in JSONata: a list is true when it has an item
    from untangle.engine.machine import run_machine

    workflow = _workflow(
        Choice("Check", ((Op("truthy", (Input(("x",)),)), "Yes"),), "No", SPAN),
        Succeed("Yes", Lit("yes"), SPAN),
        Succeed("No", Lit("no"), SPAN),
    )
    run = run_machine(to_asl(workflow, "jsonata"), {}, {"x": value})
    assert run.output == ("yes" if value else "no")


# --- KeyError guards only where a key may be missing (JSONata) ---------------------------------


def _payload_of_send(*setters: Any) -> str:
    states = (
        *setters,
        Task("Send", SEND, Obj((("status", Var("result", ("status",))),)), None, "Done", SPAN),
        Succeed("Done", Lit(None), SPAN),
    )
    definition = to_asl(_workflow(*states), "jsonata")
    payload: str = definition["States"]["Send"]["Arguments"]["Payload"]
    return payload


def test_a_key_of_a_dict_the_handler_built_needs_no_guard() -> None:
    built = _payload_of_send(
        Assign("Ok", (("result", Obj((("status", Lit("ok")),))),), "Send", SPAN)
    )
    assert built == '{% {"status": $result.status} %}'


def test_a_key_of_a_payload_keeps_its_guard() -> None:
    # near miss: a function's payload may lack any key
    fetched = _payload_of_send(Task("Fetch", FETCH, Input(()), "result", "Send", SPAN))
    assert "KeyError: 'status'" in fetched


def test_a_key_one_of_the_dicts_lacks_keeps_its_guard() -> None:
    # near miss: set to {"status": …} on one path and {"state": …} on another
    mixed = _payload_of_send(
        Assign("A", (("result", Obj((("status", Lit("ok")),))),), "B", SPAN),
        Assign("B", (("result", Obj((("state", Lit("ok")),))),), "Send", SPAN),
    )
    assert "KeyError: 'status'" in mixed
