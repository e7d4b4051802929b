"""The Tasks of a scenario (send, evaluate, wait planning, contact updates). Each answers a small dict."""

from __future__ import annotations

import json
from datetime import date, datetime, timedelta
from datetime import time as dtime
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError
from pynamodb.exceptions import PynamoDBException

from shared import outbox, secrets
from shared.events import LIST_JOINED, LIST_LEFT, ConsentFacts, ContactFacts, Event
from shared.journeys import enrolments
from shared.messages import sending
from shared.people import conditions, consent, dates, lists, moments, scoring, suppression
from shared.settings import Settings
from shared.sources import ingestion
from shared.storage import ContactModel, StorageBusy, StorageError, busy, get_or_none, save_changes, tables, update_if


class InvalidAction(ValueError):
    """A payload the compiler would never produce: a field is missing or malformed."""


class HeldBack(Exception):  # its name is the error the send Task Catches (shared.journeys.compiler)
    """The sending habits hold a send back (a cap, quiet hours, the French SMS hours): the act function raises it, so
    that a send that goes costs one state transition and only a deferral leaves the main path. Its message is the
    JSON of the deferred answer ({"status", "reason", "until", "seconds"}), which the state machine reads to wait."""

    def __init__(self, answer: dict[str, Any]) -> None:
        super().__init__(json.dumps(answer, sort_keys=True))
        self.answer = answer


def hold_if_deferred(answer: dict[str, Any]) -> dict[str, Any]:
    """The Task's answer, or HeldBack when it is `deferred` (recorded for the reports already)."""
    if answer.get("status") == "deferred":
        raise HeldBack(answer)
    return answer


class MomentBeyondExecution(ValueError):
    """A wait_until date lies past the execution's first year, which Step Functions does not wait for."""


EXECUTION_LIMIT = timedelta(days=365)


def _field(payload: dict[str, Any], name: str) -> Any:
    if name not in payload:
        raise InvalidAction(f"{payload.get('action')} payload lacks the field {name}")
    return payload[name]


def evaluate(payload: dict[str, Any], settings: Settings, now: datetime) -> dict[str, Any]:
    """`condition`: whether it holds; `conditions` (a choose step): the index of the first that holds, or -1."""
    several = "conditions" in payload
    checked = _field(payload, "conditions") if several else [_field(payload, "condition")]
    try:
        if not isinstance(checked, list) or not checked:
            raise conditions.ConditionError("conditions is a non-empty list")
        for condition in checked:
            conditions.check(condition)
    except conditions.ConditionError as error:
        raise InvalidAction(str(error)) from None
    t = tables(settings)
    contact_id = str(_field(payload, "contact_id"))
    contact = get_or_none(t.contacts, contact_id, consistent=True)
    execution = str(payload.get("execution", ""))

    def sent(step: str) -> tuple[str, datetime] | None:
        """This execution's send at `step`, read by its key."""
        record = get_or_none(t.sends, outbox.send_id(execution, step), consistent=True)
        if record is None or record.message_id is None or record.sent_at is None:
            return None
        return str(record.message_id), record.sent_at

    facts = conditions.Facts(
        now=now,
        default_timezone=settings.default_timezone,
        scenario=str(payload.get("scenario", "")),
        history=conditions.history_of(t.events, contact_id),
        sent=sent,
    )
    if not several:
        return {"value": conditions.holds(checked[0], contact, facts)}
    return {
        "value": next((i for i, condition in enumerate(checked) if conditions.holds(condition, contact, facts)), -1)
    }


def add_score(payload: dict[str, Any], settings: Settings, now: datetime) -> dict[str, Any]:
    """Points given by a scenario step, once per (execution, step) even when the Task is retried, through the
    lifecycle stages like the scoring rules' (shared.people.scoring); its score.changed gives the step as its reason."""
    points = conditions.whole(_field(payload, "points"))
    if points is None:
        raise InvalidAction(f"add_score: points must be a whole number, not {payload.get('points')!r}")
    step = str(payload.get("step", ""))
    origin = f"{payload.get('execution', 'direct')}#{step}"
    topic = f"{payload.get('scenario')}/{step}"
    new = scoring.add(str(_field(payload, "contact_id")), points, step, origin, topic, settings, now)
    if new is None:
        return {"status": "skipped", "reason": "contact not found"}
    return {"status": "done", "score": new}


def _update(settings: Settings, contact_id: str, actions: list[Any], condition: Any = None) -> ContactModel | None:
    """The contact after the update; None when it no longer exists (or `condition` does not hold)."""
    contact = tables(settings).contacts(contact_id=contact_id)
    required = ContactModel.contact_id.exists()
    return contact if update_if(contact, actions, required if condition is None else required & condition) else None


def _emit(
    event_type: str,
    contact_id: str,
    properties: dict[str, Any],
    payload: dict[str, Any],
    settings: Settings,
    now: datetime,
) -> None:
    """An event about the contact, for scenarios to start on; named after (execution, step), so a retried Task
    emits it once (the queue and the processing both deduplicate on the event id)."""
    origin = f"{payload.get('execution', 'direct')}#{payload.get('step', '')}"
    event = Event(
        event_id=f"parcours#{event_type}#{origin}",
        type=event_type,
        source="parcours",
        topic=f"{payload.get('scenario')}/{payload.get('step')}",
        occurred_at=now.isoformat(),
        received_at=now.isoformat(),
        contact=ContactFacts(contact_id=contact_id),
        properties=properties,
    )
    ingestion.enqueue(event, settings)


def await_event(payload: dict[str, Any], settings: Settings, now: datetime) -> dict[str, Any]:
    """Registers the wait_for step's task token; the execution resumes on the event or times out."""
    enrolments.await_event(
        tables(settings),
        str(_field(payload, "contact_id")),
        str(_field(payload, "scenario")),
        str(_field(payload, "execution")),
        str(_field(payload, "event")),
        str(_field(payload, "token")),
        now,
    )
    return {"status": "waiting"}


def plan_wait(payload: dict[str, Any], settings: Settings, now: datetime) -> dict[str, Any]:
    """Seconds from now until the step's moment in the contact's time zone, for the Wait state that follows.

    The moment is the next local time of day (on allowed weekdays), or that time on a day: the date trigger's
    day (`date`), or a date attribute's day or next anniversary (`attribute`, `yearly`) plus `offset_days`.
    A moment already past gives 0 seconds: the execution continues at once."""
    at = str(_field(payload, "time"))
    try:
        hour, minute = (int(part) for part in at.split(":"))
        local_time = dtime(hour, minute)
    except ValueError:
        raise InvalidAction(f"plan_wait: time {at!r}") from None
    weekdays = tuple(payload.get("weekdays") or ())
    if any(day not in moments.WEEKDAYS for day in weekdays):
        raise InvalidAction(f"plan_wait: weekdays {weekdays!r}")
    contact = get_or_none(tables(settings).contacts, str(_field(payload, "contact_id")))
    timezone = conditions.attribute(contact, dates.TIMEZONE) if contact is not None else None
    tz = moments.zone(timezone if isinstance(timezone, str) else None, settings.default_timezone)
    if "date" in payload:
        day = moments.parse_date(payload["date"])
        if day is None:
            raise InvalidAction(f"plan_wait: date {payload['date']!r} is not YYYY-MM-DD")
        target = moments.on_day(day, local_time, tz)
    elif "attribute" in payload:
        original = _date_of(contact, str(payload["attribute"]))
        if original is None:  # no such date on this contact: nothing to wait for
            return {"seconds": 0, "until": now.isoformat()}
        offset = conditions.whole(payload.get("offset_days", 0)) or 0
        if payload.get("yearly"):
            target = moments.next_anniversary(original, offset, local_time, tz, now)
        else:
            target = moments.on_day(original + timedelta(days=offset), local_time, tz)
        _within_execution(target, payload.get("started"))
    else:
        target = moments.next_moment(now, local_time, weekdays, tz)
    return {"seconds": max(0, round((target - now).total_seconds())), "until": target.isoformat()}


def _date_of(contact: ContactModel | None, name: str) -> date | None:
    if contact is None:
        return None
    if name == dates.CREATED_AT:
        return contact.created_at.date() if contact.created_at is not None else None
    return moments.parse_date(conditions.attribute(contact, name))


def _within_execution(target: datetime, started: object) -> None:
    if not isinstance(started, str):
        return
    try:
        start = datetime.fromisoformat(started.replace("Z", "+00:00"))
    except ValueError:
        return
    if target - start >= EXECUTION_LIMIT:
        raise MomentBeyondExecution(
            f"the moment {target.date().isoformat()} is a year or more after the execution started"
        )


def unsubscribe(payload: dict[str, Any], settings: Settings, now: datetime) -> dict[str, Any]:
    """Withdraws marketing email consent; the proof names the scenario and step, and joins the history."""
    channel = _field(payload, "channel")
    if channel != "email":
        raise InvalidAction(f"unsubscribe: unknown channel {channel!r}")
    t = tables(settings)
    contact = get_or_none(t.contacts, str(_field(payload, "contact_id")), consistent=True)
    if contact is None:
        return {"status": "skipped", "reason": "contact not found"}
    before = contact.as_read()
    source = f"scenario:{_field(payload, 'scenario')}/{_field(payload, 'step')}"
    statement = ConsentFacts(state="denied", level=None, at=now.isoformat(), source=source)
    if not consent.record(contact, statement):
        return {"status": "unchanged", "reason": "no marketing consent to withdraw"}
    contact.updated_at = now
    save_changes(contact, before)
    return {"status": "done"}


def set_attribute(payload: dict[str, Any], settings: Settings) -> dict[str, Any]:
    name = str(_field(payload, "name"))
    if not conditions.NAME.match(name) or name in conditions.PROFILE_FIELDS or name in conditions.COUNTERS:
        raise InvalidAction(f"set_attribute: {name!r} is not a custom attribute name")
    value = payload.get("value")
    updated = _update(settings, str(_field(payload, "contact_id")), [ContactModel.attributes[name].set(value)])
    if updated is None:
        return {"status": "skipped", "reason": "contact not found"}
    held = set(updated.date_keys or ())
    if name == dates.TIMEZONE or moments.parse_date(value) is not None or any(k.startswith(f"{name}#") for k in held):
        keys = dates.reindex(updated, tables(settings))  # a date (or the time zone) changed: keep the index
        if keys != held:
            updated.update(actions=[ContactModel.date_keys.set(keys) if keys else ContactModel.date_keys.remove()])
    cause = f"{payload.get('execution', 'direct')}#{payload.get('step', '')}"
    lists.on_attribute(settings, updated, name, settings.clock().now(), cause)  # dynamic lists reading it
    return {"status": "done"}


def change_list(payload: dict[str, Any], settings: Settings, add: bool, now: datetime) -> dict[str, Any]:
    """Adds or removes a list; only a real change is emitted (list.joined / list.left) for scenarios."""
    name = str(_field(payload, "list"))
    if not conditions.LIST_NAME.match(name):
        raise InvalidAction(f"{name!r} is not a list name")
    contact_id = str(_field(payload, "contact_id"))
    kind = LIST_JOINED if add else LIST_LEFT
    event_id = f"parcours#{kind}#{payload.get('execution', 'direct')}#{payload.get('step', '')}"  # as _emit names it
    topic = f"{payload.get('scenario')}/{payload.get('step')}"
    if not lists.change(settings, contact_id, name, add, now, event_id, topic):  # with the members table
        exists = get_or_none(tables(settings).contacts, contact_id) is not None
        return {
            "status": "unchanged" if exists else "skipped",
            "reason": "no change" if exists else "contact not found",
        }
    return {"status": "done"}


def _crm_secret(settings: Settings) -> str:
    return secrets.resolve(settings.crm_secret, settings.crm_secret_parameter, "CRM signing secret")


def leave(payload: dict[str, Any], settings: Settings, now: datetime) -> dict[str, Any]:
    """A capped scenario's last Task (on the way to Done or to Step failed): closes the enrolment as finished and
    frees the contact's place, once (a retry, or a goal that stopped it first, frees nothing more)."""
    freed = enrolments.finish(
        tables(settings),
        str(_field(payload, "contact_id")),
        str(_field(payload, "scenario")),
        str(_field(payload, "execution")),
        None,
        now,
        capped=True,
        region=settings.region,
    )
    return {"status": "done" if freed else "unchanged"}


def perform(payload: dict[str, Any], settings: Settings) -> dict[str, Any]:
    """Runs the Task the state machine asked for (its `action`). DynamoDB throttling or unavailability, wherever it
    surfaces (through shared.storage or straight from PynamoDB or botocore), leaves as StorageBusy: the Task's
    Retry waits it out (about a day) and runs the step again, which every action makes safe to repeat."""
    trigger = payload.get("trigger")
    depth = conditions.whole(trigger.get("chain", 0)) if isinstance(trigger, dict) else 0
    try:
        with ingestion.caused_by(depth or 0) as chain:  # what the step emits is one link further than its trigger
            result = _perform(payload, settings)
        return {**result, "events_cut": chain.cut} if chain.cut else result
    except StorageBusy:
        raise
    except (StorageError, PynamoDBException, ClientError, BotoCoreError) as error:
        if busy(error):
            raise StorageBusy(f"{type(error).__name__}: DynamoDB throttled or unavailable") from error
        raise


def _perform(payload: dict[str, Any], settings: Settings) -> dict[str, Any]:
    action = payload.get("action")
    now = settings.clock().now()
    if action == "send_email":
        # Both keys first: without the suppression key no email goes out unchecked (ConfigurationError, the step fails)
        suppression_key = suppression.hash_key(settings)
        link_secret = secrets.resolve(settings.link_secret, settings.link_secret_parameter, "link signing secret")
        request = sending.SendRequest.from_payload(payload)
        return sending.send_email(request, settings, settings.clock(), link_secret, suppression_key)
    if action == "send_sms":
        from shared.messages import sms  # an SMS step's: loaded by the first, not at every cold start

        return sms.send_sms(sms.request_from(payload), settings, settings.clock())
    if action == "notify_crm":
        from shared.people import crm  # a CRM step's (urllib's opener): loaded by the first

        return crm.notify(payload, settings, now, lambda: _crm_secret(settings))
    if action == "plan_wait":
        return plan_wait(payload, settings, now)
    if action == "await":
        return await_event(payload, settings, now)
    if action == "evaluate":
        return evaluate(payload, settings, now)
    if action == "add_score":
        return add_score(payload, settings, now)
    if action == "unsubscribe":
        return unsubscribe(payload, settings, now)
    if action == "set_attribute":
        return set_attribute(payload, settings)
    if action in ("add_to_list", "remove_from_list"):
        return change_list(payload, settings, action == "add_to_list", now)
    if action == "leave":
        return leave(payload, settings, now)
    raise InvalidAction(f"unknown action {action!r}")
