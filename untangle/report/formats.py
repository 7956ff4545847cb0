from __future__ import annotations

import json
import os
import urllib.parse
from collections.abc import Sequence
from typing import Any

from untangle import __version__
from untangle.facts.model import SourceError
from untangle.findings import Finding
from untangle.rules import ALL_RULES, RULES_BY_ID

_BOLD, _RED, _CYAN, _DIM, _RESET = "\033[1m", "\033[31m", "\033[36m", "\033[2m", "\033[0m"


def text(
    findings: Sequence[Finding],
    errors: Sequence[SourceError],
    files_scanned: int,
    color: bool = False,
) -> str:
    """`path:line:col: ID message [handler]`, one a line, then a summary line."""
    lines = []
    for f in findings:
        where = f"{f.path}:{f.line}:{f.column}:"
        handler = _handlers_text(f)
        if color:
            lines.append(
                f"{_BOLD}{where}{_RESET} {_RED}{f.rule}{_RESET} {f.message}{_DIM}{handler}{_RESET}"
            )
        else:
            lines.append(f"{where} {f.rule} {f.message}{handler}")
    for e in errors:
        where = f"{e.path}:{e.line}:" if e.line else f"{e.path}:"
        label = f"{_CYAN}error{_RESET}" if color else "error"
        lines.append(f"{where} {label}: {e.message}")
    noun = "finding" if len(findings) == 1 else "findings"
    summary = f"{len(findings)} {noun} in {files_scanned} files"
    if errors:
        summary += f", {len(errors)} file(s) could not be scanned"
    lines.append(summary)
    return "\n".join(lines) + "\n"


def _handlers_text(f: Finding) -> str:
    if not f.handlers:
        return ""
    if len(f.handlers) == 1:
        return f" [handler {f.handlers[0]}]"
    shown = ", ".join(f.handlers[:3])
    more = f" and {len(f.handlers) - 3} more" if len(f.handlers) > 3 else ""
    return f" [{len(f.handlers)} handlers: {shown}{more}]"


def _finding_dict(f: Finding) -> dict[str, Any]:
    return {
        "rule": f.rule,
        "path": f.path,
        "line": f.line,
        "column": f.column,
        "end_line": f.end_line,
        "end_column": f.end_column,
        "handler": f.handler,
        "handlers": list(f.handlers),
        "target": f.target,
        "targets": {handler: target for handler, target in f.targets},
        "message": f.message,
        "fingerprint": f.fingerprint,
    }


def json_report(
    findings: Sequence[Finding], errors: Sequence[SourceError], files_scanned: int, **_: Any
) -> str:
    document = {
        "findings": [_finding_dict(f) for f in findings],
        "errors": [{"path": e.path, "line": e.line, "message": e.message} for e in errors],
        "files_scanned": files_scanned,
    }
    return json.dumps(document, indent=2) + "\n"


def _uri(path: str) -> str:
    """A relative URI reference (RFC 3986): `/`-separated and percent-encoded, so that spaces,
    `%`, `#`, `?` and a `:` in the first segment (which would read as a scheme) survive."""
    relative = os.path.relpath(path) if os.path.isabs(path) else path
    return urllib.parse.quote(relative.replace(os.sep, "/"), safe="/")


def sarif(
    findings: Sequence[Finding], errors: Sequence[SourceError], files_scanned: int, **_: Any
) -> str:
    """SARIF 2.1.0, as GitHub code scanning reads it."""
    rules = [
        {
            "id": rule.id,
            "name": rule.name,
            "shortDescription": {"text": rule.summary},
            "fullDescription": {"text": rule.explanation()},
            "help": {"text": rule.explanation()},
            "defaultConfiguration": {"level": "warning"},
        }
        for rule in ALL_RULES
    ]
    index = {rule.id: i for i, rule in enumerate(ALL_RULES)}
    results = []
    for f in findings:
        result: dict[str, Any] = {
            "ruleId": f.rule,
            "ruleIndex": index[f.rule],
            "level": "warning",
            "message": {"text": f.message},
            "locations": [
                {
                    "physicalLocation": {
                        "artifactLocation": {"uri": _uri(f.path), "uriBaseId": "%SRCROOT%"},
                        "region": {
                            "startLine": f.line,
                            "startColumn": f.column,
                            "endLine": f.end_line,
                            "endColumn": f.end_column,
                        },
                    }
                }
            ],
            "partialFingerprints": {"untangle/v1": f.fingerprint},
        }
        if f.handlers:
            result["properties"] = {
                "handler": f.handler,
                "handlers": list(f.handlers),
                "target": f.target,
                **({"targets": dict(f.targets)} if f.targets else {}),
            }
            related = [
                {
                    "id": index,
                    "message": {"text": f"call on the path from handler {handler}"},
                    "physicalLocation": {
                        "artifactLocation": {"uri": _uri(path), "uriBaseId": "%SRCROOT%"},
                        "region": {"startLine": line, "startColumn": column},
                    },
                }
                for index, (handler, path, line, column) in enumerate(
                    (handler, *call) for handler, calls in f.call_paths for call in calls
                )
            ]
            if related:
                result["relatedLocations"] = related
        results.append(result)
    notifications = [
        {
            "level": "error",
            "message": {"text": e.message},
            "locations": [
                {
                    "physicalLocation": {
                        "artifactLocation": {"uri": _uri(e.path), "uriBaseId": "%SRCROOT%"},
                        **({"region": {"startLine": e.line}} if e.line else {}),
                    }
                }
            ],
        }
        for e in errors
    ]
    document = {
        "$schema": "https://json.schemastore.org/sarif-2.1.0.json",
        "version": "2.1.0",
        "runs": [
            {
                "tool": {
                    "driver": {
                        "name": "untangle",
                        "version": __version__,
                        "informationUri": "https://pypi.org/project/untangle-lambda/",
                        "rules": rules,
                    }
                },
                "columnKind": "unicodeCodePoints",
                "results": results,
                "invocations": [
                    {
                        "executionSuccessful": True,
                        "toolExecutionNotifications": notifications,
                    }
                ],
                "properties": {"filesScanned": files_scanned},
            }
        ],
    }
    return json.dumps(document, indent=2) + "\n"


def _escape_data(value: str) -> str:
    return value.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")


def _escape_property(value: str) -> str:
    return _escape_data(value).replace(":", "%3A").replace(",", "%2C")


def github(
    findings: Sequence[Finding], errors: Sequence[SourceError], files_scanned: int, **_: Any
) -> str:
    """GitHub Actions workflow commands: one `::warning` per finding, `::error` per file."""
    lines = []
    for f in findings:
        rule = RULES_BY_ID[f.rule]
        props = (
            f"file={_escape_property(f.path)},line={f.line},col={f.column},"
            f"endLine={f.end_line},endColumn={f.end_column},"
            f"title={_escape_property(f'{f.rule} {rule.name}')}"
        )
        lines.append(f"::warning {props}::{_escape_data(f.message)}")
    for e in errors:
        props = f"file={_escape_property(e.path)}" + (f",line={e.line}" if e.line else "")
        lines.append(f"::error {props}::{_escape_data(e.message)}")
    return "\n".join(lines) + ("\n" if lines else "")
