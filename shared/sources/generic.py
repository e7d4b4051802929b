"""Generic signed webhooks: a site, a form handler or a back office posts catalogue events in parcours' own shape.

POST /webhooks/generic
Content-Type: application/json
X-Parcours-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256 of "{t}.{raw body}">   (several v1 while rotating)

{"id": "evt_0001",                      # required, unique per event: the deduplication key
 "type": "form.submitted",              # one of SOURCE_TYPES; any other type is recorded and has no effect
 "occurred_at": "2026-11-24T10:00:00Z", # optional, ISO 8601
 "contact": {"email": ..., "phone": "+336...", "id": "the site's own id", "first_name": ..., "last_name": ...,
             "locale": "fr", "updated_at": ISO 8601, "attributes": {"birthday": "1990-03-15", ...},
             "email_consent": {"state": "granted" | "denied", "level": "single_opt_in" | "confirmed_opt_in",
                               "at": ISO 8601, "wording": "the text or version of the form the person ticked"},
             "sms_consent": {... the same}},
 "properties": {...}}                   # what scenarios filter on and templates show; no personal data

Two properties are products, cleaned by shared.sources.products (a link or an image that is not http(s) is dropped):
`lines` [{name, variant, quantity, price, product_id, image, url}] (a cart's or an order's, 20 at most) and
`recommendations` [{name, image, url, price}] (products the shop suggests, 6 at most).
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

from shared.events import (
    CHECKOUT_STARTED,
    CHECKOUT_UPDATED,
    CONTACT_SUBSCRIBED,
    CONTACT_UPDATED,
    FORM_SUBMITTED,
    ORDER_PAID,
    ORDER_PLACED,
    PAGE_VIEWED,
    TRACK,
    UNRECOGNISED,
    ConsentFacts,
    ContactFacts,
    Event,
    PayloadError,
    normalise_phone,
)
from shared.sources import products, validation

# What a site may say happened. parcours' own events (list.joined, score.changed, email.*, date.reached, ...) come
# only from parcours: a site sending one is recorded, not acted on.
SOURCE_TYPES = (
    CONTACT_SUBSCRIBED,
    CONTACT_UPDATED,
    CHECKOUT_STARTED,
    CHECKOUT_UPDATED,
    ORDER_PLACED,
    ORDER_PAID,
    PAGE_VIEWED,
    FORM_SUBMITTED,
    TRACK,
)
MAX_ID = 200
# The catalogue's properties of a purchase, as every shop mapping gives them: a site that leaves one out gets null
# (lines: []), so templates written for a shop's events read them all.
PURCHASE_PROPERTIES = {
    CHECKOUT_STARTED: ("lines", "total", "currency", "checkout_token", "recovery_url"),
    CHECKOUT_UPDATED: ("lines", "total", "currency", "checkout_token", "recovery_url"),
    ORDER_PLACED: ("lines", "total", "currency", "order_id", "order_name", "status_url", "discount_code"),
    ORDER_PAID: ("lines", "total", "currency", "order_id", "order_name", "status_url"),
}


class GenericPayloadError(PayloadError):
    """A signed delivery that does not follow the documented shape; names the field."""


def _text(body: Mapping[str, Any], name: str, where: str, required: bool = False) -> str | None:
    value = body.get(name)
    if value is None and not required:
        return None
    if not isinstance(value, str | int) or isinstance(value, bool) or not str(value).strip():
        raise GenericPayloadError(f"field {where}{name} must be {'a non-empty ' if required else ''}text")
    return str(value).strip()


def _consent(block: object, where: str, topic: str, fallback_at: str) -> ConsentFacts | None:
    if block is None:
        return None
    if not isinstance(block, Mapping) or block.get("state") not in ("granted", "denied"):
        raise GenericPayloadError(f"field {where} must be {{state: granted|denied, level, at, wording}}")
    level = block.get("level")
    if level not in (None, "single_opt_in", "confirmed_opt_in"):
        raise GenericPayloadError(f"field {where}.level must be single_opt_in or confirmed_opt_in")
    stated = _text(block, "at", f"{where}.")
    at = stated or fallback_at
    try:
        datetime.fromisoformat(at.replace("Z", "+00:00"))
    except ValueError:
        raise GenericPayloadError(f"field {where}.at must be an ISO 8601 time, got {at!r}") from None
    wording = _text(block, "wording", f"{where}.")
    return ConsentFacts(block["state"], level, at, f"generic:{topic}", wording, explicit=stated is not None)


def _contact(block: object, topic: str, received: str) -> ContactFacts | None:
    if block is None:
        return None
    if not isinstance(block, Mapping):
        raise GenericPayloadError("field contact must be an object")
    email = validation.valid_email(block.get("email"), "contact.email")
    phone = None
    if block.get("phone") is not None:
        phone = normalise_phone(block.get("phone"))
        if phone is None:
            raise GenericPayloadError("field contact.phone must be in E.164 form, such as +33612345678")
    own_id = _text(block, "id", "contact.")
    attributes = block.get("attributes")
    if attributes is not None and not isinstance(attributes, Mapping):
        raise GenericPayloadError("field contact.attributes must be an object, e.g. {birthday: YYYY-MM-DD}")
    locale = _text(block, "locale", "contact.")
    return ContactFacts(
        email=email,
        first_name=_text(block, "first_name", "contact."),
        last_name=_text(block, "last_name", "contact."),
        locale=locale.split("-")[0].lower()[:2] if locale else None,
        source_id=f"generic#{own_id}" if own_id else None,
        email_consent=_consent(block.get("email_consent"), "contact.email_consent", topic, received),
        updated_at=_text(block, "updated_at", "contact."),
        phone=phone,
        sms_consent=_consent(block.get("sms_consent"), "contact.sms_consent", topic, received),
        attributes=dict(attributes) if attributes else None,
    )


def to_event(payload: Any, received_at: datetime) -> Event:
    if not isinstance(payload, Mapping):
        raise GenericPayloadError("body must be a JSON object")
    event_id = _text(payload, "id", "", required=True)
    assert event_id is not None
    if len(event_id) > MAX_ID:
        raise GenericPayloadError(f"field id is longer than {MAX_ID} characters")
    topic = _text(payload, "type", "", required=True)
    assert topic is not None
    properties = payload.get("properties", {})
    if not isinstance(properties, Mapping):
        raise GenericPayloadError("field properties must be an object")
    try:
        cleaned = products.clean(properties)
    except products.ProductError as error:
        raise GenericPayloadError(f"field {error}") from None
    for name in PURCHASE_PROPERTIES.get(topic, ()):
        if cleaned.get(name) is None:
            cleaned[name] = [] if name == "lines" else None
    received = received_at.isoformat()
    occurred = _text(payload, "occurred_at", "") or received
    known = topic in SOURCE_TYPES
    return Event(
        event_id=f"generic#{event_id}",
        type=topic if known else UNRECOGNISED,
        source="generic",
        topic=topic,
        occurred_at=occurred,
        received_at=received,
        contact=_contact(payload.get("contact"), topic, received) if known else None,
        properties=cleaned,
    )
