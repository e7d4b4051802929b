"""Subscription topics a contact can turn off in the preference centre, and which scenario sends which topic.

A scenario's topic comes from its id through TOPIC_OF (README, "Preferences and double opt-in"); a marketing
scenario not in the table sends `newsletter`. Transactional scenarios have no topic: no preference stops them.
"""

from __future__ import annotations

TOPICS = ("newsletter", "promotions", "cart-reminders", "tips")
FREQUENCIES = ("all", "weekly", "monthly")  # stored only: enforcing a frequency cap is another package
DEFAULT_TOPIC = "newsletter"

TOPIC_OF = {
    "welcome": "newsletter",
    "lead-nurturing": "newsletter",
    "re-engagement": "newsletter",
    "abandoned-cart": "cart-reminders",
    "birthday": "promotions",
    "loyalty": "promotions",
    "onboarding": "tips",
    "post-purchase": "tips",
}


def topic_of(scenario: str, category: str) -> str | None:
    """The topic of a scenario's emails; None for a transactional one."""
    if category != "marketing":
        return None
    return TOPIC_OF.get(scenario, DEFAULT_TOPIC)
