"""SES events (published to SNS) -> events on the queue: deliveries, opens, clicks, bounces and complaints become
`email.*` events about the contact (conditions read `opened`, `clicked`; behaviour conditions any of them).

SES event publishing sends `{"eventType": "Open" | "Click" | ..., "mail": {"messageId", "tags": {name: [value]},
...}, "open": {"timestamp", ...} | "click": {"timestamp", "link", ...}}`; the older notification shape says
`notificationType` instead of `eventType`: both are read. The message tags parcours sets on every send (scenario,
step, variant, contact) map the event back to the contact and the step.

Bounces, complaints and deliveries first decide the address's suppression (shared.people.suppression), synchronously,
then are queued like the rest. A bounce or complaint needs the suppression key: without it the message fails
(ConfigurationError) before anything is counted or queued, and Lambda retries it, then keeps it in the feedback
dead-letter queue; it is never acknowledged unsuppressed. A reject (SES found a virus) or a rendering failure
reached nobody: each becomes an event in the contact's history (`email.rejected`, `email.rendering_failed`),
counted by the handler's `EmailFailed` metric, which an alarm watches. Delivery delays are ignored (SES keeps
trying; a bounce follows if it gives up).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any

from shared.events import (
    EMAIL_BOUNCED,
    EMAIL_CLICKED,
    EMAIL_COMPLAINED,
    EMAIL_DELIVERED,
    EMAIL_OPENED,
    EMAIL_REJECTED,
    EMAIL_RENDERING_FAILED,
    ContactFacts,
    Event,
)
from shared.people import suppression
from shared.settings import Settings
from shared.sources import ingestion
from shared.storage import tables

TYPES = {  # SES type -> event, detail key
    "Delivery": (EMAIL_DELIVERED, "delivery"),
    "Open": (EMAIL_OPENED, "open"),
    "Click": (EMAIL_CLICKED, "click"),
    "Bounce": (EMAIL_BOUNCED, "bounce"),
    "Complaint": (EMAIL_COMPLAINED, "complaint"),
    "Reject": (EMAIL_REJECTED, "reject"),
    "Rendering Failure": (EMAIL_RENDERING_FAILED, "failure"),
}
FAILURES = ("Reject", "Rendering Failure")  # SES accepted the message, then nothing reached the recipient


@dataclass(frozen=True)
class Outcome:
    status: str  # queued | ignored
    ses_type: str
    reason: str
    event: Event | None = None
    suppression: suppression.Decision | None = None  # for bounces, complaints and deliveries


def _tag(mail: dict[str, Any], name: str) -> str | None:
    values = (mail.get("tags") or {}).get(name)
    if isinstance(values, list) and values and isinstance(values[0], str) and values[0]:
        return values[0]
    return None


def to_event(message: Any, received_at: datetime) -> Outcome:
    """The event an SES message becomes, or why it becomes none."""
    if not isinstance(message, dict):
        return Outcome("ignored", "?", "not an SES event")
    ses_type = str(message.get("eventType") or message.get("notificationType") or "?")
    if ses_type not in TYPES:
        return Outcome("ignored", ses_type, "not acted on")
    event_type, detail_key = TYPES[ses_type]
    mail: dict[str, Any] = message["mail"] if isinstance(message.get("mail"), dict) else {}
    detail: dict[str, Any] = message[detail_key] if isinstance(message.get(detail_key), dict) else {}
    message_id = mail.get("messageId")
    contact_id = _tag(mail, "contact")
    if not isinstance(message_id, str) or not message_id:
        return Outcome("ignored", ses_type, "no mail.messageId")
    if contact_id is None:
        return Outcome("ignored", ses_type, "no contact tag: not sent by a parcours scenario")
    timestamp = str(detail.get("timestamp") or mail.get("timestamp") or received_at.isoformat())
    properties: dict[str, Any] = {
        "scenario": _tag(mail, "scenario"),
        "step": _tag(mail, "step"),
        "variant": _tag(mail, "variant"),
        "message_id": message_id,
    }
    if event_type == EMAIL_CLICKED:
        properties["link"] = detail.get("link") if isinstance(detail.get("link"), str) else None
    if event_type == EMAIL_BOUNCED:
        properties["bounce_type"] = detail.get("bounceType")
        properties["bounce_subtype"] = detail.get("bounceSubType")
    if event_type == EMAIL_COMPLAINED:
        properties["feedback_type"] = detail.get("complaintFeedbackType")
    if event_type == EMAIL_REJECTED:
        properties["reason"] = detail.get("reason")
    if event_type == EMAIL_RENDERING_FAILED:
        properties["template_name"] = detail.get("templateName")
        properties["error"] = str(detail.get("errorMessage") or "")[:500] or None
    event = Event(
        # The same SES event delivered twice by SNS has the same id: the queue and the processing drop the copy.
        event_id=f"ses#{message_id}#{ses_type}#{timestamp}",
        type=event_type,
        source="ses",
        topic=f"ses/{ses_type}",
        occurred_at=timestamp,
        received_at=received_at.isoformat(),
        contact=ContactFacts(contact_id=contact_id),
        properties=properties,
    )
    return Outcome("queued", ses_type, event_type, event)


def _recipients(message: dict[str, Any], detail_key: str, list_key: str) -> list[object]:
    """The addresses SES names in the bounce or complaint; the message's destination if it names none."""
    detail = message.get(detail_key)
    listed = detail.get(list_key) if isinstance(detail, dict) else None
    if isinstance(listed, list) and listed:
        return [entry.get("emailAddress") for entry in listed if isinstance(entry, dict)]
    mail = message.get("mail")
    destination = mail.get("destination") if isinstance(mail, dict) else None
    return list(destination) if isinstance(destination, list) else []


def suppress(message: Any, settings: Settings, now: datetime) -> suppression.Decision | None:
    """What a bounce, complaint or delivery does to the address, decided before anything is queued."""
    if not isinstance(message, dict):
        return None
    ses_type = message.get("eventType") or message.get("notificationType")
    if ses_type not in ("Bounce", "Complaint", "Delivery"):
        return None
    mail: dict[str, Any] = message["mail"] if isinstance(message.get("mail"), dict) else {}
    contact_id = _tag(mail, "contact")
    t = tables(settings)
    if ses_type == "Delivery":
        return suppression.on_delivery(t, contact_id)
    # The key before anything is written: a soft bounce counted without it would be a `repeat` on the retry
    key = suppression.hash_key(settings)
    if ses_type == "Bounce":
        bounce = message["bounce"] if isinstance(message.get("bounce"), dict) else {}
        message_id = str(mail.get("messageId") or bounce.get("feedbackId") or "")
        recipients = _recipients(message, "bounce", "bouncedRecipients")
        return suppression.on_bounce(t, key, contact_id, message_id, recipients, bounce, now)
    complaint = message["complaint"] if isinstance(message.get("complaint"), dict) else {}
    recipients = _recipients(message, "complaint", "complainedRecipients")
    return suppression.on_complaint(t, key, contact_id, recipients, complaint, now)


def handle(raw_message: str, settings: Settings, now: datetime) -> Outcome:
    """One SNS message: the address suppressed if it must be, then mapped and queued for processing
    (StorageError, QueueUnavailable and a missing suppression key's ConfigurationError propagate: Lambda retries
    the invocation, and both steps are idempotent)."""
    try:
        message = json.loads(raw_message)
    except (TypeError, json.JSONDecodeError):
        return Outcome("ignored", "?", "not JSON")
    decision = suppress(message, settings, now)
    outcome = replace(to_event(message, now), suppression=decision)
    if outcome.event is not None:
        ingestion.enqueue(outcome.event, settings)
    return outcome
