"""What a signed link lets the person do without logging in: unsubscribe (RFC 8058: no confirmation for the
one-click POST, harmless twice), choose topics and frequency, resubscribe, confirm a signup (double opt-in)."""

from __future__ import annotations

import contextlib
import logging
from datetime import datetime, timedelta
from typing import Any, NamedTuple

from shared.clock import Clock
from shared.events import EMAIL_UNSUBSCRIBED, ConsentFacts
from shared.people import consent, links, topics
from shared.settings import Settings
from shared.storage import (
    AlreadyExists,
    ContactModel,
    ItemTooLarge,
    Preferences,
    create_new,
    get_or_none,
    save_changes,
    tables,
    update_if,
)

logger = logging.getLogger(__name__)
ONE_CLICK_BODY = "List-Unsubscribe=One-Click"
# A token's scope says which route it opens: a link in one email opens only what that link is for.
UNSUBSCRIBE_SCOPE = "all"
PREFERENCES_SCOPE = "preferences"
CONFIRM_SCOPE = "confirm"


class LinkHolder(NamedTuple):
    contact_id: str
    scope: str
    locale: str
    origin: links.Origin | None = None  # the email the link is in (unsubscribe links sent since the reports)


def holder(token: str, settings: Settings, link_secret: str, scope: str | None = None) -> LinkHolder | None:
    """Whose genuine link this is, or None for a forged, edited or truncated token (or one of another scope)."""
    verified = links.read(token, link_secret)
    if verified is None or (scope is not None and verified.scope != scope):
        return None
    contact = get_or_none(tables(settings).contacts, verified.contact_id)
    locale = (contact.locale if contact is not None else None) or settings.default_locale
    return LinkHolder(verified.contact_id, verified.scope, locale, verified.origin)


def unsubscribe(link: LinkHolder, source: str, settings: Settings, clock: Clock) -> bool:
    """Withdraws marketing consent, with its proof; True if it changed anything (a repeat changes nothing). Through
    the link of a scenario's email, a change is also written to the contact's history as `email.unsubscribed` with
    that email's scenario, step and variant, which the reports count (one more write, only when it changed)."""
    t = tables(settings)
    contact = get_or_none(t.contacts, link.contact_id, consistent=True)
    if contact is None:
        return False  # erased already: nothing left to mail
    now = clock.now()
    statement = ConsentFacts(state="denied", level=None, at=now.isoformat(), source=source)
    changed = _record(contact, statement, now, withdrawal=True)
    if changed and link.origin is not None:
        _unsubscribed(link.contact_id, link.origin, source, settings, now)
    return changed


def _unsubscribed(contact_id: str, origin: links.Origin, source: str, settings: Settings, now: datetime) -> None:
    """The unsubscribe's record in the contact's history (kept as long as the other events), naming the email."""
    record = tables(settings).events(
        contact_id=contact_id,
        at_id=f"{now.isoformat()}#unsubscribe#{origin.scenario}#{origin.step}",
        type=EMAIL_UNSUBSCRIBED,
        source="unsubscribe",
        properties={
            "topic": source,
            "scenario": origin.scenario,
            "step": origin.step,
            "variant": origin.variant,
        },
        expires_at=now + timedelta(days=settings.event_retention_days),
    )
    with contextlib.suppress(AlreadyExists):  # the same instant's unsubscribe, recorded already
        create_new(record, type(record).contact_id)


def _record(contact: ContactModel, statement: ConsentFacts, now: datetime, *, withdrawal: bool) -> bool:
    """The person's own consent statement, written alone: one UpdateItem of the current statement, its entry
    appended to the history (list_append) and updated_at, whatever else the contact holds (a full save of a
    contact near DynamoDB's 400 KB, or with many attributes, would fail). True if it changed anything; False for a
    repeat, or a contact erased meanwhile (the update is conditional: it never recreates one).

    A withdrawal always takes effect: when the contact is so full that even the history's new entry does not fit,
    the current statement (the proof: state, time, source) is written alone, its fields in place (a denial is no
    larger than the grant it replaces), and the failure to extend the history is logged (contact id only)."""
    previous = contact.email_consent
    if not consent.record(contact, statement, by_the_person=True):
        return False
    current = contact.email_consent
    exists = ContactModel.contact_id.exists()
    try:
        return update_if(
            contact,
            [
                ContactModel.email_consent.set(current),
                ContactModel.consent_history.set((ContactModel.consent_history | []).append([current])),
                ContactModel.updated_at.set(now),
            ],
            exists,
        )
    except ItemTooLarge:
        if not withdrawal:
            raise
        logger.warning(
            "contact at its size limit: unsubscribe recorded without its history entry",
            extra={"contact_id": contact.contact_id},
        )
        if previous is None:
            return update_if(contact, [ContactModel.email_consent.set(current)], exists)
        # The statement's fields in place: the item changes only by their difference (a denial has no level).
        stored: Any = ContactModel.email_consent  # its fields as document paths (email_consent.state)
        return update_if(
            contact,
            [
                stored.state.set(current.state),
                stored.source.set(current.source),
                stored.at.set(current.at),
                stored.level.set(current.level) if current.level is not None else stored.level.remove(),
                stored.wording.set(current.wording) if current.wording is not None else stored.wording.remove(),
            ],
            exists,
        )


# The text next to the preference centre's resubscribe checkbox and the confirmation email's button: the page and
# the email show these very strings, and the consent statement records them as its wording (the proof).
RESUBSCRIBE_WORDING = {
    "fr": "J'accepte de recevoir à nouveau les emails marketing de {sender}.",
    "en": "I agree to receive marketing emails from {sender} again.",
}
CONFIRM_WORDING = {
    "fr": "Je confirme vouloir recevoir les emails marketing de {sender}.",
    "en": "I confirm I want to receive marketing emails from {sender}.",
}


def wording(table: dict[str, str], locale: str, sender: str) -> str:
    return table.get(locale, table["en"]).format(sender=sender)


class PreferencesRefused(ValueError):
    """A preference form that cannot be applied; the message is for the page (which field is wrong)."""


class PreferencesView(NamedTuple):
    """What the preference centre shows: which topics are on, the frequency, whether marketing is allowed."""

    topics_on: tuple[str, ...]
    frequency: str
    subscribed: bool
    suppressed: bool


def preferences_of(contact: ContactModel | None) -> PreferencesView:
    prefs = contact.preferences if contact is not None else None
    off = set(prefs.topics_off or ()) if prefs is not None else set()
    current = contact.email_consent if contact is not None else None
    return PreferencesView(
        topics_on=tuple(topic for topic in topics.TOPICS if topic not in off),
        frequency=(prefs.frequency if prefs is not None else None) or "all",
        subscribed=current is not None and current.state == "granted",
        suppressed=bool(contact is not None and contact.suppressed),
    )


def topic_refusal(contact: ContactModel, topic: str | None) -> str | None:
    """Why a message of this topic may not go to the contact (turned off in the preference centre), or None."""
    prefs = contact.preferences
    if topic is None or prefs is None or topic not in (prefs.topics_off or ()):
        return None
    return f"topic {topic} turned off in the preference centre"


def read(link: LinkHolder, settings: Settings) -> ContactModel | None:
    return get_or_none(tables(settings).contacts, link.contact_id, consistent=True)


def save_preferences(
    link: LinkHolder, topics_on: list[str], frequency: str, settings: Settings, clock: Clock
) -> ContactModel | None:
    """Stores the chosen topics and frequency with their time and source; None when the contact was erased."""
    unknown = sorted(set(topics_on) - set(topics.TOPICS))
    if unknown:
        raise PreferencesRefused(f"unknown topic {unknown[0]!r}; topics: {', '.join(topics.TOPICS)}")
    if frequency not in topics.FREQUENCIES:
        raise PreferencesRefused(f"unknown frequency {frequency!r}; one of {', '.join(topics.FREQUENCIES)}")
    contact = read(link, settings)
    if contact is None:
        return None
    off = {topic for topic in topics.TOPICS if topic not in topics_on}
    current = preferences_of(contact)
    if set(current.topics_on) == set(topics.TOPICS) - off and current.frequency == frequency:
        return contact  # a repeated submit changes nothing and adds no history
    before = contact.as_read()
    now = clock.now()
    choice = Preferences(topics_off=off or None, frequency=frequency, source="preferences", at=now)
    contact.preferences = choice
    contact.preferences_history = [*(contact.preferences_history or []), choice]
    contact.updated_at = now
    save_changes(contact, before)
    return contact


def resubscribe(link: LinkHolder, agreed: bool, settings: Settings, clock: Clock) -> bool:
    """Grants marketing consent again from the preference centre, the checkbox's wording as proof.

    Only the person ticking the box resubscribes (PreferencesRefused otherwise); a suppressed address (bounce,
    complaint) stays suppressed. True if it changed anything.
    """
    if not agreed:
        raise PreferencesRefused("tick the box to resubscribe")
    return _grant(link, "single_opt_in", "preferences", RESUBSCRIBE_WORDING, settings, clock)


def confirmation(link: LinkHolder, settings: Settings, contact: ContactModel | None = None) -> str:
    """Where the double opt-in stands, changing nothing (what the GET page shows): ask (the button), already
    confirmed, withdrawn (the person unsubscribed since the email) or erased."""
    contact = contact or read(link, settings)
    if contact is None:
        return "erased"
    current = contact.email_consent
    if current is not None and current.state == "granted" and current.level == "confirmed_opt_in":
        return "already"
    if current is not None and current.state == "denied":
        return "withdrawn"
    return "ask"


def confirm(link: LinkHolder, settings: Settings, clock: Clock) -> str:
    """Double opt-in (the page's POST): upgrades a granted single opt-in to confirmed_opt_in, with its proof.

    Answers confirmed, already (a second POST changes nothing), withdrawn (the person unsubscribed since the email:
    a confirmation sent later must not undo that) or erased.
    """
    contact = read(link, settings)
    state = confirmation(link, settings, contact)
    if state != "ask":
        return state
    _grant(link, "confirmed_opt_in", "double-opt-in", CONFIRM_WORDING, settings, clock, contact)
    if contact is not None and contact.email_unverified:  # the person showed the address is theirs
        update_if(contact, [ContactModel.email_unverified.remove()], ContactModel.contact_id.exists())
    return "confirmed"


def _grant(
    link: LinkHolder,
    level: str,
    source: str,
    wordings: dict[str, str],
    settings: Settings,
    clock: Clock,
    contact: ContactModel | None = None,
) -> bool:
    contact = contact or read(link, settings)
    if contact is None:
        return False
    now = clock.now()
    statement = ConsentFacts(
        state="granted",
        level=level,
        at=now.isoformat(),
        source=source,
        wording=wording(wordings, link.locale, settings.sender_name),
    )
    return _record(contact, statement, now, withdrawal=False)
