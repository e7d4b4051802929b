"""Contacts: found by identity, created on first sight, updated from each source's newer facts."""

from __future__ import annotations

import contextlib
import logging
import uuid
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from typing import Any

from pynamodb.exceptions import PynamoDBException
from pynamodb.expressions.update import Action
from pynamodb.models import Model

from shared import writes
from shared.events import (
    CHECKOUT_STARTED,
    CHECKOUT_UPDATED,
    CONTACT_SUBSCRIBED,
    FORM_SUBMITTED,
    ORDER_PAID,
    ORDER_PLACED,
    PAGE_VIEWED,
    TRACK,
    ContactFacts,
)
from shared.people import consent, dates, scoring
from shared.people.conditions import COUNTERS, NAME, PROFILE_FIELDS
from shared.sources import validation
from shared.storage import (
    AlreadyApplied,
    AlreadyExists,
    ContactModel,
    EventModel,
    IdentityModel,
    StorageError,
    Tables,
    create_new,
    get_or_none,
    save_changes,
    update_if,
)

logger = logging.getLogger(__name__)


def identity_keys(facts: ContactFacts) -> list[str]:
    """The identities a contact is known by: email, the source's own id, the phone (E.164)."""
    keys = []
    if facts.email:
        keys.append("email#" + facts.email)
    if facts.source_id:
        keys.append(facts.source_id)
    if facts.phone:
        keys.append("phone#" + facts.phone)
    return keys


IDENTITY = ("email", "phone")  # what finds a contact: changed only by a source trusted for identity
SCORING_KEEPS = (scoring.STAGE, scoring.QUALIFIED_AT)  # the attributes the scoring keeps
ANONYMOUS_OWNER = "_anonymous#"  # the events table's owner of an unidentified visitor's events
MAX_MERGED_EVENTS = 200  # an anonymous visitor's most recent events copied into the contact on identify


def anonymous_key(anonymous_id: str) -> str:
    return "anonymous#" + anonymous_id


def lookup_keys(facts: ContactFacts) -> list[str]:
    """Every identity an event's processing may read: its identities and its anonymous visitor's (read together)."""
    if facts.contact_id is not None:
        return []
    return identity_keys(facts) + ([anonymous_key(facts.anonymous_id)] if facts.anonymous_id else [])


def _find(
    keys: list[str], tables: Tables, deciding: list[str] | None = None, read: dict[str, str] | None = None
) -> tuple[str | None, dict[str, str]]:
    """The contact id of the first known identity among `deciding` (default: all), and every known identity's
    contact id: one request (BatchGetItem), none when `read` holds them (read with the event's mark), and no write
    later for an identity already there."""
    if read is not None:
        known = {key: read[key] for key in keys if key in read}
    elif len(keys) == 1:
        identity = get_or_none(tables.identities, keys[0])
        known = {keys[0]: identity.contact_id} if identity is not None else {}
    else:
        try:
            known = {
                identity.identity: identity.contact_id
                for identity in tables.identities.batch_get(list(dict.fromkeys(keys)))
            }
        except PynamoDBException as error:
            raise StorageError(str(error)) from error
    return next((known[key] for key in (deciding or keys) if key in known), None), known


def _parse(timestamp: str | None) -> datetime | None:
    if not timestamp:
        return None
    try:
        return datetime.fromisoformat(timestamp.replace("Z", "+00:00"))
    except ValueError:
        return None


def find(facts: ContactFacts, tables: Tables) -> str | None:
    """The id of the contact these facts' email or source id names (the phone, as in upsert, only without them);
    None when none does. Never creates anything (one request)."""
    keys = identity_keys(facts)
    if not keys:
        return None
    strong = [key for key in keys if not key.startswith("phone#")]
    return _find(keys, tables, deciding=strong or keys)[0]


MAX_PAGES = 50  # distinct paths counted per contact: enough for "pages of interest", bounded item size
# What the person did themselves (a shop's admin editing a customer is not the person being seen).
_SEEN = (
    CONTACT_SUBSCRIBED,
    CHECKOUT_STARTED,
    CHECKOUT_UPDATED,
    ORDER_PLACED,
    ORDER_PAID,
    PAGE_VIEWED,
    FORM_SUBMITTED,
    TRACK,
)
# What counts as the person's contact for retention (REQUIREMENTS.md, Privacy): a signup, a form, an order; a
# click too (record_engagement). An open does not: it is the mail client's, not the person's.
_CONTACTED = (CONTACT_SUBSCRIBED, FORM_SUBMITTED, ORDER_PLACED, ORDER_PAID)


def contacted(contact: ContactModel, at: datetime) -> None:
    """Moves the contact's last contact (and its day, the contacted_on index's key) on the unsaved contact; never
    back (an older event processed late)."""
    if contact.last_contact_at is None or contact.last_contact_at <= at:
        contact.last_contact_at = at
        contact.contacted_on = at.astimezone(UTC).date().isoformat()


def note_activity(contact: ContactModel, event_type: str, properties: Mapping[str, Any], at: datetime) -> None:
    """The counters an event moves on the unsaved contact (saved with it: no extra request per event)."""
    if event_type in _SEEN:
        contact.last_seen_at = at
    if event_type in _CONTACTED:
        contacted(contact, at)
    if event_type in (CHECKOUT_STARTED, CHECKOUT_UPDATED) and not properties.get("completed"):
        contact.last_cart_at = at
        url = properties.get("recovery_url")
        contact.last_cart_url = url if isinstance(url, str) else contact.last_cart_url
    path = properties.get("path")
    if event_type == PAGE_VIEWED and isinstance(path, str) and path:
        path = path[:200]
        pages = contact.pages.as_dict() if contact.pages is not None else {}
        if path in pages or len(pages) < MAX_PAGES:
            contact.pages = {**pages, path: int(pages.get(path, 0)) + 1}


RACES = 3  # attempts when another event creates the same new contact at the same moment


def upsert(
    facts: ContactFacts,
    tables: Tables,
    now: datetime,
    event_type: str | None = None,
    properties: Mapping[str, Any] | None = None,
    history: Callable[[str], Model] | None = None,
    order: Callable[[str], Model] | None = None,
    identities: dict[str, str] | None = None,
) -> ContactModel | None:
    """The contact these facts describe, created or updated; None when nothing identifies anyone.

    With the event's type and properties, the counters it moves are saved in the same write (note_activity).
    With `history` (the event's record for a contact id), the record is written with the contact, in one
    transaction when the contact changes: a contact never shows an event its history lacks. With `order` (an order
    placed: its item for a contact id, shared.people.orders), the item is written in that transaction too, only if
    absent: an order counts once on the contact, whatever deliveries of it come.

    A new contact claims its identities before it is written: two first events for one new address (a shop's
    webhook and the site's identify, in two FIFO groups) end as one contact. The one that loses the claim, or the
    contact's creation, starts again and finds the other's.
    """
    for _ in range(RACES):
        with contextlib.suppress(_Raced):
            return _upsert_once(facts, tables, now, event_type, properties, history, order, identities)
    raise StorageError(f"other events wrote this new contact {RACES} times meanwhile; the event is retried later")


class _Raced(Exception):
    """Another event created this new contact meanwhile: read again."""


def _claim(keys: list[str], contact_id: str, tables: Tables) -> str | None:
    """Writes the identities of a new contact before the contact; None when all were free, else the id of the
    contact one of them already names (the claims made are then released)."""
    claimed: list[str] = []
    for key in keys:
        try:
            create_new(tables.identities(identity=key, contact_id=contact_id), IdentityModel.identity)
        except AlreadyExists:
            for mine in claimed:
                with contextlib.suppress(PynamoDBException):
                    tables.identities(identity=mine).delete(condition=IdentityModel.contact_id == contact_id)
            owner = get_or_none(tables.identities, key)
            return owner.contact_id if owner is not None else None
        claimed.append(key)
    return None


def _upsert_once(
    facts: ContactFacts,
    tables: Tables,
    now: datetime,
    event_type: str | None,
    properties: Mapping[str, Any] | None,
    history: Callable[[str], Model] | None,
    order: Callable[[str], Model] | None = None,
    identities: dict[str, str] | None = None,
) -> ContactModel | None:
    gathered = writes.current()
    if facts.contact_id is not None:  # parcours' own event about a contact it knows: nothing to update
        known = get_or_none(tables.contacts, facts.contact_id)
        if known is not None and gathered is not None:
            gathered.keep(known, known.as_read())  # what the event's decisions change on it, written once
            if history is not None and HISTORY not in gathered.refused:
                gathered.create(history(known.contact_id), label=HISTORY)
        elif known is not None and history is not None:
            with contextlib.suppress(AlreadyExists):  # recorded by an earlier attempt at this event
                create_new(history(known.contact_id), EventModel.contact_id)
        return known
    keys = identity_keys(facts)
    claimed = False  # a new contact's id, its identities written
    if not keys:
        if facts.anonymous_id is None:
            return None
        # An anonymous visitor: its own contact once an identify merged it, else no one (no contact is created).
        contact_id, found = _find([anonymous_key(facts.anonymous_id)], tables, read=identities)
        if contact_id is None:
            return None
    else:
        # A household may share a phone: it finds a contact only when the facts carry no email nor source id.
        strong = [key for key in keys if not key.startswith("phone#")]
        contact_id, found = _find(keys, tables, deciding=strong or keys, read=identities)
        if contact_id is None:
            contact_id, claimed = uuid.uuid4().hex, True
            if gathered is not None:  # claimed in the transaction: a claim lost fails it, and the event is read again
                for key in strong or keys:
                    gathered.create(tables.identities(identity=key, contact_id=contact_id), label=IDENTITY_CLAIM)
            elif _claim(strong or keys, contact_id, tables) is not None:
                raise _Raced  # another event's new contact took the address first: it is the one
            found.update(dict.fromkeys(strong or keys, contact_id))
    contact: ContactModel
    existing = None if claimed else get_or_none(tables.contacts, contact_id)
    created = existing is None
    before = None  # as read: only what changes is written (a scenario may be updating this contact meanwhile)
    if existing is None:
        # New, or named by an identity whose contact another event is writing now (or never wrote: a crash between
        # the two writes). Created only if absent: the second writer starts again and updates the first's.
        contact = tables.contacts(contact_id=contact_id, created_at=now, updated_at=now)
        contact.created_by_event = True
        engaged(contact, now)  # a signup counts as engagement: silence is counted from it
        contacted(contact, now)  # and as contact: a prospect's retention is counted from it
    else:
        contact = existing
        before = contact.as_read()
    source_updated = _parse(facts.updated_at)
    stale = (
        source_updated is not None
        and contact.source_updated_at is not None
        and source_updated < contact.source_updated_at
    )
    if not stale:
        for name in ("email", "first_name", "last_name", "locale", "phone"):
            value = getattr(facts, name)
            if value is not None and (facts.identity_trusted or name not in IDENTITY or not getattr(contact, name)):
                if name == "email":  # a first address from an untrusted source stays unverified until vouched for
                    contact.email_unverified = None if facts.identity_trusted else True
                setattr(contact, name, value)
        if facts.source_id:
            source, _, native_id = facts.source_id.partition("#")
            known = contact.source_ids.as_dict() if contact.source_ids is not None else {}
            contact.source_ids = {**known, source: native_id}
        if source_updated is not None:
            contact.source_updated_at = source_updated
    given = custom_attributes(facts.attributes)
    if given and not stale:
        known_attributes = contact.attributes.as_dict() if contact.attributes is not None else {}
        merged, dropped = bounded_attributes(known_attributes, given)
        if dropped:
            logger.warning(
                "custom attributes dropped: the contact holds its limit",
                extra={"contact_id": contact.contact_id, "dropped": dropped},
            )
        contact.attributes = merged
    if created or (given and not stale):
        dates.keep_keys(contact, dates.reindex(contact, tables))
    if facts.email_consent is not None:
        consent.record(contact, facts.email_consent)
    if facts.sms_consent is not None:
        consent.record(contact, facts.sms_consent, channel="sms")
    merging = (
        bool(keys)
        and facts.anonymous_id is not None
        and copy_anonymous(facts.anonymous_id, contact, tables, merged=_merged(facts.anonymous_id, identities))
    )
    if event_type is not None:
        note_activity(contact, event_type, properties or {}, now)
    contact.updated_at = now
    counters = []
    if event_type == ORDER_PLACED:
        counters = _count_order(contact, (properties or {}).get("total"), now, new=before is None, gathered=gathered)
    records = [history(contact.contact_id)] if history is not None else []
    placed = order is not None and event_type == ORDER_PLACED
    if order is not None and placed:
        records.append(order(contact.contact_id))
    if gathered is not None:
        _gather(gathered, tables, contact, before, records, placed, keys, found, facts, merging)
        return contact
    try:
        try:
            save_changes(contact, before, counters, records)
        except AlreadyApplied:
            if not placed:
                raise
            # The order's item is there already (it names whoever placed that order id first: another delivery of
            # the order, or another shop's order of the same id): the contact is written as before, without it.
            save_changes(contact, before, counters, records[:-1])
    except AlreadyExists:
        raise _Raced from None
    except AlreadyApplied:  # an earlier attempt at this event wrote it (and failed after): counted once, as stored
        contact = tables.contacts.get(contact.contact_id)
    for key in keys:
        if key in found:  # this contact's, or (first come, first kept) another's
            continue
        if not facts.identity_trusted and not _owns(contact, key):
            continue  # an untrusted source's address the contact does not hold: it finds no one later either
        with contextlib.suppress(AlreadyExists):
            create_new(tables.identities(identity=key, contact_id=contact.contact_id), IdentityModel.identity)
    if merging and facts.anonymous_id is not None:
        with contextlib.suppress(AlreadyExists):  # merged into another contact meanwhile: it keeps the visitor
            create_new(
                tables.identities(identity=anonymous_key(facts.anonymous_id), contact_id=contact.contact_id),
                IdentityModel.identity,
            )
    return contact


IDENTITY_CLAIM = "identity"
HISTORY = "history"  # shared.journeys.processing's label of the event's record
ORDER = "order"


def _merged(anonymous_id: str, identities: dict[str, str] | None) -> bool | None:
    """Whether the visitor was merged already, as read with the event's mark (None: not read)."""
    return None if identities is None else anonymous_key(anonymous_id) in identities


def _gather(
    gathered: writes.Writes,
    tables: Tables,
    contact: ContactModel,
    before: dict[str, Any] | None,
    records: list[Model],
    placed: bool,
    keys: list[str],
    found: dict[str, str],
    facts: ContactFacts,
    merging: bool,
) -> None:
    """The contact's writes for the event's one transaction: the contact (unless an attempt before the marks wrote
    the event's record: the contact is then as that attempt left it), its record, the order's item (unless another
    delivery of the order wrote it: the contact is counted as before, without it), and its new identities."""
    if HISTORY in gathered.refused:
        return
    gathered.keep(contact, before)
    for index, record in enumerate(records):
        if placed and index == len(records) - 1:
            if ORDER not in gathered.refused:
                gathered.create(record, label=ORDER)
        else:
            gathered.create(record, label=HISTORY)
    for key in keys:
        if key in found:  # this contact's, or (first come, first kept) another's
            continue
        if not facts.identity_trusted and not _owns(contact, key):
            continue  # an untrusted source's address the contact does not hold: it finds no one later either
        gathered.create(tables.identities(identity=key, contact_id=contact.contact_id), label=IDENTITY_CLAIM)
    if merging and facts.anonymous_id is not None:
        gathered.create(
            tables.identities(identity=anonymous_key(facts.anonymous_id), contact_id=contact.contact_id),
            label=IDENTITY_CLAIM,
        )


def _owns(contact: ContactModel, key: str) -> bool:
    """Whether an identity key names what the contact holds now (its email, its phone) or a source id."""
    kind, _, value = key.partition("#")
    return {"email": contact.email, "phone": contact.phone}.get(kind, value) == value


def copy_anonymous(anonymous_id: str, contact: ContactModel, tables: Tables, merged: bool | None = None) -> bool:
    """Merges an anonymous visitor into the (unsaved) contact, unless it was merged already: its most recent
    recorded events are copied into the contact's history and move the contact's counters (pages of interest, last
    seen), so behaviour conditions count the page views made before the identify. True if the caller must then write
    the identity `anonymous#<id>` (after the contact: a retry after a failure copies again, under the same keys;
    only a failure between the two would count the pages twice). An anonymous id stays with the first contact it was
    merged into (a shared computer joins no two people).

    One read when already merged (none when `merged` says it, read with the event's mark); else one bounded query
    of the visitor's events and their batched copy.
    """
    if merged if merged is not None else get_or_none(tables.identities, anonymous_key(anonymous_id)) is not None:
        return False
    try:
        recent = list(
            tables.events.query(ANONYMOUS_OWNER + anonymous_id, scan_index_forward=False, limit=MAX_MERGED_EVENTS)
        )
        with tables.events.batch_write() as batch:
            for event in reversed(recent):  # oldest first: the counters end on the latest
                batch.save(
                    tables.events(
                        contact_id=contact.contact_id,
                        at_id=event.at_id,
                        type=event.type,
                        source=event.source,
                        properties=event.properties,
                        expires_at=event.expires_at,
                    )
                )
                at = _parse(event.at_id.partition("#")[0])
                if at is not None:
                    note_activity(contact, event.type, event.properties or {}, at)
    except PynamoDBException as error:
        raise StorageError(str(error)) from error
    return True


def custom_attributes(given: dict[str, Any] | None) -> dict[str, Any]:
    """The custom attributes a source may set: named like plan_type, never a profile field, a counter, or what the
    scoring keeps (lifecycle_stage, qualified_at: a source setting them would qualify a lead for the CRM)."""
    return {
        name: value
        for name, value in (given or {}).items()
        if isinstance(name, str) and NAME.match(name) and name not in (*PROFILE_FIELDS, *COUNTERS, *SCORING_KEEPS)
    }


MAX_CONTACT_ATTRIBUTES = 2 * validation.MAX_ATTRIBUTES  # the sources' and the scenarios' (set_attribute, scoring)
MAX_CONTACT_ATTRIBUTES_SIZE = 2 * validation.MAX_ATTRIBUTES_SIZE  # bytes, as JSON


def bounded_attributes(known: dict[str, Any], given: dict[str, Any]) -> tuple[dict[str, Any], int]:
    """The contact's custom attributes with the given ones merged in, within the contact's limits: at most
    MAX_CONTACT_ATTRIBUTES names and MAX_CONTACT_ATTRIBUTES_SIZE bytes. Each event is within the ingest's limits
    (shared.sources.validation), but many events naming new attributes would grow a contact towards DynamoDB's
    400 KB item, past which no write, an unsubscribe's included, succeeds: a new name past the limit is dropped,
    and so is a change that would make them larger than the limit (or than they are, for a contact stored before
    the limits). Answers the merged attributes and how many given ones were dropped."""
    merged = dict(known)
    ceiling = max(MAX_CONTACT_ATTRIBUTES_SIZE, validation.size_of(known))
    dropped = 0
    for name, value in given.items():
        if name not in merged and len(merged) >= MAX_CONTACT_ATTRIBUTES:
            dropped += 1
            continue
        candidate = {**merged, name: value}
        if validation.size_of(candidate) > ceiling:
            dropped += 1
            continue
        merged = candidate
    return merged, dropped


def engaged(contact: ContactModel, at: datetime) -> None:
    """Moves the contact's engagement day (signup, open, click) on the unsaved contact."""
    contact.last_engaged_at = at
    contact.engaged_on = at.astimezone(UTC).date().isoformat()


def record_engagement(contact: ContactModel, at: datetime, clicked: bool = False) -> None:
    """An open or a click: the contact leaves the inactivity index's old day for today's (atomic, never back)."""
    day = at.astimezone(UTC).date().isoformat()
    last = ContactModel.last_clicked_at if clicked else ContactModel.last_opened_at
    # False when a later engagement is already recorded (events out of order): it is kept.
    update_if(
        contact,
        [ContactModel.last_engaged_at.set(at), ContactModel.engaged_on.set(day), last.set(at)],
        ContactModel.last_engaged_at.does_not_exist() | (ContactModel.last_engaged_at <= at),
    )
    if clicked:  # a click is the person's contact (retention); an open is not
        update_if(
            contact,
            [ContactModel.last_contact_at.set(at), ContactModel.contacted_on.set(day)],
            ContactModel.contact_id.exists()  # never a partial contact brought back after an erasure
            & (ContactModel.last_contact_at.does_not_exist() | (ContactModel.last_contact_at <= at)),
        )


def _amount(total: object) -> float:
    try:
        return float(str(total)) if total is not None else 0.0
    except ValueError:
        return 0.0


def _count_order(
    contact: ContactModel, total: object, at: datetime, new: bool, gathered: writes.Writes | None = None
) -> list[Action]:
    """An order's counters: set on a new contact, else atomic additions in the contact's one update (two
    concurrent orders both count). While the event's writes are gathered, counted in hand (what the scoring and
    the lists read) and written under the condition that they are still as read (a concurrent order or take-back
    fails it: the event is read again and counted on what it left)."""
    amount = _amount(total)
    if new:
        contact.orders_count, contact.total_spent, contact.last_order_at, contact.first_order_at = 1, amount, at, at
        return []
    if gathered is not None:
        count, spent = ContactModel.orders_count, ContactModel.total_spent
        had_count, had_spent = contact.orders_count, contact.total_spent
        # a counter at 0 may be stored as 0 or not at all
        gathered.condition((count.does_not_exist() | (count == 0)) if not had_count else count == had_count)
        gathered.condition((spent.does_not_exist() | (spent == 0)) if not had_spent else spent == had_spent)
        contact.orders_count = int(had_count or 0) + 1
        contact.total_spent = float(had_spent or 0) + amount
        contact.last_order_at, contact.first_order_at = at, contact.first_order_at or at
        return []
    return [
        ContactModel.orders_count.add(1),
        ContactModel.total_spent.add(amount),
        ContactModel.last_order_at.set(at),
        ContactModel.first_order_at.set(ContactModel.first_order_at | at),
    ]
