"""Who is in which scenario: one record per execution, found by contact (goals, re-entry, the send re-check)."""

from __future__ import annotations

from datetime import datetime, timedelta
from functools import cache
from typing import Any

from pynamodb.connection import Connection
from pynamodb.exceptions import DeleteError, PynamoDBException, TransactWriteError
from pynamodb.transactions import TransactWrite

from shared import writes
from shared.storage import (
    ContactModel,
    EnrolmentModel,
    ScenarioCounterModel,
    StorageError,
    Tables,
    get_or_none,
    query,
    update_if,
)

KEEP = timedelta(days=400)  # longer than any execution


def key(scenario: str, execution_arn_or_name: str) -> str:
    return f"{scenario}#{execution_arn_or_name.rsplit(':', 1)[-1]}"


def of(t: Tables, contact_id: str, scenario: str, enrolled: list[EnrolmentModel] | None = None) -> list[EnrolmentModel]:
    """The contact's enrolments in this scenario: from `enrolled` (all of them, read once for an event) if given."""
    if enrolled is not None:
        return [e for e in enrolled if e.key.startswith(f"{scenario}#")]
    return query(t.enrolments, contact_id, EnrolmentModel.key.startswith(f"{scenario}#"))


def all_of(t: Tables, contact_id: str) -> list[EnrolmentModel]:
    """Every enrolment of the contact in one query (a contact has few): an event's dispatch reads them once."""
    return query(t.enrolments, contact_id)


def entered(contact: ContactModel) -> dict[str, str] | None:
    """When the contact last entered each scenario; None for a contact from before it was kept."""
    return dict(contact.entered.as_dict()) if contact.entered is not None else None


def last_entered(contact: ContactModel, scenario: str, past: list[EnrolmentModel]) -> datetime | None:
    """When the contact last entered the scenario: as the contact keeps it, else by its enrolments."""
    kept = entered(contact)
    if kept is not None:
        at = kept.get(scenario)
        return datetime.fromisoformat(at) if isinstance(at, str) else None
    return max((enrolment.started_at for enrolment in past), default=None)


def note_entered(contact: ContactModel, scenario: str, now: datetime) -> None:
    """In hand: the contact's entries with this one (written with the enrolment)."""
    contact.entered = {**(entered(contact) or {}), scenario: now.isoformat()}


def fill_entered(contact: ContactModel, enrolled: list[EnrolmentModel]) -> None:
    """A contact from before `entered`: filled in, in hand, from its enrolments (read once for the event)."""
    if contact.entered is None:
        last: dict[str, str] = {}
        for enrolment in sorted(enrolled, key=lambda e: e.started_at):
            last[str(enrolment.scenario)] = enrolment.started_at.isoformat()
        contact.entered = last


def record(t: Tables, contact_id: str, scenario: str, execution_arn: str, now: datetime) -> None:
    """Records a start (in the event's one transaction while its writes are gathered, shared.writes)."""
    enrolment = t.enrolments(
        contact_id=contact_id,
        key=key(scenario, execution_arn),
        scenario=scenario,
        execution_arn=execution_arn,
        status="active",
        started_at=now,
        expires_at=now + KEEP,
    )
    gathered = writes.current()
    if gathered is not None:
        gathered.put(enrolment)
    else:
        enrolment.save()


def close(enrolment: EnrolmentModel, converted_by: str | None, now: datetime) -> None:
    """Marks an enrolment converted (its goal stopped it) or finished (it had ended by itself)."""
    actions: list[Any] = [
        EnrolmentModel.status.set("converted" if converted_by else "finished"),
        EnrolmentModel.ended_at.set(now),
    ]
    if converted_by:
        actions.append(EnrolmentModel.goal_event.set(converted_by))
    gathered = writes.current()
    if gathered is not None:
        gathered.update(enrolment, actions)
    else:
        enrolment.update(actions=actions)


def goal_reached(t: Tables, contact_id: str, scenario: str, execution_arn: str) -> bool:
    """For the send re-check: did a goal stop this execution (a stop may race a Task already running)?"""
    enrolment = get_or_none(t.enrolments, contact_id, range_key=key(scenario, execution_arn))
    return enrolment is not None and enrolment.status == "converted"


def await_event(
    t: Tables, contact_id: str, scenario: str, execution_arn: str, event: str, token: str, now: datetime
) -> None:
    """Keeps the task token of a wait_for step, for the event's processing to resume the execution."""
    model = t.enrolments
    model(contact_id=contact_id, key=key(scenario, execution_arn)).update(
        actions=[
            EnrolmentModel.scenario.set(scenario),
            EnrolmentModel.execution_arn.set(execution_arn),
            EnrolmentModel.status.set(EnrolmentModel.status | "active"),
            EnrolmentModel.started_at.set(EnrolmentModel.started_at | now),
            EnrolmentModel.expires_at.set(EnrolmentModel.expires_at | now + KEEP),
            EnrolmentModel.waiting_event.set(event),
            EnrolmentModel.task_token.set(token),
        ]
    )
    # the contact's events awaited: its event's processing then reads the enrolments (shared.journeys.dispatch)
    contact = t.contacts(contact_id=contact_id)
    update_if(contact, [ContactModel.awaiting.add({event})], ContactModel.contact_id.exists())


def waiting_for(
    t: Tables, contact_id: str, event: str, enrolled: list[EnrolmentModel] | None = None
) -> list[EnrolmentModel]:
    """The contact's executions holding a task token for this event (a contact has few enrolments)."""
    known = all_of(t, contact_id) if enrolled is None else enrolled
    return [e for e in known if e.waiting_event == event and e.task_token]


def stop_waiting(enrolment: EnrolmentModel) -> None:
    actions: list[Any] = [EnrolmentModel.waiting_event.remove(), EnrolmentModel.task_token.remove()]
    gathered = writes.current()
    if gathered is not None:
        gathered.update(enrolment, actions)
    else:
        enrolment.update(actions=actions)


# ---- entry cap: how many contacts are in a capped scenario right now (exact, never above the cap) ----------------
def _counter(t: Tables, scenario: str) -> ScenarioCounterModel:
    return t.counters(contact_id=f"_scenario#{scenario}", key="running")


def running(t: Tables, scenario: str) -> int:
    counter = get_or_none(t.counters, f"_scenario#{scenario}", range_key="running", consistent=True)
    return int(counter.running) if counter is not None else 0


def take_place(t: Tables, scenario: str, cap: int) -> bool:
    """Counts one more contact in, only if fewer than `cap` are in (one conditional write: concurrent starts
    never pass the cap). False when it is full."""
    field = ScenarioCounterModel.running
    gathered = writes.current()
    if gathered is not None:  # in the event's one transaction: full then, the event is decided again without it
        label = CAP + scenario
        if label in gathered.refused:
            return False
        if gathered.withdraw(PLACE + scenario):  # a goal of this event freed a place: this start takes it
            return True
        gathered.update(_counter(t, scenario), [field.add(1)], field.does_not_exist() | (field < cap), label=label)
        return True
    return update_if(_counter(t, scenario), [field.add(1)], field.does_not_exist() | (field < cap))


CAP = "cap#"  # the label of a scenario's place taken in an event's transaction (shared.writes)
PLACE = "place#"  # of a place given back by a goal


def give_place_back(t: Tables, scenario: str) -> None:
    """Undoes take_place when the start did not happen; never below zero."""
    field = ScenarioCounterModel.running
    update_if(_counter(t, scenario), [field.add(-1)], field > 0)


def forget(t: Tables, contact_id: str, scenario: str, execution_arn: str) -> None:
    """Removes an enrolment recorded for a start that did not happen."""
    try:
        t.enrolments(contact_id=contact_id, key=key(scenario, execution_arn)).delete()
    except (DeleteError, PynamoDBException) as error:
        raise StorageError(str(error)) from error


@cache
def _connection(region: str) -> Connection:
    return Connection(region=region)


def finish(
    t: Tables,
    contact_id: str,
    scenario: str,
    execution_arn: str,
    converted_by: str | None,
    now: datetime,
    *,
    capped: bool,
    region: str,
) -> bool:
    """Closes an active enrolment (converted by a goal, or finished) and, for a capped scenario, frees its place in
    the same transaction, so a retried Task or a goal racing the end frees it once. False when it was not active
    (closed already, or never recorded: an execution started by hand takes no place)."""
    enrolment = t.enrolments(contact_id=contact_id, key=key(scenario, execution_arn))
    actions: list[Any] = [
        EnrolmentModel.status.set("converted" if converted_by else "finished"),
        EnrolmentModel.ended_at.set(now),
    ]
    if converted_by:
        actions.append(EnrolmentModel.goal_event.set(converted_by))
    active = EnrolmentModel.status == "active"
    gathered = writes.current()
    if gathered is not None:
        # In the event's one transaction: not active (its Leave Task closed it meanwhile) or its counter at zero
        # fails it, and the event is decided again without that part.
        label = f"enrolment#{key(scenario, execution_arn)}"
        if label in gathered.refused:
            return False
        gathered.update(enrolment, actions, active, label=label)
        field = ScenarioCounterModel.running
        if capped and PLACE + scenario not in gathered.refused:
            gathered.update(_counter(t, scenario), [field.add(-1)], field > 0, label=PLACE + scenario)
        return True
    if capped:
        try:
            with TransactWrite(connection=_connection(region)) as transaction:
                transaction.update(enrolment, actions=actions, condition=active)
                field = ScenarioCounterModel.running
                transaction.update(_counter(t, scenario), actions=[field.add(-1)], condition=field > 0)
            return True
        except TransactWriteError as error:
            reasons = error.cancellation_reasons
            if not reasons:
                raise StorageError(str(error)) from error
            if reasons[0] is not None and reasons[0].code == "ConditionalCheckFailed":
                return False  # not active
            # Active, but the counter was already at zero (the contact entered before the cap existed): close it.
    return update_if(enrolment, actions, active)
