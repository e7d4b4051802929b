import json
from datetime import UTC, datetime
from typing import Any

import boto3
import pytest

from infra import validation
from shared.clock import Clock
from shared.events import CONTACT_SUBSCRIBED, CONTACT_UPDATED, ORDER_PAID, ORDER_PLACED, UNRECOGNISED, Event
from shared.journeys import processing
from shared.messages.templates import render_email
from shared.settings import Settings
from shared.sources import woocommerce
from shared.sources.validation import InputError
from shared.storage import tables
from tests.conftest import ROOT, sample_json

NOW = datetime(2026, 11, 24, 10, 5, tzinfo=UTC)


def headers(topic: str = "order.created", **extra: str) -> dict[str, str]:
    resource, _, event = topic.partition(".")
    return {
        "x-wc-webhook-topic": topic,
        "x-wc-webhook-resource": resource,
        "x-wc-webhook-event": event,
        "x-wc-webhook-id": "14",
        "x-wc-webhook-delivery-id": "9f2c4e1a7b",
        "x-wc-webhook-source": "https://boutique.example/",
        **extra,
    }


def event(topic: str, sample: str, **changes: Any) -> Event:
    payload = {**sample_json(f"woocommerce/{sample}"), **changes}
    return woocommerce.to_event(headers(topic), payload, NOW)


@pytest.mark.parametrize(
    ("topic", "sample", "expected"),
    [
        ("customer.created", "customer-created.json", CONTACT_SUBSCRIBED),
        ("customer.updated", "customer-updated.json", CONTACT_UPDATED),
        ("order.created", "order-created.json", ORDER_PLACED),
        ("order.updated", "order-updated-paid.json", ORDER_PAID),
        ("product.created", "product-created.json", UNRECOGNISED),
        ("coupon.updated", "product-created.json", UNRECOGNISED),
        ("order.deleted", "order-created.json", UNRECOGNISED),
        ("order.restored", "order-created.json", UNRECOGNISED),
        ("customer.deleted", "customer-created.json", UNRECOGNISED),
        ("action.woocommerce_order_status_changed", "product-created.json", UNRECOGNISED),
    ],
)
def test_each_topic_maps_to_its_catalogue_event(topic: str, sample: str, expected: str) -> None:
    mapped = event(topic, sample)
    assert (mapped.type, mapped.topic, mapped.source) == (expected, topic, "woocommerce")
    assert (mapped.contact is None) == (expected == UNRECOGNISED)


@pytest.mark.parametrize(
    ("status", "date_paid_gmt"),
    [("processing", None), ("on-hold", None), ("pending", None), ("failed", None)],
)  # fmt: skip (refunded and cancelled take the order back: see below)
def test_an_order_update_that_is_not_a_payment_is_recorded_without_effect(
    status: str, date_paid_gmt: str | None
) -> None:
    paid_at = {"date_paid_gmt": date_paid_gmt, "date_paid": date_paid_gmt}
    mapped = event("order.updated", "order-updated-paid.json", status=status, **paid_at)
    assert mapped.type == UNRECOGNISED
    assert mapped.contact is None


def test_a_completed_order_with_its_payment_date_is_paid() -> None:
    assert event("order.updated", "order-updated-paid.json", status="completed").type == ORDER_PAID


def test_a_block_checkout_draft_is_not_an_order_yet() -> None:
    assert event("order.created", "order-created.json", status="checkout-draft").type == UNRECOGNISED


def test_an_order_is_placed_by_its_billing_contact_with_the_opt_in_the_shop_collected() -> None:
    mapped = event("order.created", "order-created.json")
    contact = mapped.contact
    assert contact is not None
    assert contact.email == "camille.martin@example.com"  # normalised from Camille.Martin@Example.com
    assert (contact.first_name, contact.last_name) == ("Camille", "Martin")
    assert contact.phone == "+33612345678"
    assert contact.source_id == "woocommerce#26"
    assert contact.updated_at == "2026-11-24T10:02:17+00:00"  # the order's creation: when the buyer said so
    consent = contact.email_consent
    assert consent is not None
    assert (consent.state, consent.level, consent.at, consent.source) == (
        "granted",
        "single_opt_in",
        "2026-11-24T10:02:11+00:00",
        "woocommerce:order.created",
    )
    assert consent.wording == "checkout v2: Je souhaite recevoir les nouveautés et offres de la boutique par email"
    assert mapped.occurred_at == "2026-11-24T10:02:19+00:00"


def test_an_order_carries_its_amounts_and_lines_but_no_personal_data() -> None:
    props = event("order.created", "order-created.json").properties
    assert (props["total"], props["currency"], props["order_id"], props["order_name"]) == ("64.70", "EUR", 727, "#727")
    assert (props["status"], props["paid"], props["shop"]) == ("processing", True, "https://boutique.example/")
    assert props["status_url"] is None  # the templates written for Shopify's orders read it
    assert props["lines"] == [
        {
            "name": "Carnet A5 pointillé",
            "variant": "Kraft",
            "quantity": 2,
            "price": "14.95",  # 24.92 + 4.98 VAT, per unit: the price the customer saw
            "product_id": 93,
            "image": "https://boutique.example/wp-content/uploads/2026/10/carnet-a5-kraft.jpg",
            "url": None,  # the order's line items carry no permalink
        },
        {
            "name": "Stylo plume",
            "variant": None,
            "quantity": 1,
            "price": "29.90",
            "product_id": 87,
            "image": None,
            "url": None,
        },
    ]
    text = json.dumps(props, ensure_ascii=False)
    for personal in ("camille", "Martin", "République", "69002", "203.0.113.24", "+33", "wc_order_"):
        assert personal not in text


def test_a_line_without_subtotals_falls_back_to_woocommerce_s_price_in_the_shop_s_decimals() -> None:
    payload = sample_json("woocommerce/order-created.json")
    payload["total"] = "1500"
    payload["line_items"] = [{"name": "Furoshiki", "quantity": 3, "price": 500.0, "product_id": 4}]
    mapped = woocommerce.to_event(headers(), payload, NOW)
    assert mapped.properties["lines"][0]["price"] == "500"


def test_a_guest_order_is_identified_by_its_email_only() -> None:
    mapped = event("order.created", "order-created.json", customer_id=0)
    assert mapped.contact is not None
    assert mapped.contact.source_id is None
    assert mapped.contact.email == "camille.martin@example.com"
    assert mapped.contact_key() == "email#camille.martin@example.com"


def test_a_customer_becomes_a_contact_without_consent_since_woocommerce_core_has_none() -> None:
    mapped = event("customer.created", "customer-created.json")
    contact = mapped.contact
    assert contact is not None
    assert (contact.email, contact.first_name, contact.source_id) == (
        "camille.martin@example.com",
        "Camille",
        "woocommerce#26",
    )
    assert contact.email_consent is None
    assert contact.sms_consent is None
    assert contact.phone is None  # "06 12 34 56 78" is national: its country is never guessed
    assert contact.updated_at == "2026-11-24T10:01:58+00:00"


def test_a_customer_who_withdrew_in_the_shop_is_denied_with_the_time_they_did() -> None:
    contact = event("customer.updated", "customer-updated.json").contact
    assert contact is not None
    assert contact.phone == "+33698765432"
    assert contact.email_consent is not None
    assert (contact.email_consent.state, contact.email_consent.level, contact.email_consent.at) == (
        "denied",
        None,
        "2026-12-03T18:27:41+00:00",
    )
    assert contact.email_consent.source == "woocommerce:customer.updated"


@pytest.mark.parametrize(
    ("meta", "expected"),
    [
        ([], None),
        ([{"key": "parcours_marketing_consent", "value": "yes"}], "granted"),
        ([{"key": "parcours_marketing_consent", "value": "YES "}], "granted"),
        ([{"key": "parcours_marketing_consent", "value": "no"}], "denied"),
        ([{"key": "parcours_marketing_consent", "value": ""}], None),
        ([{"key": "parcours_marketing_consent", "value": "maybe"}], None),
        ([{"key": "parcours_marketing_consent", "value": ["yes"]}], None),
        ([{"key": "marketing_consent", "value": "yes"}], None),  # another plugin's field says nothing to parcours
        ([{"key": "_parcours_marketing_consent", "value": "yes"}], None),
        (
            [
                {"key": "parcours_marketing_consent", "value": "yes"},
                {"key": "parcours_marketing_consent", "value": "no"},
            ],
            "denied",  # the last value wins, as in WordPress
        ),
    ],
)
def test_consent_is_only_what_the_explicit_field_says(meta: list[dict[str, Any]], expected: str | None) -> None:
    facts = woocommerce.consent_from_meta({"meta_data": meta}, "order.created", "2026-11-24T10:02:17+00:00")
    assert (facts.state if facts else None) == expected


def test_a_consent_without_its_time_is_dated_by_the_order_and_a_time_without_offset_is_utc() -> None:
    payload = sample_json("woocommerce/order-created.json")
    payload["meta_data"] = [{"key": "parcours_marketing_consent", "value": "yes"}]
    facts = woocommerce.to_event(headers(), payload, NOW).contact
    assert facts is not None
    assert facts.email_consent is not None
    assert facts.email_consent.at == "2026-11-24T10:02:17+00:00"
    payload["meta_data"].append({"key": "parcours_marketing_consent_at", "value": "2026-11-24T10:01:00"})
    facts = woocommerce.to_event(headers(), payload, NOW).contact
    assert facts is not None
    assert facts.email_consent is not None
    assert facts.email_consent.at == "2026-11-24T10:01:00+00:00"


def test_an_order_without_the_field_grants_nothing() -> None:
    mapped = event("order.created", "order-created.json", meta_data=[{"key": "is_vat_exempt", "value": "no"}])
    assert mapped.contact is not None
    assert mapped.contact.email_consent is None


def test_a_redelivery_has_a_new_delivery_id_but_the_same_event_id() -> None:
    payload = sample_json("woocommerce/order-created.json")
    first = woocommerce.to_event(headers(), payload, NOW)
    again = woocommerce.to_event(headers(**{"x-wc-webhook-delivery-id": "0c7d1e"}), payload, NOW)
    assert first.event_id == again.event_id == "woocommerce#order.placed#727"


def test_an_order_is_placed_once_and_a_customer_created_once_whatever_the_deliveries() -> None:
    # e.g. two order.created webhooks pointing at parcours, or the order saved again between two deliveries
    order = sample_json("woocommerce/order-created.json")
    placed = woocommerce.to_event(headers("order.created"), order, NOW)
    again = woocommerce.to_event(
        headers("order.created", **{"x-wc-webhook-id": "15"}),
        {**order, "date_modified_gmt": "2026-11-24T10:03:00"},
        NOW,
    )
    assert placed.event_id == again.event_id == "woocommerce#order.placed#727"
    customer = sample_json("woocommerce/customer-created.json")
    assert event("customer.created", "customer-created.json").event_id == "woocommerce#contact.subscribed#26"
    assert (
        woocommerce.to_event(headers("customer.updated"), customer, NOW).event_id != "woocommerce#contact.subscribed#26"
    )


def test_a_change_of_the_resource_or_another_webhook_is_another_event() -> None:
    payload = sample_json("woocommerce/customer-created.json")
    first = woocommerce.to_event(headers("customer.updated"), payload, NOW)
    changed = woocommerce.to_event(
        headers("customer.updated"), {**payload, "date_modified_gmt": "2026-11-25T08:00:00"}, NOW
    )
    other_hook = woocommerce.to_event(headers("customer.updated", **{"x-wc-webhook-id": "15"}), payload, NOW)
    assert len({first.event_id, changed.event_id, other_hook.event_id}) == 3


def test_every_later_update_of_a_paid_order_is_the_same_payment() -> None:
    paid = event("order.updated", "order-updated-paid.json")
    completed = event(
        "order.updated", "order-updated-paid.json", status="completed", date_modified_gmt="2026-11-28T09:00:00"
    )
    via_other_hook = woocommerce.to_event(
        headers("order.updated", **{"x-wc-webhook-id": "16"}), sample_json("woocommerce/order-updated-paid.json"), NOW
    )
    assert (
        paid.event_id
        == completed.event_id
        == via_other_hook.event_id
        == "woocommerce#order.paid#731#2026-11-26T14:40:03"
    )


def test_a_customer_never_modified_is_keyed_on_its_creation() -> None:
    mapped = event("customer.updated", "customer-created.json", date_modified=None, date_modified_gmt=None)
    assert mapped.event_id == "woocommerce#14#26#2026-11-24T10:01:58"


def test_a_payload_without_id_and_date_is_keyed_on_its_delivery() -> None:
    mapped = woocommerce.to_event(
        headers("action.woocommerce_low_stock"), {"action": "woocommerce_low_stock", "arg": 93}, NOW
    )
    assert mapped.event_id == "woocommerce#14#delivery#9f2c4e1a7b"
    assert mapped.type == UNRECOGNISED


@pytest.mark.parametrize(
    ("missing", "payload", "message"),
    [
        ("x-wc-webhook-topic", {"id": 1, "date_modified_gmt": "2026-11-24T10:00:00"}, "X-WC-Webhook-Topic"),
        ("x-wc-webhook-id", {"id": 1, "date_modified_gmt": "2026-11-24T10:00:00"}, "X-WC-Webhook-ID"),
        ("x-wc-webhook-delivery-id", {"id": 1}, "X-WC-Webhook-Delivery-ID"),
    ],
)
def test_a_delivery_without_its_identifying_headers_is_refused_by_name(
    missing: str, payload: dict[str, Any], message: str
) -> None:
    given = headers("order.deleted")
    del given[missing]
    with pytest.raises(woocommerce.WooCommercePayloadError, match=message):
        woocommerce.to_event(given, payload, NOW)


def test_a_json_body_that_is_not_an_object_is_refused() -> None:
    with pytest.raises(woocommerce.WooCommercePayloadError, match="JSON object"):
        woocommerce.to_event(headers(), [1, 2], NOW)


@pytest.mark.parametrize(
    ("topic", "sample"),
    [("order.created", "order-created.json"), ("order.updated", "order-updated-paid.json"),
     ("customer.updated", "customer-updated.json")],
)  # fmt: skip
def test_the_envelope_survives_the_queue_unchanged(topic: str, sample: str) -> None:
    mapped = event(topic, sample)
    assert Event.from_json(mapped.to_json()) == mapped


@pytest.fixture
def settings(aws: dict[str, str]) -> Settings:
    pass_through = json.dumps({"StartAt": "Done", "States": {"Done": {"Type": "Succeed"}}})
    sfn = boto3.client("stepfunctions", region_name="eu-west-3")
    for name in ("welcome", "post-purchase", "loyalty"):
        sfn.create_state_machine(
            name=f"parcours-{name}", definition=pass_through, roleArn="arn:aws:iam::123456789012:role/sfn"
        )
    # the events parcours emits about the contact (an order makes it a customer: stage.changed) go there
    sqs = boto3.client("sqs", region_name="eu-west-3")
    url = sqs.create_queue(QueueName="parcours-events.fifo", Attributes={"FifoQueue": "true"})["QueueUrl"]
    return Settings.from_environ({**aws, "PARCOURS_QUEUE_URL": url})


def test_an_update_older_than_what_is_stored_changes_no_profile_field(settings: Settings) -> None:
    # Given the customer's latest update is processed first (WooCommerce delivers asynchronously)
    newer = processing.process(event("customer.updated", "customer-updated.json"), settings, Clock())

    # When the older creation arrives afterwards
    processing.process(event("customer.created", "customer-created.json"), settings, Clock())

    # Then the newer last name, phone and withdrawal stand
    assert newer.contact_id is not None
    contact = tables(settings).contacts.get(newer.contact_id)
    assert (contact.last_name, contact.phone) == ("Martin-Durand", "+33698765432")
    assert contact.email_consent is not None
    assert contact.email_consent.state == "denied"


def test_an_opted_in_buyer_s_order_starts_the_post_purchase_series_and_counts(
    settings: Settings,
) -> None:
    result = processing.process(event("order.created", "order-created.json"), settings, Clock())
    started = {o.scenario for o in result.outcomes if o.started}
    assert "post-purchase" in started
    assert result.contact_id is not None
    contact = tables(settings).contacts.get(result.contact_id)
    assert contact.orders_count == 1
    assert contact.source_ids is not None
    assert contact.source_ids.as_dict() == {"woocommerce": "26"}
    assert contact.attributes["lifecycle_stage"] == "customer"  # a first order


def test_an_unrecognised_topic_is_recorded_in_the_source_s_bucket(settings: Settings) -> None:
    result = processing.process(event("product.created", "product-created.json"), settings, Clock())
    assert result.contact_id is None
    recorded = list(tables(settings).events.query("_unattributed#woocommerce"))
    assert [e.properties["topic"] for e in recorded] == ["product.created"]
    assert tables(settings).contacts.count() == 0


ORDER_TEMPLATES = sorted(  # the scenarios an order starts (trigger: order.placed): their emails read the order
    f"{path.parent.name}/{path.name.removesuffix('.fr.html')}"
    for folder in ("post-purchase", "loyalty")
    for path in (ROOT / "templates" / "email" / folder).glob("*.fr.html")
)


@pytest.mark.parametrize("name", ORDER_TEMPLATES)
@pytest.mark.parametrize("locale", ["fr", "en"])
def test_the_emails_an_order_starts_render_with_a_woocommerce_order(name: str, locale: str) -> None:
    placed = event("order.created", "order-created.json")
    trigger = {"type": placed.type, "event_id": placed.event_id, "properties": placed.properties}
    discount = {"code": validation.SAMPLE_CODE, "pool": None}  # loyalty's step gives one (MERCI20)
    email = render_email(name, locale, {**validation.SAMPLE_CONTEXT, "trigger": trigger, "discount": discount})
    assert email.subject
    if name == "post-purchase/1-thanks":
        assert "#727" in email.subject
        assert "Carnet A5 pointillé · Kraft" in email.text
        assert "14.95 EUR" in email.text


def test_a_guest_order_without_email_nor_phone_is_recorded_without_creating_a_contact(settings: Settings) -> None:
    payload = sample_json("woocommerce/order-created.json")
    payload["customer_id"] = 0
    payload["billing"]["email"] = payload["billing"]["phone"] = ""  # keyed in by the shop for a walk-in buyer
    mapped = woocommerce.to_event(headers(), payload, NOW)
    assert mapped.contact_key() == "source#woocommerce"
    result = processing.process(mapped, settings, Clock())
    assert result.contact_id is None
    assert [e.type for e in tables(settings).events.query("_unattributed#woocommerce")] == [ORDER_PLACED]
    assert tables(settings).contacts.count() == 0


def test_an_order_names_its_coupons_as_its_discount_code() -> None:
    assert event("order.created", "order-created.json").properties["discount_code"] is None
    coupons = [{"id": 3, "code": "ete15", "discount": "7.50"}, {"id": 4, "code": ""}]
    assert event("order.created", "order-created.json", coupon_lines=coupons).properties["discount_code"] == "ete15"


# ---- refunds and cancellations ------------------------------------------------------------------------------------


def test_a_fully_refunded_order_gives_back_the_sum_of_its_refunds_under_the_latest_refund() -> None:
    mapped = event("order.updated", "order-updated-refunded.json")
    assert mapped.type == "order.refunded"
    assert {k: mapped.properties[k] for k in ("order_id", "refund_id", "amount", "currency")} == {
        "order_id": "731",
        "refund_id": "745",
        "amount": "64.70",  # 24.90 + 39.80, written negative by WooCommerce
        "currency": "EUR",
    }
    # once per refund, however often the refunded order is updated later (a note, ...)
    assert mapped.event_id == "woocommerce#order.refunded#731#745"
    later = event("order.updated", "order-updated-refunded.json", date_modified_gmt="2026-12-02T08:00:00")
    assert later.event_id == mapped.event_id
    assert mapped.contact is not None
    assert (mapped.contact.email, mapped.contact.source_id) == ("camille.martin@example.com", "woocommerce#26")
    assert (mapped.contact.first_name, mapped.contact.email_consent) == (None, None)  # ids only


def test_an_order_refunded_by_hand_without_refunds_listed_gives_back_its_total() -> None:
    mapped = event("order.updated", "order-updated-refunded.json", refunds=[])
    assert (mapped.properties["amount"], mapped.properties["refund_id"]) == ("64.70", "731-refunded")


def test_a_cancelled_order_takes_back_its_total_once() -> None:
    mapped = event("order.updated", "order-updated-cancelled.json")
    assert mapped.type == "order.cancelled"
    assert {k: mapped.properties[k] for k in ("order_id", "amount", "currency", "order_name")} == {
        "order_id": "731",
        "amount": "64.70",
        "currency": "EUR",
        "order_name": "#731",
    }
    assert mapped.event_id == "woocommerce#order.cancelled#731"


@pytest.mark.parametrize(
    ("sample", "change", "field"),
    [
        ("order-updated-refunded.json", {"id": None}, "id"),
        ("order-updated-refunded.json", {"refunds": "all"}, "refunds"),
        ("order-updated-refunded.json", {"refunds": [{"id": 745, "total": "-abc"}]}, "refunds[0].total"),
        ("order-updated-refunded.json", {"refunds": [{"id": None, "total": "-1.00"}]}, "refunds[0].id"),
        ("order-updated-refunded.json", {"currency": "E"}, "currency"),
        ("order-updated-cancelled.json", {"total": "-64.70"}, "total"),
        ("order-updated-cancelled.json", {"total": None}, "total"),
        ("order-updated-cancelled.json", {"currency": None}, "currency"),
    ],
)
def test_a_bad_refund_or_cancellation_is_refused_naming_the_field(
    sample: str, change: dict[str, Any], field: str
) -> None:
    with pytest.raises(InputError) as refused:
        event("order.updated", sample, **change)
    assert refused.value.field == field
