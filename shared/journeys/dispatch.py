"""Scenarios and events: start the executions an event triggers, stop those whose goal it is.

One execution per (scenario, contact, trigger event), started once; each start is recorded as an enrolment,
so that a goal finds the contact's running executions in one query, and re-entry rules can be kept.

Entry cap (`entry: {cap: N}`): a per-scenario counter counts a contact in (a conditional increment, so concurrent
starts never pass N) before its execution starts; the execution's final Leave Task, or a goal stopping it, counts
it out. A contact refused because the scenario is full is not queued nor retried: it enters on a later trigger
event if there is room then (and re-entry allows it).
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import lru_cache
from pathlib import Path
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from shared import clients, writes
from shared.events import SCENARIO_REQUESTED, Event
from shared.journeys import bearer, enrolments
from shared.people.conditions import Facts, history_of, holds, matches
from shared.people.consent import marketing_email_as_read, refusal_for_marketing_email
from shared.settings import Settings
from shared.storage import ContactModel, EnrolmentModel, Tables, tables, update_if

CATALOGUE = Path(__file__).resolve().parents[2] / "scenarios" / "compiled" / "catalogue.json"


class DispatchError(RuntimeError):
    """Step Functions refused a start or a stop for a reason a retry of the message may fix."""


@dataclass(frozen=True)
class Entry:
    scenario: str
    trigger_event: str
    consent: str
    re_entry: str  # never | always | after:<seconds>
    goal_event: str | None
    where: dict[str, Any] | None = None
    cap: int | None = None  # at most this many contacts in the scenario at once
    goal_events: tuple[str, ...] = ()  # any of them reaches the goal (goal_event is the first)
    condition: dict[str, Any] | None = None  # entry.if, on the contact as it is when the trigger matches
    goal_condition: dict[str, Any] | None = None  # goal.if, checked whenever an event about the contact is processed
    soft_opt_in: bool = False  # customers who never objected enter without opt-in (shared.people.consent)


@dataclass(frozen=True)
class Outcome:
    scenario: str
    execution: str
    started: bool
    reason: str


@lru_cache(maxsize=2)
def catalogue(path: Path = CATALOGUE) -> tuple[Entry, ...]:
    data: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    return tuple(
        Entry(
            scenario=name,
            trigger_event=spec["trigger"]["event"],
            consent=spec["entry"]["consent"],
            re_entry=spec["entry"].get("re_entry", "never"),
            goal_event=(spec.get("goal") or {}).get("event"),
            where=spec["trigger"].get("where"),
            cap=spec["entry"].get("cap"),
            goal_events=_goal_events(spec.get("goal")),
            condition=spec["entry"].get("if"),
            goal_condition=(spec.get("goal") or {}).get("if"),
            soft_opt_in=bool(spec["entry"].get("soft_opt_in")),
        )
        for name, spec in sorted(data.items())
    )


def _goal_events(goal: dict[str, Any] | None) -> tuple[str, ...]:
    if not goal:
        return ()
    return tuple(str(event) for event in goal.get("events") or ([goal["event"]] if "event" in goal else []))


def execution_name(scenario: str, contact_id: str, event_id: str) -> str:
    """Deterministic and within Step Functions' rules (80 characters of [A-Za-z0-9-_])."""
    digest = hashlib.sha256(event_id.encode()).hexdigest()[:16]
    room = 80 - len(scenario) - len(digest) - 2  # the event's digest is what makes names unique: never cut it
    return f"{scenario}-{contact_id[:room]}-{digest}"


def bucket(scenario: str, contact_id: str) -> int:
    """0-99, stable for a contact in a scenario: the same A/B variant every time they enter."""
    return int(hashlib.sha256(f"{scenario}:{contact_id}".encode()).hexdigest()[:8], 16) % 100


def needs_enrolments(event: Event, contact: ContactModel, entries: tuple[Entry, ...]) -> bool:
    """Whether deciding this event reads the contact's enrolments: only when one of its executions may await it
    (a wait_for step noted its event on the contact), or for a scenario the contact entered whose goal the event may
    reach (the starts decide on `entered`), or for a contact from before `entered` (read once, then kept)."""
    if contact.created_by_event:
        return False
    kept = enrolments.entered(contact)
    if kept is None or event.type in (contact.awaiting or set()):
        return True
    return any(
        entry.scenario in kept
        and (entry.goal_condition is not None or event.type in (entry.goal_events or (entry.goal_event,)))
        for entry in entries
    )


def _re_entry_refusal(entry: Entry, last: datetime | None, now: datetime) -> str | None:
    if last is None or entry.re_entry == "always":
        return None
    if entry.re_entry == "never":
        return "already entered once (re_entry: never)"
    wait = timedelta(seconds=int(entry.re_entry.partition(":")[2]))
    return f"entered less than {wait} ago (re_entry)" if now - last < wait else None


def start_matching(
    event: Event,
    contact: ContactModel,
    settings: Settings,
    entries: tuple[Entry, ...],
    now: datetime,
    enrolled: list[EnrolmentModel] | None = None,
) -> list[Outcome]:
    t = tables(settings)
    outcomes = []
    for entry in entries:
        if entry.trigger_event != event.type or not matches(entry.where, event.properties):
            continue
        name = execution_name(entry.scenario, contact.contact_id, event.event_id)
        past = enrolments.of(t, contact.contact_id, entry.scenario, enrolled)
        if any(enrolment.key == enrolments.key(entry.scenario, name) for enrolment in past):
            outcomes.append(Outcome(entry.scenario, name, started=False, reason="already started for this event"))
            continue
        refusal = (
            refusal_for_marketing_email(contact, soft_opt_in=entry.soft_opt_in) if entry.consent == "email" else None
        )
        refusal = refusal or _re_entry_refusal(entry, enrolments.last_entered(contact, entry.scenario, past), now)
        if refusal is None and entry.condition is not None and not _meets(entry.condition, contact, settings, t, now):
            refusal = "entry condition not met (entry.if)"
        if refusal is None and _meets(entry.goal_condition, contact, settings, t, now):
            refusal = "goal already reached (goal.if)"
        if refusal is not None:
            outcomes.append(Outcome(entry.scenario, name, started=False, reason=refusal))
            continue
        gathered = writes.current()
        if gathered is not None and entry.consent == "email" and gathered.before is not None:
            gathered.condition(marketing_email_as_read(gathered.before))  # written only if the consent read holds
        capped = entry.cap is not None
        if entry.cap is not None and not enrolments.take_place(t, entry.scenario, entry.cap):
            outcomes.append(Outcome(entry.scenario, name, started=False, reason="entry cap reached"))
            continue
        outcomes.append(_start(entry.scenario, name, event, contact, settings, t, now, capped=capped))
    return outcomes


def _start(
    scenario: str,
    name: str,
    event: Event,
    contact: ContactModel,
    settings: Settings,
    t: Tables,
    now: datetime,
    *,
    capped: bool = False,
) -> Outcome:
    """Starts the execution. In a capped scenario the contact already holds a place: the enrolment is recorded
    first (the execution's Leave Task must find it, however fast it ends), and both are undone if the start fails.
    """
    arn = settings.state_machine_prefix + scenario
    execution_arn = arn.replace(":stateMachine:", ":execution:") + f":{name}"
    gathered = writes.current()
    if gathered is not None:
        # Recorded in the event's one transaction (with its place, in a capped scenario), started after it, and
        # again by a redelivery that finds the event's mark: its name starts it once (`start`).
        enrolments.record(t, contact.contact_id, scenario, execution_arn, now)
        enrolments.note_entered(contact, scenario, now)
        # the effect names the execution; its input is the event's, made again from the event when carried out
        gathered.effect({"start": arn, "name": name, "scenario": scenario, "contact": contact.contact_id})
        return Outcome(scenario, name, started=True, reason="trigger matched")
    if capped:
        enrolments.record(t, contact.contact_id, scenario, execution_arn, now)
    try:
        answer = clients.stepfunctions(settings.region).start_execution(
            stateMachineArn=arn, name=name, input=input_of(scenario, contact.contact_id, event, now)
        )
        execution_arn = answer["executionArn"]
        reason = "trigger matched"
    except ClientError as error:
        if error.response.get("Error", {}).get("Code") != "ExecutionAlreadyExists":
            _undo_place(t, contact.contact_id, scenario, execution_arn, capped)
            raise DispatchError(f"{scenario}: {error.response.get('Error', {}).get('Code')}") from error
        # Started by an earlier attempt that failed before recording it: record it now (in a capped scenario
        # that attempt gave its place back, so this one keeps the place it took; the Leave Task frees it).
        reason = "already started for this event"
    except BotoCoreError as error:
        _undo_place(t, contact.contact_id, scenario, execution_arn, capped)
        raise DispatchError(f"{scenario}: {type(error).__name__}") from error
    if not capped:
        enrolments.record(t, contact.contact_id, scenario, execution_arn, now)
    if contact.entered is not None:  # kept from then on (None: its enrolments are read, as before)
        update_if(contact, [ContactModel.entered[scenario].set(now.isoformat())], ContactModel.entered.exists())
        enrolments.note_entered(contact, scenario, now)
    return Outcome(scenario, name, started=reason == "trigger matched", reason=reason)


def input_of(scenario: str, contact_id: str, event: Event, now: datetime) -> str:
    """An execution's input, the same on every attempt at the event (a repeated start of a running execution with
    the same name and input is that execution)."""
    execution_input = {
        "contact_id": contact_id,
        "bucket": bucket(scenario, contact_id),
        # Without its bearer links (shared.journeys.bearer): the send Task reads them from the recorded event.
        "trigger": {
            **bearer.execution_trigger(event.type, event.event_id, event.properties, bearer.history_key(event, now)),
            **({"chain": event.chain} if event.chain else {}),  # what its steps emit is one link further
        },
    }
    return json.dumps(execution_input, sort_keys=True)


def awaited(event: Event) -> str:
    """What a wait_for step is handed: the event without its bearer links (nothing renders an awaited event)."""
    properties = bearer.without_links(event.properties)[0]
    return json.dumps({"type": event.type, "event_id": event.event_id, "properties": properties})


def start(arn: str, name: str, execution_input: str, settings: Settings) -> None:
    """Starts an execution the event's transaction recorded; started already (by an earlier delivery) is done."""
    try:
        clients.stepfunctions(settings.region).start_execution(stateMachineArn=arn, name=name, input=execution_input)
    except ClientError as error:
        code = error.response.get("Error", {}).get("Code")
        if code != "ExecutionAlreadyExists":
            raise DispatchError(f"{arn.rsplit(':', 1)[-1]}: {code}") from error
    except BotoCoreError as error:
        raise DispatchError(f"{arn.rsplit(':', 1)[-1]}: {type(error).__name__}") from error


def stop(execution_arn: str, cause: str, settings: Settings) -> None:
    """Stops an execution whose goal an event reached; one that has ended meanwhile is left as it ended."""
    try:
        clients.stepfunctions(settings.region).stop_execution(
            executionArn=execution_arn, error="GoalReached", cause=cause
        )
    except ClientError as error:
        code = error.response.get("Error", {}).get("Code")
        if code not in ("ExecutionDoesNotExist", "ResourceNotFound"):
            raise DispatchError(f"stop: {code}") from error


def resume(token: str, output: str, settings: Settings) -> None:
    """Hands an awaited event to the execution waiting for it; one that stopped waiting meanwhile is left."""
    try:
        clients.stepfunctions(settings.region).send_task_success(taskToken=token, output=output)
    except ClientError as error:
        code = error.response.get("Error", {}).get("Code", "")
        if code not in ("TaskTimedOut", "TaskDoesNotExist", "InvalidToken"):
            raise DispatchError(f"resume: {code}") from error


def _undo_place(t: Tables, contact_id: str, scenario: str, execution_arn: str, capped: bool) -> None:
    if capped:
        enrolments.forget(t, contact_id, scenario, execution_arn)
        enrolments.give_place_back(t, scenario)


GOAL_CONDITION = "goal.if"  # what a conversion by the goal's condition (not an event) is recorded as


def _meets(
    condition: dict[str, Any] | None, contact: ContactModel, settings: Settings, t: Tables, now: datetime
) -> bool:
    """An entry or goal condition on the contact as it is now (its history read in one bounded query)."""
    facts = Facts(now=now, default_timezone=settings.default_timezone, history=history_of(t.events, contact.contact_id))
    return condition is not None and holds(condition, contact, facts)


def stop_on_goals(
    event: Event,
    contact: ContactModel,
    settings: Settings,
    entries: tuple[Entry, ...],
    now: datetime,
    enrolled: list[EnrolmentModel] | None = None,
) -> list[Outcome]:
    """Stops the contact's running executions of every scenario whose goal this event is: a conversion.
    `enrolled`: the contact's enrolments read once for the event (start_matching and resume_waiting take the same
    list: closing one here changes its status only, which they do not read), else each scenario's are queried."""
    t = tables(settings)
    sfn = clients.stepfunctions(settings.region)
    outcomes = []
    for entry in entries:
        by_event = event.type in (entry.goal_events or (entry.goal_event,))
        if not by_event and entry.goal_condition is None:
            continue
        active = [e for e in enrolments.of(t, contact.contact_id, entry.scenario, enrolled) if e.status == "active"]
        if not active:
            continue
        if not by_event and not _meets(entry.goal_condition, contact, settings, t, now):
            continue
        cause = event.type if by_event else GOAL_CONDITION
        gathered = writes.current()
        for enrolment in active:
            try:
                running = sfn.describe_execution(executionArn=enrolment.execution_arn)["status"] == "RUNNING"
                if running and gathered is not None:  # stopped once the event's transaction is written
                    gathered.effect({"stop": enrolment.execution_arn, "cause": cause})
                elif running:
                    sfn.stop_execution(executionArn=enrolment.execution_arn, error="GoalReached", cause=cause)
            except ClientError as error:
                if error.response.get("Error", {}).get("Code") not in ("ExecutionDoesNotExist", "ResourceNotFound"):
                    raise DispatchError(f"{entry.scenario}: {error.response.get('Error', {}).get('Code')}") from error
                running = False
            if entry.cap is None:
                enrolments.close(enrolment, cause if running else None, now)
            else:  # frees the contact's place, unless its Leave Task did already
                enrolments.finish(
                    t,
                    contact.contact_id,
                    entry.scenario,
                    enrolment.execution_arn,
                    cause if running else None,
                    now,
                    capped=True,
                    region=settings.region,
                )
            reason = f"goal {cause} reached" if running else "had already finished"
            outcomes.append(Outcome(entry.scenario, enrolment.key.partition("#")[2], started=False, reason=reason))
    return outcomes


def resume_waiting(
    event: Event, contact: ContactModel, settings: Settings, enrolled: list[EnrolmentModel] | None = None
) -> list[Outcome]:
    """Resumes the contact's executions waiting for this event (their wait_for steps), with the event."""
    t = tables(settings)
    sfn = clients.stepfunctions(settings.region)
    output = awaited(event)
    outcomes = []
    gathered = writes.current()
    for enrolment in enrolments.waiting_for(t, contact.contact_id, event.type, enrolled):
        if gathered is not None:  # resumed once the event's transaction is written
            gathered.effect({"resume": str(enrolment.task_token)})  # handed the event (`awaited`) when carried out
            enrolments.stop_waiting(enrolment)
            reason = f"resumed by {event.type}"
            outcomes.append(Outcome(enrolment.scenario, enrolment.key.partition("#")[2], started=False, reason=reason))
            continue
        try:
            sfn.send_task_success(taskToken=str(enrolment.task_token), output=output)
            reason = f"resumed by {event.type}"
        except ClientError as error:
            code = error.response.get("Error", {}).get("Code", "")
            if code not in ("TaskTimedOut", "TaskDoesNotExist", "InvalidToken"):
                raise DispatchError(f"{enrolment.scenario}: {code}") from error
            reason = "had stopped waiting"
        enrolments.stop_waiting(enrolment)
        outcomes.append(Outcome(enrolment.scenario, enrolment.key.partition("#")[2], started=False, reason=reason))
    return outcomes


def api_startable(entries: tuple[Entry, ...]) -> set[str]:
    """The scenarios `trigger: {api: true}` lets callers start."""
    return {entry.scenario for entry in entries if entry.trigger_event == SCENARIO_REQUESTED}
