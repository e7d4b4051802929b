"""Lists over the local runtime: a dynamic list fills itself from a Shopify order and empties as its window passes,
starting a scenario on the way; the admin routes for static lists answer only SigV4-signed calls."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime, time, timedelta
from typing import Any

import pytest
from botocore.credentials import Credentials

from infra import cli, sigv4
from infra.localprocess import RunningLocal
from infra.webhook_client import Answer, post, post_shopify, signed
from tests.conftest import SHOPIFY_SECRET, sample
from tests.e2e.test_shopify_webhook import customer, unique_email

PROMOTION = "bought-after-promotion"


def discounted_order(email: str) -> bytes:
    payload: dict[str, Any] = json.loads(sample("shopify/orders-create.json"))
    payload["email"] = email
    payload["customer"]["email"] = email
    payload["customer"]["id"] = uuid.uuid4().int % 10**13
    payload["discount_codes"] = [{"code": "ETE15", "amount": "7.50", "type": "percentage"}]
    return json.dumps(payload).encode()


def members(local: RunningLocal, name: str) -> list[str]:
    answer = signed("GET", f"{local.api_url}/v1/lists/{name}/members")
    assert answer.status == 200, answer.body
    return [member["email"] for member in answer.body["members"]]


def history(local: RunningLocal, email: str, event_type: str) -> list[dict[str, Any]]:
    """The contact's recorded events of a type (its history, as the events table keeps it)."""
    ids = local.physical_ids()
    dynamodb = local.client("dynamodb")
    identity = dynamodb.get_item(TableName=ids["IdentitiesTable"], Key={"identity": {"S": f"email#{email}"}})
    contact_id = identity["Item"]["contact_id"]["S"]
    items = dynamodb.query(
        TableName=ids["EventsTable"],
        KeyConditionExpression="contact_id = :c",
        ExpressionAttributeValues={":c": {"S": contact_id}},
    )["Items"]
    return [json.loads(item["properties"]["S"]) for item in items if item["type"]["S"] == event_type]


def test_a_discounted_order_fills_the_promotion_list_starts_its_scenario_and_the_list_empties_after_30_days(
    local: RunningLocal,
) -> None:
    # Given a subscribed Shopify customer
    email = unique_email("promo")
    post_shopify(local.api_url, "customers/create", customer(email), SHOPIFY_SECRET, uuid.uuid4().hex)
    local.advance(seconds=0)  # the queued signup is processed
    assert email not in members(local, PROMOTION)

    # When they order with a discount code
    ordered = local.now()
    order = post_shopify(local.api_url, "orders/create", discounted_order(email), SHOPIFY_SECRET, uuid.uuid4().hex)
    assert order.body["type"] == "order.placed"

    # Then they join the dynamic list, and its list.joined starts promotion-thanks: the thank-you goes out at once
    local.advance(seconds=0)
    assert email in members(local, PROMOTION)
    thanks = [m for m in local.outbox(to=email) if m["scenario"] == "promotion-thanks"]
    assert [(m["step"], m["subject"]) for m in thanks] in (  # the subject test's variant a or b, as bucketed
        [("e1-thanks", "Merci pour votre commande")],
        [("e1-thanks-circle", "Votre prochaine commande vous ouvre le cercle des clients fidèles")],
    )
    assert datetime.fromisoformat(thanks[0]["sent_at"]) == ordered.replace(microsecond=0)
    assert [event["list"] for event in history(local, email, "list.joined")] == [PROMOTION]

    # And once the order is more than 30 days old, the next daily run (00:05 UTC) takes them out of the list
    daily_run = datetime.combine((ordered + timedelta(days=31)).astimezone(UTC).date(), time(0, 5), UTC)
    local.advance(to=daily_run - timedelta(seconds=1))
    assert email in members(local, PROMOTION)
    assert history(local, email, "list.left") == []
    local.advance(to=daily_run)
    assert email not in members(local, PROMOTION)
    assert [event["list"] for event in history(local, email, "list.left")] == [PROMOTION]


def change(local: RunningLocal, action: str, name: str, who: dict[str, str]) -> Answer:
    return signed("POST", f"{local.api_url}/v1/lists/{name}/{action}", json.dumps(who).encode())


def test_the_admin_routes_answer_only_signed_calls_and_adding_emits_list_joined(local: RunningLocal) -> None:
    email = unique_email("vip")
    post_shopify(local.api_url, "customers/create", customer(email), SHOPIFY_SECRET, uuid.uuid4().hex)
    local.advance(seconds=0)  # the queued signup is processed: the contact exists
    body = json.dumps({"email": email}).encode()
    url = f"{local.api_url}/v1/lists/press/add"

    # Without a signature, with another secret, or with a body other than the one signed: 403, nothing changes
    assert post(url, body, {"content-type": "application/json"}).status == 403
    assert signed("POST", url, body, Credentials("local", "not-the-secret")).status == 403
    assert signed("POST", url, body, Credentials("someone", "local")).status == 403
    headers = sigv4.sign("POST", url, body, sigv4.LOCAL_CREDENTIALS, sigv4.LOCAL_REGION, {"content-type": "x"})
    assert post(url, json.dumps({"email": "other@example.com"}).encode(), headers).status == 403
    assert signed("GET", f"{local.api_url}/v1/lists/press/members").body["members"] == []

    # Signed: the contact joins, once, and list.joined is recorded in its history like a scenario step's
    added = change(local, "add", "press", {"email": email})
    assert (added.status, added.body["status"]) == (200, "added")
    assert change(local, "add", "press", {"email": email}).body["status"] == "unchanged"
    assert members(local, "press") == [email]
    local.advance(seconds=0)  # the queued list.joined is processed
    assert [event["list"] for event in history(local, email, "list.joined")] == ["press"]

    # Bad requests say why
    assert change(local, "add", "press", {"email": "nobody@example.com"}).status == 404
    assert change(local, "add", PROMOTION, {"email": email}).status == 409  # a dynamic list: its rule decides
    assert change(local, "add", "Press!", {"email": email}).status == 400

    # And removing by contact id
    contact_id = change(local, "remove", "press", {"email": email}).body["contact_id"]
    assert change(local, "remove", "press", {"contact_id": contact_id}).body["status"] == "unchanged"
    assert members(local, "press") == []


def test_parcours_lists_signs_its_calls_with_the_aws_credentials(
    local: RunningLocal, local_credentials: None, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    email = unique_email("cli")
    post_shopify(local.api_url, "customers/create", customer(email), SHOPIFY_SECRET, uuid.uuid4().hex)
    add = ["lists", "add", "cli-press", "--email", email, "--api", local.api_url, "--region", "eu-west-3"]
    local.advance(seconds=0)  # the queued signup is processed: the contact exists
    assert cli.main(add) == 0
    assert json.loads(capsys.readouterr().out)["status"] == "added"
    assert cli.main(["lists", "show", "cli-press", "--api", local.api_url, "--region", "eu-west-3"]) == 0
    assert [member["email"] for member in json.loads(capsys.readouterr().out)["members"]] == [email]

    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "wrong")
    assert cli.main(["lists", "show", "cli-press", "--api", local.api_url, "--region", "eu-west-3"]) == 1
    assert "403" in capsys.readouterr().err
