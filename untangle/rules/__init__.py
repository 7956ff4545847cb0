"""The rules scan applies, by id."""

from __future__ import annotations

from untangle.rules.async_invoke import AsyncInvoke
from untangle.rules.base import RawFinding, Rule
from untangle.rules.fan_out import FanOut
from untangle.rules.invoke_outside_handler import InvokeOutsideHandler
from untangle.rules.retry_loop import RetryLoop
from untangle.rules.self_invoke import SelfInvoke
from untangle.rules.sleep_in_handler import SleepInHandler
from untangle.rules.sync_invoke import SyncInvoke

ALL_RULES: tuple[type[Rule], ...] = (
    SyncInvoke,
    AsyncInvoke,
    SleepInHandler,
    RetryLoop,
    FanOut,
    SelfInvoke,
    InvokeOutsideHandler,
)
RULES_BY_ID: dict[str, type[Rule]] = {rule.id: rule for rule in ALL_RULES}
RULES_BY_NAME: dict[str, type[Rule]] = {rule.name: rule for rule in ALL_RULES}


def resolve_rule(name: str) -> type[Rule] | None:
    """A rule by id (`UNT001`, case-insensitive) or by name (`sync-invoke`)."""
    return RULES_BY_ID.get(name.upper()) or RULES_BY_NAME.get(name.lower())


__all__ = ["ALL_RULES", "RULES_BY_ID", "RawFinding", "Rule", "resolve_rule"]
