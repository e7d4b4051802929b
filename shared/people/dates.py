"""The dates index: one item per (contact, date attribute), keyed by attribute and month-day.

The daily run reads today's keys (`birthday#03-15`) instead of scanning contacts. Every place that writes a
contact's dates (creation, a source's attributes, the set_attribute action) calls `reindex`, which puts the
contact's current entries and deletes the ones it no longer has (their keys are kept on the contact).
"""

from __future__ import annotations

from pynamodb.exceptions import PynamoDBException

from shared import writes
from shared.people import moments
from shared.storage import ContactModel, StorageError, Tables

CREATED_AT = "created_at"  # the signup anniversary: a date every contact has
TIMEZONE = "timezone"  # the custom attribute holding the contact's IANA time zone


def entries(contact: ContactModel) -> dict[str, str]:
    """Index key -> ISO date, for created_at and every custom attribute holding an ISO date."""
    found = {CREATED_AT: contact.created_at.date()} if contact.created_at is not None else {}
    custom = contact.attributes.as_dict() if contact.attributes is not None else {}
    for name, value in custom.items():
        day = moments.parse_date(value)
        if day is not None:
            found[name] = day
    return {f"{name}#{day.month:02d}-{day.day:02d}": day.isoformat() for name, day in found.items()}


def timezone_of(contact: ContactModel) -> str | None:
    custom = contact.attributes.as_dict() if contact.attributes is not None else {}
    value = custom.get(TIMEZONE)
    return value if isinstance(value, str) and value else None


def reindex(contact: ContactModel, t: Tables) -> set[str]:
    """Writes the contact's entries (with its time zone), deletes stale ones; returns the keys now held, for
    the caller to keep in `contact.date_keys` when it saves the contact."""
    wanted = entries(contact)
    held = set(contact.date_keys or ())
    timezone = timezone_of(contact)
    gathered = writes.current()
    if gathered is not None:  # in the event's one transaction
        for key in sorted(held - set(wanted)):
            gathered.delete(t.dates(key=key, contact_id=contact.contact_id))
        for key, day in sorted(wanted.items()):
            gathered.put(t.dates(key=key, contact_id=contact.contact_id, date=day, timezone=timezone))
        return set(wanted)
    try:
        with t.dates.batch_write() as batch:
            for key in sorted(held - set(wanted)):
                batch.delete(t.dates(key=key, contact_id=contact.contact_id))
            for key, day in sorted(wanted.items()):
                batch.save(t.dates(key=key, contact_id=contact.contact_id, date=day, timezone=timezone))
    except PynamoDBException as error:
        raise StorageError(str(error)) from error
    return set(wanted)


def keep_keys(contact: ContactModel, keys: set[str]) -> None:
    """Sets the held keys on the (unsaved) contact: an empty set is stored as no attribute at all."""
    contact.date_keys = keys or None
