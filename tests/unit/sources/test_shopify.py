import json
from datetime import UTC, datetime
from typing import Any

import pytest

from shared.clock import Clock
from shared.events import CONTACT_SUBSCRIBED, CONTACT_UPDATED, UNRECOGNISED, Event
from shared.sources import ingestion, shopify, validation
from shared.sources.signatures import shopify_signature
from tests.conftest import sample_json

NOW = datetime(2026, 11, 24, 9, 0, tzinfo=UTC)


def headers(topic: str = "customers/create", **extra: str) -> dict[str, str]:
    return {
        "x-shopify-topic": topic,
        "x-shopify-event-id": "evt-1",
        "x-shopify-shop-domain": "b.myshopify.com",
        **extra,
    }


def test_a_new_customer_becomes_a_subscribed_contact_with_normalised_email_and_consent_proof() -> None:
    event = shopify.to_event(headers(), sample_json("shopify/customers-create.json"), NOW)

    assert event.type == CONTACT_SUBSCRIBED
    assert event.event_id == "shopify#evt-1"
    assert event.contact is not None
    assert event.contact.email == "camille.martin@example.com"
    assert event.contact.first_name == "Camille"
    assert event.contact.locale == "fr"
    assert event.contact.source_id == "shopify#7281290412345"
    consent = event.contact.email_consent
    assert consent is not None
    assert (consent.state, consent.level, consent.source) == ("granted", "single_opt_in", "shopify:customers/create")
    assert consent.at == "2026-11-24T09:12:44+01:00"


def test_the_older_accepts_marketing_flag_is_read_when_the_consent_block_is_absent() -> None:
    event = shopify.to_event(headers(), sample_json("shopify/customers-create-en.json"), NOW)
    assert event.contact is not None
    assert event.contact.email_consent is not None
    assert event.contact.email_consent.state == "granted"
    assert event.contact.email_consent.level is None


@pytest.mark.parametrize(
    ("state", "expected"),
    [
        ("subscribed", "granted"),
        ("not_subscribed", "unknown"),
        ("unsubscribed", "denied"),
        ("pending", "unknown"),
        ("redacted", "denied"),
        ("something-new", "unknown"),
    ],
)
def test_consent_states_map_conservatively(state: str, expected: str) -> None:
    customer: dict[str, Any] = {"email_marketing_consent": {"state": state, "opt_in_level": "confirmed_opt_in"}}
    facts = shopify.consent_from_customer(customer, "customers/update", "2026-11-24T00:00:00+00:00")
    assert facts is not None
    assert facts.state == expected


def test_a_payload_without_consent_data_grants_nothing() -> None:
    assert shopify.consent_from_customer({"email": "a@b.co"}, "customers/create", "2026-11-24T00:00:00+00:00") is None


def test_customers_update_is_a_contact_update() -> None:
    assert shopify.to_event(headers("customers/update"), {"id": 1, "email": "a@b.co"}, NOW).type == CONTACT_UPDATED


def test_a_topic_parcours_does_not_act_on_is_recorded_as_unrecognised_without_a_contact() -> None:
    event = shopify.to_event(headers("products/create"), sample_json("shopify/products-create.json"), NOW)
    assert event.type == UNRECOGNISED
    assert event.topic == "products/create"
    assert event.contact is None


@pytest.mark.parametrize(
    ("missing", "message"),
    [("x-shopify-topic", "X-Shopify-Topic"), ("x-shopify-event-id", "X-Shopify-Event-Id")],
)
def test_a_delivery_without_its_identifying_headers_is_refused_by_name(missing: str, message: str) -> None:
    given = headers()
    del given[missing]
    with pytest.raises(shopify.ShopifyPayloadError, match=message):
        shopify.to_event(given, {"id": 1}, NOW)


def test_the_webhook_id_serves_when_the_event_id_header_is_absent() -> None:
    given = headers(**{"x-shopify-webhook-id": "wh-9"})
    del given["x-shopify-event-id"]
    assert shopify.to_event(given, {"id": 1}, NOW).event_id == "shopify#wh-9"


def test_a_json_body_that_is_not_an_object_is_refused() -> None:
    with pytest.raises(shopify.ShopifyPayloadError, match="JSON object"):
        shopify.to_event(headers(), [1, 2], NOW)


def test_an_invalid_email_is_dropped_rather_than_stored() -> None:
    event = shopify.to_event(headers(), {"id": 5, "email": "not an email"}, NOW)
    assert event.contact is not None
    assert event.contact.email is None
    assert event.contact_key() == "shopify#5"


@pytest.mark.parametrize("sample", ["shopify/customers-create.json", "shopify/customers-create-sms.json"])
def test_the_envelope_survives_the_queue_unchanged(sample: str) -> None:
    event = shopify.to_event(headers(), sample_json(sample), NOW)
    assert Event.from_json(event.to_json()) == event


def test_a_customer_s_phone_is_kept_in_e164_with_its_sms_consent_proof() -> None:
    event = shopify.to_event(headers(), sample_json("shopify/customers-create-sms.json"), NOW)
    assert event.contact is not None
    assert event.contact.phone == "+33698765432"
    consent = event.contact.sms_consent
    assert consent is not None
    assert (consent.state, consent.level, consent.source) == ("granted", "single_opt_in", "shopify:customers/create")
    assert consent.at == "2026-11-24T09:20:00+01:00"


def test_without_an_sms_consent_block_nothing_is_said_about_sms_consent() -> None:
    # The sample's sms_marketing_consent is null, as Shopify sends it for most customers.
    event = shopify.to_event(headers(), sample_json("shopify/customers-create.json"), NOW)
    assert event.contact is not None
    assert event.contact.phone == "+33612345678"
    assert event.contact.sms_consent is None


@pytest.mark.parametrize(
    ("state", "expected"), [("subscribed", "granted"), ("unsubscribed", "denied"), ("pending", "unknown")]
)
def test_sms_consent_states_map_like_email_ones(state: str, expected: str) -> None:
    customer = {"id": 5, "phone": "+33612345678", "sms_marketing_consent": {"state": state}}
    event = shopify.to_event(headers(), customer, NOW)
    assert event.contact is not None
    assert event.contact.sms_consent is not None
    assert event.contact.sms_consent.state == expected


def test_a_phone_that_is_not_e164_is_dropped_rather_than_stored() -> None:
    event = shopify.to_event(headers(), {"id": 5, "phone": "06 12 34 56 78"}, NOW)
    assert event.contact is not None
    assert event.contact.phone is None


def test_an_abandoned_checkout_carries_its_recovery_link_and_products_but_grants_no_consent() -> None:
    event = shopify.to_event(headers("checkouts/create"), sample_json("shopify/checkouts-create.json"), NOW)
    assert event.type == "checkout.started"
    assert event.contact is not None
    assert event.contact.email == "camille.martin@example.com"
    assert event.contact.source_id == "shopify#7281290412345"
    assert event.contact.locale == "fr"
    assert event.contact.email_consent is None  # the box was not ticked: that revokes nothing either
    props = event.properties
    assert props["recovery_url"].startswith("https://boutique.example/12345/checkouts/ac/")
    assert props["completed"] is False
    assert (props["total"], props["currency"]) == ("59.80", "EUR")
    assert props["lines"][0] == {
        "name": "Carnet A5 pointillé",
        "variant": "Kraft",
        "quantity": 2,
        "price": "14.95",
        "product_id": 788032119674292922,
        "image": None,  # Shopify's checkout and order line items carry no image nor product URL
        "url": None,
    }


def test_an_order_is_placed_by_its_customer_and_ticking_the_box_grants_consent() -> None:
    event = shopify.to_event(headers("orders/create"), sample_json("shopify/orders-create.json"), NOW)
    assert event.type == "order.placed"
    assert event.contact is not None
    assert event.contact.first_name == "Camille"
    assert event.contact.email_consent is not None
    assert (event.contact.email_consent.state, event.contact.email_consent.source) == (
        "granted",
        "shopify:orders/create",
    )
    assert event.properties["order_name"] == "#1042"
    assert len(event.properties["lines"]) == 2
    assert "email" not in json.dumps(event.properties)


def test_a_cart_of_hundreds_of_lines_keeps_the_first_twenty() -> None:
    payload = sample_json("shopify/checkouts-create.json")
    payload["line_items"] = payload["line_items"] * 200
    event = shopify.to_event(headers("checkouts/update"), payload, NOW)
    assert len(event.properties["lines"]) == 20
    assert len(event.to_json()) < 16 * 1024


@pytest.mark.parametrize(
    ("topic", "sample", "customer_id", "orders"),
    [
        ("customers/data_request", "customers-data_request.json", 7281290412345, [299938, 280263]),
        ("customers/redact", "customers-redact.json", 7281290412345, [299938, 280263]),
        ("shop/redact", "shop-redact.json", None, []),
    ],
)
def test_a_compliance_topic_is_a_request_for_the_operator_holding_ids_only(
    topic: str, sample: str, customer_id: int | None, orders: list[int]
) -> None:
    event = shopify.to_event(headers(topic), sample_json(f"shopify/{sample}"), NOW)
    assert event.type == "compliance.requested"
    # whom it names travels on the queue to the erasure (never into the record), a shop's request names no one
    named = (event.contact.email, event.contact.source_id) if event.contact is not None else None
    assert named == (("camille.martin@example.com", f"shopify#{customer_id}") if customer_id else None)
    assert event.properties["customer_id"] == customer_id
    assert event.properties["orders"] == orders
    assert "camille" not in json.dumps(event.properties).lower()  # the email in the payload is not copied


@pytest.mark.parametrize(
    ("topic", "sample", "expected"),
    [
        ("customers/update", "customers-update.json", "contact.updated"),
        ("checkouts/update", "checkouts-update.json", "checkout.updated"),
        ("orders/paid", "orders-paid.json", "order.paid"),
    ],
)
def test_each_sample_payload_maps_to_its_catalogue_event(topic: str, sample: str, expected: str) -> None:
    event = shopify.to_event(headers(topic), sample_json(f"shopify/{sample}"), NOW)
    assert event.type == expected
    assert event.contact is not None
    assert event.contact.email == "camille.martin@example.com"


def test_a_customer_update_that_unsubscribes_denies_consent() -> None:
    event = shopify.to_event(headers("customers/update"), sample_json("shopify/customers-update.json"), NOW)
    assert event.contact is not None
    assert event.contact.email_consent is not None
    assert event.contact.email_consent.state == "denied"
    assert event.contact.updated_at == "2026-12-02T18:40:10+01:00"  # what stale deliveries are compared with


def test_an_order_names_its_discount_codes_for_rules_and_templates() -> None:
    payload = sample_json("shopify/orders-create.json")
    assert shopify.to_event(headers("orders/create"), payload, NOW).properties["discount_code"] is None
    payload["discount_codes"] = [{"code": "ETE15", "amount": "7.50", "type": "percentage"}, {"code": " FREESHIP "}]
    assert shopify.to_event(headers("orders/create"), payload, NOW).properties["discount_code"] == "ETE15,FREESHIP"


# ---- refunds and cancellations ------------------------------------------------------------------------------------


def test_a_refund_gives_back_its_successful_refund_transactions_and_names_its_order_not_a_person() -> None:
    event = shopify.to_event(headers("refunds/create"), sample_json("shopify/refunds-create.json"), NOW)
    assert event.type == "order.refunded"
    # the failed transaction of 29.90 is not counted; the successful one is
    assert event.properties == {
        "shop": "b.myshopify.com",
        "order_id": "5512345678901",
        "refund_id": "902345678901",
        "amount": "29.90",
        "currency": "EUR",
    }
    assert event.contact is None  # a refund names no customer: processing finds them by the order


def test_a_refund_in_two_transactions_gives_back_their_sum() -> None:
    payload = sample_json("shopify/refunds-create.json")
    payload["transactions"][0].update(status="success", amount="12.10")
    assert shopify.to_event(headers("refunds/create"), payload, NOW).properties["amount"] == "42.00"


def test_a_refund_that_gives_nothing_back_is_recorded_without_effect() -> None:
    payload = sample_json("shopify/refunds-create.json")
    payload["transactions"] = [dict(t, status="failure") for t in payload["transactions"]]  # a restock, say
    assert shopify.to_event(headers("refunds/create"), payload, NOW).type == UNRECOGNISED


def test_a_cancelled_order_takes_back_its_total_and_names_the_customer_by_ids_only() -> None:
    event = shopify.to_event(headers("orders/cancelled"), sample_json("shopify/orders-cancelled.json"), NOW)
    assert event.type == "order.cancelled"
    assert {k: event.properties[k] for k in ("order_id", "amount", "currency", "reason")} == {
        "order_id": "5512345678901",
        "amount": "59.80",
        "currency": "EUR",
        "reason": "customer",
    }
    assert event.contact is not None
    assert (event.contact.email, event.contact.source_id) == ("camille.martin@example.com", "shopify#7281290412345")
    # nothing of the person's name or consent: a cancellation neither creates a contact nor changes consent
    assert (event.contact.first_name, event.contact.email_consent) == (None, None)


@pytest.mark.parametrize(
    ("topic", "sample", "change", "field"),
    [
        ("refunds/create", "refunds-create.json", {"order_id": None}, "order_id"),
        ("refunds/create", "refunds-create.json", {"order_id": "12 34"}, "order_id"),
        ("refunds/create", "refunds-create.json", {"id": True}, "id"),
        ("refunds/create", "refunds-create.json", {"transactions": {"amount": "1"}}, "transactions"),
        ("refunds/create", "refunds-create.json", {"transactions#1": {"amount": "douze"}}, "transactions[1].amount"),
        ("refunds/create", "refunds-create.json", {"transactions#1": {"amount": "-29.90"}}, "transactions[1].amount"),
        ("refunds/create", "refunds-create.json", {"transactions#1": {"amount": None}}, "transactions[1].amount"),
        ("refunds/create", "refunds-create.json", {"transactions#1": {"currency": "€"}}, "transactions[1].currency"),
        ("refunds/create", "refunds-create.json", {"transactions#1": {"currency": None}}, "transactions[1].currency"),
        ("orders/cancelled", "orders-cancelled.json", {"id": None}, "id"),
        ("orders/cancelled", "orders-cancelled.json", {"total_price": "NaN"}, "total_price"),
        ("orders/cancelled", "orders-cancelled.json", {"total_price": "-59.80"}, "total_price"),
        ("orders/cancelled", "orders-cancelled.json", {"presentment_currency": "euro"}, "presentment_currency"),
    ],
)
def test_a_bad_refund_or_cancellation_is_refused_at_ingest_naming_the_field(
    topic: str, sample: str, change: dict[str, Any], field: str
) -> None:
    payload = sample_json(f"shopify/{sample}")
    for name, value in change.items():
        if name.startswith("transactions#"):
            payload["transactions"][int(name.partition("#")[2])].update(value)
        else:
            payload[name] = value
    with pytest.raises(validation.InputError) as refused:
        shopify.to_event(headers(topic), payload, NOW)
    assert refused.value.field == field
    # and through the route: a 400 whose reason names it
    raw = json.dumps(payload).encode()
    signed = {
        **headers(topic),
        "content-type": "application/json",
        "x-shopify-hmac-sha256": shopify_signature(raw, "s"),
    }
    with pytest.raises(ingestion.Rejected) as rejected:
        ingestion.receive_shopify(raw, signed, "s", _Fixed())
    assert rejected.value.status == 400
    assert rejected.value.reason.startswith(f"{field}: ")


class _Fixed(Clock):
    def now(self) -> datetime:
        return NOW
