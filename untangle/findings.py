"""Raw rule output → the findings a user sees: attributed to handlers, suppressed, selected,
fingerprinted."""

from __future__ import annotations

import hashlib
import os
from collections.abc import Iterable
from dataclasses import dataclass, replace

from untangle.analysis.patterns import outside_lambda_code
from untangle.analysis.program import Program
from untangle.rules import ALL_RULES, Rule, resolve_rule
from untangle.rules.base import RawFinding, target_of


@dataclass(frozen=True)
class Finding:
    rule: str
    path: str
    line: int
    column: int
    end_line: int
    end_column: int
    handler: str | None  # the first of `handlers` (None: no handler in the tree reaches it)
    target: str | None  # None also where the handlers invoke different functions: `targets`
    message: str
    fingerprint: str = ""
    # every handler that reaches the code: one finding per place, however many reach it
    handlers: tuple[str, ...] = ()
    # (handler, target) for each handler, where they invoke different functions
    targets: tuple[tuple[str, str | None], ...] = ()
    # what the finding was fingerprinted as when there was one finding per handler: a
    # baseline written then still matches it
    legacy_fingerprints: tuple[str, ...] = ()
    # for each handler, the calls that lead from it to this place: ((path, line, column), …)
    call_paths: tuple[tuple[str, tuple[tuple[str, int, int], ...]], ...] = ()

    def sort_key(self) -> tuple[str, int, int, str, str]:
        return (self.path, self.line, self.column, self.rule, self.handler or "")


OUTSIDE_LAMBDA = "UNT007"


def selected_rules(select: Iterable[str] = (), ignore: Iterable[str] = ()) -> list[type[Rule]]:
    """Rules by id or name; unknown names raise `ValueError` (a usage error)."""
    chosen: list[type[Rule]] = []
    for name in select:
        rule = resolve_rule(name)
        if rule is None:
            raise ValueError(f"unknown rule {name!r} (see `untangle rules`)")
        chosen.append(rule)
    ignored = set()
    for name in ignore:
        rule = resolve_rule(name)
        if rule is None:
            raise ValueError(f"unknown rule {name!r} (see `untangle rules`)")
        ignored.add(rule.id)
    return [r for r in (chosen or list(ALL_RULES)) if r.id not in ignored]


def check(program: Program, rules: Iterable[type[Rule]]) -> list[Finding]:
    findings: list[Finding] = []
    for rule_class in rules:
        rule = rule_class()
        for raw in rule.check(program):
            module = program.module_of(raw.function)
            if _suppressed(module.suppressions, raw.rule, raw.span.line, raw.span.end_line):
                continue
            handlers = (
                raw.handlers
                if raw.handlers is not None
                else program.handlers_reaching(raw.function)
            )
            if not handlers and rule.needs_handler:
                continue
            if raw.rule != OUTSIDE_LAMBDA and outside_lambda_code(program, raw.function):
                continue  # a test or a script: its invokes are UNT007, nothing else is said
            message, target, targets = raw.message, raw.target, _targets(program, raw, handlers)
            if len({t for _, t in targets}) > 1:
                # each handler names another function: said per handler, never as a union
                message = message.replace(f"`{raw.target}`", "the function each handler names")
                target = None
            if not handlers and raw.rule != OUTSIDE_LAMBDA:
                message += "; no handler in the scanned tree reaches this code"
            findings.append(
                Finding(
                    raw.rule,
                    module.path,
                    raw.span.line,
                    raw.span.column,
                    raw.span.end_line,
                    raw.span.end_column,
                    handlers[0] if handlers else None,
                    target if len({t for _, t in targets}) <= 1 else None,
                    message,
                    handlers=handlers,
                    targets=targets if len({t for _, t in targets}) > 1 else (),
                    call_paths=tuple(
                        (handler, _call_path(program, handler, raw.function))
                        for handler in handlers
                    ),
                )
            )
    unique = sorted(set(findings), key=Finding.sort_key)
    return _fingerprinted(unique, program)


def _call_path(program: Program, handler: str, function: str) -> tuple[tuple[str, int, int], ...]:
    return tuple(
        (program.module_of(edge.caller).path, edge.site.span.line, edge.site.span.column)
        for edge in program.call_path(handler, function)
    )


def _targets(
    program: Program, raw: RawFinding, handlers: tuple[str, ...]
) -> tuple[tuple[str, str | None], ...]:
    """The invoked function as each handler's call paths name it."""
    site = raw.invoke
    if site is None or len(handlers) < 2:
        return ()
    name = next((sym for key, sym in site.site.kwargs if key == "FunctionName"), None)
    if name is None:
        return ()
    return tuple(
        (handler, target_of(site, program.values_from(handler, site.function, name)))
        for handler in handlers
    )


def _suppressed(suppressions: Iterable[object], rule_id: str, line: int, end_line: int) -> bool:
    rule = resolve_rule(rule_id)
    names = {rule_id, rule.name} if rule else {rule_id}
    for suppression in suppressions:
        s_line = getattr(suppression, "line", -1)
        rules = getattr(suppression, "rules", None)
        if s_line != 0 and not line <= s_line <= end_line:
            continue
        if rules is None or any(r.upper() in names or r.lower() in names for r in rules):
            return True
    return False


def _fingerprinted(findings: list[Finding], program: Program) -> list[Finding]:
    lines: dict[str, dict[int, str]] = {}
    for module in program.modules.values():
        lines[module.path] = dict(module.lines)
    counts: dict[tuple[str, ...], int] = {}

    def digest(identity: tuple[str, ...]) -> str:
        occurrence = counts.get(identity, 0)
        counts[identity] = occurrence + 1
        return hashlib.sha256("\x1f".join((*identity, str(occurrence))).encode()).hexdigest()[:20]

    result = []
    for finding in findings:
        text = lines.get(finding.path, {}).get(finding.line, "")
        # independent of how the paths were typed, of where the scan started, and of which
        # handlers reach the place
        path = _stable_path(finding.path)
        fingerprint = digest((finding.rule, path, "*", text))
        legacy = tuple(
            digest((finding.rule, path, _handler_identity(program, handler), text))
            for handler in finding.handlers or ("",)
        )
        result.append(replace(finding, fingerprint=fingerprint, legacy_fingerprints=legacy))
    return result


def _handler_identity(program: Program, handler: str) -> str:
    if not handler:
        return ""
    handler_path = program.module_of(handler).path
    return f"{_stable_path(handler_path)}:{program.functions[handler].name}"


def _stable_path(path: str) -> str:
    return os.path.relpath(os.path.abspath(path)).replace(os.sep, "/")
