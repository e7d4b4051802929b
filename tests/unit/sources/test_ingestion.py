import json
from typing import Any

import boto3
import pytest
from moto import mock_aws

from shared.clock import Clock
from shared.events import CONTACT_SUBSCRIBED
from shared.settings import Settings
from shared.sources import ingestion
from shared.sources.signatures import shopify_signature, woocommerce_signature
from tests.conftest import sample

SECRET = "app-secret"
BODY = sample("shopify/customers-create.json")


def headers(body: bytes, signature: str | None = None) -> dict[str, str]:
    return {
        "content-type": "application/json",
        "x-shopify-topic": "customers/create",
        "x-shopify-event-id": "evt-42",
        "x-shopify-hmac-sha256": signature if signature is not None else shopify_signature(body, SECRET),
    }


def test_a_signed_delivery_is_normalised() -> None:
    event = ingestion.receive_shopify(BODY, headers(BODY), SECRET, Clock())
    assert event.type == CONTACT_SUBSCRIBED


@pytest.mark.parametrize("signature", ["", "bm90IGEgc2lnbmF0dXJl", shopify_signature(BODY, "wrong-secret")])
def test_a_bad_or_missing_signature_is_401(signature: str) -> None:
    with pytest.raises(ingestion.Rejected) as rejected:
        ingestion.receive_shopify(BODY, headers(BODY, signature), SECRET, Clock())
    assert rejected.value.status == 401
    assert "X-Shopify-Hmac-Sha256" in rejected.value.reason


@pytest.mark.parametrize("content_type", ["", "text/plain", "application/x-www-form-urlencoded"])
def test_a_body_that_is_not_declared_json_is_415(content_type: str) -> None:
    with pytest.raises(ingestion.Rejected) as rejected:
        ingestion.receive_shopify(BODY, {**headers(BODY), "content-type": content_type}, SECRET, Clock())
    assert rejected.value.status == 415
    assert "application/json" in rejected.value.reason


def test_a_json_content_type_with_a_charset_is_accepted() -> None:
    event = ingestion.receive_shopify(
        BODY, {**headers(BODY), "content-type": "application/json; charset=utf-8"}, SECRET, Clock()
    )
    assert event.type == CONTACT_SUBSCRIBED


def test_the_signature_is_checked_before_the_body_is_parsed() -> None:
    with pytest.raises(ingestion.Rejected) as rejected:
        ingestion.receive_shopify(b"not json", headers(b"not json", "forged"), SECRET, Clock())
    assert rejected.value.status == 401


def test_a_signed_body_that_is_not_json_is_400() -> None:
    body = b"{not json"
    with pytest.raises(ingestion.Rejected) as rejected:
        ingestion.receive_shopify(body, headers(body), SECRET, Clock())
    assert rejected.value.status == 400
    assert "not JSON" in rejected.value.reason


def test_a_body_over_256_kib_is_413() -> None:
    body = json.dumps({"padding": "x" * (256 * 1024)}).encode()
    with pytest.raises(ingestion.Rejected) as rejected:
        ingestion.receive_shopify(body, headers(body), SECRET, Clock())
    assert rejected.value.status == 413


def events_queue(environ: dict[str, str]) -> tuple[Any, str, Settings]:
    """The events FIFO queue (within mock_aws), its URL, and settings that point at it."""
    sqs = boto3.client("sqs", region_name="eu-west-3")
    url = sqs.create_queue(QueueName="parcours-events.fifo", Attributes={"FifoQueue": "true"})["QueueUrl"]
    return sqs, url, Settings.from_environ({**environ, "PARCOURS_QUEUE_URL": url})


@mock_aws
def test_events_are_queued_by_contact_and_deduplicated_on_the_event_id(
    aws_credentials: None, environ: dict[str, str]
) -> None:
    # Given a FIFO queue
    sqs, url, settings = events_queue(environ)
    event = ingestion.receive_shopify(BODY, headers(BODY), SECRET, Clock())

    # When the same event is enqueued twice
    ingestion.enqueue(event, settings)
    ingestion.enqueue(event, settings)

    # Then one message waits, carrying the normalised event
    messages = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10, AttributeNames=["All"])["Messages"]
    assert len(messages) == 1
    assert json.loads(messages[0]["Body"])["event_id"] == "shopify#evt-42"
    assert messages[0]["Attributes"]["MessageGroupId"] != "shopify"


@mock_aws
def test_what_parcours_emits_is_one_link_further_and_nothing_past_the_chain_limit_is_emitted(
    aws_credentials: None, environ: dict[str, str], caplog: pytest.LogCaptureFixture
) -> None:
    from dataclasses import replace

    sqs, url, settings = events_queue(environ)
    source = ingestion.receive_shopify(BODY, headers(BODY), SECRET, Clock())
    own = replace(source, event_id="parcours#score.changed#x", type="score.changed", source="parcours", topic="scoring")

    def chains() -> list[int]:
        messages = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10).get("Messages", [])
        for message in messages:
            sqs.delete_message(QueueUrl=url, ReceiptHandle=message["ReceiptHandle"])
        return [json.loads(m["Body"]).get("chain", 0) for m in messages]

    # What a source sends starts a chain: 0, and its body says nothing of it
    ingestion.enqueue(source, settings)
    assert chains() == [0]
    # What parcours emits while handling an event of chain 3 is at 4, held or not
    with ingestion.caused_by(3) as chain, ingestion.held() as kept:
        ingestion.enqueue(own, settings)
    for linked in kept:  # queued after the processing's transaction, outside its cause
        ingestion.enqueue(linked, settings)
    assert (chains(), chain.cut) == ([4], 0)
    # At the limit, nothing more is emitted: counted, and logged without personal data
    limit = ingestion.CHAIN_LIMIT
    with caplog.at_level("WARNING"), ingestion.caused_by(limit) as chain:
        ingestion.enqueue(replace(own, event_id="parcours#score.changed#y"), settings)
        ingestion.enqueue(source, settings)  # a source's event is never cut: it is no consequence
    assert (chains(), chain.cut) == ([0], 1)
    assert f"causal chain reached {limit} events (score.changed, topic scoring)" in caplog.text
    assert "example.com" not in caplog.text


@mock_aws
def test_events_emitted_while_an_event_is_decided_are_kept_not_queued(
    aws_credentials: None, environ: dict[str, str]
) -> None:
    # Given a FIFO queue and an event emitted while an event is decided
    sqs, url, settings = events_queue(environ)
    event = ingestion.receive_shopify(BODY, headers(BODY), SECRET, Clock())

    def waiting() -> int:
        return int(
            sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["All"])["Attributes"]["ApproximateNumberOfMessages"]
        )

    with ingestion.held() as kept:
        ingestion.enqueue(event, settings)

    # Then it is kept for the processing's mark, and nothing is queued (the processing queues it after its
    # transaction, from the mark: nothing is written, nothing is told, when the decision fails)
    assert [e.event_id for e in kept] == [event.event_id]
    assert waiting() == 0


@mock_aws
def test_a_queue_that_refuses_the_event_is_reported_as_unavailable(
    aws_credentials: None, environ: dict[str, str]
) -> None:
    settings = Settings.from_environ(environ)  # the queue was never created
    event = ingestion.receive_shopify(BODY, headers(BODY), SECRET, Clock())
    with pytest.raises(ingestion.QueueUnavailable):
        ingestion.enqueue(event, settings)


WC_SECRET = "wc-secret"
WC_ORDER = sample("woocommerce/order-created.json")


def wc_headers(body: bytes, signature: str | None = None, **extra: str) -> dict[str, str]:
    given = {
        "content-type": "application/json",
        "x-wc-webhook-topic": "order.created",
        "x-wc-webhook-id": "14",
        "x-wc-webhook-delivery-id": "9f2c4e1a7b",
        "x-wc-webhook-signature": woocommerce_signature(body, WC_SECRET) if signature is None else signature,
        **extra,
    }
    return {name: value for name, value in given.items() if value != "-"}


def wc_rejection(body: bytes, given: dict[str, str]) -> ingestion.Rejected:
    with pytest.raises(ingestion.Rejected) as rejected:
        ingestion.receive_woocommerce(body, given, WC_SECRET, Clock())
    return rejected.value


def test_a_signed_woocommerce_delivery_is_normalised() -> None:
    event = ingestion.receive_woocommerce(WC_ORDER, wc_headers(WC_ORDER), WC_SECRET, Clock())
    assert event is not None
    assert (event.type, event.event_id) == ("order.placed", "woocommerce#order.placed#727")


@pytest.mark.parametrize(
    "content_type", ["application/x-www-form-urlencoded", "application/x-www-form-urlencoded; charset=UTF-8"]
)
def test_the_woocommerce_activation_ping_is_answered_without_an_event(content_type: str) -> None:
    ping = sample("woocommerce/ping.txt")
    assert ingestion.receive_woocommerce(ping, {"content-type": content_type}, WC_SECRET, Clock()) is None


@pytest.mark.parametrize(
    ("body", "content_type"),
    [
        (b"webhook_id=14&topic=order.created", "application/x-www-form-urlencoded"),
        (b"webhook_id=", "application/x-www-form-urlencoded"),
        (b"webhook_id=14", "text/plain"),
    ],
)
def test_a_form_body_that_is_not_the_ping_is_415(body: bytes, content_type: str) -> None:
    rejected = wc_rejection(body, {"content-type": content_type})
    assert rejected.status == 415
    assert "application/json" in rejected.reason


@pytest.mark.parametrize(
    "signature", ["-", "", "bm90IGEgc2lnbmF0dXJl", woocommerce_signature(WC_ORDER, "wrong-secret")]
)
def test_a_bad_or_missing_woocommerce_signature_is_401(signature: str) -> None:
    rejected = wc_rejection(WC_ORDER, wc_headers(WC_ORDER, signature))
    assert rejected.status == 401
    assert "X-WC-Webhook-Signature" in rejected.reason


def test_a_woocommerce_signature_is_checked_before_the_body_is_parsed() -> None:
    assert wc_rejection(b"{not json", wc_headers(b"{not json", "forged")).status == 401


@pytest.mark.parametrize(
    ("body", "extra", "status", "reason"),
    [
        (b"{not json", {}, 400, "not JSON"),
        (b"[]", {}, 400, "JSON object"),
        (WC_ORDER, {"x-wc-webhook-topic": "-"}, 400, "X-WC-Webhook-Topic"),
        (WC_ORDER, {"x-wc-webhook-id": "-"}, 400, "X-WC-Webhook-ID"),
        (WC_ORDER, {"content-type": "text/xml"}, 415, "application/json"),
        (json.dumps({"padding": "x" * (256 * 1024)}).encode(), {}, 413, "larger"),
        (b"webhook_id=" + b"1" * (256 * 1024), {"content-type": "application/x-www-form-urlencoded"}, 413, "larger"),
    ],
    ids=["not-json", "not-an-object", "no-topic", "no-webhook-id", "media-type", "too-large", "too-large-ping"],
)
def test_each_bad_woocommerce_delivery_is_refused_by_name(
    body: bytes, extra: dict[str, str], status: int, reason: str
) -> None:
    rejected = wc_rejection(body, wc_headers(body, **extra))
    assert rejected.status == status
    assert reason in rejected.reason
