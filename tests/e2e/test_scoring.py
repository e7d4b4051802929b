"""Issue 6, done when: "a contact who opens, clicks and views the pricing page crosses 50, becomes SQL". Over HTTP:
Shopify signs a subscriber up, the welcome series sends e1, `POST /_local/ses-event` reports its opens and clicks,
the tracking API its pricing page views; the shipped scoring rules (scenarios/scoring.yaml) do the rest."""

from __future__ import annotations

import json
import uuid
from datetime import timedelta
from typing import Any

from infra.localprocess import RunningLocal
from infra.webhook_client import post_shopify, post_tracking
from tests.conftest import SHOPIFY_SECRET, WRITE_KEY
from tests.e2e.test_ses_feedback import contact_item
from tests.e2e.test_shopify_webhook import customer, unique_email


def history(local: RunningLocal, contact_id: str) -> list[tuple[str, dict[str, Any]]]:
    """(type, properties) of the contact's recorded events, oldest first."""
    items = local.client("dynamodb").query(
        TableName=local.physical_ids()["EventsTable"],
        KeyConditionExpression="contact_id = :k",
        ExpressionAttributeValues={":k": {"S": contact_id}},
    )["Items"]
    return [(i["type"]["S"], json.loads(i["properties"]["S"]) if "properties" in i else {}) for i in items]


def test_a_contact_who_opens_clicks_and_views_pricing_becomes_a_sales_qualified_lead(local: RunningLocal) -> None:
    # Given a subscriber whose welcome email went out, at the start of a minute: the events below, a second apart,
    # all fall in one scoring week (weeks begin on Monday 00:00 UTC)
    now = local.now()
    local.advance(to=now.replace(second=0, microsecond=0) + timedelta(minutes=1))
    email, user = unique_email("scored"), uuid.uuid4().hex
    post_shopify(local.api_url, "customers/create", customer(email), SHOPIFY_SECRET, uuid.uuid4().hex)
    local.advance(seconds=0)  # the welcome series sends its first email
    [first] = local.outbox(to=email)
    assert first["step"] == "e1-welcome"
    contact_id = contact_item(local, email)["contact_id"]["S"]

    # When they open it and click in it, more often than the caps count (3 of each a week), and view the pricing
    # page three times (2 a week count), each a second after the last: a history orders the events of one instant
    # by their random ids, and the order of the stages is what this test reads
    for _ in range(4):
        assert local.ses_event(to=email, step="e1-welcome", type="open")[0] == 202
        local.advance(seconds=1)
        assert local.ses_event(to=email, step="e1-welcome", type="click", link="https://boutique.example/")[0] == 202
        local.advance(seconds=1)
    identify = {"userId": user, "traits": {"email": email}}
    assert post_tracking(local.api_url, "/v1/identify", identify, WRITE_KEY).status == 200
    for _ in range(3):
        pricing = {"path": "/pricing", "url": "https://boutique.example/pricing"}
        page = {"userId": user, "messageId": uuid.uuid4().hex, "properties": pricing}  # three views, not one again
        assert post_tracking(local.api_url, "/v1/page", page, WRITE_KEY).status == 200
        local.advance(seconds=1)

    # Then their score crosses 50 (3 opens at 2, 3 clicks at 5, 2 views at 15) and they are a sales-qualified lead
    seen = history(local, contact_id)
    contact = contact_item(local, email)
    assert int(contact["score"]["N"]) == 3 * 2 + 3 * 5 + 2 * 15
    assert contact["attributes"]["M"]["lifecycle_stage"] == {"S": "sql"}
    assert "qualified_at" in contact["attributes"]["M"]

    # and their history says why: each change with its rule, the stages they went through, the qualification
    caps = {counter.partition("@")[0]: int(times["N"]) for counter, times in contact["score_caps"]["M"].items()}
    assert caps == {"email-opened": 3, "email-clicked": 3, "pricing-viewed": 2}  # this week's, each at its cap
    changes = [p for t, p in seen if t == "score.changed"]
    assert [(c["reason"], c["old"], c["new"]) for c in changes] == [
        ("email-opened", 0, 2),
        ("email-clicked", 2, 7),
        ("email-opened", 7, 9),
        ("email-clicked", 9, 14),
        ("email-opened", 14, 16),
        ("email-clicked", 16, 21),
        ("pricing-viewed", 21, 36),
        ("pricing-viewed", 36, 51),
    ]
    assert all(c["new"] == c["old"] + c["points"] for c in changes)
    stages = [(p["old"], p["new"]) for t, p in seen if t == "stage.changed"]
    assert stages == [("subscriber", "lead"), ("lead", "mql"), ("mql", "sql")]
    [qualified] = [p for t, p in seen if t == "contact.qualified"]
    assert qualified["stage"] == "sql"
    assert qualified["score"] == 51
    assert qualified["qualified_at"] == contact["attributes"]["M"]["qualified_at"]["S"]
