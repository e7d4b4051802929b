"""Lists: static ones (scenario steps, the admin API) and dynamic ones (rules in scenarios/lists.yaml).

A membership is the list's name in the contact's `lists` (what in_list reads) and an item of the members table
(a list's members are read by a query, never a contacts scan). `change` moves both with a conditional update of
the contact: only a real change writes the member item and emits list.joined / list.left, with the id the caller
derives from what caused it (a retry emits nothing twice).

Dynamic lists are refreshed on every processed event about a contact, evaluating only the rules the event can
change (`affected`):
- the event is of a type a rule counts (`event: order.placed ...`),
- the event sets a field a rule reads: the profile fields and custom attributes its contact facts carry,
  orders_count and total_spent on order.placed, score on score.changed, lifecycle_stage on stage.changed,
- it is list.joined / list.left of a list a rule reads (a dynamic list built on another follows it),
- or the event created the contact (every rule, once: `not_in_list` or `at_most` hold for a newcomer).
The contact's history is read at most once per event, for all the rules' windows together (one bounded query of
the contact's own events since the longest window's start). Rules are evaluated after the lists they read.

Time alone changes a rule with an event window (the order that put a contact in "bought in the last 30 days"
leaves the window). Each evaluation notes the earliest moment one of the counted events leaves its window; the
contact keeps the UTC day after it in `lists_recheck_on`, a key of the contacts' lists_recheck_on index, and the
daily run reads that day's key in pages like its other keys (shared.journeys.schedule, `lists` pages) and
re-evaluates each contact found (`recheck_contact`): a lapsed membership ends within a day, without a scan.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from functools import lru_cache
from pathlib import Path
from typing import Any

from pynamodb.connection import Connection
from pynamodb.exceptions import PynamoDBException, TransactWriteError
from pynamodb.transactions import TransactWrite

from shared import writes
from shared.events import (
    CONTACT_IMPORTED,
    LIST_JOINED,
    LIST_LEFT,
    ORDER_PLACED,
    SCORE_CHANGED,
    STAGE_CHANGED,
    ContactFacts,
    Event,
    normalise_email,
)
from shared.people import moments
from shared.people.conditions import LIST_NAME, PROFILE_FIELDS, Facts, holds, matches
from shared.people.errors import AdminError
from shared.settings import Settings
from shared.sources import ingestion
from shared.storage import ContactModel, EventModel, StorageError, Tables, get_or_none, query, tables, update_if

RULES = Path(__file__).resolve().parents[2] / "scenarios" / "compiled" / "lists.json"
# What a parcours event changes on the contact besides what its contact facts carry.
FIELDS_BY_EVENT = {
    ORDER_PLACED: frozenset({"orders_count", "total_spent"}),
    SCORE_CHANGED: frozenset({"score"}),
    STAGE_CHANGED: frozenset({"lifecycle_stage"}),
}


@dataclass(frozen=True)
class Rule:
    """A dynamic list and what its condition reads, so that an event evaluates only the rules it can change."""

    name: str
    condition: dict[str, Any]
    events: frozenset[str] = frozenset()  # event types its behaviour conditions count
    fields: frozenset[str] = frozenset()  # profile fields, counters and custom attributes it reads
    lists: frozenset[str] = frozenset()  # lists it reads
    window: int = 0  # its longest `within`, in seconds (0: no event window, time alone never changes it)


def reads(condition: Any) -> tuple[set[str], set[str], set[str], int]:
    """The event types, fields and lists a condition reads, and its longest window."""
    events: set[str] = set()
    fields: set[str] = set()
    lists: set[str] = set()
    window = 0
    if isinstance(condition, list):
        for part in condition:
            e, f, li, w = reads(part)
            events, fields, lists, window = events | e, fields | f, lists | li, max(window, w)
    elif isinstance(condition, dict):
        if "event" in condition:
            events.add(str(condition["event"]))
            window = int(condition["within"])
        elif "attribute" in condition:
            fields.add(str(condition["attribute"]))
        elif "in_list" in condition or "not_in_list" in condition:
            lists.add(str(condition.get("in_list") or condition.get("not_in_list")))
        else:
            for key in ("all", "any", "not"):
                if key in condition:
                    e, f, li, w = reads(condition[key])
                    events, fields, lists, window = events | e, fields | f, lists | li, max(window, w)
    return events, fields, lists, window


def rule_of(name: str, condition: dict[str, Any]) -> Rule:
    events, fields, lists, window = reads(condition)
    return Rule(name, condition, frozenset(events), frozenset(fields), frozenset(lists), window)


@lru_cache(maxsize=2)
def rules(path: Path = RULES) -> tuple[Rule, ...]:
    """The compiled dynamic lists, each after the lists it reads (none when the file is absent)."""
    if not path.exists():
        return ()
    data: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    return tuple(rule_of(str(spec["name"]), spec["if"]) for spec in data.get("lists", []))


def dynamic_names(path: Path = RULES) -> frozenset[str]:
    return frozenset(rule.name for rule in rules(path))


def changed_fields(event: Event) -> frozenset[str]:
    """The contact fields this event may have changed: what its contact facts carry, and its counters."""
    found = set(FIELDS_BY_EVENT.get(event.type, ()))
    facts = event.contact
    if facts is not None:
        found |= {name for name in (*PROFILE_FIELDS, "phone") if getattr(facts, name, None) is not None}
        found |= set(facts.attributes or {})
    return frozenset(found)


def affected(event: Event, contact: ContactModel, now: datetime, known: Iterable[Rule]) -> list[Rule]:
    """The rules this event can change the outcome of, in evaluation order."""
    if contact.created_by_event:  # each rule meets the newcomer once
        return list(known)
    fields = changed_fields(event)
    moved = {str(event.properties.get("list"))} if event.type in (LIST_JOINED, LIST_LEFT) else set()
    # A tracked visitor identified with an email (or phone, or source id): its earlier events may just have been
    # copied into the contact's history (shared.people.contacts.copy_anonymous), so every window rule may have moved.
    facts = event.contact
    merged = facts is not None and bool(facts.anonymous_id) and bool(facts.email or facts.phone or facts.source_id)
    return [
        rule
        for rule in known
        if event.type in rule.events or rule.fields & fields or rule.lists & moved or (merged and rule.events)
    ]


@dataclass
class Window:
    """The contact's recent events, read once, counted in memory for every behaviour condition; notes the
    earliest moment a counted event leaves its condition's window (when time alone may change an outcome)."""

    now: datetime
    records: list[tuple[datetime, str, dict[str, Any]]]
    next_exit: datetime | None = None

    def __call__(self, event_type: str, since: datetime, where: dict[str, Any] | None) -> int:
        span = self.now - since
        count = 0
        for at, kind, properties in self.records:
            if kind != event_type or at < since or not matches(where, properties):
                continue
            count += 1
            leaves = at + span
            if leaves > self.now and (self.next_exit is None or leaves < self.next_exit):
                self.next_exit = leaves
        return count


def read_window(t: Tables, contact_id: str, selected: list[Rule], now: datetime) -> Window | None:
    """One bounded query of the contact's events since the longest window's start, of the types counted."""
    types = sorted({kind for rule in selected for kind in rule.events})
    if not types:
        return None
    since = now - timedelta(seconds=max(rule.window for rule in selected))
    found = query(
        t.events, contact_id, EventModel.at_id >= since.isoformat(), filter_condition=EventModel.type.is_in(*types)
    )
    gathered = writes.current()
    pending = gathered.records(contact_id) if gathered is not None else []  # the event's own, not written yet
    records = []
    for item in [*found, *pending]:
        at = datetime.fromisoformat(item.at_id.partition("#")[0])
        if item.type in types and at >= since:
            records.append((at, item.type, dict(item.properties or {})))
    return Window(now, records)


@dataclass(frozen=True)
class Changed:
    list: str
    joined: bool


@dataclass
class Outcome:
    evaluated: list[str] = field(default_factory=list)
    changes: list[Changed] = field(default_factory=list)
    history_reads: int = 0


def change(
    settings: Settings,
    contact_id: str,
    name: str,
    add: bool,
    now: datetime,
    event_id: str,
    origin: str,
    contact: ContactModel | None = None,
    emit: bool = True,
) -> bool:
    """Adds or removes a membership if it is not so already: the contact's conditional update and the members
    item in one transaction (both or neither); only then list.joined / list.left is emitted under `event_id`.
    `contact`, when given, has its `lists` kept in hand; `emit` False: no event (an import that starts nothing).
    False: no change (already so, or no such contact). While an event's writes are gathered (shared.writes), the
    contact in hand changes and the member item joins the event's one transaction, under the same condition."""
    t = tables(settings)
    present = ContactModel.lists.contains(name)
    member = t.list_members(list_name=name, contact_id=contact_id, joined_at=now, origin=origin)
    gathered = writes.current()
    if gathered is not None and contact is not None and contact.contact_id == contact_id:
        if (name in (contact.lists or set())) == add:
            return False
        gathered.condition(~present if add else present)
        if add:
            gathered.put(member)
        else:
            gathered.delete(member)
    else:
        condition = ContactModel.contact_id.exists() & (~present if add else present)
        action = ContactModel.lists.add({name}) if add else ContactModel.lists.delete({name})
        try:
            with TransactWrite(connection=_connection(settings.region)) as transaction:
                transaction.update(t.contacts(contact_id=contact_id), actions=[action], condition=condition)
                if add:
                    transaction.save(member)
                else:
                    transaction.delete(member)
        except TransactWriteError as error:
            # The contact's condition is the only one (PynamoDB sends the puts and deletes before the updates).
            reasons = error.cancellation_reasons or []
            if any(reason is not None and reason.code == "ConditionalCheckFailed" for reason in reasons):
                return False
            raise StorageError(str(error)) from error
        except PynamoDBException as error:
            raise StorageError(str(error)) from error
    if contact is not None:
        held = set(contact.lists or ())
        contact.lists = (held | {name}) if add else (held - {name}) or None
    if not emit:
        return True
    event = Event(
        event_id=event_id,
        type=LIST_JOINED if add else LIST_LEFT,
        source="parcours",
        topic=origin,
        occurred_at=now.isoformat(),
        received_at=now.isoformat(),
        contact=ContactFacts(contact_id=contact_id),
        properties={"list": name},
    )
    ingestion.enqueue(event, settings)
    return True


@lru_cache(maxsize=4)
def _connection(region: str) -> Connection:
    """The connection transactions go through (models keep their own), made once per container."""
    return Connection(region=region)


def recheck_day(moment: datetime) -> str:
    """The daily run that re-evaluates a window passing at `moment`: the first run after it."""
    return (moment.astimezone(UTC) + timedelta(days=1)).date().isoformat()


def _dependents(selected: list[Rule], known: tuple[Rule, ...]) -> list[Rule]:
    """The selected rules and those reading their lists, transitively, in evaluation order."""
    names = {rule.name for rule in selected}
    for rule in known:  # in order: a rule comes after the lists it reads
        if rule.lists & names:
            names.add(rule.name)
    return [rule for rule in known if rule.name in names]


def _evaluate(
    selected: list[Rule],
    known: tuple[Rule, ...],
    contact: ContactModel,
    settings: Settings,
    now: datetime,
    cause: str,
    known_window: Window | None = None,
) -> tuple[Outcome, Window | None]:
    """Evaluates the selected rules, and the rules reading a list that changed on the way (in the same pass,
    each after the lists it reads). The history is read once, when the first rule needing it comes."""
    outcome = Outcome()
    candidates = _dependents(selected, known)
    chosen = {rule.name for rule in selected}
    window = known_window
    moved: set[str] = set()
    for rule in candidates:
        if rule.name not in chosen and not rule.lists & moved:
            continue
        if rule.events and window is None:
            window = read_window(tables(settings), contact.contact_id, candidates, now)
            outcome.history_reads = 1
        facts = Facts(now=now, default_timezone=settings.default_timezone, history=window)
        outcome.evaluated.append(rule.name)
        inside = holds(rule.condition, contact, facts)
        if inside == (rule.name in (contact.lists or set())):
            continue
        kind = LIST_JOINED if inside else LIST_LEFT
        event_id = f"parcours#{kind}#{rule.name}#{contact.contact_id}#{cause}"
        if change(settings, contact.contact_id, rule.name, inside, now, event_id, f"lists/{rule.name}", contact):
            outcome.changes.append(Changed(rule.name, inside))
            moved.add(rule.name)
    return outcome, window


def _keep_recheck(contact: ContactModel, window: Window | None, now: datetime, replace: bool) -> None:
    """Keeps the contact's re-check day: the earliest known one (`replace`: the daily run's own evaluation of
    every windowed rule, whose answer replaces the day it was found under)."""
    wanted = recheck_day(window.next_exit) if window is not None and window.next_exit is not None else None
    held = contact.lists_recheck_on
    today = now.astimezone(UTC).date().isoformat()
    if not replace and held is not None and held >= today and (wanted is None or held <= wanted):
        return
    if wanted == held:
        return
    if writes.current() is not None:  # written with the contact in the event's one transaction
        contact.lists_recheck_on = wanted
        return
    attribute = ContactModel.lists_recheck_on
    update_if(
        contact,
        [attribute.set(wanted) if wanted is not None else attribute.remove()],
        ContactModel.contact_id.exists(),
    )


def refresh(event: Event, contact: ContactModel, settings: Settings, now: datetime) -> Outcome:
    """Joins and leaves the dynamic lists this event can change, for the contact in hand (refreshed)."""
    known = rules()
    selected = affected(event, contact, now, known)
    if not selected:
        return Outcome()
    fresh = None
    if contact.created_by_event and (event.contact is None or not event.contact.anonymous_id):
        # Created by this event, with no visitor's events merged: its history is this event alone, no read.
        fresh = Window(now, [(now, event.type, {"topic": event.topic, **event.properties})])
    outcome, window = _evaluate(selected, known, contact, settings, now, event.event_id, fresh)
    if window is not None:
        _keep_recheck(contact, window, now, replace=False)
    return outcome


def on_attribute(settings: Settings, contact: ContactModel, name: str, now: datetime, cause: str) -> Outcome:
    """A scenario's set_attribute changed `name` (no event tells it): the rules reading it are evaluated now."""
    known = rules()
    selected = [rule for rule in known if name in rule.fields]
    if not selected:
        return Outcome()
    outcome, window = _evaluate(selected, known, contact, settings, now, cause)
    if window is not None:
        _keep_recheck(contact, window, now, replace=False)
    return outcome


@dataclass
class RecheckReport:
    day: str
    contacts: int = 0
    joined: int = 0
    left: int = 0


def recheck_contact(settings: Settings, contact_id: str, day: str, now: datetime) -> Outcome | None:
    """The daily run's part, for one contact found under the run's day in the lists_recheck_on index (a page of
    the run reads the day's key, never a scan): every rule with an event window is evaluated again, and the
    contact's next day noted. None when the contact is gone or moved to another day meanwhile."""
    known = rules()
    windowed = [rule for rule in known if rule.events]
    t = tables(settings)
    contact = get_or_none(t.contacts, contact_id, consistent=True)
    if not windowed or contact is None or contact.lists_recheck_on != day:
        return None
    outcome, window = _evaluate(windowed, known, contact, settings, now, f"recheck#{day}")
    _keep_recheck(contact, window, now, replace=True)
    return outcome


def recheck(settings: Settings, moment: datetime, now: datetime) -> RecheckReport:
    """Every re-check of a run's day in this process (tests; the daily run pages them, shared.journeys.schedule)."""
    day = moments.daily_window(moment)[0].date().isoformat()
    report = RecheckReport(day)
    for key in tables(settings).contacts.by_lists_recheck.query(day):
        outcome = recheck_contact(settings, key.contact_id, day, now)
        if outcome is None:
            continue
        report.contacts += 1
        report.joined += sum(1 for c in outcome.changes if c.joined)
        report.left += sum(1 for c in outcome.changes if not c.joined)
    return report


def members(settings: Settings, name: str, limit: int = 1000) -> list[dict[str, str]]:
    """A list's members (contact id, when and how they joined), by a query of the members table."""
    try:
        return [
            {"contact_id": item.contact_id, "joined_at": item.joined_at.isoformat(), "origin": item.origin}
            for item in tables(settings).list_members.query(name, limit=limit)
        ]
    except PynamoDBException as error:
        raise StorageError(str(error)) from error


def is_dynamic(name: str) -> bool:
    return name in dynamic_names()


def _who(t: Tables, body: bytes) -> str:
    """The contact an admin request names, by `contact_id` or `email` (one read of either)."""
    try:
        given = json.loads(body or b"{}")
    except ValueError:
        raise AdminError(400, 'the body is JSON: {"email": ...} or {"contact_id": ...}') from None
    if not isinstance(given, dict) or len({"email", "contact_id"} & set(given)) != 1:
        raise AdminError(400, 'name the contact with exactly one of "email" or "contact_id"')
    if "contact_id" in given:
        contact_id = given["contact_id"]
        if not isinstance(contact_id, str) or get_or_none(t.contacts, contact_id) is None:
            raise AdminError(404, "no contact with this contact_id")
        return contact_id
    email = normalise_email(given["email"])
    if email is None:
        raise AdminError(400, "email is not an email address")
    identity = get_or_none(t.identities, "email#" + email)
    if identity is None:
        raise AdminError(404, "no contact with this email")
    return str(identity.contact_id)


def static_refusal(name: str) -> str | None:
    """Why a static list cannot be named so, or None."""
    if not LIST_NAME.match(name):
        return "a list name is lower-case letters, digits and dashes"
    if is_dynamic(name):
        return f"list {name!r} is dynamic: its rule in lists.yaml decides who is in it"
    return None


def _static(name: str) -> None:
    refusal = static_refusal(name)
    if refusal is not None:
        raise AdminError(409 if is_dynamic(name) else 400, refusal)


def join_imported(event: Event, contact: ContactModel, settings: Settings, now: datetime) -> int:
    """The static lists an imported row names (`properties.lists`, checked at the route), joined once each. Their
    list.joined is emitted only when the import starts scenarios (`contact.subscribed`): without it, an import
    starts nothing. Answers how many were joined."""
    if event.source != "import":
        return 0
    joined = 0
    for name in event.properties.get("lists") or ():
        event_id = f"parcours#{LIST_JOINED}#import#{name}#{contact.contact_id}#{event.event_id}"
        emit = event.type != CONTACT_IMPORTED
        joined += change(settings, contact.contact_id, name, True, now, event_id, "import", contact, emit=emit)
    return joined


def admin_change(settings: Settings, name: str, body: bytes, add: bool, now: datetime) -> dict[str, Any]:
    """The admin API's add or remove on a static list; list.joined / list.left as a scenario step emits them."""
    _static(name)
    t = tables(settings)
    contact_id = _who(t, body)
    kind = LIST_JOINED if add else LIST_LEFT
    event_id = f"parcours#{kind}#admin#{name}#{contact_id}#{now.isoformat()}"
    changed = change(settings, contact_id, name, add, now, event_id, "admin")
    status = ("added" if add else "removed") if changed else "unchanged"
    return {"list": name, "contact_id": contact_id, "status": status}


def admin_members(settings: Settings, name: str) -> dict[str, Any]:
    """A list's members with their email, static or dynamic (a query of the members table, a batch of reads)."""
    if not LIST_NAME.match(name):
        raise AdminError(400, "a list name is lower-case letters, digits and dashes")
    found = members(settings, name)
    t = tables(settings)
    emails: dict[str, str | None] = {}
    try:
        for start in range(0, len(found), 100):
            keys = [member["contact_id"] for member in found[start : start + 100]]
            emails |= {contact.contact_id: contact.email for contact in t.contacts.batch_get(keys)}
    except PynamoDBException as error:
        raise StorageError(str(error)) from error
    return {
        "list": name,
        "dynamic": is_dynamic(name),
        "members": [{**member, "email": emails.get(member["contact_id"])} for member in found],
    }
