"""Addresses parcours never mails again (REQUIREMENTS.md, Email out and Privacy), decided by the feedback function
as SES reports, before the event is queued: suppression must not wait behind the queue.

- A `Permanent` bounce (any subtype) or any complaint suppresses at once; a complaint also withdraws the contact's
  email marketing consent, as the person's own act (source `ses:complaint`).
- `Transient` and `Undetermined` bounces are counted on the contact (an atomic ADD; the same SES message counts
  once) and suppress at the third without a delivery in between: a `Delivery` resets the count, so a mailbox full
  for a week and then emptied is mailed again, while one that keeps failing is not.
- Suppressing writes an entry keyed by the HMAC-SHA-256 of the normalised address under the deployment's
  suppression key (nothing else about the person: the reason is SES's type and subtype), checked before every
  email next to the contact's `suppressed` flag: it outlives the contact's erasure, and a contact created later
  with the same address is still not mailed. The flag is set only when the contact's address is the one that
  bounced (it may have changed since the send).
- The hash is keyed, not salted: without the key, a dictionary of leaked addresses does not reverse it, and an
  address is still found with one GetItem (a salt per entry would have to be stored beside it, and the look-up by
  address would become a scan). The key is a secret like the others (`hash_key`), one per deployment and never
  rotated: another key would orphan every entry. Missing or unreadable, whatever needs it fails closed
  (ConfigurationError naming the parameter): no email goes out unchecked, an event is retried, a route answers 503.
- An operator sees why an address is suppressed (`status`) and lifts it with a reason (`lift`): the entry and the
  contact's flag go, the lift is kept without the address (hash, reason, time, IAM identity). A lift never touches
  consent: a complaint's withdrawal stays until the person opts in again.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from pynamodb.exceptions import DoesNotExist, PynamoDBException

from shared import secrets
from shared.events import ConsentFacts, normalise_email
from shared.people import consent
from shared.people.errors import SuppressionRequestError
from shared.settings import ConfigurationError, Settings
from shared.storage import (
    AlreadyExists,
    ContactModel,
    StorageError,
    SuppressionModel,
    Tables,
    append_lift,
    create_new,
    delete,
    get_or_none,
    save_changes,
    tables,
    update_if,
)

LIFT_REASON_MAX = 500  # characters of an operator's reason for a lift
LIFTS_PREFIX = "lifted#"  # the key of an address's lift records in the suppressions table
TRANSIENT_LIMIT = 3  # soft bounces without a delivery in between before the address is suppressed
COMPLAINT_SOURCE = "ses:complaint"
KEY_MIN_LENGTH = 32  # characters of the suppression key (`openssl rand -base64 48` gives 64)
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


@dataclass(frozen=True)
class HashKey:
    """The deployment's suppression key, as the HMAC takes it; never in a repr, a log or an answer."""

    secret: bytes = field(repr=False)


def hash_key(settings: Settings) -> HashKey:
    """The suppression key: `PARCOURS_SUPPRESSION_KEY` locally, the SSM SecureString `SuppressionKeyParameterName`
    names in AWS. ConfigurationError naming the parameter (never a value) when it is missing, unreadable, empty or
    shorter than KEY_MIN_LENGTH: the caller fails closed."""
    value = secrets.resolve(settings.suppression_key, settings.suppression_key_parameter, "suppression key").strip()
    if len(value) < KEY_MIN_LENGTH:
        where = (
            "PARCOURS_SUPPRESSION_KEY"
            if settings.suppression_key or not settings.suppression_key_parameter
            else f"SSM parameter {settings.suppression_key_parameter}"
        )
        raise ConfigurationError(f"{where} (suppression key) is too short: at least {KEY_MIN_LENGTH} characters")
    return HashKey(value.encode())


def address_hash(key: HashKey, address: object) -> str | None:
    """An address's key in the suppressions table: the HMAC-SHA-256 of its normalised (trimmed, lower-case) form
    under the deployment's suppression key, in hex; None if not an address."""
    normalised = normalise_email(address)
    return hmac.new(key.secret, normalised.encode(), hashlib.sha256).hexdigest() if normalised else None


def is_suppressed(t: Tables, key: HashKey, address: str | None) -> bool:
    """True if this address bounced for good or complained, whichever contact holds it now."""
    hashed = address_hash(key, address)
    return hashed is not None and get_or_none(t.suppressions, hashed) is not None


def reason(kind: str, detail: object) -> str:
    """`kind:detail`, the detail from SES's own vocabulary (bounce subtype, feedback type) or `other`: nothing a
    mailbox provider wrote freely (the address is in diagnosticCode, never read here) is kept."""
    if detail is None or detail == "":
        return f"{kind}:unspecified"
    return f"{kind}:{detail if isinstance(detail, str) and detail in KNOWN_DETAILS else 'other'}"


def _normalised(addresses: Iterable[object]) -> list[str]:
    return sorted({email for email in map(normalise_email, addresses) if email is not None})


def _add_entries(t: Tables, key: HashKey, addresses: list[str], why: str, now: datetime) -> bool:
    """The hashed entries, the first reason kept; True if one was new."""
    new = False
    for address in addresses:
        hashed = address_hash(key, address)
        if hashed is None:
            continue
        try:
            create_new(t.suppressions(address_hash=hashed, reason=why, suppressed_at=now), t.suppressions.address_hash)
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


def _suppress(
    t: Tables, key: HashKey, contact_id: str | None, addresses: list[str], why: str, now: datetime
) -> Decision:
    new_entry = _add_entries(t, key, addresses, why, now)
    flagged = contact_id is not None and _flag_contact(t, contact_id, addresses, why, now)
    return Decision("suppressed" if new_entry or flagged else "already suppressed", why)


def on_bounce(
    t: Tables,
    key: HashKey,
    contact_id: str | None,
    message_id: str,
    recipients: Iterable[object],
    bounce: dict[str, Any],
    now: datetime,
) -> Decision:
    """A permanent bounce suppresses now; any other is counted, and the third in a row suppresses."""
    addresses = _normalised(recipients)
    if bounce.get("bounceType") == "Permanent":
        return _suppress(t, key, contact_id, addresses, reason("permanent_bounce", bounce.get("bounceSubType")), now)
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
        decision = _suppress(t, key, contact_id, addresses, f"transient_bounces:{count}", now)
        return Decision(decision.status, decision.reason, count)
    return Decision("counted", None, count)


def on_complaint(
    t: Tables,
    key: HashKey,
    contact_id: str | None,
    recipients: Iterable[object],
    complaint: dict[str, Any],
    now: datetime,
) -> Decision:
    """Suppresses the address and withdraws the contact's email marketing consent, with its proof."""
    addresses = _normalised(recipients)
    why = reason("complaint", complaint.get("complaintFeedbackType"))
    new_entry = _add_entries(t, key, addresses, why, now)
    contact = get_or_none(t.contacts, contact_id, consistent=True) if contact_id is not None else None
    if contact is None:
        return Decision("suppressed" if new_entry else "already suppressed", why)
    before = contact.as_read()
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


# How a reason reads for an operator; its kind before the colon (an erasure's or another's kind reads as written).
_KINDS = {
    "permanent_bounce": "a permanent (hard) bounce",
    "complaint": "a spam complaint",
    "transient_bounces": "soft bounces in a row, without a delivery in between",
}


def explained(why: str | None) -> str | None:
    """`permanent_bounce:General` as an operator reads it: `a permanent (hard) bounce (General)`."""
    if why is None:
        return None
    kind, _, detail = why.partition(":")
    return f"{_KINDS.get(kind, kind)} ({detail})" if detail else _KINDS.get(kind, kind)


def _address(key: HashKey, given: object) -> tuple[str, str]:
    address = normalise_email(given)
    hashed = address_hash(key, address)
    if address is None or hashed is None:
        raise SuppressionRequestError(400, "email is not an email address")
    return address, hashed


def _contact(t: Tables, address: str) -> ContactModel | None:
    """The contact that holds this address now (its identity), read whole; None if nobody does."""
    identity = get_or_none(t.identities, "email#" + address)
    if identity is None:
        return None
    contact = get_or_none(t.contacts, identity.contact_id, consistent=True)
    return contact if contact is not None and contact.email == address else None


def _entry(t: Tables, hashed: str) -> SuppressionModel | None:
    return get_or_none(t.suppressions, hashed, consistent=True)


def _since(at: datetime | None) -> str | None:
    return at.isoformat() if at is not None else None


def status(t: Tables, key: HashKey, given: object) -> dict[str, Any]:
    """Whether an address is suppressed, since when and why, the contact's flag and email consent, and the lifts
    recorded for it: what `parcours suppressions show` prints. The address itself is not in the answer."""
    address, hashed = _address(key, given)
    entry = _entry(t, hashed)
    contact = _contact(t, address)
    record = get_or_none(t.suppression_lifts, LIFTS_PREFIX + hashed, consistent=True)
    email_consent = contact.email_consent if contact is not None else None
    return {
        "address_hash": hashed,
        "suppressed": entry is not None or bool(contact is not None and contact.suppressed),
        "entry": None
        if entry is None
        else {"reason": entry.reason, "why": explained(entry.reason), "since": _since(entry.suppressed_at)},
        "contact": None
        if contact is None
        else {
            "contact_id": contact.contact_id,
            "suppressed": bool(contact.suppressed),
            "reason": contact.suppressed_reason,
            "why": explained(contact.suppressed_reason),
            "since": _since(contact.suppressed_at),
            "email_consent": email_consent.state if email_consent is not None else None,
            "email_consent_source": email_consent.source if email_consent is not None else None,
        },
        "lifts": [
            {
                "reason": lifted.reason,
                "lifted_at": _since(lifted.lifted_at),
                "lifted_by": lifted.lifted_by,
                "suppression_reason": lifted.suppression_reason,
                "suppressed_at": _since(lifted.suppressed_at),
            }
            for lifted in (record.lifts if record is not None else [])
        ],
    }


def lift_reason(given: object) -> str:
    """The operator's reason, required: non-empty text of at most LIFT_REASON_MAX characters, on one line."""
    if not isinstance(given, str) or not given.strip():
        raise SuppressionRequestError(400, "reason is required: why the address may be mailed again")
    text = given.strip()
    if len(text) > LIFT_REASON_MAX:
        raise SuppressionRequestError(400, f"reason is {len(text)} characters; at most {LIFT_REASON_MAX}")
    if any(ord(character) < 32 or ord(character) == 127 for character in text):
        raise SuppressionRequestError(400, "reason holds a control character (a line break, a tab...): one line")
    return text


def lift(t: Tables, key: HashKey, given: object, why: object, by: str, now: datetime) -> dict[str, Any]:
    """Lifts an address's suppression: its entry and the contact's flag (with its soft-bounce count) go, and the
    lift is recorded first (hash, reason, time, who), so none goes unrecorded. Consent is left as it is: a
    complaint's withdrawal, an unsubscribe, stay until the person opts in again. 404 when nothing is suppressed."""
    text = lift_reason(why)
    address, hashed = _address(key, given)
    entry = _entry(t, hashed)
    contact = _contact(t, address)
    flagged = contact is not None and bool(contact.suppressed)
    if entry is None and not flagged:
        raise SuppressionRequestError(404, "this address is not suppressed")
    was = entry.reason if entry is not None else contact.suppressed_reason if contact is not None else None
    since = entry.suppressed_at if entry is not None else contact.suppressed_at if contact is not None else None
    append_lift(t.suppression_lifts, LIFTS_PREFIX + hashed, text, now, by, was, since)
    if entry is not None:
        delete(entry)
    if flagged and contact is not None:
        update_if(
            t.contacts(contact_id=contact.contact_id),
            [
                ContactModel.suppressed.set(False),
                ContactModel.suppressed_reason.remove(),
                ContactModel.suppressed_at.remove(),
                ContactModel.transient_bounces.remove(),
                ContactModel.updated_at.set(now),
            ],
            ContactModel.email == address,
        )
    answer = status(t, key, address)
    answer["lifted"] = {"reason": text, "lifted_at": now.isoformat(), "lifted_by": by, "suppression_reason": was}
    return answer


def _request(body: bytes, fields: tuple[str, ...]) -> dict[str, Any]:
    try:
        given = json.loads(body or b"{}")
    except ValueError:
        given = None
    if not isinstance(given, dict) or "email" not in given or set(given) - set(fields):
        raise SuppressionRequestError(400, "the body is JSON: {" + ", ".join(f'"{f}": ...' for f in fields) + "}")
    return given


def admin_show(settings: Settings, body: bytes) -> dict[str, Any]:
    """The admin API's `show`: the body names the address (never the URL, which access logs keep).
    ConfigurationError (503) without the suppression key."""
    given = _request(body, ("email",))
    return status(tables(settings), hash_key(settings), given["email"])


def admin_lift(settings: Settings, body: bytes, by: str, now: datetime) -> dict[str, Any]:
    """The admin API's `lift`, `by` the caller's IAM identity. ConfigurationError (503) without the suppression key."""
    given = _request(body, ("email", "reason"))
    return lift(tables(settings), hash_key(settings), given["email"], given.get("reason"), by, now)
