"""Shopify webhooks: headers, topics and payloads mapped into the event catalogue."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from decimal import Decimal
from typing import Any

from shared.events import (
    CHECKOUT_STARTED,
    CHECKOUT_UPDATED,
    COMPLIANCE_REQUESTED,
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
    "customers/create": CONTACT_SUBSCRIBED,
    "customers/update": CONTACT_UPDATED,
    "checkouts/create": CHECKOUT_STARTED,
    "checkouts/update": CHECKOUT_UPDATED,
    "orders/create": ORDER_PLACED,
    "orders/paid": ORDER_PAID,
    # What a shop takes back: the contact's counters and the attributed revenue go down (shared.people.orders).
    "refunds/create": ORDER_REFUNDED,  # a refund names its order, not the customer: found by the order
    "orders/cancelled": ORDER_CANCELLED,
    # The mandatory compliance topics: a customer's data export or erasure, a shop's erasure 48 h after uninstall.
    "customers/data_request": COMPLIANCE_REQUESTED,
    "customers/redact": COMPLIANCE_REQUESTED,
    "shop/redact": COMPLIANCE_REQUESTED,
}
MAX_LINES = 20  # enough for any email's product block; keeps the queued event far below 256 KiB

_CONSENT_STATES = {
    "subscribed": "granted",
    # Never subscribed is no objection (soft opt-in may reach a customer, shared.people.consent); unsubscribed is.
    "not_subscribed": "unknown",
    "unsubscribed": "denied",
    "redacted": "denied",
    "invalid": "denied",
    "pending": "unknown",  # waiting for the customer's confirmation: not consent yet
}


class ShopifyPayloadError(PayloadError):
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
            explicit=bool(block.get("consent_updated_at")),
        )
    accepts = customer.get("accepts_marketing")
    if isinstance(accepts, bool):
        return ConsentFacts(
            state="granted" if accepts else "denied",
            level=None,
            at=customer.get("accepts_marketing_updated_at") or customer.get("updated_at") or fallback_at,
            source=source,
            explicit=bool(customer.get("accepts_marketing_updated_at")),
        )
    return None


def sms_consent_from_customer(customer: Mapping[str, Any], topic: str, fallback_at: str) -> ConsentFacts | None:
    """Reads `sms_marketing_consent` (same states as email); None when the payload says nothing (often null)."""
    block = customer.get("sms_marketing_consent")
    if not isinstance(block, Mapping) or not isinstance(block.get("state"), str):
        return None
    return ConsentFacts(
        state=_CONSENT_STATES.get(block["state"], "unknown"),
        level=block.get("opt_in_level") if isinstance(block.get("opt_in_level"), str) else None,
        at=block.get("consent_updated_at") or customer.get("updated_at") or fallback_at,
        source=f"shopify:{topic}",
        explicit=bool(block.get("consent_updated_at")),
    )


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
    properties: dict[str, Any] = {"shop": headers.get("x-shopify-shop-domain")}
    if event_type in (CONTACT_SUBSCRIBED, CONTACT_UPDATED):
        contact = _customer_facts(payload, topic, received)
    elif event_type in (CHECKOUT_STARTED, CHECKOUT_UPDATED, ORDER_PLACED, ORDER_PAID):
        contact = _buyer_facts(payload, topic, received)
        properties.update(_purchase(payload, event_type))
    elif event_type == ORDER_REFUNDED:
        refund = _refund(payload)
        if refund is None:
            event_type = UNRECOGNISED  # nothing given back (a restock only, a failed transaction): recorded, no effect
        else:
            properties.update(refund)
    elif event_type == ORDER_CANCELLED:
        contact = _buyer_identity(payload)
        properties.update(_cancellation(payload))
    elif event_type == COMPLIANCE_REQUESTED:
        properties.update(_compliance(payload))
        contact = _compliance_facts(payload)
    return Event(
        event_id=f"shopify#{delivery_id}",
        type=event_type,
        source="shopify",
        topic=topic,
        occurred_at=occurred,
        received_at=received,
        contact=contact,
        properties=properties,
    )


def _source_id(customer_id: object) -> str | None:
    return f"shopify#{customer_id}" if isinstance(customer_id, int | str) and customer_id else None


def _customer_facts(customer: Mapping[str, Any], topic: str, received: str) -> ContactFacts:
    return ContactFacts(
        email=validation.email_or_none(customer.get("email")),
        first_name=_text(customer.get("first_name")),
        last_name=_text(customer.get("last_name")),
        locale=_locale(customer.get("locale")),
        source_id=_source_id(customer.get("id")),
        email_consent=consent_from_customer(customer, topic, received),
        updated_at=_text(customer.get("updated_at")),
        phone=normalise_phone(customer.get("phone")),
        sms_consent=sms_consent_from_customer(customer, topic, received),
    )


def _buyer_facts(payload: Mapping[str, Any], topic: str, received: str) -> ContactFacts:
    """The buyer of a checkout or order. Ticking "email me offers" grants consent; not ticking it revokes none."""
    customer = _mapping(payload.get("customer"))
    billing = _mapping(payload.get("billing_address"))
    consent = None
    if payload.get("buyer_accepts_marketing") is True:
        at = _text(payload.get("updated_at")) or received
        # The box ticked on this checkout or order, dated by it: re-sent on every update, so never explicit.
        consent = ConsentFacts("granted", "single_opt_in", at, f"shopify:{topic}", explicit=False)
    return ContactFacts(
        email=validation.email_or_none(payload.get("email") or customer.get("email")),
        first_name=_text(customer.get("first_name")) or _text(billing.get("first_name")),
        last_name=_text(customer.get("last_name")) or _text(billing.get("last_name")),
        locale=_locale(payload.get("customer_locale")),
        source_id=_source_id(customer.get("id")),
        email_consent=consent,
    )


def _buyer_identity(payload: Mapping[str, Any]) -> ContactFacts | None:
    """Whom a cancelled order is of: the ids that find a contact, nothing else (a cancellation neither creates a
    contact nor says anything of its name or consent)."""
    customer = _mapping(payload.get("customer"))
    facts = ContactFacts(
        email=validation.email_or_none(payload.get("email") or customer.get("email")),
        source_id=_source_id(customer.get("id")),
    )
    return facts if facts.email or facts.source_id else None


def _refund(payload: Mapping[str, Any]) -> dict[str, Any] | None:
    """refunds/create: what was given back, the sum of the refund's `transactions` of kind `refund` and status
    `success`, in their currency (the order's presentment currency); None when nothing was given back. A refund's
    line items and order adjustments say what was returned, not what was paid back: not read."""
    order_id = validation.order_ref(payload.get("order_id"), "order_id")
    refund_id = validation.order_ref(payload.get("id"), "id")
    transactions = payload.get("transactions")
    if transactions is not None and not isinstance(transactions, list):
        raise validation.InputError("transactions", "must be a list of the refund's transactions")
    given, currencies = Decimal(0), set()
    for index, transaction in enumerate(transactions or []):
        if not isinstance(transaction, Mapping):
            raise validation.InputError(f"transactions[{index}]", "must be an object")
        if transaction.get("kind") != "refund" or transaction.get("status") != "success":
            continue
        given += validation.money(transaction.get("amount"), f"transactions[{index}].amount")
        currencies.add(validation.currency(transaction.get("currency"), f"transactions[{index}].currency"))
    if not currencies:
        return None
    if len(currencies) > 1:
        raise validation.InputError("transactions", "a refund's transactions must be in one currency")
    return {"order_id": order_id, "refund_id": refund_id, "amount": str(given), "currency": currencies.pop()}


def _cancellation(payload: Mapping[str, Any]) -> dict[str, Any]:
    """orders/cancelled: the order and its total (in the currency orders/create recorded it in, see _purchase)."""
    currency_field = "presentment_currency" if payload.get("presentment_currency") is not None else "currency"
    return {
        "order_id": validation.order_ref(payload.get("id"), "id"),
        "order_name": _text(payload.get("name")),
        "amount": str(validation.money(payload.get("total_price"), "total_price")),
        "currency": validation.currency(payload.get(currency_field), currency_field),
        "reason": _text(payload.get("cancel_reason")),  # customer, fraud, inventory, declined, other
    }


def _mapping(value: object) -> Mapping[str, Any]:
    return value if isinstance(value, Mapping) else {}


def _locale(value: object) -> str | None:
    """`fr`, `fr-FR`, `en-GB` -> the language; parcours writes in fr and en."""
    text = _text(value)
    return text.split("-")[0].lower()[:2] if text else None


def _purchase(payload: Mapping[str, Any], event_type: str) -> dict[str, Any]:
    """What scenarios and templates use: amounts and product lines, no personal data."""
    lines: list[dict[str, Any]] = []
    for index, line in enumerate(products.items(payload.get("line_items"))):
        if isinstance(line, Mapping) and len(lines) < MAX_LINES:
            products.check_quantity(line.get("quantity"), f"line_items[{index}].quantity")
            # Shopify's checkout and order line items carry no image nor product URL (nor handle): lines have none.
            lines.append(
                products.line(
                    name=_text(line.get("title")) or _text(line.get("name")),
                    variant=line.get("variant_title"),
                    quantity=line.get("quantity"),
                    price=line.get("price"),
                    product_id=line.get("product_id"),
                )
            )
    properties: dict[str, Any] = {
        "total": _text(str(payload.get("total_price"))) if payload.get("total_price") is not None else None,
        "currency": _text(payload.get("presentment_currency")) or _text(payload.get("currency")),
        "lines": lines,
    }
    if event_type in (CHECKOUT_STARTED, CHECKOUT_UPDATED):
        properties["checkout_token"] = _text(payload.get("token"))
        properties["recovery_url"] = _text(payload.get("abandoned_checkout_url"))
        properties["completed"] = payload.get("completed_at") is not None
    else:
        properties["order_id"] = payload.get("id")
        properties["order_name"] = _text(payload.get("name"))
        properties["status_url"] = _text(payload.get("order_status_url"))
        properties["discount_code"] = products.discount_code(
            code.get("code") for code in products.items(payload.get("discount_codes")) if isinstance(code, Mapping)
        )
    return properties


def _compliance(payload: Mapping[str, Any]) -> dict[str, Any]:
    """Ids only (the payload also names the customer's email and phone, which are not copied into the record)."""
    customer = _mapping(payload.get("customer"))
    orders = payload.get("orders_requested") or payload.get("orders_to_redact") or []
    request = _mapping(payload.get("data_request"))
    return {
        "shop_id": payload.get("shop_id"),
        "customer_id": customer.get("id"),
        "orders": [order for order in orders if isinstance(order, int | str)] if isinstance(orders, list) else [],
        "data_request_id": request.get("id"),
    }


def _compliance_facts(payload: Mapping[str, Any]) -> ContactFacts | None:
    """Whom a customer's request names (email, phone, Shopify id): carried to the erasure or the export on the
    queue, never recorded (the compliance record keeps the ids above only)."""
    customer = _mapping(payload.get("customer"))
    facts = ContactFacts(
        email=validation.email_or_none(customer.get("email")),
        phone=normalise_phone(customer.get("phone")),
        source_id=_source_id(customer.get("id")),
    )
    return facts if facts.email or facts.phone or facts.source_id else None
