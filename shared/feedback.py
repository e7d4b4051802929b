"""SES events (published to SNS) -> events on the queue: deliveries, opens, clicks, bounces and complaints become
`email.*` events about the contact (conditions read `opened`, `clicked`; behaviour conditions any of them).

SES event publishing sends `{"eventType": "Open" | "Click" | ..., "mail": {"messageId", "tags": {name: [value]},
...}, "open": {"timestamp", ...} | "click": {"timestamp", "link", ...}}`; the older notification shape says
`notificationType` instead of `eventType`: both are read. The message tags parcours sets on every send (scenario,
step, variant, contact) map the event back to the contact and the step.

Suppressing the address on a permanent bounce or a complaint is issue 5's; rejects, rendering failures and delivery
delays are ignored here, counted by the handler, and nothing is recorded.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from shared import ingestion
from shared.events import (
    EMAIL_BOUNCED,
    EMAIL_CLICKED,
    EMAIL_COMPLAINED,
    EMAIL_DELIVERED,
    EMAIL_OPENED,
    ContactFacts,
    Event,
)
from shared.settings import Settings

TYPES = {  # SES type -> event, detail key
    "Delivery": (EMAIL_DELIVERED, "delivery"),
    "Open": (EMAIL_OPENED, "open"),
    "Click": (EMAIL_CLICKED, "click"),
    "Bounce": (EMAIL_BOUNCED, "bounce"),
    "Complaint": (EMAIL_COMPLAINED, "complaint"),
}


@dataclass(frozen=True)
class Outcome:
    status: str  # queued | ignored
    ses_type: str
    reason: str
    event: Event | None = None


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
        return Outcome("ignored", ses_type, "not acted on yet")
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


def handle(raw_message: str, settings: Settings, now: datetime) -> Outcome:
    """One SNS message: parsed, mapped, queued for processing (QueueUnavailable propagates: SNS retries)."""
    try:
        message = json.loads(raw_message)
    except (TypeError, json.JSONDecodeError):
        return Outcome("ignored", "?", "not JSON")
    outcome = to_event(message, now)
    if outcome.event is not None:
        ingestion.enqueue(outcome.event, settings)
    return outcome
