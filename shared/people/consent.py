"""Who may receive marketing: prior consent per channel (email, SMS), never suppressed (REQUIREMENTS.md, Privacy)."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from shared.events import ConsentFacts
from shared.storage import Consent, ContactModel


def from_facts(facts: ConsentFacts) -> Consent:
    return Consent(
        state=facts.state,
        level=facts.level,
        source=facts.source,
        wording=facts.wording,
        at=datetime.fromisoformat(facts.at.replace("Z", "+00:00")),
    )


Channel = Literal["email", "sms"]
_FIELDS = {"email": ("email_consent", "consent_history"), "sms": ("sms_consent", "sms_consent_history")}


def record(
    contact: ContactModel, facts: ConsentFacts, *, by_the_person: bool = False, channel: Channel = "email"
) -> bool:
    """Applies a consent statement for a channel, kept in that channel's history; True if it changed.

    A source's statement older than the stored one is ignored (late delivery); the person's own action (an
    unsubscribe link, a STOP reply) always applies.
    """
    current_field, history_field = _FIELDS[channel]
    new = from_facts(facts)
    current = getattr(contact, current_field)
    if current is not None and (current.state, current.level) == (new.state, new.level):
        return False
    if current is not None and current.at > new.at and not by_the_person:
        return False  # an older statement arriving late never overrides a newer one
    setattr(contact, current_field, new)
    setattr(contact, history_field, [*(getattr(contact, history_field) or []), new])
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


def refusal_for_marketing_sms(contact: ContactModel | None) -> str | None:
    """Why this contact may not get a marketing SMS now (prior SMS opt-in), or None if it may. An email bounce or
    complaint (`suppressed`) says nothing of the phone; SNS's opt-out list is checked at send time."""
    if contact is None:
        return "contact not found"
    if not contact.phone:
        return "no phone number"
    consent = contact.sms_consent
    if consent is None or consent.state != "granted":
        return "no SMS marketing consent"
    return None
