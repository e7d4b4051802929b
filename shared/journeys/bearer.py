"""Bearer links kept out of executions: whoever holds one opens the shopper's checkout (`recovery_url`, Shopify's
`abandoned_checkout_url`) or order page (`status_url`, Shopify's `order_status_url`), without logging in.

An execution's input and history stay readable in Step Functions for 90 days after it ends, to anyone allowed to
describe executions, and no erasure reaches them. So the input carries the trigger's properties without these
links, and names what it left out and where the event is recorded (`trigger.withheld`); the send Task puts them
back from the contact's history when it renders (restore), so templates read `trigger.properties.recovery_url` as
before. A wait_for step's event is handed over without them (nothing renders it).
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from shared.events import Event
from shared.storage import EventModel, get_or_none

BEARER_LINKS = ("recovery_url", "status_url")


def history_key(event: Event, now: datetime) -> str:
    """The key of the event's record in the contact's history (EventModel.at_id), which the processing writes and
    the send Task reads: when parcours took the event in, on the one clock, the same on every attempt at it, so
    that the record's key is the event's once-only mark (shared.storage.save_changes), its counters counted once."""
    try:
        received = datetime.fromisoformat(event.received_at).astimezone(UTC).isoformat()
    except ValueError:
        received = now.isoformat()
    return f"{received}#{event.event_id}"


def without_links(properties: Mapping[str, Any]) -> tuple[dict[str, Any], list[str]]:
    """The properties without their bearer links, and the names of those left out (only links actually given)."""
    withheld = [name for name in BEARER_LINKS if isinstance(properties.get(name), str)]
    return {name: value for name, value in properties.items() if name not in withheld}, withheld


def execution_trigger(event_type: str, event_id: str, properties: Mapping[str, Any], recorded: str) -> dict[str, Any]:
    """The trigger as an execution's input carries it: `recorded`, the event's key in the contact's history."""
    kept, withheld = without_links(properties)
    trigger: dict[str, Any] = {"type": event_type, "event_id": event_id, "properties": kept}
    if withheld:
        trigger["withheld"] = {"links": withheld, "recorded": recorded}
    return trigger


def restore(
    trigger: Mapping[str, Any],
    contact_id: str,
    events: type[EventModel],
    last_cart_url: str | None = None,
) -> dict[str, Any]:
    """The trigger with its bearer links read back from the recorded event (for a cart's link, the contact's last
    cart link if the event is gone); a link not found is None, as a link the source did not give. A trigger that
    withheld nothing (an execution started before, a test's input) is returned as it is."""
    withheld = trigger.get("withheld")
    if not isinstance(withheld, Mapping):
        return dict(trigger)
    names = [name for name in withheld.get("links") or () if name in BEARER_LINKS]
    recorded = withheld.get("recorded")
    event = get_or_none(events, contact_id, range_key=recorded, consistent=True) if isinstance(recorded, str) else None
    stored = (event.properties if event is not None else None) or {}
    properties = dict(trigger.get("properties") or {})
    for name in names:
        value = stored.get(name)
        if not isinstance(value, str) and name == "recovery_url":
            value = last_cart_url
        properties[name] = value if isinstance(value, str) else None
    return {**{k: v for k, v in trigger.items() if k != "withheld"}, "properties": properties}
