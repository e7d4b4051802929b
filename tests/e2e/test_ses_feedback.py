"""Issue 5, done when: "a permanent bounce or a complaint fed through the SES event path stops all later email to
that address". Over HTTP: Shopify signs a subscriber up, the welcome series sends e1, `POST /_local/ses-event`
publishes what SES would on the stack's topic (-> SNS -> feedback function), and the days go by."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import pytest

from infra.localprocess import RunningLocal
from infra.webhook_client import post_shopify
from tests.conftest import SHOPIFY_SECRET
from tests.e2e.test_shopify_webhook import at_a_whole_second, customer, sent_at, unique_email
from tests.e2e.test_unsubscribe import consent_state

SERIES = {"e1-welcome": 0, "e2-value": 2, "e3-social-proof": 5, "e4-offer": 8}  # the day of each email
FEEDBACK = {  # what each subscriber's first email gets back from their mailbox provider
    "hard": {"type": "bounce"},  # bounce_type Permanent, the default
    "complaint": {"type": "complaint"},
    "soft": {"type": "bounce", "bounce_type": "Transient"},
}


def contact_item(local: RunningLocal, email: str) -> dict[str, Any]:
    dynamodb = local.client("dynamodb")
    ids = local.physical_ids()
    identity = dynamodb.get_item(TableName=ids["IdentitiesTable"], Key={"identity": {"S": f"email#{email}"}})
    key = {"contact_id": identity["Item"]["contact_id"]}
    return dict(dynamodb.get_item(TableName=ids["ContactsTable"], Key=key, ConsistentRead=True)["Item"])


@dataclass
class Subscribers:
    emails: dict[str, str]  # by FEEDBACK case
    subscribed: datetime  # when all three signed up


@pytest.fixture(scope="module")
def subscribers(local: RunningLocal) -> Subscribers:
    """Three new subscribers side by side (their series run at once), each with its SES feedback on e1; answers
    once the series would have ended (J+8, its last email)."""
    emails = {case: unique_email(f"feedback-{case}") for case in FEEDBACK}
    subscribed = at_a_whole_second(local)
    for email in emails.values():
        post_shopify(local.api_url, "customers/create", customer(email), SHOPIFY_SECRET, uuid.uuid4().hex)
    local.advance(seconds=0)  # each series sends its first email
    for case, email in emails.items():
        [first] = local.outbox(to=email)
        assert first["step"] == "e1-welcome"
        status, answer = local.ses_event(to=email, step="e1-welcome", **FEEDBACK[case])
        assert (status, answer["message_id"]) == (202, first["message_id"]), answer
    local.advance(to=subscribed + timedelta(days=max(SERIES.values())))
    return Subscribers(emails, subscribed)


def test_a_permanent_bounce_stops_every_later_email_to_the_address(
    local: RunningLocal, subscribers: Subscribers
) -> None:
    email = subscribers.emails["hard"]
    assert [m["step"] for m in local.outbox(to=email)] == ["e1-welcome"]
    contact = contact_item(local, email)
    assert contact["suppressed"] == {"BOOL": True}
    assert contact["suppressed_reason"] == {"S": "permanent_bounce:General"}
    # a repeat of the bounce (SNS delivers at least once) is harmless
    assert local.ses_event(to=email, step="e1-welcome", type="bounce")[0] == 202
    assert contact_item(local, email)["suppressed_reason"] == {"S": "permanent_bounce:General"}


def test_a_complaint_stops_every_later_email_and_withdraws_consent(
    local: RunningLocal, subscribers: Subscribers
) -> None:
    email = subscribers.emails["complaint"]
    assert [m["step"] for m in local.outbox(to=email)] == ["e1-welcome"]
    assert consent_state(local, email) == "denied"
    contact = contact_item(local, email)
    assert contact["email_consent"]["M"]["source"] == {"S": "ses:complaint"}
    assert contact["suppressed_reason"] == {"S": "complaint:abuse"}


def test_one_transient_bounce_does_not_stop_the_series(local: RunningLocal, subscribers: Subscribers) -> None:
    email = subscribers.emails["soft"]
    assert [(m["step"], sent_at(m) - subscribers.subscribed) for m in local.outbox(to=email)] == [
        (step, timedelta(days=day)) for step, day in SERIES.items()
    ]
    contact = contact_item(local, email)
    assert contact.get("suppressed") == {"BOOL": False}
    assert contact["transient_bounces"] == {"N": "1"}
    # and a delivery of a later email starts the count again
    status, answer = local.ses_event(to=email, step="e2-value", type="delivery")
    assert (status, answer["type"]) == (202, "Delivery")
    assert "transient_bounces" not in contact_item(local, email)


def test_the_route_refuses_an_unknown_bounce_type(local: RunningLocal, subscribers: Subscribers) -> None:
    email = subscribers.emails["soft"]
    status, answer = local.ses_event(to=email, step="e1-welcome", type="bounce", bounce_type="Soft")
    assert status == 400
    assert "bounce_type" in answer["error"]
