"""Who may receive marketing: prior consent, never suppressed (REQUIREMENTS.md, Privacy)."""

from __future__ import annotations

from datetime import datetime

from shared.events import ConsentFacts
from shared.storage import Consent, ContactModel


def from_facts(facts: ConsentFacts) -> Consent:
    return Consent(
        state=facts.state,
        level=facts.level,
        source=facts.source,
        at=datetime.fromisoformat(facts.at.replace("Z", "+00:00")),
    )


def record(contact: ContactModel, facts: ConsentFacts, *, by_the_person: bool = False) -> bool:
    """Applies a consent statement, kept in the history; True if it changed.

    A source's statement older than the stored one is ignored (late delivery); the person's own action (an
    unsubscribe link) always applies.
    """
    new = from_facts(facts)
    current = contact.email_consent
    if current is not None and (current.state, current.level) == (new.state, new.level):
        return False
    if current is not None and current.at > new.at and not by_the_person:
        return False  # an older statement arriving late never overrides a newer one
    contact.email_consent = new
    contact.consent_history = [*(contact.consent_history or []), new]
    return True


def refusal_for_marketing_email(contact: ContactModel | None) -> str | None:
    """Why this contact may not get a marketing email now, or None if it may."""
    if contact is None:
        return "contact not found"
    if not contact.email:
        return "no email address"
    if contact.suppressed:
        return "address suppressed"
    consent = contact.email_consent
    if consent is None or consent.state != "granted":
        return "no marketing consent"
    return None
