"""Revenue attribution as a marketer reads it: an order goes to the email last clicked within the click window, and
separately to the one last opened within the open window; refunds and cancellations take back what they must."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest

from shared.events import EMAIL_CLICKED, EMAIL_OPENED, ORDER_CANCELLED, ORDER_PLACED, ORDER_REFUNDED
from shared.journeys import privacy
from shared.reports import counting
from shared.settings import Settings
from tests.unit.reports import streams

CLICKED = datetime(2026, 11, 24, 11, 0, tzinfo=UTC)
DAY = ("2026-11-24", "e1-reminder", None)


@pytest.fixture
def settings(aws: dict[str, str]) -> Settings:
    return Settings.from_environ(aws)


def engaged(settings: Settings, kind: str, at: datetime, step: str = "e1-reminder", message: str = "m1") -> None:
    properties = {"scenario": "abandoned-cart", "step": step, "variant": None, "message_id": message}
    counting.count([streams.event(settings, kind, at, properties)], settings, at)


def order(settings: Settings, kind: str, at: datetime, contact_id: str = "c1", **properties: Any) -> dict[str, Any]:
    given = {"order_id": 4501, "currency": "EUR", **properties}
    return streams.event(settings, kind, at, given, contact_id=contact_id, source="shopify")


def place(settings: Settings, at: datetime, total: str = "42.00", **more: Any) -> counting.Outcome:
    return counting.count([order(settings, ORDER_PLACED, at, total=total, **more)], settings, at)


def revenue(settings: Settings) -> dict[tuple[str, str | None, str | None], dict[str, Decimal]]:
    return {
        key: {name: value for name, value in values.items() if name.startswith(("revenue", "orders"))}
        for key, values in streams.counters(settings, "abandoned-cart").items()
        if any(name.startswith(("revenue", "orders")) for name in values)
    }


@pytest.mark.parametrize(("after", "attributed"), [(timedelta(days=5), True), (timedelta(days=5, seconds=1), False)])
def test_an_order_within_five_days_of_a_click_is_attributed_to_that_email(
    settings: Settings, after: timedelta, attributed: bool
) -> None:
    engaged(settings, EMAIL_CLICKED, CLICKED)
    outcome = place(settings, CLICKED + after)
    day = (CLICKED + after).date().isoformat()
    expected = {(day, "e1-reminder", None): {"orders_click": 1, "revenue_click:EUR": Decimal("42.00")}}
    assert revenue(settings) == (expected if attributed else {})
    assert outcome.counted == ({("abandoned-cart", "orders_click"): 1} if attributed else {})


@pytest.mark.parametrize(
    ("after", "attributed"), [(timedelta(hours=24), True), (timedelta(hours=24, seconds=1), False)]
)
def test_an_order_within_24_hours_of_an_open_is_attributed_to_it_separately(
    settings: Settings, after: timedelta, attributed: bool
) -> None:
    engaged(settings, EMAIL_OPENED, CLICKED)
    place(settings, CLICKED + after)
    day = (CLICKED + after).date().isoformat()
    expected = {(day, "e1-reminder", None): {"orders_open": 1, "revenue_open:EUR": Decimal("42.00")}}
    assert revenue(settings) == (expected if attributed else {})


def test_the_windows_are_settings(aws: dict[str, str]) -> None:
    settings = Settings.from_environ(
        {**aws, "PARCOURS_ATTRIBUTION_CLICK_DAYS": "1", "PARCOURS_ATTRIBUTION_OPEN_HOURS": "0"}
    )
    engaged(settings, EMAIL_CLICKED, CLICKED)
    engaged(settings, EMAIL_OPENED, CLICKED)  # open attribution turned off
    place(settings, CLICKED + timedelta(days=2))
    assert revenue(settings) == {}
    place(settings, CLICKED + timedelta(hours=12), order_id=4502)
    assert revenue(settings) == {DAY: {"orders_click": 1, "revenue_click:EUR": Decimal("42.00")}}


def test_a_later_click_on_another_email_moves_the_attribution(settings: Settings) -> None:
    engaged(settings, EMAIL_CLICKED, CLICKED)
    engaged(settings, EMAIL_CLICKED, CLICKED + timedelta(hours=2), step="e2-help", message="m2")
    engaged(settings, EMAIL_CLICKED, CLICKED + timedelta(hours=1))  # an older click, counted late: changes nothing
    place(settings, CLICKED + timedelta(hours=3))
    assert revenue(settings) == {
        ("2026-11-24", "e2-help", None): {"orders_click": 1, "revenue_click:EUR": Decimal("42.00")}
    }


def test_a_click_and_an_order_in_the_same_batch_are_counted_in_order(settings: Settings) -> None:
    click = streams.event(
        settings,
        EMAIL_CLICKED,
        CLICKED,
        {"scenario": "abandoned-cart", "step": "e1-reminder", "message_id": "m1"},
    )
    placed = order(settings, ORDER_PLACED, CLICKED + timedelta(minutes=5), total="19.90")
    counting.count([click, placed], settings, CLICKED)
    counting.count([click, placed], settings, CLICKED)  # the batch again: nothing more
    assert streams.counters(settings, "abandoned-cart") == {
        DAY: {"clicked": 1, "orders_click": 1, "revenue_click:EUR": Decimal("19.90")}
    }


def test_refunds_take_back_once_each_and_a_cancellation_takes_what_is_left_and_the_order(settings: Settings) -> None:
    engaged(settings, EMAIL_CLICKED, CLICKED)
    engaged(settings, EMAIL_OPENED, CLICKED)
    later = CLICKED + timedelta(hours=1)
    place(settings, later, total="42.00")
    refund = order(settings, ORDER_REFUNDED, later + timedelta(days=3), refund_id="r1", amount="10.50")
    counting.count([refund, refund], settings, later)
    counting.count([refund], settings, later)  # redelivered: once
    assert revenue(settings) == {
        DAY: {
            "orders_click": 1,
            "revenue_click:EUR": Decimal("31.50"),
            "orders_open": 1,
            "revenue_open:EUR": Decimal("31.50"),
        }
    }
    cancel = order(settings, ORDER_CANCELLED, later + timedelta(days=4), amount="42.00")
    outcome = counting.count([cancel, cancel], settings, later)
    assert revenue(settings) == {
        DAY: {"orders_click": 0, "revenue_click:EUR": 0, "orders_open": 0, "revenue_open:EUR": 0}
    }
    assert outcome.counted == {("abandoned-cart", "orders_click"): -1, ("abandoned-cart", "orders_open"): -1}
    late = order(settings, ORDER_REFUNDED, later + timedelta(days=5), refund_id="r2", amount="5")
    counting.count([late], settings, later)  # nothing is left to take back
    assert revenue(settings)[DAY]["revenue_click:EUR"] == 0


def test_revenue_is_kept_per_currency_and_bad_amounts_or_currencies_are_not_counted(settings: Settings) -> None:
    engaged(settings, EMAIL_CLICKED, CLICKED)
    at = CLICKED + timedelta(hours=1)
    place(settings, at, total="42.00")
    place(settings, at, total="30", currency="CHF", order_id=4502)
    place(settings, at, total="12.00", currency="euro", order_id=4503)  # not ISO 4217
    place(settings, at, total="douze", order_id=4504)
    refund = order(settings, ORDER_REFUNDED, at, refund_id="r1", amount="5.00", currency="USD")  # not the order's
    counting.count([refund], settings, at)
    assert revenue(settings) == {
        DAY: {"orders_click": 2, "revenue_click:EUR": Decimal("42.00"), "revenue_click:CHF": Decimal("30")}
    }


def test_an_order_with_no_email_clicked_or_opened_is_not_attributed(settings: Settings) -> None:
    engaged(settings, EMAIL_CLICKED, CLICKED)
    placed = order(settings, ORDER_PLACED, CLICKED, contact_id="c2", total="42.00")  # someone else's order
    counting.count([placed], settings, CLICKED)
    assert revenue(settings) == {}


def test_the_erasure_deletes_what_the_person_last_clicked_and_opened(settings: Settings) -> None:
    from shared.storage import tables

    tables(settings).contacts(contact_id="c1", created_at=CLICKED, updated_at=CLICKED).save()
    engaged(settings, EMAIL_CLICKED, CLICKED)
    engaged(settings, EMAIL_OPENED, CLICKED)
    exported = privacy.export(settings, privacy.Who(contact_id="c1"), CLICKED)
    kept = exported["people"][0]["stores"]["reports"]
    assert {item["key"] for item in kept} == {"click", "open"}
    answer = privacy.erase(settings, privacy.Who(contact_id="c1"), CLICKED, "test")
    assert answer["removed"]["reports"] == 2
    assert list(tables(settings).reports.query("attribution#c1")) == []
    place(settings, CLICKED + timedelta(hours=1))
    assert revenue(settings) == {}  # nothing left to attribute an order to
