"""Monthly cost and latency of a workflow, before and after the migration to Step Functions.

`estimate(definition, inputs)` reads an ASL definition (a JSON-loaded dict) and compares:

- **before**: the hand-written orchestrator Lambda. It calls the functions one after another and
  sleeps through the Waits, so it is billed for the whole chain (the callees' durations plus the
  Wait seconds) and the latency is that sequential sum; the callees are billed too. A chain that
  takes longer than Lambda's 15-minute maximum, or than the handler's `Timeout`, could not have
  run at all. Functions are billed at their `MemorySize`, never past their `Timeout`.
- **after, Standard**: state transitions plus the callees. Each state entered on the path is one
  transition, whatever its type (Pass, Choice, Wait, Succeed and Fail too), and so is each retry;
  an inline Map bills its processor's states once per item (not the iterations themselves), a
  Distributed Map one transition per child execution it starts (an Express child is billed as
  an Express execution), a Parallel its branches' states. A loop is run `loop_rounds` times
  around (once unless given), then out of its head. `CostEstimate.transitions_by_type` and
  `transitions_how` say how the count was made.
- **after, Express**: requests plus duration (the state machine's latency, Waits included) plus
  the callees. An Express execution lasts at most 5 minutes.

The path is the slowest one from StartAt to an end (a Choice takes its slowest branch, the one
that succeeds among equally slow ones; Catch routes are not taken). The state machine's latency
runs Parallel branches side by side (the slowest counts) and a Map's items in
ceil(items / MaxConcurrency) rounds.

Every price is an assumption (`Pricing`, us-east-1 list prices as of 2025) and is listed in
`CostEstimate.assumptions`, to be printed with the result.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Any, Literal

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
    timeout_s: float | None = None  # its `Timeout`: Lambda stops it then (None: not known)


@dataclass(frozen=True)
class CostInputs:
    """What the estimate assumes about the workload. All fields have documented defaults.

    `functions` is keyed by the function a Task shows in the diagrams (`ValidatePayment` for
    `${ValidatePaymentFunctionArn}`, `validate-payment` for a Lambda ARN), or by the Task's state
    name; other Tasks use `default_function`. `map_items`, `wait_seconds`, `retries` and
    `loop_rounds` are keyed by state name: items per execution for a Map (else `items_per_map`),
    the seconds a Wait whose duration is only known at run time (`SecondsPath`, `Timestamp`, a
    JSONata expression) is expected to last, the retries a Task is expected to make per
    execution (none unless given), and the times a loop starting at that state is run around
    (once unless given).
    """

    executions_per_month: int = 100_000
    functions: Mapping[str, FunctionProfile] = field(default_factory=dict)
    default_function: FunctionProfile = FunctionProfile()
    orchestrator_memory_mb: int = 128
    orchestrator_timeout_s: float | None = None  # the handler's `Timeout` (kept by the starter)
    # migrate keeps the orchestrator as a starter Lambda, unless every event it had moves to the
    # state machine and nothing else invokes it: then no starter is deployed, nor billed
    starter: bool = True
    # the starter waits for a Standard execution too: callers read its answer, but Express
    # cannot run the workflow (migrate's "wait" mode), so it is billed for the whole run
    starter_waits: bool = False
    items_per_map: int = 10
    map_items: Mapping[str, int] = field(default_factory=dict)
    wait_seconds: Mapping[str, float] = field(default_factory=dict)
    retries: Mapping[str, int] = field(default_factory=dict)  # expected retries, by state
    loop_rounds: Mapping[str, int] = field(default_factory=dict)  # rounds, by loop head
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
    transitions_by_type: Counts  # (state type, transitions): how the count was made
    transitions_how: list[str]  # how Map items, loops and retries were counted
    recommendation: Recommendation
    reason: str
    express_blockers: list[str]
    notes: list[str]  # about this workflow: unknown durations, loops, non-Lambda tasks
    assumptions: list[str]  # the pricing and modelling assumptions, to print with the result


LAMBDA_MAX_MS = _asl.LAMBDA_MAX_SECONDS * 1000
STARTER_MS = 50.0  # the starter Lambda's own work: reading the event, starting the execution
EXPRESS_MAX_MS = _asl.EXPRESS_MAX_SECONDS * 1000


Counts = tuple[tuple[str, int], ...]  # (state type, transitions), sorted by type


def _merged(a: Counts, b: Counts, times: int = 1) -> Counts:
    total = dict(a)
    for kind, count in b:
        total[kind] = total.get(kind, 0) + count * times
    return tuple(sorted((k, v) for k, v in total.items() if v))


@dataclass(frozen=True)
class _Path:
    """Totals along a path, per execution."""

    after_ms: float = 0.0  # the state machine's latency
    before_ms: float = 0.0  # the orchestrator's latency: everything one after another
    transitions: int = 0
    lambda_requests: int = 0
    lambda_gb_seconds: float = 0.0
    longest_wait: tuple[float, str] = (0.0, "")  # (seconds, state)
    by_type: Counts = ()  # the transitions by the type of state that bills them
    how: tuple[str, ...] = ()  # how repeated parts were counted (Map items, loops, retries)
    fails: bool = False  # the path ends in a Fail state
    child_express_usd: float = 0.0  # Express child executions of a Distributed Map

    def then(self, other: _Path) -> _Path:
        return _Path(
            self.after_ms + other.after_ms,
            self.before_ms + other.before_ms,
            self.transitions + other.transitions,
            self.lambda_requests + other.lambda_requests,
            self.lambda_gb_seconds + other.lambda_gb_seconds,
            max(self.longest_wait, other.longest_wait),
            _merged(self.by_type, other.by_type),
            self.how + tuple(h for h in other.how if h not in self.how),
            self.fails or other.fails,  # a Fail state ends its path
            self.child_express_usd + other.child_express_usd,
        )

    def times(self, n: int) -> _Path:
        """`n` runs of this path one after another."""
        return _Path(
            n * self.after_ms,
            n * self.before_ms,
            n * self.transitions,
            n * self.lambda_requests,
            n * self.lambda_gb_seconds,
            self.longest_wait if n else (0.0, ""),
            _merged((), self.by_type, n),
            self.how,
            self.fails,
            n * self.child_express_usd,
        )

    def slowness(self) -> tuple[float, int, float, bool]:
        # the slowest; among equally slow paths, one that succeeds
        return (self.after_ms, self.transitions, self.before_ms, not self.fails)


def _step(kind: str, **rest: Any) -> _Path:
    """One state entered: one transition of its type."""
    return _Path(transitions=1, by_type=((kind, 1),), **rest)


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
        """The slowest path from StartAt to an end of a scope.

        A loop (a back edge of the depth-first walk, `u -> head`) is taken `loop_rounds` times
        around (one unless given), then the way out of its head: its states are counted once
        per round, and once more on the way out, as Step Functions bills them. Catch routes are
        not taken."""
        states = _asl.states(definition)
        first = _asl.start_at(definition)
        if first is None or first not in states:
            return _Path()

        def successors(name: str) -> list[str]:
            return [
                t.target
                for t in _asl.transitions(states[name])
                if t.target in states and t.kind in ("next", "choice", "default")
            ]

        # an iterative depth-first walk: the back edges (loops) and a post-order
        back: set[tuple[str, str]] = set()
        post: list[str] = []
        seen = {first}
        on_stack = {first}
        stack = [(first, iter(successors(first)))]
        while stack:
            name, pending = stack[-1]
            for succ in pending:
                if succ in on_stack:
                    back.add((name, succ))
                elif succ not in seen:
                    seen.add(succ)
                    on_stack.add(succ)
                    stack.append((succ, iter(successors(succ))))
                    break
            else:
                stack.pop()
                on_stack.discard(name)
                post.append(name)
        heads = {head for _, head in back}
        forward = {n: [s for s in successors(n) if (n, s) not in back] for n in post}
        own: dict[str, _Path] = {}
        tables: dict[str | None, dict[str, _Path | None]] = {}

        def here(name: str) -> _Path:
            if name not in own:
                own[name] = self.state(name, states[name])
            return own[name]

        def slowest(goal: str | None) -> dict[str, _Path | None]:
            """From each state, the slowest path to an end (goal None) or around to the loop
            head `goal`; a loop entered on the way is taken around first."""
            if goal in tables:
                return tables[goal]
            table: dict[str, _Path | None] = {}
            tables[goal] = table  # (a loop entered on the way never leads back to this one)
            inside = set(post) if goal is None else _reachable(goal, forward)
            for name in post:  # each state after the states it leads to (back edges aside)
                if name not in inside:
                    continue
                tails = [t for s in forward[name] if (t := table.get(s)) is not None]
                if goal is None and not successors(name):
                    tails.append(_Path())  # an end
                if goal is not None and (name, goal) in back:
                    tails.append(_Path())  # the end of one round
                if not tails:
                    table[name] = None
                    continue
                path = here(name).then(max(tails, key=_Path.slowness))
                if name in heads and name != goal:
                    around = slowest(name).get(name)
                    if around is not None:
                        rounds = max(0, self.inputs.loop_rounds.get(name, 1))
                        path = around.times(rounds).then(path)
                        how = (
                            f"loop at {name}: {rounds} round{'s' * (rounds != 1)} of "
                            f"{around.transitions}, then out"
                        )
                        path = replace(path, how=(how, *path.how))
                        self.note(
                            f"{name} starts a loop: counted {rounds} time{'s' * (rounds != 1)} "
                            f"around, then the way out (--rounds {name}=N to change it)"
                        )
                table[name] = path
            return table

        found = slowest(None).get(first)
        if found is None:
            self.note("no end is reached from StartAt: one pass over the states is counted")
            found = _Path()
            for name in post:
                found = found.then(here(name))
        return found

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
            path = _step("Parallel")
            for part in parts:
                path = path.then(part)
            return replace(
                path,
                after_ms=max((p.after_ms for p in parts), default=0.0),
                longest_wait=max((p.longest_wait for p in parts), default=(0.0, "")),
                fails=False,
            )
        if kind == "Map":
            return self.map(name, state)
        return _step(kind or "?", fails=kind == "Fail")

    def task(self, name: str, state: Json) -> _Path:
        target = _asl.task_target(state)
        profile = self.profile(name, target)
        ms = float(profile.duration_ms)
        pattern = _asl.integration_pattern(state)
        if pattern is not None:
            self.block(f"{name} uses the .{pattern} integration, which Express does not support")
            self.note(f"{name} waits for .{pattern}; its duration is taken as {ms:g} ms")
        retries = max(0, int(self.inputs.retries.get(name, 0)))
        backoff_ms = _backoff_seconds(state, retries) * 1000
        how = (f"{name}: {retries} retr{'ies' if retries != 1 else 'y'}",) if retries else ()
        if _asl.lambda_function(state) is None:
            self.note(f"{name} calls {target}, not Lambda: {ms:g} ms, its own charges not counted")
            waited = (1 + retries) * ms + backoff_ms
            return _Path(waited, waited, 1 + retries, by_type=(("Task", 1 + retries),), how=how)
        if profile.timeout_s is not None and ms > profile.timeout_s * 1000:
            self.note(
                f"{name}: {target} is assumed to take {_latency(ms)}, more than its Timeout of "
                f"{profile.timeout_s:g} s: counted as {profile.timeout_s:g} s (Lambda stops it)"
            )
            ms = profile.timeout_s * 1000
        gb_seconds = math.ceil(ms) / 1000 * profile.memory_mb / 1024
        calls = 1 + retries
        waited = calls * ms + backoff_ms
        if _asl.is_async_invoke(state):
            # an Event invoke returns once the function is queued: nobody waits for it, but the
            # function still runs and is billed
            self.note(f"{name} invokes {target} asynchronously: billed, but not waited for")
            waited = 0.0
        return _Path(
            waited,
            waited,
            calls,
            calls,
            calls * gb_seconds,
            by_type=(("Task", calls),),
            how=how,
        )

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
        return _step("Wait", after_ms=ms, before_ms=ms, longest_wait=(seconds, name))

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
        item_word = f"item{'s' * (items != 1)}"
        inner = replace(each, fails=False)
        if distributed:
            # one transition per child execution it starts; an Express child is billed as an
            # Express execution (requests and duration), a Standard one by its own transitions
            children = _Path(transitions=items, by_type=(("Map child execution", items),))
            if _asl.map_execution_type(state) == "EXPRESS":
                usd = _express_usd(each.after_ms, self.inputs.pricing)
                inner = replace(inner, transitions=0, by_type=(), child_express_usd=usd)
                how = f"{name}: {items} {item_word}, each an Express child execution"
            else:
                how = f"{name}: {items} {item_word} x ({each.transitions} states + 1 child)"
        else:
            # an inline Map bills the states each iteration enters, not the iteration itself
            children = _Path()
            how = f"{name}: {items} {item_word} x {each.transitions} states"
        path = _step("Map").then(children).then(inner.times(items))
        return replace(
            path,
            after_ms=rounds * each.after_ms,
            before_ms=items * each.before_ms,
            how=(how, *path.how),
        )


def _reachable(first: str, forward: Mapping[str, list[str]]) -> set[str]:
    """The states `first` leads to (itself included) without taking a back edge."""
    found = {first}
    pending = [first]
    while pending:
        for succ in forward.get(pending.pop(), ()):
            if succ not in found:
                found.add(succ)
                pending.append(succ)
    return found


def _backoff_seconds(state: Json, retries: int) -> float:
    """The seconds Step Functions waits before `retries` retries of the state's first retrier
    (IntervalSeconds, then times BackoffRate each time, at most MaxDelaySeconds)."""
    rules = _asl.retriers(state)
    if not retries or not rules:
        return 0.0
    rule = rules[0]
    interval = rule.get("IntervalSeconds", 1)
    rate = rule.get("BackoffRate", 2.0)
    cap = rule.get("MaxDelaySeconds")
    interval = float(interval) if _asl.is_number(interval) else 1.0
    rate = float(rate) if _asl.is_number(rate) else 2.0
    total = 0.0
    for attempt in range(retries):
        delay = interval * rate**attempt
        if _asl.is_number(cap):
            delay = min(delay, float(cap))
        total += delay
    return total


def _express_usd(after_ms: float, pricing: Pricing) -> float:
    """One Express execution: its request and its duration at the assumed memory."""
    increment = pricing.express_duration_increment_ms
    billed_ms = max(increment, math.ceil(after_ms / increment) * increment)
    chunk = pricing.express_memory_chunk_mb
    memory_gb = math.ceil(pricing.express_memory_mb / chunk) * chunk / 1024
    return (
        pricing.express_per_million_requests / 1_000_000
        + billed_ms / 1000 * memory_gb * pricing.express_per_gb_second
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
    timeout_s = inputs.orchestrator_timeout_s
    limit_ms = float(LAMBDA_MAX_MS)
    if timeout_s is not None and timeout_s * 1000 < limit_ms:
        limit_ms = timeout_s * 1000
    before_possible = path.before_ms <= limit_ms
    impossible = ""
    if not before_possible:
        wait_s, wait_state = path.longest_wait
        if wait_s * 1000 > limit_ms:
            impossible = f"it would sleep {_asl.duration(wait_s)} in {wait_state}"
        else:
            impossible = f"it would run {_latency(path.before_ms)}"
        if limit_ms < LAMBDA_MAX_MS:
            impossible += f", and its Timeout is {timeout_s:g} s"
        else:
            impossible += ", and a Lambda stops after 15 min"

    # the starter Lambda migrate keeps in the orchestrator's place (with the handler's memory
    # and Timeout): one request per execution; it waits for an Express run
    # (StartSyncExecution) and returns at once for Standard; Lambda stops it at its Timeout
    def starter(waits_ms: float) -> float:
        if not inputs.starter:
            return 0.0
        if timeout_s is not None:
            waits_ms = min(waits_ms, timeout_s * 1000)
        seconds = math.ceil(waits_ms) / 1000 * inputs.orchestrator_memory_mb / 1024
        return executions * (lambda_request + seconds * pricing.lambda_per_gb_second)

    standard = (
        executions * path.transitions * pricing.standard_per_thousand_transitions / 1000
        + callees
        + executions * path.child_express_usd
        + starter(STARTER_MS + (path.after_ms if inputs.starter_waits else 0.0))
    )

    wait_s, wait_state = path.longest_wait
    if wait_s * 1000 > EXPRESS_MAX_MS:
        walker.block(f"{wait_state} waits {_asl.duration(wait_s)}")
    if path.after_ms > EXPRESS_MAX_MS:
        walker.block(f"an execution takes {_latency(path.after_ms)}")
    express: float | None = None
    if not walker.blockers:
        express = (
            executions * _express_usd(path.after_ms, pricing)
            + callees
            + executions * path.child_express_usd
            + starter(STARTER_MS + path.after_ms)
        )
        if (
            inputs.starter
            and timeout_s is not None
            and STARTER_MS + path.after_ms > timeout_s * 1000
        ):
            walker.note(
                f"as Express, the starter waits {_latency(STARTER_MS + path.after_ms)} for the "
                f"execution, more than the handler's Timeout of {timeout_s:g} s: raise it"
            )

    if inputs.starter and inputs.starter_waits:
        walker.note(
            f"as Standard, the starter waits {_latency(STARTER_MS + path.after_ms)} for each "
            "execution (a caller reads its answer), and is billed for it"
            + (
                f", up to its Timeout of {timeout_s:g} s"
                if timeout_s is not None and STARTER_MS + path.after_ms > timeout_s * 1000
                else ""
            )
        )
    if not inputs.starter:
        walker.note(
            "no starter Lambda after the migration: every event the orchestrator had starts the "
            "state machine itself and nothing else invokes the function, so migrate removes it"
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
        transitions_by_type=path.by_type,
        transitions_how=list(path.how),
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
        f"no free tier, no retries unless given; check current pricing for your region",
        f"Lambda: {_price(p.lambda_per_gb_second)} per GB-second (billed per ms) and "
        f"{_price(p.lambda_per_million_requests)} per 1M requests",
        f"Step Functions Standard: {_price(p.standard_per_thousand_transitions)} per 1,000 "
        f"state transitions: every state entered on the path is one (Pass, Choice, Wait, "
        f"Succeed and Fail too), and each retry; an inline Map bills the states of each item, "
        f"a Distributed Map one per child execution; Express bills requests and duration "
        f"instead",
        f"Step Functions Express: {_price(p.express_per_million_requests)} per 1M requests and "
        f"{_price(p.express_per_gb_second)} per GB-second (first tier), duration rounded up to "
        f"{p.express_duration_increment_ms} ms, memory billed in {p.express_memory_chunk_mb} MB "
        f"chunks, assumed {p.express_memory_mb} MB",
        f"functions take {d.duration_ms:g} ms unless given, with the MemorySize their template "
        f"gives (else {d.memory_mb} MB), at most their Timeout; the "
        f"orchestrator ({inputs.orchestrator_memory_mb} MB) is billed while it calls them and "
        f"sleeps, one after another (its own work is not counted); an Event invoke is billed "
        f"but not waited for",
        f"after the migration the orchestrator is a starter Lambda ({STARTER_MS:g} ms of its "
        f"own, {inputs.orchestrator_memory_mb} MB): it waits for an Express execution "
        f"(StartSyncExecution) and returns at once for Standard (StartExecution); none when "
        f"every event moves to the state machine and nothing else invokes the orchestrator",
        "path: the slowest from StartAt; a Choice takes its slowest branch, Catch routes are "
        "not taken, a loop runs once around (unless given) and then out; Step Functions' own "
        "per-state "
        "overhead is not in the latency",
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


_TYPE_ORDER = ("Task", "Choice", "Pass", "Wait", "Parallel", "Map", "Map child execution")


def transitions_counted(e: CostEstimate) -> str:
    """How the Standard transitions were counted: `9 = 5 Task + 2 Choice + 1 Parallel + 1
    Succeed`, then how Map items, loops and retries were counted."""
    ranked = sorted(
        e.transitions_by_type,
        key=lambda item: (_TYPE_ORDER.index(item[0]) if item[0] in _TYPE_ORDER else 99, item[0]),
    )
    parts = " + ".join(f"{count:,} {kind}" for kind, count in ranked) or "none"
    text = f"{e.transitions_per_execution:,} = {parts}"
    if e.transitions_how:
        text += f" ({'; '.join(e.transitions_how)})"
    return text


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
        f"  transitions: {transitions_counted(e)}",
        f"  recommended: {e.recommendation}: {e.reason}",
    ]
    lines.extend(f"  note: {n}" for n in e.notes)
    if assumptions:
        lines.append("  assumptions:")
        lines.extend(f"    - {a}" for a in e.assumptions)
    return "\n".join(lines) + "\n"
