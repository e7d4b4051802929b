"""SES events (through SNS) become email.* events on the queue, once, mapped by the message tags."""

import json
from datetime import UTC, datetime
from typing import Any

import boto3
import pytest

from shared.events import Event
from shared.messages import feedback
from shared.settings import Settings

NOW = datetime(2026, 11, 24, 9, 0, tzinfo=UTC)
TAGS = {
    "ses:configuration-set": ["parcours-email"],
    "scenario": ["welcome"],
    "step": ["e1-welcome"],
    "variant": ["b"],
    "contact": ["c0ffee"],
}


def published(ses_type: str, detail: dict[str, Any], key: str = "eventType") -> dict[str, Any]:
    """What SES event publishing sends (`eventType`); the notification shape says `notificationType`."""
    return {
        key: ses_type,
        "mail": {
            "timestamp": "2026-11-24T08:00:00.000Z",
            "messageId": "0102019a-msg",
            "destination": ["camille@example.com"],
            "tags": TAGS,
        },
        ses_type.lower(): detail,
    }


OPEN = published("Open", {"timestamp": "2026-11-24T08:30:00.000Z", "ipAddress": "192.0.2.1", "userAgent": "x"})
CLICK = published(
    "Click",
    {"timestamp": "2026-11-24T08:31:00.000Z", "link": "https://boutique.example/pricing", "linkTags": {}},
    key="notificationType",
)


def test_an_open_becomes_email_opened_for_the_tagged_contact_scenario_step_and_variant() -> None:
    outcome = feedback.to_event(OPEN, NOW)
    assert outcome.status == "queued"
    event = outcome.event
    assert event is not None
    assert (event.type, event.source, event.occurred_at) == ("email.opened", "ses", "2026-11-24T08:30:00.000Z")
    assert event.contact is not None
    assert event.contact.contact_id == "c0ffee"
    assert event.contact.email is None  # the tag identifies the contact; the address in the event is not used
    assert event.properties == {
        "scenario": "welcome",
        "step": "e1-welcome",
        "variant": "b",
        "message_id": "0102019a-msg",
    }
    assert event.event_id == "ses#0102019a-msg#Open#2026-11-24T08:30:00.000Z"


def test_a_click_in_the_notification_shape_becomes_email_clicked_with_its_link() -> None:
    event = feedback.to_event(CLICK, NOW).event
    assert event is not None
    assert event.type == "email.clicked"
    assert event.properties["link"] == "https://boutique.example/pricing"
    assert event.properties["step"] == "e1-welcome"


@pytest.mark.parametrize(
    ("message", "event_type", "extra"),
    [
        (published("Delivery", {"timestamp": "2026-11-24T08:00:02.000Z"}), "email.delivered", {}),
        (
            published("Bounce", {"bounceType": "Permanent", "bounceSubType": "General"}, key="notificationType"),
            "email.bounced",
            {"bounce_type": "Permanent", "bounce_subtype": "General"},
        ),
        (published("Complaint", {"complaintFeedbackType": "abuse"}), "email.complained", {"feedback_type": "abuse"}),
        (published("Reject", {"reason": "Bad content"}), "email.rejected", {"reason": "Bad content"}),
        (
            {
                **published("Rendering Failure", {}),
                "failure": {"templateName": "welcome", "errorMessage": "Attribute 'x' is not present"},
            },
            "email.rendering_failed",
            {"template_name": "welcome", "error": "Attribute 'x' is not present"},
        ),
    ],
)
def test_deliveries_bounces_complaints_rejects_and_rendering_failures_become_events_about_the_contact(
    message: Any, event_type: str, extra: dict[str, Any]
) -> None:
    event = feedback.to_event(message, NOW).event
    assert event is not None
    assert event.type == event_type
    assert event.contact is not None
    assert event.contact.contact_id == "c0ffee"
    assert event.properties == {
        "scenario": "welcome",
        "step": "e1-welcome",
        "variant": "b",
        "message_id": "0102019a-msg",
        **extra,
    }


@pytest.mark.parametrize(
    ("message", "reason"),
    [
        (published("DeliveryDelay", {}), "not acted on"),
        ({**OPEN, "mail": {**OPEN["mail"], "tags": {"scenario": ["welcome"]}}}, "no contact tag"),
        ({**OPEN, "mail": {"tags": TAGS}}, "no mail.messageId"),
        (["not", "an", "event"], "not an SES event"),
    ],
)
def test_what_is_not_feedback_on_a_parcours_message_is_ignored(message: Any, reason: str) -> None:
    outcome = feedback.to_event(message, NOW)
    assert (outcome.status, outcome.event) == ("ignored", None)
    assert reason in outcome.reason


@pytest.fixture
def settings(aws: dict[str, str]) -> Settings:
    sqs = boto3.client("sqs", region_name="eu-west-3")
    url = sqs.create_queue(QueueName="parcours-events.fifo", Attributes={"FifoQueue": "true"})["QueueUrl"]
    return Settings.from_environ({**aws, "PARCOURS_QUEUE_URL": url})


def queued(settings: Settings) -> list[Event]:
    sqs = boto3.client("sqs", region_name="eu-west-3")
    messages = sqs.receive_message(QueueUrl=settings.queue_url, MaxNumberOfMessages=10).get("Messages", [])
    return [Event.from_json(m["Body"]) for m in messages]


def test_a_redelivered_sns_message_is_queued_once(settings: Settings) -> None:
    first = feedback.handle(json.dumps(OPEN), settings, NOW)
    again = feedback.handle(json.dumps(OPEN), settings, datetime(2026, 11, 24, 9, 1, tzinfo=UTC))
    assert first.event is not None
    assert again.event is not None
    assert first.event.event_id == again.event.event_id  # what the processing deduplicates on, for 7 days
    assert [event.type for event in queued(settings)] == ["email.opened"]  # and the FIFO queue within 5 minutes


def test_a_second_open_of_the_same_message_is_another_event(settings: Settings) -> None:
    later = {**OPEN, "open": {**OPEN["open"], "timestamp": "2026-11-25T10:00:00.000Z"}}
    feedback.handle(json.dumps(OPEN), settings, NOW)
    feedback.handle(json.dumps(later), settings, NOW)
    assert len(queued(settings)) == 2


def test_a_message_that_is_not_json_is_ignored(settings: Settings) -> None:
    assert feedback.handle("{oops", settings, NOW).reason == "not JSON"
    assert queued(settings) == []
