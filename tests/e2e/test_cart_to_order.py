"""An abandoned Shopify checkout, then its order: the reminders stop and the post-purchase series starts."""

from __future__ import annotations

import json
import uuid
from datetime import datetime, timedelta
from typing import Any

from infra.localprocess import RunningLocal
from infra.webhook_client import post_shopify
from tests.conftest import SHOPIFY_SECRET, sample
from tests.e2e.test_shopify_webhook import customer, unique_email


def with_email(name: str, email: str) -> bytes:
    payload: dict[str, Any] = json.loads(sample(f"shopify/{name}"))
    payload["email"] = email
    payload["customer"]["email"] = email
    payload["customer"]["id"] = uuid.uuid4().int % 10**13
    return json.dumps(payload).encode()


def scenario_steps(local: RunningLocal, email: str, scenario: str) -> list[str]:
    return [m["step"] for m in local.outbox(to=email) if m["scenario"] == scenario]


def sent_at(local: RunningLocal, email: str, step: str) -> datetime:
    [message] = [m for m in local.outbox(to=email) if m["step"] == step]
    return datetime.fromisoformat(message["sent_at"])


def test_an_order_ends_the_cart_reminders_and_starts_the_post_purchase_series(local: RunningLocal) -> None:
    # Given a subscribed customer who leaves a checkout unfinished
    email = unique_email("cart")
    left = local.now()
    post_shopify(local.api_url, "customers/create", customer(email), SHOPIFY_SECRET, uuid.uuid4().hex)
    checkout = post_shopify(
        local.api_url, "checkouts/create", with_email("checkouts-create.json", email), SHOPIFY_SECRET, uuid.uuid4().hex
    )
    assert checkout.body["type"] == "checkout.started"

    # Then an hour later the reminder shows the cart and the way back to it
    an_hour_later = left + timedelta(hours=1)
    local.advance(to=an_hour_later)
    assert scenario_steps(local, email, "abandoned-cart") == ["e1-reminder"]
    [reminder] = [m for m in local.outbox(to=email) if m["step"] == "e1-reminder"]
    assert datetime.fromisoformat(reminder["sent_at"]) == an_hour_later.replace(microsecond=0)
    assert reminder["subject"] == "Vous avez oublié quelque chose ?"
    assert "Carnet A5 pointillé · Kraft" in reminder["text"]
    assert "/checkouts/ac/Z2NwLWV1cm9wZS13ZXN0MTowMUpE/recover?key=4a5b6c7d8e9f" in reminder["html"]

    # When the customer orders before the next reminder
    order = post_shopify(
        local.api_url, "orders/create", with_email("orders-create.json", email), SHOPIFY_SECRET, uuid.uuid4().hex
    )
    assert order.body["type"] == "order.placed"

    # Then the post-purchase series starts at once, and no further cart reminder is sent (H+24, H+48, the H+50 SMS)
    local.advance(to=left + timedelta(hours=51))
    assert scenario_steps(local, email, "post-purchase") == ["e1-thanks"]
    assert sent_at(local, email, "e1-thanks") == an_hour_later.replace(microsecond=0)
    assert scenario_steps(local, email, "abandoned-cart") == ["e1-reminder"]
    thanks = next(m for m in local.outbox(to=email) if m["step"] == "e1-thanks")
    assert thanks["subject"] == "Merci pour votre commande #1042 !"

    # And the abandoned cart is counted as converted by the order
    ids = local.physical_ids()
    identity = local.client("dynamodb").get_item(
        TableName=ids["IdentitiesTable"], Key={"identity": {"S": f"email#{email}"}}
    )["Item"]
    enrolments = local.client("dynamodb").query(
        TableName=ids["EnrolmentsTable"],
        KeyConditionExpression="contact_id = :c",
        ExpressionAttributeValues={":c": identity["contact_id"]},
    )["Items"]
    by_scenario = {item["scenario"]["S"]: item for item in enrolments}
    assert by_scenario["abandoned-cart"]["status"]["S"] == "converted"
    assert by_scenario["abandoned-cart"]["goal_event"]["S"] == "order.placed"
    assert by_scenario["post-purchase"]["status"]["S"] == "active"
    execution = by_scenario["abandoned-cart"]["execution_arn"]["S"]
    assert local.client("stepfunctions").describe_execution(executionArn=execution)["status"] == "ABORTED"


def test_a_first_order_earns_a_code_and_a_second_makes_a_loyal_customer(local: RunningLocal) -> None:
    # Given a subscribed customer who orders for the first time
    email = unique_email("buyer")
    first_ordered = local.now()
    post_shopify(local.api_url, "customers/create", customer(email), SHOPIFY_SECRET, uuid.uuid4().hex)
    order = with_email("orders-create.json", email)
    post_shopify(local.api_url, "orders/create", order, SHOPIFY_SECRET, uuid.uuid4().hex)

    # Then the first order earns a code at once
    local.advance(seconds=60)  # and the second order comes a minute later
    assert scenario_steps(local, email, "loyalty") == ["e1-first-order-code"]
    assert sent_at(local, email, "e1-first-order-code") == first_ordered.replace(microsecond=0)

    # When they order again
    second = json.loads(order)
    second["id"], second["name"] = second["id"] + 1, "#1043"
    post_shopify(local.api_url, "orders/create", json.dumps(second).encode(), SHOPIFY_SECRET, uuid.uuid4().hex)
    local.advance(seconds=0)  # the queued order is processed

    # Then they join the loyal customers' list, get no second code, and no second post-purchase series
    ids = local.physical_ids()
    dynamodb = local.client("dynamodb")
    contact_id = dynamodb.get_item(TableName=ids["IdentitiesTable"], Key={"identity": {"S": f"email#{email}"}})["Item"][
        "contact_id"
    ]
    contact = dynamodb.get_item(TableName=ids["ContactsTable"], Key={"contact_id": contact_id}, ConsistentRead=True)[
        "Item"
    ]
    assert contact["lists"]["SS"] == ["clients-fideles"]
    assert contact["orders_count"]["N"] == "2"
    assert scenario_steps(local, email, "loyalty") == ["e1-first-order-code"]  # the code, once
    assert scenario_steps(local, email, "post-purchase")[:1] == ["e1-thanks"]  # first order only: one series
    assert scenario_steps(local, email, "post-purchase").count("e1-thanks") == 1
