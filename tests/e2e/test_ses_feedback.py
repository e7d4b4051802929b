"""Issue 5, done when: "a permanent bounce or a complaint fed through the SES event path stops all later email to
that address". Over HTTP: Shopify signs a subscriber up, the welcome series sends e1, `POST /_local/ses-event`
publishes what SES would on the stack's topic (-> SNS -> feedback function), and the days go by."""

from __future__ import annotations

import time
import uuid
from functools import partial
from typing import Any

import pytest

from infra.localprocess import RunningLocal
from infra.webhook_client import post_shopify
from tests.conftest import SHOPIFY_SECRET
from tests.e2e.test_shopify_webhook import customer, unique_email
from tests.e2e.test_unsubscribe import consent_state

SERIES = ["e1-welcome", "e2-value", "e3-social-proof", "e4-offer"]  # J+0, J+2, J+5, J+8
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


@pytest.fixture(scope="module")
def subscribers(local: RunningLocal) -> dict[str, str]:
    """Three new subscribers side by side (their series run at once), each with its SES feedback on e1; answers
    their addresses once the series would have ended (J+8) with time to spare."""
    emails = {case: unique_email(f"feedback-{case}") for case in FEEDBACK}
    for email in emails.values():
        post_shopify(local.api_url, "customers/create", customer(email), SHOPIFY_SECRET, uuid.uuid4().hex)
    started = time.monotonic()
    for case, email in emails.items():
        [first] = local.wait_for(partial(local.outbox, to=email), lambda m: len(m) >= 1, seconds=20)
        assert first["step"] == "e1-welcome"
        status, answer = local.ses_event(to=email, step="e1-welcome", **FEEDBACK[case])
        assert (status, answer["message_id"]) == (202, first["message_id"]), answer
    time.sleep(max(0.0, started + 10 * 86400 / local.time_scale - time.monotonic()))  # past J+8
    return emails


def test_a_permanent_bounce_stops_every_later_email_to_the_address(
    local: RunningLocal, subscribers: dict[str, str]
) -> None:
    email = subscribers["hard"]
    assert [m["step"] for m in local.outbox(to=email)] == ["e1-welcome"]
    contact = contact_item(local, email)
    assert contact["suppressed"] == {"BOOL": True}
    assert contact["suppressed_reason"] == {"S": "permanent_bounce:General"}
    # a repeat of the bounce (SNS delivers at least once) is harmless
    assert local.ses_event(to=email, step="e1-welcome", type="bounce")[0] == 202
    assert contact_item(local, email)["suppressed_reason"] == {"S": "permanent_bounce:General"}


def test_a_complaint_stops_every_later_email_and_withdraws_consent(
    local: RunningLocal, subscribers: dict[str, str]
) -> None:
    email = subscribers["complaint"]
    assert [m["step"] for m in local.outbox(to=email)] == ["e1-welcome"]
    assert consent_state(local, email) == "denied"
    contact = contact_item(local, email)
    assert contact["email_consent"]["M"]["source"] == {"S": "ses:complaint"}
    assert contact["suppressed_reason"] == {"S": "complaint:abuse"}


def test_one_transient_bounce_does_not_stop_the_series(local: RunningLocal, subscribers: dict[str, str]) -> None:
    email = subscribers["soft"]
    assert [m["step"] for m in local.outbox(to=email)] == SERIES
    contact = contact_item(local, email)
    assert contact.get("suppressed") == {"BOOL": False}
    assert contact["transient_bounces"] == {"N": "1"}
    # and a delivery of a later email starts the count again
    status, answer = local.ses_event(to=email, step="e2-value", type="delivery")
    assert (status, answer["type"]) == (202, "Delivery")
    assert "transient_bounces" not in contact_item(local, email)


def test_the_route_refuses_an_unknown_bounce_type(local: RunningLocal, subscribers: dict[str, str]) -> None:
    status, answer = local.ses_event(to=subscribers["soft"], step="e1-welcome", type="bounce", bounce_type="Soft")
    assert status == 400
    assert "bounce_type" in answer["error"]
