"""Monthly cost and latency of a workflow, before and after the migration to Step Functions.

`estimate(definition, inputs)` reads an ASL definition (a JSON-loaded dict) and compares:

- **before**: the hand-written orchestrator Lambda. It calls the functions one after another and
  sleeps through the Waits, so it is billed for the whole chain (the callees' durations plus the
  Wait seconds) and the latency is that sequential sum; the callees are billed too. A chain that
  takes longer than Lambda's 15-minute maximum could not have run at all.
- **after, Standard**: state transitions (every state entered on the path; a Map multiplies its
  processor by the items per execution, a Parallel adds its branches) plus the callees.
- **after, Express**: requests plus duration (the state machine's latency, Waits included) plus
  the callees. An Express execution lasts at most 5 minutes.

The path is the slowest one from StartAt to an end (a Choice takes its slowest branch; Catch
routes are not taken). The state machine's latency runs Parallel branches side by side (the
slowest counts) and a Map's items in ceil(items / MaxConcurrency) rounds.

Every price is an assumption (`Pricing`, us-east-1 list prices as of 2025) and is listed in
`CostEstimate.assumptions`, to be printed with the result.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Literal

from untangle.render import _asl
from untangle.render._asl import Json


@dataclass(frozen=True)
class Pricing:
    """Assumed list prices: us-east-1, as of 2025, x86 Lambda, no free tier or discounts.

    These are assumptions, not quotes; check https://aws.amazon.com/lambda/pricing/ and
    https://aws.amazon.com/step-functions/pricing/ for your region and today's prices.
    """

    region: str = "us-east-1"
    as_of: str = "2025"
    lambda_per_gb_second: float = 0.0000166667  # billed per 1 ms of duration
    lambda_per_million_requests: float = 0.20
    standard_per_thousand_transitions: float = 0.025
    express_per_million_requests: float = 1.00
    express_per_gb_second: float = 0.00001667  # the first tier
    express_memory_mb: int = 64  # memory an Express execution is assumed to use
    express_memory_chunk_mb: int = 64  # memory is billed in chunks of this size
    express_duration_increment_ms: int = 100  # duration is rounded up to this


@dataclass(frozen=True)
class FunctionProfile:
    """How long one invocation of a function takes and how much memory it is configured with."""

    duration_ms: float = 200.0
    memory_mb: int = 128


@dataclass(frozen=True)
class CostInputs:
    """What the estimate assumes about the workload. All fields have documented defaults.

    `functions` is keyed by the function a Task shows in the diagrams (`ValidatePayment` for
    `${ValidatePaymentFunctionArn}`, `validate-payment` for a Lambda ARN), or by the Task's state
    name; other Tasks use `default_function`. `map_items` and `wait_seconds` are keyed by state
    name: items per execution for a Map (else `items_per_map`), and the seconds a Wait whose
    duration is only known at run time (`SecondsPath`, `Timestamp`, a JSONata expression) is
    expected to last.
    """

    executions_per_month: int = 100_000
    functions: Mapping[str, FunctionProfile] = field(default_factory=dict)
    default_function: FunctionProfile = FunctionProfile()
    orchestrator_memory_mb: int = 128
    items_per_map: int = 10
    map_items: Mapping[str, int] = field(default_factory=dict)
    wait_seconds: Mapping[str, float] = field(default_factory=dict)
    pricing: Pricing = Pricing()


Recommendation = Literal["Standard", "Express"]


@dataclass(frozen=True)
class CostEstimate:
    """Monthly USD and per-execution latency, before and after; see `format_estimate`."""

    executions_per_month: int
    before_monthly_usd: float  # orchestrator + callees, as if the orchestrator could run
    before_possible: bool  # False when the chain outlasts Lambda's 15-minute maximum
    before_impossible_reason: str  # why not ("" when possible)
    orchestrator_monthly_usd: float
    callees_monthly_usd: float  # the called Lambdas, the same before and after
    after_standard_monthly_usd: float
    after_express_monthly_usd: float | None  # None when Express cannot run the workflow
    after_monthly_usd: float  # of the recommended type
    latency_before_ms: float
    latency_after_ms: float
    transitions_per_execution: int
    recommendation: Recommendation
    reason: str
    express_blockers: list[str]
    notes: list[str]  # about this workflow: unknown durations, loops, non-Lambda tasks
    assumptions: list[str]  # the pricing and modelling assumptions, to print with the result


LAMBDA_MAX_MS = _asl.LAMBDA_MAX_SECONDS * 1000
STARTER_MS = 50.0  # the starter Lambda's own work: reading the event, starting the execution
EXPRESS_MAX_MS = _asl.EXPRESS_MAX_SECONDS * 1000


@dataclass(frozen=True)
class _Path:
    """Totals along a path, per execution."""

    after_ms: float = 0.0  # the state machine's latency
    before_ms: float = 0.0  # the orchestrator's latency: everything one after another
    transitions: int = 0
    lambda_requests: int = 0
    lambda_gb_seconds: float = 0.0
    longest_wait: tuple[float, str] = (0.0, "")  # (seconds, state)

    def then(self, other: _Path) -> _Path:
        return _Path(
            self.after_ms + other.after_ms,
            self.before_ms + other.before_ms,
            self.transitions + other.transitions,
            self.lambda_requests + other.lambda_requests,
            self.lambda_gb_seconds + other.lambda_gb_seconds,
            max(self.longest_wait, other.longest_wait),
        )

    def slowness(self) -> tuple[float, int, float]:
        return (self.after_ms, self.transitions, self.before_ms)


@dataclass
class _Walker:
    inputs: CostInputs
    notes: list[str] = field(default_factory=list)
    blockers: list[str] = field(default_factory=list)
    has_map: bool = False

    def note(self, text: str) -> None:
        if text not in self.notes:
            self.notes.append(text)

    def block(self, text: str) -> None:
        if text not in self.blockers:
            self.blockers.append(text)

    def scope(self, definition: Json) -> _Path:
        """The slowest path through a scope (iterative DFS; a loop's back edge adds nothing)."""
        states = _asl.states(definition)
        first = _asl.start_at(definition)
        if first is None or first not in states:
            return _Path()

        def successors(name: str) -> list[str]:
            outs = _asl.transitions(states[name])
            return [
                t.target
                for t in outs
                if t.target in states and t.kind in ("next", "choice", "default")
            ]

        best: dict[str, _Path] = {}
        on_stack = {first}
        stack = [(first, iter(successors(first)))]
        while stack:
            name, pending = stack[-1]
            for succ in pending:
                if succ in on_stack:
                    self.note(f"{succ} is in a loop: each state of the loop is counted once")
                elif succ not in best:
                    on_stack.add(succ)
                    stack.append((succ, iter(successors(succ))))
                    break
            else:
                stack.pop()
                on_stack.discard(name)
                tails = [best[s] for s in successors(name) if s in best]
                tail = max(tails, key=_Path.slowness) if tails else _Path()
                best[name] = self.state(name, states[name]).then(tail)
        return best[first]

    def profile(self, state_name: str, target: str) -> FunctionProfile:
        functions = self.inputs.functions
        return functions.get(target) or functions.get(state_name) or self.inputs.default_function

    def state(self, name: str, state: Json) -> _Path:
        kind = _asl.kind(state)
        if kind == "Task":
            return self.task(name, state)
        if kind == "Wait":
            return self.wait(name, state)
        if kind == "Parallel":
            parts = [self.scope(b) for b in _asl.branches(state)]
            return _Path(
                after_ms=max((p.after_ms for p in parts), default=0.0),
                before_ms=sum(p.before_ms for p in parts),
                transitions=1 + sum(p.transitions for p in parts),
                lambda_requests=sum(p.lambda_requests for p in parts),
                lambda_gb_seconds=sum(p.lambda_gb_seconds for p in parts),
                longest_wait=max((p.longest_wait for p in parts), default=(0.0, "")),
            )
        if kind == "Map":
            return self.map(name, state)
        return _Path(transitions=1)

    def task(self, name: str, state: Json) -> _Path:
        target = _asl.task_target(state)
        profile = self.profile(name, target)
        ms = float(profile.duration_ms)
        pattern = _asl.integration_pattern(state)
        if pattern is not None:
            self.block(f"{name} uses the .{pattern} integration, which Express does not support")
            self.note(f"{name} waits for .{pattern}; its duration is taken as {ms:g} ms")
        if _asl.lambda_function(state) is None:
            self.note(f"{name} calls {target}, not Lambda: {ms:g} ms, its own charges not counted")
            return _Path(after_ms=ms, before_ms=ms, transitions=1)
        gb_seconds = math.ceil(ms) / 1000 * profile.memory_mb / 1024
        if _asl.is_async_invoke(state):
            # an Event invoke returns once the function is queued: nobody waits for it, but the
            # function still runs and is billed
            self.note(f"{name} invokes {target} asynchronously: billed, but not waited for")
            return _Path(0.0, 0.0, 1, 1, gb_seconds)
        return _Path(ms, ms, 1, 1, gb_seconds)

    def wait(self, name: str, state: Json) -> _Path:
        seconds = _asl.wait_seconds(state)
        if seconds is None:
            given = self.inputs.wait_seconds.get(name)
            summary = _asl.wait_summary(state)
            if given is None:
                self.block(f"{name} waits a time known only at run time ({summary})")
                self.note(f"{name}: {summary}, counted as 0 s (give wait_seconds to estimate it)")
                seconds = 0.0
            else:
                seconds = float(given)
        ms = seconds * 1000
        return _Path(ms, ms, 1, longest_wait=(seconds, name))

    def map(self, name: str, state: Json) -> _Path:
        self.has_map = True
        processor = _asl.processor(state)
        each = self.scope(processor) if processor is not None else _Path()
        items = max(0, int(self.inputs.map_items.get(name, self.inputs.items_per_map)))
        distributed = _asl.is_distributed(state)
        cap = (
            _asl.DISTRIBUTED_MAP_MAX_CONCURRENCY if distributed else _asl.INLINE_MAP_MAX_CONCURRENCY
        )
        concurrency = _asl.map_concurrency(state)
        if isinstance(concurrency, str):
            self.note(f"{name}: MaxConcurrency {concurrency} is read at run time, taken as {cap}")
            concurrency = cap
        elif concurrency is None or concurrency <= 0 or concurrency > cap:
            concurrency = cap
        rounds = math.ceil(items / concurrency)
        return _Path(
            after_ms=rounds * each.after_ms,
            before_ms=items * each.before_ms,
            transitions=1 + items * each.transitions,
            lambda_requests=items * each.lambda_requests,
            lambda_gb_seconds=items * each.lambda_gb_seconds,
            longest_wait=each.longest_wait if items else (0.0, ""),
        )


def estimate(definition: Json, inputs: CostInputs | None = None) -> CostEstimate:
    """Cost and latency before (orchestrator Lambda) and after (Standard / Express)."""
    inputs = inputs or CostInputs()
    pricing = inputs.pricing
    walker = _Walker(inputs)
    path = walker.scope(definition)
    executions = inputs.executions_per_month

    lambda_request = pricing.lambda_per_million_requests / 1_000_000
    callees = executions * (
        path.lambda_requests * lambda_request
        + path.lambda_gb_seconds * pricing.lambda_per_gb_second
    )
    orchestrator_gb_seconds = (
        math.ceil(path.before_ms) / 1000 * inputs.orchestrator_memory_mb / 1024
    )
    orchestrator = executions * (
        lambda_request + orchestrator_gb_seconds * pricing.lambda_per_gb_second
    )
    before = orchestrator + callees
    before_possible = path.before_ms <= LAMBDA_MAX_MS
    impossible = ""
    if not before_possible:
        wait_s, wait_state = path.longest_wait
        if wait_s * 1000 > LAMBDA_MAX_MS:
            impossible = f"it would sleep {_asl.duration(wait_s)} in {wait_state}"
        else:
            impossible = f"it would run {_latency(path.before_ms)}"
        impossible += ", and a Lambda stops after 15 min"

    # the starter Lambda migrate keeps in the orchestrator's place: one request per execution;
    # it waits for an Express run (StartSyncExecution) and returns at once for Standard
    def starter(waits_ms: float) -> float:
        seconds = math.ceil(waits_ms) / 1000 * inputs.orchestrator_memory_mb / 1024
        return executions * (lambda_request + seconds * pricing.lambda_per_gb_second)

    standard = (
        executions * path.transitions * pricing.standard_per_thousand_transitions / 1000
        + callees
        + starter(STARTER_MS)
    )

    wait_s, wait_state = path.longest_wait
    if wait_s * 1000 > EXPRESS_MAX_MS:
        walker.block(f"{wait_state} waits {_asl.duration(wait_s)}")
    if path.after_ms > EXPRESS_MAX_MS:
        walker.block(f"an execution takes {_latency(path.after_ms)}")
    express: float | None = None
    if not walker.blockers:
        increment = pricing.express_duration_increment_ms
        billed_ms = max(increment, math.ceil(path.after_ms / increment) * increment)
        chunk = pricing.express_memory_chunk_mb
        memory_gb = math.ceil(pricing.express_memory_mb / chunk) * chunk / 1024
        express = (
            executions
            * (
                pricing.express_per_million_requests / 1_000_000
                + billed_ms / 1000 * memory_gb * pricing.express_per_gb_second
            )
            + callees
            + starter(STARTER_MS + path.after_ms)
        )

    recommendation: Recommendation
    if express is None:
        recommendation = "Standard"
        reason = f"{walker.blockers[0]}; an Express execution lasts at most 5 minutes"
        if "integration" in walker.blockers[0]:
            reason = walker.blockers[0]
    elif express < standard:
        recommendation = "Express"
        reason = (
            f"short ({_latency(path.after_ms)} per execution, Express allows 5 min) and "
            f"{_usd(standard - express)}/month cheaper than Standard"
        )
    else:
        recommendation = "Standard"
        reason = (
            f"Standard costs no more than Express here "
            f"({_usd(standard)} vs {_usd(express)} a month) and keeps the execution history"
        )

    return CostEstimate(
        executions_per_month=executions,
        before_monthly_usd=before,
        before_possible=before_possible,
        before_impossible_reason=impossible,
        orchestrator_monthly_usd=orchestrator,
        callees_monthly_usd=callees,
        after_standard_monthly_usd=standard,
        after_express_monthly_usd=express,
        after_monthly_usd=standard if recommendation == "Standard" or express is None else express,
        latency_before_ms=path.before_ms,
        latency_after_ms=path.after_ms,
        transitions_per_execution=path.transitions,
        recommendation=recommendation,
        reason=reason,
        express_blockers=list(walker.blockers),
        notes=list(walker.notes),
        assumptions=_assumptions(inputs, walker.has_map),
    )


def _assumptions(inputs: CostInputs, has_map: bool) -> list[str]:
    p = inputs.pricing
    d = inputs.default_function
    lines = [
        f"prices are assumptions: {p.region} list prices as of {p.as_of}, x86 Lambda, "
        f"no free tier, no retries; check current pricing for your region",
        f"Lambda: {_price(p.lambda_per_gb_second)} per GB-second (billed per ms) and "
        f"{_price(p.lambda_per_million_requests)} per 1M requests",
        f"Step Functions Standard: {_price(p.standard_per_thousand_transitions)} per 1,000 "
        f"state transitions (every state entered is one)",
        f"Step Functions Express: {_price(p.express_per_million_requests)} per 1M requests and "
        f"{_price(p.express_per_gb_second)} per GB-second (first tier), duration rounded up to "
        f"{p.express_duration_increment_ms} ms, memory billed in {p.express_memory_chunk_mb} MB "
        f"chunks, assumed {p.express_memory_mb} MB",
        f"functions take {d.duration_ms:g} ms with {d.memory_mb} MB unless given; the "
        f"orchestrator ({inputs.orchestrator_memory_mb} MB) is billed while it calls them and "
        f"sleeps, one after another (its own work is not counted); an Event invoke is billed "
        f"but not waited for",
        f"after the migration the orchestrator is a starter Lambda ({STARTER_MS:g} ms of its "
        f"own, {inputs.orchestrator_memory_mb} MB): it waits for an Express execution "
        f"(StartSyncExecution) and returns at once for Standard (StartExecution)",
        "path: the slowest from StartAt; a Choice takes its slowest branch, Catch routes are "
        "not taken; Step Functions' own per-state overhead is not in the latency",
    ]
    if has_map:
        lines.append(
            f"Map: {inputs.items_per_map} items per execution unless given; latency "
            f"ceil(items / MaxConcurrency) rounds of one item (inline Map: at most "
            f"{_asl.INLINE_MAP_MAX_CONCURRENCY} at a time); the orchestrator did them in turn"
        )
    return lines


def _price(amount: float) -> str:
    """A unit price in full: 0.0000166667 -> "$0.0000166667", 0.2 -> "$0.20"."""
    text = f"{amount:.12f}".rstrip("0")
    whole, _, fraction = text.partition(".")
    return f"${whole}.{fraction.ljust(2, '0')}"


def usd(amount: float) -> str:
    """`$12.34`, `$0.0012` for amounts under a cent."""
    return _usd(amount)


def _usd(amount: float) -> str:
    if amount != 0 and abs(amount) < 0.01:
        return f"${amount:.4f}"
    return f"${amount:,.2f}"


def _latency(ms: float) -> str:
    if ms < 1000:
        return f"{ms:g} ms"
    seconds = ms / 1000
    if seconds < 120:
        return f"{seconds:.3g} s"
    if seconds < 2 * 3600:
        return f"{seconds / 60:.3g} min"
    if seconds < 2 * 86400:
        return f"{seconds / 3600:.3g} h"
    return f"{seconds / 86400:.3g} d"


def format_estimate(e: CostEstimate, *, assumptions: bool = True) -> str:
    """A few readable lines: before, after (Standard and Express), the recommendation, the
    notes and (unless `assumptions=False`) the assumptions."""
    after = _latency(e.latency_after_ms)
    if e.before_possible:
        before = (
            f"{_usd(e.before_monthly_usd)}/month, {_latency(e.latency_before_ms)} "
            f"(orchestrator {_usd(e.orchestrator_monthly_usd)} + called functions "
            f"{_usd(e.callees_monthly_usd)})"
        )
    else:
        before = (
            f"could not even run: {e.before_impossible_reason} "
            f"(else {_usd(e.before_monthly_usd)}/month)"
        )
    count = e.transitions_per_execution
    standard = (
        f"{_usd(e.after_standard_monthly_usd)}/month, {after} "
        f"({count:,} state transition{'' if count == 1 else 's'} per execution)"
    )
    if e.after_express_monthly_usd is not None:
        express = f"{_usd(e.after_express_monthly_usd)}/month, {after}"
    else:
        express = f"not possible: {e.express_blockers[0]}"
    lines = [
        f"cost at {e.executions_per_month:,} executions/month:",
        f"  before  orchestrator Lambda  {before}",
        f"  after   Standard             {standard}",
        f"          Express              {express}",
        f"  recommended: {e.recommendation}: {e.reason}",
    ]
    lines.extend(f"  note: {n}" for n in e.notes)
    if assumptions:
        lines.append("  assumptions:")
        lines.extend(f"    - {a}" for a in e.assumptions)
    return "\n".join(lines) + "\n"
