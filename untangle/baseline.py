"""Baselines: the findings a project already has, so that CI fails only on new ones."""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterable

from untangle.findings import Finding

FORMAT_VERSION = 1


class BaselineError(Exception):
    pass


def dumps(findings: Iterable[Finding]) -> str:
    entries = [
        {
            "fingerprint": f.fingerprint,
            "rule": f.rule,
            "path": f.path,
            "line": f.line,
            "handler": f.handler,
            "handlers": list(f.handlers),
            "message": f.message,
        }
        for f in findings
    ]
    return json.dumps({"version": FORMAT_VERSION, "findings": entries}, indent=2) + "\n"


def loads(text: str, source: str = "baseline") -> Counter[str]:
    """Fingerprints, with how many findings share each one."""
    try:
        document = json.loads(text)
    except json.JSONDecodeError as exc:
        raise BaselineError(f"{source}: not a baseline file: {exc}") from exc
    if not isinstance(document, dict) or document.get("version") != FORMAT_VERSION:
        raise BaselineError(f"{source}: not an untangle baseline (version {FORMAT_VERSION})")
    entries = document.get("findings")
    if not isinstance(entries, list):
        raise BaselineError(f"{source}: `findings` must be a list")
    fingerprints: Counter[str] = Counter()
    for entry in entries:
        if isinstance(entry, dict) and isinstance(entry.get("fingerprint"), str):
            fingerprints[entry["fingerprint"]] += 1
    return fingerprints


def new_findings(findings: Iterable[Finding], baseline: Counter[str]) -> list[Finding]:
    remaining = Counter(baseline)
    fresh = []
    for finding in findings:
        if remaining[finding.fingerprint] > 0:
            remaining[finding.fingerprint] -= 1
            continue
        # a baseline written when each handler had its own finding of this place
        legacy = [f for f in finding.legacy_fingerprints if remaining[f] > 0]
        if legacy:
            for fingerprint in legacy:
                remaining[fingerprint] -= 1
        else:
            fresh.append(finding)
    return fresh
