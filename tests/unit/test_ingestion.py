import json

import boto3
import pytest
from moto import mock_aws

from shared import ingestion
from shared.clock import Clock
from shared.events import CONTACT_SUBSCRIBED
from shared.settings import Settings
from shared.signatures import shopify_signature
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


@mock_aws
def test_events_are_queued_by_contact_and_deduplicated_on_the_event_id(
    aws_credentials: None, environ: dict[str, str]
) -> None:
    # Given a FIFO queue
    sqs = boto3.client("sqs", region_name="eu-west-3")
    url = sqs.create_queue(QueueName="parcours-events.fifo", Attributes={"FifoQueue": "true"})["QueueUrl"]
    settings = Settings.from_environ({**environ, "PARCOURS_QUEUE_URL": url})
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
def test_a_queue_that_refuses_the_event_is_reported_as_unavailable(
    aws_credentials: None, environ: dict[str, str]
) -> None:
    settings = Settings.from_environ(environ)  # the queue was never created
    event = ingestion.receive_shopify(BODY, headers(BODY), SECRET, Clock())
    with pytest.raises(ingestion.QueueUnavailable):
        ingestion.enqueue(event, settings)
