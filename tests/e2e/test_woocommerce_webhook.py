"""A WooCommerce shop's webhooks over real HTTP against `parcours local`, read back from the outbox and tables.
A delivery's event is recorded before it is answered (the process function runs within the events queue's
SendMessage): the tables are read at once; only what a journey does later needs time to move on."""

from __future__ import annotations

import json
import uuid
from typing import Any

import pytest

from infra.localprocess import RunningLocal
from infra.webhook_client import post, post_woocommerce, post_woocommerce_ping, woocommerce_headers
from tests.conftest import WOOCOMMERCE_SECRET, sample
from tests.e2e.test_shopify_webhook import at_a_whole_second, identity_exists, sent_at, unique_email

URL_PATH = "/webhooks/woocommerce"


def resource(name: str, email: str, customer_id: int, consent: str | None = None, order_id: int = 0) -> bytes:
    """A sample resource for this test's own customer; `consent` sets the shop's opt-in field (or removes it)."""
    payload: dict[str, Any] = json.loads(sample(f"woocommerce/{name}"))
    payload["billing"]["email"] = email
    if "email" in payload:  # a customer
        payload["email"], payload["id"] = email, customer_id
    else:  # an order (customer_id 0: a guest)
        payload["customer_id"] = customer_id
        payload["id"] = order_id or new_customer_id()
        payload["number"] = str(payload["id"])
    meta = [m for m in payload["meta_data"] if not m["key"].startswith("parcours_")]
    if consent is not None:
        meta.append({"id": 9001, "key": "parcours_marketing_consent", "value": consent})
    payload["meta_data"] = meta
    return json.dumps(payload, ensure_ascii=False).encode()


def new_customer_id() -> int:
    return uuid.uuid4().int % 10**8 + 1


def contact_events(local: RunningLocal, email: str) -> list[dict[str, Any]]:
    ids = local.physical_ids()
    dynamodb = local.client("dynamodb")
    identity = dynamodb.get_item(TableName=ids["IdentitiesTable"], Key={"identity": {"S": f"email#{email}"}})
    if "Item" not in identity:
        return []
    items: list[dict[str, Any]] = dynamodb.query(
        TableName=ids["EventsTable"],
        KeyConditionExpression="contact_id = :c",
        ExpressionAttributeValues={":c": identity["Item"]["contact_id"]},
        ConsistentRead=True,
    )["Items"]
    return items


def unattributed(local: RunningLocal) -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = local.client("dynamodb").query(
        TableName=local.physical_ids()["EventsTable"],
        KeyConditionExpression="contact_id = :k",
        ExpressionAttributeValues={":k": {"S": "_unattributed#woocommerce"}},
        ConsistentRead=True,
    )["Items"]
    return items


def steps(local: RunningLocal, email: str, scenario: str) -> list[str]:
    return [m["step"] for m in local.outbox(to=email) if m["scenario"] == scenario]


def test_an_opted_in_customer_s_order_starts_the_post_purchase_series_once(local: RunningLocal) -> None:
    # Given a new WooCommerce customer (core WooCommerce says nothing of consent) who ticks the shop's opt-in box
    email, customer_id = unique_email("woo"), new_customer_id()
    created = post_woocommerce(
        local.api_url, "customer.created", resource("customer-created.json", email, customer_id), WOOCOMMERCE_SECRET
    )
    order_id = new_customer_id()
    order = resource("order-created.json", email, customer_id, consent="yes", order_id=order_id)
    ordered = at_a_whole_second(local)

    # When the shop delivers order.created, then delivers it again (a new delivery id, the same change)
    first = post_woocommerce(local.api_url, "order.created", order, WOOCOMMERCE_SECRET)
    again = post_woocommerce(local.api_url, "order.created", order, WOOCOMMERCE_SECRET)

    # Then all are acknowledged, and the post-purchase series thanks the customer for this order, once
    assert (created.status, first.status, again.status) == (202, 202, 202)
    assert (created.body["type"], first.body["type"]) == ("contact.subscribed", "order.placed")
    assert first.body["event_id"] == again.body["event_id"]
    local.advance(seconds=86400)  # a day, before J+3's email: a duplicate thank-you would show by now
    assert steps(local, email, "post-purchase") == ["e1-thanks"]
    [thanks] = [m for m in local.outbox(to=email) if m["step"] == "e1-thanks"]
    assert sent_at(thanks) == ordered
    assert thanks["subject"] == f"Merci pour votre commande #{order_id} !"
    assert "Carnet A5 pointillé · Kraft" in thanks["text"]
    assert "14.95 EUR" in thanks["text"]
    assert [e["type"]["S"] for e in contact_events(local, email)].count("order.placed") == 1


def test_an_order_without_the_opt_in_field_sends_no_marketing_email(local: RunningLocal) -> None:
    email = unique_email("woo-guest")
    order = resource("order-created.json", email, 0, consent=None)  # a guest, without the shop's field
    answer = post_woocommerce(local.api_url, "order.created", order, WOOCOMMERCE_SECRET)
    assert answer.status == 202
    assert contact_events(local, email)  # the buyer is kept...
    local.advance(seconds=86400)  # a day, in which the post-purchase series would have thanked them
    assert local.outbox(to=email) == []  # ...but not mailed


def test_every_update_of_a_paid_order_is_one_payment(local: RunningLocal) -> None:
    email, customer_id = unique_email("woo-paid"), new_customer_id()
    paid = resource("order-updated-paid.json", email, customer_id, consent="yes")
    completed = json.loads(paid)
    completed["status"], completed["date_modified_gmt"] = "completed", "2026-11-28T09:00:00"

    answers = [
        post_woocommerce(local.api_url, "order.updated", paid, WOOCOMMERCE_SECRET),
        post_woocommerce(local.api_url, "order.updated", json.dumps(completed).encode(), WOOCOMMERCE_SECRET),
    ]

    assert [(a.status, a.body["type"]) for a in answers] == [(202, "order.paid"), (202, "order.paid")]
    assert [e["type"]["S"] for e in contact_events(local, email)] == ["order.paid"]


@pytest.mark.parametrize("signature", [None, "", "forged-signature"], ids=["absent", "empty", "forged"])
def test_a_wrong_or_missing_signature_is_401_and_nothing_is_recorded(
    local: RunningLocal, signature: str | None
) -> None:
    email = unique_email("woo-mallory")
    body = resource("order-created.json", email, new_customer_id(), consent="yes")
    headers = woocommerce_headers(body, "order.created", WOOCOMMERCE_SECRET)
    if signature is None:
        del headers["X-WC-Webhook-Signature"]
    else:
        headers["X-WC-Webhook-Signature"] = signature
    answer = post(local.api_url + URL_PATH, body, headers)
    assert answer.status == 401
    assert "X-WC-Webhook-Signature" in answer.body["error"]
    assert not identity_exists(local, email)


def test_a_body_signed_with_another_secret_is_401(local: RunningLocal) -> None:
    email = unique_email("woo-other")
    body = resource("order-created.json", email, new_customer_id(), consent="yes")
    assert post_woocommerce(local.api_url, "order.created", body, "not-our-secret").status == 401
    assert not identity_exists(local, email)


def test_the_activation_ping_is_200_and_enqueues_nothing(local: RunningLocal) -> None:
    webhook_id = str(new_customer_id())
    answer = post_woocommerce_ping(local.api_url, webhook_id)
    assert answer.status == 200
    assert "event_id" not in answer.body
    assert not any(webhook_id in item["at_id"]["S"] for item in unattributed(local))


def test_an_unknown_topic_is_accepted_and_recorded_without_effect(local: RunningLocal) -> None:
    webhook_id = str(new_customer_id())
    body = sample("woocommerce/product-created.json")
    answer = post_woocommerce(local.api_url, "product.created", body, WOOCOMMERCE_SECRET, webhook_id)
    assert answer.status == 202
    assert answer.body["type"] == "unrecognised"
    key = f"#woocommerce#{webhook_id}#118#2026-11-24T13:20:31"
    [item] = [i for i in unattributed(local) if i["at_id"]["S"].endswith(key)]
    assert item["type"]["S"] == "unrecognised"
    assert json.loads(item["properties"]["S"])["topic"] == "product.created"


def test_a_signed_body_that_is_not_json_is_400(local: RunningLocal) -> None:
    answer = post_woocommerce(local.api_url, "order.created", b"<xml>nope</xml>", WOOCOMMERCE_SECRET)
    assert answer.status == 400
    assert "not JSON" in answer.body["error"]


def test_a_signed_delivery_without_its_topic_is_400_naming_the_header(local: RunningLocal) -> None:
    body = resource("order-created.json", unique_email("woo-topic"), new_customer_id())
    headers = woocommerce_headers(body, "order.created", WOOCOMMERCE_SECRET)
    del headers["X-WC-Webhook-Topic"]
    answer = post(local.api_url + URL_PATH, body, headers)
    assert answer.status == 400
    assert "X-WC-Webhook-Topic" in answer.body["error"]


def test_a_body_over_256_kib_is_413(local: RunningLocal) -> None:
    body = json.dumps({"id": 1, "padding": "x" * (256 * 1024)}).encode()
    answer = post_woocommerce(local.api_url, "order.created", body, WOOCOMMERCE_SECRET)
    assert answer.status == 413


def test_a_body_not_declared_as_json_is_415(local: RunningLocal) -> None:
    body = resource("order-created.json", unique_email("woo-xml"), new_customer_id())
    headers = woocommerce_headers(body, "order.created", WOOCOMMERCE_SECRET)
    headers["Content-Type"] = "text/xml"
    answer = post(local.api_url + URL_PATH, body, headers)
    assert answer.status == 415
    assert "application/json" in answer.body["error"]
