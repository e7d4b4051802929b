"""What the process function does with one queued event, once, stage after stage of shared's layout: the event as
its source gave it (sources), the person it is about (people: contact and history, score, lists, CRM handoff),
then the journeys (goals first, waits resumed, scenarios started). The messages come later, from the executions."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta

from shared.clock import Clock
from shared.events import (
    COMPLIANCE_REQUESTED,
    CONTACT_QUALIFIED,
    EMAIL_CLICKED,
    EMAIL_OPENED,
    UNRECOGNISED,
    Event,
)
from shared.journeys import bearer, dispatch, enrolments, privacy
from shared.people import contacts, handoff, lists, orders, scoring, suppression
from shared.settings import Settings
from shared.sources import ingestion
from shared.storage import EventModel, Tables, tables


@dataclass(frozen=True)
class Result:
    event_id: str
    contact_id: str | None
    recorded: bool
    # a shop's GDPR request parcours could not answer by itself: for the operator (counted and alarmed by the handler)
    compliance: bool = False
    dropped: str | None = None  # why nothing was written for the event
    outcomes: list[dispatch.Outcome] = field(default_factory=list)
    # Nothing in it identifies anyone (no email, phone, source id nor anonymous id): kept, and counted by a metric.
    unidentified: bool = False
    cut: int = 0  # events not emitted: the event's causal chain was at its limit (ingestion.CHAIN_LIMIT), counted


def _history(event: Event, owner: str, t: Tables, now: datetime, settings: Settings) -> EventModel:
    return t.events(
        contact_id=owner,
        at_id=bearer.history_key(event, now),  # when parcours received it (shared.journeys.bearer reads it too)
        type=event.type,
        source=event.source,
        properties={"topic": event.topic, **event.properties},
        expires_at=now + timedelta(days=settings.event_retention_days),
    )


def _record(event: Event, owner: str, t: Tables, now: datetime, settings: Settings) -> None:
    _history(event, owner, t, now, settings).save()


def _erased_before(event: Event, t: Tables, settings: Settings) -> bool:
    """The erasure's tombstone, read by the event's address (one GetItem). Without the suppression key it raises
    (ConfigurationError naming the parameter): the event is retried, then dead-lettered with its reason, never
    processed unchecked nor lost."""
    if event.contact is None or event.contact.email is None:
        return False
    return privacy.erased_before(t, suppression.hash_key(settings), event.contact.email, event.received_at)


def process(event: Event, settings: Settings, clock: Clock) -> Result:
    t = tables(settings)
    now = clock.now()
    if event.type == COMPLIANCE_REQUESTED:
        _record(event, f"_compliance#{event.source}", t, now, settings)
        return Result(event.event_id, None, recorded=True, compliance=privacy.comply(event, settings, now))
    if _erased_before(event, t, settings):
        # Received before the person's erasure, processed after it: it brings nobody back (nothing is written).
        return Result(event.event_id, None, recorded=False, dropped="received before its person's erasure")
    retention = timedelta(days=settings.event_retention_days)
    if event.type in orders.TAKE_BACKS:
        # A refund or a cancellation: found by its order (or the customer it names), never a new contact
        contact, reason = orders.take_back(
            event, t, now, retention, lambda owner: _history(event, owner, t, now, settings)
        )
        if contact is None:
            _record(event, f"_unattributed#{event.source}", t, now, settings)
            return Result(event.event_id, None, recorded=True, dropped=reason)
    elif event.type == UNRECOGNISED or event.contact is None:
        # Accepted and kept (a source's own bucket), but nothing acts on it.
        _record(event, f"_unattributed#{event.source}", t, now, settings)
        return Result(event.event_id, None, recorded=True, unidentified=event.type != UNRECOGNISED)
    else:
        contact = contacts.upsert(
            event.contact,
            t,
            now,
            event.type,
            event.properties,
            history=lambda owner: _history(event, owner, t, now, settings),  # written with the contact
            order=orders.placed(event, t, now, retention),  # an order placed: its item, written with it
        )
        if contact is None and event.contact.anonymous_id is not None:
            # A visitor not identified yet: kept under its anonymous id, copied to the contact on its identify.
            _record(event, contacts.ANONYMOUS_OWNER + event.contact.anonymous_id, t, now, settings)
            return Result(event.event_id, None, recorded=True)
        if contact is None:
            _record(event, f"_unattributed#{event.source}", t, now, settings)
            return Result(event.event_id, None, recorded=True, unidentified=True)
    if event.type in (EMAIL_OPENED, EMAIL_CLICKED):
        contacts.record_engagement(contact, now, clicked=event.type == EMAIL_CLICKED)  # and the inactivity index
    # What this event causes is one link further in its chain, and queued after its own scenarios start
    with ingestion.caused_by(event.chain) as chain, ingestion.held_until_done(settings):
        scoring.apply(event, contact, settings, now)  # points and stage, emitted as events; refreshes `contact`
        lists.join_imported(event, contact, settings, now)  # an imported row's static lists
        lists.refresh(event, contact, settings, now)
        if event.type == CONTACT_QUALIFIED:
            handoff.enqueue(event, contact, settings)  # the CRM handoff and the EventBridge event (functions/handoff)
        entries = dispatch.catalogue()
        # Goals first: an order ends the abandoned-cart series before it starts the post-purchase one.
        # The contact's enrolments, read once for the three (none to read for a contact this event created).
        enrolled = [] if contact.created_by_event else enrolments.all_of(t, contact.contact_id)
        outcomes = dispatch.stop_on_goals(event, contact, settings, entries, now, enrolled)
        outcomes += dispatch.resume_waiting(event, contact, settings, enrolled)
        outcomes += dispatch.start_matching(event, contact, settings, entries, now, enrolled)
    return Result(event.event_id, contact.contact_id, recorded=True, outcomes=outcomes, cut=chain.cut)
