"""What a shop takes back: refunds and cancellations lower the contact's counters, once each, never below 0.

An order placed (`order.placed` with an order id) leaves an item in the identities table, `order#<source>#<order
id>` (storage.OrderModel), written in the same transaction as the contact and its history record (no request more
on the event path): whom the order is of, and its total. That item is how a Shopify refund, which names the order and
not the customer, finds its contact (one GetItem); and it keeps what the order's refunds and cancellation took back
(`taken`, the refund ids, `cancelled_at`), so that:

- a refund (`order.refunded`) lowers `total_spent` by its amount, at most what is left of the order's total;
- a cancellation (`order.cancelled`) lowers `orders_count` by 1 and `total_spent` by what its refunds did not take
  back already (Shopify sends both a refund and a cancellation for one order cancelled with a refund: the two
  together take back the order's total, whichever comes first);
- each once: a refund id or a cancellation already taken back is not taken again, and the event's history record,
  written in the same transaction, makes a retry of the same event a no-op; neither counter goes below 0.

A refund or a cancellation never creates a contact nor says anything of its consent or name: an order no contact
placed (or placed before parcours kept order items, and not naming a known customer) is recorded in the source's
unattributed bucket, with the reason. The order item expires with the events (the events' retention) and is erased
with the person (shared.journeys.privacy finds it from their order events).
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Mapping
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

from pynamodb.expressions.condition import Condition
from pynamodb.expressions.update import Action
from pynamodb.models import Model

from shared.events import ORDER_CANCELLED, ORDER_PLACED, ORDER_REFUNDED, Event
from shared.people import contacts
from shared.storage import (
    ORDER_IDENTITY,
    AlreadyExists,
    Conflict,
    ContactModel,
    EventModel,
    OrderModel,
    StorageBusy,
    Tables,
    create_new,
    get_or_none,
    write_together,
)

TAKE_BACKS = (ORDER_REFUNDED, ORDER_CANCELLED)
ATTEMPTS = 3  # another refund or the cancellation of the same order written at the same moment: read again


def order_key(source: str, order_id: object) -> str:
    return f"{ORDER_IDENTITY}{source}#{order_id}"


def order_keys(history: list[EventModel]) -> list[str]:
    """The order items a contact's history names (its orders placed, refunded, cancelled): what an erasure deletes."""
    keys: dict[str, None] = {}
    for record in history:
        properties = record.properties if isinstance(record.properties, Mapping) else {}
        order_id = properties.get("order_id")
        if record.type in (ORDER_PLACED, *TAKE_BACKS) and isinstance(order_id, int | str) and str(order_id):
            keys[order_key(record.source, order_id)] = None
    return list(keys)


def _decimal(value: object) -> Decimal | None:
    if isinstance(value, bool) or not isinstance(value, int | float | str | Decimal):
        return None
    try:
        number = Decimal(str(value).strip())
    except ArithmeticError:
        return None
    return number if number.is_finite() and number >= 0 else None


def placed(event: Event, tables: Tables, now: datetime, retention: timedelta) -> Callable[[str], OrderModel] | None:
    """The item of an order placed, for its contact's id (written with the contact, shared.people.contacts.upsert);
    None for any other event, or an order without an id."""
    order_id = event.properties.get("order_id")
    if event.type != ORDER_PLACED or isinstance(order_id, bool) or not isinstance(order_id, int | str):
        return None
    if not str(order_id).strip():
        return None
    total = _decimal(event.properties.get("total"))
    currency = event.properties.get("currency")

    def item(contact_id: str) -> OrderModel:
        return tables.orders(
            identity=order_key(event.source, str(order_id).strip()),
            contact_id=contact_id,
            total=float(total) if total is not None else 0.0,  # what contacts.upsert adds to total_spent
            currency=currency if isinstance(currency, str) else None,
            taken=0,
            expires_at=now + retention,
        )

    return item


def take_back(
    event: Event,
    tables: Tables,
    now: datetime,
    retention: timedelta,
    history: Callable[[str], EventModel],
) -> tuple[ContactModel | None, str | None]:
    """Applies a refund or a cancellation to its contact's counters, once. Answers the contact (read again after the
    write), or None and why nothing was taken back (no contact is created)."""
    properties = event.properties
    key = order_key(event.source, str(properties.get("order_id")))
    for _ in range(ATTEMPTS):
        order = get_or_none(tables.orders, key, consistent=True)
        contact_id = order.contact_id if order is not None else _known(event, tables)
        if contact_id is None:
            return None, "order unknown: no contact placed it, and the event names no known contact"
        contact = get_or_none(tables.contacts, contact_id, consistent=True)
        if contact is None:
            return None, "the order's contact is gone (erased)"
        if _applied(order, event):  # another delivery of this refund or cancellation took it back already
            _record(history(contact.contact_id))
            return contact, None
        try:
            if _write(event, order, contact, tables, now, retention, history):
                return get_or_none(tables.contacts, contact_id, consistent=True), None
        except Conflict:
            continue
        if get_or_none(tables.events, contact.contact_id, range_key=history(contact.contact_id).at_id) is not None:
            return contact, None  # this event was applied by an earlier attempt
    raise StorageBusy(f"the order's item changed {ATTEMPTS} times meanwhile; the event is retried later")


def _known(event: Event, tables: Tables) -> str | None:
    """The contact the event's ids (email, the shop's customer id) name, if any: never created here."""
    return contacts.find(event.contact, tables) if event.contact is not None else None


def _applied(order: OrderModel | None, event: Event) -> bool:
    if order is None:
        return False
    if event.type == ORDER_CANCELLED:
        return order.cancelled_at is not None
    return str(event.properties.get("refund_id")) in (order.refunds or set())


def _record(record: EventModel) -> None:
    with contextlib.suppress(AlreadyExists):
        create_new(record, EventModel.contact_id)


def amounts(
    event_type: str, amount: Decimal, total: Decimal | None, taken: Decimal, spent: Decimal
) -> tuple[Decimal, Decimal]:
    """(what the order's item counts as taken back, what the contact's total_spent loses): a refund takes its
    amount, a cancellation what is left; neither more than is left of the order's total (when known), and the
    contact never goes below 0."""
    left = max(total - taken, Decimal(0)) if total is not None else None
    if event_type == ORDER_CANCELLED:
        want = left if left is not None else amount
    else:
        want = min(amount, left) if left is not None else amount
    return want, min(want, max(spent, Decimal(0)))


def _write(
    event: Event,
    order: OrderModel | None,
    contact: ContactModel,
    tables: Tables,
    now: datetime,
    retention: timedelta,
    history: Callable[[str], EventModel],
) -> bool:
    """The contact's counters, the order's item and the history record in one transaction; False when a condition
    did not hold (nothing written)."""
    properties: Mapping[str, Any] = event.properties
    cancel = event.type == ORDER_CANCELLED
    amount = _decimal(properties.get("amount")) or Decimal(0)
    total = _decimal(order.total) if order is not None and order.total is not None else None
    if total is None and cancel:
        total = amount  # the cancelled order's total, as the shop states it
    taken = (_decimal(order.taken) or Decimal(0)) if order is not None else Decimal(0)
    want, take = amounts(event.type, amount, total, taken, _decimal(contact.total_spent) or Decimal(0))
    refund_id = str(properties.get("refund_id")) if not cancel else None

    actions: list[Action] = [ContactModel.updated_at.set(now)]
    if take:
        actions.append(ContactModel.total_spent.add(-float(take)))
    if cancel and (contact.orders_count or 0) > 0:
        actions.append(ContactModel.orders_count.add(-1))
    updates: list[tuple[Model, list[Action], Condition]] = [(contact, actions, ContactModel.contact_id.exists())]
    saves: list[tuple[Model, Condition]] = [(history(contact.contact_id), EventModel.contact_id.does_not_exist())]
    if order is None:
        saves.append(
            (
                tables.orders(
                    identity=order_key(event.source, str(properties.get("order_id"))),
                    contact_id=contact.contact_id,
                    total=float(total) if total is not None else None,
                    currency=properties.get("currency"),
                    taken=float(want),
                    refunds={refund_id} if refund_id else None,
                    cancelled_at=now if cancel else None,
                    expires_at=now + retention,
                ),
                OrderModel.identity.does_not_exist(),
            )
        )
    else:
        changes: list[Action] = [OrderModel.taken.set(float(taken + want)), OrderModel.expires_at.set(now + retention)]
        changes.append(OrderModel.cancelled_at.set(now) if cancel else OrderModel.refunds.add({str(refund_id)}))
        if order.total is None and total is not None:
            changes.append(OrderModel.total.set(float(total)))
        unchanged = OrderModel.taken == order.taken if order.taken is not None else OrderModel.taken.does_not_exist()
        updates.append((order, changes, unchanged))
    return write_together(saves, updates) is None
