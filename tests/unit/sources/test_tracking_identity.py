"""Who a tracking message is about: userId, email, phone, or an anonymous visitor merged on identify."""

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from shared.clock import Clock
from shared.events import ContactFacts, Event
from shared.journeys import processing
from shared.people import contacts
from shared.people.conditions import Facts, history_of, holds
from shared.settings import Settings
from shared.sources import tracking
from shared.storage import Tables, tables

NOW = datetime(2026, 11, 24, 9, 0, tzinfo=UTC)


@pytest.fixture
def settings(aws: dict[str, str]) -> Settings:
    return Settings.from_environ(aws)


def process(settings: Settings, call: str, message: dict[str, Any]) -> processing.Result:
    return processing.process(tracking.to_event(call, message, Clock().now()), settings, Clock())


def history(t: Tables, owner: str) -> list[tuple[str, Any]]:
    return [
        (e.type, (e.properties or {}).get("path") or (e.properties or {}).get("event")) for e in t.events.query(owner)
    ]


def test_a_contact_is_found_by_phone_in_e164_and_by_the_tracking_user_id(aws: dict[str, str]) -> None:
    t = tables(Settings.from_environ(aws))
    first = contacts.upsert(ContactFacts(source_id="segment#user-42", phone="+33612345678"), t, NOW)
    by_phone = contacts.upsert(ContactFacts(phone="+33612345678", first_name="Camille"), t, NOW)
    by_user = contacts.upsert(ContactFacts(source_id="segment#user-42"), t, NOW)
    assert first is not None
    assert by_phone is not None
    assert by_user is not None
    assert first.contact_id == by_phone.contact_id == by_user.contact_id
    assert t.identities.get("phone#+33612345678").contact_id == first.contact_id
    assert t.contacts.count() == 1
    assert by_user.first_name == "Camille"


def test_the_email_wins_over_a_shared_phone(aws: dict[str, str]) -> None:
    t = tables(Settings.from_environ(aws))
    parent = contacts.upsert(ContactFacts(email="parent@example.com", phone="+33612345678"), t, NOW)
    child = contacts.upsert(ContactFacts(email="child@example.com", phone="+33612345678"), t, NOW)
    assert parent is not None
    assert child is not None
    assert parent.contact_id != child.contact_id


def test_an_anonymous_visitor_is_no_contact_until_identified_then_its_page_views_count(settings: Settings) -> None:
    t = tables(settings)
    # Given two page views by an anonymous visitor
    for path in ("/en/home", "/en/pricing"):
        result = process(settings, "page", {"anonymousId": "anon-7", "properties": {"path": path}})
        assert (result.contact_id, result.unidentified) == (None, False)
    assert t.contacts.count() == 0
    assert history(t, "_anonymous#anon-7") == [("page.viewed", "/en/home"), ("page.viewed", "/en/pricing")]
    assert all(e.expires_at is not None for e in t.events.query("_anonymous#anon-7"))

    # When the visitor identifies
    identified = process(
        settings, "identify", {"anonymousId": "anon-7", "userId": "u-7", "traits": {"email": "camille@example.com"}}
    )

    # Then the page views are in the contact's history, and a behaviour condition counts them
    contact_id = identified.contact_id
    assert contact_id is not None
    assert sorted(history(t, contact_id)) == [
        ("contact.updated", None),
        ("page.viewed", "/en/home"),
        ("page.viewed", "/en/pricing"),
    ]
    condition = {"event": "page.viewed", "where": {"path": {"contains": "/pricing"}}, "at_least": 1, "within": 86400}
    facts = Facts(now=Clock().now() + timedelta(seconds=1), history=history_of(t.events, contact_id))
    contact = t.contacts.get(contact_id)
    assert holds(condition, contact, facts)
    # ...and the contact's counters include them (pages of interest, last seen)
    assert contact.pages is not None
    assert contact.pages.as_dict() == {"/en/home": 1, "/en/pricing": 1}
    assert contact.last_seen_at is not None

    # And a later anonymous page view goes straight to the contact
    later = process(settings, "page", {"anonymousId": "anon-7", "properties": {"path": "/en/checkout"}})
    assert later.contact_id == contact_id
    assert ("page.viewed", "/en/checkout") in history(t, contact_id)
    assert t.contacts.count() == 1


def test_an_anonymous_id_stays_with_the_first_contact_it_was_merged_into(settings: Settings) -> None:
    process(settings, "page", {"anonymousId": "shared-pc", "properties": {"path": "/a"}})
    first = process(settings, "identify", {"anonymousId": "shared-pc", "userId": "alice"})
    second = process(settings, "identify", {"anonymousId": "shared-pc", "userId": "bob"})
    assert first.contact_id is not None
    assert second.contact_id is not None
    assert first.contact_id != second.contact_id
    t = tables(settings)
    assert t.identities.get("anonymous#shared-pc").contact_id == first.contact_id
    assert ("page.viewed", "/a") not in history(t, second.contact_id)


def test_an_identify_with_only_an_anonymous_id_updates_the_merged_contact(settings: Settings) -> None:
    merged = process(settings, "identify", {"anonymousId": "anon-1", "userId": "u-1"})
    again = process(settings, "identify", {"anonymousId": "anon-1", "traits": {"firstName": "Camille"}})
    assert again.contact_id == merged.contact_id
    assert merged.contact_id is not None
    assert tables(settings).contacts.get(merged.contact_id).first_name == "Camille"


def test_an_identify_with_only_an_unknown_anonymous_id_creates_no_contact(settings: Settings) -> None:
    result = process(settings, "identify", {"anonymousId": "anon-2", "traits": {"firstName": "Camille"}})
    assert (result.contact_id, result.unidentified) == (None, False)
    assert tables(settings).contacts.count() == 0


def test_consent_comes_only_from_the_documented_shape(settings: Settings) -> None:
    t = tables(settings)
    plain = process(settings, "identify", {"userId": "u-1", "traits": {"email": "a@example.com", "newsletter": True}})
    assert plain.contact_id is not None
    contact = t.contacts.get(plain.contact_id)
    assert contact.email_consent is None
    assert contact.attributes.as_dict()["newsletter"] is True  # kept as an attribute, grants nothing
    given = {"state": "subscribed", "opt_in_level": "single_opt_in"}
    process(settings, "identify", {"userId": "u-1", "traits": {"email_marketing_consent": given}})
    consent = t.contacts.get(plain.contact_id).email_consent
    assert consent is not None
    assert (consent.state, consent.level, consent.source) == ("granted", "single_opt_in", "tracking:identify")


def test_an_event_that_identifies_no_one_is_recorded_and_flagged(settings: Settings) -> None:
    assert process(settings, "track", {"userId": "u-1", "event": "x"}).unidentified is False
    nobody = Event(
        event_id="segment#none",
        type="checkout.started",
        source="tracking",
        topic="track",
        occurred_at=NOW.isoformat(),
        received_at=NOW.isoformat(),
        contact=ContactFacts(first_name="Camille"),  # a name identifies no one
    )
    result = processing.process(nobody, settings, Clock())
    assert (result.contact_id, result.recorded, result.unidentified) == (None, True, True)
    assert [e.type for e in tables(settings).events.query("_unattributed#tracking")] == ["checkout.started"]
    assert tables(settings).contacts.count() == 1
