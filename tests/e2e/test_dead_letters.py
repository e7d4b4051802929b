"""`parcours dlq list|redrive` against `parcours local`: a fixed event goes back to the queue and acts once."""

from __future__ import annotations

import json
import uuid
from typing import Any

import pytest

from infra import cli
from infra.localprocess import RunningLocal
from shared import deadletters
from shared.events import Event
from shared.sources import shopify
from shared.sources.ingestion import group_and_dedup_ids
from tests.conftest import sample_json


def dead_letter(local: RunningLocal, event: Event) -> None:
    """What the process function writes when DynamoDB failed on every receive (an outage, since over)."""
    group, _ = group_and_dedup_ids(event)
    local.client("sqs").send_message(
        QueueUrl=local.physical_ids()["EventsDeadLetterQueue"],
        MessageBody=event.to_json(),
        MessageGroupId=group,
        MessageDeduplicationId=uuid.uuid4().hex,
        MessageAttributes={
            name: {"DataType": "String", "StringValue": value}
            for name, value in {
                deadletters.KIND: deadletters.RETRIES_EXHAUSTED,
                deadletters.ERROR_TYPE: "StorageError",
                deadletters.ERROR_MESSAGE: "ProvisionedThroughputExceededException",
                deadletters.EVENT_ID: event.event_id,
                deadletters.EVENT_TYPE: event.type,
                deadletters.EVENT_SOURCE: event.source,
                deadletters.FAILED_AT: local.now().isoformat(),
            }.items()
        },
    )


def history(local: RunningLocal, email: str) -> list[dict[str, Any]]:
    ids = local.physical_ids()
    dynamodb = local.client("dynamodb")
    identity = dynamodb.get_item(TableName=ids["IdentitiesTable"], Key={"identity": {"S": f"email#{email}"}})
    if "Item" not in identity:
        return []
    contact = identity["Item"]["contact_id"]["S"]
    items = dynamodb.query(
        TableName=ids["EventsTable"],
        KeyConditionExpression="contact_id = :c",
        ExpressionAttributeValues={":c": {"S": contact}},
    )["Items"]
    return list(items)


def dlq(local: RunningLocal, capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str]:
    code = cli.main(["dlq", *args, "--endpoint-url", local.aws_endpoint, "--region", "eu-west-3"])
    return code, capsys.readouterr().out


def test_a_redriven_event_is_processed_once(local: RunningLocal, capsys: pytest.CaptureFixture[str]) -> None:
    # Given a new customer's event that waits in the DLQ
    email = f"dora.{uuid.uuid4().hex[:8]}@example.com"
    payload = {**sample_json("shopify/customers-create.json"), "email": email, "id": uuid.uuid4().int % 10**13}
    event_id = uuid.uuid4().hex
    headers = {"x-shopify-topic": "customers/create", "x-shopify-event-id": event_id}
    event = shopify.to_event(headers, payload, local.now())
    dead_letter(local, event)

    # When the operator lists the DLQ
    code, listed = dlq(local, capsys, "list")

    # Then they see the event's id, type, source and reason, and nothing personal
    assert code == 0
    [row] = [line for line in listed.splitlines() if event.event_id in line]
    assert "contact.subscribed" in row
    assert "shopify" in row
    assert "retries-exhausted: StorageError: ProvisionedThroughputExceededException" in row
    assert email not in listed
    assert payload["first_name"] not in listed
    assert history(local, email) == []

    # When they redrive it, and the same event lands in the DLQ again and is redriven again
    assert dlq(local, capsys, "redrive", "--id", event.event_id)[0] == 0
    local.advance(seconds=0)  # the event queue's poller has processed it
    assert len(history(local, email)) == 1
    dead_letter(local, event)
    code, redriven = dlq(local, capsys, "redrive", "--id", event.event_id)
    local.advance(seconds=0)

    # Then it was processed once: one contact, one event in its history, and the DLQ no longer holds it
    assert code == 0
    assert "1 message(s) sent back" in redriven
    assert [json.loads(item["properties"]["S"])["topic"] for item in history(local, email)] == ["customers/create"]
    assert event.event_id not in dlq(local, capsys, "list")[1]


def test_redriving_an_unknown_id_says_so(local: RunningLocal, capsys: pytest.CaptureFixture[str]) -> None:
    code = cli.main(["dlq", "redrive", "--id", "shopify#nothing", "--endpoint-url", local.aws_endpoint])
    assert code == 1
    assert "no message 'shopify#nothing' in the dead-letter queue" in capsys.readouterr().err


def test_a_poison_message_on_the_events_queue_shows_in_the_dlq_with_its_reason(
    local: RunningLocal, capsys: pytest.CaptureFixture[str]
) -> None:
    marker = uuid.uuid4().hex
    local.client("sqs").send_message(
        QueueUrl=local.physical_ids()["EventsQueue"],
        MessageBody=json.dumps({"event_id": f"shopify#{marker}", "type": "order.placed", "source": "shopify"}),
        MessageGroupId=marker,
        MessageDeduplicationId=marker,
    )

    local.advance(seconds=0)  # the events queue's poller has met it
    listed = dlq(local, capsys, "list")[1]

    [row] = [line for line in listed.splitlines() if marker in line]
    assert "order.placed" in row
    assert "unprocessable: Unprocessable: field topic is missing, expected non-empty text" in row
