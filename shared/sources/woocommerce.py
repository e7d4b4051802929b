"""WooCommerce webhooks: headers, topics and REST v3 payloads mapped into the event catalogue.

| topic | event |
| --- | --- |
| `customer.created` | `contact.subscribed` |
| `customer.updated` | `contact.updated` |
| `order.created` | `order.placed` (a `checkout-draft` order is not an order yet: `unrecognised`) |
| `order.updated` | `order.paid` once paid (status `processing` or `completed`, `date_paid` set), else `unrecognised` |
| `order.updated`, status `refunded` | `order.refunded` (all of the order refunded: a partial refund stays paid) |
| `order.updated`, status `cancelled` | `order.cancelled` |
| anything else | `unrecognised`: recorded, no effect |

WooCommerce core carries no marketing consent: consent is only read from the order's or customer's `meta_data`
entry `parcours_marketing_consent` (`yes` / `no`), dated by `parcours_marketing_consent_at`, that a shop adds at
checkout or on the account page, with `parcours_marketing_consent_wording` (what the box said) if the shop
keeps it. Without it nothing is said about consent, never granted.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation
from typing import Any

from shared.events import (
    CONTACT_SUBSCRIBED,
    CONTACT_UPDATED,
    ORDER_CANCELLED,
    ORDER_PAID,
    ORDER_PLACED,
    ORDER_REFUNDED,
    UNRECOGNISED,
    ConsentFacts,
    ContactFacts,
    Event,
    PayloadError,
    normalise_phone,
)
from shared.sources import products, validation

TOPICS = {
    "customer.created": CONTACT_SUBSCRIBED,
    "customer.updated": CONTACT_UPDATED,
    "order.created": ORDER_PLACED,
    "order.updated": ORDER_PAID,  # only when the order is paid: see _event_type
}
PAID_STATUSES = ("processing", "completed")
# What a shop takes back (shared.people.orders): a partial refund leaves the status as it was (the order stays paid);
# the status becomes `refunded` once all of it is refunded, `cancelled` when the order is cancelled.
TAKE_BACK_STATUSES = {"refunded": ORDER_REFUNDED, "cancelled": ORDER_CANCELLED}
CONSENT_KEY = "parcours_marketing_consent"
CONSENT_AT_KEY = "parcours_marketing_consent_at"
CONSENT_WORDING_KEY = "parcours_marketing_consent_wording"  # the checkbox's text or version: kept with the proof
MAX_LINES = 20  # as for Shopify: enough for any email's product block, far below 256 KiB on the queue

_CONSENT_VALUES = {
    "yes": "granted",
    "true": "granted",
    "1": "granted",
    "no": "denied",
    "false": "denied",
    "0": "denied",
}


class WooCommercePayloadError(PayloadError):
    """The delivery is signed but not a usable WooCommerce webhook; names the header or field."""


def to_event(headers: Mapping[str, str], payload: Any, received_at: datetime) -> Event:
    """Maps one verified delivery. Header names are lower-case, as HTTP APIs deliver them."""
    topic = (headers.get("x-wc-webhook-topic") or "").strip()
    if not topic:
        raise WooCommercePayloadError("missing header X-WC-Webhook-Topic")
    webhook_id = (headers.get("x-wc-webhook-id") or "").strip()
    if not webhook_id:
        raise WooCommercePayloadError("missing header X-WC-Webhook-ID")
    if not isinstance(payload, Mapping):
        raise WooCommercePayloadError("body must be a JSON object")
    received = received_at.isoformat()
    modified = _gmt(payload.get("date_modified_gmt"))
    event_type = _event_type(topic, payload)
    contact = None
    properties: dict[str, Any] = {"shop": _text(headers.get("x-wc-webhook-source"))}
    if event_type in (CONTACT_SUBSCRIBED, CONTACT_UPDATED):
        contact = _customer_facts(payload, topic, received)
    elif event_type in (ORDER_PLACED, ORDER_PAID):
        contact = _buyer_facts(payload, topic, received)
        properties.update(_purchase(payload))
    elif event_type in (ORDER_REFUNDED, ORDER_CANCELLED):
        contact = _buyer_identity(payload)
        properties.update(_refund(payload) if event_type == ORDER_REFUNDED else _cancellation(payload))
    return Event(
        event_id=_event_id(event_type, webhook_id, headers, payload),
        type=event_type,
        source="woocommerce",
        topic=topic,
        occurred_at=modified or received,
        received_at=received,
        contact=contact,
        properties=properties,
    )


def _event_type(topic: str, payload: Mapping[str, Any]) -> str:
    if topic == "order.created" and payload.get("status") == "checkout-draft":
        return UNRECOGNISED  # the block checkout's draft: the customer has not ordered yet
    if topic == "order.updated" and payload.get("status") in TAKE_BACK_STATUSES:
        return TAKE_BACK_STATUSES[str(payload.get("status"))]
    if topic == "order.updated" and not is_paid(payload):
        return UNRECOGNISED  # any other change of an order (shipped, refunded, a note): recorded, no effect
    return TOPICS.get(topic, UNRECOGNISED)


def is_paid(order: Mapping[str, Any]) -> bool:
    return order.get("status") in PAID_STATUSES and bool(_text(order.get("date_paid_gmt") or order.get("date_paid")))


def _event_id(event_type: str, webhook_id: str, headers: Mapping[str, str], payload: Mapping[str, Any]) -> str:
    """The idempotency key. WooCommerce's delivery id is new at every delivery (one save can deliver a topic
    twice), so it cannot serve.

    An order is placed once and a customer created once, whatever the deliveries (`woocommerce#order.placed#<id>`):
    the order's counters and its scenarios cannot count it twice. A payment is keyed on the order and its payment
    time: every later `order.updated` of a paid order (completed, a note, a partial refund) maps to the same
    `order.paid`, which therefore happens once. A full refund is keyed on the order and its refund id
    (`woocommerce#order.refunded#<id>#<refund id>`), a cancellation on the order: a note added to a refunded or
    cancelled order later maps to the same event. Any other delivery is keyed on (webhook, resource,
    `date_modified_gmt`, or `date_created_gmt` if never modified); a payload without them (`action.*`,
    `order.deleted`) falls back to the delivery id.
    """
    resource_id = payload.get("id")
    known = isinstance(resource_id, int | str) and not isinstance(resource_id, bool) and str(resource_id) != ""
    if event_type in (ORDER_PLACED, CONTACT_SUBSCRIBED) and known:
        return f"woocommerce#{event_type}#{resource_id}"
    if event_type == ORDER_REFUNDED and known:
        return f"woocommerce#order.refunded#{resource_id}#{_refund(payload)['refund_id']}"
    if event_type == ORDER_CANCELLED and known:
        return f"woocommerce#order.cancelled#{resource_id}"
    if event_type == ORDER_PAID and known:
        return f"woocommerce#order.paid#{resource_id}#{_text(payload.get('date_paid_gmt') or payload.get('date_paid'))}"
    modified = _text(payload.get("date_modified_gmt")) or _text(payload.get("date_created_gmt"))  # never modified
    if known and modified:
        return f"woocommerce#{webhook_id}#{resource_id}#{modified}"
    delivery_id = _text(headers.get("x-wc-webhook-delivery-id"))
    if not delivery_id:
        raise WooCommercePayloadError(
            "missing header X-WC-Webhook-Delivery-ID (the payload has no id and date_modified_gmt to key it on)"
        )
    return f"woocommerce#{webhook_id}#delivery#{delivery_id}"


def consent_from_meta(resource: Mapping[str, Any], topic: str, fallback_at: str) -> ConsentFacts | None:
    """The shop's explicit opt-in field; None (nothing said) without it or with a value that is not yes/no."""
    meta = _meta(resource)
    value = meta.get(CONSENT_KEY)
    state = _CONSENT_VALUES.get(str(value).strip().lower()) if isinstance(value, str | bool | int) else None
    if state is None:
        return None
    return ConsentFacts(
        state=state,
        level="single_opt_in" if state == "granted" else None,
        at=_gmt(meta.get(CONSENT_AT_KEY)) or fallback_at,
        source=f"woocommerce:{topic}",
        wording=_text(meta.get(CONSENT_WORDING_KEY)),
        explicit=_gmt(meta.get(CONSENT_AT_KEY)) is not None,
    )


def _meta(resource: Mapping[str, Any]) -> dict[str, Any]:
    """`meta_data` [{id, key, value}] as a dict; the last entry of a key wins, as WordPress' get_meta does."""
    return {
        entry["key"]: entry.get("value")
        for entry in products.items(resource.get("meta_data"))
        if isinstance(entry, Mapping) and isinstance(entry.get("key"), str)
    }


def _source_id(customer_id: object) -> str | None:
    """`woocommerce#26`; a guest order's customer_id is 0, which names nobody."""
    if isinstance(customer_id, bool) or not isinstance(customer_id, int | str) or str(customer_id) in ("", "0"):
        return None
    return f"woocommerce#{customer_id}"


def _customer_facts(customer: Mapping[str, Any], topic: str, received: str) -> ContactFacts:
    billing = _mapping(customer.get("billing"))
    modified = _gmt(customer.get("date_modified_gmt"))
    return ContactFacts(
        email=validation.email_or_none(customer.get("email")) or validation.email_or_none(billing.get("email")),
        first_name=_text(customer.get("first_name")) or _text(billing.get("first_name")),
        last_name=_text(customer.get("last_name")) or _text(billing.get("last_name")),
        source_id=_source_id(customer.get("id")),
        email_consent=consent_from_meta(customer, topic, modified or received),
        updated_at=modified,
        phone=normalise_phone(billing.get("phone")),
    )


def _buyer_facts(order: Mapping[str, Any], topic: str, received: str) -> ContactFacts:
    """The buyer as the order states them. Dated by the order's creation: a later change of the order (shipped,
    refunded) says nothing newer about the person, and must not overwrite a newer name or phone."""
    billing = _mapping(order.get("billing"))
    created = _gmt(order.get("date_created_gmt"))
    return ContactFacts(
        email=validation.email_or_none(billing.get("email")),
        first_name=_text(billing.get("first_name")),
        last_name=_text(billing.get("last_name")),
        source_id=_source_id(order.get("customer_id")),
        email_consent=consent_from_meta(order, topic, created or received),
        updated_at=created,
        phone=normalise_phone(billing.get("phone")),
    )


def _buyer_identity(order: Mapping[str, Any]) -> ContactFacts | None:
    """Whom a refunded or cancelled order is of: the ids that find a contact, nothing else (neither creates a
    contact nor says anything of its name or consent)."""
    facts = ContactFacts(
        email=validation.email_or_none(_mapping(order.get("billing")).get("email")),
        source_id=_source_id(order.get("customer_id")),
    )
    return facts if facts.email or facts.source_id else None


def _refund(order: Mapping[str, Any]) -> dict[str, Any]:
    """A fully refunded order: what was given back, the sum of its `refunds` (WooCommerce writes their totals
    negative, `-10.00`), under the id of the latest refund; without refunds listed (a status set by hand), the
    order's total under `<order id>-refunded`."""
    order_id = validation.order_ref(order.get("id"), "id")
    refunds = order.get("refunds")
    if refunds is not None and not isinstance(refunds, list):
        raise validation.InputError("refunds", "must be a list of the order's refunds")
    given, ids = Decimal(0), []
    for index, refund in enumerate(refunds or []):
        if not isinstance(refund, Mapping):
            raise validation.InputError(f"refunds[{index}]", "must be an object")
        raw = str(refund.get("total")).strip() if isinstance(refund.get("total"), int | float | str) else None
        given += validation.money(raw[1:] if raw and raw.startswith("-") else raw, f"refunds[{index}].total")
        ids.append(validation.order_ref(refund.get("id"), f"refunds[{index}].id"))
    if not ids:
        given, ids = validation.money(order.get("total"), "total"), [f"{order_id}-refunded"]
    return {
        "order_id": order_id,
        "refund_id": max(ids, key=lambda id_: (len(id_), id_)),  # the latest: WooCommerce's ids grow
        "amount": str(given),
        "currency": validation.currency(order.get("currency"), "currency"),
    }


def _cancellation(order: Mapping[str, Any]) -> dict[str, Any]:
    number = _text(str(order["number"])) if order.get("number") is not None else None
    return {
        "order_id": validation.order_ref(order.get("id"), "id"),
        "order_name": f"#{number}" if number else None,
        "amount": str(validation.money(order.get("total"), "total")),
        "currency": validation.currency(order.get("currency"), "currency"),
    }


def _purchase(order: Mapping[str, Any]) -> dict[str, Any]:
    """What scenarios and templates use: amounts and product lines, no personal data."""
    total = _amount(order.get("total"))
    places = len(total.partition(".")[2]) if total else 2  # the shop's decimals, as its totals are written
    lines: list[dict[str, Any]] = []
    for index, line in enumerate(products.items(order.get("line_items"))):
        if isinstance(line, Mapping) and len(lines) < MAX_LINES:
            lines.append(_line(line, places, index))
    number = _text(str(order["number"])) if order.get("number") is not None else None
    return {
        "total": total,
        "currency": _text(order.get("currency")),
        "lines": lines,
        "order_id": order.get("id"),
        "order_name": f"#{number}" if number else None,
        "status_url": None,  # the REST order has no customer-facing page (My account needs a login): as Shopify's key
        "status": _text(order.get("status")),
        "paid": is_paid(order),
        "discount_code": products.discount_code(
            line.get("code") for line in products.items(order.get("coupon_lines")) if isinstance(line, Mapping)
        ),
    }


def _line(line: Mapping[str, Any], places: int, index: int = 0) -> dict[str, Any]:
    name = _text(line.get("name")) or ""
    parent = _text(line.get("parent_name"))
    variant = None
    if parent and name.startswith(f"{parent} - "):  # a variation is named "Product - Attribute"
        name, variant = parent, name[len(parent) + 3 :]
    given = line.get("quantity")
    products.check_quantity(given, f"line_items[{index}].quantity")
    quantity = given if isinstance(given, int) and not isinstance(given, bool) and given > 0 else 1
    return products.line(  # no product URL: the order's line items carry no permalink
        name=name,
        variant=variant,
        quantity=quantity,
        price=_unit_price(line, quantity, places),
        product_id=line.get("product_id"),
        image=_mapping(line.get("image")).get("src"),
    )


def _unit_price(line: Mapping[str, Any], quantity: int, places: int) -> str | None:
    """What the customer paid per unit before order discounts, tax included: WooCommerce's own `price` is
    before tax, which is not the price a shop that shows prices with VAT displayed."""
    subtotal, tax = _decimal(line.get("subtotal")), _decimal(line.get("subtotal_tax") or "0")
    try:
        unit = (subtotal + tax) / quantity if subtotal is not None and tax is not None else _decimal(line.get("price"))
        return None if unit is None else str(unit.quantize(Decimal(1).scaleb(-places), rounding=ROUND_HALF_UP))
    except InvalidOperation:  # more digits than Decimal's precision (a forged `1e30`): no price shown
        return None


def _decimal(value: object) -> Decimal | None:
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        return None
    try:
        number = Decimal(str(value).strip())
    except InvalidOperation:
        return None
    return number if number.is_finite() else None


def _amount(value: object) -> str | None:
    return _text(str(value)) if isinstance(value, str | int | float) and not isinstance(value, bool) else None


def _gmt(value: object) -> str | None:
    """A WooCommerce `*_gmt` date (`2026-11-24T10:02:19`, no offset: UTC) as ISO 8601 with its offset."""
    text = _text(value)
    if text is None:
        return None
    try:
        moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return None
    return (moment if moment.tzinfo else moment.replace(tzinfo=UTC)).isoformat()


def _mapping(value: object) -> Mapping[str, Any]:
    return value if isinstance(value, Mapping) else {}


def _text(value: object) -> str | None:
    return value.strip() or None if isinstance(value, str) else None
