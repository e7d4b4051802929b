"""Issue 6, done when: "a contact who opens, clicks and views the pricing page crosses 50, becomes SQL". Over HTTP:
Shopify signs a subscriber up, the welcome series sends e1, `POST /_local/ses-event` reports its opens and clicks,
the tracking API its pricing page views; the shipped scoring rules (scenarios/scoring.yaml) do the rest."""

from __future__ import annotations

import json
import uuid
from collections import Counter
from functools import partial
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
    # Given a subscriber whose welcome email went out
    email, user = unique_email("scored"), uuid.uuid4().hex
    post_shopify(local.api_url, "customers/create", customer(email), SHOPIFY_SECRET, uuid.uuid4().hex)
    [first] = local.wait_for(partial(local.outbox, to=email), lambda m: len(m) >= 1, seconds=20)
    assert first["step"] == "e1-welcome"
    contact_id = contact_item(local, email)["contact_id"]["S"]

    # When they open it and click in it, more often than the caps count (3 of each a week), and view the pricing
    # page three times (2 a week count)
    for _ in range(4):
        assert local.ses_event(to=email, step="e1-welcome", type="open")[0] == 202
        assert local.ses_event(to=email, step="e1-welcome", type="click", link="https://boutique.example/")[0] == 202
    identify = {"userId": user, "traits": {"email": email}}
    assert post_tracking(local.api_url, "/v1/identify", identify, WRITE_KEY).status == 200
    for _ in range(3):
        pricing = {"path": "/pricing", "url": "https://boutique.example/pricing"}
        page = {"userId": user, "messageId": uuid.uuid4().hex, "properties": pricing}  # three views, not one again
        assert post_tracking(local.api_url, "/v1/page", page, WRITE_KEY).status == 200

    # Then their score crosses 50 and they are a sales-qualified lead
    seen = local.wait_for(
        partial(history, local, contact_id), lambda h: any(t == "contact.qualified" for t, _ in h), seconds=30
    )
    assert any(t == "contact.qualified" for t, _ in seen)
    contact = contact_item(local, email)
    assert int(contact["score"]["N"]) >= 50
    assert contact["attributes"]["M"]["lifecycle_stage"] == {"S": "sql"}
    assert "qualified_at" in contact["attributes"]["M"]

    # and their history says why: each change with its rule, the stages they went through, the qualification
    reasons = Counter(p["reason"] for t, p in seen if t == "score.changed")
    assert set(reasons) == {"email-opened", "email-clicked", "pricing-viewed"}
    caps = {"email-opened": 3, "email-clicked": 3, "pricing-viewed": 2}  # per week (a week may begin mid-test)
    for counter, times in contact["score_caps"]["M"].items():
        assert int(times["N"]) <= caps[counter.partition("@")[0]]
    changes = [p for t, p in seen if t == "score.changed"]
    assert all(c["new"] == c["old"] + c["points"] for c in changes)
    stages = [(p["old"], p["new"]) for t, p in seen if t == "stage.changed"]
    assert stages[-1][1] == "sql"
    assert [p["new"] for t, p in seen if t == "stage.changed"] == ["lead", "mql", "sql"][-len(stages) :]
    [qualified] = [p for t, p in seen if t == "contact.qualified"]
    assert qualified["stage"] == "sql"
    assert qualified["score"] >= 50
    assert qualified["qualified_at"] == contact["attributes"]["M"]["qualified_at"]["S"]
