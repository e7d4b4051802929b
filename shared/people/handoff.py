"""The CRM handoff of a qualified lead: one signed POST to the CRM, then `contact.qualified` on EventBridge.

When the process function handles a `contact.qualified` event (the scoring's: the contact became SQL), `enqueue`
puts one message on the handoff queue (ids and numbers only, no personal data). The handoff function (`consume`)
builds the payload from the contact and its own history (two bounded reads, never a scan), POSTs it signed like
every CRM notification (shared/people/crm.py), and once the CRM accepted it (or when no CRM is configured) puts the
EventBridge event any integration can subscribe to.

Delivery is at least once, deduplicated on the qualified event's id: the delivery id derives from it, is sent as
`X-Parcours-Delivery` on every attempt, and the CRM's acceptance and the EventBridge put are each recorded under
their own key in the sends table, so a second message for the same qualification (a retried processing, SQS's
at-least-once) posts and puts nothing again.

A CRM that is down, slow, busy (429) or failing (5xx) is retried with exponential backoff: the message's
visibility is set from its receive count (`backoff`), and on the last receive the queue allows it goes to the
dead-letter queue with its reason. A refusal (another 4xx, a redirect) goes there at once: it says the endpoint,
the secret or the payload is wrong, which a retry cannot fix and an operator can (then `parcours dlq redrive
--queue handoff`); dropping it would lose the lead.
"""

from __future__ import annotations

import contextlib
import json
import math
from collections.abc import Callable
from dataclasses import asdict, dataclass
from datetime import datetime
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from shared import clients, deadletters, outbox, writes
from shared.batches import Record
from shared.events import CONTACT_QUALIFIED, SCORE_CHANGED, Event
from shared.people import crm
from shared.settings import Settings
from shared.storage import AlreadyExists, ContactModel, SendModel, Tables, create_new, get_or_none, tables

SOURCE = "parcours"  # the EventBridge source, and the source of parcours' own events in a contact's history
DETAIL_TYPE = CONTACT_QUALIFIED
VERSION = 1  # of the payload and of the EventBridge detail
RECENT_EVENTS = 20  # the contact's latest own events (behaviour) sent to the CRM
MAX_REASONS = 50  # the latest score changes, each with its reason
HISTORY_READ = 500  # history items read at most, newest first: the bound of the one query
BACKOFF_FIRST = 30  # seconds before the second attempt; doubled each time
BACKOFF_CAP = 3600  # never more than an hour between attempts
REFUSED = "refused"  # the CRM answered a 4xx (not 429) or a redirect: goes to the DLQ at once
CHANNEL = "crm-handoff"  # in the sends table, beside the scenarios' sends


class Unprocessable(ValueError):
    """The queued message is not a handoff this function understands; retrying cannot change that."""


class Deferred(RuntimeError):
    """This attempt failed in a way a later one may not (the CRM or EventBridge unavailable): retried later."""


@dataclass(frozen=True)
class Handoff:
    """The message on the handoff queue: what identifies the qualification, nothing personal."""

    event_id: str  # the contact.qualified event's: what the handoff is deduplicated on
    contact_id: str
    score: float
    stage: str
    qualified_at: str  # ISO 8601
    delivery: str  # X-Parcours-Delivery: the same on every attempt

    def to_json(self) -> str:
        return json.dumps(asdict(self), separators=(",", ":"), sort_keys=True)

    @classmethod
    def from_json(cls, body: str) -> Handoff:
        try:
            data = json.loads(body)
        except json.JSONDecodeError as error:
            raise Unprocessable(f"body is not JSON (line {error.lineno} column {error.colno})") from None
        if not isinstance(data, dict):
            raise Unprocessable(f"body is a JSON {type(data).__name__}, not a handoff object")
        for name in ("event_id", "contact_id", "stage", "qualified_at", "delivery"):
            if not isinstance(data.get(name), str) or not data[name]:
                raise Unprocessable(f"field {name} is missing or not text")
        score = data.get("score")
        if not isinstance(score, int | float) or isinstance(score, bool):
            raise Unprocessable("field score is missing or not a number")
        unknown = sorted(set(data) - {"event_id", "contact_id", "score", "stage", "qualified_at", "delivery"})
        if unknown:
            raise Unprocessable(f"unknown field(s) {', '.join(unknown)[:200]}")
        return cls(**data)


def delivery_id(event_id: str) -> str:
    """Stable per qualification: the CRM deduplicates on it, parcours records the acceptance under it."""
    return outbox.send_id(CONTACT_QUALIFIED, event_id)


def _published_key(delivery: str) -> str:
    return outbox.send_id("eventbridge", delivery)


def _number(value: Any, default: float) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        return default
    try:
        number = float(value)
    except ValueError:
        return default
    return number if math.isfinite(number) else default


def enqueue(event: Event, contact: ContactModel, settings: Settings) -> str | None:
    """One message for the handoff function; None (nothing to do) when the deployment has no handoff queue, or when
    the lead's address is unverified: it came only from the public browser key, which anyone may use to make up a
    lead in someone's name (the qualification stays recorded; the lead goes once a trusted source or the person
    vouches for the address and qualifies again)."""
    if settings.handoff_queue_url is None or contact.email_unverified:
        return None
    properties = event.properties
    score = _number(properties.get("score"), float(contact.score or 0))
    message = Handoff(
        event_id=event.event_id,
        contact_id=contact.contact_id,
        score=int(score) if score == int(score) else score,
        stage=str(properties.get("stage") or "sql"),
        qualified_at=str(properties.get("qualified_at") or event.occurred_at),
        delivery=delivery_id(event.event_id),
    )
    gathered = writes.current()
    if gathered is not None:  # sent once the event's transaction is written (its delivery id: handed off once)
        gathered.effect({"send": settings.handoff_queue_url, "body": message.to_json()})
        return None
    sqs = clients.sqs(settings.region)
    return sqs.send_message(QueueUrl=settings.handoff_queue_url, MessageBody=message.to_json())["MessageId"]


@dataclass(frozen=True)
class History:
    reasons: list[dict[str, Any]]  # score changes, oldest first
    recent: list[dict[str, Any]]  # the contact's own latest events (not parcours'), oldest first


def history(t: Tables, contact_id: str) -> History:
    """One query of the contact's own history, newest first, of at most HISTORY_READ items (pages of 100)."""
    reasons: list[dict[str, Any]] = []
    recent: list[dict[str, Any]] = []
    for item in t.events.query(contact_id, scan_index_forward=False, limit=HISTORY_READ, page_size=100):
        at = item.at_id.partition("#")[0]
        properties = dict(item.properties or {})
        if item.type == SCORE_CHANGED:
            if len(reasons) < MAX_REASONS:
                reasons.append(
                    {
                        "at": at,
                        "reason": properties.get("reason"),
                        "points": properties.get("points"),
                        "old": properties.get("old"),
                        "new": properties.get("new"),
                    }
                )
        elif item.source != SOURCE and len(recent) < RECENT_EVENTS:
            recent.append({"at": at, "type": item.type, "source": item.source, "properties": properties})
        if len(reasons) == MAX_REASONS and len(recent) == RECENT_EVENTS:
            break
    return History(reasons[::-1], recent[::-1])


def body(message: Handoff, contact: ContactModel, past: History, now: datetime) -> bytes:
    """The documented payload (README, CRM handoff)."""
    document = {
        "type": CONTACT_QUALIFIED,
        "version": VERSION,
        "delivery": message.delivery,
        "event_id": message.event_id,
        "stage": message.stage,
        "score": message.score,
        "qualified_at": message.qualified_at,
        "sent_at": now.isoformat(),
        "contact": crm.contact_view(contact),
        "reasons": past.reasons,
        "recent_events": past.recent,
    }
    return json.dumps(document, ensure_ascii=False, separators=(",", ":"), sort_keys=True, default=str).encode()


def detail(message: Handoff, crm_status: str) -> dict[str, Any]:
    """The EventBridge event's detail: ids and numbers, no personal data (anyone allowed on the bus reads it, and
    archives keep it); a subscriber that needs the profile reads it where it is authorised to."""
    return {
        "version": VERSION,
        "event_id": message.event_id,
        "delivery": message.delivery,
        "contact_id": message.contact_id,
        "score": message.score,
        "stage": message.stage,
        "qualified_at": message.qualified_at,
        "crm": crm_status,  # accepted | not_configured
    }


def _record(t: Tables, key: str, message: Handoff, step: str, now: datetime) -> None:
    record = t.sends(
        send_id=key,
        status="sent",
        scenario=CHANNEL,
        step=step,
        contact_id=message.contact_id,
        channel=CHANNEL,
        message_id=message.delivery,
        claimed_at=now,
        sent_at=now,
        expires_at=now + outbox.KEEP,
    )
    with contextlib.suppress(AlreadyExists):  # a concurrent attempt recorded it first
        create_new(record, SendModel.send_id)


def deliver(message: Handoff, settings: Settings, now: datetime, secret: Callable[[], str]) -> dict[str, Any]:
    """POSTs the handoff (unless the CRM already accepted it), then puts the EventBridge event (unless already put).

    crm.CrmDeferred and Deferred are retried later; crm.CrmRefused is not."""
    t = tables(settings)
    contact = get_or_none(t.contacts, message.contact_id, consistent=True)
    if contact is None:  # erased since: nothing to hand over, nothing to announce
        return {"status": "skipped", "reason": "contact not found"}
    http_status: int | None = None
    if settings.crm_url is None:
        crm_status = "not_configured"
    elif get_or_none(t.sends, message.delivery, consistent=True) is not None:
        crm_status = "accepted"  # by an earlier attempt, whose EventBridge put failed
    else:
        raw = body(message, contact, history(t, contact.contact_id), now)
        http_status = crm.post(settings.crm_url, raw, crm.signed_headers(raw, secret(), message.delivery))
        _record(t, message.delivery, message, "crm", now)
        crm_status = "accepted"
    published = _published_key(message.delivery)
    if get_or_none(t.sends, published, consistent=True) is None:
        publish(message, crm_status, settings)
        _record(t, published, message, "eventbridge", now)
    return {"status": "delivered", "crm": crm_status, "http_status": http_status, "delivery": message.delivery}


def publish(message: Handoff, crm_status: str, settings: Settings) -> None:
    entry = {
        "Source": SOURCE,
        "DetailType": DETAIL_TYPE,
        "Detail": json.dumps(detail(message, crm_status), separators=(",", ":"), sort_keys=True),
        "EventBusName": settings.event_bus_name,
        "Resources": [],
    }
    try:
        answer = clients.events(settings.region).put_events(Entries=[entry])
    except (ClientError, BotoCoreError) as error:
        raise Deferred(f"EventBridge unavailable: {type(error).__name__}") from error
    if answer.get("FailedEntryCount"):
        failed = (answer.get("Entries") or [{}])[0]
        raise Deferred(f"EventBridge refused the event: {failed.get('ErrorCode')}")


def backoff(receives: int) -> int:
    """Seconds before the next attempt, after the `receives`-th failed: 30 s, 1 min, 2 min, ... at most 1 h."""
    return int(min(BACKOFF_FIRST * 2 ** max(0, receives - 1), BACKOFF_CAP))


@dataclass(frozen=True)
class Outcome:
    result: dict[str, Any] | None = None
    dead_letter: deadletters.DeadLetter | None = None


def consume(record: Record, settings: Settings, secret: Callable[[], str]) -> Outcome:
    """Handles one queued handoff; raises (after setting when SQS shows it again) what a later attempt may fix."""
    receives = deadletters.receives(record)
    try:
        message = Handoff.from_json(record.body)
    except Unprocessable as error:
        return Outcome(dead_letter=_dead_letter(record, deadletters.UNPROCESSABLE, error, None, settings))
    try:
        return Outcome(result=deliver(message, settings, settings.clock().now(), secret))
    except crm.CrmRefused as error:
        return Outcome(dead_letter=_dead_letter(record, REFUSED, error, message, settings))
    except Exception as error:
        if receives >= settings.handoff_max_receive_count and settings.handoff_dead_letter_queue_url is not None:
            return Outcome(dead_letter=_dead_letter(record, deadletters.RETRIES_EXHAUSTED, error, message, settings))
        _retry_later(record, receives, settings)
        raise


def _retry_later(record: Record, receives: int, settings: Settings) -> None:
    """The message shows again after the backoff (in simulated time: the local runtime compresses it too)."""
    seconds = max(0, min(43200, round(settings.clock().real_seconds(backoff(receives)))))
    queue_url = settings.handoff_queue_url
    if queue_url is None:
        return  # the queue's own visibility timeout applies
    with contextlib.suppress(ClientError, BotoCoreError):  # then the visibility timeout applies: later, not never
        clients.sqs(settings.region).change_message_visibility(
            QueueUrl=queue_url, ReceiptHandle=record.receipt_handle, VisibilityTimeout=seconds
        )


def _dead_letter(
    record: Record, kind: str, error: BaseException, message: Handoff | None, settings: Settings
) -> deadletters.DeadLetter:
    """The message, unchanged, on the handoff DLQ with its reason (the attributes `parcours dlq` reads)."""
    url = settings.handoff_dead_letter_queue_url
    if url is None:
        raise error  # SQS moves it after maxReceiveCount receives, without its reason
    now = settings.clock().now()
    letter = deadletters.DeadLetter(kind, type(error).__name__, message.event_id if message else None, DETAIL_TYPE)
    attributes = {
        deadletters.KIND: kind,
        deadletters.ERROR_TYPE: letter.error_type,
        deadletters.ERROR_MESSAGE: deadletters.scrub(str(error)),
        deadletters.EVENT_ID: letter.event_id,
        deadletters.EVENT_TYPE: DETAIL_TYPE,
        deadletters.EVENT_SOURCE: SOURCE,
        deadletters.FAILED_AT: now.isoformat(),
        deadletters.FIRST_FAILED_AT: deadletters.first_failure(record, now),
        deadletters.RECEIVE_COUNT: str(deadletters.receives(record)),
        deadletters.MESSAGE_ID: record.message_id,
    }
    clients.sqs(settings.region).send_message(
        QueueUrl=url,
        MessageBody=record.body,
        MessageAttributes={
            name: {"DataType": "String", "StringValue": value[:1000]} for name, value in attributes.items() if value
        },
    )
    return letter
