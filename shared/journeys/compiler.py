"""Scenario model -> Amazon States Language. Pure and deterministic: same scenario, same bytes.

Transitions per step kind (Standard workflows bill each one; `parcours cost` counts them down each path):
  send_email, send_sms                                        1 (one Task re-checks consent, suppression, the
                                                                 goal (and SNS's opt-out list), then sends once)
                                                              +4 per deferral, only when it happens: in a marketing
                                                                 scenario the act function raises HeldBack when the
                                                                 sending habits hold the message back (caps, quiet
                                                                 hours, French SMS hours); the Task Catches it to two
                                                                 Passes reading the seconds, a Wait on them, the
                                                                 Task again
  notify_crm                                                  1 (one Task POSTs the signed notification)
  set_attribute, add_score, add/remove_from_list              1 (one Task)
  wait                                                        1 (one Wait state, never polls)
  if                                                          2 (a Task evaluates the condition now, a Choice)
  choose                                                      2 (a Task finds the first case that holds, a Choice)
  split                                                       1 (a Choice on the contact's stable bucket)
  wait_until (a time of day, a date, an anniversary)          2 (a Task works out the seconds, a Wait on them)
  unsubscribe                                                 1 (one Task)
  a date trigger's leading wait                               2 (the same as wait_until: until the day's time)
  wait_for                                                    1 (a Task holding a task token until the event
                                                                 or its timeout; nothing polls)
  the end of the steps                                        0 (the last Task or Wait ends the execution)
  exit, a branch left empty                                   1 (the Succeed state "Done": a Choice cannot end
                                                                 an execution, and an exit mid-way needs a target)
  entry cap (`entry: {cap: N}`)                               +1 per execution: a final "Leave" Task before
                                                                 the end (also on the failure path) frees the
                                                                 contact's place and closes the enrolment
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from shared.journeys import pacing
from shared.journeys.scenario import (
    AddScore,
    Choose,
    Exit,
    If,
    ListChange,
    NotifyCrm,
    Scenario,
    SendEmail,
    SendSms,
    SetAttribute,
    Split,
    Step,
    Unsubscribe,
    Wait,
    WaitForEvent,
    WaitUntil,
    WaitUntilDate,
)

ACT_FUNCTION = "${ActFunctionArn}"  # filled by the template's DefinitionSubstitutions
DONE = "Done"
FAILED = "Step failed"
LEAVE = "Leave"  # capped scenarios only: frees the contact's place, then Done
LEAVE_FAILED = "Leave after a failure"  # ... then Step failed

RETRYABLE = [
    "Lambda.ServiceException",
    "Lambda.AWSLambdaException",
    "Lambda.SdkClientException",
    "Lambda.TooManyRequestsException",
    "SendDeferred",  # SES or SNS busy: nothing went out
    "CrmDeferred",  # the CRM unreachable, too slow, 429 or 5xx
    "StorageBusy",  # DynamoDB throttling or unavailable (shared.storage)
]
# An outage is waited out for about a day, then the step fails (ScenarioFailuresAlarm): intervals doubling from 2 s
# to the cap of an hour (from the 12th retry on), full jitter drawing each between 0 and that, so the 58 retries
# last 24 h on average (20 to 28 h in 19 executions out of 20, never more than 48 h), and an execution resumes
# within the hour after the outage ends. Each retry is one billed transition (README, "Outages").
RETRY_INTERVAL = 2
RETRY_CAP = 3600
RETRY_ATTEMPTS = 58


def _duration_label(seconds: int) -> str:
    for unit, size in (("w", 7 * 86400), ("d", 86400), ("h", 3600), ("m", 60)):
        if seconds % size == 0:
            return f"{seconds // size}{unit}"
    return f"{seconds}s"


def _moment_label(step: WaitUntil | WaitUntilDate) -> str:
    if isinstance(step, WaitUntil):
        return step.at + ("" if not step.weekdays else " " + ",".join(step.weekdays))
    offset = f" {step.offset_days:+d}d" if step.offset_days else ""
    what = (
        "the trigger's day"
        if step.attribute is None
        else f"{step.attribute}'s anniversary"
        if step.yearly
        else step.attribute
    )
    return f"{step.at} on {what}{offset}"


def _offset_label(seconds: int) -> str:
    if seconds % 86400 == 0:
        return f"J+{seconds // 86400}"
    if seconds % 3600 == 0:
        return f"H+{seconds // 3600}"
    return f"T+{_duration_label(seconds)}"


@dataclass
class _Node:
    """A step with its state name(s), planned before linking so every Next is known."""

    step: Step
    name: str
    variant: str | None
    check: str = ""  # the evaluating Task's name, for `if`; the held-back Pass's, for a marketing send
    hold: str = ""  # a marketing send's Wait until the moment its sending habits allow
    branches: list[list[_Node]] = field(default_factory=list)


class _Planner:
    def __init__(self, marketing: bool) -> None:
        self.names: set[str] = {DONE, FAILED, LEAVE, LEAVE_FAILED}
        self.marketing = marketing

    def send(self, step: SendEmail | SendSms, label: str, variant: str | None) -> _Node:
        """A send's Task; in a marketing scenario also the Pass and the Wait of a send held back."""
        node = _Node(step, self.unique(label), variant)
        if self.marketing:
            node.check = self.unique(f"Held back ({step.id})")
            node.hold = self.unique(f"Wait until {step.id} may go")
        return node

    def unique(self, name: str) -> str:
        while name in self.names:
            name += "'"
        self.names.add(name)
        return name

    def plan(self, steps: tuple[Step, ...], elapsed: int | None, variant: str | None) -> list[_Node]:
        """`elapsed` is the time since entry when it is known exactly (None past a wait_until or an event)."""
        nodes = []
        for step in steps:
            if isinstance(step, Wait):
                label = f"Wait {_duration_label(step.seconds)}"
                if elapsed is not None:
                    elapsed += step.seconds
                    label += f" until {_offset_label(elapsed)}"
                nodes.append(_Node(step, self.unique(label), variant))
            elif isinstance(step, WaitUntil | WaitUntilDate):
                # A plan Task then a Wait: two states, whichever moment is awaited.
                label = f"Wait until {_moment_label(step)} ({step.id})"
                nodes.append(_Node(step, self.unique(label), variant, check=self.unique(f"Plan {step.id}")))
                elapsed = None
            elif isinstance(step, Unsubscribe):
                nodes.append(_Node(step, self.unique(f"Unsubscribe from {step.channel} ({step.id})"), variant))
            elif isinstance(step, SendEmail):
                nodes.append(self.send(step, f"Send email {step.id}", variant))
            elif isinstance(step, SendSms):
                nodes.append(self.send(step, f"Send SMS {step.id}", variant))
            elif isinstance(step, NotifyCrm):
                nodes.append(_Node(step, self.unique(f"Notify CRM {step.id}"), variant))
            elif isinstance(step, SetAttribute):
                nodes.append(_Node(step, self.unique(f"Set {step.name} ({step.id})"), variant))
            elif isinstance(step, AddScore):
                nodes.append(_Node(step, self.unique(f"Add {step.points:+d} points ({step.id})"), variant))
            elif isinstance(step, ListChange):
                verb = "Add to" if step.add else "Remove from"
                nodes.append(_Node(step, self.unique(f"{verb} list {step.list} ({step.id})"), variant))
            elif isinstance(step, If):
                node = _Node(step, self.unique(f"{step.id}?"), variant, check=self.unique(f"Check {step.id}"))
                node.branches = [self.plan(step.then, elapsed, variant), self.plan(step.otherwise, elapsed, variant)]
                nodes.append(node)
            elif isinstance(step, Choose):
                node = _Node(step, self.unique(f"{step.id}?"), variant, check=self.unique(f"Check {step.id}"))
                branches = [case.steps for case in step.cases] + [step.otherwise]
                node.branches = [self.plan(steps, elapsed, variant) for steps in branches]
                nodes.append(node)
            elif isinstance(step, WaitForEvent):
                node = _Node(step, self.unique(f"Wait for {step.event} ({step.id})"), variant)
                after = None if elapsed is None else elapsed + step.timeout_seconds
                node.branches = [self.plan(step.on_event, None, variant), self.plan(step.on_timeout, after, variant)]
                nodes.append(node)
            elif isinstance(step, Split):
                node = _Node(step, self.unique(f"Split {step.id}"), variant)
                node.branches = [self.plan(v.steps, elapsed, v.name) for v in step.variants]
                nodes.append(node)
            else:
                nodes.append(_Node(step, DONE, variant))
        return nodes


RETRY = [
    {
        "ErrorEquals": RETRYABLE,
        "IntervalSeconds": RETRY_INTERVAL,
        "MaxAttempts": RETRY_ATTEMPTS,
        "BackoffRate": 2,
        "MaxDelaySeconds": RETRY_CAP,
        "JitterStrategy": "FULL",
    }
]
CATCH_ALL = {"ErrorEquals": ["States.ALL"], "ResultPath": "$.error", "Next": FAILED}
# What the act function raises when the sending habits hold a send back (shared.messages.actions.HeldBack): its
# message is the JSON of the deferred answer ({"seconds", "until", "reason"}), inside the error's Cause (JSON too)
HELD_BACK = "HeldBack"
# The steps that emit events (score.changed, list.joined, list.left) get the trigger: what they emit is one link
# further in its causal chain (its `chain`, shared.sources.ingestion.CHAIN_LIMIT)
CAUSE = {"trigger.$": "$.trigger"}


def _task(
    payload: dict[str, Any],
    next_state: str,
    comment: str,
    result: dict[str, str],
    catch: dict[str, Any] = CATCH_ALL,
) -> dict[str, Any]:
    return {
        "Type": "Task",
        "Comment": comment,
        "Resource": "arn:aws:states:::lambda:invoke",
        "Parameters": {"FunctionName": ACT_FUNCTION, "Payload": payload},
        "ResultSelector": result,
        "ResultPath": "$.last",
        "Retry": RETRY,
        "Catch": [catch],
        "Next": next_state,
    }


class _Linker:
    def __init__(self, scenario: Scenario, policy: pacing.Policy) -> None:
        self.scenario = scenario
        self.policy = policy
        self.states: dict[str, Any] = {}
        capped = scenario.entry_cap is not None
        self.end = LEAVE if capped else DONE  # where the steps and every exit lead
        self.catch = {**CATCH_ALL, "Next": LEAVE_FAILED} if capped else CATCH_ALL

    def task(self, payload: dict[str, Any], following: str, comment: str, result: dict[str, str]) -> dict[str, Any]:
        return _task(payload, following, comment, result, self.catch)

    def plan_then_wait(self, node: _Node, payload: dict[str, Any], moment: str, following: str) -> str:
        """A Task that works out the seconds until a moment, then a Wait on them (wait_until's two states)."""
        self.states[node.check] = self.task(
            payload,
            node.name,
            f"Works out how long until {moment}.",
            {"seconds.$": "$.Payload.seconds", "until.$": "$.Payload.until"},
        )
        self.states[node.check]["ResultPath"] = "$.plan"
        self.states[node.name] = {"Type": "Wait", "SecondsPath": "$.plan.seconds", "Next": following}
        return node.check

    def send(self, node: _Node, payload: dict[str, Any], channel: str, comment: str, following: str) -> str:
        """A send Task; in a marketing scenario the sending habits' rules ride in its payload, and when it raises
        HeldBack its Catch leads to a Pass reading the seconds it named, a Wait on them, and back to the Task (it
        decides again then: nothing polls). A send that goes costs its one transition."""
        self.states[node.name] = self.task(payload, following, comment, {"status.$": "$.Payload.status"})
        if not node.hold:
            return node.name
        payload["pacing"] = self.policy.payload(channel, self.scenario.topic, self.scenario.when_capped)
        self.states[node.name]["ResultSelector"] = {"status.$": "$.Payload.status", "answer.$": "$.Payload"}
        self.states[node.name]["Comment"] += (
            " Raises HeldBack when a cap, quiet hours or the French SMS hours hold it back."
        )
        held = {"ErrorEquals": [HELD_BACK], "ResultPath": "$.held", "Next": node.check}
        self.states[node.name]["Catch"].insert(0, held)
        # The error's Cause is JSON text whose errorMessage is JSON text: two Passes read the seconds (moto's
        # interpreter has no workflow variables to do it in one)
        reading = f"{node.check}: seconds"
        self.states[node.check] = {
            "Type": "Pass",
            "Comment": "Reads the HeldBack error's Cause (JSON text).",
            "Parameters": {"cause.$": "States.StringToJson($.held.Cause)"},
            "ResultPath": "$.held",
            "Next": reading,
        }
        self.states[reading] = {
            "Type": "Pass",
            "Comment": "Reads the deferred answer (seconds, until, reason) from the error's message (JSON text).",
            "Parameters": {"answer.$": "States.StringToJson($.held.cause.errorMessage)"},
            "ResultPath": "$.held",
            "Next": node.hold,
        }
        self.states[node.hold] = {"Type": "Wait", "SecondsPath": "$.held.answer.seconds", "Next": node.name}
        return node.name

    def leave_states(self) -> None:
        """A capped scenario's last Task, on the way to Done and to Step failed: frees the place, once."""
        if self.end != LEAVE:
            return
        comment = "Frees the contact's place in the capped scenario and closes the enrolment as finished."
        for name, following in ((LEAVE, DONE), (LEAVE_FAILED, FAILED)):
            state = _task(self.base("leave", "leave"), following, comment, {"status.$": "$.Payload.status"})
            state["ResultPath"] = "$.left"
            self.states[name] = state

    def base(self, step_id: str, action: str) -> dict[str, Any]:
        return {
            "action": action,
            "scenario": self.scenario.id,
            "step": step_id,
            "contact_id.$": "$.contact_id",
            "execution.$": "$$.Execution.Id",
        }

    def link(self, nodes: list[_Node], after: str) -> str:
        """Emits the states of `nodes`, the last going to `after`; returns the first state's name."""
        following = after
        for node in reversed(nodes):
            following = self.emit(node, following)
        return following

    def emit(self, node: _Node, following: str) -> str:
        step = node.step
        if isinstance(step, Exit):
            return self.end
        if isinstance(step, Wait):
            self.states[node.name] = {"Type": "Wait", "Seconds": step.seconds, "Next": following}
        elif isinstance(step, SendEmail):
            payload = {
                **self.base(step.id, "send_email"),
                "template": step.template,
                "category": self.scenario.category,
                "topic": self.scenario.topic,
                "execution.$": "$$.Execution.Id",
                "trigger.$": "$.trigger",
            }
            if node.variant:
                payload["variant"] = node.variant
            if self.scenario.soft_opt_in:  # a customer who never objected may get it without opt-in (email only)
                payload["soft_opt_in"] = True
            if step.discount is not None:  # shared.messages.discounts: a fixed code, or the contact's code from a pool
                payload["discount"] = (
                    {"code": step.discount.code} if step.discount.code else {"pool": step.discount.pool}
                )
            comment = f"Renders {step.template} and sends it once, after re-checking consent and suppression."
            return self.send(node, payload, "email", comment, following)
        elif isinstance(step, SendSms):
            payload = {
                **self.base(step.id, "send_sms"),
                "template": step.template,
                "category": self.scenario.category,
                "trigger.$": "$.trigger",
            }
            if node.variant:
                payload["variant"] = node.variant
            comment = (
                f"Renders the SMS {step.template} and sends it once through SNS, after re-checking the number, "
                "consent, suppression, the goal and SNS's opt-out list."
            )
            return self.send(node, payload, "sms", comment, following)
        elif isinstance(step, NotifyCrm):
            payload = {**self.base(step.id, "notify_crm"), "type": step.type, "trigger.$": "$.trigger"}
            comment = f"POSTs a signed {step.type} notification about the contact to the CRM (skipped if none)."
            self.states[node.name] = self.task(payload, following, comment, {"status.$": "$.Payload.status"})
        elif isinstance(step, SetAttribute):
            payload = {**self.base(step.id, "set_attribute"), "name": step.name, "value": step.value, **CAUSE}
            comment = f"Sets the contact's attribute {step.name}."
            self.states[node.name] = self.task(payload, following, comment, {"status.$": "$.Payload.status"})
        elif isinstance(step, AddScore):
            payload = {**self.base(step.id, "add_score"), "points": step.points, **CAUSE}
            comment = f"Adds {step.points} points to the contact's score, atomically."
            self.states[node.name] = self.task(payload, following, comment, {"status.$": "$.Payload.status"})
        elif isinstance(step, ListChange):
            action = "add_to_list" if step.add else "remove_from_list"
            payload = {**self.base(step.id, action), "list": step.list, **CAUSE}
            comment = f"{'Adds the contact to' if step.add else 'Removes the contact from'} the list {step.list}."
            self.states[node.name] = self.task(payload, following, comment, {"status.$": "$.Payload.status"})
        elif isinstance(step, If):
            then_first = self.link(node.branches[0], following)
            else_first = self.link(node.branches[1], following)
            payload = {**self.base(step.id, "evaluate"), "condition": step.condition}
            self.states[node.check] = self.task(
                payload,
                node.name,
                f"Evaluates the condition of {step.id} on the contact as it is now.",
                {"value.$": "$.Payload.value"},
            )
            self.states[node.name] = {
                "Type": "Choice",
                "Choices": [{"Variable": "$.last.value", "BooleanEquals": True, "Next": then_first}],
                "Default": else_first,
            }
            return node.check
        elif isinstance(step, Choose):
            firsts = [self.link(branch, following) for branch in node.branches]
            payload = {**self.base(step.id, "evaluate"), "conditions": [case.condition for case in step.cases]}
            self.states[node.check] = self.task(
                payload,
                node.name,
                f"Finds the first case of {step.id} whose condition holds for the contact now (-1: none).",
                {"value.$": "$.Payload.value"},
            )
            self.states[node.name] = {
                "Type": "Choice",
                "Choices": [
                    {"Variable": "$.last.value", "NumericEquals": index, "Next": first}
                    for index, first in enumerate(firsts[:-1])
                ],
                "Default": firsts[-1],
            }
            return node.check
        elif isinstance(step, WaitUntil):
            payload = {**self.base(step.id, "plan_wait"), "time": step.at, "weekdays": list(step.weekdays)}
            return self.plan_then_wait(node, payload, f"{step.at} in the contact's time zone", following)
        elif isinstance(step, WaitUntilDate):
            payload = {**self.base(step.id, "plan_wait"), "time": step.at}
            if step.attribute is None:
                payload["date.$"] = "$.trigger.properties.date"  # the day the daily run found, offset included
            else:
                payload.update({"attribute": step.attribute, "yearly": step.yearly, "offset_days": step.offset_days})
                payload["started.$"] = "$$.Execution.StartTime"  # a moment past the execution's year is refused
            what = "the trigger's day" if step.attribute is None else step.attribute
            moment = f"{step.at} on {what} in the contact's time zone (now if already past)"
            return self.plan_then_wait(node, payload, moment, following)
        elif isinstance(step, Unsubscribe):
            payload = {**self.base(step.id, "unsubscribe"), "channel": step.channel}
            comment = f"Withdraws the contact's marketing {step.channel} consent, recording this step as the source."
            self.states[node.name] = self.task(payload, following, comment, {"status.$": "$.Payload.status"})
        elif isinstance(step, WaitForEvent):
            event_first = self.link(node.branches[0], following)
            timeout_first = self.link(node.branches[1], following)
            payload = {
                **self.base(step.id, "await"),
                "event": step.event,
                "execution.$": "$$.Execution.Id",
                "token.$": "$$.Task.Token",
            }
            self.states[node.name] = {
                "Type": "Task",
                "Comment": f"Holds a task token until {step.event} arrives for the contact (SendTaskSuccess) "
                "or the timeout passes.",
                "Resource": "arn:aws:states:::lambda:invoke.waitForTaskToken",
                "Parameters": {"FunctionName": ACT_FUNCTION, "Payload": payload},
                "TimeoutSeconds": step.timeout_seconds,
                "ResultPath": "$.awaited",
                "Retry": RETRY,
                "Catch": [
                    {"ErrorEquals": ["States.Timeout"], "ResultPath": "$.timeout", "Next": timeout_first},
                    self.catch,
                ],
                "Next": event_first,
            }
        elif isinstance(step, Split):
            firsts = [self.link(branch, following) for branch in node.branches]
            choices, bound = [], 0
            for variant, first in zip(step.variants[:-1], firsts[:-1], strict=True):
                bound += variant.percent
                choices.append({"Variable": "$.bucket", "NumericLessThan": bound, "Next": first})
            self.states[node.name] = {"Type": "Choice", "Choices": choices, "Default": firsts[-1]}
        return node.name


def leading_steps(scenario: Scenario) -> tuple[Step, ...]:
    """A date trigger's executions start by waiting for the local time on the day the daily run found."""
    if scenario.trigger_date is None:
        return scenario.steps
    trigger = scenario.trigger_date
    # The offset is in the day the daily run found already.
    return (WaitUntilDate("on-the-day", None, False, 0, trigger.at), *scenario.steps)


def compile_scenario(scenario: Scenario, policy: pacing.Policy | None = None) -> dict[str, Any]:
    """`policy`: the deployment's sending habits (scenarios/sending.yaml); None holds back only what the French
    SMS hours do."""
    nodes = _Planner(scenario.category == "marketing").plan(leading_steps(scenario), 0, None)
    linker = _Linker(scenario, policy or pacing.Policy())
    start = linker.link(nodes, linker.end)
    linker.leave_states()
    states = {name: linker.states[name] for name in _order(start, linker.states)}
    for state in states.values():  # the last step ends the execution itself: no Succeed state to pay for
        if state.get("Next") == DONE and state["Type"] != "Choice":
            del state["Next"]
            state["End"] = True
    if start == DONE or DONE in {target for state in states.values() for target in _targets(state)}:
        states[DONE] = {"Type": "Succeed"}  # an exit, a branch left empty, a Choice's way out: it cannot end
    if any(state["Type"] == "Task" for state in states.values()):  # Step Functions refuses unreachable states
        states[FAILED] = {
            "Type": "Fail",
            "Error": "StepFailed",
            "Cause": "A step failed after its retries; the error is in the execution history.",
        }
    return {
        "Comment": f"parcours scenario {scenario.id}: {scenario.name}. "
        f"Compiled from scenarios/{scenario.source}; do not edit.",
        "StartAt": start,
        "States": states,
    }


def _targets(state: dict[str, Any]) -> list[str]:
    """Where a state may lead: its Choices, Catches, Default and Next."""
    targets = [choice["Next"] for choice in state.get("Choices", [])]
    targets += [catch["Next"] for catch in state.get("Catch", [])]
    return targets + [state[key] for key in ("Default", "Next") if key in state]


def _order(start: str, states: dict[str, Any]) -> list[str]:
    """States in reading order (depth first from the start), so the JSON reads like the YAML."""
    seen: list[str] = []
    todo = [start]
    while todo:
        name = todo.pop()
        if name in seen or name not in states:
            continue
        seen.append(name)
        state = states[name]
        targets = [choice["Next"] for choice in state.get("Choices", [])]
        targets += [catch["Next"] for catch in state.get("Catch", []) if catch["Next"] != FAILED]
        targets += [state[key] for key in ("Default", "Next") if key in state]
        todo.extend(reversed(targets))
    return seen


def to_json(definition: dict[str, Any]) -> str:
    return json.dumps(definition, indent=2, ensure_ascii=False) + "\n"


def catalogue_entry(scenario: Scenario) -> dict[str, Any]:
    """What the process function needs to start this scenario, without reading YAML at run time."""
    return {
        "trigger": {"event": scenario.trigger_event, "where": scenario.trigger_where},
        "entry": {
            "consent": scenario.entry_consent,
            "re_entry": scenario.re_entry,
            **({"cap": scenario.entry_cap} if scenario.entry_cap is not None else {}),
            **({"if": scenario.entry_condition} if scenario.entry_condition is not None else {}),
            **({"soft_opt_in": True} if scenario.soft_opt_in else {}),
        },
        "goal": _goal(scenario),
        "category": scenario.category,
        "report": report_layout(scenario),
    }


def report_layout(scenario: Scenario) -> dict[str, Any]:
    """What the reports show of this scenario (shared.reports.layout): its sending steps in the file's order, each
    with the split and variant it is in, and its splits with their variants, so that a report lists every step, even
    one that sent nothing yet, and groups a split's variants."""
    steps: list[dict[str, Any]] = []
    splits: list[dict[str, Any]] = []

    def walk(items: tuple[Step, ...], split: str | None, variant: str | None) -> None:
        for step in items:
            if isinstance(step, SendEmail | SendSms):
                channel = "email" if isinstance(step, SendEmail) else "sms"
                steps.append({"id": step.id, "channel": channel, "split": split, "variant": variant})
            elif isinstance(step, If):
                walk(step.then, split, variant)
                walk(step.otherwise, split, variant)
            elif isinstance(step, Choose):
                for case in step.cases:
                    walk(case.steps, split, variant)
                walk(step.otherwise, split, variant)
            elif isinstance(step, WaitForEvent):
                walk(step.on_event, split, variant)
                walk(step.on_timeout, split, variant)
            elif isinstance(step, Split):
                splits.append(
                    {"id": step.id, "variants": [{"name": v.name, "percent": v.percent} for v in step.variants]}
                )
                for v in step.variants:
                    walk(v.steps, step.id, v.name)

    walk(scenario.steps, None, None)
    return {"name": scenario.name, "steps": steps, "splits": splits}


def _goal(scenario: Scenario) -> dict[str, Any] | None:
    goal: dict[str, Any] = {}
    if scenario.goal_events:
        goal["event"] = scenario.goal_events[0]
    if len(scenario.goal_events) > 1:
        goal["events"] = list(scenario.goal_events)
    if scenario.goal_condition is not None:
        goal["if"] = scenario.goal_condition
    return goal or None
