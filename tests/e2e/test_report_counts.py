"""The reports' counters against `parcours local`, over HTTP: two abandoned checkouts both get the cart reminder,
one shopper clicks it (`POST /_local/ses-event`) and orders 42.00 EUR, and the reports table counts abandoned-cart
with 2 entered, 1 clicked, 1 converted and 42.00 EUR attributed to the clicked reminder, counted off the event path
from the tables' streams (the report function, run by the local runtime as Lambda runs it). Then the shop refunds
the order (a signed `refunds/create`, which names the order only) and cancels it: the revenue the report route
answers and the buyer's total spent go back to what they were, and the cancellation takes the order off both."""

from __future__ import annotations

import json
import uuid
from datetime import UTC
from decimal import Decimal
from typing import Any

from infra.localprocess import RunningLocal
from infra.webhook_client import post_shopify, signed
from shared.reports import store
from tests.conftest import SHOPIFY_SECRET, sample_json
from tests.e2e.test_cart_to_order import with_email
from tests.e2e.test_shopify_webhook import customer, unique_email


def report(local: RunningLocal, scenario: str) -> dict[tuple[str, str | None, str | None], dict[str, Decimal]]:
    """The scenario's counter items, as the reports read them (the session's earlier tests counted there too)."""
    dynamodb = local.client("dynamodb")
    items = dynamodb.query(
        TableName=local.physical_ids()["ReportsTable"],
        KeyConditionExpression="#r = :r",
        ExpressionAttributeNames={"#r": "report"},
        ExpressionAttributeValues={":r": {"S": store.report_id(scenario)}},
        ConsistentRead=True,
    )["Items"]
    return {
        store.parse_counter_key(item["key"]["S"]): {
            name: Decimal(value["N"]) for name, value in item.items() if "N" in value
        }
        for item in items
    }


def total(counters: dict[Any, dict[str, Decimal]], name: str, step: str | None = None) -> Decimal:
    return sum(
        (values.get(name, Decimal(0)) for (_, at, _), values in counters.items() if step is None or at == step),
        Decimal(0),
    )


def test_the_cart_reminder_clicked_then_an_order_is_counted_and_its_revenue_attributed(local: RunningLocal) -> None:
    before = report(local, "abandoned-cart")

    # Given two subscribed shoppers who each leave a checkout unfinished
    shoppers = [unique_email("report-a"), unique_email("report-b")]
    for email in shoppers:
        post_shopify(local.api_url, "customers/create", customer(email), SHOPIFY_SECRET, uuid.uuid4().hex)
        checkout = with_email("checkouts-create.json", email)
        post_shopify(local.api_url, "checkouts/create", checkout, SHOPIFY_SECRET, uuid.uuid4().hex)

    # Then both get the cart reminder an hour later
    local.advance(seconds=3600)
    for email in shoppers:
        assert [m["step"] for m in local.outbox(to=email) if m["scenario"] == "abandoned-cart"] == ["e1-reminder"]

    # When the first one clicks it, and orders 42.00 EUR a few minutes later
    buyer = shoppers[0]
    status, _ = local.ses_event(to=buyer, step="e1-reminder", type="click", link="https://boutique.example/cart")
    assert status == 202
    local.advance(seconds=300)
    ordered = local.now()
    order: dict[str, Any] = json.loads(with_email("orders-create.json", buyer))
    order.update(id=uuid.uuid4().int % 10**13, total_price="42.00", currency="EUR", presentment_currency="EUR")
    placed = post_shopify(local.api_url, "orders/create", json.dumps(order).encode(), SHOPIFY_SECRET, uuid.uuid4().hex)
    assert placed.body["type"] == "order.placed"
    local.advance(seconds=0)  # the order is processed

    # Then the reports count abandoned-cart: 2 entered, 2 reminders sent, 1 clicked, 1 converted by the order, and
    # its 42.00 EUR attributed to the clicked reminder, on the day of the order
    after = report(local, "abandoned-cart")
    for name, step, expected in (
        ("entered", None, 2),
        ("sent", "e1-reminder", 2),
        ("clicked", "e1-reminder", 1),
        ("converted", None, 1),
        ("orders_click", "e1-reminder", 1),
        ("revenue_click:EUR", "e1-reminder", Decimal("42.00")),
    ):
        assert total(after, name, step) - total(before, name, step) == expected, name
    item = (ordered.astimezone(UTC).date().isoformat(), "e1-reminder", None)
    earned = after[item]["revenue_click:EUR"] - before.get(item, {}).get("revenue_click:EUR", Decimal(0))
    assert earned == Decimal("42.00")

    # And a click again on the same email (a second click) counts once
    local.ses_event(to=buyer, step="e1-reminder", type="click", link="https://boutique.example/cart")
    local.advance(seconds=0)
    assert total(report(local, "abandoned-cart"), "clicked") - total(before, "clicked") == 1


def revenue(local: RunningLocal, day: str) -> float:
    """abandoned-cart's revenue in EUR over one day, as the signed report route answers it."""
    answer = signed("GET", f"{local.api_url}/v1/reports/scenarios?from={day}&to={day}")
    assert answer.status == 200, answer.body
    [cart] = [scenario for scenario in answer.body["scenarios"] if scenario["id"] == "abandoned-cart"]
    return float(cart["revenue"].get("EUR", 0.0))


def file_of(local: RunningLocal, email: str) -> dict[str, Any]:
    """The person's contact as their file (the signed export route) shows it."""
    answer = signed("GET", f"{local.api_url}/v1/contacts/export?email={email}")
    assert answer.status == 200, answer.body
    contact: dict[str, Any] = answer.body["people"][0]["stores"]["contacts"][0]
    return contact


def test_a_refund_of_the_attributed_order_brings_its_revenue_and_the_buyer_s_total_back_to_zero(
    local: RunningLocal,
) -> None:
    # Given a shopper who clicked the cart reminder and ordered 42.00 EUR
    buyer = unique_email("refund")
    post_shopify(local.api_url, "customers/create", customer(buyer), SHOPIFY_SECRET, uuid.uuid4().hex)
    post_shopify(
        local.api_url, "checkouts/create", with_email("checkouts-create.json", buyer), SHOPIFY_SECRET, uuid.uuid4().hex
    )
    local.advance(seconds=3600)
    assert local.ses_event(to=buyer, step="e1-reminder", type="click", link="https://boutique.example/cart")[0] == 202
    local.advance(seconds=300)
    day = local.now().astimezone(UTC).date().isoformat()
    before = revenue(local, day)
    order: dict[str, Any] = json.loads(with_email("orders-create.json", buyer))
    order.update(id=uuid.uuid4().int % 10**13, total_price="42.00", currency="EUR", presentment_currency="EUR")
    post_shopify(local.api_url, "orders/create", json.dumps(order).encode(), SHOPIFY_SECRET, uuid.uuid4().hex)
    local.advance(seconds=0)
    assert revenue(local, day) - before == 42.0
    assert (file_of(local, buyer)["orders_count"], file_of(local, buyer)["total_spent"]) == (1, 42.0)

    # When the shop refunds it in full: Shopify's refunds/create names the order, not the customer
    refund: dict[str, Any] = sample_json("shopify/refunds-create.json")
    refund.update(id=uuid.uuid4().int % 10**12, order_id=order["id"])
    refund["transactions"][1].update(amount="42.00", currency="EUR")
    refunded = post_shopify(
        local.api_url, "refunds/create", json.dumps(refund).encode(), SHOPIFY_SECRET, uuid.uuid4().hex
    )
    assert (refunded.status, refunded.body["type"]) == (202, "order.refunded")
    local.advance(seconds=0)

    # Then the report's attributed revenue is back where it was, and so is the buyer's total spent
    assert revenue(local, day) == before
    assert (file_of(local, buyer)["orders_count"], file_of(local, buyer)["total_spent"]) == (1, 0.0)

    # And when the shop then cancels the order, it no longer counts among the buyer's orders
    cancelled = {**order, "cancelled_at": local.now().isoformat(), "cancel_reason": "customer"}
    raw = json.dumps(cancelled).encode()
    assert post_shopify(local.api_url, "orders/cancelled", raw, SHOPIFY_SECRET, uuid.uuid4().hex).status == 202
    local.advance(seconds=0)
    assert (file_of(local, buyer)["orders_count"], file_of(local, buyer)["total_spent"]) == (0, 0.0)
    assert revenue(local, day) == before
