"""The cost inputs of one workflow: what its template says about the functions (`MemorySize`,
`Timeout`), then what the user gave on the command line (`--duration`, `--memory`, ...)."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import replace
from typing import Any

from untangle.render import _asl
from untangle.render.cost import CostInputs, FunctionProfile
from untangle.templates import TemplateHandler

# what Lambda uses when a template declares a function without them
LAMBDA_DEFAULT_MEMORY_MB = 128
LAMBDA_DEFAULT_TIMEOUT_S = 3.0


def shown_name(placeholder: str) -> str | None:
    """How a Task invoking `${ValidatePaymentFunctionArn}` names its function in diagrams and
    estimates (`ValidatePayment`)."""
    task = {
        "Type": "Task",
        "Resource": "arn:aws:states:::lambda:invoke",
        "Arguments": {"FunctionName": placeholder},
    }
    return _asl.lambda_function(task)


def declared(template: TemplateHandler) -> FunctionProfile:
    """A function as its template declares it (Lambda's defaults where it says nothing)."""
    return FunctionProfile(
        memory_mb=template.memory_mb or LAMBDA_DEFAULT_MEMORY_MB,
        timeout_s=template.timeout_s or LAMBDA_DEFAULT_TIMEOUT_S,
    )


def orchestrator_of(workflow: Any, templates: list[TemplateHandler]) -> TemplateHandler | None:
    """The template entry of the workflow's handler: the starter keeps its memory and Timeout."""
    path = os.path.abspath(workflow.path)
    function = workflow.handler.rsplit(".", 1)[-1]
    for template in templates:
        if template.file == path and template.function == function:
            return template
    return None


def template_profiles(
    workflow: Any, templates: list[TemplateHandler]
) -> dict[str, FunctionProfile]:
    """The functions the workflow calls, by the name its Tasks show, as their templates declare
    them: the orchestrator's own template first, else the only template declaring one."""
    own = orchestrator_of(workflow, templates)
    found: dict[str, FunctionProfile] = {}
    for ref in workflow.functions:
        shown = shown_name(ref.placeholder)
        logical = ref.placeholder.strip("${}").removesuffix("Arn")
        candidates = [t for t in templates if t.logical_id == logical]
        if own is not None and any(t.template == own.template for t in candidates):
            candidates = [t for t in candidates if t.template == own.template]
        if shown and len(candidates) == 1:
            found[shown] = declared(candidates[0])
    return found


def inputs_for(
    workflow: Any,
    templates: list[TemplateHandler],
    base: CostInputs,
    durations: Mapping[str, float] | None = None,
    memories: Mapping[str, int] | None = None,
) -> CostInputs:
    """`base` with the workflow's functions and orchestrator as declared, then the durations
    and memory sizes given by name (they win over the template)."""
    profiles = template_profiles(workflow, templates)
    for name, ms in (durations or {}).items():
        profiles[name] = replace(profiles.get(name, base.default_function), duration_ms=ms)
    for name, mb in (memories or {}).items():
        profiles[name] = replace(profiles.get(name, base.default_function), memory_mb=mb)
    own = orchestrator_of(workflow, templates)
    if own is None:
        return replace(base, functions=profiles)
    starter = declared(own)
    return replace(
        base,
        functions=profiles,
        orchestrator_memory_mb=starter.memory_mb,
        orchestrator_timeout_s=starter.timeout_s,
    )
