"""Cost and latency estimates, checked against figures computed by hand."""

from __future__ import annotations

import copy
import itertools
from typing import Any

import pytest

from tests.asl_examples import ALL, JSONATA, JSONPATH
from untangle.render import cost
from untangle.render.cost import CostInputs, FunctionProfile, Pricing

FLAVOURS = [JSONPATH, JSONATA]

# Hand-computed with the default Pricing, 100,000 executions, 200 ms / 128 MB functions:
#   one Lambda call:  requests 100,000 x $0.20/1M                      = $0.02
#                     duration 0.2 s x 0.125 GB x 100,000 = 2,500 GB-s
#                     2,500 x $0.0000166667                          = $0.04166675
#                     together                                       = $0.06166675
LAMBDA_CALL = 0.02 + 0.04166675


def starter(waits_ms: float, executions: int = 100_000, memory_mb: int = 128) -> float:
    """The starter Lambda migrate keeps (128 MB): 50 ms of its own, plus the run it waits for
    (an Express execution; nothing for Standard). Requests $0.20/1M; $0.0000166667/GB-s."""
    seconds = (50 + waits_ms) / 1000
    return executions * (0.20 / 1_000_000 + seconds * memory_mb / 1024 * 0.0000166667)


# Standard: 100,000 x ($0.0000002 + 0.05 s x 0.125 GB x $0.0000166667) = $0.0304166875
STANDARD_STARTER = starter(0)


def lambda_task(function: str, **rest: Any) -> dict[str, Any]:
    return {
        "Type": "Task",
        "Resource": "arn:aws:states:::lambda:invoke",
        "Parameters": {"FunctionName": f"${{{function}FunctionArn}}", "Payload.$": "$"},
        **rest,
    }


@pytest.mark.parametrize("flavour", FLAVOURS)
def test_hello_world_by_hand(flavour: dict[str, dict[str, Any]]) -> None:
    e = cost.estimate(flavour["hello_world"], CostInputs())
    # before: the orchestrator waits 200 ms at 128 MB = the same as one call, plus the callee
    assert e.orchestrator_monthly_usd == pytest.approx(LAMBDA_CALL)
    assert e.callees_monthly_usd == pytest.approx(LAMBDA_CALL)
    assert e.before_monthly_usd == pytest.approx(0.1233335)
    assert e.before_possible
    # Standard: 1 transition x 100,000 x $0.025/1,000 = $2.50, + callee
    assert e.transitions_per_execution == 1
    assert e.after_standard_monthly_usd == pytest.approx(2.5 + LAMBDA_CALL + STANDARD_STARTER)
    # Express: 100,000 x $1/1M = $0.10; 0.2 s x 0.0625 GB x 100,000 = 1,250 GB-s x $0.00001667
    # = $0.0208375; + callee; + the starter waiting 50 + 200 ms: $0.02 + 3,125 GB-s = $0.0720834
    assert e.after_express_monthly_usd == pytest.approx(
        0.10 + 0.0208375 + LAMBDA_CALL + starter(200)
    )
    assert e.after_express_monthly_usd == pytest.approx(0.18250425 + 0.0720834375)
    assert e.latency_before_ms == e.latency_after_ms == 200
    assert e.recommendation == "Express"
    assert e.after_monthly_usd == e.after_express_monthly_usd
    assert "short" in e.reason and "cheaper than Standard" in e.reason


@pytest.mark.parametrize("flavour", FLAVOURS)
def test_reminder_by_hand(flavour: dict[str, dict[str, Any]]) -> None:
    e = cost.estimate(flavour["reminder"])
    # SendEmail 200 ms + 24 h + SendReminder 200 ms
    assert e.latency_before_ms == e.latency_after_ms == 86_400_400
    assert not e.before_possible  # a Lambda stops after 15 minutes
    # as if it could: 86,400.4 s x 0.125 GB x 100,000 = 1,080,005,000 GB-s x $0.0000166667
    # = $18,000.119..., + $0.02 requests, + two callees
    hypothetical = 1_080_005_000 * 0.0000166667 + 0.02 + 2 * LAMBDA_CALL
    assert e.before_monthly_usd == pytest.approx(hypothetical)
    # Standard: 3 transitions x 100,000 x $0.025/1,000 = $7.50, + two callees
    assert e.transitions_per_execution == 3
    assert e.after_standard_monthly_usd == pytest.approx(7.5 + 2 * LAMBDA_CALL + STANDARD_STARTER)
    assert e.after_express_monthly_usd is None
    assert e.recommendation == "Standard"
    assert e.after_monthly_usd == e.after_standard_monthly_usd
    assert "WaitForReminder waits 24 h" in e.reason and "5 minutes" in e.reason
    text = cost.format_estimate(e)
    assert e.before_impossible_reason == (
        "it would sleep 24 h in WaitForReminder, and a Lambda stops after 15 min"
    )
    assert "before  orchestrator Lambda  could not even run: it would sleep 24 h" in text
    assert "Express              not possible: WaitForReminder waits 24 h" in text


@pytest.mark.parametrize("flavour", FLAVOURS)
def test_order_workflow_counts_the_happy_path(flavour: dict[str, dict[str, Any]]) -> None:
    e = cost.estimate(flavour["order"])
    # ValidatePayment, CheckInventory, CreateOrder, SendEmail, Success: the Catch routes are
    # not the typical path. The article's figure: 500K transitions -> $12.50.
    assert e.transitions_per_execution == 5
    assert e.latency_after_ms == e.latency_before_ms == 800
    assert e.after_standard_monthly_usd == pytest.approx(12.5 + 4 * LAMBDA_CALL + STANDARD_STARTER)


@pytest.mark.parametrize("flavour", FLAVOURS)
def test_parallel_latency_is_the_slowest_branch(flavour: dict[str, dict[str, Any]]) -> None:
    inputs = CostInputs(
        functions={
            "CreateOrder": FunctionProfile(200),
            "SendEmail": FunctionProfile(100),
            "UpdateAnalytics": FunctionProfile(300),
            "NotifyWarehouse": FunctionProfile(250),
        }
    )
    e = cost.estimate(flavour["parallel_notifications"], inputs)
    assert e.latency_after_ms == 200 + 300  # branches side by side
    assert e.latency_before_ms == 200 + 100 + 300 + 250  # the orchestrator called them in turn
    assert e.transitions_per_execution == 1 + 1 + 3  # ProcessOrder, ParallelTasks, 3 branches


@pytest.mark.parametrize("flavour", FLAVOURS)
@pytest.mark.parametrize(
    ("items", "concurrency", "rounds"),
    [(10, 100, 1), (10, 3, 4), (10, 5, 2), (10, 1, 10), (7, 7, 1), (0, 5, 0)],
)
def test_map_latency_scales_with_rounds(
    flavour: dict[str, dict[str, Any]], items: int, concurrency: int, rounds: int
) -> None:
    definition = copy.deepcopy(flavour["image_map"])
    definition["States"]["ProcessImages"]["MaxConcurrency"] = concurrency
    e = cost.estimate(definition, CostInputs(items_per_map=items))
    each = 200 + 200  # ResizeImage, UploadThumbnail
    assert e.latency_after_ms == 200 + rounds * each  # GetImageList first
    assert e.latency_before_ms == 200 + items * each
    assert e.transitions_per_execution == 1 + 1 + items * 2
    assert e.callees_monthly_usd == pytest.approx((1 + 2 * items) * LAMBDA_CALL)


def test_map_items_per_state_and_inline_cap() -> None:
    definition = copy.deepcopy(JSONPATH["batch_map"])
    del definition["States"]["ProcessBatch"]["MaxConcurrency"]  # unbounded: inline runs 40
    e = cost.estimate(definition, CostInputs(map_items={"ProcessBatch": 100}))
    assert e.latency_after_ms == 3 * 200  # ceil(100 / 40)
    assert e.transitions_per_execution == 101
    assert any("Map:" in a for a in e.assumptions)
    assert not any("Map:" in a for a in cost.estimate(JSONPATH["order"]).assumptions)


@pytest.mark.parametrize("flavour", FLAVOURS)
def test_choice_takes_the_slowest_branch(flavour: dict[str, dict[str, Any]]) -> None:
    inputs = CostInputs(functions={"StandardProcessing": FunctionProfile(1_000)})
    e = cost.estimate(flavour["order_size"], inputs)
    assert e.latency_after_ms == 200 + 1_000
    assert e.transitions_per_execution == 3  # CalculateTotal, CheckOrderSize, one branch
    fraud = cost.estimate(flavour["fraud_rule"])
    assert fraud.transitions_per_execution == 2
    assert fraud.latency_after_ms == 200


def test_overriding_inputs_changes_results() -> None:
    base = cost.estimate(JSONPATH["order"])
    slower = cost.estimate(
        JSONPATH["order"], CostInputs(functions={"CreateOrder": FunctionProfile(2_000, 1024)})
    )
    assert slower.latency_after_ms == base.latency_after_ms + 1_800
    assert slower.callees_monthly_usd > base.callees_monthly_usd
    by_state_name = cost.estimate(
        JSONPATH["parallel_notifications"],
        CostInputs(functions={"ProcessOrder": FunctionProfile(1_000)}),  # its function: CreateOrder
    )
    assert by_state_name.latency_after_ms == 1_000 + 200
    default = cost.estimate(JSONPATH["order"], CostInputs(default_function=FunctionProfile(100)))
    assert default.latency_after_ms == 400
    bigger_orchestrator = cost.estimate(JSONPATH["order"], CostInputs(orchestrator_memory_mb=1024))
    assert bigger_orchestrator.orchestrator_monthly_usd > base.orchestrator_monthly_usd
    # the starter keeps the orchestrator's memory
    assert bigger_orchestrator.after_standard_monthly_usd == pytest.approx(
        base.after_standard_monthly_usd - STANDARD_STARTER + starter(0, memory_mb=1024)
    )
    pricier = cost.estimate(
        JSONPATH["order"], CostInputs(pricing=Pricing(standard_per_thousand_transitions=0.05))
    )
    assert pricier.after_standard_monthly_usd == pytest.approx(
        25 + 4 * LAMBDA_CALL + STANDARD_STARTER
    )
    assert "$0.05 per 1,000" in " ".join(pricier.assumptions)
    fewer = cost.estimate(JSONPATH["order"], CostInputs(executions_per_month=1_000))
    assert fewer.after_standard_monthly_usd == pytest.approx(base.after_standard_monthly_usd / 100)


@pytest.mark.parametrize("key", sorted(ALL))
def test_more_executions_cost_more(key: str) -> None:
    estimates = [
        cost.estimate(ALL[key], CostInputs(executions_per_month=n))
        for n in (1_000, 10_000, 100_000, 1_000_000)
    ]
    for low, high in itertools.pairwise(estimates):
        assert high.before_monthly_usd > low.before_monthly_usd
        assert high.after_standard_monthly_usd > low.after_standard_monthly_usd
        if low.after_express_monthly_usd is not None:
            assert high.after_express_monthly_usd is not None
            assert high.after_express_monthly_usd > low.after_express_monthly_usd
        assert high.latency_after_ms == low.latency_after_ms


@pytest.mark.parametrize("key", sorted(ALL))
def test_slower_functions_cost_more(key: str) -> None:
    estimates = [
        cost.estimate(ALL[key], CostInputs(default_function=FunctionProfile(ms)))
        for ms in (50, 200, 1_000)
    ]
    for low, high in itertools.pairwise(estimates):
        assert high.latency_before_ms > low.latency_before_ms
        assert high.latency_after_ms > low.latency_after_ms
        assert high.before_monthly_usd > low.before_monthly_usd
        assert high.callees_monthly_usd > low.callees_monthly_usd
        assert high.after_standard_monthly_usd > low.after_standard_monthly_usd
        assert high.transitions_per_execution == low.transitions_per_execution


def test_more_items_cost_more() -> None:
    estimates = [
        cost.estimate(JSONATA["image_map"], CostInputs(items_per_map=n)) for n in (1, 10, 100)
    ]
    for low, high in itertools.pairwise(estimates):
        assert high.transitions_per_execution > low.transitions_per_execution
        assert high.after_standard_monthly_usd > low.after_standard_monthly_usd
        assert high.latency_before_ms > low.latency_before_ms


def wait_machine(wait: dict[str, Any]) -> dict[str, Any]:
    return {
        "StartAt": "First",
        "States": {
            "First": lambda_task("First", Next="Pause"),
            "Pause": {"Type": "Wait", **wait, "Next": "Second"},
            "Second": lambda_task("Second", End=True),
        },
    }


def test_wait_between_5_and_15_minutes() -> None:
    e = cost.estimate(wait_machine({"Seconds": 600}))
    assert e.before_possible  # 10 min 0.4 s fits in a Lambda
    assert e.before_impossible_reason == ""
    twenty = cost.estimate(
        wait_machine({"Seconds": 600}), CostInputs(default_function=FunctionProfile(300_000))
    )
    assert not twenty.before_possible  # 5 + 10 + 5 min
    assert twenty.before_impossible_reason == "it would run 20 min, and a Lambda stops after 15 min"
    assert e.after_express_monthly_usd is None
    assert e.recommendation == "Standard"
    assert "Pause waits 10 min" in e.reason


def test_short_wait_can_be_express() -> None:
    e = cost.estimate(wait_machine({"Seconds": 10}))
    assert e.latency_after_ms == 10_400
    assert e.recommendation == "Express"
    # Express bills the 10.4 s at 64 MB, and the starter waits for them at 128 MB
    express_duration = 100_000 * 10.4 * 0.0625 * 0.00001667
    assert e.after_express_monthly_usd == pytest.approx(
        0.1 + express_duration + 2 * LAMBDA_CALL + starter(10_400)
    )


def test_a_starter_waiting_for_express_can_make_standard_cheaper() -> None:
    """30 s of waiting: Express itself is cheap, but the synchronous starter is billed for the
    whole run (30.45 s at 128 MB: $6.37 a month), more than Standard's 3 transitions ($7.50)
    save."""
    e = cost.estimate(wait_machine({"Seconds": 30}))
    assert e.after_express_monthly_usd is not None
    assert e.after_express_monthly_usd > e.after_standard_monthly_usd
    assert e.recommendation == "Standard"
    assert any("starter Lambda" in a for a in e.assumptions)


def test_express_duration_rounds_up_to_100_ms() -> None:
    definition = {"StartAt": "One", "States": {"One": lambda_task("One", End=True)}}
    e = cost.estimate(definition, CostInputs(default_function=FunctionProfile(250)))
    callee = 0.02 + 100_000 * 0.25 * 0.125 * 0.0000166667
    express_duration = 100_000 * 0.3 * 0.0625 * 0.00001667  # 250 ms billed as 300 ms
    assert e.after_express_monthly_usd == pytest.approx(
        0.1 + express_duration + callee + starter(250)
    )


def test_dynamic_wait_is_standard_unless_given() -> None:
    for wait in ({"SecondsPath": "$.delay"}, {"Timestamp": "{% $states.input.at %}"}):
        e = cost.estimate(wait_machine(wait))
        assert e.recommendation == "Standard"
        assert "known only at run time" in e.reason
        assert any("Pause" in n and "wait_seconds" in n for n in e.notes)
    given = cost.estimate(
        wait_machine({"SecondsPath": "$.delay"}), CostInputs(wait_seconds={"Pause": 5})
    )
    assert given.latency_after_ms == 5_400
    assert given.recommendation == "Express"


def test_long_execution_without_waits_is_standard() -> None:
    definition = {"StartAt": "Crunch", "States": {"Crunch": lambda_task("Crunch", End=True)}}
    e = cost.estimate(definition, CostInputs(functions={"Crunch": FunctionProfile(400_000, 2048)}))
    assert e.after_express_monthly_usd is None
    assert "an execution takes 6.67 min" in e.reason


def test_standard_when_it_is_cheaper() -> None:
    # 4 minutes in one call: Express bills 240 s x 64 MB per execution, Standard 1 transition
    definition = {"StartAt": "Crunch", "States": {"Crunch": lambda_task("Crunch", End=True)}}
    e = cost.estimate(definition, CostInputs(functions={"Crunch": FunctionProfile(240_000)}))
    assert e.after_express_monthly_usd is not None
    assert e.after_standard_monthly_usd < e.after_express_monthly_usd
    assert e.recommendation == "Standard"
    assert "no more than Express" in e.reason


def test_callback_tasks_rule_out_express() -> None:
    definition = {
        "StartAt": "Approve",
        "States": {
            "Approve": {
                "Type": "Task",
                "Resource": "arn:aws:states:::lambda:invoke.waitForTaskToken",
                "Parameters": {
                    "FunctionName": "${AskFunctionArn}",
                    "Payload": {"t.$": "$$.Task.Token"},
                },
                "End": True,
            }
        },
    }
    e = cost.estimate(definition)
    assert e.recommendation == "Standard"
    assert "waitForTaskToken" in e.reason


def test_non_lambda_tasks_and_loops_are_noted() -> None:
    definition = {
        "StartAt": "Publish",
        "States": {
            "Publish": {"Type": "Task", "Resource": "arn:aws:states:::sns:publish", "Next": "Poll"},
            "Poll": lambda_task("Poll", Next="Done?"),
            "Done?": {
                "Type": "Choice",
                "Choices": [{"Variable": "$.done", "BooleanEquals": True, "Next": "Finish"}],
                "Default": "Poll",
            },
            "Finish": {"Type": "Succeed"},
        },
    }
    e = cost.estimate(definition)
    # Publish, Poll, Done?, once around the loop (Poll, Done?), then Finish
    assert e.transitions_per_execution == 6
    assert e.callees_monthly_usd == pytest.approx(2 * LAMBDA_CALL)  # SNS is not a Lambda
    assert any("sns:publish" in n for n in e.notes)
    assert any("loop" in n for n in e.notes)


def test_empty_and_broken_definitions_do_not_crash() -> None:
    for definition in (
        {},
        {"StartAt": "Nowhere", "States": {}},
        {"StartAt": "A", "States": {"A": {}}},
    ):
        e = cost.estimate(definition)
        assert e.latency_after_ms >= 0
        cost.format_estimate(e)


def test_format_estimate() -> None:
    e = cost.estimate(JSONPATH["order"])
    text = cost.format_estimate(e)
    lines = text.splitlines()
    assert lines[0] == "cost at 100,000 executions/month:"
    assert lines[1].startswith("  before  orchestrator Lambda  $0.43/month, 800 ms")
    assert lines[2].startswith("  after   Standard             $12.78/month, 800 ms")
    assert "(5 state transitions per execution)" in lines[2]
    assert lines[3].startswith("          Express              $0.63/month")
    assert lines[4] == "  transitions: 5 = 4 Task + 1 Succeed"
    assert lines[5].startswith("  recommended: Express: ")
    for assumption in e.assumptions:
        assert f"    - {assumption}" in lines
    assert "$0.0000166667 per GB-second" in text
    assert "$0.00001667 per GB-second" in text
    assert "$0.025 per 1,000 state transitions" in text
    assert "us-east-1" in text and "2025" in text and "assumption" in text
    short = cost.format_estimate(e, assumptions=False)
    assert "assumptions" not in short and len(short.splitlines()) == 6


def test_estimate_is_frozen() -> None:
    e = cost.estimate(JSONPATH["hello_world"])
    with pytest.raises(AttributeError):
        e.recommendation = "Standard"  # type: ignore[misc]
    with pytest.raises(AttributeError):
        CostInputs().executions_per_month = 1  # type: ignore[misc]


def test_an_event_invoke_is_billed_but_not_waited_for() -> None:
    task = lambda_task("Audit", End=True)
    task["Parameters"]["InvocationType"] = "Event"
    definition = {"StartAt": "Audit", "States": {"Audit": task}}
    e = cost.estimate(definition)
    assert e.latency_before_ms == e.latency_after_ms == 0
    assert e.callees_monthly_usd == pytest.approx(LAMBDA_CALL)  # the function still runs
    assert any("asynchronously" in n for n in e.notes)
    # near miss: the same Task, synchronous
    sync = cost.estimate({"StartAt": "Audit", "States": {"Audit": lambda_task("Audit", End=True)}})
    assert sync.latency_before_ms == 200


# --- What Standard bills: the transitions of the states that run on the estimated path -------
# AWS: "Step Functions counts a state transition each time a step of your workflow is
# executed ... including retries"; every state type is a step (Pass, Choice, Wait, Succeed and
# Fail too). An inline Map bills its items' states, not the iterations; a Distributed Map bills
# one transition per child execution it starts, and its children by their own type.


def _machine(start: str, **states: dict[str, Any]) -> dict[str, Any]:
    return {"StartAt": start, "States": states}


def _pass(next_: str | None = None) -> dict[str, Any]:
    return {"Type": "Pass", **({"Next": next_} if next_ else {"End": True})}


def _choice(rule_next: str, default: str) -> dict[str, Any]:
    rule = {"Variable": "$.x", "BooleanEquals": True, "Next": rule_next}
    return {"Type": "Choice", "Choices": [rule], "Default": default}


def _inline_map(processor: dict[str, Any], **rest: Any) -> dict[str, Any]:
    return {"Type": "Map", "ItemProcessor": processor, "End": True, **rest}


def _distributed(execution_type: str) -> dict[str, Any]:
    processor = _machine("Item", Item=lambda_task("Item", End=True))
    processor["ProcessorConfig"] = {"Mode": "DISTRIBUTED", "ExecutionType": execution_type}
    return _machine("Fan", Fan=_inline_map(processor))


def _polling() -> dict[str, Any]:
    return _machine(
        "Start",
        Start=lambda_task("Start", Next="Check"),
        Check=_choice("Finish", "Pause"),
        Pause={"Type": "Wait", "Seconds": 5, "Next": "Poll"},
        Poll=lambda_task("Poll", Next="Check"),
        Finish={"Type": "Succeed"},
    )


def _nested_loops() -> dict[str, Any]:
    return _machine(
        "Outer",
        Outer=_choice("Inner", "Done"),
        Inner=_choice("Work", "Back"),
        Work=lambda_task("Work", Next="Inner"),
        Back=_pass("Outer"),
        Done={"Type": "Succeed"},
    )


TRANSITION_CASES = [
    pytest.param(
        _machine("P", P=_pass("C"), C=_choice("S", "S"), S={"Type": "Succeed"}),
        CostInputs(),
        3,
        "3 = 1 Choice + 1 Pass + 1 Succeed",
        id="pass-choice-succeed-each-one",
    ),
    pytest.param(
        _machine("W", W={"Type": "Wait", "Seconds": 1, "Next": "F"}, F={"Type": "Fail"}),
        CostInputs(),
        2,
        "2 = 1 Wait + 1 Fail",
        id="wait-and-fail-each-one",
    ),
    pytest.param(
        _machine("A", A=lambda_task("A", End=True), Orphan=_pass(), Orphan2=_pass("Orphan")),
        CostInputs(),
        1,
        "1 = 1 Task",
        id="states-never-entered-are-not-counted",
    ),
    pytest.param(
        _machine(
            "A",
            A=lambda_task("A", Next="B", Catch=[{"ErrorEquals": ["States.ALL"], "Next": "Oops"}]),
            B=_pass(),
            Oops={"Type": "Fail"},
        ),
        CostInputs(),
        2,
        "2 = 1 Task + 1 Pass",
        id="a-catch-route-is-not-the-path",
    ),
    pytest.param(
        _machine("C", C=_choice("Bad", "Good"), Bad={"Type": "Fail"}, Good={"Type": "Succeed"}),
        CostInputs(),
        2,
        "2 = 1 Choice + 1 Succeed",
        id="equally-slow-branches-the-one-that-succeeds",
    ),
    pytest.param(
        _machine(
            "C",
            C=_choice("Slow", "Quick"),
            Slow=lambda_task("Slow", Next="Bad"),
            Bad={"Type": "Fail"},
            Quick={"Type": "Succeed"},
        ),
        CostInputs(),
        3,
        "3 = 1 Task + 1 Choice + 1 Fail",
        id="near-miss-the-slower-branch-wins-even-when-it-fails",
    ),
    pytest.param(
        _machine(
            "Par",
            Par={
                "Type": "Parallel",
                "Branches": [
                    _machine("A", A=lambda_task("A", Next="A2"), A2=_pass()),
                    _machine("B", B=lambda_task("B", End=True)),
                ],
                "Next": "Done",
            },
            Done={"Type": "Succeed"},
        ),
        CostInputs(),
        5,
        "5 = 2 Task + 1 Pass + 1 Parallel + 1 Succeed",
        id="parallel-one-plus-every-branch",
    ),
    pytest.param(
        _machine("Fan", Fan=_inline_map(_machine("T", T=lambda_task("T", Next="P"), P=_pass()))),
        CostInputs(items_per_map=4),
        9,
        "9 = 4 Task + 4 Pass + 1 Map (Fan: 4 items x 2 states)",
        id="inline-map-its-items-states-not-the-iterations",
    ),
    pytest.param(
        _distributed("STANDARD"),
        CostInputs(items_per_map=4),
        9,
        "9 = 4 Task + 1 Map + 4 Map child execution (Fan: 4 items x (1 states + 1 child))",
        id="distributed-map-one-per-child-and-standard-children-states",
    ),
    pytest.param(
        _distributed("EXPRESS"),
        CostInputs(items_per_map=4),
        5,
        "5 = 1 Map + 4 Map child execution (Fan: 4 items, each an Express child execution)",
        id="distributed-map-express-children-bill-no-transitions",
    ),
    pytest.param(
        _polling(),
        CostInputs(),
        6,
        "6 = 2 Task + 2 Choice + 1 Wait + 1 Succeed (loop at Check: 1 round of 3, then out)",
        id="a-loop-once-around-then-out",
    ),
    pytest.param(
        _polling(),
        CostInputs(loop_rounds={"Check": 3}),
        12,
        "12 = 4 Task + 4 Choice + 3 Wait + 1 Succeed (loop at Check: 3 rounds of 3, then out)",
        id="a-loop-three-rounds",
    ),
    pytest.param(
        _polling(),
        CostInputs(loop_rounds={"Check": 0}),
        3,
        "3 = 1 Task + 1 Choice + 1 Succeed (loop at Check: 0 rounds of 3, then out)",
        id="near-miss-a-loop-never-taken",
    ),
    pytest.param(
        _nested_loops(),
        CostInputs(loop_rounds={"Outer": 2, "Inner": 3}),
        20,
        "20 = 6 Task + 11 Choice + 2 Pass + 1 Succeed "
        "(loop at Outer: 2 rounds of 9, then out; loop at Inner: 3 rounds of 2, then out)",
        id="nested-loops-rounds-multiply",
    ),
    pytest.param(
        _machine("A", A=lambda_task("A", Next="B"), B=_pass("A")),
        CostInputs(),
        2,
        "2 = 1 Task + 1 Pass",
        id="no-end-reached-one-pass",
    ),
    pytest.param(
        _machine("A", A=lambda_task("A", Next="B"), B=lambda_task("B", End=True)),
        CostInputs(retries={"A": 2}),
        4,
        "4 = 4 Task (A: 2 retries)",
        id="each-retry-is-one-more",
    ),
    pytest.param(
        _machine("A", A=lambda_task("A", Next="B"), B=lambda_task("B", End=True)),
        CostInputs(retries={"Other": 2}),
        2,
        "2 = 2 Task",
        id="near-miss-retries-of-another-state",
    ),
]


@pytest.mark.parametrize(("definition", "inputs", "count", "how"), TRANSITION_CASES)
def test_transitions_count_what_runs(
    definition: dict[str, Any], inputs: CostInputs, count: int, how: str
) -> None:
    e = cost.estimate(definition, inputs)
    assert e.transitions_per_execution == count
    assert cost.transitions_counted(e) == how
    assert f"  transitions: {how}\n" in cost.format_estimate(e)
    standard_share = e.after_standard_monthly_usd - e.callees_monthly_usd
    assert standard_share == pytest.approx(
        count * 100_000 * 0.025 / 1000 + STANDARD_STARTER + 100_000 * _express_children(e)
    )


def _express_children(e: cost.CostEstimate) -> float:
    """Express child executions of a Distributed Map: $1/1M requests + 100 ms x 64 MB each."""
    if not any(kind == "Map child execution" for kind, _ in e.transitions_by_type):
        return 0.0
    if "Express child" not in cost.transitions_counted(e):
        return 0.0
    return 4 * (1 / 1_000_000 + 0.2 * 0.0625 * 0.00001667)


def test_express_bills_duration_and_requests_not_transitions() -> None:
    short = _machine("A", A=lambda_task("A", End=True))
    padded = _machine(
        "P1", P1=_pass("P2"), P2=_pass("P3"), P3=_pass("A"), A=lambda_task("A", End=True)
    )
    one, four = cost.estimate(short), cost.estimate(padded)
    assert four.transitions_per_execution == one.transitions_per_execution + 3
    assert four.after_express_monthly_usd == pytest.approx(one.after_express_monthly_usd)
    assert four.after_standard_monthly_usd == pytest.approx(
        one.after_standard_monthly_usd + 3 * 100_000 * 0.025 / 1000
    )


def test_a_retry_is_called_again_after_its_backoff() -> None:
    retry = [{"ErrorEquals": ["States.ALL"], "IntervalSeconds": 3, "BackoffRate": 2}]
    definition = _machine("A", A=lambda_task("A", End=True, Retry=retry))
    e = cost.estimate(definition, CostInputs(retries={"A": 2}))
    assert e.latency_after_ms == 3 * 200 + (3 + 6) * 1000  # three calls, waits of 3 s and 6 s
    assert e.callees_monthly_usd == pytest.approx(3 * LAMBDA_CALL)
    capped = copy.deepcopy(definition)
    capped["States"]["A"]["Retry"][0]["MaxDelaySeconds"] = 4
    assert cost.estimate(capped, CostInputs(retries={"A": 2})).latency_after_ms == 600 + 7000


# --- MemorySize and Timeout from the template ------------------------------------------------


@pytest.mark.parametrize(
    ("profile", "ms", "gb_seconds_each", "noted"),
    [
        pytest.param(FunctionProfile(200, 1024), 200, 0.2, False, id="memory-1024"),
        pytest.param(FunctionProfile(200, 128, 3.0), 200, 0.025, False, id="within-timeout"),
        pytest.param(FunctionProfile(5000, 128, 3.0), 3000, 0.375, True, id="over-timeout-capped"),
        pytest.param(FunctionProfile(3000, 128, 3.0), 3000, 0.375, False, id="exactly-timeout"),
    ],
)
def test_a_function_profile_bills_its_memory_and_stops_at_its_timeout(
    profile: FunctionProfile, ms: float, gb_seconds_each: float, noted: bool
) -> None:
    definition = _machine("A", A=lambda_task("A", End=True))
    e = cost.estimate(definition, CostInputs(functions={"A": profile}))
    assert e.latency_after_ms == ms
    assert e.callees_monthly_usd == pytest.approx(
        100_000 * (0.20 / 1_000_000 + gb_seconds_each * 0.0000166667)
    )
    assert any("more than its Timeout of 3 s" in n for n in e.notes) == noted


@pytest.mark.parametrize(
    ("timeout_s", "possible", "reason"),
    [
        pytest.param(None, True, "", id="no-timeout-known"),
        pytest.param(30.0, True, "", id="within-its-timeout"),
        pytest.param(
            0.3, False, "it would run 400 ms, and its Timeout is 0.3 s", id="over-its-timeout"
        ),
        pytest.param(1000.0, True, "", id="timeout-above-the-chain"),
    ],
)
def test_the_orchestrators_timeout_bounds_its_waiting(
    timeout_s: float | None, possible: bool, reason: str
) -> None:
    definition = _machine("A", A=lambda_task("A", Next="B"), B=lambda_task("B", End=True))
    e = cost.estimate(definition, CostInputs(orchestrator_timeout_s=timeout_s))
    assert (e.before_possible, e.before_impossible_reason) == (possible, reason)
    starter_note = any("the starter waits" in n for n in e.notes)
    assert starter_note == (timeout_s is not None and timeout_s * 1000 < 450)


def test_the_orchestrators_memory_bills_the_starter_and_the_orchestrator() -> None:
    definition = _machine("A", A=lambda_task("A", End=True))
    small = cost.estimate(definition, CostInputs())
    large = cost.estimate(definition, CostInputs(orchestrator_memory_mb=1024))
    assert large.orchestrator_monthly_usd == pytest.approx(
        0.02 + 100_000 * 0.2 * 1.0 * 0.0000166667
    )
    assert large.after_standard_monthly_usd - small.after_standard_monthly_usd == pytest.approx(
        starter(0, memory_mb=1024) - STANDARD_STARTER
    )


@pytest.mark.parametrize(
    "kept", [pytest.param(True, id="starter-kept"), pytest.param(False, id="starter-removed")]
)
def test_a_removed_starter_is_not_billed(kept: bool) -> None:
    """Every event moved to the machine and nothing else invoking it: migrate removes the
    orchestrator function, so neither Standard nor Express bills a starter."""
    definition = _machine("A", A=lambda_task("A", End=True))
    e = cost.estimate(definition, CostInputs(starter=kept))
    billed = 1 if kept else 0
    assert e.after_standard_monthly_usd == pytest.approx(2.5 + LAMBDA_CALL + billed * starter(0))
    assert e.after_express_monthly_usd == pytest.approx(
        0.10 + 0.0208375 + LAMBDA_CALL + billed * starter(200)
    )
    assert any("no starter Lambda" in n for n in e.notes) == (not kept)


@pytest.mark.parametrize(
    "kept", [pytest.param(True, id="starter-kept"), pytest.param(False, id="starter-removed")]
)
def test_only_a_kept_starter_waits_past_its_timeout(kept: bool) -> None:
    definition = _machine("A", A=lambda_task("A", End=True))
    e = cost.estimate(definition, CostInputs(starter=kept, orchestrator_timeout_s=0.1))
    assert any("the starter waits" in n for n in e.notes) == kept


@pytest.mark.parametrize(
    "waits", [pytest.param(False, id="returns-at-once"), pytest.param(True, id="waits-for-the-run")]
)
def test_a_starter_waiting_for_a_standard_execution_is_billed_for_it(waits: bool) -> None:
    definition = _machine("A", A=lambda_task("A", End=True))
    e = cost.estimate(definition, CostInputs(starter_waits=waits))
    assert e.after_standard_monthly_usd == pytest.approx(
        2.5 + LAMBDA_CALL + starter(200 if waits else 0)
    )
    assert any("as Standard, the starter waits" in n for n in e.notes) == waits
