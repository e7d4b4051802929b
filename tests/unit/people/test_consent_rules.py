"""README "Consent rules", one row per test: which consent statement replaces the stored one, and why not."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from shared.events import ConsentFacts
from shared.people import consent
from shared.storage import Consent, ContactModel

T = datetime(2026, 11, 24, 9, 0, tzinfo=UTC)
EARLIER, LATER = T - timedelta(days=1), T + timedelta(days=1)


def stored(state: str, at: datetime = T, level: str | None = None) -> Consent:
    return Consent(state=state, level=level, source="shopify:customers/update", at=at)


def statement(state: str, at: datetime, *, explicit: bool = True, level: str | None = None) -> ConsentFacts:
    return ConsentFacts(state, level, at.isoformat(), "tracking:identify", explicit=explicit)


ROWS = [
    # (row of the README table, stored, new statement, by the person, why it is ignored: None when it applies)
    ("nothing stored: a source's grant applies", None, statement("granted", T, explicit=False), False, None),
    ("the same state and level: unchanged", stored("granted"), statement("granted", LATER), False, "unchanged"),
    ("the person's denial applies whatever its time", stored("granted", LATER), statement("denied", T), True, None),
    (
        "the person's grant (preferences, double opt-in) applies",
        stored("denied", LATER),
        statement("granted", T),
        True,
        None,
    ),
    (
        "an older statement arrived late: ignored",
        stored("denied"),
        statement("granted", EARLIER),
        False,
        "older than the stored statement",
    ),
    (
        "an older denial is ignored too",
        stored("granted"),
        statement("denied", EARLIER),
        False,
        "older than the stored statement",
    ),
    (
        "a grant without its own time never undoes a denial",
        stored("denied"),
        statement("granted", LATER, explicit=False),
        False,
        "a grant without its own time never undoes a denial",
    ),
    ("a newer explicit grant undoes a denial", stored("denied"), statement("granted", LATER), False, None),
    (
        "a newer denial from a source applies",
        stored("granted"),
        statement("denied", LATER, explicit=False),
        False,
        None,
    ),
    (
        "an imported file's grant never undoes a denial, however newer its date",
        stored("denied"),
        ConsentFacts("granted", "confirmed_opt_in", LATER.isoformat(), "import:mailchimp.csv", "form v2"),
        False,
        "an imported grant never undoes a denial",
    ),
    (
        "an imported file's newer grant applies where nothing is denied",
        stored("granted", level="single_opt_in"),
        ConsentFacts("granted", "confirmed_opt_in", LATER.isoformat(), "import:mailchimp.csv", "form v2"),
        False,
        None,
    ),
    (
        "a newer grant over a grant of another level applies",
        stored("granted", level="single_opt_in"),
        statement("granted", LATER, explicit=False, level="confirmed_opt_in"),
        False,
        None,
    ),
]


@pytest.mark.parametrize(("row", "current", "new", "by_the_person", "ignored"), ROWS, ids=[r[0] for r in ROWS])
def test_consent_rules(
    row: str, current: Consent | None, new: ConsentFacts, by_the_person: bool, ignored: str | None
) -> None:
    assert (
        consent.decide(current, consent.from_facts(new), explicit=new.explicit, by_the_person=by_the_person) == ignored
    )


def test_a_change_is_appended_to_the_history_and_an_ignored_statement_leaves_no_trace() -> None:
    # Given a contact the person unsubscribed
    contact = ContactModel(contact_id="c1", email="a@example.com", created_at=T, updated_at=T)
    assert consent.record(contact, statement("granted", EARLIER))
    assert consent.record(contact, ConsentFacts("denied", None, T.isoformat(), "unsubscribe"), by_the_person=True)

    # When traits are re-sent with no time of their own, then a newer explicit opt-in comes
    assert not consent.record(contact, statement("granted", LATER, explicit=False))
    assert consent.record(contact, statement("granted", LATER, level="confirmed_opt_in"))

    # Then the history holds each change once, in order, with its source and time, and nothing rewritten
    history = [(c.state, c.source, c.at) for c in contact.consent_history]
    assert history == [
        ("granted", "tracking:identify", EARLIER),
        ("denied", "unsubscribe", T),
        ("granted", "tracking:identify", LATER),
    ]
    assert contact.email_consent.level == "confirmed_opt_in"
