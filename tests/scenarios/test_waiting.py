"""wait_for: a task token held until the contact's event arrives (resumed by processing) or the timeout passes."""

from __future__ import annotations

import json
import uuid
from datetime import timedelta
from typing import Any

import pytest

from infra import validation
from infra.localprocess import RunningLocal
from infra.webhook_client import post_shopify
from tests.conftest import SHOPIFY_SECRET, sample
from tests.e2e.test_shopify_webhook import customer
from tests.scenarios.conftest import deploy_fixture, described, entered_states, sent_at, start

TRIGGER = validation.SAMPLE_CONTEXT["trigger"]  # what the templates of the fixture's emails read


@pytest.fixture(scope="module")
def waiting(local: RunningLocal) -> str:
    return deploy_fixture(local, "waiting")


def subscribed_contact(local: RunningLocal) -> tuple[str, str]:
    email = f"waiting.{uuid.uuid4().hex[:8]}@example.com"
    post_shopify(local.api_url, "customers/create", customer(email), SHOPIFY_SECRET, uuid.uuid4().hex)
    local.advance(seconds=0)  # the queued event processed: the contact exists
    ids = local.physical_ids()
    item = local.client("dynamodb").get_item(
        TableName=ids["IdentitiesTable"], Key={"identity": {"S": f"email#{email}"}}
    )
    return email, item["Item"]["contact_id"]["S"]


def waiting_enrolment(local: RunningLocal, contact_id: str) -> list[dict[str, Any]]:
    items = local.client("dynamodb").query(
        TableName=local.physical_ids()["EnrolmentsTable"],
        KeyConditionExpression="contact_id = :c",
        ExpressionAttributeValues={":c": {"S": contact_id}},
    )["Items"]
    return [item for item in items if item.get("waiting_event", {}).get("S") == "order.placed"]


def test_the_event_arriving_first_resumes_the_execution_on_its_branch(local: RunningLocal, waiting: str) -> None:
    # Given a contact waiting for their order
    email, contact_id = subscribed_contact(local)
    began = local.now()
    execution = start(local, waiting, contact_id, trigger=TRIGGER)
    local.advance(seconds=0)
    assert waiting_enrolment(local, contact_id) != []

    # When the order arrives through the shop's webhook six hours later, before the day's timeout
    local.advance(to=began + timedelta(hours=6))
    order: dict[str, Any] = json.loads(sample("shopify/orders-create.json"))
    order["email"] = order["customer"]["email"] = email
    post_shopify(local.api_url, "orders/create", json.dumps(order).encode(), SHOPIFY_SECRET, uuid.uuid4().hex)
    local.advance(seconds=0)

    # Then the execution goes on at once with the event branch, and nothing waits any more
    result = described(local, execution)
    assert result["status"] == "SUCCEEDED"
    assert entered_states(local, execution) == ["Wait for order.placed (order-check)", "Send email thanks"]
    assert json.loads(result["output"])["awaited"]["type"] == "order.placed"
    sent = sent_at(local, email)
    assert sent["thanks"] == (began + timedelta(hours=6)).replace(microsecond=0)
    assert "nudge" not in sent
    assert waiting_enrolment(local, contact_id) == []


def test_without_the_event_the_timeout_branch_runs(local: RunningLocal, waiting: str) -> None:
    # Given a contact waiting for their order, which never comes
    email, contact_id = subscribed_contact(local)
    began = local.now()
    execution = start(local, waiting, contact_id, trigger=TRIGGER)

    # When the day's timeout passes
    local.advance(to=began + timedelta(days=1))

    # Then the timeout branch runs at that moment
    assert described(local, execution)["status"] == "SUCCEEDED"
    assert entered_states(local, execution) == ["Wait for order.placed (order-check)", "Send email nudge"]
    sent = sent_at(local, email)
    assert sent["nudge"] == (began + timedelta(days=1)).replace(microsecond=0)
    assert "thanks" not in sent
