"""What a shop takes back: a refund lowers the contact's total spent, a cancellation its orders and what its refunds
left, each once, never below 0, and never for a contact that does not exist (shared.people.orders, through the
processing of the events the shops' webhooks become)."""

from dataclasses import replace
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import boto3
import pytest

from shared.clock import Clock
from shared.events import Event
from shared.journeys import dispatch, privacy, processing
from shared.people import orders
from shared.settings import Settings
from shared.sources import shopify, woocommerce
from shared.storage import ContactModel, tables
from tests.conftest import sample_json

NOW = datetime(2026, 11, 28, 9, 0, tzinfo=UTC)
EMAIL = "camille.martin@example.com"
ORDER = "5512345678901"  # the samples' order, of 59.80 EUR


class At(Clock):
    def __init__(self, now: datetime = NOW) -> None:
        self.at = now

    def now(self) -> datetime:
        return self.at


@pytest.fixture
def settings(aws: dict[str, str], monkeypatch: pytest.MonkeyPatch) -> Settings:
    sqs = boto3.client("sqs", region_name="eu-west-3")
    url = sqs.create_queue(QueueName="parcours-events.fifo", Attributes={"FifoQueue": "true"})["QueueUrl"]
    # the scenarios are not deployed here: these tests are about the contact's counters
    monkeypatch.setattr(dispatch, "start_matching", lambda *args, **kwargs: [])
    monkeypatch.setattr(dispatch, "stop_on_goals", lambda *args, **kwargs: [])
    return replace(Settings.from_environ(aws), queue_url=url)


def from_shopify(topic: str, sample: str, event_id: str, **changes: Any) -> Event:
    payload = {**sample_json(f"shopify/{sample}"), **changes}
    return shopify.to_event({"x-shopify-topic": topic, "x-shopify-event-id": event_id}, payload, NOW)


def placed(event_id: str = "o1", **changes: Any) -> Event:
    return from_shopify("orders/create", "orders-create.json", event_id, **changes)


def refund(event_id: str = "r1", amount: str = "29.90", refund_id: int = 902345678901, order: str = ORDER) -> Event:
    payload = sample_json("shopify/refunds-create.json")
    payload.update(id=refund_id, order_id=order)
    payload["transactions"][1]["amount"] = amount
    return shopify.to_event({"x-shopify-topic": "refunds/create", "x-shopify-event-id": event_id}, payload, NOW)


def cancelled(event_id: str = "c1", **changes: Any) -> Event:
    return from_shopify("orders/cancelled", "orders-cancelled.json", event_id, **changes)


def run(settings: Settings, *events: Event) -> processing.Result:
    result = None
    for event in events:
        result = processing.process(event, settings, At())
    assert result is not None
    return result


def counters(settings: Settings) -> tuple[int, Decimal]:
    identity = tables(settings).identities.get(f"email#{EMAIL}")
    contact: ContactModel = tables(settings).contacts.get(identity.contact_id)
    return int(contact.orders_count), Decimal(str(contact.total_spent)).quantize(Decimal("0.01"))


def test_a_refund_found_by_its_order_lowers_the_total_spent_and_the_cancellation_takes_what_is_left(
    settings: Settings,
) -> None:
    run(settings, placed())
    assert counters(settings) == (1, Decimal("59.80"))

    result = run(settings, refund())  # names the order only
    assert result.contact_id is not None
    assert counters(settings) == (1, Decimal("29.90"))
    history = [e.type for e in tables(settings).events.query(result.contact_id)]
    assert history == ["order.placed", "order.refunded"]  # in the person's history: the reports count it there

    run(settings, cancelled())  # Shopify's cancellation of the same order: only what the refund left
    assert counters(settings) == (0, Decimal("0.00"))


def test_a_cancellation_then_its_refund_takes_the_order_back_once(settings: Settings) -> None:
    run(settings, placed(), placed("o2", id=77, total_price="10.00"), cancelled(), refund(amount="59.80"))
    assert counters(settings) == (1, Decimal("10.00"))  # the other order stays


def test_a_cancellation_delivered_twice_counts_once(settings: Settings) -> None:
    run(settings, placed(), placed("o2", id=77, total_price="10.00"))
    run(settings, cancelled("c1"))
    run(settings, cancelled("c1"))  # the same event again (after a failure): its history record is there
    run(settings, cancelled("c2"))  # the same cancellation under another delivery id
    assert counters(settings) == (1, Decimal("10.00"))


def test_a_refund_delivered_again_or_under_another_id_counts_once_and_two_refunds_both_count(
    settings: Settings,
) -> None:
    run(settings, placed(), refund("r1", "10.00"), refund("r1", "10.00"), refund("r1-again", "10.00"))
    assert counters(settings) == (1, Decimal("49.80"))
    run(settings, refund("r2", "5.00", refund_id=902345678902))
    assert counters(settings) == (1, Decimal("44.80"))


def test_a_refund_larger_than_what_was_spent_stops_at_zero(settings: Settings) -> None:
    run(settings, placed(), refund(amount="80.00"))
    assert counters(settings) == (1, Decimal("0.00"))
    item = tables(settings).orders.get(orders.order_key("shopify", ORDER))
    assert Decimal(str(item.taken)) == Decimal("59.80")  # at most the order's total
    run(settings, cancelled())
    assert counters(settings) == (0, Decimal("0.00"))


def test_a_refund_of_an_order_no_one_placed_creates_no_contact_and_is_kept_with_its_reason(
    settings: Settings,
) -> None:
    result = run(settings, refund(order="999"))
    assert (result.contact_id, result.recorded) == (None, True)
    assert str(result.dropped).startswith("order unknown")
    assert tables(settings).contacts.count() == 0
    assert [e.type for e in tables(settings).events.query("_unattributed#shopify")] == ["order.refunded"]


def test_a_cancellation_naming_an_unknown_customer_creates_no_contact(settings: Settings) -> None:
    result = run(settings, cancelled())
    assert result.contact_id is None
    assert tables(settings).contacts.count() == 0
    assert tables(settings).identities.count() == 0


def test_a_known_customer_s_order_parcours_never_saw_placed_is_taken_back_by_the_customer(
    settings: Settings,
) -> None:
    # Given a WooCommerce customer whose order was placed before parcours kept orders (no order item)
    wc = {"x-wc-webhook-topic": "order.created", "x-wc-webhook-id": "14"}
    order = woocommerce.to_event(wc, sample_json("woocommerce/order-created.json"), NOW)
    run(settings, order)
    tables(settings).orders.get(orders.order_key("woocommerce", order.properties["order_id"])).delete()
    before = counters(settings)

    # When the shop cancels another order of theirs, then refunds it in full
    updated = {**wc, "x-wc-webhook-topic": "order.updated"}
    cancel = woocommerce.to_event(updated, sample_json("woocommerce/order-updated-cancelled.json"), NOW)
    refunded = woocommerce.to_event(updated, sample_json("woocommerce/order-updated-refunded.json"), NOW)
    run(settings, cancel, refunded)

    # Then the cancellation took the order and its total, and the refund nothing more
    assert counters(settings) == (before[0] - 1, max(before[1] - Decimal("64.70"), Decimal("0.00")))


def test_the_order_items_are_in_the_person_s_file_and_erased_with_them(settings: Settings) -> None:
    result = run(settings, placed(), refund())
    assert result.contact_id is not None
    exported = privacy.export(settings, privacy.Who(email=EMAIL), NOW)
    [item] = exported["people"][0]["stores"]["orders"]
    assert (item["identity"], item["taken"], item["refunds"]) == (f"order#shopify#{ORDER}", 29.9, ["902345678901"])
    assert item["expires_at"] == (NOW + timedelta(days=settings.event_retention_days)).isoformat()

    erased = privacy.erase(settings, privacy.Who(email=EMAIL), NOW, "test")
    assert erased["removed"]["orders"] == 1
    assert tables(settings).orders.count() == 0


@pytest.mark.parametrize(
    ("event_type", "amount", "total", "taken", "spent", "expected"),
    [
        ("order.refunded", "10", "59.80", "0", "59.80", ("10", "10")),
        ("order.refunded", "80", "59.80", "0", "59.80", ("59.80", "59.80")),  # at most the order
        ("order.refunded", "10", None, "0", "5", ("10", "5")),  # the contact never below 0
        ("order.cancelled", "59.80", "59.80", "29.90", "100", ("29.90", "29.90")),  # what the refunds left
        ("order.cancelled", "59.80", "59.80", "59.80", "100", ("0", "0")),
    ],
)
def test_what_is_taken_back(
    event_type: str, amount: str, total: str | None, taken: str, spent: str, expected: tuple[str, str]
) -> None:
    got = orders.amounts(event_type, Decimal(amount), Decimal(total) if total else None, Decimal(taken), Decimal(spent))
    assert got == (Decimal(expected[0]), Decimal(expected[1]))


def test_an_order_id_placed_again_by_another_customer_still_counts_for_them(settings: Settings) -> None:
    # (another shop's order of the same id, say): the order's item keeps naming whoever placed it first
    run(settings, placed())
    other = "lea.dupont@example.com"
    again = placed("o2", email=other, customer={"id": 42, "email": other})
    result = run(settings, again)
    assert result.contact_id is not None
    contact = tables(settings).contacts.get(result.contact_id)
    assert (contact.orders_count, contact.total_spent) == (1, 59.8)
    assert tables(settings).orders.get(orders.order_key("shopify", ORDER)).contact_id != result.contact_id
