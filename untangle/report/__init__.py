"""Findings → text, JSON, SARIF or GitHub annotations. Pure functions returning strings."""

from __future__ import annotations

from collections.abc import Callable

from untangle.report.formats import github, json_report, sarif, text

FORMATS: dict[str, Callable[..., str]] = {
    "text": text,
    "json": json_report,
    "sarif": sarif,
    "github": github,
}

__all__ = ["FORMATS"]
