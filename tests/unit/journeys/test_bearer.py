"""Bearer links (a checkout's recovery link, an order's status page) stay out of executions and come back from the
contact's history when a send renders them."""

from datetime import UTC, datetime, timedelta

from shared.journeys import bearer
from shared.settings import Settings
from shared.sources import shopify
from shared.storage import tables
from tests.conftest import sample_json

NOW = datetime(2026, 11, 24, 9, 0, tzinfo=UTC)
KEY = "2026-11-24T09:00:00+00:00#e1"
RECOVERY = "https://boutique.example/12345/checkouts/ac/abc/recover?key=secret"
STATUS = "https://boutique.example/12345/orders/abc/authenticate?key=secret"


def test_the_history_key_is_when_parcours_received_the_event_whenever_it_is_processed() -> None:
    headers = {"x-shopify-topic": "checkouts/create", "x-shopify-event-id": "e1"}
    event = shopify.to_event(headers, sample_json("shopify/checkouts-create.json"), NOW)
    assert bearer.history_key(event, NOW + timedelta(minutes=5)) == f"{NOW.isoformat()}#{event.event_id}"


def test_the_execution_s_trigger_names_the_links_it_left_out_and_where_the_event_is_recorded() -> None:
    key = KEY
    properties = {"recovery_url": RECOVERY, "status_url": STATUS, "total": 12.5, "lines": []}
    trigger = bearer.execution_trigger("checkout.started", "e1", properties, key)
    assert trigger == {
        "type": "checkout.started",
        "event_id": "e1",
        "properties": {"total": 12.5, "lines": []},
        "withheld": {"links": ["recovery_url", "status_url"], "recorded": "2026-11-24T09:00:00+00:00#e1"},
    }
    assert properties["recovery_url"] == RECOVERY  # the event itself is not changed


def test_a_trigger_without_bearer_links_is_carried_as_before() -> None:
    properties = {"recovery_url": None, "plan": "pro"}  # a link the source cleaned away is no secret
    assert bearer.execution_trigger("checkout.started", "e1", properties, "k") == {
        "type": "checkout.started",
        "event_id": "e1",
        "properties": {"recovery_url": None, "plan": "pro"},
    }


def test_the_links_come_back_from_the_recorded_event(aws: dict[str, str]) -> None:
    events = tables(Settings.from_environ(aws)).events
    key = KEY
    trigger = bearer.execution_trigger("checkout.started", "e1", {"recovery_url": RECOVERY, "total": 3}, key)
    assert "withheld" in trigger
    events(
        contact_id="c1", at_id=key, type="checkout.started", source="shopify", properties={"recovery_url": RECOVERY}
    ).save()

    restored = bearer.restore(trigger, "c1", events)
    assert restored == {
        "type": "checkout.started",
        "event_id": "e1",
        "properties": {"recovery_url": RECOVERY, "total": 3},
    }

    # Another contact's execution cannot read it
    assert bearer.restore(trigger, "c2", events)["properties"]["recovery_url"] is None


def test_when_the_event_is_gone_a_cart_link_falls_back_to_the_contact_s_last_cart_and_others_to_none(
    aws: dict[str, str],
) -> None:
    events = tables(Settings.from_environ(aws)).events
    trigger = bearer.execution_trigger(
        "order.placed", "e2", {"recovery_url": RECOVERY, "status_url": STATUS}, "2026-11-24T09:00:00+00:00#e2"
    )
    restored = bearer.restore(trigger, "c1", events, last_cart_url="https://boutique.example/cart/latest")
    assert restored["properties"] == {"recovery_url": "https://boutique.example/cart/latest", "status_url": None}


def test_a_trigger_that_withheld_nothing_is_used_as_it_is(aws: dict[str, str]) -> None:
    events = tables(Settings.from_environ(aws)).events
    started_before = {"type": "checkout.started", "event_id": "e0", "properties": {"recovery_url": RECOVERY}}
    assert bearer.restore(started_before, "c1", events) == started_before
    forged = {"type": "x", "properties": {}, "withheld": {"links": ["email", "recovery_url"], "recorded": 3}}
    assert bearer.restore(forged, "c1", events)["properties"] == {"recovery_url": None}  # only bearer links, by name
