"""The reports table's keys: the contract between what counts (off the event path) and what reads (the report
routes, `parcours report`).

Counter items, one per scenario, UTC day, step and variant, so that a report over a period is one Query per
scenario (a 90-day report of a 20-step scenario reads at most 90 x 21 items, whatever the traffic):

    report = "scenario#<scenario id>"       key = "<YYYY-MM-DD>#<step id>#<variant>"

`step` is `-` for the scenario's own counters (entered, completed, converted) and `variant` is `-` outside a
`split`. Counters are number attributes, absent when 0, named in COUNTERS; revenue is kept per currency in
attributes named `revenue_click:<ISO 4217 code>` and `revenue_open:<code>` (exact decimals, net of refunds), beside
`orders_click` and `orders_open`, on the item of the email the order is attributed to.

Other items in the table (markers that make each fact count once, attribution state) use other `report` prefixes,
never `scenario#`.
"""

from __future__ import annotations

import re

NONE = "-"  # the step of a scenario's own counters; the variant outside a split

SCENARIO_COUNTERS = ("entered", "completed", "converted")
STEP_COUNTERS = (
    "sent",
    "delivered",
    "opened",  # unique per send
    "clicked",  # unique per send
    "bounced",
    "complained",
    "unsubscribed",  # through that email's link
    "deferred",
    "capped",
    "failed",
    "sms_sent",
    "sms_failed",
    "orders_click",
    "orders_open",
)
COUNTERS = SCENARIO_COUNTERS + STEP_COUNTERS
REVENUE_PREFIXES = ("revenue_click:", "revenue_open:")
CURRENCY = re.compile(r"^[A-Z]{3}$")


def report_id(scenario: str) -> str:
    return f"scenario#{scenario}"


def counter_key(day: str, step: str | None = None, variant: str | None = None) -> str:
    """The item of a day (YYYY-MM-DD, UTC), a step (None: the scenario itself) and a variant (None: no split)."""
    return f"{day}#{step or NONE}#{variant or NONE}"


def parse_counter_key(key: str) -> tuple[str, str | None, str | None]:
    """(day, step, variant) of a counter item's key; None where the key says `-`."""
    day, step, variant = key.split("#", 2)
    return day, (None if step == NONE else step), (None if variant == NONE else variant)
