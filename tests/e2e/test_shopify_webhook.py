"""A shop's webhooks over real HTTP against `parcours local`, read back from /_local/outbox."""

from __future__ import annotations

import json
import urllib.request
import uuid
from datetime import datetime, timedelta
from typing import Any

import pytest

from infra.localprocess import RunningLocal
from infra.webhook_client import Answer, post, post_shopify, shopify_headers
from tests.conftest import SHOPIFY_SECRET, sample


def customer(email: str, consent: str = "subscribed") -> bytes:
    payload: dict[str, Any] = json.loads(sample("shopify/customers-create.json"))
    payload["email"] = email
    payload["id"] = uuid.uuid4().int % 10**13
    payload["email_marketing_consent"]["state"] = consent
    return json.dumps(payload).encode()


def unique_email(prefix: str) -> str:
    return f"{prefix}.{uuid.uuid4().hex[:8]}@example.com"


def sent_at(message: dict[str, Any]) -> datetime:
    """When the message went out, to the second (an email's Date header has no more)."""
    return datetime.fromisoformat(message["sent_at"])


def at_a_whole_second(local: RunningLocal) -> datetime:
    """The runtime's now, moved on to the next whole second if it stands between two (a timer fires at its own
    instant, 1 ms past one for a queue's message): the instant a test's events happen at, which its sends, whose
    times have only seconds, are expected from."""
    now = local.now()
    if now.microsecond:
        now = now.replace(microsecond=0) + timedelta(seconds=1)
        local.advance(to=now)
    return now


def identity_exists(local: RunningLocal, email: str) -> bool:
    table = local.physical_ids()["IdentitiesTable"]
    item = local.client("dynamodb").get_item(TableName=table, Key={"identity": {"S": f"email#{email}"}})
    return "Item" in item


def test_a_new_shopify_customer_receives_the_welcome_series_once(local: RunningLocal) -> None:
    # Given a customer who subscribed to marketing at the shop
    email = unique_email("camille")
    body = customer(email)
    event_id = uuid.uuid4().hex
    subscribed = at_a_whole_second(local)

    # When Shopify delivers customers/create, then delivers it again (at-least-once delivery)
    first = post_shopify(local.api_url, "customers/create", body, SHOPIFY_SECRET, event_id)
    again = post_shopify(local.api_url, "customers/create", body, SHOPIFY_SECRET, event_id)

    # Then both deliveries are acknowledged, and the four welcome emails go out once, in order
    assert (first.status, again.status) == (202, 202)
    assert first.body["type"] == "contact.subscribed"
    # up to J+8, the last send (a duplicate series would send its emails at the same moments)
    local.advance(to=subscribed + timedelta(days=8))
    messages = local.outbox(to=email)
    assert [(m["step"], sent_at(m) - subscribed) for m in messages] == [
        ("e1-welcome", timedelta(0)),
        ("e2-value", timedelta(days=2)),
        ("e3-social-proof", timedelta(days=5)),
        ("e4-offer", timedelta(days=8)),
    ]
    assert {m["scenario"] for m in messages} == {"welcome"}
    assert messages[0]["subject"] == "Bienvenue, Camille !"
    assert messages[0]["from"] == "La Boutique <bonjour@boutique.example>"
    headers = messages[0]["headers"]
    assert headers["List-Unsubscribe"].startswith(f"<{local.api_url}/unsubscribe?t=")
    assert headers["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    assert "12 rue des Artisans" in messages[0]["text"]


def test_a_customer_without_marketing_consent_gets_no_marketing_email(local: RunningLocal) -> None:
    email = unique_email("dominique")
    answer = post_shopify(
        local.api_url, "customers/create", customer(email, "not_subscribed"), SHOPIFY_SECRET, uuid.uuid4().hex
    )
    assert answer.status == 202
    assert identity_exists(local, email)  # the contact is kept...
    local.advance(seconds=86400)  # a day, in which the welcome series would have sent its first email
    assert local.outbox(to=email) == []  # ...but not mailed


@pytest.mark.parametrize(
    "signature", [None, "", "AAAA", "forged-signature"], ids=["absent", "empty", "short", "forged"]
)
def test_a_wrong_or_missing_signature_is_401_and_nothing_is_enqueued(
    local: RunningLocal, signature: str | None
) -> None:
    email = unique_email("mallory")
    body = customer(email)
    headers = shopify_headers(body, "customers/create", SHOPIFY_SECRET, uuid.uuid4().hex)
    if signature is None:
        del headers["X-Shopify-Hmac-Sha256"]
    else:
        headers["X-Shopify-Hmac-Sha256"] = signature
    answer = post(f"{local.api_url}/webhooks/shopify", body, headers)
    assert answer.status == 401
    assert "X-Shopify-Hmac-Sha256" in answer.body["error"]
    assert not identity_exists(local, email)


def test_a_body_signed_with_another_secret_is_401(local: RunningLocal) -> None:
    email = unique_email("other")
    answer = post_shopify(local.api_url, "customers/create", customer(email), "not-our-secret", uuid.uuid4().hex)
    assert answer.status == 401
    assert not identity_exists(local, email)


def test_a_signed_body_that_is_not_json_is_400(local: RunningLocal) -> None:
    answer = post_shopify(local.api_url, "customers/create", b"<xml>nope</xml>", SHOPIFY_SECRET, uuid.uuid4().hex)
    assert answer.status == 400
    assert "not JSON" in answer.body["error"]


def test_an_unknown_topic_is_accepted_and_recorded_without_effect(local: RunningLocal) -> None:
    event_id = uuid.uuid4().hex
    answer = post_shopify(
        local.api_url, "products/create", sample("shopify/products-create.json"), SHOPIFY_SECRET, event_id
    )
    assert answer.status == 202
    assert answer.body["type"] == "unrecognised"
    table = local.physical_ids()["EventsTable"]
    items = local.client("dynamodb").query(
        TableName=table,
        KeyConditionExpression="contact_id = :k",
        ExpressionAttributeValues={":k": {"S": "_unattributed#shopify"}},
    )["Items"]
    assert any(item["at_id"]["S"].endswith(f"#shopify#{event_id}") for item in items)
    assert local.outbox(to="camille.martin@example.com") == []


def test_a_binary_body_is_base64_encoded_by_the_api_and_still_verifies(local: RunningLocal) -> None:
    # Given a signed body that is not UTF-8 (the API passes it on base64-encoded)
    body = customer(unique_email("binary")).replace(b"Camille", b"Camille \xe9")
    headers = shopify_headers(body, "customers/create", SHOPIFY_SECRET, uuid.uuid4().hex)

    # Then the signature verifies over the decoded bytes (no 401), and the body is refused as not JSON
    answer = post(f"{local.api_url}/webhooks/shopify", body, headers)
    assert answer.status == 400
    assert "not JSON" in answer.body["error"]


def test_a_body_not_declared_as_json_is_415(local: RunningLocal) -> None:
    body = customer(unique_email("xml"))
    headers = shopify_headers(body, "customers/create", SHOPIFY_SECRET, uuid.uuid4().hex)
    headers["Content-Type"] = "application/octet-stream"
    answer = post(f"{local.api_url}/webhooks/shopify", body, headers)
    assert answer.status == 415
    assert "application/json" in answer.body["error"]


def test_an_unknown_route_is_404(local: RunningLocal) -> None:
    assert post(f"{local.api_url}/webhooks/nowhere", b"{}", {"Content-Type": "application/json"}) == Answer(
        404, {"message": "Not Found"}
    )


def test_the_outbox_page_lists_what_was_sent(local: RunningLocal) -> None:
    with urllib.request.urlopen(f"{local.api_url}/_local/outbox.html", timeout=10) as response:
        page = response.read().decode()
        assert response.headers["content-type"].startswith("text/html")
    assert page.startswith("<!doctype html>")
    assert "Outbox (" in page


def test_a_checkout_without_email_nor_customer_is_recorded_but_creates_no_contact(local: RunningLocal) -> None:
    # Given a guest checkout before the buyer typed an email
    payload = json.loads(sample("shopify/checkouts-create.json"))
    payload["email"] = None
    payload["customer"] = None
    event_id = uuid.uuid4().hex

    # When Shopify delivers it
    answer = post_shopify(local.api_url, "checkouts/create", json.dumps(payload).encode(), SHOPIFY_SECRET, event_id)

    # Then it is accepted and kept in the source's own bucket, and no one is created nor mailed
    assert (answer.status, answer.body["type"]) == (202, "checkout.started")

    def recorded() -> list[dict[str, Any]]:
        items: list[dict[str, Any]] = local.client("dynamodb").query(
            TableName=local.physical_ids()["EventsTable"],
            KeyConditionExpression="contact_id = :k",
            ExpressionAttributeValues={":k": {"S": "_unattributed#shopify"}},
        )["Items"]
        return [item for item in items if item["at_id"]["S"].endswith(f"#shopify#{event_id}")]

    assert len(recorded()) == 1  # before the answer: the process function runs within the queue's SendMessage
