"""Raw rule output → the findings a user sees: attributed to handlers, suppressed, selected,
fingerprinted."""

from __future__ import annotations

import hashlib
import os
from collections.abc import Iterable
from dataclasses import dataclass, replace

from untangle.analysis.program import Program
from untangle.rules import ALL_RULES, Rule, resolve_rule


@dataclass(frozen=True)
class Finding:
    rule: str
    path: str
    line: int
    column: int
    end_line: int
    end_column: int
    handler: str | None
    target: str | None
    message: str
    fingerprint: str = ""

    def sort_key(self) -> tuple[str, int, int, str, str]:
        return (self.path, self.line, self.column, self.rule, self.handler or "")


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
            handlers: tuple[str | None, ...] = program.handlers_reaching(raw.function)
            if not handlers:
                if rule.needs_handler:
                    continue
                handlers = (None,)
            for handler in handlers:
                message = raw.message
                if handler is None:
                    message += "; no handler in the scanned tree reaches this code"
                findings.append(
                    Finding(
                        raw.rule,
                        module.path,
                        raw.span.line,
                        raw.span.column,
                        raw.span.end_line,
                        raw.span.end_column,
                        handler,
                        raw.target,
                        message,
                    )
                )
    unique = sorted(set(findings), key=Finding.sort_key)
    return _fingerprinted(unique, program)


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
    result = []
    for finding in findings:
        text = lines.get(finding.path, {}).get(finding.line, "")
        # independent of how the paths were typed and of where the scan started
        handler = ""
        if finding.handler:
            handler_path = program.module_of(finding.handler).path
            handler = f"{_stable_path(handler_path)}:{program.functions[finding.handler].name}"
        identity = (finding.rule, _stable_path(finding.path), handler, text)
        occurrence = counts.get(identity, 0)
        counts[identity] = occurrence + 1
        digest = hashlib.sha256("\x1f".join((*identity, str(occurrence))).encode()).hexdigest()
        result.append(replace(finding, fingerprint=digest[:20]))
    return result


def _stable_path(path: str) -> str:
    return os.path.relpath(os.path.abspath(path)).replace(os.sep, "/")
