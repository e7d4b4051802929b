"""What the process function does with one queued event, once, as a straight line: read what the event needs
(`first_read`: its processed mark, its address's erasure tombstone and its identities in one request; then the
contact, and its enrolments or recent history only when a decision needs them), decide (sources, people: contact
and history, score, lists, CRM handoff; then the journeys: goals first, waits resumed, scenarios started), all of
it in hand and gathered in shared.writes, write once (one transaction with the event's mark), then carry out what
lies outside DynamoDB (executions started and stopped, events queued). The messages come later, from the
executions. A redelivery finds the mark in its first read and carries out the same effects again, each once by its
own id: one request."""

from __future__ import annotations

import json
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from shared import clients, writes
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
from shared.storage import (
    MARK_PREFIX,
    ContactModel,
    EventModel,
    IdentityModel,
    Key,
    MarkModel,
    StorageBusy,
    SuppressionModel,
    Tables,
    get_together,
    tables,
)

KEPT = timedelta(days=7)  # a mark's life: Shopify retries for 4 hours, SQS redrives within 14 days of a fix
ATTEMPTS = 5  # reads and decisions again when something changed between the read and the write


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
    again: bool = False  # processed already (answered from its mark): nothing of it is counted again

    def for_mark(self) -> dict[str, Any]:
        """What a redelivery answers: nothing naming the contact (no contact id, no execution name)."""
        return {
            "recorded": self.recorded,
            "dropped": self.dropped,
            "unidentified": self.unidentified,
            "outcomes": [[o.scenario, o.started, o.reason] for o in self.outcomes],
        }

    @classmethod
    def of_mark(cls, event_id: str, stored: dict[str, Any]) -> Result:
        outcomes = [dispatch.Outcome(str(s), "", bool(started), str(r)) for s, started, r in stored.get("outcomes", [])]
        return cls(
            event_id,
            None,
            recorded=bool(stored.get("recorded", True)),
            dropped=stored.get("dropped"),
            outcomes=outcomes,
            unidentified=bool(stored.get("unidentified")),
            again=True,
        )


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
    """The event's record alone (no contact): with the mark, or not again if an attempt before the marks wrote it."""
    gathered = writes.current()
    if gathered is not None and HISTORY not in gathered.refused:
        gathered.create(_history(event, owner, t, now, settings), label=HISTORY)


HISTORY = "history"


@dataclass(frozen=True)
class FirstRead:
    """What one BatchGetItem finds for an event before anything else."""

    mark: MarkModel | None
    erased: bool  # its address was erased after the event was received: the event brings nobody back
    identities: dict[str, str]  # identity key -> contact id, of the keys the event's contact facts name


def mark_id(event: Event) -> str:
    return MARK_PREFIX + event.event_id


def first_read(event: Event, t: Tables, settings: Settings) -> FirstRead:
    """The event's mark, its address's tombstone and its identities (email, source id, phone, anonymous id), in one
    request. Without the suppression key it raises (ConfigurationError naming the parameter): the event is
    retried, then dead-lettered with its reason, never processed unchecked nor lost."""
    keys: list[Key] = [(t.marks, mark_id(event), None)]
    facts = event.contact
    tombstone = None
    if facts is not None and facts.email is not None and event.type != COMPLIANCE_REQUESTED:
        tombstone = suppression.address_hash(suppression.hash_key(settings), facts.email)
        if tombstone:
            keys.append((t.suppressions, tombstone, None))
    identity_keys = contacts.lookup_keys(facts) if facts is not None else []
    keys += [(t.identities, key, None) for key in identity_keys]
    found = get_together(keys, consistent=[t.suppressions])  # an erasure just made is seen
    mark = found.get((t.marks, mark_id(event), None))
    entry = found.get((t.suppressions, tombstone, None)) if tombstone else None
    erased = isinstance(entry, SuppressionModel) and privacy.received_before(event.received_at, entry.erased_at)
    known = {
        key: item.contact_id
        for key in identity_keys
        if isinstance(item := found.get((t.identities, key, None)), IdentityModel)
    }
    return FirstRead(mark if isinstance(mark, MarkModel) else None, erased, known)


def process(event: Event, settings: Settings, clock: Clock) -> Result:
    """Read, decide, write once, carry out; again from the read when something changed in between."""
    t = tables(settings)
    now = clock.now()
    refused: frozenset[str] = frozenset()
    for _ in range(ATTEMPTS):
        seen = first_read(event, t, settings)
        if seen.mark is not None:  # processed already: what it did outside DynamoDB, once more (each once by its id)
            carry_out(seen.mark.effects or [], event, settings, now)
            return Result.of_mark(event.event_id, seen.mark.result or {})
        gathered = writes.Writes(mark=t.marks(id=mark_id(event), expiration=now + KEPT), refused=refused)
        with writes.gathering(gathered), ingestion.caused_by(event.chain) as chain, ingestion.held() as emitted:
            result = decide(event, seen, settings, t, now)
        texts = [e.to_json() for e in emitted]
        gathered.effects += [{"emit": text} for text in texts]
        in_hand = dict(zip(texts, emitted, strict=True))  # queued after the transaction as they are, not read again
        result = replace(result, cut=chain.cut)
        gathered.mark.result, gathered.mark.effects = result.for_mark(), gathered.effects
        try:
            gathered.commit()
        except writes.Processed:  # another delivery of it, at the same moment: it carries out the effects
            return Result(event.event_id, None, recorded=True, dropped="processed by another delivery", again=True)
        except writes.Changed as changed:
            refused |= {changed.label}
            continue
        carry_out(gathered.effects, event, settings, now, in_hand)
        return result
    raise StorageBusy(f"the event's items kept changing meanwhile ({ATTEMPTS} attempts); the event is retried later")


def decide(event: Event, seen: FirstRead, settings: Settings, t: Tables, now: datetime) -> Result:
    """Everything the event changes, in hand and gathered (shared.writes); nothing written yet but what a rare
    path writes by itself (a take-back's order, an anonymous visitor's copied events, an erasure: each once by its
    own keys)."""
    if event.type == COMPLIANCE_REQUESTED:
        _record(event, f"_compliance#{event.source}", t, now, settings)
        return Result(event.event_id, None, recorded=True, compliance=privacy.comply(event, settings, now))
    if seen.erased:
        # Received before the person's erasure, processed after it: it brings nobody back (nothing is written).
        return Result(event.event_id, None, recorded=False, dropped="received before its person's erasure")
    retention = timedelta(days=settings.event_retention_days)
    contact: ContactModel | None
    if event.type in orders.TAKE_BACKS:
        # A refund or a cancellation: found by its order (or the customer it names), never a new contact
        contact, reason = orders.take_back(
            event, t, now, retention, lambda owner: _history(event, owner, t, now, settings)
        )
        if contact is None:
            _record(event, f"_unattributed#{event.source}", t, now, settings)
            return Result(event.event_id, None, recorded=True, dropped=reason)
        gathered = writes.current()
        if gathered is not None:  # as its take-back left it: what the rest decides is written with the mark
            gathered.keep(contact, contact.serialize())
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
            identities=seen.identities,
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
    scoring.apply(event, contact, settings, now)  # points and stage, emitted as events; in hand
    lists.join_imported(event, contact, settings, now)  # an imported row's static lists
    lists.refresh(event, contact, settings, now)
    if event.type == CONTACT_QUALIFIED:
        handoff.enqueue(event, contact, settings)  # the CRM handoff and the EventBridge event (functions/handoff)
    entries = dispatch.catalogue()
    # Goals first: an order ends the abandoned-cart series before it starts the post-purchase one.
    # The contact's enrolments, read once for the three, only for a scenario it entered whose goal this event may
    # reach or which awaits it (the starts decide on the contact's `entered`; none for a contact it created).
    enrolled = enrolments.all_of(t, contact.contact_id) if dispatch.needs_enrolments(event, contact, entries) else []
    enrolments.fill_entered(contact, enrolled)
    outcomes = dispatch.stop_on_goals(event, contact, settings, entries, now, enrolled)
    outcomes += dispatch.resume_waiting(event, contact, settings, enrolled)
    outcomes += dispatch.start_matching(event, contact, settings, entries, now, enrolled)
    return Result(event.event_id, contact.contact_id, recorded=True, outcomes=outcomes)


def carry_out(
    effects: list[dict[str, Any]],
    event: Event,
    settings: Settings,
    now: datetime,
    in_hand: dict[str, Event] | None = None,
) -> None:
    """What the event does outside DynamoDB, in order; each is done once by its own id, so doing it again (a
    redelivery after a crash, or after all went well) changes nothing: an execution's name starts it once, a stop
    or a resume of what has ended is refused and ignored, an event's id makes its processing happen once. What
    the event itself carries (an execution's input, an awaited event) is made again from it, not kept in the mark
    (a large order's properties twice over would not fit in an item)."""
    for effect in effects:
        if "start" in effect:
            execution_input = dispatch.input_of(effect["scenario"], effect["contact"], event, now)
            dispatch.start(effect["start"], effect["name"], execution_input, settings)
        elif "stop" in effect:
            dispatch.stop(effect["stop"], effect["cause"], settings)
        elif "resume" in effect:
            dispatch.resume(effect["resume"], dispatch.awaited(event), settings)
        elif "emit" in effect:
            emitted = (in_hand or {}).get(effect["emit"]) or Event.from_dict(json.loads(effect["emit"]))
            ingestion.enqueue(emitted, settings, body=effect["emit"])
        elif "send" in effect:
            try:
                clients.sqs(settings.region).send_message(QueueUrl=effect["send"], MessageBody=effect["body"])
            except (ClientError, BotoCoreError) as error:
                raise ingestion.QueueUnavailable(type(error).__name__) from error
