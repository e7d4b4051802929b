"""Unsubscribing from a signed link (RFC 8058): no login, no confirmation for the one-click POST, harmless twice."""

from __future__ import annotations

from dataclasses import dataclass

from shared import consent, links
from shared.clock import Clock
from shared.events import ConsentFacts
from shared.settings import Settings
from shared.storage import get_or_none, save_changes, tables

ONE_CLICK_BODY = "List-Unsubscribe=One-Click"


@dataclass(frozen=True)
class LinkHolder:
    contact_id: str
    scope: str
    locale: str


def holder(token: str, settings: Settings, link_secret: str) -> LinkHolder | None:
    """Whose genuine link this is, or None for a forged, edited or truncated token."""
    verified = links.verify(token, link_secret)
    if verified is None:
        return None
    contact_id, scope = verified
    contact = get_or_none(tables(settings).contacts, contact_id)
    locale = (contact.locale if contact is not None else None) or settings.default_locale
    return LinkHolder(contact_id, scope, locale)


def unsubscribe(link: LinkHolder, source: str, settings: Settings, clock: Clock) -> bool:
    """Withdraws marketing consent, with its proof; True if it changed anything (a repeat changes nothing)."""
    t = tables(settings)
    contact = get_or_none(t.contacts, link.contact_id, consistent=True)
    if contact is None:
        return False  # erased already: nothing left to mail
    before = contact.serialize()
    now = clock.now()
    statement = ConsentFacts(state="denied", level=None, at=now.isoformat(), source=source)
    changed = consent.record(contact, statement, by_the_person=True)
    if changed:
        contact.updated_at = now
        save_changes(contact, before)
    return changed
