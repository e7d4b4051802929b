"""Poison messages and transient failures in the process function: the DLQ with a reason, the batch goes on."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import boto3
import pytest

from infra.local import InvocationContext
from shared import deadletters
from shared.clock import Clock
from shared.events import Event
from shared.settings import get_settings
from shared.sources import shopify
from shared.sources.ingestion import group_and_dedup_ids
from shared.storage import StorageError, tables
from tests.conftest import sample_json

NOW = datetime(2026, 11, 24, 9, 0, tzinfo=UTC)
PASS = json.dumps({"StartAt": "Done", "States": {"Done": {"Type": "Succeed"}}})
QUEUE_ARN = "arn:aws:sqs:eu-west-3:123456789012:parcours-events.fifo"


@pytest.fixture
def handler(aws: dict[str, str], monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    """The process function's handler in moto, with the queues and the environment the template gives it."""
    sqs = boto3.client("sqs", region_name="eu-west-3")
    dlq = sqs.create_queue(QueueName="parcours-events-dlq.fifo", Attributes={"FifoQueue": "true"})["QueueUrl"]
    boto3.client("stepfunctions", region_name="eu-west-3").create_state_machine(
        name="parcours-welcome", definition=PASS, roleArn="arn:aws:iam::123456789012:role/sfn"
    )
    for name, value in {
        **aws,
        "PARCOURS_DEAD_LETTER_QUEUE_URL": dlq,
        "PARCOURS_MAX_RECEIVE_COUNT": "5",
        # As the template sets them; read when the module is first imported, by whichever test comes first.
        "POWERTOOLS_METRICS_NAMESPACE": "parcours",
        "POWERTOOLS_SERVICE_NAME": "parcours",
    }.items():
        monkeypatch.setenv(name, value)
    from functions.process import app

    get_settings.cache_clear()
    app._handle_once.cache_clear()
    yield app.lambda_handler
    get_settings.cache_clear()
    app._handle_once.cache_clear()


def subscribed(email: str, event_id: str) -> Event:
    customer = sum(map(ord, email))  # one Shopify customer per address
    payload = {**sample_json("shopify/customers-create.json"), "email": email, "id": customer}
    return shopify.to_event({"x-shopify-topic": "customers/create", "x-shopify-event-id": event_id}, payload, NOW)


def record(body: str, message_id: str, group: str, receives: int = 1) -> dict[str, Any]:
    return {
        "messageId": message_id,
        "receiptHandle": f"handle-{message_id}",
        "body": body,
        "attributes": {
            "ApproximateReceiveCount": str(receives),
            "SentTimestamp": "1795510800000",
            "ApproximateFirstReceiveTimestamp": "1795510800001",
            "MessageGroupId": group,
            "MessageDeduplicationId": f"dedup-{message_id}",
        },
        "messageAttributes": {},
        "eventSource": "aws:sqs",
        "eventSourceARN": QUEUE_ARN,
        "awsRegion": "eu-west-3",
    }


def queued(event: Event, message_id: str, receives: int = 1) -> dict[str, Any]:
    return record(event.to_json(), message_id, group_and_dedup_ids(event)[0], receives)


def dead_letters() -> list[dict[str, Any]]:
    sqs = boto3.client("sqs", region_name="eu-west-3")
    url = get_settings().dead_letter_queue_url
    assert url is not None
    messages = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10, MessageAttributeNames=["All"])
    return [
        {
            "body": m["Body"],
            **{name: value["StringValue"] for name, value in m.get("MessageAttributes", {}).items()},
        }
        for m in messages.get("Messages", [])
    ]


def known_emails() -> set[str]:
    return {c.email for c in tables(get_settings()).contacts.scan()}


def failing_for(event_id: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """DynamoDB throttles every attempt at this one event."""
    from shared.journeys import processing

    real = processing.process

    def process(event: Event, *args: Any) -> Any:
        if event.event_id == event_id:
            raise StorageError("ProvisionedThroughputExceededException: rate exceeded for camille@example.com")
        return real(event, *args)

    monkeypatch.setattr(processing, "process", process)


def test_a_poison_message_goes_to_the_dlq_with_its_reason_and_the_rest_of_the_batch_goes_on(handler: Any) -> None:
    batch = [
        queued(subscribed("anna@example.com", "evt-a"), "m-1"),
        record('{"event_id": "shopify#evt-p", "type": "contact.subscribed", "source": "shopify", ', "m-2", "g-p"),
        queued(subscribed("bruno@example.com", "evt-b"), "m-3"),
    ]

    answer = handler({"Records": batch}, InvocationContext.of("parcours-ProcessFunction"))

    assert answer["batchItemFailures"] == []
    assert known_emails() == {"anna@example.com", "bruno@example.com"}
    [letter] = dead_letters()
    assert letter["body"] == batch[1]["body"]  # unchanged: a redrive sends it as it came
    assert letter["parcours.reason"] == "unprocessable"
    assert letter["parcours.error.type"] == "Unprocessable"
    assert letter["parcours.error.message"].startswith("body is not JSON")
    assert letter["parcours.message_id"] == "m-2"
    assert "parcours.event.id" not in letter  # unreadable: nothing is guessed


def test_an_event_with_a_field_of_the_wrong_type_is_dead_lettered_with_its_id_type_and_source(handler: Any) -> None:
    event = json.loads(subscribed("anna@example.com", "evt-a").to_json())
    event["contact"]["email"] = 42

    answer = handler(
        {"Records": [record(json.dumps(event), "m-1", "g-a")]}, InvocationContext.of("parcours-ProcessFunction")
    )

    assert answer["batchItemFailures"] == []
    [letter] = dead_letters()
    assert letter["parcours.error.message"] == "field contact.email is a int, expected text"
    assert (letter["parcours.event.id"], letter["parcours.event.type"], letter["parcours.event.source"]) == (
        "shopify#evt-a",
        "contact.subscribed",
        "shopify",
    )
    assert known_emails() == set()


def test_a_transient_failure_is_retried_by_sqs_and_fails_only_its_own_contact(
    handler: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    anna_first, anna_then = subscribed("anna@example.com", "evt-a1"), subscribed("anna@example.com", "evt-a2")
    failing_for(anna_first.event_id, monkeypatch)
    batch = [queued(anna_first, "m-1"), queued(anna_then, "m-2"), queued(subscribed("bruno@example.com", "e"), "m-3")]

    answer = handler({"Records": batch}, InvocationContext.of("parcours-ProcessFunction"))

    # Anna's second event waits behind her first (FIFO order); Bruno's goes on.
    assert answer["batchItemFailures"] == [{"itemIdentifier": "m-1"}, {"itemIdentifier": "m-2"}]
    assert known_emails() == {"bruno@example.com"}
    assert dead_letters() == []


def test_a_transient_failure_on_the_last_receive_goes_to_the_dlq_with_its_reason(
    handler: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    anna = subscribed("anna@example.com", "evt-a")
    failing_for(anna.event_id, monkeypatch)

    answer = handler({"Records": [queued(anna, "m-1", receives=5)]}, InvocationContext.of("parcours-ProcessFunction"))

    assert answer["batchItemFailures"] == []
    [letter] = dead_letters()
    assert letter["parcours.reason"] == "retries-exhausted"
    assert letter["parcours.error.type"] == "StorageError"
    assert letter["parcours.error.message"] == "ProvisionedThroughputExceededException: rate exceeded for …"
    assert letter["parcours.receive_count"] == "5"
    assert letter["parcours.first_failed_at"] == "2026-11-24T09:00:00.001000+00:00"  # its first receive
    assert letter["parcours.event.id"] == "shopify#evt-a"
    assert json.loads(letter["body"])["event_id"] == "shopify#evt-a"


def test_a_redelivered_event_is_processed_once(handler: Any) -> None:
    anna = subscribed("anna@example.com", "evt-a")
    handler({"Records": [queued(anna, "m-1")]}, InvocationContext.of("parcours-ProcessFunction"))
    answer = handler({"Records": [queued(anna, "m-2")]}, InvocationContext.of("parcours-ProcessFunction"))

    assert answer["batchItemFailures"] == []
    [contact] = tables(get_settings()).contacts.scan()
    assert len(list(tables(get_settings()).events.query(contact.contact_id))) == 1


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        ("not json", "body is not JSON (line 1 column 1: Expecting value)"),
        ("[1, 2]", "body is a JSON list, not an event object"),
        ('{"type": "x"}', "field event_id is missing, expected non-empty text"),
        ('{"event_id": "", "type": "x"}', "field event_id is a str, expected non-empty text"),
        ('{"event_id": "e", "surprise": 1}', "event has unknown field(s) surprise"),
        ("PROPERTIES", "field properties is a list, expected an object"),
        ("CONTACT_TEXT", "contact has unknown field(s) nickname"),
        ("CONTACT_LIST", "field contact is a list, expected an object"),
        ("CONSENT", "field contact.email_consent.state is missing, expected text"),
        ("TRUST", "field contact.identity_trusted is a str, expected true or false"),
        (
            '{"event_id": "e", "type": "t", "source": "s", "topic": "t", "occurred_at": "a", "received_at": "b", '
            '"chain": "1"}',
            "field chain is a str, expected a whole number >= 0",
        ),
        ("EXPLICIT", "field contact.email_consent.explicit is a str, expected true or false"),
    ],
)
def test_bodies_that_are_not_events_are_unprocessable_and_the_reason_names_the_field(body: str, reason: str) -> None:
    event = json.loads(subscribed("anna@example.com", "evt-a").to_json())
    changed = {
        "PROPERTIES": {**event, "properties": []},
        "CONTACT_TEXT": {**event, "contact": {**event["contact"], "nickname": "cam"}},
        "CONTACT_LIST": {**event, "contact": ["anna@example.com"]},
        "CONSENT": {**event, "contact": {**event["contact"], "email_consent": {"level": None}}},
        "TRUST": {**event, "contact": {**event["contact"], "identity_trusted": "yes"}},
        "EXPLICIT": {
            **event,
            "contact": {**event["contact"], "email_consent": {**event["contact"]["email_consent"], "explicit": "no"}},
        },
    }
    with pytest.raises(deadletters.Unprocessable) as raised:
        deadletters.read(json.dumps(changed[body]) if body in changed else body)
    assert str(raised.value) == reason
    assert "anna" not in str(raised.value)


def test_a_valid_event_reads_back_as_itself() -> None:
    event = subscribed("anna@example.com", "evt-a")
    assert deadletters.read(event.to_json()) == event


def test_error_messages_lose_addresses_and_numbers() -> None:
    assert deadletters.scrub("no contact for Anna.B@example.com or +33 6 12 34 56 78") == "no contact for … or …"


def test_the_dlq_command_names_a_stack_it_cannot_read(aws: dict[str, str], capsys: pytest.CaptureFixture[str]) -> None:
    from infra import cli

    assert cli.main(["dlq", "list", "--stack", "shop-prod", "--region", "eu-west-3"]) == 2
    assert "error: cannot read stack 'shop-prod'" in capsys.readouterr().err


def test_the_process_function_knows_the_dlq_and_the_receive_count_the_queue_redrives_after() -> None:
    from infra import samtemplate

    resources = samtemplate.load()["Resources"]
    process = resources["ProcessFunction"]["Properties"]
    redrive = resources["EventsQueue"]["Properties"]["RedrivePolicy"]
    assert process["Environment"]["Variables"]["PARCOURS_MAX_RECEIVE_COUNT"] == redrive["maxReceiveCount"]
    assert process["Environment"]["Variables"]["PARCOURS_DEAD_LETTER_QUEUE_URL"] == {"Ref": "EventsDeadLetterQueue"}
    assert redrive["deadLetterTargetArn"] == {"Fn::GetAtt": ["EventsDeadLetterQueue", "Arn"]}
    assert {"SQSSendMessagePolicy": {"QueueName": {"Fn::GetAtt": ["EventsDeadLetterQueue", "QueueName"]}}} in process[
        "Policies"
    ]


def test_a_message_sqs_moved_itself_lists_with_its_event_and_no_reason(aws: dict[str, str]) -> None:
    from infra import deadletters as dlq

    sqs = boto3.client("sqs", region_name="eu-west-3")
    url = sqs.create_queue(QueueName="parcours-events-dlq.fifo", Attributes={"FifoQueue": "true"})["QueueUrl"]
    event = subscribed("anna@example.com", "evt-a")
    before = Clock().now() - timedelta(milliseconds=1)  # SQS keeps milliseconds
    sqs.send_message(QueueUrl=url, MessageBody=event.to_json(), MessageGroupId="g-a", MessageDeduplicationId="d-a")
    after = Clock().now()

    [letter] = dlq.receive_all(sqs, url)

    assert (letter.event_id, letter.type, letter.source) == ("shopify#evt-a", "contact.subscribed", "shopify")
    assert letter.reason.startswith("moved by SQS after its last receive, no reason recorded")
    assert before <= datetime.fromisoformat(letter.failed_at) <= after  # when it reached the DLQ
    assert "anna" not in dlq.table([letter])
