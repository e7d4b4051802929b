"""Revenue attribution: which scenario email earned an order, and what refunds and cancellations take back.

The rule (README, Reports): an order is attributed to the scenario email the person last clicked within the click
window (default 5 days, as Klaviyo's default for email clicks), and separately to the one they last opened within
the open window (default 24 hours: shorter than Klaviyo's 5 days, because Apple Mail Privacy Protection opens every
email it downloads, so an open says less about the person than a click). Each attribution adds 1 to `orders_click`
(`orders_open`) and the order's total to `revenue_click:<currency>` (`revenue_open:<currency>`) on the item of that
email's step and variant, on the day of the order. Revenue is kept per currency, as exact decimals.

What the person last clicked and opened is kept per contact (`attribution#<contact id>`, items `click` and `open`,
which expire with their window); what an order was attributed to is kept per order (`order#<source>#<order id>`),
with what is left of its total: a refund (`order.refunded`, once per refund id) takes its amount back from the same
counters, a cancellation (`order.cancelled`, once) takes what is left and the order itself (orders_* - 1).
"""

from __future__ import annotations

import logging
import re
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal, InvalidOperation
from typing import Any

from shared.events import ORDER_CANCELLED, ORDER_PLACED, ORDER_REFUNDED
from shared.reports import store, writes
from shared.settings import Settings

logger = logging.getLogger(__name__)

KINDS = {"clicked": "click", "opened": "open"}  # the engagement counted -> its attribution item and counters
ORDER_KEPT = timedelta(days=400)  # refunds come weeks later; a year covers returns and chargebacks
ORDER_ID = re.compile(r"^[A-Za-z0-9._:-]{1,128}$")


@dataclass(frozen=True)
class Engagement:
    """A click or an open of a scenario's email by a contact, at an instant (ISO 8601, UTC)."""

    contact_id: str
    kind: str  # clicked | opened
    scenario: str
    step: str
    variant: str | None
    at: str


@dataclass(frozen=True)
class Order:
    """An order placed, refunded or cancelled, as the events table recorded it (properties from the sources)."""

    kind: str  # order.placed | order.refunded | order.cancelled
    contact_id: str
    source: str
    order_id: str
    currency: str
    amount: Decimal | None  # the total (placed), the amount given back (refunded), the total (cancelled, if given)
    at: str
    refund_id: str | None = None

    @classmethod
    def of(cls, kind: str, contact_id: str, source: str, properties: Mapping[str, Any], at: str) -> Order | None:
        """None (logged, without who) when the event cannot be counted: no order id, an amount that is not a
        decimal, a currency that is not an ISO 4217 code."""
        order_id = properties.get("order_id")
        order = str(order_id) if isinstance(order_id, str | int) and not isinstance(order_id, bool) else ""
        currency = properties.get("currency")
        raw = properties.get("total" if kind == ORDER_PLACED else "amount")
        refund = properties.get("refund_id")
        refund_id = str(refund) if isinstance(refund, str | int) and not isinstance(refund, bool) else None
        problem = None
        if not ORDER_ID.match(order):
            problem = "order_id"
        elif not isinstance(currency, str) or not store.CURRENCY.match(currency):
            problem = "currency"
        elif kind == ORDER_REFUNDED and (refund_id is None or not ORDER_ID.match(refund_id)):
            problem = "refund_id"
        amount = _amount(raw)
        if problem is None and amount is None and kind != ORDER_CANCELLED:
            problem = "total" if kind == ORDER_PLACED else "amount"
        if problem is not None:
            logger.warning("reports: order event not counted", extra={"type": kind, "field": problem})
            return None
        return cls(kind, contact_id, source or "unknown", order, str(currency), amount, at, refund_id)


def _amount(raw: Any) -> Decimal | None:
    """A non-negative exact decimal from the source's string (or number), None for anything else."""
    if isinstance(raw, bool) or not isinstance(raw, str | int | float | Decimal):
        return None
    try:
        value = Decimal(str(raw).strip())
    except InvalidOperation:
        return None
    return value if value.is_finite() and value >= 0 else None


def windows(settings: Settings) -> dict[str, timedelta]:
    return {
        "click": timedelta(days=settings.attribution_click_days),
        "open": timedelta(hours=settings.attribution_open_hours),
    }


def _instant(at: str) -> datetime:
    return datetime.fromisoformat(at)


# ---- the last click and open of each contact --------------------------------------------------------------------
def remember(engagement: Engagement, settings: Settings) -> bool:
    """Keeps the engagement as the contact's last click (open) unless a later one is kept already; it expires with
    its window. True when kept."""
    kind = KINDS[engagement.kind]
    window = windows(settings)[kind]
    if not window:
        return False  # that attribution is turned off
    values = {
        "scenario": {"S": engagement.scenario},
        "step": {"S": engagement.step},
        "variant": {"S": engagement.variant or store.NONE},
        "expires_at": writes.epoch(_instant(engagement.at) + window),
    }
    return writes.update_if_newer(
        settings.reports_table,
        settings.region,
        writes.attribution_id(engagement.contact_id),
        kind,
        values,
        engagement.at,
    )


# ---- orders -------------------------------------------------------------------------------------------------------
def _plain(item: Mapping[str, Any]) -> dict[str, Any]:
    plain: dict[str, Any] = {}
    for name, value in item.items():
        ((kind, raw),) = value.items()
        plain[name] = Decimal(raw) if kind == "N" else raw
    return plain


def apply(order: Order, settings: Settings, now: datetime, counted: Counter[tuple[str, str]]) -> None:
    """Attributes an order placed, or takes back a refund or a cancellation, once."""
    if order.kind == ORDER_PLACED:
        _place(order, settings, now, counted)
    else:
        for _ in range(5):  # another refund of the same order counted at this moment: read it again
            if _take_back(order, settings, now, counted):
                return
        raise writes.ReportsBusy("the order's item kept changing")


def _targets(order: Order, settings: Settings) -> dict[str, dict[str, Any]]:
    """The contact's last click and last open within their windows before the order: kind -> that item."""
    found = writes.items_of(settings.reports_table, settings.region, writes.attribution_id(order.contact_id))
    placed = _instant(order.at)
    window = windows(settings)
    targets = {}
    for item in map(_plain, found):
        kind, at = item.get("key"), item.get("at")
        if kind not in window or not isinstance(at, str):
            continue
        if timedelta(0) <= placed - _instant(at) <= window[kind] and window[kind]:
            targets[kind] = item
    return targets


def _counter_item(order_item: Mapping[str, Any], kind: str) -> tuple[str, str] | None:
    scenario, step = order_item.get(f"{kind}_scenario"), order_item.get(f"{kind}_step")
    if not isinstance(scenario, str) or not isinstance(step, str):
        return None
    variant = order_item.get(f"{kind}_variant")
    day = str(order_item["day"])
    return store.report_id(scenario), store.counter_key(day, step, None if variant == store.NONE else variant)


def _adds(order_item: Mapping[str, Any], orders: int, revenue: Decimal) -> dict[tuple[str, str], dict[str, Any]]:
    """The counter increments of the order's attributions, merged per item (a click and an open of one email)."""
    merged: dict[tuple[str, str], dict[str, Any]] = {}
    currency = str(order_item["currency"])
    for kind in ("click", "open"):
        item = _counter_item(order_item, kind)
        if item is None:
            continue
        added = merged.setdefault(item, {})
        if orders:
            added[f"orders_{kind}"] = orders
        if revenue:
            added[f"revenue_{kind}:{currency}"] = revenue
    return {item: added for item, added in merged.items() if added}


def _scenario_of(report: str) -> str:
    return report.removeprefix("scenario#")


def _place(order: Order, settings: Settings, now: datetime, counted: Counter[tuple[str, str]]) -> None:
    if order.amount is None:
        return
    targets = _targets(order, settings)
    if not targets:
        return  # no scenario email earned it: nothing to keep (a refund of it finds nothing to take back)
    attributed: dict[str, Any] = {
        "day": {"S": order.at[:10]},
        "currency": {"S": order.currency},
        "total": writes.number(order.amount),
        "remaining": writes.number(order.amount),
        "expires_at": writes.epoch(now + ORDER_KEPT),
    }
    for kind, item in targets.items():
        attributed[f"{kind}_scenario"] = {"S": str(item["scenario"])}
        attributed[f"{kind}_step"] = {"S": str(item["step"])}
        attributed[f"{kind}_variant"] = {"S": str(item.get("variant") or store.NONE)}
    report = writes.order_report(order.source, order.order_id)
    plain = {**{name: next(iter(value.values())) for name, value in attributed.items()}, "currency": order.currency}
    adds = _adds(plain, 1, order.amount)
    batch = [writes.Write(report, "order", put=attributed)]
    batch += [writes.Write(item_report, key, add=added) for (item_report, key), added in adds.items()]
    if writes.transact(settings.reports_table, settings.region, batch):
        return  # attributed already (the record came again)
    for (item_report, _), added in adds.items():
        for name in added:
            if name.startswith("orders_"):
                counted[(_scenario_of(item_report), name)] += 1


def _take_back(order: Order, settings: Settings, now: datetime, counted: Counter[tuple[str, str]]) -> bool:
    """A refund or a cancellation of an attributed order: True when done (or nothing to do), False when the order's
    item changed meanwhile (read again)."""
    report = writes.order_report(order.source, order.order_id)
    items = {
        str(item["key"]): item for item in map(_plain, writes.items_of(settings.reports_table, settings.region, report))
    }
    attributed = items.get("order")
    mark = "cancelled" if order.kind == ORDER_CANCELLED else f"refund#{order.refund_id}"
    if attributed is None or mark in items:
        return True  # not attributed to any email, or counted already
    if attributed.get("currency") != order.currency:
        logger.warning("reports: refund in another currency than its order, not counted", extra={"type": order.kind})
        return True
    remaining = Decimal(attributed.get("remaining", 0))
    cancel = order.kind == ORDER_CANCELLED
    if cancel and attributed.get("cancelled"):
        return True
    amount = remaining if cancel or order.amount is None else min(order.amount, remaining)
    adds = _adds(attributed, -1 if cancel else 0, -amount)
    update: dict[str, Any] = {"remaining": writes.number(remaining - amount)}
    if cancel:
        update["cancelled"] = {"BOOL": True}
    batch = [
        writes.Write(report, mark, put={"amount": writes.number(amount), "expires_at": writes.epoch(now + ORDER_KEPT)}),
        writes.Write(report, "order", set=update, expect={"remaining": writes.number(remaining)}),
    ]
    batch += [writes.Write(item_report, key, add=added) for (item_report, key), added in adds.items()]
    failed = writes.transact(settings.reports_table, settings.region, batch)
    if 0 in failed:
        return True  # counted meanwhile
    if failed:
        return False
    for (item_report, _), added in adds.items():
        for name in added:
            if name.startswith("orders_"):
                counted[(_scenario_of(item_report), name)] -= 1
    return True
