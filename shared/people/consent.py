"""Who may receive marketing: prior consent per channel (email, SMS), never suppressed (REQUIREMENTS.md, Privacy)."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal, cast

from pynamodb.expressions.condition import Condition

from shared.events import ConsentFacts
from shared.items import typed_map
from shared.storage import Consent, ContactModel


def from_facts(facts: ConsentFacts) -> Consent:
    return typed_map(
        Consent,
        state=facts.state,
        level=facts.level,
        source=facts.source,
        wording=facts.wording,
        at=datetime.fromisoformat(facts.at.replace("Z", "+00:00")),
    )


IMPORT = "import:"  # the source of consent read from an imported file (shared.sources.imports)
Channel = Literal["email", "sms"]
_FIELDS = {"email": ("email_consent", "consent_history"), "sms": ("sms_consent", "sms_consent_history")}


def decide(current: Consent | None, new: Consent, *, explicit: bool, by_the_person: bool) -> str | None:
    """Why a consent statement does not apply, or None when it does: the rules of README "Consent rules", in order.

    1. The same state and level: nothing changes.
    2. The person's own action (an unsubscribe link, the preference centre, double opt-in, a complaint, a STOP
       reply) always applies, whatever the times.
    3. A statement older than the stored one arrived late: ignored.
    4. A grant over a denial applies only when explicit (the source stated the consent's own time, newer by rule 3):
       re-sent traits or a time parcours defaulted never undo an unsubscribe.
    5. An imported file's grant (source `import:...`) never undoes a denial, whatever its date: it is the
       operator's claim, not the person's new opt-in.
    """
    if current is not None and (current.state, current.level) == (new.state, new.level):
        return "unchanged"
    if by_the_person:
        return None
    if current is not None and current.at > new.at:
        return "older than the stored statement"
    if current is not None and current.state == "denied" and new.state == "granted" and not explicit:
        return "a grant without its own time never undoes a denial"
    if current is not None and current.state == "denied" and new.state == "granted" and new.source.startswith(IMPORT):
        return "an imported grant never undoes a denial"
    return None


def record(
    contact: ContactModel, facts: ConsentFacts, *, by_the_person: bool = False, channel: Channel = "email"
) -> bool:
    """Applies a consent statement for a channel when `decide` lets it, kept in that channel's history (appended,
    never rewritten); True if it changed."""
    current_field, history_field = _FIELDS[channel]
    new = from_facts(facts)
    current = getattr(contact, current_field)
    if decide(current, new, explicit=facts.explicit, by_the_person=by_the_person) is not None:
        return False
    setattr(contact, current_field, new)
    setattr(contact, history_field, [*(getattr(contact, history_field) or []), new])
    return True


def refusal_for_marketing_email(contact: ContactModel | None, *, soft_opt_in: bool = False) -> str | None:
    """Why this contact may not get a marketing email now, or None if it may: the one place that answers it (entry,
    `{consent: email}` conditions and every send ask here). `soft_opt_in`: the scenario offers similar products to
    existing customers (README "Soft opt-in"), so a customer who never objected needs no explicit opt-in."""
    if contact is None:
        return "contact not found"
    if not contact.email:
        return "no email address"
    if contact.suppressed:
        return "address suppressed"
    consent = contact.email_consent
    if consent is not None and consent.state == "granted":
        return None
    if soft_opt_in:
        return soft_opt_in_refusal(contact)
    return "no marketing consent"


def marketing_email_as_read(before: dict[str, Any]) -> Condition:
    """The condition that the contact's suppression and email consent are still as read (`before`: the contact's
    `serialize()` when read; the event's own consent, written in the same transaction, is not a change meanwhile).
    A start decided on them is written only if no withdrawal came meanwhile (the event is then decided again)."""
    suppressed = ContactModel.suppressed
    was_suppressed = bool((before.get("suppressed") or {}).get("BOOL"))
    condition = (suppressed == True) if was_suppressed else suppressed.does_not_exist() | (suppressed == False)  # noqa: E712
    consent = ContactModel.email_consent
    state = ((before.get("email_consent") or {}).get("M") or {}).get("state", {}).get("S")
    # the state inside the map (PynamoDB's typing takes a nested attribute's comparison for a bool)
    held = consent.does_not_exist() if state is None else cast(Condition, consent.state == state)
    return cast(Condition, condition & held)


def objected(contact: ContactModel) -> bool:
    """True once the contact said no to marketing email in any way (an unsubscribe, a withdrawal, a complaint, a
    source's denial): soft opt-in ends for good; only a newer explicit opt-in (state granted) mails them again."""
    statements = [contact.email_consent, *(contact.consent_history or [])]
    return any(statement is not None and statement.state == "denied" for statement in statements)


def soft_opt_in_refusal(contact: ContactModel) -> str | None:
    """Why soft opt-in does not cover this contact (no order yet, or an objection), or None when it does."""
    if objected(contact):
        return "objected to marketing email: soft opt-in ended"
    if not contact.orders_count:
        return "no marketing consent and no order (soft opt-in is for customers)"
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
