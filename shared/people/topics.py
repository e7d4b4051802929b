"""Subscription topics a contact can turn off in the preference centre.

A marketing scenario names its topic (`topic:` in its YAML, `newsletter` when absent); the compiler passes it to
every send step. Transactional scenarios have no topic: no preference stops them.
"""

from __future__ import annotations

TOPICS = ("newsletter", "promotions", "cart-reminders", "tips")
FREQUENCIES = (
    "all",
    "weekly",
    "monthly",
)  # weekly and monthly: one marketing email per period (shared.journeys.pacing)
DEFAULT_TOPIC = "newsletter"
