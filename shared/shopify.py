"""Shopify webhooks: headers, topics and payloads mapped into the event catalogue."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

from shared.events import (
    CONTACT_SUBSCRIBED,
    CONTACT_UPDATED,
    UNRECOGNISED,
    ConsentFacts,
    ContactFacts,
    Event,
    normalise_email,
)

TOPICS = {
    "customers/create": CONTACT_SUBSCRIBED,
    "customers/update": CONTACT_UPDATED,
}

_CONSENT_STATES = {
    "subscribed": "granted",
    "not_subscribed": "denied",
    "unsubscribed": "denied",
    "redacted": "denied",
    "invalid": "denied",
    "pending": "unknown",  # waiting for the customer's confirmation: not consent yet
}


class ShopifyPayloadError(ValueError):
    """The delivery is signed but not a usable Shopify webhook; names the header or field."""


def consent_from_customer(customer: Mapping[str, Any], topic: str, fallback_at: str) -> ConsentFacts | None:
    """Reads `email_marketing_consent`, or the older `accepts_marketing`; None when the payload says nothing."""
    source = f"shopify:{topic}"
    block = customer.get("email_marketing_consent")
    if isinstance(block, Mapping) and isinstance(block.get("state"), str):
        return ConsentFacts(
            state=_CONSENT_STATES.get(block["state"], "unknown"),
            level=block.get("opt_in_level") if isinstance(block.get("opt_in_level"), str) else None,
            at=block.get("consent_updated_at") or customer.get("updated_at") or fallback_at,
            source=source,
        )
    accepts = customer.get("accepts_marketing")
    if isinstance(accepts, bool):
        return ConsentFacts(
            state="granted" if accepts else "denied",
            level=None,
            at=customer.get("accepts_marketing_updated_at") or customer.get("updated_at") or fallback_at,
            source=source,
        )
    return None


def _text(value: object) -> str | None:
    return value.strip() or None if isinstance(value, str) else None


def to_event(headers: Mapping[str, str], payload: Any, received_at: datetime) -> Event:
    """Maps one verified delivery. Header names are lower-case, as HTTP APIs deliver them."""
    topic = headers.get("x-shopify-topic")
    if not topic:
        raise ShopifyPayloadError("missing header X-Shopify-Topic")
    delivery_id = headers.get("x-shopify-event-id") or headers.get("x-shopify-webhook-id")
    if not delivery_id:
        raise ShopifyPayloadError("missing header X-Shopify-Event-Id (or X-Shopify-Webhook-Id)")
    if not isinstance(payload, Mapping):
        raise ShopifyPayloadError("body must be a JSON object")
    received = received_at.isoformat()
    occurred = headers.get("x-shopify-triggered-at") or _text(payload.get("updated_at")) or received
    event_type = TOPICS.get(topic, UNRECOGNISED)
    contact = None
    if event_type in (CONTACT_SUBSCRIBED, CONTACT_UPDATED):
        customer_id = payload.get("id")
        contact = ContactFacts(
            email=normalise_email(payload.get("email")),
            first_name=_text(payload.get("first_name")),
            last_name=_text(payload.get("last_name")),
            locale=_text(payload.get("locale")),
            source_id=f"shopify#{customer_id}" if isinstance(customer_id, int | str) and customer_id else None,
            email_consent=consent_from_customer(payload, topic, received),
            updated_at=_text(payload.get("updated_at")),
        )
    return Event(
        event_id=f"shopify#{delivery_id}",
        type=event_type,
        source="shopify",
        topic=topic,
        occurred_at=occurred,
        received_at=received,
        contact=contact,
        properties={"shop": headers.get("x-shopify-shop-domain")},
    )
