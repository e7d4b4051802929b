"""Scenario model -> Amazon States Language. Pure and deterministic: same scenario, same bytes.

Transitions per step kind (Standard workflows bill each one): a send is 1 Task (it re-checks consent,
suppression and the send record itself); a wait is 1 Wait state that never polls; the end is 1 Succeed.
"""

from __future__ import annotations

import json
from typing import Any

from shared.scenario import Scenario, SendEmail, Wait

ACT_FUNCTION = "${ActFunctionArn}"  # filled by the template's DefinitionSubstitutions
DONE = "Done"
FAILED = "Step failed"

RETRYABLE = [
    "Lambda.ServiceException",
    "Lambda.AWSLambdaException",
    "Lambda.SdkClientException",
    "Lambda.TooManyRequestsException",
    "States.Timeout",
    "SendDeferred",
]


def _duration_label(seconds: int) -> str:
    for unit, size in (("w", 7 * 86400), ("d", 86400), ("h", 3600), ("m", 60)):
        if seconds % size == 0:
            return f"{seconds // size}{unit}"
    return f"{seconds}s"


def _offset_label(seconds: int) -> str:
    if seconds % 86400 == 0:
        return f"J+{seconds // 86400}"
    if seconds % 3600 == 0:
        return f"H+{seconds // 3600}"
    return f"T+{_duration_label(seconds)}"


def state_names(scenario: Scenario) -> list[str]:
    """Readable, unique names: what operators see in the Step Functions console graph."""
    names: list[str] = []
    elapsed = 0
    for step in scenario.steps:
        if isinstance(step, Wait):
            elapsed += step.seconds
            name = f"Wait {_duration_label(step.seconds)} until {_offset_label(elapsed)}"
        else:
            name = f"Send email {step.id}"
        while name in names:
            name += "'"
        names.append(name)
    return names


def _send_email(scenario: Scenario, step: SendEmail, next_state: str) -> dict[str, Any]:
    return {
        "Type": "Task",
        "Comment": f"Renders {step.template} and sends it once, after re-checking consent and suppression.",
        "Resource": "arn:aws:states:::lambda:invoke",
        "Parameters": {
            "FunctionName": ACT_FUNCTION,
            "Payload": {
                "action": "send_email",
                "scenario": scenario.id,
                "step": step.id,
                "template": step.template,
                "category": scenario.category,
                "execution.$": "$$.Execution.Id",
                "contact_id.$": "$.contact_id",
                "trigger.$": "$.trigger",
            },
        },
        "ResultSelector": {"status.$": "$.Payload.status"},
        "ResultPath": "$.last",
        "Retry": [
            {
                "ErrorEquals": RETRYABLE,
                "IntervalSeconds": 2,
                "MaxAttempts": 6,
                "BackoffRate": 2,
                "JitterStrategy": "FULL",
            }
        ],
        "Catch": [{"ErrorEquals": ["States.ALL"], "ResultPath": "$.error", "Next": FAILED}],
        "Next": next_state,
    }


def compile_scenario(scenario: Scenario) -> dict[str, Any]:
    names = state_names(scenario)
    states: dict[str, Any] = {}
    for index, step in enumerate(scenario.steps):
        next_state = names[index + 1] if index + 1 < len(names) else DONE
        if isinstance(step, Wait):
            states[names[index]] = {"Type": "Wait", "Seconds": step.seconds, "Next": next_state}
        else:
            states[names[index]] = _send_email(scenario, step, next_state)
    states[DONE] = {"Type": "Succeed"}
    if any(isinstance(step, SendEmail) for step in scenario.steps):  # Step Functions refuses unreachable states
        states[FAILED] = {
            "Type": "Fail",
            "Error": "StepFailed",
            "Cause": "A step failed after its retries; the error is in the execution history.",
        }
    return {
        "Comment": f"parcours scenario {scenario.id}: {scenario.name}. "
        f"Compiled from scenarios/{scenario.source}; do not edit.",
        "StartAt": names[0],
        "States": states,
    }


def to_json(definition: dict[str, Any]) -> str:
    return json.dumps(definition, indent=2, ensure_ascii=False) + "\n"


def catalogue_entry(scenario: Scenario) -> dict[str, Any]:
    """What the process function needs to start this scenario, without reading YAML at run time."""
    return {
        "trigger": {"event": scenario.trigger_event},
        "entry": {"consent": scenario.entry_consent},
        "category": scenario.category,
    }
