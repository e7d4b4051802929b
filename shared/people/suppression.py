"""Addresses parcours never mails again (REQUIREMENTS.md, Email out and Privacy), decided by the feedback function
as SES reports, before the event is queued: suppression must not wait behind the queue.

- A `Permanent` bounce (any subtype) or any complaint suppresses at once; a complaint also withdraws the contact's
  email marketing consent, as the person's own act (source `ses:complaint`).
- `Transient` and `Undetermined` bounces are counted on the contact (an atomic ADD; the same SES message counts
  once) and suppress at the third without a delivery in between: a `Delivery` resets the count, so a mailbox full
  for a week and then emptied is mailed again, while one that keeps failing is not.
- Suppressing writes an entry keyed by the SHA-256 of the normalised address (nothing else about the person: the
  reason is SES's type and subtype), checked before every email next to the contact's `suppressed` flag: it
  outlives the contact's erasure, and a contact created later with the same address is still not mailed. The
  flag is set only when the contact's address is the one that bounced (it may have changed since the send).
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from pynamodb.exceptions import DoesNotExist, PynamoDBException

from shared.events import ConsentFacts, normalise_email
from shared.people import consent
from shared.storage import (
    AlreadyExists,
    ContactModel,
    StorageError,
    Tables,
    create_new,
    get_or_none,
    save_changes,
    update_if,
)

TRANSIENT_LIMIT = 3  # soft bounces without a delivery in between before the address is suppressed
COMPLAINT_SOURCE = "ses:complaint"
# SES's documented bounce subtypes and complaint feedback types (RFC 5965): a reason is one of them, or `other`.
KNOWN_DETAILS = frozenset(
    {
        "Undetermined",
        "General",
        "NoEmail",
        "Suppressed",
        "OnAccountSuppressionList",
        "MailboxFull",
        "MessageTooLarge",
        "ContentRejected",
        "AttachmentRejected",
        "abuse",
        "auth-failure",
        "fraud",
        "not-spam",
        "other",
        "virus",
    }
)


@dataclass(frozen=True)
class Decision:
    """What a bounce, complaint or delivery did to the address; nothing in it identifies anyone."""

    status: str  # suppressed | already suppressed | counted | repeat | reset | unchanged
    reason: str | None = None
    transient_bounces: int | None = None


def address_hash(address: object) -> str | None:
    """The suppression key of an address: SHA-256 of its normalised (trimmed, lower-case) form; None if not one."""
    normalised = normalise_email(address)
    return hashlib.sha256(normalised.encode()).hexdigest() if normalised else None


def is_suppressed(t: Tables, address: str | None) -> bool:
    """True if this address bounced for good or complained, whichever contact holds it now."""
    key = address_hash(address)
    return key is not None and get_or_none(t.suppressions, key) is not None


def reason(kind: str, detail: object) -> str:
    """`kind:detail`, the detail from SES's own vocabulary (bounce subtype, feedback type) or `other`: nothing a
    mailbox provider wrote freely (the address is in diagnosticCode, never read here) is kept."""
    if detail is None or detail == "":
        return f"{kind}:unspecified"
    return f"{kind}:{detail if isinstance(detail, str) and detail in KNOWN_DETAILS else 'other'}"


def _normalised(addresses: Iterable[object]) -> list[str]:
    return sorted({email for email in map(normalise_email, addresses) if email is not None})


def _add_entries(t: Tables, addresses: list[str], why: str, now: datetime) -> bool:
    """The hashed entries, the first reason kept; True if one was new."""
    new = False
    for address in addresses:
        key = address_hash(address)
        if key is None:
            continue
        try:
            create_new(t.suppressions(address_hash=key, reason=why, suppressed_at=now), t.suppressions.address_hash)
            new = True
        except AlreadyExists:
            pass
    return new


def _flag_contact(t: Tables, contact_id: str, addresses: list[str], why: str, now: datetime) -> bool:
    """Sets the contact's `suppressed` (first reason and time kept) if its address is one that bounced."""
    if not addresses:
        return False
    return update_if(
        t.contacts(contact_id=contact_id),
        [
            ContactModel.suppressed.set(True),
            ContactModel.suppressed_reason.set(why),
            ContactModel.suppressed_at.set(now),
            ContactModel.updated_at.set(now),
        ],
        ContactModel.contact_id.exists()
        & ContactModel.email.is_in(*addresses)
        & (ContactModel.suppressed.does_not_exist() | ContactModel.suppressed.is_in(False)),
    )


def _suppress(t: Tables, contact_id: str | None, addresses: list[str], why: str, now: datetime) -> Decision:
    new_entry = _add_entries(t, addresses, why, now)
    flagged = contact_id is not None and _flag_contact(t, contact_id, addresses, why, now)
    return Decision("suppressed" if new_entry or flagged else "already suppressed", why)


def on_bounce(
    t: Tables,
    contact_id: str | None,
    message_id: str,
    recipients: Iterable[object],
    bounce: dict[str, Any],
    now: datetime,
) -> Decision:
    """A permanent bounce suppresses now; any other is counted, and the third in a row suppresses."""
    addresses = _normalised(recipients)
    if bounce.get("bounceType") == "Permanent":
        return _suppress(t, contact_id, addresses, reason("permanent_bounce", bounce.get("bounceSubType")), now)
    if contact_id is None:
        return Decision("unchanged")  # nobody to count on: a message parcours did not send
    item = t.contacts(contact_id=contact_id)
    counted = update_if(
        item,
        [ContactModel.transient_bounces.add(1), ContactModel.last_bounce_message.set(message_id)],
        ContactModel.contact_id.exists()
        & (ContactModel.last_bounce_message.does_not_exist() | (ContactModel.last_bounce_message != message_id)),
    )
    if not counted:
        return Decision("repeat")  # this message's bounce was counted already, or the contact is gone
    count = int(item.transient_bounces or 0)
    if count >= TRANSIENT_LIMIT:
        decision = _suppress(t, contact_id, addresses, f"transient_bounces:{count}", now)
        return Decision(decision.status, decision.reason, count)
    return Decision("counted", None, count)


def on_complaint(
    t: Tables,
    contact_id: str | None,
    recipients: Iterable[object],
    complaint: dict[str, Any],
    now: datetime,
) -> Decision:
    """Suppresses the address and withdraws the contact's email marketing consent, with its proof."""
    addresses = _normalised(recipients)
    why = reason("complaint", complaint.get("complaintFeedbackType"))
    new_entry = _add_entries(t, addresses, why, now)
    contact = get_or_none(t.contacts, contact_id, consistent=True) if contact_id is not None else None
    if contact is None:
        return Decision("suppressed" if new_entry else "already suppressed", why)
    before = contact.serialize()
    statement = ConsentFacts(state="denied", level=None, at=now.isoformat(), source=COMPLAINT_SOURCE)
    changed = consent.record(contact, statement, by_the_person=True)
    if not contact.suppressed and contact.email in addresses:
        contact.suppressed, contact.suppressed_reason, contact.suppressed_at = True, why, now
        changed = True
    if changed:
        contact.updated_at = now
        save_changes(contact, before)
    return Decision("suppressed" if new_entry or changed else "already suppressed", why)


def on_delivery(t: Tables, contact_id: str | None) -> Decision:
    """A delivered message ends a run of soft bounces: the count starts again (one read; a write only if set)."""
    if contact_id is None:
        return Decision("unchanged")
    try:
        current = t.contacts.get(contact_id, attributes_to_get=["transient_bounces"])
    except DoesNotExist:
        return Decision("unchanged")
    except PynamoDBException as error:
        raise StorageError(str(error)) from error
    count = int(current.transient_bounces or 0)
    if count == 0:
        return Decision("unchanged")
    # Only the count read: a bounce counted meanwhile is not wiped.
    reset = update_if(
        t.contacts(contact_id=contact_id),
        [ContactModel.transient_bounces.remove()],
        ContactModel.transient_bounces == count,
    )
    return Decision("reset" if reset else "unchanged", None, 0 if reset else None)
