"""Shopify's customers/data_request answered by the process function: the customer's file in the data requests
bucket, the operator told on the alarm topic with ids only, and the alarm only when it could not be done."""

import json
from dataclasses import replace
from typing import Any

import boto3
import pytest

from shared.clock import Clock
from shared.journeys import processing
from shared.settings import Settings
from shared.storage import tables
from tests.unit.journeys.test_processing import settings, shopify_event

__all__ = ["settings"]  # the fixture, shared with the processing tests

REGION = "eu-west-3"
EMAIL, PHONE = "camille.martin@example.com", "+33612345678"  # the samples' customer


@pytest.fixture
def answering(settings: Settings) -> tuple[Settings, str]:
    """Settings with the bucket and the alarm topic, and a queue subscribed to the topic (what the operator reads)."""
    boto3.client("s3", region_name=REGION).create_bucket(
        Bucket="parcours-data-requests", CreateBucketConfiguration={"LocationConstraint": REGION}
    )
    sns = boto3.client("sns", region_name=REGION)
    sqs = boto3.client("sqs", region_name=REGION)
    topic = sns.create_topic(Name="parcours-alarms")["TopicArn"]
    url = sqs.create_queue(QueueName="operator")["QueueUrl"]
    arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    sns.subscribe(TopicArn=topic, Protocol="sqs", Endpoint=arn, Attributes={"RawMessageDelivery": "true"})
    return replace(settings, data_requests_bucket="parcours-data-requests", alarm_topic_arn=topic), url


def notices(url: str) -> list[str]:
    messages = boto3.client("sqs", region_name=REGION).receive_message(QueueUrl=url, MaxNumberOfMessages=10)
    return [m["Body"] for m in messages.get("Messages", [])]


def the_file(key: str) -> dict[str, Any]:
    body = boto3.client("s3", region_name=REGION).get_object(Bucket="parcours-data-requests", Key=key)["Body"]
    return json.loads(body.read())  # type: ignore[no-any-return]


def data_request(event_id: str = "evt-2") -> Any:
    event = shopify_event("customers-data_request.json", "customers/data_request", event_id)
    return replace(event, properties={**event.properties, "shop": "boutique.myshopify.com"})


def test_a_data_request_for_a_known_customer_writes_their_file_and_tells_the_operator_without_naming_them(
    answering: tuple[Settings, str],
) -> None:
    settings, url = answering
    created = processing.process(shopify_event("customers-create.json"), settings, Clock())

    asked = processing.process(data_request(), settings, Clock())

    assert not asked.compliance  # answered by itself: no alarm
    key = "shopify/boutique.myshopify.com/data-request-9999.json"
    document = the_file(key)
    assert document["stored"] is True
    assert document["request"]["customer_id"] == 7281290412345
    (person,) = document["people"]
    assert person["contact_id"] == created.contact_id
    assert person["stores"]["contacts"][0]["email"] == EMAIL
    assert [e["type"] for e in person["stores"]["events"]] == ["contact.subscribed"]
    (notice,) = notices(url)
    assert f"aws s3 presign s3://parcours-data-requests/{key} --expires-in 3600" in notice
    assert "data_request_id: 9999" in notice
    assert [value for value in (EMAIL, PHONE, "camille", "https://") if value in notice.lower()] == []


def test_a_data_request_for_someone_unknown_writes_a_file_saying_nothing_is_stored(
    answering: tuple[Settings, str],
) -> None:
    settings, url = answering

    asked = processing.process(data_request(), settings, Clock())

    assert not asked.compliance
    document = the_file("shopify/boutique.myshopify.com/data-request-9999.json")
    assert (document["stored"], document["people"]) == (False, [])
    assert "stores nothing about this customer" in document["note"]
    (notice,) = notices(url)
    assert "stored: nothing" in notice
    assert EMAIL not in notice
    assert tables(settings).contacts.count() == 0  # the request creates no one


def test_a_data_request_that_cannot_be_written_is_left_to_the_operator_and_alarmed(
    answering: tuple[Settings, str],
) -> None:
    settings, url = answering
    missing = replace(settings, data_requests_bucket="no-such-bucket")

    asked = processing.process(data_request(), missing, Clock())

    assert asked.compliance  # counted by the handler: ComplianceRequestAlarm
    assert notices(url) == []
    [request] = tables(settings).events.query("_compliance#shopify")  # recorded, ids only, for the operator
    assert request.properties["data_request_id"] == 9999
